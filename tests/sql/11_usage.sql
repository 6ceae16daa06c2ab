-- Usage: a batch applies once; the usage query's grouping and privacy;
-- prices: validation, audit, the price in force, the seed once per version.
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin"}'
\set bob '{"actor": 2, "role": "user"}'
SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}') IS NOT NULL;
SELECT tg_api.users_create(:'root', '{"username": "bob"}') IS NOT NULL;
\set b1 '{"batch_id": "00000000000000bb-1", "host": "h1", "records": 3, "rows": [[1796184000, 2, 5, "claude-x", "ep", 2, 1, 1, 0, 0, 0, 0, 0, 10, 20, 30, 4, 5, 6, 1234567, 0, 1, 10, 7, 3, 100, 200], [1796187600, 1, 6, "gpt-4o", "ep2", 1, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 0, 0, 0, 1000000000000, 1, 0, 5, 5, 1, 10, 20]]}'
-- Applied once; the second time changes nothing.
SELECT tg_api.usage_ingest(:'b1');
SELECT tg_api.usage_ingest(:'b1');
SELECT hour, user_id, requests, errors, input_tokens, cache_read_tokens,
       cost_usd, latency_ms_max FROM usage_hourly ORDER BY hour;
SELECT batch_id, records, rows FROM usage_batches;
-- A detail row of a month without a partition makes its partition.
\set b2 '{"batch_id": "00000000000000bb-2", "host": "h1", "records": 1, "rows": [], "detail": [[1580558400000, "r-1", 2, 5, "claude-x", "ep", "anthropic", false, 200, "ok", 1, 10, 20, 0, 0, 0, 0, 1234567, false, true, 100, 50, 300, 400]]}'
SELECT to_regclass('public.usage_requests_202002') IS NULL;
SELECT tg_api.usage_ingest(:'b2');
SELECT request_id, at FROM usage_requests_202002;
-- Grouping; cost is a decimal string.
SELECT tg_api.usage_list(:'root', '{"from": "2026-01-01T00:00:00Z", "group_by": "day,user"}');
SELECT tg_api.usage_list(:'root', '{"from": "2026-01-01T00:00:00Z", "group_by": "model", "endpoint": "ep"}');
-- A user sees their own usage only.
SELECT tg_api.usage_list(:'bob', '{"from": "2026-01-01T00:00:00Z"}');
SELECT tg_api.usage_list(:'bob', '{"from": "2026-01-01T00:00:00Z", "user": 1}');
SELECT tg_api.usage_list(:'root', '{"group_by": "day,month"}');
SELECT tg_api.usage_list(:'root', '{"group_by": "team"}');
-- Prices: admin only, six decimals at most, audited.
SELECT tg_api.prices_create(:'bob', '{"pattern": "m*", "input_usd_per_mtok": "1", "output_usd_per_mtok": "2", "cache_read_usd_per_mtok": "0.1", "cache_write_5m_usd_per_mtok": "1.25", "cache_write_1h_usd_per_mtok": "2"}');
SELECT tg_api.prices_create(:'root', '{"pattern": "m*", "input_usd_per_mtok": "1.0000001", "output_usd_per_mtok": "2", "cache_read_usd_per_mtok": "0.1", "cache_write_5m_usd_per_mtok": "1.25", "cache_write_1h_usd_per_mtok": "2"}');
SELECT tg_api.prices_create(:'root', '{"pattern": "m*", "input_usd_per_mtok": "1", "output_usd_per_mtok": "2", "cache_read_usd_per_mtok": "0.1", "cache_write_5m_usd_per_mtok": "1.25", "cache_write_1h_usd_per_mtok": "2", "effective_from": "2020-01-01T00:00:00Z"}') ->> 'input_usd_per_mtok';
SELECT tg_api.prices_create(:'root', '{"pattern": "m*", "input_usd_per_mtok": "3", "output_usd_per_mtok": "2", "cache_read_usd_per_mtok": "0.1", "cache_write_5m_usd_per_mtok": "1.25", "cache_write_1h_usd_per_mtok": "2", "effective_from": "2099-01-01T00:00:00Z"}') ->> 'in_force';
SELECT * FROM tg_api.prices_current();
SELECT action, target_type FROM audit_log WHERE target_type = 'price' ORDER BY audit_id;
-- The seed applies once per version.
SELECT tg_api.prices_seed('{"version": "v1", "prices": [{"pattern": "s-1", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1", "cache_read_usd_per_mtok": "1", "cache_write_5m_usd_per_mtok": "1", "cache_write_1h_usd_per_mtok": "1"}]}');
SELECT tg_api.prices_seed('{"version": "v1", "prices": [{"pattern": "s-1", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1", "cache_read_usd_per_mtok": "1", "cache_write_5m_usd_per_mtok": "1", "cache_write_1h_usd_per_mtok": "1"}]}');
SELECT pattern, managed_by FROM model_prices WHERE pattern = 's-1';
