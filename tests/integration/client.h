/*
 * tests/integration/client.h
 *      A small blocking HTTP/1.1 client for the integration tests, with JSON
 *      and server-sent-events helpers.
 *
 * NOTES
 *      Raw bytes go out as given (tests send malformed requests on
 *      purpose); responses are parsed with core/http, the strict codec
 *      tollgate itself uses.  Every read is bounded by a timeout, and a
 *      failure to connect or to get a response head where one is required
 *      fails the test (tg_it_fail).
 */
#ifndef TG_TESTS_INTEGRATION_CLIENT_H
#define TG_TESTS_INTEGRATION_CLIENT_H

#include "core/http.h"
#include "tests/integration/harness.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A client connection with the bytes received but not yet consumed. */
typedef struct {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
    bool eof;   /* peer closed (FIN) */
    bool reset; /* peer reset (ECONNRESET) */
} tg_it_conn_t;

#define TG_IT_MARKS 512

/* A parsed response.  Header strings point into <head>.  <marks> records
 * when each piece of the body arrived: body[0, end) was there at t_ms. */
typedef struct {
    int status;
    char *head;       /* the head bytes, NUL-terminated */
    tg_http_resp_t r; /* parsed head */
    char *body;       /* decoded payload, NUL-terminated */
    size_t body_len;
    bool chunked;        /* Transfer-Encoding: chunked */
    bool complete;       /* body framing ended cleanly */
    bool bad_framing;    /* the chunked encoding was malformed */
    bool closed;         /* the server closed the connection */
    uint64_t t_head_ms;  /* monotonic time the head was complete */
    uint64_t t_first_ms; /* first payload byte; 0 when none */
    uint64_t t_end_ms;   /* end of body, or when reading stopped */
    char error[256];     /* why reading stopped early, "" if it did not */
    size_t nmarks;       /* the first TG_IT_MARKS arrivals */
    struct {
        size_t end;
        uint64_t t_ms;
    } marks[TG_IT_MARKS];
} tg_it_resp_t;

/* When the body byte at <offset> arrived (monotonic ms); 0 when it did
 * not, or arrived after the marks ran out. */
uint64_t tg_it_resp_arrival(const tg_it_resp_t *resp, size_t offset);

/* Connect to 127.0.0.1:<port> (blocking, bounded).  Fails the test when
 * the connection is not established within TG_IT_TIMEOUT_MS. */
void tg_it_conn_open(tg_it_conn_t *c, int port);
/* Like tg_it_conn_open with the socket's receive buffer set to <rcvbuf>
 * bytes before connecting, so a client that does not read pushes back on
 * the server after a few KB. */
void tg_it_conn_open_small(tg_it_conn_t *c, int port, int rcvbuf);
/* Like tg_it_conn_open, returning TG_ERROR instead of failing. */
int tg_it_conn_try_open(tg_it_conn_t *c, int port, int timeout_ms);
void tg_it_conn_close(tg_it_conn_t *c);

/* Send <n> bytes; TG_OK or TG_ERROR (peer gone). */
int tg_it_conn_send(tg_it_conn_t *c, const void *p, size_t n);
int tg_it_conn_send_str(tg_it_conn_t *c, const char *s);

/*
 * Read one response within <timeout_ms>, consuming exactly its bytes (so
 * pipelined responses can be read one after another).  1xx responses are
 * skipped.  Returns TG_OK when a head was read, whether or not the body
 * completed (see resp->complete, resp->closed and resp->error), and
 * TG_ERROR when no head arrived.  Free <resp> with tg_it_resp_fini.
 */
int tg_it_conn_read(tg_it_conn_t *c, tg_it_resp_t *resp, int timeout_ms);

/* Whether the server closes <c> within <timeout_ms> (bytes arriving in the
 * meantime are kept). */
bool tg_it_conn_closed(tg_it_conn_t *c, int timeout_ms);

/* Wait up to <timeout_ms> until at least <n> unconsumed bytes are there;
 * TG_OK, or TG_ERROR on timeout or when the peer closed first. */
int tg_it_conn_wait(tg_it_conn_t *c, size_t n, int timeout_ms);

void tg_it_resp_fini(tg_it_resp_t *resp);

/* Value of header <name> as a NUL-terminated copy in <buf>, or NULL. */
const char *tg_it_resp_header(const tg_it_resp_t *resp, const char *name,
                              char *buf, size_t len);

/*
 * Build "<method> <path> HTTP/1.1" with Host, the CRLF-separated
 * <headers> (each line ending in CRLF, may be NULL), content-length when
 * <body> is not NULL, and the body.  Returns a heap string.
 */
char *tg_it_request_build(const char *method, const char *path,
                          const char *headers, const char *body);

/* Open a connection to <port>, send <raw>, read one response into <resp>
 * and close.  Fails the test when no response head arrives. */
void tg_it_exchange(int port, const char *raw, tg_it_resp_t *resp);

/* tg_it_exchange of a built request. */
void tg_it_request(int port, const char *method, const char *path,
                   const char *headers, const char *body, tg_it_resp_t *resp);

/* Headers an Anthropic SDK sends (with TG_IT_KEY), and an OpenAI SDK's. */
#define TG_IT_H_ANTHROPIC                                                      \
    "x-api-key: " TG_IT_KEY "\r\n"                                             \
    "anthropic-version: 2023-06-01\r\n"                                        \
    "content-type: application/json\r\n"
#define TG_IT_H_OPENAI                                                         \
    "authorization: Bearer " TG_IT_KEY "\r\n"                                  \
    "content-type: application/json\r\n"

/* Request bodies: a Messages call and a Chat Completions call, with and
 * without streaming. */
#define TG_IT_BODY_MESSAGES                                                    \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,"                      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
#define TG_IT_BODY_MESSAGES_STREAM                                             \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"stream\":true,"      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
#define TG_IT_BODY_CHAT                                                        \
    "{\"model\":\"gpt-4o\","                                                   \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
#define TG_IT_BODY_CHAT_STREAM                                                 \
    "{\"model\":\"gpt-4o\",\"stream\":true,"                                   \
    "\"stream_options\":{\"include_usage\":true},"                             \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"

/* -------------------------------------------------------------- JSON */

/* Parse <resp>'s body as JSON; fails the test when it is not JSON. */
json_t *tg_it_json(const tg_it_resp_t *resp);

/* The value at <path> in <root>: members separated by '.', array indexes
 * as numbers ("choices.0.delta").  NULL when absent.  Borrowed. */
json_t *tg_it_json_get(json_t *root, const char *path);

/* String at <path>, or NULL when absent or not a string.  Borrowed. */
const char *tg_it_json_str(json_t *root, const char *path);

/* ------------------------------------------------------------- SSE */

/* The events of an SSE body: names and data, in order (heap arrays). */
typedef struct {
    size_t n;
    size_t cap;
    char **event; /* "message" when there was no event: field */
    char **data;
} tg_it_sse_t;

/* Split <body> into events with core/sse. */
void tg_it_sse_parse(tg_it_sse_t *s, const char *body, size_t len);
void tg_it_sse_fini(tg_it_sse_t *s);

#endif /* TG_TESTS_INTEGRATION_CLIENT_H */
