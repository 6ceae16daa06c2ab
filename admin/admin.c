/*
 * admin/admin.c
 *      Admin process: event loop, start-up, drains and signals.
 *
 * NOTES
 *      The admin HTTP API is admin/api.c, started on the admin listener.
 *      The loop also runs the usage and endpoint events drains (every
 *      TG_ADMIN_DRAIN_MS) and the active health checks (admin/health.c).
 *      Signals arrive via signalfd:
 *      TERM/INT/QUIT stop the process, USR1 reopens logs.
 */
#include "admin/admin.h"
#include "admin/agg.h"
#include "admin/api.h"
#include "admin/events.h"
#include "admin/health.h"
#include "admin/publish_ep.h"
#include "admin/store.h"
#include "admin/usage.h"
#include "core/buf.h"
#include "core/core.h"
#include "core/ev.h"
#include "core/http.h"
#include "core/log.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TG_ADMIN_DRAIN_MS 100  /* usage ring drain period */
#define TG_ADMIN_SPOOL_MS 1000 /* spool directory ingest period */

typedef struct {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_shm_proc_t *proc;
    int listen_fd;
    bool stop;
    tg_ev_timer_t drain_timer;
    uint64_t last_ingest;
} tg_admin_t;

static tg_admin_t tg_admin;


static void
tg_admin_signal_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    struct signalfd_siginfo si;

    (void)data;
    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGUSR1) {
            tg_log_reopen();
            tg_agg_reopen();
            tg_events_reopen();
        } else if (si.ssi_signo != SIGHUP) {
            tg_ev_stop(loop);
        }
    }
}


static void
tg_admin_drain_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_admin_t *a = t->data;
    uint32_t n;

    n = tg_agg_drain();
    tg_events_drain();
    if (tg_ev_now(loop) - a->last_ingest >= TG_ADMIN_SPOOL_MS) {
        a->last_ingest = tg_ev_now(loop);
        tg_agg_ingest();
    }
    /* A full round means the ring holds more: drain again on the next
     * turn of the loop (after the other events), so a backlog goes at the
     * journal's pace rather than TG_AGG_BATCH per period.  Otherwise wait
     * the period: draining in fewer, larger rounds costs the workers'
     * CPUs less than draining often. */
    tg_ev_timer_add(loop, t, n >= TG_AGG_BATCH ? 0 : TG_ADMIN_DRAIN_MS);
}


/*
 * Take the single-writer role in shared memory (key tables, ring
 * consumer).  After a reload the old admin still holds it while it drains;
 * wait for it, or take it over from a holder that died.  Bounded by
 * <timeout_ms>.  TG_OK or TG_ERROR.
 */
static int
tg_admin_lock(tg_shm_t *shm, uint64_t timeout_ms)
{
    _Atomic int32_t *owner = &tg_shm_hdr(shm)->admin_pid;
    uint64_t deadline = tg_time_mono_ms() + timeout_ms;
    int32_t me = (int32_t)getpid(), cur;

    for (;;) {
        cur = 0;
        if (atomic_compare_exchange_strong(owner, &cur, me)) {
            return TG_OK;
        }
        if (kill(cur, 0) == -1 && errno == ESRCH &&
            atomic_compare_exchange_strong(owner, &cur, me)) {
            tg_log(TG_LOG_WARN, 0, "took over the admin role from dead pid %d",
                   (int)cur);
            return TG_OK;
        }
        if (tg_time_mono_ms() >= deadline) {
            tg_log(TG_LOG_ERR, 0, "pid %d keeps the admin role", (int)cur);
            return TG_ERROR;
        }
        usleep(20000);
    }
}


static void
tg_admin_unlock(tg_shm_t *shm)
{
    int32_t me = (int32_t)getpid();

    atomic_compare_exchange_strong(&tg_shm_hdr(shm)->admin_pid, &me, 0);
}


/* See admin.h. */
void
tg_admin_main(const tg_conf_t *conf, tg_shm_t *shm, uint32_t shm_idx,
              int listen_fd)
{
    tg_admin_t *a = &tg_admin;
    tg_api_opts_t api_opts = {0};
    const char *old_keys[TG_CONF_OLD_SECRET_KEYS];
    uint32_t k, n;
    sigset_t set;
    char err[256];
    int sfd;

    a->conf = conf;
    a->shm = shm;
    a->proc = tg_shm_proc(shm, shm_idx);
    a->listen_fd = listen_fd;
    if (tg_shm_check(shm->base, shm->size, err, sizeof(err)) != 0) {
        tg_log(TG_LOG_ERR, 0, "shared memory refused: %s", err);
        exit(2);
    }
    for (k = 0; k < conf->nold_secret_keys && k < TG_CONF_OLD_SECRET_KEYS;
         k++) {
        old_keys[k] = conf->old_secret_keys[k];
    }
    api_opts.secret_key = conf->secret_key;
    api_opts.old_secret_keys = old_keys;
    api_opts.nold_secret_keys = k;
    api_opts.bootstrap_password = conf->bootstrap_password;
    api_opts.code_webhook = conf->code_webhook;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_SETMASK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    a->loop = tg_ev_create(4096);
    if (sfd == -1 || a->loop == NULL ||
        tg_ev_add(a->loop, sfd, EPOLLIN, tg_admin_signal_handler, a) != TG_OK) {
        tg_log(TG_LOG_ERR, errno, "admin start-up failed");
        exit(2);
    }
    if (tg_admin_lock(shm, conf->shutdown_timeout_ms + 5000) != TG_OK) {
        exit(2);
    }
    /* Publishing can fail part-way (a full table); what fitted is live and
     * the error is logged, so admin goes on serving. */
    if (atomic_exchange(&tg_shm_hdr(shm)->dirty, 0) != 0) {
        tg_log(TG_LOG_WARN, 0,
               "the previous admin died holding the shared "
               "tables; repairing them");
        tg_shm_keys_repair(tg_shm_keys(shm));
    }
    /* Quota entries are written every sync interval, so an admin killed
     * at any moment may leave one open; close them whether or not the
     * previous admin was known to have died holding the role. */
    n = tg_shm_quota_repair(tg_shm_quotas(shm));
    if (n > 0) {
        tg_log(TG_LOG_WARN, 0,
               "closed %u quota entries the previous admin left half-written",
               n);
    }
    /* The file (config-only mode) or the database (in the background)
     * is published; "published" is set when master may start workers. */
    if (tg_publish_ep_init(conf, shm) != TG_OK) {
        tg_admin_unlock(shm);
        exit(2);
    }
    if (tg_store_start(a->loop, conf, shm) != TG_OK) {
        atomic_store(&tg_shm_hdr(shm)->published, 1);
    }
    /* From here on, endpoints and groups are the published ones (slot
     * indexes, API-created endpoints included), not the file's. */
    conf = tg_publish_ep_conf();
    if (tg_api_start(a->loop, conf, shm, listen_fd, &api_opts) != TG_OK) {
        tg_log(TG_LOG_ERR, errno, "admin start-up failed");
        tg_admin_unlock(shm);
        exit(2);
    }
    if (tg_agg_init(conf, shm) != TG_OK) {
        tg_admin_unlock(shm);
        exit(2);
    }
    (void)tg_agg_start(a->loop);
    (void)tg_usage_start(a->loop, conf, shm);
    /* Neither the events log nor the health checks are worth refusing to
     * run for: without them admin still serves, drains and publishes. */
    (void)tg_events_init(conf, shm);
    (void)tg_health_start(a->loop, conf, shm);
    a->drain_timer.handler = tg_admin_drain_handler;
    a->drain_timer.data = a;
    a->last_ingest = 0;
    tg_ev_timer_add(a->loop, &a->drain_timer, 0);
    tg_ev_run(a->loop);
    /* Stopping: hand over every record the workers published, then the
     * role, so the next admin starts where this one ended. */
    tg_api_stop();
    tg_health_stop();
    tg_usage_stop();
    tg_agg_stop();
    tg_store_stop();
    while (tg_agg_drain() > 0) {
    }
    while (tg_events_drain() > 0) {
    }
    tg_agg_ingest();
    tg_agg_fini();
    tg_events_fini();
    tg_admin_unlock(shm);
    exit(0);
}
