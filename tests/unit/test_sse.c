/*
 * tests/unit/test_sse.c
 *      CUnit suite "sse": the incremental event-stream parser.
 *
 * NOTES
 *      Events are recorded into a flat text log ("name|truncated|data\n"
 *      per event) so that different feeds of the same bytes can be compared
 *      with one memcmp.  The chaos test swaps the parser's allocator for
 *      one that fails the n-th call, for every n, and relies on the ASan
 *      build's leak checker to prove nothing leaks.
 */
#include "core/sse.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test hook in core/sse.c. */

typedef struct {
    char *log; /* recorded events */
    size_t len;
    size_t cap;
    size_t events;
    int stop_at; /* return TG_DONE at this event (1-based); 0 = never */
} rec_t;


static void
rec_add(rec_t *r, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = (r->cap + n) * 2;
        char *q = realloc(r->log, cap);

        CU_ASSERT_FATAL(q != NULL);
        r->log = q;
        r->cap = cap;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
}


static int
rec_cb(void *ctx, const tg_sse_event_t *ev)
{
    rec_t *r = ctx;

    rec_add(r, ev->event.data, ev->event.len);
    rec_add(r, ev->truncated ? "|T|" : "|-|", 3);
    rec_add(r, ev->data.data, ev->data.len);
    rec_add(r, "\n", 1);
    r->events++;
    if (r->stop_at != 0 && (int)r->events == r->stop_at) {
        return TG_DONE;
    }
    return TG_OK;
}


static void
rec_free(rec_t *r)
{
    free(r->log);
    memset(r, 0, sizeof(*r));
}


static bool
rec_is(const rec_t *r, const char *want)
{
    size_t n = strlen(want);
    bool ok = (r->len == n && (n == 0 || memcmp(r->log, want, n) == 0));

    if (!ok) {
        fprintf(stderr, "\n  got:  [%.*s]\n  want: [%s]\n", (int)r->len,
                r->log ? r->log : "", want);
    }
    return ok;
}


/* Feed <n> bytes of <s> in pieces of <step> (0 = at once) into a fresh
 * parser bounded by <max>, recording into <r>.  Returns the last rc. */
static int
feed_steps(rec_t *r, const char *s, size_t n, size_t step, size_t max)
{
    tg_sse_t sse;
    size_t off = 0;
    int rc = TG_OK;

    tg_sse_init(&sse, max);
    while (off < n && rc == TG_OK) {
        size_t k = (step == 0) ? n - off : TG_MIN(step, n - off);
        char *piece = malloc(k);

        /* An exact-size copy, so that ASan sees reads past the piece. */
        CU_ASSERT_FATAL(piece != NULL);
        memcpy(piece, s + off, k);
        rc = tg_sse_feed(&sse, piece, k, rec_cb, r);
        free(piece);
        off += k;
    }
    /* The bound on memory: data plus one line with its field name. */
    CU_ASSERT(sse.cap <= TG_MAX(max + 80, 256));
    tg_sse_fini(&sse);
    return rc;
}


/* True when <s> gives <want> fed at once, byte by byte, in pieces of every
 * size, and split in two at every offset. */
static bool
events_are(const char *s, size_t max, const char *want)
{
    size_t n = strlen(s), step, k;
    bool ok = true;
    rec_t r = {0};

    for (step = 0; step <= n && ok; step++) {
        feed_steps(&r, s, n, step, max);
        ok = rec_is(&r, want);
        if (!ok) {
            fprintf(stderr, "  (pieces of %zu bytes)\n", step);
        }
        rec_free(&r);
    }
    for (k = 0; k <= n && ok; k++) {
        tg_sse_t sse;

        tg_sse_init(&sse, max);
        CU_ASSERT_EQUAL(tg_sse_feed(&sse, s, k, rec_cb, &r), TG_OK);
        CU_ASSERT_EQUAL(tg_sse_feed(&sse, s + k, n - k, rec_cb, &r), TG_OK);
        tg_sse_fini(&sse);
        ok = rec_is(&r, want);
        if (!ok) {
            fprintf(stderr, "  (split at %zu)\n", k);
        }
        rec_free(&r);
    }
    return ok;
}


static void
test_dispatches_on_blank_line(void)
{
    CU_ASSERT(events_are("data: hello\n\n", 1024, "message|-|hello\n"));
    CU_ASSERT(events_are("data: a\n\ndata: b\n\n", 1024,
                         "message|-|a\nmessage|-|b\n"));
    /* No blank line yet: nothing. */
    CU_ASSERT(events_are("data: hello\n", 1024, ""));
}


static void
test_line_endings(void)
{
    static const char *want = "ping|-|x\nmessage|-|y\n";

    CU_ASSERT(events_are("event: ping\ndata: x\n\ndata: y\n\n", 1024, want));
    CU_ASSERT(events_are("event: ping\r\ndata: x\r\n\r\ndata: y\r\n\r\n", 1024,
                         want));
    CU_ASSERT(events_are("event: ping\rdata: x\r\rdata: y\r\r", 1024, want));
    CU_ASSERT(
        events_are("event: ping\r\ndata: x\r\rdata: y\n\r\n", 1024, want));
    /* CR LF is one line end, LF CR is two. */
    CU_ASSERT(events_are("data: x\n\rdata: y\r\n\n", 1024,
                         "message|-|x\nmessage|-|y\n"));
}


static void
test_joins_multiline_data(void)
{
    CU_ASSERT(events_are("data: a\ndata: b\ndata:\ndata: c\n\n", 1024,
                         "message|-|a\nb\n\nc\n"));
    CU_ASSERT(events_are("data\ndata\n\n", 1024, "message|-|\n\n"));
}


static void
test_strips_one_space(void)
{
    CU_ASSERT(events_are("data:x\n\n", 1024, "message|-|x\n"));
    CU_ASSERT(events_are("data: x\n\n", 1024, "message|-|x\n"));
    CU_ASSERT(events_are("data:  x \n\n", 1024, "message|-| x \n"));
    CU_ASSERT(events_are("data:\tx\n\n", 1024, "message|-|\tx\n"));
    CU_ASSERT(events_are("data: a: b\n\n", 1024, "message|-|a: b\n"));
    CU_ASSERT(events_are("event:  sp\ndata\n\n", 1024, " sp|-|\n"));
}


static void
test_field_without_colon(void)
{
    CU_ASSERT(events_are("data\n\n", 1024, "message|-|\n"));
    CU_ASSERT(events_are("event\ndata: x\n\n", 1024, "message|-|x\n"));
    CU_ASSERT(events_are("datax\n\n", 1024, ""));
}


static void
test_ignores_comments(void)
{
    CU_ASSERT(events_are(": OPENROUTER PROCESSING\n\n"
                         ":\n"
                         "data: a\n"
                         ": keep-alive\r\n"
                         "data: b\n\n",
                         1024, "message|-|a\nb\n"));
}


static void
test_event_without_data_is_not_dispatched(void)
{
    CU_ASSERT(events_are("event: ping\n\n", 1024, ""));
    /* And the name does not leak into the next event. */
    CU_ASSERT(events_are("event: ping\n\ndata: x\n\n", 1024, "message|-|x\n"));
    CU_ASSERT(events_are("event: a\nevent: b\ndata: x\n\n", 1024, "b|-|x\n"));
    CU_ASSERT(events_are("event:\ndata: x\n\n", 1024, "message|-|x\n"));
}


static void
test_ignores_other_fields(void)
{
    CU_ASSERT(events_are("id: 7\nretry: 100\nfoo: bar\nDATA: no\ndata: yes\n"
                         "Event: no\n\n",
                         1024, "message|-|yes\n"));
    CU_ASSERT(events_are("id: 7\nretry: 100\n\n", 1024, ""));
}


static void
test_truncates_at_max_data(void)
{
    CU_ASSERT(events_are("data: 0123456789\n\n", 10, "message|-|0123456789\n"));
    CU_ASSERT(
        events_are("data: 0123456789A\n\n", 10, "message|T|0123456789\n"));
    CU_ASSERT(events_are("data: 01234\ndata: 5678\n\n", 10,
                         "message|-|01234\n5678\n"));
    CU_ASSERT(events_are("data: 01234\ndata: 56789\n\n", 10,
                         "message|T|01234\n5678\n"));
    CU_ASSERT(events_are("data: 0123456789\ndata:\n\n", 10,
                         "message|T|0123456789\n"));
    CU_ASSERT(events_are("data: abc\n\n", 0, "message|T|\n"));
    CU_ASSERT(events_are("data:\n\n", 0, "message|-|\n"));
    /* The next event starts afresh. */
    CU_ASSERT(events_are("data: 0123456789ABC\n\ndata: ok\n\n", 10,
                         "message|T|0123456789\nmessage|-|ok\n"));
}


static void
test_long_line_bounded(void)
{
    size_t n = 200000, max = 1000, i;
    char *s = malloc(n + 64), *want = malloc(max + 64);
    rec_t r = {0};
    tg_sse_t sse;

    CU_ASSERT_FATAL(s != NULL && want != NULL);
    memcpy(s, "event: big\ndata: ", 17);
    for (i = 17; i < n; i++) {
        s[i] = (char)('a' + i % 26);
    }
    memcpy(s + n, "\ndata: tail\n\n", 13);
    memcpy(want, "big|T|", 6);
    memcpy(want + 6, s + 17, max);
    memcpy(want + 6 + max, "\n", 2);

    /* Fed at once, in 7-byte pieces and byte by byte. */
    CU_ASSERT_EQUAL(feed_steps(&r, s, n + 13, 0, max), TG_OK);
    CU_ASSERT(rec_is(&r, want));
    rec_free(&r);
    CU_ASSERT_EQUAL(feed_steps(&r, s, n + 13, 7, max), TG_OK);
    CU_ASSERT(rec_is(&r, want));
    rec_free(&r);
    CU_ASSERT_EQUAL(feed_steps(&r, s, n + 13, 1, max), TG_OK);
    CU_ASSERT(rec_is(&r, want));
    rec_free(&r);

    /* Long comment and unknown-field lines keep (almost) nothing. */
    tg_sse_init(&sse, max);
    memset(s, 'a', n);
    s[0] = ':';
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, s, n, rec_cb, &r), TG_OK);
    CU_ASSERT_PTR_NULL(sse.buf);
    memcpy(s, "xvent: ", 7);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, "\n", 1, rec_cb, &r), TG_OK);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, s, n, rec_cb, &r), TG_OK);
    CU_ASSERT(sse.cap <= max + 80);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, "\ndata: x\n\n", 10, rec_cb, &r), TG_OK);
    CU_ASSERT(rec_is(&r, "message|-|x\n"));
    tg_sse_fini(&sse);
    rec_free(&r);
    free(s);
    free(want);
}


static void
test_cuts_long_event_names(void)
{
    char s[256], want[256];
    size_t i;

    memcpy(s, "event: ", 7);
    for (i = 0; i < 100; i++) {
        s[7 + i] = (char)('A' + i % 26);
    }
    memcpy(s + 107, "\ndata: x\n\n", 11);
    memcpy(want, s + 7, 63);
    memcpy(want + 63, "|-|x\n", 6);
    CU_ASSERT(events_are(s, 1024, want));
    /* Also when the line overflows a tiny data bound. */
    CU_ASSERT(events_are(s, 4, want));
}


static void
test_callback_stops_feed(void)
{
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    rec_t r = {0};
    tg_sse_t sse;

    r.stop_at = 2;
    tg_sse_init(&sse, 64);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, s, sizeof(s) - 1, rec_cb, &r), TG_DONE);
    CU_ASSERT(rec_is(&r, "message|-|1\nmessage|-|2\n"));
    tg_sse_fini(&sse);
    rec_free(&r);
}


static void
test_anthropic_stream(void)
{
    static const char s[] =
        "event: message_start\r\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":25,"
        "\"output_tokens\":1}}}\r\n\r\n"
        "event: content_block_start\r\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n"
        "event: ping\r\n"
        "data: {\"type\": \"ping\"}\r\n\r\n"
        "event: content_block_delta\r\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\r\n\r\n"
        "event: content_block_stop\r\n"
        "data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n"
        "event: message_delta\r\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n"
        "event: message_stop\r\n"
        "data: {\"type\":\"message_stop\"}\r\n\r\n";
    static const char want[] =
        "message_start|-|{\"type\":\"message_start\",\"message\":{\"id\":"
        "\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\""
        ":25,\"output_tokens\":1}}}\n"
        "content_block_start|-|{\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
        "ping|-|{\"type\": \"ping\"}\n"
        "content_block_delta|-|{\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n"
        "content_block_stop|-|{\"type\":\"content_block_stop\",\"index\":0}\n"
        "message_delta|-|{\"type\":\"message_delta\",\"delta\":{"
        "\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n"
        "message_stop|-|{\"type\":\"message_stop\"}\n";

    CU_ASSERT(events_are(s, 4096, want));
}


static void
test_openai_stream(void)
{
    static const char s[] =
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"content\":\"Hello\"}}]}\n\n"
        ": keep-alive\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":"
        "{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}"
        "\n\n"
        "data: [DONE]\n\n";
    static const char want[] =
        "message|-|{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\""
        ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n"
        "message|-|{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"content\":\"Hello\"}}]}\n"
        "message|-|{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":"
        "{},\"finish_reason\":\"stop\"}]}\n"
        "message|-|{\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":"
        "{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n"
        "message|-|[DONE]\n";

    CU_ASSERT(events_are(s, 4096, want));
}


static void
test_allocates_lazily(void)
{
    rec_t r = {0};
    tg_sse_t sse;

    tg_sse_init(&sse, 1 << 20);
    CU_ASSERT_PTR_NULL(sse.buf);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, ": hi\n\n\r\n: x\r", 12, rec_cb, &r),
                    TG_OK);
    CU_ASSERT_PTR_NULL(sse.buf);
    CU_ASSERT_EQUAL(tg_sse_feed(&sse, "data: x\n\n", 9, rec_cb, &r), TG_OK);
    CU_ASSERT_PTR_NOT_NULL(sse.buf);
    CU_ASSERT(sse.cap <= 256);
    tg_sse_fini(&sse);
    CU_ASSERT_PTR_NULL(sse.buf);
    tg_sse_fini(&sse);
    rec_free(&r);
}


/* Chaos allocator: fails call number chaos_fail_at (1-based). */
static int chaos_calls;
static int chaos_fail_at;


static void *
chaos_realloc(void *p, size_t n)
{
    if (++chaos_calls == chaos_fail_at) {
        return NULL;
    }
    return realloc(p, n);
}


static void
test_survives_allocation_failure(void)
{
    size_t n = 5000, i;
    char *s = malloc(n + 32);
    int at, rc, failures = 0;

    CU_ASSERT_FATAL(s != NULL);
    memcpy(s, "event: e\ndata: ", 15);
    for (i = 15; i < n; i++) {
        s[i] = 'x';
    }
    memcpy(s + n, "\ndata: y\n\n", 10);
    tg_sse_realloc = chaos_realloc;
    for (at = 1; at <= 12; at++) {
        rec_t r = {0};
        size_t off;
        tg_sse_t sse;

        chaos_calls = 0;
        chaos_fail_at = at;
        rc = TG_OK;
        tg_sse_init(&sse, 4096);
        /* Byte by byte gives every growth step its own call. */
        for (off = 0; off < n + 10 && rc == TG_OK; off += 1) {
            rc = tg_sse_feed(&sse, s + off, 1, rec_cb, &r);
        }
        if (rc == TG_ERROR) {
            failures++;
            CU_ASSERT_EQUAL(r.events, 0);
        } else {
            CU_ASSERT_EQUAL(rc, TG_OK);
            CU_ASSERT_EQUAL(r.events, 1);
        }
        tg_sse_fini(&sse);
        rec_free(&r);
    }
    tg_sse_realloc = realloc;
    /* Growth from nothing to ~4 KB takes several calls, each can fail. */
    CU_ASSERT(failures >= 4);
    free(s);
}


/* Register the "sse" suite.  0 on success. */
int
tg_test_sse_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"dispatches an event on a blank line", test_dispatches_on_blank_line},
        {"treats CRLF, LF and CR line ends alike", test_line_endings},
        {"joins multi-line data with newlines", test_joins_multiline_data},
        {"strips exactly one space after the colon", test_strips_one_space},
        {"treats a line without colon as a field with empty value",
         test_field_without_colon},
        {"ignores comment lines", test_ignores_comments},
        {"does not dispatch an event without data",
         test_event_without_data_is_not_dispatched},
        {"ignores id, retry and unknown fields", test_ignores_other_fields},
        {"cuts data at max_data and marks it truncated",
         test_truncates_at_max_data},
        {"handles a line far longer than max_data in bounded memory",
         test_long_line_bounded},
        {"cuts event names at 63 bytes", test_cuts_long_event_names},
        {"stops feeding when the callback says so", test_callback_stops_feed},
        {"parses an Anthropic messages stream", test_anthropic_stream},
        {"parses an OpenAI chat completions stream", test_openai_stream},
        {"allocates nothing until a line must be kept", test_allocates_lazily},
        {"returns an error without leaking when allocation fails",
         test_survives_allocation_failure},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("sse", NULL, NULL);
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
