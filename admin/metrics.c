/*
 * admin/metrics.c
 *      GET /metrics: Prometheus text format 0.0.4 from shared memory.
 *
 * NOTES
 *      Admin only, on admin's loop; a scrape reads shared memory and the
 *      spool directory and never waits for anything else.  Each family is
 *      written whole (HELP, TYPE, then its samples), names carry the
 *      tollgate_ prefix and base units (seconds, bytes, USD), counters end
 *      in _total.  Label values are endpoint names (config-checked
 *      [A-Za-z0-9_.-]), model names from the bounded table of
 *      shm/metrics.h, and fixed words; they are escaped anyway.  No key,
 *      user or request ever becomes a label.
 *
 *      The worker rows are summed over every proc entry a process ever
 *      used (started_ms set by master): a dead worker's counts stay in
 *      its row, so counters never go back.  Rows of entries never used
 *      are not touched, which keeps their pages unallocated.
 */
#include "admin/metrics.h"
#include "admin/agg.h"
#include "admin/events_store.h"
#include "admin/store.h"
#include "core/core.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    uint64_t requests[TG_SHM_METRICS_APIS][TG_SHM_METRICS_CLASSES];
    uint64_t retries;
    uint64_t ttfb[TG_SHM_METRICS_BUCKETS];
    uint64_t ttfb_sum_us;
    uint64_t duration[TG_SHM_METRICS_BUCKETS];
    uint64_t duration_sum_us;
} tg_metrics_ep_sum_t;

typedef struct {
    uint64_t refused[TG_SHM_METRICS_REFUSE];
    uint64_t model_requests[TG_SHM_METRICS_MODELS + 1];
    uint64_t model_cost_pusd[TG_SHM_METRICS_MODELS + 1];
    uint64_t model_tokens[TG_SHM_METRICS_MODELS + 1][TG_USAGE_NTOKENS];
    uint64_t unpriced;
    tg_metrics_ep_sum_t *eps; /* neps + 1 */
    uint32_t neps;
    char model_names[TG_SHM_METRICS_MODELS + 1][TG_SHM_METRICS_NAME];
} tg_metrics_sum_t;

static const uint64_t tg_metrics_bounds[TG_SHM_METRICS_BUCKETS - 1] =
    TG_SHM_METRICS_BOUNDS_US;
static const char *const tg_metrics_apis[TG_SHM_METRICS_APIS] = {
    "anthropic", "openai", "responses"};
static const char *const tg_metrics_classes[TG_SHM_METRICS_CLASSES] = {
    "none", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const tg_metrics_tokens[TG_USAGE_NTOKENS] = {
    "input",          "output",         "cache_read",
    "cache_write_5m", "cache_write_1h", "reasoning"};
static const char *const tg_metrics_refusals[TG_SHM_METRICS_REFUSE] = {
    NULL,           "auth",       "forbidden", "rpm",   "tpm", "concurrency",
    "quota_tokens", "quota_cost", "overload",  "other", NULL,  NULL,
    NULL,           NULL,         NULL,        NULL};


/* Append formatted text; sets *<rc> to TG_ERROR once anything fails. */
static void __attribute__((format(printf, 3, 4)))
tg_metrics_out(tg_buf_t *b, int *rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*rc != TG_OK) {
        return;
    }
    if (tg_buf_reserve(b, 512) != TG_OK) {
        *rc = TG_ERROR;
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->last, b->cap - b->last, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *rc = TG_ERROR;
        return;
    }
    if ((size_t)n >= b->cap - b->last) {
        /* Longer than the room reserved: make room and format again. */
        if (tg_buf_reserve(b, (size_t)n + 1) != TG_OK) {
            *rc = TG_ERROR;
            return;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->last, b->cap - b->last, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= b->cap - b->last) {
            *rc = TG_ERROR;
            return;
        }
    }
    b->last += (size_t)n;
}


/* HELP and TYPE of a family. */
static void
tg_metrics_family(tg_buf_t *b, int *rc, const char *name, const char *type,
                  const char *help)
{
    tg_metrics_out(b, rc, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                   type);
}


/* See metrics.h. */
void
tg_metrics_escape(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s != '\0' && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[n++] = '\\';
            out[n++] = *s;
        } else if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    tg_utf8_fix(out);
}


/* The label value of endpoint block <i>; false for a slot of the
 * endpoint table that holds no endpoint (never used). */
static bool
tg_metrics_ep_name(const tg_conf_t *conf, uint32_t i, uint32_t neps, char *out,
                   size_t cap)
{
    if (i >= neps || i >= conf->nendpoints) {
        snprintf(out, cap, "none");
        return true;
    }
    if (conf->endpoints[i].name[0] == '\0') {
        return false;
    }
    tg_metrics_escape(conf->endpoints[i].name, out, cap);
    return true;
}


/* Add the rows of every proc entry ever used into <s>. */
static void
tg_metrics_sum(tg_shm_t *shm, tg_metrics_sum_t *s)
{
    tg_shm_metrics_hdr_t *m = tg_shm_metrics(shm);
    uint32_t i, e, k, j, nprocs = tg_shm_capacity(shm, TG_SHM_T_PROCS);

    for (i = 0; i < TG_SHM_METRICS_MODELS; i++) {
        tg_shm_metrics_model_t *mm = &m->models[i];

        if (atomic_load_explicit(&mm->state, memory_order_acquire) ==
                TG_SHM_MODEL_READY &&
            mm->len < TG_SHM_METRICS_NAME) {
            memcpy(s->model_names[i], mm->name, mm->len);
            s->model_names[i][mm->len] = '\0';
        }
    }
    snprintf(s->model_names[TG_SHM_METRICS_MODELS], TG_SHM_METRICS_NAME,
             "other");
    for (i = 0; i < nprocs && i < m->procs; i++) {
        tg_shm_metrics_row_t *row;

        if (atomic_load(&tg_shm_proc(shm, i)->started_ms) == 0) {
            continue;
        }
        row = tg_shm_metrics_row(m, i);
        if (atomic_load_explicit(&row->used, memory_order_relaxed) == 0) {
            continue;
        }
        for (k = 0; k < TG_SHM_METRICS_REFUSE; k++) {
            s->refused[k] +=
                atomic_load_explicit(&row->refused[k], memory_order_relaxed);
        }
        s->unpriced +=
            atomic_load_explicit(&row->unpriced, memory_order_relaxed);
        for (k = 0; k <= TG_SHM_METRICS_MODELS; k++) {
            s->model_requests[k] += row->model_requests[k];
            s->model_cost_pusd[k] += row->model_cost_pusd[k];
            for (j = 0; j < TG_USAGE_NTOKENS; j++) {
                s->model_tokens[k][j] += row->model_tokens[k][j];
            }
        }
        for (e = 0; e <= s->neps; e++) {
            /* The last block (requests without an endpoint) is the
             * table's, not the configured count's. */
            tg_shm_metrics_ep_t *ep =
                tg_shm_metrics_ep(m, row, e == s->neps ? m->neps : e);
            tg_metrics_ep_sum_t *d = &s->eps[e];

            for (k = 0; k < TG_SHM_METRICS_APIS; k++) {
                for (j = 0; j < TG_SHM_METRICS_CLASSES; j++) {
                    d->requests[k][j] += ep->requests[k][j];
                }
            }
            d->retries += ep->retries;
            for (k = 0; k < TG_SHM_METRICS_BUCKETS; k++) {
                d->ttfb[k] += ep->ttfb[k];
                d->duration[k] += ep->duration[k];
            }
            d->ttfb_sum_us += ep->ttfb_sum_us;
            d->duration_sum_us += ep->duration_sum_us;
        }
    }
}


/* One histogram series: cumulative buckets, sum and count. */
static void
tg_metrics_histogram(tg_buf_t *b, int *rc, const char *name,
                     const char *endpoint, const uint64_t *buckets,
                     uint64_t sum_us)
{
    uint64_t cum = 0;
    uint32_t k;

    for (k = 0; k < TG_SHM_METRICS_BUCKETS; k++) {
        cum += buckets[k];
        if (k + 1 < TG_SHM_METRICS_BUCKETS) {
            tg_metrics_out(b, rc, "%s_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                           name, endpoint, tg_metrics_bounds[k] / 1e6,
                           (unsigned long long)cum);
        } else {
            tg_metrics_out(b, rc,
                           "%s_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                           name, endpoint, (unsigned long long)cum);
        }
    }
    tg_metrics_out(b, rc, "%s_sum{endpoint=\"%s\"} %.6f\n", name, endpoint,
                   (double)sum_us / 1e6);
    tg_metrics_out(b, rc, "%s_count{endpoint=\"%s\"} %llu\n", name, endpoint,
                   (unsigned long long)cum);
}


/* Requests, retries and the two histograms, by endpoint. */
static void
tg_metrics_requests(const tg_conf_t *conf, const tg_metrics_sum_t *s,
                    tg_buf_t *b, int *rc)
{
    char name[256];
    uint32_t e, k, j;

    tg_metrics_family(b, rc, "tollgate_requests_total", "counter",
                      "Requests ended, by the endpoint that answered last "
                      "(\"none\" when none was tried), API style and status "
                      "class sent to the client (\"none\" when no status "
                      "was sent).");
    for (e = 0; e <= s->neps; e++) {
        if (!tg_metrics_ep_name(conf, e, s->neps, name, sizeof(name))) {
            continue;
        }
        for (k = 0; k < TG_SHM_METRICS_APIS; k++) {
            for (j = 0; j < TG_SHM_METRICS_CLASSES; j++) {
                if (s->eps[e].requests[k][j] == 0) {
                    continue;
                }
                tg_metrics_out(
                    b, rc,
                    "tollgate_requests_total{endpoint=\"%s\",api=\"%s\","
                    "code=\"%s\"} %llu\n",
                    name, tg_metrics_apis[k], tg_metrics_classes[j],
                    (unsigned long long)s->eps[e].requests[k][j]);
            }
        }
    }
    tg_metrics_family(b, rc, "tollgate_upstream_retries_total", "counter",
                      "Upstream attempts after the first of a request, by "
                      "the endpoint that answered last.");
    for (e = 0; e < s->neps; e++) {
        if (!tg_metrics_ep_name(conf, e, s->neps, name, sizeof(name))) {
            continue;
        }
        tg_metrics_out(b, rc,
                       "tollgate_upstream_retries_total{endpoint=\"%s\"} "
                       "%llu\n",
                       name, (unsigned long long)s->eps[e].retries);
    }
    tg_metrics_family(b, rc, "tollgate_time_to_first_byte_seconds", "histogram",
                      "Time from the first byte of a request to the first "
                      "byte of its response, by endpoint.");
    for (e = 0; e < s->neps; e++) {
        if (!tg_metrics_ep_name(conf, e, s->neps, name, sizeof(name))) {
            continue;
        }
        tg_metrics_histogram(b, rc, "tollgate_time_to_first_byte_seconds", name,
                             s->eps[e].ttfb, s->eps[e].ttfb_sum_us);
    }
    tg_metrics_family(b, rc, "tollgate_request_duration_seconds", "histogram",
                      "Time from the first byte of a request to the last "
                      "byte of its response, by endpoint (\"none\": "
                      "answered without an upstream).");
    for (e = 0; e <= s->neps; e++) {
        if (!tg_metrics_ep_name(conf, e, s->neps, name, sizeof(name))) {
            continue;
        }
        tg_metrics_histogram(b, rc, "tollgate_request_duration_seconds", name,
                             s->eps[e].duration, s->eps[e].duration_sum_us);
    }
}


/* Tokens, cost and requests by model; refusals by reason. */
static void
tg_metrics_models(const tg_metrics_sum_t *s, tg_buf_t *b, int *rc)
{
    char name[TG_SHM_METRICS_NAME * 2];
    uint32_t k, j;

    tg_metrics_family(b, rc, "tollgate_model_requests_total", "counter",
                      "Requests sent upstream, by model (at most 32 "
                      "names, the rest as \"other\").");
    for (k = 0; k <= TG_SHM_METRICS_MODELS; k++) {
        if (s->model_names[k][0] == '\0' || s->model_requests[k] == 0) {
            continue;
        }
        tg_metrics_escape(s->model_names[k], name, sizeof(name));
        tg_metrics_out(b, rc,
                       "tollgate_model_requests_total{model=\"%s\"} "
                       "%llu\n",
                       name, (unsigned long long)s->model_requests[k]);
    }
    tg_metrics_family(b, rc, "tollgate_tokens_total", "counter",
                      "Tokens the upstreams reported, by model and class.");
    for (k = 0; k <= TG_SHM_METRICS_MODELS; k++) {
        if (s->model_names[k][0] == '\0' || s->model_requests[k] == 0) {
            continue;
        }
        tg_metrics_escape(s->model_names[k], name, sizeof(name));
        for (j = 0; j < TG_USAGE_NTOKENS; j++) {
            tg_metrics_out(b, rc,
                           "tollgate_tokens_total{model=\"%s\",class=\"%s\"} "
                           "%llu\n",
                           name, tg_metrics_tokens[j],
                           (unsigned long long)s->model_tokens[k][j]);
        }
    }
    tg_metrics_family(b, rc, "tollgate_cost_usd_total", "counter",
                      "Cost of the requests at list price and endpoint "
                      "price factor, in US dollars, by model.");
    for (k = 0; k <= TG_SHM_METRICS_MODELS; k++) {
        if (s->model_names[k][0] == '\0' || s->model_requests[k] == 0) {
            continue;
        }
        tg_metrics_escape(s->model_names[k], name, sizeof(name));
        tg_metrics_out(b, rc, "tollgate_cost_usd_total{model=\"%s\"} %.12f\n",
                       name, (double)s->model_cost_pusd[k] / 1e12);
    }
    tg_metrics_family(b, rc, "tollgate_unpriced_requests_total", "counter",
                      "Requests with tokens whose model matched no price, "
                      "recorded at cost 0.");
    tg_metrics_out(b, rc, "tollgate_unpriced_requests_total %llu\n",
                   (unsigned long long)s->unpriced);
    tg_metrics_family(b, rc, "tollgate_refusals_total", "counter",
                      "Requests refused before reaching an upstream, by "
                      "reason.");
    for (k = 1; k < TG_SHM_METRICS_REFUSE; k++) {
        if (tg_metrics_refusals[k] != NULL) {
            tg_metrics_out(b, rc,
                           "tollgate_refusals_total{reason=\"%s\"} "
                           "%llu\n",
                           tg_metrics_refusals[k],
                           (unsigned long long)s->refused[k]);
        }
    }
}


/* Live state of each configured endpoint, from the endpoint table. */
static void
tg_metrics_endpoints(const tg_conf_t *conf, tg_shm_t *shm, tg_buf_t *b, int *rc)
{
    static const char *const states[] = {"closed", "open", "half_open"};
    uint32_t neps =
        (uint32_t)TG_MIN(conf->nendpoints, tg_shm_capacity(shm, TG_SHM_T_EPS));
    void *base = tg_shm_table(shm, TG_SHM_T_EPS);
    uint64_t now = tg_time_wall_ms();
    char name[256];
    uint32_t i, k;

#define TG_METRICS_EACH_EP(stmt)                                               \
    for (i = 0; i < neps; i++) {                                               \
        tg_shm_ep_t *e = tg_shm_ep_get(base, i);                               \
        if (conf->endpoints[i].name[0] == '\0') {                              \
            continue;                                                          \
        }                                                                      \
        tg_metrics_escape(conf->endpoints[i].name, name, sizeof(name));        \
        stmt;                                                                  \
    }

    tg_metrics_family(b, rc, "tollgate_upstream_attempts_total", "counter",
                      "Upstream attempts started, by endpoint.");
    TG_METRICS_EACH_EP(tg_metrics_out(
        b, rc, "tollgate_upstream_attempts_total{endpoint=\"%s\"} %llu\n", name,
        (unsigned long long)atomic_load(&e->requests)));
    tg_metrics_family(b, rc, "tollgate_upstream_failures_total", "counter",
                      "Upstream attempts that failed (transport error, "
                      "timeout, 5xx, 401), by endpoint.");
    TG_METRICS_EACH_EP(tg_metrics_out(
        b, rc, "tollgate_upstream_failures_total{endpoint=\"%s\"} %llu\n", name,
        (unsigned long long)atomic_load(&e->failures)));
    tg_metrics_family(b, rc, "tollgate_upstream_in_flight", "gauge",
                      "Upstream transfers open now, by endpoint.");
    TG_METRICS_EACH_EP(tg_metrics_out(
        b, rc, "tollgate_upstream_in_flight{endpoint=\"%s\"} %llu\n", name,
        (unsigned long long)atomic_load(&e->inflight)));
    tg_metrics_family(b, rc, "tollgate_endpoint_breaker_state", "gauge",
                      "Circuit breaker of each endpoint: 1 for its current "
                      "state, 0 for the others.");
    TG_METRICS_EACH_EP(for (k = 0; k < 3; k++) {
        tg_metrics_out(b, rc,
                       "tollgate_endpoint_breaker_state{endpoint=\"%s\","
                       "state=\"%s\"} %d\n",
                       name, states[k], atomic_load(&e->breaker) == k);
    });
    tg_metrics_family(b, rc, "tollgate_endpoint_cooldown_seconds", "gauge",
                      "Seconds left of an endpoint's cool-down after a 429 "
                      "or 529 (0 when not cooling down).");
    TG_METRICS_EACH_EP({
        uint64_t until = atomic_load(&e->cooled_until_ms);

        tg_metrics_out(b, rc,
                       "tollgate_endpoint_cooldown_seconds{endpoint=\"%s\"} "
                       "%.3f\n",
                       name, until > now ? (double)(until - now) / 1e3 : 0.0);
    });
    tg_metrics_family(b, rc, "tollgate_endpoint_available", "gauge",
                      "1 when the endpoint takes traffic now (breaker, "
                      "cool-down, spend cap and health allow it).");
    TG_METRICS_EACH_EP(tg_metrics_out(
        b, rc, "tollgate_endpoint_available{endpoint=\"%s\"} %d\n", name,
        tg_shm_ep_available(e, now) ? 1 : 0));
    tg_metrics_family(b, rc, "tollgate_endpoint_latency_ewma_seconds", "gauge",
                      "Moving average of the time to the response head, by "
                      "endpoint.");
    TG_METRICS_EACH_EP(tg_metrics_out(
        b, rc,
        "tollgate_endpoint_latency_ewma_seconds{endpoint=\"%s\"} "
        "%.6f\n",
        name, (double)atomic_load(&e->latency_ewma_us) / 1e6));
#undef TG_METRICS_EACH_EP
}


/* Processes: connections, requests in flight, restarts, start time. */
static void
tg_metrics_procs(tg_shm_t *shm, tg_buf_t *b, int *rc)
{
    tg_shm_metrics_hdr_t *m = tg_shm_metrics(shm);
    uint32_t i, n = tg_shm_capacity(shm, TG_SHM_T_PROCS);
    uint64_t active = 0, inflight = 0, accepted = 0, alive = 0;

    for (i = 0; i < n; i++) {
        tg_shm_proc_t *p = tg_shm_proc(shm, i);

        if (atomic_load(&p->started_ms) == 0) {
            continue;
        }
        active += atomic_load(&p->active);
        inflight += atomic_load(&p->inflight);
        accepted += atomic_load(&p->connections);
        alive += atomic_load(&p->pid) != 0;
    }
    tg_metrics_family(b, rc, "tollgate_client_connections", "gauge",
                      "Client connections open now.");
    tg_metrics_out(b, rc, "tollgate_client_connections %llu\n",
                   (unsigned long long)active);
    tg_metrics_family(b, rc, "tollgate_client_connections_accepted_total",
                      "counter", "Client connections accepted.");
    tg_metrics_out(b, rc, "tollgate_client_connections_accepted_total %llu\n",
                   (unsigned long long)accepted);
    tg_metrics_family(b, rc, "tollgate_requests_in_flight", "gauge",
                      "Requests with an upstream exchange under way.");
    tg_metrics_out(b, rc, "tollgate_requests_in_flight %llu\n",
                   (unsigned long long)inflight);
    tg_metrics_family(b, rc, "tollgate_processes", "gauge",
                      "Worker and admin processes running.");
    tg_metrics_out(b, rc, "tollgate_processes %llu\n",
                   (unsigned long long)alive);
    tg_metrics_family(b, rc, "tollgate_process_restarts_total", "counter",
                      "Child processes that died and were started again "
                      "by master, by role.");
    tg_metrics_out(b, rc,
                   "tollgate_process_restarts_total{role=\"worker\"} %llu\n"
                   "tollgate_process_restarts_total{role=\"admin\"} %llu\n",
                   (unsigned long long)atomic_load(&m->restarts_worker),
                   (unsigned long long)atomic_load(&m->restarts_admin));
    tg_metrics_family(b, rc, "tollgate_start_time_seconds", "gauge",
                      "When the shared region was created (master start), "
                      "in seconds since the epoch.");
    tg_metrics_out(b, rc, "tollgate_start_time_seconds %.3f\n",
                   (double)tg_shm_hdr(shm)->created_ms / 1e3);
}


/* Count the spool files and their bytes in <dir>. */
static void
tg_metrics_spool_scan(const char *dir, uint64_t *files, uint64_t *bytes)
{
    struct dirent *de;
    struct stat st;
    DIR *d = opendir(dir);

    *files = 0;
    *bytes = 0;
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "usage-", 6) != 0) {
            continue;
        }
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
            (*files)++;
            *bytes += (uint64_t)st.st_size;
        }
    }
    closedir(d);
}


/* The usage ring, spool, drain and database. */
static void
tg_metrics_usage(const tg_conf_t *conf, tg_shm_t *shm, tg_buf_t *b, int *rc)
{
    static const char *const states[] = {"none", "connecting", "ready", "down",
                                         "refused"};
    tg_shm_ring_t *ring = tg_shm_ring(shm);
    const tg_agg_stats_t *st = tg_agg_stats();
    uint64_t head = atomic_load(&ring->head), tail = atomic_load(&ring->tail);
    uint64_t files, bytes, now = tg_time_wall_ms(), lag = 0;
    uint64_t pending = tg_agg_pending();
    int state = (int)tg_store_state();
    uint32_t k;

    tg_metrics_spool_scan(conf->spool_dir, &files, &bytes);
    tg_metrics_family(b, rc, "tollgate_usage_ring_depth", "gauge",
                      "Usage records waiting in the shared ring.");
    tg_metrics_out(b, rc, "tollgate_usage_ring_depth %llu\n",
                   (unsigned long long)(head > tail ? head - tail : 0));
    tg_metrics_family(b, rc, "tollgate_usage_ring_capacity", "gauge",
                      "Slots of the usage ring.");
    tg_metrics_out(b, rc, "tollgate_usage_ring_capacity %u\n", ring->capacity);
    tg_metrics_family(b, rc, "tollgate_usage_ring_full_total", "counter",
                      "Times a worker found the usage ring full and spooled "
                      "its record to disk.");
    tg_metrics_out(b, rc, "tollgate_usage_ring_full_total %llu\n",
                   (unsigned long long)atomic_load(&ring->full));
    tg_metrics_family(b, rc, "tollgate_usage_spool_files", "gauge",
                      "Usage spool files waiting on disk.");
    tg_metrics_out(b, rc, "tollgate_usage_spool_files %llu\n",
                   (unsigned long long)files);
    tg_metrics_family(b, rc, "tollgate_usage_spool_bytes", "gauge",
                      "Bytes of the usage spool files waiting on disk.");
    tg_metrics_out(b, rc, "tollgate_usage_spool_bytes %llu\n",
                   (unsigned long long)bytes);
    tg_metrics_family(b, rc, "tollgate_usage_records_total", "counter",
                      "Usage records admin drained, by source.");
    tg_metrics_out(b, rc,
                   "tollgate_usage_records_total{source=\"ring\"} %llu\n"
                   "tollgate_usage_records_total{source=\"spool\"} %llu\n",
                   (unsigned long long)(st->records - st->spooled),
                   (unsigned long long)st->spooled);
    tg_metrics_family(b, rc, "tollgate_database_up", "gauge",
                      "1 when PostgreSQL is connected and the store is "
                      "ready.");
    tg_metrics_out(b, rc, "tollgate_database_up %d\n", state == TG_STORE_READY);
    tg_metrics_family(b, rc, "tollgate_database_state", "gauge",
                      "State of the store: 1 for the current one.");
    for (k = 0; k < TG_NELEMS(states); k++) {
        tg_metrics_out(b, rc, "tollgate_database_state{state=\"%s\"} %d\n",
                       states[k], state == (int)k);
    }
    tg_metrics_family(b, rc, "tollgate_usage_flushes_total", "counter",
                      "Flushes of usage batches to PostgreSQL, by result "
                      "(a failed batch stays in the journal and is "
                      "retried).");
    tg_metrics_out(b, rc,
                   "tollgate_usage_flushes_total{result=\"ok\"} %llu\n"
                   "tollgate_usage_flushes_total{result=\"failed\"} %llu\n",
                   (unsigned long long)st->batches,
                   (unsigned long long)st->flush_errors);
    tg_metrics_family(b, rc, "tollgate_usage_batches_pending", "gauge",
                      "Usage batches in admin's journal not yet stored in "
                      "PostgreSQL.");
    tg_metrics_out(b, rc, "tollgate_usage_batches_pending %llu\n",
                   (unsigned long long)pending);
    if (pending > 0) {
        /* Waiting since the last batch went in, or since start. */
        uint64_t since =
            st->flushed_ms ? st->flushed_ms : tg_shm_hdr(shm)->created_ms;

        lag = now > since ? now - since : 0;
    }
    tg_metrics_family(b, rc, "tollgate_usage_flush_lag_seconds", "gauge",
                      "While usage batches wait for PostgreSQL, seconds "
                      "since the last one was stored (0 when none "
                      "waits).");
    tg_metrics_out(b, rc, "tollgate_usage_flush_lag_seconds %.3f\n",
                   (double)lag / 1e3);
}


/* Endpoint events: the shared ring and their way into PostgreSQL. */
static void
tg_metrics_events(tg_shm_t *shm, tg_buf_t *b, int *rc)
{
    const tg_events_store_stats_t *st = tg_events_store_stats();
    tg_shm_ring_t *ring = tg_shm_events(shm);

    tg_metrics_family(b, rc, "tollgate_endpoint_events_total", "counter",
                      "Endpoint events, by what became of them: stored in "
                      "PostgreSQL, dropped by admin (buffer full while the "
                      "database was down, or refused), dropped at the "
                      "shared ring (full).");
    tg_metrics_out(
        b, rc,
        "tollgate_endpoint_events_total{result=\"stored\"} %llu\n"
        "tollgate_endpoint_events_total{result=\"dropped\"} %llu\n"
        "tollgate_endpoint_events_total{result=\"ring_full\"} "
        "%llu\n",
        (unsigned long long)st->stored, (unsigned long long)st->dropped,
        (unsigned long long)(ring != NULL ? atomic_load(&ring->full) : 0));
    tg_metrics_family(b, rc, "tollgate_endpoint_events_pending", "gauge",
                      "Endpoint events admin holds for PostgreSQL.");
    tg_metrics_out(b, rc, "tollgate_endpoint_events_pending %u\n", st->pending);
}


/* See metrics.h. */
int
tg_metrics_render(const tg_conf_t *conf, tg_shm_t *shm, tg_buf_t *out)
{
    tg_metrics_sum_t *s;
    int rc = TG_OK;

    if (tg_shm_metrics(shm) == NULL) {
        return TG_ERROR;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return TG_ERROR;
    }
    s->neps = (uint32_t)TG_MIN(conf->nendpoints, tg_shm_metrics(shm)->neps);
    s->eps = calloc((size_t)s->neps + 1, sizeof(tg_metrics_ep_sum_t));
    if (s->eps == NULL) {
        free(s);
        return TG_ERROR;
    }
    tg_metrics_sum(shm, s);
    tg_metrics_family(out, &rc, "tollgate_build_info", "gauge",
                      "Version of the running binary, as a label.");
    tg_metrics_out(out, &rc, "tollgate_build_info{version=\"%s\"} 1\n",
                   TG_VERSION);
    tg_metrics_requests(conf, s, out, &rc);
    tg_metrics_models(s, out, &rc);
    tg_metrics_endpoints(conf, shm, out, &rc);
    tg_metrics_procs(shm, out, &rc);
    tg_metrics_usage(conf, shm, out, &rc);
    tg_metrics_events(shm, out, &rc);
    free(s->eps);
    free(s);
    return rc;
}
