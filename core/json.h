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

#include <stddef.h>

/*
 * Escape <len> bytes at <src> as the inside of a JSON string into <dst>
 * of <cap> bytes, NUL-terminated.  Control characters become \u00XX,
 * invalid UTF-8 bytes become U+FFFD.  Output is cut (at a character
 * boundary) when <dst> is full.  Returns the bytes written, without NUL.
 */
size_t tg_json_escape(char *dst, size_t cap, const char *src, size_t len);

#endif /* TG_CORE_JSON_H */
