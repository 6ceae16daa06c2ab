/*
 * core/sse.c
 *      Incremental server-sent events (text/event-stream) parser.
 *
 * NOTES
 *      Follows the WHATWG "event stream interpretation" rules: lines end in
 *      CRLF, LF or CR; "field: value" loses one space after the colon; data
 *      lines are joined with '\n'; "event" names the event; a blank line
 *      dispatches when at least one data line was seen and always resets
 *      the event name; ':' lines are comments; id, retry and unknown fields
 *      are ignored.  An incomplete event at the end of a stream is simply
 *      never delivered.
 *
 *      One heap block holds the event data so far followed by the current
 *      incomplete line: [data (data_len)][line (line_len)].  A data line is
 *      appended by moving its value down over its own "data:" prefix, so
 *      nothing is copied twice.  The block is allocated on the first byte
 *      that must be kept and grows by doubling, but never past
 *      max_data + TG_SSE_LINE_SLACK: a line may only grow until it could no
 *      longer fit in what is left of max_data (plus room for its field
 *      name).  When it would grow further it is processed as it stands
 *      (a data line is appended, cut, and marks the event truncated) and
 *      the rest of it is skipped (line_overflow).  Comment lines are
 *      skipped from their first byte, so keep-alive comments cost nothing.
 *      All decisions depend only on the byte sequence, so any split of the
 *      input into feeds gives the same events.  A leading byte order mark
 *      is not stripped: the upstream APIs never send one, and the parser
 *      keeps no "start of stream" state to recognise it by.
 *
 *      Runs in workers on the streaming path; never logs, never blocks.
 */
#include "core/sse.h"

#include <stdlib.h>
#include <string.h>

/* Room for a field name, colon and space beyond the data bound, and the
 * minimum line kept when the data is (nearly) full: "event: " plus the 63
 * bytes of name we keep must always fit. */
#define TG_SSE_LINE_SLACK 80

/*
 * Allocator used for the line/data block; must be realloc-compatible, as
 * the block is released with free().  Tests point it at a failing
 * allocator to check that out-of-memory is reported and nothing leaks.
 * XXX: declare it in core/sse.h (tests declare it themselves for now).
 */
void *(*tg_sse_realloc)(void *p, size_t n) = realloc;


/* Set up an empty parser whose events carry at most <max_data> bytes of
 * data.  Allocates nothing. */
void
tg_sse_init(tg_sse_t *s, size_t max_data)
{
    memset(s, 0, sizeof(*s));
    s->max_data = max_data;
}


/* Free the parser's buffer; <s> may be re-initialised afterwards. */
void
tg_sse_fini(tg_sse_t *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
    s->line_len = 0;
    s->data_len = 0;
}


/* The most bytes the current line may keep, given the data so far. */
static size_t
tg_sse_line_limit(const tg_sse_t *s)
{
    size_t room = s->max_data - TG_MIN(s->data_len, s->max_data);

    if (room > SIZE_MAX - TG_SSE_LINE_SLACK) {
        return SIZE_MAX - s->data_len;
    }
    return TG_MAX(room + TG_SSE_LINE_SLACK / 8, TG_SSE_LINE_SLACK);
}


/* Make room for <need> bytes in s->buf.  TG_OK or TG_ERROR (no memory). */
static int
tg_sse_grow(tg_sse_t *s, size_t need)
{
    size_t cap, bound;
    char *p;

    if (need <= s->cap) {
        return TG_OK;
    }
    /* Double, but never past the bound (need never exceeds it: see
     * tg_sse_line_limit). */
    bound = (s->max_data > SIZE_MAX - TG_SSE_LINE_SLACK)
                ? SIZE_MAX
                : s->max_data + TG_SSE_LINE_SLACK;
    cap = s->cap ? s->cap : 256;
    while (cap < need) {
        cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
    }
    cap = TG_MAX(TG_MIN(cap, bound), need);
    p = tg_sse_realloc(s->buf, cap);
    if (p == NULL) {
        return TG_ERROR;
    }
    s->buf = p;
    s->cap = cap;
    return TG_OK;
}


/*
 * Append the value at buf[data_len + off] of <n> bytes to the event data,
 * with a '\n' before it unless it is the first data line, cutting at
 * max_data.
 */
static void
tg_sse_append(tg_sse_t *s, size_t off, size_t n)
{
    size_t room = s->max_data - s->data_len;

    if (s->have_data) {
        if (room == 0) {
            s->truncated = true;
            return;
        }
        s->buf[s->data_len++] = '\n';
        room--;
        off--;
    }
    s->have_data = true;
    if (n > room) {
        n = room;
        s->truncated = true;
    }
    if (n > 0) {
        memmove(s->buf + s->data_len, s->buf + s->data_len + off, n);
        s->data_len += n;
    }
}


/* Act on the field in the current line (complete, or cut at its limit). */
static void
tg_sse_field(tg_sse_t *s)
{
    const char *line = s->buf + s->data_len, *colon;
    size_t name_len, off;

    colon = memchr(line, ':', s->line_len);
    if (colon == NULL) {
        name_len = s->line_len;
        off = s->line_len;
    } else {
        name_len = (size_t)(colon - line);
        off = name_len + 1;
        if (off < s->line_len && line[off] == ' ') {
            off++;
        }
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        tg_sse_append(s, off, s->line_len - off);
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        s->event_len = TG_MIN(s->line_len - off, sizeof(s->event) - 1);
        memcpy(s->event, line + off, s->event_len);
        s->event[s->event_len] = '\0';
    }
    /* id, retry and unknown fields are of no use to the proxy. */
}


/* A blank line: dispatch the pending event, if any, and reset. */
static int
tg_sse_dispatch(tg_sse_t *s, tg_sse_event_pt cb, void *ctx)
{
    tg_sse_event_t ev;
    int rc = TG_OK;

    if (s->have_data) {
        ev.event = s->event_len ? (tg_str_t){s->event, s->event_len}
                                : tg_str_lit("message");
        ev.data = (tg_str_t){s->buf ? s->buf : "", s->data_len};
        ev.truncated = s->truncated;
        rc = cb(ctx, &ev);
    }
    s->data_len = 0;
    s->have_data = false;
    s->truncated = false;
    s->event_len = 0;
    return rc;
}


/*
 * Add bytes p[0, n) (no line end among them) to the current line: keep
 * what fits under the line limit, process the line early and skip the
 * rest when it does not.  TG_OK or TG_ERROR (no memory).
 */
static int
tg_sse_line_add(tg_sse_t *s, const char *p, size_t n)
{
    size_t limit, take;

    if (s->line_overflow) {
        return TG_OK;
    }
    if (s->line_len == 0 && p[0] == ':') {
        /* A comment: skip it without keeping a byte. */
        s->line_overflow = true;
        return TG_OK;
    }
    limit = tg_sse_line_limit(s);
    take = TG_MIN(n, limit - s->line_len);
    if (take > 0) {
        if (tg_sse_grow(s, s->data_len + s->line_len + take) != TG_OK) {
            return TG_ERROR;
        }
        memcpy(s->buf + s->data_len + s->line_len, p, take);
        s->line_len += take;
    }
    if (take < n) {
        tg_sse_field(s);
        s->line_len = 0;
        s->line_overflow = true;
    }
    return TG_OK;
}


/* The current line ended: act on it. */
static int
tg_sse_line_end(tg_sse_t *s, tg_sse_event_pt cb, void *ctx)
{
    if (s->line_overflow) {
        s->line_overflow = false;
        return TG_OK;
    }
    if (s->line_len == 0) {
        return tg_sse_dispatch(s, cb, ctx);
    }
    tg_sse_field(s);
    s->line_len = 0;
    return TG_OK;
}


/*
 * Feed <len> bytes at <p>, calling <cb>(<ctx>, event) for every event
 * completed by them; the event's strings live until the callback returns.
 * Returns TG_OK, the first non-TG_OK value returned by <cb> (the rest of
 * <p> is then not parsed), or TG_ERROR when out of memory (the stream
 * should then be observed no further; tg_sse_fini still frees all).
 */
int
tg_sse_feed(tg_sse_t *s, const char *p, size_t len, tg_sse_event_pt cb,
            void *ctx)
{
    const char *last = p + len, *q;
    int rc;

    while (p < last) {
        if (s->skip_lf) {
            s->skip_lf = false;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        q = p;
        while (q < last && *q != '\n' && *q != '\r') {
            q++;
        }
        if (q > p && tg_sse_line_add(s, p, (size_t)(q - p)) != TG_OK) {
            return TG_ERROR;
        }
        if (q == last) {
            break;
        }
        s->skip_lf = (*q == '\r');
        p = q + 1;
        rc = tg_sse_line_end(s, cb, ctx);
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}
