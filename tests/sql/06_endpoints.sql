-- Endpoints and groups: CRUD, typed settings, no credential in output,
-- config-file rows, names that cannot change, groups in use.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'
\set cred '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob"}') ->> 'user_id';

-- Groups.
SELECT tg_api.groups_create(:'root', '{"name": "cheap", "strategy": "cost",
    "failure_threshold": 3, "cooldown_ms": 20000, "max_retries": 4,
    "retry_deadline_ms": 30000, "sticky": false, "sticky_ttl_ms": 600000,
    "exploration": "0.1", "description": "relays"}');
SELECT tg_api.groups_create(:'root', '{"name": "cheap"}');
SELECT tg_api.groups_create(:'root', '{"name": "no spaces"}');
SELECT tg_api.groups_create(:'root', '{"name": "g", "strategy": "random"}');
SELECT tg_api.groups_create(:'root', '{"name": "g", "exploration": 0.6}');
SELECT tg_api.groups_create(:'root', '{"name": "g", "max_retries": 17}');
SELECT tg_api.groups_create(:'root', '{"name": "g", "sticky": "yes"}');
SELECT tg_api.groups_create(:'bob', '{"name": "g"}');
SELECT tg_api.groups_get(:'bob', '{"group_id": 1}');
SELECT tg_api.groups_get(:'root', '{"group_id": 1}') ->> 'name';
SELECT tg_api.groups_get(:'root', '{"group_id": 9}');
SELECT r ->> 'strategy', r ->> 'sticky', r ->> 'exploration'
  FROM tg_api.groups_update(:'root', '{"group_id": 2, "strategy": "latency",
       "sticky": true, "exploration": 0.25}') AS r;
SELECT tg_api.groups_update(:'root', '{"group_id": 2, "name": "dear"}');
SELECT tg_api.groups_update(:'root', '{"group_id": 2, "name": "cheap",
    "max_retries": 0}') ->> 'max_retries';
SELECT jsonb_path_query_array(r, '$.items[*].name'), r -> 'next_cursor'
  FROM tg_api.groups_list(:'root', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].name'), r -> 'next_cursor'
  FROM tg_api.groups_list(:'root', '{"limit": 1}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].name')
  FROM tg_api.groups_list(:'root', '{"q": "EAP"}') AS r;

-- Endpoints.
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'relay-1', 'group', 'cheap', 'url', 'https://relay.example/api',
    'style', 'anthropic', 'credential_ciphertext', :'cred',
    'credential_key_id', '0a1b2c3d', 'weight', 5, 'priority', 'secondary',
    'models', jsonb_build_array('claude-*'),
    'model_map', jsonb_build_array(
        jsonb_build_object('from', 'claude-sonnet-4-5',
                           'to', 'anthropic/claude-sonnet-4.5')),
    'proxy', 'socks5h://proxy.example:1080', 'connect_timeout_ms', 2000,
    'first_byte_timeout_ms', 60000, 'read_timeout_ms', 30000,
    'total_timeout_ms', 600000, 'tls_verify', false,
    'health_path', '/v1/models?beta=true', 'health_interval_ms', 0,
    'health_timeout_ms', 1000, 'quota_cooldown_ms', 60000,
    'price_factor', 0.8));
SELECT credential_ciphertext = decode(:'cred', 'hex') AS sealed_stored
  FROM endpoints WHERE name = 'relay-1';
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'direct', 'url', 'http://[::1]:18080', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
-- Field errors name the API field.
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example/', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'ftp://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://u:p@a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'grpc',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'group', 'nope'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'weight', 0));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'price_factor', 1001));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'model_map', jsonb_build_array(jsonb_build_object('from', 'a'))));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'model_map', jsonb_build_array(jsonb_build_object('from', 'a', 'to', 'b'),
                                   jsonb_build_object('from', 'a', 'to', 'c'))));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'health_path', 'v1/models'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d',
    'tls_verify', 'false'));
SELECT tg_api.endpoints_create(:'root', jsonb_build_object(
    'name', 'direct', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));
SELECT tg_api.endpoints_create(:'bob', jsonb_build_object(
    'name', 'x', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', :'cred', 'credential_key_id', '0a1b2c3d'));

-- Read and list; never the credential.
SELECT tg_api.endpoints_get(:'bob', '{"endpoint_id": 1}');
SELECT tg_api.endpoints_get(:'root', '{"endpoint_id": 99}');
SELECT jsonb_path_query_array(r, '$.items[*].name'), r -> 'next_cursor'
  FROM tg_api.endpoints_list(:'root', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].name')
  FROM tg_api.endpoints_list(:'root', '{"group": "cheap"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].name')
  FROM tg_api.endpoints_list(:'root', '{"style": "openai"}') AS r;
SELECT count(*) AS outputs_with_credential
  FROM tg_api.endpoints_list(:'root', '{}') AS r
 WHERE r::text LIKE '%' || :'cred' || '%' OR r::text LIKE '%ciphertext%';
-- The credential, for the endpoint test and the publisher.
SELECT tg_api.endpoints_credential(:'root', '{"endpoint_id": 1}')
       ->> 'credential_ciphertext' = :'cred';
SELECT tg_api.endpoints_credential(:'sys', '{"endpoint_id": 2}') - 'credential_ciphertext';
SELECT tg_api.endpoints_credential(:'bob', '{"endpoint_id": 1}');

-- Update: only what is given; null goes back to inheriting.
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "proxy": null,
    "tls_verify": null, "connect_timeout_ms": null, "model_map": [],
    "models": null, "weight": 7}');
SELECT tg_api.endpoints_update(:'root', jsonb_build_object('endpoint_id', 1,
    'credential_ciphertext', repeat('ab', 40), 'credential_key_id',
    'ffff0000')) ->> 'credential_key_id';
SELECT tg_api.endpoints_update(:'root', jsonb_build_object('endpoint_id', 1,
    'credential_ciphertext', repeat('ab', 40)));
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "name": "relay-2"}');
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "name": "relay-1",
    "group": "default"}') ->> 'group';
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "group": null}');
SELECT tg_api.endpoints_set_status(:'root', '{"endpoint_id": 1,
    "status": "disabled"}') ->> 'status';
SELECT jsonb_path_query_array(r, '$.items[*].name')
  FROM tg_api.endpoints_list(:'root', '{"status": "disabled"}') AS r;
SELECT tg_api.endpoints_set_status(:'root', '{"endpoint_id": 1,
    "status": "enabled"}') ->> 'status';
SELECT tg_api.endpoints_set_status(:'root', '{"endpoint_id": 1}');

-- Config-file endpoints and groups are refused.
INSERT INTO endpoints (name, url, style, managed_by)
VALUES ('from-file', 'https://api.anthropic.com', 'anthropic', 'file');
INSERT INTO endpoint_groups (name, managed_by) VALUES ('filed', 'file');
SELECT endpoint_id AS file_ep FROM endpoints WHERE managed_by = 'file' \gset
SELECT group_id AS file_group FROM endpoint_groups WHERE managed_by = 'file' \gset
SELECT tg_api.endpoints_update(:'root', jsonb_build_object(
    'endpoint_id', :file_ep, 'weight', 2));
SELECT tg_api.endpoints_set_status(:'root', jsonb_build_object(
    'endpoint_id', :file_ep, 'status', 'disabled'));
SELECT tg_api.endpoints_delete(:'root', jsonb_build_object(
    'endpoint_id', :file_ep));
SELECT tg_api.endpoints_get(:'root', jsonb_build_object(
    'endpoint_id', :file_ep)) - 'created_at' - 'updated_at' - 'endpoint_id';
SELECT tg_api.endpoints_credential(:'root', jsonb_build_object(
    'endpoint_id', :file_ep)) - 'endpoint_id';
SELECT tg_api.groups_update(:'root', jsonb_build_object(
    'group_id', :file_group, 'sticky', false));
SELECT tg_api.groups_delete(:'root', jsonb_build_object(
    'group_id', :file_group));

-- A group in use, or the default group, cannot be deleted.
SELECT tg_api.groups_delete(:'root', '{"group_id": 1}');
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "group": "cheap"}')
       ->> 'group';
SELECT tg_api.groups_delete(:'root', '{"group_id": 2}');
SELECT tg_api.endpoints_delete(:'root', '{"endpoint_id": 1}');
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 2,
    'digest', encode(sha256('k'), 'hex'), 'prefix', 'sk-tg-Kkkk',
    'last4', 'kkkk', 'group', 'cheap')) ->> 'group';
SELECT tg_api.groups_delete(:'root', '{"group_id": 2}');
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "group": null}') ->> 'group';
SELECT tg_api.users_update(:'root', '{"user_id": 2, "group": "cheap"}')
       ->> 'group';
SELECT tg_api.groups_delete(:'root', '{"group_id": 2}');
SELECT tg_api.users_update(:'root', '{"user_id": 2, "group": "default"}')
       ->> 'group';
SELECT tg_api.groups_delete(:'bob', '{"group_id": 2}');
SELECT tg_api.groups_delete(:'root', '{"group_id": 2}');
SELECT tg_api.endpoints_delete(:'root', '{"endpoint_id": 1}');

SELECT action, target_type, target_id FROM audit_log
 WHERE target_type IN ('endpoint', 'group') ORDER BY audit_id;
SELECT count(*) AS audit_rows_with_credential FROM audit_log
 WHERE concat(before::text, after::text) ~ ('(ciphertext|' || :'cred' || '|abababab)');
