-- Hostile and unusual strings go in as values and come back byte for
-- byte: SQL fragments, quotes, backslashes, LIKE wildcards, JSON
-- metacharacters, non-ASCII letters, emoji, combining marks, right-to-left
-- text, zero-width characters.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';

CREATE TEMP TABLE hostile (n serial, s text);
INSERT INTO hostile (s) VALUES
    ('Robert''); DROP TABLE users;--'),
    ('x'' OR ''1''=''1'),
    ('"; DELETE FROM api_keys; --'),
    (E'back\\slash \\x00 \\u0000'),
    ('100% _match_ [a-z]*'),
    ('$$ $tag$ /* comment */ -- dash'),
    ('{"json": ["in", "a", "string"]}'),
    ('Zoë Ångström Łukasz Ñandú'),
    ('Здравствуйте 日本語 中文'),
    ('🦜🚀 family: 👨‍👩‍👧'),
    (E'e\u0301 (combining accent) vs \u00e9'),
    ('עברית العربية'),
    (E'zero\u200bwidth\u200djoiner\ufeff'),
    (repeat('🦜', 64));

-- As usernames: created, read back and found literally.
SELECT n, (tg_api.users_create(:'root', jsonb_build_object('username', s))
           ->> 'username') = s AS same
  FROM hostile ORDER BY n;
SELECT count(*) AS users_table_intact FROM users;
SELECT tg_api.users_get(:'root', jsonb_build_object('user_id', 1 + n))
       ->> 'username'
  FROM hostile WHERE n IN (1, 4, 10, 12) ORDER BY n;
SELECT h.n, u.username = h.s AS same_in_table
  FROM hostile h JOIN users u ON u.username = h.s ORDER BY h.n;
SELECT h.n, (tg_api.auth_user('{"role": null}',
                              jsonb_build_object('username', h.s))
             ->> 'username') = h.s AS login_finds_it
  FROM hostile h ORDER BY h.n;
-- Substring search treats wildcards and quotes as plain characters.
SELECT jsonb_path_query_array(r, '$.items[*].user_id')
  FROM tg_api.users_list(:'root', '{"q": "% _match_ ["}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].user_id')
  FROM tg_api.users_list(:'root', '{"q": "'' OR ''1''=''1"}') AS r;
SELECT jsonb_path_query_array(r, '$.items[*].user_id')
  FROM tg_api.users_list(:'root', '{"q": "👨‍👩‍👧"}') AS r;
-- 65 characters is one too many, however few or many bytes they take.
SELECT tg_api.users_create(:'root', jsonb_build_object('username',
       repeat('🦜', 65)));
-- NUL cannot be stored in PostgreSQL text; the JSON is refused first.
SELECT tg_api.users_create(:'root', '{"username": "nul\u0000byte"}');

-- As key names, application reasons, comments, group descriptions and
-- model patterns.
SELECT tg_api.keys_create(:'root', jsonb_build_object('user_id', 1 + n,
           'name', s, 'digest', encode(sha256(convert_to(s, 'UTF8')), 'hex'),
           'prefix', 'sk-tg-' || lpad(n::text, 4, '0'), 'last4', 'abcd',
           'models', jsonb_build_array(left(s, 64))))
       ->> 'name' = s AS same
  FROM hostile ORDER BY n;
SELECT h.n, k.name = h.s AND k.models[1] = left(h.s, 64) AS same_in_table
  FROM hostile h JOIN api_keys k ON k.user_id = 1 + h.n ORDER BY h.n;
SELECT h.n, (tg_api.applications_create(
           jsonb_build_object('actor', 1 + h.n, 'role', 'user'),
           jsonb_build_object('kind', 'model_access', 'key_id', k.key_id,
                              'models', jsonb_build_array(left(h.s, 64)),
                              'reason', h.s)) ->> 'reason') = h.s AS same
  FROM hostile h JOIN api_keys k ON k.user_id = 1 + h.n ORDER BY h.n;
SELECT h.n, (tg_api.applications_reject(:'root',
           jsonb_build_object('application_id', a.application_id,
                              'comment', h.s)) ->> 'comment') = h.s AS same
  FROM hostile h JOIN applications a ON a.user_id = 1 + h.n ORDER BY h.n;
SELECT h.n, (tg_api.groups_create(:'root', jsonb_build_object(
           'name', 'g' || h.n, 'description', h.s)) ->> 'description') = h.s
  FROM hostile h ORDER BY h.n;
-- Names of groups and endpoints are restricted to [A-Za-z0-9_.-].
SELECT tg_api.groups_create(:'root', jsonb_build_object('name', s))
  FROM hostile WHERE n = 1;
SELECT tg_api.endpoints_create(:'root', jsonb_build_object('name', 'e',
    'url', 'https://a.example/o''brien;--', 'style', 'openai',
    'credential_ciphertext', repeat('00', 40), 'credential_key_id',
    '00000000')) ->> 'url';
SELECT tg_api.endpoints_create(:'root', jsonb_build_object('name', 'e2',
    'url', 'https://a.example/ space', 'style', 'openai',
    'credential_ciphertext', repeat('00', 40), 'credential_key_id',
    '00000000'));

-- The audit log holds them literally too.
SELECT h.n, l.after ->> 'username' = h.s AS same_in_audit
  FROM hostile h JOIN audit_log l
    ON l.action = 'user.create' AND l.target_id = 1 + h.n ORDER BY h.n;
-- Every table is still there.
SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_tables
 WHERE schemaname = 'public';
