/*
 * tests/bench/bench_keys.c
 *      Micro-benchmark "keys": lookups in a key table holding 1,000,000
 *      keys.
 *
 * NOTES
 *      The table lives in a MAP_SHARED anonymous mapping, the same kind of
 *      memory (shmem, small pages unless shmem THP is on) as the memfd
 *      region in production.  Digests are computed from the key number, so
 *      no 32 MB digest array competes with the table for the caches.
 *
 *      Two figures per case.  "latency": each lookup's key number comes
 *      from the previous lookup's result (a random cycle stored in key_id),
 *      so misses cannot overlap; this is what one request pays.
 *      "throughput": independent lookups in random order, which the CPU
 *      overlaps; this bounds a worker that checks keys back to back.
 *      Each is the median of TG_BENCH_KEYS_ROUNDS rounds.
 */
#include "shm/keys.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TG_BENCH_KEYS_N      1000000u
#define TG_BENCH_KEYS_ROUNDS 5

static volatile uint64_t tg_bench_keys_sink;


static uint64_t
tg_bench_keys_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}


/*
 * The digest of key number <i>.  Only the first 8 bytes pick the home slot,
 * so only they need to look random; one mix keeps the cost (a few ns) out
 * of the way of what is measured.
 */
static void
tg_bench_keys_digest(uint64_t i, uint8_t d[32])
{
    uint64_t w[4];

    w[0] = tg_bench_keys_mix(i);
    w[1] = i;
    w[2] = ~i;
    w[3] = i * 0x9e3779b97f4a7c15ull;
    memcpy(d, w, sizeof(w));
}


static int
tg_bench_keys_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}


static double
tg_bench_keys_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(v[0]), tg_bench_keys_cmp);
    return v[n / 2];
}


/* Dependent hits: follow the cycle stored in key_id from key 0. */
static double
tg_bench_keys_hit_latency(const tg_shm_keys_t *t)
{
    uint64_t t0, i = 0, sum = 0;
    tg_shm_key_t out;
    uint8_t d[32];
    uint32_t n;

    t0 = tg_bench_now_ns();
    for (n = 0; n < TG_BENCH_KEYS_N; n++) {
        tg_bench_keys_digest(i, d);
        if (tg_shm_keys_lookup(t, d, &out, NULL) != TG_SHM_OK) {
            fprintf(stderr, "bench: keys: key %llu not found\n",
                    (unsigned long long)i);
            return 0;
        }
        i = out.key_id;
        sum += out.rpm;
    }
    tg_bench_keys_sink += sum;
    return (double)(tg_bench_now_ns() - t0) / TG_BENCH_KEYS_N;
}


/* Independent hits in the random order <order>. */
static double
tg_bench_keys_hit_throughput(const tg_shm_keys_t *t, const uint32_t *order)
{
    uint64_t t0, sum = 0;
    tg_shm_key_t out;
    uint8_t d[32];
    uint32_t n;

    t0 = tg_bench_now_ns();
    for (n = 0; n < TG_BENCH_KEYS_N; n++) {
        tg_bench_keys_digest(order[n], d);
        sum += tg_shm_keys_lookup(t, d, &out, NULL) == TG_SHM_OK;
        sum += out.rpm;
    }
    tg_bench_keys_sink += sum;
    return (double)(tg_bench_now_ns() - t0) / TG_BENCH_KEYS_N;
}


/*
 * Misses: keys numbered from N up were never inserted.  With <dependent>
 * the next number waits for the previous result.
 */
static double
tg_bench_keys_miss(const tg_shm_keys_t *t, uint64_t base, int dependent)
{
    uint64_t t0, i = 0, sum = 0;
    tg_shm_key_t out;
    uint8_t d[32];
    uint32_t n;

    t0 = tg_bench_now_ns();
    for (n = 0; n < TG_BENCH_KEYS_N; n++) {
        int rc;

        tg_bench_keys_digest(base + (dependent ? i : n), d);
        rc = tg_shm_keys_lookup(t, d, &out, NULL);
        i = i * 6364136223846793005ull + 1442695040888963407ull + (uint64_t)rc;
        sum += (uint64_t)rc;
    }
    if (sum != (uint64_t)TG_SHM_MISS * TG_BENCH_KEYS_N) {
        fprintf(stderr, "bench: keys: a miss lookup did not miss\n");
    }
    tg_bench_keys_sink += sum;
    return (double)(tg_bench_now_ns() - t0) / TG_BENCH_KEYS_N;
}


/*
 * The floor: a dependent walk through the random cycle <next> over the
 * first N slots of <mem>, reading both cache lines of each 96-byte slot,
 * as any lookup must.  It overwrites the table.
 */
static double
tg_bench_keys_floor(char *mem, const uint32_t *next)
{
    uint64_t t0, i = 0;
    uint32_t n;

    for (n = 0; n < TG_BENCH_KEYS_N; n++) {
        uint64_t w[2] = {next[n], 0};

        memcpy(mem + (size_t)n * 96, &w[0], 8);
        memcpy(mem + (size_t)n * 96 + 88, &w[1], 8);
    }
    t0 = tg_bench_now_ns();
    for (n = 0; n < TG_BENCH_KEYS_N; n++) {
        const volatile uint64_t *p =
            (const volatile uint64_t *)(mem + (size_t)i * 96);

        i = p[0] + p[11];
    }
    tg_bench_keys_sink += i;
    return (double)(tg_bench_now_ns() - t0) / TG_BENCH_KEYS_N;
}


/* Load 1,000,000 keys, then time lookups that hit and that miss. */
void
tg_bench_keys(void)
{
    uint32_t cap = tg_shm_keys_capacity_for(TG_BENCH_KEYS_N);
    size_t size = tg_shm_keys_size(cap);
    double lat[TG_BENCH_KEYS_ROUNDS], tput[TG_BENCH_KEYS_ROUNDS];
    uint32_t *order = NULL, *next = NULL;
    uint64_t rng = 0x2545f4914f6cdd1dull, t0;
    tg_shm_keys_t *t = NULL;
    char detail[200];
    double load;
    void *mem;
    uint32_t i;
    int r;

    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    order = malloc(sizeof(uint32_t) * TG_BENCH_KEYS_N);
    next = malloc(sizeof(uint32_t) * TG_BENCH_KEYS_N);
    if (mem == MAP_FAILED || order == NULL || next == NULL) {
        fprintf(stderr, "bench: keys: cannot allocate %zu bytes\n", size);
        goto done;
    }
    t = tg_shm_keys_init(mem, cap);

    /*
     * <order> is a random permutation (Fisher-Yates) for the independent
     * runs; <next> a single random cycle (Sattolo) for the dependent one.
     */
    for (i = 0; i < TG_BENCH_KEYS_N; i++) {
        order[i] = i;
        next[i] = i;
    }
    for (i = TG_BENCH_KEYS_N - 1; i > 0; i--) {
        uint32_t j, x;

        rng = tg_bench_keys_mix(rng);
        j = (uint32_t)(rng % (i + 1));
        x = order[i], order[i] = order[j], order[j] = x;
        j = (uint32_t)(rng % i);
        x = next[i], next[i] = next[j], next[j] = x;
    }

    t0 = tg_bench_now_ns();
    for (i = 0; i < TG_BENCH_KEYS_N; i++) {
        tg_shm_key_t k;

        memset(&k, 0, sizeof(k));
        tg_bench_keys_digest(next[i], k.digest);
        k.key_id = next[next[i]];
        k.rpm = 60;
        if (tg_shm_keys_upsert(t, &k, NULL) != TG_SHM_OK) {
            fprintf(stderr, "bench: keys: upsert %u failed\n", i);
            goto done;
        }
    }
    load = (double)(tg_bench_now_ns() - t0) / TG_BENCH_KEYS_N;
    snprintf(detail, sizeof(detail),
             "%u keys in %u slots of %zu B (+64 B rate limits), table %zu B, "
             "%.1f B/key, max probe %u",
             TG_BENCH_KEYS_N, cap, sizeof(tg_shm_key_t), size,
             (double)size / TG_BENCH_KEYS_N, atomic_load(&t->max_probe));
    tg_bench_report("keys.upsert", load, detail);

    for (r = 0; r < TG_BENCH_KEYS_ROUNDS; r++) {
        lat[r] = tg_bench_keys_hit_latency(t);
        tput[r] = tg_bench_keys_hit_throughput(t, order);
    }
    tg_bench_report("keys.lookup.hit",
                    tg_bench_keys_median(lat, TG_BENCH_KEYS_ROUNDS),
                    "latency: random order, each lookup waits for the last");
    tg_bench_report("keys.lookup.hit.throughput",
                    tg_bench_keys_median(tput, TG_BENCH_KEYS_ROUNDS),
                    "random order, independent lookups");

    for (r = 0; r < TG_BENCH_KEYS_ROUNDS; r++) {
        lat[r] = tg_bench_keys_miss(t, TG_BENCH_KEYS_N, 1);
        tput[r] = tg_bench_keys_miss(t, 2ull * TG_BENCH_KEYS_N, 0);
    }
    tg_bench_report("keys.lookup.miss",
                    tg_bench_keys_median(lat, TG_BENCH_KEYS_ROUNDS),
                    "latency: random digests, each waits for the last");
    tg_bench_report("keys.lookup.miss.throughput",
                    tg_bench_keys_median(tput, TG_BENCH_KEYS_ROUNDS),
                    "random digests, independent lookups");

    for (r = 0; r < TG_BENCH_KEYS_ROUNDS; r++) {
        lat[r] = tg_bench_keys_floor((char *)mem + sizeof(tg_shm_keys_t), next);
    }
    tg_bench_report("keys.ref.memory",
                    tg_bench_keys_median(lat, TG_BENCH_KEYS_ROUNDS),
                    "reference: dependent read of one random 96-byte slot, "
                    "no table logic");

done:
    free(order);
    free(next);
    if (mem != MAP_FAILED) {
        munmap(mem, size);
    }
}
