/*
 * master/master.c
 *      Supervision loop: fork, reap, respawn with back-off, reload, stop.
 *
 * NOTES
 *      Signal handlers only set flags; every signal master cares about is
 *      blocked except inside sigsuspend(), so the flags are examined with
 *      no race (nginx's scheme).  SIGALRM wakes the loop for delayed
 *      respawns and for the stop deadline.
 *
 *      Every child gets its own entry in the shared proc table for its
 *      lifetime; when master reaps a child it zeroes that entry's gauges, so
 *      a worker killed mid-request cannot leak in-flight counts.
 *
 *      Listening sockets: one SO_REUSEPORT socket per worker slot, opened
 *      here before forking and kept open by master, so a respawned worker
 *      inherits the very socket (and its accept queue) of the one it
 *      replaces.  On reload, new workers take the same sockets while the old
 *      ones stop accepting and drain.
 */
#include "master/master.h"
#include "admin/admin.h"
#include "core/core.h"
#include "core/log.h"
#include "master/proc.h"
#include "shm/shm.h"
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define TG_MASTER_MAX_PROCS   (2 * TG_MASTER_MAX_WORKERS + 4)
#define TG_MASTER_CRASH_LIMIT 8     /* quick deaths in a row before giving up */
#define TG_MASTER_QUICK_MS    10000 /* a death within this uptime is quick */

enum { TG_ROLE_WORKER = 0, TG_ROLE_ADMIN = 1 };

typedef struct {
    pid_t pid;           /* 0 = free entry or waiting for respawn */
    int role;            /* TG_ROLE_* */
    int slot;            /* worker slot; -1 for admin */
    uint32_t shm_idx;    /* entry in the shared proc table */
    uint64_t generation; /* config generation it runs */
    uint64_t started_ms; /* monotonic */
    uint64_t respawn_at; /* monotonic ms; 0 = not waiting */
    int quick_deaths;    /* consecutive deaths soon after start */
    bool exiting;        /* told to stop; do not respawn */
    bool used;           /* entry in use */
} tg_master_proc_t;

static volatile sig_atomic_t tg_master_sig_child;
static volatile sig_atomic_t tg_master_sig_term;
static volatile sig_atomic_t tg_master_sig_quit;
static volatile sig_atomic_t tg_master_sig_hup;
static volatile sig_atomic_t tg_master_sig_usr1;
static volatile sig_atomic_t tg_master_sig_alarm;

static void tg_master_release(tg_master_proc_t *p);

static tg_conf_t *tg_master_conf;
static tg_shm_t tg_master_shm;
static uint64_t tg_master_generation = 1;
static tg_master_proc_t tg_master_procs[TG_MASTER_MAX_PROCS];
static int tg_master_listen_fds[TG_MASTER_MAX_WORKERS];
static int tg_master_nlisten;
static int tg_master_admin_fd = -1;
static bool tg_master_stopping;
static bool tg_master_admin_told; /* admin asked to stop (after workers) */
static uint64_t tg_master_stop_deadline;


static void
tg_master_signal_handler(int signo)
{
    int saved = errno;

    switch (signo) {
    case SIGCHLD:
        tg_master_sig_child = 1;
        break;
    case SIGTERM:
    case SIGINT:
        tg_master_sig_term = 1;
        break;
    case SIGQUIT:
        tg_master_sig_quit = 1;
        break;
    case SIGHUP:
        tg_master_sig_hup = 1;
        break;
    case SIGUSR1:
        tg_master_sig_usr1 = 1;
        break;
    case SIGALRM:
        tg_master_sig_alarm = 1;
        break;
    }
    errno = saved;
}


static int
tg_master_signals_init(sigset_t *blocked)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT,
                               SIGHUP,  SIGUSR1, SIGALRM};
    struct sigaction sa;
    size_t i;

    sigemptyset(blocked);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tg_master_signal_handler;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < TG_NELEMS(sigs); i++) {
        sigaddset(blocked, sigs[i]);
        if (sigaction(sigs[i], &sa, NULL) == -1) {
            tg_log(TG_LOG_ERR, errno, "sigaction(%d) failed", sigs[i]);
            return TG_ERROR;
        }
    }
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (sigprocmask(SIG_BLOCK, blocked, NULL) == -1) {
        tg_log(TG_LOG_ERR, errno, "sigprocmask() failed");
        return TG_ERROR;
    }
    return TG_OK;
}


/* In a new child: master's handlers back to default, mask unchanged. */
static void
tg_master_signals_reset(void)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT,
                               SIGHUP,  SIGUSR1, SIGALRM};
    struct sigaction sa;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < TG_NELEMS(sigs); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
}


/* Stop listening: used when stopping, as no child will be respawned and a
 * socket nobody accepts on would leave new clients hanging instead of
 * refused. */
static void
tg_master_close_sockets(void)
{
    int i;

    for (i = 0; i < tg_master_nlisten; i++) {
        close(tg_master_listen_fds[i]);
    }
    tg_master_nlisten = 0;
    if (tg_master_admin_fd != -1) {
        close(tg_master_admin_fd);
        tg_master_admin_fd = -1;
    }
}


/* Find a free entry in the shared proc table (pid 0 and not reserved). */
static int
tg_master_shm_slot(void)
{
    uint32_t i, cap = tg_shm_capacity(&tg_master_shm, TG_SHM_T_PROCS);

    for (i = 0; i < cap; i++) {
        size_t j;
        bool taken = false;

        for (j = 0; j < TG_MASTER_MAX_PROCS; j++) {
            if (tg_master_procs[j].used && tg_master_procs[j].pid != 0 &&
                tg_master_procs[j].shm_idx == i) {
                taken = true;
                break;
            }
        }
        if (!taken) {
            return (int)i;
        }
    }
    return -1;
}


/* Close, in a child, the listening sockets it does not own. */
static void
tg_master_close_foreign(int keep)
{
    int i;

    for (i = 0; i < tg_master_nlisten; i++) {
        if (tg_master_listen_fds[i] != keep) {
            close(tg_master_listen_fds[i]);
        }
    }
    if (tg_master_admin_fd != -1 && tg_master_admin_fd != keep) {
        close(tg_master_admin_fd);
    }
}


/*
 * Fork the process described by <p>.  In the child this never returns.
 * Returns TG_OK or TG_ERROR (fork failed; a respawn is scheduled).
 */
static int
tg_master_spawn(tg_master_proc_t *p)
{
    tg_shm_proc_t *sp;
    int idx, fd;
    pid_t pid;

    idx = tg_master_shm_slot();
    if (idx < 0) {
        tg_log(TG_LOG_ERR, 0, "no free process slot in shared memory");
        return TG_ERROR;
    }
    p->shm_idx = (uint32_t)idx;
    sp = tg_shm_proc(&tg_master_shm, p->shm_idx);
    fd = (p->role == TG_ROLE_WORKER) ? tg_master_listen_fds[p->slot]
                                     : tg_master_admin_fd;
    pid = fork();
    if (pid == -1) {
        tg_log(TG_LOG_ERR, errno, "fork() failed");
        p->respawn_at = tg_time_mono_ms() + 1000;
        return TG_ERROR;
    }
    if (pid == 0) {
        tg_master_close_foreign(fd);
        /* Signals stay blocked across the fork: the child takes the ones
         * it handles through a signalfd, and one sent before that exists
         * stays pending instead of running master's handler in the child
         * and being lost.  The handlers themselves go back to default. */
        tg_master_signals_reset();
        atomic_store(&sp->pid, (int32_t)getpid());
        if (p->role == TG_ROLE_WORKER) {
            tg_proc_set_title("tollgate: worker %d", p->slot);
            tg_log_set_role("worker", p->slot);
            tg_worker_main(tg_master_conf, &tg_master_shm, p->shm_idx, p->slot,
                           fd);
        } else {
            tg_proc_set_title("tollgate: admin");
            tg_log_set_role("admin", -1);
            tg_admin_main(tg_master_conf, &tg_master_shm, p->shm_idx, fd);
        }
        _exit(0);
    }
    atomic_store(&sp->pid, (int32_t)pid);
    atomic_store(&sp->generation, p->generation);
    atomic_store(&sp->started_ms, tg_time_wall_ms());
    p->pid = pid;
    p->started_ms = tg_time_mono_ms();
    p->respawn_at = 0;
    if (p->role == TG_ROLE_WORKER) {
        tg_log(TG_LOG_INFO, 0, "started worker #%d (pid %d)", p->slot,
               (int)pid);
    } else {
        tg_log(TG_LOG_INFO, 0, "started admin (pid %d)", (int)pid);
    }
    return TG_OK;
}


static tg_master_proc_t *
tg_master_proc_new(int role, int slot)
{
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        tg_master_proc_t *p = &tg_master_procs[i];

        if (!p->used) {
            memset(p, 0, sizeof(*p));
            p->used = true;
            p->role = role;
            p->slot = slot;
            p->generation = tg_master_generation;
            return p;
        }
    }
    tg_log(TG_LOG_ERR, 0, "process table full");
    return NULL;
}


/*
 * At first start, wait (bounded) for admin to publish users and keys, so no
 * worker answers 401 to a valid key because the table is still empty.
 * After a reload the tables are already there, and the new admin only
 * applies the differences.
 */
static void
tg_master_wait_published(tg_master_proc_t *admin)
{
    tg_shm_hdr_t *hdr = tg_shm_hdr(&tg_master_shm);
    uint64_t deadline = tg_time_mono_ms() + 30000;
    int st;

    while (atomic_load(&hdr->published) == 0) {
        if (waitpid(admin->pid, &st, WNOHANG) == admin->pid) {
            /* Reaped here, so tell the loop to respawn it there. */
            tg_log(TG_LOG_ERR, 0, "admin exited while publishing");
            tg_master_release(admin);
            admin->pid = 0;
            admin->respawn_at = tg_time_mono_ms() + 1000;
            return;
        }
        if (tg_time_mono_ms() >= deadline) {
            tg_log(TG_LOG_ERR, 0,
                   "admin has not published the key table "
                   "after 30 s; starting the workers anyway");
            return;
        }
        usleep(10000);
    }
}


/* Start the current generation's admin and workers. */
static void
tg_master_spawn_all(bool first)
{
    tg_master_proc_t *p;
    int i;

    /* Admin always runs: it owns the shared tables and drains the usage
     * ring.  admin.port = 0 only turns its HTTP listener off. */
    p = tg_master_proc_new(TG_ROLE_ADMIN, -1);
    if (p != NULL && tg_master_spawn(p) == TG_OK && first) {
        tg_master_wait_published(p);
    }
    for (i = 0; i < tg_master_conf->workers; i++) {
        p = tg_master_proc_new(TG_ROLE_WORKER, i);
        if (p != NULL) {
            tg_master_spawn(p);
        }
    }
}


/* Send <signo> to every live child; <old_only> spares the current
 * generation.  Marks them exiting unless <signo> is USR1. */
static void
tg_master_signal_children(int signo, bool old_only)
{
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        tg_master_proc_t *p = &tg_master_procs[i];

        if (!p->used) {
            continue;
        }
        if (old_only && p->generation == tg_master_generation) {
            continue;
        }
        if (signo != SIGUSR1) {
            p->exiting = true;
            p->respawn_at = 0;
        }
        if (p->pid > 0 && kill(p->pid, signo) == -1 && errno != ESRCH) {
            tg_log(TG_LOG_WARN, errno, "kill(%d, %d) failed", (int)p->pid,
                   signo);
        }
        if (p->pid == 0 && signo != SIGUSR1) {
            p->used = false;
        }
    }
}


/* Shared table capacities for <conf>. */
static void
tg_master_shm_sizes(const tg_conf_t *conf, tg_shm_sizes_t *sizes)
{
    /* Sizes not set here take their table's default (0). */
    memset(sizes, 0, sizeof(*sizes));
    sizes->procs = TG_MASTER_MAX_PROCS;
    sizes->max_keys = conf->max_keys;
    sizes->users = conf->max_users;
    sizes->endpoints = conf->max_endpoints;
    sizes->groups = conf->max_groups;
    sizes->ring = conf->usage_ring;
    /* One lease per connection a worker may hold. */
    sizes->leases = conf->max_connections;
    sizes->sticky = conf->max_sticky;
}


/* Whether <conf> fits the region created at start. */
static bool
tg_master_shm_fits(const tg_conf_t *conf)
{
    tg_shm_hdr_t *hdr = tg_shm_hdr(&tg_master_shm);

    return tg_shm_keys_capacity_for(conf->max_keys) ==
               hdr->tables[TG_SHM_T_KEYS].capacity &&
           conf->max_users == hdr->tables[TG_SHM_T_USERS].capacity &&
           conf->max_endpoints == hdr->tables[TG_SHM_T_EPS].capacity &&
           conf->max_groups == tg_shm_epconf(&tg_master_shm)->ngroups &&
           conf->usage_ring == hdr->tables[TG_SHM_T_RING].capacity &&
           conf->max_sticky == hdr->tables[TG_SHM_T_STICKY].capacity &&
           conf->max_connections <= hdr->leases_per_proc;
}


static void
tg_master_release(tg_master_proc_t *p)
{
    tg_shm_t *shm = &tg_master_shm;
    tg_shm_proc_t *sp = tg_shm_proc(shm, p->shm_idx);
    uint32_t n;
    int32_t pid = (int32_t)p->pid;

    /* The child cannot give back what it held any more; do it for it so a
     * crash never leaks a gauge, a concurrency slot or an endpoint's
     * in-flight count. */
    atomic_store(&sp->active, 0);
    atomic_store(&sp->inflight, 0);
    if (p->role == TG_ROLE_WORKER) {
        uint32_t lost;

        /* Even a crash ends its requests: one record each, with what was
         * known of their usage (shm/inflight.h). */
        n = tg_shm_inflight_reap(tg_shm_inflight(shm, p->shm_idx),
                                 tg_shm_hdr(shm)->leases_per_proc,
                                 tg_shm_ring(shm), tg_master_conf->spool_dir,
                                 (int32_t)getpid(), &lost);
        if (n > 0 || lost > 0) {
            tg_log(lost ? TG_LOG_ERR : TG_LOG_WARN, 0,
                   "pid %d died with %u requests in flight; their usage "
                   "records were written as worker_crashed%s",
                   (int)pid, n + lost,
                   lost ? " (some lost: spool failed)" : "");
        }
    }
    n = tg_shm_rl_leases_reclaim(
        tg_shm_rl(shm), tg_shm_capacity(shm, TG_SHM_T_RL),
        tg_shm_leases(shm, p->shm_idx), tg_shm_hdr(shm)->leases_per_proc);
    if (n > 0) {
        tg_log(TG_LOG_NOTICE, 0, "released %u concurrency slots of pid %d", n,
               (int)pid);
    }
    n = tg_shm_quota_reclaim(tg_shm_quotas(shm), tg_shm_qres(shm, p->shm_idx),
                             tg_shm_hdr(shm)->leases_per_proc);
    if (n > 0) {
        tg_log(TG_LOG_NOTICE, 0, "released %u quota reservations of pid %d", n,
               (int)pid);
    }
    if (tg_shm_ring_reap(tg_shm_ring(shm), pid) > 0) {
        tg_log(TG_LOG_WARN, 0,
               "pid %d died while publishing a usage record; "
               "that record is lost",
               (int)pid);
    }
    tg_shm_ep_reclaim(tg_shm_table(shm, TG_SHM_T_EPS),
                      tg_shm_capacity(shm, TG_SHM_T_EPS),
                      tg_shm_ep_mine(shm, p->shm_idx));
    /* A half-open probe the child held would keep its endpoint waiting
     * for a verdict that never comes; and an event it was writing would
     * stall admin's drain of the events ring. */
    tg_shm_ring_reap(tg_shm_events(shm), pid);
    n = tg_shm_ep_release_probes(
        tg_shm_table(shm, TG_SHM_T_EPS), tg_shm_capacity(shm, TG_SHM_T_EPS),
        pid, (int32_t)getpid(), tg_time_wall_ms(), tg_shm_events(shm));
    if (n > 0) {
        tg_log(TG_LOG_NOTICE, 0, "released %u half-open probes held by pid %d",
               n, (int)pid);
    }
    /* An admin that died holding the writer role hands it back, and the
     * next one repairs whatever it may have left half-written. */
    if (atomic_compare_exchange_strong(&tg_shm_hdr(shm)->admin_pid, &pid, 0) &&
        p->role == TG_ROLE_ADMIN) {
        atomic_store(&tg_shm_hdr(shm)->dirty, 1);
    }
    atomic_store(&sp->pid, 0);
}


/* Reap every dead child, log why it died and schedule respawns. */
static void
tg_master_reap(void)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        tg_master_proc_t *p = NULL;
        uint64_t now = tg_time_mono_ms(), up;
        char what[32];
        size_t i;

        for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
            if (tg_master_procs[i].used && tg_master_procs[i].pid == pid) {
                p = &tg_master_procs[i];
                break;
            }
        }
        if (p == NULL) {
            continue;
        }
        if (p->role == TG_ROLE_WORKER) {
            snprintf(what, sizeof(what), "worker #%d", p->slot);
        } else {
            snprintf(what, sizeof(what), "admin");
        }
        if (WIFSIGNALED(st)) {
            tg_log(p->exiting ? TG_LOG_INFO : TG_LOG_ERR, 0,
                   "%s (pid %d) killed by signal %d", what, (int)pid,
                   WTERMSIG(st));
        } else {
            tg_log(p->exiting || WEXITSTATUS(st) == 0 ? TG_LOG_INFO
                                                      : TG_LOG_ERR,
                   0, "%s (pid %d) exited with status %d", what, (int)pid,
                   WEXITSTATUS(st));
        }
        tg_master_release(p);
        p->pid = 0;
        if (p->exiting || tg_master_stopping ||
            p->generation != tg_master_generation) {
            p->used = false;
            continue;
        }
        up = now - p->started_ms;
        p->quick_deaths = (up < TG_MASTER_QUICK_MS) ? p->quick_deaths + 1 : 0;
        if (p->quick_deaths > TG_MASTER_CRASH_LIMIT) {
            tg_log(TG_LOG_ERR, 0,
                   "%s keeps dying within %d s of start; not respawning "
                   "it; fix the cause and reload (HUP)",
                   what, TG_MASTER_QUICK_MS / 1000);
            p->used = false;
            continue;
        }
        /* Back off exponentially on quick deaths: 0, 100 ms, 200 ms, ...
         * up to 12.8 s, so a crash loop does not spin the machine. */
        p->respawn_at =
            now + (p->quick_deaths ? (100ull << (p->quick_deaths - 1)) : 0);
        tg_shm_metrics_restart(tg_shm_metrics(&tg_master_shm),
                               p->role != TG_ROLE_WORKER);
    }
}


/* Arm SIGALRM for the nearest respawn or stop deadline. */
static void
tg_master_arm_alarm(void)
{
    struct itimerval it;
    uint64_t now = tg_time_mono_ms(), next = 0, ms;
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        tg_master_proc_t *p = &tg_master_procs[i];

        if (p->used && p->pid == 0 && p->respawn_at != 0 &&
            (next == 0 || p->respawn_at < next)) {
            next = p->respawn_at;
        }
    }
    if (tg_master_stopping && (next == 0 || tg_master_stop_deadline < next)) {
        next = tg_master_stop_deadline;
    }
    memset(&it, 0, sizeof(it));
    if (next != 0) {
        ms = (next > now) ? next - now : 1;
        it.it_value.tv_sec = (time_t)(ms / 1000);
        it.it_value.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    }
    setitimer(ITIMER_REAL, &it, NULL);
}


static void
tg_master_respawn_due(void)
{
    uint64_t now = tg_time_mono_ms();
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        tg_master_proc_t *p = &tg_master_procs[i];

        if (p->used && p->pid == 0 && p->respawn_at != 0 &&
            p->respawn_at <= now && !tg_master_stopping) {
            tg_master_spawn(p);
        }
    }
}


static bool
tg_master_workers_alive(void)
{
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        if (tg_master_procs[i].used && tg_master_procs[i].pid > 0 &&
            tg_master_procs[i].role == TG_ROLE_WORKER) {
            return true;
        }
    }
    return false;
}


/* Graceful stop, first step: every worker, not admin. */
static void
tg_master_signal_workers(int signo)
{
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        tg_master_proc_t *p = &tg_master_procs[i];

        if (p->used && p->role == TG_ROLE_WORKER) {
            p->exiting = true;
            p->respawn_at = 0;
            if (p->pid > 0) {
                kill(p->pid, signo);
            }
        }
    }
}


static bool
tg_master_children_alive(void)
{
    size_t i;

    for (i = 0; i < TG_MASTER_MAX_PROCS; i++) {
        if (tg_master_procs[i].used && tg_master_procs[i].pid > 0) {
            return true;
        }
    }
    return false;
}


/* Open listening sockets for <conf>, reusing ours where the address is
 * unchanged.  TG_OK or TG_ERROR (nothing changed then). */
static int
tg_master_open_sockets(const tg_conf_t *old, const tg_conf_t *conf)
{
    int fds[TG_MASTER_MAX_WORKERS], admin_fd = -1, i, n = 0;
    bool same = old != NULL &&
                strcmp(old->listen_addr, conf->listen_addr) == 0 &&
                old->listen_port == conf->listen_port;
    bool same_admin = old != NULL &&
                      strcmp(old->admin_addr, conf->admin_addr) == 0 &&
                      old->admin_port == conf->admin_port;

    for (i = 0; i < conf->workers; i++) {
        if (same && i < tg_master_nlisten) {
            fds[n++] = tg_master_listen_fds[i];
            continue;
        }
        fds[n] = tg_proc_listen(conf->listen_addr, conf->listen_port, true);
        if (fds[n] == -1) {
            goto failed;
        }
        n++;
    }
    if (conf->admin_port != 0) {
        admin_fd = same_admin ? tg_master_admin_fd
                              : tg_proc_listen(conf->admin_addr,
                                               conf->admin_port, false);
        if (admin_fd == -1) {
            goto failed;
        }
    }
    /* Commit: close what the new config no longer uses. */
    for (i = 0; i < tg_master_nlisten; i++) {
        if (!(same && i < conf->workers)) {
            close(tg_master_listen_fds[i]);
        }
    }
    if (tg_master_admin_fd != -1 && tg_master_admin_fd != admin_fd) {
        close(tg_master_admin_fd);
    }
    memcpy(tg_master_listen_fds, fds, sizeof(int) * (size_t)n);
    tg_master_nlisten = n;
    tg_master_admin_fd = admin_fd;
    return TG_OK;

failed:
    for (i = 0; i < n; i++) {
        if (!(same && i < tg_master_nlisten)) {
            close(fds[i]);
        }
    }
    return TG_ERROR;
}


/* HUP: validate the file again; on success start a new generation. */
static void
tg_master_reload(void)
{
    char err[1024];
    tg_conf_t *conf, *old = tg_master_conf;

    tg_log(TG_LOG_NOTICE, 0, "reloading \"%s\"", old->path);
    conf = tg_conf_create(old->path, err, sizeof(err));
    if (conf == NULL) {
        tg_log(TG_LOG_ERR, 0,
               "reload failed: %s; keeping the running "
               "configuration",
               err);
        return;
    }
    if (!tg_master_shm_fits(conf)) {
        tg_log(TG_LOG_ERR, 0,
               "reload failed: a shm capacity or usage.ring_slots changed, or "
               "limits.max_connections grew; they take effect at the next "
               "restart; keeping the running configuration");
        tg_conf_destroy(conf);
        return;
    }
    if (tg_master_open_sockets(old, conf) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "reload failed: cannot listen on the new "
               "address; keeping the running configuration");
        tg_conf_destroy(conf);
        return;
    }
    if (tg_log_open(conf->error_log, conf->access_log, conf->log_level) !=
        TG_OK) {
        tg_log(TG_LOG_WARN, 0, "cannot open the new log files");
    }
    tg_master_conf = conf;
    /* Children forked from now on compute quota periods in this zone. */
    tg_shm_quota_zone_set(conf->usage_timezone);
    tg_master_generation++;
    atomic_store(&tg_shm_hdr(&tg_master_shm)->generation, tg_master_generation);
    tg_master_spawn_all(false);
    tg_master_signal_children(SIGTERM, true);
    tg_conf_destroy(old);
    tg_log(TG_LOG_NOTICE, 0, "reloaded; generation %llu",
           (unsigned long long)tg_master_generation);
}


static void
tg_master_loop(const sigset_t *blocked)
{
    sigset_t wait_set;

    (void)blocked;
    sigemptyset(&wait_set);
    for (;;) {
        tg_master_arm_alarm();
        sigsuspend(&wait_set);

        if (tg_master_sig_child) {
            tg_master_sig_child = 0;
            tg_master_reap();
        }
        if (tg_master_sig_quit) {
            tg_master_sig_quit = 0;
            tg_log(TG_LOG_NOTICE, 0, "quit: stopping now");
            tg_master_stopping = true;
            tg_master_close_sockets();
            tg_master_signal_children(SIGQUIT, false);
            tg_master_stop_deadline = tg_time_mono_ms() + 2000;
        }
        if (tg_master_sig_term) {
            tg_master_sig_term = 0;
            if (!tg_master_stopping) {
                tg_log(TG_LOG_NOTICE, 0,
                       "graceful stop: draining for up to "
                       "%u ms",
                       tg_master_conf->shutdown_timeout_ms);
                tg_master_stopping = true;
                tg_master_close_sockets();
                tg_master_signal_workers(SIGTERM);
                /* Workers enforce the deadline themselves; master kills
                 * what is still there a little after it. */
                tg_master_stop_deadline = tg_time_mono_ms() +
                                          tg_master_conf->shutdown_timeout_ms +
                                          2000;
            }
        }
        if (tg_master_sig_hup) {
            tg_master_sig_hup = 0;
            if (!tg_master_stopping) {
                tg_master_reload();
            }
        }
        if (tg_master_sig_usr1) {
            tg_master_sig_usr1 = 0;
            tg_log_reopen();
            tg_log(TG_LOG_NOTICE, 0, "reopened logs");
            tg_master_signal_children(SIGUSR1, false);
        }
        if (tg_master_sig_alarm) {
            tg_master_sig_alarm = 0;
        }
        if (tg_master_stopping) {
            if (!tg_master_children_alive()) {
                return;
            }
            /* Admin goes last: it drains the usage records of the streams
             * the workers finished while stopping. */
            if (!tg_master_workers_alive() && !tg_master_admin_told) {
                tg_master_admin_told = true;
                tg_master_signal_children(SIGTERM, false);
            }
            if (tg_time_mono_ms() >= tg_master_stop_deadline) {
                tg_log(TG_LOG_WARN, 0,
                       "stop deadline passed; killing the "
                       "remaining processes");
                tg_master_signal_children(SIGKILL, false);
                tg_master_stop_deadline = tg_time_mono_ms() + 5000;
            }
        } else {
            tg_master_respawn_due();
        }
    }
}


/* See master.h. */
int
tg_master_nofile(const tg_conf_t *conf, char *warn, size_t len)
{
    uint64_t need, conns, max_files = 0;
    struct rlimit rl;
    FILE *fp;

    warn[0] = '\0';
    conns = conf->max_connections > 256 ? conf->max_connections : 256;
    need = conns * 2 + TG_MASTER_NOFILE_MARGIN;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        snprintf(warn, len, "getrlimit(RLIMIT_NOFILE) failed (%d: %s)", errno,
                 strerror(errno));
        return 1024;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit want = rl;

        want.rlim_cur = need;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            want.rlim_max = need;
        }
        if (setrlimit(RLIMIT_NOFILE, &want) == -1 &&
            rl.rlim_cur < rl.rlim_max) {
            /* Not allowed past the hard limit: take what there is. */
            want.rlim_cur = rl.rlim_max;
            want.rlim_max = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &want);
        }
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        snprintf(warn, len,
                 "the descriptor limit is %llu, but limits.max_connections = "
                 "%u needs %llu per worker (two per connection plus %d); "
                 "raise it (ulimit -n, LimitNOFILE=) or lower "
                 "limits.max_connections, or connections will be refused "
                 "when descriptors run out",
                 (unsigned long long)rl.rlim_cur, conf->max_connections,
                 (unsigned long long)need, TG_MASTER_NOFILE_MARGIN);
    } else if ((fp = fopen("/proc/sys/fs/file-max", "r")) != NULL) {
        if (fscanf(fp, "%llu", (unsigned long long *)&max_files) == 1 &&
            max_files < need * (uint64_t)conf->workers) {
            snprintf(warn, len,
                     "fs.file-max is %llu, less than %d workers x %llu "
                     "descriptors that limits.max_connections = %u may use",
                     (unsigned long long)max_files, conf->workers,
                     (unsigned long long)need, conf->max_connections);
        }
        fclose(fp);
    }
    return (int)TG_MIN(rl.rlim_cur, (rlim_t)(1 << 30));
}


/*
 * Run master: see master.h.  Startup failures are fatal with a message on
 * the error log (stderr until the log is open).
 */
int
tg_master_run(tg_conf_t *conf, bool daemonize)
{
    tg_shm_sizes_t sizes;
    sigset_t blocked;
    char err[256], warn[512];
    int nofile;
    int rc = 1;

    tg_master_conf = conf;
    tg_shm_quota_zone_set(conf->usage_timezone);
    if (tg_log_open(conf->error_log, conf->access_log, conf->log_level) !=
        TG_OK) {
        return 1;
    }
    tg_log_set_role("master", -1);
    nofile = tg_master_nofile(conf, warn, sizeof(warn));
    if (warn[0] != '\0') {
        tg_log(TG_LOG_WARN, 0, "%s", warn);
        fprintf(stderr, "tollgate: warning: %s\n", warn);
    }
    if (tg_master_open_sockets(NULL, conf) != TG_OK) {
        return 1;
    }
    if (daemonize && tg_proc_daemonize() != TG_OK) {
        return 1;
    }
    if (tg_proc_pidfile_write(conf->pid_file) != TG_OK) {
        return 1;
    }
    tg_master_shm_sizes(conf, &sizes);
    if (tg_shm_create(&tg_master_shm, &sizes, err, sizeof(err)) != 0) {
        tg_log(TG_LOG_ERR, 0, "shared memory: %s", err);
        goto done;
    }
    if (tg_master_signals_init(&blocked) != TG_OK) {
        goto done;
    }
    tg_proc_set_title("tollgate: master -c %s", conf->path);
    tg_log(TG_LOG_NOTICE, 0,
           "tollgate %s listening on %s:%d with %d workers (admin %s:%d, "
           "%zu bytes of shared memory, %d fds)",
           TG_VERSION, conf->listen_addr, conf->listen_port, conf->workers,
           conf->admin_addr, conf->admin_port, tg_master_shm.size, nofile);
    tg_master_spawn_all(true);
    tg_master_loop(&blocked);
    tg_log(TG_LOG_NOTICE, 0, "stopped");
    rc = 0;

done:
    unlink(tg_master_conf->pid_file);
    tg_shm_destroy(&tg_master_shm);
    tg_conf_destroy(tg_master_conf);
    return rc;
}
