/*
 * tools/loadgen.c
 *      Load generator and test client for the integration tests and the
 *      benchmark: keep-alive HTTP/1.1 connections on one epoll loop, with
 *      per-request latency and time to first byte.
 *
 * NOTES
 *      One process, one core/ev loop, CONCURRENCY non-blocking connections.
 *      Each connection sends one request, reads the whole response, and
 *      sends the next one on the same connection (or on a new one when the
 *      server closes it) until TOTAL requests were started or the duration
 *      ran out.  The request bytes are built once and shared.
 *
 *      Responses are parsed with core/http (head, chunked decoder, in place)
 *      and text/event-stream bodies are fed to core/sse to count events and
 *      to see whether a stream reached its end marker (message_stop or
 *      [DONE]).  Bodies are discarded as they arrive, so a connection holds
 *      at most one read buffer (64 KB of head plus what one read brings).
 *
 *      Latency runs from the moment a request is started, which for a
 *      request that needs a new connection includes the connect; time to
 *      first byte ends at the first response byte read.  Results are
 *      printed as key=value lines (or one JSON object with --json).
 *
 *      Every helper is static and uses the tg_lg_ prefix.
 */
#include "core/buf.h"
#include "core/core.h"
#include "core/ev.h"
#include "core/http.h"
#include "core/log.h"
#include "core/sse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_LG_HEAD_MAX    (64 * 1024)
#define TG_LG_READ_MIN    16384
#define TG_LG_IN_MAX      (TG_LG_HEAD_MAX + 4 * TG_LG_READ_MIN)
#define TG_LG_BODY_MAX    (256 * 1024 * 1024) /* request body file */
#define TG_LG_SSE_DATA    4096 /* event data kept; longer is cut, counted */
#define TG_LG_HEADERS_MAX 64

/* Error kinds. */
enum {
    TG_LG_E_CONNECT = 0, /* connect failed */
    TG_LG_E_RESET,       /* closed or reset before any response byte */
    TG_LG_E_TRUNCATED,   /* closed in the middle of a response */
    TG_LG_E_TIMEOUT,     /* no complete response within --timeout-s */
    TG_LG_E_PROTOCOL,    /* malformed response */
    TG_LG_E_MAX
};

static const char *tg_lg_error_names[TG_LG_E_MAX] = {
    "connect", "reset", "truncated", "timeout", "protocol"};

/* Response reading states. */
enum {
    TG_LG_R_HEAD = 0,
    TG_LG_R_LENGTH,  /* content-length body */
    TG_LG_R_CHUNKED, /* chunked body */
    TG_LG_R_EOF      /* body delimited by the close */
};

typedef struct {
    int fd;          /* -1 when not connected */
    bool connecting; /* connect in progress */
    bool active;     /* a request is under way */
    bool got_byte;   /* a response byte arrived */
    bool sse;        /* the response is an event stream */
    bool sse_end;    /* the stream's end marker was seen */
    bool keep_alive; /* the response allows reuse */
    uint32_t gen;    /* bumped per request, to spot a restart */
    int rstate;      /* TG_LG_R_* */
    int status;
    size_t sent;      /* request bytes written */
    uint64_t left;    /* content-length bytes still to read */
    uint64_t t_start; /* us */
    uint64_t t_first; /* us */
    tg_buf_t in;
    tg_http_chunked_t ch;
    tg_sse_t sse_parser;
    tg_ev_timer_t timer;
} tg_lg_conn_t;

typedef struct {
    const char *url;
    int concurrency;
    uint64_t total;  /* 0 = until the duration ends */
    double duration; /* seconds; 0 = none */
    const char *body_file;
    const char *body;
    const char *method;
    const char *headers[TG_LG_HEADERS_MAX];
    int nheaders;
    int expect_status; /* 0 = any */
    double timeout;    /* seconds */
    bool json;
} tg_lg_conf_t;

typedef struct {
    uint64_t issued;
    uint64_t completed;
    uint64_t errors[TG_LG_E_MAX];
    uint64_t status[1000];
    uint64_t bytes;
    uint64_t sse_events;
    uint64_t sse_errors;       /* "error" events */
    uint64_t sse_unterminated; /* streams without their end marker */
    uint32_t *lat;             /* us, per completed request */
    uint32_t *ttfb;            /* us */
    size_t nlat, caplat;
    uint64_t t0, t1; /* us: start, last completion */
} tg_lg_stats_t;

static tg_lg_conf_t tg_lg_conf = {NULL, 1,      0, 0, NULL, NULL,
                                  NULL, {NULL}, 0, 0, 30,   false};
static tg_lg_stats_t tg_lg_stats;
static tg_ev_loop_t *tg_lg_loop;
static tg_lg_conn_t *tg_lg_conns;
static struct addrinfo *tg_lg_addr;
static char *tg_lg_req; /* request bytes, shared by all conns */
static size_t tg_lg_req_len;
static bool tg_lg_head_only; /* HEAD requests: no response body */
static bool tg_lg_stopping;  /* duration over: start nothing new */
static int tg_lg_busy;       /* connections with a request under way */
static tg_ev_timer_t tg_lg_deadline;

static void tg_lg_next(tg_lg_conn_t *c);

/* ----------------------------------------------------------------- stats */

static void
tg_lg_record(tg_lg_conn_t *c)
{
    uint64_t now = tg_time_mono_us(), lat = now - c->t_start;
    uint64_t ttfb = c->got_byte ? c->t_first - c->t_start : lat;
    tg_lg_stats_t *s = &tg_lg_stats;

    if (s->nlat == s->caplat) {
        size_t cap = s->caplat ? s->caplat * 2 : 65536;
        uint32_t *a = realloc(s->lat, cap * sizeof(*a));
        uint32_t *b = a ? realloc(s->ttfb, cap * sizeof(*b)) : NULL;

        if (a != NULL) {
            s->lat = a;
        }
        if (b == NULL) {
            fprintf(stderr, "loadgen: out of memory for latencies\n");
            exit(2);
        }
        s->ttfb = b;
        s->caplat = cap;
    }
    s->lat[s->nlat] = (uint32_t)TG_MIN(lat, UINT32_MAX);
    s->ttfb[s->nlat] = (uint32_t)TG_MIN(ttfb, UINT32_MAX);
    s->nlat++;
    s->completed++;
    s->status[c->status >= 0 && c->status < 1000 ? c->status : 0]++;
    s->t1 = now;
}

static int
tg_lg_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile <p> of sorted <v> of <n>, in ms. */
static double
tg_lg_pct(const uint32_t *v, size_t n, double p)
{
    size_t k;

    if (n == 0) {
        return 0;
    }
    k = (size_t)(p / 100.0 * (double)n + 0.999999);
    k = (k == 0) ? 0 : k - 1;
    return v[TG_MIN(k, n - 1)] / 1000.0;
}

static const char *tg_lg_sep = "";

static void
tg_lg_put_int(const char *name, uint64_t v)
{
    if (tg_lg_conf.json) {
        printf("%s\"%s\":%llu", tg_lg_sep, name, (unsigned long long)v);
        tg_lg_sep = ",";
    } else {
        printf("%s=%llu\n", name, (unsigned long long)v);
    }
}

static void
tg_lg_put_num(const char *name, double v)
{
    if (tg_lg_conf.json) {
        printf("%s\"%s\":%.3f", tg_lg_sep, name, v);
        tg_lg_sep = ",";
    } else {
        printf("%s=%.3f\n", name, v);
    }
}

static void
tg_lg_report(void)
{
    tg_lg_stats_t *s = &tg_lg_stats;
    uint64_t ok = 0, other = 0, errors = 0;
    double dur, sum = 0;
    char name[32];
    size_t i;

    for (i = 0; i < TG_LG_E_MAX; i++) {
        errors += s->errors[i];
    }
    for (i = 0; i < TG_NELEMS(s->status); i++) {
        if (i >= 200 && i < 300) {
            ok += s->status[i];
        } else {
            other += s->status[i];
        }
    }
    for (i = 0; i < s->nlat; i++) {
        sum += s->lat[i];
    }
    dur = (double)((s->t1 > s->t0 ? s->t1 : tg_time_mono_us()) - s->t0) / 1e6;
    if (s->nlat > 0) {
        qsort(s->lat, s->nlat, sizeof(uint32_t), tg_lg_cmp_u32);
        qsort(s->ttfb, s->nlat, sizeof(uint32_t), tg_lg_cmp_u32);
    }
    if (tg_lg_conf.json) {
        printf("{");
    }
    tg_lg_put_int("requests", s->issued);
    tg_lg_put_int("completed", s->completed);
    tg_lg_put_int("errors", errors);
    for (i = 0; i < TG_LG_E_MAX; i++) {
        snprintf(name, sizeof(name), "errors_%s", tg_lg_error_names[i]);
        tg_lg_put_int(name, s->errors[i]);
    }
    tg_lg_put_int("status_2xx", ok);
    tg_lg_put_int("status_other", other);
    for (i = 0; i < TG_NELEMS(s->status); i++) {
        if (s->status[i] > 0) {
            snprintf(name, sizeof(name), "status_%zu", i);
            tg_lg_put_int(name, s->status[i]);
        }
    }
    tg_lg_put_num("rps", dur > 0 ? (double)s->completed / dur : 0);
    tg_lg_put_num("duration_s", dur);
    tg_lg_put_num("lat_mean_ms", s->nlat ? sum / (double)s->nlat / 1000 : 0);
    tg_lg_put_num("lat_p50_ms", tg_lg_pct(s->lat, s->nlat, 50));
    tg_lg_put_num("lat_p90_ms", tg_lg_pct(s->lat, s->nlat, 90));
    tg_lg_put_num("lat_p99_ms", tg_lg_pct(s->lat, s->nlat, 99));
    tg_lg_put_num("lat_max_ms", tg_lg_pct(s->lat, s->nlat, 100));
    tg_lg_put_num("ttfb_p50_ms", tg_lg_pct(s->ttfb, s->nlat, 50));
    tg_lg_put_num("ttfb_p99_ms", tg_lg_pct(s->ttfb, s->nlat, 99));
    tg_lg_put_int("bytes", s->bytes);
    tg_lg_put_int("sse_events", s->sse_events);
    tg_lg_put_int("sse_error_events", s->sse_errors);
    tg_lg_put_int("sse_unterminated", s->sse_unterminated);
    if (tg_lg_conf.json) {
        printf("}\n");
    }
    fflush(stdout);
}

/* ------------------------------------------------------------ connections */

static void
tg_lg_disconnect(tg_lg_conn_t *c)
{
    if (c->fd >= 0) {
        tg_ev_del(tg_lg_loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->connecting = false;
    tg_buf_reset(&c->in, TG_LG_IN_MAX);
}

/* The request under way on <c> is over (<error> is TG_LG_E_* or -1). */
static void
tg_lg_finish(tg_lg_conn_t *c, int error)
{
    bool reuse = error < 0 && c->keep_alive && c->sent == tg_lg_req_len &&
                 tg_buf_len(&c->in) == 0;

    if (error >= 0) {
        tg_lg_stats.errors[error]++;
    } else {
        tg_lg_record(c);
        if (c->sse && !c->sse_end) {
            tg_lg_stats.sse_unterminated++;
        }
    }
    if (c->sse) {
        tg_sse_fini(&c->sse_parser);
        c->sse = false;
    }
    tg_ev_timer_del(tg_lg_loop, &c->timer);
    c->active = false;
    tg_lg_busy--;
    if (!reuse) {
        tg_lg_disconnect(c);
    }
    tg_lg_next(c);
}

static int
tg_lg_sse_cb(void *ctx, const tg_sse_event_t *ev)
{
    tg_lg_conn_t *c = ctx;

    tg_lg_stats.sse_events++;
    if (tg_str_eq(ev->event, tg_str_lit("message_stop")) ||
        tg_str_eq(ev->data, tg_str_lit("[DONE]"))) {
        c->sse_end = true;
    } else if (tg_str_eq(ev->event, tg_str_lit("error")) ||
               (ev->data.len > 9 &&
                memcmp(ev->data.data, "{\"error\":", 9) == 0)) {
        tg_lg_stats.sse_errors++;
    }
    return TG_OK;
}

static void
tg_lg_body(tg_lg_conn_t *c, const char *p, size_t n)
{
    if (c->sse && n > 0) {
        (void)tg_sse_feed(&c->sse_parser, p, n, tg_lg_sse_cb, c);
    }
}

/* Take the parsed head <h>: choose how the body ends.  TG_OK when the
 * response is complete already, TG_AGAIN when a body follows. */
static int
tg_lg_head(tg_lg_conn_t *c, const tg_http_resp_t *h)
{
    const tg_http_header_t *ct;

    c->status = h->status;
    c->keep_alive = h->keep_alive;
    ct = tg_http_find_header(h->headers, h->nheaders,
                             tg_str_lit("content-type"));
    if (ct != NULL && ct->value.len >= 17 &&
        strncasecmp(ct->value.data, "text/event-stream", 17) == 0) {
        c->sse = true;
        c->sse_end = false;
        tg_sse_init(&c->sse_parser, TG_LG_SSE_DATA);
    }
    if (tg_lg_head_only || h->status == 204 || h->status == 304) {
        return TG_OK;
    }
    if (h->chunked) {
        c->rstate = TG_LG_R_CHUNKED;
        tg_http_chunked_init(&c->ch);
        return TG_AGAIN;
    }
    if (h->content_length >= 0) {
        c->rstate = TG_LG_R_LENGTH;
        c->left = (uint64_t)h->content_length;
        return c->left == 0 ? TG_OK : TG_AGAIN;
    }
    c->rstate = TG_LG_R_EOF;
    c->keep_alive = false;
    return TG_AGAIN;
}

/*
 * Consume what c->in holds of the response.  TG_OK: response complete;
 * TG_AGAIN: more needed; TG_ERROR: malformed.
 */
static int
tg_lg_parse(tg_lg_conn_t *c)
{
    tg_http_resp_t h;
    tg_err_t err;
    size_t len, used, out;
    int rc;

    while ((len = tg_buf_len(&c->in)) > 0) {
        char *p = c->in.data + c->in.pos;

        switch (c->rstate) {
        case TG_LG_R_HEAD:
            rc = tg_http_parse_response(&h, p, len, TG_LG_HEAD_MAX, &err);
            if (rc != TG_OK) {
                return rc;
            }
            tg_buf_consume(&c->in, h.head_len);
            if (h.status >= 100 && h.status < 200) {
                continue; /* 100 Continue and friends */
            }
            rc = tg_lg_head(c, &h);
            if (rc == TG_OK) {
                return TG_OK;
            }
            break;
        case TG_LG_R_LENGTH:
            out = (size_t)TG_MIN((uint64_t)len, c->left);
            tg_lg_body(c, p, out);
            tg_buf_consume(&c->in, out);
            c->left -= out;
            if (c->left == 0) {
                return TG_OK;
            }
            break;
        case TG_LG_R_CHUNKED:
            rc = tg_http_chunked_decode(&c->ch, p, len, &used, &out, &err);
            tg_lg_body(c, p, out);
            tg_buf_consume(&c->in, used);
            if (rc != TG_AGAIN) {
                return rc;
            }
            break;
        default:
            tg_lg_body(c, p, len);
            tg_buf_consume(&c->in, len);
            break;
        }
    }
    return TG_AGAIN;
}

/* Read and parse; finishes the request when the response is complete or
 * broken. */
static void
tg_lg_read(tg_lg_conn_t *c)
{
    size_t room;
    ssize_t n;
    int rc;

    for (;;) {
        if (tg_buf_reserve(&c->in, TG_LG_READ_MIN) != TG_OK) {
            tg_lg_finish(c, TG_LG_E_PROTOCOL);
            return;
        }
        room = c->in.cap - c->in.last;
        n = read(c->fd, c->in.data + c->in.last, room);
        if (n > 0) {
            if (!c->got_byte) {
                c->got_byte = true;
                c->t_first = tg_time_mono_us();
            }
            tg_lg_stats.bytes += (uint64_t)n;
            c->in.last += (size_t)n;
            rc = tg_lg_parse(c);
            if (rc == TG_OK) {
                tg_lg_finish(c, -1);
                return;
            }
            if (rc == TG_ERROR) {
                tg_lg_finish(c, TG_LG_E_PROTOCOL);
                return;
            }
            if ((size_t)n < room) {
                /* The socket is drained; epoll (level-triggered) says when
                 * more arrives, which saves a read that would fail. */
                return;
            }
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n == 0 && c->rstate == TG_LG_R_EOF) {
            tg_lg_finish(c, -1);
            return;
        }
        /* Closed or reset before the response was complete. */
        tg_lg_finish(c, c->got_byte ? TG_LG_E_TRUNCATED : TG_LG_E_RESET);
        return;
    }
}

static void
tg_lg_send(tg_lg_conn_t *c)
{
    ssize_t n;

    while (c->sent < tg_lg_req_len) {
        n = send(c->fd, tg_lg_req + c->sent, tg_lg_req_len - c->sent,
                 MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            (void)tg_ev_mod(tg_lg_loop, c->fd, TG_EV_READ | TG_EV_WRITE);
            return;
        }
        tg_lg_finish(c, c->got_byte ? TG_LG_E_TRUNCATED : TG_LG_E_RESET);
        return;
    }
    (void)tg_ev_mod(tg_lg_loop, c->fd, TG_EV_READ);
}

static void
tg_lg_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_lg_conn_t *c = data;
    socklen_t len = sizeof(int);
    int err = 0;

    (void)loop;
    if (c->connecting) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
            err != 0) {
            tg_lg_finish(c, TG_LG_E_CONNECT);
            return;
        }
        c->connecting = false;
        tg_lg_send(c);
        return;
    }
    if ((events & EPOLLOUT) && c->sent < tg_lg_req_len) {
        uint32_t gen = c->gen;

        tg_lg_send(c);
        if (c->gen != gen || !c->active) {
            /* The request failed and the next one started, perhaps on a
             * new socket that reuses this fd number. */
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        tg_lg_read(c);
    }
}

static int
tg_lg_connect(tg_lg_conn_t *c)
{
    int one = 1, fd;

    fd = socket(tg_lg_addr->ai_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return TG_ERROR;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, tg_lg_addr->ai_addr, tg_lg_addr->ai_addrlen) == -1 &&
        errno != EINPROGRESS) {
        close(fd);
        return TG_ERROR;
    }
    if (tg_ev_add(tg_lg_loop, fd, TG_EV_READ | TG_EV_WRITE, tg_lg_handler, c) !=
        TG_OK) {
        close(fd);
        return TG_ERROR;
    }
    c->fd = fd;
    c->connecting = true;
    return TG_OK;
}

static void
tg_lg_timeout_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    tg_lg_finish(t->data, TG_LG_E_TIMEOUT);
}

/* Start the next request on <c>, or leave it idle when all are started;
 * stops the loop once nothing is under way any more.  A failing connect
 * counts as one request, so a dead server cannot make this spin beyond
 * TOTAL (or the duration). */
static void
tg_lg_next(tg_lg_conn_t *c)
{
    for (;;) {
        if (tg_lg_stopping ||
            (tg_lg_conf.total > 0 && tg_lg_stats.issued >= tg_lg_conf.total)) {
            tg_lg_disconnect(c);
            if (tg_lg_busy == 0) {
                tg_ev_stop(tg_lg_loop);
            }
            return;
        }
        tg_lg_stats.issued++;
        c->gen++;
        c->active = true;
        c->got_byte = false;
        c->rstate = TG_LG_R_HEAD;
        c->sent = 0;
        c->status = 0;
        c->t_start = tg_time_mono_us();
        tg_lg_busy++;
        tg_ev_timer_add(tg_lg_loop, &c->timer,
                        (uint64_t)(tg_lg_conf.timeout * 1000));
        if (c->fd >= 0) {
            tg_lg_send(c);
            return;
        }
        if (tg_lg_connect(c) == TG_OK) {
            return;
        }
        tg_lg_stats.errors[TG_LG_E_CONNECT]++;
        tg_ev_timer_del(tg_lg_loop, &c->timer);
        c->active = false;
        tg_lg_busy--;
    }
}

static void
tg_lg_deadline_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)t;
    tg_lg_stopping = true;
    if (tg_lg_busy == 0) {
        tg_ev_stop(loop);
    }
}

/* ---------------------------------------------------------------- setup */

/* Split http://HOST[:PORT][/PATH] and resolve HOST.  Fills <host>,
 * <port> and <target>; TG_OK or TG_ERROR (printed). */
static int
tg_lg_parse_url(const char *url, char *host, size_t hcap, char *port,
                size_t pcap, const char **target)
{
    struct addrinfo hints;
    const char *p, *slash, *colon, *hend;
    int rc;

    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "loadgen: only http:// URLs are supported\n");
        return TG_ERROR;
    }
    p = url + 7;
    slash = strchr(p, '/');
    *target = slash ? slash : "/";
    hend = slash ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hend - p));

        if (rb == NULL) {
            fprintf(stderr, "loadgen: bad IPv6 address in URL\n");
            return TG_ERROR;
        }
        snprintf(host, hcap, "%.*s", (int)(rb - p - 1), p + 1);
        colon = (rb + 1 < hend && rb[1] == ':') ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(hend - p));
        snprintf(host, hcap, "%.*s", (int)((colon ? colon : hend) - p), p);
    }
    if (colon != NULL) {
        snprintf(port, pcap, "%.*s", (int)(hend - colon - 1), colon + 1);
    } else {
        snprintf(port, pcap, "80");
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &tg_lg_addr);
    if (rc != 0) {
        fprintf(stderr, "loadgen: getaddrinfo(\"%s\") failed (%s)\n", host,
                gai_strerror(rc));
        return TG_ERROR;
    }
    return TG_OK;
}

static char *
tg_lg_read_file(const char *path, size_t *len)
{
    struct stat st;
    char *data = NULL;
    size_t got = 0;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1 || st.st_size > TG_LG_BODY_MAX) {
        fprintf(stderr, "loadgen: cannot read \"%s\" (%s)\n", path,
                fd == -1 ? strerror(errno) : "too large or unreadable");
        goto failed;
    }
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        goto failed;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0) {
            fprintf(stderr, "loadgen: read(\"%s\") failed\n", path);
            goto failed;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return data;

failed:
    free(data);
    if (fd != -1) {
        close(fd);
    }
    return NULL;
}

static bool
tg_lg_has_header(const char *name)
{
    size_t n = strlen(name);
    int i;

    for (i = 0; i < tg_lg_conf.nheaders; i++) {
        if (strncasecmp(tg_lg_conf.headers[i], name, n) == 0 &&
            tg_lg_conf.headers[i][n] == ':') {
            return true;
        }
    }
    return false;
}

/* Build the request bytes once. */
static int
tg_lg_build_request(const char *host, const char *port, const char *target)
{
    const char *body = tg_lg_conf.body, *method = tg_lg_conf.method;
    char *file = NULL;
    size_t blen = body ? strlen(body) : 0, cap, n = 0;
    int i, k;

    if (tg_lg_conf.body_file != NULL) {
        file = tg_lg_read_file(tg_lg_conf.body_file, &blen);
        if (file == NULL) {
            return TG_ERROR;
        }
        body = file;
    }
    if (method == NULL) {
        method = body ? "POST" : "GET";
    }
    tg_lg_head_only = strcmp(method, "HEAD") == 0;
    cap = 1024 + blen + strlen(target) + strlen(host);
    for (i = 0; i < tg_lg_conf.nheaders; i++) {
        cap += strlen(tg_lg_conf.headers[i]) + 2;
    }
    tg_lg_req = malloc(cap);
    if (tg_lg_req == NULL) {
        free(file);
        return TG_ERROR;
    }
    k = snprintf(tg_lg_req, cap, "%s %s HTTP/1.1\r\n", method, target);
    n += (size_t)k;
    if (!tg_lg_has_header("host")) {
        bool v6 = strchr(host, ':') != NULL;

        k = snprintf(tg_lg_req + n, cap - n, "Host: %s%s%s:%s\r\n",
                     v6 ? "[" : "", host, v6 ? "]" : "", port);
        n += (size_t)k;
    }
    if (!tg_lg_has_header("user-agent")) {
        k = snprintf(tg_lg_req + n, cap - n,
                     "User-Agent: tollgate-loadgen/%s\r\n", TG_VERSION);
        n += (size_t)k;
    }
    if (body != NULL) {
        if (!tg_lg_has_header("content-type")) {
            k = snprintf(tg_lg_req + n, cap - n,
                         "Content-Type: application/json\r\n");
            n += (size_t)k;
        }
        k = snprintf(tg_lg_req + n, cap - n, "Content-Length: %zu\r\n", blen);
        n += (size_t)k;
    }
    for (i = 0; i < tg_lg_conf.nheaders; i++) {
        k = snprintf(tg_lg_req + n, cap - n, "%s\r\n", tg_lg_conf.headers[i]);
        n += (size_t)k;
    }
    memcpy(tg_lg_req + n, "\r\n", 2);
    n += 2;
    if (body != NULL) {
        memcpy(tg_lg_req + n, body, blen);
        n += blen;
    }
    tg_lg_req_len = n;
    free(file);
    return TG_OK;
}

static void
tg_lg_usage(FILE *f)
{
    fprintf(f, "usage: loadgen -u http://HOST:PORT/PATH [-c CONCURRENCY] "
               "[-n TOTAL] [-d SECONDS]\n"
               "               [-b BODY_FILE | --body STRING] [-m METHOD] "
               "[-H \"Name: value\"]...\n"
               "               [--expect-status CODE] [--timeout-s SECONDS] "
               "[--json]\n"
               "  POST when a body is given, else GET.  Exit status 1 when any "
               "request failed\n"
               "  or answered other than --expect-status.\n");
}

static int
tg_lg_parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"concurrency", required_argument, NULL, 'c'},
        {"requests", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"body-file", required_argument, NULL, 'b'},
        {"body", required_argument, NULL, 'B'},
        {"method", required_argument, NULL, 'm'},
        {"header", required_argument, NULL, 'H'},
        {"expect-status", required_argument, NULL, 'e'},
        {"timeout-s", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int ch;

    while ((ch = getopt_long(argc, argv, "u:c:n:d:b:m:H:h", opts, NULL)) !=
           -1) {
        errno = 0;
        end = NULL;
        switch (ch) {
        case 'u':
            tg_lg_conf.url = optarg;
            break;
        case 'c':
            tg_lg_conf.concurrency = (int)strtol(optarg, &end, 10);
            break;
        case 'n':
            tg_lg_conf.total = strtoull(optarg, &end, 10);
            break;
        case 'd':
            tg_lg_conf.duration = strtod(optarg, &end);
            break;
        case 'b':
            tg_lg_conf.body_file = optarg;
            break;
        case 'B':
            tg_lg_conf.body = optarg;
            break;
        case 'm':
            tg_lg_conf.method = optarg;
            break;
        case 'H':
            if (tg_lg_conf.nheaders == TG_LG_HEADERS_MAX ||
                strchr(optarg, ':') == NULL || strpbrk(optarg, "\r\n")) {
                fprintf(stderr, "loadgen: bad or too many -H \"%s\"\n", optarg);
                return TG_ERROR;
            }
            tg_lg_conf.headers[tg_lg_conf.nheaders++] = optarg;
            break;
        case 'e':
            tg_lg_conf.expect_status = (int)strtol(optarg, &end, 10);
            break;
        case 't':
            tg_lg_conf.timeout = strtod(optarg, &end);
            break;
        case 'j':
            tg_lg_conf.json = true;
            break;
        case 'h':
            tg_lg_usage(stdout);
            exit(0);
        default:
            tg_lg_usage(stderr);
            return TG_ERROR;
        }
        if (end != NULL && (*end != '\0' || errno != 0 || end == optarg)) {
            fprintf(stderr, "loadgen: bad number \"%s\"\n", optarg);
            return TG_ERROR;
        }
    }
    if (tg_lg_conf.url == NULL || optind != argc ||
        tg_lg_conf.concurrency < 1 || tg_lg_conf.duration < 0 ||
        tg_lg_conf.timeout <= 0 || (tg_lg_conf.body && tg_lg_conf.body_file)) {
        tg_lg_usage(stderr);
        return TG_ERROR;
    }
    if (tg_lg_conf.total == 0 && tg_lg_conf.duration == 0) {
        tg_lg_conf.total = (uint64_t)tg_lg_conf.concurrency;
    }
    if (tg_lg_conf.total > 0 &&
        (uint64_t)tg_lg_conf.concurrency > tg_lg_conf.total) {
        tg_lg_conf.concurrency = (int)tg_lg_conf.total;
    }
    return TG_OK;
}

static int
tg_lg_exit_status(void)
{
    size_t i;

    for (i = 0; i < TG_LG_E_MAX; i++) {
        if (tg_lg_stats.errors[i] > 0) {
            return 1;
        }
    }
    if (tg_lg_conf.expect_status > 0) {
        for (i = 0; i < TG_NELEMS(tg_lg_stats.status); i++) {
            if (tg_lg_stats.status[i] > 0 &&
                (int)i != tg_lg_conf.expect_status) {
                return 1;
            }
        }
    }
    return 0;
}

/*
 * Parse the options, build the request, run the connections until TOTAL
 * requests or the duration are done, and print the results.  Exit status
 * 0 when every request completed with the expected status, 1 otherwise,
 * 2 on a usage or setup error.
 */
int
main(int argc, char **argv)
{
    char host[256], port[16];
    const char *target;
    int setsize, i, rc = 2;

    if (tg_lg_parse_args(argc, argv) != TG_OK) {
        return 2;
    }
    tg_log_open(NULL, NULL, TG_LOG_WARN);
    tg_log_set_role("loadgen", -1);
    signal(SIGPIPE, SIG_IGN);
    setsize = tg_nofile_raise();
    if (tg_lg_conf.concurrency > setsize - 16) {
        fprintf(stderr, "loadgen: concurrency %d exceeds the fd limit %d\n",
                tg_lg_conf.concurrency, setsize);
        return 2;
    }
    if (tg_lg_parse_url(tg_lg_conf.url, host, sizeof(host), port, sizeof(port),
                        &target) != TG_OK ||
        tg_lg_build_request(host, port, target) != TG_OK) {
        goto done;
    }
    tg_lg_loop = tg_ev_create(setsize);
    tg_lg_conns = calloc((size_t)tg_lg_conf.concurrency, sizeof(tg_lg_conn_t));
    if (tg_lg_loop == NULL || tg_lg_conns == NULL) {
        goto done;
    }
    tg_lg_stats.t0 = tg_time_mono_us();
    if (tg_lg_conf.duration > 0) {
        tg_lg_deadline.handler = tg_lg_deadline_handler;
        tg_ev_timer_add(tg_lg_loop, &tg_lg_deadline,
                        (uint64_t)(tg_lg_conf.duration * 1000));
    }
    for (i = 0; i < tg_lg_conf.concurrency; i++) {
        tg_lg_conn_t *c = &tg_lg_conns[i];

        c->fd = -1;
        tg_buf_init(&c->in, TG_LG_IN_MAX);
        c->timer.handler = tg_lg_timeout_handler;
        c->timer.data = c;
    }
    for (i = 0; i < tg_lg_conf.concurrency; i++) {
        tg_lg_next(&tg_lg_conns[i]);
    }
    if (tg_lg_busy > 0) {
        tg_ev_run(tg_lg_loop);
    }
    tg_lg_report();
    rc = tg_lg_exit_status();

done:
    if (tg_lg_conns != NULL) {
        for (i = 0; i < tg_lg_conf.concurrency; i++) {
            tg_lg_disconnect(&tg_lg_conns[i]);
            tg_buf_fini(&tg_lg_conns[i].in);
        }
    }
    free(tg_lg_conns);
    tg_ev_timer_del(tg_lg_loop, &tg_lg_deadline);
    tg_ev_destroy(tg_lg_loop);
    if (tg_lg_addr != NULL) {
        freeaddrinfo(tg_lg_addr);
    }
    free(tg_lg_req);
    free(tg_lg_stats.lat);
    free(tg_lg_stats.ttfb);
    return rc;
}
