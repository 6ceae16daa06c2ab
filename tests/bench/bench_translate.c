/*
 * tests/bench/bench_translate.c
 *      Micro-benchmark of stream translation (worker/translate.c): the CPU
 *      one streamed chunk costs the worker when passed through and when
 *      translated, both ways.
 *
 * NOTES
 *      A recorded stream of 200 text deltas of about 40 bytes (the common
 *      shape of a chat answer) is fed event by event, as curl delivers
 *      them.  Pass-through is what the proxy does with such a piece:
 *      frame it for the client (worker/respond) and let usage observe it
 *      (worker/usage).  Translated adds the translator: parse the event,
 *      write the other API's event, frame that.  Each figure is the median
 *      of several rounds, in ns per chunk; the ratio is translated over
 *      pass-through.  Translation is measured with the fast path (the
 *      default) and with the general path alone (jansson for every event).
 * Sockets, curl and the loop, which dominate the real per-chunk cost, are not
 * in either figure, so the ratio is an upper bound of what translation adds to
 * a worker's CPU per chunk.
 */
#include "core/buf.h"
#include "core/core.h"
#include "tests/bench/bench.h"
#include "worker/respond.h"
#include "worker/translate.h"
#include "worker/usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_BENCH_XL_DELTAS 200
#define TG_BENCH_XL_ROUNDS 7
#define TG_BENCH_XL_REPS   200 /* streams per round */

typedef struct {
    char *ev[TG_BENCH_XL_DELTAS + 8];
    size_t len[TG_BENCH_XL_DELTAS + 8];
    size_t n;
} tg_bench_xl_stream_t;

typedef struct {
    tg_respond_t resp;
    tg_buf_t out;
} tg_bench_xl_sink_t;


static int
tg_bench_xl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


static void
tg_bench_xl_add(tg_bench_xl_stream_t *s, const char *text)
{
    s->ev[s->n] = strdup(text);
    s->len[s->n] = strlen(text);
    s->n++;
}


/* The recorded stream of <openai> style. */
static void
tg_bench_xl_stream(tg_bench_xl_stream_t *s, bool openai)
{
    char ev[512];
    int i;

    s->n = 0;
    if (openai) {
        tg_bench_xl_add(s, "data: {\"id\":\"chatcmpl-b\",\"object\":\"chat."
                           "completion.chunk\",\"created\":1,\"model\":"
                           "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":"
                           "{\"role\":\"assistant\",\"content\":\"\"},"
                           "\"finish_reason\":null}]}\n\n");
    } else {
        tg_bench_xl_add(s, "event: message_start\ndata: {\"type\":\"message_"
                           "start\",\"message\":{\"id\":\"msg_b\",\"type\":"
                           "\"message\",\"role\":\"assistant\",\"model\":"
                           "\"claude-sonnet-4-5\",\"content\":[],\"usage\":"
                           "{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
        tg_bench_xl_add(s, "event: content_block_start\ndata: {\"type\":"
                           "\"content_block_start\",\"index\":0,\"content_"
                           "block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }
    for (i = 0; i < TG_BENCH_XL_DELTAS; i++) {
        if (openai) {
            snprintf(ev, sizeof(ev),
                     "data: {\"id\":\"chatcmpl-b\",\"object\":\"chat."
                     "completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
                     "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                     "\"word %d of the answer, more or less\"},"
                     "\"finish_reason\":null}]}\n\n",
                     i);
        } else {
            snprintf(ev, sizeof(ev),
                     "event: content_block_delta\ndata: {\"type\":\"content_"
                     "block_delta\",\"index\":0,\"delta\":{\"type\":\"text_"
                     "delta\",\"text\":\"word %d of the answer, more or "
                     "less\"}}\n\n",
                     i);
        }
        tg_bench_xl_add(s, ev);
    }
    if (openai) {
        tg_bench_xl_add(s, "data: {\"id\":\"chatcmpl-b\",\"object\":\"chat."
                           "completion.chunk\",\"created\":1,\"model\":"
                           "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},"
                           "\"finish_reason\":\"stop\"}]}\n\n");
        tg_bench_xl_add(s, "data: {\"id\":\"chatcmpl-b\",\"object\":\"chat."
                           "completion.chunk\",\"created\":1,\"model\":"
                           "\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_"
                           "tokens\":10,\"completion_tokens\":400}}\n\n");
        tg_bench_xl_add(s, "data: [DONE]\n\n");
    } else {
        tg_bench_xl_add(s, "event: content_block_stop\ndata: {\"type\":"
                           "\"content_block_stop\",\"index\":0}\n\n");
        tg_bench_xl_add(s, "event: message_delta\ndata: {\"type\":\"message_"
                           "delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                           "\"usage\":{\"output_tokens\":400}}\n\n");
        tg_bench_xl_add(s, "event: message_stop\ndata: {\"type\":\"message_"
                           "stop\"}\n\n");
    }
}


static int
tg_bench_xl_emit(void *ctx, const char *p, size_t n)
{
    tg_bench_xl_sink_t *k = ctx;
    int rc = tg_respond_body(&k->resp, &k->out, p, n);

    /* The client drains as fast as it comes. */
    tg_buf_reset(&k->out, 65536);
    return rc;
}


/* One round of <reps> streams of <s>; returns ns per chunk. */
static double
tg_bench_xl_round(const tg_bench_xl_stream_t *s, bool openai, bool translate)
{
    tg_bench_xl_sink_t k;
    tg_translate_t *x;
    tg_usage_t *u = malloc(sizeof(*u));
    uint64_t t0;
    size_t i;
    int rep;

    tg_buf_init(&k.out, 1 << 20);
    memset(&k.resp, 0, sizeof(k.resp));
    k.resp.chunked = true;
    t0 = tg_bench_now_ns();
    for (rep = 0; rep < TG_BENCH_XL_REPS; rep++) {
        tg_usage_init(u, openai, true, 0, 1);
        x = translate
                ? tg_translate_create(openai ? TG_API_ANTHROPIC : TG_API_OPENAI,
                                      200, true, true)
                : NULL;
        for (i = 0; i < s->n; i++) {
            if (x != NULL) {
                (void)tg_translate_feed(x, s->ev[i], s->len[i],
                                        tg_bench_xl_emit, &k);
            } else {
                (void)tg_bench_xl_emit(&k, s->ev[i], s->len[i]);
            }
            tg_usage_feed(u, s->ev[i], s->len[i]);
        }
        tg_translate_destroy(x);
        tg_usage_fini(u);
    }
    free(u);
    tg_buf_fini(&k.out);
    return (double)(tg_bench_now_ns() - t0) /
           ((double)TG_BENCH_XL_REPS * (double)s->n);
}


static double
tg_bench_xl_median(const tg_bench_xl_stream_t *s, bool openai, bool translate)
{
    double r[TG_BENCH_XL_ROUNDS];
    int i;

    for (i = 0; i < TG_BENCH_XL_ROUNDS; i++) {
        r[i] = tg_bench_xl_round(s, openai, translate);
    }
    qsort(r, TG_BENCH_XL_ROUNDS, sizeof(double), tg_bench_xl_cmp);
    return r[TG_BENCH_XL_ROUNDS / 2];
}


/* See bench.h. */
void
tg_bench_translate(void)
{
    tg_bench_xl_stream_t s;
    char detail[160];
    double pass, xl, gen;
    size_t i;
    int openai;

    for (openai = 0; openai <= 1; openai++) {
        tg_bench_xl_stream(&s, openai);
        pass = tg_bench_xl_median(&s, openai, false);
        xl = tg_bench_xl_median(&s, openai, true);
        tg_translate_fast_on = false;
        gen = tg_bench_xl_median(&s, openai, true);
        tg_translate_fast_on = true;
        snprintf(detail, sizeof(detail), "per chunk, %s upstream",
                 openai ? "OpenAI" : "Anthropic");
        tg_bench_report("translate: pass-through", pass, detail);
        snprintf(detail, sizeof(detail),
                 "per chunk, %s upstream to an %s client, fast path; %.2fx "
                 "pass-through",
                 openai ? "OpenAI" : "Anthropic",
                 openai ? "Anthropic" : "OpenAI", xl / pass);
        tg_bench_report("translate: translated", xl, detail);
        snprintf(detail, sizeof(detail),
                 "per chunk, %s upstream, general path only (jansson); %.2fx "
                 "pass-through, %.2fx the fast path",
                 openai ? "OpenAI" : "Anthropic", gen / pass, gen / xl);
        tg_bench_report("translate: translated, general", gen, detail);
        for (i = 0; i < s.n; i++) {
            free(s.ev[i]);
        }
    }
}
