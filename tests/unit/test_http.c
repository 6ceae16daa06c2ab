/*
 * tests/unit/test_http.c
 *      CUnit suite "http": request and response heads, reason phrases,
 *      hop-by-hop headers (chunked decoding: test_http_chunked.c).
 *
 * NOTES
 *      Every parse works on a heap copy of exactly the bytes under test,
 *      so that the ASan build catches any read past the input.  Smuggling
 *      payloads are also kept as data-driven cases in
 *      tests/data/http/request/<case>/{input,expected}, where expected is
 *      "ok <head_len>" or "error <code>".
 */
#include "tests/unit/test_http.h"
#include "core/http.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEAD 8192

/* A parsed request with its own copy of the input, freed by req_free. */
typedef struct {
    char *buf;
    size_t len;
    tg_http_req_t r;
    tg_err_t err;
    int rc;
} req_t;


/* See test_http.h. */
char *
tg_test_http_dup(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);

    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, s, n);
    return p;
}


static int
req_parse_n(req_t *q, const char *s, size_t n, size_t max_head)
{
    memset(q, 0, sizeof(*q));
    q->buf = tg_test_http_dup(s, n);
    q->len = n;
    q->rc = tg_http_parse_request(&q->r, q->buf, n, max_head, &q->err);
    return q->rc;
}


static int
req_parse(req_t *q, const char *s)
{
    return req_parse_n(q, s, strlen(s), MAX_HEAD);
}


static void
req_free(req_t *q)
{
    free(q->buf);
    q->buf = NULL;
}


static bool
str_is(tg_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.data, lit, s.len) == 0;
}


/* True when request <s> of <n> bytes fails with status <code>. */
static bool
req_fails(const char *s, size_t n, int code)
{
    req_t q;
    bool ok;

    req_parse_n(&q, s, n, MAX_HEAD);
    ok = (q.rc == TG_ERROR && q.err.code == code);
    if (!ok) {
        fprintf(stderr, "\n  expected error %d, got rc %d code %d (%s): %.*s\n",
                code, q.rc, q.err.code, q.err.text, (int)n, s);
    }
    req_free(&q);
    return ok;
}


/* True when request <s> of <n> bytes parses completely. */
static bool
req_ok(const char *s, size_t n)
{
    req_t q;
    bool ok;

    req_parse_n(&q, s, n, MAX_HEAD);
    ok = (q.rc == TG_OK && q.r.head_len == n);
    if (!ok) {
        fprintf(stderr, "\n  expected ok, got rc %d code %d (%s): %.*s\n", q.rc,
                q.err.code, q.err.text, (int)n, s);
    }
    req_free(&q);
    return ok;
}


#define REQ_FAILS(s, code) CU_ASSERT(req_fails((s), sizeof(s) - 1, (code)))
#define REQ_OK(s)          CU_ASSERT(req_ok((s), sizeof(s) - 1))
#define H                  "Host: api.example.com\r\n"


static void
test_parses_simple_get(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q, "GET /v1/models HTTP/1.1\r\n" H "\r\n"),
                    TG_OK);
    CU_ASSERT_EQUAL(q.r.method, TG_HTTP_GET);
    CU_ASSERT(str_is(q.r.method_name, "GET"));
    CU_ASSERT(str_is(q.r.uri, "/v1/models"));
    CU_ASSERT(str_is(q.r.path, "/v1/models"));
    CU_ASSERT_EQUAL(q.r.query.len, 0);
    CU_ASSERT_EQUAL(q.r.version, 11);
    CU_ASSERT_EQUAL(q.r.nheaders, 1);
    CU_ASSERT(str_is(q.r.headers[0].name, "Host"));
    CU_ASSERT(str_is(q.r.headers[0].value, "api.example.com"));
    CU_ASSERT_EQUAL(q.r.content_length, -1);
    CU_ASSERT_FALSE(q.r.chunked);
    CU_ASSERT_TRUE(q.r.keep_alive);
    CU_ASSERT_FALSE(q.r.expect_continue);
    CU_ASSERT_EQUAL(q.r.head_len, q.len);
    req_free(&q);
}


static void
test_parses_post_with_headers(void)
{
    static const char s[] = "POST /v1/messages HTTP/1.1\r\n"
                            "Host: api.example.com\r\n"
                            "x-api-key:   sk-ant-123  \r\n"
                            "content-type:application/json\r\n"
                            "Content-Length: 18\r\n"
                            "X-Empty:\r\n"
                            "X-Spaces: \t \r\n"
                            "\r\n"
                            "{\"model\":\"claude\"}";
    const tg_http_header_t *h;
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q, s), TG_OK);
    CU_ASSERT_EQUAL(q.r.method, TG_HTTP_POST);
    CU_ASSERT_EQUAL(q.r.content_length, 18);
    CU_ASSERT_EQUAL(q.r.nheaders, 6);
    CU_ASSERT_EQUAL(q.r.head_len, sizeof(s) - 1 - 18);
    h = tg_http_find_header(q.r.headers, q.r.nheaders, tg_str_lit("X-API-KEY"));
    CU_ASSERT_FATAL(h != NULL);
    CU_ASSERT(str_is(h->value, "sk-ant-123"));
    h = tg_http_find_header(q.r.headers, q.r.nheaders,
                            tg_str_lit("Content-Type"));
    CU_ASSERT_FATAL(h != NULL);
    CU_ASSERT(str_is(h->value, "application/json"));
    CU_ASSERT(str_is(q.r.headers[4].value, ""));
    CU_ASSERT(str_is(q.r.headers[5].value, ""));
    CU_ASSERT_PTR_NULL(tg_http_find_header(q.r.headers, q.r.nheaders,
                                           tg_str_lit("x-missing")));
    req_free(&q);
}


static void
test_maps_methods(void)
{
    static const struct {
        const char *req;
        int method;
    } cases[] = {
        {"GET / HTTP/1.1\r\n" H "\r\n", TG_HTTP_GET},
        {"HEAD / HTTP/1.1\r\n" H "\r\n", TG_HTTP_HEAD},
        {"POST / HTTP/1.1\r\n" H "\r\n", TG_HTTP_POST},
        {"PUT / HTTP/1.1\r\n" H "\r\n", TG_HTTP_PUT},
        {"DELETE / HTTP/1.1\r\n" H "\r\n", TG_HTTP_DELETE},
        {"PATCH / HTTP/1.1\r\n" H "\r\n", TG_HTTP_PATCH},
        {"OPTIONS / HTTP/1.1\r\n" H "\r\n", TG_HTTP_OPTIONS},
        {"get / HTTP/1.1\r\n" H "\r\n", TG_HTTP_UNKNOWN},
        {"BREW / HTTP/1.1\r\n" H "\r\n", TG_HTTP_UNKNOWN},
        {"M-SEARCH / HTTP/1.1\r\n" H "\r\n", TG_HTTP_UNKNOWN},
    };
    size_t i;
    req_t q;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        CU_ASSERT_EQUAL(req_parse(&q, cases[i].req), TG_OK);
        CU_ASSERT_EQUAL(q.r.method, cases[i].method);
        CU_ASSERT_EQUAL(q.r.method_name.data, q.buf);
        req_free(&q);
    }
}


static void
test_splits_path_and_query(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q,
                              "GET /v1/models?limit=20&after=x?y HTTP/1.1\r\n" H
                              "\r\n"),
                    TG_OK);
    CU_ASSERT(str_is(q.r.path, "/v1/models"));
    CU_ASSERT(str_is(q.r.query, "limit=20&after=x?y"));
    CU_ASSERT(str_is(q.r.uri, "/v1/models?limit=20&after=x?y"));
    req_free(&q);

    CU_ASSERT_EQUAL(req_parse(&q, "GET /? HTTP/1.1\r\n" H "\r\n"), TG_OK);
    CU_ASSERT(str_is(q.r.path, "/"));
    CU_ASSERT_EQUAL(q.r.query.len, 0);
    req_free(&q);
}


static void
test_accepts_asterisk_only_for_options(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q, "OPTIONS * HTTP/1.1\r\n" H "\r\n"), TG_OK);
    CU_ASSERT(str_is(q.r.uri, "*"));
    CU_ASSERT(str_is(q.r.path, "*"));
    req_free(&q);
    REQ_FAILS("GET * HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("OPTIONS ** HTTP/1.1\r\n" H "\r\n", 400);
}


static void
test_rejects_non_origin_form(void)
{
    REQ_FAILS("GET http://evil.example/ HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("CONNECT api.example.com:443 HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET v1/messages HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET ?a=b HTTP/1.1\r\n" H "\r\n", 400);
}


static void
test_rejects_bad_request_target(void)
{
    REQ_FAILS("GET /a b HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /a\tb HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /a\x7f HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /a#frag HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /a\0b HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET  / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /  HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET /\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1 \r\n" H "\r\n", 400);
}


static void
test_rejects_bad_method(void)
{
    REQ_FAILS("G(ET / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GE T / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS(" GET / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("G\x80T / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET\t/ HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("/ HTTP/1.1\r\n" H "\r\n", 400);
}


static void
test_rejects_bad_header_names(void)
{
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X(y): 1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X y: 1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H ": 1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X\x80y: 1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X@y: 1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "Xy\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X\"y: 1\r\n\r\n", 400);
    REQ_OK("GET / HTTP/1.1\r\n" H "X-!#$%&'*+.^_`|~09az: 1\r\n\r\n");
}


static void
test_rejects_whitespace_before_colon(void)
{
    REQ_FAILS("GET / HTTP/1.1\r\n" H "Content-Length : 0\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "Transfer-Encoding\t: chunked\r\n\r\n",
              400);
}


static void
test_rejects_obs_fold(void)
{
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\r\n b\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400);
}


static void
test_rejects_bare_lf(void)
{
    REQ_FAILS("GET / HTTP/1.1\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\nb\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "\n", 400);
    REQ_FAILS("GET / HTTP/1.1\n\n", 400);
    REQ_FAILS("\nGET / HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("\r\n\nGET / HTTP/1.1\r\n" H "\r\n", 400);
}


static void
test_rejects_bare_lf_before_head_is_complete(void)
{
    req_t q;

    /* No CRLF CRLF yet, but the bare LF is already a certain error. */
    CU_ASSERT_EQUAL(req_parse(&q, "GET / HTTP/1.1\nHost: a"), TG_ERROR);
    CU_ASSERT_EQUAL(q.err.code, 400);
    CU_ASSERT_EQUAL(q.err.offset, 14);
    req_free(&q);
}


static void
test_rejects_bare_cr(void)
{
    REQ_FAILS("GET / HTTP/1.1\r" H "\r\n\r\n", 400);
    REQ_FAILS("GET /a\rb HTTP/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\r\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "\rX-A: a\r\n\r\n", 400);
}


static void
test_rejects_control_chars_in_values(void)
{
    static const char ok[] =
        "GET / HTTP/1.1\r\n" H "X-A: a\tb \xff\x80 c\r\n\r\n";
    char s[64];
    int c;

    REQ_OK(ok);
    for (c = 0; c < 0x20; c++) {
        int n;

        if (c == '\t' || c == '\r' || c == '\n') {
            continue;
        }
        n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a%cb\r\n\r\n", 'x');
        s[23] = (char)c;
        CU_ASSERT(req_fails(s, (size_t)n, 400));
    }
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: a\x7f\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\n" H "X-A: \0\r\n\r\n", 400);
}


static void
test_rejects_cl_with_te(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\n"
              "Transfer-Encoding: chunked\r\n\r\n",
              400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
              "Content-Length: 5\r\n\r\n",
              400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n"
              "Content-Length: 5\r\n\r\n",
              400);
}


static void
test_accepts_identical_duplicate_cl(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q,
                              "POST / HTTP/1.1\r\n" H "Content-Length: 42\r\n"
                              "content-length: 42\r\n\r\n"),
                    TG_OK);
    CU_ASSERT_EQUAL(q.r.content_length, 42);
    req_free(&q);
}


static void
test_rejects_differing_duplicate_cl(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 42\r\n"
              "Content-Length: 43\r\n\r\n",
              400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 42\r\n"
              "Content-Length: 042\r\n\r\n",
              400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n"
              "Content-Length: \r\n\r\n",
              400);
}


static void
test_rejects_non_digit_cl(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 5,5\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: 1e3\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Content-Length: \xd9\xa3\r\n\r\n", 400);
}


static void
test_cl_bounds(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q,
                              "POST / HTTP/1.1\r\n" H
                              "Content-Length: 9223372036854775807\r\n\r\n"),
                    TG_OK);
    CU_ASSERT_EQUAL(q.r.content_length, INT64_MAX);
    req_free(&q);
    CU_ASSERT_EQUAL(
        req_parse(&q, "POST / HTTP/1.1\r\n" H "Content-Length: 000\r\n\r\n"),
        TG_OK);
    CU_ASSERT_EQUAL(q.r.content_length, 0);
    req_free(&q);
    REQ_FAILS("POST / HTTP/1.1\r\n" H
              "Content-Length: 9223372036854775808\r\n\r\n",
              400);
    REQ_FAILS("POST / HTTP/1.1\r\n" H
              "Content-Length: 99999999999999999999999\r\n\r\n",
              400);
}


static void
test_rejects_te_other_than_chunked(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H
              "Transfer-Encoding: gzip, chunked\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H
              "Transfer-Encoding: chunked, gzip\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked,\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunk\r\n\r\n", 501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 501);
}


static void
test_accepts_chunked_in_any_case(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q, "POST / HTTP/1.1\r\n" H
                                  "transfer-encoding:  Chunked \r\n\r\n"),
                    TG_OK);
    CU_ASSERT_TRUE(q.r.chunked);
    CU_ASSERT_EQUAL(q.r.content_length, -1);
    req_free(&q);
}


static void
test_rejects_repeated_te(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
              "Transfer-Encoding: chunked\r\n\r\n",
              501);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
              "Transfer-encoding: cow\r\n\r\n",
              501);
}


static void
test_rejects_te_in_http10(void)
{
    REQ_FAILS("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}


static void
test_rejects_unsupported_versions(void)
{
    REQ_FAILS("GET / HTTP/2.0\r\n" H "\r\n", 505);
    REQ_FAILS("GET / HTTP/0.9\r\n" H "\r\n", 505);
    REQ_FAILS("GET / HTTP/1.2\r\n" H "\r\n", 505);
    REQ_FAILS("GET / HTTP/3.0\r\n" H "\r\n", 505);
}


static void
test_rejects_malformed_versions(void)
{
    REQ_FAILS("GET / HTTP/1.1x\r\n" H "\r\n", 400);
    REQ_FAILS("GET / http/1.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/11\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/1.\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/1\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/10.1\r\n" H "\r\n", 400);
    REQ_FAILS("GET / HTTP/2\r\n" H "\r\n", 400);
    REQ_FAILS("GET / \r\n" H "\r\n", 400);
}


static void
test_requires_one_host_in_http11(void)
{
    req_t q;

    REQ_FAILS("GET / HTTP/1.1\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    REQ_FAILS("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400);
    CU_ASSERT_EQUAL(req_parse(&q, "GET / HTTP/1.0\r\n\r\n"), TG_OK);
    CU_ASSERT_EQUAL(q.r.version, 10);
    req_free(&q);
}


static bool
keep_alive_of(const char *s)
{
    req_t q;
    bool ka;

    CU_ASSERT_EQUAL(req_parse(&q, s), TG_OK);
    ka = q.r.keep_alive;
    req_free(&q);
    return ka;
}


static void
test_keep_alive_http11(void)
{
    CU_ASSERT_TRUE(keep_alive_of("GET / HTTP/1.1\r\n" H "\r\n"));
    CU_ASSERT_TRUE(
        keep_alive_of("GET / HTTP/1.1\r\n" H "Connection: keep-alive\r\n\r\n"));
    CU_ASSERT_FALSE(
        keep_alive_of("GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n"));
    CU_ASSERT_FALSE(
        keep_alive_of("GET / HTTP/1.1\r\n" H "connection: CLOSE\r\n\r\n"));
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.1\r\n" H
                                  "Connection: Upgrade , close \r\n\r\n"));
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.1\r\n" H
                                  "Connection: keep-alive\r\n"
                                  "Connection: close\r\n\r\n"));
    CU_ASSERT_TRUE(
        keep_alive_of("GET / HTTP/1.1\r\n" H "Connection: closed\r\n\r\n"));
    CU_ASSERT_TRUE(
        keep_alive_of("GET / HTTP/1.1\r\n" H "Connection: ,,\r\n\r\n"));
}


static void
test_keep_alive_http10(void)
{
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
    CU_ASSERT_TRUE(
        keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CU_ASSERT_TRUE(
        keep_alive_of("GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n"));
    CU_ASSERT_FALSE(keep_alive_of(
        "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}


static void
test_expect_continue(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q,
                              "POST / HTTP/1.1\r\n" H "Expect: 100-Continue\r\n"
                              "Content-Length: 10\r\n\r\n"),
                    TG_OK);
    CU_ASSERT_TRUE(q.r.expect_continue);
    req_free(&q);
    /* HTTP/1.0 expectations are ignored. */
    CU_ASSERT_EQUAL(req_parse(&q, "POST / HTTP/1.0\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    TG_OK);
    CU_ASSERT_FALSE(q.r.expect_continue);
    req_free(&q);
    CU_ASSERT_EQUAL(req_parse(&q, "POST / HTTP/1.0\r\nExpect: foo\r\n\r\n"),
                    TG_OK);
    req_free(&q);
}


static void
test_rejects_other_expectations(void)
{
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n", 417);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Expect: 100-continue, foo\r\n\r\n", 417);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Expect:\r\n\r\n", 417);
    REQ_FAILS("POST / HTTP/1.1\r\n" H "Expect: 100-continue\r\n"
              "Expect: 100-continue\r\n\r\n",
              417);
}


static void
test_ignores_one_leading_empty_line(void)
{
    req_t q;

    CU_ASSERT_EQUAL(req_parse(&q, "\r\nGET / HTTP/1.1\r\n" H "\r\n"), TG_OK);
    CU_ASSERT_EQUAL(q.r.head_len, q.len);
    CU_ASSERT_EQUAL(q.r.method_name.data, q.buf + 2);
    req_free(&q);
    REQ_FAILS("\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 400);
}


static void
test_pipelined_requests(void)
{
    static const char s[] =
        "POST /v1/messages HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n"
        "hello"
        "GET /v1/models HTTP/1.1\r\n" H "\r\n"
        "GET /health HTTP/1.1\r\n" H "Connection: close\r\n"
        "\r\n";
    size_t off = 0, n = sizeof(s) - 1;
    tg_http_req_t r;
    tg_err_t err;
    char *buf = tg_test_http_dup(s, n);

    CU_ASSERT_EQUAL(tg_http_parse_request(&r, buf, n, MAX_HEAD, &err), TG_OK);
    CU_ASSERT(str_is(r.path, "/v1/messages"));
    CU_ASSERT_EQUAL(r.head_len, strlen("POST /v1/messages HTTP/1.1\r\n" H
                                       "Content-Length: 5\r\n\r\n"));
    off = r.head_len + 5;
    CU_ASSERT_EQUAL(
        tg_http_parse_request(&r, buf + off, n - off, MAX_HEAD, &err), TG_OK);
    CU_ASSERT(str_is(r.path, "/v1/models"));
    CU_ASSERT_TRUE(r.keep_alive);
    off += r.head_len;
    CU_ASSERT_EQUAL(
        tg_http_parse_request(&r, buf + off, n - off, MAX_HEAD, &err), TG_OK);
    CU_ASSERT(str_is(r.path, "/health"));
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_EQUAL(off + r.head_len, n);
    free(buf);
}


/* The fields two parses of the same request must agree on. */
static bool
req_same(const tg_http_req_t *a, const char *abuf, const tg_http_req_t *b,
         const char *bbuf)
{
    size_t i;

#define SAME_STR(x, y)                                                         \
    ((x).len == (y).len && (x).data - abuf == (y).data - bbuf)
    if (a->method != b->method || !SAME_STR(a->method_name, b->method_name) ||
        !SAME_STR(a->uri, b->uri) || !SAME_STR(a->path, b->path) ||
        !SAME_STR(a->query, b->query) || a->version != b->version ||
        a->nheaders != b->nheaders || a->content_length != b->content_length ||
        a->chunked != b->chunked || a->keep_alive != b->keep_alive ||
        a->expect_continue != b->expect_continue ||
        a->head_len != b->head_len) {
        return false;
    }
    for (i = 0; i < a->nheaders; i++) {
        if (!SAME_STR(a->headers[i].name, b->headers[i].name) ||
            !SAME_STR(a->headers[i].value, b->headers[i].value)) {
            return false;
        }
    }
#undef SAME_STR
    return true;
}


static void
test_every_prefix_is_again(void)
{
    static const char *reqs[] = {
        "POST /v1/messages?beta=true HTTP/1.1\r\n" H
        "x-api-key: sk-ant-api03-xyz\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "Content-Length: 2\r\n"
        "Expect: 100-continue\r\n\r\n{}",
        "\r\nGET /v1/models?a=1&b=2 HTTP/1.0\r\n"
        "Connection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n" H "\r\n",
    };
    size_t i, k, n, body;
    tg_http_req_t whole, part;
    tg_err_t err;

    for (i = 0; i < TG_NELEMS(reqs); i++) {
        char *buf;

        n = strlen(reqs[i]);
        buf = tg_test_http_dup(reqs[i], n);
        CU_ASSERT_EQUAL_FATAL(
            tg_http_parse_request(&whole, buf, n, MAX_HEAD, &err), TG_OK);
        body = n - whole.head_len;
        for (k = 0; k < n - body; k++) {
            /* An exact-size copy, so ASan sees any read past the prefix. */
            char *p = tg_test_http_dup(reqs[i], k);
            int rc = tg_http_parse_request(&part, p, k, MAX_HEAD, &err);

            CU_ASSERT_EQUAL(rc, TG_AGAIN);
            if (rc != TG_AGAIN) {
                fprintf(stderr, "\n  case %zu prefix %zu: rc %d (%s)\n", i, k,
                        rc, err.text);
            }
            free(p);
        }
        for (k = n - body; k <= n; k++) {
            CU_ASSERT_EQUAL(
                tg_http_parse_request(&part, buf, k, MAX_HEAD, &err), TG_OK);
            CU_ASSERT(req_same(&whole, buf, &part, buf));
        }
        free(buf);
    }
}


static void
test_431_when_head_exceeds_max_head(void)
{
    static const char s[] = "GET / HTTP/1.1\r\n" H "X-Pad: 0123456789\r\n\r\n";
    size_t n = sizeof(s) - 1;
    req_t q;

    /* Exactly max_head bytes is still fine. */
    CU_ASSERT_EQUAL(req_parse_n(&q, s, n, n), TG_OK);
    req_free(&q);
    CU_ASSERT_EQUAL(req_parse_n(&q, s, n, n - 1), TG_ERROR);
    CU_ASSERT_EQUAL(q.err.code, 431);
    req_free(&q);
    /* Incomplete, and already max_head bytes: no point waiting. */
    CU_ASSERT_EQUAL(req_parse_n(&q, s, 30, 30), TG_ERROR);
    CU_ASSERT_EQUAL(q.err.code, 431);
    req_free(&q);
    CU_ASSERT_EQUAL(req_parse_n(&q, s, 29, 30), TG_AGAIN);
    req_free(&q);
    CU_ASSERT_EQUAL(req_parse_n(&q, s, 0, 30), TG_AGAIN);
    req_free(&q);
}


/* Build a request with <n> "X-H<i>: v" headers after Host. */
static char *
many_headers(size_t n, size_t *len)
{
    size_t cap = 64 + n * 32, off = 0, i;
    char *s = malloc(cap);

    CU_ASSERT_FATAL(s != NULL);
    off += (size_t)snprintf(s + off, cap - off, "GET / HTTP/1.1\r\n" H);
    for (i = 0; i < n; i++) {
        off += (size_t)snprintf(s + off, cap - off, "X-H%zu: v\r\n", i);
    }
    off += (size_t)snprintf(s + off, cap - off, "\r\n");
    *len = off;
    return s;
}


static void
test_header_count_limit(void)
{
    size_t len;
    char *s;
    req_t q;

    s = many_headers(TG_HTTP_MAX_HEADERS - 1, &len);
    CU_ASSERT_EQUAL(req_parse_n(&q, s, len, 65536), TG_OK);
    CU_ASSERT_EQUAL(q.r.nheaders, TG_HTTP_MAX_HEADERS);
    CU_ASSERT(str_is(q.r.headers[TG_HTTP_MAX_HEADERS - 1].value, "v"));
    req_free(&q);
    free(s);

    s = many_headers(TG_HTTP_MAX_HEADERS, &len);
    CU_ASSERT_EQUAL(req_parse_n(&q, s, len, 65536), TG_ERROR);
    CU_ASSERT_EQUAL(q.err.code, 431);
    req_free(&q);
    /* Refused before the head is complete, too. */
    CU_ASSERT_EQUAL(req_parse_n(&q, s, len - 2, 65536), TG_ERROR);
    CU_ASSERT_EQUAL(q.err.code, 431);
    req_free(&q);
    free(s);
}


static void
test_data_driven_requests(void)
{
    char dir[512], path[1024], input[16384], expected[64], word[16];
    struct dirent *de;
    size_t ncases = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/tests/data/http/request", tg_test_srcdir());
    d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d)) != NULL) {
        size_t n, m;
        long num = 0;
        FILE *f;
        req_t q;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/input", dir, de->d_name);
        f = fopen(path, "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        n = fread(input, 1, sizeof(input), f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/%s/expected", dir, de->d_name);
        f = fopen(path, "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        m = fread(expected, 1, sizeof(expected) - 1, f);
        fclose(f);
        expected[m] = '\0';
        CU_ASSERT_EQUAL_FATAL(sscanf(expected, "%15s %ld", word, &num), 2);

        req_parse_n(&q, input, n, MAX_HEAD);
        if (strcmp(word, "ok") == 0) {
            CU_ASSERT(q.rc == TG_OK && (long)q.r.head_len == num);
        } else {
            CU_ASSERT(q.rc == TG_ERROR && q.err.code == num);
        }
        if (!(q.rc == (strcmp(word, "ok") == 0 ? TG_OK : TG_ERROR))) {
            fprintf(stderr, "\n  case %s: rc %d code %d (%s)\n", de->d_name,
                    q.rc, q.err.code, q.err.text);
        }
        req_free(&q);
        ncases++;
    }
    closedir(d);
    CU_ASSERT(ncases >= 10);
}


/* Responses. */

static int
resp_parse(tg_http_resp_t *r, const char *s, char **buf, tg_err_t *err)
{
    size_t n = strlen(s);

    *buf = tg_test_http_dup(s, n);
    return tg_http_parse_response(r, *buf, n, MAX_HEAD, err);
}


static bool
resp_fails(const char *s)
{
    tg_http_resp_t r;
    tg_err_t err = {0};
    char *buf;
    int rc = resp_parse(&r, s, &buf, &err);

    free(buf);
    if (rc != TG_ERROR || err.code != 502) {
        fprintf(stderr, "\n  expected 502, got rc %d: %s\n", rc, s);
        return false;
    }
    return true;
}


static void
test_parses_response(void)
{
    static const char s[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/event-stream\r\n"
                            "Transfer-Encoding: chunked\r\n"
                            "request-id: req_01\r\n\r\n"
                            "5\r\nhello\r\n";
    tg_http_resp_t r;
    tg_err_t err;
    char *buf;

    CU_ASSERT_EQUAL(resp_parse(&r, s, &buf, &err), TG_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.version, 11);
    CU_ASSERT(str_is(r.reason, "OK"));
    CU_ASSERT_EQUAL(r.nheaders, 3);
    CU_ASSERT_TRUE(r.chunked);
    CU_ASSERT_TRUE(r.keep_alive);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_EQUAL(r.head_len, sizeof(s) - 1 - strlen("5\r\nhello\r\n"));
    free(buf);

    CU_ASSERT_EQUAL(resp_parse(&r,
                               "HTTP/1.0 529 Site Is Overloaded\r\n"
                               "Content-Length: 0\r\n\r\n",
                               &buf, &err),
                    TG_OK);
    CU_ASSERT_EQUAL(r.status, 529);
    CU_ASSERT(str_is(r.reason, "Site Is Overloaded"));
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_EQUAL(r.content_length, 0);
    free(buf);

    CU_ASSERT_EQUAL(resp_parse(&r,
                               "HTTP/1.0 200 OK\r\nConnection: keep-alive"
                               "\r\n\r\n",
                               &buf, &err),
                    TG_OK);
    CU_ASSERT_TRUE(r.keep_alive);
    free(buf);
    CU_ASSERT_EQUAL(resp_parse(&r,
                               "HTTP/1.1 200 OK\r\nConnection: close"
                               "\r\n\r\n",
                               &buf, &err),
                    TG_OK);
    CU_ASSERT_FALSE(r.keep_alive);
    free(buf);
}


static void
test_parses_status_line_without_reason(void)
{
    tg_http_resp_t r;
    tg_err_t err;
    char *buf;

    CU_ASSERT_EQUAL(resp_parse(&r, "HTTP/1.1 204\r\n\r\n", &buf, &err), TG_OK);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT_EQUAL(r.reason.len, 0);
    free(buf);
    CU_ASSERT_EQUAL(resp_parse(&r, "HTTP/1.1 100 \r\n\r\n", &buf, &err), TG_OK);
    CU_ASSERT_EQUAL(r.status, 100);
    CU_ASSERT_EQUAL(r.reason.len, 0);
    free(buf);
}


static void
test_rejects_bad_responses(void)
{
    CU_ASSERT(resp_fails("HTTP/1.1 20 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 2000 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 099 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1  200 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 2x0 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/2 200 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/2.0 200 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("ICY 200 OK\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 O\x01K\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                         "Content-Length: 2\r\n\r\n"));
    CU_ASSERT(resp_fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"));
    CU_ASSERT(
        resp_fails("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    CU_ASSERT(resp_fails("\r\n\r\n"));
}


static void
test_response_every_prefix_is_again(void)
{
    static const char s[] = "HTTP/1.1 429 Too Many Requests\r\n"
                            "retry-after: 30\r\n"
                            "Content-Length: 2\r\n\r\n{}";
    size_t n = sizeof(s) - 1, k;
    tg_http_resp_t r;
    tg_err_t err;

    for (k = 0; k < n - 2; k++) {
        char *p = tg_test_http_dup(s, k);

        CU_ASSERT_EQUAL(tg_http_parse_response(&r, p, k, MAX_HEAD, &err),
                        TG_AGAIN);
        free(p);
    }
    CU_ASSERT_EQUAL(tg_http_parse_response(&r, s, n, MAX_HEAD, &err), TG_OK);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_EQUAL(r.content_length, 2);
    CU_ASSERT_EQUAL(r.head_len, n - 2);
    CU_ASSERT_EQUAL(tg_http_parse_response(&r, s, 20, 20, &err), TG_ERROR);
    CU_ASSERT_EQUAL(err.code, 502);
}


static void
test_reason_phrases(void)
{
    /* The table is binary-searched: every entry must be found. */
    CU_ASSERT_STRING_EQUAL(tg_http_reason(100), "Continue");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(101), "Switching Protocols");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(200), "OK");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(204), "No Content");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(304), "Not Modified");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(400), "Bad Request");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(401), "Unauthorized");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(413), "Content Too Large");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(417), "Expectation Failed");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(501), "Not Implemented");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(502), "Bad Gateway");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(504), "Gateway Timeout");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(529), "Overloaded");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(0), "Unknown");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(1000), "Unknown");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(404), "Not Found");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(429), "Too Many Requests");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(431),
                           "Request Header Fields Too Large");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(503), "Service Unavailable");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(505), "HTTP Version Not Supported");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(799), "Unknown");
    CU_ASSERT_STRING_EQUAL(tg_http_reason(-1), "Unknown");
}


static void
test_hop_by_hop(void)
{
    static const char *hop[] = {
        "Connection",          "keep-alive", "Proxy-Authenticate",
        "PROXY-AUTHORIZATION", "te",         "Trailer",
        "Transfer-Encoding",   "upgrade",    "Proxy-Connection",
    };
    static const char *end[] = {
        "Content-Length", "Host",     "x-api-key", "Authorization",
        "Trailers",       "TE2",      "",          "Content-Type",
        "Connectio",      "Upgrades",
    };
    size_t i;

    for (i = 0; i < TG_NELEMS(hop); i++) {
        CU_ASSERT_TRUE(
            tg_http_is_hop_by_hop((tg_str_t){hop[i], strlen(hop[i])}));
    }
    for (i = 0; i < TG_NELEMS(end); i++) {
        CU_ASSERT_FALSE(
            tg_http_is_hop_by_hop((tg_str_t){end[i], strlen(end[i])}));
    }
}


/* Register the "http" suite.  0 on success. */
int
tg_test_http_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"parses a simple GET request", test_parses_simple_get},
        {"parses a POST with trimmed header values",
         test_parses_post_with_headers},
        {"maps known methods and keeps others as tokens", test_maps_methods},
        {"splits path and query at the first question mark",
         test_splits_path_and_query},
        {"accepts asterisk-form only for OPTIONS",
         test_accepts_asterisk_only_for_options},
        {"rejects absolute-form and authority-form targets",
         test_rejects_non_origin_form},
        {"rejects control characters, spaces and fragments in the target",
         test_rejects_bad_request_target},
        {"rejects invalid token characters in the method",
         test_rejects_bad_method},
        {"rejects invalid token characters in header names",
         test_rejects_bad_header_names},
        {"rejects whitespace between header name and colon",
         test_rejects_whitespace_before_colon},
        {"rejects obsolete line folding", test_rejects_obs_fold},
        {"rejects bare LF in request line and headers", test_rejects_bare_lf},
        {"rejects bare LF before the head is complete",
         test_rejects_bare_lf_before_head_is_complete},
        {"rejects bare CR in request line and headers", test_rejects_bare_cr},
        {"rejects control characters in header values but not HTAB",
         test_rejects_control_chars_in_values},
        {"rejects content-length together with transfer-encoding",
         test_rejects_cl_with_te},
        {"accepts identical duplicate content-length headers",
         test_accepts_identical_duplicate_cl},
        {"rejects differing duplicate content-length headers",
         test_rejects_differing_duplicate_cl},
        {"rejects non-digit content-length values", test_rejects_non_digit_cl},
        {"accepts content-length up to int64 max and no further",
         test_cl_bounds},
        {"answers 501 to transfer-encoding other than chunked",
         test_rejects_te_other_than_chunked},
        {"accepts transfer-encoding chunked in any case",
         test_accepts_chunked_in_any_case},
        {"rejects a repeated transfer-encoding header",
         test_rejects_repeated_te},
        {"rejects transfer-encoding in HTTP/1.0", test_rejects_te_in_http10},
        {"answers 505 to versions other than 1.0 and 1.1",
         test_rejects_unsupported_versions},
        {"rejects malformed versions with 400",
         test_rejects_malformed_versions},
        {"requires exactly one host header in HTTP/1.1",
         test_requires_one_host_in_http11},
        {"keeps HTTP/1.1 alive unless connection close",
         test_keep_alive_http11},
        {"closes HTTP/1.0 unless connection keep-alive",
         test_keep_alive_http10},
        {"sets expect_continue for 100-continue in any case",
         test_expect_continue},
        {"answers 417 to other expectations", test_rejects_other_expectations},
        {"ignores one empty line before the request line",
         test_ignores_one_leading_empty_line},
        {"reports head_len of each pipelined request", test_pipelined_requests},
        {"returns again for every prefix and the same result when complete",
         test_every_prefix_is_again},
        {"answers 431 when the head exceeds max_head",
         test_431_when_head_exceeds_max_head},
        {"answers 431 to more than the maximum number of headers",
         test_header_count_limit},
        {"passes the data-driven request cases", test_data_driven_requests},
        {"parses response heads and keep-alive", test_parses_response},
        {"parses a status line without reason phrase",
         test_parses_status_line_without_reason},
        {"rejects malformed responses with 502", test_rejects_bad_responses},
        {"returns again for every prefix of a response",
         test_response_every_prefix_is_again},
        {"gives reason phrases for known statuses", test_reason_phrases},
        {"recognises hop-by-hop headers in any case", test_hop_by_hop},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("http", NULL, NULL);
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
