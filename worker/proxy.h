/*
 * worker/proxy.h
 *      The upstream exchange: a request sent to an upstream endpoint with
 *      libcurl's multi interface on the worker loop, its response streamed
 *      back.
 *
 * NOTES
 *      Responses are streamed: each piece curl hands over is framed
 *      (worker/respond) and appended to the client's output; when that
 *      output passes limits.stream_buffer the transfer is paused
 *      (CURL_WRITEFUNC_PAUSE) and resumed once the client drained it.  The
 *      request body stays in the connection until the response starts, so
 *      a failure before that point is retried on another endpoint.  The
 *      exchange ends its request (tg_request_end) when the transfer is
 *      over, whatever its result; the request's end stops a running
 *      exchange through the cleanup hook set here.
 */
#ifndef TG_WORKER_PROXY_H
#define TG_WORKER_PROXY_H

#include "worker/request.h"

/* Set up the multi handle for <w>.  TG_OK or TG_ERROR (logged). */
int tg_proxy_init(tg_worker_t *w);
void tg_proxy_fini(tg_worker_t *w);

/* Start the upstream exchange for <r>'s complete, admitted request.  On
 * failure <r> is ended with an error answer; never blocks. */
void tg_proxy_start(tg_request_t *r);

/* <r>'s output drained below the bound: resume its paused transfer. */
void tg_proxy_resume(tg_request_t *r);

/* Transfers running in this worker. */
int tg_proxy_running(const tg_worker_t *w);

#endif /* TG_WORKER_PROXY_H */
