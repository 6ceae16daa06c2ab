-- tg_api.keys_*: happy paths, a user reaching for another user's key,
-- what users may and may not change, rotation, config-file keys, lists.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'
\set eve '{"actor": 3, "role": "user", "addr": "10.0.0.3", "host": "h1"}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob"}') ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "eve"}') ->> 'user_id';
SELECT tg_api.groups_create(:'root', '{"name": "team-a"}') ->> 'name';

-- Create (admins only): the digest is stored, never shown.
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'name', 'laptop', 'digest', encode(sha256('key-1'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'wxyz',
    'expires_at', '2999-01-01T00:00:00Z',
    'models', jsonb_build_array('claude-*', 'gpt-4o', 'claude-*'),
    'rpm', 60, 'burst', 10, 'tpm', 100000, 'concurrency', 4,
    'group', 'team-a', 'tokens_month', 5000000, 'cost_month_usd', '100'));
SELECT digest = sha256('key-1') AS digest_stored FROM api_keys WHERE key_id = 1;
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 3, 'digest', encode(sha256('key-2'), 'hex'),
    'prefix', 'sk-tg-EvE2', 'last4', 'eeee')) ->> 'key_id';
SELECT tg_api.keys_create(:'bob', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-3'), 'hex'),
    'prefix', 'sk-tg-BoB3', 'last4', 'bbbb'));
-- Field errors.
SELECT tg_api.keys_create(:'root', '{"digest": "00"}');
SELECT tg_api.keys_create(:'root', '{"user_id": 99, "digest": "00"}');
SELECT tg_api.keys_create(:'root', '{"user_id": 2, "digest": "00",
    "prefix": "sk-tg-x", "last4": "abcd"}');
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-1'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abc'));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-1'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd'));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-9'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd', 'models', '"claude-*"'::jsonb));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-9'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd',
    'models', to_jsonb(ARRAY(SELECT 'm' || i FROM generate_series(1, 17) i))));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-9'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd', 'group', 'nope'));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-9'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd', 'expires_at', 'tomorrow'));
SELECT tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('key-9'), 'hex'),
    'prefix', 'sk-tg-AbC1', 'last4', 'abcd', 'rpm', 2147483648));

-- Read: the owner and admins; anyone else gets 404, never 403.
SELECT tg_api.keys_get(:'bob', '{"key_id": 1}') ->> 'prefix';
SELECT tg_api.keys_get(:'bob', '{"key_id": 2}');
SELECT tg_api.keys_get(:'eve', '{"key_id": 1}');
SELECT tg_api.keys_get(:'eve', '{"key_id": 42}');
SELECT tg_api.keys_get(:'root', '{"key_id": 2}') ->> 'user_id';
SELECT tg_api.keys_update(:'eve', '{"key_id": 1, "name": "mine now"}');
SELECT tg_api.keys_set_status(:'eve', '{"key_id": 1, "status": "disabled"}');
SELECT tg_api.keys_rotate(:'eve', jsonb_build_object('key_id', 1,
    'digest', encode(sha256('stolen'), 'hex'), 'prefix', 'sk-tg-Evil',
    'last4', 'evil'));
SELECT tg_api.keys_delete(:'eve', '{"key_id": 1}');
SELECT count(*) AS bobs_key_intact FROM api_keys
 WHERE key_id = 1 AND name = 'laptop' AND status = 'active'
   AND digest = sha256('key-1');

-- Lists: a user sees their own keys only, whatever they ask for.
SELECT jsonb_path_query_array(r, '$.items[*].key_id'), r -> 'next_cursor'
  FROM tg_api.keys_list(:'bob', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'bob', '{"user_id": 3}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{"user_id": "3"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{"q": "LAP"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{"q": "sk-tg-EvE"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{"group": "team-a"}') AS r;

-- A user renames, disables, rotates and deletes their own key; changing
-- its models, limits or status back to active is for admins.
SELECT tg_api.keys_update(:'bob', '{"key_id": 1, "name": "work laptop"}')
       ->> 'name';
SELECT tg_api.keys_update(:'bob', '{"key_id": 1, "models": []}');
SELECT tg_api.keys_update(:'bob', '{"key_id": 1, "rpm": 0}');
SELECT tg_api.keys_set_status(:'bob', '{"key_id": 1, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.keys_set_status(:'bob', '{"key_id": 1, "status": "active"}');
SELECT jsonb_path_query_array(r, '$.items[*].key_id')
  FROM tg_api.keys_list(:'root', '{"status": "disabled"}') AS r;
SELECT tg_api.keys_set_status(:'root', '{"key_id": 1, "status": "active"}')
       ->> 'status';
SELECT r ->> 'prefix', r ->> 'last4', r ->> 'name'
  FROM tg_api.keys_rotate(:'bob', jsonb_build_object('key_id', 1,
    'digest', encode(sha256('key-1b'), 'hex'), 'prefix', 'sk-tg-New1',
    'last4', 'new1')) AS r;
SELECT digest = sha256('key-1b') AS rotated FROM api_keys WHERE key_id = 1;

-- Admins change anything; null clears the expiry, group and quotas.
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "expires_at": null,
    "group": null, "models": ["claude-sonnet-*"], "rpm": 0, "burst": 0,
    "cost_month_usd": null, "tokens_day": 10}');
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "user_id": 99}');
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "status": "paused"}');
-- An expired key says so.
SELECT tg_api.keys_update(:'root',
    '{"key_id": 2, "expires_at": "2000-01-01T00:00:00+02:00"}')
       -> 'expired', tg_api.keys_get(:'root', '{"key_id": 2}') ->> 'expires_at'
       = '1999-12-31T22:00:00Z' AS utc;

-- Keys from the config file are refused.
INSERT INTO api_keys (user_id, digest, prefix, last4, managed_by)
VALUES (2, sha256('file-key'), 'sk-tg-File', 'file', 'file');
SELECT key_id AS file_key FROM api_keys WHERE managed_by = 'file' \gset
SELECT tg_api.keys_update(:'root', jsonb_build_object('key_id', :file_key,
    'name', 'x'));
SELECT tg_api.keys_set_status(:'root', jsonb_build_object('key_id', :file_key,
    'status', 'disabled'));
SELECT tg_api.keys_rotate(:'root', jsonb_build_object('key_id', :file_key,
    'digest', encode(sha256('f2'), 'hex'), 'prefix', 'sk-tg-F2F2',
    'last4', 'f2f2'));
SELECT tg_api.keys_delete(:'root', jsonb_build_object('key_id', :file_key));
SELECT tg_api.keys_get(:'bob', jsonb_build_object('key_id', :file_key))
       ->> 'managed_by';
-- Nor can a user who owns a config-file key be deleted.
SELECT tg_api.users_delete(:'root', '{"user_id": 2}');

-- Pagination over many keys.
SELECT count(tg_api.keys_create(:'root', jsonb_build_object(
    'user_id', 3, 'digest', encode(sha256(convert_to('many' || i, 'UTF8')), 'hex'),
    'prefix', 'sk-tg-M' || lpad(i::text, 3, '0'), 'last4', 'mmmm')))
  FROM generate_series(1, 120) AS i;
SELECT jsonb_array_length(r -> 'items'), r -> 'next_cursor'
  FROM tg_api.keys_list(:'eve', '{}') AS r;
SELECT jsonb_array_length(r -> 'items'), r -> 'next_cursor',
       r #> '{items,0,key_id}'
  FROM tg_api.keys_list(:'eve', '{"cursor": "53"}') AS r;
SELECT jsonb_array_length(r -> 'items'), r -> 'next_cursor'
  FROM tg_api.keys_list(:'eve', '{"cursor": "103", "limit": 500}') AS r;

-- Delete.
SELECT tg_api.keys_delete(:'bob', '{"key_id": 1}');
SELECT tg_api.keys_get(:'bob', '{"key_id": 1}');

SELECT action, target_id, actor_name FROM audit_log
 WHERE target_type = 'key' AND target_id < 3 ORDER BY audit_id;
SELECT count(*) AS audit_rows_with_digest FROM audit_log
 WHERE (coalesce(before, '{}') || coalesce(after, '{}')) ? 'digest'
    OR after::text LIKE '%' || encode(sha256('key-1'), 'hex') || '%';
