-- sql/functions/65_events.sql
--      Endpoint events: the batch insert admin stores them with, the
--      monthly partitions of endpoint_events, and the history of one
--      endpoint for GET /admin/api/endpoints/{id}/events.
--
-- NOTES
--      events_ingest takes the batch as one jsonb value (a parameter,
--      never SQL text): an array of the objects log.events writes, one
--      per event.  A replayed event (same host, time and ring position)
--      is skipped, so a batch retried after a lost answer counts once.
--
--      Partitions are made and dropped by tg_api._month_partition(s)
--      (00_common.sql).

-- Store batch <p_batch>, a jsonb array of event objects {event_id,
-- time_ms, host, endpoint, endpoint_index, type, from_state, to_state,
-- reason, status, consecutive, until_ms, pid, source}.  The endpoint id is
-- the database's endpoint of that name, if any.  Returns {inserted: n}.
CREATE FUNCTION tg_api.events_ingest(p_batch jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_month timestamptz;
    v_n bigint;
BEGIN
    IF jsonb_typeof(p_batch) IS DISTINCT FROM 'array' THEN
        PERFORM tg_api._raise('TG400', 'the batch must be an array', '');
    END IF;
    FOR v_month IN
        SELECT DISTINCT date_trunc('month',
                                   to_timestamp((e ->> 'time_ms')::bigint
                                                / 1000.0), 'UTC')
          FROM jsonb_array_elements(p_batch) AS e LOOP
        PERFORM tg_api._month_partition('endpoint_events', v_month);
    END LOOP;
    INSERT INTO endpoint_events (at, host, event_id, endpoint_id, endpoint,
                                 endpoint_index, type, from_state, to_state,
                                 reason, status, consecutive, until_at, pid,
                                 source)
    SELECT to_timestamp(r.time_ms / 1000.0), r.host, r.event_id,
           (SELECT e.endpoint_id FROM endpoints e WHERE e.name = r.endpoint),
           r.endpoint, r.endpoint_index, r.type, r.from_state, r.to_state,
           r.reason, r.status, r.consecutive,
           CASE WHEN r.until_ms > 0 THEN to_timestamp(r.until_ms / 1000.0)
           END,
           r.pid, r.source
      FROM jsonb_to_recordset(p_batch) AS r(event_id bigint, time_ms bigint,
                                            host text, endpoint text,
                                            endpoint_index integer,
                                            type text, from_state text,
                                            to_state text, reason text,
                                            status integer,
                                            consecutive integer,
                                            until_ms bigint, pid integer,
                                            source text)
    ON CONFLICT (host, at, event_id) DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('inserted', v_n);
END
$$;

-- Partitions endpoint_events_YYYYMM for this month and the next, and,
-- when <p_keep_months> > 0, drop those that ended more than that many
-- months ago.  Returns {created: [...], dropped: [...]}.
CREATE FUNCTION tg_api.events_partitions(p_keep_months integer)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public
RETURN tg_api._month_partitions('endpoint_events', p_keep_months);

CREATE FUNCTION tg_api._event_json(e public.endpoint_events)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'endpoint_event_id', e.endpoint_event_id,
    'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'host', e.host,
    'event_id', e.event_id,
    'endpoint_id', e.endpoint_id,
    'endpoint', e.endpoint,
    'type', e.type,
    'from_state', e.from_state,
    'to_state', e.to_state,
    'reason', e.reason,
    'status', e.status,
    'consecutive', e.consecutive,
    'until', CASE WHEN e.until_at IS NOT NULL THEN
                 to_char(e.until_at AT TIME ZONE 'UTC',
                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
    'pid', e.pid,
    'source', e.source);

-- endpoint_events_list: the events of endpoint <endpoint_id>, newest
-- first; from (inclusive) and to (exclusive) bound the time.  Admins
-- only; TG404 when no endpoint has that id.  Keyset on (at,
-- endpoint_event_id) descending: next_cursor is the endpoint_event_id of
-- the page's last row, and the next page holds the rows before it.
CREATE FUNCTION tg_api.endpoint_events_list(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
-- Plan each call for its own filters, so absent bounds cost nothing and
-- the partitions outside [from, to) are pruned.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'endpoint_id');
    v_limit integer := tg_api._limit(p_args);
    v_cursor bigint := tg_api._cursor(p_args);
    v_from timestamptz := tg_api._time(p_args, 'from');
    v_to timestamptz := tg_api._time(p_args, 'to');
    v_cat timestamptz;
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF NOT EXISTS (SELECT 1 FROM endpoints WHERE endpoint_id = v_id) THEN
        PERFORM tg_api._raise('TG404', 'no such endpoint', 'endpoint_id');
    END IF;
    IF v_cursor IS NOT NULL THEN
        SELECT e.at INTO v_cat FROM endpoint_events e
         WHERE e.endpoint_event_id = v_cursor AND e.endpoint_id = v_id;
        IF v_cat IS NULL THEN
            PERFORM tg_api._raise('TG400', 'cursor is not an event of this '
                                  || 'endpoint', 'cursor');
        END IF;
    END IF;
    SELECT coalesce(jsonb_agg(j ORDER BY at DESC, id DESC), '[]')
      INTO v_items
      FROM (SELECT e.at, e.endpoint_event_id AS id, tg_api._event_json(e) AS j
              FROM endpoint_events e
             WHERE e.endpoint_id = v_id
               AND (v_from IS NULL OR e.at >= v_from)
               AND (v_to IS NULL OR e.at < v_to)
               AND (v_cursor IS NULL
                    OR (e.at, e.endpoint_event_id) < (v_cat, v_cursor))
             ORDER BY e.at DESC, e.endpoint_event_id DESC
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'endpoint_event_id');
END
$$;
