/*
 * tests/integration/client.c
 *      The blocking HTTP/1.1 client, JSON and SSE helpers of the
 *      integration tests.
 *
 * NOTES
 *      Runs in a test's own process.  Sockets are non-blocking and every
 *      wait goes through poll() with a deadline, so a server that stops
 *      answering fails the test instead of hanging it.  Bytes received and
 *      not yet consumed stay in the connection, so pipelined responses are
 *      read one after another.
 */
#include "tests/integration/client.h"
#include "core/core.h"
#include "core/http.h"
#include "core/sse.h"
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TG_IT_HEAD_MAX 65536


/* Connect <c> to <port>; <rcvbuf> > 0 sets SO_RCVBUF first. */
static int
tg_it_conn_connect(tg_it_conn_t *c, int port, int timeout_ms, int rcvbuf)
{
    struct sockaddr_in sa;
    struct pollfd pfd;
    socklen_t len = sizeof(int);
    int err = 0, one = 1;

    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        return TG_ERROR;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcvbuf > 0) {
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        if (errno != EINPROGRESS) {
            goto failed;
        }
        pfd.fd = c->fd;
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, timeout_ms) != 1 ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
            err != 0) {
            goto failed;
        }
    }
    return TG_OK;

failed:
    close(c->fd);
    c->fd = -1;
    return TG_ERROR;
}


/* See harness.h. */
int
tg_it_conn_try_open(tg_it_conn_t *c, int port, int timeout_ms)
{
    return tg_it_conn_connect(c, port, timeout_ms, 0);
}


/* See harness.h. */
void
tg_it_conn_open_small(tg_it_conn_t *c, int port, int rcvbuf)
{
    TG_IT_CHECKF(tg_it_conn_connect(c, port, TG_IT_TIMEOUT_MS, rcvbuf) == TG_OK,
                 "cannot connect to 127.0.0.1:%d", port);
}


/* See harness.h. */
void
tg_it_conn_open(tg_it_conn_t *c, int port)
{
    TG_IT_CHECKF(tg_it_conn_try_open(c, port, TG_IT_TIMEOUT_MS) == TG_OK,
                 "cannot connect to 127.0.0.1:%d", port);
}


/* See harness.h. */
void
tg_it_conn_close(tg_it_conn_t *c)
{
    if (c->fd != -1) {
        close(c->fd);
    }
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}


/* See harness.h. */
int
tg_it_conn_send(tg_it_conn_t *c, const void *p, size_t n)
{
    const char *s = p;
    struct pollfd pfd;
    ssize_t k;

    while (n > 0) {
        k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k > 0) {
            s += k;
            n -= (size_t)k;
            continue;
        }
        if (k == -1 && errno == EINTR) {
            continue;
        }
        if (k == -1 && errno == EAGAIN) {
            pfd.fd = c->fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, TG_IT_TIMEOUT_MS) != 1) {
                return TG_ERROR;
            }
            continue;
        }
        return TG_ERROR;
    }
    return TG_OK;
}


/* See harness.h. */
int
tg_it_conn_send_str(tg_it_conn_t *c, const char *s)
{
    return tg_it_conn_send(c, s, strlen(s));
}


/*
 * Receive what arrives before <deadline> (monotonic ms) into c->buf.
 * Returns the bytes read, 0 when the peer closed or reset, -1 on timeout.
 */
static ssize_t
tg_it_conn_fill(tg_it_conn_t *c, uint64_t deadline)
{
    struct pollfd pfd;
    uint64_t now;
    ssize_t n;
    char *t;
    int rc;

    if (c->eof || c->reset) {
        return 0;
    }
    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;

        t = realloc(c->buf, cap);
        TG_IT_CHECK(t != NULL);
        c->buf = t;
        c->cap = cap;
    }
    for (;;) {
        now = tg_it_now_ms();
        if (now >= deadline) {
            return -1;
        }
        pfd.fd = c->fd;
        pfd.events = POLLIN;
        rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc == -1 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            return -1;
        }
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            return n;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR || errno == EAGAIN) {
            continue;
        }
        c->reset = true;
        return 0;
    }
}


static void
tg_it_conn_consume(tg_it_conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}


/* Append <n> payload bytes to <resp>'s body. */
static void
tg_it_resp_append(tg_it_resp_t *resp, const char *p, size_t n, size_t *cap)
{
    char *t;

    if (n == 0) {
        return;
    }
    if (resp->t_first_ms == 0) {
        resp->t_first_ms = tg_it_now_ms();
    }
    if (resp->nmarks < TG_IT_MARKS) {
        resp->marks[resp->nmarks].end = resp->body_len + n;
        resp->marks[resp->nmarks].t_ms = tg_it_now_ms();
        resp->nmarks++;
    }
    if (resp->body_len + n + 1 > *cap) {
        *cap = TG_MAX(*cap * 2, resp->body_len + n + 1);
        t = realloc(resp->body, *cap);
        TG_IT_CHECK(t != NULL);
        resp->body = t;
    }
    memcpy(resp->body + resp->body_len, p, n);
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
}


/* Read a response head; TG_OK with resp->head and resp->r set. */
static int
tg_it_read_head(tg_it_conn_t *c, tg_it_resp_t *resp, uint64_t deadline)
{
    tg_http_resp_t r;
    tg_err_t err;
    ssize_t n;
    int rc;

    for (;;) {
        if (c->len > 0) {
            rc = tg_http_parse_response(&r, c->buf, c->len, TG_IT_HEAD_MAX,
                                        &err);
            if (rc == TG_OK) {
                break;
            }
            if (rc == TG_ERROR) {
                snprintf(resp->error, sizeof(resp->error),
                         "bad response head: %s", err.text);
                return TG_ERROR;
            }
        }
        n = tg_it_conn_fill(c, deadline);
        if (n <= 0) {
            resp->closed = n == 0;
            snprintf(resp->error, sizeof(resp->error), "%s before a head",
                     n == 0
                         ? (c->reset ? "connection reset" : "connection closed")
                         : "timed out");
            return TG_ERROR;
        }
    }
    resp->head = malloc(r.head_len + 1);
    TG_IT_CHECK(resp->head != NULL);
    memcpy(resp->head, c->buf, r.head_len);
    resp->head[r.head_len] = '\0';
    rc = tg_http_parse_response(&resp->r, resp->head, r.head_len,
                                TG_IT_HEAD_MAX, &err);
    TG_IT_CHECK(rc == TG_OK);
    tg_it_conn_consume(c, r.head_len);
    resp->status = resp->r.status;
    resp->chunked = resp->r.chunked;
    resp->t_head_ms = tg_it_now_ms();
    return TG_OK;
}


/* See harness.h. */
int
tg_it_conn_read(tg_it_conn_t *c, tg_it_resp_t *resp, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    tg_http_chunked_t ch;
    size_t cap = 0, used, out_len, take;
    tg_err_t err;
    ssize_t n;
    int rc;

    memset(resp, 0, sizeof(*resp));
    for (;;) {
        if (tg_it_read_head(c, resp, deadline) != TG_OK) {
            return TG_ERROR;
        }
        if (resp->status >= 200) {
            break;
        }
        free(resp->head);
        resp->head = NULL;
    }
    resp->body = calloc(1, 1);
    TG_IT_CHECK(resp->body != NULL);
    cap = 1;
    tg_http_chunked_init(&ch);
    for (;;) {
        if (resp->chunked && c->len > 0) {
            rc = tg_http_chunked_decode(&ch, c->buf, c->len, &used, &out_len,
                                        &err);
            if (rc == TG_ERROR) {
                resp->bad_framing = true;
                snprintf(resp->error, sizeof(resp->error),
                         "bad chunked framing: %s", err.text);
                break;
            }
            tg_it_resp_append(resp, c->buf, out_len, &cap);
            tg_it_conn_consume(c, used);
            if (rc == TG_OK) {
                resp->complete = true;
                break;
            }
        } else if (!resp->chunked && resp->r.content_length >= 0) {
            take =
                TG_MIN(c->len, (size_t)resp->r.content_length - resp->body_len);
            tg_it_resp_append(resp, c->buf, take, &cap);
            tg_it_conn_consume(c, take);
            if (resp->body_len == (size_t)resp->r.content_length) {
                resp->complete = true;
                break;
            }
        } else if (!resp->chunked) {
            /* No framing: the body ends with the connection. */
            tg_it_resp_append(resp, c->buf, c->len, &cap);
            tg_it_conn_consume(c, c->len);
        }
        n = tg_it_conn_fill(c, deadline);
        if (n == 0) {
            resp->complete =
                !resp->chunked && resp->r.content_length < 0 && !c->reset;
            if (!resp->complete) {
                snprintf(resp->error, sizeof(resp->error),
                         "connection %s before the end of the body",
                         c->reset ? "reset" : "closed");
            }
            break;
        }
        if (n < 0) {
            snprintf(resp->error, sizeof(resp->error),
                     "timed out reading the body");
            break;
        }
    }
    resp->closed = c->eof || c->reset;
    resp->t_end_ms = tg_it_now_ms();
    return TG_OK;
}


/* See harness.h. */
bool
tg_it_conn_closed(tg_it_conn_t *c, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;

    while (!c->eof && !c->reset) {
        if (tg_it_conn_fill(c, deadline) < 0) {
            return false;
        }
    }
    return true;
}


/* See harness.h. */
int
tg_it_conn_wait(tg_it_conn_t *c, size_t n, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;

    while (c->len < n) {
        if (tg_it_conn_fill(c, deadline) <= 0) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* See harness.h. */
uint64_t
tg_it_resp_arrival(const tg_it_resp_t *resp, size_t offset)
{
    size_t i;

    for (i = 0; i < resp->nmarks; i++) {
        if (offset < resp->marks[i].end) {
            return resp->marks[i].t_ms;
        }
    }
    return 0;
}


/* See harness.h. */
void
tg_it_resp_fini(tg_it_resp_t *resp)
{
    free(resp->head);
    resp->head = NULL;
    free(resp->body);
    resp->body = NULL;
}


/* See harness.h. */
const char *
tg_it_resp_header(const tg_it_resp_t *resp, const char *name, char *buf,
                  size_t len)
{
    const tg_http_header_t *h;

    if (resp->head == NULL) {
        return NULL;
    }
    h = tg_http_find_header(resp->r.headers, resp->r.nheaders,
                            (tg_str_t){name, strlen(name)});
    if (h == NULL) {
        return NULL;
    }
    snprintf(buf, len, "%.*s", (int)h->value.len, h->value.data);
    return buf;
}


/* See harness.h. */
char *
tg_it_request_build(const char *method, const char *path, const char *headers,
                    const char *body)
{
    char *s = NULL;
    int n;

    if (body != NULL) {
        n = asprintf(&s,
                     "%s %s HTTP/1.1\r\nhost: 127.0.0.1\r\n%s"
                     "content-length: %zu\r\n\r\n%s",
                     method, path, headers ? headers : "", strlen(body), body);
    } else {
        n = asprintf(&s, "%s %s HTTP/1.1\r\nhost: 127.0.0.1\r\n%s\r\n", method,
                     path, headers ? headers : "");
    }
    TG_IT_CHECK(n > 0);
    return s;
}


/* See harness.h. */
void
tg_it_exchange(int port, const char *raw, tg_it_resp_t *resp)
{
    tg_it_conn_t c;

    tg_it_conn_open(&c, port);
    TG_IT_CHECKF(tg_it_conn_send_str(&c, raw) == TG_OK,
                 "sending the request to port %d failed", port);
    if (tg_it_conn_read(&c, resp, TG_IT_TIMEOUT_MS) != TG_OK) {
        tg_it_fail(__FILE__, __LINE__, "no response from port %d: %s", port,
                   resp->error);
    }
    tg_it_conn_close(&c);
}


/* See harness.h. */
void
tg_it_request(int port, const char *method, const char *path,
              const char *headers, const char *body, tg_it_resp_t *resp)
{
    char *raw = tg_it_request_build(method, path, headers, body);

    tg_it_exchange(port, raw, resp);
    free(raw);
}


/* -------------------------------------------------------------- JSON */

/* See harness.h. */
json_t *
tg_it_json(const tg_it_resp_t *resp)
{
    json_error_t err;
    json_t *j;

    j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &err);
    TG_IT_CHECKF(j != NULL, "response body is not JSON (%s): %.300s", err.text,
                 resp->body ? resp->body : "");
    return j;
}


/* See harness.h. */
json_t *
tg_it_json_get(json_t *root, const char *path)
{
    char part[128];
    const char *p = path, *dot;
    json_t *j = root;
    size_t n;

    while (j != NULL && *p != '\0') {
        dot = strchr(p, '.');
        n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(part)) {
            return NULL;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        if (json_is_array(j) && part[0] >= '0' && part[0] <= '9') {
            j = json_array_get(j, (size_t)strtoul(part, NULL, 10));
        } else {
            j = json_object_get(j, part);
        }
        p += n + (dot ? 1 : 0);
    }
    return j;
}


/* See harness.h. */
const char *
tg_it_json_str(json_t *root, const char *path)
{
    return json_string_value(tg_it_json_get(root, path));
}


/* ------------------------------------------------------------- SSE */

static int
tg_it_sse_event_cb(void *ctx, const tg_sse_event_t *ev)
{
    tg_it_sse_t *s = ctx;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->event = realloc(s->event, s->cap * sizeof(char *));
        s->data = realloc(s->data, s->cap * sizeof(char *));
        TG_IT_CHECK(s->event != NULL && s->data != NULL);
    }
    s->event[s->n] =
        strndup(ev->event.data ? ev->event.data : "", ev->event.len);
    s->data[s->n] = strndup(ev->data.data ? ev->data.data : "", ev->data.len);
    TG_IT_CHECK(s->event[s->n] != NULL && s->data[s->n] != NULL);
    s->n++;
    return TG_OK;
}


/* See harness.h. */
void
tg_it_sse_parse(tg_it_sse_t *s, const char *body, size_t len)
{
    tg_sse_t p;

    memset(s, 0, sizeof(*s));
    tg_sse_init(&p, 1 << 20);
    TG_IT_CHECK(tg_sse_feed(&p, body, len, tg_it_sse_event_cb, s) == TG_OK);
    tg_sse_fini(&p);
}


/* See harness.h. */
void
tg_it_sse_fini(tg_it_sse_t *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        free(s->event[i]);
        free(s->data[i]);
    }
    free(s->event);
    free(s->data);
    s->event = s->data = NULL;
    s->n = s->cap = 0;
}
