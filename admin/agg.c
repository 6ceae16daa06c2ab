/*
 * admin/agg.c
 *      Drain usage records from the ring and the spool files.
 *
 * NOTES
 *      Admin only.  Lines are formatted into one buffer and written with
 *      one write(2) per drain round.  Records from spool files may repeat
 *      after an admin crash between reading a file and unlinking it (the
 *      spool is at-least-once); request_id identifies a record, and the
 *      database import deduplicates on it.
 */
#include "admin/agg.h"
#include "core/buf.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "shm/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_AGG_BATCH    4096 /* records per drain round at most */
#define TG_AGG_GRACE_MS 2000 /* wait before skipping a stuck ring slot */

static const tg_conf_t *tg_agg_conf;
static tg_shm_t *tg_agg_shm;
static int tg_agg_fd = -1;
static tg_buf_t tg_agg_out;
static tg_agg_stats_t tg_agg_counters;

static const char *const tg_agg_outcomes[] = {
    "ok",       "upstream_error", "client_gone",   "timeout",
    "rejected", "broken",         "worker_crashed"};


static int
tg_agg_open(void)
{
    return tg_log_file_reopen(tg_agg_conf->usage_log, &tg_agg_fd);
}


/* See agg.h. */
int
tg_agg_init(const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_agg_conf = conf;
    tg_agg_shm = shm;
    tg_buf_init(&tg_agg_out, 8u << 20);
    if (mkdir(conf->spool_dir, 0700) == -1 && errno != EEXIST) {
        tg_log(TG_LOG_WARN, errno, "mkdir(\"%s\") failed", conf->spool_dir);
    }
    return tg_agg_open();
}


/* See agg.h. */
void
tg_agg_reopen(void)
{
    tg_agg_open();
}


/* See agg.h. */
void
tg_agg_fini(void)
{
    if (tg_agg_fd != -1) {
        close(tg_agg_fd);
        tg_agg_fd = -1;
    }
    tg_buf_fini(&tg_agg_out);
}


/* See agg.h. */
const tg_agg_stats_t *
tg_agg_stats(void)
{
    return &tg_agg_counters;
}


static void
tg_agg_flush(void)
{
    ssize_t n;

    while (tg_buf_len(&tg_agg_out) > 0) {
        n = write(tg_agg_fd, tg_agg_out.data + tg_agg_out.pos,
                  tg_buf_len(&tg_agg_out));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            tg_log(TG_LOG_ERR, errno, "write(\"%s\") failed",
                   tg_agg_conf->usage_log);
            break;
        }
        tg_buf_consume(&tg_agg_out, (size_t)n);
    }
    tg_buf_reset(&tg_agg_out, 1u << 20);
}


/* Append one record as a JSON line to the batch. */
static void
tg_agg_line(const tg_usage_rec_t *r)
{
    const tg_conf_t *conf = tg_agg_conf;
    char line[1024], model[200];
    const char *ep =
        r->endpoint < conf->nendpoints ? conf->endpoints[r->endpoint].name : "";
    int n;

    tg_json_escape(model, sizeof(model), r->model,
                   strnlen(r->model, sizeof(r->model)));
    n = snprintf(
        line, sizeof(line),
        "{\"request_id\":\"%016llx\",\"time_ms\":%llu,\"user\":%u,"
        "\"key\":%u,\"model\":\"%s\",\"endpoint\":\"%s\",\"status\":%u,"
        "\"outcome\":\"%s\",\"stream\":%s,\"api\":\"%s\",\"attempts\":%u,"
        "\"tokens\":{\"input\":%llu,\"output\":%llu,\"cache_read\":%llu,"
        "\"cache_write_5m\":%llu,\"cache_write_1h\":%llu,\"reasoning\":%llu},"
        "\"latency_us\":%llu,\"ttfb_us\":%llu,\"bytes_in\":%llu,"
        "\"bytes_out\":%llu,\"pid\":%d,\"tokens_known\":%s}\n",
        (unsigned long long)r->request_id, (unsigned long long)r->time_ms,
        r->user, r->key_id, model, ep, r->status,
        r->outcome < TG_NELEMS(tg_agg_outcomes) ? tg_agg_outcomes[r->outcome]
                                                : "unknown",
        (r->flags & TG_USAGE_F_STREAM) ? "true" : "false",
        (r->flags & TG_USAGE_F_OPENAI) ? "openai" : "anthropic", r->attempts,
        (unsigned long long)r->tokens[TG_USAGE_TOK_INPUT],
        (unsigned long long)r->tokens[TG_USAGE_TOK_OUTPUT],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_READ],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_WRITE_5M],
        (unsigned long long)r->tokens[TG_USAGE_TOK_CACHE_WRITE_1H],
        (unsigned long long)r->tokens[TG_USAGE_TOK_REASONING],
        (unsigned long long)r->latency_us, (unsigned long long)r->ttfb_us,
        (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
        (int)r->pid, (r->flags & TG_USAGE_F_UNKNOWN) ? "false" : "true");
    if (n > 0 && (size_t)n < sizeof(line)) {
        if (tg_buf_len(&tg_agg_out) + (size_t)n > (7u << 20)) {
            tg_agg_flush();
        }
        tg_buf_append(&tg_agg_out, line, (size_t)n);
    }
}


static void
tg_agg_take(const tg_usage_rec_t *r)
{
    tg_agg_counters.records++;
    if (tg_agg_fd != -1) {
        tg_agg_line(r);
    }
}


/* See agg.h. */
uint32_t
tg_agg_drain(void)
{
    tg_shm_ring_t *ring = tg_shm_ring(tg_agg_shm);
    tg_usage_rec_t rec;
    uint32_t n = 0, skipped;

    skipped = tg_shm_ring_skip_stuck(ring, tg_time_mono_ms(), TG_AGG_GRACE_MS);
    if (skipped > 0) {
        tg_agg_counters.skipped += skipped;
        tg_log(TG_LOG_WARN, 0,
               "skipped %u usage ring slots left by a worker that died or "
               "stalled mid-publish",
               skipped);
    }
    while (n < TG_AGG_BATCH && tg_shm_ring_consume(ring, &rec) == TG_SHM_OK) {
        tg_agg_take(&rec);
        n++;
    }
    if (tg_agg_fd != -1 && tg_buf_len(&tg_agg_out) > 0) {
        tg_agg_flush();
    }
    return n;
}


static int
tg_agg_spool_cb(void *ctx, const tg_usage_rec_t *rec)
{
    (void)ctx;
    tg_agg_counters.spooled++;
    tg_agg_take(rec);
    return 0;
}


/* See agg.h. */
uint32_t
tg_agg_ingest(void)
{
    uint32_t nrecs = 0, nbad = 0;

    tg_shm_spool_ingest(tg_agg_conf->spool_dir, tg_agg_spool_cb, NULL, &nrecs,
                        &nbad);
    if (nbad > 0) {
        tg_agg_counters.bad += nbad;
        tg_log(TG_LOG_WARN, 0, "%u damaged records in spool files under %s",
               nbad, tg_agg_conf->spool_dir);
    }
    if (nrecs > 0) {
        tg_log(TG_LOG_NOTICE, 0, "ingested %u spooled usage records", nrecs);
    }
    if (tg_agg_fd != -1 && tg_buf_len(&tg_agg_out) > 0) {
        tg_agg_flush();
    }
    return nrecs;
}
