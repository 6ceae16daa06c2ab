/*
 * worker/proxy.h
 *      Upstream transfers with libcurl's multi interface on the worker loop.
 *
 * NOTES
 *      curl's sockets and its timer are registered on the worker's epoll
 *      loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), so one
 *      thread drives clients and upstreams alike.  Responses are streamed:
 *      each piece curl hands us is framed and appended to the client's
 *      output; when that output passes limits.stream_buffer the transfer is
 *      paused (CURL_WRITEFUNC_PAUSE) and resumed once the client drained it.
 *      The request body stays in the connection until the response starts,
 *      so a failure before that point is retried on another endpoint.
 */
#ifndef TG_WORKER_PROXY_H
#define TG_WORKER_PROXY_H

#include "worker/conn.h"

/* Set up the multi handle for <w>.  TG_OK or TG_ERROR (logged). */
int tg_proxy_init(tg_worker_t *w);
void tg_proxy_fini(tg_worker_t *w);

/* Start (or retry) the upstream transfer for <c>'s complete request.  On
 * failure <c> is answered with an error; never blocks. */
void tg_proxy_start(tg_conn_t *c);

/* The client went away: stop <c>'s transfer. */
void tg_proxy_abort(tg_conn_t *c);

/* <c>'s output drained below the bound: resume its paused transfer. */
void tg_proxy_resume(tg_conn_t *c);

/* Transfers running in this worker. */
int tg_proxy_running(const tg_worker_t *w);

#endif /* TG_WORKER_PROXY_H */
