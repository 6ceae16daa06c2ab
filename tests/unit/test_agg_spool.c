/*
 * tests/unit/test_agg_spool.c
 *      admin/agg_spool.c: the usage journal's batches, acknowledgements,
 *      recovery of a torn tail and of records written but not released.
 */
#include "admin/agg_spool.h"
#include "core/core.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tdir[64];
static uint64_t seen[64];
static int nseen;


static void
collect(void *ctx, const tg_usage_rec_t *rec)
{
    (void)ctx;
    if (nseen < 64) {
        seen[nseen] = rec->request_id;
    }
    nseen++;
}


/* Append records <from>..<to> (request ids) as ring positions. */
static void
append(tg_agg_spool_t *s, uint64_t from, uint64_t to, uint16_t type)
{
    char frame[TG_AGG_FRAME_REC_SIZE];
    tg_agg_frame_rec_t fr;
    uint64_t i;

    for (i = from; i <= to; i++) {
        memset(&fr, 0, sizeof(fr));
        fr.ring_id = 7;
        fr.pos = i;
        fr.rec.request_id = i;
        CU_ASSERT_EQUAL(
            tg_agg_spool_append(
                s, frame, tg_agg_spool_frame(frame, type, &fr, sizeof(fr)), 1),
            TG_OK);
    }
}


static void
setup(tg_agg_spool_t *s)
{
    char err[256];

    snprintf(tdir, sizeof(tdir), "/tmp/tg-unit-agg.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tdir));
    CU_ASSERT_EQUAL_FATAL(tg_agg_spool_open(s, tdir, err, sizeof(err)), TG_OK);
}


static void
teardown(tg_agg_spool_t *s)
{
    char p[128];

    tg_agg_spool_close(s);
    snprintf(p, sizeof(p), "%s/usage.journal", tdir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/usage.state", tdir);
    unlink(p);
    rmdir(tdir);
}


static void
test_batches_in_order(void)
{
    tg_agg_spool_t s;
    uint64_t seq, end;

    setup(&s);
    append(&s, 1, 3, TG_AGG_FR_REC);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_DECLINED);
    CU_ASSERT_EQUAL(tg_agg_spool_close_batch(&s, 1), TG_OK);
    append(&s, 4, 5, TG_AGG_FR_REC);
    CU_ASSERT_EQUAL(tg_agg_spool_close_batch(&s, 2), TG_OK);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_OK);
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(nseen, 3);
    CU_ASSERT_EQUAL(seen[2], 3);
    tg_agg_spool_ack(&s, seq, end);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_OK);
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(nseen, 2);
    CU_ASSERT_EQUAL(seen[0], 4);
    tg_agg_spool_ack(&s, seq, end);
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_DECLINED);
    teardown(&s);
}


static void
test_reopen_keeps_unacked_and_cuts_torn_tail(void)
{
    tg_agg_spool_t s;
    uint64_t seq, end, size;
    char err[256], p[128];
    int fd;

    setup(&s);
    append(&s, 1, 2, TG_AGG_FR_REC);
    tg_agg_spool_close_batch(&s, 1);
    tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end);
    tg_agg_spool_ack(&s, seq, end);
    append(&s, 3, 4, TG_AGG_FR_REC);
    tg_agg_spool_close_batch(&s, 2);
    append(&s, 5, 6, TG_AGG_FR_REC); /* written, not in a batch yet */
    size = s.size;
    tg_agg_spool_close(&s);
    /* A torn frame at the tail, as a kill mid-write leaves it. */
    snprintf(p, sizeof(p), "%s/usage.journal", tdir);
    fd = open(p, O_WRONLY | O_APPEND);
    CU_ASSERT_EQUAL(write(fd, "\x4a\x52\x4e\x4c\x01\x00\x10", 7), 7);
    close(fd);

    CU_ASSERT_EQUAL_FATAL(tg_agg_spool_open(&s, tdir, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(s.size, size);
    CU_ASSERT_EQUAL(s.next_seq, 3);
    CU_ASSERT_EQUAL(s.open_recs, 2);
    /* The newest ring record in the journal, so it is not taken twice. */
    CU_ASSERT(s.have_last && s.last_ring_id == 7 && s.last_pos == 6);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_OK);
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(nseen, 2);
    CU_ASSERT_EQUAL(seen[0], 3);
    tg_agg_spool_ack(&s, seq, end);
    /* The open records form the next batch, under the next number. */
    tg_agg_spool_close_batch(&s, 3);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_OK);
    CU_ASSERT_EQUAL(seq, 3);
    CU_ASSERT_EQUAL(nseen, 2);
    CU_ASSERT_EQUAL(seen[1], 6);
    teardown(&s);
}


static void
test_worker_spool_ids_seen_once(void)
{
    tg_agg_spool_t s;
    char err[256];

    setup(&s);
    CU_ASSERT_FALSE(tg_agg_spool_wseen(&s, 42));
    CU_ASSERT_TRUE(tg_agg_spool_wseen(&s, 42));
    append(&s, 100, 101, TG_AGG_FR_WREC);
    tg_agg_spool_close(&s);
    /* After a crash, the ids in the journal are known again. */
    CU_ASSERT_EQUAL_FATAL(tg_agg_spool_open(&s, tdir, err, sizeof(err)), TG_OK);
    CU_ASSERT_TRUE(tg_agg_spool_wseen(&s, 100));
    CU_ASSERT_FALSE(tg_agg_spool_wseen(&s, 102));
    tg_agg_spool_wforget(&s);
    CU_ASSERT_FALSE(tg_agg_spool_wseen(&s, 100));
    teardown(&s);
}


static void
test_rotation_keeps_open_records(void)
{
    tg_agg_spool_t s;
    uint64_t seq, end;
    char err[256];

    setup(&s);
    s.rotate_bytes = 1;
    append(&s, 1, 3, TG_AGG_FR_REC);
    tg_agg_spool_close_batch(&s, 1);
    append(&s, 4, 5, TG_AGG_FR_REC); /* open: carried over */
    tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end);
    tg_agg_spool_ack(&s, seq, end);
    CU_ASSERT_EQUAL(s.acked_off, 0);
    CU_ASSERT_EQUAL(s.size, 2 * TG_AGG_FRAME_REC_SIZE);
    append(&s, 6, 6, TG_AGG_FR_REC);
    tg_agg_spool_close(&s);
    CU_ASSERT_EQUAL_FATAL(tg_agg_spool_open(&s, tdir, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(s.open_recs, 3);
    CU_ASSERT_EQUAL(s.next_seq, 2);
    tg_agg_spool_close_batch(&s, 2);
    nseen = 0;
    CU_ASSERT_EQUAL(tg_agg_spool_read_batch(&s, collect, NULL, &seq, &end),
                    TG_OK);
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(nseen, 3);
    CU_ASSERT_EQUAL(seen[0], 4);
    CU_ASSERT_EQUAL(seen[2], 6);
    teardown(&s);
}


int
tg_test_agg_spool_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"reads closed batches in order and only closed ones",
         test_batches_in_order},
        {"keeps unacknowledged batches across a reopen and cuts a torn tail",
         test_reopen_keeps_unacked_and_cuts_torn_tail},
        {"knows worker-spool records already in the journal",
         test_worker_spool_ids_seen_once},
        {"starts a new journal with the open records once all is applied",
         test_rotation_keeps_open_records},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("agg_spool", NULL, NULL);
    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
