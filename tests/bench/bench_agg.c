/*
 * tests/bench/bench_agg.c
 *      Admin's usage path without the database: records appended to the
 *      journal as a drain round does, a batch closed (fdatasync), read
 *      back, summed per hour x user x key x model x endpoint and written
 *      as the JSON argument of tg_api.usage_ingest.
 *
 * NOTES
 *      The batch is left in $TG_BENCH_AGG_OUT (default
 *      /tmp/tg-bench-agg.json) so tools/bench.sh can time the statement
 *      itself against a PostgreSQL; ingestion per record is the sum of
 *      the two figures.
 */
#include "admin/agg_batch.h"
#include "admin/agg_spool.h"
#include "core/conf.h"
#include "core/core.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECS  50000
#define ROUND 4096


static void
bench_agg_cb(void *ctx, const tg_usage_rec_t *rec)
{
    tg_agg_batch_add(ctx, rec);
}


/* See bench.h. */
void
tg_bench_agg(void)
{
    static tg_agg_frame_rec_t fr;
    char dir[] = "/tmp/tg-bench-agg.XXXXXX", err[256], detail[160];
    const char *out = getenv("TG_BENCH_AGG_OUT");
    tg_conf_endpoint_t eps[2];
    tg_conf_t conf;
    tg_agg_spool_t s;
    tg_agg_batch_t *b;
    tg_buf_t frames, json;
    uint64_t t0, t1, seq, end;
    FILE *f;
    int i;

    memset(&conf, 0, sizeof(conf));
    memset(eps, 0, sizeof(eps));
    snprintf(eps[0].name, sizeof(eps[0].name), "ep-a");
    snprintf(eps[1].name, sizeof(eps[1].name), "ep-b");
    conf.endpoints = eps;
    conf.nendpoints = 2;
    if (mkdtemp(dir) == NULL ||
        tg_agg_spool_open(&s, dir, err, sizeof(err)) != TG_OK) {
        printf("bench: agg: setup failed\n");
        return;
    }
    b = tg_agg_batch_create(&conf, false);
    tg_buf_init(&frames, (size_t)ROUND * TG_AGG_FRAME_REC_SIZE);
    tg_buf_init(&json, 256u << 20);
    t0 = tg_bench_now_ns();
    for (i = 0; i < RECS; i++) {
        memset(&fr.rec, 0, sizeof(fr.rec));
        fr.pos = (uint64_t)i;
        fr.rec.request_id = (uint64_t)i + 1;
        fr.rec.time_ms = tg_time_wall_ms();
        fr.rec.user = 1 + (uint32_t)(i % 500);
        fr.rec.key_id = 1 + (uint32_t)(i % 1000);
        fr.rec.endpoint = (uint16_t)(i % 2);
        fr.rec.tokens[0] = 100 + (uint64_t)(i % 7);
        fr.rec.tokens[1] = 50;
        fr.rec.tokens[2] = 20;
        fr.rec.latency_us = 120000;
        snprintf(fr.rec.model, sizeof(fr.rec.model), "%s",
                 i % 3 == 0 ? "gpt-4o" : "claude-sonnet-4-5");
        tg_buf_reserve(&frames, TG_AGG_FRAME_REC_SIZE);
        frames.last += tg_agg_spool_frame(frames.data + frames.last,
                                          TG_AGG_FR_REC, &fr, sizeof(fr));
        if (tg_buf_len(&frames) >= (size_t)ROUND * TG_AGG_FRAME_REC_SIZE ||
            i == RECS - 1) {
            tg_agg_spool_append(
                &s, frames.data, tg_buf_len(&frames),
                (uint32_t)(tg_buf_len(&frames) / TG_AGG_FRAME_REC_SIZE));
            tg_buf_reset(&frames, SIZE_MAX);
        }
    }
    tg_agg_spool_close_batch(&s, tg_time_wall_ms());
    tg_agg_spool_read_batch(&s, bench_agg_cb, b, &seq, &end);
    tg_agg_batch_json(b, "0000000000000001-1", "bench", &json);
    t1 = tg_bench_now_ns();
    snprintf(detail, sizeof(detail),
             "%d records -> journal -> batch of %u rows, %zu bytes of JSON; "
             "%.0f records/s",
             RECS, tg_agg_batch_rows(b), tg_buf_len(&json),
             RECS / ((double)(t1 - t0) / 1e9));
    tg_bench_report("agg journal+batch per record", (double)(t1 - t0) / RECS,
                    detail);
    f = fopen(out ? out : "/tmp/tg-bench-agg.json", "w");
    if (f != NULL) {
        fwrite(json.data + json.pos, 1, tg_buf_len(&json), f);
        fclose(f);
    }
    tg_agg_spool_ack(&s, seq, end);
    tg_agg_spool_close(&s);
    tg_agg_batch_destroy(b);
    tg_buf_fini(&frames);
    tg_buf_fini(&json);
    snprintf(err, sizeof(err), "%s/usage.journal", dir);
    unlink(err);
    snprintf(err, sizeof(err), "%s/usage.state", dir);
    unlink(err);
    rmdir(dir);
}
