/*
 * worker/translate.h
 *      OpenAI Chat Completions <-> Anthropic Messages translation:
 *      requests, responses, streams and errors.
 *
 * NOTES
 *      A client of one API style may be served by an endpoint of the other
 *      (docs/translation.md lists every mapped and dropped field).  The
 *      request body is translated whole, once per attempt, into a new body
 *      (tg_translate_request).  The response is translated as it arrives
 *      by a tg_translate_t: a stream event by event (a state machine whose
 *      memory is bounded: one SSE event, the current content block, a few
 *      ids), a JSON body or an error body once it is complete (bounded by
 *      TG_TRANSLATE_BODY_MAX).  Translated bytes leave through the caller's
 *      emit callback; the upstream's own bytes are what usage reads, so the
 *      tokens of a translated request are exact.
 *
 *      Request translation logs each dropped field at debug level; the
 *      response translator never logs.  Worker only; never blocks.
 */
#ifndef TG_WORKER_TRANSLATE_H
#define TG_WORKER_TRANSLATE_H

#include "core/core.h"
#include "core/sse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_TRANSLATE_BODY_MAX  (8u << 20) /* JSON response body held */
#define TG_TRANSLATE_ERROR_MAX 65536      /* error body held */
#define TG_TRANSLATE_EVENT_MAX (1u << 20) /* one upstream SSE event */

/* What a request translation needs besides the body. */
typedef struct {
    int client_api;      /* TG_API_* of the client (worker/respond.h) */
    const char *model;   /* model name for the upstream, NULL: the body's */
    uint32_t max_tokens; /* Messages' max_tokens when the client gave none */
    uint64_t req_id;     /* for the debug lines */
} tg_translate_req_t;

/*
 * Translate the request body <body> of <len> bytes for an endpoint of the
 * other style than q->client_api.  On TG_OK *<out> is a new body of
 * *<out_len> bytes, owned by the caller (free()).  TG_DECLINED: the
 * request cannot be expressed in the other API (or is not valid JSON);
 * err->text names the field, for a 400 in the client's shape.  TG_ERROR:
 * out of memory.
 */
int tg_translate_request(const tg_translate_req_t *q, const char *body,
                         size_t len, char **out, size_t *out_len,
                         tg_err_t *err);

/* The path of the API of endpoint style <style> (TG_STYLE_*). */
const char *tg_translate_path(int style);

/* The status a client of <client_api> gets for upstream status <status>
 * (529 has no OpenAI equivalent: 503). */
int tg_translate_status(int client_api, int status);

/* Receives translated bytes; returns TG_OK, anything else stops. */
typedef int (*tg_translate_emit_pt)(void *ctx, const char *p, size_t n);

typedef struct tg_translate_s tg_translate_t;

/*
 * A response translator for a client of <client_api> whose upstream
 * answered <status>, as an event stream when <sse>.  <include_usage>: an
 * OpenAI client asked for the usage chunk (stream_options).  Returns NULL
 * when out of memory.  Allocates a few hundred bytes; buffers grow with
 * the input up to the bounds above.
 */
tg_translate_t *tg_translate_create(int client_api, int status, bool sse,
                                    bool include_usage);
void tg_translate_destroy(tg_translate_t *x);

/* Sees each upstream stream event as the translator parsed it. */
typedef void (*tg_translate_observe_pt)(void *ctx, const tg_sse_event_t *ev);

/*
 * Hand each upstream stream event to <fn> before translating it (every
 * event, also those after the stream's end or an error), so that a reader
 * of the upstream's own events, such as usage, need not parse the stream
 * a second time.
 */
void tg_translate_observe(tg_translate_t *x, tg_translate_observe_pt fn,
                          void *ctx);

/*
 * Feed <n> upstream body bytes at <p>; translated output goes to <emit>.
 * TG_OK, or TG_ERROR when <emit> failed, a bound was passed or memory ran
 * out (the response must then be cut).
 */
int tg_translate_feed(tg_translate_t *x, const char *p, size_t n,
                      tg_translate_emit_pt emit, void *ctx);

/*
 * The upstream body is complete: translate a held JSON or error body, or
 * close a stream the upstream ended without its last event.  Same returns.
 */
int tg_translate_finish(tg_translate_t *x, tg_translate_emit_pt emit,
                        void *ctx);

/* Whether stream events go through the fast path first (default true);
 * tests turn it off to compare the two paths. */
extern bool tg_translate_fast_on;

/* Whether an OpenAI client's request body <body> asked for the usage
 * chunk of a stream (stream_options.include_usage). */
bool tg_translate_wants_usage(const char *body, size_t len);

#endif /* TG_WORKER_TRANSLATE_H */
