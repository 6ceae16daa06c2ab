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

#include <stddef.h>
#include <string.h>

typedef struct {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* end of the event data */
} tg_xf_t;

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


/* What a member's value is read as. */
enum {
    TG_XF_STR = 0, /* a string, escapes kept: tg_str_t at off */
    TG_XF_PLAIN,   /* a string without escape: tg_str_t at off; an
                      escaped one declines, or with a flag sets it */
    TG_XF_U64,     /* tg_xt_u64's reading: uint64_t at off */
    TG_XF_INDEX,   /* a non-negative integer: uint64_t at off */
    TG_XF_OBJ,     /* an object walked with sub (flag: set when it is one) */
    TG_XF_FIRST,   /* an array: its first element walked with sub */
    TG_XF_ONE,     /* null, or an array of at most one object walked with
                      sub, whose first member must be present (flag) */
    TG_XF_NO       /* present: the event is not for the fast path */
};

#define TG_XF_NONE SIZE_MAX /* no flag */

typedef struct tg_xf_member_s tg_xf_member_t;

/* One member translation reads, and where its value goes in the caller's
 * struct.  Any other member is checked and skipped. */
struct tg_xf_member_s {
    tg_str_t name;
    int kind;                  /* TG_XF_* */
    size_t off;                /* offset of the value in the struct */
    size_t flag;               /* offset of a bool, or TG_XF_NONE */
    const tg_xf_member_t *sub; /* members of an object */
    size_t nsub;
};

#define TG_XF_M(name, kind, type, field, flag)                                 \
    {                                                                          \
        tg_str_lit(name), kind, offsetof(type, field), flag, NULL, 0           \
    }
#define TG_XF_O(name, kind, flag, sub)                                         \
    {                                                                          \
        tg_str_lit(name), kind, 0, flag, sub, TG_NELEMS(sub)                   \
    }

typedef tg_translate_fast_chunk_t tg_xf_chunk_t;

static const tg_xf_member_t tg_xf_function[] = {
    TG_XF_M("arguments", TG_XF_STR, tg_xf_chunk_t, args, TG_XF_NONE)};

static const tg_xf_member_t tg_xf_tool[] = {
    TG_XF_M("index", TG_XF_INDEX, tg_xf_chunk_t, tool_index, TG_XF_NONE),
    TG_XF_O("function", TG_XF_OBJ, TG_XF_NONE, tg_xf_function)};

static const tg_xf_member_t tg_xf_delta[] = {
    TG_XF_M("content", TG_XF_STR, tg_xf_chunk_t, content, TG_XF_NONE),
    TG_XF_M("refusal", TG_XF_STR, tg_xf_chunk_t, refusal, TG_XF_NONE),
    TG_XF_O("tool_calls", TG_XF_ONE, offsetof(tg_xf_chunk_t, tool),
            tg_xf_tool)};

static const tg_xf_member_t tg_xf_choice[] = {
    TG_XF_O("delta", TG_XF_OBJ, TG_XF_NONE, tg_xf_delta),
    TG_XF_M("finish_reason", TG_XF_PLAIN, tg_xf_chunk_t, finish, TG_XF_NONE)};

static const tg_xf_member_t tg_xf_details[] = {
    TG_XF_M("cached_tokens", TG_XF_U64, tg_xf_chunk_t, cached, TG_XF_NONE)};

static const tg_xf_member_t tg_xf_usage[] = {
    TG_XF_M("prompt_tokens", TG_XF_U64, tg_xf_chunk_t, prompt, TG_XF_NONE),
    TG_XF_M("completion_tokens", TG_XF_U64, tg_xf_chunk_t, completion,
            TG_XF_NONE),
    TG_XF_O("prompt_tokens_details", TG_XF_OBJ, TG_XF_NONE, tg_xf_details)};

static const tg_xf_member_t tg_xf_chunk[] = {
    TG_XF_M("id", TG_XF_PLAIN, tg_xf_chunk_t, id,
            offsetof(tg_xf_chunk_t, id_esc)),
    TG_XF_M("model", TG_XF_PLAIN, tg_xf_chunk_t, model,
            offsetof(tg_xf_chunk_t, model_esc)),
    TG_XF_O("choices", TG_XF_FIRST, TG_XF_NONE, tg_xf_choice),
    TG_XF_O("usage", TG_XF_OBJ, offsetof(tg_xf_chunk_t, usage), tg_xf_usage),
    {tg_str_lit("error"), TG_XF_NO, 0, TG_XF_NONE, NULL, 0}};

static const tg_xf_member_t tg_xf_a_delta[] = {
    TG_XF_M("type", TG_XF_PLAIN, tg_translate_fast_event_t, type, TG_XF_NONE),
    TG_XF_M("text", TG_XF_STR, tg_translate_fast_event_t, text, TG_XF_NONE),
    TG_XF_M("partial_json", TG_XF_STR, tg_translate_fast_event_t, json,
            TG_XF_NONE)};

static const tg_xf_member_t tg_xf_a_event[] = {
    TG_XF_O("delta", TG_XF_OBJ, TG_XF_NONE, tg_xf_a_delta)};


static bool tg_xf_object(tg_xf_t *s, const tg_xf_member_t *m, size_t n,
                         int depth, void *out);


/*
 * A string value for member <m>: its raw insides into <out> when it is a
 * string (a TG_XF_PLAIN one only without escapes), else nothing; any
 * other value is skipped.
 */
static bool
tg_xf_str(tg_xf_t *s, const tg_xf_member_t *m, int depth, char *out)
{
    tg_str_t *v = (tg_str_t *)(out + m->off);
    bool esc;

    if (*s->p != '"') {
        return tg_xf_skip(s, depth);
    }
    if (!tg_xf_string(s, v, &esc)) {
        return false;
    }
    if (esc && m->kind == TG_XF_PLAIN) {
        *v = tg_str_null;
        if (m->flag == TG_XF_NONE) {
            return false;
        }
        *(bool *)(out + m->flag) = true;
    }
    return true;
}


/* An integer value for member <m>, as tg_xt_u64 reads it (TG_XF_U64:
 * positive integers count, any other value is 0) or as a non-negative
 * integer that must be there (TG_XF_INDEX). */
static bool
tg_xf_u64(tg_xf_t *s, const tg_xf_member_t *m, int depth, char *out)
{
    uint64_t *v = (uint64_t *)(out + m->off);
    bool integer;

    if (m->kind == TG_XF_INDEX) {
        return *s->p >= '0' && *s->p <= '9' && tg_xf_number(s, &integer, v) &&
               integer;
    }
    if (*s->p != '-' && (*s->p < '0' || *s->p > '9')) {
        return tg_xf_skip(s, depth);
    }
    if (!tg_xf_number(s, &integer, v)) {
        return false;
    }
    if (!integer) {
        *v = 0;
    }
    return true;
}


/*
 * An array value for member <m>: TG_XF_FIRST walks its first element
 * (when an object) and checks the others; TG_XF_ONE takes null, [] or
 * one object, which must hold its first member.
 */
static bool
tg_xf_array(tg_xf_t *s, const tg_xf_member_t *m, int depth, char *out)
{
    bool first = true, one = false;
    tg_str_t k;
    int rc;

    if (m->kind == TG_XF_ONE && tg_xf_literal(s, "null", 4)) {
        return true;
    }
    if (*s->p != '[') {
        return m->kind == TG_XF_FIRST && tg_xf_skip(s, depth);
    }
    s->p++;
    while ((rc = tg_xf_next(s, false, &first, &k)) == 1) {
        if (one) {
            if (m->kind == TG_XF_ONE || !tg_xf_skip(s, depth - 1)) {
                return false;
            }
            continue;
        }
        one = true;
        if (m->kind == TG_XF_ONE) {
            /* The first member (the call's index) must be present. */
            *(bool *)(out + m->flag) = true;
            if (*s->p != '{' ||
                !tg_xf_object(s, m->sub, m->nsub, depth - 1, out) ||
                *(uint64_t *)(out + m->sub[0].off) == UINT64_MAX) {
                return false;
            }
        } else if (!tg_xf_object(s, m->sub, m->nsub, depth - 1, out)) {
            return false;
        }
    }
    return rc == 0;
}


/*
 * The object at s->p, read with the member table <m> of <n> entries into
 * the struct <out>; a value that is not an object is checked and skipped.
 * <depth> is what nesting is left.  False when the input is not valid or
 * not for the fast path (a repeated member, a key with escapes).
 */
static bool
tg_xf_object(tg_xf_t *s, const tg_xf_member_t *m, size_t n, int depth,
             void *out)
{
    bool first = true, ok;
    unsigned seen = 0;
    tg_str_t k;
    size_t i;
    int rc;

    if (*s->p != '{') {
        return tg_xf_skip(s, depth);
    }
    if (depth == 0) {
        return false;
    }
    s->p++;
    while ((rc = tg_xf_next(s, true, &first, &k)) == 1) {
        for (i = 0; i < n && !tg_str_eq(k, m[i].name); i++) {
        }
        if (i == n) {
            ok = tg_xf_skip(s, depth - 1);
        } else if (seen & (1u << i)) {
            ok = false; /* jansson keeps the last: not for us */
        } else {
            seen |= 1u << i;
            switch (m[i].kind) {
            case TG_XF_STR:
            case TG_XF_PLAIN:
                ok = tg_xf_str(s, &m[i], depth - 1, out);
                break;
            case TG_XF_U64:
            case TG_XF_INDEX:
                ok = tg_xf_u64(s, &m[i], depth - 1, out);
                break;
            case TG_XF_OBJ:
                if (*s->p == '{' && m[i].flag != TG_XF_NONE) {
                    *(bool *)((char *)out + m[i].flag) = true;
                }
                ok = tg_xf_object(s, m[i].sub, m[i].nsub, depth - 1, out);
                break;
            case TG_XF_NO:
                ok = false;
                break;
            default:
                ok = tg_xf_array(s, &m[i], depth - 1, out);
                break;
            }
        }
        if (!ok) {
            return false;
        }
    }
    return rc == 0;
}


/* Scan <n> bytes at <p>, an object read with <m> into <out>, and nothing
 * after it but blanks. */
static int
tg_xf_top(const char *p, size_t n, const tg_xf_member_t *m, size_t nm,
          void *out)
{
    tg_xf_t s = {(const unsigned char *)p, (const unsigned char *)p + n};

    tg_xf_ws(&s);
    if (s.p == s.end || *s.p != '{' ||
        !tg_xf_object(&s, m, nm, TG_TRANSLATE_FAST_DEPTH, out)) {
        return TG_DECLINED;
    }
    tg_xf_ws(&s);
    return s.p == s.end ? TG_OK : TG_DECLINED;
}


/* See translate_fast.h. */
int
tg_translate_fast_chunk(const char *p, size_t n, tg_translate_fast_chunk_t *c)
{
    memset(c, 0, sizeof(*c));
    c->tool_index = UINT64_MAX; /* stays when a call has no index */
    return tg_xf_top(p, n, tg_xf_chunk, TG_NELEMS(tg_xf_chunk), c);
}


/* See translate_fast.h. */
int
tg_translate_fast_event(const char *p, size_t n, bool delta,
                        tg_translate_fast_event_t *e)
{
    tg_xf_t s = {(const unsigned char *)p, (const unsigned char *)p + n};
    bool ok;

    memset(e, 0, sizeof(*e));
    if (delta) {
        return tg_xf_top(p, n, tg_xf_a_event, TG_NELEMS(tg_xf_a_event), e);
    }
    tg_xf_ws(&s);
    if (s.p == s.end || (*s.p != '{' && *s.p != '[')) {
        return TG_DECLINED;
    }
    ok = tg_xf_skip(&s, TG_TRANSLATE_FAST_DEPTH);
    tg_xf_ws(&s);
    return ok && s.p == s.end ? TG_OK : TG_DECLINED;
}
