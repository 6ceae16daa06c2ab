/*
 * shm/prices.c
 *      The price table in shared memory and the cost arithmetic.
 *
 * NOTES
 *      Admin runs set; workers (and master, for a dead worker's records)
 *      run lookup and cost.  The protocol is in shm/prices.h.  Rows move
 *      as whole 64-bit words with relaxed __atomic builtins, so a reader
 *      racing the writer copies torn data at worst, which the seqlock
 *      check then throws away.
 */
#include "shm/prices.h"
#include "shm/models.h"
#include "shm/seqlock.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TG_SHM_PRICE_WORDS (sizeof(tg_shm_price_t) / 8)


/* See prices.h. */
size_t
tg_shm_prices_size(void)
{
    return sizeof(tg_shm_prices_t);
}


/* See prices.h. */
tg_shm_prices_t *
tg_shm_prices_init(void *mem)
{
    tg_shm_prices_t *t = mem;

    if (mem == NULL || ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0) {
        return NULL;
    }
    memset(mem, 0, sizeof(*t));
    atomic_init(&t->generation, 1);
    return t;
}


/* Bytes of <p> before its first '*' (its literal head). */
static size_t
tg_shm_prices_literal(const char *p)
{
    const char *star = strchr(p, '*');

    return star != NULL ? (size_t)(star - p) : strlen(p);
}


/* Order of rows: exact patterns first, then longer literal heads first,
 * then longer patterns; qsort is not stable, so the caller's position
 * (stashed in reserved[0..3]) breaks the remaining ties. */
static int
tg_shm_prices_cmp(const void *a, const void *b)
{
    const tg_shm_price_t *x = a, *y = b;
    bool sx = strchr(x->pattern, '*') != NULL;
    bool sy = strchr(y->pattern, '*') != NULL;
    size_t lx = tg_shm_prices_literal(x->pattern);
    size_t ly = tg_shm_prices_literal(y->pattern);
    uint32_t ix, iy;

    if (sx != sy) {
        return sx ? 1 : -1;
    }
    if (lx != ly) {
        return lx > ly ? -1 : 1;
    }
    lx = strlen(x->pattern);
    ly = strlen(y->pattern);
    if (lx != ly) {
        return lx > ly ? -1 : 1;
    }
    memcpy(&ix, x->reserved, 4);
    memcpy(&iy, y->reserved, 4);
    return ix < iy ? -1 : ix > iy;
}


/* See prices.h. */
int
tg_shm_prices_set(tg_shm_prices_t *t, const tg_shm_price_t *rows, size_t n)
{
    static tg_shm_price_t sorted[TG_SHM_PRICES_MAX];
    uint64_t w[TG_SHM_PRICE_WORDS];
    uint32_t s, i;
    size_t k;

    if (n > TG_SHM_PRICES_MAX || (n > 0 && rows == NULL)) {
        return TG_SHM_INVAL;
    }
    for (i = 0; i < n; i++) {
        if (rows[i].pattern[0] == '\0' ||
            memchr(rows[i].pattern, '\0', TG_SHM_PRICES_PATTERN) == NULL) {
            return TG_SHM_INVAL;
        }
        sorted[i] = rows[i];
        memset(sorted[i].reserved, 0, sizeof(sorted[i].reserved));
        memset(sorted[i].pattern + strlen(rows[i].pattern), 0,
               TG_SHM_PRICES_PATTERN - strlen(rows[i].pattern));
        memcpy(sorted[i].reserved, &i, 4);
    }
    qsort(sorted, n, sizeof(sorted[0]), tg_shm_prices_cmp);
    s = tg_shm_seq_write_begin(&t->seq);
    for (i = 0; i < n; i++) {
        memset(sorted[i].reserved, 0, sizeof(sorted[i].reserved));
        memcpy(w, &sorted[i], sizeof(w));
        for (k = 0; k < TG_SHM_PRICE_WORDS; k++) {
            tg_shm_seq_store64((uint64_t *)&t->rows[i] + k, w[k]);
        }
    }
    tg_shm_seq_store32(&t->count, (uint32_t)n);
    tg_shm_seq_write_end(&t->seq, s);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    return TG_SHM_OK;
}


/* Copy row <i> of <t> word by word into <out>. */
static void
tg_shm_prices_copy(const tg_shm_prices_t *t, uint32_t i, tg_shm_price_t *out)
{
    uint64_t w[TG_SHM_PRICE_WORDS];
    size_t k;

    for (k = 0; k < TG_SHM_PRICE_WORDS; k++) {
        w[k] = tg_shm_seq_load64((const uint64_t *)&t->rows[i] + k);
    }
    memcpy(out, w, sizeof(w));
}


/* See prices.h. */
int
tg_shm_prices_lookup(const tg_shm_prices_t *t, const char *model, size_t len,
                     uint64_t pusd[TG_PRICE_N])
{
    tg_shm_price_t row;
    uint32_t s, n, i;
    int tries, rc;

    for (tries = 0; tries < TG_SHM_PRICES_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&t->seq, &s)) {
            tg_shm_seq_relax();
            continue;
        }
        rc = TG_SHM_MISS;
        n = tg_shm_seq_load32(&t->count);
        n = n < TG_SHM_PRICES_MAX ? n : TG_SHM_PRICES_MAX;
        for (i = 0; i < n; i++) {
            tg_shm_prices_copy(t, i, &row);
            /* A torn copy may lack its NUL; strnlen keeps us inside it. */
            if (tg_shm_models_glob(row.pattern,
                                   strnlen(row.pattern, sizeof(row.pattern)),
                                   model, len)) {
                memcpy(pusd, row.pusd, sizeof(row.pusd));
                rc = TG_SHM_OK;
                break;
            }
        }
        if (tg_shm_seq_read_end(&t->seq, s)) {
            return rc;
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}


/* See prices.h. */
int
tg_shm_prices_cost(const uint64_t tokens[TG_PRICE_N],
                   const uint64_t pusd[TG_PRICE_N], uint32_t factor_milli,
                   uint64_t *cost)
{
    unsigned __int128 sum = 0, one, total;
    int i;

    /*
     * Each product fits 128 bits (64 x 64); five of them and the factor
     * (at most 2^32) could not, so every step is checked.  Rounding
     * happens once, at the division by 1000: the sum of products is
     * exact in pico-USD and only the factor introduces a fraction.
     */
    for (i = 0; i < TG_PRICE_N; i++) {
        one = (unsigned __int128)tokens[i] * pusd[i];
        if (__builtin_add_overflow(sum, one, &sum)) {
            goto overflow;
        }
    }
    if (__builtin_mul_overflow(sum, (unsigned __int128)factor_milli, &total)) {
        goto overflow;
    }
    if (__builtin_add_overflow(total, (unsigned __int128)500, &total)) {
        goto overflow;
    }
    total /= 1000;
    if (total > UINT64_MAX) {
        goto overflow;
    }
    *cost = (uint64_t)total;
    return TG_SHM_OK;

overflow:
    *cost = UINT64_MAX;
    return TG_SHM_FULL;
}
