/*
 * admin/agg.c
 *      Usage records: drain the ring and the workers' spool files into
 *      the journal, close a batch every second, flush batches to
 *      PostgreSQL (tg_api.usage_ingest), and the optional JSON-lines log.
 *
 * NOTES
 *      Admin only; everything runs on admin's loop and nothing waits for
 *      the database: workers never wait for admin, and admin never waits
 *      for PostgreSQL.
 *
 *      With a database, every record goes through admin/agg_spool.c's
 *      journal before its ring slot is handed back; a batch is closed
 *      (marked and fsynced) at least every TG_AGG_CLOSE_MS (while a ring
 *      backlog drains, when it is drained, at TG_AGG_CLOSE_RECS records
 *      or after TG_AGG_CLOSE_MAX_MS), and flushed
 *      from the journal, oldest first, one at a time, on a connection of
 *      its own (so a slow flush never delays the admin API).  A flush
 *      that fails or is not acknowledged is retried with back-off; while
 *      PostgreSQL is down, batches accumulate in the journal only, and
 *      exactly one is in memory at a time.  The batch id (spool id and
 *      sequence number) makes a replayed batch a no-op, so a kill -9
 *      between the commit and the acknowledgement counts nothing twice.
 *      See agg_spool.c for why nothing drained is lost.
 *
 *      Without a database (config-only mode) records are consumed and
 *      only counted and logged, as before.
 *
 *      A batch PostgreSQL refuses for its content (not for a lost
 *      connection) TG_AGG_REFUSE_MAX times in a row is written to
 *      usage.refused (JSON lines) in the spool directory and skipped, so
 *      one bad batch cannot stop usage for good; this is logged as an
 *      error.
 */
#include "admin/agg.h"
#include "admin/agg_batch.h"
#include "admin/agg_spool.h"
#include "admin/pg.h"
#include "admin/store.h"
#include "core/buf.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "shm/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_AGG_GRACE_MS     2000   /* wait before skipping a stuck slot */
#define TG_AGG_CLOSE_MS     1000   /* a batch is closed at least this often */
#define TG_AGG_CLOSE_RECS   100000 /* ... or when it holds this many */
#define TG_AGG_CLOSE_MAX_MS 2000   /* ... and while a backlog drains, this */
#define TG_AGG_RETRY_MIN    500    /* flush retry back-off */
#define TG_AGG_RETRY_MAX    10000
#define TG_AGG_REFUSE_MAX   5
#define TG_AGG_INGEST_SQL   "SELECT tg_api.usage_ingest($1::jsonb)"

static const char *const tg_agg_outcomes[] = {
    "ok",       "upstream_error", "client_gone",   "timeout",
    "rejected", "broken",         "worker_crashed"};

typedef struct {
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_ev_loop_t *loop;
    bool db; /* a database is configured: journal and flush */
    bool spool_ok;
    tg_agg_spool_t spool;
    uint64_t ring_id;
    uint64_t last_close_ms;
    int log_fd;
    tg_buf_t out;    /* JSON lines of one drain round */
    tg_buf_t frames; /* journal frames of one drain round */
    tg_pg_t *pg;
    tg_agg_batch_t *batch;
    tg_buf_t payload;
    bool flushing;
    uint64_t flush_seq, flush_end;
    uint32_t retry_ms;
    uint32_t refused;
    tg_ev_timer_t retry_timer;
    tg_agg_stats_t stats;
} tg_agg_t;

static tg_agg_t tg_agg = {.log_fd = -1};

static void tg_agg_flush_next(tg_agg_t *a);


static int
tg_agg_log_open(void)
{
    return tg_log_file_reopen(tg_agg.conf->usage_log, &tg_agg.log_fd);
}


/* See agg.h. */
int
tg_agg_init(const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_agg_t *a = &tg_agg;
    tg_shm_hdr_t *hdr = tg_shm_hdr(shm);
    char err[512];

    a->conf = conf;
    a->shm = shm;
    a->db = conf->database_source != TG_CONF_DB_NONE;
    a->ring_id = ((uint64_t)(uint32_t)hdr->creator_pid << 40) ^ hdr->created_ms;
    tg_buf_init(&a->out, 8u << 20);
    tg_buf_init(&a->frames, (size_t)TG_AGG_BATCH * TG_AGG_FRAME_REC_SIZE);
    tg_buf_init(&a->payload, 512u << 20);
    if (mkdir(conf->spool_dir, 0700) == -1 && errno != EEXIST) {
        tg_log(TG_LOG_WARN, errno, "mkdir(\"%s\") failed", conf->spool_dir);
    }
    if (a->db) {
        if (tg_agg_spool_open(&a->spool, conf->spool_dir, err, sizeof(err)) !=
            TG_OK) {
            tg_log(TG_LOG_ERR, 0, "usage journal: %s", err);
            return TG_ERROR;
        }
        a->spool_ok = true;
        a->batch = tg_agg_batch_create(conf, conf->usage_detail);
        if (a->batch == NULL) {
            tg_log(TG_LOG_ERR, 0, "out of memory for the usage batch");
            return TG_ERROR;
        }
        a->retry_ms = TG_AGG_RETRY_MIN;
        a->last_close_ms = tg_time_mono_ms();
    }
    return tg_agg_log_open();
}


/* See agg.h. */
void
tg_agg_reopen(void)
{
    tg_agg_log_open();
}


/* See agg.h. */
void
tg_agg_fini(void)
{
    tg_agg_t *a = &tg_agg;

    if (a->spool_ok) {
        (void)tg_agg_spool_close_batch(&a->spool, tg_time_wall_ms());
        tg_agg_spool_close(&a->spool);
        a->spool_ok = false;
    }
    if (a->loop != NULL) {
        tg_ev_timer_del(a->loop, &a->retry_timer);
    }
    tg_pg_destroy(a->pg);
    a->pg = NULL;
    tg_agg_batch_destroy(a->batch);
    a->batch = NULL;
    if (a->log_fd != -1) {
        close(a->log_fd);
        a->log_fd = -1;
    }
    tg_buf_fini(&a->out);
    tg_buf_fini(&a->frames);
    tg_buf_fini(&a->payload);
}


/* See agg.h. */
const tg_agg_stats_t *
tg_agg_stats(void)
{
    return &tg_agg.stats;
}


/* -------------------------------------------------------- usage log */

static void
tg_agg_log_flush(tg_agg_t *a)
{
    ssize_t n;

    while (tg_buf_len(&a->out) > 0) {
        n = write(a->log_fd, a->out.data + a->out.pos, tg_buf_len(&a->out));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            tg_log(TG_LOG_ERR, errno, "write(\"%s\") failed",
                   a->conf->usage_log);
            break;
        }
        tg_buf_consume(&a->out, (size_t)n);
    }
    tg_buf_reset(&a->out, 1u << 20);
}


/* Append one record as a JSON line to the round's log buffer. */
static void
tg_agg_line(tg_agg_t *a, const tg_usage_rec_t *r)
{
    char line[1024], model[200], m64[64];
    const char *ep = r->endpoint < a->conf->nendpoints
                         ? a->conf->endpoints[r->endpoint].name
                         : "";
    bool unpriced;
    uint64_t cost = tg_agg_batch_cost(r, &unpriced);
    int n;

    tg_agg_batch_model(r, m64);
    tg_json_escape(model, sizeof(model), m64, strlen(m64));
    n = snprintf(
        line, sizeof(line),
        "{\"request_id\":\"%016llx\",\"time_ms\":%llu,\"user\":%u,"
        "\"key\":%u,\"model\":\"%s\",\"endpoint\":\"%s\",\"status\":%u,"
        "\"outcome\":\"%s\",\"stream\":%s,\"api\":\"%s\",\"attempts\":%u,"
        "\"tokens\":{\"input\":%llu,\"output\":%llu,\"cache_read\":%llu,"
        "\"cache_write_5m\":%llu,\"cache_write_1h\":%llu,\"reasoning\":%llu},"
        "\"cost_pusd\":%llu,\"unpriced\":%s,"
        "\"latency_us\":%llu,\"ttfb_us\":%llu,\"bytes_in\":%llu,"
        "\"bytes_out\":%llu,\"pid\":%d,\"tokens_known\":%s}\n",
        (unsigned long long)r->request_id, (unsigned long long)r->time_ms,
        r->user, r->key_id, model, ep, r->status,
        r->outcome < TG_NELEMS(tg_agg_outcomes) ? tg_agg_outcomes[r->outcome]
                                                : "unknown",
        (r->flags & TG_USAGE_F_STREAM) ? "true" : "false",
        tg_usage_api_name(tg_usage_api(r->flags)), r->attempts,
        (unsigned long long)r->tokens[TG_USAGE_TOK_INPUT],
        (unsigned long long)r->tokens[TG_USAGE_TOK_OUTPUT],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_READ],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_WRITE_5M],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_WRITE_1H],
        (unsigned long long)r->tokens[TG_USAGE_TOK_REASONING],
        (unsigned long long)cost, unpriced ? "true" : "false",
        (unsigned long long)r->latency_us, (unsigned long long)r->ttfb_us,
        (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
        (int)r->pid, (r->flags & TG_USAGE_F_UNKNOWN) ? "false" : "true");
    if (n > 0 && (size_t)n < sizeof(line)) {
        if (tg_buf_len(&a->out) + (size_t)n > (7u << 20)) {
            tg_agg_log_flush(a);
        }
        tg_buf_append(&a->out, line, (size_t)n);
    }
}


static void
tg_agg_take(tg_agg_t *a, const tg_usage_rec_t *r)
{
    a->stats.records++;
    if (a->log_fd != -1) {
        tg_agg_line(a, r);
    }
}


/* ------------------------------------------------------------- drain */

/* Config-only mode: consume and log. */
static uint32_t
tg_agg_drain_plain(tg_agg_t *a, tg_shm_ring_t *ring)
{
    tg_usage_rec_t rec;
    uint32_t n = 0;

    while (n < TG_AGG_BATCH && tg_shm_ring_consume(ring, &rec) == TG_SHM_OK) {
        tg_agg_take(a, &rec);
        n++;
    }
    return n;
}


/*
 * Copy what the ring holds into the journal, then hand the slots back.
 * Records the journal already holds (an admin killed between its write
 * and its release) are released without a second copy.
 */
static uint32_t
tg_agg_drain_journal(tg_agg_t *a, tg_shm_ring_t *ring)
{
    tg_agg_frame_rec_t fr;
    uint32_t n = 0, nrecs = 0;
    uint64_t pos;

    tg_buf_reset(&a->frames, SIZE_MAX);
    memset(&fr, 0, sizeof(fr));
    fr.ring_id = a->ring_id;
    while (n < TG_AGG_BATCH &&
           tg_shm_ring_peek_raw(ring, n, &fr.rec, &pos) == TG_SHM_OK) {
        n++;
        if (a->spool.have_last && a->spool.last_ring_id == a->ring_id &&
            pos <= a->spool.last_pos) {
            continue;
        }
        fr.pos = pos;
        if (tg_buf_reserve(&a->frames, TG_AGG_FRAME_REC_SIZE) != TG_OK) {
            n--;
            break;
        }
        a->frames.last += tg_agg_spool_frame(a->frames.data + a->frames.last,
                                             TG_AGG_FR_REC, &fr, sizeof(fr));
        nrecs++;
        tg_agg_take(a, &fr.rec);
    }
    if (n == 0) {
        return 0;
    }
    if (nrecs > 0 &&
        tg_agg_spool_append(&a->spool, a->frames.data, tg_buf_len(&a->frames),
                            nrecs) != TG_OK) {
        /* Left in the ring for the next round; workers spool if it fills. */
        a->stats.records -= nrecs;
        tg_buf_reset(&a->out, 1u << 20);
        return 0;
    }
    tg_shm_ring_release(ring, n);
    return n;
}


/*
 * Close the open batch when it is old or big enough, then flush.  <more>:
 * the drain round was full, so the ring holds a backlog (admin was
 * stopped, or is catching up): the batch then stays open until the
 * backlog is drained, TG_AGG_CLOSE_RECS or TG_AGG_CLOSE_MAX_MS, so the
 * backlog goes out in one statement instead of waiting a period per
 * batch.
 */
static void
tg_agg_maybe_close(tg_agg_t *a, bool force, bool more)
{
    uint64_t now = tg_time_mono_ms();
    uint64_t age = now - a->last_close_ms;

    if (!a->spool_ok) {
        return;
    }
    if (force || (age >= TG_AGG_CLOSE_MS && !more) ||
        age >= TG_AGG_CLOSE_MAX_MS || a->spool.open_recs >= TG_AGG_CLOSE_RECS) {
        a->last_close_ms = now;
        (void)tg_agg_spool_close_batch(&a->spool, tg_time_wall_ms());
    }
    tg_agg_flush_next(a);
}


/* See agg.h. */
uint32_t
tg_agg_drain(void)
{
    tg_agg_t *a = &tg_agg;
    tg_shm_ring_t *ring = tg_shm_ring(a->shm);
    uint32_t n, skipped;

    skipped = tg_shm_ring_skip_stuck(ring, tg_time_mono_ms(), TG_AGG_GRACE_MS);
    if (skipped > 0) {
        a->stats.skipped += skipped;
        tg_log(TG_LOG_WARN, 0,
               "skipped %u usage ring slots left by a worker that died or "
               "stalled mid-publish",
               skipped);
    }
    n = a->spool_ok ? tg_agg_drain_journal(a, ring)
                    : tg_agg_drain_plain(a, ring);
    if (a->log_fd != -1 && tg_buf_len(&a->out) > 0) {
        tg_agg_log_flush(a);
    }
    tg_agg_maybe_close(a, false, n >= TG_AGG_BATCH);
    return n;
}


static int
tg_agg_spool_cb(void *ctx, const tg_usage_rec_t *rec)
{
    tg_agg_t *a = ctx;
    tg_agg_frame_rec_t fr;
    char frame[TG_AGG_FRAME_REC_SIZE];
    size_t n;

    if (a->spool_ok) {
        if (tg_agg_spool_wseen(&a->spool, rec->request_id)) {
            return 0; /* already in the journal: delivered again */
        }
        memset(&fr, 0, sizeof(fr));
        fr.rec = *rec;
        n = tg_agg_spool_frame(frame, TG_AGG_FR_WREC, &fr, sizeof(fr));
        /* Written before the worker's file is removed (see agg_spool.c). */
        if (tg_agg_spool_append(&a->spool, frame, n, 1) != TG_OK) {
            return -1;
        }
    }
    a->stats.spooled++;
    tg_agg_take(a, rec);
    return 0;
}


/* See agg.h. */
uint32_t
tg_agg_ingest(void)
{
    tg_agg_t *a = &tg_agg;
    uint32_t nrecs = 0, nbad = 0;
    int rc;

    rc = tg_shm_spool_ingest(a->conf->spool_dir, tg_agg_spool_cb, a, &nrecs,
                             &nbad);
    if (rc == TG_SHM_OK && a->spool_ok) {
        /* Every worker file is gone: none can deliver a record again. */
        tg_agg_spool_wforget(&a->spool);
    }
    if (nbad > 0) {
        a->stats.bad += nbad;
        tg_log(TG_LOG_WARN, 0, "%u damaged records in spool files under %s",
               nbad, a->conf->spool_dir);
    }
    if (nrecs > 0) {
        tg_log(TG_LOG_NOTICE, 0, "ingested %u spooled usage records", nrecs);
    }
    if (a->log_fd != -1 && tg_buf_len(&a->out) > 0) {
        tg_agg_log_flush(a);
    }
    return nrecs;
}


/* ------------------------------------------------------------- flush */

static void
tg_agg_batch_cb(void *ctx, const tg_usage_rec_t *rec)
{
    tg_agg_t *a = ctx;

    if (tg_agg_batch_add(a->batch, rec) != TG_OK) {
        a->stats.bad++;
    }
}


static void
tg_agg_retry_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    tg_agg_flush_next(t->data);
}


static void
tg_agg_retry(tg_agg_t *a)
{
    if (a->loop != NULL) {
        tg_ev_timer_add(a->loop, &a->retry_timer, a->retry_ms);
    }
    a->retry_ms = TG_MIN(a->retry_ms * 2, TG_AGG_RETRY_MAX);
}


/* Keep a batch PostgreSQL keeps refusing in usage.refused. */
static void
tg_agg_refuse(tg_agg_t *a)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/usage.refused", a->conf->spool_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1 ||
        write(fd, a->payload.data + a->payload.pos, tg_buf_len(&a->payload)) <
            0 ||
        write(fd, "\n", 1) < 0) {
        tg_log(TG_LOG_ERR, errno, "write(\"%s\") failed", path);
    }
    if (fd != -1) {
        close(fd);
    }
    tg_log(TG_LOG_ERR, 0,
           "usage batch %llu refused %d times by the database; kept in %s "
           "and skipped",
           (unsigned long long)a->flush_seq, TG_AGG_REFUSE_MAX, path);
}


static void
tg_agg_flushed_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_agg_t *a = ctx;
    const char *state = tg_pg_res_sqlstate(res);

    a->flushing = false;
    if (!tg_pg_res_ok(res)) {
        /* Classes 08 (connection), 57 (shutdown, statement timeout), 53
         * (resources) and 40 (serialization) are transient. */
        bool transient = strncmp(state, "08", 2) == 0 ||
                         strncmp(state, "57", 2) == 0 ||
                         strncmp(state, "53", 2) == 0 ||
                         strncmp(state, "40", 2) == 0 || state[0] == '\0';

        a->stats.flush_errors++;
        tg_log(transient ? TG_LOG_WARN : TG_LOG_ERR, 0,
               "usage batch %llu not stored: %s (%s); kept in the journal",
               (unsigned long long)a->flush_seq, tg_pg_res_message(res), state);
        if (!transient && ++a->refused >= TG_AGG_REFUSE_MAX) {
            tg_agg_refuse(a);
            goto acked;
        }
        tg_agg_retry(a);
        return;
    }
    a->stats.batches++;
    a->stats.flushed_ms = tg_time_wall_ms();
acked:
    a->refused = 0;
    a->retry_ms = TG_AGG_RETRY_MIN;
    tg_agg_spool_ack(&a->spool, a->flush_seq, a->flush_end);
    tg_buf_reset(&a->payload, 4u << 20);
    tg_agg_flush_next(a);
}


/* Send the oldest batch not yet applied, if the database can take it. */
static void
tg_agg_flush_next(tg_agg_t *a)
{
    char id[48];
    const char *p;
    int rc;

    if (!a->spool_ok || a->flushing || a->pg == NULL ||
        tg_ev_timer_armed(&a->retry_timer) ||
        tg_store_state() != TG_STORE_READY ||
        tg_pg_state(a->pg) != TG_PG_READY) {
        return;
    }
    tg_agg_batch_reset(a->batch);
    rc = tg_agg_spool_read_batch(&a->spool, tg_agg_batch_cb, a, &a->flush_seq,
                                 &a->flush_end);
    if (rc != TG_OK) {
        if (rc == TG_ERROR) {
            tg_agg_retry(a);
        }
        return;
    }
    snprintf(id, sizeof(id), "%016llx-%llu",
             (unsigned long long)a->spool.spool_id,
             (unsigned long long)a->flush_seq);
    if (tg_agg_batch_json(a->batch, id, a->conf->host_name, &a->payload) !=
        TG_OK) {
        tg_log(TG_LOG_ERR, 0, "usage batch %s does not fit in memory", id);
        tg_agg_retry(a);
        return;
    }
    p = a->payload.data + a->payload.pos;
    if (tg_pg_query(a->pg, TG_AGG_INGEST_SQL, 1, &p, tg_agg_flushed_cb, a) !=
        TG_OK) {
        tg_agg_retry(a);
        return;
    }
    a->flushing = true;
}


static void
tg_agg_pg_state_cb(void *ctx, tg_pg_state_t state)
{
    tg_agg_t *a = ctx;

    if (state == TG_PG_READY) {
        tg_ev_timer_del(a->loop, &a->retry_timer);
        a->retry_ms = TG_AGG_RETRY_MIN;
        tg_agg_flush_next(a);
    }
}


/* See agg.h. */
int
tg_agg_start(tg_ev_loop_t *loop)
{
    tg_agg_t *a = &tg_agg;

    a->loop = loop;
    a->retry_timer =
        (tg_ev_timer_t){.handler = tg_agg_retry_handler, .data = a};
    if (!a->spool_ok) {
        return TG_OK;
    }
    a->pg = tg_pg_create(loop, a->conf->database);
    if (a->pg == NULL) {
        tg_log(TG_LOG_ERR, 0, "creating the usage database connection failed");
        return TG_ERROR;
    }
    tg_pg_on_state(a->pg, tg_agg_pg_state_cb, a);
    return tg_pg_start(a->pg);
}


/* See agg.h. */
void
tg_agg_stop(void)
{
    tg_agg_t *a = &tg_agg;

    /* Whatever was not flushed stays in the journal for the next admin. */
    tg_agg_maybe_close(a, true, false);
    if (a->loop != NULL) {
        tg_ev_timer_del(a->loop, &a->retry_timer);
    }
    tg_pg_destroy(a->pg);
    a->pg = NULL;
    a->flushing = false;
}


/* See agg.h. */
uint64_t
tg_agg_pending(void)
{
    tg_agg_t *a = &tg_agg;

    if (!a->spool_ok) {
        return 0;
    }
    return a->spool.next_seq - 1 - a->spool.acked_seq +
           (a->spool.open_recs > 0);
}
