/*
 * worker/usage.h
 *      Token usage seen in an upstream response: Anthropic and OpenAI,
 *      streamed (SSE) and not.
 *
 * NOTES
 *      The response bytes are observed as they pass to the client, never
 *      held: SSE responses go through core/sse and only the few events that
 *      carry usage (message_start, message_delta, error; OpenAI chunks with a
 *      "usage" member) are parsed with jansson; JSON responses go through the
 *      top-level member scanner, which keeps only the "usage" and "model"
 *      members.  A content-encoded body (gzip, deflate, br, zstd) is
 *      decoded on the side by worker/decode, in small pieces that go to the
 *      same parsers; the decoder is created on the first body byte and
 *      released by tg_usage_fini.  When decoding fails (corrupt input, a
 *      window or memory limit) or the coding is one we cannot decode, the
 *      usage is marked unknown and a warning is logged once for the
 *      response; tokens read before a failure are kept.  Worker only;
 *      never blocks.
 */
#ifndef TG_WORKER_USAGE_H
#define TG_WORKER_USAGE_H

#include "core/json.h"
#include "core/sse.h"
#include "worker/decode.h"
#include "worker/usage_resp.h"

#include <stdbool.h>
#include <stdint.h>

/* Token counters, in the order of the usage record. */
enum {
    TG_TOK_INPUT = 0,  /* input tokens not read from or written to cache */
    TG_TOK_OUTPUT,     /* output tokens (OpenAI: reasoning included) */
    TG_TOK_CACHE_READ, /* input tokens read from the prompt cache */
    TG_TOK_CACHE_5M,   /* input tokens written to the 5-minute cache */
    TG_TOK_CACHE_1H,   /* input tokens written to the 1-hour cache */
    TG_TOK_REASONING,  /* reasoning tokens (a part of output, OpenAI) */
    TG_TOK_N
};

#define TG_USAGE_STRIP_MAX 65536 /* largest SSE event held by the strip */

/* Emits <len> bytes at <p> to the client; TG_OK or TG_ERROR. */
typedef int (*tg_usage_emit_pt)(void *ctx, const char *p, size_t len);

/*
 * The strip: removes from an OpenAI stream the usage-only chunk that
 * Tollgate asked for on the client's behalf (tg_usage_ask_body).  It
 * holds at most one SSE event (TG_USAGE_STRIP_MAX bytes): every event is
 * passed on once complete, except a chunk with "choices":[] and a usage
 * object; a longer event is passed on as it comes (it cannot be that
 * chunk).
 */
typedef struct {
    char *buf;     /* the event held so far, NULL until needed */
    size_t len;    /* bytes held */
    bool passthru; /* the current event is too long: pass it on */
    bool nl;       /* the last byte other than CR was LF */
} tg_usage_strip_t;

typedef struct {
    uint64_t tokens[TG_TOK_N];
    char model[64];   /* model the upstream reports, "" if none */
    bool openai;      /* OpenAI shapes, else Anthropic */
    bool sse;         /* text/event-stream response */
    bool seen;        /* some usage was found */
    bool final;       /* the final usage was seen: Anthropic message_delta
                         usage, an OpenAI chunk with a usage object, or
                         the "usage" member of a JSON body */
    bool ended;       /* message_stop / [DONE] seen */
    bool error_event; /* the stream carried an error event; the request's
                         outcome is an upstream error whatever follows */
    bool opaque;      /* body in a coding we do not decode */
    bool unknown;     /* usage not (fully) readable: opaque or decode error */
    int coding;       /* TG_DECODE_* of the body */
    uint64_t req_id;  /* for the warning */
    tg_decode_t *dec; /* decoder of an encoded body; NULL until its first
                         byte and after a failure */
    tg_sse_t sse_parser;
    tg_json_scan_t scan;
    tg_json_field_t fields[2];
    char usage_buf[1024];
    char model_buf[80];
    tg_usage_strip_t strip; /* used when the client did not ask for usage */
    bool responses;         /* OpenAI Responses API shapes */
    tg_usage_resp_t *resp;  /* its stream scanner (worker/usage_resp.h),
                               allocated for a Responses stream only */
} tg_usage_t;

/* Start observing the response to request <req_id>: <openai> selects the
 * API shapes, <sse> the framing, <coding> (TG_DECODE_*, from
 * tg_decode_coding) the content coding of the body.  Allocates nothing. */
void tg_usage_init(tg_usage_t *u, bool openai, bool sse, int coding,
                   uint64_t req_id);

/* tg_usage_init for a response of the OpenAI Responses API
 * (POST /v1/responses), whose usage object and stream events differ from
 * Chat Completions' (worker/usage_resp.c). */
void tg_usage_init_responses(tg_usage_t *u, bool sse, int coding,
                             uint64_t req_id);

struct json_t;

/* Apply the Responses API usage object <usage> to <u>; <final>: it
 * carries the final counts.  (worker/usage_resp.c) */
void tg_usage_resp_apply(tg_usage_t *u, struct json_t *usage, bool final);

/* The Responses stream event <ev> was seen (a tg_usage_resp_event_pt
 * whose <ctx> is the tg_usage_t).  (worker/usage_resp.c) */
void tg_usage_resp_event(void *ctx, const tg_usage_resp_event_t *ev);

/* Release what observing the response holds (SSE buffer, decoder). */
void tg_usage_fini(tg_usage_t *u);

/* Observe <len> response body bytes, as they came from the upstream. */
void tg_usage_feed(tg_usage_t *u, const char *p, size_t len);

/*
 * Whether <u> may be given the upstream's stream events already parsed
 * (tg_usage_event) instead of its bytes: an identity-coded Messages or
 * Chat Completions event stream.
 */
bool tg_usage_takes_events(const tg_usage_t *u);

/* Observe one event of such a stream (a tg_translate_observe_pt whose
 * <ctx> is the tg_usage_t); the bytes then do not go to tg_usage_feed. */
void tg_usage_event(void *ctx, const tg_sse_event_t *ev);

/* The body is complete: parse what the JSON scanner captured. */
void tg_usage_finish(tg_usage_t *u);

/*
 * Whether the counters of a response with status <status> are facts: the
 * body was readable and, for a 2xx response, its final usage was seen.  A
 * success cut before its final usage (a stream broken or abandoned before
 * message_delta, a JSON body without "usage") is not: its output count is
 * left at zero, never at message_start's placeholder, and the record says
 * tokens_known: false.  Error responses carry no usage and are known to
 * cost nothing.
 */
bool tg_usage_known(const tg_usage_t *u, int status);

/* Sum of every token counter except reasoning (a part of output). */
uint64_t tg_usage_total(const tg_usage_t *u);

/*
 * For an OpenAI streamed chat request <body> of <len> bytes that does not
 * ask for stream_options.include_usage: a copy that does, in *<out>
 * (malloc'd, the caller frees it) of *<out_len> bytes, so that the
 * upstream reports the stream's usage.  TG_OK; TG_DECLINED when the body
 * already asks for it or cannot be rewritten safely (not an object, a
 * stream_options member over 1 KB); TG_ERROR when out of memory.
 */
int tg_usage_ask_body(const char *body, size_t len, char **out,
                      size_t *out_len);

/*
 * Pass <len> response bytes at <p> through <u>'s strip to <emit>(<ctx>),
 * dropping the usage-only chunk (see tg_usage_strip_t).  TG_OK, or
 * TG_ERROR when <emit> failed or memory ran out (the bytes held are then
 * lost: end the stream).
 */
int tg_usage_strip(tg_usage_t *u, const char *p, size_t len,
                   tg_usage_emit_pt emit, void *ctx);

/* Pass on what the strip still holds (the stream ended mid-event). */
int tg_usage_strip_flush(tg_usage_t *u, tg_usage_emit_pt emit, void *ctx);

#endif /* TG_WORKER_USAGE_H */
