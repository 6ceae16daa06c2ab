/*
 * tests/fuzz/fuzz_translate.c
 *      libFuzzer target for worker/translate.c and worker/translate_req.c.
 *
 * NOTES
 *      The first input byte picks what is fuzzed: bit 0 the client's API,
 *      bit 1 an event stream or a JSON body, bit 2 a request body instead
 *      of a response, bit 3 an error status; the rest seeds the split
 *      points.  The remaining bytes are the body.  A response is fed whole
 *      and in random pieces and both outputs must be identical; a JSON
 *      output must parse, and every "data:" line of a translated stream
 *      must be JSON or [DONE].  A translated request must be a JSON
 *      object.  Pieces are exact-size heap copies so that any read past
 *      them is an ASan report.  Build and run with tools/fuzz.sh.
 */
#include "core/core.h"
#include "tests/fuzz/harness.h"
#include "worker/respond.h"
#include "worker/translate.h"

#include <jansson.h>


static int
fuzz_emit(void *ctx, const char *p, size_t n)
{
    fuzz_buf_add(ctx, p, n);
    return TG_OK;
}


/* Translate <n> bytes at <p>, in random pieces when <split>.  Returns the
 * translator's result; the output is in <o>. */
static int
fuzz_response(int api, int status, bool sse, const uint8_t *p, size_t n,
              bool split, fuzz_buf_t *o)
{
    tg_translate_t *x = tg_translate_create(api, status, sse, true);
    size_t off = 0, take;
    int rc = TG_OK;
    char *copy;

    CHECK(x != NULL);
    while (off < n && rc == TG_OK) {
        take = split ? 1 + fuzz_next() % (n - off) : n - off;
        copy = malloc(take);
        CHECK(copy != NULL);
        memcpy(copy, p + off, take);
        rc = tg_translate_feed(x, copy, take, fuzz_emit, o);
        free(copy);
        off += take;
    }
    if (rc == TG_OK) {
        rc = tg_translate_finish(x, fuzz_emit, o);
    }
    tg_translate_destroy(x);
    return rc;
}


/* Set every "created":<digits> of <o> to 0: the translation's clock may
 * tick between the two runs. */
static void
fuzz_uncreate(fuzz_buf_t *o)
{
    char *p = o->p, *end, *d;

    if (o->len == 0) {
        return;
    }
    end = o->p + o->len;
    while ((p = memmem(p, (size_t)(end - p), "\"created\":", 10)) != NULL) {
        p += 10;
        for (d = p; d < end && *d >= '0' && *d <= '9'; d++) {
        }
        if (d > p) {
            *p = '0';
            memmove(p + 1, d, (size_t)(end - d));
            o->len -= (size_t)(d - p - 1);
            end = o->p + o->len;
        }
    }
}


/* Every "data: " line of stream output <o> is JSON or [DONE]. */
static void
fuzz_check_stream(const fuzz_buf_t *o)
{
    const char *p = o->p, *end, *nl;
    json_t *j;

    if (o->len == 0) {
        return;
    }
    end = o->p + o->len;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if ((size_t)(nl - p) > 6 && memcmp(p, "data: ", 6) == 0 &&
            !((size_t)(nl - p) == 12 && memcmp(p + 6, "[DONE]", 6) == 0)) {
            j = json_loadb(p + 6, (size_t)(nl - p - 6), 0, NULL);
            CHECK(j != NULL);
            json_decref(j);
        }
        p = nl + 1;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_buf_t a = {0}, b = {0};
    int api, status, ra, rb;
    bool sse;
    json_t *j;

    if (size < 1) {
        return 0;
    }
    api = (data[0] & 1) ? TG_API_OPENAI : TG_API_ANTHROPIC;
    sse = (data[0] & 2) != 0;
    status = (data[0] & 8) ? 529 : 200;
    fuzz_rng = 0x9e3779b9u ^ data[0];
    data++;
    size--;
    if (data[-1] & 4) {
        tg_translate_req_t q = {api, (data[-1] & 16) ? "renamed" : NULL, 4096,
                                1};
        char *out = NULL;
        size_t len = 0;
        tg_err_t err;

        ra = tg_translate_request(&q, (const char *)data, size, &out, &len,
                                  &err);
        CHECK(ra == TG_OK || ra == TG_DECLINED);
        if (ra == TG_OK) {
            j = json_loadb(out, len, 0, NULL);
            CHECK(json_is_object(j));
            json_decref(j);
        }
        free(out);
        return 0;
    }
    ra = fuzz_response(api, status, sse, data, size, false, &a);
    rb = fuzz_response(api, status, sse, data, size, true, &b);
    CHECK(ra == rb);
    fuzz_uncreate(&a);
    fuzz_uncreate(&b);
    if (ra == TG_OK) {
        CHECK(fuzz_buf_same(&a, &b));
        if (!sse || status >= 400) {
            j = a.len > 0 ? json_loadb(a.p, a.len, 0, NULL) : NULL;
            CHECK(j != NULL);
            json_decref(j);
        } else {
            fuzz_check_stream(&a);
        }
    }
    free(a.p);
    free(b.p);
    return 0;
}
