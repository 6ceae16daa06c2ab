/*
 * worker/usage_resp.h
 *      The OpenAI Responses API stream scanner: the few members of each
 *      event that carry usage, read as the bytes pass, in bounded memory.
 *
 * NOTES
 *      A Responses stream repeats the whole response object in its
 *      terminal event (response.completed, response.incomplete,
 *      response.failed), output included, so that event can be far larger
 *      than any bound worth holding; its usage sits near the end of it.
 *      The scanner therefore never holds an event: it frames the SSE
 *      stream itself (CR, LF and CRLF line ends, comments, "data:" lines
 *      joined by LF) and follows the JSON of each event's data byte by
 *      byte (nesting, strings, escapes, member names), capturing only
 *      the top-level "type" string and the raw values of "usage" and
 *      "model" inside the top-level "response" object, each bounded.  An
 *      event's name is its "event:" field, else its "type".  The data of
 *      an event whose "event:" field names one that cannot matter (the
 *      deltas) is skipped to its line ends, and strings nobody captures
 *      to their quote, so the scanner touches little more than the few
 *      events it reads.  Pure and single-threaded: no allocation, no
 *      logging.
 */
#ifndef TG_WORKER_USAGE_RESP_H
#define TG_WORKER_USAGE_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_USAGE_RESP_NAME_MAX  48   /* event name / "type" kept */
#define TG_USAGE_RESP_USAGE_MAX 1024 /* raw "usage" value kept */
#define TG_USAGE_RESP_MODEL_MAX 160  /* raw "model" value kept */

/* One event as the scanner saw it; strings are not NUL-terminated. */
typedef struct {
    const char *name; /* event name, <name_len> bytes; "" when none */
    size_t name_len;
    const char *usage; /* raw JSON of response.usage, NULL when absent or
                          longer than TG_USAGE_RESP_USAGE_MAX */
    size_t usage_len;
    const char *model; /* raw JSON of response.model, NULL likewise */
    size_t model_len;
} tg_usage_resp_event_t;

/* Called for each complete event that had data. */
typedef void (*tg_usage_resp_event_pt)(void *ctx,
                                       const tg_usage_resp_event_t *ev);

/* A captured piece of text, bounded. */
typedef struct {
    size_t len;
    bool over; /* longer than its buffer: not usable */
} tg_usage_resp_cap_t;

typedef struct {
    /* SSE framing */
    int line;       /* TG_UR_L_*: where in a line */
    int fkind;      /* TG_UR_F_*: the current line's field */
    bool skip_lf;   /* the last line ended in CR */
    bool have_data; /* the event has a data line */
    char field[8];  /* field name of the current line, cut */
    size_t field_len;
    char event[TG_USAGE_RESP_NAME_MAX];
    tg_usage_resp_cap_t event_cap;
    /* JSON of the event's data */
    uint32_t depth; /* open containers */
    bool in_str, esc;
    bool obj[3];      /* the container at depth 1, 2 is an object */
    bool want_key[3]; /* at depth 1, 2: a member name comes next */
    bool in_key;      /* the string is a member name at depth 1 or 2 */
    int k1, k2;       /* TG_UR_K_*: member at depth 1, 2 */
    int cap;          /* TG_UR_C_*: value being captured */
    char key[12];
    tg_usage_resp_cap_t key_cap;
    char type[TG_USAGE_RESP_NAME_MAX];
    tg_usage_resp_cap_t type_cap;
    bool type_done;
    char usage[TG_USAGE_RESP_USAGE_MAX];
    tg_usage_resp_cap_t usage_cap;
    bool usage_found;
    char model[TG_USAGE_RESP_MODEL_MAX];
    tg_usage_resp_cap_t model_cap;
    bool model_found;
} tg_usage_resp_t;

/* Start scanning a new stream. */
void tg_usage_resp_init(tg_usage_resp_t *s);

/* Scan <len> stream bytes at <p>; <cb>(<ctx>, event) for each event that
 * ends in them.  Any bytes are accepted. */
void tg_usage_resp_feed(tg_usage_resp_t *s, const char *p, size_t len,
                        tg_usage_resp_event_pt cb, void *ctx);

#endif /* TG_WORKER_USAGE_RESP_H */
