/*
 * shm/shm.c
 *      Create, check and address the shared-memory region.
 *
 * NOTES
 *      Runs in master (create) and in any process (check).  The region is
 *      a memfd: it has no name in the filesystem, so no other user can open
 *      it, and it disappears with the last process that maps it.
 */
#include "shm/shm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TG_SHM_ALIGN(x)                                                        \
    (((x) + TG_SHM_CACHELINE - 1) & ~(size_t)(TG_SHM_CACHELINE - 1))

typedef struct {
    uint32_t capacity;
    uint32_t entry_size;
} tg_shm_spec_t;


static int
tg_shm_specs(const tg_shm_sizes_t *sizes, tg_shm_spec_t *spec)
{
    memset(spec, 0, sizeof(tg_shm_spec_t) * TG_SHM_NTABLES);
    spec[TG_SHM_T_PROCS].capacity = sizes->procs;
    spec[TG_SHM_T_PROCS].entry_size = sizeof(tg_shm_proc_t);
    return 0;
}


/*
 * Lay the tables out after the header, each on a cache line, filling the
 * directory <tables> when not NULL.  Returns the total size, 0 on overflow.
 */
static size_t
tg_shm_layout(const tg_shm_sizes_t *sizes, tg_shm_table_t *tables)
{
    tg_shm_spec_t spec[TG_SHM_NTABLES];
    size_t off = TG_SHM_ALIGN(sizeof(tg_shm_hdr_t));
    int i;

    tg_shm_specs(sizes, spec);
    for (i = 0; i < TG_SHM_NTABLES; i++) {
        size_t bytes;

        if (__builtin_mul_overflow((size_t)spec[i].capacity,
                                   (size_t)spec[i].entry_size, &bytes) ||
            __builtin_add_overflow(bytes, (size_t)TG_SHM_CACHELINE - 1,
                                   &bytes)) {
            return 0;
        }
        bytes &= ~(size_t)(TG_SHM_CACHELINE - 1);
        if (tables != NULL) {
            tables[i].offset = bytes ? off : 0;
            tables[i].capacity = spec[i].capacity;
            tables[i].entry_size = spec[i].entry_size;
        }
        if (__builtin_add_overflow(off, bytes, &off)) {
            return 0;
        }
    }
    return off;
}


/* The region size for <sizes>, or 0 when it overflows size_t. */
size_t
tg_shm_size(const tg_shm_sizes_t *sizes)
{
    return tg_shm_layout(sizes, NULL);
}


/*
 * Create and map a region for <sizes> and initialise its header.  Returns
 * 0, or -1 with the failing call in <err>.
 */
int
tg_shm_create(tg_shm_t *shm, const tg_shm_sizes_t *sizes, char *err,
              size_t errlen)
{
    tg_shm_hdr_t *hdr;
    struct timespec ts;
    size_t size;
    uint32_t i;

    shm->base = NULL;
    shm->fd = -1;
    size = tg_shm_layout(sizes, NULL);
    if (size == 0) {
        snprintf(err, errlen, "shared memory size overflows");
        return -1;
    }
    shm->fd = memfd_create("tollgate", MFD_CLOEXEC);
    if (shm->fd == -1) {
        snprintf(err, errlen, "memfd_create() failed (%d: %s)", errno,
                 strerror(errno));
        return -1;
    }
    if (ftruncate(shm->fd, (off_t)size) == -1) {
        snprintf(err, errlen, "ftruncate(%zu) failed (%d: %s)", size, errno,
                 strerror(errno));
        goto failed;
    }
    shm->base =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shm->fd, 0);
    if (shm->base == MAP_FAILED) {
        shm->base = NULL;
        snprintf(err, errlen, "mmap(%zu) failed (%d: %s)", size, errno,
                 strerror(errno));
        goto failed;
    }
    shm->size = size;
    hdr = shm->base;
    hdr->magic = TG_SHM_MAGIC;
    hdr->layout_version = TG_SHM_LAYOUT_VERSION;
    hdr->total_size = size;
    hdr->creator_pid = (int32_t)getpid();
    hdr->ntables = TG_SHM_NTABLES;
    atomic_store(&hdr->generation, 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    hdr->created_ms =
        (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    tg_shm_layout(sizes, hdr->tables);
    for (i = 0; i < sizes->procs; i++) {
        tg_shm_proc(shm, i)->slot = i;
    }
    return 0;

failed:
    close(shm->fd);
    shm->fd = -1;
    return -1;
}


/* Unmap the region and close its fd. */
void
tg_shm_destroy(tg_shm_t *shm)
{
    if (shm->base != NULL) {
        munmap(shm->base, shm->size);
        shm->base = NULL;
    }
    if (shm->fd != -1) {
        close(shm->fd);
        shm->fd = -1;
    }
}


/*
 * Refuse a region of another layout: check magic, version, size and that
 * every table lies inside the mapping.  Returns 0 or -1 with <err>.
 */
int
tg_shm_check(const void *base, size_t size, char *err, size_t errlen)
{
    const tg_shm_hdr_t *hdr = base;
    uint32_t i;

    if (size < sizeof(*hdr)) {
        snprintf(err, errlen, "region of %zu bytes is smaller than its header",
                 size);
        return -1;
    }
    if (hdr->magic != TG_SHM_MAGIC) {
        snprintf(err, errlen, "magic is 0x%08x, expected 0x%08x", hdr->magic,
                 TG_SHM_MAGIC);
        return -1;
    }
    if (hdr->layout_version != TG_SHM_LAYOUT_VERSION) {
        snprintf(err, errlen, "layout_version is %u, expected %u",
                 hdr->layout_version, TG_SHM_LAYOUT_VERSION);
        return -1;
    }
    if (hdr->total_size != size) {
        snprintf(err, errlen, "total_size is %llu, mapped %zu",
                 (unsigned long long)hdr->total_size, size);
        return -1;
    }
    if (hdr->ntables != TG_SHM_NTABLES) {
        snprintf(err, errlen, "ntables is %u, expected %u", hdr->ntables,
                 (unsigned)TG_SHM_NTABLES);
        return -1;
    }
    for (i = 0; i < TG_SHM_NTABLES; i++) {
        const tg_shm_table_t *t = &hdr->tables[i];
        uint64_t bytes = (uint64_t)t->capacity * t->entry_size;

        if (t->offset > size || bytes > size - t->offset) {
            snprintf(err, errlen, "table %u lies outside the region", i);
            return -1;
        }
    }
    return 0;
}
