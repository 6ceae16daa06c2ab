/*
 * tests/bench/main.c
 *      Micro-benchmark runner: `microbench [NAME...]` runs the named
 *      families (keys, rl, ring, route) or all of them.
 *
 * NOTES
 *      Single process except where a benchmark forks its own contenders.
 */
#include "tests/bench/bench.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    void (*run)(void);
} tg_bench_families[] = {
    {"keys", tg_bench_keys}, {"rl", tg_bench_rl},
    {"ring", tg_bench_ring}, {"route", tg_bench_route},
    {"agg", tg_bench_agg},   {"translate", tg_bench_translate},
};


/* Monotonic nanoseconds. */
uint64_t
tg_bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}


/* Print "bench: <name>: <ns> ns/op (<detail>)". */
void
tg_bench_report(const char *name, double ns_per_op, const char *detail)
{
    printf("bench: %s: %.1f ns/op (%s)\n", name, ns_per_op,
           detail ? detail : "");
    fflush(stdout);
}


int
main(int argc, char **argv)
{
    size_t i;
    int j;

    for (i = 0; i < sizeof(tg_bench_families) / sizeof(tg_bench_families[0]);
         i++) {
        bool run = argc < 2;

        for (j = 1; j < argc; j++) {
            if (strcmp(argv[j], tg_bench_families[i].name) == 0) {
                run = true;
            }
        }
        if (run) {
            tg_bench_families[i].run();
        }
    }
    return 0;
}
