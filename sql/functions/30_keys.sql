-- sql/functions/30_keys.sql
--      /admin/api/keys: list, get, create, update, delete, enable/disable,
--      rotate.
--
-- NOTES
--      Admins manage every key.  A user sees only their own keys (another
--      user's key id reads as TG404) and may rename, disable, rotate and
--      delete them; creating keys, enabling them and changing models,
--      limits, group, expiry or quotas is for admins (users file an
--      application instead), so a user cannot widen their own access.
--
--      Arguments (p_args): key_id (path), user_id, name, digest (hex of
--      the SHA-256 of the new key), prefix, last4, status, expires_at,
--      models, rpm, burst, tpm, concurrency, group, tokens_day,
--      tokens_month, cost_day_usd, cost_month_usd.

-- The key <p_id> as seen by <p_ctx>, locked FOR UPDATE when <p_lock>;
-- TG404 when it does not exist or is another user's.
CREATE FUNCTION tg_api._key_visible(p_ctx jsonb, p_id bigint,
                                    p_lock boolean)
RETURNS public.api_keys
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    k api_keys;
BEGIN
    IF p_lock THEN
        SELECT * INTO k FROM api_keys WHERE key_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO k FROM api_keys WHERE key_id = p_id;
    END IF;
    IF k.key_id IS NULL
       OR (NOT tg_api._is_admin(p_ctx)
           AND k.user_id IS DISTINCT FROM tg_api._actor(p_ctx)) THEN
        PERFORM tg_api._raise('TG404', 'no such key', 'key_id');
    END IF;
    RETURN k;
END
$$;

-- Validated key fields shared by keys_create and a new_key approval:
-- prefix and last4.
CREATE FUNCTION tg_api._key_display(p_args jsonb)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_prefix text := tg_api._req_str(p_args, 'prefix', 16);
    v_last4 text := tg_api._req_str(p_args, 'last4', 4);
BEGIN
    IF NOT public.tg_text_ok(v_prefix, 16) THEN
        PERFORM tg_api._raise('TG422', 'prefix must be 1..16 characters',
                              'prefix');
    END IF;
    IF length(v_last4) <> 4 OR NOT public.tg_text_ok(v_last4, 4) THEN
        PERFORM tg_api._raise('TG422', 'last4 must be 4 characters',
                              'last4');
    END IF;
    RETURN ARRAY[v_prefix, v_last4];
END
$$;

-- Insert a key for <p_user> from <p_fields> (the key fields: name,
-- status, expires_at, models, rpm, burst, tpm, concurrency, group,
-- quotas) with the digest/prefix/last4 of <p_secret>.  Used by
-- keys_create and by a new_key approval.
CREATE FUNCTION tg_api._key_insert(p_user bigint, p_fields jsonb,
                                   p_secret jsonb)
RETURNS public.api_keys
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_digest bytea := tg_api._hex(p_secret, 'digest', 32, 32);
    v_display text[] := tg_api._key_display(p_secret);
    v_group text := tg_api._str(p_fields, 'group', 63);
    v_name text := coalesce(tg_api._str(p_fields, 'name', 128), '');
    k api_keys;
BEGIN
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    IF v_name <> '' AND NOT public.tg_text_ok(v_name, 128) THEN
        PERFORM tg_api._raise('TG422', 'name must not contain control '
                              || 'characters', 'name');
    END IF;
    PERFORM tg_api._check_group(v_group, 'group');
    INSERT INTO api_keys (user_id, name, digest, prefix, last4, status,
                          expires_at, models, rpm, burst, tpm, concurrency,
                          group_name, tokens_day, tokens_month,
                          cost_day_usd, cost_month_usd)
    VALUES (p_user, v_name, v_digest, v_display[1], v_display[2],
            coalesce(tg_api._enum(p_fields, 'status',
                                  ARRAY['active', 'disabled']), 'active'),
            tg_api._time(p_fields, 'expires_at'),
            coalesce(tg_api._models(p_fields, 'models', 16, 64), '{}'),
            coalesce(tg_api._int(p_fields, 'rpm', 0, 2147483647), 0),
            coalesce(tg_api._int(p_fields, 'burst', 0, 2147483647), 0),
            coalesce(tg_api._int(p_fields, 'tpm', 0, 2147483647), 0),
            coalesce(tg_api._int(p_fields, 'concurrency', 0, 2147483647), 0),
            v_group,
            tg_api._int(p_fields, 'tokens_day', 0, 9223372036854775807),
            tg_api._int(p_fields, 'tokens_month', 0, 9223372036854775807),
            tg_api._usd(p_fields, 'cost_day_usd'),
            tg_api._usd(p_fields, 'cost_month_usd'))
    RETURNING * INTO k;
    RETURN k;
END
$$;

-- keys_list: filters user_id, status, group, q (substring of name or
-- prefix, case-insensitive); a user gets only their own keys.  Keyset on
-- key_id ascending.
CREATE FUNCTION tg_api.keys_list(p_ctx jsonb, p_args jsonb)
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
    v_user bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    v_group text := tg_api._str(p_args, 'group', 63);
    v_q text := tg_api._contains(lower(tg_api._str(p_args, 'q', 128)));
    v_owner bigint;
    v_items jsonb;
BEGIN
    IF NOT tg_api._is_admin(p_ctx) THEN
        v_owner := tg_api._require_actor(p_ctx);
    END IF;
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT k.key_id AS id, tg_api._key_json(k) AS j
              FROM api_keys k
             WHERE (v_cursor IS NULL OR k.key_id > v_cursor)
               AND (v_owner IS NULL OR k.user_id = v_owner)
               AND (v_user IS NULL OR k.user_id = v_user)
               AND (v_status IS NULL OR k.status = v_status)
               AND (v_group IS NULL OR k.group_name = v_group)
               AND (v_q IS NULL
                    OR lower(k.name) LIKE v_q
                    OR lower(k.prefix) LIKE v_q)
             ORDER BY k.key_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'key_id');
END
$$;

CREATE FUNCTION tg_api.keys_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    RETURN tg_api._key_json(
        tg_api._key_visible(p_ctx, tg_api._id(p_args, 'key_id'), false));
END
$$;

-- keys_create (admin): user_id required; digest, prefix, last4 required.
CREATE FUNCTION tg_api.keys_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_user bigint := tg_api._id(p_args, 'user_id');
    k api_keys;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF NOT EXISTS (SELECT 1 FROM users WHERE user_id = v_user) THEN
        PERFORM tg_api._raise('TG422', 'no such user', 'user_id');
    END IF;
    k := tg_api._key_insert(v_user, p_args, p_args);
    PERFORM tg_api._audit(p_ctx, 'key.create', 'key', k.key_id, NULL,
                          tg_api._key_json(k));
    RETURN tg_api._key_json(k);
END
$$;

-- keys_update: only the fields present change; null clears expires_at,
-- group and the quotas.  A user may change only name.
CREATE FUNCTION tg_api.keys_update(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'key_id');
    v_name text := tg_api._str(p_args, 'name', 128);
    v_group text := tg_api._str(p_args, 'group', 63);
    v_user bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    old api_keys;
    k api_keys;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    old := tg_api._key_visible(p_ctx, v_id, true);
    IF NOT tg_api._is_admin(p_ctx) THEN
        PERFORM tg_api._forbid(p_args,
                               ARRAY['user_id', 'status', 'expires_at',
                                     'models', 'rpm', 'burst', 'tpm',
                                     'concurrency', 'group', 'tokens_day',
                                     'tokens_month', 'cost_day_usd',
                                     'cost_month_usd']);
    END IF;
    PERFORM tg_api._refuse_file(old.managed_by, 'key', v_id, 'keys');
    IF v_name IS NOT NULL AND v_name <> ''
       AND NOT public.tg_text_ok(v_name, 128) THEN
        PERFORM tg_api._raise('TG422', 'name must not contain control '
                              || 'characters', 'name');
    END IF;
    IF p_args ? 'user_id' THEN
        IF v_user IS NULL
           OR NOT EXISTS (SELECT 1 FROM users WHERE user_id = v_user) THEN
            PERFORM tg_api._raise('TG422', 'no such user', 'user_id');
        END IF;
    END IF;
    PERFORM tg_api._check_group(v_group, 'group');
    UPDATE api_keys SET
        user_id = coalesce(v_user, user_id),
        name = CASE WHEN p_args ? 'name' THEN coalesce(v_name, '')
                    ELSE name END,
        status = coalesce(tg_api._enum(p_args, 'status',
                                       ARRAY['active', 'disabled']), status),
        expires_at = CASE WHEN p_args ? 'expires_at'
                          THEN tg_api._time(p_args, 'expires_at')
                          ELSE expires_at END,
        models = CASE WHEN p_args ? 'models'
                      THEN coalesce(tg_api._models(p_args, 'models', 16, 64),
                                    '{}')
                      ELSE models END,
        rpm = coalesce(tg_api._int(p_args, 'rpm', 0, 2147483647), rpm),
        burst = coalesce(tg_api._int(p_args, 'burst', 0, 2147483647), burst),
        tpm = coalesce(tg_api._int(p_args, 'tpm', 0, 2147483647), tpm),
        concurrency = coalesce(tg_api._int(p_args, 'concurrency', 0,
                                           2147483647), concurrency),
        group_name = CASE WHEN p_args ? 'group' THEN v_group
                          ELSE group_name END,
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
     WHERE key_id = v_id
    RETURNING * INTO k;
    PERFORM tg_api._audit(p_ctx, 'key.update', 'key', v_id,
                          tg_api._key_json(old), tg_api._key_json(k));
    RETURN tg_api._key_json(k);
END
$$;

CREATE FUNCTION tg_api.keys_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'key_id');
    old api_keys;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    old := tg_api._key_visible(p_ctx, v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'key', v_id, 'keys');
    DELETE FROM api_keys WHERE key_id = v_id;
    PERFORM tg_api._audit(p_ctx, 'key.delete', 'key', v_id,
                          tg_api._key_json(old), NULL);
    RETURN jsonb_build_object('key_id', v_id, 'deleted', true);
END
$$;

-- keys_set_status: args key_id, status.  A user may only disable.
CREATE FUNCTION tg_api.keys_set_status(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'key_id');
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    old api_keys;
    k api_keys;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    IF v_status IS NULL THEN
        PERFORM tg_api._raise('TG400', 'status is required', 'status');
    END IF;
    old := tg_api._key_visible(p_ctx, v_id, true);
    IF v_status = 'active' AND NOT tg_api._is_admin(p_ctx) THEN
        PERFORM tg_api._raise('TG403', 'only an admin may enable a key',
                              'status');
    END IF;
    PERFORM tg_api._refuse_file(old.managed_by, 'key', v_id, 'keys');
    UPDATE api_keys SET status = v_status WHERE key_id = v_id
    RETURNING * INTO k;
    PERFORM tg_api._audit(p_ctx,
                          CASE v_status WHEN 'active' THEN 'key.enable'
                                        ELSE 'key.disable' END,
                          'key', v_id, tg_api._key_json(old),
                          tg_api._key_json(k));
    RETURN tg_api._key_json(k);
END
$$;

-- keys_rotate: args key_id, digest, prefix, last4 of the replacement key.
-- The old key stops working when this commits.
CREATE FUNCTION tg_api.keys_rotate(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'key_id');
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    v_display text[] := tg_api._key_display(p_args);
    old api_keys;
    k api_keys;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    old := tg_api._key_visible(p_ctx, v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'key', v_id, 'keys');
    UPDATE api_keys
       SET digest = v_digest, prefix = v_display[1], last4 = v_display[2]
     WHERE key_id = v_id
    RETURNING * INTO k;
    PERFORM tg_api._audit(p_ctx, 'key.rotate', 'key', v_id,
                          tg_api._key_json(old), tg_api._key_json(k));
    RETURN tg_api._key_json(k);
END
$$;
