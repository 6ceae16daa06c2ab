-- Data for the analysts' queries of docs/sql.md.  tools/sql-test.sh loads
-- it into a fresh database, runs each ```sql block of the page's "For
-- analysts" section on its own with the clock below, and compares the
-- output with tests/sql/expected/analysts_NN.out: a wrong query or a
-- wrong view changes the output and fails.
--
-- Everything is fixed, times included: the documented queries say now(),
-- and the runner puts schema analysts_clock first in search_path, so
-- their now() is analysts_clock.now(), Wednesday 2026-03-18 10:30 UTC.
-- "Last month" is February 2026, "this week" starts 2026-03-11 10:30.
CREATE SCHEMA analysts_clock;
CREATE FUNCTION analysts_clock.now() RETURNS timestamptz
LANGUAGE sql IMMUTABLE
RETURN timestamptz '2026-03-18 10:30:00+00';

\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
-- Users: root (admin), bob (100 tokens a day, group default), carol
-- (group research, 0.02 USD a month), dave (no key, no usage).
SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}') IS NOT NULL;
SELECT tg_api.groups_create(:'root', '{"name": "research"}') IS NOT NULL;
SELECT tg_api.users_create(:'root', '{"username": "bob", "tokens_day": 100}') IS NOT NULL;
SELECT tg_api.users_create(:'root', '{"username": "carol", "group": "research", "cost_month_usd": "0.02"}') IS NOT NULL;
SELECT tg_api.users_create(:'root', '{"username": "dave"}') IS NOT NULL;
-- Keys: 1 bob's (claude-* only), 2 carol's, 3 root's (disabled), 4
-- dave's (created in November, never used).
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 2,
    'digest', encode(sha256('k1'), 'hex'), 'prefix', 'sk-tg-Kone',
    'last4', 'kone', 'models', jsonb_build_array('claude-*'))) IS NOT NULL;
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 3,
    'digest', encode(sha256('k2'), 'hex'), 'prefix', 'sk-tg-Ktwo',
    'last4', 'ktwo')) IS NOT NULL;
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 1,
    'digest', encode(sha256('k3'), 'hex'), 'prefix', 'sk-tg-Kthr',
    'last4', 'kthr')) IS NOT NULL;
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 4,
    'digest', encode(sha256('k4'), 'hex'), 'prefix', 'sk-tg-Kfou',
    'last4', 'kfou')) IS NOT NULL;
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "rpm": 10}') IS NOT NULL;
SELECT tg_api.keys_set_status(:'root', '{"key_id": 3, "status": "disabled"}') IS NOT NULL;
-- bob asks for more, root approves; carol asks, nobody decided yet.
SELECT tg_api.applications_create('{"actor": 2, "role": "user"}',
    '{"kind": "quota_increase", "quota": {"tokens_day": 1000}}') IS NOT NULL;
SELECT tg_api.applications_approve(:'root', '{"application_id": 1, "comment": "ok"}') IS NOT NULL;
SELECT tg_api.applications_create('{"actor": 3, "role": "user"}',
    '{"kind": "model_access", "key_id": 2, "models": ["gpt-4o"]}') IS NOT NULL;
-- Two wrong passwords for bob from two addresses.
SELECT tg_api.auth_login_result('{"role": null, "addr": "192.0.2.1"}',
    '{"user_id": 2, "ok": false}') IS NOT NULL;
SELECT tg_api.auth_login_result('{"role": null, "addr": "192.0.2.7"}',
    '{"user_id": 2, "ok": false}') IS NOT NULL;

-- Prices: claude-sonnet-4-5* and gpt-4o in force, a raise of gpt-4o from
-- 2026-04-01 not yet.
SELECT tg_api.prices_create(:'root', '{"pattern": "claude-sonnet-4-5*", "input_usd_per_mtok": "3", "output_usd_per_mtok": "15", "cache_read_usd_per_mtok": "0.3", "cache_write_5m_usd_per_mtok": "3.75", "cache_write_1h_usd_per_mtok": "6", "effective_from": "2025-09-29T00:00:00Z"}') IS NOT NULL;
SELECT tg_api.prices_create(:'root', '{"pattern": "gpt-4o", "input_usd_per_mtok": "2.5", "output_usd_per_mtok": "10", "cache_read_usd_per_mtok": "1.25", "cache_write_5m_usd_per_mtok": "0", "cache_write_1h_usd_per_mtok": "0", "effective_from": "2024-08-06T00:00:00Z"}') IS NOT NULL;
SELECT tg_api.prices_create(:'root', '{"pattern": "gpt-4o", "input_usd_per_mtok": "3", "output_usd_per_mtok": "12", "cache_read_usd_per_mtok": "1.5", "cache_write_5m_usd_per_mtok": "0", "cache_write_1h_usd_per_mtok": "0", "effective_from": "2026-04-01T00:00:00Z"}') IS NOT NULL;

-- The clock of every row written above: created 2026-01-05 (dave's key
-- 2025-11-03), keys 1 and 2 last used this month, audit entries one
-- minute apart from 2026-03-17 11:00 (so within the last week and the
-- last day), the approval 2026-03-17 11:30.
UPDATE users SET created_at = '2026-01-05 08:00+00', updated_at = '2026-01-05 08:00+00';
UPDATE api_keys SET created_at = CASE key_id WHEN 4 THEN timestamptz '2025-11-03 08:00+00'
                                             ELSE timestamptz '2026-01-05 08:00+00' END,
       updated_at = '2026-01-05 08:00+00',
       last_used_at = CASE key_id WHEN 1 THEN timestamptz '2026-03-18 09:59+00'
                                  WHEN 2 THEN timestamptz '2026-03-17 16:40+00' END;
UPDATE applications SET created_at = '2026-03-17 11:10+00', updated_at = '2026-03-17 11:30+00',
       decided_at = CASE WHEN decided_at IS NOT NULL THEN timestamptz '2026-03-17 11:30+00' END;
UPDATE audit_log SET at = timestamptz '2026-03-17 11:00+00' + make_interval(mins => audit_id::integer);

-- Usage, as admin flushes it.  A row: [hour, user_id, key_id, model,
-- endpoint, requests, stream_requests, upstream_errors, timeouts,
-- client_gone, broken_streams, rejected, worker_crashed, input, output,
-- cache_read, cache_write_5m, cache_write_1h, reasoning, cost (pico-USD),
-- unpriced, tokens_unknown, latency_ms_sum, latency_ms_max, ttfb_ms_sum,
-- bytes_in, bytes_out].
CREATE FUNCTION pg_temp.h(text) RETURNS bigint LANGUAGE sql
RETURN extract(epoch FROM $1::timestamptz)::bigint;
-- February, host h1: bob on Claude, root on an unpriced model, carol on
-- Claude and GPT-4o.
SELECT tg_api.usage_ingest(jsonb_build_object(
    'batch_id', '00000000000000aa-1', 'host', 'h1', 'records', 13,
    'rows', jsonb_build_array(
        jsonb_build_array(pg_temp.h('2026-02-10 09:00+00'), 2, 1,
            'claude-sonnet-4-5', 'ep-a', 3, 2, 1, 0, 0, 0, 1, 0,
            300, 600, 1200, 50, 0, 0, 10447500000, 0, 0, 900, 400, 90,
            3000, 9000),
        jsonb_build_array(pg_temp.h('2026-02-10 09:00+00'), 1, 3,
            'llama-3', 'ep-b', 3, 0, 0, 1, 0, 1, 0, 0,
            100, 50, 0, 0, 0, 0, 0, 3, 0, 3000, 2000, 300, 1000, 2000),
        jsonb_build_array(pg_temp.h('2026-02-20 14:00+00'), 3, 2,
            'claude-sonnet-4-5', 'ep-a', 5, 5, 0, 0, 0, 0, 0, 0,
            2000, 4000, 0, 0, 1000, 0, 72000000000, 0, 0, 5000, 1500, 600,
            10000, 40000),
        jsonb_build_array(pg_temp.h('2026-02-20 15:00+00'), 3, 2,
            'gpt-4o', 'ep-b', 2, 0, 0, 0, 0, 0, 0, 0,
            1000, 500, 400, 0, 0, 100, 8000000000, 0, 0, 1200, 700, 200,
            4000, 3000))));
-- March, host h1 (this batch is sent twice: the second time changes
-- nothing): bob today and early in the month.
CREATE FUNCTION pg_temp.batch_aa2() RETURNS jsonb LANGUAGE sql
RETURN jsonb_build_object(
    'batch_id', '00000000000000aa-2', 'host', 'h1', 'records', 6,
    'rows', jsonb_build_array(
        jsonb_build_array(pg_temp.h('2026-03-18 09:00+00'), 2, 1,
            'claude-sonnet-4-5', 'ep-a', 4, 2, 0, 0, 1, 0, 2, 0,
            200, 400, 800, 0, 30, 10, 7020000000, 0, 1, 700, 500, 60, 2000,
            6000),
        jsonb_build_array(pg_temp.h('2026-03-05 11:00+00'), 2, 1,
            'claude-sonnet-4-5', 'ep-a', 2, 0, 0, 0, 0, 0, 0, 0,
            100, 100, 100, 0, 0, 0, 1830000000, 0, 0, 400, 250, 80, 800,
            1200)));
SELECT tg_api.usage_ingest(pg_temp.batch_aa2());
SELECT tg_api.usage_ingest(pg_temp.batch_aa2());
-- March, host h2: carol yesterday on GPT-4o, with failures and refusals.
SELECT tg_api.usage_ingest(jsonb_build_object(
    'batch_id', '00000000000000bb-1', 'host', 'h2', 'records', 6,
    'rows', jsonb_build_array(
        jsonb_build_array(pg_temp.h('2026-03-17 16:00+00'), 3, 2,
            'gpt-4o', 'ep-b', 6, 3, 1, 1, 0, 0, 2, 0,
            1500, 900, 500, 0, 0, 0, 13375000000, 0, 0, 9000, 4000, 1200,
            6000, 5000),
        jsonb_build_array(pg_temp.h('2026-03-17 16:00+00'), 3, 2,
            'claude-sonnet-4-5', 'ep-a', 1, 1, 0, 0, 0, 1, 0, 0,
            50, 20, 0, 0, 0, 0, 450000000, 0, 1, 800, 800, 100, 500,
            700))));
