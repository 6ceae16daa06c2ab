-- Login by password and by code, sessions, lockouts, automation tokens.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set anon '{"actor": null, "role": null, "addr": "192.0.2.1", "host": "h1"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h1"}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin",
    "password_hash": "scrypt$15$8$1$c2FsdA==$aGFzaA=="}') ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "Bob",
    "email": "bob@example.com"}') ->> 'user_id';

-- auth_user finds the user whatever the case, with the hash for the
-- caller to verify; unknown names are 401.
SELECT tg_api.auth_user(:'anon', '{"username": "ROOT"}');
SELECT tg_api.auth_user(:'anon', '{"username": "bob"}') ->> 'password_hash';
SELECT tg_api.auth_user(:'anon', '{"username": "nobody"}');
SELECT tg_api.auth_user(:'anon', '{"username": "root'' OR ''1''=''1"}');

-- Five wrong passwords in a row lock password login for 15 minutes.
SELECT tg_api.auth_login_result(:'anon', '{"user_id": 1, "ok": false}');
SELECT tg_api.auth_login_result(:'anon', '{"user_id": 1, "ok": true}');
SELECT tg_api.auth_login_result(:'anon', '{"user_id": 1, "ok": false}')
       - 'locked_until'
  FROM generate_series(1, 5);
SELECT (tg_api.auth_user(:'anon', '{"username": "root"}')
        ->> 'locked_until')::timestamptz - now()
       BETWEEN interval '14 minutes' AND interval '15 minutes' AS locked;
SELECT tg_api.auth_login_result(:'anon', '{"user_id": 99, "ok": false}');
SELECT tg_api.auth_login_result(:'anon', '{"user_id": 1}');

-- Sessions.
SELECT r ->> 'session_id', r ->> 'kind', r #>> '{user,username}',
       (r ->> 'expires_at')::timestamptz - now() > interval '11 hours'
  FROM tg_api.session_create(:'anon', jsonb_build_object('user_id', 1,
       'digest', encode(sha256('tgs_root'), 'hex'),
       'ttl_seconds', 43200)) AS r;
SELECT tg_api.session_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('tgs_bob'), 'hex'))) ;
SELECT tg_api.session_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('tgs_bob'), 'hex'), 'ttl_seconds', 3600))
       ->> 'session_id';
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_bob'), 'hex')));
SELECT last_used_at IS NOT NULL AS touched FROM sessions WHERE session_id = 2;
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_nobody'), 'hex')));
SELECT tg_api.session_lookup(:'anon', '{"digest": "zz"}');
-- A disabled user's sessions stop working; enabled again, they work.
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "disabled"}')
       ->> 'status';
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_bob'), 'hex')));
SELECT tg_api.session_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('tgs_bob2'), 'hex'), 'ttl_seconds', 3600));
SELECT tg_api.users_set_status(:'root', '{"user_id": 2, "status": "active"}')
       ->> 'status';
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_bob'), 'hex'))) ->> 'username';
-- Expired sessions are refused.
UPDATE sessions SET expires_at = now() - interval '1 second'
 WHERE session_id = 2;
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_bob'), 'hex')));
-- Logout.
SELECT tg_api.session_revoke(:'root', jsonb_build_object(
       'digest', encode(sha256('tgs_root'), 'hex')));
SELECT tg_api.session_revoke(:'root', jsonb_build_object(
       'digest', encode(sha256('tgs_root'), 'hex')));
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgs_root'), 'hex')));

-- Codes: digests only; at most 3 per user in 15 minutes.
SELECT r ->> 'code_id', r ->> 'username', r ->> 'email',
       (r ->> 'expires_at')::timestamptz - now() <= interval '5 minutes'
  FROM tg_api.code_create(:'anon', jsonb_build_object('username', 'BOB',
       'digest', encode(sha256('2:111111'), 'hex'))) AS r;
SELECT tg_api.code_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:222222'), 'hex'))) ->> 'code_id';
SELECT tg_api.code_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:333333'), 'hex'))) ->> 'code_id';
SELECT tg_api.code_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:444444'), 'hex')));
SELECT tg_api.code_create(:'anon', jsonb_build_object('username', 'ghost',
       'digest', encode(sha256('x'), 'hex')));
-- A wrong guess counts against every live code; the right one logs in
-- once.
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:000000'), 'hex')));
SELECT code_id, attempts FROM login_codes ORDER BY code_id;
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:222222'), 'hex')));
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:222222'), 'hex')));
-- An expired code is refused.
UPDATE login_codes SET expires_at = now() - interval '1 second'
 WHERE code_id = 3;
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:333333'), 'hex'))) ->> 'ok';
-- Five wrong guesses burn a code even when the right one follows.
UPDATE login_codes SET expires_at = now() + interval '5 minutes',
       attempts = 0, used_at = NULL, created_at = now() - interval '1 hour';
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
           'digest', encode(sha256('2:999999'), 'hex'))) ->> 'error'
  FROM generate_series(1, 5);
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:111111'), 'hex'))) ->> 'ok';
-- Ten wrong codes in a row lock code login for 15 minutes (429), and
-- no new code is sent meanwhile.
SELECT code_failures FROM login_lockouts WHERE user_id = 2;
SELECT tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
           'digest', encode(sha256('2:999999'), 'hex'))) - 'message'
  FROM generate_series(1, 4);
SELECT code_failures, code_locked_until > now() + interval '14 minutes'
  FROM login_lockouts WHERE user_id = 2;
SELECT r ->> 'ok', r ->> 'error', (r ->> 'retry_after')::int > 800
  FROM tg_api.code_verify(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:111111'), 'hex'))) AS r;
SELECT tg_api.code_create(:'anon', jsonb_build_object('user_id', 2,
       'digest', encode(sha256('2:555555'), 'hex')));
SELECT tg_api.auth_user(:'anon', '{"username": "bob"}') ->> 'code_locked_until'
       IS NOT NULL AS reported;
-- At most 10 codes per address in 15 minutes, whoever they are for.
SELECT count(tg_api.code_create(
           '{"actor": null, "role": null, "addr": "198.51.100.7"}',
           jsonb_build_object('username', 'u' || i, 'digest',
               encode(sha256(convert_to('c' || i, 'UTF8')), 'hex'))))
  FROM generate_series(1, 10) AS i,
       LATERAL tg_api.users_create(:'root',
           jsonb_build_object('username', 'u' || i)) AS u;
SELECT tg_api.users_create(:'root', '{"username": "u11"}') ->> 'username';
SELECT tg_api.code_create('{"actor": null, "role": null,
    "addr": "198.51.100.7"}', jsonb_build_object('username', 'u11',
    'digest', encode(sha256('c11'), 'hex')));
SELECT tg_api.code_create('{"actor": null, "role": null,
    "addr": "198.51.100.8"}', jsonb_build_object('username', 'u11',
    'digest', encode(sha256('c11'), 'hex'))) ->> 'username';

-- Automation tokens: admins only; listed without secrets; deleted = revoked.
SELECT tg_api.tokens_create(:'bob', jsonb_build_object('name', 'ci',
       'digest', encode(sha256('tgt_bob'), 'hex')));
SELECT tg_api.tokens_create(:'root', jsonb_build_object('name', 'ci',
       'digest', encode(sha256('tgt_ci'), 'hex')));
SELECT tg_api.tokens_create(:'root', jsonb_build_object('name', 'nightly',
       'digest', encode(sha256('tgt_nightly'), 'hex'),
       'ttl_seconds', 86400)) ->> 'token_id';
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgt_ci'), 'hex')));
SELECT jsonb_path_query_array(r, '$.items[*].name'), r -> 'next_cursor'
  FROM tg_api.tokens_list(:'root', '{}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].name'), r -> 'next_cursor'
  FROM tg_api.tokens_list(:'root', '{"limit": 1}') AS r;
SELECT tg_api.tokens_list(:'bob', '{}');
SELECT tg_api.tokens_delete(:'root', jsonb_build_object('token_id', 4));
SELECT tg_api.tokens_delete(:'root', jsonb_build_object('token_id', 4));
SELECT tg_api.tokens_delete(:'root', jsonb_build_object('token_id', 2));
SELECT tg_api.session_lookup(:'anon', jsonb_build_object(
       'digest', encode(sha256('tgt_ci'), 'hex')));
SELECT jsonb_path_query_array(r, '$.items[*].name')
  FROM tg_api.tokens_list(:'root', '{}') AS r;

-- Housekeeping.
UPDATE login_codes SET created_at = now() - interval '2 days'
 WHERE code_id <= 3;
UPDATE sessions SET revoked_at = now() - interval '8 days'
 WHERE session_id = 1;
SELECT tg_api.auth_purge(:'bob', '{}');
SELECT tg_api.auth_purge(:'sys', '{}');

SELECT action, target_type, target_id, actor_user_id, actor_name
  FROM audit_log WHERE action NOT IN ('user.create') ORDER BY audit_id;
SELECT count(*) AS audit_rows_with_secrets FROM audit_log
 WHERE concat(before::text, after::text)
       ~ '(scrypt|password_hash|"digest"|ciphertext|74677[0-9a-f]{8})';
