/*
 * admin/admin.c
 *      Admin process: event loop, admin HTTP listener, /healthz, /status.
 *
 * NOTES
 *      Admin connections are few and short: each request is answered and
 *      the connection closed.  The loop also runs the usage and endpoint
 *      events drains (every TG_ADMIN_DRAIN_MS) and the active health
 *      checks (admin/health.c).  Requests are bounded (16 KB head, no body
 *      accepted yet) and time out after 10 s.  Signals arrive via signalfd:
 *      TERM/INT/QUIT stop the process, USR1 reopens logs.
 */
#include "admin/admin.h"
#include "admin/agg.h"
#include "admin/events.h"
#include "admin/health.h"
#include "admin/store.h"
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

#define TG_ADMIN_HEAD_MAX 16384
#define TG_ADMIN_TIMEOUT  10000
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

typedef struct {
    tg_admin_t *a;
    int fd;
    tg_buf_t in;
    tg_buf_t out;
    tg_ev_timer_t timer;
    bool responded;
} tg_admin_conn_t;

static tg_admin_t tg_admin;


static void
tg_admin_conn_close(tg_admin_conn_t *ac)
{
    tg_ev_timer_del(ac->a->loop, &ac->timer);
    tg_ev_del(ac->a->loop, ac->fd);
    close(ac->fd);
    tg_buf_fini(&ac->in);
    tg_buf_fini(&ac->out);
    free(ac);
}


static void
tg_admin_timeout(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    tg_admin_conn_close(t->data);
}


static void
tg_admin_respond(tg_admin_conn_t *ac, int status, const char *body, size_t len)
{
    char head[256];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                 "content-length: %zu\r\nconnection: close\r\n\r\n",
                 status, tg_http_reason(status), len);
    tg_buf_append(&ac->out, head, (size_t)n);
    tg_buf_append(&ac->out, body, len);
    ac->responded = true;
    tg_ev_mod(ac->a->loop, ac->fd, EPOLLOUT);
}


/* GET /status: the processes and their counters, and the endpoints'
 * availability, from shared memory. */
static void
tg_admin_status(tg_admin_conn_t *ac)
{
    tg_shm_t *shm = ac->a->shm;
    tg_shm_hdr_t *hdr = tg_shm_hdr(shm);
    uint32_t i, cap = tg_shm_capacity(shm, TG_SHM_T_PROCS);
    char *body, *eps;
    size_t n = 0, size = 512 + (size_t)cap * 256, neps = 0;
    int k;

    eps = tg_health_endpoints_json(ac->a->conf, shm, &neps);
    body = eps ? malloc(size + neps) : NULL;
    if (body == NULL) {
        free(eps);
        tg_admin_respond(ac, 503, "{\"error\":\"out of memory\"}", 25);
        return;
    }
    size += neps;
    k = snprintf(body, size,
                 "{\"version\":\"%s\",\"generation\":%llu,\"shm_bytes\":%llu,"
                 "\"layout_version\":%u,\"processes\":[",
                 TG_VERSION, (unsigned long long)atomic_load(&hdr->generation),
                 (unsigned long long)hdr->total_size, hdr->layout_version);
    n += (size_t)k;
    for (i = 0; i < cap; i++) {
        tg_shm_proc_t *p = tg_shm_proc(shm, i);
        int32_t pid = atomic_load(&p->pid);

        if (pid == 0) {
            continue;
        }
        k = snprintf(body + n, size - n,
                     "%s{\"pid\":%d,\"generation\":%llu,\"requests\":%llu,"
                     "\"connections\":%llu,\"active\":%llu,\"inflight\":%llu,"
                     "\"errors\":%llu}",
                     body[n - 1] == '[' ? "" : ",", (int)pid,
                     (unsigned long long)atomic_load(&p->generation),
                     (unsigned long long)atomic_load(&p->requests),
                     (unsigned long long)atomic_load(&p->connections),
                     (unsigned long long)atomic_load(&p->active),
                     (unsigned long long)atomic_load(&p->inflight),
                     (unsigned long long)atomic_load(&p->errors));
        if (k < 0 || (size_t)k >= size - n) {
            break;
        }
        n += (size_t)k;
    }
    k = snprintf(body + n, size - n,
                 "],\"keys\":%u,\"usage\":{\"records\":%llu,\"spooled\":%llu,"
                 "\"skipped\":%llu,\"bad\":%llu},\"endpoints\":%.*s}",
                 atomic_load(&tg_shm_keys(shm)->used),
                 (unsigned long long)tg_agg_stats()->records,
                 (unsigned long long)tg_agg_stats()->spooled,
                 (unsigned long long)tg_agg_stats()->skipped,
                 (unsigned long long)tg_agg_stats()->bad, (int)neps, eps);
    n += (k > 0 && (size_t)k < size - n) ? (size_t)k : 0;
    tg_admin_respond(ac, 200, body, n);
    free(body);
    free(eps);
}


/*
 * /endpoints (GET: availability of every endpoint) and
 * /endpoints/<name>/enable (POST: an operator re-enables an endpoint that
 * a spend cap, a cool-down or its breaker took out).
 */
static void
tg_admin_endpoints(tg_admin_conn_t *ac, const tg_http_req_t *r)
{
    static const tg_str_t prefix = tg_str_lit("/endpoints/");
    static const tg_str_t suffix = tg_str_lit("/enable");
    tg_str_t name;
    char *eps, *body;
    size_t len;
    int k;

    if (tg_str_eq(r->path, tg_str_lit("/endpoints"))) {
        if (r->method != TG_HTTP_GET) {
            tg_admin_respond(ac, 405, "{\"error\":\"method not allowed\"}", 30);
            return;
        }
        eps = tg_health_endpoints_json(ac->a->conf, ac->a->shm, &len);
        body = eps ? malloc(len + 64) : NULL;
        if (body == NULL) {
            free(eps);
            tg_admin_respond(ac, 503, "{\"error\":\"out of memory\"}", 25);
            return;
        }
        k = snprintf(body, len + 64, "{\"now_ms\":%llu,\"endpoints\":%.*s}",
                     (unsigned long long)tg_time_wall_ms(), (int)len, eps);
        tg_admin_respond(ac, 200, body, (size_t)k);
        free(body);
        free(eps);
        return;
    }
    if (r->path.len <= prefix.len + suffix.len ||
        memcmp(r->path.data + r->path.len - suffix.len, suffix.data,
               suffix.len) != 0) {
        tg_admin_respond(ac, 404, "{\"error\":\"not found\"}", 21);
        return;
    }
    if (r->method != TG_HTTP_POST) {
        tg_admin_respond(ac, 405, "{\"error\":\"method not allowed\"}", 30);
        return;
    }
    name = (tg_str_t){r->path.data + prefix.len,
                      r->path.len - prefix.len - suffix.len};
    if (tg_health_reenable(ac->a->conf, ac->a->shm, name) != TG_OK) {
        tg_admin_respond(ac, 404, "{\"error\":\"no such endpoint\"}", 28);
        return;
    }
    tg_admin_respond(ac, 200, "{\"status\":\"enabled\"}", 20);
}


static void
tg_admin_handle(tg_admin_conn_t *ac, const tg_http_req_t *r)
{
    if (r->path.len >= 10 && memcmp(r->path.data, "/endpoints", 10) == 0 &&
        (r->path.len == 10 || r->path.data[10] == '/')) {
        tg_admin_endpoints(ac, r);
    } else if (tg_str_eq(r->path, tg_str_lit("/healthz"))) {
        char body[96];
        int k = snprintf(body, sizeof(body),
                         "{\"status\":\"ok\",\"database\":\"%s\"}",
                         tg_store_state_name());

        tg_admin_respond(ac, 200, body, (size_t)k);
    } else if (tg_str_eq(r->path, tg_str_lit("/status"))) {
        if (r->method != TG_HTTP_GET) {
            tg_admin_respond(ac, 405, "{\"error\":\"method not allowed\"}", 30);
            return;
        }
        tg_admin_status(ac);
    } else {
        tg_admin_respond(ac, 404, "{\"error\":\"not found\"}", 21);
    }
}


static void
tg_admin_conn_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_admin_conn_t *ac = data;
    tg_http_req_t req;
    tg_err_t err;
    ssize_t n;
    int rc;

    (void)loop;
    if (events & (EPOLLERR | EPOLLHUP)) {
        tg_admin_conn_close(ac);
        return;
    }
    if (ac->responded) {
        n = send(fd, ac->out.data + ac->out.pos, tg_buf_len(&ac->out),
                 MSG_NOSIGNAL);
        if (n > 0) {
            tg_buf_consume(&ac->out, (size_t)n);
        }
        if ((n < 0 && errno != EAGAIN) || tg_buf_len(&ac->out) == 0) {
            tg_admin_conn_close(ac);
        }
        return;
    }
    if (tg_buf_reserve(&ac->in, 4096) != TG_OK) {
        tg_admin_respond(ac, 431, "{\"error\":\"request too large\"}", 29);
        return;
    }
    n = recv(fd, ac->in.data + ac->in.last, ac->in.cap - ac->in.last, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        tg_admin_conn_close(ac);
        return;
    }
    if (n < 0) {
        return;
    }
    ac->in.last += (size_t)n;
    rc = tg_http_parse_request(&req, ac->in.data, ac->in.last,
                               TG_ADMIN_HEAD_MAX, &err);
    if (rc == TG_AGAIN) {
        return;
    }
    if (rc == TG_ERROR) {
        char body[256];
        int k = snprintf(body, sizeof(body), "{\"error\":\"bad request\"}");

        tg_admin_respond(ac, err.code, body, (size_t)k);
        return;
    }
    tg_admin_handle(ac, &req);
}


static void
tg_admin_accept_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_admin_t *a = data;
    int i, cfd;

    (void)events;
    for (i = 0; i < 64; i++) {
        tg_admin_conn_t *ac;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd == -1) {
            return;
        }
        ac = calloc(1, sizeof(*ac));
        if (ac == NULL) {
            close(cfd);
            continue;
        }
        ac->a = a;
        ac->fd = cfd;
        tg_buf_init(&ac->in, TG_ADMIN_HEAD_MAX);
        tg_buf_init(&ac->out, 1 << 20);
        ac->timer.handler = tg_admin_timeout;
        ac->timer.data = ac;
        if (tg_ev_add(loop, cfd, EPOLLIN, tg_admin_conn_handler, ac) != TG_OK) {
            close(cfd);
            free(ac);
            continue;
        }
        tg_ev_timer_add(loop, &ac->timer, TG_ADMIN_TIMEOUT);
    }
}


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

    tg_agg_drain();
    tg_events_drain();
    if (tg_ev_now(loop) - a->last_ingest >= TG_ADMIN_SPOOL_MS) {
        a->last_ingest = tg_ev_now(loop);
        tg_agg_ingest();
    }
    tg_ev_timer_add(loop, t, TG_ADMIN_DRAIN_MS);
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
        tg_ev_add(a->loop, sfd, EPOLLIN, tg_admin_signal_handler, a) != TG_OK ||
        (listen_fd != -1 && tg_ev_add(a->loop, listen_fd, EPOLLIN,
                                      tg_admin_accept_handler, a) != TG_OK)) {
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
    /* The file (config-only mode) or the database (in the background)
     * is published; "published" is set when master may start workers. */
    if (tg_store_start(a->loop, conf, shm) != TG_OK) {
        atomic_store(&tg_shm_hdr(shm)->published, 1);
    }
    if (tg_agg_init(conf, shm) != TG_OK) {
        tg_admin_unlock(shm);
        exit(2);
    }
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
    tg_health_stop();
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
