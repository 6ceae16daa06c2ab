/*
 * worker/conn.h
 *      Client connections: HTTP/1.1 server side, timeouts, output.
 *
 * NOTES
 *      A connection moves through HEAD (reading the request head), BODY
 *      (reading the body), PROXY (upstream transfer running), RESPOND
 *      (writing a response that is complete in c->out) and back to HEAD on
 *      keep-alive.  The request head and body stay in c->in until the
 *      response is finished, so a failed upstream attempt can be retried.
 *      Output is appended to c->out and written in the loop's before-sleep
 *      hook; EPOLLOUT is armed only when the socket is full.
 *      The struct is public to the worker modules (proxy and route work on
 *      it directly), not to the rest of the program.
 */
#ifndef TG_WORKER_CONN_H
#define TG_WORKER_CONN_H

#include "core/buf.h"
#include "core/ev.h"
#include "core/http.h"
#include "worker/usage.h"
#include "worker/worker.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

enum { TG_CONN_HEAD = 0, TG_CONN_BODY, TG_CONN_PROXY, TG_CONN_RESPOND };

/* API shape of errors on this request. */
enum { TG_API_ANTHROPIC = 0, TG_API_OPENAI = 1 };

enum {
    TG_ROUTE_NONE = 0,
    TG_ROUTE_MESSAGES,
    TG_ROUTE_COUNT_TOKENS,
    TG_ROUTE_CHAT,
    TG_ROUTE_MODELS,
    TG_ROUTE_HEALTH
};

#define TG_UPSTREAM_TRIED_WORDS 4    /* 256 endpoints, the config's limit */
#define TG_UPSTREAM_ERRBODY     1024 /* TG_FAILOVER_BODY_MAX */

/* Per-request upstream state; lives in the connection, reset per request. */
typedef struct {
    void *easy;              /* CURL *, NULL when no transfer */
    void *headers;           /* struct curl_slist * sent upstream */
    int endpoint;            /* index in conf->endpoints, -1 none */
    int attempts;            /* attempts made */
    uint16_t hist_ep[8];     /* endpoint of each of the first attempts */
    uint16_t hist_status[8]; /* its status, or 1000 + curl code */
    int status;              /* upstream status of the current attempt */
    int64_t content_length;  /* from the upstream, -1 when absent */
    bool head_done;          /* final header block seen */
    bool committed;          /* response head written to c->out */
    bool chunked;            /* we frame the body with chunked encoding */
    bool paused;             /* transfer paused for back-pressure */
    bool discard;            /* attempt failed; drop its body and retry */
    bool stream;             /* text/event-stream response */
    int coding;              /* TG_DECODE_* from content-encoding */
    uint64_t start_us;       /* attempt start */
    uint64_t first_byte_us;  /* response head from upstream, 0 = none */
    uint64_t last_io;        /* loop ms of the last body bytes */
    uint64_t bytes;          /* body bytes from upstream */
    tg_ev_timer_t timer;     /* first-byte / between-chunk timeout */
    char last_error[128];    /* curl's error text of the last attempt */
    /* Routing (worker/route.c, tg_proxy_start).  Endpoints tried for this
     * request, bit i for endpoint i; the attempt's endpoint's timeouts;
     * the request body with the model renamed for that endpoint (NULL:
     * the client's body is sent), freed when the attempt ends. */
    uint64_t tried[TG_UPSTREAM_TRIED_WORDS];
    uint32_t first_byte_timeout_ms;
    uint32_t read_timeout_ms;
    char *body;
    size_t body_len;
    /* Failover (worker/proxy.c, worker/failover.h). */
    bool probe;           /* admitted as its endpoint's half-open probe;
                             set by routing (tg_shm_ep_admit) */
    uint8_t rate_retries; /* retries made after a rate-limit 429 */
    uint16_t errbody_len; /* bytes in errbody */
    char errbody[TG_UPSTREAM_ERRBODY]; /* start of an error body (status
                                          >= 400), for classification */
} tg_upstream_t;

struct tg_conn_s {
    int fd;
    int state; /* TG_CONN_* */
    tg_worker_t *w;
    tg_conn_t *flush_next;  /* on w->flush_head when in_flush */
    tg_conn_t *prev, *next; /* on w->all_head */
    bool in_flush;
    bool keep_alive;     /* keep the connection after this response */
    bool close_after;    /* close once c->out is written */
    bool idle;           /* between requests (no byte read yet) */
    bool broken;         /* stream failed mid-way: close, no end */
    int api;             /* TG_API_* */
    int route;           /* TG_ROUTE_* */
    tg_buf_t in;         /* request head + body (+ pipelined bytes) */
    tg_buf_t out;        /* response bytes not yet written */
    tg_ev_timer_t timer; /* client-side timeouts */
    tg_http_req_t req;   /* parsed head; strings point into in */
    tg_http_chunked_t chunked;
    size_t body_len;       /* decoded body bytes after the head */
    size_t raw_pos;        /* first undecoded byte in in */
    size_t req_end;        /* end of this request in in */
    int status;            /* status sent to the client */
    uint64_t req_start_us; /* first byte of the request */
    uint64_t resp_bytes;   /* body bytes sent to the client */
    uint64_t req_id;
    tg_upstream_t u;
    bool req_open;     /* a request is under way: account it once */
    int outcome;       /* TG_USAGE_* for the usage record */
    bool have_key;     /* key found in the shared table */
    uint32_t key_slot; /* its slot (and rate-limit entry) */
    tg_shm_key_t key;  /* consistent copy of the key entry */
    int lease;         /* concurrency lease index, -1 none */
    bool stream_req;   /* the request asked for a stream */
    char model[64];    /* model named by the request body */
    size_t model_off;  /* the "model" value's JSON text in the body: */
    size_t model_vlen; /* offset and length, 0 = not a plain string */
    uint64_t session;  /* conversation key for sticky routing, 0 = none */
    bool usage_on;     /* usage observes this response */
    tg_usage_t usage;  /* tokens seen in the response */
    struct sockaddr_in6 peer;
};

/* Accept handler for the listening socket (worker.c registers it). */
void tg_conn_accept_handler(tg_ev_loop_t *loop, int fd, void *data,
                            uint32_t events);

/* Close <c>, abort its transfer and recycle the struct. */
void tg_conn_close(tg_conn_t *c);

/* Queue <c> for writing in the before-sleep hook. */
void tg_conn_want_flush(tg_conn_t *c);

/* Write every queued connection's output; the before-sleep hook. */
void tg_conn_flush_all(tg_worker_t *w);

/*
 * Answer the current request with an error in the request's API shape:
 * <status>, the API's error <type> (e.g. "authentication_error"), the
 * OpenAI <code> (may be NULL) and <msg>.  Extra header lines (each ending
 * in CRLF) may be given in <extra>.  The response replaces anything not
 * yet committed.  Worker only; never blocks.
 */
void tg_conn_send_error(tg_conn_t *c, int status, const char *type,
                        const char *code, const char *msg, const char *extra);

/* Answer with a complete <status> response of <len> bytes of <body> and
 * <content_type>. */
void tg_conn_send_response(tg_conn_t *c, int status, const char *content_type,
                           const char *body, size_t len);

/* Called by proxy when the upstream transfer has ended and all its bytes
 * are in c->out: finish the request once they are written. */
void tg_conn_proxy_done(tg_conn_t *c);

/* Stop accepting; close idle connections (graceful stop). */
void tg_conn_close_idle(tg_worker_t *w);

/* Bytes of the request body and where they are. */
static inline const char *
tg_conn_body(const tg_conn_t *c)
{
    return c->in.data + c->req.head_len;
}

#endif /* TG_WORKER_CONN_H */
