/*
 * worker/translate_fast.h
 *      Recognise the common stream events of both APIs without building a
 *      JSON tree: the scanners of the translation fast path.
 *
 * NOTES
 *      worker/translate.c asks these scanners first for every stream
 *      event.  A scanner walks the event's JSON once with a small bounded
 *      hand scanner, checks all of it exactly as jansson would (grammar,
 *      UTF-8, \u escapes and surrogate pairs, no \u0000, integer range,
 *      nesting), and reports the few members translation reads, as spans
 *      of the input.  Strings are reported as their raw JSON insides,
 *      escapes kept, so that they can be copied into the output JSON as
 *      they are.  Anything the scanner is not sure to read exactly as the
 *      general path would (a key written with escapes, a repeated member,
 *      a member translation cannot express without the tree, a number out
 *      of its range, deeper nesting than TG_TRANSLATE_FAST_DEPTH) is
 *      TG_DECLINED, and the general path takes the event.  No allocation,
 *      no state: the scanners are pure functions of their input.  Worker
 *      only; never blocks, never logs.
 */
#ifndef TG_WORKER_TRANSLATE_FAST_H
#define TG_WORKER_TRANSLATE_FAST_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_TRANSLATE_FAST_DEPTH 16 /* nesting the scanners follow */

/* What translation reads of an OpenAI chat.completion.chunk.  A string
 * member is its raw JSON insides; data NULL when absent, null or not a
 * string. */
typedef struct {
    tg_str_t id;         /* top-level id, plain (no escape) */
    tg_str_t model;      /* top-level model, plain */
    bool id_esc;         /* id was a string with escapes: not reported */
    bool model_esc;      /* model likewise */
    tg_str_t content;    /* choices[0].delta.content */
    tg_str_t refusal;    /* choices[0].delta.refusal */
    tg_str_t finish;     /* choices[0].finish_reason, plain */
    bool usage;          /* top-level usage is an object */
    uint64_t prompt;     /* usage.prompt_tokens (0 when not a positive int) */
    uint64_t cached;     /* usage.prompt_tokens_details.cached_tokens */
    uint64_t completion; /* usage.completion_tokens */
    bool tool;           /* delta.tool_calls holds one call */
    uint64_t tool_index; /* its index */
    tg_str_t args;       /* its function.arguments, raw insides */
} tg_translate_fast_chunk_t;

/*
 * Scan the data <p> of <n> bytes of an OpenAI stream event.  TG_OK: it is
 * a JSON object without "error" and with at most one tool call, and <c>
 * holds
 * what translation needs.  TG_DECLINED: anything else (the general path
 * decides).
 */
int tg_translate_fast_chunk(const char *p, size_t n,
                            tg_translate_fast_chunk_t *c);

/* What translation reads of an Anthropic stream event's data. */
typedef struct {
    tg_str_t type; /* content_block_delta: delta.type, plain */
    tg_str_t text; /* delta.text, raw insides */
    tg_str_t json; /* delta.partial_json, raw insides */
} tg_translate_fast_event_t;

/*
 * Scan the data <p> of <n> bytes of an Anthropic content_block_delta
 * event (<delta>) or of an event whose data translation does not read
 * (ping, content_block_stop, message_stop: only its validity matters).
 * TG_OK: valid, and for a delta <e> holds its members.  TG_DECLINED:
 * anything else.
 */
int tg_translate_fast_event(const char *p, size_t n, bool delta,
                            tg_translate_fast_event_t *e);

#endif /* TG_WORKER_TRANSLATE_FAST_H */
