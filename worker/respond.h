/*
 * worker/respond.h
 *      Response framing toward the client: head, body pieces, end.
 *
 * NOTES
 *      One small API frames every response, proxied or generated here:
 *      tg_respond_head writes the status line and headers (with our
 *      framing: content-length when the length is known, chunked encoding
 *      for an HTTP/1.1 client otherwise, the end of the connection for an
 *      HTTP/1.0 one), tg_respond_body appends a piece of body in that
 *      framing, tg_respond_end writes the terminating chunk.  A response
 *      that must not end cleanly (its upstream broke) is simply never
 *      ended: the connection closes without the last chunk.
 *      Output goes to a caller-owned bounded buffer, so this module knows
 *      nothing of sockets or requests; the framing state lives in a
 *      tg_respond_t the request embeds.  Error bodies are written in the
 *      API's own shape (Anthropic or OpenAI).  Worker only; never blocks,
 *      never logs.
 */
#ifndef TG_WORKER_RESPOND_H
#define TG_WORKER_RESPOND_H

#include "core/buf.h"
#include "core/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* API shape of errors. */
enum { TG_API_ANTHROPIC = 0, TG_API_OPENAI = 1 };

/* Framing state of one response. */
typedef struct {
    int status;          /* status written, 0 while no head */
    bool committed;      /* the head is in the output */
    bool chunked;        /* the body is framed in chunks */
    bool close;          /* the end of the body is the end of the connection,
                            or "connection: close" was announced */
    bool ended;          /* the body is complete (terminating chunk written) */
    uint64_t body_bytes; /* body bytes framed so far */
} tg_respond_t;

/* What the head says. */
typedef struct {
    int status;                      /* 100..999 */
    int version;                     /* the client's HTTP version, 10 or 11 */
    int64_t content_length;          /* body length, -1 when not known */
    const char *content_type;        /* NULL: none of our own */
    const tg_http_header_t *headers; /* end-to-end headers to copy: hop-by-hop
                                        ones and content-length are dropped */
    size_t nheaders;
    const char *extra; /* header lines, each ending in CRLF, or NULL */
    uint64_t req_id;   /* x-tollgate-request-id */
    bool close;        /* announce connection: close */
} tg_respond_head_t;

/*
 * Write the head described by <h> to <out>, replacing anything written
 * there before for this response, and set up <o>'s framing.  Returns
 * TG_OK, TG_DECLINED when <out>'s bound is passed, TG_ERROR when out of
 * memory.
 */
int tg_respond_head(tg_respond_t *o, tg_buf_t *out, const tg_respond_head_t *h);

/* Append <n> body bytes at <p> to <out> in <o>'s framing.  Same returns. */
int tg_respond_body(tg_respond_t *o, tg_buf_t *out, const char *p, size_t n);

/* End the body (terminating chunk when chunked).  Same returns. */
int tg_respond_end(tg_respond_t *o, tg_buf_t *out);

/*
 * A complete JSON error body in <api>'s shape into <buf> of <cap> bytes:
 * the error <type>, the OpenAI <code> (may be NULL) and <msg> (escaped
 * here).  Returns its length (a short generic body when it does not fit).
 */
size_t tg_respond_error_body(char *buf, size_t cap, int api, const char *type,
                             const char *code, const char *msg);

#endif /* TG_WORKER_RESPOND_H */
