/*
 * tests/integration/test_encoding.c
 *      Content-encoded answers: the client gets the upstream's compressed
 *      bytes as they are, and the usage log still counts their tokens;
 *      the upstream is only offered codings tollgate can decode.
 *
 * NOTES
 *      The mock compresses when the request carries x-mock-encoding and an
 *      accept-encoding that lists the coding (docs/mock-upstream.md).  The
 *      test decodes what the client received with the libraries directly
 *      (not with worker/decode), checks that it is the complete answer, and
 *      compares the usage record of the request (found by
 *      x-tollgate-request-id) with the mock's ledger line (found by the
 *      upstream's request id, which tollgate passes on).  Each request asks
 *      for its own chunk count, so output tokens differ between requests.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <brotli/decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define ACCEPT_ALL "accept-encoding: gzip, deflate, br, zstd\r\n"

static char usage_log[4096];


/* ------------------------------------------------------------ helpers */

/* The common fixture, with the usage log and spool in the test
 * directory. */
static void
enc_fixture_init(tg_it_fixture_t *f)
{
    char spool[4096];

    tg_it_fixture_init(f);
    tg_it_path(usage_log, sizeof(usage_log), "usage.log");
    tg_it_path(spool, sizeof(spool), "spool");
    tg_it_conf_set(&f->conf, "usage.log", "\"%s\"", usage_log);
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"", spool);
}


/* Append <n> bytes to the heap string <*buf> of <*len> bytes. */
static void
grow(char **buf, size_t *len, const void *p, size_t n)
{
    char *q = realloc(*buf, *len + n + 1);

    TG_IT_CHECK(q != NULL);
    memcpy(q + *len, p, n);
    *len += n;
    q[*len] = '\0';
    *buf = q;
}


/*
 * Decode <n> bytes of <p> compressed with <coding> ("gzip", "deflate",
 * "br", "zstd") into a NUL-terminated heap string (its length in
 * <*outlen>).  Fails the test unless the input is one complete stream.
 */
static char *
decompress(const char *coding, const char *p, size_t n, size_t *outlen)
{
    unsigned char buf[16384];
    char *out = NULL;
    size_t len = 0;

    grow(&out, &len, "", 0);
    if (strcmp(coding, "gzip") == 0 || strcmp(coding, "deflate") == 0) {
        z_stream z;
        bool raw =
            strcmp(coding, "deflate") == 0 && n >= 2 &&
            ((((unsigned char)p[0] << 8) | (unsigned char)p[1]) % 31 != 0 ||
             ((unsigned char)p[0] & 0x0f) != 8);
        int rc;

        memset(&z, 0, sizeof(z));
        TG_IT_CHECK(inflateInit2(&z, raw ? -15 : 15 + 32) == Z_OK);
        z.next_in = (Bytef *)p;
        z.avail_in = (uInt)n;
        do {
            z.next_out = buf;
            z.avail_out = sizeof(buf);
            rc = inflate(&z, Z_NO_FLUSH);
            TG_IT_CHECKF(rc == Z_OK || rc == Z_STREAM_END,
                         "%s body does not inflate (%d)", coding, rc);
            grow(&out, &len, buf, sizeof(buf) - z.avail_out);
        } while (rc != Z_STREAM_END);
        TG_IT_CHECKF(z.avail_in == 0, "%u bytes after the %s stream",
                     z.avail_in, coding);
        inflateEnd(&z);
    } else if (strcmp(coding, "br") == 0) {
        BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        const uint8_t *next_in = (const uint8_t *)p;
        size_t avail_in = n, avail_out;
        uint8_t *next_out;
        BrotliDecoderResult r;

        TG_IT_CHECK(s != NULL);
        do {
            next_out = buf;
            avail_out = sizeof(buf);
            r = BrotliDecoderDecompressStream(s, &avail_in, &next_in,
                                              &avail_out, &next_out, NULL);
            TG_IT_CHECKF(r != BROTLI_DECODER_RESULT_ERROR &&
                             r != BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT,
                         "br body does not decode (%d)", (int)r);
            grow(&out, &len, buf, sizeof(buf) - avail_out);
        } while (r != BROTLI_DECODER_RESULT_SUCCESS);
        TG_IT_CHECKF(avail_in == 0, "%zu bytes after the br stream", avail_in);
        BrotliDecoderDestroyInstance(s);
    } else {
        ZSTD_DStream *zs = ZSTD_createDStream();
        ZSTD_inBuffer in = {p, n, 0};
        ZSTD_outBuffer o;
        size_t r = 1;

        TG_IT_CHECK(zs != NULL && strcmp(coding, "zstd") == 0);
        while (in.pos < in.size || r != 0) {
            o = (ZSTD_outBuffer){buf, sizeof(buf), 0};
            r = ZSTD_decompressStream(zs, &o, &in);
            TG_IT_CHECKF(!ZSTD_isError(r), "zstd body does not decode (%s)",
                         ZSTD_getErrorName(r));
            TG_IT_CHECKF(o.pos > 0 || in.pos < in.size || r == 0,
                         "zstd body ends mid-frame");
            grow(&out, &len, buf, o.pos);
        }
        ZSTD_freeDStream(zs);
    }
    *outlen = len;
    return out;
}


/* Integer at <path> in <j>; -1 when absent. */
static long long
jint(json_t *j, const char *path)
{
    json_t *v = tg_it_json_get(j, path);

    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}


/* The first line of the file at <path> that contains <needle>, parsed
 * (waits up to 3 s for it).  The caller decrefs it. */
static json_t *
line_with(const char *path, const char *needle)
{
    const char *const needles[] = {needle, NULL};
    char *text, *line, *nl;
    json_t *j = NULL;

    TG_IT_CHECKF(tg_it_file_wait_count(path, needles, 1, 3000) >= 1,
                 "no line with %s in %s within 3 s", needle, path);
    text = tg_it_file_read(path, NULL);
    TG_IT_CHECK(text != NULL);
    for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (strstr(line, needle) != NULL) {
            j = json_loads(line, 0, NULL);
            break;
        }
    }
    free(text);
    TG_IT_CHECKF(json_is_object(j), "the line with %s is not JSON", needle);
    return j;
}


/*
 * Check that tollgate's usage record of <resp> carries the tokens the
 * mock's ledger (of fixture <f>) recorded for it; <counted> false expects
 * no tokens at all (a body that could not be decoded).
 */
static void
check_usage(const tg_it_fixture_t *f, const tg_it_resp_t *resp, bool openai,
            int chunks, bool counted)
{
    char id[64], up[64], needle[128];
    json_t *rec, *led;

    TG_IT_CHECK(tg_it_resp_header(resp, "x-tollgate-request-id", id,
                                  sizeof(id)) != NULL);
    TG_IT_CHECK(tg_it_resp_header(resp, openai ? "x-request-id" : "request-id",
                                  up, sizeof(up)) != NULL);
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    rec = line_with(usage_log, needle);
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", up);
    led = line_with(f->ledger, needle);
    tg_it_note("request %s / %s: record in %lld out %lld read %lld; ledger "
               "in %lld out %lld read %lld",
               id, up, jint(rec, "tokens.input"), jint(rec, "tokens.output"),
               jint(rec, "tokens.cache_read"), jint(led, "input_tokens"),
               jint(led, "output_tokens"),
               jint(led, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(jint(led, "output_tokens"), 2 * chunks);
    if (!counted) {
        TG_IT_CHECK_INT(jint(rec, "tokens.input"), 0);
        TG_IT_CHECK_INT(jint(rec, "tokens.output"), 0);
    } else if (openai) {
        TG_IT_CHECK_INT(jint(rec, "tokens.input"),
                        jint(led, "input_tokens") -
                            jint(led, "cache_read_input_tokens"));
    } else {
        TG_IT_CHECK_INT(jint(rec, "tokens.input"), jint(led, "input_tokens"));
        TG_IT_CHECK_INT(jint(rec, "tokens.cache_write_5m"),
                        jint(led, "cache_creation_input_tokens"));
    }
    if (counted) {
        TG_IT_CHECK(jint(rec, "tokens.input") > 0);
        TG_IT_CHECK_INT(jint(rec, "tokens.output"), jint(led, "output_tokens"));
        TG_IT_CHECK_INT(jint(rec, "tokens.cache_read"),
                        jint(led, "cache_read_input_tokens"));
    }
    json_decref(rec);
    json_decref(led);
}


/* Check that the decoded answer <plain> is complete: the JSON message or
 * completion with <chunks> deltas' worth of output, or the whole stream
 * up to its end marker. */
static void
check_answer(const char *plain, size_t len, bool openai, bool stream,
             int chunks)
{
    if (!stream) {
        json_t *j = json_loadb(plain, len, 0, NULL);

        TG_IT_CHECKF(json_is_object(j), "decoded body is not JSON: %.200s",
                     plain);
        TG_IT_CHECK_INT(
            jint(j, openai ? "usage.completion_tokens" : "usage.output_tokens"),
            2 * chunks);
        json_decref(j);
    } else {
        tg_it_sse_t s = {0};

        tg_it_sse_parse(&s, plain, len);
        /* Anthropic: start, block start, ping, deltas, block stop, message
         * delta, stop; OpenAI: role, deltas, finish, usage, [DONE]. */
        TG_IT_CHECK_INT(s.n, openai ? (size_t)chunks + 4 : (size_t)chunks + 6);
        if (openai) {
            TG_IT_CHECK_STR(s.data[s.n - 1], "[DONE]");
        } else {
            TG_IT_CHECK_STR(s.event[s.n - 1], "message_stop");
        }
        tg_it_sse_fini(&s);
    }
}


/*
 * One request through tollgate for <api> (<openai>), <stream> or not,
 * answered with <enc> (the mock's x-mock-encoding name, whose wire coding
 * is <coding>) and <chunks> deltas: the client gets a compressed body that
 * decodes to the complete answer, and the tokens are counted.
 */
static void
exchange(tg_it_fixture_t *f, bool openai, bool stream, const char *enc,
         const char *coding, int chunks)
{
    char hdr[1024], v[64], *plain;
    tg_it_resp_t resp;
    size_t len;

    tg_it_note("%s %s %s, %d chunks", enc,
               openai ? "chat completion" : "message",
               stream ? "stream" : "answer", chunks);
    snprintf(hdr, sizeof(hdr),
             "%s" ACCEPT_ALL "x-mock-encoding: %s\r\nx-mock-chunks: %d\r\n",
             openai ? TG_IT_H_OPENAI : TG_IT_H_ANTHROPIC, enc, chunks);
    tg_it_request(
        f->port, "POST", openai ? "/v1/chat/completions" : "/v1/messages", hdr,
        openai ? (stream ? TG_IT_BODY_CHAT_STREAM : TG_IT_BODY_CHAT)
               : (stream ? TG_IT_BODY_MESSAGES_STREAM : TG_IT_BODY_MESSAGES),
        &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d (%s)",
                 resp.status, resp.error);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "content-encoding", v, sizeof(v)),
                    coding);
    plain = decompress(coding, resp.body, resp.body_len, &len);
    TG_IT_CHECKF(len > resp.body_len / 2 && memchr(plain, '{', len) != NULL,
                 "decoded %zu bytes from %zu", len, resp.body_len);
    check_answer(plain, len, openai, stream, chunks);
    free(plain);
    check_usage(f, &resp, openai, chunks, true);
    tg_it_resp_fini(&resp);
}


/* Both APIs, streamed and not, in coding <enc>; chunk counts from
 * <chunks> up. */
static void
run_coding(const char *enc, const char *coding, int chunks)
{
    tg_it_fixture_t f;

    enc_fixture_init(&f);
    tg_it_fixture_start(&f);
    exchange(&f, false, false, enc, coding, chunks);
    exchange(&f, false, true, enc, coding, chunks + 1);
    exchange(&f, true, false, enc, coding, chunks + 2);
    exchange(&f, true, true, enc, coding, chunks + 3);
    tg_it_fixture_stop(&f);
}


/* -------------------------------------------------------------- tests */

static void
test_gzip(void)
{
    run_coding("gzip", "gzip", 3);
}


static void
test_deflate(void)
{
    tg_it_fixture_t f;

    run_coding("deflate", "deflate", 7);
    /* Raw deflate under the name deflate, as some servers send it. */
    enc_fixture_init(&f);
    tg_it_fixture_start(&f);
    exchange(&f, false, true, "deflate-raw", "deflate", 11);
    exchange(&f, true, false, "deflate-raw", "deflate", 12);
    tg_it_fixture_stop(&f);
}


/* br and zstd are never offered upstream (their windows are too large to
 * account within bounded memory), so these simulate an upstream that
 * compresses anyway ("!" makes the mock ignore what it was offered). */
static void
test_br(void)
{
    /* Long enough that the stream spans many curl writes. */
    run_coding("br!", "br", 400);
}


static void
test_zstd(void)
{
    run_coding("zstd!", "zstd", 20);
}


static void
test_corrupt_body(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    const char *const warn[] = {"cannot be decoded for usage", NULL};
    char v[64];
    int stream;

    enc_fixture_init(&f);
    tg_it_fixture_start(&f);
    for (stream = 0; stream <= 1; stream++) {
        tg_it_request(f.port, "POST", "/v1/messages",
                      TG_IT_H_ANTHROPIC ACCEPT_ALL
                      "x-mock-encoding: gzip-corrupt\r\nx-mock-chunks: 4\r\n",
                      stream ? TG_IT_BODY_MESSAGES_STREAM : TG_IT_BODY_MESSAGES,
                      &resp);
        TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d (%s)",
                     resp.status, resp.error);
        TG_IT_CHECK_STR(
            tg_it_resp_header(&resp, "content-encoding", v, sizeof(v)), "gzip");
        /* The bytes as the upstream sent them: a gzip header, then the
         * damaged block type. */
        TG_IT_CHECK(resp.body_len > 11);
        TG_IT_CHECK(memcmp(resp.body, "\x1f\x8b\x08", 3) == 0);
        TG_IT_CHECK((unsigned char)resp.body[10] == 0xff);
        check_usage(&f, &resp, false, 4, false);
        tg_it_resp_fini(&resp);
        TG_IT_CHECKF(tg_it_file_wait_count(f.error_log, warn, stream + 1,
                                           3000) == stream + 1,
                     "no warning about the undecodable body in error.log");
    }
    /* The worker carries on. */
    exchange(&f, false, true, "gzip", "gzip", 5);
    tg_it_fixture_stop(&f);
}


static void
test_sdks_with_gzip(void)
{
    tg_it_fixture_t f;
    char url[64], out[8192], *text, *line, *nl;
    char *argv[] = {"/usr/bin/env", "node", "tests/sdk/check.mjs", url,
                    TG_IT_KEY,      NULL};
    const char *const ok[] = {"\"status\":200", "\"attempts\":1", NULL};
    int rc, answers = 0;
    json_t *j;

    if (access("tests/sdk/node_modules/@anthropic-ai/sdk/package.json", R_OK) !=
            0 ||
        access("tests/sdk/node_modules/openai/package.json", R_OK) != 0) {
        tg_it_fail(__FILE__, __LINE__,
                   "the SDKs are not installed in tests/sdk/node_modules; "
                   "run `make deps` (or `npm ci` in tests/sdk)");
    }
    /* Node's fetch asks for gzip and deflate; the mock answers in gzip. */
    enc_fixture_init(&f);
    f.mock_args[0] = "--encoding";
    f.mock_args[1] = "gzip";
    tg_it_fixture_start(&f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
    rc = tg_it_run(argv, out, sizeof(out), 30000);
    tg_it_note("%s", out);
    TG_IT_CHECK_INT(rc, 0);
    TG_IT_CHECK(strstr(out, "FAIL") == NULL);
    /* The four answers the upstream gave (two per API, streamed and not)
     * all have their tokens. */
    tg_it_file_wait_count(usage_log, ok, 4, 3000);
    text = tg_it_file_read(usage_log, NULL);
    TG_IT_CHECK(text != NULL);
    for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        j = json_loads(line, 0, NULL);
        TG_IT_CHECK(json_is_object(j));
        if (jint(j, "status") == 200 && jint(j, "attempts") > 0) {
            tg_it_note("record: %s", line);
            TG_IT_CHECK(jint(j, "tokens.input") > 0);
            TG_IT_CHECK(jint(j, "tokens.output") > 0);
            answers++;
        }
        json_decref(j);
    }
    free(text);
    TG_IT_CHECK_INT(answers, 4);
    tg_it_fixture_stop(&f);
}


/* The header block of the request in <sent> that carries <marker>, as a
 * NUL-terminated heap string. */
static char *
request_with(const char *sent, const char *marker)
{
    const char *m = strstr(sent, marker), *start, *end;
    char *s;

    TG_IT_CHECKF(m != NULL, "no request with %s went upstream", marker);
    for (start = m; start > sent && strncmp(start, "POST ", 5) != 0;) {
        start--;
    }
    end = strstr(m, "\r\n\r\n");
    TG_IT_CHECK(end != NULL);
    s = strndup(start, (size_t)(end - start) + 2);
    TG_IT_CHECK(s != NULL);
    return s;
}


/* The number of accept-encoding lines in <head>, and the value of the
 * first into <buf>. */
static int
accept_lines(const char *head, char *buf, size_t len)
{
    const char *p;
    int n = 0;

    buf[0] = '\0';
    for (p = head; (p = strstr(p, "\r\n")) != NULL;) {
        p += 2;
        if (strncasecmp(p, "accept-encoding:", 16) == 0) {
            const char *v = p + 16, *e = strstr(v, "\r\n");

            while (*v == ' ') {
                v++;
            }
            if (n++ == 0 && e != NULL) {
                snprintf(buf, len, "%.*s", (int)(e - v), v);
            }
        }
    }
    return n;
}


static void
test_accept_encoding_upstream(void)
{
    static const struct {
        const char *accept; /* header line sent by the client, or "" */
        const char *want;   /* accept-encoding seen upstream */
        const char *coding; /* content-encoding of the answer */
    } cases[] = {
        {"accept-encoding: compress, gzip;q=0.8\r\n", "gzip;q=0.8", "gzip"},
        {"accept-encoding: compress\r\n", "identity", NULL},
        {"", "identity", NULL},
        {"accept-encoding: br, exi, *;q=0\r\n", "identity", NULL},
        {"Accept-Encoding: zstd, gzip\r\n", "gzip", "gzip"},
    };
    tg_it_fixture_t f;
    tg_it_proc_t tap;
    tg_it_resp_t resp;
    char e1[512], e2[512], capture[4096], hdr[1024], marker[64], v[256];
    char *sent, *head;
    size_t i;
    int tap_port;

    enc_fixture_init(&f);
    tg_it_path(capture, sizeof(capture), "upstream-requests.txt");
    do {
        tap_port = tg_it_port_free();
    } while (tap_port == f.port || tap_port == f.admin_port ||
             tap_port == f.mock_port);
    /* tollgate -> tap -> mock: the tap records the bytes tollgate sends. */
    tg_it_endpoint(e1, sizeof(e1), "a", tap_port, "anthropic", "primary");
    tg_it_endpoint(e2, sizeof(e2), "o", tap_port, "openai", "primary");
    tg_it_conf_set(&f.conf, "endpoints", "( %s, %s )", e1, e2);
    tg_it_fixture_start(&f);
    tg_it_tap_start(&tap, tap_port, f.mock_port, capture);

    for (i = 0; i < TG_NELEMS(cases); i++) {
        tg_it_note("client: %s", cases[i].accept[0] ? cases[i].accept : "-");
        /* The mock compresses only when what it got lists the coding. */
        snprintf(hdr, sizeof(hdr),
                 TG_IT_H_ANTHROPIC "%sx-mock-encoding: %s\r\nx-case: c%zu\r\n"
                                   "x-mock-chunks: %zu\r\n",
                 cases[i].accept, cases[i].coding ? cases[i].coding : "gzip", i,
                 i + 2);
        tg_it_request(f.port, "POST", "/v1/messages", hdr,
                      TG_IT_BODY_MESSAGES_STREAM, &resp);
        TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d (%s)",
                     resp.status, resp.error);
        TG_IT_CHECK_STR(
            tg_it_resp_header(&resp, "content-encoding", v, sizeof(v)),
            cases[i].coding);
        check_usage(&f, &resp, false, (int)i + 2, true);
        tg_it_resp_fini(&resp);
    }

    sent = tg_it_file_read(capture, NULL);
    TG_IT_CHECKF(sent != NULL, "the tap recorded nothing");
    for (i = 0; i < TG_NELEMS(cases); i++) {
        snprintf(marker, sizeof(marker), "x-case: c%zu\r\n", i);
        head = request_with(sent, marker);
        tg_it_note("upstream request %zu:\n%s", i, head);
        TG_IT_CHECK_INT(accept_lines(head, v, sizeof(v)), 1);
        TG_IT_CHECK_STR(v, cases[i].want);
        free(head);
    }
    free(sent);
    tg_it_fixture_stop(&f);
    tg_it_proc_stop(&tap, 1000);
}


const tg_it_test_t tg_it_encoding_tests[] = {
    {"a gzip answer reaches the client compressed and intact and its tokens "
     "are counted, streamed or not, on both APIs",
     test_gzip},
    {"a deflate answer, zlib or raw, reaches the client intact and its "
     "tokens are counted",
     test_deflate},
    {"a br answer reaches the client intact and its tokens are counted",
     test_br},
    {"a zstd answer reaches the client intact and its tokens are counted",
     test_zstd},
    {"a corrupt gzip body reaches the client byte for byte, its usage is "
     "logged as undecodable and the worker carries on",
     test_corrupt_body},
    {"the official SDKs read gzip answers through tollgate and every "
     "answer's tokens are counted",
     test_sdks_with_gzip},
    {"accept-encoding reaches the upstream with only the codings tollgate "
     "can decode, or identity",
     test_accept_encoding_upstream},
    {NULL, NULL},
};
