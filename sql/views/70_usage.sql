-- sql/views/70_usage.sql
--      Usage views for analysts: daily and monthly usage per user, key
--      and model; cost per user per month; endpoint reliability per hour.
--
-- NOTES
--      Re-applied at every start (CREATE OR REPLACE VIEW); a later change
--      that drops or renames a column needs DROP VIEW in a migration.
--      Days and months are UTC, like usage_hourly.hour.  The column names
--      are usage_hourly's, which are also the admin API's.

CREATE OR REPLACE VIEW public.usage_daily AS
SELECT date_trunc('day', hour, 'UTC') AS day,
       user_id, key_id, model,
       sum(requests)::bigint AS requests,
       sum(errors)::bigint AS errors,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cache_read_tokens)::bigint AS cache_read_tokens,
       sum(cache_write_5m_tokens)::bigint AS cache_write_5m_tokens,
       sum(cache_write_1h_tokens)::bigint AS cache_write_1h_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens,
       sum(cost_usd) AS cost_usd
  FROM public.usage_hourly
 GROUP BY 1, 2, 3, 4;

COMMENT ON VIEW public.usage_daily IS
    'usage_hourly summed per UTC day, user, key and model (all hosts and '
    'endpoints)';
COMMENT ON COLUMN public.usage_daily.day IS 'start of the UTC day';
COMMENT ON COLUMN public.usage_daily.user_id IS 'as usage_hourly.user_id';
COMMENT ON COLUMN public.usage_daily.key_id IS 'as usage_hourly.key_id';
COMMENT ON COLUMN public.usage_daily.model IS 'as usage_hourly.model';
COMMENT ON COLUMN public.usage_daily.requests IS 'requests that ended';
COMMENT ON COLUMN public.usage_daily.errors IS 'of which did not end ok';
COMMENT ON COLUMN public.usage_daily.input_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.output_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.cache_read_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.cache_write_5m_tokens IS
    'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.cache_write_1h_tokens IS
    'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.reasoning_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_daily.cost_usd IS 'US dollars';

CREATE OR REPLACE VIEW public.usage_monthly AS
SELECT date_trunc('month', day, 'UTC') AS month,
       user_id, key_id, model,
       sum(requests)::bigint AS requests,
       sum(errors)::bigint AS errors,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cache_read_tokens)::bigint AS cache_read_tokens,
       sum(cache_write_5m_tokens)::bigint AS cache_write_5m_tokens,
       sum(cache_write_1h_tokens)::bigint AS cache_write_1h_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens,
       sum(cost_usd) AS cost_usd
  FROM public.usage_daily
 GROUP BY 1, 2, 3, 4;

COMMENT ON VIEW public.usage_monthly IS
    'usage_hourly summed per UTC month, user, key and model';
COMMENT ON COLUMN public.usage_monthly.month IS 'start of the UTC month';
COMMENT ON COLUMN public.usage_monthly.user_id IS 'as usage_hourly.user_id';
COMMENT ON COLUMN public.usage_monthly.key_id IS 'as usage_hourly.key_id';
COMMENT ON COLUMN public.usage_monthly.model IS 'as usage_hourly.model';
COMMENT ON COLUMN public.usage_monthly.requests IS 'requests that ended';
COMMENT ON COLUMN public.usage_monthly.errors IS 'of which did not end ok';
COMMENT ON COLUMN public.usage_monthly.input_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.output_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.cache_read_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.cache_write_5m_tokens IS
    'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.cache_write_1h_tokens IS
    'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.reasoning_tokens IS 'as usage_hourly';
COMMENT ON COLUMN public.usage_monthly.cost_usd IS 'US dollars';

CREATE OR REPLACE VIEW public.user_cost_monthly AS
SELECT date_trunc('month', h.hour, 'UTC') AS month,
       h.user_id, u.username,
       sum(h.requests)::bigint AS requests,
       sum(h.input_tokens + h.output_tokens + h.cache_read_tokens
           + h.cache_write_5m_tokens + h.cache_write_1h_tokens)::bigint
           AS tokens,
       sum(h.cost_usd) AS cost_usd,
       sum(h.unpriced_requests)::bigint AS unpriced_requests
  FROM public.usage_hourly h
  LEFT JOIN public.users u ON u.user_id = h.user_id
 GROUP BY 1, 2, 3;

COMMENT ON VIEW public.user_cost_monthly IS
    'cost per user per UTC month, with the user''s current name';
COMMENT ON COLUMN public.user_cost_monthly.month IS 'start of the UTC month';
COMMENT ON COLUMN public.user_cost_monthly.user_id IS
    'as usage_hourly.user_id';
COMMENT ON COLUMN public.user_cost_monthly.username IS
    'users.username now; NULL for a deleted user';
COMMENT ON COLUMN public.user_cost_monthly.requests IS 'requests that ended';
COMMENT ON COLUMN public.user_cost_monthly.tokens IS
    'input, output, cache read and cache write tokens';
COMMENT ON COLUMN public.user_cost_monthly.cost_usd IS 'US dollars';
COMMENT ON COLUMN public.user_cost_monthly.unpriced_requests IS
    'requests of models without a price (counted at 0)';

CREATE OR REPLACE VIEW public.endpoint_reliability_hourly AS
SELECT hour, endpoint,
       sum(requests)::bigint AS requests,
       sum(errors)::bigint AS errors,
       sum(upstream_errors)::bigint AS upstream_errors,
       sum(timeouts)::bigint AS timeouts,
       sum(broken_streams)::bigint AS broken_streams,
       sum(client_gone)::bigint AS client_gone,
       round(sum(upstream_errors + timeouts + broken_streams)::numeric
             / nullif(sum(requests), 0), 4) AS failure_ratio,
       round(sum(latency_ms_sum)::numeric / nullif(sum(requests), 0))::bigint
           AS latency_ms_avg,
       max(latency_ms_max) AS latency_ms_max,
       round(sum(ttfb_ms_sum)::numeric / nullif(sum(requests), 0))::bigint
           AS ttfb_ms_avg
  FROM public.usage_hourly
 WHERE endpoint <> ''
 GROUP BY 1, 2;

COMMENT ON VIEW public.endpoint_reliability_hourly IS
    'per endpoint and UTC hour: requests, failures by class and latency';
COMMENT ON COLUMN public.endpoint_reliability_hourly.hour IS
    'start of the UTC hour';
COMMENT ON COLUMN public.endpoint_reliability_hourly.endpoint IS
    'endpoints.name';
COMMENT ON COLUMN public.endpoint_reliability_hourly.requests IS
    'requests it answered or failed';
COMMENT ON COLUMN public.endpoint_reliability_hourly.errors IS
    'of which did not end ok (any class)';
COMMENT ON COLUMN public.endpoint_reliability_hourly.upstream_errors IS
    'as usage_hourly';
COMMENT ON COLUMN public.endpoint_reliability_hourly.timeouts IS
    'as usage_hourly';
COMMENT ON COLUMN public.endpoint_reliability_hourly.broken_streams IS
    'as usage_hourly';
COMMENT ON COLUMN public.endpoint_reliability_hourly.client_gone IS
    'as usage_hourly (the client''s doing, not the endpoint''s)';
COMMENT ON COLUMN public.endpoint_reliability_hourly.failure_ratio IS
    '(upstream_errors + timeouts + broken_streams) / requests';
COMMENT ON COLUMN public.endpoint_reliability_hourly.latency_ms_avg IS
    'mean request-to-last-byte time, ms';
COMMENT ON COLUMN public.endpoint_reliability_hourly.latency_ms_max IS
    'largest request-to-last-byte time, ms';
COMMENT ON COLUMN public.endpoint_reliability_hourly.ttfb_ms_avg IS
    'mean time to first byte, ms';
