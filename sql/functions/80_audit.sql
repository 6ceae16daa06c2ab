-- sql/functions/80_audit.sql
--      /admin/api/audit: the audit log, newest first (admins only).

-- audit_list: filters actor (user id), action (exact, e.g. 'key.disable'),
-- target_type, target_id, from and to (times; from inclusive, to
-- exclusive).  Keyset on audit_id descending: next_cursor is the last
-- audit_id of the page and the next page holds smaller ones.
CREATE FUNCTION tg_api.audit_list(p_ctx jsonb, p_args jsonb)
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
    v_actor bigint := tg_api._int(p_args, 'actor', 1, 9223372036854775807);
    v_action text := tg_api._str(p_args, 'action', 64);
    v_type text := tg_api._str(p_args, 'target_type', 32);
    v_target bigint := tg_api._int(p_args, 'target_id', 1,
                                   9223372036854775807);
    v_from timestamptz := tg_api._time(p_args, 'from');
    v_to timestamptz := tg_api._time(p_args, 'to');
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY id DESC), '[]')
      INTO v_items
      FROM (SELECT l.audit_id AS id, tg_api._audit_json(l) AS j
              FROM audit_log l
             WHERE (v_cursor IS NULL OR l.audit_id < v_cursor)
               AND (v_actor IS NULL OR l.actor_user_id = v_actor)
               AND (v_action IS NULL OR l.action = v_action)
               AND (v_type IS NULL OR l.target_type = v_type)
               AND (v_target IS NULL OR l.target_id = v_target)
               AND (v_from IS NULL OR l.at >= v_from)
               AND (v_to IS NULL OR l.at < v_to)
             ORDER BY l.audit_id DESC
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'audit_id');
END
$$;
