-- sql/functions/90_export.sql
--      /admin/api/keys/export: the count, then keyset pages of the keys
--      with their owners, for a streamed CSV or JSON export.
--
-- NOTES
--      Admins export every key, a user only their own.  Filters as
--      keys_list: user_id, status, group, q; mask = 'email' masks the
--      owners' e-mail addresses ("a***@example.com": the first character
--      of the local part and the domain stay).  No secret is ever
--      selected: keys appear as prefix and last4, no digest.
--
--      The export is a sequence of independent statements (count, then
--      pages of at most 1000 keys after a key_id cursor), not one
--      transaction with a server-side cursor: admin has one database
--      connection shared by every request, and a transaction held open
--      for the length of a slow download would take every other statement
--      into it.  So a key created or deleted during an export may or may
--      not appear, and X-Total-Count is the count when the export began.

-- The owner an export is limited to: NULL for an administrator, the
-- actor for anyone else.
CREATE FUNCTION tg_api._export_owner(p_ctx jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF tg_api._is_admin(p_ctx) THEN
        RETURN NULL;
    END IF;
    RETURN tg_api._require_actor(p_ctx);
END
$$;

-- An e-mail address with its local part masked but its first character.
CREATE FUNCTION tg_api._mask_email(p_email text)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE
    WHEN p_email IS NULL THEN NULL
    WHEN strpos(p_email, '@') < 2 THEN '***'
    ELSE left(p_email, 1) || '***'
         || substr(p_email, strpos(p_email, '@'))
END;

-- keys_export_count: {"total": n} for the filters; audited, since it
-- opens every export.
CREATE FUNCTION tg_api.keys_export_count(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_owner bigint := tg_api._export_owner(p_ctx);
    v_user bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    v_group text := tg_api._str(p_args, 'group', 63);
    v_q text := lower(tg_api._str(p_args, 'q', 128));
    v_like text := tg_api._contains(v_q);
    v_mask text := tg_api._enum(p_args, 'mask', ARRAY['email']);
    v_total bigint;
BEGIN
    SELECT count(*) INTO v_total
      FROM api_keys k
     WHERE (v_owner IS NULL OR k.user_id = v_owner)
       AND (v_user IS NULL OR k.user_id = v_user)
       AND (v_status IS NULL OR k.status = v_status)
       AND (v_group IS NULL OR k.group_name = v_group)
       AND (v_like IS NULL
            OR lower(k.name) LIKE v_like
            OR lower(k.prefix) LIKE v_like);
    PERFORM tg_api._audit(p_ctx, 'key.export', 'key', NULL, NULL,
                          jsonb_build_object(
                              'user_id', v_user, 'status', v_status,
                              'group', v_group, 'q', v_q, 'mask', v_mask,
                              'total', v_total));
    RETURN jsonb_build_object('total', v_total);
END
$$;

-- keys_export: the next page of at most 1000 keys after key_id "cursor",
-- {"items": [...], "next_cursor": "<id>" or null}: a full page gives the
-- id of its last key as next_cursor (so the last page may come back
-- empty).  Each item: key_id, user_id, username, email (masked when mask
-- = email), name, prefix, last4, status, expires_at, group, models, rpm,
-- burst, tpm, concurrency, created_at, last_used_at.  Built as json, not
-- jsonb: the page is only ever sent on, and text is cheaper to build.
CREATE FUNCTION tg_api.keys_export(p_ctx jsonb, p_args jsonb)
RETURNS json
LANGUAGE plpgsql
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_owner bigint := tg_api._export_owner(p_ctx);
    v_user bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['active', 'disabled']);
    v_group text := tg_api._str(p_args, 'group', 63);
    v_q text := tg_api._contains(lower(tg_api._str(p_args, 'q', 128)));
    v_mask boolean := tg_api._enum(p_args, 'mask', ARRAY['email'])
                      IS NOT DISTINCT FROM 'email';
    v_cursor bigint := tg_api._cursor(p_args);
    v_limit integer := 1000;
    v_items json;
    v_n integer;
    v_last bigint;
BEGIN
    SELECT coalesce(json_agg(j ORDER BY id), '[]'), count(*), max(id)
      INTO v_items, v_n, v_last
      FROM (SELECT k.key_id AS id,
                   json_build_object(
                       'key_id', k.key_id,
                       'user_id', k.user_id,
                       'username', u.username,
                       'email', CASE WHEN v_mask
                                     THEN tg_api._mask_email(u.email)
                                     ELSE u.email END,
                       'name', k.name,
                       'prefix', k.prefix,
                       'last4', k.last4,
                       'status', k.status,
                       'expires_at', tg_api._ts(k.expires_at),
                       'group', k.group_name,
                       'models', k.models,
                       'rpm', k.rpm,
                       'burst', k.burst,
                       'tpm', k.tpm,
                       'concurrency', k.concurrency,
                       'created_at', tg_api._ts(k.created_at),
                       'last_used_at', tg_api._ts(k.last_used_at)) AS j
              FROM api_keys k
              LEFT JOIN users u ON u.user_id = k.user_id
             WHERE (v_cursor IS NULL OR k.key_id > v_cursor)
               AND (v_owner IS NULL OR k.user_id = v_owner)
               AND (v_user IS NULL OR k.user_id = v_user)
               AND (v_status IS NULL OR k.status = v_status)
               AND (v_group IS NULL OR k.group_name = v_group)
               AND (v_q IS NULL
                    OR lower(k.name) LIKE v_q
                    OR lower(k.prefix) LIKE v_q)
             ORDER BY k.key_id
             LIMIT v_limit) s;
    RETURN json_build_object('items', v_items,
                             'next_cursor',
                             CASE WHEN v_n = v_limit THEN v_last::text END);
END
$$;
