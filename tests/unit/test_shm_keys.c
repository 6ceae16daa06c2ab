/*
 * tests/unit/test_shm_keys.c
 *      CUnit suite "shm_keys": the key table, model patterns and users in
 *      shared memory.
 *
 * NOTES
 *      Tables live in MAP_SHARED anonymous mappings, as in production, so
 *      the multi-process tests fork readers against the same memory.  The
 *      stress test gives every stored key fields derived from a single
 *      counter, so a reader can tell a torn copy from a consistent one, and
 *      keeps a set of keys that are updated but never deleted, so a reader
 *      can tell a lost key from a deleted one.  Children leave with _exit
 *      and report through a pipe; they never return into CUnit.
 */
#include "shm/keys.h"
#include "shm/users.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))


/* A MAP_SHARED anonymous mapping of <size> bytes, or NULL. */
static void *
test_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}


static tg_shm_keys_t *
test_keys_new(uint32_t capacity)
{
    void *mem = test_map(tg_shm_keys_size(capacity));

    return mem == NULL ? NULL : tg_shm_keys_init(mem, capacity);
}


static void
test_keys_free(tg_shm_keys_t *t)
{
    if (t != NULL) {
        munmap(t, tg_shm_keys_size(t->capacity));
    }
}


static uint64_t
test_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}


/*
 * The digest of test key <k>.  Keys with the same <home> share their first
 * 8 bytes, hence their home slot.
 */
static void
test_digest(uint32_t home, uint32_t k, uint8_t d[32])
{
    uint64_t w[4];

    w[0] = test_mix(home);
    w[1] = test_mix((uint64_t)k << 32 | 0x5eed);
    w[2] = k;
    w[3] = ~(uint64_t)k;
    memcpy(d, w, sizeof(w));
}


/*
 * Fill <e> for key <k> with version <c>: every field is derived from the
 * pair, so test_check can spot a copy mixing two versions.
 */
static void
test_fill(tg_shm_key_t *e, uint32_t home, uint32_t k, uint32_t c)
{
    memset(e, 0, sizeof(*e));
    test_digest(home, k, e->digest);
    e->status = c & 1;
    e->group = (uint16_t)(c * 7);
    e->user = c;
    e->key_id = k;
    e->rpm = c * 3 + 1;
    e->burst = c ^ 0x5a5a5a5au;
    e->tpm = c + k;
    e->concurrency = ~c;
    e->expires_at = (uint64_t)c << 32 | k;
    e->models = (uint64_t)c * 0x9e3779b97f4a7c15ull;
    snprintf(e->prefix, sizeof(e->prefix), "tg-%08x", c);
}


/* True when <e> is exactly what test_fill wrote for <k> at some version. */
static bool
test_check(const tg_shm_key_t *e, uint32_t home, uint32_t k)
{
    tg_shm_key_t want;

    if (e->state != TG_SHM_KEY_USED || e->key_id != k) {
        return false;
    }
    test_fill(&want, home, k, e->user);
    return memcmp((const char *)e + 5, (const char *)&want + 5,
                  offsetof(tg_shm_key_t, epoch) - 5) == 0;
}


static void
test_sizes(void)
{
    tg_shm_keys_t *t = test_keys_new(10);

    CU_ASSERT_EQUAL(sizeof(tg_shm_key_t), 96);
    CU_ASSERT_EQUAL(sizeof(tg_shm_keys_t), 64);
    CU_ASSERT_EQUAL(sizeof(tg_shm_user_t), 64);
    CU_ASSERT_EQUAL(tg_shm_keys_size(10), 64 + 10 * 96);
    CU_ASSERT_EQUAL(tg_shm_keys_size(UINT32_MAX), 64 + (size_t)UINT32_MAX * 96);
    CU_ASSERT_EQUAL(tg_shm_users_size(10), 64 + 10 * 64);
    CU_ASSERT_EQUAL(tg_shm_models_size(), 4224);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(
        (char *)tg_shm_keys_slot(t, 1) - (char *)tg_shm_keys_slot(t, 0), 96);
    CU_ASSERT_EQUAL((char *)tg_shm_keys_slot(t, 0) - (char *)t, 64);
    CU_ASSERT_EQUAL(tg_shm_keys_capacity_for(0), 2);
    CU_ASSERT_EQUAL(tg_shm_keys_capacity_for(3), 4);
    CU_ASSERT_EQUAL(tg_shm_keys_capacity_for(1000000), 1333334);
    CU_ASSERT_EQUAL(tg_shm_keys_capacity_for(UINT32_MAX), 0);
    test_keys_free(t);
}


static void
test_init_rejects_bad_arguments(void)
{
    char *mem = test_map(4096);

    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    CU_ASSERT_PTR_NULL(tg_shm_keys_init(NULL, 4));
    CU_ASSERT_PTR_NULL(tg_shm_keys_init(mem, 0));
    CU_ASSERT_PTR_NULL(tg_shm_keys_init(mem + 8, 4));
    CU_ASSERT_PTR_NULL(tg_shm_models_init(mem + 8));
    CU_ASSERT_PTR_NULL(tg_shm_users_init(mem, 0));
    munmap(mem, 4096);
}


static void
test_insert_lookup_update_delete(void)
{
    tg_shm_keys_t *t = test_keys_new(tg_shm_keys_capacity_for(100));
    tg_shm_key_t k, out;
    uint32_t slot, slot2;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    test_fill(&k, 1, 1, 10);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &slot), TG_SHM_OK);
    CU_ASSERT(slot < t->capacity);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, &slot2), TG_SHM_OK);
    CU_ASSERT_EQUAL(slot2, slot);
    CU_ASSERT(test_check(&out, 1, 1));
    CU_ASSERT_EQUAL(out.user, 10);
    CU_ASSERT_EQUAL(out.epoch, 1);
    CU_ASSERT_EQUAL(atomic_load(&out.seq) % 2, 0);
    CU_ASSERT_STRING_EQUAL(out.prefix, "tg-0000000a");

    /* An update stays in its slot and keeps the slot's epoch. */
    test_fill(&k, 1, 1, 11);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &slot2), TG_SHM_OK);
    CU_ASSERT_EQUAL(slot2, slot);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.user, 11);
    CU_ASSERT_EQUAL(out.epoch, 1);
    CU_ASSERT(test_check(&out, 1, 1));

    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_MISS);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 0);
    CU_ASSERT_EQUAL(tg_shm_keys_read(t, slot, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, NULL, NULL), TG_SHM_INVAL);
    test_keys_free(t);
}


static void
test_chain_of_colliding_keys(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    uint32_t slots[6], i, home;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 6; i++) {
        test_fill(&k, 7, i, 100 + i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &slots[i]), TG_SHM_OK);
    }
    /* All six share a home, so they sit in consecutive slots. */
    home = slots[0];
    for (i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(slots[i], (home + i) % 64);
    }
    CU_ASSERT_EQUAL(atomic_load(&t->max_probe), 5);

    /* Deleting the middle leaves tombstones the chain runs through. */
    test_digest(7, 2, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    test_digest(7, 3, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 2);
    for (i = 0; i < 6; i++) {
        int rc;

        test_digest(7, i, k.digest);
        rc = tg_shm_keys_lookup(t, k.digest, &out, NULL);
        if (i == 2 || i == 3) {
            CU_ASSERT_EQUAL(rc, TG_SHM_MISS);
        } else {
            CU_ASSERT_EQUAL(rc, TG_SHM_OK);
            CU_ASSERT(test_check(&out, 7, i));
        }
    }

    /* Updating a key past the tombstones must not duplicate it. */
    test_fill(&k, 7, 5, 555);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &slots[5]), TG_SHM_OK);
    CU_ASSERT_EQUAL(slots[5], (home + 5) % 64);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 4);
    test_keys_free(t);
}


static void
test_tombstone_reuse(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    uint32_t s0, s1, s2, s;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    test_fill(&k, 3, 0, 1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s0), TG_SHM_OK);
    test_fill(&k, 3, 1, 1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s1), TG_SHM_OK);
    test_fill(&k, 3, 2, 1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s2), TG_SHM_OK);
    test_digest(3, 1, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 1);

    /* The next key of the chain takes the tombstone, with a new epoch. */
    test_fill(&k, 3, 9, 2);
    CU_ASSERT_EQUAL(tg_shm_keys_place(t, k.digest, &s), TG_SHM_MISS);
    CU_ASSERT_EQUAL(s, s1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s), TG_SHM_OK);
    CU_ASSERT_EQUAL(s, s1);
    CU_ASSERT_EQUAL(tg_shm_keys_place(t, k.digest, &s), TG_SHM_OK);
    CU_ASSERT_EQUAL(s, s1);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 3);
    CU_ASSERT_EQUAL(tg_shm_keys_read(t, s1, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.epoch, 2);
    CU_ASSERT(test_check(&out, 3, 9));
    test_digest(3, 2, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, &s), TG_SHM_OK);
    CU_ASSERT_EQUAL(s, s2);
    test_keys_free(t);
}


static void
test_reclaims_trailing_tombstones(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    uint32_t i, s[4];
    tg_shm_key_t k;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 4; i++) {
        test_fill(&k, 5, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s[i]), TG_SHM_OK);
    }
    test_digest(5, 1, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    test_digest(5, 2, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 2);

    /* Deleting the last key empties it and the tombstones before it. */
    test_digest(5, 3, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);
    for (i = 1; i < 4; i++) {
        CU_ASSERT_EQUAL(tg_shm_keys_slot(t, s[i])->state, TG_SHM_KEY_EMPTY);
        CU_ASSERT_EQUAL(atomic_load(&tg_shm_keys_slot(t, s[i])->seq) % 2, 0);
    }
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, s[0])->state, TG_SHM_KEY_USED);
    test_keys_free(t);
}


/* The home slot of test home group <home> in a table of <cap> slots. */
static uint32_t
test_home(uint32_t home, uint32_t cap)
{
    uint64_t h = test_mix(home);

    return (uint32_t)(((unsigned __int128)h * cap) >> 64);
}


/* A home group whose home slot is <slot> in a table of <cap> slots. */
static uint32_t
test_group_at(uint32_t slot, uint32_t cap)
{
    uint32_t g;

    for (g = 0; test_home(g, cap) != slot; g++) {
    }
    return g;
}


static void
test_purges_unneeded_tombstones_mid_run(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    uint32_t g[3], s[3], i;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* Three keys whose homes are slots 10, 11 and 12: one run, no chain. */
    for (i = 0; i < 3; i++) {
        g[i] = test_group_at(10 + i, 64);
        test_fill(&k, g[i], i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s[i]), TG_SHM_OK);
        CU_ASSERT_EQUAL(s[i], 10 + i);
    }
    /* The middle slot is on no chain: it empties although 12 is used. */
    test_digest(g[1], 1, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, 11)->state, TG_SHM_KEY_EMPTY);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);

    /* A second key of home 10 lands in 11; deleting it empties 11 again. */
    test_fill(&k, g[0], 3, 3);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s[1]), TG_SHM_OK);
    CU_ASSERT_EQUAL(s[1], 11);
    test_fill(&k, g[0], 4, 4);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s[1]), TG_SHM_OK);
    CU_ASSERT_EQUAL(s[1], 13);
    /* Slot 11 is on key 4's chain (10..13): it must stay a tombstone. */
    test_digest(g[0], 3, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, 11)->state, TG_SHM_KEY_TOMB);
    test_digest(g[0], 4, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_OK);
    CU_ASSERT(test_check(&out, g[0], 4));
    /* Once key 4 goes, nothing needs 11 or 13. */
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, 11)->state, TG_SHM_KEY_EMPTY);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, 13)->state, TG_SHM_KEY_EMPTY);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 2);
    test_keys_free(t);
}


typedef struct {
    uint32_t calls;   /* moves reported */
    uint32_t bad;     /* moves whose <to> already held a key */
    tg_shm_keys_t *t; /* the table, to check <to> */
} test_moves_t;


static void
test_moved(void *arg, uint32_t from, uint32_t to)
{
    test_moves_t *m = arg;

    m->calls++;
    if (from >= m->t->capacity || to >= m->t->capacity ||
        tg_shm_keys_slot(m->t, to)->state != TG_SHM_KEY_TOMB ||
        tg_shm_keys_slot(m->t, from)->state != TG_SHM_KEY_USED) {
        m->bad++;
    }
}


static void
test_compacts_tombstones_away(void)
{
    tg_shm_keys_t *t = test_keys_new(tg_shm_keys_capacity_for(300));
    test_moves_t m = {0, 0, t};
    uint32_t i, moved, before;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* Long chains (ten keys a home), then every third key deleted. */
    for (i = 0; i < 300; i++) {
        test_fill(&k, i % 30, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    }
    for (i = 0; i < 300; i += 3) {
        test_digest(i % 30, i, k.digest);
        CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    }
    before = atomic_load(&t->max_probe);
    CU_ASSERT(atomic_load(&t->tombstones) > 0);
    moved = tg_shm_keys_compact(t, test_moved, &m);
    CU_ASSERT(moved > 0);
    CU_ASSERT_EQUAL(m.calls, moved);
    CU_ASSERT_EQUAL(m.bad, 0);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 200);
    CU_ASSERT(atomic_load(&t->max_probe) <= before);
    CU_ASSERT_EQUAL(atomic_load(&t->moving) % 2, 0);
    CU_ASSERT(atomic_load(&t->moving) > 0);
    for (i = 0; i < 300; i++) {
        test_digest(i % 30, i, k.digest);
        if (i % 3 == 0) {
            CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL),
                            TG_SHM_MISS);
        } else {
            CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL),
                            TG_SHM_OK);
            CU_ASSERT(test_check(&out, i % 30, i));
        }
    }
    /* Nothing left to move. */
    CU_ASSERT_EQUAL(tg_shm_keys_compact(t, NULL, NULL), 0);
    test_keys_free(t);
}


static void
test_repairs_cut_short_move(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    uint32_t s[3], i;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 3; i++) {
        test_fill(&k, 4, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s[i]), TG_SHM_OK);
    }
    test_digest(4, 0, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);

    /*
     * An admin died moving key 2 into slot s[0]: the new copy is written,
     * the old one not yet cleared, <moving> is odd.
     */
    atomic_fetch_add(&t->moving, 1);
    test_fill(tg_shm_keys_slot(t, s[0]), 4, 2, 22);
    tg_shm_keys_slot(t, s[0])->state = TG_SHM_KEY_USED;
    test_digest(4, 9, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_BUSY);

    tg_shm_keys_repair(t);
    CU_ASSERT_EQUAL(atomic_load(&t->moving) % 2, 0);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_MISS);
    test_digest(4, 2, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, &i), TG_SHM_OK);
    CU_ASSERT_EQUAL(i, s[0]);
    CU_ASSERT_EQUAL(out.user, 22);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, s[2])->state, TG_SHM_KEY_EMPTY);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 2);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);

    /* The next delete removes the key for good. */
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_MISS);
    test_keys_free(t);
}


static void
test_full_at_load_bound(void)
{
    tg_shm_keys_t *t = test_keys_new(10);
    tg_shm_key_t k;
    uint32_t i, s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* 90% of 10 slots: nine keys fit, the tenth does not. */
    for (i = 0; i < 9; i++) {
        test_fill(&k, i, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    }
    test_fill(&k, 9, 9, 9);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_FULL);
    CU_ASSERT_EQUAL(tg_shm_keys_place(t, k.digest, &s), TG_SHM_FULL);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 9);

    /* Updates of present keys still go through at the bound. */
    test_fill(&k, 4, 4, 44);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);

    /*
     * A delete frees room, though its tombstone may still count while a
     * chain needs it; a compaction then clears it.
     */
    CU_ASSERT_EQUAL(tg_shm_keys_delete(t, k.digest), TG_SHM_OK);
    tg_shm_keys_compact(t, NULL, NULL);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 0);
    test_fill(&k, 9, 9, 9);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    test_fill(&k, 10, 10, 10);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_FULL);
    test_keys_free(t);

    /* A table sized for N keys takes N random ones. */
    t = test_keys_new(tg_shm_keys_capacity_for(1000));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 1000; i++) {
        test_fill(&k, 1000 + i, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    }
    test_keys_free(t);
}


static void
test_repairs_odd_slot(void)
{
    tg_shm_keys_t *t = test_keys_new(64);
    tg_shm_key_t k, out;
    uint32_t s0, s1, cursor;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    test_fill(&k, 8, 0, 1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s0), TG_SHM_OK);
    test_fill(&k, 8, 1, 1);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s1), TG_SHM_OK);

    /* An admin died in the middle of rewriting the first key. */
    atomic_fetch_add(&tg_shm_keys_slot(t, s0)->seq, 1);
    test_digest(8, 0, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_BUSY);
    /* The second key's chain runs through the odd slot: fail closed too. */
    test_digest(8, 1, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_BUSY);
    cursor = 0;
    CU_ASSERT_EQUAL(tg_shm_keys_next(t, &cursor, &out), TG_SHM_BUSY);
    CU_ASSERT_EQUAL(cursor, s0 + 1);

    tg_shm_keys_repair(t);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_keys_slot(t, s0)->seq) % 2, 0);
    CU_ASSERT_EQUAL(tg_shm_keys_slot(t, s0)->state, TG_SHM_KEY_TOMB);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);
    CU_ASSERT_EQUAL(atomic_load(&t->tombstones), 1);
    test_digest(8, 0, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_MISS);
    test_digest(8, 1, k.digest);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_OK);
    CU_ASSERT(test_check(&out, 8, 1));

    /* The republish puts the first key back. */
    test_fill(&k, 8, 0, 2);
    CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, &s0), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_keys_lookup(t, k.digest, &out, NULL), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.user, 2);
    test_keys_free(t);
}


static void
test_iterates_every_key(void)
{
    tg_shm_keys_t *t = test_keys_new(tg_shm_keys_capacity_for(200));
    uint8_t seen[200];
    uint32_t i, cursor = 0, n = 0;
    tg_shm_key_t k, out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 200; i++) {
        test_fill(&k, i / 3, i, i);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &k, NULL), TG_SHM_OK);
    }
    memset(seen, 0, sizeof(seen));
    while (tg_shm_keys_next(t, &cursor, &out) == TG_SHM_OK) {
        CU_ASSERT_FATAL(out.key_id < 200);
        CU_ASSERT(test_check(&out, out.key_id / 3, out.key_id));
        seen[out.key_id]++;
        n++;
        /* Deleting the key just returned is allowed. */
        if (out.key_id % 2 == 0) {
            CU_ASSERT_EQUAL(tg_shm_keys_delete(t, out.digest), TG_SHM_OK);
        }
    }
    CU_ASSERT_EQUAL(n, 200);
    for (i = 0; i < 200; i++) {
        CU_ASSERT_EQUAL(seen[i], 1);
    }
    CU_ASSERT_EQUAL(atomic_load(&t->used), 100);
    test_keys_free(t);
}


/* Match <model> (NUL-terminated here for brevity) against the table. */
static uint64_t
test_mask(const tg_shm_models_t *m, const char *model)
{
    uint64_t mask = ~0ull;

    CU_ASSERT_EQUAL(tg_shm_models_match(m, model, strlen(model), &mask),
                    TG_SHM_OK);
    return mask;
}


static void
test_models_glob(void)
{
    static const char *const pats[] = {
        "claude-3-haiku", /* 0: exact */
        "claude-*",       /* 1: prefix */
        "*-mini",         /* 2: suffix */
        "gpt-*o*-mini",   /* 3: prefix, middle, suffix */
        "a*b*c",          /* 4 */
        "*",              /* 5: everything */
        "",               /* 6: only the empty name */
        "**x**",          /* 7: stars in a row */
        "ab*ba",          /* 8: head and tail may not overlap */
    };
    tg_shm_models_t *m = tg_shm_models_init(test_map(tg_shm_models_size()));

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, NELEMS(pats)), TG_SHM_OK);
    CU_ASSERT_EQUAL(test_mask(m, "claude-3-haiku"),
                    1u << 0 | 1u << 1 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "claude-3-haikU"), 1u << 1 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "claude-"), 1u << 1 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "claude"), 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "gpt-4o-mini"), 1u << 2 | 1u << 3 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "gpt-4-mini"), 1u << 2 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "abc"), 1u << 4 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "aXbYbZc"), 1u << 4 | 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "acb"), 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, ""), 1u << 5 | 1u << 6);
    CU_ASSERT_EQUAL(test_mask(m, "x"), 1u << 5 | 1u << 7);
    CU_ASSERT_EQUAL(test_mask(m, "aba"), 1u << 5);
    CU_ASSERT_EQUAL(test_mask(m, "abba"), 1u << 5 | 1u << 8);

    /* A zero-length name may come as a NULL pointer. */
    {
        uint64_t mask = 0;

        CU_ASSERT_EQUAL(tg_shm_models_match(m, NULL, 0, &mask), TG_SHM_OK);
        CU_ASSERT_EQUAL(mask, 1u << 5 | 1u << 6);
    }
    munmap(m, tg_shm_models_size());
}


static void
test_models_long_names_without_nul(void)
{
    static const char *const pats[] = {"claude-*", "*z", "*a*a*a*a*b", "*q*"};
    size_t len = 1 << 20;
    tg_shm_models_t *m = tg_shm_models_init(test_map(tg_shm_models_size()));
    char *name = malloc(len);
    uint64_t mask = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, NELEMS(pats)), TG_SHM_OK);

    /*
     * A megabyte of 'a' with no NUL after it (ASan catches a read past the
     * end); the many-star pattern would backtrack quadratically in a naive
     * matcher.
     */
    memset(name, 'a', len);
    memcpy(name, "claude-", 7);
    CU_ASSERT_EQUAL(tg_shm_models_match(m, name, len, &mask), TG_SHM_OK);
    CU_ASSERT_EQUAL(mask, 1u << 0);
    name[len - 1] = 'z';
    CU_ASSERT_EQUAL(tg_shm_models_match(m, name, len, &mask), TG_SHM_OK);
    CU_ASSERT_EQUAL(mask, 1u << 0 | 1u << 1);
    name[len - 1] = 'b';
    CU_ASSERT_EQUAL(tg_shm_models_match(m, name, len, &mask), TG_SHM_OK);
    CU_ASSERT_EQUAL(mask, 1u << 0 | 1u << 2);

    /* The length is honoured even when the bytes after it would match. */
    CU_ASSERT_EQUAL(tg_shm_models_match(m, "qq", 0, &mask), TG_SHM_OK);
    CU_ASSERT_EQUAL(mask, 0);
    CU_ASSERT_EQUAL(tg_shm_models_match(m, "xq", 1, &mask), TG_SHM_OK);
    CU_ASSERT_EQUAL(mask, 0);
    free(name);
    munmap(m, tg_shm_models_size());
}


static void
test_models_set_and_find(void)
{
    char longest[TG_SHM_MODELS_PATTERN], too_long[TG_SHM_MODELS_PATTERN + 1];
    const char *pats[TG_SHM_MODELS_MAX + 1];
    char names[TG_SHM_MODELS_MAX + 1][16];
    tg_shm_models_t *m = tg_shm_models_init(test_map(tg_shm_models_size()));
    tg_shm_key_t k;
    uint64_t mask;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (i = 0; i <= TG_SHM_MODELS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "model-%u*", i);
        pats[i] = names[i];
    }
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, TG_SHM_MODELS_MAX + 1),
                    TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, TG_SHM_MODELS_MAX), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-0*"), 0);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-63*"), 63);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-6"), -1);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-63"), -1);
    CU_ASSERT_EQUAL(test_mask(m, "model-63-x"), 1ull << 63 | 1ull << 6);

    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    memset(too_long, 'y', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    pats[0] = longest;
    pats[1] = too_long;
    /* A refused set leaves the table as it was. */
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, 2), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-1*"), 1);
    pats[1] = NULL;
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, 2), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, 1), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, longest), 0);
    CU_ASSERT_EQUAL(tg_shm_models_find(m, "model-1*"), -1);
    CU_ASSERT_EQUAL(test_mask(m, longest), 1);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, NULL, 0), TG_SHM_OK);
    CU_ASSERT_EQUAL(test_mask(m, longest), 0);

    /* The allow rule: an empty bitmap allows all, else one bit must match. */
    memset(&k, 0, sizeof(k));
    CU_ASSERT(tg_shm_keys_allows_model(&k, 0));
    k.models = 1u << 3;
    CU_ASSERT(!tg_shm_keys_allows_model(&k, 0));
    CU_ASSERT(!tg_shm_keys_allows_model(&k, 1u << 2));
    CU_ASSERT(tg_shm_keys_allows_model(&k, 1u << 3 | 1u << 9));

    /* An odd seq (writer died) fails closed until the next set. */
    atomic_fetch_add(&m->seq, 1);
    mask = 7;
    CU_ASSERT_EQUAL(tg_shm_models_match(m, "x", 1, &mask), TG_SHM_BUSY);
    CU_ASSERT_EQUAL(mask, 0);
    CU_ASSERT_EQUAL(tg_shm_models_set(m, pats, 1), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&m->seq) % 2, 0);
    CU_ASSERT_EQUAL(test_mask(m, longest), 1);
    munmap(m, tg_shm_models_size());
}


static tg_shm_users_t *
test_users_new(uint32_t capacity)
{
    void *mem = test_map(tg_shm_users_size(capacity));

    return mem == NULL ? NULL : tg_shm_users_init(mem, capacity);
}


static void
test_users_free(tg_shm_users_t *t)
{
    munmap(t, tg_shm_users_size(t->capacity));
}


/* Unix seconds of <y>-<m>-<d> <hh>:<mm>:<ss> UTC. */
static uint64_t
test_utc(int y, int m, int d, int hh, int mm, int ss)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return (uint64_t)timegm(&tm);
}


static void
test_users_config_and_counters(void)
{
    tg_shm_users_t *t = test_users_new(8);
    tg_shm_user_t cfg, out;
    uint64_t now = test_utc(2025, 3, 10, 12, 0, 0);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 8, &out), TG_SHM_MISS);
    CU_ASSERT_PTR_NULL(tg_shm_users_get(t, 8));
    memset(&cfg, 0, sizeof(cfg));
    cfg.user_id = 42;
    cfg.period = TG_SHM_USER_PERIOD_DAY;
    cfg.quota_tokens = 1000;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 8, &cfg), TG_SHM_INVAL);
    cfg.period = 3;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_INVAL);
    cfg.period = TG_SHM_USER_PERIOD_DAY;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);

    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.user_id, 42);
    CU_ASSERT_EQUAL(out.quota_tokens, 1000);
    CU_ASSERT_EQUAL(out.status, TG_SHM_USER_ACTIVE);
    CU_ASSERT(!tg_shm_users_over_quota(t, 2, &out, now));

    tg_shm_users_charge(t, 2, 600, now);
    CU_ASSERT(!tg_shm_users_over_quota(t, 2, &out, now));
    tg_shm_users_charge(t, 2, 400, now + 1);
    CU_ASSERT(tg_shm_users_over_quota(t, 2, &out, now));
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&out.used_tokens), 1000);
    CU_ASSERT_EQUAL(atomic_load(&out.requests), 2);
    CU_ASSERT_EQUAL(atomic_load(&out.period_start),
                    test_utc(2025, 3, 10, 0, 0, 0));

    /* A config update keeps the counters; a raised quota lets it pass. */
    cfg.quota_tokens = 5000;
    cfg.status = TG_SHM_USER_DISABLED;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.status, TG_SHM_USER_DISABLED);
    CU_ASSERT_EQUAL(atomic_load(&out.used_tokens), 1000);
    CU_ASSERT(!tg_shm_users_over_quota(t, 2, &out, now));
    CU_ASSERT_EQUAL(atomic_load(&t->used), 1);

    /* Another user in the slot starts from zero. */
    cfg.user_id = 43;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&out.used_tokens), 0);
    CU_ASSERT_EQUAL(atomic_load(&out.requests), 0);

    /* Unlimited quota, unused and out-of-range slots. */
    cfg.quota_tokens = 0;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_OK);
    tg_shm_users_charge(t, 2, UINT32_MAX, now);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT(!tg_shm_users_over_quota(t, 2, &out, now));
    tg_shm_users_charge(t, 3, 10, now);
    tg_shm_users_charge(t, 99, 10, now);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 3)->used_tokens), 0);

    /* Restore from the database, then delete. */
    CU_ASSERT_EQUAL(
        tg_shm_users_reset(t, 2, test_utc(2025, 3, 10, 0, 0, 0), 777, 5),
        TG_SHM_OK);
    tg_shm_users_charge(t, 2, 3, now);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 2)->used_tokens), 780);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 2)->requests), 6);
    CU_ASSERT_EQUAL(tg_shm_users_del(t, 2), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_users_del(t, 2), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(atomic_load(&t->used), 0);

    /* An odd seq fails closed until admin rewrites the user. */
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 4, &cfg), TG_SHM_OK);
    atomic_fetch_add(&tg_shm_users_get(t, 4)->seq, 1);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 4, &out), TG_SHM_BUSY);
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 4, &cfg), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 4, &out), TG_SHM_OK);
    test_users_free(t);
}


static void
test_users_period_rollover(void)
{
    tg_shm_users_t *t = test_users_new(4);
    tg_shm_user_t cfg, out;
    uint64_t eve = test_utc(2024, 2, 29, 23, 59, 59);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&cfg, 0, sizeof(cfg));
    cfg.user_id = 1;
    cfg.period = TG_SHM_USER_PERIOD_DAY;
    cfg.quota_tokens = 100;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 0, &cfg), TG_SHM_OK);
    cfg.user_id = 2;
    cfg.period = TG_SHM_USER_PERIOD_MONTH;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 1, &cfg), TG_SHM_OK);
    cfg.user_id = 3;
    cfg.period = TG_SHM_USER_PERIOD_NONE;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 2, &cfg), TG_SHM_OK);

    tg_shm_users_charge(t, 0, 100, eve);
    tg_shm_users_charge(t, 1, 100, eve);
    tg_shm_users_charge(t, 2, 100, eve);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 0, &out), TG_SHM_OK);
    CU_ASSERT(tg_shm_users_over_quota(t, 0, &out, eve));
    /* At midnight the day is over: the quota is free before any charge. */
    CU_ASSERT(!tg_shm_users_over_quota(t, 0, &out, eve + 1));
    tg_shm_users_charge(t, 0, 30, eve + 1);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 0)->used_tokens), 30);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 0)->requests), 1);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 0)->period_start),
                    eve + 1);
    /* A late charge stamped before the rollover stays in the new period. */
    tg_shm_users_charge(t, 0, 5, eve);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 0)->used_tokens), 35);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 0)->period_start),
                    eve + 1);

    /* 2024-02-29 23:59:59 + 1 s is also a new month. */
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 1, &out), TG_SHM_OK);
    CU_ASSERT(tg_shm_users_over_quota(t, 1, &out, eve));
    tg_shm_users_charge(t, 1, 1, eve + 1);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 1)->used_tokens), 1);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 1)->period_start),
                    test_utc(2024, 3, 1, 0, 0, 0));
    tg_shm_users_charge(t, 1, 1, test_utc(2024, 3, 31, 23, 0, 0));
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 1)->used_tokens), 2);

    /* Without a period nothing rolls over. */
    tg_shm_users_charge(t, 2, 1, eve + 86400 * 400);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 2)->used_tokens), 101);
    CU_ASSERT_EQUAL(tg_shm_users_read(t, 2, &out), TG_SHM_OK);
    CU_ASSERT(tg_shm_users_over_quota(t, 2, &out, eve + 86400 * 400));
    test_users_free(t);
}


static void
test_users_month_starts(void)
{
    uint64_t day, bad = 0;

    /* Every day from 1970 to 2200 against gmtime and timegm. */
    for (day = 0; day < 230 * 366; day++) {
        time_t now = (time_t)(day * 86400 + 86399);
        struct tm tm;

        gmtime_r(&now, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        if (tg_shm_users_period_start(TG_SHM_USER_PERIOD_MONTH,
                                      (uint64_t)now) != (uint64_t)timegm(&tm)) {
            bad++;
        }
        if (tg_shm_users_period_start(TG_SHM_USER_PERIOD_DAY, (uint64_t)now) !=
            day * 86400) {
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(tg_shm_users_period_start(TG_SHM_USER_PERIOD_NONE, 12345),
                    0);
}


static void
test_users_concurrent_charges(void)
{
    enum { PROCS = 4, CHARGES = 20000 };
    tg_shm_users_t *t = test_users_new(2);
    uint64_t now = test_utc(2025, 1, 31, 23, 59, 59);
    tg_shm_user_t cfg;
    pid_t pids[PROCS];
    int i, j, st, ok = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&cfg, 0, sizeof(cfg));
    cfg.user_id = 7;
    cfg.period = TG_SHM_USER_PERIOD_MONTH;
    CU_ASSERT_EQUAL(tg_shm_users_set(t, 1, &cfg), TG_SHM_OK);
    tg_shm_users_charge(t, 1, 1000, now);

    /* All processes cross into February together: one rollover, no loss. */
    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (j = 0; j < CHARGES; j++) {
                tg_shm_users_charge(t, 1, 2, now + 1 + (uint64_t)(j % 2));
            }
            _exit(0);
        }
        CU_ASSERT(pids[i] > 0);
    }
    for (i = 0; i < PROCS; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i] &&
            WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        }
    }
    CU_ASSERT_EQUAL(ok, PROCS);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 1)->requests),
                    PROCS * CHARGES);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_users_get(t, 1)->used_tokens),
                    2 * PROCS * CHARGES);
    test_users_free(t);
}


/*
 * The stress test.  Keys 0..STABLE-1 are always present and updated in
 * place; keys STABLE..KEYS-1 are inserted, updated and deleted at random.
 * Key k's home group is k % GROUPS, so every chain mixes stable and
 * churning keys (four to a home slot, plus neighbours' spill-over).
 */
enum {
    STRESS_READERS = 8,
    STRESS_STABLE = 256,
    STRESS_KEYS = 768,
    STRESS_GROUPS = 192,
    STRESS_MS = 1500,
    STRESS_DEADLINE_MS = 15000
};

typedef struct {
    uint64_t lookups; /* calls to tg_shm_keys_lookup */
    uint64_t hits;    /* TG_SHM_OK */
    uint64_t busy;    /* TG_SHM_BUSY (allowed: fail closed) */
    uint64_t torn;    /* a copy mixing two versions: must stay 0 */
    uint64_t lost;    /* a stable key reported missing: must stay 0 */
    uint64_t back;    /* a stable key older than one seen before: 0 */
    uint64_t changes; /* stable-key versions seen to advance */
} test_stress_t;


static uint64_t
test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static uint64_t
test_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


static void
test_stress_reader(const tg_shm_keys_t *t, _Atomic int *stop, int fd,
                   uint64_t seed)
{
    uint32_t last[STRESS_STABLE];
    uint64_t deadline = test_now_ms() + STRESS_DEADLINE_MS;
    test_stress_t r;
    tg_shm_key_t out;
    uint8_t d[32];
    ssize_t n;

    memset(&r, 0, sizeof(r));
    memset(last, 0, sizeof(last));
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        uint32_t k = (uint32_t)(test_rand(&seed) % STRESS_KEYS);
        int rc;

        if ((r.lookups & 1023) == 0 && test_now_ms() > deadline) {
            break;
        }
        test_digest(k % STRESS_GROUPS, k, d);
        rc = tg_shm_keys_lookup(t, d, &out, NULL);
        r.lookups++;
        if (rc == TG_SHM_OK) {
            r.hits++;
            if (!test_check(&out, k % STRESS_GROUPS, k)) {
                r.torn++;
            } else if (k < STRESS_STABLE) {
                if (out.user < last[k]) {
                    r.back++;
                } else if (out.user > last[k]) {
                    r.changes++;
                }
                last[k] = out.user;
            }
        } else if (rc == TG_SHM_BUSY) {
            r.busy++;
        } else if (k < STRESS_STABLE) {
            r.lost++;
        }
    }
    n = write(fd, &r, sizeof(r));
    _exit(n == (ssize_t)sizeof(r) && r.torn == 0 && r.lost == 0 && r.back == 0
              ? 0
              : 1);
}


/*
 * Fork <n> readers running <fn>(<arg>, <fd>, seed) into <pids>; each
 * reports one test_stress_t on the pipe <fds>.  Closes the write end.
 */
static void
test_fork_readers(pid_t *pids, int n, int fds[2],
                  void (*fn)(void *arg, int fd, uint64_t seed), void *arg)
{
    int i;

    for (i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            fn(arg, fds[1], 0x243f6a8885a308d3ull + (uint64_t)i * 7919);
            _exit(2);
        }
        CU_ASSERT(pids[i] > 0);
    }
    close(fds[1]);
}


/*
 * Reap the <n> readers in <pids> and add their reports from <fd> into
 * <*sum>.  Returns how many exited with status 0.
 */
static int
test_reap_readers(const pid_t *pids, int n, int fd, test_stress_t *sum)
{
    test_stress_t r;
    int i, st, ok = 0;

    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < n; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i] &&
            WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        }
    }
    while (read(fd, &r, sizeof(r)) == (ssize_t)sizeof(r)) {
        sum->lookups += r.lookups;
        sum->hits += r.hits;
        sum->busy += r.busy;
        sum->torn += r.torn;
        sum->lost += r.lost;
        sum->back += r.back;
        sum->changes += r.changes;
    }
    close(fd);
    return ok;
}


/* The stress writer's state, in the parent's memory. */
typedef struct {
    tg_shm_keys_t *t;
    _Atomic int *stop;         /* in the shared mapping */
    bool present[STRESS_KEYS]; /* the writer's record of the table */
    uint64_t seed;
    uint32_t c;      /* version counter */
    uint64_t writes; /* upserts and deletes */
    uint64_t full;   /* TG_SHM_FULL for a new key (allowed) */
    uint64_t bad;    /* any other failure */
    uint64_t moved;  /* keys moved by compactions */
} test_writer_t;


static void
test_stress_reader_main(void *arg, int fd, uint64_t seed)
{
    test_writer_t *w = arg;

    test_stress_reader(w->t, w->stop, fd, seed);
}


/* One stable update, then one churning insert, update or delete. */
static void
test_stress_write(test_writer_t *w)
{
    uint64_t x = test_rand(&w->seed);
    uint32_t k = (uint32_t)(x % STRESS_STABLE);
    tg_shm_key_t e;
    int rc;

    test_fill(&e, k % STRESS_GROUPS, k, w->c++);
    w->bad += tg_shm_keys_upsert(w->t, &e, NULL) != TG_SHM_OK;
    k = STRESS_STABLE + (uint32_t)((x >> 20) % (STRESS_KEYS - STRESS_STABLE));
    test_fill(&e, k % STRESS_GROUPS, k, w->c++);
    if (w->present[k] && (x >> 40) % 2 == 0) {
        w->bad += tg_shm_keys_delete(w->t, e.digest) != TG_SHM_OK;
        w->present[k] = false;
    } else {
        rc = tg_shm_keys_upsert(w->t, &e, NULL);
        if (rc == TG_SHM_OK) {
            w->present[k] = true;
        } else if (rc == TG_SHM_FULL && !w->present[k]) {
            w->full++;
        } else {
            w->bad++;
        }
    }
    w->writes += 2;

    /* Now and then move keys under the readers' feet. */
    if (w->writes % 4096 == 0) {
        w->moved += tg_shm_keys_compact(w->t, NULL, NULL);
    }
}


static void
test_stress_readers_see_no_torn_or_lost_key(void)
{
    uint32_t cap = tg_shm_keys_capacity_for(1024);
    size_t size = TG_SHM_CACHELINE + tg_shm_keys_size(cap);
    char *mem = test_map(size);
    pid_t pids[STRESS_READERS];
    uint32_t k, used = 0;
    test_stress_t sum;
    test_writer_t w;
    uint64_t start;
    int fds[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    memset(&w, 0, sizeof(w));
    w.stop = (_Atomic int *)mem;
    w.t = tg_shm_keys_init(mem + TG_SHM_CACHELINE, cap);
    w.seed = 0x13198a2e03707344ull;
    w.c = 1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(w.t);
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);

    /* The stable keys and half the churning ones go in before any reader. */
    for (k = 0; k < STRESS_KEYS; k++) {
        tg_shm_key_t e;

        w.present[k] = k < STRESS_STABLE || k % 2 == 0;
        if (w.present[k]) {
            test_fill(&e, k % STRESS_GROUPS, k, w.c++);
            CU_ASSERT_EQUAL(tg_shm_keys_upsert(w.t, &e, NULL), TG_SHM_OK);
        }
    }
    test_fork_readers(pids, STRESS_READERS, fds, test_stress_reader_main, &w);
    start = test_now_ms();
    while ((w.writes & 255) != 0 || test_now_ms() - start < STRESS_MS) {
        test_stress_write(&w);
    }
    atomic_store(w.stop, 1);

    CU_ASSERT_EQUAL(test_reap_readers(pids, STRESS_READERS, fds[0], &sum),
                    STRESS_READERS);
    CU_ASSERT_EQUAL(w.bad, 0);
    CU_ASSERT_EQUAL(sum.torn, 0);
    CU_ASSERT_EQUAL(sum.lost, 0);
    CU_ASSERT_EQUAL(sum.back, 0);
    CU_ASSERT(w.writes > 10000);
    CU_ASSERT(sum.lookups > 100000);
    CU_ASSERT(sum.changes > 1000);
    CU_ASSERT(w.moved > 100);
    if (getenv("TG_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "\nstress: %llu writes, %llu moves, %llu full, %llu lookups, "
                "%llu hits, %llu busy, %llu changes seen\n",
                (unsigned long long)w.writes, (unsigned long long)w.moved,
                (unsigned long long)w.full, (unsigned long long)sum.lookups,
                (unsigned long long)sum.hits, (unsigned long long)sum.busy,
                (unsigned long long)sum.changes);
    }

    /* After the storm the table agrees with the writer's own record. */
    for (k = 0; k < STRESS_KEYS; k++) {
        tg_shm_key_t e;
        uint8_t d[32];

        test_digest(k % STRESS_GROUPS, k, d);
        CU_ASSERT_EQUAL(tg_shm_keys_lookup(w.t, d, &e, NULL),
                        w.present[k] ? TG_SHM_OK : TG_SHM_MISS);
        used += w.present[k];
    }
    CU_ASSERT_EQUAL(atomic_load(&w.t->used), used);
    munmap(mem, size);
}


/*
 * The move test: MOVE_KEYS keys share one home slot and rotate through
 * their chain.  Each round deletes the key at the front, compacts (every
 * other key moves one slot towards home) and inserts the deleted key at
 * the back.  <pres>[k] is odd while key k is being deleted or absent, so
 * a reader knows which keys were present during its whole lookup.
 */
enum { MOVE_READERS = 4, MOVE_KEYS = 8, MOVE_MS = 800 };

/* The shared control line; the key table follows it in the mapping. */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic int stop; /* set at the end */
    _Atomic uint32_t pres[MOVE_KEYS]; /* odd while key k may be absent */
} test_move_ctl_t;


static void
test_move_reader(void *arg, int fd, uint64_t seed)
{
    const test_move_ctl_t *ctl = arg;
    const tg_shm_keys_t *t = (const tg_shm_keys_t *)(ctl + 1);
    uint64_t deadline = test_now_ms() + STRESS_DEADLINE_MS;
    test_stress_t r;
    tg_shm_key_t out;
    uint8_t d[32];
    ssize_t n;

    memset(&r, 0, sizeof(r));
    while (!atomic_load_explicit(&ctl->stop, memory_order_relaxed)) {
        uint32_t k = (uint32_t)(test_rand(&seed) % MOVE_KEYS);
        uint32_t p1, p2;
        int rc;

        if ((r.lookups & 1023) == 0 && test_now_ms() > deadline) {
            break;
        }
        test_digest(1, k, d);
        p1 = atomic_load_explicit(&ctl->pres[k], memory_order_acquire);
        rc = tg_shm_keys_lookup(t, d, &out, NULL);
        atomic_thread_fence(memory_order_acquire);
        p2 = atomic_load_explicit(&ctl->pres[k], memory_order_relaxed);
        r.lookups++;
        if (rc == TG_SHM_OK) {
            r.hits++;
            r.torn += !test_check(&out, 1, k);
        } else if (rc == TG_SHM_BUSY) {
            r.busy++;
        } else if (p1 == p2 && (p1 & 1) == 0) {
            r.lost++;
        }
    }
    n = write(fd, &r, sizeof(r));
    _exit(n == (ssize_t)sizeof(r) && r.torn == 0 && r.lost == 0 ? 0 : 1);
}


static void
test_move_readers_find_moving_keys(void)
{
    size_t size = sizeof(test_move_ctl_t) + tg_shm_keys_size(64);
    char *mem = test_map(size);
    uint32_t order[MOVE_KEYS], k;
    uint64_t rounds = 0, moved = 0, bad = 0, start;
    pid_t pids[MOVE_READERS];
    test_move_ctl_t *ctl;
    test_stress_t sum;
    tg_shm_keys_t *t;
    int fds[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    ctl = (test_move_ctl_t *)mem;
    t = tg_shm_keys_init(ctl + 1, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    for (k = 0; k < MOVE_KEYS; k++) {
        tg_shm_key_t e;

        test_fill(&e, 1, k, k);
        CU_ASSERT_EQUAL(tg_shm_keys_upsert(t, &e, NULL), TG_SHM_OK);
        order[k] = k;
    }
    test_fork_readers(pids, MOVE_READERS, fds, test_move_reader, ctl);

    start = test_now_ms();
    while ((rounds & 255) != 0 || test_now_ms() - start < MOVE_MS) {
        uint32_t front = order[0];
        tg_shm_key_t e;

        atomic_fetch_add_explicit(&ctl->pres[front], 1, memory_order_release);
        test_digest(1, front, e.digest);
        bad += tg_shm_keys_delete(t, e.digest) != TG_SHM_OK;
        moved += tg_shm_keys_compact(t, NULL, NULL);
        test_fill(&e, 1, front, (uint32_t)rounds);
        bad += tg_shm_keys_upsert(t, &e, NULL) != TG_SHM_OK;
        atomic_fetch_add_explicit(&ctl->pres[front], 1, memory_order_release);
        memmove(order, order + 1, sizeof(order) - sizeof(order[0]));
        order[MOVE_KEYS - 1] = front;
        rounds++;
    }
    atomic_store(&ctl->stop, 1);

    CU_ASSERT_EQUAL(test_reap_readers(pids, MOVE_READERS, fds[0], &sum),
                    MOVE_READERS);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(sum.torn, 0);
    CU_ASSERT_EQUAL(sum.lost, 0);
    /* Every round moves every key but the one deleted. */
    CU_ASSERT_EQUAL(moved, rounds * (MOVE_KEYS - 1));
    CU_ASSERT(sum.lookups > 10000);
    if (getenv("TG_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "\nmove: %llu rounds, %llu moves, %llu lookups, %llu hits, "
                "%llu busy\n",
                (unsigned long long)rounds, (unsigned long long)moved,
                (unsigned long long)sum.lookups, (unsigned long long)sum.hits,
                (unsigned long long)sum.busy);
    }
    munmap(mem, size);
}


/* Register the "shm_keys" suite.  0 on success. */
int
tg_test_shm_keys_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"lays out 96-byte key slots after a one-line header", test_sizes},
        {"refuses a NULL, misaligned or empty table",
         test_init_rejects_bad_arguments},
        {"inserts, finds, updates and deletes a key",
         test_insert_lookup_update_delete},
        {"finds every key of a chain sharing one home slot",
         test_chain_of_colliding_keys},
        {"reuses a tombstone for the next key on its chain",
         test_tombstone_reuse},
        {"reclaims tombstones that end a chain",
         test_reclaims_trailing_tombstones},
        {"empties a tombstone mid-run when no chain needs it",
         test_purges_unneeded_tombstones_mid_run},
        {"compacts every tombstone away and keeps every key",
         test_compacts_tombstones_away},
        {"repairs a key move cut short by a crash",
         test_repairs_cut_short_move},
        {"refuses new keys past 90% load but still updates",
         test_full_at_load_bound},
        {"fails closed on a slot left odd and repairs it",
         test_repairs_odd_slot},
        {"iterates every key once, deletions included",
         test_iterates_every_key},
        {"matches exact, prefix, suffix and multi-star patterns",
         test_models_glob},
        {"matches megabyte model names without a NUL in linear time",
         test_models_long_names_without_nul},
        {"refuses too many or too long patterns and finds them by text",
         test_models_set_and_find},
        {"publishes user quotas and charges their counters",
         test_users_config_and_counters},
        {"rolls daily and monthly periods over at UTC boundaries",
         test_users_period_rollover},
        {"computes the start of every month from 1970 to 2200",
         test_users_month_starts},
        {"loses no charge when processes roll a period over together",
         test_users_concurrent_charges},
        {"never shows 8 reader processes a torn or lost key",
         test_stress_readers_see_no_torn_or_lost_key},
        {"keeps finding keys while compaction moves them",
         test_move_readers_find_moving_keys},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("shm_keys", NULL, NULL);
    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < NELEMS(tests); i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
