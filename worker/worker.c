/*
 * worker/worker.c
 *      Worker process main: loop set-up, signals, graceful stop.
 *
 * NOTES
 *      Signals reach the worker through a signalfd on its loop, so they are
 *      handled between events like any fd.  TERM/INT: stop accepting, close
 *      idle keep-alive connections, let requests in flight finish until
 *      shutdown_timeout, then exit.  QUIT: exit at once.  USR1: reopen logs.
 */
#include "worker/worker.h"
#include "core/core.h"
#include "core/log.h"
#include "worker/conn.h"
#include "worker/limit.h"
#include "worker/proxy.h"
#include "worker/request.h"
#include "worker/route.h"
#include "worker/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

static tg_worker_t tg_worker;


static void
tg_worker_stop_accepting(tg_worker_t *w)
{
    if (w->listen_fd != -1) {
        tg_ev_del(w->loop, w->listen_fd);
        close(w->listen_fd);
        w->listen_fd = -1;
    }
}


static void
tg_worker_signal_handler(tg_ev_loop_t *loop, int fd, void *data,
                         uint32_t events)
{
    tg_worker_t *w = data;
    struct signalfd_siginfo si;

    (void)loop;
    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!w->stopping) {
                tg_log(TG_LOG_INFO, 0, "graceful stop: %u connections open",
                       w->nconns);
                w->stopping = true;
                w->stop_deadline =
                    tg_time_mono_ms() + w->conf->shutdown_timeout_ms;
                tg_worker_stop_accepting(w);
                tg_serve_close_idle(w);
            }
            break;
        case SIGQUIT:
            _exit(0);
        case SIGUSR1:
            tg_log_reopen();
            break;
        default:
            break;
        }
    }
}


static void
tg_worker_before_sleep(tg_ev_loop_t *loop, void *data)
{
    (void)loop;
    tg_conn_flush_all(data);
}


static int
tg_worker_signals_init(tg_worker_t *w)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    /* Only our set stays blocked (master forked us with everything it
     * handles blocked); the signals in it arrive through the signalfd. */
    if (sigprocmask(SIG_SETMASK, &set, NULL) == -1) {
        tg_log(TG_LOG_ERR, errno, "sigprocmask() failed");
        return TG_ERROR;
    }
    w->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->signal_fd == -1) {
        tg_log(TG_LOG_ERR, errno, "signalfd() failed");
        return TG_ERROR;
    }
    signal(SIGPIPE, SIG_IGN);
    return tg_ev_add(w->loop, w->signal_fd, EPOLLIN, tg_worker_signal_handler,
                     w);
}


/* See worker.h. */
void
tg_worker_main(const tg_conf_t *conf, tg_shm_t *shm, uint32_t shm_idx, int slot,
               int listen_fd)
{
    tg_worker_t *w = &tg_worker;
    struct rlimit rl;
    int setsize = 65536;

    w->conf = conf;
    w->shm = shm;
    w->proc = tg_shm_proc(shm, shm_idx);
    w->slot = slot;
    w->pid = (int32_t)getpid();
    w->shm_idx = shm_idx;
    w->ep_mine = tg_shm_ep_mine(shm, shm_idx);
    w->listen_fd = listen_fd;
    w->conn_init = tg_serve_conn_init;
    w->conn_fini = tg_serve_conn_fini;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        setsize = (int)TG_MIN(rl.rlim_cur + 16, 1u << 20);
    }
    w->loop = tg_ev_create(setsize);
    if (w->loop == NULL || tg_worker_signals_init(w) != TG_OK ||
        tg_route_init(w) != TG_OK || tg_limit_init(w) != TG_OK ||
        tg_request_init(w) != TG_OK || tg_proxy_init(w) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "worker start-up failed");
        exit(2);
    }
    if (tg_ev_add(w->loop, listen_fd, EPOLLIN, tg_conn_accept_handler, w) !=
        TG_OK) {
        exit(2);
    }
    tg_ev_set_before_sleep(w->loop, tg_worker_before_sleep, w);
    while (!w->stopping || w->nconns > 0) {
        if (tg_ev_run_once(w->loop, w->stopping ? 100 : -1) == TG_ERROR) {
            break;
        }
        if (w->stopping && tg_time_mono_ms() >= w->stop_deadline) {
            tg_log(TG_LOG_WARN, 0,
                   "shutdown_timeout passed with %u "
                   "connections open; closing them",
                   w->nconns);
            break;
        }
    }
    while (w->all_head != NULL) {
        w->conn_fini(w->all_head);
    }
    tg_proxy_fini(w);
    tg_limit_fini(w);
    tg_request_fini(w);
    tg_route_fini(w);
    while (w->free_conns != NULL) {
        tg_conn_t *c = w->free_conns;

        w->free_conns = c->next;
        free(c);
    }
    tg_ev_destroy(w->loop);
    exit(0);
}
