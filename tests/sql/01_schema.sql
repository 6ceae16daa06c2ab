-- Schema: constraints, case-insensitive usernames, comments, NOTIFY.
\pset tuples_only on
\pset format unaligned

-- The default group exists from the start.
SELECT group_id, name, strategy, managed_by FROM endpoint_groups;

-- Every table and column has a comment.
SELECT c.relname || '.' || a.attname AS undocumented
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
   AND NOT a.attisdropped AND c.relname <> 'schema_migrations'
   AND col_description(c.oid, a.attnum) IS NULL;
SELECT c.relname AS undocumented_table
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r'
   AND c.relname <> 'schema_migrations'
   AND obj_description(c.oid, 'pg_class') IS NULL;

-- The migration is recorded.
SELECT version, name FROM schema_migrations;

-- Usernames are unique regardless of case.
INSERT INTO users (username) VALUES ('Alice');
INSERT INTO users (username) VALUES ('ALICE');
-- Enums and ranges.
INSERT INTO users (username, role) VALUES ('x', 'root');
INSERT INTO users (username, status) VALUES ('x', 'gone');
INSERT INTO users (username, tokens_day) VALUES ('x', -1);
INSERT INTO users (username, cost_day_usd) VALUES ('x', -0.000000001);
INSERT INTO users (username) VALUES ('');
INSERT INTO users (username) VALUES (E'tab\there');
INSERT INTO users (username, password_hash) VALUES ('x', 'plaintext');
INSERT INTO users (username, managed_by) VALUES ('x', 'ldap');
-- Money keeps nine decimals.
INSERT INTO users (username, cost_month_usd) VALUES ('m', 0.123456789);
SELECT cost_month_usd FROM users WHERE username = 'm';
INSERT INTO users (username, cost_month_usd) VALUES ('big', 12345678901.5);
SELECT cost_month_usd FROM users WHERE username = 'big';

-- Keys: digest size, models, owner.
INSERT INTO api_keys (user_id, digest, prefix, last4)
VALUES (1, '\x00', 'sk-tg-AAAA', 'aaaa');
INSERT INTO api_keys (user_id, digest, prefix, last4, models)
VALUES (1, sha256('a'), 'sk-tg-AAAA', 'aaaa', '{""}');
INSERT INTO api_keys (user_id, digest, prefix, last4, models)
VALUES (1, sha256('a'), 'sk-tg-AAAA', 'aaaa',
        '{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17}');
INSERT INTO api_keys (user_id, digest, prefix, last4, models)
VALUES (1, sha256('a'), 'sk-tg-AAAA', 'aaaa', '{{a},{b}}');
INSERT INTO api_keys (digest, prefix, last4)
VALUES (sha256('a'), 'sk-tg-AAAA', 'aaaa');
INSERT INTO api_keys (digest, prefix, last4, managed_by)
VALUES (sha256('a'), 'sk-tg-AAAA', 'aaaa', 'file');
INSERT INTO api_keys (user_id, digest, prefix, last4)
VALUES (1, sha256('a'), 'sk-tg-BBBB', 'bbbb');
INSERT INTO api_keys (user_id, digest, prefix, last4, rpm)
VALUES (1, sha256('b'), 'sk-tg-AAAA', 'aaa', -1);

-- Endpoints: url shape, credential pair, model map lengths.
INSERT INTO endpoints (name, url, style, credential_ciphertext,
                       credential_key_id)
VALUES ('e1', 'https://api.example.com/', 'anthropic',
        sha256('c') || sha256('d'), '0123abcd');
INSERT INTO endpoints (name, url, style, credential_ciphertext,
                       credential_key_id)
VALUES ('e1', 'https://user:pw@api.example.com', 'anthropic',
        sha256('c') || sha256('d'), '0123abcd');
INSERT INTO endpoints (name, url, style)
VALUES ('e1', 'https://api.example.com', 'anthropic');
INSERT INTO endpoints (name, url, style, managed_by)
VALUES ('e1', 'https://api.example.com/v1', 'openai', 'file');
INSERT INTO endpoints (name, url, style, managed_by, model_map_from)
VALUES ('e2', 'https://api.example.com', 'openai', 'file', '{a}');
INSERT INTO endpoints (name, url, style, managed_by, price_factor)
VALUES ('e2', 'https://api.example.com', 'openai', 'file', 0);
INSERT INTO endpoints (name, url, style, managed_by, proxy)
VALUES ('e2', 'https://api.example.com', 'openai', 'file', 'ftp://x');
INSERT INTO endpoint_groups (name, strategy) VALUES ('g', 'random');
INSERT INTO endpoint_groups (name, exploration) VALUES ('g', 0.6);
INSERT INTO endpoint_groups (name) VALUES ('bad name');

-- Applications and sessions.
INSERT INTO applications (user_id, kind, payload)
VALUES (1, 'model_access', '[]');
INSERT INTO applications (user_id, kind, payload, status)
VALUES (1, 'model_access', '{}', 'approved');
INSERT INTO sessions (user_id, digest, kind)
VALUES (1, sha256('s'), 'session');
INSERT INTO audit_log (action, target_type) VALUES ('Drop Table', 'user');

INSERT INTO api_keys (user_id, digest, prefix, last4)
VALUES (1, sha256('alice'), 'sk-tg-CCCC', 'cccc');

-- NOTIFY on insert, update and delete of users, keys, endpoints, groups;
-- nothing for updates of bookkeeping columns only.
LISTEN tollgate;
UPDATE users SET email = 'a@example.com' WHERE user_id = 1;
UPDATE users SET updated_at = now() - interval '1 day' WHERE user_id = 1;
UPDATE api_keys SET last_used_at = now();
UPDATE api_keys SET rpm = 10;
INSERT INTO endpoint_groups (name) VALUES ('g2');
UPDATE endpoint_groups SET sticky = false WHERE name = 'g2';
DELETE FROM endpoint_groups WHERE name = 'g2';
UPDATE endpoints SET weight = 2;
-- Deleting a user removes their keys, each with its own notification.
DELETE FROM users WHERE user_id = 1;
SELECT count(*) AS keys_left FROM api_keys;
-- Notifications are sent at commit, not before.
BEGIN;
INSERT INTO users (username) VALUES ('later');
SELECT 'inside the transaction';
COMMIT;
-- A rolled-back change notifies nobody.
BEGIN;
INSERT INTO users (username) VALUES ('never');
ROLLBACK;
SELECT 'after rollback';

-- The analysts' view of keys: owner, effective group, usable now.
INSERT INTO users (username, group_name) VALUES ('vera', 'default');
INSERT INTO endpoint_groups (name) VALUES ('team-v');
INSERT INTO api_keys (user_id, digest, prefix, last4, group_name)
SELECT user_id, sha256('v1'), 'sk-tg-Vvv1', 'vvv1', 'team-v'
  FROM users WHERE username = 'vera';
INSERT INTO api_keys (user_id, digest, prefix, last4, expires_at)
SELECT user_id, sha256('v2'), 'sk-tg-Vvv2', 'vvv2', now() - interval '1 s'
  FROM users WHERE username = 'vera';
SELECT prefix, username, usable, effective_group FROM key_overview
 ORDER BY key_id;
UNLISTEN tollgate;
UPDATE users SET status = 'disabled' WHERE username = 'vera';
SELECT prefix, usable FROM key_overview WHERE username = 'vera'
 ORDER BY key_id;
SELECT c.relname || '.' || a.attname AS undocumented_view_column
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace
   AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NULL;
