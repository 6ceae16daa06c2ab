/*
 * worker/request.h
 *      The request: its parsed head and body, key, held limits, response
 *      framing, usage so far, and the one function through which it ends.
 *
 * NOTES
 *      Three objects carry a request, as in nginx: the connection
 *      (worker/conn.h: socket, buffers, keep-alive), the request (this
 *      file) and the upstream exchange (worker/proxy.c: curl handle,
 *      attempt, response head).  The request path (worker/serve.c) reads
 *      and checks the request and starts the exchange; every way a request
 *      can end goes through tg_request_end, which alone
 *        - decides the outcome and the status, once;
 *        - writes the error response when nothing was sent yet, ends the
 *          body of a complete response, or leaves a broken one unended;
 *        - stops the upstream exchange (its cleanup);
 *        - gives back the concurrency lease and charges the tokens;
 *      and, once the response has left (or at once when the client is
 *      gone), tg_request_finalize publishes the one usage record, writes
 *      the one access-log line and either closes the connection or resets
 *      the request for the next one on it (one reset of the whole
 *      per-request part).  Nothing else writes an outcome or releases a
 *      lease.
 *
 *      Phases: IDLE (keep-alive, no byte yet) -> HEAD -> BODY -> UPSTREAM
 *      (or straight to ENDED for local answers and refusals) -> ENDED
 *      (decided, output draining) -> finalized: IDLE again or closed.
 *      Worker only; never blocks (except the spool append, taken only when
 *      admin has fallen a whole usage ring behind).
 */
#ifndef TG_WORKER_REQUEST_H
#define TG_WORKER_REQUEST_H

#include "core/http.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/respond.h"
#include "worker/usage.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_request_s tg_request_t;

/* Request phases. */
enum {
    TG_REQ_IDLE = 0, /* between requests: no byte of the next one yet */
    TG_REQ_HEAD,     /* reading the head */
    TG_REQ_BODY,     /* reading the body */
    TG_REQ_UPSTREAM, /* the upstream exchange runs */
    TG_REQ_ENDED     /* ended: the response drains, then finalize */
};

/* Routes (by path). */
enum {
    TG_ROUTE_NONE = 0,
    TG_ROUTE_MESSAGES,
    TG_ROUTE_COUNT_TOKENS,
    TG_ROUTE_CHAT,
    TG_ROUTE_MODELS,
    TG_ROUTE_HEALTH,
    TG_ROUTE_RESPONSES /* POST /v1/responses: OpenAI-style endpoints only */
};

/* What ended a request (tg_request_end). */
enum {
    TG_END_OK = 0,      /* the response is complete */
    TG_END_REFUSED,     /* auth, allow-list, limit or quota refusal */
    TG_END_BAD_REQUEST, /* the request could not be read (4xx) */
    TG_END_TIMEOUT,     /* a deadline expired (client or upstream) */
    TG_END_UPSTREAM,    /* the upstream failed, after any retries */
    TG_END_CLIENT_GONE, /* the client closed or reset its connection */
    TG_END_INTERNAL     /* we could not serve it (memory, shutdown) */
};

/* The error answer of an end that has one (nothing sent yet). */
typedef struct {
    int status;        /* HTTP status */
    const char *type;  /* the API's error type, "authentication_error" */
    const char *code;  /* OpenAI code, may be NULL */
    const char *msg;   /* for the client */
    const char *extra; /* header lines ending in CRLF, or NULL */
} tg_request_error_t;

/* Stops the upstream exchange of <r> (<data> is its state); <client_gone>
 * when the client left. */
typedef void (*tg_request_cleanup_pt)(tg_request_t *r, void *data,
                                      bool client_gone);

/* Lets the upstream exchange of <r> (<data>) run on without its client
 * (resumes a paused transfer). */
typedef void (*tg_request_drain_pt)(tg_request_t *r, void *data);

#define TG_REQUEST_HIST 8 /* attempts listed in the access log */

struct tg_request_s {
    tg_conn_t *c; /* the connection; outlives the request's uses */
    tg_worker_t *w;
    /* ---- everything below is reset between requests ---- */
    int phase;                 /* TG_REQ_* */
    bool keep_alive;           /* the client allows keep-alive */
    bool close_after;          /* close once the response has left */
    bool broken;               /* the response is cut: close without its end */
    bool body_done;            /* the whole body has been read */
    int api;                   /* TG_API_* (error shapes) */
    int route;                 /* TG_ROUTE_* */
    tg_http_chunked_t chunked; /* chunked body decoder */
    size_t body_len;           /* decoded body bytes after the head */
    size_t raw_pos;            /* first undecoded byte in c->in */
    size_t req_end;            /* end of this request in c->in */
    uint64_t id;               /* request id (x-tollgate-request-id) */
    uint64_t start_us;         /* first byte of the request */
    int status;                /* status sent to the client, 0 none */
    int outcome;               /* TG_USAGE_*, set by tg_request_end */
    tg_respond_t resp;         /* framing of the response */
    bool have_key;             /* key found in the shared table */
    uint32_t key_slot;         /* its slot (and rate-limit entry) */
    tg_shm_key_t key;          /* consistent copy of the key entry */
    int lease;                 /* concurrency lease, -1 none */
    bool stream_req;           /* the request asked for a stream */
    char model[64];            /* model named by the request body */
    size_t model_off, model_vlen; /* its JSON value in the body, 0: none */
    uint64_t session;             /* conversation for sticky routing */
    bool usage_on;                /* usage observes the response */
    bool unpriced;                /* no price matched its model */
    bool usage_asked;             /* include_usage added for the client */
    bool draining;                /* client gone: reading on for usage */
    size_t drained;               /* response bytes read while draining */
    uint64_t cost_pusd;           /* its cost, set by tg_request_end */
    /* What the upstream exchange reports, for the record and the log. */
    int endpoint;                          /* last endpoint, -1 none */
    int attempts;                          /* attempts made */
    int upstream_status;                   /* status of the last attempt */
    uint16_t hist_ep[TG_REQUEST_HIST];     /* endpoint of each attempt */
    uint16_t hist_status[TG_REQUEST_HIST]; /* its status, 1000 + curl code */
    uint64_t first_byte_us;                /* response head, 0 = none */
    tg_request_cleanup_pt cleanup;         /* stops the exchange */
    tg_request_drain_pt drain;             /* runs it on without a client */
    void *cleanup_data;
    int inflight;     /* entry in the shm in-flight table, -1 none */
    uint32_t refusal; /* TG_SHM_REFUSE_* of a refusal, for metrics */
    /* ---- the two large parts, set before use rather than cleared ---- */
    tg_http_req_t head; /* parsed head; strings point into c->in */
    tg_usage_t usage;   /* tokens seen in the response (usage_on) */
};

/* Set up <w>'s in-flight table (shm/inflight.h).  TG_OK or TG_ERROR
 * (logged); startup only. */
int tg_request_init(tg_worker_t *w);
void tg_request_fini(tg_worker_t *w);

/*
 * <r> was admitted: open its entry in the shared in-flight table, so that
 * if this worker dies master still writes its usage record (outcome
 * worker_crashed).  A full table leaves the request untracked.
 */
void tg_request_track(tg_request_t *r);

/* Copy what <r>'s record would say now (status, endpoint, attempts,
 * bytes, tokens so far) into its in-flight entry.  Cheap; called as the
 * response goes out. */
void tg_request_progress(tg_request_t *r);

/* A request for connection <c>, in phase IDLE.  NULL when out of memory.
 * Freed by tg_request_close. */
tg_request_t *tg_request_create(tg_conn_t *c);

/* The first byte of a request arrived: open it (id, start time, HEAD). */
void tg_request_begin(tg_request_t *r);

/*
 * End <r> for <cause> (TG_END_*); <err> is the answer when nothing was
 * sent yet (NULL for OK and CLIENT_GONE).  Runs once per request; later
 * calls do nothing.  Returns TG_DONE when the connection was closed and
 * <r> freed (the client is gone), else TG_OK: the response drains and
 * tg_request_finalize runs when it has left.
 */
int tg_request_end(tg_request_t *r, int cause, const tg_request_error_t *err);

/*
 * The ended request's response has left: publish the usage record, write
 * the access-log line, then close (TG_DONE, <r> freed) or reset for the
 * next request (TG_OK; pipelined bytes, if any, are in c->in).
 */
int tg_request_finalize(tg_request_t *r);

/*
 * The connection must go (client gone, socket error, shutdown): end the
 * request under way for <cause>, finalize an ended one, close the
 * connection and free <r>.
 */
void tg_request_close(tg_request_t *r, int cause);

/*
 * Answer <r> locally with a complete response: <status>, <content_type>,
 * <len> bytes of <body>, extra header lines <extra> (or NULL), in c->out.
 * TG_OK, or TG_ERROR when the output could not hold it (out of memory).
 */
int tg_request_respond(tg_request_t *r, int status, const char *content_type,
                       const char *body, size_t len, const char *extra);

/*
 * The outcome (TG_USAGE_*) of a request ended by <cause> whose response
 * head was (<committed>) or was not sent, and whose stream did or did not
 * carry an error event (<error_event>).  Pure.
 */
int tg_request_outcome(int cause, bool committed, bool error_event);

/* Emit <len> response body bytes of request <ctx> to its client
 * (tg_usage_emit_pt).  TG_OK or TG_ERROR. */
int tg_request_emit(void *ctx, const char *p, size_t len);

/* Bytes of the request body and where they are. */
static inline const char *
tg_request_body(const tg_request_t *r)
{
    return r->c->in.data + r->head.head_len;
}

#endif /* TG_WORKER_REQUEST_H */
