/*
 * tests/fuzz/fuzz_http.c
 *      libFuzzer target for core/http.c: request heads, response heads and
 *      the chunked decoder.
 *
 * NOTES
 *      The first two input bytes pick max_head and seed the split points;
 *      the rest is the message.  Besides crashes (ASan, UBSan) it checks
 *      invariants that make the parsers safe to call incrementally:
 *        - head_len <= len, every parsed string lies inside the head, and
 *          nheaders <= TG_HTTP_MAX_HEADERS;
 *        - after TG_OK every shorter prefix of the head gives TG_AGAIN, and
 *          the head alone gives the same TG_OK;
 *        - the chunked decoder fed in random pieces returns the same code,
 *          consumes the same bytes and yields the same payload as when fed
 *          at once, and out_len <= used <= len on every call.
 *      Prefixes and pieces are exact-size heap copies, so any read past
 *      the bytes handed over is an ASan report.
 *      Build and run with tools/fuzz.sh.
 */
#include "core/http.h"
#include "tests/fuzz/harness.h"


static char *
fuzz_copy(const char *p, size_t n)
{
    char *q = malloc(n ? n : 1);

    CHECK(q != NULL);
    memcpy(q, p, n);
    return q;
}


static void
fuzz_str_inside(tg_str_t s, const char *buf, size_t head_len)
{
    CHECK(s.len <= head_len);
    if (s.len > 0) {
        CHECK(s.data >= buf && s.data + s.len <= buf + head_len);
    }
}


static void
fuzz_request(const char *msg, size_t len, size_t max_head)
{
    tg_http_req_t r, r2;
    tg_err_t err;
    size_t i, k;
    char *p;
    int rc;

    p = fuzz_copy(msg, len);
    rc = tg_http_parse_request(&r, p, len, max_head, &err);
    CHECK(rc == TG_OK || rc == TG_AGAIN || rc == TG_ERROR);
    if (rc == TG_ERROR) {
        CHECK(err.code >= 400 && err.code <= 505);
    }
    if (rc != TG_OK) {
        free(p);
        return;
    }
    CHECK(r.head_len <= len && r.head_len <= max_head);
    CHECK(r.nheaders <= TG_HTTP_MAX_HEADERS);
    CHECK(r.version == 10 || r.version == 11);
    CHECK(!(r.chunked && r.content_length >= 0));
    fuzz_str_inside(r.uri, p, r.head_len);
    fuzz_str_inside(r.path, p, r.head_len);
    fuzz_str_inside(r.method_name, p, r.head_len);
    for (i = 0; i < r.nheaders; i++) {
        fuzz_str_inside(r.headers[i].name, p, r.head_len);
        fuzz_str_inside(r.headers[i].value, p, r.head_len);
        CHECK(r.headers[i].name.len > 0);
    }
    free(p);

    /* Two prefixes: one random, one just short of the end. */
    for (i = 0; i < 2; i++) {
        k = (i == 0) ? fuzz_next() % r.head_len : r.head_len - 1;
        p = fuzz_copy(msg, k);
        CHECK(tg_http_parse_request(&r2, p, k, max_head, &err) == TG_AGAIN);
        free(p);
    }
    p = fuzz_copy(msg, r.head_len);
    CHECK(tg_http_parse_request(&r2, p, r.head_len, max_head, &err) == TG_OK);
    CHECK(r2.head_len == r.head_len && r2.nheaders == r.nheaders);
    CHECK(r2.content_length == r.content_length);
    CHECK(r2.keep_alive == r.keep_alive && r2.chunked == r.chunked);
    free(p);
}


static void
fuzz_response(const char *msg, size_t len, size_t max_head)
{
    tg_http_resp_t r, r2;
    tg_err_t err;
    size_t i, k;
    char *p;
    int rc;

    p = fuzz_copy(msg, len);
    rc = tg_http_parse_response(&r, p, len, max_head, &err);
    CHECK(rc == TG_OK || rc == TG_AGAIN || rc == TG_ERROR);
    if (rc == TG_ERROR) {
        CHECK(err.code == 502);
    }
    if (rc != TG_OK) {
        free(p);
        return;
    }
    CHECK(r.head_len <= len && r.head_len <= max_head);
    CHECK(r.nheaders <= TG_HTTP_MAX_HEADERS);
    CHECK(r.status >= 100 && r.status <= 999);
    fuzz_str_inside(r.reason, p, r.head_len);
    for (i = 0; i < r.nheaders; i++) {
        fuzz_str_inside(r.headers[i].name, p, r.head_len);
        fuzz_str_inside(r.headers[i].value, p, r.head_len);
    }
    free(p);
    k = fuzz_next() % r.head_len;
    p = fuzz_copy(msg, k);
    CHECK(tg_http_parse_response(&r2, p, k, max_head, &err) == TG_AGAIN);
    free(p);
}


/*
 * Decode <msg> in pieces of random size (or at once when <whole>),
 * collecting the payload in <out>.  Returns the final code; *<consumed> is
 * the input consumed in all.
 */
static int
fuzz_chunked_run(const char *msg, size_t len, bool whole, char *out,
                 size_t *out_n, size_t *consumed)
{
    tg_http_chunked_t ch;
    size_t off = 0, used, got;
    tg_err_t err;
    int rc = TG_AGAIN;

    tg_http_chunked_init(&ch);
    *out_n = 0;
    while (rc == TG_AGAIN && off < len) {
        size_t n = whole ? len : 1 + fuzz_next() % 16;
        char *p;

        n = (n > len - off) ? len - off : n;
        p = fuzz_copy(msg + off, n);
        rc = tg_http_chunked_decode(&ch, p, n, &used, &got, &err);
        CHECK(used <= n && got <= used);
        if (rc == TG_AGAIN) {
            CHECK(used == n);
        }
        if (rc == TG_ERROR) {
            CHECK(err.code == 400);
        }
        memcpy(out + *out_n, p, got);
        *out_n += got;
        off += used;
        free(p);
    }
    *consumed = off;
    return rc;
}


static void
fuzz_chunked(const char *msg, size_t len)
{
    size_t n1, n2, c1, c2;
    char *o1 = malloc(len + 1), *o2 = malloc(len + 1);
    int rc1, rc2;

    CHECK(o1 != NULL && o2 != NULL);
    rc1 = fuzz_chunked_run(msg, len, true, o1, &n1, &c1);
    rc2 = fuzz_chunked_run(msg, len, false, o2, &n2, &c2);
    CHECK(rc1 == rc2);
    CHECK(c1 == c2);
    CHECK(n1 == n2 && memcmp(o1, o2, n1) == 0);
    CHECK(n1 <= c1);
    free(o1);
    free(o2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg;
    size_t len, max_head;

    if (size < 2) {
        return 0;
    }
    /* Small bounds are the interesting ones: 431 paths and exact fits. */
    max_head = 1 + (((size_t)data[0] << 8 | data[1]) % 4096);
    fuzz_rng =
        0x9e3779b9u ^ ((uint32_t)data[0] << 8 | data[1]) ^ (uint32_t)size;
    msg = (const char *)data + 2;
    len = size - 2;
    fuzz_request(msg, len, max_head);
    fuzz_request(msg, len, 65536);
    fuzz_response(msg, len, 65536);
    fuzz_chunked(msg, len);
    return 0;
}
