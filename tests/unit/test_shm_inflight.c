/*
 * tests/unit/test_shm_inflight.c
 *      CUnit suite "shm_inflight": the per-worker in-flight table and the
 *      records master writes for a dead worker's requests.
 *
 * NOTES
 *      The ring is a private anonymous mapping; the reap publishes as
 *      this process.  Mismatches print both values.
 */
#include "shm/inflight.h"
#include "shm/ring.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define INF_EXPECT(got, want)                                                  \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_) {                                                        \
            fprintf(stderr, "\n  %s:%d: %s is %lld, want %lld", __FILE__,      \
                    __LINE__, #got, g_, w_);                                   \
        }                                                                      \
        CU_ASSERT_EQUAL(g_, w_);                                               \
    } while (0)


/* An open entry for request <id> with <tokens> output tokens, known or
 * not. */
static void
inf_open(tg_shm_inflight_t *e, uint64_t id, uint32_t out, bool known)
{
    tg_shm_inflight_t init;

    memset(&init, 0, sizeof(init));
    atomic_init(&init.request_id, id);
    init.start_us = 1;
    init.user = 3;
    init.key_id = 9;
    init.endpoint = 1;
    init.status = 200;
    init.flags = TG_USAGE_F_STREAM;
    init.attempts = 1;
    init.state = known ? TG_SHM_INFLIGHT_KNOWN : 0;
    init.bytes_in = 300;
    init.bytes_out = 1200;
    init.tokens[TG_USAGE_TOK_INPUT] = 25;
    init.tokens[TG_USAGE_TOK_OUTPUT] = out;
    memcpy(init.model, "claude-x", 8);
    tg_shm_inflight_open(e, &init);
}


static void
test_a_crashed_entry_becomes_one_record(void)
{
    tg_shm_inflight_t e[4];
    tg_usage_rec_t rec;

    memset(e, 0, sizeof(e));
    inf_open(&e[1], 0x77, 0, false);
    tg_shm_inflight_record(&e[1], 42, 1000, 500001, &rec);
    INF_EXPECT(rec.request_id, 0x77);
    INF_EXPECT(rec.outcome, TG_USAGE_WORKER_CRASHED);
    INF_EXPECT(rec.status, 200);
    INF_EXPECT(rec.user, 3);
    INF_EXPECT(rec.key_id, 9);
    INF_EXPECT(rec.endpoint, 1);
    INF_EXPECT(rec.pid, 42);
    INF_EXPECT(rec.tokens[TG_USAGE_TOK_INPUT], 25);
    INF_EXPECT(rec.latency_us, 500000);
    INF_EXPECT(rec.bytes_out, 1200);
    /* Cut before its final usage: flagged unknown; known stays known. */
    INF_EXPECT(rec.flags, TG_USAGE_F_STREAM | TG_USAGE_F_UNKNOWN);
    inf_open(&e[2], 0x78, 9, true);
    tg_shm_inflight_record(&e[2], 42, 1000, 500001, &rec);
    INF_EXPECT(rec.flags, TG_USAGE_F_STREAM);
    INF_EXPECT(rec.tokens[TG_USAGE_TOK_OUTPUT], 9);
    CU_ASSERT_STRING_EQUAL(rec.model, "claude-x");
}


static void
test_reap_publishes_open_entries_and_closes_them(void)
{
    size_t size = tg_shm_ring_size(16);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    tg_shm_inflight_t e[8];
    tg_shm_ring_t *ring;
    tg_usage_rec_t rec;
    uint32_t lost = 99, n;
    int got = 0;

    CU_ASSERT_FATAL(mem != MAP_FAILED);
    ring = tg_shm_ring_init(mem, 16);
    CU_ASSERT_FATAL(ring != NULL);
    memset(e, 0, sizeof(e));
    inf_open(&e[0], 0x10, 1, false);
    inf_open(&e[5], 0x11, 2, false);
    inf_open(&e[6], 0x12, 3, false);
    tg_shm_inflight_close(&e[6]); /* its record was published already */
    n = tg_shm_inflight_reap(e, 8, ring, "/nonexistent", (int32_t)getpid(),
                             &lost);
    INF_EXPECT(n, 2);
    INF_EXPECT(lost, 0);
    while (tg_shm_ring_consume(ring, &rec) == TG_SHM_OK) {
        CU_ASSERT(rec.request_id == 0x10 || rec.request_id == 0x11);
        INF_EXPECT(rec.outcome, TG_USAGE_WORKER_CRASHED);
        got++;
    }
    INF_EXPECT(got, 2);
    /* Closed: a second reap writes nothing. */
    INF_EXPECT(tg_shm_inflight_reap(e, 8, ring, "/nonexistent",
                                    (int32_t)getpid(), &lost),
               0);
    munmap(mem, size);
}


/* See unit.h. */
int
tg_test_shm_inflight_register(void)
{
    CU_pSuite s = CU_add_suite("shm_inflight", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "a crashed entry becomes one worker_crashed record",
                    test_a_crashed_entry_becomes_one_record) == NULL ||
        CU_add_test(s, "reaping publishes every open entry once and closes it",
                    test_reap_publishes_open_entries_and_closes_them) == NULL) {
        return -1;
    }
    return 0;
}
