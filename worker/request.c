/*
 * worker/request.c
 *      The request object and its one end: outcome, error answer, lease
 *      release and charges, usage record, access-log line, reset.
 *
 * NOTES
 *      Worker only.  See request.h.  The per-request part of the struct
 *      starts at <phase>; tg_request_reset clears it in one go and sets
 *      the few fields whose empty value is not zero, so no field of a
 *      previous request survives into the next (the parsed head and the
 *      usage state, at the end, are rewritten before they are read).
 *
 *      A request that ends because the client left is finalized at once
 *      (there is nobody to drain to).  Every other end queues the rest of
 *      the response and finalizes when it has been written, so the usage
 *      record's latency runs to the last byte handed to the kernel.  The
 *      one refinement of the outcome after the end: a complete response
 *      whose client leaves before it has all been written is client_gone,
 *      not ok (the client never had it).
 */
#include "worker/request.h"
#include "core/core.h"
#include "core/log.h"
#include "shm/spool.h"
#include "worker/limit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TG_REQUEST_KEEP_IN 16384 /* input block kept between requests */


/* See request.h. */
int
tg_request_init(tg_worker_t *w)
{
    uint32_t i, n = tg_shm_hdr(w->shm)->leases_per_proc;

    w->inflight = tg_shm_inflight(w->shm, w->shm_idx);
    w->ninflight = n;
    w->inflight_free = malloc(sizeof(uint32_t) * (n ? n : 1));
    if (w->inflight_free == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(in-flight stack) failed");
        return TG_ERROR;
    }
    /* Master reaped whatever a previous worker in this proc entry left
     * open before forking us, so every entry is free. */
    for (i = 0; i < n; i++) {
        w->inflight_free[i] = n - 1 - i;
    }
    w->ninflight_free = n;
    return TG_OK;
}


/* Free the in-flight stack. */
void
tg_request_fini(tg_worker_t *w)
{
    free(w->inflight_free);
    w->inflight_free = NULL;
}


/* The TG_USAGE_F_* flags of <r> (tokens known or not aside). */
static uint8_t
tg_request_flags(const tg_request_t *r)
{
    return (
        uint8_t)((r->stream_req ? TG_USAGE_F_STREAM : 0) |
                 (r->attempts > 1 ? TG_USAGE_F_RETRIED : 0) |
                 (r->api == TG_API_OPENAI ? TG_USAGE_F_OPENAI : 0) |
                 (r->route == TG_ROUTE_RESPONSES ? TG_USAGE_F_RESPONSES : 0));
}


/* See request.h. */
void
tg_request_track(tg_request_t *r)
{
    tg_worker_t *w = r->w;
    tg_shm_inflight_t e;
    uint32_t i;

    if (w->ninflight_free == 0 || r->inflight >= 0) {
        return;
    }
    i = w->inflight_free[--w->ninflight_free];
    memset(&e, 0, sizeof(e));
    atomic_init(&e.request_id, r->id ? r->id : 1);
    e.start_ms = tg_time_wall_ms() - (tg_time_mono_us() - r->start_us) / 1000;
    e.start_us = r->start_us;
    e.user =
        r->have_key && r->key.user != TG_SHM_USER_NONE ? r->key.user + 1 : 0;
    e.key_id = r->have_key ? r->key.key_id : 0;
    e.endpoint = UINT16_MAX;
    e.flags = tg_request_flags(r);
    e.bytes_in = r->req_end;
    memcpy(e.model, r->model, TG_MIN(strlen(r->model), sizeof(e.model) - 1));
    tg_shm_inflight_open(&w->inflight[i], &e);
    r->inflight = (int)i;
}


/* See request.h. */
void
tg_request_progress(tg_request_t *r)
{
    tg_shm_inflight_t *e;
    int i;

    if (r->inflight < 0) {
        return;
    }
    e = &r->w->inflight[r->inflight];
    e->endpoint = r->endpoint >= 0 ? (uint16_t)r->endpoint : UINT16_MAX;
    e->status = (uint16_t)r->resp.status;
    e->attempts = (uint8_t)TG_MIN(r->attempts, 255);
    e->flags = tg_request_flags(r);
    e->bytes_out = r->resp.body_bytes;
    if (r->usage_on) {
        for (i = 0; i < TG_TOK_N; i++) {
            e->tokens[i] = (uint32_t)TG_MIN(r->usage.tokens[i], UINT32_MAX);
        }
        e->state =
            r->usage.final && !r->usage.unknown ? TG_SHM_INFLIGHT_KNOWN : 0;
    }
}


/* The record is out: free <r>'s in-flight entry. */
static void
tg_request_untrack(tg_request_t *r)
{
    tg_worker_t *w = r->w;

    if (r->inflight < 0) {
        return;
    }
    tg_shm_inflight_close(&w->inflight[r->inflight]);
    w->inflight_free[w->ninflight_free++] = (uint32_t)r->inflight;
    r->inflight = -1;
}


/* Clear the per-request part of <r>.  The parsed head and the usage
 * state (several KB) are not cleared: the parser fills the head before
 * anything reads it, except the log fields cleared here, and usage is
 * only read once tg_usage_init ran (usage_on). */
static void
tg_request_reset(tg_request_t *r)
{
    memset((char *)r + offsetof(tg_request_t, phase), 0,
           offsetof(tg_request_t, head) - offsetof(tg_request_t, phase));
    r->head.method_name = tg_str_null;
    r->head.path = tg_str_null;
    r->head.nheaders = 0;
    r->phase = TG_REQ_IDLE;
    r->api = TG_API_ANTHROPIC;
    r->lease = -1;
    r->endpoint = -1;
    r->inflight = -1;
}


/* See request.h. */
tg_request_t *
tg_request_create(tg_conn_t *c)
{
    tg_request_t *r = malloc(sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->c = c;
    r->w = c->w;
    tg_request_reset(r);
    return r;
}


/* See request.h. */
void
tg_request_begin(tg_request_t *r)
{
    tg_worker_t *w = r->w;

    r->phase = TG_REQ_HEAD;
    r->start_us = tg_time_mono_us();
    r->id = ((uint64_t)(uint32_t)w->slot << 56) |
            ((tg_time_wall_ms() & 0xffffffffull) << 24) |
            (w->req_seq++ & 0xffffff);
}


/* See request.h. */
int
tg_request_outcome(int cause, bool committed, bool error_event)
{
    switch (cause) {
    case TG_END_OK:
        /* An error event inside a stream that then ended cleanly is
         * still an upstream failure. */
        return error_event ? TG_USAGE_UPSTREAM_ERROR : TG_USAGE_OK;
    case TG_END_CLIENT_GONE:
        return TG_USAGE_CLIENT_GONE;
    case TG_END_TIMEOUT:
        return committed ? TG_USAGE_BROKEN : TG_USAGE_TIMEOUT;
    case TG_END_UPSTREAM:
        return committed ? TG_USAGE_BROKEN : TG_USAGE_UPSTREAM_ERROR;
    default:
        return committed ? TG_USAGE_BROKEN : TG_USAGE_REJECTED;
    }
}


/* See request.h. */
int
tg_request_respond(tg_request_t *r, int status, const char *content_type,
                   const char *body, size_t len, const char *extra)
{
    tg_conn_t *c = r->c;
    tg_respond_head_t h;

    memset(&h, 0, sizeof(h));
    h.status = status;
    h.version = 11;
    h.content_length = (int64_t)len;
    h.content_type = content_type;
    h.extra = extra;
    h.req_id = r->id;
    h.close = r->close_after || !r->keep_alive || r->w->stopping;
    if (tg_respond_head(&r->resp, &c->out, &h) != TG_OK ||
        tg_respond_body(&r->resp, &c->out, body, len) != TG_OK ||
        tg_respond_end(&r->resp, &c->out) != TG_OK) {
        /* Local bodies are far below the bound: this is out of memory. */
        r->close_after = true;
        return TG_ERROR;
    }
    r->close_after = r->close_after || r->resp.close;
    return TG_OK;
}


/* Write the error answer <err> in <r>'s API shape. */
static void
tg_request_error(tg_request_t *r, const tg_request_error_t *err)
{
    char body[1024], hdrs[256];
    size_t n;

    n = tg_respond_error_body(body, sizeof(body), r->api, err->type, err->code,
                              err->msg);
    /* Clients retry 5xx and 429 on their own; telling them not to retry
     * what cannot succeed (a bad key) stops minutes of futile retries. */
    snprintf(hdrs, sizeof(hdrs), "x-should-retry: %s\r\n%s",
             (err->status == 408 || err->status == 429 || err->status >= 500)
                 ? "true"
                 : "false",
             err->extra ? err->extra : "");
    /* Unread request bytes would be taken for the next request. */
    if (r->phase <= TG_REQ_HEAD || (r->phase == TG_REQ_BODY && !r->body_done)) {
        r->close_after = true;
    }
    (void)tg_request_respond(r, err->status, "application/json", body, n, hdrs);
}


/* See request.h. */
int
tg_request_emit(void *ctx, const char *p, size_t len)
{
    tg_request_t *r = ctx;

    return tg_respond_body(&r->resp, &r->c->out, p, len);
}


/* The model <r> is billed for: the one the upstream reports, else the
 * one the client asked for. */
static const char *
tg_request_billed_model(const tg_request_t *r)
{
    return r->usage_on && r->usage.model[0] != '\0' ? r->usage.model : r->model;
}


/* Price <r>'s tokens (shm/prices.h) at its endpoint's price factor into
 * r->cost_pusd, or mark it unpriced. */
static void
tg_request_price(tg_request_t *r)
{
    const tg_conf_t *conf = r->w->conf;
    const char *model = tg_request_billed_model(r);
    uint64_t pusd[TG_PRICE_N], tok[TG_PRICE_N];
    uint32_t factor = 1000;

    r->cost_pusd = 0;
    r->unpriced = false;
    if (!r->usage_on || tg_usage_total(&r->usage) == 0) {
        return;
    }
    if (tg_shm_prices_lookup(tg_shm_prices(r->w->shm), model, strlen(model),
                             pusd) != TG_SHM_OK) {
        r->unpriced = true;
        return;
    }
    if (r->endpoint >= 0 && (size_t)r->endpoint < conf->nendpoints) {
        factor = conf->endpoints[r->endpoint].price_milli;
    }
    /* Reasoning is a part of output in both APIs: never priced apart. */
    tok[TG_PRICE_INPUT] = r->usage.tokens[TG_TOK_INPUT];
    tok[TG_PRICE_OUTPUT] = r->usage.tokens[TG_TOK_OUTPUT];
    tok[TG_PRICE_CACHE_READ] = r->usage.tokens[TG_TOK_CACHE_READ];
    tok[TG_PRICE_CACHE_5M] = r->usage.tokens[TG_TOK_CACHE_5M];
    tok[TG_PRICE_CACHE_1H] = r->usage.tokens[TG_TOK_CACHE_1H];
    if (tg_shm_prices_cost(tok, pusd, factor, &r->cost_pusd) != TG_SHM_OK) {
        tg_log(TG_LOG_WARN, 0,
               "request %016llx: cost overflows 64 bits; charged as the "
               "largest cost",
               (unsigned long long)r->id);
    }
}


/* See request.h. */
int
tg_request_end(tg_request_t *r, int cause, const tg_request_error_t *err)
{
    tg_request_cleanup_pt cleanup = r->cleanup;
    tg_worker_t *w = r->w;

    if (r->phase == TG_REQ_ENDED || r->phase == TG_REQ_IDLE) {
        return TG_OK;
    }
    if (r->draining) {
        /* However the drain ended, the client had left. */
        cause = TG_END_CLIENT_GONE;
        err = NULL;
    }
    if (cleanup != NULL) {
        r->cleanup = NULL;
        cleanup(r, r->cleanup_data, cause == TG_END_CLIENT_GONE);
    }
    r->outcome = tg_request_outcome(cause, r->resp.committed,
                                    r->usage_on && r->usage.error_event);
    if (!r->resp.committed && err != NULL) {
        tg_request_error(r, err);
    } else if (r->resp.committed && cause == TG_END_OK) {
        if ((r->usage_asked && r->usage_on &&
             tg_usage_strip_flush(&r->usage, tg_request_emit, r) != TG_OK) ||
            tg_respond_end(&r->resp, &r->c->out) != TG_OK) {
            r->broken = true;
        }
    } else if (r->resp.committed) {
        /* The head went out: the client must see a cut stream, never a
         * clean end. */
        r->broken = true;
    }
    r->status = r->resp.status;
    r->phase = TG_REQ_ENDED;
    /* The upstream work is over: give the concurrency slot back now, not
     * after the last bytes reach the client, which may already be sending
     * its next request by the time we would. */
    tg_request_price(r);
    tg_limit_end(w, r->have_key ? &r->key : NULL, r->key_slot, &r->lease,
                 r->usage_on ? r->usage.tokens : NULL, r->cost_pusd);
    if (cause == TG_END_CLIENT_GONE) {
        r->close_after = true;
        return tg_request_finalize(r);
    }
    tg_ev_timer_del(w->loop, &r->c->timer);
    tg_conn_want_flush(r->c);
    return TG_OK;
}


/* Fill the usage record of <r>. */
static void
tg_request_record(const tg_request_t *r, tg_usage_rec_t *rec)
{
    bool known = !r->usage_on || tg_usage_known(&r->usage, r->status);
    int i;

    memset(rec, 0, sizeof(*rec));
    rec->request_id = r->id;
    rec->time_ms = tg_time_wall_ms();
    rec->user =
        r->have_key && r->key.user != TG_SHM_USER_NONE ? r->key.user + 1 : 0;
    rec->key_id = r->have_key ? r->key.key_id : 0;
    rec->endpoint = r->endpoint >= 0 ? (uint16_t)r->endpoint : UINT16_MAX;
    rec->status = (uint16_t)r->status;
    rec->outcome = (uint8_t)r->outcome;
    rec->flags =
        (uint8_t)(tg_request_flags(r) | (known ? 0 : TG_USAGE_F_UNKNOWN) |
                  (r->unpriced ? TG_USAGE_F_UNPRICED : 0));
    rec->cost_pusd = r->cost_pusd;
    rec->attempts = (uint8_t)TG_MIN(r->attempts, 255);
    rec->pid = r->w->pid;
    if (r->usage_on) {
        for (i = 0; i < TG_TOK_N; i++) {
            rec->tokens[i] = r->usage.tokens[i];
        }
    }
    rec->latency_us = tg_time_mono_us() - r->start_us;
    rec->ttfb_us = r->first_byte_us ? r->first_byte_us - r->start_us : 0;
    rec->bytes_in = r->req_end;
    rec->bytes_out = r->resp.body_bytes;
    /* The model the upstream reports, else the one the client asked for. */
    memcpy(rec->model, tg_request_billed_model(r),
           TG_MIN(strlen(tg_request_billed_model(r)), sizeof(rec->model) - 1));
}


/* Publish <r>'s usage record to the ring, or to the spool when full. */
static void
tg_request_publish(tg_request_t *r)
{
    tg_worker_t *w = r->w;
    tg_usage_rec_t rec;

    tg_request_record(r, &rec);
    /* The request's metrics: a few stores on this worker's own row. */
    tg_shm_metrics_observe(
        tg_shm_metrics(w->shm), w->shm_idx, &rec,
        &(tg_shm_metrics_extra_t){r->refusal, rec.cost_pusd});
    if (tg_shm_ring_publish(tg_shm_ring(w->shm), &rec) == TG_SHM_OK) {
        return;
    }
    /* The ring is full: admin is behind.  The record goes to this
     * worker's spool file, never to the floor. */
    if (tg_shm_spool_append(w->conf->spool_dir, rec.pid, &rec) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, errno,
               "usage record %016llx: ring full and spool append to \"%s\" "
               "failed",
               (unsigned long long)rec.request_id, w->conf->spool_dir);
        return;
    }
    if (w->spooled++ % 1000 == 0) {
        tg_log(TG_LOG_WARN, 0, "usage ring full; %llu records spooled to %s",
               (unsigned long long)w->spooled, w->conf->spool_dir);
    }
}


/* Append each attempt, in order, as " endpoint:status" (1000 + curl code
 * when no status came back), or " -" when there was none. */
static int
tg_request_log_attempts(const tg_request_t *r, char *line, size_t cap, int n)
{
    const tg_conf_t *conf = r->w->conf;
    int i, k;

    for (i = 0; n > 0 && (size_t)n < cap - 1 &&
                i < TG_MIN(r->attempts, TG_REQUEST_HIST);
         i++) {
        k = snprintf(line + n, cap - (size_t)n, "%c%s:%u", i == 0 ? ' ' : ',',
                     conf->endpoints[r->hist_ep[i]].name, r->hist_status[i]);
        n = (k > 0 && (size_t)k < cap - (size_t)n) ? n + k : (int)cap - 1;
    }
    if (n > 0 && r->attempts == 0 && (size_t)n < cap - 3) {
        memcpy(line + n, " -", 2);
        n += 2;
    }
    return n;
}


/* Write <r>'s access-log line. */
static void
tg_request_access_log(const tg_request_t *r)
{
    const tg_conf_t *conf = r->w->conf;
    const struct sockaddr_in6 *peer = &r->c->peer;
    const tg_usage_t *u = &r->usage;
    char line[1024], ip[INET6_ADDRSTRLEN] = "-";
    uint64_t now = tg_time_mono_us();
    const char *ep = r->endpoint >= 0 ? conf->endpoints[r->endpoint].name : "-";
    bool on = r->usage_on;
    int n;

    if (!tg_log_access_enabled()) {
        return;
    }
    if (peer->sin6_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, ip,
                  sizeof(ip));
    } else if (peer->sin6_family == AF_INET6) {
        inet_ntop(AF_INET6, &peer->sin6_addr, ip, sizeof(ip));
    }
    n = snprintf(
        line, sizeof(line),
        "%llu %s %016llx \"%.*s %.*s\" %d %llu %.3f %.3f %s %d %d %s "
        "%s %llu %llu %llu %llu %llu",
        (unsigned long long)(tg_time_wall_ms() / 1000), ip,
        (unsigned long long)r->id, (int)TG_MIN(r->head.method_name.len, 16),
        r->head.method_name.data ? r->head.method_name.data : "-",
        (int)TG_MIN(r->head.path.len, 256),
        r->head.path.data ? r->head.path.data : "-", r->status,
        (unsigned long long)r->resp.body_bytes,
        (double)(now - r->start_us) / 1e6,
        r->first_byte_us ? (double)(r->first_byte_us - r->start_us) / 1e6 : 0.0,
        ep, r->upstream_status, r->attempts,
        r->outcome == TG_USAGE_OK               ? "ok"
        : r->outcome == TG_USAGE_CLIENT_GONE    ? "client_gone"
        : r->outcome == TG_USAGE_BROKEN         ? "broken"
        : r->outcome == TG_USAGE_TIMEOUT        ? "timeout"
        : r->outcome == TG_USAGE_REJECTED       ? "rejected"
        : r->outcome == TG_USAGE_UPSTREAM_ERROR ? "upstream_error"
                                                : "other",
        (on && u->model[0]) ? u->model : "-",
        (unsigned long long)(on ? u->tokens[TG_TOK_INPUT] : 0),
        (unsigned long long)(on ? u->tokens[TG_TOK_OUTPUT] : 0),
        (unsigned long long)(on ? u->tokens[TG_TOK_CACHE_READ] : 0),
        (unsigned long long)(on ? u->tokens[TG_TOK_CACHE_5M] : 0),
        (unsigned long long)(on ? u->tokens[TG_TOK_CACHE_1H] : 0));
    n = tg_request_log_attempts(r, line, sizeof(line), n);
    if (n > 0) {
        tg_log_access(line, TG_MIN((size_t)n, sizeof(line) - 1));
    }
}


/* Free <r> and close its connection. */
static void
tg_request_destroy(tg_request_t *r)
{
    tg_conn_t *c = r->c;

    if (r->usage_on) {
        tg_usage_fini(&r->usage);
    }
    free(r);
    tg_conn_close(c);
}


/* Move pipelined bytes to the front of c->in and wait for the next
 * request on a kept-alive connection. */
static void
tg_request_next(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    tg_worker_t *w = r->w;
    size_t left = c->in.last > r->req_end ? c->in.last - r->req_end : 0;

    if (left > 0) {
        memmove(c->in.data, c->in.data + r->req_end, left);
        c->in.pos = 0;
        c->in.last = left;
    } else {
        tg_buf_reset(&c->in, TG_REQUEST_KEEP_IN);
    }
    tg_buf_reset(&c->out, 4096);
    if (r->usage_on) {
        tg_usage_fini(&r->usage);
    }
    tg_request_reset(r);
    tg_ev_mod(w->loop, c->fd, EPOLLIN | EPOLLRDHUP);
    tg_ev_timer_add(w->loop, &c->timer, w->conf->idle_timeout_ms);
}


/* See request.h. */
int
tg_request_finalize(tg_request_t *r)
{
    tg_worker_t *w = r->w;

    if (r->phase != TG_REQ_ENDED) {
        return TG_OK;
    }
    tg_request_publish(r);
    tg_request_untrack(r);
    tg_request_access_log(r);
    atomic_fetch_add_explicit(&w->proc->requests, 1, memory_order_relaxed);
    if (r->status >= 500) {
        atomic_fetch_add_explicit(&w->proc->errors, 1, memory_order_relaxed);
    }
    if (r->close_after || r->broken || r->resp.close || !r->keep_alive ||
        w->stopping) {
        tg_request_destroy(r);
        return TG_DONE;
    }
    tg_request_next(r);
    return TG_OK;
}


/* The drain of <t>'s request reached usage.drain_timeout. */
static void
tg_request_drain_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_conn_t *c = t->data;

    (void)loop;
    tg_log(TG_LOG_INFO, 0,
           "upstream still streaming at drain_timeout after the client left; "
           "cancelled");
    (void)tg_request_end(c->data, TG_END_TIMEOUT, NULL);
}


/*
 * The client of <r> left mid-stream: with usage.on_client_disconnect =
 * drain, keep reading the upstream (bounded by drain_timeout and
 * drain_bytes) to learn the true usage, which the upstream bills anyway.
 * Only a committed stream whose final usage is not yet known is drained.
 * The socket is shut and taken out of the loop; the output is dropped.
 * True when the drain started (or runs): the request ends later, through
 * tg_request_end, as client_gone.
 */
static bool
tg_request_drain(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    const tg_conf_t *conf = r->w->conf;

    if (r->draining) {
        return true;
    }
    if (conf->usage_disconnect != TG_CONF_DISCONNECT_DRAIN ||
        r->phase != TG_REQ_UPSTREAM || !r->resp.committed ||
        r->cleanup == NULL || r->drain == NULL || !r->usage_on ||
        r->usage.final || r->usage.unknown) {
        return false;
    }
    r->draining = true;
    r->close_after = true;
    tg_ev_del(r->w->loop, c->fd);
    (void)shutdown(c->fd, SHUT_RDWR);
    tg_buf_reset(&c->out, 4096);
    tg_ev_timer_del(r->w->loop, &c->timer);
    c->timer.handler = tg_request_drain_timer_handler;
    c->timer.data = c;
    tg_ev_timer_add(r->w->loop, &c->timer, conf->drain_timeout_ms);
    r->drain(r, r->cleanup_data);
    return true;
}


/* See request.h. */
void
tg_request_close(tg_request_t *r, int cause)
{
    /* A client that left mid-stream: drain, or, while draining, nothing
     * more to do until the drain ends. */
    if (cause == TG_END_CLIENT_GONE && tg_request_drain(r)) {
        return;
    }
    if (r->phase != TG_REQ_IDLE && r->phase != TG_REQ_ENDED) {
        /* Ending for a gone client finalizes and closes. */
        if (tg_request_end(r, cause, NULL) == TG_DONE) {
            return;
        }
    }
    if (r->phase == TG_REQ_ENDED) {
        /* A complete response that never left: the client did not get
         * it, whatever the upstream did. */
        if (tg_buf_len(&r->c->out) > 0 && r->outcome == TG_USAGE_OK) {
            r->outcome = TG_USAGE_CLIENT_GONE;
        }
        r->close_after = true;
        if (tg_request_finalize(r) == TG_DONE) {
            return;
        }
    }
    tg_request_destroy(r);
}
