-- tg_api.audit_list: admins only, newest first, filters, keyset
-- pagination; every row's before/after without secrets.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system", "addr": "127.0.0.1", "host": "h0"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h2"}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin",
    "password_hash": "scrypt$15$8$1$c2FsdA==$aGFzaA=="}') ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob",
    "password_hash": "scrypt$15$8$1$Ym9i$Ym9i"}') ->> 'user_id';
SELECT tg_api.users_update(:'bob', '{"user_id": 2,
    "password_hash": "scrypt$15$8$1$bmV3$bmV3"}') ->> 'has_password';
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 2,
    'digest', encode(sha256('k1'), 'hex'), 'prefix', 'sk-tg-Aaaa',
    'last4', 'aaaa')) ->> 'key_id';
SELECT tg_api.keys_rotate(:'bob', jsonb_build_object('key_id', 1,
    'digest', encode(sha256('k1b'), 'hex'), 'prefix', 'sk-tg-Bbbb',
    'last4', 'bbbb')) ->> 'prefix';
SELECT tg_api.keys_set_status(:'bob', '{"key_id": 1, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.endpoints_create(:'root', jsonb_build_object('name', 'e',
    'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', repeat('ee', 40), 'credential_key_id',
    'eeeeeeee')) ->> 'endpoint_id';
SELECT tg_api.endpoints_update(:'root', jsonb_build_object('endpoint_id', 1,
    'credential_ciphertext', repeat('ef', 40), 'credential_key_id',
    'efefefef')) ->> 'credential_key_id';
SELECT tg_api.applications_create(:'bob', '{"kind": "new_key"}') ->> 'status';
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 1, 'digest', encode(sha256('k2'), 'hex'),
    'prefix', 'sk-tg-Cccc', 'last4', 'cccc',
    'secret_ciphertext', repeat('5e', 40), 'secret_key_id', '5e5e5e5e'))
       ->> 'status';
SELECT tg_api.applications_get(:'bob', '{"application_id": 1}') ->> 'status';
SELECT tg_api.tokens_create(:'root', jsonb_build_object('name', 'ci',
    'digest', encode(sha256('tgt'), 'hex'))) ->> 'name';
SELECT tg_api.session_create('{"role": null, "addr": "192.0.2.9"}',
    jsonb_build_object('user_id', 2, 'digest', encode(sha256('tgs'), 'hex'),
    'ttl_seconds', 60)) ->> 'kind';

-- Only admins read the log.
SELECT tg_api.audit_list(:'bob', '{}');

-- Newest first.
SELECT jsonb_path_query_array(r, '$.items[*].action'), r -> 'next_cursor'
  FROM tg_api.audit_list(:'root', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id'), r -> 'next_cursor'
  FROM tg_api.audit_list(:'root', '{"limit": 5}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id'), r -> 'next_cursor'
  FROM tg_api.audit_list(:'root', '{"limit": 5, "cursor": "10"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id'), r -> 'next_cursor'
  FROM tg_api.audit_list(:'root', '{"limit": 5, "cursor": "5"}') AS r;

-- Filters.
SELECT jsonb_path_query_array(r, '$.items[*].action')
  FROM tg_api.audit_list(:'root', '{"actor": 2}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id')
  FROM tg_api.audit_list(:'root', '{"action": "key.rotate"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].action')
  FROM tg_api.audit_list(:'root', '{"target_type": "key", "target_id": 1}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].action')
  FROM tg_api.audit_list(:'root', '{"target_type": "endpoint"}') AS r;
UPDATE audit_log SET at = '2026-01-01T00:00:00Z' WHERE audit_id <= 3;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id')
  FROM tg_api.audit_list(:'root', '{"to": "2026-01-01T00:00:01Z"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id')
  FROM tg_api.audit_list(:'root', '{"from": "2026-01-01T00:00:01Z",
       "action": "user.update"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].audit_id')
  FROM tg_api.audit_list(:'root', '{"from": "2026-01-01", "to": "2026-01-01"}')
       AS r;
SELECT tg_api.audit_list(:'root', '{"from": "yesterday"}');
SELECT tg_api.audit_list(:'root', '{"from": "2026-13-45T00:00:00Z"}');
SELECT tg_api.audit_list(:'root', '{"actor": "root"}');

-- One whole entry.
SELECT jsonb_pretty(r -> 'items' -> 0)
  FROM tg_api.audit_list(:'root', '{"action": "key.rotate"}') AS r;
-- Who, from where, on which host.
SELECT audit_id, actor_user_id, actor_name, client_addr, host FROM audit_log
 ORDER BY audit_id;

-- No secret anywhere in the log: hashes, digests, ciphertexts.
SELECT count(*) AS rows_with_secrets FROM audit_log
 WHERE concat(before::text, after::text) ~ ('(scrypt|password_hash|digest|'
       || 'ciphertext|eeeeeeeeee|efefefefef|5e5e5e5e5e|'
       || encode(sha256('k1'), 'hex') || '|' || encode(sha256('k1b'), 'hex')
       || '|' || encode(sha256('tgt'), 'hex') || ')');
