/*
 * admin/events_store.c
 *      Store endpoint events in PostgreSQL: buffer, batch, insert.
 *
 * NOTES
 *      Admin only, on admin's loop, on the store's connection
 *      (admin/store.h), which never blocks.  Two buffers: "pend" collects
 *      the events drained since the last send, as the JSON objects of
 *      log.events separated by commas; "send" holds the one batch in
 *      flight, as a JSON array, for tg_api.events_ingest.  A batch that
 *      fails because the connection broke or the server was busy stays in
 *      "send" and is sent again after TG_EVENTS_STORE_RETRY_MS; the
 *      function skips events it already has (host, time, ring position),
 *      so a batch whose answer was lost counts once.  A batch the server
 *      refuses for its content is dropped and counted, never retried
 *      forever.  Both buffers together hold at most TG_EVENTS_STORE_MAX
 *      events: past that, new events are dropped and counted, which is
 *      what happens while PostgreSQL is down for long.
 *
 *      Partitions: this month's and next month's are created, and those
 *      older than log.events_months dropped, when the store becomes ready
 *      and every TG_EVENTS_STORE_PARTS_MS after; events_ingest also
 *      creates the partition of any event it gets.
 */
#include "admin/events_store.h"
#include "admin/pg.h"
#include "admin/store.h"
#include "core/buf.h"
#include "core/core.h"
#include "core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TG_EVENTS_STORE_FLUSH_MS 1000    /* batch period */
#define TG_EVENTS_STORE_RETRY_MS 2000    /* after a failed batch */
#define TG_EVENTS_STORE_PARTS_MS 3600000 /* partition upkeep period */
#define TG_EVENTS_STORE_EAGER    256     /* send at once past this many */
#define TG_EVENTS_STORE_OBJ_MAX  1024    /* bytes of one event object */

#define TG_EVENTS_STORE_INGEST_SQL "SELECT tg_api.events_ingest($1::jsonb)"
#define TG_EVENTS_STORE_PARTS_SQL  "SELECT tg_api.events_partitions($1::integer)"

typedef struct {
    const tg_conf_t *conf;
    tg_buf_t pend;     /* "obj,obj,..." not yet sent */
    uint32_t npend;    /* events in pend */
    tg_buf_t send;     /* "[obj,...]\0" in flight or to retry */
    uint32_t nsend;    /* events in send */
    bool busy;         /* an insert is in flight */
    bool parts_busy;   /* a partition upkeep is in flight */
    bool was_ready;    /* the store was ready at the last tick */
    uint64_t last_ms;  /* last send started (monotonic), 0 = none yet */
    uint64_t retry_ms; /* no send before this after a failure */
    uint64_t parts_ms; /* last partition upkeep, 0 = never */
    tg_events_store_stats_t st;
} tg_events_store_t;

static tg_events_store_t tg_es;


/* See events_store.h. */
int
tg_events_store_init(const tg_conf_t *conf)
{
    size_t max = (size_t)TG_EVENTS_STORE_MAX * (TG_EVENTS_STORE_OBJ_MAX + 1);

    memset(&tg_es, 0, sizeof(tg_es));
    tg_es.conf = conf;
    tg_buf_init(&tg_es.pend, max);
    tg_buf_init(&tg_es.send, max + 4);
    return TG_OK;
}


/* See events_store.h. */
void
tg_events_store_fini(void)
{
    tg_pg_t *pg = tg_store_pg();

    if (pg != NULL) {
        tg_pg_forget(pg, &tg_es);
    }
    tg_buf_fini(&tg_es.pend);
    tg_buf_fini(&tg_es.send);
    tg_es.npend = 0;
    tg_es.nsend = 0;
}


/* See events_store.h. */
void
tg_events_store_add(const char *json, size_t len)
{
    if (tg_es.conf == NULL || tg_es.conf->database[0] == '\0') {
        return; /* config-only mode: nowhere to store them */
    }
    /* Room for the comma and the object first, so a refusal leaves the
     * pending text a well-formed list. */
    if (len == 0 || len > TG_EVENTS_STORE_OBJ_MAX ||
        tg_es.npend + tg_es.nsend >= TG_EVENTS_STORE_MAX ||
        tg_buf_reserve(&tg_es.pend, len + 1) != TG_OK) {
        tg_es.st.dropped++;
        return;
    }
    if (tg_es.npend > 0) {
        (void)tg_buf_append(&tg_es.pend, ",", 1);
    }
    (void)tg_buf_append(&tg_es.pend, json, len);
    tg_es.npend++;
}


/* Is <sqlstate> worth sending the same batch again for? */
static bool
tg_events_store_transient(const char *sqlstate)
{
    /* Connection (08), resources (53), operator intervention and
     * timeouts (57), serialization (40); "" when there was no answer. */
    return sqlstate[0] == '\0' || strncmp(sqlstate, "08", 2) == 0 ||
           strncmp(sqlstate, "40", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
           strncmp(sqlstate, "57", 2) == 0;
}


static void
tg_events_store_ingest_cb(void *ctx, const tg_pg_res_t *res)
{
    const char *state = tg_pg_res_sqlstate(res);

    (void)ctx;
    tg_es.busy = false;
    if (tg_pg_res_ok(res)) {
        tg_es.st.stored += tg_es.nsend;
    } else {
        tg_es.st.failed++;
        if (tg_events_store_transient(state)) {
            tg_log(TG_LOG_WARN, 0,
                   "storing %u endpoint events failed: %s (%s); retrying",
                   tg_es.nsend, tg_pg_res_message(res), state);
            tg_es.retry_ms = tg_time_mono_ms() + TG_EVENTS_STORE_RETRY_MS;
            return;
        }
        tg_log(TG_LOG_ERR, 0,
               "storing %u endpoint events failed: %s (%s); they are dropped "
               "(the events log keeps them)",
               tg_es.nsend, tg_pg_res_message(res), state);
        tg_es.st.dropped += tg_es.nsend;
    }
    tg_es.nsend = 0;
    tg_buf_reset(&tg_es.send, 1u << 16);
}


/* Move pend into send as one JSON array.  TG_OK or TG_ERROR (no memory:
 * nothing moved). */
static int
tg_events_store_seal(void)
{
    tg_buf_t *s = &tg_es.send;

    tg_buf_reset(s, 1u << 16);
    if (tg_buf_append(s, "[", 1) != TG_OK ||
        tg_buf_append(s, tg_es.pend.data + tg_es.pend.pos,
                      tg_buf_len(&tg_es.pend)) != TG_OK ||
        tg_buf_append(s, "]", 2) != TG_OK) {
        tg_buf_reset(s, 1u << 16);
        return TG_ERROR;
    }
    tg_es.nsend = tg_es.npend;
    tg_es.npend = 0;
    tg_buf_reset(&tg_es.pend, 1u << 16);
    return TG_OK;
}


static void
tg_events_store_parts_cb(void *ctx, const tg_pg_res_t *res)
{
    (void)ctx;
    tg_es.parts_busy = false;
    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "endpoint_events partition upkeep failed: %s",
               tg_pg_res_message(res));
        tg_es.parts_ms = 0;
    } else {
        tg_log(TG_LOG_DEBUG, 0, "endpoint_events partitions: %s",
               tg_pg_res_value(res, 0, 0));
    }
}


/* Partition upkeep when due: at the store's start and every hour. */
static void
tg_events_store_parts(tg_pg_t *pg, uint64_t now_ms)
{
    char months[16];
    const char *p[1] = {months};

    if (tg_es.parts_busy ||
        (tg_es.parts_ms != 0 &&
         now_ms - tg_es.parts_ms < TG_EVENTS_STORE_PARTS_MS)) {
        return;
    }
    snprintf(months, sizeof(months), "%u", tg_es.conf->events_months);
    if (tg_pg_query(pg, TG_EVENTS_STORE_PARTS_SQL, 1, p,
                    tg_events_store_parts_cb, &tg_es) == TG_OK) {
        tg_es.parts_busy = true;
        tg_es.parts_ms = now_ms;
    }
}


/* See events_store.h. */
void
tg_events_store_tick(uint64_t now_ms)
{
    tg_pg_t *pg = tg_store_pg();
    bool ready = pg != NULL && tg_store_state() == TG_STORE_READY;
    const char *p[1];

    tg_es.st.pending = tg_es.npend + tg_es.nsend;
    if (!ready) {
        tg_es.was_ready = false;
        return;
    }
    if (!tg_es.was_ready) {
        /* (Re)connected: partition upkeep first, and send at once. */
        tg_es.was_ready = true;
        tg_es.parts_ms = 0;
        tg_es.last_ms = 0;
        tg_es.retry_ms = 0;
    }
    tg_events_store_parts(pg, now_ms);
    if (tg_es.busy || now_ms < tg_es.retry_ms ||
        (tg_es.nsend == 0 && tg_es.npend == 0)) {
        return;
    }
    /* Batch: a retry or a big backlog goes at once, else once a period. */
    if (tg_es.nsend == 0 && tg_es.npend < TG_EVENTS_STORE_EAGER &&
        tg_es.last_ms != 0 &&
        now_ms - tg_es.last_ms < TG_EVENTS_STORE_FLUSH_MS) {
        return;
    }
    if (tg_es.nsend == 0 && tg_events_store_seal() != TG_OK) {
        return;
    }
    p[0] = tg_es.send.data + tg_es.send.pos;
    if (tg_pg_query(pg, TG_EVENTS_STORE_INGEST_SQL, 1, p,
                    tg_events_store_ingest_cb, &tg_es) == TG_OK) {
        tg_es.busy = true;
        tg_es.last_ms = now_ms;
    }
}


/* See events_store.h. */
const tg_events_store_stats_t *
tg_events_store_stats(void)
{
    tg_es.st.pending = tg_es.npend + tg_es.nsend;
    return &tg_es.st;
}
