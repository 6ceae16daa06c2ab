/*
 * tests/bench/bench_ring.c
 *      Micro-benchmark of the usage ring (shm/ring.h): the cost of one
 *      tg_shm_ring_publish() as a worker pays it.
 *
 * NOTES
 *      Three figures, in ns per publish:
 *      - uncontended: one process publishes a batch, then drains it
 *        untimed (the atomic operations and the 256-byte copy, with every
 *        line in one core's cache);
 *      - 1 producer: the consumer drains in another process at the same
 *        time, as admin does, so the slot lines the producer writes were
 *        last touched by the consumer on another core.  The producer
 *        publishes timed bursts of TG_BENCH_RING_BURST records (well
 *        under the capacity: a worker never fills the ring in normal
 *        running) and waits untimed for the ring to empty between them;
 *      - 2 producers: two processes start each burst at a shared barrier
 *        and split the ring between them, so both CAS head all the time
 *        (the worst case: real workers publish once per request, micro-
 *        seconds apart).  The consumer drains between bursts, untimed:
 *        with as few as two cores a third busy process would take a core
 *        from a producer and the bursts would stop overlapping.
 *      Each figure is the median burst of each producer (a burst during
 *      which the scheduler took the core away does not count), averaged
 *      over the producers, then the median of TG_BENCH_RING_ROUNDS
 *      rounds.  The detail gives the mean and any FULL retries.  Each
 *      process is pinned to a cpu (round robin), so two spinning
 *      producers never share a core while another is idle.  The ring
 *      lives in an anonymous MAP_SHARED mapping made before fork, like
 *      the real region.
 */
#include "shm/ring.h"
#include "tests/bench/bench.h"

#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TG_BENCH_RING_CAPACITY 4096
#define TG_BENCH_RING_OPS      1000000 /* uncontended, per round */
#define TG_BENCH_RING_ROUNDS   5
#define TG_BENCH_RING_BATCH    1024 /* uncontended batch */
#define TG_BENCH_RING_BURST    256  /* 1 producer: records per burst */
#define TG_BENCH_RING_BURSTS   1000 /* bursts per producer and round */

/* Shared between the benchmark processes, in the same mapping. */
typedef struct {
    alignas(64) _Atomic uint32_t ready;   /* processes at the start line */
    _Atomic uint32_t go;                  /* 1 = start */
    _Atomic uint32_t stop;                /* 1 = consumer may leave */
    alignas(64) _Atomic uint32_t burst;   /* producers at a burst's start */
    alignas(64) _Atomic uint32_t done;    /* producers past a burst's end */
    alignas(64) _Atomic uint32_t drained; /* bursts drained (phased) */
    alignas(64) double median[2];         /* each producer's median burst */
    double mean[2];                       /* each producer's mean burst */
    uint64_t full[2];                     /* each producer's FULL retries */
} tg_bench_ring_ctl_t;

/* One forked setting. */
typedef struct {
    int producers; /* 1 or 2 */
    int burst;     /* records per timed burst, per producer */
    bool phased;   /* the consumer drains only between bursts */
} tg_bench_ring_mode_t;


static int
tg_bench_ring_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


static double
tg_bench_ring_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), tg_bench_ring_cmp);
    return v[n / 2];
}


static void
tg_bench_ring_rec(tg_usage_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->pid = (int32_t)getpid();
    rec->status = 200;
    rec->tokens[TG_USAGE_TOK_INPUT] = 1200;
    rec->tokens[TG_USAGE_TOK_OUTPUT] = 300;
    snprintf(rec->model, sizeof(rec->model), "claude-sonnet-4-5");
}


/* One process: publish a batch (timed), drain it (untimed). */
static double
tg_bench_ring_uncontended(tg_shm_ring_t *r)
{
    tg_usage_rec_t rec, out;
    uint64_t ns = 0, t0;
    int i, j;

    tg_bench_ring_rec(&rec);
    for (i = 0; i < TG_BENCH_RING_OPS / TG_BENCH_RING_BATCH; i++) {
        t0 = tg_bench_now_ns();
        for (j = 0; j < TG_BENCH_RING_BATCH; j++) {
            rec.request_id++;
            if (tg_shm_ring_publish(r, &rec) != TG_SHM_OK) {
                return -1;
            }
        }
        ns += tg_bench_now_ns() - t0;
        while (tg_shm_ring_consume(r, &out) == TG_SHM_OK) {
        }
    }
    return (double)ns /
           (TG_BENCH_RING_OPS / TG_BENCH_RING_BATCH * TG_BENCH_RING_BATCH);
}


/* Spin until <*a> reaches <n>, yielding now and then when cores are few. */
static void
tg_bench_ring_await(_Atomic uint32_t *a, uint32_t n)
{
    uint32_t spins = 0;

    while (atomic_load(a) < n) {
        if (++spins % 1024 == 0) {
            sched_yield();
        }
    }
}


/*
 * Producer <id>: publish TG_BENCH_RING_BURSTS timed bursts as <m> says,
 * each started at the producers' barrier and followed by an untimed wait
 * for the ring to empty; store the median and mean ns per publish and
 * the FULL retries in <ctl>.
 */
static void
tg_bench_ring_produce(tg_shm_ring_t *r, tg_bench_ring_ctl_t *ctl, int id,
                      const tg_bench_ring_mode_t *m)
{
    static double v[TG_BENCH_RING_BURSTS];
    uint32_t p = (uint32_t)m->producers;
    tg_usage_rec_t rec;
    uint64_t full = 0, t0;
    double sum = 0;
    int i, j;

    tg_bench_ring_rec(&rec);
    atomic_fetch_add(&ctl->ready, 1);
    tg_bench_ring_await(&ctl->go, 1);
    for (i = 0; i < TG_BENCH_RING_BURSTS; i++) {
        atomic_fetch_add(&ctl->burst, 1);
        tg_bench_ring_await(&ctl->burst, (uint32_t)(i + 1) * p);
        t0 = tg_bench_now_ns();
        for (j = 0; j < m->burst; j++) {
            rec.request_id++;
            while (tg_shm_ring_publish(r, &rec) != TG_SHM_OK) {
                full++;
            }
        }
        v[i] = (double)(tg_bench_now_ns() - t0) / m->burst;
        sum += v[i];
        atomic_fetch_add(&ctl->done, 1);
        if (m->phased) {
            tg_bench_ring_await(&ctl->drained, (uint32_t)i + 1);
        } else {
            while (atomic_load(&r->tail) != atomic_load(&r->head)) {
                sched_yield();
            }
        }
    }
    ctl->median[id] = tg_bench_ring_median(v, TG_BENCH_RING_BURSTS);
    ctl->mean[id] = sum / TG_BENCH_RING_BURSTS;
    ctl->full[id] = full;
}


/*
 * The consumer: drain all the time, or (phased) only once every producer
 * has finished a burst; leave when told to and the ring is empty.
 */
static void
tg_bench_ring_drain(tg_shm_ring_t *r, tg_bench_ring_ctl_t *ctl,
                    const tg_bench_ring_mode_t *m)
{
    uint32_t bursts = 0;
    tg_usage_rec_t out;

    atomic_fetch_add(&ctl->ready, 1);
    for (;;) {
        if (m->phased) {
            if (atomic_load(&ctl->done) <
                (bursts + 1) * (uint32_t)m->producers) {
                if (atomic_load(&ctl->stop)) {
                    break;
                }
                usleep(20);
                continue;
            }
            while (tg_shm_ring_consume(r, &out) == TG_SHM_OK) {
            }
            atomic_store(&ctl->drained, ++bursts);
            continue;
        }
        if (tg_shm_ring_consume(r, &out) == TG_SHM_OK) {
            continue;
        }
        if (atomic_load(&ctl->stop)) {
            break;
        }
        /* Leave the core to a producer when there are few cores. */
        sched_yield();
    }
}


/*
 * Pin the calling process to cpu <i> modulo the cpus online, so that two
 * spinning producers do not share one core while another sits idle.
 */
static void
tg_bench_ring_pin(int i)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    if (n < 2) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET((int)(i % n), &set);
    sched_setaffinity(0, sizeof(set), &set);
}


/*
 * One round of <m>: the producers and a consumer process.  Returns the
 * producers' mean median ns per publish, adds their mean ns per publish
 * to <*mean> and their FULL retries to <*full>; -1 when a fork failed.
 */
static double
tg_bench_ring_forked(tg_shm_ring_t *r, tg_bench_ring_ctl_t *ctl,
                     const tg_bench_ring_mode_t *m, double *mean,
                     uint64_t *full)
{
    int i, n, st, p = m->producers;
    double median = 0;
    pid_t pids[3];

    memset(ctl, 0, sizeof(*ctl));
    tg_shm_ring_init(r, TG_BENCH_RING_CAPACITY);
    fflush(NULL);
    for (n = 0; n <= p; n++) {
        pids[n] = fork();
        if (pids[n] == 0) {
            tg_bench_ring_pin(n);
            if (n == p) {
                tg_bench_ring_drain(r, ctl, m);
            } else {
                tg_bench_ring_produce(r, ctl, n, m);
            }
            _exit(0);
        }
        if (pids[n] < 0) {
            perror("bench ring: fork");
            break;
        }
    }
    if (n <= p) {
        for (i = 0; i < n; i++) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &st, 0);
        }
        return -1;
    }
    tg_bench_ring_await(&ctl->ready, (uint32_t)n);
    atomic_store(&ctl->go, 1);
    for (i = 0; i < p; i++) {
        waitpid(pids[i], &st, 0);
        median += ctl->median[i] / p;
        *mean += ctl->mean[i] / p;
        *full += ctl->full[i];
    }
    atomic_store(&ctl->stop, 1);
    waitpid(pids[p], &st, 0);
    return median;
}


/* shm/ring: ns per tg_shm_ring_publish() in three settings. */
void
tg_bench_ring(void)
{
    static const tg_bench_ring_mode_t modes[] = {
        {1, TG_BENCH_RING_BURST, false},
        {2, TG_BENCH_RING_CAPACITY / 2, true},
    };
    size_t size = tg_shm_ring_size(TG_BENCH_RING_CAPACITY), k;
    double v[TG_BENCH_RING_ROUNDS];
    tg_bench_ring_ctl_t *ctl;
    char detail[200];
    tg_shm_ring_t *r;
    void *mem;
    int i;

    mem = mmap(NULL, size + sizeof(*ctl), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("bench ring: mmap");
        return;
    }
    r = tg_shm_ring_init(mem, TG_BENCH_RING_CAPACITY);
    ctl = (tg_bench_ring_ctl_t *)((char *)mem + size);

    for (i = 0; i < TG_BENCH_RING_ROUNDS; i++) {
        v[i] = tg_bench_ring_uncontended(r);
    }
    snprintf(detail, sizeof(detail),
             "one process, batches of %d, capacity %d, median of %d",
             TG_BENCH_RING_BATCH, TG_BENCH_RING_CAPACITY, TG_BENCH_RING_ROUNDS);
    tg_bench_report("ring publish uncontended",
                    tg_bench_ring_median(v, TG_BENCH_RING_ROUNDS), detail);

    for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
        const tg_bench_ring_mode_t *m = &modes[k];
        uint64_t full = 0;
        double mean = 0;

        for (i = 0; i < TG_BENCH_RING_ROUNDS; i++) {
            v[i] = tg_bench_ring_forked(r, ctl, m, &mean, &full);
        }
        snprintf(detail, sizeof(detail),
                 "%s on %ld cpus, bursts of %d, mean %.1f, %llu full "
                 "retries, median of %d rounds",
                 m->phased ? "contending on head, consumer between bursts"
                           : "consumer process draining meanwhile",
                 sysconf(_SC_NPROCESSORS_ONLN), m->burst,
                 mean / TG_BENCH_RING_ROUNDS, (unsigned long long)full,
                 TG_BENCH_RING_ROUNDS);
        tg_bench_report(m->producers == 1 ? "ring publish 1 producer"
                                          : "ring publish 2 producers",
                        tg_bench_ring_median(v, TG_BENCH_RING_ROUNDS), detail);
    }
    munmap(mem, size + sizeof(*ctl));
}
