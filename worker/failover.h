/*
 * worker/failover.h
 *      What an upstream failure means: retry elsewhere or not, and what it
 *      says about the endpoint (a breaker failure, a rate limit to cool
 *      down for, a spend cap that takes the endpoint out, an overload).
 *
 * NOTES
 *      Pure functions, no state, no logging, no allocation: the proxy
 *      feeds them the status, the parsed retry-after, the curl result and
 *      the first bytes of the error body, and applies the result to shared
 *      memory (shm/ep.h).  Unit-tested on real Anthropic and OpenAI error
 *      bodies (tests/unit/test_shm_ep.c).
 *
 *      The body is read with a small tolerant scanner, not a JSON parser:
 *      the proxy keeps at most TG_FAILOVER_BODY_MAX bytes, which may cut
 *      the document, and the few fields that matter (error.type,
 *      error.code, error.message, error.details.error_code) come early.
 *      Spend caps are recognised from those fields only, never by
 *      searching the whole body, because a 400's message may quote what
 *      the client sent, and a client must not be able to take an endpoint
 *      out by sending a model named "insufficient_quota".  A 429's body
 *      carries nothing of the client's, so for 429 the two machine tokens
 *      are also accepted anywhere in the body (relays that re-wrap
 *      errors).
 */
#ifndef TG_WORKER_FAILOVER_H
#define TG_WORKER_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_FAILOVER_BODY_MAX        1024   /* error body bytes kept */
#define TG_FAILOVER_RETRY_AFTER_MAX 300000 /* longest cool-down, 5 min */
#define TG_FAILOVER_BRIEF_MIN       1000   /* 529 cool-down: 1 s ... */
#define TG_FAILOVER_BRIEF_SPAN      4000   /* ... plus up to 4 s of jitter */
#define TG_FAILOVER_JITTER_MAX      5000   /* retry-after jitter ceiling */

/* tg_failover_status() results. */
enum {
    TG_FAILOVER_PASS = 0, /* give the response to the client as it is */
    TG_FAILOVER_RETRY = 1 /* the endpoint's failure: try another one */
};

/*
 * How to treat upstream status <status> seen in a response head, before
 * anything went to the client: TG_FAILOVER_RETRY for 429, 500, 502, 503,
 * 504, 529 and 401 (the endpoint's credential was refused; the client's
 * own key was checked by us), TG_FAILOVER_PASS for everything else,
 * including the client's faults (400, 413, 422, ...).
 */
int tg_failover_status(int status);

/* What the proxy knows when an attempt ends. */
typedef struct {
    int status;                 /* HTTP status; 0 when no response head */
    int transport;              /* curl error of a transport failure, 0 */
    const char *transport_text; /* its message, or NULL */
    bool client_gone;           /* the client left: no verdict */
    int64_t retry_after_ms;     /* the response's retry-after; -1 none */
    const char *body;           /* first bytes of the body, may be NULL */
    size_t body_len;            /* at most TG_FAILOVER_BODY_MAX used */
    uint64_t now_ms;            /* wall clock */
    uint32_t quota_cooldown_ms; /* the endpoint's quota_cooldown */
    uint32_t rnd;               /* random bits for the jitter */
} tg_failover_in_t;

/* The verdict for shm/ep.h. */
typedef struct {
    int verdict;       /* TG_EP_V_* */
    int cool_kind;     /* TG_EP_COOL_* for RATE and OVERLOAD */
    uint64_t until_ms; /* cooled (RATE, OVERLOAD) or out (QUOTA) until */
    char reason[96];   /* short cause for logs and events */
} tg_failover_t;

/*
 * Classify the end of an attempt described by <in> into <out>.  Pure;
 * reads at most TG_FAILOVER_BODY_MAX bytes of in->body.
 *
 *   no verdict:  the client left
 *   FAIL:        transport error or timeout, 500/502/503/504 and other
 *                5xx, 401
 *   OVERLOAD:    529, or a 5xx whose error type is overloaded_error
 *                (cooled 1-5 s, jittered, TG_EP_COOL_BRIEF)
 *   QUOTA:       a 429 with enforced_spend_limit_reached (Anthropic) or
 *                insufficient_quota (OpenAI) or a spend-limit / credit
 *                message, or a 400 whose error message starts with
 *                Anthropic's spend-limit or credit-balance text
 *                (out for quota_cooldown)
 *   RATE:        any other 429: cooled for retry-after (capped at 5 min,
 *                plus up to 10% / 5 s of jitter, TG_EP_COOL_RETRY_AFTER),
 *                or 1-5 s without one (TG_EP_COOL_BRIEF)
 *   OK:          everything else (2xx, 3xx, the client's 4xx)
 */
void tg_failover_classify(const tg_failover_in_t *in, tg_failover_t *out);

/* Fields of an API error body, NUL-terminated, cut to fit. */
typedef struct {
    char type[48];       /* error.type, or a top-level string "error" */
    char code[48];       /* error.code (OpenAI) */
    char error_code[48]; /* error.details.error_code (Anthropic) */
    char message[160];   /* error.message, JSON escapes left as they are */
} tg_failover_body_t;

/*
 * Scan the first <len> bytes of an error body at <p> (possibly cut short)
 * for the fields above.  Pure, bounded; a body that is not JSON leaves
 * them empty.  Returns true when any field was found.
 */
bool tg_failover_scan(const char *p, size_t len, tg_failover_body_t *out);

#endif /* TG_WORKER_FAILOVER_H */
