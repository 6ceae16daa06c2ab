/*
 * core/json.h
 *      JSON string escaping for responses built without an allocator.
 *
 * NOTES
 *      Error bodies and small local responses are formatted with snprintf on
 *      hot paths (a 429 storm must stay cheap), so strings that may come from
 *      the network are escaped here rather than through jansson.
 */
#ifndef TG_CORE_JSON_H
#define TG_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Escape <len> bytes at <src> as the inside of a JSON string into <dst>
 * of <cap> bytes, NUL-terminated.  Control characters become \u00XX,
 * invalid UTF-8 bytes become U+FFFD.  Output is cut (at a character
 * boundary) when <dst> is full.  Returns the bytes written, without NUL.
 */
size_t tg_json_escape(char *dst, size_t cap, const char *src, size_t len);

/*
 * Incremental scanner that captures the raw text of chosen top-level
 * members of a JSON object ("model" and "stream" of a request, "usage" of
 * a response) without building a tree.  It is fed the document in pieces
 * of any size, keeps a few dozen bytes of state plus the bounded capture
 * buffers, and costs about a byte compare per input byte, with a tight
 * loop over string contents.  It checks structure only as far as it needs
 * to (nesting, strings, escapes); the captured values are parsed properly
 * by the caller (jansson), so a malformed document yields no capture or a
 * capture that fails to parse, never a crash.
 */
typedef struct {
    const char *name; /* member name to capture (plain ASCII) */
    size_t name_len;
    char *buf;      /* caller's buffer for the raw value text */
    size_t cap;     /* its size */
    size_t len;     /* bytes captured */
    bool found;     /* the member was seen (and completed) */
    bool truncated; /* the value did not fit in cap */
    size_t offset;  /* byte offset of the value's first byte in the
                       document (of the last occurrence), valid when found */
} tg_json_field_t;

typedef struct {
    tg_json_field_t *fields;
    size_t nfields;
    unsigned depth; /* open objects/arrays */
    int phase;      /* where we are inside the top-level object */
    int capture;    /* index of the field being captured, -1 none */
    bool in_str;
    bool esc;
    bool failed; /* not an object at the top, or too deep */
    bool done;   /* the top-level object closed */
    char vkind;  /* first byte of the value being skipped/captured */
    size_t key_len;
    char key[64];
    size_t pos; /* document bytes fed before the current piece */
} tg_json_scan_t;

/* Start scanning for <n> <fields> (their len/found/truncated are reset). */
void tg_json_scan_init(tg_json_scan_t *s, tg_json_field_t *fields, size_t n);

/* Feed <len> bytes; returns false once the document is known not to be a
 * JSON object (further input is ignored). */
bool tg_json_scan_feed(tg_json_scan_t *s, const char *p, size_t len);

#endif /* TG_CORE_JSON_H */
