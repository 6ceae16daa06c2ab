-- tg_api.users_*: happy paths, permissions, config-file rows, last admin,
-- filters and keyset pagination.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system", "addr": "127.0.0.1", "host": "h1"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'
\set anon '{"actor": null, "role": null}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin",
    "password_hash": "scrypt$15$8$1$c2FsdA==$aGFzaA=="}');
SELECT tg_api.users_create(:'root', '{"username": "bob",
    "email": "bob@example.com", "group": "default", "tokens_day": 1000,
    "tokens_month": "30000", "cost_day_usd": 1.25,
    "cost_month_usd": "20.000000001"}');

-- Names are unique whatever their case.
SELECT tg_api.users_create(:'root', '{"username": "BOB"}');
-- Field errors name the field.
SELECT tg_api.users_create(:'root', '{}');
SELECT tg_api.users_create(:'root', '{"username": 7}');
SELECT tg_api.users_create(:'root', '{"username": "x", "role": "god"}');
SELECT tg_api.users_create(:'root', '{"username": "x", "group": "nope"}');
SELECT tg_api.users_create(:'root', '{"username": "x", "tokens_day": -1}');
SELECT tg_api.users_create(:'root', '{"username": "x", "tokens_day": 1.5}');
SELECT tg_api.users_create(:'root', '{"username": "x", "cost_day_usd": "1e3"}');
SELECT tg_api.users_create(:'root',
    '{"username": "x", "cost_day_usd": "0.0000000001"}');
SELECT tg_api.users_create(:'root', '{"username": "x\u0001y"}');
SELECT tg_api.users_create(:'root', '{"username": "x", "email": "nobody"}');
SELECT tg_api.users_create(:'root', '{"username": "x",
    "password_hash": "hunter2"}');
-- Without a role in the context nothing happens; users may not create.
SELECT tg_api.users_create(:'anon', '{"username": "x"}');
SELECT tg_api.users_create(:'bob', '{"username": "x"}');

-- Get: admins see anyone, a user only themselves.
SELECT tg_api.users_get(:'root', '{"user_id": 2}');
SELECT tg_api.users_get(:'bob', '{"user_id": "2"}') ->> 'username';
SELECT tg_api.users_get(:'bob', '{"user_id": 1}');
SELECT tg_api.users_get(:'root', '{"user_id": 99}');
SELECT tg_api.users_get(:'root', '{"user_id": "1; DROP TABLE users"}');

-- Update: only the fields given; null clears.
SELECT tg_api.users_update(:'root', '{"user_id": 2, "email": null,
    "tokens_day": null, "cost_month_usd": "7.5", "group": "default"}');
-- A user changes their own email and password, nothing else.
SELECT tg_api.users_update(:'bob', '{"user_id": 2,
    "email": "b@example.org",
    "password_hash": "scrypt$15$8$1$bmV3$bmV3"}') ->> 'has_password';
SELECT tg_api.users_update(:'bob', '{"user_id": 2, "role": "admin"}');
SELECT tg_api.users_update(:'bob', '{"user_id": 2, "tokens_month": 1}');
SELECT tg_api.users_update(:'bob', '{"user_id": 1, "email": "x@y.z"}');
SELECT tg_api.users_update(:'root', '{"user_id": 2, "username": "ROOT"}');
SELECT tg_api.users_update(:'root', '{"user_id": 2, "username": "Bobby"}')
       ->> 'username';

-- The last active admin stays one.
SELECT tg_api.users_update(:'root', '{"user_id": 1, "role": "user"}');
SELECT tg_api.users_set_status(:'root', '{"user_id": 1, "status": "disabled"}');
SELECT tg_api.users_delete(:'root', '{"user_id": 1}');

-- Enable / disable.
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "active"}')
       ->> 'status';
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "gone"}');
SELECT tg_api.users_set_status(:'bob', '{"user_id": 2, "status": "active"}');

-- Rows the config file declares are refused, naming the setting.
INSERT INTO users (username, managed_by) VALUES ('filed', 'file');
SELECT tg_api.users_update(:'root', '{"user_id": 3, "email": "f@example.com"}');
SELECT tg_api.users_set_status(:'root', '{"user_id": 3, "status": "disabled"}');
SELECT tg_api.users_delete(:'root', '{"user_id": 3}');
SELECT tg_api.users_get(:'root', '{"user_id": 3}') ->> 'managed_by';

-- List with filters and keyset pagination.
SELECT tg_api.users_create(:'root', jsonb_build_object('username', 'user' || i,
           'email', 'u' || i || '@example.com',
           'status', CASE WHEN i % 2 = 0 THEN 'disabled' ELSE 'active' END))
       ->> 'user_id'
  FROM generate_series(1, 7) AS i;
SELECT tg_api.users_list(:'bob', '{}');
SELECT tg_api.users_list(:'root', '{"limit": 0}');
SELECT tg_api.users_list(:'root', '{"limit": 501}');
SELECT tg_api.users_list(:'root', '{"cursor": "abc"}');
SELECT jsonb_path_query_array(r, '$.items[*].username'), r -> 'next_cursor'
  FROM tg_api.users_list(:'root', '{"limit": 4}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username'), r -> 'next_cursor'
  FROM tg_api.users_list(:'root', '{"limit": 4, "cursor": "5"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username'), r -> 'next_cursor'
  FROM tg_api.users_list(:'root', '{"limit": 4, "cursor": "9"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username')
  FROM tg_api.users_list(:'root', '{"status": "disabled"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username')
  FROM tg_api.users_list(:'root', '{"role": "admin"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username')
  FROM tg_api.users_list(:'root', '{"q": "U3@EXAMPLE"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username')
  FROM tg_api.users_list(:'root', '{"q": "%"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].username')
  FROM tg_api.users_list(:'root', '{"q": "_"}') AS r;

-- Delete: the user's keys and sessions go too.
INSERT INTO api_keys (user_id, digest, prefix, last4)
VALUES (4, sha256('k4'), 'sk-tg-DDDD', 'dddd');
SELECT tg_api.users_delete(:'bob', '{"user_id": 4}');
SELECT tg_api.users_delete(:'root', '{"user_id": 4}');
SELECT count(*) FROM api_keys WHERE user_id = 4;
SELECT tg_api.users_delete(:'root', '{"user_id": 4}');
-- Nobody deletes themselves.
SELECT tg_api.users_create(:'root', '{"username": "second", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_delete(:'root', '{"user_id": 1}');
SELECT tg_api.users_update(:'root', '{"user_id": 1, "role": "user"}') ->> 'role';

-- One audit row per change, with the actor and without the hash.
SELECT action, target_type, target_id, actor_user_id, actor_name, client_addr,
       host
  FROM audit_log ORDER BY audit_id;
SELECT count(*) AS rows_with_hash FROM audit_log
 WHERE before::text LIKE '%scrypt%' OR after::text LIKE '%scrypt%';
