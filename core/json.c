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
