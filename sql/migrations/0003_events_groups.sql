-- sql/migrations/0003_events_groups.sql
--      Endpoint events in PostgreSQL, the groups' translate and
--      wait_for_cooldown_ms settings, and trigram indexes for the q
--      filters of the user and key lists.
--
-- NOTES
--      Forward-only; the runner wraps this file in one transaction.
--
--      endpoint_events is partitioned by month like usage_requests: admin
--      creates this month's and next month's partitions ahead and drops
--      those older than log.events_months (tg_api.events_partitions), so
--      retention never DELETEs.  Rows carry the endpoint by name and, when
--      the database knows it at insert time, by endpoint_id (no foreign
--      key: deleting an endpoint keeps its history).
--
--      pg_trgm ships with PostgreSQL's contrib and is a trusted extension,
--      but a database may not offer it or may refuse CREATE EXTENSION to
--      this role.  The extension and the four GIN indexes are created only
--      when that works; without them the q filters give the same answers
--      by a sequential scan (docs/admin-api.md, docs/sql.md).

SET LOCAL statement_timeout = 0;

-- endpoint_groups: the two settings the config file already had ----------

ALTER TABLE endpoint_groups
    ADD COLUMN translate boolean NOT NULL DEFAULT true,
    ADD COLUMN wait_for_cooldown_ms integer NOT NULL DEFAULT 0
        CONSTRAINT endpoint_groups_wait_for_cooldown_ms_check
        CHECK (wait_for_cooldown_ms BETWEEN 0 AND 60000);

COMMENT ON COLUMN endpoint_groups.translate IS
    'endpoints of the other API style serve the group''s requests, '
    'translated, when none of the request''s own style is a candidate in a '
    'tier; false = same style only';
COMMENT ON COLUMN endpoint_groups.wait_for_cooldown_ms IS
    'when every endpoint of the group is cooling down, how long a request '
    'may wait for the first to come back before it goes to the one whose '
    'cool-down ends soonest, ms (0 = at once), 0..60000';

-- endpoint_events --------------------------------------------------------

CREATE TABLE endpoint_events (
    endpoint_event_id bigint GENERATED ALWAYS AS IDENTITY,
    at                timestamptz NOT NULL,
    host              text NOT NULL,
    event_id          bigint NOT NULL,
    endpoint_id       bigint,
    endpoint          text NOT NULL,
    endpoint_index    integer NOT NULL,
    type              text NOT NULL
                      CONSTRAINT endpoint_events_type_check
                      CHECK (type IN ('opened', 'half_open', 'closed',
                                      'cooled', 'out', 'reenabled',
                                      'health', 'probe_reset', 'uncooled',
                                      'unknown')),
    from_state        text NOT NULL,
    to_state          text NOT NULL,
    reason            text NOT NULL,
    status            integer NOT NULL,
    consecutive       integer NOT NULL,
    until_at          timestamptz,
    pid               integer NOT NULL,
    source            text NOT NULL,
    PRIMARY KEY (endpoint_event_id, at),
    CONSTRAINT endpoint_events_event_key UNIQUE (host, at, event_id)
) PARTITION BY RANGE (at);

CREATE INDEX endpoint_events_endpoint_idx
    ON endpoint_events (endpoint_id, at DESC, endpoint_event_id DESC);
CREATE INDEX endpoint_events_name_idx
    ON endpoint_events (endpoint, at DESC);

COMMENT ON TABLE endpoint_events IS
    'One row per change of an endpoint''s availability (breaker, cool-down, '
    'spend cap, re-enable, health), as in log.events; partitioned by month '
    '(endpoint_events_YYYYMM, created ahead by admin); retention '
    '(log.events_months) drops whole partitions, never DELETE';
COMMENT ON COLUMN endpoint_events.endpoint_event_id IS
    'identity of the row, increasing in insert order';
COMMENT ON COLUMN endpoint_events.at IS 'when the change happened';
COMMENT ON COLUMN endpoint_events.host IS 'host whose gateway saw it';
COMMENT ON COLUMN endpoint_events.event_id IS
    'position in that host''s events ring (restarts at 0 with master); '
    '(host, at, event_id) identifies an event';
COMMENT ON COLUMN endpoint_events.endpoint_id IS
    'endpoints.endpoint_id of the endpoint at insert time; NULL when the '
    'database had no endpoint of that name';
COMMENT ON COLUMN endpoint_events.endpoint IS 'endpoint name';
COMMENT ON COLUMN endpoint_events.endpoint_index IS
    'its slot in the host''s shared memory';
COMMENT ON COLUMN endpoint_events.type IS
    'opened, half_open, closed, cooled, uncooled, out, reenabled, health or '
    'probe_reset';
COMMENT ON COLUMN endpoint_events.from_state IS
    'state before: closed, open, half_open; available, cooled, out; '
    'unknown, healthy, degraded, unhealthy; none';
COMMENT ON COLUMN endpoint_events.to_state IS 'state after (as from_state)';
COMMENT ON COLUMN endpoint_events.reason IS
    'short cause (at most 95 characters)';
COMMENT ON COLUMN endpoint_events.status IS
    'HTTP status of the cause, or 1000 + curl error code; 0 none';
COMMENT ON COLUMN endpoint_events.consecutive IS
    'consecutive breaker failures at the change';
COMMENT ON COLUMN endpoint_events.until_at IS
    'new deadline (breaker open, cooled or out until); NULL none';
COMMENT ON COLUMN endpoint_events.pid IS 'process that made the change';
COMMENT ON COLUMN endpoint_events.source IS
    'worker (a request''s outcome), health (health check), admin (an '
    'operator) or master (a dead worker''s probe released)';

-- q filters: trigram indexes when pg_trgm can be had ---------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions
                    WHERE name = 'pg_trgm') THEN
        RAISE NOTICE 'pg_trgm is not available: q filters scan';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN
        RAISE NOTICE 'CREATE EXTENSION pg_trgm refused: q filters scan';
        RETURN;
    END;
    CREATE INDEX IF NOT EXISTS users_username_trgm_idx ON users
        USING gin (lower(username) gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS users_email_trgm_idx ON users
        USING gin (lower(coalesce(email, '')) gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS api_keys_name_trgm_idx ON api_keys
        USING gin (lower(name) gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS api_keys_prefix_trgm_idx ON api_keys
        USING gin (lower(prefix) gin_trgm_ops);
END
$$;
