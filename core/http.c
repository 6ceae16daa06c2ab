/*
 * core/http.c
 *      Strict HTTP/1.1 codec: request head parser, response head parser,
 *      in-place chunked body decoder, reason phrases.
 *
 * NOTES
 *      Library-like code: never logs, never allocates, runs in every process
 *      that speaks HTTP (workers, admin, the mock upstream) and never blocks.
 *
 *      Head parsing is done in two steps.  A cheap scan (memchr for '\n')
 *      first looks for the blank line that ends the head and rejects bare LF
 *      on the way; only when the whole head is present is it parsed, in one
 *      pass, with a byte-class table.  Because the head is known to end in
 *      CRLF CRLF, and CR belongs to no accepted class, the inner loops need
 *      no bounds checks: every loop stops at a CR at the latest.  A client
 *      sending one byte at a time therefore costs a memchr over the buffer
 *      per read, not a full parse: the scan never looks past max_head and
 *      gives up after TG_HTTP_MAX_HEADERS + 1 lines, so it makes at most
 *      ~100 memchr calls however the head is shaped.
 *
 *      Strictness is a security requirement (request smuggling, RFC 9112
 *      section 11.2): anything another HTTP implementation might read
 *      differently is refused rather than repaired.  See core/http.h for
 *      the list.  In addition an HTTP/1.1 request must carry exactly one
 *      Host header, an HTTP/1.0 message must not use Transfer-Encoding, and
 *      one empty line before the request line is ignored (RFC 9112 2.2).
 *
 *      Error codes: requests get the status to answer with (400, 417, 431,
 *      501, 505); responses always get 502, since a broken upstream head is
 *      a bad gateway whatever is wrong with it; the chunked decoder uses 400
 *      and the caller maps it for responses.
 */
#include "core/http.h"

#include <string.h>

#define TG_HTTP_C_TOKEN 0x01 /* tchar (RFC 9110 5.6.2) */
#define TG_HTTP_C_VALUE 0x02 /* field-vchar, obs-text, SP, HTAB */
#define TG_HTTP_C_URI   0x04 /* VCHAR except '#' */
#define TG_HTTP_C_HEX   0x08 /* HEXDIG */

#define TG_HTTP_IS(c, cls) (tg_http_cc[(unsigned char)(c)] & (cls))

#define TG_HTTP_CHUNK_MAX      (UINT64_C(1) << 62)
#define TG_HTTP_CHUNK_LINE_MAX 4096
#define TG_HTTP_TRAILERS_MAX   16384

/* Byte classes, indexed by the unsigned byte value. */
/* clang-format off */
static const unsigned char tg_http_cc[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10 */
    2,  7,  6,  3,  7,  7,  7,  7,  6,  6,  7,  7,  6,  7,  7,  6,  /* 20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  6,  6,  6,  /* 30 */
    6,  15, 15, 15, 15, 15, 15, 7,  7,  7,  7,  7,  7,  7,  7,  7,  /* 40 */
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  6,  6,  7,  7,  /* 50 */
    7,  15, 15, 15, 15, 15, 15, 7,  7,  7,  7,  7,  7,  7,  7,  7,  /* 60 */
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  7,  6,  7,  0,  /* 70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* a0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* b0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* c0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* d0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* e0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* f0 */
};
/* clang-format on */

/* What the header fields said about framing and connection handling. */
typedef struct {
    int64_t content_length; /* -1 when absent */
    tg_str_t cl_value;      /* first Content-Length, to compare duplicates */
    size_t te_offset;       /* first Transfer-Encoding line */
    bool te;                /* Transfer-Encoding present */
    bool chunked;           /* and it is exactly one "chunked" */
    bool conn_close;        /* Connection has the "close" token */
    bool conn_keep_alive;   /* Connection has the "keep-alive" token */
    int expect;             /* 0 none, 1 100-continue, 2 anything else */
    size_t expect_offset;
    int hosts;          /* number of Host lines */
    size_t host_offset; /* the second Host line */
} tg_http_fields_t;

/* Chunked decoder states; 0 is the start so a zeroed struct is ready. */
enum {
    TG_HTTP_CH_SIZE = 0,     /* first hex digit of a size line */
    TG_HTTP_CH_SIZE_HEX,     /* more hex digits, ';' or CR */
    TG_HTTP_CH_EXT,          /* chunk extension up to CR */
    TG_HTTP_CH_SIZE_LF,      /* LF ending the size line */
    TG_HTTP_CH_DATA,         /* <size> payload bytes */
    TG_HTTP_CH_DATA_CR,      /* CR after the payload */
    TG_HTTP_CH_DATA_LF,      /* LF after the payload */
    TG_HTTP_CH_TRAILER,      /* a trailer line or the final CR */
    TG_HTTP_CH_TRAILER_NAME, /* trailer field name up to ':' */
    TG_HTTP_CH_TRAILER_VAL,  /* trailer value up to CR */
    TG_HTTP_CH_TRAILER_LF,   /* LF ending a trailer line */
    TG_HTTP_CH_FINAL_LF,     /* LF ending the message */
    TG_HTTP_CH_DONE,         /* message complete */
    TG_HTTP_CH_FAILED        /* framing error reported; stays failed */
};


static inline bool
tg_http_digit(char c)
{
    return (unsigned)((unsigned char)c - '0') < 10;
}


static inline bool
tg_http_ows(char c)
{
    return c == ' ' || c == '\t';
}


/*
 * Look for the CRLF CRLF ending a head that starts at <start> in
 * buf[0, len), without looking past <max_head> bytes.  Every LF met on the
 * way must follow a CR.  Returns TG_OK with *<end> just past the blank
 * line, TG_AGAIN, or TG_ERROR with <bad> (bare LF) or <large> (no end
 * within max_head) in <err>.
 */
static int
tg_http_find_end(const char *buf, size_t len, size_t start, size_t max_head,
                 int bad, int large, size_t *end, tg_err_t *err)
{
    size_t win = TG_MIN(len, max_head), i = start, lines = 0;
    const char *q;

    while (i < win) {
        q = memchr(buf + i, '\n', win - i);
        if (q == NULL) {
            break;
        }
        i = (size_t)(q - buf);
        if (i == 0 || buf[i - 1] != '\r') {
            tg_err_set(err, bad, i, "bare LF in head");
            return TG_ERROR;
        }
        if (i >= start + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *end = i + 1;
            return TG_OK;
        }
        /* The start line and TG_HTTP_MAX_HEADERS header lines at most:
         * refusing more here also bounds the memchr calls per scan, so a
         * head of many tiny lines sent byte by byte stays cheap. */
        if (++lines > TG_HTTP_MAX_HEADERS + 1) {
            tg_err_set(err, large, i, "more than %d headers",
                       TG_HTTP_MAX_HEADERS);
            return TG_ERROR;
        }
        i++;
    }
    if (len >= max_head) {
        tg_err_set(err, large, win, "head larger than %zu bytes", max_head);
        return TG_ERROR;
    }
    return TG_AGAIN;
}


/*
 * Parse "HTTP/d.d" at <p>.  Returns 10 or 11, 0 for another well-formed
 * version, -1 when malformed.  Compares byte by byte so that it never reads
 * past the first mismatch (the CR that ends every head line at the latest).
 */
static int
tg_http_version(const char *p)
{
    if (p[0] != 'H' || p[1] != 'T' || p[2] != 'T' || p[3] != 'P' ||
        p[4] != '/' || !tg_http_digit(p[5]) || p[6] != '.' ||
        !tg_http_digit(p[7])) {
        return -1;
    }
    if (p[5] == '1' && (p[7] == '0' || p[7] == '1')) {
        return 10 + (p[7] - '0');
    }
    return 0;
}


static int
tg_http_method(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) {
            return TG_HTTP_GET;
        }
        if (memcmp(m, "PUT", 3) == 0) {
            return TG_HTTP_PUT;
        }
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0) {
            return TG_HTTP_POST;
        }
        if (memcmp(m, "HEAD", 4) == 0) {
            return TG_HTTP_HEAD;
        }
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) {
            return TG_HTTP_PATCH;
        }
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) {
            return TG_HTTP_DELETE;
        }
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) {
            return TG_HTTP_OPTIONS;
        }
        break;
    default:
        break;
    }
    return TG_HTTP_UNKNOWN;
}


/* Note the "close" and "keep-alive" tokens of a Connection value <v>. */
static void
tg_http_connection(tg_http_fields_t *f, tg_str_t v)
{
    const char *p = v.data, *last = v.data + v.len, *s, *e;

    while (p < last) {
        s = p;
        while (p < last && *p != ',') {
            p++;
        }
        e = p;
        while (s < e && tg_http_ows(*s)) {
            s++;
        }
        while (e > s && tg_http_ows(e[-1])) {
            e--;
        }
        if (tg_str_caseeq((tg_str_t){s, (size_t)(e - s)},
                          tg_str_lit("close"))) {
            f->conn_close = true;
        } else if (tg_str_caseeq((tg_str_t){s, (size_t)(e - s)},
                                 tg_str_lit("keep-alive"))) {
            f->conn_keep_alive = true;
        }
        if (p == last) {
            break;
        }
        p++;
    }
}


/*
 * Parse a Content-Length value <v>: 1*DIGIT within int64.  A repeated
 * header must repeat the first value byte for byte.
 */
static int
tg_http_content_length(tg_http_fields_t *f, tg_str_t v, int bad, size_t offset,
                       tg_err_t *err)
{
    int64_t n = 0;
    size_t i;

    if (v.len == 0) {
        tg_err_set(err, bad, offset, "empty content-length");
        return TG_ERROR;
    }
    for (i = 0; i < v.len; i++) {
        int d = (unsigned char)v.data[i] - '0';

        if (d < 0 || d > 9) {
            tg_err_set(err, bad, offset, "invalid content-length");
            return TG_ERROR;
        }
        if (n > (INT64_MAX - d) / 10) {
            tg_err_set(err, bad, offset, "content-length too large");
            return TG_ERROR;
        }
        n = n * 10 + d;
    }
    if (f->content_length >= 0) {
        if (!tg_str_eq(f->cl_value, v)) {
            tg_err_set(err, bad, offset, "conflicting content-length headers");
            return TG_ERROR;
        }
        return TG_OK;
    }
    f->content_length = n;
    f->cl_value = v;
    return TG_OK;
}


/*
 * Look at header <h> (found at <offset>) for the few fields that decide
 * framing and connection handling.  Returns TG_OK or TG_ERROR with <err>.
 */
static int
tg_http_field(tg_http_fields_t *f, const tg_http_header_t *h, int bad,
              size_t offset, tg_err_t *err)
{
    switch (h->name.len) {
    case 4:
        if (tg_str_caseeq(h->name, tg_str_lit("host"))) {
            if (++f->hosts == 2) {
                f->host_offset = offset;
            }
        }
        break;
    case 6:
        if (tg_str_caseeq(h->name, tg_str_lit("expect"))) {
            /* Any other expectation, or a second one, cannot be met. */
            if (f->expect == 0 &&
                tg_str_caseeq(h->value, tg_str_lit("100-continue"))) {
                f->expect = 1;
            } else if (f->expect != 2) {
                f->expect = 2;
                f->expect_offset = offset;
            }
        }
        break;
    case 10:
        if (tg_str_caseeq(h->name, tg_str_lit("connection"))) {
            tg_http_connection(f, h->value);
        }
        break;
    case 14:
        if (tg_str_caseeq(h->name, tg_str_lit("content-length"))) {
            return tg_http_content_length(f, h->value, bad, offset, err);
        }
        break;
    case 17:
        if (tg_str_caseeq(h->name, tg_str_lit("transfer-encoding"))) {
            /* A second line is a second coding: "chunked, chunked" or
             * worse, never exactly "chunked". */
            f->chunked =
                !f->te && tg_str_caseeq(h->value, tg_str_lit("chunked"));
            if (!f->te) {
                f->te_offset = offset;
            }
            f->te = true;
        }
        break;
    default:
        break;
    }
    return TG_OK;
}


/*
 * Parse header lines from <p> up to and including the blank line, into
 * <h> (room for TG_HTTP_MAX_HEADERS) and <f>.  Malformed lines give <bad>,
 * too many lines <many>.  Returns the byte after the blank line, or NULL
 * with <err> filled.  The head must be known to end in CRLF CRLF.
 */
static const char *
tg_http_parse_fields(const char *buf, const char *p, tg_http_header_t *h,
                     size_t *nh, tg_http_fields_t *f, int bad, int many,
                     tg_err_t *err)
{
    const char *name, *v, *e;
    size_t n = 0;

    f->content_length = -1;
    for (;;) {
        if (*p == '\r') {
            if (p[1] != '\n') {
                tg_err_set(err, bad, (size_t)(p - buf), "bare CR in head");
                return NULL;
            }
            *nh = n;
            return p + 2;
        }
        name = p;
        while (TG_HTTP_IS(*p, TG_HTTP_C_TOKEN)) {
            p++;
        }
        if (*p != ':' || p == name) {
            tg_err_set(err, bad, (size_t)(p - buf), "%s",
                       p == name && tg_http_ows(*p) ? "obsolete line folding"
                       : tg_http_ows(*p)            ? "whitespace before colon"
                                                    : "invalid header name");
            return NULL;
        }
        e = p++;
        while (tg_http_ows(*p)) {
            p++;
        }
        v = p;
        while (TG_HTTP_IS(*p, TG_HTTP_C_VALUE)) {
            p++;
        }
        if (*p != '\r' || p[1] != '\n') {
            tg_err_set(err, bad, (size_t)(p - buf), "%s",
                       *p == '\r' ? "bare CR in head"
                                  : "invalid character in header value");
            return NULL;
        }
        if (n == TG_HTTP_MAX_HEADERS) {
            tg_err_set(err, many, (size_t)(name - buf), "more than %d headers",
                       TG_HTTP_MAX_HEADERS);
            return NULL;
        }
        h[n].name = (tg_str_t){name, (size_t)(e - name)};
        e = p;
        while (e > v && tg_http_ows(e[-1])) {
            e--;
        }
        h[n].value = (tg_str_t){v, (size_t)(e - v)};
        if (tg_http_field(f, &h[n], bad, (size_t)(name - buf), err) != TG_OK) {
            return NULL;
        }
        n++;
        p += 2;
    }
}


/*
 * Parse the request line at <p> into <r>.  Returns the byte after its
 * CRLF, or NULL with <err> filled.
 */
static const char *
tg_http_parse_request_line(tg_http_req_t *r, const char *buf, const char *p,
                           tg_err_t *err)
{
    const char *m = p, *t, *q;

    while (TG_HTTP_IS(*p, TG_HTTP_C_TOKEN)) {
        p++;
    }
    if (p == m || *p != ' ') {
        tg_err_set(err, 400, (size_t)(p - buf), "invalid method");
        return NULL;
    }
    r->method_name = (tg_str_t){m, (size_t)(p - m)};
    r->method = tg_http_method(m, (size_t)(p - m));

    t = ++p;
    while (TG_HTTP_IS(*p, TG_HTTP_C_URI)) {
        p++;
    }
    if (p == t || *p != ' ') {
        tg_err_set(err, 400, (size_t)(p - buf), "invalid request-target");
        return NULL;
    }
    r->uri = (tg_str_t){t, (size_t)(p - t)};
    if (*t != '/') {
        /* Only origin-form, and asterisk-form for OPTIONS: absolute-form
         * would let the client pick the authority behind our back. */
        if (p - t != 1 || *t != '*' || r->method != TG_HTTP_OPTIONS) {
            tg_err_set(err, 400, (size_t)(t - buf),
                       "request-target must start with '/'");
            return NULL;
        }
    }
    q = memchr(t, '?', (size_t)(p - t));
    if (q != NULL) {
        r->path = (tg_str_t){t, (size_t)(q - t)};
        r->query = (tg_str_t){q + 1, (size_t)(p - q - 1)};
    } else {
        r->path = r->uri;
        r->query = (tg_str_t){p, 0};
    }

    p++;
    r->version = tg_http_version(p);
    if (r->version <= 0) {
        tg_err_set(err, r->version == 0 ? 505 : 400, (size_t)(p - buf), "%s",
                   r->version == 0 ? "HTTP version not supported"
                                   : "invalid HTTP version");
        return NULL;
    }
    p += 8;
    if (p[0] != '\r' || p[1] != '\n') {
        tg_err_set(err, 400, (size_t)(p - buf), "invalid request line");
        return NULL;
    }
    return p + 2;
}


/*
 * Parse a request head from <buf> of <len> bytes, bounded by <max_head>,
 * into caller-owned <r>; strings point into <buf>.  Returns TG_OK with
 * r->head_len set (bytes after it belong to the body or the next request),
 * TG_AGAIN when the head is incomplete, or TG_ERROR with err->code the
 * status to answer with (400, 417, 431, 501, 505).  Never allocates.
 */
int
tg_http_parse_request(tg_http_req_t *r, const char *buf, size_t len,
                      size_t max_head, tg_err_t *err)
{
    tg_http_fields_t f = {0};
    const char *p;
    size_t start, end;
    int rc;

    /* One empty line before the request line is tolerated (old clients
     * add CRLF after a POST body); a second one is an error below. */
    start = (len >= 2 && buf[0] == '\r' && buf[1] == '\n') ? 2 : 0;
    rc = tg_http_find_end(buf, len, start, max_head, 400, 431, &end, err);
    if (rc != TG_OK) {
        return rc;
    }
    p = tg_http_parse_request_line(r, buf, buf + start, err);
    if (p == NULL) {
        return TG_ERROR;
    }
    p = tg_http_parse_fields(buf, p, r->headers, &r->nheaders, &f, 400, 431,
                             err);
    if (p == NULL) {
        return TG_ERROR;
    }
    if (f.te) {
        if (f.content_length >= 0) {
            tg_err_set(err, 400, f.te_offset,
                       "content-length together with transfer-encoding");
            return TG_ERROR;
        }
        if (r->version == 10) {
            tg_err_set(err, 400, f.te_offset,
                       "transfer-encoding in an HTTP/1.0 request");
            return TG_ERROR;
        }
        if (!f.chunked) {
            tg_err_set(err, 501, f.te_offset,
                       "transfer-encoding other than chunked");
            return TG_ERROR;
        }
    }
    if (f.hosts > 1) {
        tg_err_set(err, 400, f.host_offset, "duplicate host header");
        return TG_ERROR;
    }
    if (f.hosts == 0 && r->version == 11) {
        tg_err_set(err, 400, start, "missing host header");
        return TG_ERROR;
    }
    r->expect_continue = false;
    if (r->version == 11) {
        /* HTTP/1.0 expectations are ignored (RFC 9110 10.1.1). */
        if (f.expect == 2) {
            tg_err_set(err, 417, f.expect_offset, "unsupported expectation");
            return TG_ERROR;
        }
        r->expect_continue = (f.expect == 1);
    }
    r->content_length = f.content_length;
    r->chunked = f.chunked;
    r->keep_alive =
        (r->version == 11) ? !f.conn_close : f.conn_keep_alive && !f.conn_close;
    r->head_len = (size_t)(p - buf);
    return TG_OK;
}


/*
 * Parse a response head from <buf> of <len> bytes, bounded by <max_head>,
 * into caller-owned <r>.  Returns TG_OK with r->head_len set, TG_AGAIN,
 * or TG_ERROR with err->code 502.  Never allocates.
 */
int
tg_http_parse_response(tg_http_resp_t *r, const char *buf, size_t len,
                       size_t max_head, tg_err_t *err)
{
    tg_http_fields_t f = {0};
    const char *p, *s;
    size_t end;
    int rc;

    rc = tg_http_find_end(buf, len, 0, max_head, 502, 502, &end, err);
    if (rc != TG_OK) {
        return rc;
    }
    p = buf;
    r->version = tg_http_version(p);
    if (r->version <= 0) {
        tg_err_set(err, 502, 0, "%s",
                   r->version == 0 ? "unsupported HTTP version in response"
                                   : "invalid status line");
        return TG_ERROR;
    }
    p += 8;
    if (p[0] != ' ' || p[1] < '1' || p[1] > '9' || !tg_http_digit(p[2]) ||
        !tg_http_digit(p[3])) {
        tg_err_set(err, 502, (size_t)(p - buf), "invalid status code");
        return TG_ERROR;
    }
    r->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    p += 4;
    /* The reason phrase may be empty, and some servers drop its SP. */
    s = p;
    if (*p == ' ') {
        s = ++p;
        while (TG_HTTP_IS(*p, TG_HTTP_C_VALUE)) {
            p++;
        }
    }
    r->reason = (tg_str_t){s, (size_t)(p - s)};
    if (p[0] != '\r' || p[1] != '\n') {
        tg_err_set(err, 502, (size_t)(p - buf), "invalid status line");
        return TG_ERROR;
    }
    p = tg_http_parse_fields(buf, p + 2, r->headers, &r->nheaders, &f, 502, 502,
                             err);
    if (p == NULL) {
        return TG_ERROR;
    }
    if (f.te) {
        if (f.content_length >= 0) {
            tg_err_set(err, 502, f.te_offset,
                       "content-length together with transfer-encoding");
            return TG_ERROR;
        }
        if (r->version == 10 || !f.chunked) {
            tg_err_set(err, 502, f.te_offset,
                       "transfer-encoding other than chunked");
            return TG_ERROR;
        }
    }
    r->content_length = f.content_length;
    r->chunked = f.chunked;
    r->keep_alive =
        (r->version == 11) ? !f.conn_close : f.conn_keep_alive && !f.conn_close;
    r->head_len = (size_t)(p - buf);
    return TG_OK;
}


/*
 * Find header <name> (ASCII case-insensitive) among <n> headers at <h>.
 * Returns the first match, pointing into the caller's array, or NULL.
 */
const tg_http_header_t *
tg_http_find_header(const tg_http_header_t *h, size_t n, tg_str_t name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (tg_str_caseeq(h[i].name, name)) {
            return &h[i];
        }
    }
    return NULL;
}


/* Make <ch> ready for a new chunked body. */
void
tg_http_chunked_init(tg_http_chunked_t *ch)
{
    ch->state = TG_HTTP_CH_SIZE;
    ch->size = 0;
    ch->line_len = 0;
    ch->trailer_bytes = 0;
}


static inline unsigned
tg_http_hex(unsigned char c)
{
    return (c <= '9') ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}


/*
 * Advance <ch> over one framing byte <c> (anything but payload).  Returns
 * NULL, or the error message when <c> breaks the framing.
 */
static const char *
tg_http_chunked_byte(tg_http_chunked_t *ch, unsigned char c)
{
    if (ch->state >= TG_HTTP_CH_TRAILER && ch->state <= TG_HTTP_CH_FINAL_LF) {
        if (++ch->trailer_bytes > TG_HTTP_TRAILERS_MAX ||
            ++ch->line_len > TG_HTTP_CHUNK_LINE_MAX) {
            return "chunked trailers too large";
        }
    }
    switch (ch->state) {
    case TG_HTTP_CH_SIZE:
        if (!TG_HTTP_IS(c, TG_HTTP_C_HEX)) {
            return "invalid chunk size";
        }
        ch->size = tg_http_hex(c);
        ch->line_len = 1;
        ch->state = TG_HTTP_CH_SIZE_HEX;
        return NULL;
    case TG_HTTP_CH_SIZE_HEX:
    case TG_HTTP_CH_EXT:
        if (++ch->line_len > TG_HTTP_CHUNK_LINE_MAX) {
            return "chunk size line too long";
        }
        if (c == '\r') {
            ch->state = TG_HTTP_CH_SIZE_LF;
        } else if (ch->state == TG_HTTP_CH_EXT) {
            if (!TG_HTTP_IS(c, TG_HTTP_C_VALUE)) {
                return "invalid chunk extension";
            }
        } else if (c == ';') {
            ch->state = TG_HTTP_CH_EXT;
        } else if (!TG_HTTP_IS(c, TG_HTTP_C_HEX)) {
            return "invalid chunk size";
        } else if (ch->size > (TG_HTTP_CHUNK_MAX - tg_http_hex(c)) / 16) {
            return "chunk size too large";
        } else {
            ch->size = ch->size * 16 + tg_http_hex(c);
        }
        return NULL;
    case TG_HTTP_CH_SIZE_LF:
        if (c != '\n') {
            return "bare CR in chunk size line";
        }
        if (++ch->line_len > TG_HTTP_CHUNK_LINE_MAX) {
            return "chunk size line too long";
        }
        ch->line_len = 0;
        ch->state = (ch->size == 0) ? TG_HTTP_CH_TRAILER : TG_HTTP_CH_DATA;
        return NULL;
    case TG_HTTP_CH_DATA_CR:
    case TG_HTTP_CH_DATA_LF:
        if (c != (ch->state == TG_HTTP_CH_DATA_CR ? '\r' : '\n')) {
            return "missing CRLF after chunk data";
        }
        ch->state = (ch->state == TG_HTTP_CH_DATA_CR) ? TG_HTTP_CH_DATA_LF
                                                      : TG_HTTP_CH_SIZE;
        return NULL;
    case TG_HTTP_CH_TRAILER:
        if (c == '\r') {
            ch->state = TG_HTTP_CH_FINAL_LF;
        } else if (TG_HTTP_IS(c, TG_HTTP_C_TOKEN)) {
            ch->state = TG_HTTP_CH_TRAILER_NAME;
        } else {
            return tg_http_ows((char)c) ? "obsolete line folding in trailer"
                                        : "invalid trailer name";
        }
        return NULL;
    case TG_HTTP_CH_TRAILER_NAME:
        if (c == ':') {
            ch->state = TG_HTTP_CH_TRAILER_VAL;
        } else if (!TG_HTTP_IS(c, TG_HTTP_C_TOKEN)) {
            return "invalid trailer name";
        }
        return NULL;
    case TG_HTTP_CH_TRAILER_VAL:
        if (c == '\r') {
            ch->state = TG_HTTP_CH_TRAILER_LF;
        } else if (!TG_HTTP_IS(c, TG_HTTP_C_VALUE)) {
            return "invalid character in trailer";
        }
        return NULL;
    case TG_HTTP_CH_TRAILER_LF:
    case TG_HTTP_CH_FINAL_LF:
        if (c != '\n') {
            return "bare CR in trailer";
        }
        ch->line_len = 0;
        ch->state = (ch->state == TG_HTTP_CH_TRAILER_LF) ? TG_HTTP_CH_TRAILER
                                                         : TG_HTTP_CH_DONE;
        return NULL;
    default:
        return "chunked decoder in a bad state";
    }
}


/*
 * Decode chunked framing in <in> of <len> bytes in place: payload bytes
 * are moved to the front of <in>.  Sets *<used> to the input consumed and
 * *<out_len> to the payload now at <in>.  Returns TG_OK once the final
 * CRLF is consumed (the rest of <in> is the next message), TG_AGAIN when
 * all input was consumed and more is needed, or TG_ERROR with <err> (code
 * 400); after an error <ch> keeps failing until re-initialised.
 */
int
tg_http_chunked_decode(tg_http_chunked_t *ch, char *in, size_t len,
                       size_t *used, size_t *out_len, tg_err_t *err)
{
    const char *msg = NULL;
    size_t i = 0, o = 0, n;

    if (ch->state == TG_HTTP_CH_FAILED) {
        msg = "chunked body failed earlier";
        goto failed;
    }
    while (i < len && ch->state != TG_HTTP_CH_DONE) {
        if (ch->state == TG_HTTP_CH_DATA) {
            n = (size_t)TG_MIN((uint64_t)(len - i), ch->size);
            if (o != i) {
                memmove(in + o, in + i, n);
            }
            o += n;
            i += n;
            ch->size -= n;
            if (ch->size == 0) {
                ch->state = TG_HTTP_CH_DATA_CR;
            }
            continue;
        }
        msg = tg_http_chunked_byte(ch, (unsigned char)in[i]);
        if (msg != NULL) {
            goto failed;
        }
        i++;
    }
    *used = i;
    *out_len = o;
    return (ch->state == TG_HTTP_CH_DONE) ? TG_OK : TG_AGAIN;

failed:
    ch->state = TG_HTTP_CH_FAILED;
    *used = i;
    *out_len = o;
    tg_err_set(err, 400, i, "%s", msg);
    return TG_ERROR;
}


/* Reason phrases, sorted by status for the binary search. */
static const struct {
    int status;
    const char *text;
} tg_http_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {499, "Client Closed Request"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {529, "Overloaded"},
};


/* Reason phrase for <status>; a static string, "Unknown" when unlisted. */
const char *
tg_http_reason(int status)
{
    size_t lo = 0, hi = TG_NELEMS(tg_http_reasons);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (tg_http_reasons[mid].status == status) {
            return tg_http_reasons[mid].text;
        }
        if (tg_http_reasons[mid].status < status) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return "Unknown";
}


/*
 * True when header <name> is hop-by-hop (RFC 9110 7.6.1 plus the legacy
 * Keep-Alive and Proxy-Connection) and must not be forwarded.
 */
bool
tg_http_is_hop_by_hop(tg_str_t name)
{
    switch (name.len) {
    case 2:
        return tg_str_caseeq(name, tg_str_lit("te"));
    case 7:
        return tg_str_caseeq(name, tg_str_lit("trailer")) ||
               tg_str_caseeq(name, tg_str_lit("upgrade"));
    case 10:
        return tg_str_caseeq(name, tg_str_lit("connection")) ||
               tg_str_caseeq(name, tg_str_lit("keep-alive"));
    case 16:
        return tg_str_caseeq(name, tg_str_lit("proxy-connection"));
    case 17:
        return tg_str_caseeq(name, tg_str_lit("transfer-encoding"));
    case 18:
        return tg_str_caseeq(name, tg_str_lit("proxy-authenticate"));
    case 19:
        return tg_str_caseeq(name, tg_str_lit("proxy-authorization"));
    default:
        return false;
    }
}
