-- NOTIFY tollgate '<table>:<I|U|D>:<id>' for every API change that admin
-- must republish, and nothing for logins, sessions, audit or bookkeeping.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'
LISTEN tollgate;

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob"}') ->> 'user_id';
SELECT tg_api.users_update(:'root', '{"user_id": 2, "tokens_day": 5}')
       ->> 'tokens_day';
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "active"}')
       ->> 'status';
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 2,
    'digest', encode(sha256('k1'), 'hex'), 'prefix', 'sk-tg-Aaaa',
    'last4', 'aaaa', 'models', jsonb_build_array('a'))) ->> 'key_id';
SELECT tg_api.keys_set_status(:'bob', '{"key_id": 1, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.keys_set_status(:'root', '{"key_id": 1, "status": "active"}')
       ->> 'status';
SELECT tg_api.keys_rotate(:'bob', jsonb_build_object('key_id', 1,
    'digest', encode(sha256('k1b'), 'hex'), 'prefix', 'sk-tg-Bbbb',
    'last4', 'bbbb')) ->> 'prefix';
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "rpm": 5}') ->> 'rpm';
-- A failed call changes nothing and notifies nobody.
SELECT tg_api.keys_update(:'root', '{"key_id": 1, "rpm": -5}');

-- Approvals notify for the change they apply.
SELECT tg_api.applications_create(:'bob', '{"kind": "model_access",
    "key_id": 1, "models": ["b"]}') ->> 'status';
SELECT tg_api.applications_approve(:'root', '{"application_id": 1}')
       ->> 'status';
SELECT tg_api.applications_create(:'bob', '{"kind": "quota_increase",
    "quota": {"tokens_day": 50}}') ->> 'status';
SELECT tg_api.applications_approve(:'root', '{"application_id": 2}')
       ->> 'status';
SELECT tg_api.applications_create(:'bob', '{"kind": "new_key"}')
       ->> 'status';
SELECT tg_api.applications_approve(:'root', jsonb_build_object(
    'application_id', 3, 'digest', encode(sha256('k2'), 'hex'),
    'prefix', 'sk-tg-Cccc', 'last4', 'cccc',
    'secret_ciphertext', repeat('01', 40), 'secret_key_id', '01234567'))
       ->> 'status';
SELECT tg_api.applications_get(:'bob', '{"application_id": 3}') ->> 'status';
SELECT tg_api.applications_create(:'bob', '{"kind": "quota_increase",
    "quota": {"tokens_day": 500}}') ->> 'status';
SELECT tg_api.applications_reject(:'root', '{"application_id": 4}')
       ->> 'status';

-- Groups and endpoints.
SELECT tg_api.groups_create(:'root', '{"name": "g"}') ->> 'group_id';
SELECT tg_api.groups_update(:'root', '{"group_id": 2, "sticky": false}')
       ->> 'sticky';
SELECT tg_api.endpoints_create(:'root', jsonb_build_object('name', 'e',
    'group', 'g', 'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', repeat('00', 40), 'credential_key_id',
    '00000000')) ->> 'endpoint_id';
SELECT tg_api.endpoints_update(:'root', '{"endpoint_id": 1, "weight": 3}')
       ->> 'weight';
SELECT tg_api.endpoints_set_status(:'root', '{"endpoint_id": 1,
    "status": "disabled"}') ->> 'status';
SELECT tg_api.endpoints_delete(:'root', '{"endpoint_id": 1}') ->> 'deleted';
SELECT tg_api.groups_delete(:'root', '{"group_id": 2}') ->> 'deleted';

-- Logins, sessions, codes, tokens and lockouts are not published.
SELECT tg_api.auth_login_result('{"role": null}', '{"user_id": 2, "ok": false}')
       ->> 'failures';
SELECT tg_api.session_create('{"role": null}', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('s'), 'hex'), 'ttl_seconds', 60))
       ->> 'kind';
SELECT tg_api.session_lookup('{"role": null}', jsonb_build_object(
    'digest', encode(sha256('s'), 'hex'))) ->> 'username';
SELECT tg_api.code_create('{"role": null}', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('2:123456'), 'hex')))
       ->> 'username';
SELECT tg_api.code_verify('{"role": null}', jsonb_build_object(
    'user_id', 2, 'digest', encode(sha256('2:123456'), 'hex'))) ->> 'ok';
SELECT tg_api.tokens_create(:'root', jsonb_build_object('name', 't',
    'digest', encode(sha256('t'), 'hex'))) ->> 'name';
SELECT tg_api.session_revoke(:'bob', jsonb_build_object(
    'digest', encode(sha256('s'), 'hex'))) ->> 'revoked';
-- Nor is the last use of a key.
UPDATE api_keys SET last_used_at = now() WHERE key_id = 1;

-- Deleting a user deletes their keys: one notification each.
SELECT tg_api.users_delete(:'root', '{"user_id": 2}') ->> 'deleted';
SELECT 'done';
