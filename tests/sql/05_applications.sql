-- Applications: filing, permissions, approval applying its change in the
-- same transaction (or not at all), the one-time secret, rejection.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'
\set eve '{"actor": 3, "role": "user", "addr": "10.0.0.3", "host": "h1"}'
\set cipher '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243444546'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob", "tokens_month": 1000}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "eve"}') ->> 'user_id';
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'name', 'bob-key', 'digest', encode(sha256('kb'), 'hex'),
    'prefix', 'sk-tg-Bob1', 'last4', 'bob1',
    'models', jsonb_build_array('claude-haiku-*'))) ->> 'key_id';
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 3, 'digest', encode(sha256('ke'), 'hex'),
    'prefix', 'sk-tg-Eve1', 'last4', 'eve1')) ->> 'key_id';

-- model_access: for one's own key only.
SELECT tg_api.applications_create(:'bob', '{"kind": "model_access",
    "key_id": 1, "models": ["claude-sonnet-*", "claude-haiku-*"],
    "reason": "need sonnet for the eval"}');
SELECT tg_api.applications_create(:'eve', '{"kind": "model_access",
    "key_id": 1, "models": ["claude-opus-*"]}');
SELECT tg_api.applications_create(:'bob', '{"kind": "model_access",
    "key_id": 1, "models": []}');
SELECT tg_api.applications_create(:'bob', '{"kind": "model_access",
    "models": ["x"]}');
SELECT tg_api.applications_create(:'bob', '{"kind": "upgrade"}');
SELECT tg_api.applications_create(:'bob', '{}');
SELECT tg_api.applications_create('{"actor": null, "role": "user"}',
    '{"kind": "new_key"}');

-- Users see their own applications; others' ids are 404.
SELECT tg_api.applications_get(:'eve', '{"application_id": 1}');
SELECT jsonb_path_query_array(r, '$.items[*].application_id')
  FROM tg_api.applications_list(:'eve', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].application_id')
  FROM tg_api.applications_list(:'bob', '{"status": "pending"}') AS r;
-- Only admins decide.
SELECT tg_api.applications_approve(:'bob', '{"application_id": 1}');
SELECT tg_api.applications_reject(:'eve', '{"application_id": 1}');

-- Approval adds the models to the key's allow-list in the same call.
SELECT tg_api.applications_approve(:'root', '{"application_id": 1,
    "comment": "ok for the eval"}');
SELECT models FROM api_keys WHERE key_id = 1;
-- Twice is a conflict.
SELECT tg_api.applications_approve(:'root', '{"application_id": 1}');
SELECT tg_api.applications_reject(:'root', '{"application_id": 1}');
-- The applicant sees the outcome and the comment.
SELECT r ->> 'status', r ->> 'comment', r ->> 'decided_by', r -> 'result'
  FROM tg_api.applications_get(:'bob', '{"application_id": 1}') AS r;

-- A key that allows every model (empty list) is left alone.
SELECT tg_api.applications_create(:'eve', '{"kind": "model_access",
    "key_id": 2, "models": ["gpt-4o"]}') ->> 'application_id';
SELECT tg_api.applications_approve(:'root', '{"application_id": 2}')
       -> 'result';
SELECT models FROM api_keys WHERE key_id = 2;

-- quota_increase: the user's quotas take the requested values.
SELECT tg_api.applications_create(:'bob', '{"kind": "quota_increase",
    "quota": {"tokens_month": 5000000, "cost_month_usd": 12.5}}')
       -> 'payload';
SELECT tg_api.applications_create(:'bob', '{"kind": "quota_increase",
    "quota": {}}');
SELECT tg_api.applications_create(:'bob', '{"kind": "quota_increase",
    "quota": {"tokens_month": -5}}');
SELECT tg_api.applications_approve(:'root', '{"application_id": 3}')
       -> 'result';
SELECT tokens_day, tokens_month, cost_month_usd FROM users WHERE user_id = 2;

-- new_key: approval creates the key and keeps it sealed for the
-- applicant, who reads it once.
SELECT tg_api.applications_create(:'bob', '{"kind": "new_key",
    "key": {"name": "batch", "models": ["claude-*"], "rpm": 30,
            "expires_at": "2999-12-31T00:00:00Z"},
    "reason": "batch jobs"}') -> 'payload';
SELECT tg_api.applications_create(:'bob', '{"kind": "new_key",
    "key": {"group": "nope"}}');
SELECT tg_api.applications_create(:'bob', '{"kind": "new_key",
    "key": "batch"}');
-- Missing secrets: nothing happens, the application stays pending.
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 4, 'digest', encode(sha256('new'), 'hex'),
    'prefix', 'sk-tg-NeW1', 'last4', 'new1'));
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 4, 'digest', encode(sha256('new'), 'hex'),
    'prefix', 'sk-tg-NeW1', 'last4', 'new1', 'secret_ciphertext', :'cipher',
    'secret_key_id', 'NOTHEX!!'));
-- A digest that collides with an existing key: the whole approval rolls
-- back.
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 4, 'digest', encode(sha256('kb'), 'hex'),
    'prefix', 'sk-tg-NeW1', 'last4', 'new1', 'secret_ciphertext', :'cipher',
    'secret_key_id', 'a1b2c3d4'));
SELECT status, secret_ciphertext IS NULL AS no_secret, result
  FROM applications WHERE application_id = 4;
SELECT count(*) AS keys FROM api_keys;
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 4, 'comment', 'go', 'digest',
    encode(sha256('new'), 'hex'), 'prefix', 'sk-tg-NeW1', 'last4', 'new1',
    'secret_ciphertext', :'cipher', 'secret_key_id', 'a1b2c3d4'));
SELECT key_id, user_id, name, models, rpm, prefix, last4, expires_at
  FROM api_keys WHERE digest = sha256('new');
-- An admin reading it does not consume it.
SELECT r ? 'secret_ciphertext', r -> 'secret_pending'
  FROM tg_api.applications_get(:'root', '{"application_id": 4}') AS r;
-- Another user cannot.
SELECT tg_api.applications_get(:'eve', '{"application_id": 4}');
-- The applicant gets it once.
SELECT r ->> 'secret_ciphertext' = :'cipher', r ->> 'secret_key_id',
       r -> 'secret_pending'
  FROM tg_api.applications_get(:'bob', '{"application_id": 4}') AS r;
SELECT r ? 'secret_ciphertext', r -> 'secret_pending'
  FROM tg_api.applications_get(:'bob', '{"application_id": 4}') AS r;
SELECT secret_ciphertext IS NULL AND secret_key_id IS NULL AS cleared
  FROM applications WHERE application_id = 4;

-- Rejection records the comment and changes nothing else.
SELECT tg_api.applications_create(:'eve', '{"kind": "quota_increase",
    "quota": {"cost_day_usd": "1000"}}') ->> 'application_id';
SELECT r ->> 'status', r ->> 'comment', r -> 'result', r ->> 'decided_by'
  FROM tg_api.applications_reject(:'root', '{"application_id": 5,
       "comment": "no"}') AS r;
SELECT cost_day_usd FROM users WHERE user_id = 3;
SELECT tg_api.applications_approve(:'root', '{"application_id": 5}');

-- A change that can no longer apply is a conflict, and nothing changes.
SELECT tg_api.applications_create(:'bob', jsonb_build_object(
    'kind', 'model_access', 'key_id', 1,
    'models', to_jsonb(ARRAY(SELECT 'm' || i FROM generate_series(1, 15) i))))
       ->> 'application_id';
SELECT tg_api.applications_approve(:'root', '{"application_id": 6}');
SELECT status FROM applications WHERE application_id = 6;
SELECT tg_api.applications_create(:'bob', '{"kind": "model_access",
    "key_id": 1, "models": ["gpt-5"]}') ->> 'application_id';
SELECT tg_api.keys_delete(:'root', '{"key_id": 1}') ->> 'deleted';
SELECT tg_api.applications_approve(:'root', '{"application_id": 7}');
-- Config-file users and keys cannot be changed by applications either.
INSERT INTO api_keys (user_id, digest, prefix, last4, managed_by)
VALUES (2, sha256('fk'), 'sk-tg-File', 'file', 'file');
SELECT tg_api.applications_create(:'bob', jsonb_build_object(
    'kind', 'model_access', 'key_id',
    (SELECT key_id FROM api_keys WHERE managed_by = 'file'),
    'models', jsonb_build_array('x')));

-- At most 20 pending applications per user.
SELECT count(tg_api.applications_create(:'eve', '{"kind": "new_key"}'))
  FROM generate_series(1, 20);
SELECT tg_api.applications_create(:'eve', '{"kind": "new_key"}');

-- Lists: filters and pagination.
SELECT jsonb_path_query_array(r, '$.items[*].application_id'), r -> 'next_cursor'
  FROM tg_api.applications_list(:'root', '{"status": "approved"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].application_id')
  FROM tg_api.applications_list(:'root', '{"kind": "quota_increase"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].application_id')
  FROM tg_api.applications_list(:'root', '{"user_id": 2}') AS r;
SELECT jsonb_array_length(r -> 'items'), r -> 'next_cursor'
  FROM tg_api.applications_list(:'root', '{"limit": 10}') AS r;
SELECT jsonb_array_length(r -> 'items'), r -> 'next_cursor'
  FROM tg_api.applications_list(:'root', '{"limit": 10, "cursor": 20}') AS r;
SELECT tg_api.applications_list(:'root', '{"status": "open"}');

-- Audit: the decision and the change it applied, one row each; the
-- sealed key never appears.
SELECT action, target_type, target_id, actor_name FROM audit_log
 WHERE action NOT IN ('user.create') AND target_id <= 7
   AND target_type IN ('application', 'key', 'user')
 ORDER BY audit_id;
SELECT count(*) AS audit_rows_with_secrets FROM audit_log
 WHERE concat(before::text, after::text) ~ ('(ciphertext|' || :'cipher' || ')');
