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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TG_SHM_ALIGN(x)                                                        \
    (((x) + TG_SHM_CACHELINE - 1) & ~(size_t)(TG_SHM_CACHELINE - 1))

typedef struct {
    uint32_t capacity;   /* entries, for the directory */
    uint32_t entry_size; /* bytes per entry, for the directory */
    size_t bytes;        /* bytes of the area, header included */
} tg_shm_spec_t;


/* Fill <spec> for every table; false when a size overflows. */
static bool
tg_shm_specs(const tg_shm_sizes_t *sizes, tg_shm_spec_t *spec)
{
    uint32_t key_slots = tg_shm_keys_capacity_for(sizes->max_keys);
    uint32_t nevents = sizes->events ? sizes->events : TG_SHM_EVENTS_CAPACITY;
    uint32_t nsticky = sizes->sticky ? sizes->sticky : TG_SHM_STICKY_DEFAULT;
    uint32_t ngroups = sizes->groups ? sizes->groups : TG_SHM_GROUPS_DEFAULT;
    uint32_t nepconf = sizes->endpoints < TG_SHM_EPCONF_MAX ? sizes->endpoints
                                                            : TG_SHM_EPCONF_MAX;
    int i;

    memset(spec, 0, sizeof(tg_shm_spec_t) * TG_SHM_NTABLES);
    spec[TG_SHM_T_PROCS] =
        (tg_shm_spec_t){sizes->procs, sizeof(tg_shm_proc_t),
                        (size_t)sizes->procs * sizeof(tg_shm_proc_t)};
    spec[TG_SHM_T_KEYS] = (tg_shm_spec_t){key_slots, sizeof(tg_shm_key_t),
                                          tg_shm_keys_size(key_slots)};
    spec[TG_SHM_T_RL] = (tg_shm_spec_t){key_slots, sizeof(tg_shm_rl_t),
                                        tg_shm_rl_size(key_slots)};
    spec[TG_SHM_T_USERS] = (tg_shm_spec_t){sizes->users, sizeof(tg_shm_user_t),
                                           tg_shm_users_size(sizes->users)};
    spec[TG_SHM_T_MODELS] = (tg_shm_spec_t){1, (uint32_t)tg_shm_models_size(),
                                            tg_shm_models_size()};
    spec[TG_SHM_T_EPS] = (tg_shm_spec_t){sizes->endpoints, sizeof(tg_shm_ep_t),
                                         tg_shm_ep_size(sizes->endpoints)};
    spec[TG_SHM_T_RING] = (tg_shm_spec_t){
        sizes->ring, sizeof(tg_shm_ring_slot_t), tg_shm_ring_size(sizes->ring)};
    spec[TG_SHM_T_LEASES] = (tg_shm_spec_t){
        sizes->procs, (uint32_t)tg_shm_rl_leases_stride(sizes->leases),
        tg_shm_rl_leases_size(sizes->leases, sizes->procs)};
    spec[TG_SHM_T_EPMINE] = (tg_shm_spec_t){
        sizes->procs, sizes->endpoints * (uint32_t)sizeof(uint32_t),
        tg_shm_ep_mine_size(sizes->endpoints, sizes->procs)};
    spec[TG_SHM_T_INFLIGHT] = (tg_shm_spec_t){
        sizes->procs,
        (uint32_t)(sizes->leases * (uint32_t)sizeof(tg_shm_inflight_t)),
        tg_shm_inflight_size(sizes->leases, sizes->procs)};
    /* Like the usage ring, the events ring's header comes before its
     * slots; the directory gives the slots. */
    spec[TG_SHM_T_EVENTS] = (tg_shm_spec_t){
        nevents, (uint32_t)(sizeof(tg_shm_event_t) + TG_SHM_CACHELINE),
        tg_shm_events_size(nevents)};
    /* The sticky table's header line comes before its slots, as the
     * ring's does; the directory gives the slots. */
    spec[TG_SHM_T_STICKY] =
        (tg_shm_spec_t){nsticky, (uint32_t)sizeof(tg_shm_sticky_slot_t),
                        tg_shm_sticky_size(nsticky)};
    /* The configuration table's header line and group entries come around
     * its endpoint entries; the directory gives the endpoints. */
    spec[TG_SHM_T_EPCONF] =
        (tg_shm_spec_t){nepconf, (uint32_t)sizeof(tg_shm_epconf_ep_t),
                        tg_shm_epconf_size(nepconf, ngroups)};
    spec[TG_SHM_T_PRICES] = (tg_shm_spec_t){1, (uint32_t)tg_shm_prices_size(),
                                            tg_shm_prices_size()};
    /* The quota table's header line comes before its entries: users
     * first, then one per key slot. */
    spec[TG_SHM_T_QUOTA] = (tg_shm_spec_t){
        sizes->users + key_slots, (uint32_t)sizeof(tg_shm_quota_t),
        sizes->users > UINT32_MAX - key_slots
            ? 0
            : tg_shm_quota_size(sizes->users, key_slots)};
    spec[TG_SHM_T_QRES] = (tg_shm_spec_t){
        sizes->procs, sizes->leases * (uint32_t)sizeof(tg_shm_qres_t),
        tg_shm_qres_size(sizes->leases, sizes->procs)};
    /* Header first, then one row per proc entry; the directory gives
     * the rows. */
    spec[TG_SHM_T_METRICS] =
        (tg_shm_spec_t){sizes->procs, tg_shm_metrics_stride(sizes->endpoints),
                        tg_shm_metrics_size(sizes->procs, sizes->endpoints)};
    if (key_slots == 0) {
        return false;
    }
    for (i = 0; i < TG_SHM_NTABLES; i++) {
        if (spec[i].capacity != 0 && spec[i].bytes == 0) {
            return false;
        }
    }
    return true;
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

    if (!tg_shm_specs(sizes, spec)) {
        return 0;
    }
    for (i = 0; i < TG_SHM_NTABLES; i++) {
        size_t bytes;

        if (__builtin_add_overflow(spec[i].bytes, (size_t)TG_SHM_CACHELINE - 1,
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
    /* The key table is probed at random: where the kernel backs shared
     * memory with huge pages (transparent_hugepage/shmem_enabled =
     * advise), a lookup then costs one TLB miss less.  Advice only. */
    (void)madvise(shm->base, size, MADV_HUGEPAGE);
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
    hdr->leases_per_proc = sizes->leases;
    tg_shm_layout(sizes, hdr->tables);
    for (i = 0; i < sizes->procs; i++) {
        tg_shm_proc(shm, i)->slot = i;
    }
    /* The pages of a new memfd read as zero, which is every table's empty
     * state; the init calls write their headers. */
    /* Formatting writes only the headers: the key and rate-limit tables
     * are hundreds of megabytes of address space with the defaults, and a
     * page nobody wrote costs nothing.  All-zero is the fresh state of
     * every rate-limit entry, so that table needs no set-up at all. */
    if (tg_shm_keys_format(tg_shm_table(shm, TG_SHM_T_KEYS),
                           hdr->tables[TG_SHM_T_KEYS].capacity) == NULL ||
        tg_shm_users_format(tg_shm_table(shm, TG_SHM_T_USERS), sizes->users) ==
            NULL ||
        tg_shm_models_init(tg_shm_table(shm, TG_SHM_T_MODELS)) == NULL ||
        tg_shm_ring_init(tg_shm_table(shm, TG_SHM_T_RING), sizes->ring) ==
            NULL ||
        tg_shm_events_init(tg_shm_table(shm, TG_SHM_T_EVENTS),
                           hdr->tables[TG_SHM_T_EVENTS].capacity) == NULL ||
        tg_shm_sticky_init(tg_shm_table(shm, TG_SHM_T_STICKY),
                           hdr->tables[TG_SHM_T_STICKY].capacity) == NULL ||
        tg_shm_epconf_init(tg_shm_table(shm, TG_SHM_T_EPCONF),
                           hdr->tables[TG_SHM_T_EPCONF].capacity,
                           sizes->groups ? sizes->groups
                                         : TG_SHM_GROUPS_DEFAULT) == NULL ||
        tg_shm_prices_init(tg_shm_table(shm, TG_SHM_T_PRICES)) == NULL ||
        tg_shm_quota_format(tg_shm_table(shm, TG_SHM_T_QUOTA), sizes->users,
                            hdr->tables[TG_SHM_T_KEYS].capacity) == NULL ||
        tg_shm_metrics_init(tg_shm_table(shm, TG_SHM_T_METRICS), sizes->procs,
                            sizes->endpoints) == NULL) {
        snprintf(err, errlen, "initialising the shared tables failed");
        munmap(shm->base, size);
        shm->base = NULL;
        goto failed;
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
