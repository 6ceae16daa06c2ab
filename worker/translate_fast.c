/*
 * worker/translate_fast.c
 *      The translation fast path's scanners: a bounded hand scanner of
 *      one stream event's JSON that finds the members translation reads.
 *
 * NOTES
 *      The general path (worker/translate.c) parses every event with
 *      jansson into a tree and looks up a handful of members.  For the
 *      events that make up nearly all of a stream (text deltas) that tree
 *      costs far more than the translation itself.  These scanners read
 *      the same event in one pass, in place, and accept exactly what
 *      jansson's json_loadb(flags 0) accepts or less: JSON grammar with an
 *      object or array at the top, strings of valid UTF-8 with no raw
 *      control byte, escapes that decode to valid code points other than
 *      U+0000 (a \uD800-\uDBFF must be followed by a \uDC00-\uDFFF),
 *      integers that fit in 64 bits (the scanner takes at most 18 digits)
 *      and reals that cannot overflow (at most 30 integer digits and a
 *      two-digit exponent).  What it is not sure of, it declines; the
 *      differential unit tests and tests/fuzz/fuzz_translate_fast.c hold
 *      it to the general path.  Recursion is bounded by
 *      TG_TRANSLATE_FAST_DEPTH.  Worker only; no allocation, no logging.
 */
#include "worker/translate_fast.h"

#include <string.h>

typedef struct {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* end of the event data */
} tg_xf_t;

/* Members seen, to decline a repeated one (jansson keeps the last). */
enum {
    TG_XF_SEEN_ID = 1 << 0,
    TG_XF_SEEN_MODEL = 1 << 1,
    TG_XF_SEEN_CHOICES = 1 << 2,
    TG_XF_SEEN_USAGE = 1 << 3,
    TG_XF_SEEN_DELTA = 1 << 4,
    TG_XF_SEEN_FINISH = 1 << 5,
    TG_XF_SEEN_CONTENT = 1 << 6,
    TG_XF_SEEN_REFUSAL = 1 << 7,
    TG_XF_SEEN_TOOLS = 1 << 8,
    TG_XF_SEEN_TYPE = 1 << 9,
    TG_XF_SEEN_TEXT = 1 << 10,
    TG_XF_SEEN_JSON = 1 << 11,
    TG_XF_SEEN_PROMPT = 1 << 12,
    TG_XF_SEEN_COMPLETION = 1 << 13,
    TG_XF_SEEN_DETAILS = 1 << 14,
    TG_XF_SEEN_CACHED = 1 << 15,
    TG_XF_SEEN_CHOICE = 1 << 16, /* choices[0] was read */
    TG_XF_SEEN_INDEX = 1 << 17,
    TG_XF_SEEN_FUNCTION = 1 << 18,
    TG_XF_SEEN_ARGS = 1 << 19
};


static void
tg_xf_ws(tg_xf_t *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->p++;
    }
}


/* Four hex digits at <p> (bounds checked by the caller) as a value, or
 * -1. */
static long
tg_xf_hex4(const unsigned char *p)
{
    long v = 0;
    int i, d;

    for (i = 0; i < 4; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            d = p[i] - '0';
        } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
            d = (p[i] | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}


/* One escape sequence after its backslash at s->p; false when jansson
 * would refuse it. */
static bool
tg_xf_escape(tg_xf_t *s)
{
    long v, lo;

    switch (*s->p) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        s->p++;
        return true;
    case 'u':
        break;
    default:
        return false;
    }
    if (s->end - s->p < 5 || (v = tg_xf_hex4(s->p + 1)) <= 0 ||
        (v >= 0xdc00 && v <= 0xdfff)) {
        return false; /* \u0000 needs JSON_ALLOW_NUL; a lone low half */
    }
    s->p += 5;
    if (v < 0xd800 || v > 0xdbff) {
        return true;
    }
    /* A high surrogate must be followed by an escaped low one. */
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
        (lo = tg_xf_hex4(s->p + 2)) < 0xdc00 || lo > 0xdfff) {
        return false;
    }
    s->p += 6;
    return true;
}


/* One UTF-8 sequence of two to four bytes at s->p, checked as jansson
 * does (no overlong form, no surrogate, nothing above U+10FFFF). */
static bool
tg_xf_utf8(tg_xf_t *s)
{
    const unsigned char *p = s->p;
    unsigned long v;
    size_t n, i;

    if (*p >= 0xc2 && *p <= 0xdf) {
        n = 2;
        v = *p & 0x1f;
    } else if (*p >= 0xe0 && *p <= 0xef) {
        n = 3;
        v = *p & 0x0f;
    } else if (*p >= 0xf0 && *p <= 0xf4) {
        n = 4;
        v = *p & 0x07;
    } else {
        return false;
    }
    if ((size_t)(s->end - p) < n) {
        return false;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return false;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
        (v >= 0xd800 && v <= 0xdfff)) {
        return false;
    }
    s->p += n;
    return true;
}


/*
 * The string at s->p (its opening quote).  <raw> gets its insides as
 * written, <esc> whether they hold an escape.  False when it is not a
 * valid string.
 */
static bool
tg_xf_string(tg_xf_t *s, tg_str_t *raw, bool *esc)
{
    const unsigned char *start = ++s->p;

    *esc = false;
    for (;;) {
        /* The common run: printable ASCII. */
        while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 && *s->p != '"' &&
               *s->p != '\\') {
            s->p++;
        }
        if (s->p == s->end || *s->p < 0x20) {
            return false;
        }
        if (*s->p == '"') {
            break;
        }
        if (*s->p == '\\') {
            *esc = true;
            s->p++;
            if (s->p == s->end || !tg_xf_escape(s)) {
                return false;
            }
        } else if (!tg_xf_utf8(s)) {
            return false;
        }
    }
    raw->data = (const char *)start;
    raw->len = (size_t)(s->p - start);
    s->p++;
    return true;
}


/* A run of digits at s->p; their count. */
static size_t
tg_xf_digits(tg_xf_t *s)
{
    const unsigned char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        s->p++;
    }
    return (size_t)(s->p - start);
}


/*
 * The number at s->p.  *<v> gets its value when it is a positive
 * integer, else 0; *<integer> whether it is an integer.  False when it is
 * not a number jansson reads without a range error.
 */
static bool
tg_xf_number(tg_xf_t *s, bool *integer, uint64_t *v)
{
    const unsigned char *start;
    bool neg = false;
    size_t n;

    *v = 0;
    *integer = true;
    if (*s->p == '-') {
        neg = true;
        s->p++;
    }
    start = s->p;
    n = tg_xf_digits(s);
    if (n == 0 || (n > 1 && *start == '0')) {
        return false;
    }
    if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E')) {
        *integer = false;
        if (n > 30) {
            return false;
        }
        if (*s->p == '.') {
            s->p++;
            if (tg_xf_digits(s) == 0) {
                return false;
            }
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
            s->p++;
            if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
                s->p++;
            }
            n = tg_xf_digits(s);
            if (n == 0 || n > 2) {
                return false;
            }
        }
        return true;
    }
    if (n > 18) {
        return false;
    }
    while (!neg && start < s->p) {
        *v = *v * 10 + (uint64_t)(*start++ - '0');
    }
    return true;
}


static bool
tg_xf_literal(tg_xf_t *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return false;
    }
    s->p += n;
    return true;
}


static bool tg_xf_skip(tg_xf_t *s, int depth);


/*
 * Step through an object or array opened at s->p (after '{' or '[' and
 * blanks, or after the previous member).  Returns 1 when another member
 * follows (for an object, its plain key is in <key> and s->p is at its
 * value), 0 at the end (closing byte consumed), -1 when the input is not
 * valid or the key has an escape.
 */
static int
tg_xf_next(tg_xf_t *s, bool object, bool *first, tg_str_t *key)
{
    bool esc;

    tg_xf_ws(s);
    if (s->p == s->end) {
        return -1;
    }
    if (*s->p == (object ? '}' : ']')) {
        s->p++;
        return 0;
    }
    if (!*first) {
        if (*s->p != ',') {
            return -1;
        }
        s->p++;
        tg_xf_ws(s);
        if (s->p == s->end) {
            return -1;
        }
    }
    *first = false;
    if (!object) {
        return *s->p == ']' ? -1 : 1;
    }
    if (*s->p != '"' || !tg_xf_string(s, key, &esc) || esc) {
        return -1;
    }
    tg_xf_ws(s);
    if (s->p == s->end || *s->p != ':') {
        return -1;
    }
    s->p++;
    tg_xf_ws(s);
    return s->p == s->end ? -1 : 1;
}


/* Skip any value at s->p (not a blank), checking it; <depth> is what
 * nesting is left. */
static bool
tg_xf_skip(tg_xf_t *s, int depth)
{
    tg_str_t str;
    uint64_t v;
    bool b, first = true, object;
    int rc;

    switch (*s->p) {
    case '"':
        return tg_xf_string(s, &str, &b);
    case '{':
    case '[':
        if (depth == 0) {
            return false;
        }
        object = *s->p++ == '{';
        while ((rc = tg_xf_next(s, object, &first, &str)) == 1) {
            tg_xf_ws(s);
            if (!tg_xf_skip(s, depth - 1)) {
                return false;
            }
        }
        return rc == 0;
    case 't':
        return tg_xf_literal(s, "true", 4);
    case 'f':
        return tg_xf_literal(s, "false", 5);
    case 'n':
        return tg_xf_literal(s, "null", 4);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
            return tg_xf_number(s, &b, &v);
        }
        return false;
    }
}


/* Mark <bit> in <seen>; false when it was already there. */
static bool
tg_xf_once(unsigned *seen, unsigned bit)
{
    if (*seen & bit) {
        return false;
    }
    *seen |= bit;
    return true;
}


/*
 * A string member's value: <out> gets its raw insides when it is a
 * string (and <plain> does not forbid escapes), else stays NULL; any
 * other value is skipped.  *<esc> (may be NULL) tells of escapes.
 */
static bool
tg_xf_str_member(tg_xf_t *s, tg_str_t *out, bool plain, bool *esc)
{
    bool e;

    *out = tg_str_null;
    if (*s->p != '"') {
        return tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH);
    }
    if (!tg_xf_string(s, out, &e)) {
        return false;
    }
    if (esc != NULL) {
        *esc = e;
    }
    if (e && plain) {
        *out = tg_str_null;
        return esc != NULL;
    }
    return true;
}


/* An integer member as tg_xt_u64 reads it: positive integers count,
 * anything else is 0. */
static bool
tg_xf_u64_member(tg_xf_t *s, uint64_t *v)
{
    bool integer;

    *v = 0;
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
        if (!tg_xf_number(s, &integer, v)) {
            return false;
        }
        if (!integer) {
            *v = 0;
        }
        return true;
    }
    return tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH);
}


/* The object at s->p when it is one, else skip the value: <is> tells. */
static bool
tg_xf_open(tg_xf_t *s, bool *is)
{
    *is = *s->p == '{';
    if (!*is) {
        return tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH);
    }
    s->p++;
    return true;
}


/* usage.prompt_tokens_details */
static bool
tg_xf_details(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, is;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &is)) {
        return false;
    }
    if (!is) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("cached_tokens"))) {
            if (!tg_xf_once(seen, TG_XF_SEEN_CACHED) ||
                !tg_xf_u64_member(s, &c->cached)) {
                return false;
            }
        } else if (!tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 3)) {
            return false;
        }
    }
    return rc == 0;
}


/* The top-level usage member. */
static bool
tg_xf_usage(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, ok;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &c->usage)) {
        return false;
    }
    if (!c->usage) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("prompt_tokens"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_PROMPT) &&
                 tg_xf_u64_member(s, &c->prompt);
        } else if (tg_str_eq(k, tg_str_lit("completion_tokens"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_COMPLETION) &&
                 tg_xf_u64_member(s, &c->completion);
        } else if (tg_str_eq(k, tg_str_lit("prompt_tokens_details"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_DETAILS) &&
                 tg_xf_details(s, seen, c);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 2);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* A tool call's function member: its arguments. */
static bool
tg_xf_function(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, is, ok;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &is)) {
        return false;
    }
    if (!is) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("arguments"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_ARGS) &&
                 tg_xf_str_member(s, &c->args, false, NULL);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 7);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* The one element of delta.tool_calls: a call's index and arguments. */
static bool
tg_xf_tool(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, integer, ok;
    tg_str_t k;
    int rc;

    if (*s->p != '{') {
        return false;
    }
    s->p++;
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("index"))) {
            /* A negative or missing index is for the general path. */
            ok = tg_xf_once(seen, TG_XF_SEEN_INDEX) && *s->p >= '0' &&
                 *s->p <= '9' && tg_xf_number(s, &integer, &c->tool_index) &&
                 integer;
        } else if (tg_str_eq(k, tg_str_lit("function"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_FUNCTION) &&
                 tg_xf_function(s, seen, c);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 6);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0 && (*seen & TG_XF_SEEN_INDEX);
}


/* delta.tool_calls: null or [] (no call), or one call; more than one is
 * for the general path. */
static bool
tg_xf_tools(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true;
    tg_str_t k;
    int rc;

    if (tg_xf_literal(s, "null", 4)) {
        return true;
    }
    if (*s->p != '[') {
        return false;
    }
    s->p++;
    while ((rc = tg_xf_next(s, false, &first, &k)) == 1) {
        if (c->tool || !tg_xf_tool(s, seen, c)) {
            return false;
        }
        c->tool = true;
    }
    return rc == 0;
}


/* choices[0].delta */
static bool
tg_xf_delta(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, is, ok;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &is)) {
        return false;
    }
    if (!is) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("content"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_CONTENT) &&
                 tg_xf_str_member(s, &c->content, false, NULL);
        } else if (tg_str_eq(k, tg_str_lit("refusal"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_REFUSAL) &&
                 tg_xf_str_member(s, &c->refusal, false, NULL);
        } else if (tg_str_eq(k, tg_str_lit("tool_calls"))) {
            /* Tool calls take the general path; null and [] are none. */
            ok = tg_xf_once(seen, TG_XF_SEEN_TOOLS) && tg_xf_tools(s, seen, c);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 4);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* The first element of choices. */
static bool
tg_xf_choice(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, is, ok;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &is)) {
        return false;
    }
    if (!is) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("delta"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_DELTA) && tg_xf_delta(s, seen, c);
        } else if (tg_str_eq(k, tg_str_lit("finish_reason"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_FINISH) &&
                 tg_xf_str_member(s, &c->finish, true, NULL);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 3);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* The top-level choices member: the first element is read, the others
 * only checked (translation reads choices[0]). */
static bool
tg_xf_choices(tg_xf_t *s, unsigned *seen, tg_translate_fast_chunk_t *c)
{
    bool first = true, ok;
    tg_str_t k;
    int rc;

    if (*s->p != '[') {
        return tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH);
    }
    s->p++;
    while ((rc = tg_xf_next(s, false, &first, &k)) == 1) {
        if (*seen & TG_XF_SEEN_CHOICE) {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 2);
        } else {
            *seen |= TG_XF_SEEN_CHOICE;
            ok = tg_xf_choice(s, seen, c);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* See translate_fast.h. */
int
tg_translate_fast_chunk(const char *p, size_t n, tg_translate_fast_chunk_t *c)
{
    tg_xf_t s = {(const unsigned char *)p, (const unsigned char *)p + n};
    unsigned seen = 0;
    bool first = true, ok;
    tg_str_t k;
    int rc;

    memset(c, 0, sizeof(*c));
    tg_xf_ws(&s);
    if (s.p == s.end || *s.p != '{') {
        return TG_DECLINED;
    }
    s.p++;
    while ((rc = tg_xf_next(&s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("id"))) {
            ok = tg_xf_once(&seen, TG_XF_SEEN_ID) &&
                 tg_xf_str_member(&s, &c->id, true, &c->id_esc);
        } else if (tg_str_eq(k, tg_str_lit("model"))) {
            ok = tg_xf_once(&seen, TG_XF_SEEN_MODEL) &&
                 tg_xf_str_member(&s, &c->model, true, &c->model_esc);
        } else if (tg_str_eq(k, tg_str_lit("choices"))) {
            ok = tg_xf_once(&seen, TG_XF_SEEN_CHOICES) &&
                 tg_xf_choices(&s, &seen, c);
        } else if (tg_str_eq(k, tg_str_lit("usage"))) {
            ok = tg_xf_once(&seen, TG_XF_SEEN_USAGE) &&
                 tg_xf_usage(&s, &seen, c);
        } else if (tg_str_eq(k, tg_str_lit("error"))) {
            ok = false; /* an error event: the general path */
        } else {
            ok = tg_xf_skip(&s, TG_TRANSLATE_FAST_DEPTH - 1);
        }
        if (!ok) {
            return TG_DECLINED;
        }
    }
    tg_xf_ws(&s);
    return rc == 0 && s.p == s.end ? TG_OK : TG_DECLINED;
}


/* content_block_delta's delta member. */
static bool
tg_xf_a_delta(tg_xf_t *s, unsigned *seen, tg_translate_fast_event_t *e)
{
    bool first = true, is, ok;
    tg_str_t k;
    int rc;

    if (!tg_xf_open(s, &is)) {
        return false;
    }
    if (!is) {
        return true;
    }
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("type"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_TYPE) &&
                 tg_xf_str_member(s, &e->type, true, NULL);
        } else if (tg_str_eq(k, tg_str_lit("text"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_TEXT) &&
                 tg_xf_str_member(s, &e->text, false, NULL);
        } else if (tg_str_eq(k, tg_str_lit("partial_json"))) {
            ok = tg_xf_once(seen, TG_XF_SEEN_JSON) &&
                 tg_xf_str_member(s, &e->json, false, NULL);
        } else {
            ok = tg_xf_skip(s, TG_TRANSLATE_FAST_DEPTH - 2);
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* See translate_fast.h. */
int
tg_translate_fast_event(const char *p, size_t n, bool delta,
                        tg_translate_fast_event_t *e)
{
    tg_xf_t s = {(const unsigned char *)p, (const unsigned char *)p + n};
    unsigned seen = 0;
    bool first = true, ok;
    tg_str_t k;
    int rc;

    memset(e, 0, sizeof(*e));
    tg_xf_ws(&s);
    if (s.p == s.end || (*s.p != '{' && (delta || *s.p != '['))) {
        return TG_DECLINED;
    }
    if (!delta) {
        ok = tg_xf_skip(&s, TG_TRANSLATE_FAST_DEPTH);
        tg_xf_ws(&s);
        return ok && s.p == s.end ? TG_OK : TG_DECLINED;
    }
    s.p++;
    while ((rc = tg_xf_next(&s, true, &first, &k)) == 1) {
        if (tg_str_eq(k, tg_str_lit("delta"))) {
            ok = tg_xf_once(&seen, TG_XF_SEEN_DELTA) &&
                 tg_xf_a_delta(&s, &seen, e);
        } else {
            ok = tg_xf_skip(&s, TG_TRANSLATE_FAST_DEPTH - 1);
        }
        if (!ok) {
            return TG_DECLINED;
        }
    }
    tg_xf_ws(&s);
    return rc == 0 && s.p == s.end ? TG_OK : TG_DECLINED;
}
