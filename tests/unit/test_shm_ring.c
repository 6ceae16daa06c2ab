/*
 * tests/unit/test_shm_ring.c
 *      CUnit suite "shm_ring": the usage ring (shm/ring.h) and its
 *      overflow spool files (shm/spool.h).
 *
 * NOTES
 *      The ring lives in an anonymous MAP_SHARED mapping made before fork,
 *      as the real region is, and the concurrent tests fork real producer
 *      processes; the test process itself is the single consumer (and
 *      plays master when it reaps a dead producer).  Records carry their
 *      producer in the high half of request_id and a per-producer sequence
 *      number in the low half, so the consumer can check that every record
 *      arrives exactly once, and in order within the ring.  Spool files go
 *      to a fresh directory under $TMPDIR that each test removes.
 */
#include "shm/ring.h"
#include "shm/spool.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define STRESS_PRODUCERS 8
#define STRESS_RECORDS   100000
#define STRESS_CAPACITY  4096

typedef struct {
    uint8_t *seen;      /* [producers * records], times each was seen */
    int64_t *last;      /* [producers], last sequence seen in the ring */
    uint32_t producers; /* bound on the producer id */
    uint32_t records;   /* bound on the sequence number */
    uint64_t dups;      /* records seen twice */
    uint64_t disorder;  /* ring records out of per-producer order */
    uint64_t strays;    /* records with ids out of range */
    uint64_t total;     /* records counted */
} tally_t;


static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static void
make_rec(tg_usage_rec_t *rec, uint32_t producer, uint32_t seq)
{
    memset(rec, 0, sizeof(*rec));
    rec->request_id = ((uint64_t)producer << 32) | seq;
    rec->time_ms = 1700000000000ull + seq;
    rec->user = producer;
    rec->key_id = seq;
    rec->status = 200;
    rec->outcome = TG_USAGE_OK;
    rec->flags = TG_USAGE_F_STREAM;
    rec->attempts = 1;
    rec->pid = (int32_t)getpid();
    rec->tokens[TG_USAGE_TOK_INPUT] = seq;
    rec->tokens[TG_USAGE_TOK_OUTPUT] = (uint64_t)seq * 3;
    rec->bytes_out = ~(uint64_t)seq;
    snprintf(rec->model, sizeof(rec->model), "model-%u-%u", producer, seq);
}


/* True when <rec> is intact: every field matches what make_rec wrote. */
static bool
rec_intact(const tg_usage_rec_t *rec)
{
    tg_usage_rec_t want;

    make_rec(&want, (uint32_t)(rec->request_id >> 32),
             (uint32_t)rec->request_id);
    want.pid = rec->pid;
    return memcmp(&want, rec, sizeof(want)) == 0;
}


static void *
map_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}


static tg_shm_ring_t *
ring_new(uint32_t capacity)
{
    void *mem = map_shared(tg_shm_ring_size(capacity));

    return mem == NULL ? NULL : tg_shm_ring_init(mem, capacity);
}


static void
ring_free(tg_shm_ring_t *r)
{
    if (r != NULL) {
        munmap(r, tg_shm_ring_size(r->capacity));
    }
}


static int
tally_init(tally_t *t, uint32_t producers, uint32_t records)
{
    uint32_t i;

    memset(t, 0, sizeof(*t));
    t->producers = producers;
    t->records = records;
    t->seen = calloc((size_t)producers * records, 1);
    t->last = calloc(producers, sizeof(int64_t));
    if (t->seen == NULL || t->last == NULL) {
        return -1;
    }
    for (i = 0; i < producers; i++) {
        t->last[i] = -1;
    }
    return 0;
}


static void
tally_fini(tally_t *t)
{
    free(t->seen);
    free(t->last);
}


/* Count <rec>; <ordered> for ring records, which keep producer order. */
static void
tally_add(tally_t *t, const tg_usage_rec_t *rec, bool ordered)
{
    uint32_t p = (uint32_t)(rec->request_id >> 32);
    uint32_t s = (uint32_t)rec->request_id;
    uint8_t *seen;

    if (p >= t->producers || s >= t->records || !rec_intact(rec)) {
        t->strays++;
        return;
    }
    seen = &t->seen[(size_t)p * t->records + s];
    if (*seen != 0) {
        t->dups++;
    }
    *seen = 1;
    if (ordered) {
        if ((int64_t)s <= t->last[p]) {
            t->disorder++;
        }
        t->last[p] = s;
    }
    t->total++;
}


static int
tally_spool_cb(void *ctx, const tg_usage_rec_t *rec)
{
    tally_add(ctx, rec, false);
    return 0;
}


/* Records of producer <p> seen: the highest sequence + 1 if a prefix. */
static int64_t
tally_prefix(const tally_t *t, uint32_t p)
{
    const uint8_t *seen = &t->seen[(size_t)p * t->records];
    uint32_t n = 0, s;

    while (n < t->records && seen[n]) {
        n++;
    }
    for (s = n; s < t->records; s++) {
        if (seen[s]) {
            return -1;
        }
    }
    return n;
}


static char *
tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char buf[512];

    snprintf(buf, sizeof(buf), "%s/tg-ring-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(buf) == NULL) {
        return NULL;
    }
    return strdup(buf);
}


/* Number of directory entries in <dir> whose name ends with <suffix>. */
static int
count_files(const char *dir, const char *suffix)
{
    struct dirent *de;
    size_t s = strlen(suffix);
    int n = 0;
    DIR *d;

    d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (de->d_name[0] != '.' && len >= s &&
            strcmp(de->d_name + len - s, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}


static void
tmpdir_free(char *dir)
{
    struct dirent *de;
    DIR *d;

    if (dir == NULL) {
        return;
    }
    d = opendir(dir);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                unlinkat(dirfd(d), de->d_name, 0);
            }
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}


/* Collects records from the spool in arrival order. */
typedef struct {
    tg_usage_rec_t recs[64];
    uint32_t n;
    uint32_t refuse_at; /* refuse the record with this index; 0 = never */
} collect_t;


static int
collect_cb(void *ctx, const tg_usage_rec_t *rec)
{
    collect_t *c = ctx;

    if (c->refuse_at != 0 && c->n == c->refuse_at) {
        errno = EIO;
        return -1;
    }
    if (c->n < NELEMS(c->recs)) {
        c->recs[c->n] = *rec;
    }
    c->n++;
    return 0;
}


static void
test_layout(void)
{
    static char raw[3 * 320 + 64];
    tg_shm_ring_t *r;
    void *aligned;

    CU_ASSERT_EQUAL(sizeof(tg_usage_rec_t), 256);
    CU_ASSERT_EQUAL(sizeof(tg_usage_rec_t) % TG_SHM_CACHELINE, 0);
    CU_ASSERT_EQUAL(sizeof(tg_shm_ring_slot_t), 320);
    CU_ASSERT_EQUAL(alignof(tg_shm_ring_slot_t), TG_SHM_CACHELINE);
    CU_ASSERT_EQUAL(sizeof(tg_shm_ring_t), sizeof(tg_shm_ring_slot_t));
    CU_ASSERT_EQUAL(offsetof(tg_shm_ring_slot_t, rec) % TG_SHM_CACHELINE, 0);
    /* head and tail on different cache lines, neither with line 0. */
    CU_ASSERT(offsetof(tg_shm_ring_t, head) / TG_SHM_CACHELINE !=
              offsetof(tg_shm_ring_t, tail) / TG_SHM_CACHELINE);
    CU_ASSERT_EQUAL(offsetof(tg_shm_ring_t, head) % TG_SHM_CACHELINE, 0);
    CU_ASSERT_EQUAL(offsetof(tg_shm_ring_t, tail) % TG_SHM_CACHELINE, 0);
    CU_ASSERT_EQUAL(sizeof(tg_shm_spool_frame_t), 16);
    CU_ASSERT_EQUAL(TG_SHM_SPOOL_FRAME_SIZE, 272);

    /* The slots start one slot past the header, on a cache line. */
    aligned = (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    r = tg_shm_ring_init(aligned, 2);
    CU_ASSERT_PTR_EQUAL(r, aligned);
    CU_ASSERT_EQUAL((char *)tg_shm_ring_slot(r, 1) - (char *)r, 2 * 320);
    CU_ASSERT_PTR_EQUAL(tg_shm_ring_attach(aligned, 3 * 320), r);
    CU_ASSERT_PTR_NULL(tg_shm_ring_attach(aligned, 3 * 320 - 1));
    CU_ASSERT_PTR_NULL(tg_shm_ring_init((char *)aligned + 8, 2));
    r->magic = 0;
    CU_ASSERT_PTR_NULL(tg_shm_ring_attach(aligned, 3 * 320));
}


static void
test_refuses_bad_capacities(void)
{
    CU_ASSERT_EQUAL(tg_shm_ring_size(0), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(1), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(3), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(4095), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(TG_SHM_RING_MAX << 1), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(UINT32_MAX), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_size(2), 3 * 320);
    CU_ASSERT_EQUAL(tg_shm_ring_size(4096), 4097 * 320);
    CU_ASSERT_EQUAL(tg_shm_ring_size(TG_SHM_RING_MAX),
                    ((size_t)TG_SHM_RING_MAX + 1) * 320);
}


static void
test_delivers_in_publish_order(void)
{
    tg_shm_ring_t *r = ring_new(8);
    tg_usage_rec_t rec, out;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    for (i = 0; i < 5; i++) {
        make_rec(&rec, 1, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    for (i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        make_rec(&rec, 1, i);
        CU_ASSERT_EQUAL(memcmp(&rec, &out, sizeof(rec)), 0);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(atomic_load(&r->consumed), 5);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1000000, 0), 0);
    ring_free(r);
}


static void
test_full_then_ok_after_consume(void)
{
    tg_shm_ring_t *r = ring_new(8);
    tg_usage_rec_t rec, out;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (i = 0; i < 8; i++) {
        make_rec(&rec, 2, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    make_rec(&rec, 2, 8);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_FULL);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_FULL);
    CU_ASSERT_EQUAL(atomic_load(&r->full), 2);
    CU_ASSERT_EQUAL(atomic_load(&r->head), 8);

    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.request_id, ((uint64_t)2 << 32) | 0);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_FULL);
    for (i = 1; i <= 8; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        CU_ASSERT_EQUAL((uint32_t)out.request_id, i);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    ring_free(r);
}


static void
test_refuses_a_record_without_pid(void)
{
    tg_shm_ring_t *r = ring_new(4);
    tg_usage_rec_t rec;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    make_rec(&rec, 0, 0);
    rec.pid = 0;
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(atomic_load(&r->head), 0);
    ring_free(r);
}


/*
 * Positions are 64-bit but slot indexes are taken from their low bits;
 * starting just below 2^32 checks that nothing truncates a position.
 */
static void
test_wraps_around_many_times(void)
{
    const uint64_t start = (1ull << 32) - 7;
    tg_shm_ring_t *r = ring_new(4);
    tg_usage_rec_t rec, out;
    uint32_t i, j, next = 0, want = 0, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    atomic_store(&r->head, start);
    atomic_store(&r->tail, start);
    for (i = 0; i < 4; i++) {
        uint64_t p = start + i;

        atomic_store(&tg_shm_ring_slot(r, (uint32_t)p & r->mask)->seq, p);
    }
    for (i = 0; i < 20000; i++) {
        /* Publish 1 to 4 records, then consume all but the last one. */
        uint32_t k = 1 + i % 4;

        for (j = 0; j < k; j++) {
            make_rec(&rec, 3, next);
            if (tg_shm_ring_publish(r, &rec) != TG_SHM_OK) {
                break;
            }
            next++;
        }
        while (want + 1 < next && tg_shm_ring_consume(r, &out) == TG_SHM_OK) {
            bad += (uint32_t)out.request_id != want || !rec_intact(&out);
            want++;
        }
    }
    while (tg_shm_ring_consume(r, &out) == TG_SHM_OK) {
        bad += (uint32_t)out.request_id != want;
        want++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(want, next);
    CU_ASSERT(next > 20000);
    CU_ASSERT(atomic_load(&r->head) > (1ull << 32));
    CU_ASSERT_EQUAL(atomic_load(&r->head), start + next);
    ring_free(r);
}


/* Stress producer: publish, spool what the ring refuses.  Never returns. */
static void
stress_producer(tg_shm_ring_t *r, const char *dir, uint32_t id,
                uint32_t records)
{
    tg_usage_rec_t rec;
    uint32_t s;

    for (s = 0; s < records; s++) {
        int rc;

        make_rec(&rec, id, s);
        rc = tg_shm_ring_publish(r, &rec);
        if (rc == TG_SHM_FULL) {
            if (tg_shm_spool_append(dir, rec.pid, &rec) != TG_SHM_OK) {
                _exit(2);
            }
            /* The ring is full: let the consumer run. */
            sched_yield();
        } else if (rc != TG_SHM_OK) {
            _exit(3);
        }
    }
    _exit(0);
}


/* The test process as consumer (and master) of a stress run. */
typedef struct {
    tg_shm_ring_t *r; /* the ring */
    const char *dir;  /* the spool directory */
    pid_t pids[8];    /* producers; negated once reaped */
    int status[8];    /* their wait statuses */
    int n;            /* producers */
    tally_t t;        /* what arrived */
    uint64_t grace;   /* grace period for skip_stuck, ms */
    uint64_t kill_at; /* SIGKILL pids[0] after this many; 0 = never */
    uint64_t ring;    /* records from the ring */
    uint64_t spooled; /* records from the spool */
    uint64_t skipped; /* slots skipped */
} consumer_t;


/*
 * Drain the ring until every producer has exited, ingesting the spool
 * every 20 ms while they still append, then drain and ingest once more.
 * Reaps dead producers the way master does (waitpid, then
 * tg_shm_ring_reap) and skips stuck slots after the grace period.
 */
static void
stress_consume(consumer_t *c)
{
    uint64_t last_ingest = mono_ms();
    tg_usage_rec_t out;
    uint32_t nrecs, nbad;
    int alive = c->n, i, spins = 0;

    while (alive > 0) {
        if (tg_shm_ring_consume(c->r, &out) == TG_SHM_OK) {
            tally_add(&c->t, &out, true);
            c->ring++;
            if (c->ring == c->kill_at) {
                kill(c->pids[0], SIGKILL);
            }
            /*
             * Stall twice, as an admin busy with PostgreSQL would, so the
             * ring fills and the producers spool while we ingest.
             */
            if (c->ring % 100000 == 0 && c->ring <= 200000) {
                usleep(10000);
            }
            continue;
        }
        c->skipped += tg_shm_ring_skip_stuck(c->r, mono_ms(), c->grace);
        if (++spins % 64 == 0) {
            sched_yield();
        }
        if (mono_ms() - last_ingest >= 20) {
            tg_shm_spool_ingest(c->dir, tally_spool_cb, &c->t, &nrecs, &nbad);
            c->spooled += nrecs;
            last_ingest = mono_ms();
        }
        for (i = 0; i < c->n; i++) {
            if (c->pids[i] > 0 &&
                waitpid(c->pids[i], &c->status[i], WNOHANG) > 0) {
                tg_shm_ring_reap(c->r, c->pids[i]);
                c->pids[i] = -c->pids[i];
                alive--;
            }
        }
    }

    /* Everyone is gone: whatever is left is published or stuck. */
    for (i = 0; i < 1000; i++) {
        while (tg_shm_ring_consume(c->r, &out) == TG_SHM_OK) {
            tally_add(&c->t, &out, true);
            c->ring++;
        }
        if (atomic_load(&c->r->head) == atomic_load(&c->r->tail)) {
            break;
        }
        c->skipped += tg_shm_ring_skip_stuck(c->r, mono_ms(), c->grace);
        usleep(1000);
    }
    tg_shm_spool_ingest(c->dir, tally_spool_cb, &c->t, &nrecs, &nbad);
    c->spooled += nrecs;
}


/* Start <c->n> producers of <records> each; 0 or -1. */
static int
stress_start(consumer_t *c, uint32_t records)
{
    int i;

    fflush(NULL);
    for (i = 0; i < c->n; i++) {
        c->pids[i] = fork();
        if (c->pids[i] == 0) {
            stress_producer(c->r, c->dir, (uint32_t)i, records);
        }
        if (c->pids[i] < 0) {
            return -1;
        }
    }
    return 0;
}


static void
test_stress_exactly_once(void)
{
    consumer_t *c = calloc(1, sizeof(*c));
    uint64_t all = (uint64_t)STRESS_PRODUCERS * STRESS_RECORDS;
    char *dir = tmpdir_new();
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    c->r = ring_new(STRESS_CAPACITY);
    c->dir = dir;
    c->n = STRESS_PRODUCERS;
    c->grace = 2000;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->r);
    CU_ASSERT_EQUAL_FATAL(tally_init(&c->t, STRESS_PRODUCERS, STRESS_RECORDS),
                          0);
    CU_ASSERT_EQUAL_FATAL(stress_start(c, STRESS_RECORDS), 0);
    stress_consume(c);

    for (i = 0; i < STRESS_PRODUCERS; i++) {
        CU_ASSERT(WIFEXITED(c->status[i]) && WEXITSTATUS(c->status[i]) == 0);
        CU_ASSERT_EQUAL(tally_prefix(&c->t, (uint32_t)i), STRESS_RECORDS);
    }
    CU_ASSERT_EQUAL(c->t.strays, 0);
    CU_ASSERT_EQUAL(c->t.dups, 0);
    CU_ASSERT_EQUAL(c->t.disorder, 0);
    CU_ASSERT_EQUAL(c->ring + c->spooled, all);
    CU_ASSERT_EQUAL(c->t.total, all);
    CU_ASSERT(c->ring > 0);
    CU_ASSERT(c->spooled > 0);
    CU_ASSERT_EQUAL(atomic_load(&c->r->head), atomic_load(&c->r->tail));
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    if (getenv("TG_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "\nstress: ring %llu, spooled %llu, skipped %llu, "
                "full %llu\n",
                (unsigned long long)c->ring, (unsigned long long)c->spooled,
                (unsigned long long)c->skipped,
                (unsigned long long)atomic_load(&c->r->full));
    }
    tally_fini(&c->t);
    ring_free(c->r);
    tmpdir_free(dir);
    free(c);
}


/*
 * A producer that dies after winning the head CAS and before writing
 * leaves a hole: the consumer waits out the grace period, skips it, and
 * the ring goes on working over the reused slot.
 */
static void
test_skips_slot_of_dead_producer_after_grace(void)
{
    tg_shm_ring_t *r = ring_new(16);
    tg_usage_rec_t rec, out;
    uint32_t i, got = 0;
    pid_t pid;
    int st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (i = 0; i < 2; i++) {
        make_rec(&rec, 4, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        uint64_t pos;

        _exit(tg_shm_ring_claim(r, &pos) == TG_SHM_OK && pos == 2 ? 0 : 1);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (i = 3; i < 5; i++) {
        make_rec(&rec, 4, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }

    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        CU_ASSERT_EQUAL((uint32_t)out.request_id, i);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1000, 50), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1049, 50), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1050, 50), 1);
    CU_ASSERT_EQUAL(atomic_load(&r->skipped), 1);
    for (i = 3; i < 5; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        CU_ASSERT_EQUAL((uint32_t)out.request_id, i);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 5000, 50), 0);

    /* Ten more laps over the skipped slot. */
    for (i = 0; i < 160; i++) {
        make_rec(&rec, 5, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
        if (tg_shm_ring_consume(r, &out) == TG_SHM_OK &&
            out.request_id == rec.request_id && rec_intact(&out)) {
            got++;
        }
    }
    CU_ASSERT_EQUAL(got, 160);
    ring_free(r);
}


/*
 * Several holes in a row cost one grace period, not one each: the timer
 * knows they were all claimed before it started.
 */
static void
test_skips_consecutive_holes_in_one_grace(void)
{
    tg_shm_ring_t *r = ring_new(8);
    tg_usage_rec_t rec, out;
    uint64_t pos;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tg_shm_ring_claim(r, &pos), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_ring_claim(r, &pos), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_ring_claim(r, &pos), TG_SHM_OK);
    make_rec(&rec, 6, 0);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 100, 10), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 110, 10), 3);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(out.request_id, rec.request_id);
    ring_free(r);
}


/*
 * A live producer descheduled between its claim and its commit for longer
 * than the grace period is skipped.  Its commit must then fail without
 * writing a byte, even though the slot has been claimed, written and
 * published again by the next lap, and its record goes to the spool.
 */
static void
test_skipped_slow_producer_gets_full_and_writes_nothing(void)
{
    tg_shm_ring_t *r = ring_new(4);
    tg_usage_rec_t rec, out;
    uint64_t slow;
    uint32_t i, got = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tg_shm_ring_claim(r, &slow), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 0, 100), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 100, 100), 1);

    /* A full lap by other producers, the slow one's slot included. */
    for (i = 0; i < 4; i++) {
        make_rec(&rec, 7, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_ring_slot(r, 0)->seq), 5);

    make_rec(&rec, 8, 0);
    CU_ASSERT_EQUAL(tg_shm_ring_commit(r, slow, &rec), TG_SHM_FULL);
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_ring_slot(r, 0)->seq), 5);

    for (i = 0; i < 4; i++) {
        if (tg_shm_ring_consume(r, &out) == TG_SHM_OK &&
            (uint32_t)(out.request_id >> 32) == 7 &&
            (uint32_t)out.request_id == i && rec_intact(&out)) {
            got++;
        }
    }
    CU_ASSERT_EQUAL(got, 4);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    ring_free(r);
}


/*
 * A producer that dies while copying its record (seq = BUSY | pid) is
 * never skipped on a timer, since a live writer looks the same; master's
 * reap after waitpid marks the slot and the consumer moves past it.
 */
static void
test_reap_releases_slot_of_producer_dead_while_writing(void)
{
    tg_shm_ring_t *r = ring_new(8);
    tg_usage_rec_t rec, out;
    pid_t pid;
    int st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        tg_shm_ring_slot_t *s;
        uint64_t pos, expected;

        if (tg_shm_ring_claim(r, &pos) != TG_SHM_OK) {
            _exit(1);
        }
        /* The begin step of tg_shm_ring_commit, then half a record. */
        s = tg_shm_ring_slot(r, (uint32_t)pos & r->mask);
        expected = pos;
        if (!atomic_compare_exchange_strong(&s->seq, &expected,
                                            TG_SHM_RING_BUSY |
                                                (uint64_t)(uint32_t)getpid())) {
            _exit(1);
        }
        memset(&s->rec, 0xa5, sizeof(s->rec) / 2);
        _exit(0);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    make_rec(&rec, 9, 0);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);

    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 0, 10), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1000000, 10), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_reap(r, pid + 1), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_reap(r, pid), 1);
    CU_ASSERT_EQUAL(tg_shm_ring_reap(r, pid), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 1000000, 10), 1);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL(memcmp(&out, &rec, sizeof(rec)), 0);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    ring_free(r);
}


/*
 * The consumer of position <t> of <r> dies after handing the slot to the
 * next lap and before advancing tail (the steps of tg_shm_ring_consume).
 */
static void
consumer_dies_after_release(tg_shm_ring_t *r)
{
    uint64_t t = atomic_load(&r->tail);

    atomic_store(&tg_shm_ring_slot(r, (uint32_t)t & r->mask)->seq,
                 t + r->capacity);
}


/*
 * An admin that died between its two stores left tail one behind a slot
 * that is already free; the next admin's skip_stuck moves tail on.
 */
static void
test_recovers_the_tail_of_a_consumer_that_died(void)
{
    tg_shm_ring_t *r = ring_new(4);
    tg_usage_rec_t rec, out;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (i = 0; i < 3; i++) {
        make_rec(&rec, 19, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    consumer_dies_after_release(r);

    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 0, 2000), 0);
    CU_ASSERT_EQUAL(atomic_load(&r->tail), 2);
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    CU_ASSERT_EQUAL((uint32_t)out.request_id, 2);

    /* A full lap over the repaired slot. */
    for (i = 3; i < 7; i++) {
        make_rec(&rec, 19, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    for (i = 3; i < 7; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        CU_ASSERT_EQUAL((uint32_t)out.request_id, i);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(atomic_load(&r->skipped), 0);
    ring_free(r);
}


/*
 * Same, but producers reused the freed slot for the next lap before a
 * new admin came: tail moves on without touching the new record, which
 * then arrives in its turn.
 */
static void
test_recovers_the_tail_when_the_slot_was_reused(void)
{
    tg_shm_ring_t *r = ring_new(4);
    tg_usage_rec_t rec, out;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (i = 0; i < 4; i++) {
        make_rec(&rec, 20, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
    consumer_dies_after_release(r);
    for (i = 4; i < 6; i++) {
        make_rec(&rec, 20, i);
        CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_OK);
    }
    make_rec(&rec, 20, 6);
    CU_ASSERT_EQUAL(tg_shm_ring_publish(r, &rec), TG_SHM_FULL);

    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 0, 2000), 0);
    CU_ASSERT_EQUAL(atomic_load(&r->tail), 2);
    for (i = 2; i < 6; i++) {
        CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_OK);
        CU_ASSERT_EQUAL((uint32_t)out.request_id, i);
        CU_ASSERT(rec_intact(&out));
    }
    CU_ASSERT_EQUAL(tg_shm_ring_consume(r, &out), TG_SHM_MISS);
    CU_ASSERT_EQUAL(tg_shm_ring_skip_stuck(r, 0, 2000), 0);
    CU_ASSERT_EQUAL(atomic_load(&r->tail), 6);
    ring_free(r);
}


/*
 * SIGKILL a producer at an arbitrary point, act as master (waitpid, reap)
 * and consumer (short grace): the others' records all arrive exactly
 * once, and the victim's arrive as a prefix of its sequence (only the
 * record it was publishing may be lost).
 */
static void
test_keeps_delivering_after_a_producer_is_killed(void)
{
    enum { PRODUCERS = 3, RECORDS = 30000 };
    consumer_t *c = calloc(1, sizeof(*c));
    char *dir = tmpdir_new();
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    c->r = ring_new(256);
    c->dir = dir;
    c->n = PRODUCERS;
    c->grace = 20;
    c->kill_at = 20000;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->r);
    CU_ASSERT_EQUAL_FATAL(tally_init(&c->t, PRODUCERS, RECORDS), 0);
    CU_ASSERT_EQUAL_FATAL(stress_start(c, RECORDS), 0);
    stress_consume(c);

    CU_ASSERT(WIFSIGNALED(c->status[0]) || WIFEXITED(c->status[0]));
    for (i = 1; i < PRODUCERS; i++) {
        CU_ASSERT(WIFEXITED(c->status[i]) && WEXITSTATUS(c->status[i]) == 0);
        CU_ASSERT_EQUAL(tally_prefix(&c->t, (uint32_t)i), RECORDS);
    }
    CU_ASSERT(tally_prefix(&c->t, 0) >= 0);
    CU_ASSERT_EQUAL(c->t.strays, 0);
    CU_ASSERT_EQUAL(c->t.dups, 0);
    CU_ASSERT_EQUAL(c->t.disorder, 0);
    CU_ASSERT_EQUAL(atomic_load(&c->r->head), atomic_load(&c->r->tail));
    if (getenv("TG_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "\nkilled: victim delivered %lld, skipped %llu, "
                "spooled %llu\n",
                (long long)tally_prefix(&c->t, 0),
                (unsigned long long)c->skipped, (unsigned long long)c->spooled);
    }
    tally_fini(&c->t);
    ring_free(c->r);
    tmpdir_free(dir);
    free(c);
}


static void
test_crc32_matches_the_standard(void)
{
    CU_ASSERT_EQUAL(tg_shm_spool_crc32("123456789", 9), 0xcbf43926u);
    CU_ASSERT_EQUAL(tg_shm_spool_crc32("", 0), 0);
    CU_ASSERT_EQUAL(tg_shm_spool_crc32("a", 1), 0xe8b7be43u);
}


static void
test_spool_round_trip(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    tg_usage_rec_t rec;
    uint32_t i, nrecs = 99, nbad = 99;
    char path[600];
    struct stat st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (i = 0; i < 50; i++) {
        make_rec(&rec, 10, i);
        CU_ASSERT_EQUAL(tg_shm_spool_append(dir, 4242, &rec), TG_SHM_OK);
    }
    snprintf(path, sizeof(path), "%s/usage-4242.spool", dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 50 * TG_SHM_SPOOL_FRAME_SIZE);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 50);
    CU_ASSERT_EQUAL(nbad, 0);
    CU_ASSERT_EQUAL(c->n, 50);
    for (i = 0; i < 50; i++) {
        make_rec(&rec, 10, i);
        CU_ASSERT_EQUAL(memcmp(&c->recs[i], &rec, sizeof(rec)), 0);
    }
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 0);
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_refuses_bad_arguments(void)
{
    tg_usage_rec_t rec;
    uint32_t nrecs = 9, nbad = 9;

    make_rec(&rec, 11, 0);
    errno = 0;
    CU_ASSERT_EQUAL(tg_shm_spool_append("/tmp", 0, &rec), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(tg_shm_spool_append("/nonexistent/tollgate/spool", 1, &rec),
                    TG_SHM_FULL);
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_EQUAL(tg_shm_spool_ingest("/nonexistent/tollgate/spool",
                                        collect_cb, NULL, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 0);
    CU_ASSERT_EQUAL(nbad, 0);
}


/* Append <n> records of producer <p> to <dir>/usage-<pid>.spool. */
static void
spool_fill(const char *dir, int32_t pid, uint32_t p, uint32_t from, uint32_t n)
{
    tg_usage_rec_t rec;
    uint32_t i;

    for (i = from; i < from + n; i++) {
        make_rec(&rec, p, i);
        CU_ASSERT_EQUAL(tg_shm_spool_append(dir, pid, &rec), TG_SHM_OK);
    }
}


static int
spool_open(const char *dir, const char *name, int flags)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return open(path, flags | O_CLOEXEC, 0600);
}


static void
test_spool_skips_and_counts_a_corrupted_frame(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad, i;
    unsigned char b;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    spool_fill(dir, 7, 12, 0, 10);
    fd = spool_open(dir, "usage-7.spool", O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    /* Flip one bit inside record 4's body. */
    CU_ASSERT_EQUAL(pread(fd, &b, 1, 4 * TG_SHM_SPOOL_FRAME_SIZE + 16 + 50), 1);
    b ^= 0x10;
    CU_ASSERT_EQUAL(pwrite(fd, &b, 1, 4 * TG_SHM_SPOOL_FRAME_SIZE + 16 + 50),
                    1);
    close(fd);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 9);
    CU_ASSERT_EQUAL(nbad, 1);
    for (i = 0; i < c->n && i < 9; i++) {
        CU_ASSERT_EQUAL((uint32_t)c->recs[i].request_id, i < 4 ? i : i + 1);
    }
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_resyncs_after_garbage_between_frames(void)
{
    static const char junk[37] = "not a frame, just some stray bytes";
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad, i;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    spool_fill(dir, 8, 13, 0, 3);
    fd = spool_open(dir, "usage-8.spool", O_WRONLY | O_APPEND);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    spool_fill(dir, 8, 13, 3, 3);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 6);
    CU_ASSERT_EQUAL(nbad, 1);
    for (i = 0; i < c->n && i < 6; i++) {
        CU_ASSERT_EQUAL((uint32_t)c->recs[i].request_id, i);
    }
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_ignores_a_truncated_tail(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad, i;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    spool_fill(dir, 9, 14, 0, 5);
    fd = spool_open(dir, "usage-9.spool", O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, 5 * TG_SHM_SPOOL_FRAME_SIZE - 100), 0);
    close(fd);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 4);
    CU_ASSERT_EQUAL(nbad, 1);
    for (i = 0; i < c->n && i < 4; i++) {
        CU_ASSERT_EQUAL((uint32_t)c->recs[i].request_id, i);
    }
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_picks_up_leftover_ingesting_files_first(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad, i;
    char from[600], to[600];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* An ingest that crashed after its rename left usage-77.0.ingesting. */
    spool_fill(dir, 77, 15, 0, 3);
    snprintf(from, sizeof(from), "%s/usage-77.spool", dir);
    snprintf(to, sizeof(to), "%s/usage-77.0.ingesting", dir);
    CU_ASSERT_EQUAL_FATAL(rename(from, to), 0);
    spool_fill(dir, 77, 15, 3, 2);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 5);
    CU_ASSERT_EQUAL(nbad, 0);
    for (i = 0; i < c->n && i < 5; i++) {
        CU_ASSERT_EQUAL((uint32_t)c->recs[i].request_id, i);
    }
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_keeps_the_file_when_the_callback_fails(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    spool_fill(dir, 55, 16, 0, 5);
    c->refuse_at = 2;
    errno = 0;
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_BUSY);
    CU_ASSERT_EQUAL(errno, EIO);
    CU_ASSERT_EQUAL(nrecs, 2);
    CU_ASSERT_EQUAL(count_files(dir, ".spool"), 0);
    CU_ASSERT_EQUAL(count_files(dir, ".ingesting"), 1);

    /* New appends go to a fresh file while the old one waits. */
    spool_fill(dir, 55, 16, 5, 1);
    CU_ASSERT_EQUAL(count_files(dir, ".spool"), 1);

    /* At least once: the two accepted records come again. */
    c->refuse_at = 0;
    c->n = 0;
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 6);
    CU_ASSERT_EQUAL((uint32_t)c->recs[0].request_id, 0);
    CU_ASSERT_EQUAL((uint32_t)c->recs[5].request_id, 5);
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    free(c);
    tmpdir_free(dir);
}


static void
test_spool_leaves_a_file_locked_by_a_writer_for_later(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad;
    int fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    spool_fill(dir, 66, 17, 0, 2);
    /* A writer that opened the file and holds its lock, mid-frame. */
    fd = spool_open(dir, "usage-66.spool", O_WRONLY | O_APPEND);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(flock(fd, LOCK_EX), 0);

    errno = 0;
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_BUSY);
    CU_ASSERT_EQUAL(errno, EWOULDBLOCK);
    CU_ASSERT_EQUAL(nrecs, 0);
    CU_ASSERT_EQUAL(count_files(dir, ".ingesting"), 1);

    /* Appending now finds the path free and starts a fresh file. */
    spool_fill(dir, 66, 17, 2, 1);
    CU_ASSERT_EQUAL(count_files(dir, ".spool"), 1);
    close(fd);

    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 3);
    CU_ASSERT_EQUAL(c->n, 3);
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    free(c);
    tmpdir_free(dir);
}


/*
 * A frame that does not fit (here RLIMIT_FSIZE, as ENOSPC would) is cut
 * off again, so the file stays a whole number of frames and the caller
 * learns why.
 */
static void
test_spool_cuts_off_a_frame_that_does_not_fit(void)
{
    char *dir = tmpdir_new();
    collect_t *c = calloc(1, sizeof(*c));
    uint32_t nrecs, nbad;
    char path[600];
    struct stat st;
    pid_t pid;
    int status;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        tg_usage_rec_t rec;
        int rc;

        signal(SIGXFSZ, SIG_IGN);
        rl.rlim_cur = rl.rlim_max = 2 * TG_SHM_SPOOL_FRAME_SIZE + 100;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(9);
        }
        make_rec(&rec, 18, 0);
        rc = tg_shm_spool_append(dir, 88, &rec);
        make_rec(&rec, 18, 1);
        rc |= tg_shm_spool_append(dir, 88, &rec);
        if (rc != TG_SHM_OK) {
            _exit(1);
        }
        make_rec(&rec, 18, 2);
        rc = tg_shm_spool_append(dir, 88, &rec);
        _exit(rc == TG_SHM_FULL && errno == EFBIG ? 0 : 2);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof(path), "%s/usage-88.spool", dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 2 * TG_SHM_SPOOL_FRAME_SIZE);
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, collect_cb, c, &nrecs, &nbad),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(nrecs, 2);
    CU_ASSERT_EQUAL(nbad, 0);
    free(c);
    tmpdir_free(dir);
}


/*
 * Four processes append while the test ingests in a loop; two of them
 * share one spool file, so appenders also contend with each other.
 */
static void
test_spool_concurrent_appends_during_ingest(void)
{
    enum { WRITERS = 4, RECORDS = 3000 };
    static const int32_t spool_pid[WRITERS] = {9001, 9001, 9002, 9003};
    char *dir = tmpdir_new();
    pid_t pids[WRITERS];
    int st, done = 0;
    uint32_t i, nrecs, nbad, bad = 0;
    uint64_t total = 0;
    tally_t t;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_EQUAL_FATAL(tally_init(&t, WRITERS, RECORDS), 0);
    fflush(NULL);
    for (i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            tg_usage_rec_t rec;
            uint32_t s;

            for (s = 0; s < RECORDS; s++) {
                make_rec(&rec, i, s);
                if (tg_shm_spool_append(dir, spool_pid[i], &rec) != TG_SHM_OK) {
                    fprintf(stderr, "append errno %d\n", errno);
                    _exit(2);
                }
            }
            _exit(0);
        }
        CU_ASSERT_FATAL(pids[i] > 0);
    }
    while (done < WRITERS) {
        tg_shm_spool_ingest(dir, tally_spool_cb, &t, &nrecs, &nbad);
        total += nrecs;
        bad += nbad;
        for (i = 0; i < WRITERS; i++) {
            if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                pids[i] = 0;
                done++;
            }
        }
    }
    CU_ASSERT_EQUAL(tg_shm_spool_ingest(dir, tally_spool_cb, &t, &nrecs, &nbad),
                    TG_SHM_OK);
    total += nrecs;
    bad += nbad;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(t.dups, 0);
    CU_ASSERT_EQUAL(t.strays, 0);
    CU_ASSERT_EQUAL(total, (uint64_t)WRITERS * RECORDS);
    for (i = 0; i < WRITERS; i++) {
        CU_ASSERT_EQUAL(tally_prefix(&t, i), RECORDS);
    }
    CU_ASSERT_EQUAL(count_files(dir, ""), 0);
    tally_fini(&t);
    tmpdir_free(dir);
}


/* Register the "shm_ring" suite.  0 on success. */
int
tg_test_shm_ring_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"lays out records, slots and head and tail on their own lines",
         test_layout},
        {"refuses capacities that are not a power of two in range",
         test_refuses_bad_capacities},
        {"delivers records in publish order", test_delivers_in_publish_order},
        {"reports full when full and accepts again after a consume",
         test_full_then_ok_after_consume},
        {"refuses a record without a producer pid",
         test_refuses_a_record_without_pid},
        {"wraps around the slots many times past 2^32 positions",
         test_wraps_around_many_times},
        {"delivers 800,000 records from 8 processes exactly once, in "
         "producer order, spooling the overflow",
         test_stress_exactly_once},
        {"skips the slot of a producer that died after claiming it, after "
         "the grace period",
         test_skips_slot_of_dead_producer_after_grace},
        {"skips consecutive holes within one grace period",
         test_skips_consecutive_holes_in_one_grace},
        {"makes a skipped slow producer fail without writing the slot",
         test_skipped_slow_producer_gets_full_and_writes_nothing},
        {"releases the slot of a producer that died while writing on reap",
         test_reap_releases_slot_of_producer_dead_while_writing},
        {"moves on the tail of a consumer that died mid-consume",
         test_recovers_the_tail_of_a_consumer_that_died},
        {"moves on the tail of a dead consumer past a reused slot",
         test_recovers_the_tail_when_the_slot_was_reused},
        {"keeps delivering exactly once after a producer is killed",
         test_keeps_delivering_after_a_producer_is_killed},
        {"computes the standard CRC-32", test_crc32_matches_the_standard},
        {"round-trips records through a spool file", test_spool_round_trip},
        {"refuses a bad pid and reports a missing directory",
         test_spool_refuses_bad_arguments},
        {"skips and counts a corrupted spool frame",
         test_spool_skips_and_counts_a_corrupted_frame},
        {"finds the next frame after garbage in a spool file",
         test_spool_resyncs_after_garbage_between_frames},
        {"ignores and counts a truncated spool tail",
         test_spool_ignores_a_truncated_tail},
        {"ingests leftover .ingesting files first",
         test_spool_picks_up_leftover_ingesting_files_first},
        {"keeps a spool file when the callback fails and replays it",
         test_spool_keeps_the_file_when_the_callback_fails},
        {"leaves a spool file locked by a writer for the next ingest",
         test_spool_leaves_a_file_locked_by_a_writer_for_later},
        {"cuts off a spool frame that does not fit and says why",
         test_spool_cuts_off_a_frame_that_does_not_fit},
        {"loses and duplicates nothing when processes append during ingest",
         test_spool_concurrent_appends_during_ingest},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("shm_ring", NULL, NULL);
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
