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
