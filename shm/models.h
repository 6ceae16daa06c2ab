/*
 * shm/models.h
 *      The model table: the model-name patterns key allow-lists refer to.
 *
 * NOTES
 *      Written by: admin only (config reloads, rarely).  Read by: workers,
 *      on every request whose key has an allow-list.  Consistency: one
 *      seqlock over the whole table (shm/seqlock.h); readers retry
 *      TG_SHM_MODELS_RETRIES times and then fail closed (TG_SHM_BUSY).  An
 *      admin that dies mid-write leaves <seq> odd and readers fail closed
 *      until the next tg_shm_models_set makes it even again.  Key
 *      allow-lists are bitmaps over the pattern indexes: admin keeps the
 *      index of a pattern stable while any key refers to it (see
 *      shm/keys.h).
 */
#ifndef TG_SHM_MODELS_H
#define TG_SHM_MODELS_H

#include "shm/layout.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_MODELS_RETRIES 64 /* seqlock retries before BUSY */

#define TG_SHM_MODELS_MAX     64 /* patterns; a key bitmap is 64 bits */
#define TG_SHM_MODELS_PATTERN 64 /* bytes per pattern, NUL included */

/*
 * Model-name patterns, glob with '*' matching any run of bytes.  One seqlock
 * over the whole table: admin writes it rarely (config reloads).
 */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* odd while written */
    uint32_t count;                 /* patterns in use, <= TG_SHM_MODELS_MAX */
    _Atomic uint64_t generation;    /* bumped by every set */
    uint8_t reserved[48];           /* pads the header to one cache line */
    uint8_t len[TG_SHM_MODELS_MAX]; /* bytes in each pattern */
    char pattern[TG_SHM_MODELS_MAX][TG_SHM_MODELS_PATTERN]; /* NUL padded */
} tg_shm_models_t;

_Static_assert(sizeof(tg_shm_models_t) == 64 + 64 + 64 * 64,
               "tg_shm_models_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_models_t, len) == 64, "models layout");
_Static_assert(offsetof(tg_shm_models_t, pattern) == 128, "models layout");

/* Bytes for the model table. */
size_t tg_shm_models_size(void);

/*
 * Zero tg_shm_models_size() bytes at <mem> (64-byte aligned) and return
 * them as an empty table; NULL when <mem> is NULL or misaligned.
 */
tg_shm_models_t *tg_shm_models_init(void *mem);

/*
 * Replace the patterns with <patterns>[0..<n>), NUL-terminated strings of
 * at most TG_SHM_MODELS_PATTERN - 1 bytes.  Pattern i gets bit i.  Admin
 * only; see NOTES on keeping indexes stable.  TG_SHM_OK, or TG_SHM_INVAL
 * when <n> > TG_SHM_MODELS_MAX or a pattern is NULL or too long (the
 * table is then left as it was).
 */
int tg_shm_models_set(tg_shm_models_t *m, const char *const *patterns,
                      uint32_t n);

/*
 * Index of the pattern equal to <pattern> (NUL-terminated), or -1.  Admin
 * side, to build key bitmaps; -1 also when the table is being written.
 */
int tg_shm_models_find(const tg_shm_models_t *m, const char *pattern);

/*
 * Set <*mask_out> to the bitmap of patterns matching the model name
 * <model> of <len> bytes (not NUL-terminated; any bytes).  Any process;
 * never blocks; linear in <len> per pattern.  TG_SHM_OK, or TG_SHM_BUSY
 * (with <*mask_out> = 0) when the table kept changing: fail closed.
 */
int tg_shm_models_match(const tg_shm_models_t *m, const char *model, size_t len,
                        uint64_t *mask_out);

/*
 * Whether the glob <pat> of <plen> bytes ('*' matches any run of bytes,
 * every other byte itself) matches <s> of <slen> bytes (<s> may be NULL
 * when <slen> is 0).  Linear in <slen>, no recursion.  Pure; any process
 * (routing matches endpoint model patterns with it too).
 */
bool tg_shm_models_glob(const char *pat, size_t plen, const char *s,
                        size_t slen);

#endif /* TG_SHM_MODELS_H */
