/*
 * tests/unit/test_http_chunked.c
 *      CUnit suite "http_chunked": chunked transfer decoding
 *      (tg_http_chunked_decode), whole, split at every offset, and
 *      malformed.
 */
#include "core/http.h"
#include "tests/unit/test_http.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* See test_http.h. */
int
tg_test_http_chunked_feed(const char *s, size_t n, size_t step, char *out,
                          size_t *out_n, size_t *rest, tg_err_t *err)
{
    tg_http_chunked_t ch;
    size_t fed = 0, pending = 0, used, got;
    char *buf = malloc(n + 1);
    int rc = TG_AGAIN;

    CU_ASSERT_FATAL(buf != NULL);
    tg_http_chunked_init(&ch);
    *out_n = 0;
    while (rc == TG_AGAIN && (fed < n || pending > 0)) {
        size_t add = (step == 0) ? n - fed : TG_MIN(step, n - fed);

        memcpy(buf + pending, s + fed, add);
        fed += add;
        pending += add;
        rc = tg_http_chunked_decode(&ch, buf, pending, &used, &got, err);
        CU_ASSERT(used <= pending);
        CU_ASSERT(got <= used);
        memcpy(out + *out_n, buf, got);
        *out_n += got;
        if (rc == TG_AGAIN) {
            CU_ASSERT_EQUAL(used, pending);
        }
        memmove(buf, buf + used, pending - used);
        pending -= used;
        if (rc == TG_AGAIN && add == 0) {
            break;
        }
    }
    *rest = pending + (n - fed);
    free(buf);
    return rc;
}


static void
test_decodes_chunked_in_place(void)
{
    static const char s[] = "5\r\nhello\r\n"
                            "1;name=value\r\n,\r\n"
                            "00a\r\n0123456789\r\n"
                            "0\r\n\r\n"
                            "GET /next";
    char buf[sizeof(s)];
    tg_http_chunked_t ch;
    size_t used, got;
    tg_err_t err;

    memcpy(buf, s, sizeof(s));
    tg_http_chunked_init(&ch);
    CU_ASSERT_EQUAL(
        tg_http_chunked_decode(&ch, buf, sizeof(s) - 1, &used, &got, &err),
        TG_OK);
    CU_ASSERT_EQUAL(got, 16);
    CU_ASSERT_EQUAL(memcmp(buf, "hello,0123456789", 16), 0);
    CU_ASSERT_EQUAL(used, sizeof(s) - 1 - 9);
    CU_ASSERT_EQUAL(strcmp(buf + used, "GET /next"), 0);
    /* A finished decoder consumes nothing more. */
    CU_ASSERT_EQUAL(
        tg_http_chunked_decode(&ch, buf + used, 3, &used, &got, &err), TG_OK);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(got, 0);
}


static void
test_decodes_chunked_split_at_every_offset(void)
{
    static const char s[] = "18\r\n{\"type\":\"message_start\"}\r\n"
                            "3;ext=\"q\";x\r\nabc\r\n"
                            "F\r\n0123456789ABCDE\r\n"
                            "0;last\r\n"
                            "Trailer-A: 1\r\n"
                            "x-b:\t two \r\n"
                            "\r\n"
                            "NEXT";
    static const char want[] = "{\"type\":\"message_start\"}abc0123456789ABCDE";
    size_t n = sizeof(s) - 1, step, out_n, rest, k;
    char out[256];
    tg_err_t err;

    for (step = 0; step <= n; step++) {
        CU_ASSERT_EQUAL(
            tg_test_http_chunked_feed(s, n, step, out, &out_n, &rest, &err),
            TG_OK);
        CU_ASSERT_EQUAL(out_n, sizeof(want) - 1);
        CU_ASSERT_EQUAL(memcmp(out, want, sizeof(want) - 1), 0);
        CU_ASSERT_EQUAL(rest, 4);
    }
    /* Two pieces split at every offset. */
    for (k = 0; k <= n; k++) {
        tg_http_chunked_t ch;
        size_t used, got, total = 0;
        char *a = tg_test_http_dup(s, k), *b = tg_test_http_dup(s + k, n - k);
        int rc;

        tg_http_chunked_init(&ch);
        rc = tg_http_chunked_decode(&ch, a, k, &used, &got, &err);
        memcpy(out, a, got);
        total = got;
        if (k < n - 4) {
            CU_ASSERT_EQUAL(rc, TG_AGAIN);
            CU_ASSERT_EQUAL(used, k);
            rc = tg_http_chunked_decode(&ch, b, n - k, &used, &got, &err);
            CU_ASSERT_EQUAL(rc, TG_OK);
            CU_ASSERT_EQUAL(used, n - k - 4);
            memcpy(out + total, b, got);
            total += got;
        } else {
            CU_ASSERT_EQUAL(rc, TG_OK);
            CU_ASSERT_EQUAL(used, n - 4);
        }
        CU_ASSERT_EQUAL(total, sizeof(want) - 1);
        CU_ASSERT_EQUAL(memcmp(out, want, sizeof(want) - 1), 0);
        free(a);
        free(b);
    }
}


/* See test_http.h. */
bool
tg_test_http_chunked_fails(const char *s, size_t n)
{
    size_t out_n, rest, step;
    char out[256];
    tg_err_t err;

    for (step = 0; step <= 1; step++) {
        int rc =
            tg_test_http_chunked_feed(s, n, step, out, &out_n, &rest, &err);

        if (rc != TG_ERROR || err.code != 400) {
            fprintf(stderr, "\n  expected error, got %d (step %zu): %.*s\n", rc,
                    step, (int)n, s);
            return false;
        }
    }
    return true;
}


#define CHUNKED_FAILS(s)                                                       \
    CU_ASSERT(tg_test_http_chunked_fails((s), sizeof(s) - 1))


static void
test_rejects_bad_chunk_sizes(void)
{
    CHUNKED_FAILS("\r\nabc\r\n0\r\n\r\n");
    CHUNKED_FAILS("g\r\n");
    CHUNKED_FAILS("-1\r\n");
    CHUNKED_FAILS("+1\r\n");
    CHUNKED_FAILS("0x5\r\nhello\r\n");
    CHUNKED_FAILS(" 5\r\nhello\r\n");
    CHUNKED_FAILS("5 \r\nhello\r\n");
    CHUNKED_FAILS("5 ;x\r\nhello\r\n");
    CHUNKED_FAILS("5\t\r\nhello\r\n");
    CHUNKED_FAILS(";x\r\n");
    CHUNKED_FAILS("5\nhello\r\n");
    CHUNKED_FAILS("5\rhello\r\n");
    CHUNKED_FAILS("5;a\nhello\r\n");
    CHUNKED_FAILS("5;a\x01\r\nhello\r\n");
}


static void
test_chunk_size_bounds(void)
{
    static const char max[] = "4000000000000000\r\nabc";
    static const char zeros[] = "00000000000000000000001\r\nx\r\n0\r\n\r\n";
    tg_http_chunked_t ch;
    size_t used, got;
    tg_err_t err;
    char buf[64];

    /* 2^62 itself is accepted (and the data then awaited). */
    memcpy(buf, max, sizeof(max));
    tg_http_chunked_init(&ch);
    CU_ASSERT_EQUAL(
        tg_http_chunked_decode(&ch, buf, sizeof(max) - 1, &used, &got, &err),
        TG_AGAIN);
    CU_ASSERT_EQUAL(got, 3);
    CU_ASSERT_EQUAL(ch.size, (UINT64_C(1) << 62) - 3);
    CHUNKED_FAILS("4000000000000001\r\n");
    CHUNKED_FAILS("10000000000000000\r\n");
    CHUNKED_FAILS("ffffffffffffffffffff\r\n");
    /* Leading zeros do not count against the bound. */
    memcpy(buf, zeros, sizeof(zeros));
    tg_http_chunked_init(&ch);
    CU_ASSERT_EQUAL(
        tg_http_chunked_decode(&ch, buf, sizeof(zeros) - 1, &used, &got, &err),
        TG_OK);
    CU_ASSERT_EQUAL(got, 1);
}


static void
test_rejects_missing_crlf_after_data(void)
{
    CHUNKED_FAILS("5\r\nhelloX\r\n0\r\n\r\n");
    CHUNKED_FAILS("5\r\nhello\n0\r\n\r\n");
    CHUNKED_FAILS("5\r\nhello\r0\r\n\r\n");
    CHUNKED_FAILS("5\r\nhello0\r\n\r\n");
    CHUNKED_FAILS("5\r\nhello world\r\n0\r\n\r\n");
}


static void
test_rejects_bad_trailers(void)
{
    CHUNKED_FAILS("0\r\nX: a\nY: b\r\n\r\n");
    CHUNKED_FAILS("0\r\nX: a\r\n b\r\n\r\n");
    CHUNKED_FAILS("0\r\n\tX: a\r\n\r\n");
    CHUNKED_FAILS("0\r\nX a: b\r\n\r\n");
    CHUNKED_FAILS("0\r\nX(: b\r\n\r\n");
    CHUNKED_FAILS("0\r\nX: a\x01\r\n\r\n");
    CHUNKED_FAILS("0\r\nX: a\rb\r\n\r\n");
    CHUNKED_FAILS("0\r\n\rX\r\n");
    CHUNKED_FAILS("0\r\n\n");
}


static void
test_bounds_size_lines_and_trailers(void)
{
    size_t n, i, out_n, rest;
    char *s = malloc(40000), out[16];
    tg_err_t err;

    CU_ASSERT_FATAL(s != NULL);
    /* 4 KB is the limit for a size line, extension and CRLF included. */
    n = (size_t)sprintf(s, "1;");
    memset(s + n, 'e', 4094 - n);
    n = 4094;
    n += (size_t)sprintf(s + n, "\r\nx\r\n0\r\n\r\n");
    CU_ASSERT_EQUAL(
        tg_test_http_chunked_feed(s, n, 0, out, &out_n, &rest, &err), TG_OK);
    n = (size_t)sprintf(s, "1;");
    memset(s + n, 'e', 4095 - n);
    n = 4095;
    n += (size_t)sprintf(s + n, "\r\nx\r\n0\r\n\r\n");
    CU_ASSERT_EQUAL(
        tg_test_http_chunked_feed(s, n, 0, out, &out_n, &rest, &err), TG_ERROR);

    /* One trailer line longer than 4 KB. */
    n = (size_t)sprintf(s, "0\r\nX: ");
    memset(s + n, 'v', 5000);
    n += 5000;
    n += (size_t)sprintf(s + n, "\r\n\r\n");
    CU_ASSERT_EQUAL(
        tg_test_http_chunked_feed(s, n, 0, out, &out_n, &rest, &err), TG_ERROR);

    /* Many short trailer lines adding up to more than 16 KB. */
    n = (size_t)sprintf(s, "0\r\n");
    for (i = 0; i < 2000; i++) {
        n += (size_t)sprintf(s + n, "X: 12345\r\n");
    }
    n += (size_t)sprintf(s + n, "\r\n");
    CU_ASSERT_EQUAL(
        tg_test_http_chunked_feed(s, n, 0, out, &out_n, &rest, &err), TG_ERROR);

    /* But 16 KB of trailers in total is fine. */
    n = (size_t)sprintf(s, "0\r\n");
    for (i = 0; i < 1500; i++) {
        n += (size_t)sprintf(s + n, "X: 12345\r\n");
    }
    n += (size_t)sprintf(s + n, "\r\n");
    CU_ASSERT_EQUAL(
        tg_test_http_chunked_feed(s, n, 0, out, &out_n, &rest, &err), TG_OK);
    free(s);
}


static void
test_chunked_keeps_failing_after_error(void)
{
    tg_http_chunked_t ch;
    char buf[32] = "zz\r\n";
    size_t used, got;
    tg_err_t err;

    tg_http_chunked_init(&ch);
    CU_ASSERT_EQUAL(tg_http_chunked_decode(&ch, buf, 4, &used, &got, &err),
                    TG_ERROR);
    CU_ASSERT_EQUAL(used, 0);
    memcpy(buf, "0\r\n\r\n", 5);
    CU_ASSERT_EQUAL(tg_http_chunked_decode(&ch, buf, 5, &used, &got, &err),
                    TG_ERROR);
    /* A zeroed struct is a fresh decoder, as the header promises. */
    memset(&ch, 0, sizeof(ch));
    CU_ASSERT_EQUAL(tg_http_chunked_decode(&ch, buf, 5, &used, &got, &err),
                    TG_OK);
    CU_ASSERT_EQUAL(used, 5);
}


static void
test_chunked_empty_input_is_again(void)
{
    tg_http_chunked_t ch;
    size_t used = 7, got = 7;
    tg_err_t err;
    char buf[1];

    tg_http_chunked_init(&ch);
    CU_ASSERT_EQUAL(tg_http_chunked_decode(&ch, buf, 0, &used, &got, &err),
                    TG_AGAIN);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(got, 0);
}


/* Register the "http_chunked" suite.  0 on success. */
int
tg_test_http_chunked_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"decodes a chunked body in place", test_decodes_chunked_in_place},
        {"decodes a chunked body split at every byte offset",
         test_decodes_chunked_split_at_every_offset},
        {"rejects malformed chunk sizes", test_rejects_bad_chunk_sizes},
        {"bounds chunk sizes to 2^62", test_chunk_size_bounds},
        {"rejects missing CRLF after chunk data",
         test_rejects_missing_crlf_after_data},
        {"rejects malformed trailers", test_rejects_bad_trailers},
        {"bounds chunk size lines and trailers",
         test_bounds_size_lines_and_trailers},
        {"keeps failing after a chunked error",
         test_chunked_keeps_failing_after_error},
        {"returns again on empty chunked input",
         test_chunked_empty_input_is_again},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("http_chunked", NULL, NULL);
    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
