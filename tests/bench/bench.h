/*
 * tests/bench/bench.h
 *      Micro-benchmarks run by `make bench` (build/microbench).
 *
 * NOTES
 *      Each function runs one benchmark family and prints one line per
 *      measurement: "bench: <name>: <value> ns/op (<detail>)".  Numbers are
 *      wall-clock medians of several rounds; the machine is shared, so the
 *      bench script reports them next to reference figures from the same
 *      run.
 */
#ifndef TG_TESTS_BENCH_BENCH_H
#define TG_TESTS_BENCH_BENCH_H

#include <stdint.h>

/* Monotonic nanoseconds. */
uint64_t tg_bench_now_ns(void);

/* Print one result line. */
void tg_bench_report(const char *name, double ns_per_op, const char *detail);

void tg_bench_keys(void);      /* shm/keys: lookup with 1,000,000 keys */
void tg_bench_rl(void);        /* shm/rl: rate-limit check, 2 processes */
void tg_bench_ring(void);      /* shm/ring: publish */
void tg_bench_route(void);     /* endpoint selection (routing issue) */
void tg_bench_agg(void);       /* admin/agg: journal, batch, JSON */
void tg_bench_translate(void); /* worker/translate: per streamed chunk */

#endif /* TG_TESTS_BENCH_BENCH_H */
