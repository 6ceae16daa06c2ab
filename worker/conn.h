/*
 * worker/conn.h
 *      Client connections: the socket, its input and output buffers, its
 *      timer and the before-sleep flush.
 *
 * NOTES
 *      A connection knows nothing of HTTP requests: it reads into c->in,
 *      writes c->out, and hands every socket event, every expiry of its
 *      timer and every flush to the handlers the request path installed
 *      (worker/serve.c), with c->data pointing at its request.  Output is
 *      appended to c->out by the request path and written in the loop's
 *      before-sleep hook (tg_conn_flush_all); EPOLLOUT is armed only when
 *      the socket is full (Redis).  Closing is only closing: whoever
 *      closes a connection has ended its request first.  Structs are
 *      recycled per worker (at most TG_CONN_MAX_FREE kept).
 */
#ifndef TG_WORKER_CONN_H
#define TG_WORKER_CONN_H

#include "core/buf.h"
#include "core/ev.h"
#include "worker/worker.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define TG_CONN_LINGER_TIME 5000 /* lingering close: at most, ms */
#define TG_CONN_LINGER_IDLE 1000 /* ... and between two reads */
#define TG_CONN_LINGER_MAX  1024 /* lingering sockets per worker */

/* Socket event (EPOLL* bits in <events>) on <c>. */
typedef void (*tg_conn_event_pt)(tg_conn_t *c, uint32_t events);
/* <c> is due for writing (queued by tg_conn_want_flush). */
typedef void (*tg_conn_flush_pt)(tg_conn_t *c);

struct tg_conn_s {
    int fd;
    tg_worker_t *w;
    void *data;               /* the request path's state */
    tg_conn_event_pt handler; /* socket events */
    tg_conn_flush_pt flush;   /* before-sleep write */
    tg_conn_t *flush_next;    /* on w->flush_head when in_flush */
    tg_conn_t *prev, *next;   /* on w->all_head */
    bool in_flush;            /* queued for the before-sleep flush */
    bool linger;              /* close lingeringly (tg_conn_close) */
    tg_buf_t in;              /* request bytes (+ pipelined bytes) */
    tg_buf_t out;             /* response bytes not yet written */
    tg_ev_timer_t timer;      /* client-side timeouts */
    struct sockaddr_in6 peer; /* the client's address */
};

/*
 * Accept handler for the listening socket (worker.c registers it).  Each
 * new connection is set up and handed to w->conn_init, which installs
 * the handlers.
 */
void tg_conn_accept_handler(tg_ev_loop_t *loop, int fd, void *data,
                            uint32_t events);

/*
 * Close <c>'s socket, drop it from every list and recycle the struct.
 * When c->linger is set (an error answer went to a client that may still
 * be sending) and the worker is not stopping, the socket is first shut
 * down for writing and its input read and discarded until the client
 * closes, for at most TG_CONN_LINGER_TIME ms in all and
 * TG_CONN_LINGER_IDLE ms of silence (nginx's lingering_close): a close
 * with unread input would send a reset that can destroy the answer
 * before the client reads it.
 */
void tg_conn_close(tg_conn_t *c);

/*
 * Read once from <c>'s socket into c->in, reserving <want> bytes first.
 * Returns TG_OK (bytes read), TG_AGAIN (nothing there), TG_DONE (the
 * client closed its side), TG_DECLINED (c->in is at its bound) or
 * TG_ERROR (a socket error, or out of memory with errno ENOMEM).
 */
int tg_conn_read(tg_conn_t *c, size_t want);

/*
 * Write what <c> has buffered.  Returns TG_OK when c->out is empty,
 * TG_AGAIN when the socket is full (EPOLLOUT armed, and the timer armed
 * for <send_timeout_ms> if it was not running), TG_ERROR when the client
 * is gone.
 */
int tg_conn_write(tg_conn_t *c, uint64_t send_timeout_ms);

/* Queue <c> for writing in the before-sleep hook. */
void tg_conn_want_flush(tg_conn_t *c);

/* Call the flush handler of every queued connection; the before-sleep
 * hook. */
void tg_conn_flush_all(tg_worker_t *w);

#endif /* TG_WORKER_CONN_H */
