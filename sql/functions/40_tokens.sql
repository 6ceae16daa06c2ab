-- sql/functions/40_tokens.sql
--      /admin/api/tokens: long-lived automation tokens (admins only).
--
-- NOTES
--      A token is a sessions row of kind 'token' belonging to the admin who
--      created it; it authenticates like a session (session_lookup) with
--      that admin's current role.  Deleting a token revokes it (the row is
--      kept for the audit trail until auth_purge removes it).

-- tokens_create: args name, digest (hex SHA-256 of the token),
-- ttl_seconds (optional; none = no expiry), user_id (only for role
-- 'system'; otherwise the token is the actor's).
CREATE FUNCTION tg_api.tokens_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_digest bytea := tg_api._hex(p_args, 'digest', 32, 32);
    v_name text := coalesce(tg_api._str(p_args, 'name', 128), '');
    v_ttl bigint := tg_api._int(p_args, 'ttl_seconds', 60,
                                100 * 366 * 86400::bigint);
    v_user bigint;
    s sessions;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    v_user := tg_api._actor(p_ctx);
    IF tg_api._role(p_ctx) = 'system' THEN
        v_user := coalesce(v_user, tg_api._id(p_args, 'user_id'));
    END IF;
    IF v_user IS NULL THEN
        PERFORM tg_api._raise('TG401', 'authentication required', '');
    END IF;
    IF v_digest IS NULL THEN
        PERFORM tg_api._raise('TG400', 'digest is required', 'digest');
    END IF;
    IF v_name <> '' AND NOT public.tg_text_ok(v_name, 128) THEN
        PERFORM tg_api._raise('TG422', 'name must not contain control '
                              || 'characters', 'name');
    END IF;
    INSERT INTO sessions (user_id, digest, kind, name, client_addr,
                          expires_at)
    VALUES (v_user, v_digest, 'token', v_name, left(p_ctx ->> 'addr', 64),
            now() + make_interval(secs => v_ttl))
    RETURNING * INTO s;
    PERFORM tg_api._audit(p_ctx, 'token.create', 'token', s.session_id, NULL,
                          tg_api._token_json(s));
    RETURN tg_api._token_json(s);
END
$$;

-- tokens_list: live (not revoked) tokens, filter user_id; keyset on
-- token_id ascending.
CREATE FUNCTION tg_api.tokens_list(p_ctx jsonb, p_args jsonb)
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
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT s.session_id AS id, tg_api._token_json(s) AS j
              FROM sessions s
             WHERE s.kind = 'token' AND s.revoked_at IS NULL
               AND (v_cursor IS NULL OR s.session_id > v_cursor)
               AND (v_user IS NULL OR s.user_id = v_user)
             ORDER BY s.session_id
             LIMIT v_limit + 1) t;
    RETURN tg_api._page(v_items, v_limit, 'token_id');
END
$$;

-- tokens_delete: args token_id.  TG404 unless it is a live token.
CREATE FUNCTION tg_api.tokens_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'token_id');
    old sessions;
    s sessions;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT * INTO old FROM sessions
     WHERE session_id = v_id AND kind = 'token' AND revoked_at IS NULL
       FOR UPDATE;
    IF old.session_id IS NULL THEN
        PERFORM tg_api._raise('TG404', 'no such token', 'token_id');
    END IF;
    UPDATE sessions SET revoked_at = now() WHERE session_id = v_id
    RETURNING * INTO s;
    PERFORM tg_api._audit(p_ctx, 'token.delete', 'token', v_id,
                          tg_api._token_json(old), tg_api._token_json(s));
    RETURN jsonb_build_object('token_id', v_id, 'deleted', true);
END
$$;
