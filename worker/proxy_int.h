/*
 * worker/proxy_int.h
 *      Private to the upstream exchange (worker/proxy.c and
 *      worker/proxy_send.c): the exchange and the per-worker proxy state.
 *
 * NOTES
 *      Worker only.  proxy.c runs the exchange (attempts, response head
 *      and body, retries, the hand-over to the request's end);
 *      proxy_send.c builds what an attempt sends (URL, headers, body and
 *      transport options).
 */
#ifndef TG_WORKER_PROXY_INT_H
#define TG_WORKER_PROXY_INT_H

#include "core/buf.h"
#include "core/ev.h"
#include "core/ev_curl.h"
#include "worker/failover.h"
#include "worker/proxy.h"
#include "worker/route.h"
#include "worker/translate.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_PROXY_FREE_EASY    256
#define TG_PROXY_FREE_UP      256
#define TG_PROXY_HEAD_MAX     65536 /* response head bytes from upstream */
#define TG_PROXY_RATE_RETRIES 1     /* retries after rate-limit 429s */
#define TG_PROXY_TRIED_WORDS  (TG_ROUTE_MAX_ENDPOINTS / 64)

typedef struct tg_upstream_s tg_upstream_t;

/* One request's exchange with the upstream, across its attempts. */
struct tg_upstream_s {
    tg_request_t *r; /* the request it serves */
    tg_worker_t *w;
    tg_upstream_t *next;        /* on the free list */
    CURL *easy;                 /* NULL when no transfer */
    struct curl_slist *headers; /* sent upstream */
    int endpoint;               /* endpoint of the current attempt */
    int status;                 /* upstream status of the current attempt */
    bool head_done;             /* final header block seen */
    bool paused;                /* transfer paused for back-pressure */
    bool discard;               /* attempt failed; drop its body and retry */
    bool probe;                 /* admitted as its endpoint's half-open probe */
    bool waited;                /* waited once for a cool-down to end */
    uint8_t rate_retries;       /* retries made after a rate-limit 429 */
    uint8_t hops;               /* attempts begun here, one per endpoint
                                   (r->attempts adds libcurl's re-sends) */
    int coding;                 /* TG_DECODE_* of the response body */
    uint64_t start_us;          /* attempt start */
    uint64_t last_io;           /* loop ms of the last body bytes */
    uint32_t first_byte_timeout_ms; /* the attempt's endpoint's timeouts */
    uint32_t read_timeout_ms;
    tg_ev_timer_t timer; /* first-byte / between-chunk timeout */
    uint64_t tried[TG_PROXY_TRIED_WORDS]; /* bit i: endpoint i tried */
    bool xlate;         /* the attempt's endpoint speaks the other API */
    tg_translate_t *tx; /* translates the committed response, or NULL */
    bool usage_events;  /* usage reads tx's parsed events, not the bytes */
    char *body;         /* body with the model renamed or translated, or NULL */
    size_t body_len;
    unsigned sends;       /* times curl began sending this attempt */
    char last_error[128]; /* cause of the last failed attempt */
    uint16_t errbody_len; /* bytes in errbody */
    char errbody[TG_FAILOVER_BODY_MAX]; /* start of an error body, for
                                           classification */
    /* Kept across recycling (tg_proxy_start clears only what is above):
     * its block is reused by the next exchange. */
    tg_buf_t head; /* response head being collected */
};

struct tg_proxy_s {
    tg_ev_curl_t *m;
    tg_worker_t *w;
    CURL *free_easy[TG_PROXY_FREE_EASY];
    int nfree;
    tg_upstream_t *free_up; /* recycled exchanges */
    int nfree_up;
};


/*
 * Configure <easy> for <u>'s attempt on endpoint <e>: URL, headers, the
 * body (renamed model, translated, usage asked for, as the attempt needs)
 * and <e>'s transport; the response callbacks are the caller's.  TG_OK;
 * TG_DECLINED when the request cannot be sent in <e>'s API (u->last_error names
 * the field, for a 400); TG_ERROR when out of memory or the URL is too long.
 * The caller frees u->headers and u->body (tg_proxy_release).
 */
int tg_proxy_send_setup(tg_upstream_t *u, CURL *easy,
                        const tg_conf_endpoint_t *e);

#endif /* TG_WORKER_PROXY_INT_H */
