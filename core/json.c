/*
 * core/json.c
 *      JSON string escaping.
 *
 * NOTES
 *      Pure function; any process.
 */
#include "core/json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>


/* Length of the valid UTF-8 sequence at <p> (<n> bytes left), 0 if invalid. */
static size_t
tg_json_utf8_len(const unsigned char *p, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (p[0] < 0x80) {
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}


/* See core/json.h. */
size_t
tg_json_escape(char *dst, size_t cap, const char *src, size_t len)
{
    const unsigned char *p = (const unsigned char *)src, *end = p + len;
    size_t o = 0;

    if (cap == 0) {
        return 0;
    }
    while (p < end) {
        char tmp[8];
        const char *out = tmp;
        size_t n, k;

        switch (*p) {
        case '"':
            out = "\\\"";
            n = 2;
            k = 1;
            break;
        case '\\':
            out = "\\\\";
            n = 2;
            k = 1;
            break;
        case '\n':
            out = "\\n";
            n = 2;
            k = 1;
            break;
        case '\r':
            out = "\\r";
            n = 2;
            k = 1;
            break;
        case '\t':
            out = "\\t";
            n = 2;
            k = 1;
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
                n = 6;
                k = 1;
            } else {
                k = tg_json_utf8_len(p, (size_t)(end - p));
                if (k == 0) {
                    out = "\xef\xbf\xbd";
                    n = 3;
                    k = 1;
                } else {
                    out = (const char *)p;
                    n = k;
                }
            }
        }
        if (o + n >= cap) {
            break;
        }
        memcpy(dst + o, out, n);
        o += n;
        p += k;
    }
    dst[o] = '\0';
    return o;
}


enum {
    TG_JSCAN_START = 0, /* before the top-level '{' */
    TG_JSCAN_KEY,       /* expecting a member name or '}' */
    TG_JSCAN_COLON,     /* after the name */
    TG_JSCAN_VALUE,     /* expecting the value */
    TG_JSCAN_IN_VALUE,  /* inside a member value */
    TG_JSCAN_COMMA,     /* after a value */
    TG_JSCAN_END
};

#define TG_JSCAN_MAX_DEPTH 512


/* See core/json.h. */
void
tg_json_scan_init(tg_json_scan_t *s, tg_json_field_t *fields, size_t n)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    s->fields = fields;
    s->nfields = n;
    s->capture = -1;
    for (i = 0; i < n; i++) {
        fields[i].len = 0;
        fields[i].found = false;
        fields[i].truncated = false;
        fields[i].offset = 0;
    }
}


static void
tg_json_scan_put(tg_json_scan_t *s, const char *p, size_t n)
{
    tg_json_field_t *f;
    size_t room;

    if (s->capture < 0) {
        return;
    }
    f = &s->fields[s->capture];
    room = f->cap - f->len;
    if (n > room) {
        n = room;
        f->truncated = true;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}


/* A member value ended: mark its capture complete. */
static void
tg_json_scan_value_end(tg_json_scan_t *s)
{
    if (s->capture >= 0) {
        s->fields[s->capture].found = true;
        s->capture = -1;
    }
    s->phase = TG_JSCAN_COMMA;
}


static bool
tg_json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* See core/json.h. */
bool
tg_json_scan_feed(tg_json_scan_t *s, const char *p, size_t len)
{
    const char *start = p, *end = p + len;

    while (p < end && !s->failed && !s->done) {
        char c;

        if (s->in_str) {
            /* The bulk of any request is string content: skip it in a
             * tight loop, copying only when capturing. */
            const char *q = p;

            if (!s->esc) {
                while (q < end && *q != '"' && *q != '\\') {
                    q++;
                }
            }
            if (s->phase == TG_JSCAN_KEY && s->depth == 1) {
                size_t n = (size_t)(q - p);

                if (s->key_len + n <= sizeof(s->key)) {
                    memcpy(s->key + s->key_len, p, n);
                }
                s->key_len += n;
            } else {
                tg_json_scan_put(s, p, (size_t)(q - p));
            }
            p = q;
            if (p == end) {
                break;
            }
            c = *p++;
            if (s->esc) {
                s->esc = false;
                if (s->phase == TG_JSCAN_KEY && s->depth == 1) {
                    s->key_len = sizeof(s->key) + 1; /* never matches */
                } else {
                    tg_json_scan_put(s, p - 1, 1);
                }
                continue;
            }
            if (c == '\\') {
                s->esc = true;
                if (!(s->phase == TG_JSCAN_KEY && s->depth == 1)) {
                    tg_json_scan_put(s, p - 1, 1);
                }
                continue;
            }
            /* closing quote */
            s->in_str = false;
            if (s->phase == TG_JSCAN_KEY && s->depth == 1) {
                s->phase = TG_JSCAN_COLON;
                continue;
            }
            tg_json_scan_put(s, p - 1, 1);
            if (s->phase == TG_JSCAN_IN_VALUE && s->depth == 1) {
                tg_json_scan_value_end(s);
            }
            continue;
        }
        c = *p++;
        if (s->phase == TG_JSCAN_START) {
            if (tg_json_is_ws(c)) {
                continue;
            }
            if (c != '{') {
                s->failed = true;
                break;
            }
            s->depth = 1;
            s->phase = TG_JSCAN_KEY;
            continue;
        }
        if (s->depth == 1 && s->phase != TG_JSCAN_IN_VALUE) {
            if (tg_json_is_ws(c)) {
                continue;
            }
            switch (s->phase) {
            case TG_JSCAN_KEY:
                if (c == '"') {
                    s->in_str = true;
                    s->key_len = 0;
                } else if (c == '}') {
                    s->done = true;
                } else {
                    s->failed = true;
                }
                continue;
            case TG_JSCAN_COLON:
                if (c != ':') {
                    s->failed = true;
                    continue;
                }
                s->phase = TG_JSCAN_VALUE;
                s->capture = -1;
                for (size_t i = 0; i < s->nfields; i++) {
                    if (s->key_len == s->fields[i].name_len &&
                        memcmp(s->key, s->fields[i].name, s->key_len) == 0) {
                        s->capture = (int)i;
                        s->fields[i].len = 0;
                        s->fields[i].truncated = false;
                        break;
                    }
                }
                continue;
            case TG_JSCAN_COMMA:
                if (c == ',') {
                    s->phase = TG_JSCAN_KEY;
                } else if (c == '}') {
                    s->done = true;
                } else {
                    s->failed = true;
                }
                continue;
            case TG_JSCAN_VALUE:
                s->phase = TG_JSCAN_IN_VALUE;
                s->vkind = c;
                if (s->capture >= 0) {
                    s->fields[s->capture].offset =
                        s->pos + (size_t)(p - 1 - start);
                }
                tg_json_scan_put(s, p - 1, 1);
                if (c == '"') {
                    s->in_str = true;
                } else if (c == '{' || c == '[') {
                    s->depth++;
                }
                continue;
            default:
                s->failed = true;
                continue;
            }
        }
        /* Inside a member value (depth >= 1). */
        if (s->depth == 1 && s->vkind != '{' && s->vkind != '[' &&
            s->vkind != '"') {
            /* A literal (number, true, false, null) ends at a delimiter. */
            if (c == ',' || c == '}' || tg_json_is_ws(c)) {
                tg_json_scan_value_end(s);
                if (c == ',') {
                    s->phase = TG_JSCAN_KEY;
                } else if (c == '}') {
                    s->done = true;
                }
                continue;
            }
            tg_json_scan_put(s, p - 1, 1);
            continue;
        }
        tg_json_scan_put(s, p - 1, 1);
        if (c == '"') {
            s->in_str = true;
        } else if (c == '{' || c == '[') {
            if (++s->depth > TG_JSCAN_MAX_DEPTH) {
                s->failed = true;
            }
        } else if (c == '}' || c == ']') {
            s->depth--;
            if (s->depth == 1) {
                tg_json_scan_value_end(s);
            }
        }
    }
    s->pos += len;
    return !s->failed;
}
