/*
 * shm/models.c
 *      The model table: set, find and match allow-list patterns.
 *
 * NOTES
 *      Admin writes (tg_shm_models_set), any process reads.  See models.h.
 */
#include "shm/models.h"
#include "shm/seqlock.h"

#include <string.h>

#define TG_SHM_MODELS_WORDS                                                    \
    ((sizeof(tg_shm_models_t) - offsetof(tg_shm_models_t, len)) / 8)

_Static_assert(TG_SHM_MODELS_PATTERN % 8 == 0, "pattern words");


/* Bytes for the model table. */
size_t
tg_shm_models_size(void)
{
    return sizeof(tg_shm_models_t);
}


/* Zero and return an empty model table at <mem>; NULL on a bad <mem>. */
tg_shm_models_t *
tg_shm_models_init(void *mem)
{
    tg_shm_models_t *m = mem;

    if (mem == NULL || ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0) {
        return NULL;
    }
    memset(mem, 0, sizeof(*m));
    atomic_init(&m->generation, 1);
    return m;
}


/*
 * Replace the patterns with <patterns>[0..<n>).  Admin only.  TG_SHM_OK or
 * TG_SHM_INVAL (table unchanged).
 */
int
tg_shm_models_set(tg_shm_models_t *m, const char *const *patterns, uint32_t n)
{
    static const size_t words = TG_SHM_MODELS_WORDS;
    uint64_t w[TG_SHM_MODELS_WORDS];
    char *img = (char *)w;
    uint32_t i, odd;
    size_t j;

    if (n > TG_SHM_MODELS_MAX || (n > 0 && patterns == NULL)) {
        return TG_SHM_INVAL;
    }
    memset(w, 0, sizeof(w));
    for (i = 0; i < n; i++) {
        size_t len;

        if (patterns[i] == NULL) {
            return TG_SHM_INVAL;
        }
        len = strnlen(patterns[i], TG_SHM_MODELS_PATTERN);
        if (len >= TG_SHM_MODELS_PATTERN) {
            return TG_SHM_INVAL;
        }
        img[i] = (char)len;
        memcpy(img + TG_SHM_MODELS_MAX + (size_t)i * TG_SHM_MODELS_PATTERN,
               patterns[i], len);
    }

    odd = tg_shm_seq_write_begin(&m->seq);
    tg_shm_seq_store32(&m->count, n);
    for (j = 0; j < words; j++) {
        tg_shm_seq_store64((char *)m->len + 8 * j, w[j]);
    }
    tg_shm_seq_write_end(&m->seq, odd);
    atomic_fetch_add_explicit(&m->generation, 1, memory_order_release);
    return TG_SHM_OK;
}


/*
 * Does the glob <pat> of <plen> bytes ('*' matches any run, every other
 * byte itself) match <s> of <slen> bytes?  The literal runs between stars
 * are placed leftmost with memmem, which is enough for star-only globs:
 * a leftmost placement leaves the most room for the runs after it.  Linear
 * in <slen>; never recurses or backtracks.  Pure; any process.
 */
bool
tg_shm_models_glob(const char *pat, size_t plen, const char *s, size_t slen)
{
    const char *first, *last;
    size_t head, tail, pos, end;

    /* A zero-length name may come with a NULL pointer. */
    if (slen == 0) {
        s = "";
    }
    first = memchr(pat, '*', plen);
    if (first == NULL) {
        return plen == slen && memcmp(pat, s, plen) == 0;
    }
    last = memrchr(pat, '*', plen);
    head = (size_t)(first - pat);
    tail = plen - (size_t)(last - pat) - 1;
    if (slen < head + tail || memcmp(s, pat, head) != 0 ||
        memcmp(s + slen - tail, last + 1, tail) != 0) {
        return false;
    }
    pos = head;
    end = slen - tail;
    while (first < last) {
        const char *run = first + 1;
        const char *next = memchr(run, '*', (size_t)(last - first));
        size_t rlen = (size_t)(next - run);
        const char *at;

        if (rlen > 0) {
            at = memmem(s + pos, end - pos, run, rlen);
            if (at == NULL) {
                return false;
            }
            pos = (size_t)(at - s) + rlen;
        }
        first = next;
    }
    return true;
}


/*
 * Index of the pattern equal to <pattern> (compared as bytes, not as a
 * glob), or -1.  Admin side.
 */
int
tg_shm_models_find(const tg_shm_models_t *m, const char *pattern)
{
    size_t len = strlen(pattern);
    uint32_t s1, count, i;
    int tries, found;

    if (len >= TG_SHM_MODELS_PATTERN) {
        return -1;
    }
    for (tries = 0; tries < TG_SHM_MODELS_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&m->seq, &s1)) {
            tg_shm_seq_relax();
            continue;
        }
        count = tg_shm_seq_load32(&m->count);
        found = -1;
        for (i = 0; i < count && i < TG_SHM_MODELS_MAX && found < 0; i++) {
            uint64_t w[TG_SHM_MODELS_PATTERN / 8];
            size_t j;

            for (j = 0; j < TG_SHM_MODELS_PATTERN / 8; j++) {
                w[j] = tg_shm_seq_load64(&m->pattern[i][8 * j]);
            }
            /* The NUL after the pattern is part of the comparison. */
            if (memcmp(w, pattern, len + 1) == 0) {
                found = (int)i;
            }
        }
        if (tg_shm_seq_read_end(&m->seq, s1)) {
            return found;
        }
    }
    return -1;
}


/*
 * Bitmap of the patterns matching <model> (<len> bytes, no NUL needed) in
 * <*mask_out>.  Any process, never blocks.  TG_SHM_OK or TG_SHM_BUSY.
 */
int
tg_shm_models_match(const tg_shm_models_t *m, const char *model, size_t len,
                    uint64_t *mask_out)
{
    uint64_t lens[TG_SHM_MODELS_MAX / 8];
    uint32_t s1, count, i;
    uint64_t mask;
    int tries;
    size_t j;

    *mask_out = 0;
    for (tries = 0; tries < TG_SHM_MODELS_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&m->seq, &s1)) {
            tg_shm_seq_relax();
            continue;
        }
        count = tg_shm_seq_load32(&m->count);
        if (count > TG_SHM_MODELS_MAX) {
            count = TG_SHM_MODELS_MAX;
        }
        for (j = 0; j < TG_SHM_MODELS_MAX / 8; j++) {
            lens[j] = tg_shm_seq_load64(&m->len[8 * j]);
        }

        /*
         * Match against a private copy of each pattern, so that a torn
         * read can at worst produce a wrong mask, which the <seq> check
         * below throws away; the matcher never reads shared bytes.
         */
        mask = 0;
        for (i = 0; i < count; i++) {
            uint64_t w[TG_SHM_MODELS_PATTERN / 8];
            uint8_t plen = ((const uint8_t *)lens)[i];

            for (j = 0; j < TG_SHM_MODELS_PATTERN / 8; j++) {
                w[j] = tg_shm_seq_load64(&m->pattern[i][8 * j]);
            }
            if (plen < TG_SHM_MODELS_PATTERN &&
                tg_shm_models_glob((const char *)w, plen, model, len)) {
                mask |= (uint64_t)1 << i;
            }
        }
        if (tg_shm_seq_read_end(&m->seq, s1)) {
            *mask_out = mask;
            return TG_SHM_OK;
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}
