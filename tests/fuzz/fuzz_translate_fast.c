/*
 * tests/fuzz/fuzz_translate_fast.c
 *      Differential libFuzzer target for the translation fast path
 *      (worker/translate_fast.c): on any input, the fast path must give
 *      the events the general path (jansson) gives.
 *
 * NOTES
 *      The first input byte picks the direction (bit 0: an Anthropic
 *      client, so an OpenAI upstream) and whether the input is framed as
 *      one event's data (bit 1: the rest is wrapped as "data: ...\n\n"
 *      after a fixed opening event, so that most inputs reach the
 *      scanners) or fed as a raw stream.  The stream is translated twice,
 *      fast path on and off; both must succeed or fail alike and give the
 *      same lines, each "data:" line equal as JSON (the fast path copies
 *      strings escaped as they came).  Whatever the scanners accept,
 *      jansson must accept too.  Build and run with tools/fuzz.sh.
 */
#include "core/core.h"
#include "tests/fuzz/harness.h"
#include "worker/respond.h"
#include "worker/translate.h"
#include "worker/translate_fast.h"

#include <jansson.h>


static int
fuzz_emit(void *ctx, const char *p, size_t n)
{
    fuzz_buf_add(ctx, p, n);
    return TG_OK;
}


static int
fuzz_run(int api, const char *in, size_t n, bool fast, fuzz_buf_t *o)
{
    tg_translate_t *x = tg_translate_create(api, 200, true, true);
    int rc;

    CHECK(x != NULL);
    tg_translate_fast_on = fast;
    rc = tg_translate_feed(x, in, n, fuzz_emit, o);
    if (rc == TG_OK) {
        rc = tg_translate_finish(x, fuzz_emit, o);
    }
    tg_translate_fast_on = true;
    tg_translate_destroy(x);
    return rc;
}


/* Whether lines <a> and <b> are the same, data lines as JSON. */
static bool
fuzz_same_line(const char *a, size_t an, const char *b, size_t bn)
{
    json_t *ja, *jb;
    bool same;

    if (an == bn && memcmp(a, b, an) == 0) {
        return true;
    }
    if (an < 6 || bn < 6 || memcmp(a, "data: ", 6) != 0 ||
        memcmp(b, "data: ", 6) != 0) {
        return false;
    }
    ja = json_loadb(a + 6, an - 6, 0, NULL);
    jb = json_loadb(b + 6, bn - 6, 0, NULL);
    /* The translation's clock may tick between the two runs. */
    json_object_del(ja, "created");
    json_object_del(jb, "created");
    same = ja != NULL && jb != NULL && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}


/* Compare two outputs line by line. */
static void
fuzz_compare(const fuzz_buf_t *f, const fuzz_buf_t *g)
{
    const char *a = f->p, *b = g->p, *aend, *bend, *al, *bl;
    size_t an, bn;

    if (f->len == 0 || g->len == 0) {
        CHECK(f->len == g->len);
        return;
    }
    aend = a + f->len;
    bend = b + g->len;
    while (a < aend && b < bend) {
        al = memchr(a, '\n', (size_t)(aend - a));
        bl = memchr(b, '\n', (size_t)(bend - b));
        an = al != NULL ? (size_t)(al - a) : (size_t)(aend - a);
        bn = bl != NULL ? (size_t)(bl - b) : (size_t)(bend - b);
        if (!fuzz_same_line(a, an, b, bn)) {
            fprintf(stderr, "fast:    %.*s\ngeneral: %.*s\n", (int)an, a,
                    (int)bn, b);
        }
        CHECK(fuzz_same_line(a, an, b, bn));
        a += an + (al != NULL);
        b += bn + (bl != NULL);
    }
    CHECK(a == aend && b == bend);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char o_head[] =
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"delta\":{"
        "\"role\":\"assistant\"}}]}\n\ndata: ";
    static const char a_head[] =
        "event: message_start\ndata: {\"message\":{\"id\":\"m\",\"model\":"
        "\"x\"}}\n\nevent: content_block_start\ndata: {\"content_block\":"
        "{\"type\":\"text\"}}\n\nevent: content_block_delta\ndata: ";
    fuzz_buf_t f = {0}, g = {0};
    tg_translate_fast_chunk_t c;
    tg_translate_fast_event_t e;
    const char *head;
    char *in;
    size_t n, hn;
    json_t *j;
    int api, rf, rg;

    if (size < 1) {
        return 0;
    }
    api = (data[0] & 1) ? TG_API_ANTHROPIC : TG_API_OPENAI;
    head = api == TG_API_ANTHROPIC ? o_head : a_head;
    hn = (data[0] & 2) ? strlen(head) : 0;
    data++;
    size--;

    /* The scanners accept nothing jansson refuses. */
    if (tg_translate_fast_chunk((const char *)data, size, &c) == TG_OK ||
        tg_translate_fast_event((const char *)data, size, true, &e) == TG_OK ||
        tg_translate_fast_event((const char *)data, size, false, &e) == TG_OK) {
        j = json_loadb((const char *)data, size, 0, NULL);
        CHECK(j != NULL);
        json_decref(j);
    }

    n = hn + size + (hn > 0 ? 2 : 0);
    in = malloc(n + 1);
    CHECK(in != NULL);
    memcpy(in, head, hn);
    memcpy(in + hn, data, size);
    if (hn > 0) {
        memcpy(in + hn + size, "\n\n", 2);
    }
    rf = fuzz_run(api, in, n, true, &f);
    rg = fuzz_run(api, in, n, false, &g);
    CHECK(rf == rg);
    if (rf == TG_OK) {
        fuzz_compare(&f, &g);
    }
    free(in);
    free(f.p);
    free(g.p);
    return 0;
}
