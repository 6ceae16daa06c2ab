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

-- The filters of an export, checked once: {owner, user, status, group, q}.
CREATE FUNCTION tg_api._export_filters(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_owner bigint;
BEGIN
    IF NOT tg_api._is_admin(p_ctx) THEN
        v_owner := tg_api._require_actor(p_ctx);
    END IF;
    RETURN jsonb_build_object(
        'owner', v_owner,
        'user', tg_api._int(p_args, 'user_id', 1, 9223372036854775807),
        'status', tg_api._enum(p_args, 'status', ARRAY['active', 'disabled']),
        'group', tg_api._str(p_args, 'group', 63),
        'q', lower(tg_api._str(p_args, 'q', 128)),
        'mask', coalesce(tg_api._enum(p_args, 'mask', ARRAY['email']), ''));
END
$$;

-- True when key <k> passes filters <f> (from _export_filters).
CREATE FUNCTION tg_api._export_match(k public.api_keys, f jsonb)
RETURNS boolean
LANGUAGE sql STABLE
RETURN (f ->> 'owner' IS NULL OR k.user_id = (f ->> 'owner')::bigint)
   AND (f ->> 'user' IS NULL OR k.user_id = (f ->> 'user')::bigint)
   AND (f ->> 'status' IS NULL OR k.status = f ->> 'status')
   AND (f ->> 'group' IS NULL OR k.group_name = f ->> 'group')
   AND (f ->> 'q' IS NULL
        OR strpos(lower(k.name), f ->> 'q') > 0
        OR strpos(lower(k.prefix), f ->> 'q') > 0);

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
AS $$
DECLARE
    f jsonb := tg_api._export_filters(p_ctx, p_args);
    v_total bigint;
BEGIN
    SELECT count(*) INTO v_total
      FROM api_keys k
     WHERE tg_api._export_match(k, f);
    PERFORM tg_api._audit(p_ctx, 'key.export', 'key', NULL, NULL,
                          jsonb_build_object('filters', f - 'owner',
                                             'total', v_total));
    RETURN jsonb_build_object('total', v_total);
END
$$;

-- keys_export: the next page of at most 1000 keys after key_id "cursor",
-- {"items": [...], "next_cursor": "<id>" or null}.  Each item: key_id,
-- user_id, username, email (masked when mask = email), name, prefix,
-- last4, status, expires_at, group, models, rpm, burst, tpm,
-- concurrency, created_at, last_used_at.
CREATE FUNCTION tg_api.keys_export(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    f jsonb := tg_api._export_filters(p_ctx, p_args);
    v_cursor bigint := tg_api._cursor(p_args);
    v_limit integer := 1000;
    v_items jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT k.key_id AS id,
                   jsonb_build_object(
                       'key_id', k.key_id,
                       'user_id', k.user_id,
                       'username', u.username,
                       'email', CASE WHEN f ->> 'mask' = 'email'
                                     THEN tg_api._mask_email(u.email)
                                     ELSE u.email END,
                       'name', k.name,
                       'prefix', k.prefix,
                       'last4', k.last4,
                       'status', k.status,
                       'expires_at', tg_api._ts(k.expires_at),
                       'group', k.group_name,
                       'models', to_jsonb(k.models),
                       'rpm', k.rpm,
                       'burst', k.burst,
                       'tpm', k.tpm,
                       'concurrency', k.concurrency,
                       'created_at', tg_api._ts(k.created_at),
                       'last_used_at', tg_api._ts(k.last_used_at)) AS j
              FROM api_keys k
              LEFT JOIN users u ON u.user_id = k.user_id
             WHERE (v_cursor IS NULL OR k.key_id > v_cursor)
               AND tg_api._export_match(k, f)
             ORDER BY k.key_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'key_id');
END
$$;
