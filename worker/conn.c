/*
 * worker/conn.c
 *      Client connections: accept, read and frame requests, timeouts,
 *      buffered output, local and error responses.
 *
 * NOTES
 *      Worker only; nothing here blocks.  A request always starts at
 *      c->in.data[0] (pipelined bytes are moved to the front when the
 *      previous request is done), so the head and the decoded body are at
 *      fixed offsets for the life of the request.  The head is parsed again
 *      once the body is complete because growing c->in may move it; parsing
 *      a head is cheap and this keeps the parsed strings trivially valid.
 *
 *      Timeouts: header_timeout runs from the first byte of a request to the
 *      end of its head (a slowloris client cannot stretch it byte by byte);
 *      body_timeout between body reads; idle_timeout between keep-alive
 *      requests; send_timeout while the client does not drain our output.
 */
#include "worker/conn.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/account.h"
#include "worker/auth.h"
#include "worker/proxy.h"
#include "worker/route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TG_CONN_READ_CHUNK 16384
#define TG_CONN_KEEP_IN    16384 /* input block kept between requests */
#define TG_CONN_MAX_FREE   1024  /* recycled structs kept */
#define TG_CONN_BODY_SLACK 65536 /* room for chunk framing in c->in */

static void tg_conn_io_handler(tg_ev_loop_t *loop, int fd, void *data,
                               uint32_t events);
static void tg_conn_process(tg_conn_t *c);
static void tg_conn_finish(tg_conn_t *c);


static void
tg_conn_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_conn_t *c = t->data;

    (void)loop;
    switch (c->state) {
    case TG_CONN_HEAD:
        if (c->idle) {
            tg_conn_close(c);
            return;
        }
        tg_log(TG_LOG_INFO, 0, "client timed out sending the request head");
        c->close_after = true;
        tg_conn_send_error(c, 408, "timeout_error", NULL,
                           "timed out reading the request head", NULL);
        return;
    case TG_CONN_BODY:
        tg_log(TG_LOG_INFO, 0, "client timed out sending the request body");
        c->close_after = true;
        tg_conn_send_error(c, 408, "timeout_error", NULL,
                           "timed out reading the request body", NULL);
        return;
    default:
        /* The client has not read our output for send_timeout. */
        tg_log(TG_LOG_INFO, 0, "client timed out reading the response");
        tg_conn_close(c);
    }
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
    c->u.endpoint = -1;
    c->timer.handler = tg_conn_timer_handler;
    c->timer.data = c;
    c->lease = -1;
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


/*
 * Close <c>: abort a running upstream transfer, drop it from every list,
 * close the socket and recycle the struct.
 */
void
tg_conn_close(tg_conn_t *c)
{
    tg_worker_t *w = c->w;

    if (c->u.easy != NULL) {
        tg_proxy_abort(c);
    }
    if (c->req_open) {
        if (c->outcome == TG_USAGE_OK && c->state != TG_CONN_RESPOND) {
            c->outcome = TG_USAGE_CLIENT_GONE;
        }
        if (c->broken) {
            c->outcome = TG_USAGE_BROKEN;
        }
        tg_account_finish(c);
    }
    if (c->usage_on) {
        tg_usage_fini(&c->usage);
        c->usage_on = false;
    }
    tg_ev_timer_del(w->loop, &c->timer);
    tg_ev_del(w->loop, c->fd);
    close(c->fd);
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


/*
 * Accept every pending connection on the listening socket.  Past
 * max_connections a connection is accepted and closed at once, so the
 * kernel queue does not fill with clients that would only time out.
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
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                tg_log(TG_LOG_ERR, errno, "accept4() failed");
            }
            return;
        }
        if (w->nconns >= w->conf->max_connections || w->stopping) {
            if (!w->stopping) {
                tg_log(TG_LOG_WARN, 0,
                       "%u connections open; refusing more "
                       "(limits.max_connections)",
                       w->nconns);
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
        if (tg_ev_add(loop, cfd, EPOLLIN | EPOLLRDHUP, tg_conn_io_handler, c) !=
            TG_OK) {
            tg_conn_close(c);
            continue;
        }
        c->req_start_us = tg_time_mono_us();
        tg_ev_timer_add(loop, &c->timer, w->conf->header_timeout_ms);
    }
}


/* Queue <c> for the before-sleep flush. */
void
tg_conn_want_flush(tg_conn_t *c)
{
    if (!c->in_flush) {
        c->in_flush = true;
        c->flush_next = c->w->flush_head;
        c->w->flush_head = c;
    }
}


/*
 * Write what <c> has buffered.  Returns TG_OK when c->out is empty,
 * TG_AGAIN when the socket is full (EPOLLOUT armed), TG_DONE when the
 * connection was closed.
 */
static int
tg_conn_write(tg_conn_t *c)
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
                tg_ev_timer_add(w->loop, &c->timer, w->conf->send_timeout_ms);
            }
            return TG_AGAIN;
        }
        if (errno != EPIPE && errno != ECONNRESET) {
            tg_log(TG_LOG_INFO, errno, "send() to client failed");
        }
        tg_conn_close(c);
        return TG_DONE;
    }
    tg_ev_timer_del(w->loop, &c->timer);
    if (tg_ev_mask(w->loop, c->fd) & EPOLLOUT) {
        tg_ev_mod(w->loop, c->fd, EPOLLIN | EPOLLRDHUP);
    }
    return TG_OK;
}


/* Write <c>'s output and move the request on when it has all gone. */
static void
tg_conn_flush(tg_conn_t *c)
{
    if (tg_conn_write(c) != TG_OK) {
        return;
    }
    if (c->state == TG_CONN_PROXY) {
        if (c->u.paused) {
            tg_proxy_resume(c);
        }
        return;
    }
    if (c->state == TG_CONN_RESPOND) {
        tg_conn_finish(c);
    }
}


/* The before-sleep hook: flush every connection queued for output. */
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
        tg_conn_flush(c);
    }
}


static void
tg_conn_io_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_conn_t *c = data;

    (void)loop;
    (void)fd;
    if (events & (EPOLLERR | EPOLLHUP)) {
        tg_conn_close(c);
        return;
    }
    if ((events & EPOLLRDHUP) &&
        (c->state == TG_CONN_PROXY || c->state == TG_CONN_RESPOND || c->idle)) {
        /* The client went away while we were answering: stop the
         * upstream transfer rather than pay for tokens nobody reads. */
        tg_conn_close(c);
        return;
    }
    if (events & EPOLLOUT) {
        tg_conn_flush(c);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP))) {
        return;
    }
    if (c->state == TG_CONN_HEAD || c->state == TG_CONN_BODY) {
        tg_conn_process(c);
        return;
    }
    /* Readable while we answer: either the client closed (recv gives 0)
     * or it pipelined its next request, which waits in the kernel; stop
     * watching for input until this response is done. */
    {
        char b;
        ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            tg_conn_close(c);
        } else if (n > 0) {
            tg_ev_mod(c->w->loop, c->fd, EPOLLRDHUP);
        }
    }
}


/* Read what the socket has into c->in.  TG_OK (got bytes), TG_AGAIN
 * (nothing more), TG_DONE (closed), TG_DECLINED (buffer bound). */
static int
tg_conn_read(tg_conn_t *c, bool *got)
{
    ssize_t n;
    size_t want;
    int rc;

    *got = false;
    for (;;) {
        want = TG_CONN_READ_CHUNK;
        if (c->state == TG_CONN_BODY && c->req.content_length >= 0 &&
            c->req_end > c->in.last) {
            /* Reserve the whole body in one go: one realloc, not log2. */
            want = TG_MAX(want, c->req_end - c->in.last);
        }
        rc = tg_buf_reserve(&c->in, want);
        if (rc == TG_DECLINED) {
            rc = tg_buf_reserve(&c->in, 1);
        }
        if (rc == TG_DECLINED) {
            return TG_DECLINED;
        }
        if (rc == TG_ERROR) {
            tg_log(TG_LOG_ERR, ENOMEM, "request buffer allocation failed");
            c->close_after = true;
            tg_conn_send_error(c, 503, "overloaded_error", NULL,
                               "out of memory", NULL);
            return TG_DONE;
        }
        n = recv(c->fd, c->in.data + c->in.last, c->in.cap - c->in.last, 0);
        if (n > 0) {
            /* One read per readiness event: level-triggered epoll calls
             * again, and the head is checked between reads so a client
             * cannot push megabytes before its head is even parsed. */
            c->in.last += (size_t)n;
            *got = true;
            return TG_OK;
        }
        if (n == 0) {
            tg_conn_close(c);
            return TG_DONE;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) {
            return *got ? TG_OK : TG_AGAIN;
        }
        if (errno != ECONNRESET) {
            tg_log(TG_LOG_INFO, errno, "recv() from client failed");
        }
        tg_conn_close(c);
        return TG_DONE;
    }
}


/* Whether the request body has fully arrived; decodes chunked input in
 * place.  TG_OK (complete), TG_AGAIN, TG_ERROR (error answered). */
static int
tg_conn_body_step(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    size_t used, out_len;
    tg_err_t err;
    int rc;

    if (!c->req.chunked) {
        return c->in.last >= c->req_end ? TG_OK : TG_AGAIN;
    }
    for (;;) {
        if (c->raw_pos >= c->in.last) {
            return TG_AGAIN;
        }
        rc = tg_http_chunked_decode(&c->chunked, c->in.data + c->raw_pos,
                                    c->in.last - c->raw_pos, &used, &out_len,
                                    &err);
        if (rc == TG_ERROR) {
            c->close_after = true;
            tg_conn_send_error(c, 400, "invalid_request_error", NULL, err.text,
                               NULL);
            return TG_ERROR;
        }
        if (out_len > 0) {
            memmove(c->in.data + c->req.head_len + c->body_len,
                    c->in.data + c->raw_pos, out_len);
            c->body_len += out_len;
        }
        c->raw_pos += used;
        if (c->body_len > conf->body_bytes) {
            c->close_after = true;
            tg_conn_send_error(c, 413, "request_too_large", NULL,
                               "request body is too large", NULL);
            return TG_ERROR;
        }
        if (rc == TG_OK) {
            c->req_end = c->raw_pos;
            return TG_OK;
        }
        if (used == 0) {
            return TG_AGAIN;
        }
    }
}


/* A complete head was parsed: route it and set up body reading. */
static int
tg_conn_head_done(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    tg_http_req_t *r = &c->req;

    c->keep_alive = r->keep_alive;
    c->req_open = true;
    c->outcome = TG_USAGE_OK;
    c->have_key = false;
    c->lease = -1;
    c->model[0] = '\0';
    c->stream_req = false;
    if (tg_route_head(c) != TG_OK) {
        return TG_ERROR;
    }
    if (r->content_length > 0 &&
        (uint64_t)r->content_length > conf->body_bytes) {
        c->close_after = true;
        tg_conn_send_error(c, 413, "request_too_large", NULL,
                           "request body is too large", NULL);
        return TG_ERROR;
    }
    c->body_len = r->content_length > 0 ? (size_t)r->content_length : 0;
    c->req_end = r->head_len + c->body_len;
    c->raw_pos = r->head_len;
    if (r->chunked) {
        c->body_len = 0;
        tg_http_chunked_init(&c->chunked);
    }
    if (r->expect_continue && (r->chunked || r->content_length > 0) &&
        c->in.last == r->head_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        /* Best effort: the socket buffer is empty at this point of a
         * request, and a client that misses it sends the body anyway
         * after its own timeout. */
        if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) < 0) {
            tg_log(TG_LOG_DEBUG, errno, "send(100-continue) failed");
        }
    }
    c->state = TG_CONN_BODY;
    return TG_OK;
}


/* Drive the request as far as the input allows. */
static void
tg_conn_process(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    tg_ev_loop_t *loop = c->w->loop;
    tg_err_t err;
    bool got;
    int rc;

    rc = tg_conn_read(c, &got);
    if (rc == TG_DONE) {
        return;
    }
    if (rc == TG_DECLINED && c->state == TG_CONN_BODY) {
        c->close_after = true;
        tg_conn_send_error(c, 413, "request_too_large", NULL,
                           "request body is too large", NULL);
        return;
    }
    if (c->state == TG_CONN_HEAD) {
        if (c->in.last == 0) {
            return;
        }
        if (c->idle) {
            c->idle = false;
            c->req_start_us = tg_time_mono_us();
            tg_ev_timer_add(loop, &c->timer, conf->header_timeout_ms);
        }
        rc = tg_http_parse_request(&c->req, c->in.data, c->in.last,
                                   conf->header_bytes, &err);
        if (rc == TG_AGAIN) {
            return;
        }
        if (rc == TG_ERROR) {
            c->close_after = true;
            tg_conn_send_error(c, err.code,
                               err.code == 413 ? "request_too_large"
                                               : "invalid_request_error",
                               NULL, err.text, NULL);
            return;
        }
        if (tg_conn_head_done(c) != TG_OK) {
            return;
        }
        tg_ev_timer_add(loop, &c->timer, conf->body_timeout_ms);
    } else if (c->state != TG_CONN_BODY) {
        return;
    } else if (got) {
        tg_ev_timer_add(loop, &c->timer, conf->body_timeout_ms);
    }
    rc = tg_conn_body_step(c);
    if (rc != TG_OK) {
        return;
    }
    tg_ev_timer_del(loop, &c->timer);
    /* Growing c->in may have moved the head: parse it again so every
     * string in c->req points into the current block. */
    rc = tg_http_parse_request(&c->req, c->in.data, c->in.last,
                               conf->header_bytes, &err);
    TG_ASSERT(rc == TG_OK);
    if (c->req.chunked) {
        c->req.content_length = (int64_t)c->body_len;
    }
    /* Pipelined bytes wait in the kernel until this response is done.
     * EPOLLIN stays armed (two epoll_ctl calls per request saved); the
     * handler turns it off only if such bytes actually arrive. */
    tg_route_request(c);
}


/* Start the next request on a kept-alive connection. */
static void
tg_conn_next_request(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    size_t left;

    left = c->in.last > c->req_end ? c->in.last - c->req_end : 0;
    if (left > 0) {
        memmove(c->in.data, c->in.data + c->req_end, left);
        c->in.pos = 0;
        c->in.last = left;
    } else {
        tg_buf_reset(&c->in, TG_CONN_KEEP_IN);
    }
    tg_buf_reset(&c->out, 4096);
    memset(&c->u, 0, sizeof(c->u));
    c->u.endpoint = -1;
    if (c->usage_on) {
        tg_usage_fini(&c->usage);
        c->usage_on = false;
    }
    c->state = TG_CONN_HEAD;
    c->idle = true;
    c->status = 0;
    c->resp_bytes = 0;
    c->body_len = c->raw_pos = c->req_end = 0;
    c->api = TG_API_ANTHROPIC;
    c->route = TG_ROUTE_NONE;
    tg_ev_mod(w->loop, c->fd, EPOLLIN | EPOLLRDHUP);
    tg_ev_timer_add(w->loop, &c->timer, w->conf->idle_timeout_ms);
    if (left > 0) {
        tg_conn_process(c);
    }
}


static void
tg_conn_access_log(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    char line[1024], ip[INET6_ADDRSTRLEN] = "-";
    uint64_t now = tg_time_mono_us();
    const char *ep =
        c->u.endpoint >= 0 ? conf->endpoints[c->u.endpoint].name : "-";
    int n, i, k;

    if (!tg_log_access_enabled()) {
        return;
    }
    if (c->peer.sin6_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&c->peer)->sin_addr, ip,
                  sizeof(ip));
    } else if (c->peer.sin6_family == AF_INET6) {
        inet_ntop(AF_INET6, &c->peer.sin6_addr, ip, sizeof(ip));
    }
    n = snprintf(
        line, sizeof(line),
        "%llu %s %016llx \"%.*s %.*s\" %d %llu %.3f %.3f %s %d %d %s "
        "%s %llu %llu %llu %llu %llu",
        (unsigned long long)(tg_time_wall_ms() / 1000), ip,
        (unsigned long long)c->req_id, (int)TG_MIN(c->req.method_name.len, 16),
        c->req.method_name.data ? c->req.method_name.data : "-",
        (int)TG_MIN(c->req.path.len, 256),
        c->req.path.data ? c->req.path.data : "-", c->status,
        (unsigned long long)c->resp_bytes,
        (double)(now - c->req_start_us) / 1e6,
        c->u.first_byte_us
            ? (double)(c->u.first_byte_us - c->req_start_us) / 1e6
            : 0.0,
        ep, c->u.status, c->u.attempts, c->broken ? "broken" : "ok",
        (c->usage_on && c->usage.model[0]) ? c->usage.model : "-",
        (unsigned long long)(c->usage_on ? c->usage.tokens[TG_TOK_INPUT] : 0),
        (unsigned long long)(c->usage_on ? c->usage.tokens[TG_TOK_OUTPUT] : 0),
        (unsigned long long)(c->usage_on ? c->usage.tokens[TG_TOK_CACHE_READ]
                                         : 0),
        (unsigned long long)(c->usage_on ? c->usage.tokens[TG_TOK_CACHE_5M]
                                         : 0),
        (unsigned long long)(c->usage_on ? c->usage.tokens[TG_TOK_CACHE_1H]
                                         : 0));
    /* Every attempt, in order: "endpoint:status" (1000 + curl code when
     * no status came back). */
    for (i = 0;
         n > 0 && (size_t)n < sizeof(line) - 1 && i < TG_MIN(c->u.attempts, 8);
         i++) {
        k = snprintf(line + n, sizeof(line) - (size_t)n, "%c%s:%u",
                     i == 0 ? ' ' : ',', conf->endpoints[c->u.hist_ep[i]].name,
                     c->u.hist_status[i]);
        n = (k > 0 && (size_t)k < sizeof(line) - (size_t)n)
                ? n + k
                : (int)sizeof(line) - 1;
    }
    if (n > 0 && c->u.attempts == 0 && (size_t)n < sizeof(line) - 3) {
        memcpy(line + n, " -", 2);
        n += 2;
    }
    if (n > 0) {
        tg_log_access(line, TG_MIN((size_t)n, sizeof(line) - 1));
    }
}


/* The response has been written: log it, then keep-alive or close. */
static void
tg_conn_finish(tg_conn_t *c)
{
    tg_worker_t *w = c->w;

    if (c->broken) {
        c->outcome = TG_USAGE_BROKEN;
    }
    tg_account_finish(c);
    tg_conn_access_log(c);
    atomic_fetch_add_explicit(&w->proc->requests, 1, memory_order_relaxed);
    if (c->status >= 500) {
        atomic_fetch_add_explicit(&w->proc->errors, 1, memory_order_relaxed);
    }
    if (c->close_after || c->broken || !c->keep_alive || w->stopping) {
        tg_conn_close(c);
        return;
    }
    tg_conn_next_request(c);
}


/* See conn.h. */
void
tg_conn_proxy_done(tg_conn_t *c)
{
    /* The upstream work is over: give the concurrency slot back now, not
     * after the last bytes reach the client, which may already be sending
     * its next request by the time we would. */
    tg_auth_release(c);
    c->state = TG_CONN_RESPOND;
    tg_conn_want_flush(c);
}


static void
tg_conn_head_append(tg_conn_t *c, int status, const char *content_type,
                    size_t len, const char *extra)
{
    char head[512];
    int n;

    c->status = status;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "content-type: %s\r\n"
                 "content-length: %zu\r\n"
                 "x-tollgate-request-id: %016llx\r\n"
                 "%s%s",
                 status, tg_http_reason(status), content_type, len,
                 (unsigned long long)c->req_id,
                 (c->close_after || !c->keep_alive || c->w->stopping)
                     ? "connection: close\r\n"
                     : "",
                 extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n", status,
                     tg_http_reason(status));
    }
    tg_buf_append(&c->out, head, (size_t)n);
    tg_buf_append(&c->out, "\r\n", 2);
}


/* See conn.h. */
void
tg_conn_send_response(tg_conn_t *c, int status, const char *content_type,
                      const char *body, size_t len)
{
    tg_buf_reset(&c->out, 4096);
    tg_conn_head_append(c, status, content_type, len, NULL);
    if (tg_buf_append(&c->out, body, len) != TG_OK) {
        /* Only local bodies come here and they are far below the bound;
         * failing means no memory: drop the connection. */
        c->close_after = true;
    }
    c->resp_bytes = len;
    c->state = TG_CONN_RESPOND;
    tg_ev_timer_del(c->w->loop, &c->timer);
    tg_conn_want_flush(c);
}


/* See conn.h. */
void
tg_conn_send_error(tg_conn_t *c, int status, const char *type, const char *code,
                   const char *msg, const char *extra)
{
    char body[1024], emsg[512], hdrs[256];
    int n;

    tg_json_escape(emsg, sizeof(emsg), msg, strlen(msg));
    if (c->api == TG_API_OPENAI) {
        n = snprintf(body, sizeof(body),
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\","
                     "\"param\":null,\"code\":%s%s%s}}",
                     emsg, type, code ? "\"" : "", code ? code : "null",
                     code ? "\"" : "");
    } else {
        n = snprintf(body, sizeof(body),
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                     "\"message\":\"%s\"}}",
                     type, emsg);
    }
    if (n < 0 || (size_t)n >= sizeof(body)) {
        n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"error\"}}");
    }
    /* Clients retry 5xx and 429 on their own; telling them not to retry
     * what cannot succeed (a bad key) stops minutes of futile retries. */
    snprintf(hdrs, sizeof(hdrs), "x-should-retry: %s\r\n%s",
             (status == 408 || status == 429 || status >= 500) ? "true"
                                                               : "false",
             extra ? extra : "");
    if (c->state == TG_CONN_HEAD ||
        (c->state == TG_CONN_BODY && c->in.last < c->req_end)) {
        c->close_after = true;
    }
    tg_buf_reset(&c->out, 4096);
    tg_conn_head_append(c, status, "application/json", (size_t)n, hdrs);
    tg_buf_append(&c->out, body, (size_t)n);
    c->resp_bytes = (uint64_t)n;
    c->state = TG_CONN_RESPOND;
    tg_ev_timer_del(c->w->loop, &c->timer);
    tg_conn_want_flush(c);
}


/* Graceful stop: close connections that are between requests. */
void
tg_conn_close_idle(tg_worker_t *w)
{
    tg_conn_t *c = w->all_head, *next;

    while (c != NULL) {
        next = c->next;
        if (c->state == TG_CONN_HEAD && c->in.last == 0) {
            tg_conn_close(c);
        }
        c = next;
    }
}
