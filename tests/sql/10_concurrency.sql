-- Races between two sessions (dblink): the second call waits for the
-- first to commit and then sees its effect, so neither the last admin
-- nor the per-user code limit can be beaten by concurrent requests.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system"}'
CREATE EXTENSION dblink;
SELECT format('host=%s port=%s dbname=%s user=%s',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database(), current_user)
       AS conn \gset
SELECT dblink_connect('a', :'conn');
SELECT dblink_connect('b', :'conn');

-- True once session b waits for a lock; bounded (10 s) so a test that
-- goes wrong fails instead of hanging.  pg_stat_activity is a snapshot
-- kept for the whole transaction: it is dropped before each look, or a
-- session b not yet waiting at the first look would never be seen to.
CREATE FUNCTION pg_temp.b_waits() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 1000 LOOP
        PERFORM pg_stat_clear_snapshot();
        IF EXISTS (SELECT 1 FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock'
                      AND query LIKE '%session b%') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END
$$;

SELECT tg_api.users_create(:'sys', '{"username": "ann", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'sys', '{"username": "ben", "role": "admin"}')
       ->> 'user_id';

-- Two admins demote each other at the same time: one must stay.
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $q$
    SELECT tg_api.users_update('{"actor": 1, "role": "admin"}',
                               '{"user_id": 1, "role": "user"}') ->> 'role'
$q$) AS t(role text);
SELECT dblink_send_query('b', $q$ /* session b */
    SELECT tg_api.users_update('{"actor": 2, "role": "admin"}',
                               '{"user_id": 2, "role": "user"}') ->> 'role'
$q$);
SELECT pg_temp.b_waits();
SELECT dblink_exec('a', 'COMMIT');
SELECT * FROM dblink_get_result('b') AS t(role text);
SELECT * FROM dblink_get_result('b') AS t(role text);
SELECT username, role FROM users ORDER BY user_id;

-- Two code requests at once for a user who has two codes already: only
-- one more may be sent.
SELECT tg_api.code_create('{"role": null}', jsonb_build_object('user_id', 2,
       'digest', encode(sha256(convert_to('2:' || i, 'UTF8')), 'hex')))
       ->> 'code_id'
  FROM generate_series(1, 2) AS i;
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $q$
    SELECT tg_api.code_create('{"role": null}', jsonb_build_object(
           'user_id', 2, 'digest', encode(sha256('2:a'), 'hex')))
           ->> 'code_id'
$q$) AS t(code_id text);
SELECT dblink_send_query('b', $q$ /* session b */
    SELECT tg_api.code_create('{"role": null}', jsonb_build_object(
           'user_id', 2, 'digest', encode(sha256('2:b'), 'hex')))
           ->> 'code_id'
$q$);
SELECT pg_temp.b_waits();
SELECT dblink_exec('a', 'COMMIT');
SELECT * FROM dblink_get_result('b') AS t(code_id text);
SELECT * FROM dblink_get_result('b') AS t(code_id text);
SELECT count(*) AS codes FROM login_codes WHERE user_id = 2;

-- Two approvals of one application at once: one applies, the other is
-- refused.
SELECT tg_api.keys_create('{"actor": 2, "role": "admin"}', jsonb_build_object(
       'user_id', 1, 'digest', encode(sha256('k'), 'hex'),
       'prefix', 'sk-tg-Kkkk', 'last4', 'kkkk',
       'models', jsonb_build_array('a'))) ->> 'key_id';
SELECT tg_api.applications_create('{"actor": 1, "role": "user"}',
       '{"kind": "model_access", "key_id": 1, "models": ["b"]}') ->> 'status';
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $q$
    SELECT tg_api.applications_approve('{"actor": 2, "role": "admin"}',
           '{"application_id": 1}') ->> 'status'
$q$) AS t(status text);
SELECT dblink_send_query('b', $q$ /* session b */
    SELECT tg_api.applications_approve('{"actor": 2, "role": "admin"}',
           '{"application_id": 1}') ->> 'status'
$q$);
SELECT pg_temp.b_waits();
SELECT dblink_exec('a', 'COMMIT');
SELECT * FROM dblink_get_result('b') AS t(status text);
SELECT * FROM dblink_get_result('b') AS t(status text);
SELECT models FROM api_keys WHERE key_id = 1;
SELECT count(*) AS approvals FROM audit_log
 WHERE action = 'application.approve';

SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');
