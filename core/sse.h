/*
 * core/sse.h
 *      Incremental server-sent events (text/event-stream) parser.
 *
 * NOTES
 *      The proxy passes stream bytes to the client untouched; this parser
 *      only observes them (to find usage in message_start / message_delta,
 *      OpenAI usage chunks, error events and the end marker).  It accepts
 *      CRLF, LF and CR line ends as the SSE spec requires, joins multi-line
 *      data with '\n', ignores comments (":" lines) and id/retry fields.
 *      Memory is bounded: an event whose data exceeds <max_data> is
 *      delivered with <truncated> set and its data cut at the bound (the
 *      buffer grows lazily, so idle streams hold almost nothing).  Never
 *      logs; single-threaded.
 */
#ifndef TG_CORE_SSE_H
#define TG_CORE_SSE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    tg_str_t event; /* "message" when the event had no event: field */
    tg_str_t data;  /* data lines joined by '\n' */
    bool truncated; /* data longer than max_data was cut */
} tg_sse_event_t;

/* Called for each complete event; return TG_OK to go on, anything else to
 * stop tg_sse_feed() which then returns that value. */
typedef int (*tg_sse_event_pt)(void *ctx, const tg_sse_event_t *ev);

typedef struct {
    char *buf; /* current line and event data, heap, lazily grown */
    size_t cap;
    size_t max_data; /* bound on one event's data */
    size_t line_len; /* bytes of the current incomplete line in buf */
    size_t data_len; /* bytes of event data accumulated (before line) */
    char event[64];  /* event name, cut at 63 bytes */
    size_t event_len;
    bool have_data;
    bool truncated;
    bool skip_lf; /* previous line ended in CR; swallow a following LF */
    bool line_overflow;
} tg_sse_t;

/* Allocator used for the event buffer; tests swap it to inject failures. */
extern void *(*tg_sse_realloc)(void *p, size_t size);

void tg_sse_init(tg_sse_t *s, size_t max_data);
void tg_sse_fini(tg_sse_t *s);

/* Feed <len> bytes at <p>; calls <cb> for every completed event.
 * Returns TG_OK, the callback's non-TG_OK value, or TG_ERROR when out of
 * memory. */
int tg_sse_feed(tg_sse_t *s, const char *p, size_t len, tg_sse_event_pt cb,
                void *ctx);

#endif /* TG_CORE_SSE_H */
