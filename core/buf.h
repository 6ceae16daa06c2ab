/*
 * core/buf.h
 *      Bounded byte buffers.
 *
 * NOTES
 *      Data lives in [pos, last) of a heap block of <cap> bytes that may grow
 *      up to <max> and never beyond: exceeding the bound is the caller's 4xx
 *      or 5xx, never an unbounded realloc.
 */
#ifndef TG_CORE_BUF_H
#define TG_CORE_BUF_H

#include <stddef.h>

typedef struct {
    char *data;  /* heap block, NULL until first use */
    size_t pos;  /* first unread byte */
    size_t last; /* one past the last byte written */
    size_t cap;  /* allocated bytes */
    size_t max;  /* upper bound for cap */
} tg_buf_t;

/* Set up an empty buffer bounded by <max> bytes; allocates nothing. */
void tg_buf_init(tg_buf_t *b, size_t max);
/* Free the block; the buffer is empty and reusable afterwards. */
void tg_buf_fini(tg_buf_t *b);

/* Make room for <n> more bytes after last, moving data to the front or
 * growing (doubling) within max.  TG_OK, TG_DECLINED when the bound would
 * be exceeded, TG_ERROR when out of memory. */
int tg_buf_reserve(tg_buf_t *b, size_t n);
/* Append <n> bytes; same returns as tg_buf_reserve. */
int tg_buf_append(tg_buf_t *b, const void *p, size_t n);
/* Drop <n> bytes from the front; the block is kept. */
void tg_buf_consume(tg_buf_t *b, size_t n);
/* Empty the buffer and release a block that grew past <keep> bytes. */
void tg_buf_reset(tg_buf_t *b, size_t keep);

static inline size_t
tg_buf_len(const tg_buf_t *b)
{
    return b->last - b->pos;
}

#endif /* TG_CORE_BUF_H */
