/*
 * tests/unit/test_shm_sticky.c
 *      CUnit suite "shm_sticky": the sticky-session table in shared memory.
 *
 * NOTES
 *      Tables live in anonymous MAP_SHARED mappings, as in production.
 *      Keys are chosen by their home slot (the low bits) so the tests can
 *      fill one probe window on purpose.  The stress test forks writers
 *      and readers over a table much smaller than the key set, so slots
 *      are taken from each other all the time; every key's endpoint is a
 *      function of the key, so a reader that ever gets another key's value
 *      (a torn slot accepted) sees the wrong endpoint.  Children report
 *      through the shared region and leave with _exit.
 */
#include "shm/sticky.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TG_TEST_ST_NOW    1800000000000ull /* simulated wall ms */
#define TG_TEST_ST_PROCS  4                /* stress: contending processes */
#define TG_TEST_ST_KEYS   512              /* stress: distinct keys */
#define TG_TEST_ST_SLOTS  64               /* stress: table slots */
#define TG_TEST_ST_ROUNDS 200000           /* stress: operations per child */


static tg_shm_sticky_t *
st_new(uint32_t capacity)
{
    void *mem = mmap(NULL, tg_shm_sticky_size(capacity), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return mem == MAP_FAILED ? NULL : tg_shm_sticky_init(mem, capacity);
}


static void
st_free(tg_shm_sticky_t *t)
{
    if (t != NULL) {
        munmap(t, tg_shm_sticky_size(t->capacity));
    }
}


/* A key whose home slot is <slot> of a table with <mask>, told apart from
 * others by <n> in its high bits. */
static uint64_t
st_key(uint32_t mask, uint32_t slot, uint64_t n)
{
    return ((n + 1) * 0x9e3779b97f4a7c15ull & ~(uint64_t)mask) | slot;
}


static void
test_sizes_and_bad_arguments(void)
{
    uint64_t buf[64] __attribute__((aligned(64)));
    tg_shm_sticky_t *t;
    uint32_t ep;

    CU_ASSERT_EQUAL(tg_shm_sticky_size(1024), 64 + 1024 * 16);
    CU_ASSERT_EQUAL(tg_shm_sticky_size(1000), 0);
    CU_ASSERT_EQUAL(tg_shm_sticky_size(4), 0);
    CU_ASSERT_PTR_NULL(tg_shm_sticky_init(NULL, 1024));
    CU_ASSERT_PTR_NULL(tg_shm_sticky_init((char *)buf + 8, 8));
    t = tg_shm_sticky_init(buf, 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->mask, 7);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_set(t, 0, 1, TG_TEST_ST_NOW + 1000, TG_TEST_ST_NOW),
        TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_sticky_set(t, 5, TG_SHM_STICKY_MAX_EP + 1,
                                      TG_TEST_ST_NOW + 1000, TG_TEST_ST_NOW),
                    TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, 0, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_sticky_key(0), 1);
    CU_ASSERT_EQUAL(tg_shm_sticky_key(77), 77);
}


static void
test_set_lookup_renew_and_move(void)
{
    tg_shm_sticky_t *t = st_new(1024);
    uint64_t key = st_key(t->mask, 10, 1), exp;
    uint32_t ep = 0;

    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, key, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_MISS);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_set(t, key, 3, TG_TEST_ST_NOW + 1500, TG_TEST_ST_NOW),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, key, TG_TEST_ST_NOW, &ep, &exp),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(ep, 3);
    /* Expiry is kept in whole seconds, rounded up. */
    CU_ASSERT_EQUAL(exp, TG_TEST_ST_NOW + 2000);
    /* Renew, then move. */
    CU_ASSERT_EQUAL(
        tg_shm_sticky_set(t, key, 3, TG_TEST_ST_NOW + 60000, TG_TEST_ST_NOW),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_lookup(t, key, TG_TEST_ST_NOW + 5000, &ep, &exp),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(exp, TG_TEST_ST_NOW + 60000);
    CU_ASSERT_EQUAL(tg_shm_sticky_set(t, key, 65535, TG_TEST_ST_NOW + 60000,
                                      TG_TEST_ST_NOW),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, key, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(ep, 65535);
    /* Another key of the same home slot is another mapping. */
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, st_key(t->mask, 10, 2),
                                         TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_MISS);
    st_free(t);
}


static void
test_mappings_expire_and_their_slots_are_reused(void)
{
    tg_shm_sticky_t *t = st_new(1024);
    uint64_t a = st_key(t->mask, 20, 1), b = st_key(t->mask, 20, 2);
    uint32_t ep;

    tg_shm_sticky_set(t, a, 1, TG_TEST_ST_NOW + 10000, TG_TEST_ST_NOW);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_lookup(t, a, TG_TEST_ST_NOW + 9999, &ep, NULL),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_lookup(t, a, TG_TEST_ST_NOW + 10000, &ep, NULL),
        TG_SHM_MISS);
    /* b takes a's expired slot (its home slot) rather than the next. */
    CU_ASSERT_EQUAL(tg_shm_sticky_set(t, b, 2, TG_TEST_ST_NOW + 30000,
                                      TG_TEST_ST_NOW + 10000),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->slots[20].key), b);
    CU_ASSERT_EQUAL(atomic_load(&t->slots[21].key), 0);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_lookup(t, b, TG_TEST_ST_NOW + 10000, &ep, NULL),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(ep, 2);
    st_free(t);
}


static void
test_a_full_window_gives_up_the_mapping_expiring_first(void)
{
    tg_shm_sticky_t *t = st_new(1024);
    uint64_t keys[TG_SHM_STICKY_PROBE + 1];
    uint32_t i, ep;

    for (i = 0; i <= TG_SHM_STICKY_PROBE; i++) {
        keys[i] = st_key(t->mask, 1020, i);
    }
    /* The window wraps at the end of the table: slots 1020..1023, 0..3. */
    for (i = 0; i < TG_SHM_STICKY_PROBE; i++) {
        CU_ASSERT_EQUAL(
            tg_shm_sticky_set(t, keys[i], i,
                              TG_TEST_ST_NOW + 100000 - (i == 5 ? 50000 : 0),
                              TG_TEST_ST_NOW),
            TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(atomic_load(&t->slots[3].key), keys[7]);
    CU_ASSERT_EQUAL(tg_shm_sticky_set(t, keys[8], 8, TG_TEST_ST_NOW + 100000,
                                      TG_TEST_ST_NOW),
                    TG_SHM_OK);
    for (i = 0; i <= TG_SHM_STICKY_PROBE; i++) {
        int rc = tg_shm_sticky_lookup(t, keys[i], TG_TEST_ST_NOW, &ep, NULL);

        CU_ASSERT_EQUAL(rc, i == 5 ? TG_SHM_MISS : TG_SHM_OK);
        if (rc == TG_SHM_OK) {
            CU_ASSERT_EQUAL(ep, i);
        }
    }
    st_free(t);
}


static void
test_a_writer_dead_between_its_two_cases_leaves_a_miss(void)
{
    tg_shm_sticky_t *t = st_new(1024);
    uint64_t a = st_key(t->mask, 40, 1), b = st_key(t->mask, 40, 2), k;
    uint32_t ep;

    tg_shm_sticky_set(t, a, 1, TG_TEST_ST_NOW + 1000, TG_TEST_ST_NOW);
    /* A writer for b took a's expired slot (the key CAS) and died before
     * writing the value: b's key sits over a's value. */
    k = a;
    CU_ASSERT_TRUE(atomic_compare_exchange_strong(&t->slots[40].key, &k, b));
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, b, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, a, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_MISS);
    /* The next writer for b repairs the slot in place. */
    CU_ASSERT_EQUAL(
        tg_shm_sticky_set(t, b, 9, TG_TEST_ST_NOW + 5000, TG_TEST_ST_NOW),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_sticky_lookup(t, b, TG_TEST_ST_NOW, &ep, NULL),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(ep, 9);
    CU_ASSERT_EQUAL(atomic_load(&t->slots[41].key), 0);
    /* A torn slot with a live value is also taken over by another key. */
    k = b;
    CU_ASSERT_TRUE(atomic_compare_exchange_strong(&t->slots[40].key, &k, a));
    CU_ASSERT_EQUAL(tg_shm_sticky_set(t, st_key(t->mask, 40, 3), 4,
                                      TG_TEST_ST_NOW + 5000, TG_TEST_ST_NOW),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(atomic_load(&t->slots[40].key), st_key(t->mask, 40, 3));
    st_free(t);
}


/* The endpoint every writer maps key number <n> to. */
static uint32_t
st_ep_of(uint64_t n)
{
    return (uint32_t)((n * 2654435761u) >> 7) & 0xffff;
}


typedef struct {
    _Atomic uint32_t go;
    struct {
        uint64_t hits;
        uint64_t misses;
        uint64_t wrong; /* hits with another key's endpoint */
        uint64_t busy;  /* sets that lost a race */
    } res[TG_TEST_ST_PROCS];
    alignas(64) uint8_t table[]; /* the sticky table */
} tg_test_st_shared_t;


static void
st_child(tg_test_st_shared_t *sh, tg_shm_sticky_t *t, int id)
{
    uint64_t x = 0x2545f4914f6cdd1dull * (uint64_t)(id + 1), n, key, now;
    uint32_t ep, i;

    while (atomic_load(&sh->go) == 0) {
    }
    for (i = 0; i < TG_TEST_ST_ROUNDS; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        n = (x * 0x2545f4914f6cdd1dull >> 33) % TG_TEST_ST_KEYS;
        /* Distinct top 16 bits (the check) for every key, so that any
         * value read under the wrong key is a protocol failure. */
        key = ((n + 1) << 48) |
              ((n + 1) * 0x9e3779b97f4a7c15ull & 0xffffffffffffull);
        /* A clock that moves, so mappings expire and slots turn over. */
        now = TG_TEST_ST_NOW + i / 16;
        if (i & 1) {
            if (tg_shm_sticky_set(t, key, st_ep_of(n), now + 1000 + (x & 0xfff),
                                  now) != TG_SHM_OK) {
                sh->res[id].busy++;
            }
        } else if (tg_shm_sticky_lookup(t, key, now, &ep, NULL) == TG_SHM_OK) {
            sh->res[id].hits++;
            if (ep != st_ep_of(n)) {
                sh->res[id].wrong++;
            }
        } else {
            sh->res[id].misses++;
        }
    }
}


static void
test_concurrent_writers_and_readers_never_see_a_torn_value(void)
{
    size_t size =
        sizeof(tg_test_st_shared_t) + tg_shm_sticky_size(TG_TEST_ST_SLOTS);
    tg_test_st_shared_t *sh;
    tg_shm_sticky_t *t;
    pid_t pids[TG_TEST_ST_PROCS];
    uint64_t hits = 0, wrong = 0;
    int i, st;

    sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
              -1, 0);
    CU_ASSERT_FATAL(sh != MAP_FAILED);
    t = tg_shm_sticky_init(sh->table, TG_TEST_ST_SLOTS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < TG_TEST_ST_PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            st_child(sh, t, i);
            _exit(0);
        }
        CU_ASSERT(pids[i] > 0);
    }
    atomic_store(&sh->go, 1);
    for (i = 0; i < TG_TEST_ST_PROCS; i++) {
        if (pids[i] <= 0) {
            continue;
        }
        while (waitpid(pids[i], &st, 0) == -1 && errno == EINTR) {
        }
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        hits += sh->res[i].hits;
        wrong += sh->res[i].wrong;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(hits > 1000);
    if (wrong > 0 || hits <= 1000) {
        fprintf(stderr, "\n  sticky stress: %llu hits, %llu wrong\n",
                (unsigned long long)hits, (unsigned long long)wrong);
    }
    munmap(sh, size);
}


int
tg_test_shm_sticky_register(void)
{
    CU_pSuite s = CU_add_suite("shm_sticky", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "sizes and bad arguments",
                     test_sizes_and_bad_arguments) ||
        !CU_add_test(s, "set, lookup, renew and move",
                     test_set_lookup_renew_and_move) ||
        !CU_add_test(s, "mappings expire and their slots are reused",
                     test_mappings_expire_and_their_slots_are_reused) ||
        !CU_add_test(s, "a full window gives up the mapping expiring first",
                     test_a_full_window_gives_up_the_mapping_expiring_first) ||
        !CU_add_test(s, "a writer dead between its two CASes leaves a miss",
                     test_a_writer_dead_between_its_two_cases_leaves_a_miss) ||
        !CU_add_test(
            s, "concurrent writers and readers never see a torn value",
            test_concurrent_writers_and_readers_never_see_a_torn_value)) {
        return 1;
    }
    return 0;
}
