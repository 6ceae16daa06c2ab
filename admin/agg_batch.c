/*
 * admin/agg_batch.c
 *      Sum usage records per hour x user x key x model x endpoint, and
 *      write a batch as the JSON argument of tg_api.usage_ingest.
 *
 * NOTES
 *      Admin only.  An open-addressing table of rows keyed by the
 *      dimensions; it grows by doubling.  Everything is integers: costs
 *      in pico-dollars (10^-12 USD), times in whole milliseconds, so the
 *      sums PostgreSQL receives are exact.
 */
#include "admin/agg_batch.h"
#include "core/core.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counters of one row, in the order of tg_api.usage_ingest's columns. */
enum {
    TG_AGG_V_REQUESTS = 0,
    TG_AGG_V_STREAM,
    TG_AGG_V_UPSTREAM_ERROR,
    TG_AGG_V_TIMEOUT,
    TG_AGG_V_CLIENT_GONE,
    TG_AGG_V_BROKEN,
    TG_AGG_V_REJECTED,
    TG_AGG_V_WORKER_CRASHED,
    TG_AGG_V_TOKENS, /* six of them */
    TG_AGG_V_COST = TG_AGG_V_TOKENS + TG_USAGE_NTOKENS,
    TG_AGG_V_UNPRICED,
    TG_AGG_V_UNKNOWN,
    TG_AGG_V_LATENCY_SUM,
    TG_AGG_V_LATENCY_MAX,
    TG_AGG_V_TTFB_SUM,
    TG_AGG_V_BYTES_IN,
    TG_AGG_V_BYTES_OUT,
    TG_AGG_NV
};

typedef struct {
    uint64_t hour; /* Unix seconds of the UTC hour; 0 = empty slot */
    uint32_t user;
    uint32_t key;
    uint16_t ep;
    char model[64];
    uint64_t v[TG_AGG_NV];
} tg_agg_row_t;

struct tg_agg_batch_s {
    const tg_conf_t *conf;
    bool detail;
    tg_agg_row_t *rows;
    uint32_t cap, used;
    uint64_t records;
    tg_buf_t det; /* detail rows, JSON arrays separated by commas */
};

/* The error column of each outcome (TG_USAGE_*); 0 for ok. */
static const int tg_agg_outcome_col[] = {
    [TG_USAGE_OK] = 0,
    [TG_USAGE_UPSTREAM_ERROR] = TG_AGG_V_UPSTREAM_ERROR,
    [TG_USAGE_CLIENT_GONE] = TG_AGG_V_CLIENT_GONE,
    [TG_USAGE_TIMEOUT] = TG_AGG_V_TIMEOUT,
    [TG_USAGE_REJECTED] = TG_AGG_V_REJECTED,
    [TG_USAGE_BROKEN] = TG_AGG_V_BROKEN,
    [TG_USAGE_WORKER_CRASHED] = TG_AGG_V_WORKER_CRASHED};

static const char *const tg_agg_outcome_names[] = {
    "ok",       "upstream_error", "client_gone",   "timeout",
    "rejected", "broken_stream",  "worker_crashed"};


/* See agg_batch.h. */
tg_agg_batch_t *
tg_agg_batch_create(const tg_conf_t *conf, bool detail)
{
    tg_agg_batch_t *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        return NULL;
    }
    b->conf = conf;
    b->detail = detail;
    b->cap = 1024;
    b->rows = calloc(b->cap, sizeof(*b->rows));
    if (b->rows == NULL) {
        free(b);
        return NULL;
    }
    tg_buf_init(&b->det, 256u << 20);
    return b;
}


/* See agg_batch.h. */
void
tg_agg_batch_destroy(tg_agg_batch_t *b)
{
    if (b == NULL) {
        return;
    }
    tg_buf_fini(&b->det);
    free(b->rows);
    free(b);
}


/* See agg_batch.h. */
void
tg_agg_batch_reset(tg_agg_batch_t *b)
{
    memset(b->rows, 0, (size_t)b->cap * sizeof(*b->rows));
    b->used = 0;
    b->records = 0;
    tg_buf_reset(&b->det, 1u << 20);
}


/* See agg_batch.h. */
uint64_t
tg_agg_batch_records(const tg_agg_batch_t *b)
{
    return b->records;
}


/* See agg_batch.h. */
uint32_t
tg_agg_batch_rows(const tg_agg_batch_t *b)
{
    return b->used;
}


/* See agg_batch.h. */
void
tg_agg_batch_model(const tg_usage_rec_t *r, char out[64])
{
    size_t n = strnlen(r->model, sizeof(r->model)), i;

    if (n > 63) {
        n = 63;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)r->model[i];

        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
}


/* See agg_batch.h. */
uint64_t
tg_agg_batch_cost(const tg_usage_rec_t *r, bool *unpriced)
{
    *unpriced = (r->flags & TG_USAGE_F_UNPRICED) != 0;
    return r->cost_pusd;
}


static uint32_t
tg_agg_hash(const tg_agg_row_t *k)
{
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)k->model;

    h = (h ^ k->hour) * 1099511628211ull;
    h = (h ^ k->user) * 1099511628211ull;
    h = (h ^ k->key) * 1099511628211ull;
    h = (h ^ k->ep) * 1099511628211ull;
    while (*p != '\0') {
        h = (h ^ *p++) * 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}


static bool
tg_agg_same(const tg_agg_row_t *a, const tg_agg_row_t *b)
{
    return a->hour == b->hour && a->user == b->user && a->key == b->key &&
           a->ep == b->ep && strcmp(a->model, b->model) == 0;
}


/* The row of <k>'s dimensions, inserted when absent; NULL when out of
 * memory. */
static tg_agg_row_t *
tg_agg_find(tg_agg_batch_t *b, const tg_agg_row_t *k)
{
    uint32_t i, mask;

    if ((b->used + 1) * 2 > b->cap) {
        tg_agg_row_t *old = b->rows;
        uint32_t oldcap = b->cap, j;

        b->rows = calloc((size_t)oldcap * 2, sizeof(*b->rows));
        if (b->rows == NULL) {
            b->rows = old;
            return NULL;
        }
        b->cap = oldcap * 2;
        b->used = 0;
        for (j = 0; j < oldcap; j++) {
            if (old[j].hour != 0) {
                *tg_agg_find(b, &old[j]) = old[j];
            }
        }
        free(old);
    }
    mask = b->cap - 1;
    for (i = tg_agg_hash(k) & mask;; i = (i + 1) & mask) {
        if (b->rows[i].hour == 0) {
            b->rows[i] = *k;
            b->used++;
            return &b->rows[i];
        }
        if (tg_agg_same(&b->rows[i], k)) {
            return &b->rows[i];
        }
    }
}


/* Append the JSON string of <s> to <out>. */
static int
tg_agg_json_str(tg_buf_t *out, const char *s, size_t len)
{
    char esc[6 * 256 + 3];
    size_t n;

    esc[0] = '"';
    n = tg_json_escape(esc + 1, sizeof(esc) - 2, s, len);
    esc[n + 1] = '"';
    return tg_buf_append(out, esc, n + 2);
}


static const char *
tg_agg_ep_name(const tg_agg_batch_t *b, uint16_t ep)
{
    return ep < b->conf->nendpoints ? b->conf->endpoints[ep].name : "";
}


/* One detail row of <r> (see tg_api.usage_ingest). */
static int
tg_agg_detail(tg_agg_batch_t *b, const tg_usage_rec_t *r, const char *model,
              uint64_t cost, bool unpriced)
{
    const char *ep = tg_agg_ep_name(b, r->endpoint);
    char line[768];
    int n;

    if (tg_buf_len(&b->det) > 0 && tg_buf_append(&b->det, ",", 1) != TG_OK) {
        return TG_ERROR;
    }
    n = snprintf(line, sizeof(line), "[%llu,\"%016llx\",%u,%u,",
                 (unsigned long long)r->time_ms,
                 (unsigned long long)r->request_id, r->user, r->key_id);
    if (tg_buf_append(&b->det, line, (size_t)n) != TG_OK ||
        tg_agg_json_str(&b->det, model, strlen(model)) != TG_OK ||
        tg_buf_append(&b->det, ",", 1) != TG_OK ||
        tg_agg_json_str(&b->det, ep, strlen(ep)) != TG_OK) {
        return TG_ERROR;
    }
    n = snprintf(
        line, sizeof(line),
        ",\"%s\",%s,%u,\"%s\",%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%s,%s,"
        "%llu,%llu,%llu,%llu]",
        tg_usage_api_name(tg_usage_api(r->flags)),
        (r->flags & TG_USAGE_F_STREAM) ? "true" : "false", r->status,
        r->outcome < TG_NELEMS(tg_agg_outcome_names)
            ? tg_agg_outcome_names[r->outcome]
            : "unknown",
        r->attempts, (unsigned long long)r->tokens[0],
        (unsigned long long)r->tokens[1], (unsigned long long)r->tokens[2],
        (unsigned long long)r->tokens[3], (unsigned long long)r->tokens[4],
        (unsigned long long)r->tokens[5], (unsigned long long)cost,
        unpriced ? "true" : "false",
        (r->flags & TG_USAGE_F_UNKNOWN) ? "false" : "true",
        (unsigned long long)(r->latency_us / 1000),
        (unsigned long long)(r->ttfb_us / 1000),
        (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
    return tg_buf_append(&b->det, line, (size_t)n);
}


/* See agg_batch.h. */
int
tg_agg_batch_add(tg_agg_batch_t *b, const tg_usage_rec_t *r)
{
    tg_agg_row_t k, *row;
    uint64_t cost, lat = r->latency_us / 1000;
    bool unpriced;
    int i;

    memset(&k, 0, sizeof(k));
    /* Hour 0 marks an empty slot; a record from 1970 goes to hour 1 s. */
    k.hour = TG_MAX(r->time_ms / 3600000 * 3600, 1);
    k.user = r->user;
    k.key = r->key_id;
    k.ep = r->endpoint < b->conf->nendpoints ? r->endpoint : UINT16_MAX;
    tg_agg_batch_model(r, k.model);
    row = tg_agg_find(b, &k);
    if (row == NULL) {
        return TG_ERROR;
    }
    cost = tg_agg_batch_cost(r, &unpriced);
    row->v[TG_AGG_V_REQUESTS]++;
    row->v[TG_AGG_V_STREAM] += (r->flags & TG_USAGE_F_STREAM) != 0;
    if (r->outcome < TG_NELEMS(tg_agg_outcome_col) &&
        tg_agg_outcome_col[r->outcome] != 0) {
        row->v[tg_agg_outcome_col[r->outcome]]++;
    }
    for (i = 0; i < TG_USAGE_NTOKENS; i++) {
        row->v[TG_AGG_V_TOKENS + i] += r->tokens[i];
    }
    row->v[TG_AGG_V_COST] += cost;
    row->v[TG_AGG_V_UNPRICED] += unpriced;
    row->v[TG_AGG_V_UNKNOWN] += (r->flags & TG_USAGE_F_UNKNOWN) != 0;
    row->v[TG_AGG_V_LATENCY_SUM] += lat;
    row->v[TG_AGG_V_LATENCY_MAX] = TG_MAX(row->v[TG_AGG_V_LATENCY_MAX], lat);
    row->v[TG_AGG_V_TTFB_SUM] += r->ttfb_us / 1000;
    row->v[TG_AGG_V_BYTES_IN] += r->bytes_in;
    row->v[TG_AGG_V_BYTES_OUT] += r->bytes_out;
    b->records++;
    if (b->detail) {
        return tg_agg_detail(b, r, k.model, cost, unpriced);
    }
    return TG_OK;
}


/* Append row <w> as a JSON array. */
static int
tg_agg_row_json(const tg_agg_batch_t *b, const tg_agg_row_t *w, tg_buf_t *out)
{
    const char *ep = w->ep == UINT16_MAX ? "" : tg_agg_ep_name(b, w->ep);
    char num[32];
    int i, n;

    n = snprintf(num, sizeof(num), "[%llu,%u,%u,", (unsigned long long)w->hour,
                 w->user, w->key);
    if (tg_buf_append(out, num, (size_t)n) != TG_OK ||
        tg_agg_json_str(out, w->model, strlen(w->model)) != TG_OK ||
        tg_buf_append(out, ",", 1) != TG_OK ||
        tg_agg_json_str(out, ep, strlen(ep)) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < TG_AGG_NV; i++) {
        n = snprintf(num, sizeof(num), ",%llu", (unsigned long long)w->v[i]);
        if (tg_buf_append(out, num, (size_t)n) != TG_OK) {
            return TG_ERROR;
        }
    }
    return tg_buf_append(out, "]", 1);
}


/* See agg_batch.h. */
int
tg_agg_batch_json(const tg_agg_batch_t *b, const char *batch_id,
                  const char *host, tg_buf_t *out)
{
    char head[160];
    uint32_t i;
    bool first = true;
    int n;

    tg_buf_reset(out, 4u << 20);
    n = snprintf(head, sizeof(head), "{\"batch_id\":\"%s\",\"records\":%llu,",
                 batch_id, (unsigned long long)b->records);
    if (tg_buf_append(out, head, (size_t)n) != TG_OK ||
        tg_buf_append(out, "\"host\":", 7) != TG_OK ||
        tg_agg_json_str(out, host, strlen(host)) != TG_OK ||
        tg_buf_append(out, ",\"rows\":[", 9) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < b->cap; i++) {
        if (b->rows[i].hour == 0) {
            continue;
        }
        if ((!first && tg_buf_append(out, ",", 1) != TG_OK) ||
            tg_agg_row_json(b, &b->rows[i], out) != TG_OK) {
            return TG_ERROR;
        }
        first = false;
    }
    if (tg_buf_append(out, "],\"detail\":[", 12) != TG_OK ||
        (tg_buf_len(&b->det) > 0 &&
         tg_buf_append(out, b->det.data + b->det.pos, tg_buf_len(&b->det)) !=
             TG_OK) ||
        tg_buf_append(out, "]}", 3) != TG_OK) {
        return TG_ERROR;
    }
    /* The trailing NUL was appended with "]}": drop it from the length. */
    out->last--;
    return TG_OK;
}
