-- sql/functions/00_common.sql
--      Helpers shared by the tg_api functions: context and argument
--      checks, errors, JSON shapes of the rows, pagination and audit.
--
-- NOTES
--      Schema tg_api is dropped and re-created at every start, then the
--      files of sql/functions/ run in name order; this one comes first.
--      Helpers start with an underscore; the admin API calls only the
--      functions without one.
--
--      Errors are raised with SQLSTATE 'TG<http status>' (TG400, TG401,
--      TG403, TG404, TG409, TG422, TG429), the message for the client and
--      DETAIL = the name of the field at fault ('' when none).
--
--      No function here or in the other files builds SQL text: every
--      statement is static, arguments only ever reach it as values.  The
--      one exception is the monthly partition upkeep (_month_partition,
--      _month_partitions): the parent is one of a fixed list, and names
--      and bounds come from dates the function computes (format with %I
--      and %L).

CREATE FUNCTION tg_api._raise(p_code text, p_message text,
                              p_field text DEFAULT '')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message,
                          DETAIL = coalesce(p_field, '');
END
$$;

-- Monthly partitions --------------------------------------------------------

-- Refuse a parent table that is not partitioned by month here.
CREATE FUNCTION tg_api._month_parent(p_parent text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF p_parent IS NULL
       OR p_parent NOT IN ('endpoint_events', 'usage_requests') THEN
        RAISE EXCEPTION 'not a monthly partitioned table: %', p_parent;
    END IF;
    RETURN format('public.%I', p_parent)::regclass;
END
$$;

-- The partition <p_parent>_YYYYMM of public.<p_parent> holding <p_at>,
-- created when missing.  Returns its name when it was created, else NULL.
-- Hosts sharing the database may want the same partition at once (at
-- start, at a month's turn): a transaction lock serialises the creators,
-- and the one that waited finds it made.
CREATE FUNCTION tg_api._month_partition(p_parent text, p_at timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_parent regclass := tg_api._month_parent(p_parent);  -- refuses others
    v_from timestamptz := date_trunc('month', p_at, 'UTC');
    v_name text := p_parent || '_'
                   || to_char(v_from AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass(format('public.%I', v_name)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tollgate.month_partition'),
                                  hashtext(v_name));
    -- Read pg_class with this statement's snapshot: to_regclass may answer
    -- from a cached miss that the other host's commit did not reset.
    IF EXISTS (SELECT FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relname = v_name) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I '
                   || 'FOR VALUES FROM (%L) TO (%L)',
                   v_name, p_parent, v_from,
                   (v_from AT TIME ZONE 'UTC' + interval '1 month')
                   AT TIME ZONE 'UTC');
    RETURN v_name;
END
$$;

-- Partitions <p_parent>_YYYYMM for this month and the next, and, when
-- <p_keep_months> > 0, drop those that ended more than that many months
-- ago.  Returns {created: [...], dropped: [...]}.
CREATE FUNCTION tg_api._month_partitions(p_parent text,
                                         p_keep_months integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_parent regclass := tg_api._month_parent(p_parent);
    v_month timestamptz := date_trunc('month', now(), 'UTC');
    v_name text;
    v_created text[] := '{}';
    v_dropped text[] := '{}';
    v_part record;
    i integer;
BEGIN
    FOR i IN 0..1 LOOP
        v_name := tg_api._month_partition(p_parent,
            (v_month AT TIME ZONE 'UTC' + make_interval(months => i))
            AT TIME ZONE 'UTC');
        IF v_name IS NOT NULL THEN
            v_created := v_created || v_name;
        END IF;
    END LOOP;
    IF p_keep_months > 0 THEN
        FOR v_part IN
            SELECT c.relname
              FROM pg_inherits h
              JOIN pg_class c ON c.oid = h.inhrelid
             WHERE h.inhparent = v_parent
               AND left(c.relname, length(p_parent) + 1) = p_parent || '_'
               AND substr(c.relname, length(p_parent) + 2) ~ '^[0-9]{6}$'
               AND to_timestamp(substr(c.relname, length(p_parent) + 2),
                                'YYYYMM')
                   < (v_month AT TIME ZONE 'UTC'
                      - make_interval(months => p_keep_months)) LOOP
            EXECUTE format('DROP TABLE public.%I', v_part.relname);
            v_dropped := v_dropped || v_part.relname::text;
        END LOOP;
    END IF;
    RETURN jsonb_build_object('created', to_jsonb(v_created),
                              'dropped', to_jsonb(v_dropped));
END
$$;

-- RFC 3339 in UTC, whole seconds: 2026-01-02T03:04:05Z.
CREATE FUNCTION tg_api._ts(p_t timestamptz)
RETURNS text
LANGUAGE sql STABLE
RETURN to_char(p_t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

-- Money as a decimal string without trailing zeros ("12.5"); NULL stays.
CREATE FUNCTION tg_api._money(p_v numeric)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN trim_scale(p_v)::text;

-- Context -----------------------------------------------------------------

-- The acting user, or NULL (Tollgate itself, or a login not yet tied to
-- a user).
CREATE FUNCTION tg_api._actor(p_ctx jsonb)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := p_ctx ->> 'actor';
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[0-9]{1,18}$' THEN
        PERFORM tg_api._raise('TG400', 'context actor is not a user id',
                              'actor');
    END IF;
    RETURN v::bigint;
END
$$;

-- 'admin', 'user', or 'system' (Tollgate itself: start-up import, health
-- checks); anything else is refused.
CREATE FUNCTION tg_api._role(p_ctx jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := p_ctx ->> 'role';
BEGIN
    IF v IS NULL OR v NOT IN ('admin', 'user', 'system') THEN
        PERFORM tg_api._raise('TG401', 'authentication required', '');
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION tg_api._is_admin(p_ctx jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE
RETURN tg_api._role(p_ctx) IN ('admin', 'system');

CREATE FUNCTION tg_api._require_admin(p_ctx jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF NOT tg_api._is_admin(p_ctx) THEN
        PERFORM tg_api._raise('TG403', 'this needs the admin role', '');
    END IF;
END
$$;

-- The acting user's id; TG401 when the context has none.
CREATE FUNCTION tg_api._require_actor(p_ctx jsonb)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM tg_api._role(p_ctx);
    v := tg_api._actor(p_ctx);
    IF v IS NULL THEN
        PERFORM tg_api._raise('TG401', 'authentication required', '');
    END IF;
    RETURN v;
END
$$;

-- Admins and Tollgate itself pass; a user must carry their id.
CREATE FUNCTION tg_api._require_actor_or_admin(p_ctx jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF NOT tg_api._is_admin(p_ctx) THEN
        PERFORM tg_api._require_actor(p_ctx);
    END IF;
END
$$;

-- Arguments ---------------------------------------------------------------
-- Each reader returns NULL when the field is absent or JSON null, raises
-- TG400 naming the field when it has the wrong JSON type and TG422 when
-- the value is out of range.

CREATE FUNCTION tg_api._str(p_args jsonb, p_field text, p_max integer)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> p_field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'string' THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be a string',
                              p_field);
    END IF;
    IF length(v #>> '{}') > p_max THEN
        PERFORM tg_api._raise('TG422', p_field || ' is longer than '
                              || p_max || ' characters', p_field);
    END IF;
    RETURN v #>> '{}';
END
$$;

-- A required string: TG400 when absent or null.
CREATE FUNCTION tg_api._req_str(p_args jsonb, p_field text, p_max integer)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := tg_api._str(p_args, p_field, p_max);
BEGIN
    IF v IS NULL THEN
        PERFORM tg_api._raise('TG400', p_field || ' is required', p_field);
    END IF;
    RETURN v;
END
$$;

-- One of <p_allowed>.
CREATE FUNCTION tg_api._enum(p_args jsonb, p_field text, p_allowed text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := tg_api._str(p_args, p_field, 64);
BEGIN
    IF v IS NOT NULL AND NOT (v = ANY (p_allowed)) THEN
        PERFORM tg_api._raise('TG422', p_field || ' must be one of '
                              || array_to_string(p_allowed, ', '), p_field);
    END IF;
    RETURN v;
END
$$;

-- An integer in [p_lo, p_hi], given as a JSON number or a string of digits
-- (path ids and query parameters arrive as strings).
CREATE FUNCTION tg_api._int(p_args jsonb, p_field text, p_lo bigint,
                            p_hi bigint)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> p_field;
    s text;
    n numeric;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    s := v #>> '{}';
    IF jsonb_typeof(v) NOT IN ('number', 'string')
       OR s !~ '^-?[0-9]{1,19}(\.0*)?$' THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be an integer',
                              p_field);
    END IF;
    n := s::numeric;
    IF n < p_lo OR n > p_hi THEN
        PERFORM tg_api._raise('TG422', p_field || ' must be between '
                              || p_lo || ' and ' || p_hi, p_field);
    END IF;
    RETURN n::bigint;
END
$$;

-- A row id from the path: a positive integer, required.
CREATE FUNCTION tg_api._id(p_args jsonb, p_field text)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v bigint := tg_api._int(p_args, p_field, 1, 9223372036854775807);
BEGIN
    IF v IS NULL THEN
        PERFORM tg_api._raise('TG400', p_field || ' is required', p_field);
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION tg_api._bool(p_args jsonb, p_field text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> p_field;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'boolean' THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be true or false',
                              p_field);
    END IF;
    RETURN v::boolean;
END
$$;

-- US dollars: a JSON number or decimal string, 0 .. 99999999999.999999999,
-- at most nine decimals.
CREATE FUNCTION tg_api._usd(p_args jsonb, p_field text)
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
    IF s !~ '^[0-9]{1,11}(\.[0-9]{1,9})?$' THEN
        PERFORM tg_api._raise('TG422', p_field
                              || ' must be a non-negative amount below 10^11'
                              || ' with at most 9 decimals', p_field);
    END IF;
    RETURN s::numeric(20, 9);
END
$$;

-- A decimal in [p_lo, p_hi] (price_factor, exploration).
CREATE FUNCTION tg_api._dec(p_args jsonb, p_field text, p_lo numeric,
                            p_hi numeric)
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
    IF jsonb_typeof(v) NOT IN ('number', 'string')
       OR s !~ '^[0-9]{1,6}(\.[0-9]{1,9})?$' THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be a decimal number',
                              p_field);
    END IF;
    IF s::numeric < p_lo OR s::numeric > p_hi THEN
        PERFORM tg_api._raise('TG422', p_field || ' must be between '
                              || p_lo || ' and ' || p_hi, p_field);
    END IF;
    RETURN s::numeric;
END
$$;

-- A timestamp as RFC 3339 / ISO 8601 text.
CREATE FUNCTION tg_api._time(p_args jsonb, p_field text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    s text := tg_api._str(p_args, p_field, 64);
BEGIN
    IF s IS NULL THEN
        RETURN NULL;
    END IF;
    IF s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9:]+)?)?$' THEN
        PERFORM tg_api._raise('TG400', p_field
                              || ' must be a time like 2026-01-31T12:00:00Z',
                              p_field);
    END IF;
    BEGIN
        RETURN s::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
        PERFORM tg_api._raise('TG400', p_field
                              || ' must be a time like 2026-01-31T12:00:00Z',
                              p_field);
    END;
    RETURN NULL;
END
$$;

-- Bytes given as lower- or upper-case hex of exactly p_len bytes, or of
-- p_min..p_max bytes when p_len is NULL.
CREATE FUNCTION tg_api._hex(p_args jsonb, p_field text, p_min integer,
                            p_max integer)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    s text := tg_api._str(p_args, p_field, 2 * p_max);
BEGIN
    IF s IS NULL THEN
        RETURN NULL;
    END IF;
    IF s !~ '^([0-9a-fA-F]{2})+$' OR length(s) < 2 * p_min THEN
        PERFORM tg_api._raise('TG400', p_field || ' must be hex of '
                              || CASE WHEN p_min = p_max THEN p_min::text
                                 ELSE p_min || '..' || p_max END
                              || ' bytes', p_field);
    END IF;
    RETURN decode(s, 'hex');
END
$$;

-- A list of model patterns: array of 1..p_maxn strings of 1..p_maxlen
-- characters without control characters, duplicates removed in order.
CREATE FUNCTION tg_api._models(p_args jsonb, p_field text, p_maxn integer,
                               p_maxlen integer)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> p_field;
    out text[];
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) AS e
                  WHERE jsonb_typeof(e) <> 'string') THEN
        PERFORM tg_api._raise('TG400', p_field
                              || ' must be an array of strings', p_field);
    END IF;
    SELECT coalesce(array_agg(m ORDER BY first), '{}')
      INTO out
      FROM (SELECT e AS m, min(i) AS first
              FROM jsonb_array_elements_text(v) WITH ORDINALITY AS t(e, i)
             GROUP BY e) d;
    IF cardinality(out) > p_maxn THEN
        PERFORM tg_api._raise('TG422', p_field || ' holds at most '
                              || p_maxn || ' patterns', p_field);
    END IF;
    IF NOT public.tg_text_array_ok(out, p_maxn, p_maxlen) THEN
        PERFORM tg_api._raise('TG422', p_field || ' patterns must be 1..'
                              || p_maxlen
                              || ' characters without control characters',
                              p_field);
    END IF;
    RETURN out;
END
$$;

-- A field the caller may not set: TG403 naming it when present.
CREATE FUNCTION tg_api._forbid(p_args jsonb, p_fields text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY p_fields LOOP
        IF p_args ? f THEN
            PERFORM tg_api._raise('TG403', 'only an admin may change ' || f,
                                  f);
        END IF;
    END LOOP;
END
$$;

-- A name of an endpoint or group.
CREATE FUNCTION tg_api._name_ok(p_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
RETURN p_name ~ '^[A-Za-z0-9_.-]{1,63}$';

-- TG422 naming <p_field> unless group <p_name> exists.
CREATE FUNCTION tg_api._check_group(p_name text, p_field text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF p_name IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM endpoint_groups WHERE name = p_name) THEN
        PERFORM tg_api._raise('TG422', 'no endpoint group named "'
                              || p_name || '"', p_field);
    END IF;
END
$$;

-- TG409 for a row the config file declares.
CREATE FUNCTION tg_api._refuse_file(p_managed_by text, p_what text,
                                    p_id bigint, p_setting text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_managed_by = 'file' THEN
        PERFORM tg_api._raise('TG409', p_what || ' ' || p_id
                              || ' is declared in the config file ('
                              || p_setting || '); change it there', '');
    END IF;
END
$$;

-- Search ------------------------------------------------------------------

-- The LIKE pattern that finds <p_q> anywhere in a text: '%' around it,
-- with the pattern characters of <p_q> (%, _ and the escape \) escaped.
-- The q filters match lower(column) LIKE this, which the trigram indexes
-- of migration 0003 serve when pg_trgm is there (docs/admin-api.md).
CREATE FUNCTION tg_api._contains(p_q text)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN '%' || replace(replace(replace(p_q, '\', '\\'), '%', '\%'), '_', '\_')
       || '%';

-- Pagination --------------------------------------------------------------

CREATE FUNCTION tg_api._limit(p_args jsonb)
RETURNS integer
LANGUAGE sql IMMUTABLE
RETURN coalesce(tg_api._int(p_args, 'limit', 1, 500), 50);

CREATE FUNCTION tg_api._cursor(p_args jsonb)
RETURNS bigint
LANGUAGE sql IMMUTABLE
RETURN tg_api._int(p_args, 'cursor', 0, 9223372036854775807);

-- {"items": first p_limit of p_items, "next_cursor": id of the last one as a
-- string when p_items had one more (the query fetched p_limit + 1), else
-- null}.
CREATE FUNCTION tg_api._page(p_items jsonb, p_limit integer, p_id text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
RETURN CASE
    WHEN jsonb_array_length(p_items) > p_limit THEN
        jsonb_build_object('items', p_items - p_limit,
                           'next_cursor',
                           (p_items -> (p_limit - 1)) ->> p_id)
    ELSE jsonb_build_object('items', p_items, 'next_cursor', NULL)
END;

-- Audit -------------------------------------------------------------------

-- One audit_log row; <p_before>/<p_after> are API shapes (no secrets).
CREATE FUNCTION tg_api._audit(p_ctx jsonb, p_action text, p_type text,
                              p_id bigint, p_before jsonb, p_after jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_actor bigint := tg_api._actor(p_ctx);
    v_name text;
BEGIN
    IF v_actor IS NOT NULL THEN
        SELECT username INTO v_name FROM users WHERE user_id = v_actor;
    ELSIF p_ctx ->> 'role' = 'system' THEN
        v_name := 'system';
    END IF;
    INSERT INTO audit_log (actor_user_id, actor_name, action, target_type,
                           target_id, before, after, client_addr, host)
    VALUES (v_actor, coalesce(v_name, ''), p_action, p_type, p_id, p_before,
            p_after, left(p_ctx ->> 'addr', 64), left(p_ctx ->> 'host', 255));
END
$$;

-- JSON shapes of the rows (the API's view: never a secret) ---------------

CREATE FUNCTION tg_api._user_json(u public.users)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'user_id', u.user_id,
    'username', u.username,
    'email', u.email,
    'role', u.role,
    'status', u.status,
    'group', u.group_name,
    'has_password', u.password_hash IS NOT NULL,
    'tokens_day', u.tokens_day,
    'tokens_month', u.tokens_month,
    'cost_day_usd', tg_api._money(u.cost_day_usd),
    'cost_month_usd', tg_api._money(u.cost_month_usd),
    'managed_by', u.managed_by,
    'created_at', tg_api._ts(u.created_at),
    'updated_at', tg_api._ts(u.updated_at));

CREATE FUNCTION tg_api._key_json(k public.api_keys)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'key_id', k.key_id,
    'user_id', k.user_id,
    'name', k.name,
    'prefix', k.prefix,
    'last4', k.last4,
    'status', k.status,
    'expires_at', tg_api._ts(k.expires_at),
    'expired', coalesce(k.expires_at <= now(), false),
    'models', to_jsonb(k.models),
    'rpm', k.rpm,
    'burst', k.burst,
    'tpm', k.tpm,
    'concurrency', k.concurrency,
    'group', k.group_name,
    'tokens_day', k.tokens_day,
    'tokens_month', k.tokens_month,
    'cost_day_usd', tg_api._money(k.cost_day_usd),
    'cost_month_usd', tg_api._money(k.cost_month_usd),
    'managed_by', k.managed_by,
    'created_at', tg_api._ts(k.created_at),
    'updated_at', tg_api._ts(k.updated_at),
    'last_used_at', tg_api._ts(k.last_used_at));

CREATE FUNCTION tg_api._group_json(g public.endpoint_groups)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'group_id', g.group_id,
    'name', g.name,
    'description', g.description,
    'strategy', g.strategy,
    'failure_threshold', g.failure_threshold,
    'cooldown_ms', g.cooldown_ms,
    'max_retries', g.max_retries,
    'retry_deadline_ms', g.retry_deadline_ms,
    'sticky', g.sticky,
    'sticky_ttl_ms', g.sticky_ttl_ms,
    'exploration', trim_scale(g.exploration),
    'translate', g.translate,
    'wait_for_cooldown_ms', g.wait_for_cooldown_ms,
    'managed_by', g.managed_by,
    'created_at', tg_api._ts(g.created_at),
    'updated_at', tg_api._ts(g.updated_at));

CREATE FUNCTION tg_api._endpoint_json(e public.endpoints)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'endpoint_id', e.endpoint_id,
    'name', e.name,
    'group', e.group_name,
    'url', e.url,
    'style', e.style,
    'has_credential', e.credential_ciphertext IS NOT NULL,
    'credential_key_id', e.credential_key_id,
    'weight', e.weight,
    'priority', e.priority,
    'models', to_jsonb(e.models),
    'model_map', (SELECT coalesce(jsonb_agg(jsonb_build_object('from', f,
                                                               'to', t)
                                            ORDER BY i), '[]')
                    FROM unnest(e.model_map_from, e.model_map_to)
                         WITH ORDINALITY AS m(f, t, i)),
    'proxy', e.proxy,
    'connect_timeout_ms', e.connect_timeout_ms,
    'first_byte_timeout_ms', e.first_byte_timeout_ms,
    'read_timeout_ms', e.read_timeout_ms,
    'total_timeout_ms', e.total_timeout_ms,
    'tls_verify', e.tls_verify,
    'health_path', e.health_path,
    'health_interval_ms', e.health_interval_ms,
    'health_timeout_ms', e.health_timeout_ms,
    'quota_cooldown_ms', e.quota_cooldown_ms,
    'price_factor', trim_scale(e.price_factor),
    'status', e.status,
    'managed_by', e.managed_by,
    'created_at', tg_api._ts(e.created_at),
    'updated_at', tg_api._ts(e.updated_at));

CREATE FUNCTION tg_api._application_json(a public.applications)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'application_id', a.application_id,
    'user_id', a.user_id,
    'username', (SELECT u.username FROM public.users u
                  WHERE u.user_id = a.user_id),
    'kind', a.kind,
    'payload', a.payload,
    'reason', a.reason,
    'status', a.status,
    'decided_by', a.decided_by,
    'decided_at', tg_api._ts(a.decided_at),
    'comment', a.comment,
    'result', a.result,
    'secret_pending', a.secret_ciphertext IS NOT NULL,
    'created_at', tg_api._ts(a.created_at),
    'updated_at', tg_api._ts(a.updated_at));

CREATE FUNCTION tg_api._token_json(s public.sessions)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'token_id', s.session_id,
    'user_id', s.user_id,
    'kind', s.kind,
    'name', s.name,
    'client_addr', s.client_addr,
    'created_at', tg_api._ts(s.created_at),
    'expires_at', tg_api._ts(s.expires_at),
    'last_used_at', tg_api._ts(s.last_used_at),
    'revoked_at', tg_api._ts(s.revoked_at));

CREATE FUNCTION tg_api._audit_json(l public.audit_log)
RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'audit_id', l.audit_id,
    'at', tg_api._ts(l.at),
    'actor_user_id', l.actor_user_id,
    'actor_name', l.actor_name,
    'action', l.action,
    'target_type', l.target_type,
    'target_id', l.target_id,
    'before', l.before,
    'after', l.after,
    'client_addr', l.client_addr,
    'host', l.host);
