-- usage_batches retention: old batch ids go in bounded chunks, oldest
-- first; recent ones stay and still make a replay a no-op.
\set b '{"host": "h1", "records": 1, "rows": [[1796184000, 2, 5, "claude-x", "ep", 1, 0, 0, 0, 0, 0, 0, 0, 10, 20, 0, 0, 0, 0, 1000, 0, 0, 10, 10, 3, 100, 200]]}'
SELECT tg_api.usage_ingest(jsonb_set(:'b', '{batch_id}', to_jsonb('00000000000000cc-' || i)))
  FROM generate_series(1, 7) AS i;
-- Five applied 8, 9, ... 12 days ago; two now.
UPDATE usage_batches
   SET applied_at = now() - make_interval(days => 7 + split_part(batch_id, '-', 2)::integer)
 WHERE split_part(batch_id, '-', 2)::integer <= 5;
-- Seven days' retention, two rows a call: 2, 2, 1, then nothing.
SELECT tg_api.usage_batches_purge(7 * 86400000, 2);
SELECT batch_id FROM usage_batches ORDER BY batch_id;
SELECT tg_api.usage_batches_purge(7 * 86400000, 2);
SELECT tg_api.usage_batches_purge(7 * 86400000, 2);
SELECT tg_api.usage_batches_purge(7 * 86400000, 2);
SELECT batch_id FROM usage_batches ORDER BY batch_id;
-- A kept id still makes its replay a no-op; the facts are untouched.
SELECT tg_api.usage_ingest(jsonb_set(:'b', '{batch_id}', '"00000000000000cc-7"'));
SELECT requests, input_tokens FROM usage_hourly;
-- Bounds.
SELECT tg_api.usage_batches_purge(1000, 10);
SELECT tg_api.usage_batches_purge(7 * 86400000, 0);
