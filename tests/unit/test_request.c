/*
 * tests/unit/test_request.c
 *      CUnit suite "request": the end's decision (outcome per cause) and
 *      the response framing every response goes through.
 *
 * NOTES
 *      The outcome table is the contract of tg_request_end: every cause,
 *      before and after the response head went out, with and without an
 *      error event in the stream.  Mismatches print both values.
 */
#include "core/core.h"
#include "shm/ring.h"
#include "tests/unit/unit.h"
#include "worker/request.h"
#include "worker/respond.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>


static void
test_outcome_per_cause(void)
{
    static const struct {
        int cause;
        bool committed, error_event;
        int want;
    } cases[] = {
        {TG_END_OK, true, false, TG_USAGE_OK},
        {TG_END_OK, true, true, TG_USAGE_UPSTREAM_ERROR},
        {TG_END_OK, false, false, TG_USAGE_OK},
        {TG_END_REFUSED, false, false, TG_USAGE_REJECTED},
        {TG_END_BAD_REQUEST, false, false, TG_USAGE_REJECTED},
        {TG_END_TIMEOUT, false, false, TG_USAGE_TIMEOUT},
        {TG_END_TIMEOUT, true, false, TG_USAGE_BROKEN},
        {TG_END_UPSTREAM, false, false, TG_USAGE_UPSTREAM_ERROR},
        {TG_END_UPSTREAM, true, false, TG_USAGE_BROKEN},
        {TG_END_UPSTREAM, true, true, TG_USAGE_BROKEN},
        {TG_END_CLIENT_GONE, false, false, TG_USAGE_CLIENT_GONE},
        {TG_END_CLIENT_GONE, true, true, TG_USAGE_CLIENT_GONE},
        {TG_END_INTERNAL, false, false, TG_USAGE_REJECTED},
        {TG_END_INTERNAL, true, false, TG_USAGE_BROKEN},
    };
    size_t i;
    int got;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        got = tg_request_outcome(cases[i].cause, cases[i].committed,
                                 cases[i].error_event);
        if (got != cases[i].want) {
            fprintf(stderr, "\n  case %zu (cause %d): outcome %d, want %d", i,
                    cases[i].cause, got, cases[i].want);
        }
        CU_ASSERT_EQUAL(got, cases[i].want);
    }
}


/* <b> holds exactly <want>. */
static void
expect_buf(const tg_buf_t *b, const char *want)
{
    size_t n = tg_buf_len(b);
    bool same = n == strlen(want) && memcmp(b->data + b->pos, want, n) == 0;

    if (!same) {
        fprintf(stderr, "\n  got  \"%.*s\"\n  want \"%s\"", (int)n,
                b->data + b->pos, want);
    }
    CU_ASSERT(same);
}


static void
test_respond_frames_known_length(void)
{
    tg_http_header_t hs[3] = {
        {tg_str_lit("content-type"), tg_str_lit("application/json")},
        {tg_str_lit("Transfer-Encoding"), tg_str_lit("chunked")},
        {tg_str_lit("content-length"), tg_str_lit("999")},
    };
    tg_respond_head_t h = {.status = 200,
                           .version = 11,
                           .content_length = 5,
                           .headers = hs,
                           .nheaders = 3,
                           .req_id = 0x1234};
    tg_respond_t o;
    tg_buf_t b;

    tg_buf_init(&b, 65536);
    CU_ASSERT_EQUAL(tg_respond_head(&o, &b, &h), TG_OK);
    CU_ASSERT_EQUAL(tg_respond_body(&o, &b, "hello", 5), TG_OK);
    CU_ASSERT_EQUAL(tg_respond_end(&o, &b), TG_OK);
    expect_buf(&b, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                   "content-length: 5\r\n"
                   "x-tollgate-request-id: 0000000000001234\r\n\r\nhello");
    CU_ASSERT(o.committed && o.ended && !o.chunked && !o.close);
    CU_ASSERT_EQUAL(o.body_bytes, 5);
    tg_buf_fini(&b);
}


static void
test_respond_frames_chunks_and_http10(void)
{
    tg_respond_head_t h = {.status = 200,
                           .version = 11,
                           .content_length = -1,
                           .req_id = 1,
                           .close = true,
                           .extra = "x-a: b\r\n"};
    tg_respond_t o;
    tg_buf_t b;

    tg_buf_init(&b, 65536);
    CU_ASSERT_EQUAL(tg_respond_head(&o, &b, &h), TG_OK);
    CU_ASSERT_EQUAL(tg_respond_body(&o, &b, "abc", 3), TG_OK);
    CU_ASSERT_EQUAL(tg_respond_body(&o, &b, "", 0), TG_OK);
    CU_ASSERT_EQUAL(tg_respond_end(&o, &b), TG_OK);
    expect_buf(&b, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                   "x-tollgate-request-id: 0000000000000001\r\n"
                   "connection: close\r\nx-a: b\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    /* An HTTP/1.0 client: no chunks, the end is the connection's. */
    h.version = 10;
    h.close = false;
    h.extra = NULL;
    CU_ASSERT_EQUAL(tg_respond_head(&o, &b, &h), TG_OK);
    CU_ASSERT(o.close && !o.chunked);
    CU_ASSERT_EQUAL(tg_respond_body(&o, &b, "abc", 3), TG_OK);
    expect_buf(&b, "HTTP/1.1 200 OK\r\n"
                   "x-tollgate-request-id: 0000000000000001\r\n"
                   "connection: close\r\n\r\nabc");
    /* Past the bound: refused, never grown. */
    tg_buf_fini(&b);
    tg_buf_init(&b, 64);
    CU_ASSERT_NOT_EQUAL(tg_respond_head(&o, &b, &h), TG_OK);
    tg_buf_fini(&b);
}


static void
test_respond_error_bodies(void)
{
    char buf[512];
    size_t n;

    n = tg_respond_error_body(buf, sizeof(buf), TG_API_ANTHROPIC,
                              "authentication_error", "invalid_api_key",
                              "bad \"key\"");
    CU_ASSERT_EQUAL(n, strlen(buf));
    CU_ASSERT_STRING_EQUAL(buf, "{\"type\":\"error\",\"error\":{\"type\":"
                                "\"authentication_error\",\"message\":"
                                "\"bad \\\"key\\\"\"}}");
    n = tg_respond_error_body(buf, sizeof(buf), TG_API_OPENAI,
                              "rate_limit_error", NULL, "slow down");
    CU_ASSERT_STRING_EQUAL(buf, "{\"error\":{\"message\":\"slow down\","
                                "\"type\":\"rate_limit_error\",\"param\":"
                                "null,\"code\":null}}");
    CU_ASSERT_EQUAL(n, strlen(buf));
}


/* See unit.h. */
int
tg_test_request_register(void)
{
    CU_pSuite s = CU_add_suite("request", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "each end cause gives its outcome, once decided",
                    test_outcome_per_cause) == NULL ||
        CU_add_test(s,
                    "a response of known length keeps it and drops hop "
                    "headers",
                    test_respond_frames_known_length) == NULL ||
        CU_add_test(s,
                    "an unknown length is chunked for HTTP/1.1 and "
                    "closes for HTTP/1.0",
                    test_respond_frames_chunks_and_http10) == NULL ||
        CU_add_test(s, "error bodies come in each API's shape",
                    test_respond_error_bodies) == NULL) {
        return -1;
    }
    return 0;
}
