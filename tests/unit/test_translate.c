/*
 * tests/unit/test_translate.c
 *      OpenAI <-> Anthropic translation: the data-driven cases in
 *      tests/data/translate, every recorded stream cut at every byte, one
 *      byte at a time, and under failing allocations.
 *
 * NOTES
 *      Each directory tests/data/translate/<case>/ holds "kind", "input"
 *      and "expected".  "kind" is one line:
 *        request <client>              input is the client's body;
 *                                      expected is the translated body
 *                                      (compared as JSON) or "error: "
 *                                      and the exact 400 message
 *        response <client> <status> json|sse [usage]
 *                                      input is the upstream's body;
 *                                      expected the client's bytes
 *      <client> is "openai" or "anthropic".  Stream outputs are compared
 *      line for line after every "created":<n> is set to 0 (the time of
 *      translation), each "data:" line as JSON (the fast path copies a
 *      string escaped as the upstream wrote it, the general path writes it
 *      out again); JSON outputs as JSON.  Every response case runs through
 *      the general path alone and through the fast path.  With
 * TG_TRANSLATE_REGEN=1 in the environment the expected files are rewritten from
 * the output (to be reviewed before committing).
 */
#include "core/core.h"
#include "tests/unit/unit.h"
#include "worker/respond.h"
#include "worker/translate.h"
#include "worker/translate_fast.h"
#include "worker/usage.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TG_TEST_XL_DIR "tests/data/translate"

/* Translated output collected from the emit callback. */
typedef struct {
    char *p;
    size_t len, cap;
} tg_test_xl_out_t;

static int
tg_test_xl_emit(void *ctx, const char *p, size_t n)
{
    tg_test_xl_out_t *o = ctx;

    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *q = realloc(o->p, cap);

        if (q == NULL) {
            return TG_ERROR;
        }
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
    return TG_OK;
}


/* <srcdir>/<dir>/<case>/<file> read whole (caller frees), or NULL. */
static char *
tg_test_xl_read(const char *name, const char *file, size_t *len)
{
    char path[1024];
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/" TG_TEST_XL_DIR "/%s/%s",
             tg_test_srcdir(), name, file);
    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        n = fread(buf, 1, (size_t)st.st_size, f);
        buf[n] = '\0';
    }
    fclose(f);
    if (len != NULL) {
        *len = n;
    }
    return buf;
}


static void
tg_test_xl_write(const char *name, const char *text, size_t len)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/" TG_TEST_XL_DIR "/%s/expected",
             tg_test_srcdir(), name);
    f = fopen(path, "w");
    if (f != NULL) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}


/* Set every "created":<digits> in <s> to 0, in place. */
static void
tg_test_xl_uncreate(char *s, size_t *len)
{
    char *p = s, *d;

    while ((p = strstr(p, "\"created\":")) != NULL) {
        p += 10;
        for (d = p; *d >= '0' && *d <= '9'; d++) {
        }
        if (d > p) {
            *p = '0';
            memmove(p + 1, d, strlen(d) + 1);
            *len -= (size_t)(d - p - 1);
        }
        p++;
    }
}


/* A response case: <kind> after "response ". */
typedef struct {
    int api;
    int status;
    bool sse;
    bool usage;
} tg_test_xl_resp_t;

static bool
tg_test_xl_parse_kind(const char *kind, tg_test_xl_resp_t *k)
{
    char client[16], framing[8], usage[8] = "";

    if (sscanf(kind, "response %15s %d %7s %7s", client, &k->status, framing,
               usage) < 3) {
        return false;
    }
    k->api = strcmp(client, "openai") == 0 ? TG_API_OPENAI : TG_API_ANTHROPIC;
    k->sse = strcmp(framing, "sse") == 0;
    k->usage = strcmp(usage, "usage") == 0;
    return true;
}


/* Translate response <in> of <n> bytes fed in pieces of <piece> bytes
 * (0: whole), or cut once at <cut> when <cut> is not 0.  Returns the
 * output (caller frees) or NULL when the translator failed. */
static char *
tg_test_xl_response(const tg_test_xl_resp_t *k, const char *in, size_t n,
                    size_t piece, size_t cut, size_t *out_len)
{
    tg_test_xl_out_t o = {NULL, 0, 0};
    tg_translate_t *x =
        tg_translate_create(k->api, k->status, k->sse, k->usage);
    size_t off = 0, take;
    int rc = TG_OK;

    if (x == NULL) {
        return NULL;
    }
    tg_test_xl_emit(&o, "", 0);
    while (off < n && rc == TG_OK) {
        take = cut != 0     ? (off == 0 ? cut : n - off)
               : piece != 0 ? TG_MIN(piece, n - off)
                            : n;
        rc = tg_translate_feed(x, in + off, take, tg_test_xl_emit, &o);
        off += take;
    }
    if (rc == TG_OK) {
        rc = tg_translate_finish(x, tg_test_xl_emit, &o);
    }
    tg_translate_destroy(x);
    if (rc != TG_OK) {
        free(o.p);
        return NULL;
    }
    if (o.p == NULL) {
        o.p = calloc(1, 1);
    }
    *out_len = o.len;
    /* The translation's clock may tick between two runs. */
    tg_test_xl_uncreate(o.p, out_len);
    return o.p;
}


/* Whether <got> (<glen> bytes) matches <want>: as JSON when both parse,
 * else byte for byte. */
static bool
tg_test_xl_same(const char *got, size_t glen, const char *want, size_t wlen,
                bool json)
{
    json_t *a, *b;
    bool same;

    if (!json) {
        return glen == wlen && memcmp(got, want, glen) == 0;
    }
    a = json_loadb(got, glen, 0, NULL);
    b = json_loadb(want, wlen, 0, NULL);
    same = a != NULL && b != NULL && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return same;
}


/* Whether SSE output <got> holds the same events as <want>: the same
 * lines, "data:" lines compared as JSON when both parse (the fast path
 * copies strings escaped as the upstream wrote them). */
static bool
tg_test_xl_same_events(const char *got, size_t glen, const char *want,
                       size_t wlen)
{
    const char *g = got, *w = want, *gend = got + glen, *wend = want + wlen;
    const char *gl, *wl;
    size_t gn, wn;

    while (g < gend && w < wend) {
        gl = memchr(g, '\n', (size_t)(gend - g));
        wl = memchr(w, '\n', (size_t)(wend - w));
        gn = gl != NULL ? (size_t)(gl - g) : (size_t)(gend - g);
        wn = wl != NULL ? (size_t)(wl - w) : (size_t)(wend - w);
        if (!(gn == wn && memcmp(g, w, gn) == 0) &&
            !(gn > 6 && wn > 6 && memcmp(g, "data: ", 6) == 0 &&
              memcmp(w, "data: ", 6) == 0 &&
              tg_test_xl_same(g + 6, gn - 6, w + 6, wn - 6, true))) {
            return false;
        }
        g += gn + (gl != NULL);
        w += wn + (wl != NULL);
    }
    return g == gend && w == wend;
}


static bool
tg_test_xl_request_case(const char *name, const char *kind, const char *in,
                        size_t n, const char *want, size_t wlen)
{
    tg_translate_req_t q = {0};
    char client[16], *out = NULL, buf[600];
    size_t out_len = 0;
    tg_err_t err;
    bool pass;
    int rc;

    if (sscanf(kind, "request %15s", client) != 1) {
        return false;
    }
    q.client_api =
        strcmp(client, "openai") == 0 ? TG_API_OPENAI : TG_API_ANTHROPIC;
    q.max_tokens = 4096;
    rc = tg_translate_request(&q, in, n, &out, &out_len, &err);
    if (rc == TG_DECLINED) {
        snprintf(buf, sizeof(buf), "error: %s\n", err.text);
        out = strdup(buf);
        out_len = strlen(buf);
    } else if (rc != TG_OK) {
        return false;
    }
    if (getenv("TG_TRANSLATE_REGEN") != NULL) {
        tg_test_xl_write(name, out, out_len);
    }
    pass = tg_test_xl_same(out, out_len, want, wlen, rc == TG_OK);
    if (!pass) {
        fprintf(stderr, "\n  translate case %s: got\n%.*s\n", name,
                (int)out_len, out);
    }
    free(out);
    return pass;
}


static bool
tg_test_xl_response_case(const char *name, const char *kind, const char *in,
                         size_t n, const char *want, size_t wlen)
{
    tg_test_xl_resp_t k;
    char *out, *w;
    size_t out_len, w_len = wlen;
    bool pass;

    if (!tg_test_xl_parse_kind(kind, &k)) {
        return false;
    }
    /* Both paths, the general one first, must give the expected events. */
    tg_translate_fast_on = false;
    out = tg_test_xl_response(&k, in, n, 0, 0, &out_len);
    tg_translate_fast_on = true;
    if (out == NULL) {
        fprintf(stderr, "\n  translate case %s: translation failed\n", name);
        return false;
    }
    tg_test_xl_uncreate(out, &out_len);
    if (getenv("TG_TRANSLATE_REGEN") != NULL) {
        tg_test_xl_write(name, out, out_len);
    }
    w = strdup(want);
    tg_test_xl_uncreate(w, &w_len);
    pass = k.sse ? tg_test_xl_same_events(out, out_len, w, w_len)
                 : tg_test_xl_same(out, out_len, w, w_len, true);
    free(out);
    out = pass ? tg_test_xl_response(&k, in, n, 0, 0, &out_len) : NULL;
    pass =
        out != NULL && (k.sse ? tg_test_xl_same_events(out, out_len, w, w_len)
                              : tg_test_xl_same(out, out_len, w, w_len, true));
    if (!pass) {
        fprintf(stderr, "\n  translate case %s: got\n%.*s\n", name,
                out != NULL ? (int)out_len : 0, out != NULL ? out : "");
    }
    free(w);
    free(out);
    return pass;
}


/* Run every case; <fn> picks "request" or "response" ones. */
static void
tg_test_xl_cases(bool requests)
{
    char dir[1024], *kind, *in, *want;
    size_t n, wlen;
    struct dirent *de;
    int ran = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/" TG_TEST_XL_DIR, tg_test_srcdir());
    d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        kind = tg_test_xl_read(de->d_name, "kind", NULL);
        in = tg_test_xl_read(de->d_name, "input", &n);
        want = tg_test_xl_read(de->d_name, "expected", &wlen);
        if (kind == NULL || in == NULL || want == NULL) {
            fprintf(stderr, "\n  translate case %s: missing a file\n",
                    de->d_name);
            CU_FAIL("case files missing");
        } else if (requests && strncmp(kind, "request ", 8) == 0) {
            CU_ASSERT(
                tg_test_xl_request_case(de->d_name, kind, in, n, want, wlen));
            ran++;
        } else if (!requests && strncmp(kind, "response ", 9) == 0) {
            CU_ASSERT(
                tg_test_xl_response_case(de->d_name, kind, in, n, want, wlen));
            ran++;
        }
        free(kind);
        free(in);
        free(want);
    }
    closedir(d);
    CU_ASSERT(ran >= 5);
}


static void
test_translate_requests(void)
{
    tg_test_xl_cases(true);
}


static void
test_translate_responses(void)
{
    tg_test_xl_cases(false);
}


/*
 * Every stream case gives the same bytes cut in two at every byte, and
 * fed one byte at a time, as fed whole: the translator keeps its state
 * between pieces and emits nothing early or twice.
 */
static void
test_translate_every_byte(void)
{
    char dir[1024], *kind, *in, *whole, *got;
    size_t n, wlen, glen, cut;
    struct dirent *de;
    tg_test_xl_resp_t k;
    int streams = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/" TG_TEST_XL_DIR, tg_test_srcdir());
    d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        kind = tg_test_xl_read(de->d_name, "kind", NULL);
        in = tg_test_xl_read(de->d_name, "input", &n);
        if (kind != NULL && in != NULL && tg_test_xl_parse_kind(kind, &k)) {
            streams += k.sse;
            whole = tg_test_xl_response(&k, in, n, 0, 0, &wlen);
            CU_ASSERT_PTR_NOT_NULL(whole);
            for (cut = 1; whole != NULL && cut < n; cut++) {
                got = tg_test_xl_response(&k, in, n, 0, cut, &glen);
                CU_ASSERT(got != NULL && glen == wlen &&
                          memcmp(got, whole, wlen) == 0);
                if (got == NULL || glen != wlen ||
                    memcmp(got, whole, wlen) != 0) {
                    fprintf(stderr, "\n  %s differs cut at %zu\n", de->d_name,
                            cut);
                    free(got);
                    break;
                }
                free(got);
            }
            got = tg_test_xl_response(&k, in, n, 1, 0, &glen);
            CU_ASSERT(whole != NULL && got != NULL && glen == wlen &&
                      memcmp(got, whole, wlen) == 0);
            free(got);
            free(whole);
        }
        free(kind);
        free(in);
    }
    closedir(d);
    CU_ASSERT(streams >= 4);
}


/* Output dropped (the usage test looks only at what the observer saw). */
static int
tg_test_xl_drop(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return TG_OK;
}


/* Whether usage <a> and <b> read the same from a stream. */
static bool
tg_test_xl_usage_same(const tg_usage_t *a, const tg_usage_t *b)
{
    return memcmp(a->tokens, b->tokens, sizeof(a->tokens)) == 0 &&
           strcmp(a->model, b->model) == 0 && a->seen == b->seen &&
           a->final == b->final && a->ended == b->ended &&
           a->error_event == b->error_event;
}


/*
 * Usage that reads a translated stream's events from the translator
 * (tg_translate_observe) reads what it reads from the upstream's bytes
 * (tg_usage_feed), for every recorded stream cut at every byte.
 */
static void
test_translate_usage_events(void)
{
    char dir[1024], *kind, *in;
    size_t n, cut;
    struct dirent *de;
    tg_test_xl_resp_t k;
    tg_usage_t ref, u;
    tg_translate_t *x;
    int streams = 0, with_usage = 0;
    bool openai_up;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/" TG_TEST_XL_DIR, tg_test_srcdir());
    d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d)) != NULL) {
        kind = tg_test_xl_read(de->d_name, "kind", NULL);
        in = tg_test_xl_read(de->d_name, "input", &n);
        if (kind != NULL && in != NULL && tg_test_xl_parse_kind(kind, &k) &&
            k.sse && k.status == 200) {
            streams++;
            openai_up = k.api == TG_API_ANTHROPIC;
            tg_usage_init(&ref, openai_up, true, TG_DECODE_IDENTITY, 1);
            tg_usage_feed(&ref, in, n);
            with_usage += ref.final;
            for (cut = 1; cut < n; cut++) {
                tg_usage_init(&u, openai_up, true, TG_DECODE_IDENTITY, 1);
                CU_ASSERT_FATAL(tg_usage_takes_events(&u));
                x = tg_translate_create(k.api, 200, true, k.usage);
                CU_ASSERT_PTR_NOT_NULL_FATAL(x);
                tg_translate_observe(x, tg_usage_event, &u);
                (void)tg_translate_feed(x, in, cut, tg_test_xl_drop, NULL);
                (void)tg_translate_feed(x, in + cut, n - cut, tg_test_xl_drop,
                                        NULL);
                tg_translate_destroy(x);
                if (!tg_test_xl_usage_same(&u, &ref)) {
                    CU_FAIL("usage from the translator's events differs");
                    fprintf(stderr, "\n  %s differs cut at %zu\n", de->d_name,
                            cut);
                    tg_usage_fini(&u);
                    break;
                }
                tg_usage_fini(&u);
            }
            tg_usage_fini(&ref);
        }
        free(kind);
        free(in);
    }
    closedir(d);
    CU_ASSERT(streams >= 4);
    CU_ASSERT(with_usage >= 2);
}


/* Garbage, a truncated stream and an event past the bound never crash
 * and end in a bounded way. */
static void
test_translate_hostile(void)
{
    static const char junk[] = "data: {\"choices\":[{\"delta\":{\"tool_calls\":"
                               "[{\"index\":-5,\"function\":{\"arguments\":7}}"
                               "]}}]}\n\ndata: [1,2,3]\n\nevent: "
                               "content_block_delta\ndata: {\"delta\":null}"
                               "\n\n";
    tg_test_xl_resp_t k = {TG_API_ANTHROPIC, 200, true, false};
    size_t len;
    char *out;

    out = tg_test_xl_response(&k, junk, sizeof(junk) - 1, 0, 0, &len);
    CU_ASSERT_PTR_NOT_NULL(out);
    free(out);
    k.api = TG_API_OPENAI;
    out = tg_test_xl_response(&k, junk, sizeof(junk) - 1, 0, 0, &len);
    CU_ASSERT_PTR_NOT_NULL(out);
    free(out);
    /* A body that is not JSON answers with an error in the client's
     * shape, not a crash or an empty body. */
    k.sse = false;
    out = tg_test_xl_response(&k, "<html>", 6, 0, 0, &len);
    CU_ASSERT(out != NULL && strstr(out, "\"error\"") != NULL);
    free(out);
}


/* Requests that are not JSON, or not objects, are declined with a
 * message; none is an error of ours. */
static void
test_translate_bad_requests(void)
{
    static const char *const bad[] = {"",
                                      "[]",
                                      "{",
                                      "{\"model\":1}",
                                      "{\"model\":\"m\",\"messages\":{}}",
                                      "{\"model\":\"m\",\"messages\":[1]}"};
    tg_translate_req_t q = {TG_API_OPENAI, NULL, 4096, 1};
    char *out;
    size_t len, i;
    tg_err_t err;

    for (i = 0; i < TG_NELEMS(bad); i++) {
        q.client_api = TG_API_OPENAI;
        CU_ASSERT_EQUAL(
            tg_translate_request(&q, bad[i], strlen(bad[i]), &out, &len, &err),
            TG_DECLINED);
        CU_ASSERT_PTR_NULL(out);
        q.client_api = TG_API_ANTHROPIC;
        CU_ASSERT_EQUAL(
            tg_translate_request(&q, bad[i], strlen(bad[i]), &out, &len, &err),
            TG_DECLINED);
    }
    CU_ASSERT_EQUAL(tg_translate_status(TG_API_OPENAI, 529), 503);
    CU_ASSERT_EQUAL(tg_translate_status(TG_API_ANTHROPIC, 529), 529);
    CU_ASSERT_STRING_EQUAL(tg_translate_path(1), "/v1/chat/completions");
}


/*
 * Fast path corpus: JSON string values, as written in an event, that the
 * text of a delta takes.  <fast> says the scanner must take the event
 * (and so copy the string as it is); the others are for jansson to refuse
 * or for the general path.
 */
static const struct {
    const char *str;
    bool fast;
} tg_test_xl_strings[] = {
    {"\"plain words\"", true},
    {"\"Say \\\"hi\\\" to \\\"you\\\"\"", true},
    {"\"C:\\\\dir\\/x\\n\\tok\\r\\b\\f\"", true},
    {"\"caf\\u00e9 \\u00E9\"", true},
    {"\"smile \\ud83d\\ude00 \\uD83D\\uDE00\"", true},
    {"\"raw caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", true},
    {"\"\\u2028\\u2029\\u001f\\u007f\"", true},
    {"\"\\\\u0041 is not an escape\"", true},
    {"\"\"", true},
    {"\"\x7f del\"", true},
    {"\"nul \\u0000\"", false},
    {"\"lone high \\ud800\"", false},
    {"\"lone high \\ud800 x\"", false},
    {"\"high then not low \\ud800\\u0041\"", false},
    {"\"lone low \\udc00\"", false},
    {"\"bad escape \\x\"", false},
    {"\"short \\u12\"", false},
    {"\"bad utf-8 \xc3\x28\"", false},
    {"\"overlong \xc0\xaf\"", false},
    {"\"overlong \xe0\x80\xaf\"", false},
    {"\"surrogate \xed\xa0\x80\"", false},
    {"\"too high \xf4\x90\x80\x80\"", false},
    {"\"cut \xe2\x82\"", false},
    {"\"raw control \x01\"", false},
    {"\"raw newline \n\"", false},
    {"\"unterminated", false},
    {"42", true},
    {"null", true},
    {"[\"a\"]", true},
    {"[1, {\"a\": [true, false, -0.5e-3]}]", true},
};

/* Chunk layouts around a string <%s> (OpenAI upstream). */
static const char *const tg_test_xl_chunks[] = {
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "%s},\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"content\":%s,\"role\":null},\"index\":0,"
    "\"finish_reason\":null}],\"id\":\"c1\",\"usage\":null,\"obfuscation\":"
    "\"x\",\"system_fingerprint\":\"fp\",\"created\":1e3}",
    " { \"id\" : \"c1\" , \"choices\" : [ { \"delta\" : { \"refusal\" : %s "
    "} , \"finish_reason\" : \"content_filter\" } , { \"delta\" : {} } ] } ",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":%s,"
    "\"tool_calls\":[]},\"finish_reason\":\"length\"}],\"usage\":{"
    "\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17,"
    "\"prompt_tokens_details\":{\"cached_tokens\":4,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":%s,"
    "\"content\":\"twice\"}}]}",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"con\\u0074ent\":%s}}]}",
    "{\"id\":\"c1\",\"created\":99999999999999999999,\"choices\":[{\"delta\""
    ":{\"content\":%s}}]}",
    "{\"id\":\"c1\",\"x\":1e999,\"choices\":[{\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":%s,\"tool_calls\":"
    "[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"f\","
    "\"arguments\":\"{}\"}}]}}]}",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":%s}}]} x",
    "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":%s}}],}",
    "{\"error\":{\"message\":%s}}",
    /* From TG_TEST_XL_TOOL on: for a stream where call 0 is open. */
    "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
    "\"index\":0,\"function\":{\"arguments\":%s}}]},\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":"
    "%s,\"name\":null},\"type\":\"function\",\"index\":0,\"id\":\"x\"}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\","
    "\"function\":{\"name\":\"g\",\"arguments\":%s}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
    "\"arguments\":%s}},{\"index\":0,\"function\":{\"arguments\":\"x\"}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1,\"function\":{"
    "\"arguments\":%s}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0.0,\"function\":"
    "{\"arguments\":%s}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":"
    "%s}}]}}]}",
};
#define TG_TEST_XL_TOOL 12

/* Event layouts around a string <%s> (Anthropic upstream). */
static const char *const tg_test_xl_events[] = {
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n",
    "event: content_block_delta\ndata: {\"delta\": {\"text\": %s, \"type\": "
    "\"text_delta\"}, \"index\": 0, \"type\": \"content_block_delta\"}\n\n",
    "event: content_block_delta\ndata: {\"index\":00,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":%s}}\n\n",
    "event: content_block_delta\ndata: {\"delta\":{\"type\":\"text_delta\","
    "\"text\":%s,\"text\":\"twice\"}}\n\n",
    "event: content_block_delta\ndata: {\"delta\":{\"type\":\"input_json_"
    "delta\",\"partial_json\":%s}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\",\"x\":%s}\n\n",
    "event: content_block_stop\ndata: {\"index\":0,\"x\":[%s]}\n\n",
};


/* <layout> with its "%s" replaced by <str>, into <dst> of <cap> bytes. */
static void
tg_test_xl_fill(char *dst, size_t cap, const char *layout, const char *str)
{
    const char *at = strstr(layout, "%s");

    snprintf(dst, cap, "%.*s%s%s", (int)(at - layout), layout, str, at + 2);
}


/* Translate the stream <head> <mid> <tail>, fast path on or off; the
 * output (caller frees), NULL when translation failed. */
static char *
tg_test_xl_fast_run(int api, const char *head, const char *mid,
                    const char *tail, bool fast, size_t *len)
{
    tg_test_xl_resp_t k = {api, 200, true, true};
    size_t n = strlen(head) + strlen(mid) + strlen(tail);
    char *in = malloc(n + 1), *out;

    if (in == NULL) {
        return NULL;
    }
    snprintf(in, n + 1, "%s%s%s", head, mid, tail);
    tg_translate_fast_on = fast;
    out = tg_test_xl_response(&k, in, n, 0, 0, len);
    tg_translate_fast_on = true;
    free(in);
    return out;
}


/* Both paths give the same events for <mid> between <head> and <tail>;
 * when <copied> is not NULL, the fast path copied it as it was. */
static void
tg_test_xl_fast_same(int api, const char *head, const char *mid,
                     const char *tail, const char *copied)
{
    size_t flen = 0, glen = 0;
    char *f = tg_test_xl_fast_run(api, head, mid, tail, true, &flen);
    char *g = tg_test_xl_fast_run(api, head, mid, tail, false, &glen);
    bool same =
        f != NULL && g != NULL && tg_test_xl_same_events(f, flen, g, glen);

    CU_ASSERT(same);
    if (!same) {
        fprintf(stderr,
                "\n  fast path differs on %s\n  fast: %s\n  general: %s\n", mid,
                f != NULL ? f : "(failed)", g != NULL ? g : "(failed)");
    }
    if (copied != NULL && f != NULL) {
        CU_ASSERT_PTR_NOT_NULL(strstr(f, copied));
        if (strstr(f, copied) == NULL) {
            fprintf(stderr, "\n  fast path did not copy %s: %s\n", copied, f);
        }
    }
    free(f);
    free(g);
}


/*
 * The fast path gives the events the general path gives, for text with
 * every kind of escape and byte sequence, in every layout of the common
 * events both APIs send, including those it must decline; and what its
 * scanner takes, jansson takes too.
 */
static void
test_translate_fast_same(void)
{
    static const char o_head[] =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
        "\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}\n\n";
    static const char o_head_tool[] =
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{"
        "\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"\"}}]}}]}\n\n";
    static const char a_head_tool[] =
        "event: message_start\ndata: {\"message\":{\"id\":\"msg_1\",\"model\":"
        "\"claude-x\"}}\n\nevent: content_block_start\ndata: "
        "{\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}"
        "}}\n\n";
    static const char o_tail[] =
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":"
        "\"stop\"}]}\n\ndata: {\"id\":\"c1\",\"choices\":[],\"usage\":{"
        "\"prompt_tokens\":9,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
    static const char a_head[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
        "{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":"
        "5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: "
        "{\"type\":"
        "\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"text\",\"text\":\"\"}}\n\n";
    static const char a_tail[] =
        "event: content_block_stop\ndata: {\"index\":0}\n\nevent: message_delta"
        "\ndata: {\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{"
        "\"output_tokens\":3}}\n\nevent: message_stop\ndata: {}\n\n";
    tg_translate_fast_chunk_t c;
    char ev[512], inside[256];
    size_t i, j, n;
    json_t *root;
    bool fast, copy;

    for (i = 0; i < TG_NELEMS(tg_test_xl_strings); i++) {
        const char *str = tg_test_xl_strings[i].str;

        n = strlen(str);
        /* The string's insides, as a fast path copy shows them. */
        snprintf(inside, sizeof(inside), "%.*s", n >= 2 ? (int)n - 2 : 0,
                 str + 1);
        copy = tg_test_xl_strings[i].fast && n > 2 && *str == '"';
        for (j = 0; j < TG_NELEMS(tg_test_xl_chunks); j++) {
            tg_test_xl_fill(ev, sizeof(ev), tg_test_xl_chunks[j], str);
            fast = tg_translate_fast_chunk(ev, strlen(ev), &c) == TG_OK;
            root = json_loads(ev, 0, NULL);
            CU_ASSERT(!fast || root != NULL);
            json_decref(root);
            if (j == 0) {
                CU_ASSERT_EQUAL(fast, tg_test_xl_strings[i].fast);
            }
            snprintf(ev, sizeof(ev), "data: ");
            tg_test_xl_fill(ev + 6, sizeof(ev) - 6, tg_test_xl_chunks[j], str);
            strcat(ev, "\n\n");
            tg_test_xl_fast_same(TG_API_ANTHROPIC, o_head, ev, o_tail,
                                 j == 0 && copy ? inside : NULL);
            tg_test_xl_fast_same(TG_API_ANTHROPIC, o_head_tool, ev, o_tail,
                                 j == TG_TEST_XL_TOOL && copy ? inside : NULL);
        }
        for (j = 0; j < TG_NELEMS(tg_test_xl_events); j++) {
            tg_test_xl_fill(ev, sizeof(ev), tg_test_xl_events[j], str);
            tg_test_xl_fast_same(TG_API_OPENAI, a_head, ev, a_tail,
                                 j == 0 && copy ? inside : NULL);
            tg_test_xl_fast_same(TG_API_OPENAI, a_head_tool, ev, a_tail,
                                 j == 4 && copy ? inside : NULL);
        }
    }
}


/* The scanner reads the members translation needs, as written. */
static void
test_translate_fast_members(void)
{
    static const char chunk[] =
        "{\"id\":\"chatcmpl-1\",\"model\":\"gpt\\u0034o\",\"choices\":[{"
        "\"delta\":{\"content\":\"a\\\"b\"},\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":-4,"
        "\"prompt_tokens_details\":{\"cached_tokens\":10.5}}}";
    static const char delta[] = "{\"delta\":{\"type\":\"input_json_delta\","
                                "\"partial_json\":\"{\\\"a\\\":\"}}";
    tg_translate_fast_chunk_t c;
    tg_translate_fast_event_t e;

    CU_ASSERT_EQUAL_FATAL(tg_translate_fast_chunk(chunk, strlen(chunk), &c),
                          TG_OK);
    CU_ASSERT(tg_str_eq(c.id, tg_str_lit("chatcmpl-1")));
    CU_ASSERT(c.model.data == NULL && c.model_esc);
    CU_ASSERT(tg_str_eq(c.content, tg_str_lit("a\\\"b")));
    CU_ASSERT(tg_str_eq(c.finish, tg_str_lit("length")));
    CU_ASSERT(c.usage && c.prompt == 30 && c.completion == 0 && c.cached == 0);
    CU_ASSERT_EQUAL_FATAL(
        tg_translate_fast_event(delta, strlen(delta), true, &e), TG_OK);
    CU_ASSERT(tg_str_eq(e.type, tg_str_lit("input_json_delta")));
    CU_ASSERT(tg_str_eq(e.json, tg_str_lit("{\\\"a\\\":")));
    CU_ASSERT_EQUAL(tg_translate_fast_event("[1,2]", 5, false, &e), TG_OK);
    CU_ASSERT_EQUAL(tg_translate_fast_event("[1,2]", 5, true, &e), TG_DECLINED);
    CU_ASSERT_EQUAL(tg_translate_fast_event("\"s\"", 3, false, &e),
                    TG_DECLINED);
    CU_ASSERT_EQUAL(tg_translate_fast_event("", 0, false, &e), TG_DECLINED);
}


/* See unit.h. */
int
tg_test_translate_register(void)
{
    CU_pSuite s = CU_add_suite("translate", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "request cases translate as expected",
                    test_translate_requests) == NULL ||
        CU_add_test(s, "response and stream cases translate as expected",
                    test_translate_responses) == NULL ||
        CU_add_test(s, "streams cut at every byte translate as when fed whole",
                    test_translate_every_byte) == NULL ||
        CU_add_test(s,
                    "usage read from the translator's events equals usage "
                    "read from the bytes, cut at every byte",
                    test_translate_usage_events) == NULL ||
        CU_add_test(s, "hostile upstream bodies never crash",
                    test_translate_hostile) == NULL ||
        CU_add_test(s, "bad request bodies are declined with a message",
                    test_translate_bad_requests) == NULL ||
        CU_add_test(s, "fast path events are the general path's",
                    test_translate_fast_same) == NULL ||
        CU_add_test(s, "fast path scanner reads members as written",
                    test_translate_fast_members) == NULL) {
        return -1;
    }
    return 0;
}
