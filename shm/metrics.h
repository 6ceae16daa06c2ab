/*
 * shm/metrics.h
 *      Request counters and latency histograms that workers keep for
 *      /metrics: one row per process entry, summed by admin at scrape.
 *
 * NOTES
 *      Written by: each worker, into the row of its own proc entry only
 *      (tg_shm_metrics_observe, once per request, from the request's one
 *      end); master, the restart counters of the header; workers, the
 *      model name table (claim by CAS).  Read by: admin, which sums every
 *      row when /metrics is scraped.
 *
 *      Consistency: a row has exactly one writer at a time (the process
 *      holding that proc entry), so a bump is a relaxed load and a relaxed
 *      store, no locked instruction; readers load each word with relaxed
 *      order and accept that a scrape may see one request half counted (a
 *      request counted and its histogram not yet).  Rows are never zeroed:
 *      a worker that dies leaves its counts in place and the next process
 *      in that proc entry goes on from them, so every counter is monotonic
 *      for the life of the region, across worker restarts and reloads.  A
 *      writer that dies mid-bump leaves at most one observation partly
 *      counted.
 *
 *      Rows per proc entry keep the increments of one worker on cache
 *      lines no other process writes: a shared counter bumped by every
 *      worker on every request would bounce its line between cores.  Each
 *      row and each per-endpoint block starts on its own cache line.
 *
 *      Model names.  Tokens and cost are labelled by model, and a label
 *      must not take unbounded values, so the header holds a table of at
 *      most TG_SHM_METRICS_MODELS names, first come first served; a model
 *      not in it counts as "other".  Only a request the upstream answered
 *      2xx may claim a slot, and only with a name of [A-Za-z0-9._:/@-],
 *      so a client cannot fill the table with names it made up (the
 *      upstream refuses unknown models).  A slot goes EMPTY -> CLAIMED
 *      (CAS, by one writer) -> READY (release store after the name is
 *      written); readers match only READY slots.  A worker that dies
 *      between the two leaves a CLAIMED slot that is never used: one slot
 *      lost, never a torn name.
 *
 *      Layout of the table area: tg_shm_metrics_hdr_t, then <procs> rows
 *      of <stride> bytes: tg_shm_metrics_row_t followed by <neps> + 1
 *      tg_shm_metrics_ep_t (the last one counts requests that reached no
 *      endpoint).
 */
#ifndef TG_SHM_METRICS_H
#define TG_SHM_METRICS_H

#include "shm/layout.h"
#include "shm/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_METRICS_MAGIC   0x4d455452u /* "METR" */
#define TG_SHM_METRICS_MODELS  32u         /* named models; then "other" */
#define TG_SHM_METRICS_NAME    56u         /* bytes of a model name + NUL */
#define TG_SHM_METRICS_BUCKETS 16u         /* histogram buckets, +Inf last */
#define TG_SHM_METRICS_CLASSES 6u          /* status class: none, 1xx..5xx */
#define TG_SHM_METRICS_APIS    3u          /* anthropic, openai, responses */
#define TG_SHM_METRICS_REFUSE  16u         /* refusal reasons */

/* Upper bounds of the histogram buckets, in microseconds; the last bucket
 * is +Inf.  Fixed: they are part of the exposed series. */
#define TG_SHM_METRICS_BOUNDS_US                                               \
    {                                                                          \
        5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,   \
            5000000, 10000000, 30000000, 60000000, 120000000, 300000000        \
    }

/* Why a request was refused (tg_shm_metrics_row_t.refused). */
enum {
    TG_SHM_REFUSE_NONE = 0,         /* not refused */
    TG_SHM_REFUSE_AUTH = 1,         /* unknown, disabled or expired key */
    TG_SHM_REFUSE_FORBIDDEN = 2,    /* model not allowed, user disabled */
    TG_SHM_REFUSE_RPM = 3,          /* requests per minute */
    TG_SHM_REFUSE_TPM = 4,          /* tokens per minute */
    TG_SHM_REFUSE_CONCURRENCY = 5,  /* concurrent requests */
    TG_SHM_REFUSE_QUOTA_TOKENS = 6, /* token quota of the period */
    TG_SHM_REFUSE_QUOTA_COST = 7,   /* cost quota of the period */
    TG_SHM_REFUSE_OVERLOAD = 8,     /* the gateway itself is busy */
    TG_SHM_REFUSE_OTHER = 9         /* any other refusal */
};

/* Model slot states. */
enum {
    TG_SHM_MODEL_EMPTY = 0,   /* free */
    TG_SHM_MODEL_CLAIMED = 1, /* being written by its claimer */
    TG_SHM_MODEL_READY = 2    /* name valid */
};

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t state; /* TG_SHM_MODEL_* */
    uint32_t len;                   /* bytes of name, set before READY */
    char name[TG_SHM_METRICS_NAME]; /* NUL-padded */
} tg_shm_metrics_model_t;

_Static_assert(sizeof(tg_shm_metrics_model_t) == 64, "model slot is a line");

typedef struct {
    /* line 0: written once by tg_shm_metrics_init */
    alignas(TG_SHM_CACHELINE) uint32_t magic; /* TG_SHM_METRICS_MAGIC */
    uint32_t procs;                           /* rows */
    uint32_t neps;                            /* endpoint blocks per row - 1 */
    uint32_t stride;                          /* bytes per row */
    uint8_t reserved0[48];                    /* zero */
    /* line 1: master only */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t restarts_worker; /* respawns */
    _Atomic uint64_t restarts_admin;                            /* respawns */
    uint8_t reserved1[48];                                      /* zero */
    tg_shm_metrics_model_t models[TG_SHM_METRICS_MODELS]; /* label table */
} tg_shm_metrics_hdr_t;

_Static_assert(sizeof(tg_shm_metrics_hdr_t) == 128 + 64 * TG_SHM_METRICS_MODELS,
               "tg_shm_metrics_hdr_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_metrics_hdr_t, restarts_worker) == 64,
               "metrics header layout");

/* Counters of one process for one endpoint (or for none). */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t
        requests[TG_SHM_METRICS_APIS][TG_SHM_METRICS_CLASSES]; /* ended */
    _Atomic uint64_t retries;  /* attempts after the first */
    _Atomic uint64_t attempts; /* upstream attempts of ended requests */
    _Atomic uint64_t ttfb[TG_SHM_METRICS_BUCKETS]; /* first byte, by bucket */
    _Atomic uint64_t ttfb_sum_us;                  /* sum of the observed */
    _Atomic uint64_t duration[TG_SHM_METRICS_BUCKETS]; /* whole request */
    _Atomic uint64_t duration_sum_us;                  /* sum of the observed */
    uint64_t reserved[10]; /* zero; rounds to whole lines */
} tg_shm_metrics_ep_t;

_Static_assert(sizeof(tg_shm_metrics_ep_t) == 512,
               "tg_shm_metrics_ep_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_metrics_ep_t, ttfb) == 160, "metrics ep layout");

/* Counters of one process not tied to an endpoint. */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t used; /* 1 once written */
    _Atomic uint64_t refused[TG_SHM_METRICS_REFUSE]; /* TG_SHM_REFUSE_* */
    _Atomic uint64_t
        model_requests[TG_SHM_METRICS_MODELS + 1]; /* by model, other last */
    _Atomic uint64_t model_cost_pusd[TG_SHM_METRICS_MODELS + 1]; /* 1e-12 $ */
    _Atomic uint64_t model_tokens[TG_SHM_METRICS_MODELS + 1]
                                 [TG_USAGE_NTOKENS]; /* TG_USAGE_TOK_* */
    _Atomic uint64_t unpriced; /* with tokens but no price: cost 0 */
    uint64_t reserved[6];      /* zero; whole lines */
} tg_shm_metrics_row_t;

_Static_assert(sizeof(tg_shm_metrics_row_t) == 2304,
               "tg_shm_metrics_row_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_metrics_row_t, model_requests) == 136,
               "metrics row layout");

/* What a request adds beyond its usage record. */
typedef struct {
    uint32_t refusal;   /* TG_SHM_REFUSE_*, for a refused request */
    uint64_t cost_pusd; /* its cost in pico-USD, 0 when unpriced */
} tg_shm_metrics_extra_t;

/* Bytes of the table for <procs> rows of <neps> endpoints; 0 on
 * overflow. */
size_t tg_shm_metrics_size(uint32_t procs, uint32_t neps);

/* Bytes of one row for <neps> endpoints. */
uint32_t tg_shm_metrics_stride(uint32_t neps);

/* Write the header of a zeroed area <mem>; returns it. */
tg_shm_metrics_hdr_t *tg_shm_metrics_init(void *mem, uint32_t procs,
                                          uint32_t neps);

/* Row <idx> (< procs). */
tg_shm_metrics_row_t *tg_shm_metrics_row(tg_shm_metrics_hdr_t *m, uint32_t idx);

/* Endpoint block <ep> (<= neps; neps = none) of row <row>. */
tg_shm_metrics_ep_t *tg_shm_metrics_ep(tg_shm_metrics_hdr_t *m,
                                       tg_shm_metrics_row_t *row, uint32_t ep);

/*
 * Count the request of usage record <rec> (and <extra>) in row <idx>:
 * requests by endpoint, API and status class, attempts and retries,
 * histograms, tokens and cost by model, refusals.  The caller must be the
 * only process writing row <idx>.  Never blocks; a few dozen loads and
 * stores.
 */
void tg_shm_metrics_observe(tg_shm_metrics_hdr_t *m, uint32_t idx,
                            const tg_usage_rec_t *rec,
                            const tg_shm_metrics_extra_t *extra);

/* The model slot of <name> (<len> bytes), claiming a free one when
 * <claim>; TG_SHM_METRICS_MODELS ("other") when none. */
uint32_t tg_shm_metrics_model(tg_shm_metrics_hdr_t *m, const char *name,
                              size_t len, int claim);

/* A child of <role_admin> was respawned (master only). */
void tg_shm_metrics_restart(tg_shm_metrics_hdr_t *m, int role_admin);

/* Bucket index of <us> microseconds. */
uint32_t tg_shm_metrics_bucket(uint64_t us);

#endif /* TG_SHM_METRICS_H */
