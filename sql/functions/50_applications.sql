-- sql/functions/50_applications.sql
--      /admin/api/applications: file, list, read, approve, reject.
--
-- NOTES
--      Anyone logged in files applications for themselves; a user sees only
--      their own (another's id reads as TG404), admins see all and decide.
--      Approval applies the change in the same transaction as the decision,
--      so either both commit or neither:
--        model_access   the models join the key's allow-list (a key whose
--                       list is empty already allows every model and is
--                       left as it is);
--        quota_increase the user's quotas take the requested values;
--        new_key        a key is created for the applicant from the
--                       requested fields and the digest/prefix/last4 the
--                       caller generated; the caller also passes the key
--                       sealed for the applicant (secret_ciphertext,
--                       secret_key_id, associated data
--                       'application:<id>'), which applications_get hands
--                       to the applicant once and then clears.
--      Approval writes two audit rows: the decision (application.approve)
--      and the change it applied (key.update, user.update or key.create).
--
--      Payloads as stored:
--        model_access   {"key_id": N, "models": ["claude-*", ...]}
--        quota_increase {"quota": {"tokens_month": N, "cost_day_usd": "5",
--                        ...}} (only the fields asked for)
--        new_key        {"key": {"name", "models", "rpm", "burst", "tpm",
--                        "concurrency", "group", "expires_at"}} (only the
--                        fields given)

CREATE FUNCTION tg_api._application_visible(p_ctx jsonb, p_id bigint,
                                            p_lock boolean)
RETURNS public.applications
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    a applications;
BEGIN
    IF p_lock THEN
        SELECT * INTO a FROM applications WHERE application_id = p_id
           FOR UPDATE;
    ELSE
        SELECT * INTO a FROM applications WHERE application_id = p_id;
    END IF;
    IF a.application_id IS NULL
       OR (NOT tg_api._is_admin(p_ctx)
           AND a.user_id IS DISTINCT FROM tg_api._actor(p_ctx)) THEN
        PERFORM tg_api._raise('TG404', 'no such application',
                              'application_id');
    END IF;
    RETURN a;
END
$$;

-- The validated payload of an application of <p_kind> by <p_user>.
CREATE FUNCTION tg_api._application_payload(p_user bigint, p_kind text,
                                            p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_key bigint;
    v_models text[];
    v_obj jsonb;
    v_out jsonb := '{}';
    k api_keys;
    u users;
BEGIN
    IF p_kind = 'model_access' THEN
        v_key := tg_api._id(p_args, 'key_id');
        SELECT * INTO k FROM api_keys WHERE key_id = v_key;
        IF k.key_id IS NULL OR k.user_id IS DISTINCT FROM p_user THEN
            PERFORM tg_api._raise('TG404', 'no such key', 'key_id');
        END IF;
        PERFORM tg_api._refuse_file(k.managed_by, 'key', v_key, 'keys');
        v_models := tg_api._models(p_args, 'models', 16, 64);
        IF v_models IS NULL OR cardinality(v_models) = 0 THEN
            PERFORM tg_api._raise('TG400', 'models is required', 'models');
        END IF;
        RETURN jsonb_build_object('key_id', v_key,
                                  'models', to_jsonb(v_models));
    END IF;
    IF p_kind = 'quota_increase' THEN
        v_obj := p_args -> 'quota';
        IF v_obj IS NULL OR jsonb_typeof(v_obj) <> 'object' THEN
            PERFORM tg_api._raise('TG400', 'quota must be an object',
                                  'quota');
        END IF;
        SELECT * INTO u FROM users WHERE user_id = p_user;
        PERFORM tg_api._refuse_file(u.managed_by, 'user', p_user, 'users');
        IF v_obj ? 'tokens_day' THEN
            v_out := v_out || jsonb_build_object('tokens_day',
                tg_api._int(v_obj, 'tokens_day', 0, 9223372036854775807));
        END IF;
        IF v_obj ? 'tokens_month' THEN
            v_out := v_out || jsonb_build_object('tokens_month',
                tg_api._int(v_obj, 'tokens_month', 0, 9223372036854775807));
        END IF;
        IF v_obj ? 'cost_day_usd' THEN
            v_out := v_out || jsonb_build_object('cost_day_usd',
                tg_api._money(tg_api._usd(v_obj, 'cost_day_usd')));
        END IF;
        IF v_obj ? 'cost_month_usd' THEN
            v_out := v_out || jsonb_build_object('cost_month_usd',
                tg_api._money(tg_api._usd(v_obj, 'cost_month_usd')));
        END IF;
        IF v_out = '{}' THEN
            PERFORM tg_api._raise('TG400', 'quota names none of tokens_day, '
                                  || 'tokens_month, cost_day_usd, '
                                  || 'cost_month_usd', 'quota');
        END IF;
        RETURN jsonb_build_object('quota', v_out);
    END IF;
    -- new_key
    v_obj := coalesce(p_args -> 'key', '{}');
    IF jsonb_typeof(v_obj) <> 'object' THEN
        PERFORM tg_api._raise('TG400', 'key must be an object', 'key');
    END IF;
    IF v_obj ? 'name' THEN
        v_out := v_out || jsonb_build_object('name',
            coalesce(tg_api._str(v_obj, 'name', 128), ''));
        IF v_out ->> 'name' <> ''
           AND NOT public.tg_text_ok(v_out ->> 'name', 128) THEN
            PERFORM tg_api._raise('TG422', 'name must not contain control '
                                  || 'characters', 'name');
        END IF;
    END IF;
    IF v_obj ? 'models' THEN
        v_out := v_out || jsonb_build_object('models',
            to_jsonb(coalesce(tg_api._models(v_obj, 'models', 16, 64),
                              '{}')));
    END IF;
    IF v_obj ? 'rpm' THEN
        v_out := v_out || jsonb_build_object('rpm',
            tg_api._int(v_obj, 'rpm', 0, 2147483647));
    END IF;
    IF v_obj ? 'burst' THEN
        v_out := v_out || jsonb_build_object('burst',
            tg_api._int(v_obj, 'burst', 0, 2147483647));
    END IF;
    IF v_obj ? 'tpm' THEN
        v_out := v_out || jsonb_build_object('tpm',
            tg_api._int(v_obj, 'tpm', 0, 2147483647));
    END IF;
    IF v_obj ? 'concurrency' THEN
        v_out := v_out || jsonb_build_object('concurrency',
            tg_api._int(v_obj, 'concurrency', 0, 2147483647));
    END IF;
    IF v_obj ? 'group' THEN
        v_out := v_out || jsonb_build_object('group',
            tg_api._str(v_obj, 'group', 63));
        PERFORM tg_api._check_group(v_out ->> 'group', 'group');
    END IF;
    IF v_obj ? 'expires_at' THEN
        v_out := v_out || jsonb_build_object('expires_at',
            tg_api._ts(tg_api._time(v_obj, 'expires_at')));
    END IF;
    RETURN jsonb_build_object('key', v_out);
END
$$;

-- applications_create: args kind, reason and the kind's fields (key_id +
-- models | quota | key).  At most 20 pending applications per user
-- (TG429 past that).
CREATE FUNCTION tg_api.applications_create(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_user bigint := tg_api._require_actor(p_ctx);
    v_kind text := tg_api._enum(p_args, 'kind',
                                ARRAY['model_access', 'quota_increase',
                                      'new_key']);
    v_reason text := coalesce(tg_api._str(p_args, 'reason', 2000), '');
    v_payload jsonb;
    a applications;
BEGIN
    IF v_kind IS NULL THEN
        PERFORM tg_api._raise('TG400', 'kind is required', 'kind');
    END IF;
    -- Lock the applicant so that concurrent filings count each other.
    PERFORM 1 FROM users WHERE user_id = v_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM tg_api._raise('TG401', 'authentication required', '');
    END IF;
    IF (SELECT count(*) FROM applications
         WHERE user_id = v_user AND status = 'pending') >= 20 THEN
        PERFORM tg_api._raise('TG429', 'too many pending applications; '
                              || 'wait for a decision', '');
    END IF;
    v_payload := tg_api._application_payload(v_user, v_kind, p_args);
    INSERT INTO applications (user_id, kind, payload, reason)
    VALUES (v_user, v_kind, v_payload, v_reason)
    RETURNING * INTO a;
    PERFORM tg_api._audit(p_ctx, 'application.create', 'application',
                          a.application_id, NULL,
                          tg_api._application_json(a));
    RETURN tg_api._application_json(a);
END
$$;

-- applications_list: filters status, kind, user_id; a user gets only
-- their own.  Keyset on application_id ascending (oldest first, the order
-- in which to decide).
CREATE FUNCTION tg_api.applications_list(p_ctx jsonb, p_args jsonb)
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
                                  ARRAY['pending', 'approved', 'rejected']);
    v_kind text := tg_api._enum(p_args, 'kind',
                                ARRAY['model_access', 'quota_increase',
                                      'new_key']);
    v_user bigint := tg_api._int(p_args, 'user_id', 1, 9223372036854775807);
    v_owner bigint;
    v_items jsonb;
BEGIN
    IF NOT tg_api._is_admin(p_ctx) THEN
        v_owner := tg_api._require_actor(p_ctx);
    END IF;
    SELECT coalesce(jsonb_agg(j ORDER BY id), '[]')
      INTO v_items
      FROM (SELECT a.application_id AS id,
                   tg_api._application_json(a) AS j
              FROM applications a
             WHERE (v_cursor IS NULL OR a.application_id > v_cursor)
               AND (v_owner IS NULL OR a.user_id = v_owner)
               AND (v_user IS NULL OR a.user_id = v_user)
               AND (v_status IS NULL OR a.status = v_status)
               AND (v_kind IS NULL OR a.kind = v_kind)
             ORDER BY a.application_id
             LIMIT v_limit + 1) s;
    RETURN tg_api._page(v_items, v_limit, 'application_id');
END
$$;

-- applications_get: args application_id.  When the applicant reads an
-- approved new_key application whose key has not been handed over yet,
-- the result also carries "secret_ciphertext" (hex) and "secret_key_id",
-- and the stored copy is cleared in the same transaction: the key can be
-- read once.
CREATE FUNCTION tg_api.applications_get(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'application_id');
    a applications;
    b applications;
BEGIN
    PERFORM tg_api._require_actor_or_admin(p_ctx);
    a := tg_api._application_visible(p_ctx, v_id, true);
    IF a.secret_ciphertext IS NULL
       OR a.user_id IS DISTINCT FROM tg_api._actor(p_ctx) THEN
        RETURN tg_api._application_json(a);
    END IF;
    UPDATE applications SET secret_ciphertext = NULL, secret_key_id = NULL
     WHERE application_id = v_id
    RETURNING * INTO b;
    PERFORM tg_api._audit(p_ctx, 'application.secret_read', 'application',
                          v_id, tg_api._application_json(a),
                          tg_api._application_json(b));
    RETURN tg_api._application_json(b)
           || jsonb_build_object('secret_ciphertext',
                                 encode(a.secret_ciphertext, 'hex'),
                                 'secret_key_id', a.secret_key_id);
END
$$;

-- Apply an approved model_access application; returns its result.
CREATE FUNCTION tg_api._apply_model_access(p_ctx jsonb,
                                           p_a public.applications)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_key bigint := (p_a.payload ->> 'key_id')::bigint;
    v_want text[] := ARRAY(SELECT jsonb_array_elements_text(
                               p_a.payload -> 'models'));
    v_added text[];
    old api_keys;
    k api_keys;
BEGIN
    SELECT * INTO old FROM api_keys WHERE key_id = v_key FOR UPDATE;
    IF old.key_id IS NULL OR old.user_id IS DISTINCT FROM p_a.user_id THEN
        PERFORM tg_api._raise('TG409', 'key ' || v_key
                              || ' no longer belongs to the applicant', '');
    END IF;
    PERFORM tg_api._refuse_file(old.managed_by, 'key', v_key, 'keys');
    IF cardinality(old.models) = 0 THEN
        -- An empty allow-list already allows every model; adding patterns
        -- would narrow it.
        RETURN jsonb_build_object('key_id', v_key, 'models', '[]'::jsonb,
                                  'added', '[]'::jsonb);
    END IF;
    v_added := ARRAY(SELECT m FROM unnest(v_want) WITH ORDINALITY AS t(m, i)
                      WHERE NOT (m = ANY (old.models)) ORDER BY i);
    IF cardinality(old.models) + cardinality(v_added) > 16 THEN
        PERFORM tg_api._raise('TG409', 'key ' || v_key || '''s allow-list '
                              || 'would hold more than 16 patterns',
                              'models');
    END IF;
    IF cardinality(v_added) > 0 THEN
        UPDATE api_keys SET models = old.models || v_added
         WHERE key_id = v_key
        RETURNING * INTO k;
        PERFORM tg_api._audit(p_ctx, 'key.update', 'key', v_key,
                              tg_api._key_json(old), tg_api._key_json(k));
    ELSE
        k := old;
    END IF;
    RETURN jsonb_build_object('key_id', v_key, 'models', to_jsonb(k.models),
                              'added', to_jsonb(v_added));
END
$$;

-- Apply an approved quota_increase application; returns its result.
CREATE FUNCTION tg_api._apply_quota(p_ctx jsonb, p_a public.applications)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    q jsonb := p_a.payload -> 'quota';
    old users;
    u users;
BEGIN
    SELECT * INTO old FROM users WHERE user_id = p_a.user_id FOR UPDATE;
    PERFORM tg_api._refuse_file(old.managed_by, 'user', old.user_id,
                                'users');
    UPDATE users SET
        tokens_day = CASE WHEN q ? 'tokens_day'
                          THEN (q ->> 'tokens_day')::bigint
                          ELSE tokens_day END,
        tokens_month = CASE WHEN q ? 'tokens_month'
                            THEN (q ->> 'tokens_month')::bigint
                            ELSE tokens_month END,
        cost_day_usd = CASE WHEN q ? 'cost_day_usd'
                            THEN (q ->> 'cost_day_usd')::numeric
                            ELSE cost_day_usd END,
        cost_month_usd = CASE WHEN q ? 'cost_month_usd'
                              THEN (q ->> 'cost_month_usd')::numeric
                              ELSE cost_month_usd END
     WHERE user_id = old.user_id
    RETURNING * INTO u;
    PERFORM tg_api._audit(p_ctx, 'user.update', 'user', u.user_id,
                          tg_api._user_json(old), tg_api._user_json(u));
    RETURN jsonb_build_object('user_id', u.user_id,
        'quota', jsonb_build_object(
            'tokens_day', u.tokens_day,
            'tokens_month', u.tokens_month,
            'cost_day_usd', tg_api._money(u.cost_day_usd),
            'cost_month_usd', tg_api._money(u.cost_month_usd)));
END
$$;

-- Apply an approved new_key application with the secrets in <p_args>;
-- returns its result.
CREATE FUNCTION tg_api._apply_new_key(p_ctx jsonb, p_a public.applications,
                                      p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_fields jsonb := p_a.payload -> 'key';
    v_cipher bytea := tg_api._hex(p_args, 'secret_ciphertext', 29, 284);
    v_kid text := tg_api._str(p_args, 'secret_key_id', 8);
    k api_keys;
BEGIN
    IF v_cipher IS NULL THEN
        PERFORM tg_api._raise('TG400', 'secret_ciphertext is required',
                              'secret_ciphertext');
    END IF;
    IF v_kid IS NULL OR v_kid !~ '^[0-9a-f]{8}$' THEN
        PERFORM tg_api._raise('TG400', 'secret_key_id must be 8 hex digits',
                              'secret_key_id');
    END IF;
    IF v_fields ? 'group' AND NOT EXISTS (SELECT 1 FROM endpoint_groups
                                           WHERE name = v_fields ->> 'group')
    THEN
        PERFORM tg_api._raise('TG409', 'endpoint group "'
                              || (v_fields ->> 'group')
                              || '" no longer exists', 'group');
    END IF;
    IF (v_fields ->> 'expires_at')::timestamptz <= now() THEN
        PERFORM tg_api._raise('TG409', 'the requested expiry has passed',
                              'expires_at');
    END IF;
    k := tg_api._key_insert(p_a.user_id, v_fields, p_args);
    UPDATE applications
       SET secret_ciphertext = v_cipher, secret_key_id = v_kid
     WHERE application_id = p_a.application_id;
    PERFORM tg_api._audit(p_ctx, 'key.create', 'key', k.key_id, NULL,
                          tg_api._key_json(k));
    RETURN jsonb_build_object('key_id', k.key_id, 'prefix', k.prefix,
                              'last4', k.last4);
END
$$;

-- applications_approve (admin): args application_id, comment, and for a
-- new_key application digest, prefix, last4, secret_ciphertext,
-- secret_key_id.  TG409 unless the application is pending.
CREATE FUNCTION tg_api.applications_approve(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'application_id');
    v_comment text := coalesce(tg_api._str(p_args, 'comment', 2000), '');
    v_result jsonb;
    old applications;
    a applications;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._application_visible(p_ctx, v_id, true);
    IF old.status <> 'pending' THEN
        PERFORM tg_api._raise('TG409', 'application ' || v_id || ' is '
                              || old.status || ', not pending', 'status');
    END IF;
    v_result := CASE old.kind
        WHEN 'model_access' THEN tg_api._apply_model_access(p_ctx, old)
        WHEN 'quota_increase' THEN tg_api._apply_quota(p_ctx, old)
        ELSE tg_api._apply_new_key(p_ctx, old, p_args)
    END;
    UPDATE applications
       SET status = 'approved', decided_by = tg_api._actor(p_ctx),
           decided_at = now(), comment = v_comment, result = v_result
     WHERE application_id = v_id
    RETURNING * INTO a;
    PERFORM tg_api._audit(p_ctx, 'application.approve', 'application', v_id,
                          tg_api._application_json(old),
                          tg_api._application_json(a));
    RETURN tg_api._application_json(a);
END
$$;

-- applications_reject (admin): args application_id, comment.
CREATE FUNCTION tg_api.applications_reject(p_ctx jsonb, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_id bigint := tg_api._id(p_args, 'application_id');
    v_comment text := coalesce(tg_api._str(p_args, 'comment', 2000), '');
    old applications;
    a applications;
BEGIN
    PERFORM tg_api._require_admin(p_ctx);
    old := tg_api._application_visible(p_ctx, v_id, true);
    IF old.status <> 'pending' THEN
        PERFORM tg_api._raise('TG409', 'application ' || v_id || ' is '
                              || old.status || ', not pending', 'status');
    END IF;
    UPDATE applications
       SET status = 'rejected', decided_by = tg_api._actor(p_ctx),
           decided_at = now(), comment = v_comment
     WHERE application_id = v_id
    RETURNING * INTO a;
    PERFORM tg_api._audit(p_ctx, 'application.reject', 'application', v_id,
                          tg_api._application_json(old),
                          tg_api._application_json(a));
    RETURN tg_api._application_json(a);
END
$$;
