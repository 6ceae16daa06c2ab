-- sql/functions/10_auth.sql
--      Login by password or code, sessions, logout, lockouts.
--
-- NOTES
--      The caller verifies passwords (scrypt) and computes every digest
--      itself; no password, code or token reaches PostgreSQL in clear.
--
--      Password login:  auth_user -> (caller: refuse when locked_until is
--      in the future, verify scrypt) -> auth_login_result(ok) ->
--      session_create.  Five wrong passwords in a row lock password login
--      for 15 minutes.
--
--      Code login:  auth_user -> code_create (digest of '<user_id>:<code>')
--      -> webhook -> auth_user -> code_verify -> session_create.  A code
--      lives 5 minutes and is burnt after 5 wrong guesses; at most 3 codes
--      per user and 10 per client address in 15 minutes; ten wrong codes
--      in a row lock code login for 15 minutes.
--
--      code_verify reports failure in its result instead of raising,
--      because the failure must be counted: an exception would roll the
--      count back with everything else.

CREATE FUNCTION tg_api.auth_user(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_name text := tg_api._req_str(p_args, 'username', 64);
    u users;
    l login_lockouts;
BEGIN
    SELECT * INTO u FROM users WHERE lower(username) = lower(v_name);
    IF u.user_id IS NULL THEN
        PERFORM tg_api._raise('TG401', 'invalid credentials', '');
    END IF;
    SELECT * INTO l FROM login_lockouts WHERE user_id = u.user_id;
    RETURN jsonb_build_object(
        'user_id', u.user_id,
        'username', u.username,
        'email', u.email,
        'role', u.role,
        'status', u.status,
        'password_hash', u.password_hash,
        'locked_until',
        tg_api._ts(CASE WHEN l.password_locked_until > now()
                        THEN l.password_locked_until END),
        'code_locked_until',
        tg_api._ts(CASE WHEN l.code_locked_until > now()
                        THEN l.code_locked_until END));
END
$$;

-- The lockout row of <p_user>, created if missing, locked FOR UPDATE.
CREATE FUNCTION tg_api._lockout(p_user bigint)
RETURNS public.login_lockouts
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    l login_lockouts;
BEGIN
    INSERT INTO login_lockouts (user_id) VALUES (p_user)
        ON CONFLICT (user_id) DO NOTHING;
    SELECT * INTO l FROM login_lockouts WHERE user_id = p_user FOR UPDATE;
    RETURN l;
END
$$;

-- auth_login_result: args user_id, ok (boolean: the password matched).
CREATE FUNCTION tg_api.auth_login_result(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    v_ok boolean := tg_api._bool(p_args, 'ok');
    v_actx jsonb := p_ctx || jsonb_build_object('actor', v_id);
    l login_lockouts;
BEGIN
    IF v_ok IS NULL THEN
        PERFORM tg_api._raise('TG400', 'ok is required', 'ok');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM users WHERE user_id = v_id) THEN
        PERFORM tg_api._raise('TG404', 'no such user', 'user_id');
    END IF;
    l := tg_api._lockout(v_id);
    IF v_ok THEN
        UPDATE login_lockouts
           SET password_failures = 0, password_locked_until = NULL,
               last_success_at = now()
         WHERE user_id = v_id
        RETURNING * INTO l;
    ELSIF l.password_failures + 1 >= 5 THEN
        UPDATE login_lockouts
           SET password_failures = 0,
               password_locked_until = now() + interval '15 minutes',
               last_failure_at = now()
         WHERE user_id = v_id
        RETURNING * INTO l;
        PERFORM tg_api._audit(v_actx, 'auth.lockout', 'user', v_id, NULL,
                              jsonb_build_object('login', 'password',
                                  'locked_until',
                                  tg_api._ts(l.password_locked_until)));
    ELSE
        UPDATE login_lockouts
           SET password_failures = password_failures + 1,
               last_failure_at = now()
         WHERE user_id = v_id
        RETURNING * INTO l;
        PERFORM tg_api._audit(v_actx, 'auth.login_failed', 'user', v_id,
                              NULL,
                              jsonb_build_object('login', 'password',
                                  'failures', l.password_failures));
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_id,
        'failures', l.password_failures,
        'locked_until',
        tg_api._ts(CASE WHEN l.password_locked_until > now()
                        THEN l.password_locked_until END));
END
$$;

-- session_create: args user_id, digest (hex SHA-256 of the token), kind
-- ('session' default | 'token'), name, ttl_seconds (required for a
-- session, 60..2678400; optional for a token).  TG401 for a disabled or
-- missing user.
CREATE FUNCTION tg_api.session_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    v_kind text := coalesce(tg_api._enum(p_args, 'kind',
                                         ARRAY['session', 'token']),
                            'session');
    v_name text := coalesce(tg_api._str(p_args, 'name', 128), '');
    v_ttl bigint := tg_api._int(p_args, 'ttl_seconds', 60, 2678400 * 12);
    v_actx jsonb := p_ctx || jsonb_build_object('actor', v_id);
    u users;
    s sessions;
BEGIN
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    IF v_kind = 'session' AND v_ttl IS NULL THEN
        PERFORM tg_api._raise('TG400', 'ttl_seconds is required',
                              'ttl_seconds');
    END IF;
    SELECT * INTO u FROM users WHERE user_id = v_id;
    IF u.user_id IS NULL OR u.status <> 'active' THEN
        PERFORM tg_api._raise('TG401', 'invalid credentials', '');
    END IF;
    INSERT INTO sessions (user_id, digest, kind, name, client_addr,
                          expires_at)
    VALUES (v_id, v_digest, v_kind, v_name, left(p_ctx ->> 'addr', 64),
            now() + make_interval(secs => v_ttl))
    RETURNING * INTO s;
    PERFORM tg_api._audit(v_actx, 'auth.login', 'session', s.session_id,
                          NULL, tg_api._token_json(s));
    RETURN jsonb_build_object('session_id', s.session_id,
                              'kind', s.kind,
                              'expires_at', tg_api._ts(s.expires_at),
                              'user', tg_api._user_json(u));
END
$$;

-- session_lookup: args digest.  TG401 unless a live session or token of
-- an active user has it.  last_used_at moves at most once a minute, so
-- a busy client does not write on every request.
CREATE FUNCTION tg_api.session_lookup(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    s sessions;
    u users;
BEGIN
    SELECT * INTO s FROM sessions WHERE digest = v_digest;
    IF s.session_id IS NOT NULL THEN
        SELECT * INTO u FROM users WHERE user_id = s.user_id;
    END IF;
    IF s.session_id IS NULL OR s.revoked_at IS NOT NULL
       OR s.expires_at <= now() OR u.status IS DISTINCT FROM 'active' THEN
        PERFORM tg_api._raise('TG401', 'invalid or expired token', '');
    END IF;
    IF s.last_used_at IS NULL OR s.last_used_at < now() - interval '1 minute'
    THEN
        UPDATE sessions SET last_used_at = now()
         WHERE session_id = s.session_id;
    END IF;
    RETURN jsonb_build_object('session_id', s.session_id,
                              'kind', s.kind,
                              'user_id', u.user_id,
                              'username', u.username,
                              'role', u.role,
                              'status', u.status,
                              'expires_at', tg_api._ts(s.expires_at));
END
$$;

-- session_revoke: args digest.  {"revoked": true} when a live session
-- ended, false when there was none.
CREATE FUNCTION tg_api.session_revoke(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    old sessions;
    s sessions;
BEGIN
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    SELECT * INTO old FROM sessions
     WHERE digest = v_digest AND revoked_at IS NULL FOR UPDATE;
    IF old.session_id IS NULL THEN
        RETURN jsonb_build_object('revoked', false);
    END IF;
    UPDATE sessions SET revoked_at = now()
     WHERE session_id = old.session_id
    RETURNING * INTO s;
    PERFORM tg_api._audit(p_ctx || jsonb_build_object('actor', s.user_id),
                          'auth.logout', 'session', s.session_id,
                          tg_api._token_json(old), tg_api._token_json(s));
    RETURN jsonb_build_object('revoked', true, 'session_id', s.session_id);
END
$$;

-- code_create: args user_id (or username), digest (hex SHA-256 of
-- '<user_id>:<code>'), ttl_seconds (default 300, 30..3600), addr (default
-- the context's).  TG401 for a missing or disabled user, TG429 when
-- rate-limited or locked.
CREATE FUNCTION tg_api.code_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    v_ttl bigint := coalesce(tg_api._int(p_args, 'ttl_seconds', 30, 3600),
                             300);
    v_addr text := left(coalesce(tg_api._str(p_args, 'addr', 64),
                                 p_ctx ->> 'addr'), 64);
    u users;
    l login_lockouts;
    c login_codes;
BEGIN
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    IF v_id IS NOT NULL THEN
        SELECT * INTO u FROM users WHERE user_id = v_id FOR NO KEY UPDATE;
    ELSE
        SELECT * INTO u FROM users
         WHERE lower(username) = lower(tg_api._req_str(p_args, 'username',
                                                      64))
           FOR NO KEY UPDATE;
    END IF;
    IF u.user_id IS NULL OR u.status <> 'active' THEN
        PERFORM tg_api._raise('TG401', 'invalid credentials', '');
    END IF;
    -- Serialise code requests from one address, so concurrent requests
    -- cannot all pass the count below (the user row lock does the same
    -- per user).
    IF v_addr IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('tollgate.code_addr'),
                                      hashtext(v_addr));
    END IF;
    SELECT * INTO l FROM login_lockouts WHERE user_id = u.user_id;
    IF l.code_locked_until > now() THEN
        PERFORM tg_api._raise('TG429', 'code login is locked until '
                              || tg_api._ts(l.code_locked_until), '');
    END IF;
    IF (SELECT count(*) FROM login_codes
         WHERE user_id = u.user_id
           AND created_at > now() - interval '15 minutes') >= 3 THEN
        PERFORM tg_api._raise('TG429', 'too many codes for this user; '
                              || 'try again in 15 minutes', '');
    END IF;
    IF v_addr IS NOT NULL
       AND (SELECT count(*) FROM login_codes
             WHERE client_addr = v_addr
               AND created_at > now() - interval '15 minutes') >= 10 THEN
        PERFORM tg_api._raise('TG429', 'too many codes from this address; '
                              || 'try again in 15 minutes', '');
    END IF;
    INSERT INTO login_codes (user_id, digest, expires_at, client_addr)
    VALUES (u.user_id, v_digest, now() + make_interval(secs => v_ttl),
            v_addr)
    RETURNING * INTO c;
    PERFORM tg_api._audit(p_ctx || jsonb_build_object('actor', u.user_id),
                          'auth.code_sent', 'user', u.user_id, NULL,
                          jsonb_build_object('code_id', c.code_id,
                              'expires_at', tg_api._ts(c.expires_at)));
    RETURN jsonb_build_object('code_id', c.code_id,
                              'user_id', u.user_id,
                              'username', u.username,
                              'email', u.email,
                              'expires_at', tg_api._ts(c.expires_at));
END
$$;

-- code_verify: args user_id, digest.  Returns {"ok": true, "user_id",
-- "username", "role"} when the digest matches a live code (which is then
-- used up), else {"ok": false, "error": "TG401" | "TG429", "message",
-- "retry_after": seconds or null}, with the failure counted.
CREATE FUNCTION tg_api.code_verify(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    v_actx jsonb := p_ctx || jsonb_build_object('actor', v_id);
    v_code bigint;
    u users;
    l login_lockouts;
BEGIN
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    SELECT * INTO u FROM users WHERE user_id = v_id FOR NO KEY UPDATE;
    IF u.user_id IS NULL OR u.status <> 'active' THEN
        RETURN jsonb_build_object('ok', false, 'error', 'TG401',
                                  'message', 'invalid code',
                                  'retry_after', NULL);
    END IF;
    l := tg_api._lockout(v_id);
    IF l.code_locked_until > now() THEN
        RETURN jsonb_build_object('ok', false, 'error', 'TG429',
            'message', 'code login is locked until '
                       || tg_api._ts(l.code_locked_until),
            'retry_after',
            ceil(extract(epoch FROM l.code_locked_until - now()))::bigint);
    END IF;
    SELECT code_id INTO v_code FROM login_codes
     WHERE user_id = v_id AND digest = v_digest AND used_at IS NULL
       AND expires_at > now() AND attempts < 5
     ORDER BY code_id DESC LIMIT 1;
    IF v_code IS NOT NULL THEN
        UPDATE login_codes SET used_at = now() WHERE code_id = v_code;
        UPDATE login_lockouts
           SET code_failures = 0, code_locked_until = NULL,
               last_success_at = now()
         WHERE user_id = v_id;
        RETURN jsonb_build_object('ok', true, 'user_id', u.user_id,
                                  'username', u.username, 'role', u.role);
    END IF;
    -- A wrong guess counts against every live code of the user, so
    -- asking for more codes does not buy more guesses.
    UPDATE login_codes SET attempts = attempts + 1
     WHERE user_id = v_id AND used_at IS NULL AND expires_at > now()
       AND attempts < 5;
    IF l.code_failures + 1 >= 10 THEN
        UPDATE login_lockouts
           SET code_failures = 0,
               code_locked_until = now() + interval '15 minutes',
               last_failure_at = now()
         WHERE user_id = v_id
        RETURNING * INTO l;
        PERFORM tg_api._audit(v_actx, 'auth.lockout', 'user', v_id, NULL,
                              jsonb_build_object('login', 'code',
                                  'locked_until',
                                  tg_api._ts(l.code_locked_until)));
        RETURN jsonb_build_object('ok', false, 'error', 'TG429',
            'message', 'too many wrong codes; code login is locked until '
                       || tg_api._ts(l.code_locked_until),
            'retry_after', 900);
    END IF;
    UPDATE login_lockouts
       SET code_failures = code_failures + 1, last_failure_at = now()
     WHERE user_id = v_id
    RETURNING * INTO l;
    PERFORM tg_api._audit(v_actx, 'auth.login_failed', 'user', v_id, NULL,
                          jsonb_build_object('login', 'code',
                                             'failures', l.code_failures));
    RETURN jsonb_build_object('ok', false, 'error', 'TG401',
                              'message', 'invalid code',
                              'retry_after', NULL);
END
$$;

-- auth_purge (admin or system): deletes login codes older than a day and
-- sessions that expired or were revoked more than 7 days ago.  Returns
-- {"codes": n, "sessions": n}.  Meant to run now and then (e.g. with the
-- periodic reconcile); not audited.
CREATE FUNCTION tg_api.auth_purge(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_codes bigint;
    v_sessions bigint;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    DELETE FROM login_codes WHERE created_at < now() - interval '1 day';
    GET DIAGNOSTICS v_codes = ROW_COUNT;
    DELETE FROM sessions
     WHERE coalesce(revoked_at, expires_at) < now() - interval '7 days';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    RETURN jsonb_build_object('codes', v_codes, 'sessions', v_sessions);
END
$$;
