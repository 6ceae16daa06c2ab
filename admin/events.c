/*
 * admin/events.c
 *      Drain the endpoint events ring and write the events log.
 *
 * NOTES
 *      Admin only, on the usage drain tick (every 100 ms) and once more at
 *      stop.  Lines are formatted into one buffer and written with one
 *      write(2) per drain round, like the usage log; the same objects go
 *      to PostgreSQL's endpoint_events in batches (admin/events_store.c),
 *      whether or not the log is on.  A full ring drops
 *      events at the producer (shm/events.h); the drops are counted in the
 *      ring header and logged here when the count moves.  Slots left by a
 *      producer that died mid-publish are skipped as in the usage ring.
 */
#include "admin/events.h"
#include "admin/events_store.h"
#include "core/buf.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TG_EVENTS_BATCH    1024 /* events per drain round at most */
#define TG_EVENTS_GRACE_MS 2000 /* wait before skipping a stuck slot */

static const tg_conf_t *tg_events_conf;
static tg_shm_t *tg_events_shm;
static int tg_events_fd = -1;
static tg_buf_t tg_events_out;
static uint64_t tg_events_full; /* ring->full when last reported */
static char tg_events_host[64];


static int
tg_events_open(void)
{
    return tg_log_file_reopen(tg_events_conf->events_log, &tg_events_fd);
}


/* See events.h. */
int
tg_events_init(const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_events_conf = conf;
    tg_events_shm = shm;
    tg_buf_init(&tg_events_out, 4u << 20);
    /* admin.host_name (the system's by default), as usage and audit
     * rows name the host. */
    tg_json_escape(tg_events_host, sizeof(tg_events_host), conf->host_name,
                   strlen(conf->host_name));
    tg_events_full =
        atomic_load_explicit(&tg_shm_events(shm)->full, memory_order_relaxed);
    (void)tg_events_store_init(conf);
    return tg_events_open();
}


/* See events.h. */
void
tg_events_reopen(void)
{
    tg_events_open();
}


/* See events.h. */
void
tg_events_fini(void)
{
    if (tg_events_fd != -1) {
        close(tg_events_fd);
        tg_events_fd = -1;
    }
    tg_buf_fini(&tg_events_out);
    tg_events_store_fini();
}


/* See events.h. */
size_t
tg_events_format(char *buf, size_t cap, const tg_shm_event_t *ev, uint64_t id,
                 const char *host)
{
    char name[sizeof(ev->name) * 6 + 1], reason[sizeof(ev->reason) * 6 + 1];
    char at[32], until[24];
    time_t secs = (time_t)(ev->time_ms / 1000);
    struct tm tm;
    int n;

    tg_json_escape(name, sizeof(name), ev->name,
                   strnlen(ev->name, sizeof(ev->name)));
    tg_json_escape(reason, sizeof(reason), ev->reason,
                   strnlen(ev->reason, sizeof(ev->reason)));
    gmtime_r(&secs, &tm);
    n = (int)strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at + n, sizeof(at) - (size_t)n, ".%03uZ",
             (unsigned)(ev->time_ms % 1000));
    if (ev->until_ms == 0) {
        snprintf(until, sizeof(until), "null");
    } else {
        snprintf(until, sizeof(until), "%llu",
                 (unsigned long long)ev->until_ms);
    }
    n = snprintf(buf, cap,
                 "{\"event_id\":%llu,\"time_ms\":%llu,\"at\":\"%s\","
                 "\"host\":\"%s\",\"endpoint\":\"%s\",\"endpoint_index\":%u,"
                 "\"type\":\"%s\",\"from_state\":\"%s\",\"to_state\":\"%s\","
                 "\"reason\":\"%s\",\"status\":%u,\"consecutive\":%u,"
                 "\"until_ms\":%s,\"pid\":%d,\"source\":\"%s\"}\n",
                 (unsigned long long)id, (unsigned long long)ev->time_ms, at,
                 host, name, ev->endpoint, tg_shm_events_type_name(ev->type),
                 tg_shm_events_state_name(ev->from),
                 tg_shm_events_state_name(ev->to), reason, ev->status,
                 ev->consecutive, until, (int)ev->pid,
                 tg_shm_events_source_name(ev->source));
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    return (size_t)n;
}


static void
tg_events_flush(void)
{
    ssize_t n;

    while (tg_buf_len(&tg_events_out) > 0) {
        n = write(tg_events_fd, tg_events_out.data + tg_events_out.pos,
                  tg_buf_len(&tg_events_out));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            tg_log(TG_LOG_ERR, errno, "write(\"%s\") failed",
                   tg_events_conf->events_log);
            break;
        }
        tg_buf_consume(&tg_events_out, (size_t)n);
    }
    tg_buf_reset(&tg_events_out, 1u << 16);
}


/* See events.h. */
uint32_t
tg_events_drain(void)
{
    tg_shm_ring_t *ring = tg_shm_events(tg_events_shm);
    tg_shm_event_t ev;
    uint64_t id, full;
    uint32_t n = 0, skipped;
    char line[1024];
    size_t len;

    skipped =
        tg_shm_ring_skip_stuck(ring, tg_time_mono_ms(), TG_EVENTS_GRACE_MS);
    if (skipped > 0) {
        tg_log(TG_LOG_WARN, 0,
               "skipped %u endpoint event slots left by a process that died "
               "or stalled mid-publish",
               skipped);
    }
    full = atomic_load_explicit(&ring->full, memory_order_relaxed);
    if (full != tg_events_full) {
        tg_log(TG_LOG_WARN, 0,
               "%llu endpoint events dropped: the events ring was full",
               (unsigned long long)(full - tg_events_full));
        tg_events_full = full;
    }
    while (n < TG_EVENTS_BATCH &&
           tg_shm_events_consume(ring, &ev, &id) == TG_SHM_OK) {
        n++;
        len = tg_events_format(line, sizeof(line), &ev, id, tg_events_host);
        if (len == 0) {
            continue;
        }
        if (tg_events_fd != -1) {
            tg_buf_append(&tg_events_out, line, len);
        }
        tg_events_store_add(line, len - 1); /* without the newline */
    }
    if (tg_events_fd != -1 && tg_buf_len(&tg_events_out) > 0) {
        tg_events_flush();
    }
    tg_events_store_tick(tg_time_mono_ms());
    return n;
}
