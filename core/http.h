/*
 * core/http.h
 *      Strict HTTP/1.1 codec: request head parser, response head parser,
 *      chunked body decoder.
 *
 * NOTES
 *      Library-like code: never logs, never allocates, reports problems in a
 *      caller-owned tg_err_t whose <code> is the HTTP status to answer with
 *      (400, 413, 431, 501, 505) and <offset> the byte where it was found.
 *      Parsed strings point into the caller's buffer, which must stay put
 *      while they are used.
 *
 *      Strictness (request smuggling defence, RFC 9112): lines end in CRLF;
 *      a bare CR or bare LF is an error; obsolete line folding is an error;
 *      Content-Length together with Transfer-Encoding is an error; duplicate
 *      Content-Length headers must agree exactly or it is an error;
 *      Transfer-Encoding other than exactly "chunked" is 501; chunk sizes are
 *      hex digits only (with optional extensions), bounded to 2^62.
 */
#ifndef TG_CORE_HTTP_H
#define TG_CORE_HTTP_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

#define TG_HTTP_MAX_HEADERS 100

enum {
    TG_HTTP_UNKNOWN = 0,
    TG_HTTP_GET,
    TG_HTTP_HEAD,
    TG_HTTP_POST,
    TG_HTTP_PUT,
    TG_HTTP_DELETE,
    TG_HTTP_PATCH,
    TG_HTTP_OPTIONS
};

typedef struct {
    tg_str_t name;  /* as received; compare with tg_str_caseeq */
    tg_str_t value; /* leading and trailing OWS removed */
} tg_http_header_t;

typedef struct {
    int method;           /* TG_HTTP_* */
    tg_str_t method_name; /* token as received */
    tg_str_t uri;         /* request-target, origin form */
    tg_str_t path;        /* uri up to '?' */
    tg_str_t query;       /* after '?', without it; len 0 if none */
    int version;          /* 10 or 11 */
    tg_http_header_t headers[TG_HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* per version and Connection header */
    bool expect_continue;   /* Expect: 100-continue */
    size_t head_len;        /* bytes of request line + headers + CRLF */
} tg_http_req_t;

typedef struct {
    int status;  /* 100..999 */
    int version; /* 10 or 11 */
    tg_str_t reason;
    tg_http_header_t headers[TG_HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool keep_alive;
    size_t head_len;
} tg_http_resp_t;

/*
 * Parse a request head from <buf> of <len> bytes.  <max_head> bounds the
 * head: if no complete head is found within that many bytes the result is
 * TG_ERROR with code 431.  Returns TG_OK with <r> filled and r->head_len
 * set, TG_AGAIN when more bytes are needed, or TG_ERROR with <err> filled.
 * Stateless: call again with the grown buffer after TG_AGAIN.
 */
int tg_http_parse_request(tg_http_req_t *r, const char *buf, size_t len,
                          size_t max_head, tg_err_t *err);

/* Same for a response head (used by the mock upstream's clients and the
 * tests). */
int tg_http_parse_response(tg_http_resp_t *r, const char *buf, size_t len,
                           size_t max_head, tg_err_t *err);

/* Find header <name> (case-insensitive); NULL when absent.  For repeated
 * headers the first one is returned. */
const tg_http_header_t *tg_http_find_header(const tg_http_header_t *h, size_t n,
                                            tg_str_t name);

/* Chunked transfer decoder state; zero it (or tg_http_chunked_init) first. */
typedef struct {
    int state;
    uint64_t size;        /* bytes left in the current chunk */
    size_t line_len;      /* bytes in the current size/trailer line */
    size_t trailer_bytes; /* total trailer bytes seen */
} tg_http_chunked_t;

void tg_http_chunked_init(tg_http_chunked_t *ch);

/*
 * Decode chunked data from <in> of <len> bytes, in place: chunk payload is
 * moved to the front of <in> (output never outruns input).  On return
 * *<out_len> holds the payload bytes now at <in>, *<used> the input bytes
 * consumed.  Returns TG_OK after the last chunk and trailers (bytes after
 * *<used> belong to the next message), TG_AGAIN when more input is needed,
 * TG_ERROR with <err> (code 400) on malformed framing.  Size lines and
 * trailers are bounded (4 KB a line, 16 KB of trailers).
 */
int tg_http_chunked_decode(tg_http_chunked_t *ch, char *in, size_t len,
                           size_t *used, size_t *out_len, tg_err_t *err);

/* Reason phrase for <status> ("OK", "Not Found", ...; "Unknown"). */
const char *tg_http_reason(int status);

/* True for hop-by-hop headers that a proxy must not forward (Connection,
 * Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Connection). */
bool tg_http_is_hop_by_hop(tg_str_t name);

#endif /* TG_CORE_HTTP_H */
