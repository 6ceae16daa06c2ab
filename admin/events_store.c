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
 *      Journal: every event handed to the store is also appended to
 *      usage.spool_dir/events.journal, one object per line, and the file
 *      is fdatasync'd once per drain round that added any (events are
 *      rare: breaker and health changes).  When a batch is done (stored,
 *      or dropped as bad) the journal is rewritten to hold only what is
 *      still pending.  Admin starting again (after SIGKILL, a crash or a
 *      stop with the database down) reads it back first, so events
 *      waiting for PostgreSQL are not lost with the process;
 *      events_ingest skips those already stored.  "pend" separates its
 *      objects with newlines, so it is the journal's text as it is; a
 *      batch turns them into commas.
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

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    int jfd;          /* the journal (O_APPEND), or -1 */
    tg_buf_t jnew;    /* lines added since the journal was last synced */
    bool jfailed;     /* the last journal write failed (logged once) */
    char jpath[4200]; /* usage.spool_dir/events.journal */
} tg_events_store_t;

static tg_events_store_t tg_es;


/* ------------------------------------------------------------ journal */

/* Log a journal failure once until a write succeeds again. */
static void
tg_events_store_jfail(const char *what)
{
    if (!tg_es.jfailed) {
        tg_log(TG_LOG_ERR, errno,
               "%s(\"%s\") failed: endpoint events waiting for PostgreSQL "
               "are not kept on disk until it works again",
               what, tg_es.jpath);
    }
    tg_es.jfailed = true;
}


/* Write all <len> bytes of <p> to <fd>.  TG_OK or TG_ERROR (errno). */
static int
tg_events_store_write(int fd, const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return TG_ERROR;
        }
        p += n;
        len -= (size_t)n;
    }
    return TG_OK;
}


/* Append the lines added since the last call to the journal and sync it,
 * before they can be sent. */
static void
tg_events_store_jsync(void)
{
    if (tg_es.jfd == -1 || tg_buf_len(&tg_es.jnew) == 0) {
        return;
    }
    if (tg_events_store_write(tg_es.jfd, tg_es.jnew.data + tg_es.jnew.pos,
                              tg_buf_len(&tg_es.jnew)) != TG_OK) {
        tg_events_store_jfail("write");
    } else if (fdatasync(tg_es.jfd) == -1) {
        tg_events_store_jfail("fdatasync");
    } else {
        tg_es.jfailed = false;
    }
    tg_buf_reset(&tg_es.jnew, 1u << 16);
}


/* Make the journal hold exactly what is pending ("pend"): emptied when
 * nothing is, else replaced through a synced temporary file. */
static void
tg_events_store_jrewrite(void)
{
    char tmp[sizeof(tg_es.jpath) + 8];
    int fd;

    if (tg_es.jfd == -1) {
        return;
    }
    tg_buf_reset(&tg_es.jnew, 1u << 16); /* pend has those lines too */
    if (tg_es.npend == 0) {
        if (ftruncate(tg_es.jfd, 0) == -1) {
            tg_events_store_jfail("ftruncate");
        }
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.new", tg_es.jpath);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1 ||
        tg_events_store_write(fd, tg_es.pend.data + tg_es.pend.pos,
                              tg_buf_len(&tg_es.pend)) != TG_OK ||
        tg_events_store_write(fd, "\n", 1) != TG_OK || fdatasync(fd) == -1 ||
        rename(tmp, tg_es.jpath) == -1) {
        tg_events_store_jfail("rewrite");
        if (fd != -1) {
            close(fd);
        }
        (void)unlink(tmp);
        return;
    }
    close(fd);
    close(tg_es.jfd);
    tg_es.jfd = open(tg_es.jpath, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (tg_es.jfd == -1) {
        tg_events_store_jfail("open");
    }
}


/* Keep the journal line <p> of <len> bytes when it is one JSON object of
 * a sane size.  Returns whether it was kept. */
static bool
tg_events_store_jline(const char *p, size_t len)
{
    json_t *j;
    bool ok;

    if (len == 0 || len > TG_EVENTS_STORE_OBJ_MAX ||
        tg_es.npend >= TG_EVENTS_STORE_MAX) {
        return false;
    }
    j = json_loadb(p, len, JSON_REJECT_DUPLICATES, NULL);
    ok = json_is_object(j) && tg_buf_reserve(&tg_es.pend, len + 1) == TG_OK;
    json_decref(j);
    if (ok) {
        if (tg_es.npend > 0) {
            (void)tg_buf_append(&tg_es.pend, "\n", 1);
        }
        (void)tg_buf_append(&tg_es.pend, p, len);
        tg_es.npend++;
    }
    return ok;
}


/* Read back what the last admin left in the journal (a file of ours, but
 * read as any input: bounded, each line checked), then open it for
 * appending, rewritten to hold what was kept. */
static void
tg_events_store_jopen(void)
{
    size_t cap = (size_t)TG_EVENTS_STORE_MAX * (TG_EVENTS_STORE_OBJ_MAX + 1);
    size_t len = 0, bad = 0, i, start;
    ssize_t n;
    char *buf;
    int fd;

    snprintf(tg_es.jpath, sizeof(tg_es.jpath), "%s/events.journal",
             tg_es.conf->spool_dir);
    if (mkdir(tg_es.conf->spool_dir, 0700) == -1 && errno != EEXIST) {
        tg_events_store_jfail("mkdir");
        return;
    }
    fd = open(tg_es.jpath, O_RDONLY | O_CLOEXEC);
    buf = fd == -1 ? NULL : malloc(cap);
    while (buf != NULL && len < cap &&
           ((n = read(fd, buf + len, cap - len)) > 0 ||
            (n < 0 && errno == EINTR))) {
        len += n > 0 ? (size_t)n : 0;
    }
    if (fd != -1) {
        close(fd);
    }
    for (i = start = 0; i < len; i++) {
        if (buf[i] == '\n' || i + 1 == len) {
            size_t end = buf[i] == '\n' ? i : i + 1;

            if (end > start &&
                !tg_events_store_jline(buf + start, end - start)) {
                bad++;
            }
            start = i + 1;
        }
    }
    free(buf);
    if (tg_es.npend > 0 || bad > 0) {
        tg_log(bad > 0 ? TG_LOG_WARN : TG_LOG_NOTICE, 0,
               "%u endpoint events from %s wait for PostgreSQL again (%zu "
               "unreadable lines left out)",
               tg_es.npend, tg_es.jpath, bad);
    }
    tg_es.jfd =
        open(tg_es.jpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (tg_es.jfd == -1) {
        tg_events_store_jfail("open");
        return;
    }
    if (tg_es.npend > 0 || bad > 0) {
        tg_events_store_jrewrite();
    }
}


/* See events_store.h. */
int
tg_events_store_init(const tg_conf_t *conf)
{
    size_t max = (size_t)TG_EVENTS_STORE_MAX * (TG_EVENTS_STORE_OBJ_MAX + 1);

    memset(&tg_es, 0, sizeof(tg_es));
    tg_es.conf = conf;
    tg_es.jfd = -1;
    tg_buf_init(&tg_es.pend, max);
    tg_buf_init(&tg_es.send, max + 4);
    tg_buf_init(&tg_es.jnew, max);
    if (conf->database[0] != '\0' && conf->spool_dir[0] != '\0') {
        tg_events_store_jopen();
    }
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
    if (tg_es.jfd != -1) {
        close(tg_es.jfd);
        tg_es.jfd = -1;
    }
    tg_buf_fini(&tg_es.pend);
    tg_buf_fini(&tg_es.send);
    tg_buf_fini(&tg_es.jnew);
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
    /* Room for the newline and the object first, so a refusal leaves
     * the pending text whole lines. */
    if (len == 0 || len > TG_EVENTS_STORE_OBJ_MAX ||
        memchr(json, '\n', len) != NULL ||
        tg_es.npend + tg_es.nsend >= TG_EVENTS_STORE_MAX ||
        tg_buf_reserve(&tg_es.pend, len + 1) != TG_OK) {
        tg_es.st.dropped++;
        return;
    }
    if (tg_es.npend > 0) {
        (void)tg_buf_append(&tg_es.pend, "\n", 1);
    }
    (void)tg_buf_append(&tg_es.pend, json, len);
    tg_es.npend++;
    if (tg_es.jfd != -1 && (tg_buf_append(&tg_es.jnew, json, len) != TG_OK ||
                            tg_buf_append(&tg_es.jnew, "\n", 1) != TG_OK)) {
        tg_events_store_jfail("append");
    }
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
    tg_events_store_jrewrite();
}


/* Move pend into send as one JSON array (its newlines become commas).
 * TG_OK or TG_ERROR (no memory: nothing moved). */
static int
tg_events_store_seal(void)
{
    tg_buf_t *s = &tg_es.send;
    size_t i;

    tg_buf_reset(s, 1u << 16);
    if (tg_buf_append(s, "[", 1) != TG_OK ||
        tg_buf_append(s, tg_es.pend.data + tg_es.pend.pos,
                      tg_buf_len(&tg_es.pend)) != TG_OK ||
        tg_buf_append(s, "]", 2) != TG_OK) {
        tg_buf_reset(s, 1u << 16);
        return TG_ERROR;
    }
    for (i = s->pos; i < s->last; i++) {
        if (s->data[i] == '\n') {
            s->data[i] = ',';
        }
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
    tg_events_store_jsync();
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
