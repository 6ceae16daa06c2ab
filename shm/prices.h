/*
 * shm/prices.h
 *      The price table: model patterns and their prices in pico-USD per
 *      token, for the worker to price a request when it ends.
 *
 * NOTES
 *      Written by: admin alone (tg_shm_prices_set, from admin/publish.c,
 *      which PostgreSQL's model_prices feeds).  Read by: workers at the end
 *      of every request, and master when it prices the records of a worker
 *      that died.
 *
 *      Units: a price is pico-USD (1e-12 USD) per token, an integer.  A
 *      list price in USD per million tokens with at most six decimals is
 *      exactly an integer in these units (3.00 USD/MTok = 3,000,000;
 *      0.075 USD/MTok = 75,000).  Five classes are priced: input not from
 *      cache, output, cache read, cache write 5-minute and cache write
 *      1-hour.  Reasoning tokens are billed as output: both APIs count
 *      them inside the output figure already (OpenAI's reasoning_tokens is
 *      a part of completion_tokens, Anthropic's thinking is in
 *      output_tokens), so they have no price of their own and are never
 *      priced twice.
 *
 *      Matching: rows are tried in table order and the first whose
 *      pattern ('*' glob, tg_shm_models_glob) matches the model wins.
 *      tg_shm_prices_set stores the rows most specific first (patterns
 *      without '*' before patterns with one, then longer literal text
 *      first), so "claude-sonnet-4-5*" is tried before "claude-*".
 *
 *      Consistency: one seqlock over the whole table (shm/seqlock.h
 *      protocol).  Admin writes every word of a row with relaxed atomic
 *      stores between write_begin and write_end; readers copy the matching
 *      row's words and validate, retrying TG_SHM_PRICES_RETRIES times, then
 *      fail closed with TG_SHM_BUSY (the request is recorded unpriced, and
 *      PostgreSQL, which keeps the prices, can reprice it).  An admin that
 *      dies mid-write leaves <seq> odd: readers get BUSY until the next
 *      admin republishes, which closes the write.
 */
#ifndef TG_SHM_PRICES_H
#define TG_SHM_PRICES_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_PRICES_MAX     512 /* rows in the table */
#define TG_SHM_PRICES_PATTERN 64  /* pattern bytes, NUL included */
#define TG_SHM_PRICES_RETRIES 64  /* seqlock retries before BUSY */

/* Indexes of tg_shm_price_t.pusd: the five priced classes, in the order
 * of the usage record's token classes. */
enum {
    TG_PRICE_INPUT = 0,      /* input not from cache */
    TG_PRICE_OUTPUT = 1,     /* output, reasoning included */
    TG_PRICE_CACHE_READ = 2, /* input read from the prompt cache */
    TG_PRICE_CACHE_5M = 3,   /* input written to the 5-minute cache */
    TG_PRICE_CACHE_1H = 4,   /* input written to the 1-hour cache */
    TG_PRICE_N = 5
};

/* One row: a model pattern and its prices. */
typedef struct {
    char pattern[TG_SHM_PRICES_PATTERN]; /* '*' glob, NUL-padded */
    uint64_t pusd[TG_PRICE_N];           /* pico-USD per token, by class */
    uint8_t reserved[24];                /* pads the row to two lines */
} tg_shm_price_t;

_Static_assert(sizeof(tg_shm_price_t) == 128,
               "tg_shm_price_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_price_t, pusd) == 64, "price row layout");

/* The table: a header line, then TG_SHM_PRICES_MAX rows. */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* odd while written */
    uint32_t count;              /* rows in use, <= TG_SHM_PRICES_MAX */
    _Atomic uint64_t generation; /* bumped by every set */
    uint8_t reserved[48];        /* pads the header to one line */
    tg_shm_price_t rows[TG_SHM_PRICES_MAX]; /* most specific first */
} tg_shm_prices_t;

_Static_assert(sizeof(tg_shm_prices_t) ==
                   TG_SHM_CACHELINE + TG_SHM_PRICES_MAX * 128,
               "tg_shm_prices_t changed: bump TG_SHM_LAYOUT_VERSION");

/* Bytes of the table. */
size_t tg_shm_prices_size(void);

/* Zero and set up an empty table at <mem> (64-byte aligned).  NULL when
 * <mem> is NULL or misaligned. */
tg_shm_prices_t *tg_shm_prices_init(void *mem);

/*
 * Replace the whole table with the <n> rows at <rows>, ordered most
 * specific first (see NOTES; the caller's order breaks ties).  Admin only.
 * TG_SHM_OK, or TG_SHM_INVAL when <n> exceeds TG_SHM_PRICES_MAX or a
 * pattern is empty or not NUL-terminated (the table is then unchanged).
 */
int tg_shm_prices_set(tg_shm_prices_t *t, const tg_shm_price_t *rows, size_t n);

/*
 * The prices of <model> (<len> bytes) into <pusd>[TG_PRICE_N].  Any
 * process; never blocks.  TG_SHM_OK, TG_SHM_MISS when no pattern
 * matches, TG_SHM_BUSY when the table kept changing (fail: unpriced).
 */
int tg_shm_prices_lookup(const tg_shm_prices_t *t, const char *model,
                         size_t len, uint64_t pusd[TG_PRICE_N]);

/*
 * The cost in pico-USD of <tokens>[TG_PRICE_N] (the five priced classes,
 * TG_PRICE_* order) at <pusd>[TG_PRICE_N], times the endpoint's price
 * factor <factor_milli> / 1000, rounded to the nearest pico-USD (so no
 * request loses more than 0.5e-12 USD).  Exact integer arithmetic in 128
 * bits.  Returns TG_SHM_OK with *<cost>, or TG_SHM_FULL with *<cost> =
 * UINT64_MAX when the cost does not fit 64 bits (18.4 million USD).
 * Pure.
 */
int tg_shm_prices_cost(const uint64_t tokens[TG_PRICE_N],
                       const uint64_t pusd[TG_PRICE_N], uint32_t factor_milli,
                       uint64_t *cost);

#endif /* TG_SHM_PRICES_H */
