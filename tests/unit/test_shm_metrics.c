/*
 * tests/unit/test_shm_metrics.c
 *      CUnit suite "shm_metrics": per-process request counters, histogram
 *      buckets and the bounded model name table.
 *
 * NOTES
 *      The table lives in an anonymous MAP_SHARED mapping, as in
 *      production.  Records are built by hand, the way the worker's end
 *      function fills them.
 */
#include "shm/metrics.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define TG_TEST_M_PROCS 4
#define TG_TEST_M_EPS   3


static tg_shm_metrics_hdr_t *
m_new(size_t *size)
{
    void *mem;

    *size = tg_shm_metrics_size(TG_TEST_M_PROCS, TG_TEST_M_EPS);
    mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    return mem == MAP_FAILED
               ? NULL
               : tg_shm_metrics_init(mem, TG_TEST_M_PROCS, TG_TEST_M_EPS);
}


static tg_usage_rec_t
m_rec(uint16_t endpoint, uint16_t status, const char *model)
{
    tg_usage_rec_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.endpoint = endpoint;
    rec.status = status;
    rec.outcome =
        status >= 200 && status < 300 ? TG_USAGE_OK : TG_USAGE_UPSTREAM_ERROR;
    rec.attempts = 1;
    rec.latency_us = 300000;
    rec.ttfb_us = 40000;
    rec.tokens[TG_USAGE_TOK_INPUT] = 10;
    rec.tokens[TG_USAGE_TOK_OUTPUT] = 5;
    snprintf(rec.model, sizeof(rec.model), "%s", model);
    return rec;
}


static void
test_sizes_and_layout(void)
{
    size_t size;
    tg_shm_metrics_hdr_t *m = m_new(&size);

    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(m->stride % 64, 0);
    CU_ASSERT_EQUAL(size, sizeof(*m) + (size_t)TG_TEST_M_PROCS * m->stride);
    CU_ASSERT_EQUAL((uintptr_t)tg_shm_metrics_row(m, 1) % 64, 0);
    CU_ASSERT_EQUAL((uintptr_t)tg_shm_metrics_ep(m, tg_shm_metrics_row(m, 1),
                                                 TG_TEST_M_EPS) %
                        64,
                    0);
    CU_ASSERT_EQUAL(
        tg_shm_metrics_size(UINT32_MAX, 65535) == 0 || sizeof(size_t) == 8, 1);
    CU_ASSERT_EQUAL(tg_shm_metrics_size(4, 70000), 0);
    munmap(m, size);
}


static void
test_buckets_are_upper_bounds(void)
{
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(0), 0);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(5000), 0);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(5001), 1);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(1000000), 7);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(300000000), 14);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(300000001),
                    TG_SHM_METRICS_BUCKETS - 1);
    CU_ASSERT_EQUAL(tg_shm_metrics_bucket(UINT64_MAX),
                    TG_SHM_METRICS_BUCKETS - 1);
}


static void
test_observe_counts_one_request_once(void)
{
    size_t size;
    tg_shm_metrics_hdr_t *m = m_new(&size);
    tg_shm_metrics_extra_t extra = {TG_SHM_REFUSE_NONE, 1234};
    tg_usage_rec_t rec = m_rec(1, 200, "claude-sonnet-4-5");
    tg_shm_metrics_row_t *row;
    tg_shm_metrics_ep_t *ep;
    uint32_t mi;

    CU_ASSERT_FATAL(m != NULL);
    rec.flags = TG_USAGE_F_OPENAI;
    rec.attempts = 3;
    tg_shm_metrics_observe(m, 2, &rec, &extra);
    row = tg_shm_metrics_row(m, 2);
    ep = tg_shm_metrics_ep(m, row, 1);
    CU_ASSERT_EQUAL(row->used, 1);
    CU_ASSERT_EQUAL(ep->requests[1][2], 1);
    CU_ASSERT_EQUAL(ep->requests[0][2], 0);
    CU_ASSERT_EQUAL(ep->retries, 2);
    CU_ASSERT_EQUAL(ep->attempts, 3);
    CU_ASSERT_EQUAL(ep->ttfb[tg_shm_metrics_bucket(40000)], 1);
    CU_ASSERT_EQUAL(ep->ttfb_sum_us, 40000);
    CU_ASSERT_EQUAL(ep->duration[tg_shm_metrics_bucket(300000)], 1);
    mi = tg_shm_metrics_model(m, "claude-sonnet-4-5", 17, 0);
    CU_ASSERT_EQUAL(mi, 0);
    CU_ASSERT_EQUAL(row->model_requests[0], 1);
    CU_ASSERT_EQUAL(row->model_tokens[0][TG_USAGE_TOK_INPUT], 10);
    CU_ASSERT_EQUAL(row->model_tokens[0][TG_USAGE_TOK_OUTPUT], 5);
    CU_ASSERT_EQUAL(row->model_cost_pusd[0], 1234);
    CU_ASSERT_EQUAL(row->unpriced, 0);
    /* A request with tokens and no price is counted as unpriced. */
    rec.flags |= TG_USAGE_F_UNPRICED;
    extra.cost_pusd = 0;
    tg_shm_metrics_observe(m, 2, &rec, &extra);
    CU_ASSERT_EQUAL(row->unpriced, 1);
    CU_ASSERT_EQUAL(row->model_requests[0], 2);
    CU_ASSERT_EQUAL(row->model_cost_pusd[0], 1234);
    /* Other rows are untouched; an out-of-range row is ignored. */
    CU_ASSERT_EQUAL(tg_shm_metrics_row(m, 1)->used, 0);
    tg_shm_metrics_observe(m, TG_TEST_M_PROCS, &rec, &extra);
    CU_ASSERT_EQUAL(ep->requests[1][2], 2);
    munmap(m, size);
}


static void
test_no_endpoint_and_refusals(void)
{
    size_t size;
    tg_shm_metrics_hdr_t *m = m_new(&size);
    tg_shm_metrics_extra_t rpm = {TG_SHM_REFUSE_RPM, 0};
    tg_usage_rec_t rec = m_rec(UINT16_MAX, 429, "gpt-4o");
    tg_shm_metrics_row_t *row;

    CU_ASSERT_FATAL(m != NULL);
    rec.outcome = TG_USAGE_REJECTED;
    rec.attempts = 0;
    rec.ttfb_us = 0;
    tg_shm_metrics_observe(m, 0, &rec, &rpm);
    rec.status = 401;
    tg_shm_metrics_observe(m, 0, &rec, NULL);
    rec.status = 0; /* the client left before any status */
    rec.outcome = TG_USAGE_CLIENT_GONE;
    tg_shm_metrics_observe(m, 0, &rec, NULL);
    row = tg_shm_metrics_row(m, 0);
    CU_ASSERT_EQUAL(tg_shm_metrics_ep(m, row, TG_TEST_M_EPS)->requests[0][4],
                    2);
    CU_ASSERT_EQUAL(tg_shm_metrics_ep(m, row, TG_TEST_M_EPS)->requests[0][0],
                    1);
    CU_ASSERT_EQUAL(row->refused[TG_SHM_REFUSE_RPM], 1);
    CU_ASSERT_EQUAL(row->refused[TG_SHM_REFUSE_AUTH], 1);
    /* Never sent upstream: no model claimed, no tokens. */
    CU_ASSERT_EQUAL(m->models[0].state, TG_SHM_MODEL_EMPTY);
    CU_ASSERT_EQUAL(row->model_requests[TG_SHM_METRICS_MODELS], 0);
    munmap(m, size);
}


static void
test_model_table_is_bounded(void)
{
    size_t size;
    tg_shm_metrics_hdr_t *m = m_new(&size);
    tg_shm_metrics_row_t *row;
    tg_usage_rec_t rec;
    char name[32];
    uint32_t i;

    CU_ASSERT_FATAL(m != NULL);
    /* A failed answer claims no slot. */
    rec = m_rec(0, 404, "made-up-model");
    tg_shm_metrics_observe(m, 0, &rec, NULL);
    CU_ASSERT_EQUAL(m->models[0].state, TG_SHM_MODEL_EMPTY);
    for (i = 0; i < TG_SHM_METRICS_MODELS + 5; i++) {
        snprintf(name, sizeof(name), "model-%u", i);
        rec = m_rec(0, 200, name);
        tg_shm_metrics_observe(m, 0, &rec, NULL);
    }
    /* Names that would need escaping never get a slot. */
    rec = m_rec(0, 200, "bad\"name");
    tg_shm_metrics_observe(m, 0, &rec, NULL);
    row = tg_shm_metrics_row(m, 0);
    for (i = 0; i < TG_SHM_METRICS_MODELS; i++) {
        snprintf(name, sizeof(name), "model-%u", i);
        CU_ASSERT_EQUAL(m->models[i].state, TG_SHM_MODEL_READY);
        CU_ASSERT_EQUAL(tg_shm_metrics_model(m, name, strlen(name), 0), i);
        CU_ASSERT_EQUAL(row->model_requests[i], 1);
    }
    /* 404 + 5 beyond the table + the bad name. */
    CU_ASSERT_EQUAL(row->model_requests[TG_SHM_METRICS_MODELS], 7);
    CU_ASSERT_EQUAL(tg_shm_metrics_model(m, "model-40", 8, 1),
                    TG_SHM_METRICS_MODELS);
    munmap(m, size);
}


static void
test_restarts_count_by_role(void)
{
    size_t size;
    tg_shm_metrics_hdr_t *m = m_new(&size);

    CU_ASSERT_FATAL(m != NULL);
    tg_shm_metrics_restart(m, 0);
    tg_shm_metrics_restart(m, 0);
    tg_shm_metrics_restart(m, 1);
    tg_shm_metrics_restart(NULL, 1);
    CU_ASSERT_EQUAL(m->restarts_worker, 2);
    CU_ASSERT_EQUAL(m->restarts_admin, 1);
    munmap(m, size);
}


int
tg_test_shm_metrics_register(void)
{
    CU_pSuite s = CU_add_suite("shm_metrics", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "sizes and layout", test_sizes_and_layout) ||
        !CU_add_test(s, "buckets are upper bounds",
                     test_buckets_are_upper_bounds) ||
        !CU_add_test(s, "observe counts one request once",
                     test_observe_counts_one_request_once) ||
        !CU_add_test(s, "requests without an endpoint and refusals",
                     test_no_endpoint_and_refusals) ||
        !CU_add_test(s, "the model table is bounded",
                     test_model_table_is_bounded) ||
        !CU_add_test(s, "restarts count by role",
                     test_restarts_count_by_role)) {
        return 1;
    }
    return 0;
}
