/*
 * shm/metrics.c
 *      Per-process request counters and histograms for /metrics.
 *
 * NOTES
 *      See shm/metrics.h for who writes what.  Workers call
 *      tg_shm_metrics_observe once per request, from the request's one
 *      end, on the row of their own proc entry; nothing here blocks or
 *      takes a lock.
 */
#include "shm/metrics.h"

#include <stdbool.h>
#include <string.h>

static const uint64_t tg_shm_metrics_bounds[TG_SHM_METRICS_BUCKETS - 1] =
    TG_SHM_METRICS_BOUNDS_US;


/* Row header and endpoint blocks, whole cache lines. */
uint32_t
tg_shm_metrics_stride(uint32_t neps)
{
    return (uint32_t)(sizeof(tg_shm_metrics_row_t) +
                      ((size_t)neps + 1) * sizeof(tg_shm_metrics_ep_t));
}


/* See metrics.h. */
size_t
tg_shm_metrics_size(uint32_t procs, uint32_t neps)
{
    size_t rows;

    if (neps > 65535 ||
        __builtin_mul_overflow((size_t)procs,
                               (size_t)tg_shm_metrics_stride(neps), &rows) ||
        __builtin_add_overflow(rows, sizeof(tg_shm_metrics_hdr_t), &rows)) {
        return 0;
    }
    return rows;
}


/* See metrics.h. */
tg_shm_metrics_hdr_t *
tg_shm_metrics_init(void *mem, uint32_t procs, uint32_t neps)
{
    tg_shm_metrics_hdr_t *m = mem;

    m->magic = TG_SHM_METRICS_MAGIC;
    m->procs = procs;
    m->neps = neps;
    m->stride = tg_shm_metrics_stride(neps);
    return m;
}


/* See metrics.h. */
tg_shm_metrics_row_t *
tg_shm_metrics_row(tg_shm_metrics_hdr_t *m, uint32_t idx)
{
    return (tg_shm_metrics_row_t *)((char *)m + sizeof(*m) +
                                    (size_t)idx * m->stride);
}


/* See metrics.h. */
tg_shm_metrics_ep_t *
tg_shm_metrics_ep(tg_shm_metrics_hdr_t *m, tg_shm_metrics_row_t *row,
                  uint32_t ep)
{
    (void)m;
    return (tg_shm_metrics_ep_t *)((char *)row + sizeof(*row) +
                                   (size_t)ep * sizeof(tg_shm_metrics_ep_t));
}


/* See metrics.h. */
uint32_t
tg_shm_metrics_bucket(uint64_t us)
{
    uint32_t i;

    for (i = 0; i < TG_SHM_METRICS_BUCKETS - 1; i++) {
        if (us <= tg_shm_metrics_bounds[i]) {
            return i;
        }
    }
    return TG_SHM_METRICS_BUCKETS - 1;
}


/* Add <n> to a counter that only this process writes: no locked
 * instruction is needed, only a store readers cannot see torn. */
static inline void
tg_shm_metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}


static bool
tg_shm_metrics_name_ok(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len >= TG_SHM_METRICS_NAME) {
        return false;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
              ch == '/' || ch == '@' || ch == '-')) {
            return false;
        }
    }
    return true;
}


/* See metrics.h. */
uint32_t
tg_shm_metrics_model(tg_shm_metrics_hdr_t *m, const char *name, size_t len,
                     int claim)
{
    uint32_t i, expect;

    if (!tg_shm_metrics_name_ok(name, len)) {
        return TG_SHM_METRICS_MODELS;
    }
    for (i = 0; i < TG_SHM_METRICS_MODELS; i++) {
        tg_shm_metrics_model_t *s = &m->models[i];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st == TG_SHM_MODEL_READY) {
            if (s->len == len && memcmp(s->name, name, len) == 0) {
                return i;
            }
            continue;
        }
        if (st == TG_SHM_MODEL_CLAIMED) {
            continue;
        }
        /* The first empty slot: the names are claimed in order, so no
         * READY slot lies beyond it. */
        if (!claim) {
            return TG_SHM_METRICS_MODELS;
        }
        expect = TG_SHM_MODEL_EMPTY;
        if (!atomic_compare_exchange_strong(&s->state, &expect,
                                            TG_SHM_MODEL_CLAIMED)) {
            /* Another worker took it; it may be claiming this very name,
             * but it is not readable yet: count as other this once. */
            if (expect == TG_SHM_MODEL_READY && s->len == len &&
                memcmp(s->name, name, len) == 0) {
                return i;
            }
            continue;
        }
        memset(s->name, 0, sizeof(s->name));
        memcpy(s->name, name, len);
        s->len = (uint32_t)len;
        atomic_store_explicit(&s->state, TG_SHM_MODEL_READY,
                              memory_order_release);
        return i;
    }
    return TG_SHM_METRICS_MODELS;
}


/* Tokens, cost and requests by model. */
static void
tg_shm_metrics_models(tg_shm_metrics_hdr_t *m, tg_shm_metrics_row_t *row,
                      const tg_usage_rec_t *rec, uint64_t cost_pusd)
{
    size_t len = strnlen(rec->model, sizeof(rec->model));
    bool answered =
        rec->status >= 200 && rec->status < 300 && rec->outcome == TG_USAGE_OK;
    uint32_t mi, i;

    if (len == 0 || rec->attempts == 0) {
        /* Never sent upstream: no tokens, no model worth a label. */
        return;
    }
    mi = tg_shm_metrics_model(m, rec->model, len, answered);
    tg_shm_metrics_add(&row->model_requests[mi], 1);
    for (i = 0; i < TG_USAGE_NTOKENS; i++) {
        if (rec->tokens[i] != 0) {
            tg_shm_metrics_add(&row->model_tokens[mi][i], rec->tokens[i]);
        }
    }
    if (cost_pusd != 0) {
        tg_shm_metrics_add(&row->model_cost_pusd[mi], cost_pusd);
    }
    if (rec->flags & TG_USAGE_F_UNPRICED) {
        tg_shm_metrics_add(&row->unpriced, 1);
    }
}


/* See metrics.h. */
void
tg_shm_metrics_observe(tg_shm_metrics_hdr_t *m, uint32_t idx,
                       const tg_usage_rec_t *rec,
                       const tg_shm_metrics_extra_t *extra)
{
    tg_shm_metrics_row_t *row;
    tg_shm_metrics_ep_t *ep;
    uint32_t epi, cls, api;

    if (m == NULL || m->magic != TG_SHM_METRICS_MAGIC || idx >= m->procs) {
        return;
    }
    row = tg_shm_metrics_row(m, idx);
    if (atomic_load_explicit(&row->used, memory_order_relaxed) == 0) {
        atomic_store_explicit(&row->used, 1, memory_order_relaxed);
    }
    epi = rec->endpoint < m->neps ? rec->endpoint : m->neps;
    ep = tg_shm_metrics_ep(m, row, epi);
    cls = rec->status >= 100 && rec->status < 600 ? rec->status / 100u : 0;
    api = tg_usage_api(rec->flags);
    tg_shm_metrics_add(&ep->requests[api][cls], 1);
    if (rec->attempts > 0) {
        tg_shm_metrics_add(&ep->attempts, rec->attempts);
        tg_shm_metrics_add(&ep->retries, rec->attempts - 1u);
    }
    if (rec->ttfb_us != 0) {
        tg_shm_metrics_add(&ep->ttfb[tg_shm_metrics_bucket(rec->ttfb_us)], 1);
        tg_shm_metrics_add(&ep->ttfb_sum_us, rec->ttfb_us);
    }
    tg_shm_metrics_add(&ep->duration[tg_shm_metrics_bucket(rec->latency_us)],
                       1);
    tg_shm_metrics_add(&ep->duration_sum_us, rec->latency_us);
    if (rec->outcome == TG_USAGE_REJECTED) {
        uint32_t why = extra != NULL ? extra->refusal : TG_SHM_REFUSE_NONE;

        if (why == TG_SHM_REFUSE_NONE || why >= TG_SHM_METRICS_REFUSE) {
            why = rec->status == 401   ? TG_SHM_REFUSE_AUTH
                  : rec->status == 403 ? TG_SHM_REFUSE_FORBIDDEN
                  : rec->status == 503 ? TG_SHM_REFUSE_OVERLOAD
                                       : TG_SHM_REFUSE_OTHER;
        }
        tg_shm_metrics_add(&row->refused[why], 1);
    }
    tg_shm_metrics_models(m, row, rec, extra != NULL ? extra->cost_pusd : 0);
}


/* See metrics.h. */
void
tg_shm_metrics_restart(tg_shm_metrics_hdr_t *m, int role_admin)
{
    if (m == NULL || m->magic != TG_SHM_METRICS_MAGIC) {
        return;
    }
    atomic_fetch_add_explicit(role_admin ? &m->restarts_admin
                                         : &m->restarts_worker,
                              1, memory_order_relaxed);
}
