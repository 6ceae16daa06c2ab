-- sql/migrations/0002_usage.sql
--      Usage in PostgreSQL: model prices, hourly usage facts, the batch
--      ledger that makes a replayed flush a no-op, the optional
--      per-request detail table, and the per-quota cache-read switch.
--
-- NOTES
--      Forward-only; the runner wraps this file in one transaction.
--
--      One vocabulary: the columns here, the views of sql/views and the
--      answers of GET /admin/api/usage use the same names (requests,
--      errors, input_tokens, output_tokens, cache_read_tokens,
--      cache_write_5m_tokens, cache_write_1h_tokens, reasoning_tokens,
--      cost_usd).
--
--      Usage facts carry user_id and key_id as plain bigint without
--      foreign keys, so deleting a user or a key keeps its usage, and the
--      endpoint and host by name.  0 and '' stand for "none" (a request
--      refused before its key was known has key_id 0; one never sent
--      upstream has endpoint '').
--
--      Costs are numeric(24,12): the exact sum of per-request costs that
--      the workers compute in pico-dollars (10^-12 USD); prices are
--      numeric(14,6) US dollars per million tokens, which is an integer
--      number of pico-dollars per token.

-- model_prices ---------------------------------------------------------

CREATE TABLE model_prices (
    price_id                    bigint GENERATED ALWAYS AS IDENTITY
                                PRIMARY KEY,
    pattern                     text NOT NULL
                                CONSTRAINT model_prices_pattern_check
                                CHECK (tg_text_ok(pattern, 63)),
    input_usd_per_mtok          numeric(14, 6) NOT NULL
                                CONSTRAINT model_prices_input_check
                                CHECK (input_usd_per_mtok >= 0),
    output_usd_per_mtok         numeric(14, 6) NOT NULL
                                CONSTRAINT model_prices_output_check
                                CHECK (output_usd_per_mtok >= 0),
    cache_read_usd_per_mtok     numeric(14, 6) NOT NULL
                                CONSTRAINT model_prices_cache_read_check
                                CHECK (cache_read_usd_per_mtok >= 0),
    cache_write_5m_usd_per_mtok numeric(14, 6) NOT NULL
                                CONSTRAINT model_prices_cache_write_5m_check
                                CHECK (cache_write_5m_usd_per_mtok >= 0),
    cache_write_1h_usd_per_mtok numeric(14, 6) NOT NULL
                                CONSTRAINT model_prices_cache_write_1h_check
                                CHECK (cache_write_1h_usd_per_mtok >= 0),
    effective_from              timestamptz NOT NULL DEFAULT '-infinity',
    managed_by                  text NOT NULL DEFAULT 'api'
                                CONSTRAINT model_prices_managed_by_check
                                CHECK (managed_by IN ('api', 'seed')),
    comments                    text NOT NULL DEFAULT ''
                                CONSTRAINT model_prices_comments_check
                                CHECK (length(comments) <= 1000),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX model_prices_pattern_from_key
    ON model_prices (pattern, effective_from);

COMMENT ON TABLE model_prices IS
    'List prices per model pattern in US dollars per million tokens; the '
    'row of a pattern with the latest effective_from not in the future is '
    'the price in force, which admin publishes to the workers';
COMMENT ON COLUMN model_prices.price_id IS 'identity of the price row';
COMMENT ON COLUMN model_prices.pattern IS
    'model name, or a pattern with * matching any run of characters '
    '(claude-sonnet-4-5*); the most specific pattern matching a model wins '
    '(fewest *, then longest)';
COMMENT ON COLUMN model_prices.input_usd_per_mtok IS
    'USD per million input tokens not read from cache';
COMMENT ON COLUMN model_prices.output_usd_per_mtok IS
    'USD per million output tokens (reasoning tokens included)';
COMMENT ON COLUMN model_prices.cache_read_usd_per_mtok IS
    'USD per million input tokens read from the prompt cache';
COMMENT ON COLUMN model_prices.cache_write_5m_usd_per_mtok IS
    'USD per million tokens written to the 5-minute prompt cache';
COMMENT ON COLUMN model_prices.cache_write_1h_usd_per_mtok IS
    'USD per million tokens written to the 1-hour prompt cache';
COMMENT ON COLUMN model_prices.effective_from IS
    'when this price starts to apply; -infinity = always';
COMMENT ON COLUMN model_prices.managed_by IS
    '''seed'' = from the price file shipped with Tollgate; ''api'' = set '
    'over the admin API';
COMMENT ON COLUMN model_prices.comments IS
    'free text: source of the price, date looked up';
COMMENT ON COLUMN model_prices.created_at IS 'when the row was created';
COMMENT ON COLUMN model_prices.updated_at IS 'when the row last changed';

CREATE TRIGGER model_prices_touch BEFORE UPDATE ON model_prices
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();
CREATE TRIGGER model_prices_notify
    AFTER INSERT OR UPDATE OR DELETE ON model_prices
    FOR EACH ROW EXECUTE FUNCTION tg_notify_change('price_id');

CREATE TABLE model_price_seeds (
    version    text PRIMARY KEY
               CONSTRAINT model_price_seeds_version_check
               CHECK (tg_text_ok(version, 64)),
    rows       integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE model_price_seeds IS
    'Versions of the shipped price file already seeded; a version is '
    'seeded once, so prices an admin changed or deleted stay so';
COMMENT ON COLUMN model_price_seeds.version IS
    'the "version" of conf/prices.json';
COMMENT ON COLUMN model_price_seeds.rows IS 'price rows it inserted';
COMMENT ON COLUMN model_price_seeds.applied_at IS 'when it was seeded';

-- usage_hourly ---------------------------------------------------------

CREATE TABLE usage_hourly (
    hour                   timestamptz NOT NULL
                           CONSTRAINT usage_hourly_hour_check
                           CHECK (hour = date_trunc('hour', hour, 'UTC')),
    user_id                bigint NOT NULL,
    key_id                 bigint NOT NULL,
    model                  text NOT NULL,
    endpoint               text NOT NULL,
    host                   text NOT NULL,
    requests               bigint NOT NULL DEFAULT 0,
    stream_requests        bigint NOT NULL DEFAULT 0,
    upstream_errors        bigint NOT NULL DEFAULT 0,
    timeouts               bigint NOT NULL DEFAULT 0,
    client_gone            bigint NOT NULL DEFAULT 0,
    broken_streams         bigint NOT NULL DEFAULT 0,
    rejected               bigint NOT NULL DEFAULT 0,
    worker_crashed         bigint NOT NULL DEFAULT 0,
    errors                 bigint GENERATED ALWAYS AS
                           (upstream_errors + timeouts + client_gone
                            + broken_streams + rejected + worker_crashed)
                           STORED,
    input_tokens           bigint NOT NULL DEFAULT 0,
    output_tokens          bigint NOT NULL DEFAULT 0,
    cache_read_tokens      bigint NOT NULL DEFAULT 0,
    cache_write_5m_tokens  bigint NOT NULL DEFAULT 0,
    cache_write_1h_tokens  bigint NOT NULL DEFAULT 0,
    reasoning_tokens       bigint NOT NULL DEFAULT 0,
    cost_usd               numeric(24, 12) NOT NULL DEFAULT 0,
    unpriced_requests      bigint NOT NULL DEFAULT 0,
    tokens_unknown_requests bigint NOT NULL DEFAULT 0,
    latency_ms_sum         bigint NOT NULL DEFAULT 0,
    latency_ms_max         bigint NOT NULL DEFAULT 0,
    ttfb_ms_sum            bigint NOT NULL DEFAULT 0,
    bytes_in               bigint NOT NULL DEFAULT 0,
    bytes_out              bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, user_id, key_id, model, endpoint, host)
);

CREATE INDEX usage_hourly_user_idx ON usage_hourly (user_id, hour);
CREATE INDEX usage_hourly_key_idx ON usage_hourly (key_id, hour);

COMMENT ON TABLE usage_hourly IS
    'Usage facts: one row per UTC hour, user, key, model, endpoint and '
    'host, summed from the requests that ended in that hour; written only '
    'by the admin process (tg_api.usage_ingest), one batch per transaction';
COMMENT ON COLUMN usage_hourly.hour IS
    'start of the UTC hour in which the requests ended';
COMMENT ON COLUMN usage_hourly.user_id IS
    'users.user_id of the key''s owner (no foreign key: usage outlives the '
    'user); 0 = none (refused before authentication)';
COMMENT ON COLUMN usage_hourly.key_id IS
    'api_keys.key_id (no foreign key); 0 = none';
COMMENT ON COLUMN usage_hourly.model IS
    'model named by the request (at most 63 bytes, invalid UTF-8 and '
    'control characters replaced by ?); '''' = none';
COMMENT ON COLUMN usage_hourly.endpoint IS
    'name of the endpoint that answered (endpoints.name); '''' = never '
    'sent upstream';
COMMENT ON COLUMN usage_hourly.host IS
    'admin.host_name of the Tollgate host that served the requests';
COMMENT ON COLUMN usage_hourly.requests IS 'requests that ended';
COMMENT ON COLUMN usage_hourly.stream_requests IS
    'of which the client asked for a stream';
COMMENT ON COLUMN usage_hourly.upstream_errors IS
    'requests no endpoint answered usably, or whose stream carried an '
    'error event';
COMMENT ON COLUMN usage_hourly.timeouts IS 'requests ended by a deadline';
COMMENT ON COLUMN usage_hourly.client_gone IS
    'requests whose client left before the end';
COMMENT ON COLUMN usage_hourly.broken_streams IS
    'requests whose upstream stream broke after the head went out';
COMMENT ON COLUMN usage_hourly.rejected IS
    'requests refused by authentication, quotas or rate limits';
COMMENT ON COLUMN usage_hourly.worker_crashed IS
    'requests in flight when their worker died (recorded by master)';
COMMENT ON COLUMN usage_hourly.errors IS
    'requests that did not end ok: the sum of the six classes above';
COMMENT ON COLUMN usage_hourly.input_tokens IS
    'input tokens not read from cache, as the upstream reported them';
COMMENT ON COLUMN usage_hourly.output_tokens IS
    'output tokens (reasoning tokens included)';
COMMENT ON COLUMN usage_hourly.cache_read_tokens IS
    'input tokens read from the prompt cache';
COMMENT ON COLUMN usage_hourly.cache_write_5m_tokens IS
    'tokens written to the 5-minute prompt cache';
COMMENT ON COLUMN usage_hourly.cache_write_1h_tokens IS
    'tokens written to the 1-hour prompt cache';
COMMENT ON COLUMN usage_hourly.reasoning_tokens IS
    'reasoning tokens (already counted in output_tokens)';
COMMENT ON COLUMN usage_hourly.cost_usd IS
    'US dollars, the exact sum of the requests'' costs (list price times '
    'the endpoint''s price_factor)';
COMMENT ON COLUMN usage_hourly.unpriced_requests IS
    'requests whose model had no price (cost 0)';
COMMENT ON COLUMN usage_hourly.tokens_unknown_requests IS
    'requests whose usage could not be (fully) read';
COMMENT ON COLUMN usage_hourly.latency_ms_sum IS
    'sum of request-received-to-last-byte times, milliseconds';
COMMENT ON COLUMN usage_hourly.latency_ms_max IS
    'largest of those times, milliseconds';
COMMENT ON COLUMN usage_hourly.ttfb_ms_sum IS
    'sum of request-received-to-first-byte times, milliseconds';
COMMENT ON COLUMN usage_hourly.bytes_in IS 'bytes read from the clients';
COMMENT ON COLUMN usage_hourly.bytes_out IS 'bytes written to the clients';

-- usage_batches --------------------------------------------------------

CREATE TABLE usage_batches (
    batch_id   text PRIMARY KEY
               CONSTRAINT usage_batches_batch_id_check
               CHECK (batch_id ~ '^[0-9a-f]{16}-[0-9]{1,19}$'),
    host       text NOT NULL,
    records    bigint NOT NULL,
    rows       integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX usage_batches_applied_idx ON usage_batches (applied_at);

COMMENT ON TABLE usage_batches IS
    'Every usage batch applied, inserted in the transaction that applies '
    'it: a batch replayed after a crash or an outage finds its id here and '
    'changes nothing';
COMMENT ON COLUMN usage_batches.batch_id IS
    '<spool id, 16 hex digits>-<sequence number>, unique per spool';
COMMENT ON COLUMN usage_batches.host IS 'host whose admin sent it';
COMMENT ON COLUMN usage_batches.records IS 'usage records it summed';
COMMENT ON COLUMN usage_batches.rows IS 'usage_hourly rows it touched';
COMMENT ON COLUMN usage_batches.applied_at IS 'when it committed';

-- usage_requests (optional detail) ---------------------------------------

CREATE TABLE usage_requests (
    at                    timestamptz NOT NULL,
    host                  text NOT NULL,
    request_id            text NOT NULL,
    user_id               bigint NOT NULL,
    key_id                bigint NOT NULL,
    model                 text NOT NULL,
    endpoint              text NOT NULL,
    api                   text NOT NULL,
    stream                boolean NOT NULL,
    status                integer NOT NULL,
    outcome               text NOT NULL,
    attempts              integer NOT NULL,
    input_tokens          bigint NOT NULL,
    output_tokens         bigint NOT NULL,
    cache_read_tokens     bigint NOT NULL,
    cache_write_5m_tokens bigint NOT NULL,
    cache_write_1h_tokens bigint NOT NULL,
    reasoning_tokens      bigint NOT NULL,
    cost_usd              numeric(24, 12) NOT NULL,
    unpriced              boolean NOT NULL,
    tokens_known          boolean NOT NULL,
    latency_ms            bigint NOT NULL,
    ttfb_ms               bigint NOT NULL,
    bytes_in              bigint NOT NULL,
    bytes_out             bigint NOT NULL
) PARTITION BY RANGE (at);

COMMENT ON TABLE usage_requests IS
    'One row per request, written only when usage.detail is true; '
    'partitioned by month (usage_requests_YYYYMM, created ahead by admin); '
    'retention drops whole partitions, never DELETE';
COMMENT ON COLUMN usage_requests.at IS 'when the request ended';
COMMENT ON COLUMN usage_requests.host IS 'host that served it';
COMMENT ON COLUMN usage_requests.request_id IS
    'the request id (16 hex digits, unique per host), as in the access log';
COMMENT ON COLUMN usage_requests.user_id IS 'as usage_hourly.user_id';
COMMENT ON COLUMN usage_requests.key_id IS 'as usage_hourly.key_id';
COMMENT ON COLUMN usage_requests.model IS 'as usage_hourly.model';
COMMENT ON COLUMN usage_requests.endpoint IS 'as usage_hourly.endpoint';
COMMENT ON COLUMN usage_requests.api IS '''anthropic'' or ''openai''';
COMMENT ON COLUMN usage_requests.stream IS 'the client asked for a stream';
COMMENT ON COLUMN usage_requests.status IS 'HTTP status sent to the client';
COMMENT ON COLUMN usage_requests.outcome IS
    'ok, upstream_error, client_gone, timeout, rejected, broken_stream or '
    'worker_crashed';
COMMENT ON COLUMN usage_requests.attempts IS 'upstream attempts';
COMMENT ON COLUMN usage_requests.input_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.output_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.cache_read_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.cache_write_5m_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.cache_write_1h_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.reasoning_tokens IS 'as usage_hourly';
COMMENT ON COLUMN usage_requests.cost_usd IS 'US dollars';
COMMENT ON COLUMN usage_requests.unpriced IS 'the model had no price';
COMMENT ON COLUMN usage_requests.tokens_known IS
    'false when the usage could not be (fully) read';
COMMENT ON COLUMN usage_requests.latency_ms IS
    'request received to last byte sent, milliseconds';
COMMENT ON COLUMN usage_requests.ttfb_ms IS
    'request received to first byte sent, milliseconds';
COMMENT ON COLUMN usage_requests.bytes_in IS 'bytes read from the client';
COMMENT ON COLUMN usage_requests.bytes_out IS 'bytes written to the client';

-- Quotas: whether cache reads count ------------------------------------

ALTER TABLE users
    ADD COLUMN tokens_day_cache_reads boolean NOT NULL DEFAULT true,
    ADD COLUMN tokens_month_cache_reads boolean NOT NULL DEFAULT true;
ALTER TABLE api_keys
    ADD COLUMN tokens_day_cache_reads boolean NOT NULL DEFAULT true,
    ADD COLUMN tokens_month_cache_reads boolean NOT NULL DEFAULT true;

COMMENT ON COLUMN users.tokens_day_cache_reads IS
    'whether cache_read_tokens count toward tokens_day (cost quotas always '
    'price them at their own rate)';
COMMENT ON COLUMN users.tokens_month_cache_reads IS
    'whether cache_read_tokens count toward tokens_month';
COMMENT ON COLUMN api_keys.tokens_day_cache_reads IS
    'whether cache_read_tokens count toward the key''s tokens_day';
COMMENT ON COLUMN api_keys.tokens_month_cache_reads IS
    'whether cache_read_tokens count toward the key''s tokens_month';
