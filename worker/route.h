/*
 * worker/route.h
 *      Routing by path, client authentication, local answers (/healthz,
 *      /v1/models) and endpoint choice.
 *
 * NOTES
 *      Worker only; never blocks.  Until the shared key table exists the
 *      accepted client keys come from the config file.
 */
#ifndef TG_WORKER_ROUTE_H
#define TG_WORKER_ROUTE_H

#include "worker/conn.h"

/* Build per-worker routing state (the /v1/models body, round-robin
 * counters).  TG_OK or TG_ERROR (logged); startup only. */
int tg_route_init(tg_worker_t *w);
void tg_route_fini(tg_worker_t *w);

/*
 * Route a parsed head: pick the route and API shape, authenticate.
 * Returns TG_OK to go on reading the body, or TG_ERROR after answering.
 */
int tg_route_head(tg_conn_t *c);

/* The request is complete: answer locally or start the proxy. */
void tg_route_request(tg_conn_t *c);

/*
 * Choose an endpoint for <c>'s API style that has not been tried for this
 * request: the best priority tier with an untried endpoint, smooth
 * weighted round-robin inside it.  Returns the index or -1.
 */
int tg_route_pick(tg_conn_t *c);

/* Whether tg_route_pick would find an untried endpoint for <c>. */
bool tg_route_has_candidate(const tg_conn_t *c);

#endif /* TG_WORKER_ROUTE_H */
