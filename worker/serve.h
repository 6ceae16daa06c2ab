/*
 * worker/serve.h
 *      The request path: read a request from a connection, route it by
 *      path, authenticate, admit, and answer locally or hand it to the
 *      upstream exchange.
 *
 * NOTES
 *      The one place that follows a request from its first byte to its
 *      dispatch, in order: accept (tg_serve_conn_init) -> head (parse,
 *      route by path, authenticate on the head alone) -> body (read,
 *      scan "model" and "stream", model allow-list, limits) -> local
 *      answer or worker/proxy -> worker/request's end -> next request.
 *      It owns the connection's handlers: socket events, the client-side
 *      timer (header, body, idle and send timeouts) and the before-sleep
 *      flush.  Every refusal here is an end (tg_request_end) with its
 *      answer.  Worker only; never blocks.
 */
#ifndef TG_WORKER_SERVE_H
#define TG_WORKER_SERVE_H

#include "worker/conn.h"

/* Set up the request of a newly accepted <c> and install its handlers
 * (tg_worker_t.conn_init).  TG_OK, or TG_ERROR when out of memory. */
int tg_serve_conn_init(tg_conn_t *c);

/* End whatever <c> is doing and close it (tg_worker_t.conn_fini: worker
 * exit, shutdown deadline). */
void tg_serve_conn_fini(tg_conn_t *c);

/* Graceful stop: close the connections that are between requests. */
void tg_serve_close_idle(tg_worker_t *w);

#endif /* TG_WORKER_SERVE_H */
