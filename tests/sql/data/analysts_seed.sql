-- Data for the analysts' queries of docs/sql.md (run by tools/sql-test.sh,
-- which checks only that every documented query runs).
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}');
SELECT tg_api.users_create(:'root', '{"username": "bob", "tokens_day": 100}');
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 2,
    'digest', encode(sha256('k'), 'hex'), 'prefix', 'sk-tg-Kkkk',
    'last4', 'kkkk', 'models', jsonb_build_array('claude-*')));
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "rpm": 10}');
SELECT tg_api.applications_create('{"actor": 2, "role": "user"}',
    '{"kind": "quota_increase", "quota": {"tokens_day": 1000}}');
SELECT tg_api.applications_approve(:'root', '{"application_id": 1}');
SELECT tg_api.auth_login_result('{"role": null, "addr": "192.0.2.1"}',
    '{"user_id": 2, "ok": false}');
-- Usage, as admin flushes it: two batches over two months, two users,
-- two keys, two models, two endpoints; the second batch sent twice.
SELECT tg_api.usage_ingest(jsonb_build_object(
    'batch_id', '00000000000000aa-1', 'host', 'h1', 'records', 6,
    'rows', jsonb_build_array(
        jsonb_build_array(extract(epoch FROM date_trunc('hour', now()
            - interval '1 month'))::bigint, 2, 1, 'claude-sonnet-4-5', 'ep-a',
            3, 2, 1, 0, 0, 0, 1, 0, 300, 600, 1200, 50, 0, 0,
            9000000000, 0, 0, 900, 400, 90, 3000, 9000),
        jsonb_build_array(extract(epoch FROM date_trunc('hour', now()
            - interval '1 month'))::bigint, 1, 2, 'gpt-4o', 'ep-b',
            3, 0, 0, 1, 0, 1, 0, 0, 100, 50, 40, 0, 0, 0,
            1500000000, 1, 0, 3000, 2000, 300, 1000, 2000))));
SELECT tg_api.usage_ingest(jsonb_build_object(
    'batch_id', '00000000000000aa-2', 'host', 'h1', 'records', 2,
    'rows', jsonb_build_array(
        jsonb_build_array(extract(epoch FROM date_trunc('hour', now()))::bigint,
            2, 1, 'claude-sonnet-4-5', 'ep-a', 2, 2, 0, 0, 1, 0, 0, 0,
            200, 400, 800, 0, 30, 10, 6000000000, 0, 0, 700, 500, 60, 2000,
            6000))));
SELECT tg_api.usage_ingest(jsonb_build_object(
    'batch_id', '00000000000000aa-2', 'host', 'h1', 'records', 2,
    'rows', jsonb_build_array(
        jsonb_build_array(extract(epoch FROM date_trunc('hour', now()))::bigint,
            2, 1, 'claude-sonnet-4-5', 'ep-a', 2, 2, 0, 0, 1, 0, 0, 0,
            200, 400, 800, 0, 30, 10, 6000000000, 0, 0, 700, 500, 60, 2000,
            6000))));
