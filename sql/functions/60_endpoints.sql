-- sql/functions/60_endpoints.sql
--      /admin/api/endpoints and /admin/api/groups (admins only).
--
-- NOTES
--      The credential never leaves PostgreSQL through these functions
--      except through endpoints_credential, which the endpoint test and
--      the publisher use.  An endpoint's name is part of its credential's
--      associated data ('endpoint:<name>'), so it cannot change; neither
--      can a group's name, which keys, users and endpoints refer to.
--
--      Endpoint arguments (p_args) are the column names, with "group" for
--      group_name and "model_map" = [{"from": ..., "to": ...}, ...] for
--      model_map_from/model_map_to; the credential arrives as
--      credential_ciphertext (hex) + credential_key_id.  Durations are
--      integer milliseconds (*_ms).

CREATE FUNCTION tg_api._endpoint_find(p_id bigint, p_lock boolean)
RETURNS public.endpoints
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    e endpoints;
BEGIN
    IF p_lock THEN
        SELECT * INTO e FROM endpoints WHERE endpoint_id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO e FROM endpoints WHERE endpoint_id = p_id;
    END IF;
    IF e.endpoint_id IS NULL THEN
        PERFORM tg_api._raise('TG404', 'no such endpoint', 'endpoint_id');
    END IF;
    RETURN e;
END
$$;

-- model_map validated, as {"from": [...], "to": [...]} (NULL when absent
-- or null).
CREATE FUNCTION tg_api._model_map(p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v jsonb := p_args -> 'model_map';
    v_from text[];
    v_to text[];
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) AS e
                  WHERE jsonb_typeof(e) <> 'object'
                     OR jsonb_typeof(e -> 'from') IS DISTINCT FROM 'string'
                     OR jsonb_typeof(e -> 'to') IS DISTINCT FROM 'string')
    THEN
        PERFORM tg_api._raise('TG400', 'model_map must be an array of '
                              || '{"from": string, "to": string}',
                              'model_map');
    END IF;
    SELECT coalesce(array_agg(e ->> 'from' ORDER BY i), '{}'),
           coalesce(array_agg(e ->> 'to' ORDER BY i), '{}')
      INTO v_from, v_to
      FROM jsonb_array_elements(v) WITH ORDINALITY AS t(e, i);
    IF NOT public.tg_text_array_ok(v_from, 16, 127)
       OR NOT public.tg_text_array_ok(v_to, 16, 127) THEN
        PERFORM tg_api._raise('TG422', 'model_map holds at most 16 renames '
                              || 'of 1..127 characters', 'model_map');
    END IF;
    IF (SELECT count(DISTINCT f) FROM unnest(v_from) AS f)
       <> cardinality(v_from) THEN
        PERFORM tg_api._raise('TG422', 'model_map renames a model twice',
                              'model_map');
    END IF;
    RETURN jsonb_build_object('from', to_jsonb(v_from), 'to', to_jsonb(v_to));
END
$$;

-- TG422 naming the field when a URL-like setting is malformed; mirrors
-- the table's CHECK constraints, which stay as the last line of defence.
CREATE FUNCTION tg_api._endpoint_check(p_args jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text;
BEGIN
    v := tg_api._str(p_args, 'url', 511);
    IF v IS NOT NULL
       AND (v !~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$'
            OR v ~ '/$' OR v !~ '^[\x21-\x7e]+$') THEN
        PERFORM tg_api._raise('TG422', 'url must be http(s)://host[:port]'
                              || '[/prefix] without trailing slash, query, '
                              || 'user information or spaces', 'url');
    END IF;
    v := tg_api._str(p_args, 'proxy', 511);
    IF v IS NOT NULL
       AND v !~ '^(https?|socks5h?)://[\x21-\x7e]+$' THEN
        PERFORM tg_api._raise('TG422', 'proxy must be an http, https, '
                              || 'socks5 or socks5h URL', 'proxy');
    END IF;
    v := tg_api._str(p_args, 'health_path', 255);
    IF v IS NOT NULL AND v !~ '^/[\x21-\x7e]{0,254}$' THEN
        PERFORM tg_api._raise('TG422', 'health_path must start with /',
                              'health_path');
    END IF;
    v := tg_api._str(p_args, 'credential_key_id', 8);
    IF v IS NOT NULL AND v !~ '^[0-9a-f]{8}$' THEN
        PERFORM tg_api._raise('TG422', 'credential_key_id must be 8 hex '
                              || 'digits', 'credential_key_id');
    END IF;
    IF (p_args ? 'credential_ciphertext')
       <> (p_args ? 'credential_key_id') THEN
        PERFORM tg_api._raise('TG400', 'credential_ciphertext and '
                              || 'credential_key_id go together',
                              'credential');
    END IF;
END
$$;

-- endpoints_list: filters group, status, style; keyset on endpoint_id.
CREATE FUNCTION tg_api.endpoints_list(p_ctx jsonb, p_args jsonb)
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
    v_group text := tg_api._str(p_args, 'group', 63);
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['enabled', 'disabled']);
    v_style text := tg_api._enum(p_args, 'style',
                                 ARRAY['anthropic', 'openai']);
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT e.endpoint_id AS id, tg_api._endpoint_json(e) AS j
              FROM endpoints e
             WHERE (v_cursor IS NULL OR e.endpoint_id > v_cursor)
               AND (v_group IS NULL OR e.group_name = v_group)
               AND (v_status IS NULL OR e.status = v_status)
               AND (v_style IS NULL OR e.style = v_style)
             ORDER BY e.endpoint_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'endpoint_id');
END
$$;

CREATE FUNCTION tg_api.endpoints_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    RETURN tg_api._endpoint_json(
        tg_api._endpoint_find(tg_api._id(p_args, 'endpoint_id'), false));
END
$$;

-- endpoints_create: name, url, style, credential_ciphertext and
-- credential_key_id are required; the rest default as in the config file.
CREATE FUNCTION tg_api.endpoints_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_name text := tg_api._req_str(p_args, 'name', 63);
    v_group text := coalesce(tg_api._str(p_args, 'group', 63), 'default');
    v_cipher bytea := tg_api._hex(p_args, 'credential_ciphertext', 29,
                                  12 + 1024 + 16);
    v_map jsonb := tg_api._model_map(p_args);
    e endpoints;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF NOT tg_api._name_ok(v_name) THEN
        PERFORM tg_api._raise('TG422', 'name must be 1..63 characters of '
                              || 'A-Z a-z 0-9 _ . -', 'name');
    END IF;
    PERFORM tg_api._endpoint_check(p_args);
    IF v_cipher IS NULL THEN
        PERFORM tg_api._raise('TG400', 'credential is required',
                              'credential');
    END IF;
    PERFORM tg_api._req_str(p_args, 'url', 511);
    PERFORM tg_api._req_str(p_args, 'style', 16);
    IF EXISTS (SELECT 1 FROM endpoints WHERE name = v_name) THEN
        PERFORM tg_api._raise('TG409', 'an endpoint named "' || v_name
                              || '" exists', 'name');
    END IF;
    PERFORM tg_api._check_group(v_group, 'group');
    INSERT INTO endpoints (name, group_name, url, style,
                           credential_ciphertext, credential_key_id, weight,
                           priority, models, model_map_from, model_map_to,
                           proxy, connect_timeout_ms, first_byte_timeout_ms,
                           read_timeout_ms, total_timeout_ms, tls_verify,
                           health_path, health_interval_ms,
                           health_timeout_ms, quota_cooldown_ms,
                           price_factor, status)
    VALUES (v_name, v_group,
            tg_api._req_str(p_args, 'url', 511),
            tg_api._enum(p_args, 'style', ARRAY['anthropic', 'openai']),
            v_cipher,
            tg_api._str(p_args, 'credential_key_id', 8),
            coalesce(tg_api._int(p_args, 'weight', 1, 1000), 1),
            coalesce(tg_api._enum(p_args, 'priority',
                                  ARRAY['primary', 'secondary', 'fallback']),
                     'primary'),
            coalesce(tg_api._models(p_args, 'models', 16, 63), '{}'),
            ARRAY(SELECT jsonb_array_elements_text(v_map -> 'from')),
            ARRAY(SELECT jsonb_array_elements_text(v_map -> 'to')),
            tg_api._str(p_args, 'proxy', 511),
            tg_api._int(p_args, 'connect_timeout_ms', 1, 86400000),
            tg_api._int(p_args, 'first_byte_timeout_ms', 1, 86400000),
            tg_api._int(p_args, 'read_timeout_ms', 1, 86400000),
            tg_api._int(p_args, 'total_timeout_ms', 1, 86400000),
            tg_api._bool(p_args, 'tls_verify'),
            coalesce(tg_api._str(p_args, 'health_path', 255), '/v1/models'),
            coalesce(tg_api._int(p_args, 'health_interval_ms', 0, 86400000),
                     30000),
            coalesce(tg_api._int(p_args, 'health_timeout_ms', 1, 86400000),
                     5000),
            coalesce(tg_api._int(p_args, 'quota_cooldown_ms', 0,
                                 2678400000), 3600000),
            coalesce(tg_api._dec(p_args, 'price_factor', 0.001, 1000), 1),
            coalesce(tg_api._enum(p_args, 'status',
                                  ARRAY['enabled', 'disabled']), 'enabled'))
    RETURNING * INTO e;
    PERFORM tg_api._audit(p_ctx, 'endpoint.create', 'endpoint',
                          e.endpoint_id, NULL, tg_api._endpoint_json(e));
    RETURN tg_api._endpoint_json(e);
END
$$;

-- endpoints_update: only the fields present change; null resets proxy,
-- the timeouts and tls_verify to "inherit".  name cannot change.
CREATE FUNCTION tg_api.endpoints_update(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'endpoint_id');
    v_group text := tg_api._str(p_args, 'group', 63);
    v_cipher bytea := tg_api._hex(p_args, 'credential_ciphertext', 29,
                                  12 + 1024 + 16);
    v_map jsonb := tg_api._model_map(p_args);
    old endpoints;
    e endpoints;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._endpoint_find(v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'endpoint', v_id,
                                'endpoints');
    IF p_args ? 'name'
       AND tg_api._str(p_args, 'name', 63) IS DISTINCT FROM old.name THEN
        PERFORM tg_api._raise('TG422', 'an endpoint cannot be renamed',
                              'name');
    END IF;
    PERFORM tg_api._endpoint_check(p_args);
    IF p_args ? 'credential_ciphertext' AND v_cipher IS NULL THEN
        PERFORM tg_api._raise('TG422', 'credential cannot be removed',
                              'credential');
    END IF;
    IF p_args ? 'group' AND v_group IS NULL THEN
        PERFORM tg_api._raise('TG422', 'group cannot be null', 'group');
    END IF;
    PERFORM tg_api._check_group(v_group, 'group');
    UPDATE endpoints SET
        group_name = coalesce(v_group, group_name),
        url = coalesce(tg_api._str(p_args, 'url', 511), url),
        style = coalesce(tg_api._enum(p_args, 'style',
                                      ARRAY['anthropic', 'openai']), style),
        credential_ciphertext = coalesce(v_cipher, credential_ciphertext),
        credential_key_id = coalesce(tg_api._str(p_args, 'credential_key_id',
                                                 8), credential_key_id),
        weight = coalesce(tg_api._int(p_args, 'weight', 1, 1000), weight),
        priority = coalesce(tg_api._enum(p_args, 'priority',
                                         ARRAY['primary', 'secondary',
                                               'fallback']), priority),
        models = CASE WHEN p_args ? 'models'
                      THEN coalesce(tg_api._models(p_args, 'models', 16, 63),
                                    '{}')
                      ELSE models END,
        model_map_from = CASE WHEN p_args ? 'model_map'
                              THEN ARRAY(SELECT jsonb_array_elements_text(
                                             v_map -> 'from'))
                              ELSE model_map_from END,
        model_map_to = CASE WHEN p_args ? 'model_map'
                            THEN ARRAY(SELECT jsonb_array_elements_text(
                                           v_map -> 'to'))
                            ELSE model_map_to END,
        proxy = CASE WHEN p_args ? 'proxy'
                     THEN tg_api._str(p_args, 'proxy', 511) ELSE proxy END,
        connect_timeout_ms = CASE WHEN p_args ? 'connect_timeout_ms'
            THEN tg_api._int(p_args, 'connect_timeout_ms', 1, 86400000)
            ELSE connect_timeout_ms END,
        first_byte_timeout_ms = CASE WHEN p_args ? 'first_byte_timeout_ms'
            THEN tg_api._int(p_args, 'first_byte_timeout_ms', 1, 86400000)
            ELSE first_byte_timeout_ms END,
        read_timeout_ms = CASE WHEN p_args ? 'read_timeout_ms'
            THEN tg_api._int(p_args, 'read_timeout_ms', 1, 86400000)
            ELSE read_timeout_ms END,
        total_timeout_ms = CASE WHEN p_args ? 'total_timeout_ms'
            THEN tg_api._int(p_args, 'total_timeout_ms', 1, 86400000)
            ELSE total_timeout_ms END,
        tls_verify = CASE WHEN p_args ? 'tls_verify'
                          THEN tg_api._bool(p_args, 'tls_verify')
                          ELSE tls_verify END,
        health_path = coalesce(tg_api._str(p_args, 'health_path', 255),
                               health_path),
        health_interval_ms = coalesce(tg_api._int(p_args,
                                                  'health_interval_ms', 0,
                                                  86400000),
                                      health_interval_ms),
        health_timeout_ms = coalesce(tg_api._int(p_args, 'health_timeout_ms',
                                                 1, 86400000),
                                     health_timeout_ms),
        quota_cooldown_ms = coalesce(tg_api._int(p_args, 'quota_cooldown_ms',
                                                 0, 2678400000),
                                     quota_cooldown_ms),
        price_factor = coalesce(tg_api._dec(p_args, 'price_factor', 0.001,
                                            1000), price_factor),
        status = coalesce(tg_api._enum(p_args, 'status',
                                       ARRAY['enabled', 'disabled']), status)
     WHERE endpoint_id = v_id
    RETURNING * INTO e;
    PERFORM tg_api._audit(p_ctx, 'endpoint.update', 'endpoint', v_id,
                          tg_api._endpoint_json(old),
                          tg_api._endpoint_json(e));
    RETURN tg_api._endpoint_json(e);
END
$$;

CREATE FUNCTION tg_api.endpoints_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'endpoint_id');
    old endpoints;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._endpoint_find(v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'endpoint', v_id,
                                'endpoints');
    DELETE FROM endpoints WHERE endpoint_id = v_id;
    PERFORM tg_api._audit(p_ctx, 'endpoint.delete', 'endpoint', v_id,
                          tg_api._endpoint_json(old), NULL);
    RETURN jsonb_build_object('endpoint_id', v_id, 'deleted', true);
END
$$;

-- endpoints_set_status: args endpoint_id, status ('enabled' | 'disabled').
CREATE FUNCTION tg_api.endpoints_set_status(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'endpoint_id');
    v_status text := tg_api._enum(p_args, 'status',
                                  ARRAY['enabled', 'disabled']);
    old endpoints;
    e endpoints;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF v_status IS NULL THEN
        PERFORM tg_api._raise('TG400', 'status is required', 'status');
    END IF;
    old := tg_api._endpoint_find(v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'endpoint', v_id,
                                'endpoints');
    UPDATE endpoints SET status = v_status WHERE endpoint_id = v_id
    RETURNING * INTO e;
    PERFORM tg_api._audit(p_ctx,
                          CASE v_status WHEN 'enabled' THEN 'endpoint.enable'
                                        ELSE 'endpoint.disable' END,
                          'endpoint', v_id, tg_api._endpoint_json(old),
                          tg_api._endpoint_json(e));
    RETURN tg_api._endpoint_json(e);
END
$$;

-- endpoints_credential (admin or system): args endpoint_id.  Returns
-- {"endpoint_id", "name", "credential_ciphertext": hex | null,
-- "credential_key_id": text | null} (null for a config-file endpoint whose
-- credential stays in the file).  Not audited: it changes nothing.
CREATE FUNCTION tg_api.endpoints_credential(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    e endpoints;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    e := tg_api._endpoint_find(tg_api._id(p_args, 'endpoint_id'), false);
    RETURN jsonb_build_object('endpoint_id', e.endpoint_id,
                              'name', e.name,
                              'credential_ciphertext',
                              encode(e.credential_ciphertext, 'hex'),
                              'credential_key_id', e.credential_key_id);
END
$$;

-- Groups ------------------------------------------------------------------

CREATE FUNCTION tg_api._group_find(p_id bigint, p_lock boolean)
RETURNS public.endpoint_groups
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    g endpoint_groups;
BEGIN
    IF p_lock THEN
        SELECT * INTO g FROM endpoint_groups WHERE group_id = p_id
           FOR UPDATE;
    ELSE
        SELECT * INTO g FROM endpoint_groups WHERE group_id = p_id;
    END IF;
    IF g.group_id IS NULL THEN
        PERFORM tg_api._raise('TG404', 'no such group', 'group_id');
    END IF;
    RETURN g;
END
$$;

-- groups_list: filter q (substring of the name); keyset on group_id.
CREATE FUNCTION tg_api.groups_list(p_ctx jsonb, p_args jsonb)
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
    v_q text := lower(tg_api._str(p_args, 'q', 63));
    v_items jsonb;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT g.group_id AS id, tg_api._group_json(g) AS j
              FROM endpoint_groups g
             WHERE (v_cursor IS NULL OR g.group_id > v_cursor)
               AND (v_q IS NULL OR strpos(lower(g.name), v_q) > 0)
             ORDER BY g.group_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'group_id');
END
$$;

CREATE FUNCTION tg_api.groups_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    RETURN tg_api._group_json(
        tg_api._group_find(tg_api._id(p_args, 'group_id'), false));
END
$$;

-- groups_create: name required; settings as in the config file's groups,
-- durations in ms.
CREATE FUNCTION tg_api.groups_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_name text := tg_api._req_str(p_args, 'name', 63);
    g endpoint_groups;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    IF NOT tg_api._name_ok(v_name) THEN
        PERFORM tg_api._raise('TG422', 'name must be 1..63 characters of '
                              || 'A-Z a-z 0-9 _ . -', 'name');
    END IF;
    IF EXISTS (SELECT 1 FROM endpoint_groups WHERE name = v_name) THEN
        PERFORM tg_api._raise('TG409', 'a group named "' || v_name
                              || '" exists', 'name');
    END IF;
    INSERT INTO endpoint_groups (name, description, strategy,
                                 failure_threshold, cooldown_ms, max_retries,
                                 retry_deadline_ms, sticky, sticky_ttl_ms,
                                 exploration, translate,
                                 wait_for_cooldown_ms)
    VALUES (v_name,
            coalesce(tg_api._str(p_args, 'description', 512), ''),
            coalesce(tg_api._enum(p_args, 'strategy',
                                  ARRAY['round-robin', 'weighted',
                                        'least-connections', 'latency',
                                        'cost']), 'weighted'),
            coalesce(tg_api._int(p_args, 'failure_threshold', 1, 1000), 5),
            coalesce(tg_api._int(p_args, 'cooldown_ms', 1, 86400000), 30000),
            coalesce(tg_api._int(p_args, 'max_retries', 0, 16), 2),
            coalesce(tg_api._int(p_args, 'retry_deadline_ms', 1, 86400000),
                     60000),
            coalesce(tg_api._bool(p_args, 'sticky'), true),
            coalesce(tg_api._int(p_args, 'sticky_ttl_ms', 1, 604800000),
                     3600000),
            coalesce(tg_api._dec(p_args, 'exploration', 0, 0.5), 0.05),
            coalesce(tg_api._bool(p_args, 'translate'), true),
            coalesce(tg_api._int(p_args, 'wait_for_cooldown_ms', 0, 60000),
                     0))
    RETURNING * INTO g;
    PERFORM tg_api._audit(p_ctx, 'group.create', 'group', g.group_id, NULL,
                          tg_api._group_json(g));
    RETURN tg_api._group_json(g);
END
$$;

CREATE FUNCTION tg_api.groups_update(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'group_id');
    old endpoint_groups;
    g endpoint_groups;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._group_find(v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'group', v_id, 'groups');
    IF p_args ? 'name'
       AND tg_api._str(p_args, 'name', 63) IS DISTINCT FROM old.name THEN
        PERFORM tg_api._raise('TG422', 'a group cannot be renamed', 'name');
    END IF;
    UPDATE endpoint_groups SET
        description = coalesce(tg_api._str(p_args, 'description', 512),
                               description),
        strategy = coalesce(tg_api._enum(p_args, 'strategy',
                                         ARRAY['round-robin', 'weighted',
                                               'least-connections',
                                               'latency', 'cost']),
                            strategy),
        failure_threshold = coalesce(tg_api._int(p_args, 'failure_threshold',
                                                 1, 1000), failure_threshold),
        cooldown_ms = coalesce(tg_api._int(p_args, 'cooldown_ms', 1,
                                           86400000), cooldown_ms),
        max_retries = coalesce(tg_api._int(p_args, 'max_retries', 0, 16),
                               max_retries),
        retry_deadline_ms = coalesce(tg_api._int(p_args, 'retry_deadline_ms',
                                                 1, 86400000),
                                     retry_deadline_ms),
        sticky = coalesce(tg_api._bool(p_args, 'sticky'), sticky),
        sticky_ttl_ms = coalesce(tg_api._int(p_args, 'sticky_ttl_ms', 1,
                                             604800000), sticky_ttl_ms),
        exploration = coalesce(tg_api._dec(p_args, 'exploration', 0, 0.5),
                               exploration),
        translate = coalesce(tg_api._bool(p_args, 'translate'), translate),
        wait_for_cooldown_ms = coalesce(tg_api._int(p_args,
                                                    'wait_for_cooldown_ms',
                                                    0, 60000),
                                        wait_for_cooldown_ms)
     WHERE group_id = v_id
    RETURNING * INTO g;
    PERFORM tg_api._audit(p_ctx, 'group.update', 'group', v_id,
                          tg_api._group_json(old), tg_api._group_json(g));
    RETURN tg_api._group_json(g);
END
$$;

-- groups_delete: TG409 for 'default' and for a group that endpoints,
-- keys or users still name.
CREATE FUNCTION tg_api.groups_delete(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'group_id');
    old endpoint_groups;
    v_uses bigint;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._group_find(v_id, true);
    PERFORM tg_api._refuse_file(old.managed_by, 'group', v_id, 'groups');
    IF old.name = 'default' THEN
        PERFORM tg_api._raise('TG409', 'the default group cannot be '
                              || 'deleted', '');
    END IF;
    v_uses := (SELECT count(*) FROM endpoints WHERE group_name = old.name)
            + (SELECT count(*) FROM api_keys WHERE group_name = old.name)
            + (SELECT count(*) FROM users WHERE group_name = old.name);
    IF v_uses > 0 THEN
        PERFORM tg_api._raise('TG409', 'group "' || old.name || '" is still '
                              || 'used by ' || v_uses
                              || ' endpoints, keys or users', '');
    END IF;
    DELETE FROM endpoint_groups WHERE group_id = v_id;
    PERFORM tg_api._audit(p_ctx, 'group.delete', 'group', v_id,
                          tg_api._group_json(old), NULL);
    RETURN jsonb_build_object('group_id', v_id, 'deleted', true);
END
$$;
