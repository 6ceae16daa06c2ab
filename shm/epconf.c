/*
 * shm/epconf.c
 *      Endpoint and group configuration table: layout, seqlocked writes
 *      and reads.
 *
 * NOTES
 *      Admin writes, any process reads; see shm/epconf.h for the protocol.
 *      Entries are copied as 64-bit words with relaxed atomic loads and
 *      stores (shm/seqlock.h), so a copy racing a write is a torn copy the
 *      sequence check rejects, never undefined behaviour.
 */
#include "shm/epconf.h"

#include <string.h>


/* See epconf.h. */
size_t
tg_shm_epconf_size(uint32_t neps, uint32_t ngroups)
{
    size_t a, b, n;

    if (__builtin_mul_overflow((size_t)neps, sizeof(tg_shm_epconf_ep_t), &a) ||
        __builtin_mul_overflow((size_t)ngroups, sizeof(tg_shm_epconf_group_t),
                               &b) ||
        __builtin_add_overflow(a, b, &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_epconf_hdr_t), &n)) {
        return 0;
    }
    return n;
}


/* See epconf.h. */
tg_shm_epconf_hdr_t *
tg_shm_epconf_init(void *base, uint32_t neps, uint32_t ngroups)
{
    tg_shm_epconf_hdr_t *h = base;

    h->neps = neps;
    h->ngroups = ngroups;
    atomic_store_explicit(&h->generation, 0, memory_order_release);
    return h;
}


/* See epconf.h. */
tg_shm_epconf_ep_t *
tg_shm_epconf_ep(tg_shm_epconf_hdr_t *h, uint32_t i)
{
    return (tg_shm_epconf_ep_t *)(h + 1) + i;
}


/* See epconf.h. */
tg_shm_epconf_group_t *
tg_shm_epconf_group(tg_shm_epconf_hdr_t *h, uint32_t i)
{
    return (tg_shm_epconf_group_t *)((tg_shm_epconf_ep_t *)(h + 1) + h->neps) +
           i;
}


/* Store the words of <src> after the seq word into <dst>: <size> bytes,
 * a multiple of 8; the first word holds seq and is skipped in part. */
static void
tg_shm_epconf_store(void *dst, const void *src, size_t size)
{
    const uint8_t *s = src;
    uint8_t *d = dst;
    size_t off;
    uint32_t w;

    /* The first word is seq (4 bytes, the writer's) and state. */
    memcpy(&w, s + 4, sizeof(w));
    tg_shm_seq_store32(d + 4, w);
    for (off = 8; off < size; off += 8) {
        uint64_t v;

        memcpy(&v, s + off, sizeof(v));
        tg_shm_seq_store64(d + off, v);
    }
}


static void
tg_shm_epconf_load(void *dst, const void *src, size_t size)
{
    const uint8_t *s = src;
    uint8_t *d = dst;
    size_t off;
    uint32_t w = tg_shm_seq_load32(s + 4);

    memset(d, 0, 4);
    memcpy(d + 4, &w, sizeof(w));
    for (off = 8; off < size; off += 8) {
        uint64_t v = tg_shm_seq_load64(s + off);

        memcpy(d + off, &v, sizeof(v));
    }
}


/* Write <size> bytes of <src> into the entry <dst> whose seqlock is
 * <seq>. */
static void
tg_shm_epconf_write(_Atomic uint32_t *seq, void *dst, const void *src,
                    size_t size)
{
    uint32_t odd = tg_shm_seq_write_begin(seq);

    tg_shm_epconf_store(dst, src, size);
    tg_shm_seq_write_end(seq, odd);
}


static int
tg_shm_epconf_read(const _Atomic uint32_t *seq, const void *src, void *dst,
                   size_t size)
{
    uint32_t s;
    int i;

    for (i = 0; i < TG_SHM_EPCONF_TRIES; i++) {
        if (tg_shm_seq_read_begin(seq, &s)) {
            tg_shm_epconf_load(dst, src, size);
            if (tg_shm_seq_read_end(seq, s)) {
                return TG_SHM_OK;
            }
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}


/* See epconf.h. */
void
tg_shm_epconf_ep_write(tg_shm_epconf_ep_t *dst, const tg_shm_epconf_ep_t *src,
                       uint64_t generation)
{
    tg_shm_epconf_ep_t tmp = *src;

    tmp.generation = generation;
    tg_shm_epconf_write(&dst->seq, dst, &tmp, sizeof(tmp));
    explicit_bzero(tmp.credential, sizeof(tmp.credential));
}


/* See epconf.h. */
void
tg_shm_epconf_group_write(tg_shm_epconf_group_t *dst,
                          const tg_shm_epconf_group_t *src, uint64_t generation)
{
    tg_shm_epconf_group_t tmp = *src;

    tmp.generation = generation;
    tg_shm_epconf_write(&dst->seq, dst, &tmp, sizeof(tmp));
}


/* See epconf.h. */
int
tg_shm_epconf_ep_read(const tg_shm_epconf_ep_t *src, tg_shm_epconf_ep_t *dst)
{
    return tg_shm_epconf_read(&src->seq, src, dst, sizeof(*dst));
}


/* See epconf.h. */
int
tg_shm_epconf_group_read(const tg_shm_epconf_group_t *src,
                         tg_shm_epconf_group_t *dst)
{
    return tg_shm_epconf_read(&src->seq, src, dst, sizeof(*dst));
}
