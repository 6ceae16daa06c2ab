-- sql/functions/70_usage.sql
--      Usage and prices: the batch ingest admin flushes with, the usage
--      query of GET /admin/api/usage, /admin/api/prices, the price seed,
--      the sums quotas start from, the detail table's partitions and the
--      batch ledger's retention.
--
-- NOTES
--      usage_ingest is the one statement of a flush: the batch id row and
--      every usage_hourly upsert commit together, so a batch replayed
--      after a crash or an outage finds its id and changes nothing.  The
--      batch arrives as one jsonb value (a parameter, never SQL text):
--      rows are arrays in the order of _usage_cols below, costs integer
--      pico-dollars, times Unix seconds.
--
--      usage_list groups by a fixed set of expressions chosen with CASE
--      from the validated group_by list: the statement never changes with
--      the input.  A user sees only their own usage.
--
--      usage_partitions is tg_api._month_partitions (00_common.sql) on
--      usage_requests.

-- Batch ingest ------------------------------------------------------------

-- Apply batch <p_batch> {batch_id, host, records, rows: [[hour, user_id,
-- key_id, model, endpoint, requests, stream_requests, upstream_errors,
-- timeouts, client_gone, broken_streams, rejected, worker_crashed,
-- input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,
-- cache_write_1h_tokens, reasoning_tokens, cost_pusd, unpriced_requests,
-- tokens_unknown_requests, latency_ms_sum, latency_ms_max, ttfb_ms_sum,
-- bytes_in, bytes_out]...], detail: [[at_ms, request_id, user_id, key_id,
-- model, endpoint, api, stream, status, outcome, attempts, six tokens,
-- cost_pusd, unpriced, tokens_known, latency_ms, ttfb_ms, bytes_in,
-- bytes_out]...] (optional)}.  Returns {applied: true} or {applied: false}
-- when the batch id was applied before.
CREATE FUNCTION tg_api.usage_ingest(p_batch jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_rows integer := coalesce(jsonb_array_length(p_batch -> 'rows'), 0);
    v_month timestamptz;
BEGIN
    INSERT INTO usage_batches (batch_id, host, records, rows)
    VALUES (p_batch ->> 'batch_id', p_batch ->> 'host',
            (p_batch ->> 'records')::bigint, v_rows)
    ON CONFLICT (batch_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('applied', false);
    END IF;
    INSERT INTO usage_hourly AS h (
        hour, user_id, key_id, model, endpoint, host, requests,
        stream_requests, upstream_errors, timeouts, client_gone,
        broken_streams, rejected, worker_crashed, input_tokens,
        output_tokens, cache_read_tokens, cache_write_5m_tokens,
        cache_write_1h_tokens, reasoning_tokens, cost_usd,
        unpriced_requests, tokens_unknown_requests, latency_ms_sum,
        latency_ms_max, ttfb_ms_sum, bytes_in, bytes_out)
    SELECT to_timestamp((r ->> 0)::bigint), (r ->> 1)::bigint,
           (r ->> 2)::bigint, r ->> 3, r ->> 4, p_batch ->> 'host',
           (r ->> 5)::bigint, (r ->> 6)::bigint, (r ->> 7)::bigint,
           (r ->> 8)::bigint, (r ->> 9)::bigint, (r ->> 10)::bigint,
           (r ->> 11)::bigint, (r ->> 12)::bigint, (r ->> 13)::bigint,
           (r ->> 14)::bigint, (r ->> 15)::bigint, (r ->> 16)::bigint,
           (r ->> 17)::bigint, (r ->> 18)::bigint,
           (r ->> 19)::numeric / 1000000000000, (r ->> 20)::bigint,
           (r ->> 21)::bigint, (r ->> 22)::bigint, (r ->> 23)::bigint,
           (r ->> 24)::bigint, (r ->> 25)::bigint, (r ->> 26)::bigint
      FROM jsonb_array_elements(p_batch -> 'rows') AS r
    ON CONFLICT (hour, user_id, key_id, model, endpoint, host) DO UPDATE SET
        requests = h.requests + EXCLUDED.requests,
        stream_requests = h.stream_requests + EXCLUDED.stream_requests,
        upstream_errors = h.upstream_errors + EXCLUDED.upstream_errors,
        timeouts = h.timeouts + EXCLUDED.timeouts,
        client_gone = h.client_gone + EXCLUDED.client_gone,
        broken_streams = h.broken_streams + EXCLUDED.broken_streams,
        rejected = h.rejected + EXCLUDED.rejected,
        worker_crashed = h.worker_crashed + EXCLUDED.worker_crashed,
        input_tokens = h.input_tokens + EXCLUDED.input_tokens,
        output_tokens = h.output_tokens + EXCLUDED.output_tokens,
        cache_read_tokens = h.cache_read_tokens + EXCLUDED.cache_read_tokens,
        cache_write_5m_tokens =
            h.cache_write_5m_tokens + EXCLUDED.cache_write_5m_tokens,
        cache_write_1h_tokens =
            h.cache_write_1h_tokens + EXCLUDED.cache_write_1h_tokens,
        reasoning_tokens = h.reasoning_tokens + EXCLUDED.reasoning_tokens,
        cost_usd = h.cost_usd + EXCLUDED.cost_usd,
        unpriced_requests = h.unpriced_requests + EXCLUDED.unpriced_requests,
        tokens_unknown_requests =
            h.tokens_unknown_requests + EXCLUDED.tokens_unknown_requests,
        latency_ms_sum = h.latency_ms_sum + EXCLUDED.latency_ms_sum,
        latency_ms_max = greatest(h.latency_ms_max, EXCLUDED.latency_ms_max),
        ttfb_ms_sum = h.ttfb_ms_sum + EXCLUDED.ttfb_ms_sum,
        bytes_in = h.bytes_in + EXCLUDED.bytes_in,
        bytes_out = h.bytes_out + EXCLUDED.bytes_out;
    IF jsonb_array_length(coalesce(p_batch -> 'detail', '[]')) > 0 THEN
        -- A batch replayed late (from a journal or spool) may hold a
        -- month whose partition is not there (yet, or any more): made
        -- here, so the batch never fails for want of one.
        FOR v_month IN
            SELECT DISTINCT date_trunc('month',
                                       to_timestamp((d ->> 0)::numeric / 1000),
                                       'UTC')
              FROM jsonb_array_elements(p_batch -> 'detail') AS d LOOP
            PERFORM tg_api._month_partition('usage_requests', v_month);
        END LOOP;
        INSERT INTO usage_requests (
            at, host, request_id, user_id, key_id, model, endpoint, api,
            stream, status, outcome, attempts, input_tokens, output_tokens,
            cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
            reasoning_tokens, cost_usd, unpriced, tokens_known, latency_ms,
            ttfb_ms, bytes_in, bytes_out)
        SELECT to_timestamp((d ->> 0)::numeric / 1000), p_batch ->> 'host',
               d ->> 1, (d ->> 2)::bigint, (d ->> 3)::bigint, d ->> 4,
               d ->> 5, d ->> 6, (d ->> 7)::boolean, (d ->> 8)::integer,
               d ->> 9, (d ->> 10)::integer, (d ->> 11)::bigint,
               (d ->> 12)::bigint, (d ->> 13)::bigint, (d ->> 14)::bigint,
               (d ->> 15)::bigint, (d ->> 16)::bigint,
               (d ->> 17)::numeric / 1000000000000, (d ->> 18)::boolean,
               (d ->> 19)::boolean, (d ->> 20)::bigint, (d ->> 21)::bigint,
               (d ->> 22)::bigint, (d ->> 23)::bigint
          FROM jsonb_array_elements(p_batch -> 'detail') AS d;
    END IF;
    RETURN jsonb_build_object('applied', true);
END
$$;

-- Batch ledger retention: delete at most <p_limit> usage_batches rows
-- applied more than <p_retention_ms> milliseconds ago, oldest first,
-- skipping rows another admin's purge holds.  Returns the rows deleted;
-- the caller asks again while a call deletes <p_limit>, so each
-- transaction stays short whatever the backlog.  A batch id purged here
-- is no longer recognised: usage.batch_retention must exceed the longest
-- time a batch can wait in a journal (docs/configuration.md).
CREATE FUNCTION tg_api.usage_batches_purge(p_retention_ms bigint,
                                           p_limit integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_n integer;
BEGIN
    IF p_retention_ms IS NULL OR p_retention_ms < 3600000 THEN
        PERFORM tg_api._raise('TG422', 'retention must be at least an hour',
                              'retention_ms');
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 100000 THEN
        PERFORM tg_api._raise('TG422', 'limit must be 1..100000', 'limit');
    END IF;
    DELETE FROM usage_batches
     WHERE batch_id IN (
        SELECT batch_id FROM usage_batches
         WHERE applied_at < now() - make_interval(secs => p_retention_ms
                                                          / 1000.0)
         ORDER BY applied_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Detail partitions: usage_requests_YYYYMM for this month and the next,
-- and, when <p_keep_months> > 0, drop those that ended more than that
-- many months ago.  Returns {created: [...], dropped: [...]}.
CREATE FUNCTION tg_api.usage_partitions(p_keep_months integer)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public
RETURN tg_api._month_partitions('usage_requests', p_keep_months);

-- Quota sums --------------------------------------------------------------

-- Usage of the day and the month starting at <p_day> and <p_month> (Unix
-- seconds, in usage.timezone) per user and per key that has a quota,
-- split into this host's (<p_host>) and the other hosts': tokens (every
-- class but reasoning, cache reads included), cache_read of them, and
-- cost in pico-dollars.  Keys come with their digest (hex), which names
-- their shared-memory entry.  Hourly rows: a day boundary that is not on
-- an hour (a half-hour time zone) counts the straddling hour in the new
-- day.
CREATE FUNCTION tg_api.usage_quota_sums(p_host text, p_day bigint,
                                        p_month bigint)
RETURNS TABLE (kind text, id bigint, digest text, period text,
               self_tokens bigint, self_cache_read bigint,
               self_cost_pusd numeric, other_tokens bigint,
               other_cache_read bigint, other_cost_pusd numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$
    WITH h AS (
        SELECT u.user_id, u.key_id, u.host = p_host AS self,
               u.hour >= to_timestamp(p_day) AS today,
               u.input_tokens + u.output_tokens + u.cache_read_tokens
               + u.cache_write_5m_tokens + u.cache_write_1h_tokens AS t,
               u.cache_read_tokens AS cr, u.cost_usd AS c
          FROM usage_hourly u
         WHERE u.hour >= to_timestamp(least(p_day, p_month))
    ), q AS (
        SELECT 'user'::text AS kind, h.user_id AS id, NULL::text AS digest,
               h.*
          FROM h JOIN users x ON x.user_id = h.user_id
         WHERE num_nonnulls(x.tokens_day, x.tokens_month, x.cost_day_usd,
                            x.cost_month_usd) > 0
        UNION ALL
        SELECT 'key', h.key_id, encode(x.digest, 'hex'), h.*
          FROM h JOIN api_keys x ON x.key_id = h.key_id
         WHERE num_nonnulls(x.tokens_day, x.tokens_month, x.cost_day_usd,
                            x.cost_month_usd) > 0
    ), p AS (
        SELECT q.*, 'day'::text AS period FROM q WHERE q.today
        UNION ALL
        SELECT q.*, 'month' FROM q
    )
    SELECT kind, id, digest, period,
           coalesce(sum(t) FILTER (WHERE self), 0)::bigint,
           coalesce(sum(cr) FILTER (WHERE self), 0)::bigint,
           trunc(coalesce(sum(c) FILTER (WHERE self), 0) * 1000000000000),
           coalesce(sum(t) FILTER (WHERE NOT self), 0)::bigint,
           coalesce(sum(cr) FILTER (WHERE NOT self), 0)::bigint,
           trunc(coalesce(sum(c) FILTER (WHERE NOT self), 0) * 1000000000000)
      FROM p GROUP BY kind, id, digest, period
$$;

-- Usage query -------------------------------------------------------------

-- GET /admin/api/usage.  Arguments: from, to (times; hours in [from, to),
-- from rounded down to its hour; default this month), user, key (ids),
-- model, endpoint (exact names), group_by (comma-separated list of hour,
-- day, month, user, key, model, endpoint; at most one of the first
-- three), limit (1..10000 rows, default 1000).  Returns {items: [{<the
-- grouping columns>, requests, errors, input_tokens, output_tokens,
-- cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
-- reasoning_tokens, cost_usd (decimal string)}...], truncated}.
CREATE FUNCTION tg_api.usage_list(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_from timestamptz := coalesce(tg_api._time(p_args, 'from'),
                                   date_trunc('month', now(), 'UTC'));
    v_to timestamptz := coalesce(tg_api._time(p_args, 'to'), 'infinity');
    v_user bigint := coalesce(tg_api._int(p_args, 'user', 0,
                                          9223372036854775807),
                              tg_api._int(p_args, 'user_id', 0,
                                          9223372036854775807));
    v_key bigint := coalesce(tg_api._int(p_args, 'key', 0,
                                         9223372036854775807),
                             tg_api._int(p_args, 'key_id', 0,
                                         9223372036854775807));
    v_model text := tg_api._str(p_args, 'model', 63);
    v_endpoint text := tg_api._str(p_args, 'endpoint', 63);
    v_limit integer := coalesce(tg_api._int(p_args, 'limit', 1, 10000), 1000);
    v_groups text[] := '{}';
    v_g text;
    v_bucket text;
    v_drop text[];
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    IF NOT tg_api._is_admin(p_ctx) THEN
        IF v_user IS NOT NULL AND v_user <> tg_api._actor(p_ctx) THEN
            PERFORM tg_api._raise('TG403', 'a user sees only their own '
                                  || 'usage', 'user');
        END IF;
        v_user := tg_api._actor(p_ctx);
    END IF;
    FOREACH v_g IN ARRAY coalesce(string_to_array(
        tg_api._str(p_args, 'group_by', 128), ','), '{}') LOOP
        v_g := btrim(v_g);
        IF v_g NOT IN ('hour', 'day', 'month', 'user', 'key', 'model',
                       'endpoint') THEN
            PERFORM tg_api._raise('TG422', 'group_by takes hour, day, month, '
                                  || 'user, key, model and endpoint',
                                  'group_by');
        END IF;
        IF v_g IN ('hour', 'day', 'month') THEN
            IF v_bucket IS NOT NULL AND v_bucket <> v_g THEN
                PERFORM tg_api._raise('TG422', 'group_by takes at most one '
                                      || 'of hour, day and month',
                                      'group_by');
            END IF;
            v_bucket := v_g;
        END IF;
        v_groups := v_groups || v_g;
    END LOOP;
    IF v_to <= v_from THEN
        PERFORM tg_api._raise('TG422', 'to must be after from', 'to');
    END IF;
    v_drop := ARRAY(SELECT c FROM unnest(ARRAY['hour', 'day', 'month',
                                              'user_id', 'key_id', 'model',
                                              'endpoint']) AS c
                     WHERE NOT (replace(c, '_id', '') = ANY (v_groups)));
    SELECT coalesce(jsonb_agg(j ORDER BY o), '[]')
      INTO v_items
      FROM (SELECT jsonb_build_object(
                       'hour', tg_api._ts(s.bucket),
                       'day', tg_api._ts(s.bucket),
                       'month', tg_api._ts(s.bucket),
                       'user_id', s.user_id, 'key_id', s.key_id,
                       'model', s.model, 'endpoint', s.endpoint,
                       'requests', s.requests, 'errors', s.errors,
                       'input_tokens', s.input_tokens,
                       'output_tokens', s.output_tokens,
                       'cache_read_tokens', s.cache_read_tokens,
                       'cache_write_5m_tokens', s.cache_write_5m_tokens,
                       'cache_write_1h_tokens', s.cache_write_1h_tokens,
                       'reasoning_tokens', s.reasoning_tokens,
                       'cost_usd', tg_api._money(s.cost_usd)) - v_drop AS j,
                   row_number() OVER (ORDER BY s.bucket, s.user_id,
                                      s.key_id, s.model, s.endpoint) AS o
              FROM (SELECT CASE v_bucket
                               WHEN 'hour' THEN u.hour
                               WHEN 'day' THEN date_trunc('day', u.hour,
                                                          'UTC')
                               WHEN 'month' THEN date_trunc('month', u.hour,
                                                            'UTC')
                           END AS bucket,
                           CASE WHEN 'user' = ANY (v_groups)
                                THEN u.user_id END AS user_id,
                           CASE WHEN 'key' = ANY (v_groups)
                                THEN u.key_id END AS key_id,
                           CASE WHEN 'model' = ANY (v_groups)
                                THEN u.model END AS model,
                           CASE WHEN 'endpoint' = ANY (v_groups)
                                THEN u.endpoint END AS endpoint,
                           sum(u.requests)::bigint AS requests,
                           sum(u.errors)::bigint AS errors,
                           sum(u.input_tokens)::bigint AS input_tokens,
                           sum(u.output_tokens)::bigint AS output_tokens,
                           sum(u.cache_read_tokens)::bigint
                               AS cache_read_tokens,
                           sum(u.cache_write_5m_tokens)::bigint
                               AS cache_write_5m_tokens,
                           sum(u.cache_write_1h_tokens)::bigint
                               AS cache_write_1h_tokens,
                           sum(u.reasoning_tokens)::bigint
                               AS reasoning_tokens,
                           sum(u.cost_usd) AS cost_usd
                      FROM usage_hourly u
                     WHERE u.hour >= date_trunc('hour', v_from, 'UTC')
                       AND u.hour < v_to
                       AND (v_user IS NULL OR u.user_id = v_user)
                       AND (v_key IS NULL OR u.key_id = v_key)
                       AND (v_model IS NULL OR u.model = v_model)
                       AND (v_endpoint IS NULL OR u.endpoint = v_endpoint)
                     GROUP BY 1, 2, 3, 4, 5
                     ORDER BY 1, 2, 3, 4, 5
                     LIMIT v_limit + 1) s) t;
    RETURN jsonb_build_object(
        'items', CASE WHEN jsonb_array_length(v_items) > v_limit
                      THEN v_items - v_limit ELSE v_items END,
        'truncated', jsonb_array_length(v_items) > v_limit);
END
$$;

-- Prices ------------------------------------------------------------------

-- USD per million tokens: a JSON number or decimal string, 0 ..
-- 99999999.999999, at most six decimals (so that it is a whole number of
-- pico-dollars per token).
CREATE FUNCTION tg_api._price(p_args jsonb, p_field text)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> p_field;
    s text;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    s := v #>> '{}';
    IF jsonb_typeof(v) NOT IN ('number', 'string') THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be a decimal number',
                              p_field);
    END IF;
    IF s !~ '^[0-9]{1,8}(\.[0-9]{1,6})?$' THEN
        PERFORM tg_api._raise('TG422', p_field || ' must be a non-negative '
                              || 'amount below 10^8 with at most 6 decimals',
                              p_field);
    END IF;
    RETURN s::numeric(14, 6);
END
$$;

CREATE FUNCTION tg_api._price_json(p public.model_prices)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'price_id', p.price_id,
    'pattern', p.pattern,
    'input_usd_per_mtok', tg_api._money(p.input_usd_per_mtok),
    'output_usd_per_mtok', tg_api._money(p.output_usd_per_mtok),
    'cache_read_usd_per_mtok', tg_api._money(p.cache_read_usd_per_mtok),
    'cache_write_5m_usd_per_mtok',
    tg_api._money(p.cache_write_5m_usd_per_mtok),
    'cache_write_1h_usd_per_mtok',
    tg_api._money(p.cache_write_1h_usd_per_mtok),
    'effective_from', CASE WHEN p.effective_from = '-infinity'
                           THEN NULL ELSE tg_api._ts(p.effective_from) END,
    'in_force', p.effective_from <= now()
                AND NOT EXISTS (SELECT 1 FROM public.model_prices n
                                 WHERE n.pattern = p.pattern
                                   AND n.effective_from > p.effective_from
                                   AND n.effective_from <= now()),
    'managed_by', p.managed_by,
    'comments', p.comments,
    'created_at', tg_api._ts(p.created_at),
    'updated_at', tg_api._ts(p.updated_at));

CREATE FUNCTION tg_api._price_find(p_id bigint, p_lock boolean)
RETURNS public.model_prices
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    p model_prices;
BEGIN
    IF p_lock THEN
        SELECT * INTO p FROM model_prices WHERE price_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO p FROM model_prices WHERE price_id = p_id;
    END IF;
    IF NOT FOUND THEN
        PERFORM tg_api._raise('TG404', 'no price ' || p_id, 'price_id');
    END IF;
    RETURN p;
END
$$;

CREATE FUNCTION tg_api._price_pattern(p_args jsonb, p_required boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := CASE WHEN p_required THEN tg_api._req_str(p_args, 'pattern', 63)
                   ELSE tg_api._str(p_args, 'pattern', 63) END;
BEGIN
    IF v IS NOT NULL AND v !~ '^[A-Za-z0-9_.:/@*-]{1,63}$' THEN
        PERFORM tg_api._raise('TG422', 'pattern must be 1..63 characters of '
                              || 'A-Z a-z 0-9 _ . : / @ - and *', 'pattern');
    END IF;
    RETURN v;
END
$$;

-- Any authenticated user may read prices: they are list prices.
CREATE FUNCTION tg_api.prices_list(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_q text := tg_api._str(p_args, 'q', 63);
    v_model text := tg_api._str(p_args, 'model', 63);
    v_all boolean := coalesce(tg_api._str(p_args, 'all', 5) = 'true', false);
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY pattern, effective_from DESC), '[]')
      INTO v_items
      FROM (SELECT tg_api._price_json(p) AS j, p.pattern, p.effective_from
              FROM model_prices p
             WHERE (v_q IS NULL OR strpos(lower(p.pattern), lower(v_q)) > 0)
               AND (v_model IS NULL
                    OR v_model LIKE replace(replace(replace(replace(
                           p.pattern, '\', '\\'), '%', '\%'), '_', '\_'),
                           '*', '%'))
             LIMIT 5000) s
     WHERE v_all OR (j ->> 'in_force')::boolean
        OR (s.effective_from > now());
    RETURN jsonb_build_object('items', v_items, 'next_cursor', NULL);
END
$$;

CREATE FUNCTION tg_api.prices_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    RETURN tg_api._price_json(
        tg_api._price_find(tg_api._id(p_args, 'price_id'), false));
END
$$;

CREATE FUNCTION tg_api.prices_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_pattern text := tg_api._price_pattern(p_args, true);
    v_from timestamptz := coalesce(tg_api._time(p_args, 'effective_from'),
                                   now());
    p model_prices;
    f text;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    FOREACH f IN ARRAY ARRAY['input_usd_per_mtok', 'output_usd_per_mtok',
                             'cache_read_usd_per_mtok',
                             'cache_write_5m_usd_per_mtok',
                             'cache_write_1h_usd_per_mtok'] LOOP
        IF tg_api._price(p_args, f) IS NULL THEN
            PERFORM tg_api._raise('TG400', f || ' is required', f);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM model_prices
                WHERE pattern = v_pattern AND effective_from = v_from) THEN
        PERFORM tg_api._raise('TG409', 'a price for "' || v_pattern
                              || '" from that time exists', 'pattern');
    END IF;
    INSERT INTO model_prices (pattern, input_usd_per_mtok,
                              output_usd_per_mtok, cache_read_usd_per_mtok,
                              cache_write_5m_usd_per_mtok,
                              cache_write_1h_usd_per_mtok, effective_from,
                              managed_by, comments)
    VALUES (v_pattern, tg_api._price(p_args, 'input_usd_per_mtok'),
            tg_api._price(p_args, 'output_usd_per_mtok'),
            tg_api._price(p_args, 'cache_read_usd_per_mtok'),
            tg_api._price(p_args, 'cache_write_5m_usd_per_mtok'),
            tg_api._price(p_args, 'cache_write_1h_usd_per_mtok'), v_from,
            'api', coalesce(tg_api._str(p_args, 'comments', 1000), ''))
    RETURNING * INTO p;
    PERFORM tg_api._audit(p_ctx, 'price.create', 'price', p.price_id, NULL,
                          tg_api._price_json(p));
    RETURN tg_api._price_json(p);
END
$$;

CREATE FUNCTION tg_api.prices_update(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'price_id');
    old model_prices;
    p model_prices;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._price_find(v_id, true);
    UPDATE model_prices SET
        pattern = coalesce(tg_api._price_pattern(p_args, false), pattern),
        input_usd_per_mtok = coalesce(tg_api._price(p_args,
                                                    'input_usd_per_mtok'),
                                      input_usd_per_mtok),
        output_usd_per_mtok = coalesce(tg_api._price(p_args,
                                                     'output_usd_per_mtok'),
                                       output_usd_per_mtok),
        cache_read_usd_per_mtok =
            coalesce(tg_api._price(p_args, 'cache_read_usd_per_mtok'),
                     cache_read_usd_per_mtok),
        cache_write_5m_usd_per_mtok =
            coalesce(tg_api._price(p_args, 'cache_write_5m_usd_per_mtok'),
                     cache_write_5m_usd_per_mtok),
        cache_write_1h_usd_per_mtok =
            coalesce(tg_api._price(p_args, 'cache_write_1h_usd_per_mtok'),
                     cache_write_1h_usd_per_mtok),
        effective_from = CASE WHEN p_args ? 'effective_from'
                              THEN coalesce(tg_api._time(p_args,
                                                         'effective_from'),
                                            '-infinity')
                              ELSE effective_from END,
        comments = coalesce(tg_api._str(p_args, 'comments', 1000), comments),
        managed_by = 'api'
     WHERE price_id = v_id
    RETURNING * INTO p;
    PERFORM tg_api._audit(p_ctx, 'price.update', 'price', v_id,
                          tg_api._price_json(old), tg_api._price_json(p));
    RETURN tg_api._price_json(p);
END
$$;

CREATE FUNCTION tg_api.prices_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'price_id');
    old model_prices;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._price_find(v_id, true);
    DELETE FROM model_prices WHERE price_id = v_id;
    PERFORM tg_api._audit(p_ctx, 'price.delete', 'price', v_id,
                          tg_api._price_json(old), NULL);
    RETURN jsonb_build_object('price_id', v_id, 'deleted', true);
END
$$;

-- Seed from the shipped price file <p_seed> {version, source, prices:
-- [{pattern, input_usd_per_mtok, ..., comments}...]}, once per version:
-- rows are inserted with managed_by 'seed' unless the pattern already has
-- a price from the same time.  Returns the rows inserted (0 when this
-- version was seeded before).
CREATE FUNCTION tg_api.prices_seed(p_seed jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_version text := tg_api._req_str(p_seed, 'version', 64);
    v_from timestamptz := coalesce(tg_api._time(p_seed, 'effective_from'),
                                   '-infinity');
    v_item jsonb;
    v_n integer := 0;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tollgate.prices_seed'));
    IF EXISTS (SELECT 1 FROM model_price_seeds WHERE version = v_version) THEN
        RETURN 0;
    END IF;
    FOR v_item IN SELECT * FROM jsonb_array_elements(p_seed -> 'prices') LOOP
        INSERT INTO model_prices (pattern, input_usd_per_mtok,
                                  output_usd_per_mtok,
                                  cache_read_usd_per_mtok,
                                  cache_write_5m_usd_per_mtok,
                                  cache_write_1h_usd_per_mtok,
                                  effective_from, managed_by, comments)
        VALUES (tg_api._price_pattern(v_item, true),
                tg_api._price(v_item, 'input_usd_per_mtok'),
                tg_api._price(v_item, 'output_usd_per_mtok'),
                tg_api._price(v_item, 'cache_read_usd_per_mtok'),
                tg_api._price(v_item, 'cache_write_5m_usd_per_mtok'),
                tg_api._price(v_item, 'cache_write_1h_usd_per_mtok'),
                v_from, 'seed',
                coalesce(tg_api._str(v_item, 'comments', 1000),
                         'list price, ' || v_version))
        ON CONFLICT (pattern, effective_from) DO NOTHING
        RETURNING price_id INTO v_id;
        IF v_id IS NOT NULL THEN
            v_n := v_n + 1;
        END IF;
        v_id := NULL;
    END LOOP;
    INSERT INTO model_price_seeds (version, rows) VALUES (v_version, v_n);
    PERFORM tg_api._audit(jsonb_build_object('role', 'system'), 'price.seed',
                          'price', NULL, NULL,
                          jsonb_build_object('version', v_version,
                                             'rows', v_n));
    RETURN v_n;
END
$$;

-- The prices in force now, most specific pattern first (fewest *, then
-- longest), in integer pico-dollars per token, for shared memory.
CREATE FUNCTION tg_api.prices_current()
RETURNS TABLE (pattern text, input_pusd bigint, output_pusd bigint,
               cache_read_pusd bigint, cache_write_5m_pusd bigint,
               cache_write_1h_pusd bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$
    SELECT s.* FROM (
        SELECT DISTINCT ON (p.pattern) p.pattern,
               (p.input_usd_per_mtok * 1000000)::bigint,
               (p.output_usd_per_mtok * 1000000)::bigint,
               (p.cache_read_usd_per_mtok * 1000000)::bigint,
               (p.cache_write_5m_usd_per_mtok * 1000000)::bigint,
               (p.cache_write_1h_usd_per_mtok * 1000000)::bigint
          FROM model_prices p
         WHERE p.effective_from <= now()
         ORDER BY p.pattern, p.effective_from DESC) s
     ORDER BY length(s.pattern) - length(replace(s.pattern, '*', '')),
              length(s.pattern) DESC, s.pattern
$$;
