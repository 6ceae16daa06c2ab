/*
 * worker/conn.c
 *      Client connections: accept, read, buffered write, recycling.
 *
 * NOTES
 *      Worker only; nothing here blocks and nothing here knows HTTP.  See
 *      conn.h.  A connection's struct is recycled, so no pointer to it may
 *      outlive tg_conn_close.
 */
#include "worker/conn.h"
#include "core/core.h"
#include "core/log.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TG_CONN_MAX_FREE   1024  /* recycled structs kept */
#define TG_CONN_BODY_SLACK 65536 /* room for chunk framing in c->in */


static void
tg_conn_io_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_conn_t *c = data;

    (void)loop;
    (void)fd;
    c->handler(c, events);
}


static tg_conn_t *
tg_conn_create(tg_worker_t *w, int fd)
{
    tg_conn_t *c = w->free_conns;

    if (c != NULL) {
        w->free_conns = c->next;
        w->nfree--;
    } else {
        c = malloc(sizeof(*c));
        if (c == NULL) {
            return NULL;
        }
    }
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->w = w;
    tg_buf_init(&c->in, w->conf->header_bytes + w->conf->body_bytes +
                            TG_CONN_BODY_SLACK);
    tg_buf_init(&c->out, w->conf->stream_buffer + 65536);
    c->next = w->all_head;
    if (w->all_head != NULL) {
        w->all_head->prev = c;
    }
    w->all_head = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->proc->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->proc->connections, 1, memory_order_relaxed);
    return c;
}


/* A socket in lingering close, detached from its connection. */
typedef struct {
    int fd;
    uint64_t deadline; /* loop ms: closed by then whatever happens */
    tg_ev_timer_t timer;
} tg_conn_linger_t;

static unsigned tg_conn_nlinger; /* sockets lingering in this worker */


static void
tg_conn_linger_end(tg_ev_loop_t *loop, tg_conn_linger_t *l)
{
    tg_ev_timer_del(loop, &l->timer);
    tg_ev_del(loop, l->fd);
    close(l->fd);
    free(l);
    tg_conn_nlinger--;
}


static void
tg_conn_linger_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_conn_linger_end(loop, t->data);
}


/* Read and drop what the client still sends; end at its close. */
static void
tg_conn_linger_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    static char sink[16384];
    tg_conn_linger_t *l = data;
    uint64_t now = tg_ev_now(loop);
    ssize_t n;
    int i;

    (void)events;
    for (i = 0; i < 16; i++) {
        n = recv(fd, sink, sizeof(sink), 0);
        if (n > 0) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        tg_conn_linger_end(loop, l);
        return;
    }
    if (now >= l->deadline) {
        tg_conn_linger_end(loop, l);
        return;
    }
    tg_ev_timer_add(loop, &l->timer,
                    TG_MIN(TG_CONN_LINGER_IDLE, l->deadline - now));
}


/*
 * Hand <c>'s socket over to a lingering close: shut down its write side
 * and watch it on its own.  Returns TG_OK when the socket now lingers
 * (c->fd is -1), TG_ERROR when it must simply be closed.
 */
static int
tg_conn_linger_start(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_conn_linger_t *l;

    if (w->stopping || tg_conn_nlinger >= TG_CONN_LINGER_MAX) {
        return TG_ERROR;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return TG_ERROR;
    }
    if (shutdown(c->fd, SHUT_WR) == -1) {
        /* The client is gone already: nothing to linger for. */
        free(l);
        return TG_ERROR;
    }
    tg_ev_del(w->loop, c->fd);
    l->fd = c->fd;
    l->deadline = tg_ev_now(w->loop) + TG_CONN_LINGER_TIME;
    l->timer.handler = tg_conn_linger_timer_handler;
    l->timer.data = l;
    if (tg_ev_add(w->loop, l->fd, EPOLLIN | EPOLLRDHUP, tg_conn_linger_handler,
                  l) != TG_OK) {
        free(l);
        return TG_ERROR;
    }
    tg_ev_timer_add(w->loop, &l->timer, TG_CONN_LINGER_IDLE);
    tg_conn_nlinger++;
    c->fd = -1;
    return TG_OK;
}


/* See conn.h. */
void
tg_conn_close(tg_conn_t *c)
{
    tg_worker_t *w = c->w;

    tg_ev_timer_del(w->loop, &c->timer);
    if (!c->linger || tg_buf_len(&c->out) > 0 ||
        tg_conn_linger_start(c) != TG_OK) {
        tg_ev_del(w->loop, c->fd);
        close(c->fd);
    }
    if (c->in_flush) {
        tg_conn_t **pp = &w->flush_head;

        while (*pp != NULL && *pp != c) {
            pp = &(*pp)->flush_next;
        }
        if (*pp == c) {
            *pp = c->flush_next;
        }
        c->in_flush = false;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->all_head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    tg_buf_fini(&c->in);
    tg_buf_fini(&c->out);
    w->nconns--;
    atomic_fetch_sub_explicit(&w->proc->active, 1, memory_order_relaxed);
    if (w->nfree < TG_CONN_MAX_FREE) {
        c->next = w->free_conns;
        w->free_conns = c;
        w->nfree++;
    } else {
        free(c);
    }
}


#define TG_CONN_ACCEPT_PAUSE_MS 100  /* accepts off after EMFILE/ENFILE */
#define TG_CONN_ACCEPT_LOG_MS   1000 /* one warning per interval */

/*
 * Accept pressure, per worker process (one thread): out of descriptors
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) turns accepting off for
 * TG_CONN_ACCEPT_PAUSE_MS, as nginx does, instead of spinning on a
 * listening socket that stays readable; refusals and pauses are logged at
 * most once per TG_CONN_ACCEPT_LOG_MS with how many there were.
 */
static struct {
    tg_ev_timer_t timer; /* re-enables accepting */
    tg_worker_t *w;
    uint64_t paused;      /* pauses since the last warning */
    uint64_t refused;     /* over max_connections since the last warning */
    uint64_t paused_log;  /* loop ms of the last pause warning */
    uint64_t refused_log; /* loop ms of the last refusal warning */
    int err;              /* errno of the last pause */
} tg_conn_accept;


static void
tg_conn_accept_resume(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_worker_t *w = t->data;

    if (w->listen_fd != -1 && !w->stopping) {
        (void)tg_ev_mod(loop, w->listen_fd, EPOLLIN);
    }
}


/* Out of descriptors or memory for a new connection: stop accepting for
 * a while (the queued clients wait in the kernel backlog). */
static void
tg_conn_accept_pause(tg_ev_loop_t *loop, tg_worker_t *w, int fd, int err)
{
    uint64_t now = tg_ev_now(loop);

    tg_conn_accept.paused++;
    tg_conn_accept.err = err;
    if (tg_conn_accept.paused_log == 0 ||
        now - tg_conn_accept.paused_log >= TG_CONN_ACCEPT_LOG_MS) {
        tg_log(TG_LOG_WARN, err,
               "accept4() failed %llu time(s) for want of descriptors or "
               "memory, with %u connections open; accepting paused for "
               "%d ms each time (raise ulimit -n or lower "
               "limits.max_connections)",
               (unsigned long long)tg_conn_accept.paused, w->nconns,
               TG_CONN_ACCEPT_PAUSE_MS);
        tg_conn_accept.paused = 0;
        tg_conn_accept.paused_log = now;
    }
    if (tg_ev_mod(loop, fd, 0) != TG_OK) {
        return;
    }
    tg_conn_accept.timer.handler = tg_conn_accept_resume;
    tg_conn_accept.timer.data = w;
    tg_ev_timer_add(loop, &tg_conn_accept.timer, TG_CONN_ACCEPT_PAUSE_MS);
}


/* A connection past max_connections was closed at once: count it and
 * warn at most once per interval. */
static void
tg_conn_accept_refused(tg_ev_loop_t *loop, tg_worker_t *w)
{
    uint64_t now = tg_ev_now(loop);

    tg_conn_accept.refused++;
    if (tg_conn_accept.refused_log == 0 ||
        now - tg_conn_accept.refused_log >= TG_CONN_ACCEPT_LOG_MS) {
        tg_log(TG_LOG_WARN, 0,
               "%u connections open; refused %llu more "
               "(limits.max_connections)",
               w->nconns, (unsigned long long)tg_conn_accept.refused);
        tg_conn_accept.refused = 0;
        tg_conn_accept.refused_log = now;
    }
}


/*
 * Accept every pending connection on the listening socket.  Past
 * max_connections a connection is accepted and closed at once, so the
 * kernel queue does not fill with clients that would only time out.
 * Out of descriptors, accepting pauses (tg_conn_accept_pause).
 */
void
tg_conn_accept_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_worker_t *w = data;
    int i, cfd, one = 1;

    (void)events;
    for (i = 0; i < 256; i++) {
        struct sockaddr_in6 sa;
        socklen_t len = sizeof(sa);
        tg_conn_t *c;

        cfd = accept4(fd, (struct sockaddr *)&sa, &len,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                tg_conn_accept_pause(loop, w, fd, errno);
            } else if (errno != EAGAIN && errno != EINTR &&
                       errno != ECONNABORTED) {
                tg_log(TG_LOG_ERR, errno, "accept4() failed");
            }
            return;
        }
        if (w->nconns + tg_conn_nlinger >= w->conf->max_connections ||
            w->stopping) {
            if (!w->stopping) {
                tg_conn_accept_refused(loop, w);
            }
            close(cfd);
            continue;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = tg_conn_create(w, cfd);
        if (c == NULL) {
            tg_log(TG_LOG_ERR, errno, "malloc(conn) failed");
            close(cfd);
            continue;
        }
        memcpy(&c->peer, &sa, TG_MIN((size_t)len, sizeof(c->peer)));
        if (w->conn_init(c) != TG_OK) {
            tg_conn_close(c);
            continue;
        }
        if (tg_ev_add(loop, cfd, EPOLLIN | EPOLLRDHUP, tg_conn_io_handler, c) !=
            TG_OK) {
            w->conn_fini(c);
            tg_conn_close(c);
        }
    }
}


/* See conn.h. */
void
tg_conn_want_flush(tg_conn_t *c)
{
    if (!c->in_flush) {
        c->in_flush = true;
        c->flush_next = c->w->flush_head;
        c->w->flush_head = c;
    }
}


/* See conn.h. */
int
tg_conn_read(tg_conn_t *c, size_t want)
{
    ssize_t n;
    int rc;

    rc = tg_buf_reserve(&c->in, want);
    if (rc == TG_DECLINED) {
        rc = tg_buf_reserve(&c->in, 1);
    }
    if (rc == TG_DECLINED) {
        return TG_DECLINED;
    }
    if (rc == TG_ERROR) {
        tg_log(TG_LOG_ERR, ENOMEM, "request buffer allocation failed");
        errno = ENOMEM;
        return TG_ERROR;
    }
    for (;;) {
        n = recv(c->fd, c->in.data + c->in.last, c->in.cap - c->in.last, 0);
        if (n > 0) {
            c->in.last += (size_t)n;
            return TG_OK;
        }
        if (n == 0) {
            return TG_DONE;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) {
            return TG_AGAIN;
        }
        if (errno != ECONNRESET) {
            tg_log(TG_LOG_INFO, errno, "recv() from client failed");
        }
        return TG_ERROR;
    }
}


/* See conn.h. */
int
tg_conn_write(tg_conn_t *c, uint64_t send_timeout_ms)
{
    tg_worker_t *w = c->w;
    ssize_t n;

    while (tg_buf_len(&c->out) > 0) {
        n = send(c->fd, c->out.data + c->out.pos, tg_buf_len(&c->out),
                 MSG_NOSIGNAL);
        if (n > 0) {
            tg_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && errno == EAGAIN) {
            tg_ev_mod(w->loop, c->fd, EPOLLOUT | EPOLLRDHUP);
            if (!tg_ev_timer_armed(&c->timer)) {
                tg_ev_timer_add(w->loop, &c->timer, send_timeout_ms);
            }
            return TG_AGAIN;
        }
        if (errno != EPIPE && errno != ECONNRESET) {
            tg_log(TG_LOG_INFO, errno, "send() to client failed");
        }
        return TG_ERROR;
    }
    tg_ev_timer_del(w->loop, &c->timer);
    if (tg_ev_mask(w->loop, c->fd) & EPOLLOUT) {
        tg_ev_mod(w->loop, c->fd, EPOLLIN | EPOLLRDHUP);
    }
    return TG_OK;
}


/* See conn.h. */
void
tg_conn_flush_all(tg_worker_t *w)
{
    tg_conn_t *c;

    while ((c = w->flush_head) != NULL) {
        w->flush_head = c->flush_next;
        c->in_flush = false;
        /* A connection blocked on EPOLLOUT is flushed by its handler. */
        if (tg_ev_mask(w->loop, c->fd) & EPOLLOUT) {
            continue;
        }
        c->flush(c);
    }
}
