-- sql/functions/20_users.sql
--      /admin/api/users: list, get, create, update, delete, enable/disable.
--
-- NOTES
--      Admin only, except that a user may read themselves and change their
--      own email and password.  Another user's id reads as TG404.  The last
--      active admin can be neither disabled, demoted nor deleted, so the
--      installation always keeps someone who can manage it.
--
--      Arguments (p_args): user_id (path), username, email, password_hash
--      (scrypt$..., computed by the caller from "password"), role, status,
--      group, tokens_day, tokens_month, cost_day_usd, cost_month_usd.

-- TG409 when <p_user> is the last active admin and is about to stop being
-- one.
CREATE FUNCTION tg_api._keep_an_admin(p_user public.users)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    -- Two admins demoting each other at once must not both pass: the
    -- second waits here, and its check below, a new statement, sees what
    -- the first committed.
    PERFORM pg_advisory_xact_lock(hashtext('tollgate.last_admin'));
    IF p_user.role = 'admin' AND p_user.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM users
                        WHERE role = 'admin' AND status = 'active'
                          AND user_id <> p_user.user_id) THEN
        PERFORM tg_api._raise('TG409', 'user ' || p_user.user_id
                              || ' is the last active admin', '');
    END IF;
END
$$;

-- TG422 naming the field when email or password_hash is malformed;
-- mirrors the CHECK constraints of users.
CREATE FUNCTION tg_api._check_user_fields(p_args jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_email text := tg_api._str(p_args, 'email', 254);
    v_hash text := tg_api._str(p_args, 'password_hash', 256);
BEGIN
    IF v_email IS NOT NULL
       AND (NOT public.tg_text_ok(v_email, 254) OR v_email NOT LIKE '%_@_%')
    THEN
        PERFORM tg_api._raise('TG422', 'email must look like name@domain',
                              'email');
    END IF;
    IF v_hash IS NOT NULL
       AND (v_hash NOT LIKE 'scrypt$%' OR NOT public.tg_text_ok(v_hash, 256))
    THEN
        PERFORM tg_api._raise('TG422', 'password_hash must be a scrypt hash',
                              'password_hash');
    END IF;
END
$$;

-- The user row <p_id> as seen by <p_ctx>, locked FOR UPDATE when
-- <p_lock>; TG404 when it does not exist or is another user's.
CREATE FUNCTION tg_api._user_visible(p_ctx jsonb, p_id bigint,
                                     p_lock boolean)
RETURNS public.users
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    u users;
BEGIN
    IF p_lock THEN
        SELECT * INTO u FROM users WHERE user_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO u FROM users WHERE user_id = p_id;
    END IF;
    IF u.user_id IS NULL
       OR (NOT tg_api._is_admin(p_ctx)
           AND u.user_id IS DISTINCT FROM tg_api._actor(p_ctx)) THEN
        PERFORM tg_api._raise('TG404', 'no such user', 'user_id');
    END IF;
    RETURN u;
END
$$;

-- users_list: filters status, role, group, q (substring of username or
-- email, case-insensitive); keyset on user_id ascending.
CREATE FUNCTION tg_api.users_list(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
-- Plan each call for its own filters: a cached generic plan would have
-- to serve every combination of absent filters at once.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_limit integer := tg_api._limit(p_args);
    v_cursor bigint := tg_api._cursor(p_args);
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    v_role text := tg_api._enum(p_args, 'role', ARRAY['admin', 'user']);
    v_group text := tg_api._str(p_args, 'group', 63);
    v_q text := tg_api._contains(lower(tg_api._str(p_args, 'q', 128)));
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT u.user_id AS id, tg_api._user_json(u) AS j
              FROM users u
             WHERE (v_cursor IS NULL OR u.user_id > v_cursor)
               AND (v_status IS NULL OR u.status = v_status)
               AND (v_role IS NULL OR u.role = v_role)
               AND (v_group IS NULL OR u.group_name = v_group)
               AND (v_q IS NULL
                    OR lower(u.username) LIKE v_q
                    OR lower(coalesce(u.email, '')) LIKE v_q)
             ORDER BY u.user_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'user_id');
END
$$;

CREATE FUNCTION tg_api.users_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tg_api._role(p_ctx);
    RETURN tg_api._user_json(
        tg_api._user_visible(p_ctx, tg_api._id(p_args, 'user_id'), false));
END
$$;

CREATE FUNCTION tg_api.users_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_username text := tg_api._req_str(p_args, 'username', 64);
    v_group text := coalesce(tg_api._str(p_args, 'group', 63), 'default');
    u users;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    PERFORM tg_api._check_user_fields(p_args);
    IF NOT public.tg_text_ok(v_username, 64) THEN
        PERFORM tg_api._raise('TG422', 'username must be 1..64 characters '
                              || 'without control characters', 'username');
    END IF;
    IF EXISTS (SELECT 1 FROM users
                WHERE lower(username) = lower(v_username)) THEN
        PERFORM tg_api._raise('TG409', 'username is taken', 'username');
    END IF;
    PERFORM tg_api._check_group(v_group, 'group');
    INSERT INTO users (username, email, password_hash, role, status,
                       group_name, tokens_day, tokens_month, cost_day_usd,
                       cost_month_usd)
    VALUES (v_username,
            tg_api._str(p_args, 'email', 254),
            tg_api._str(p_args, 'password_hash', 256),
            coalesce(tg_api._enum(p_args, 'role', ARRAY['admin', 'user']),
                     'user'),
            coalesce(tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']), 'active'),
            v_group,
            tg_api._int(p_args, 'tokens_day', 0, 9223372036854775807),
            tg_api._int(p_args, 'tokens_month', 0, 9223372036854775807),
            tg_api._usd(p_args, 'cost_day_usd'),
            tg_api._usd(p_args, 'cost_month_usd'))
    RETURNING * INTO u;
    PERFORM tg_api._audit(p_ctx, 'user.create', 'user', u.user_id, NULL,
                          tg_api._user_json(u));
    RETURN tg_api._user_json(u);
END
$$;

-- users_update: only the fields present in p_args change; a present null
-- clears a nullable field (email, password_hash, quotas).
CREATE FUNCTION tg_api.users_update(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    old users;
    u users;
    v_username text := tg_api._str(p_args, 'username', 64);
    v_group text := tg_api._str(p_args, 'group', 63);
BEGIN
    PERFORM tg_api._role(p_ctx);
    old := tg_api._user_visible(p_ctx, v_id, true);
    IF NOT tg_api._is_admin(p_ctx) THEN
        PERFORM tg_api._forbid(p_args,
                               ARRAY['username', 'role', 'status', 'group',
                                     'tokens_day', 'tokens_month',
                                     'cost_day_usd', 'cost_month_usd']);
    END IF;
    PERFORM tg_api._refuse_file(old.managed_by, 'user', v_id, 'users');
    PERFORM tg_api._check_user_fields(p_args);
    IF p_args ? 'username' THEN
        IF v_username IS NULL OR NOT public.tg_text_ok(v_username, 64) THEN
            PERFORM tg_api._raise('TG422', 'username must be 1..64 '
                                  || 'characters without control characters',
                                  'username');
        END IF;
        IF EXISTS (SELECT 1 FROM users
                    WHERE lower(username) = lower(v_username)
                      AND user_id <> v_id) THEN
            PERFORM tg_api._raise('TG409', 'username is taken', 'username');
        END IF;
    END IF;
    IF p_args ? 'group' THEN
        IF v_group IS NULL THEN
            PERFORM tg_api._raise('TG422', 'group cannot be null', 'group');
        END IF;
        PERFORM tg_api._check_group(v_group, 'group');
    END IF;
    UPDATE users SET
        username = CASE WHEN p_args ? 'username' THEN v_username
                        ELSE username END,
        email = CASE WHEN p_args ? 'email'
                     THEN tg_api._str(p_args, 'email', 254) ELSE email END,
        password_hash = CASE WHEN p_args ? 'password_hash'
                             THEN tg_api._str(p_args, 'password_hash', 256)
                             ELSE password_hash END,
        role = coalesce(tg_api._enum(p_args, 'role', ARRAY['admin', 'user']),
                        role),
        status = coalesce(tg_api._enum(p_args, 'status',
                                       ARRAY['active', 'disabled']), status),
        group_name = coalesce(v_group, group_name),
        tokens_day = CASE WHEN p_args ? 'tokens_day'
                          THEN tg_api._int(p_args, 'tokens_day', 0,
                                           9223372036854775807)
                          ELSE tokens_day END,
        tokens_month = CASE WHEN p_args ? 'tokens_month'
                            THEN tg_api._int(p_args, 'tokens_month', 0,
                                             9223372036854775807)
                            ELSE tokens_month END,
        cost_day_usd = CASE WHEN p_args ? 'cost_day_usd'
                            THEN tg_api._usd(p_args, 'cost_day_usd')
                            ELSE cost_day_usd END,
        cost_month_usd = CASE WHEN p_args ? 'cost_month_usd'
                              THEN tg_api._usd(p_args, 'cost_month_usd')
                              ELSE cost_month_usd END
     WHERE user_id = v_id
    RETURNING * INTO u;
    IF (u.role <> 'admin' OR u.status <> 'active') THEN
        PERFORM tg_api._keep_an_admin(old);
    END IF;
    PERFORM tg_api._audit(p_ctx, 'user.update', 'user', v_id,
                          tg_api._user_json(old), tg_api._user_json(u));
    RETURN tg_api._user_json(u);
END
$$;

CREATE FUNCTION tg_api.users_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    old users;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._user_visible(p_ctx, v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'user', v_id, 'users');
    IF v_id = tg_api._actor(p_ctx) THEN
        PERFORM tg_api._raise('TG409', 'you cannot delete yourself',
                              'user_id');
    END IF;
    PERFORM tg_api._keep_an_admin(old);
    IF EXISTS (SELECT 1 FROM api_keys
                WHERE user_id = v_id AND managed_by = 'file') THEN
        PERFORM tg_api._raise('TG409', 'user ' || v_id || ' owns keys '
                              || 'declared in the config file (keys); '
                              || 'remove them there first', '');
    END IF;
    -- Keys, sessions, codes and applications go with the user (ON DELETE
    -- CASCADE); each deleted key notifies on its own.
    DELETE FROM users WHERE user_id = v_id;
    PERFORM tg_api._audit(p_ctx, 'user.delete', 'user', v_id,
                          tg_api._user_json(old), NULL);
    RETURN jsonb_build_object('user_id', v_id, 'deleted', true);
END
$$;

-- users_set_status: args user_id, status ('active' | 'disabled').
CREATE FUNCTION tg_api.users_set_status(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'user_id');
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    old users;
    u users;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF v_status IS NULL THEN
        PERFORM tg_api._raise('TG400', 'status is required', 'status');
    END IF;
    old := tg_api._user_visible(p_ctx, v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'user', v_id, 'users');
    IF v_status = 'disabled' THEN
        PERFORM tg_api._keep_an_admin(old);
    END IF;
    UPDATE users SET status = v_status WHERE user_id = v_id
    RETURNING * INTO u;
    PERFORM tg_api._audit(p_ctx,
                          CASE v_status WHEN 'active' THEN 'user.enable'
                                        ELSE 'user.disable' END,
                          'user', v_id, tg_api._user_json(old),
                          tg_api._user_json(u));
    RETURN tg_api._user_json(u);
END
$$;
