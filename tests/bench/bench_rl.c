/*
 * tests/bench/bench_rl.c
 *      Micro-benchmark of shm/rl: the rate-limit work a worker does per
 *      request, on one key, alone and with a second process contending.
 *
 * NOTES
 *      A request costs one rpm_check, one conc_acquire and one
 *      conc_release, three CASes on the key's cache line.  The limits are
 *      set so that every call is admitted (rpm 60,000,000 with a burst of
 *      2^32 - 1, concurrency unlimited), so every call takes the CAS path,
 *      the slow one; refusals are a single load.  <now> is read once per
 *      round, as a worker reads its loop time once per wake-up.
 *
 *      Contended: a forked child runs the same loop on the same entry
 *      until told to stop, so the line moves between the two CPUs on
 *      nearly every call; the figure is the parent's time per request
 *      while that happens.  Each figure is the median of several rounds.
 */
#include "shm/rl.h"
#include "tests/bench/bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TG_BENCH_RL_OPS    1000000 /* requests per round */
#define TG_BENCH_RL_ROUNDS 7       /* rounds per figure, median kept */
#define TG_BENCH_RL_RPM    60000000
#define TG_BENCH_RL_BURST  UINT32_MAX

enum {
    TG_BENCH_RL_RPM_ONLY = 0, /* rpm_check */
    TG_BENCH_RL_CONC = 1,     /* conc_acquire + conc_release */
    TG_BENCH_RL_REQUEST = 2   /* all three */
};

/* The shared region: the key, a start/stop handshake, two lease arrays. */
typedef struct {
    tg_shm_rl_t table[1];            /* the one key */
    _Atomic uint32_t ready;          /* the child is looping */
    _Atomic uint32_t stop;           /* the parent is done */
    _Atomic uint64_t child_ops;      /* requests the child made so far */
    alignas(64) uint8_t leases[128]; /* 2 procs x 8 leases, 64-byte stride */
} tg_bench_rl_shared_t;


/* <ops> requests of kind <what> on the key, with lease array <mine>. */
static void
tg_bench_rl_loop(tg_bench_rl_shared_t *sh, tg_shm_lease_t *mine, int what,
                 uint64_t ops)
{
    uint64_t i, now = tg_bench_now_ns() / 1000;

    for (i = 0; i < ops; i++) {
        if (what != TG_BENCH_RL_CONC) {
            tg_shm_rl_rpm_check(&sh->table[0], TG_BENCH_RL_RPM,
                                TG_BENCH_RL_BURST, now, NULL);
        }
        if (what != TG_BENCH_RL_RPM_ONLY) {
            tg_shm_rl_conc_acquire(sh->table, 0, 0, &mine[0]);
            tg_shm_rl_conc_release(sh->table, &mine[0]);
        }
    }
}


static int
tg_bench_rl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


/* Median ns per request of kind <what> over TG_BENCH_RL_ROUNDS rounds. */
static double
tg_bench_rl_measure(tg_bench_rl_shared_t *sh, int what)
{
    tg_shm_lease_t *mine = tg_shm_rl_leases_of(sh->leases, 8, 0);
    double ns[TG_BENCH_RL_ROUNDS];
    uint64_t t0;
    int r;

    for (r = 0; r < TG_BENCH_RL_ROUNDS; r++) {
        /* Keep tat near now, far inside the burst tolerance. */
        atomic_store(&sh->table[0].tat, 0);
        t0 = tg_bench_now_ns();
        tg_bench_rl_loop(sh, mine, what, TG_BENCH_RL_OPS);
        ns[r] = (double)(tg_bench_now_ns() - t0) / TG_BENCH_RL_OPS;
    }
    qsort(ns, TG_BENCH_RL_ROUNDS, sizeof(ns[0]), tg_bench_rl_cmp);
    return ns[TG_BENCH_RL_ROUNDS / 2];
}


/*
 * Pin the calling process to CPU <cpu>, so the two contenders run on two
 * cores whenever both run, rather than taking turns on one.  Best effort.
 */
static void
tg_bench_rl_pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) == -1) {
        fprintf(stderr, "bench: rl: sched_setaffinity(%d) failed (%d: %s)\n",
                cpu, errno, strerror(errno));
    }
}


/*
 * The contender: requests of kind <what> on the same key until the parent
 * says stop, in chunks so the stop flag costs nothing measurable.
 */
static void
tg_bench_rl_child(tg_bench_rl_shared_t *sh, int what)
{
    tg_shm_lease_t *mine = tg_shm_rl_leases_of(sh->leases, 8, 1);
    uint64_t ops = 0;

    tg_bench_rl_pin(1);
    atomic_store(&sh->ready, 1);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        tg_bench_rl_loop(sh, mine, what, 1000);
        ops += 1000;
        atomic_store_explicit(&sh->child_ops, ops, memory_order_relaxed);
    }
}


/*
 * Median ns per request of kind <what> in this process (pinned to CPU 0)
 * while a forked child (pinned to CPU 1) runs the same loop on the same
 * key; -1 when it cannot fork.  *<overlap> gets the child's requests
 * during the measurement as a fraction of the parent's: near 1 means the
 * two really ran side by side.
 */
static double
tg_bench_rl_contended(tg_bench_rl_shared_t *sh, int what, double *overlap)
{
    cpu_set_t saved;
    uint64_t before;
    double ns = -1;
    pid_t pid;
    int st;

    if (sched_getaffinity(0, sizeof(saved), &saved) == -1) {
        CPU_ZERO(&saved);
    }
    atomic_store(&sh->ready, 0);
    atomic_store(&sh->stop, 0);
    atomic_store(&sh->child_ops, 0);
    pid = fork();
    if (pid == -1) {
        fprintf(stderr, "bench: rl: fork() failed (%d: %s)\n", errno,
                strerror(errno));
        return -1;
    }
    if (pid == 0) {
        tg_bench_rl_child(sh, what);
        _exit(0);
    }
    tg_bench_rl_pin(0);
    while (!atomic_load(&sh->ready)) {
        sched_yield();
    }
    before = atomic_load(&sh->child_ops);
    ns = tg_bench_rl_measure(sh, what);
    *overlap = (double)(atomic_load(&sh->child_ops) - before) /
               ((double)TG_BENCH_RL_OPS * TG_BENCH_RL_ROUNDS);
    atomic_store(&sh->stop, 1);
    waitpid(pid, &st, 0);
    if (CPU_COUNT(&saved) > 0) {
        sched_setaffinity(0, sizeof(saved), &saved);
    }
    return ns;
}


/* shm/rl: rpm check and concurrency lease, 1 and 2 processes on one key. */
void
tg_bench_rl(void)
{
    static const struct {
        const char *name;
        int what;
    } kinds[] = {
        {"rl rpm_check", TG_BENCH_RL_RPM_ONLY},
        {"rl conc acquire+release", TG_BENCH_RL_CONC},
        {"rl request (rpm_check+acquire+release)", TG_BENCH_RL_REQUEST},
    };
    tg_bench_rl_shared_t *sh;
    char name[96], detail[96];
    double ns, overlap;
    size_t i;

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("bench: rl: mmap() failed");
        return;
    }
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        ns = tg_bench_rl_measure(sh, kinds[i].what);
        snprintf(name, sizeof(name), "%s, 1 process", kinds[i].name);
        tg_bench_report(name, ns, "one key, uncontended");

        ns = tg_bench_rl_contended(sh, kinds[i].what, &overlap);
        if (ns < 0) {
            continue;
        }
        snprintf(name, sizeof(name), "%s, 2 processes", kinds[i].name);
        snprintf(detail, sizeof(detail),
                 "one key, CPUs 0 and 1; the child made %.2fx as many "
                 "meanwhile",
                 overlap);
        tg_bench_report(name, ns, detail);
    }
    munmap(sh, sizeof(*sh));
}
