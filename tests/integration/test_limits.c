/*
 * tests/integration/test_limits.c
 *      Client-side errors: authentication, routes, malformed framing,
 *      size limits and timeouts.  After every rejected request the server
 *      must still serve a normal one.
 *
 * NOTES
 *      Raw bytes go over the socket, since these are requests no client
 *      library would send.  Limits are lowered in the config (header_bytes
 *      4 KB, body_bytes 2 KB, timeouts 1 s) so the tests stay quick.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A normal request on a new connection is answered with 200. */
static void
expect_serving(int port)
{
    tg_it_resp_t resp;

    tg_it_request(port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete,
                 "the server no longer serves: status %d %s", resp.status,
                 resp.error);
    tg_it_resp_fini(&resp);
}


/*
 * Send <raw> on a new connection and expect an error response with
 * <status> in the Anthropic error shape, after which the server closes the
 * connection when <closes>.
 */
static void
expect_error(int port, const char *what, const char *raw, int status,
             bool closes)
{
    tg_it_resp_t resp;
    tg_it_conn_t c;
    json_t *j;

    tg_it_note("%s: expecting %d", what, status);
    tg_it_conn_open(&c, port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    TG_IT_CHECKF(tg_it_conn_read(&c, &resp, TG_IT_TIMEOUT_MS) == TG_OK,
                 "%s: no response: %s", what, resp.error);
    TG_IT_CHECKF(resp.status == status, "%s: status %d, expected %d: %s", what,
                 resp.status, status, resp.body);
    TG_IT_CHECKF(resp.complete, "%s: %s", what, resp.error);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK(tg_it_json_str(j, "error.type") != NULL);
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    json_decref(j);
    if (closes) {
        TG_IT_CHECKF(tg_it_conn_closed(&c, 3000),
                     "%s: connection left open after the error", what);
    }
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
    expect_serving(port);
}


static void
test_auth_and_routes(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char v[128];
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);

    /* Anthropic shape on /v1/messages, wrong key in either header. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  "x-api-key: tg-it-wrong-key-000000000\r\n"
                  "anthropic-version: 2023-06-01\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "x-should-retry", v, sizeof(v)),
                    "false");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "authentication_error");
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);

    tg_it_request(f.port, "POST", "/v1/messages",
                  "authorization: Bearer tg-it-wrong-key-000000000\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "x-should-retry", v, sizeof(v)),
                    "false");
    tg_it_resp_fini(&resp);

    /* OpenAI shape on /v1/chat/completions. */
    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  "authorization: Bearer tg-it-wrong-key-000000000\r\n",
                  TG_IT_BODY_CHAT, &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "x-should-retry", v, sizeof(v)),
                    "false");
    j = tg_it_json(&resp);
    TG_IT_CHECK(tg_it_json_get(j, "type") == NULL);
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    TG_IT_CHECK(tg_it_json_str(j, "error.type") != NULL);
    TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.code"), "invalid_api_key");
    json_decref(j);
    tg_it_resp_fini(&resp);

    /* No key at all, on both routes. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  "anthropic-version: 2023-06-01\r\n", TG_IT_BODY_MESSAGES,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "authentication_error");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/chat/completions", NULL, TG_IT_BODY_CHAT,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    j = tg_it_json(&resp);
    TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "GET", "/v1/models", NULL, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    tg_it_resp_fini(&resp);

    /* Unknown path, wrong method. */
    tg_it_request(f.port, "POST", "/v1/completions", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 404);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "not_found_error");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "GET", "/nope", NULL, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 404);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "GET", "/v1/messages", TG_IT_H_ANTHROPIC, NULL,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 405);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "allow", v, sizeof(v)), "POST");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/models", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 405);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "allow", v, sizeof(v)), "GET");
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "DELETE", "/v1/chat/completions", TG_IT_H_OPENAI,
                  NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 405);
    j = tg_it_json(&resp);
    TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
    json_decref(j);
    tg_it_resp_fini(&resp);

    expect_serving(f.port);
    tg_it_fixture_stop(&f);
}


#define POST_HEAD                                                              \
    "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n" TG_IT_H_ANTHROPIC


static void
test_malformed_framing(void)
{
    static const struct {
        const char *what;
        const char *raw;
        int status;
    } cases[] = {
        {"content-length with transfer-encoding",
         POST_HEAD "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
                   "0\r\n\r\n",
         400},
        {"two different content-lengths",
         POST_HEAD "content-length: 5\r\ncontent-length: 6\r\n\r\nhello!", 400},
        {"a chunk size that is not hex",
         POST_HEAD "transfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
         400},
        {"a chunk size with a sign",
         POST_HEAD "transfer-encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
         400},
        {"a bare CR in a header value",
         POST_HEAD "x-smuggle: a\rb\r\ncontent-length: 2\r\n\r\n{}", 400},
        {"a bare LF line end",
         "POST /v1/messages HTTP/1.1\nhost: x\ncontent-length: 2\n\n{}", 400},
        {"an obsolete folded header",
         POST_HEAD "x-folded: a\r\n  b\r\ncontent-length: 2\r\n\r\n{}", 400},
        {"a space before the colon", POST_HEAD "content-length : 2\r\n\r\n{}",
         400},
        {"an unsupported transfer-encoding",
         POST_HEAD "transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"a request line without a version", "GET /healthz\r\n\r\n", 400},
    };
    tg_it_fixture_t f;
    size_t i;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    for (i = 0; i < TG_NELEMS(cases); i++) {
        expect_error(f.port, cases[i].what, cases[i].raw, cases[i].status,
                     true);
    }
    tg_it_fixture_stop(&f);
}


static void
test_size_limits(void)
{
    tg_it_fixture_t f;
    char *raw, *pad, chunk[1100];
    size_t i;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.header_bytes", "4096");
    tg_it_conf_set(&f.conf, "limits.body_bytes", "2048");
    tg_it_fixture_start(&f);

    /* A head of 8 KB. */
    pad = malloc(8001);
    TG_IT_CHECK(pad != NULL);
    memset(pad, 'a', 8000);
    pad[8000] = '\0';
    TG_IT_CHECK(asprintf(&raw,
                         POST_HEAD "x-pad: %s\r\ncontent-length: 2\r\n"
                                   "\r\n{}",
                         pad) > 0);
    expect_error(f.port, "an 8 KB head", raw, 431, true);
    free(raw);
    /* Many small headers adding up past the bound. */
    TG_IT_CHECK(asprintf(&raw, "%s", POST_HEAD) > 0);
    for (i = 0; i < 120; i++) {
        char *t;

        TG_IT_CHECK(asprintf(&t, "%sx-h%zu: %.40s\r\n", raw, i, pad) > 0);
        free(raw);
        raw = t;
    }
    {
        char *t;

        TG_IT_CHECK(asprintf(&t, "%s\r\n", raw) > 0);
        free(raw);
        raw = t;
    }
    expect_error(f.port, "120 headers of 50 bytes", raw, 431, true);
    free(raw);

    /* A declared body over the bound is refused before it is sent. */
    expect_error(f.port, "content-length 4096",
                 POST_HEAD "content-length: 4096\r\n\r\n", 413, true);
    /* The same body with its bytes. */
    TG_IT_CHECK(asprintf(&raw, POST_HEAD "content-length: 4000\r\n\r\n%.4000s",
                         pad) > 0);
    expect_error(f.port, "a 4000-byte body", raw, 413, true);
    free(raw);

    /* A chunked body growing past the bound. */
    memset(chunk, 'b', 1000);
    chunk[1000] = '\0';
    TG_IT_CHECK(asprintf(&raw,
                         POST_HEAD "transfer-encoding: chunked\r\n\r\n"
                                   "3e8\r\n%s\r\n3e8\r\n%s\r\n3e8\r\n%s\r\n"
                                   "0\r\n\r\n",
                         chunk, chunk, chunk) > 0);
    expect_error(f.port, "a 3000-byte chunked body", raw, 413, true);
    free(raw);
    free(pad);

    /* Just under the bounds is fine, chunked too. */
    TG_IT_CHECK(asprintf(&raw,
                         POST_HEAD "transfer-encoding: chunked\r\n\r\n"
                                   "%zx\r\n%s\r\n0\r\n\r\n",
                         strlen(TG_IT_BODY_MESSAGES), TG_IT_BODY_MESSAGES) > 0);
    {
        tg_it_resp_t resp;

        tg_it_exchange(f.port, raw, &resp);
        TG_IT_CHECKF(resp.status == 200, "chunked request: status %d %s",
                     resp.status, resp.body);
        tg_it_resp_fini(&resp);
    }
    free(raw);
    tg_it_fixture_stop(&f);
}


static void
test_header_timeout(void)
{
    static const char head[] = POST_HEAD "x-slow: ";
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    uint64_t start, took;
    size_t sent = 0;
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.header_timeout", "1");
    tg_it_fixture_start(&f);

    /* Slowloris: one byte every 100 ms, never finishing the head.  Each
     * byte must not restart the clock. */
    tg_it_conn_open(&c, f.port);
    start = tg_it_now_ms();
    while (tg_it_now_ms() - start < 5000) {
        if (tg_it_conn_send(&c, sent < sizeof(head) - 1 ? head + sent : "a",
                            1) != TG_OK) {
            break;
        }
        sent++;
        if (tg_it_conn_wait(&c, 1, 100) == TG_OK || c.eof || c.reset) {
            break;
        }
    }
    TG_IT_CHECKF(tg_it_conn_read(&c, &resp, 2000) == TG_OK,
                 "no 408 after %llu ms: %s",
                 (unsigned long long)(tg_it_now_ms() - start), resp.error);
    took = resp.t_head_ms - start;
    tg_it_note("408 after %llu ms and %zu bytes", (unsigned long long)took,
               sent);
    TG_IT_CHECK_INT(resp.status, 408);
    TG_IT_CHECKF(took >= 900 && took < 2500,
                 "408 after %llu ms with header_timeout = 1 s",
                 (unsigned long long)took);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    json_decref(j);
    TG_IT_CHECK(tg_it_conn_closed(&c, 2000));
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
    expect_serving(f.port);

    /* A connection that sends nothing at all is closed too. */
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_closed(&c, 3000));
    tg_it_conn_close(&c);
    expect_serving(f.port);
    tg_it_fixture_stop(&f);
}


static void
test_body_timeout(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    uint64_t start, took;
    int i;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.body_timeout", "1");
    tg_it_fixture_start(&f);

    /* Half a body, then silence. */
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, POST_HEAD "content-length: 200\r\n"
                                                  "\r\n{\"model\":") == TG_OK);
    start = tg_it_now_ms();
    TG_IT_CHECKF(tg_it_conn_read(&c, &resp, 5000) == TG_OK,
                 "no 408 for a stalled body: %s", resp.error);
    took = resp.t_head_ms - start;
    tg_it_note("408 after %llu ms", (unsigned long long)took);
    TG_IT_CHECK_INT(resp.status, 408);
    TG_IT_CHECK(took >= 900 && took < 2500);
    TG_IT_CHECK(tg_it_conn_closed(&c, 2000));
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
    expect_serving(f.port);

    /* A body trickling in faster than body_timeout is fine: the timeout is
     * between reads, and 10 x 300 ms is well past one second. */
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, POST_HEAD "content-length: 110\r\n"
                                                  "\r\n") == TG_OK);
    {
        char body[111];

        snprintf(body, sizeof(body), "%-110s", TG_IT_BODY_MESSAGES);
        for (i = 0; i < 10; i++) {
            TG_IT_CHECK(tg_it_conn_send(&c, body + i * 11, 11) == TG_OK);
            if (i < 9) {
                tg_it_sleep_ms(300);
            }
        }
    }
    TG_IT_CHECK(tg_it_conn_read(&c, &resp, 5000) == TG_OK);
    TG_IT_CHECKF(resp.status == 200, "a slow but steady body: status %d %s",
                 resp.status, resp.body);
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_limits_tests[] = {
    {"a bad or missing key gets 401 with x-should-retry false in the route's "
     "shape, unknown paths 404 and wrong methods 405",
     test_auth_and_routes},
    {"malformed framing gets 400 or 501 and the server keeps serving",
     test_malformed_framing},
    {"a head over header_bytes gets 431 and a body over body_bytes gets 413 "
     "by length and by chunks",
     test_size_limits},
    {"a slowloris head gets 408 at header_timeout and the server keeps "
     "serving",
     test_header_timeout},
    {"a stalled body gets 408 at body_timeout and the server keeps serving",
     test_body_timeout},
    {NULL, NULL},
};
