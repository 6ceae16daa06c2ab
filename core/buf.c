/*
 * core/buf.c
 *      Bounded byte buffers.
 *
 * NOTES
 *      Used by every process; never logs (callers know what the buffer was
 *      for and report it).
 */
#include "core/buf.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>


/* Set up <b> as an empty buffer bounded by <max> bytes. */
void
tg_buf_init(tg_buf_t *b, size_t max)
{
    b->data = NULL;
    b->pos = b->last = b->cap = 0;
    b->max = max;
}


/* Free the block of <b>; it stays usable with the same bound. */
void
tg_buf_fini(tg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->pos = b->last = b->cap = 0;
}


/*
 * Ensure <n> writable bytes at b->last.  Slides unread data to the front
 * first, then grows by doubling, never past b->max.  Returns TG_OK,
 * TG_DECLINED (bound exceeded) or TG_ERROR (out of memory).
 */
int
tg_buf_reserve(tg_buf_t *b, size_t n)
{
    size_t len = b->last - b->pos, need, cap;
    char *p;

    if (b->cap - b->last >= n) {
        return TG_OK;
    }
    if (!tg_size_add(len, n, &need) || need > b->max) {
        return TG_DECLINED;
    }
    if (b->cap >= need) {
        memmove(b->data, b->data + b->pos, len);
        b->pos = 0;
        b->last = len;
        return TG_OK;
    }
    cap = b->cap ? b->cap : TG_MIN((size_t)1024, b->max);
    while (cap < need) {
        cap = (cap > b->max / 2) ? b->max : cap * 2;
    }
    if (b->pos > 0) {
        memmove(b->data, b->data + b->pos, len);
        b->pos = 0;
        b->last = len;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return TG_ERROR;
    }
    b->data = p;
    b->cap = cap;
    return TG_OK;
}


/* Append <n> bytes at <p>.  Returns as tg_buf_reserve(). */
int
tg_buf_append(tg_buf_t *b, const void *p, size_t n)
{
    int rc;

    if (n == 0) {
        return TG_OK;
    }
    rc = tg_buf_reserve(b, n);
    if (rc != TG_OK) {
        return rc;
    }
    memcpy(b->data + b->last, p, n);
    b->last += n;
    return TG_OK;
}


/* Drop <n> (at most all) bytes from the front of <b>. */
void
tg_buf_consume(tg_buf_t *b, size_t n)
{
    b->pos += TG_MIN(n, b->last - b->pos);
    if (b->pos == b->last) {
        b->pos = b->last = 0;
    }
}


/*
 * Empty <b>.  A block larger than <keep> bytes is freed so that one large
 * request does not pin memory on an idle keep-alive connection.
 */
void
tg_buf_reset(tg_buf_t *b, size_t keep)
{
    b->pos = b->last = 0;
    if (b->cap > keep) {
        tg_buf_fini(b);
    }
}
