/*
 * admin/health.h
 *      Active health checks of the upstream endpoints, and the endpoint
 *      availability view of the admin API.
 *
 * NOTES
 *      Admin only.  Probes run on admin's own event loop through a libcurl
 *      multi handle whose sockets and timer are wired into that loop (as
 *      worker/proxy.c does for requests), so a slow or dead endpoint never
 *      blocks admin.  Each endpoint with health_interval > 0 is probed
 *      every interval, whether or not it has traffic, with a GET of its
 *      health_path carrying its credential; at most
 *      TG_HEALTH_MAX_INFLIGHT probes run at once.  Results go to the
 *      endpoint's shared entry (shm/ep.h): health state, success rate,
 *      latency, time; a failure streak opens the breaker and a good probe
 *      closes it (docs/failover.md).
 */
#ifndef TG_ADMIN_HEALTH_H
#define TG_ADMIN_HEALTH_H

#include "core/conf.h"
#include "core/core.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_HEALTH_MAX_INFLIGHT 16  /* probes running at once */
#define TG_HEALTH_FAILS        2   /* failed probes in a row: unhealthy */
#define TG_HEALTH_WINDOW       10  /* probes in the success rate */
#define TG_HEALTH_DEGRADED_OK  800 /* success rate (x1000) below: degraded */

/* What one probe found (tg_health_judge). */
typedef struct {
    int status;          /* HTTP status, 0 when none */
    int transport;       /* curl error, 0 none */
    uint64_t latency_us; /* start to end of the probe */
    uint32_t timeout_ms; /* the endpoint's health_timeout */
} tg_health_probe_t;

/* An endpoint's probe history, kept by admin. */
typedef struct {
    uint32_t hist;  /* bit i: the probe i probes ago failed */
    uint32_t nhist; /* probes in hist, at most TG_HEALTH_WINDOW */
    uint32_t fails; /* failed probes in a row */
} tg_health_hist_t;

/* Verdict of tg_health_judge. */
typedef struct {
    uint32_t state;    /* TG_EP_HEALTH_* */
    uint32_t ok_milli; /* success rate over the window x 1000 */
    bool ok;           /* the probe succeeded cleanly: may recover */
    bool trip;         /* open the breaker (failure streak, bad key) */
    char reason[96];   /* short cause for the event */
} tg_health_verdict_t;

/*
 * Fold probe <p> into history <h> and judge the endpoint: 2xx, 3xx and
 * 4xx other than 401/403/429 are successes (the endpoint answered and
 * took the credential; 404 means only that the path is not served); 429
 * and 529 are successes that leave it degraded; 401/403 (the credential
 * is refused) make it unhealthy at once; transport errors, timeouts and
 * other 5xx are failures, unhealthy after TG_HEALTH_FAILS in a row.  A
 * success slower than half the timeout, or a success rate under
 * TG_HEALTH_DEGRADED_OK, is degraded.  Pure.
 */
void tg_health_judge(tg_health_hist_t *h, const tg_health_probe_t *p,
                     tg_health_verdict_t *v);

/*
 * Start probing the endpoints of <conf> on <loop>, writing results into
 * <shm>.  TG_OK, or TG_ERROR (logged) when curl cannot be set up; admin
 * then runs without active checks.
 */
int tg_health_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm);

/* Abort the probes in flight and free everything. */
void tg_health_stop(void);

/*
 * Every configured endpoint's counters and availability as a JSON array
 * (GET /endpoints, and "endpoints" in GET /status) in a new buffer the
 * caller frees; its length in <*len>.  NULL when out of memory.
 */
char *tg_health_endpoints_json(const tg_conf_t *conf, tg_shm_t *shm,
                               size_t *len);

/*
 * POST /endpoints/<name>/enable: an operator re-enables endpoint <name>
 * (tg_shm_ep_reenable).  Returns TG_OK, or TG_DECLINED when no endpoint
 * has that name.
 */
int tg_health_reenable(const tg_conf_t *conf, tg_shm_t *shm, tg_str_t name);

#endif /* TG_ADMIN_HEALTH_H */
