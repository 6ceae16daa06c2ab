/*
 * tests/unit/test_ev.c
 *      CUnit suite "ev": the epoll loop, its timers and fd handlers.
 *
 * NOTES
 *      Uses pipes for readiness and short real sleeps for timers (a few tens
 *      of ms in all).  Timer deadlines are loop->now + ms with the cached
 *      time, so timers armed together fire in the order of their ms.
 */
#include "core/core.h"
#include "core/ev.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTIMERS 600

typedef struct {
    tg_ev_timer_t t;
    int id;
} my_timer_t;

static int fired[NTIMERS];
static uint64_t fired_when[NTIMERS];
static int nfired;


static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1) {
        continue;
    }
}


static void
timer_cb(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    my_timer_t *m = t->data;

    (void)loop;
    if (nfired < NTIMERS) {
        fired_when[nfired] = t->when;
        fired[nfired++] = m->id;
    }
}


static void
test_creates_and_destroys(void)
{
    tg_ev_loop_t *loop = tg_ev_create(1024);

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT(tg_ev_now(loop) > 0);
    CU_ASSERT_EQUAL(tg_ev_mask(loop, 3), 0);
    tg_ev_destroy(loop);
    tg_ev_destroy(NULL);
}


static void
test_timers_fire_in_order(void)
{
    static my_timer_t tm[NTIMERS];
    tg_ev_loop_t *loop = tg_ev_create(64);
    int i, rounds = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    memset(tm, 0, sizeof(tm));
    nfired = 0;
    srand(7);
    /* More timers than the initial heap, so the heap grows too. */
    for (i = 0; i < NTIMERS; i++) {
        tm[i].id = i;
        tm[i].t.handler = timer_cb;
        tm[i].t.data = &tm[i];
        tg_ev_timer_add(loop, &tm[i].t, (uint64_t)(rand() % 30));
        CU_ASSERT_TRUE(tg_ev_timer_armed(&tm[i].t));
    }
    while (nfired < NTIMERS && rounds++ < 100) {
        tg_ev_run_once(loop, 50);
    }
    CU_ASSERT_EQUAL(nfired, NTIMERS);
    for (i = 1; i < nfired; i++) {
        CU_ASSERT(fired_when[i - 1] <= fired_when[i]);
    }
    for (i = 0; i < NTIMERS; i++) {
        CU_ASSERT_FALSE(tg_ev_timer_armed(&tm[i].t));
    }
    tg_ev_destroy(loop);
}


static void
test_timer_del(void)
{
    my_timer_t tm[5];
    tg_ev_loop_t *loop = tg_ev_create(64);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    memset(tm, 0, sizeof(tm));
    nfired = 0;
    for (i = 0; i < 5; i++) {
        tm[i].id = i;
        tm[i].t.handler = timer_cb;
        tm[i].t.data = &tm[i];
        tg_ev_timer_add(loop, &tm[i].t, (uint64_t)(5 - i));
    }
    /* Delete the earliest, one in the middle, and one twice. */
    tg_ev_timer_del(loop, &tm[4].t);
    tg_ev_timer_del(loop, &tm[2].t);
    tg_ev_timer_del(loop, &tm[2].t);
    CU_ASSERT_FALSE(tg_ev_timer_armed(&tm[2].t));
    sleep_ms(10);
    tg_ev_run_once(loop, 0);
    CU_ASSERT_EQUAL(nfired, 3);
    CU_ASSERT_EQUAL(fired[0], 3);
    CU_ASSERT_EQUAL(fired[1], 1);
    CU_ASSERT_EQUAL(fired[2], 0);
    tg_ev_destroy(loop);
}


static void
test_timer_rearm_moves_deadline(void)
{
    my_timer_t a = {0}, b = {0};
    tg_ev_loop_t *loop = tg_ev_create(64);

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    nfired = 0;
    a.id = 1;
    a.t.handler = timer_cb;
    a.t.data = &a;
    b.id = 2;
    b.t.handler = timer_cb;
    b.t.data = &b;
    tg_ev_timer_add(loop, &a.t, 1);
    tg_ev_timer_add(loop, &b.t, 2);
    /* Push a past b, then b far out: only a fires soon, once. */
    tg_ev_timer_add(loop, &a.t, 3);
    tg_ev_timer_add(loop, &b.t, 60000);
    sleep_ms(10);
    tg_ev_run_once(loop, 0);
    CU_ASSERT_EQUAL(nfired, 1);
    CU_ASSERT_EQUAL(fired[0], 1);
    CU_ASSERT_TRUE(tg_ev_timer_armed(&b.t));
    tg_ev_timer_del(loop, &b.t);
    tg_ev_destroy(loop);
}


/* fd handler bookkeeping. */
typedef struct {
    int rfd[2]; /* read ends of two pipes */
    int wfd[2];
    int calls[2];
    int other_calls; /* calls of the replacement handler */
    bool readd;      /* re-add the other fd instead of only deleting */
    uint32_t events;
} pair_t;

static pair_t pair;


static void
read_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    char buf[16];
    ssize_t n;

    (void)loop;
    n = read(fd, buf, sizeof(buf));
    CU_ASSERT(n > 0);
    *(int *)data += 1;
    pair.events = events;
}


static void
test_dispatches_pipe(void)
{
    tg_ev_loop_t *loop = tg_ev_create(1024);
    int p[2], count = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    CU_ASSERT_EQUAL(tg_ev_add(loop, p[0], TG_EV_READ, read_handler, &count),
                    TG_OK);
    CU_ASSERT_EQUAL(tg_ev_mask(loop, p[0]), TG_EV_READ);
    /* Nothing to read yet. */
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 0), 0);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(write(p[1], "x", 1), 1);
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 1000), 1);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT(pair.events & EPOLLIN);
    /* Deleted: no more dispatch even though readable. */
    CU_ASSERT_EQUAL(write(p[1], "y", 1), 1);
    tg_ev_del(loop, p[0]);
    tg_ev_del(loop, p[0]);
    CU_ASSERT_EQUAL(tg_ev_mask(loop, p[0]), 0);
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 0), 0);
    CU_ASSERT_EQUAL(count, 1);
    close(p[0]);
    close(p[1]);
    tg_ev_destroy(loop);
}


static void
other_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    (void)loop;
    (void)fd;
    (void)data;
    (void)events;
    pair.other_calls++;
}


/* Whichever of the pair runs first removes the other one. */
static void
pair_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    int me = (int)(intptr_t)data, other = 1 - me;
    char c;

    (void)events;
    CU_ASSERT_EQUAL(read(fd, &c, 1), 1);
    pair.calls[me]++;
    tg_ev_del(loop, pair.rfd[other]);
    if (pair.readd) {
        CU_ASSERT_EQUAL(
            tg_ev_add(loop, pair.rfd[other], TG_EV_READ, other_handler, NULL),
            TG_OK);
    }
}


static void
pair_open(tg_ev_loop_t *loop, bool readd)
{
    int i, p[2];

    memset(&pair, 0, sizeof(pair));
    pair.readd = readd;
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        pair.rfd[i] = p[0];
        pair.wfd[i] = p[1];
        CU_ASSERT_EQUAL(tg_ev_add(loop, p[0], TG_EV_READ, pair_handler,
                                  (void *)(intptr_t)i),
                        TG_OK);
        CU_ASSERT_EQUAL(write(p[1], "x", 1), 1);
    }
}


static void
pair_close(void)
{
    int i;

    for (i = 0; i < 2; i++) {
        close(pair.rfd[i]);
        close(pair.wfd[i]);
    }
}


static void
test_delete_fd_inside_other_handler(void)
{
    tg_ev_loop_t *loop = tg_ev_create(1024);

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    pair_open(loop, false);
    /* Both are ready in the same round; only the first handler runs. */
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 1000), 2);
    CU_ASSERT_EQUAL(pair.calls[0] + pair.calls[1], 1);
    pair_close();
    tg_ev_destroy(loop);
}


static void
test_readd_in_same_round_skips_stale_event(void)
{
    tg_ev_loop_t *loop = tg_ev_create(1024);

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    pair_open(loop, true);
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 1000), 2);
    CU_ASSERT_EQUAL(pair.calls[0] + pair.calls[1], 1);
    /* The pending event belonged to the old registration. */
    CU_ASSERT_EQUAL(pair.other_calls, 0);
    /* The new registration gets the next round (still readable). */
    tg_ev_run_once(loop, 1000);
    CU_ASSERT_EQUAL(pair.other_calls, 1);
    pair_close();
    tg_ev_destroy(loop);
}


static int hook_calls;


static void
hook(tg_ev_loop_t *loop, void *data)
{
    (void)loop;
    CU_ASSERT_PTR_EQUAL(data, &hook_calls);
    hook_calls++;
}


static void
stop_timer_cb(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)t;
    tg_ev_stop(loop);
}


static void
test_before_sleep_and_stop(void)
{
    tg_ev_loop_t *loop = tg_ev_create(64);
    tg_ev_timer_t t = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    hook_calls = 0;
    tg_ev_set_before_sleep(loop, hook, &hook_calls);
    tg_ev_run_once(loop, 0);
    CU_ASSERT_EQUAL(hook_calls, 1);
    t.handler = stop_timer_cb;
    tg_ev_timer_add(loop, &t, 5);
    tg_ev_run(loop);
    CU_ASSERT(hook_calls >= 2);
    CU_ASSERT_FALSE(tg_ev_timer_armed(&t));
    tg_ev_destroy(loop);
}


static void
test_rejects_fd_out_of_range(void)
{
    tg_ev_loop_t *loop = tg_ev_create(8);
    int count = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT_EQUAL(tg_ev_add(loop, 8, TG_EV_READ, read_handler, &count),
                    TG_ERROR);
    CU_ASSERT_EQUAL(tg_ev_add(loop, -1, TG_EV_READ, read_handler, &count),
                    TG_ERROR);
    CU_ASSERT_EQUAL(tg_ev_mod(loop, 5, TG_EV_READ), TG_ERROR);
    tg_ev_del(loop, 100);
    CU_ASSERT_EQUAL(tg_ev_mask(loop, 100), 0);
    tg_ev_destroy(loop);
}


static void
test_mod_changes_mask(void)
{
    tg_ev_loop_t *loop = tg_ev_create(1024);
    int p[2], count = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* The write end is writable at once. */
    CU_ASSERT_EQUAL(tg_ev_add(loop, p[1], 0, other_handler, &count), TG_OK);
    memset(&pair, 0, sizeof(pair));
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 0), 0);
    CU_ASSERT_EQUAL(tg_ev_mod(loop, p[1], TG_EV_WRITE), TG_OK);
    CU_ASSERT_EQUAL(tg_ev_mask(loop, p[1]), TG_EV_WRITE);
    CU_ASSERT_EQUAL(tg_ev_mod(loop, p[1], TG_EV_WRITE), TG_OK);
    CU_ASSERT_EQUAL(tg_ev_run_once(loop, 1000), 1);
    CU_ASSERT_EQUAL(pair.other_calls, 1);
    tg_ev_del(loop, p[1]);
    close(p[0]);
    close(p[1]);
    tg_ev_destroy(loop);
}


/* Register the "ev" suite.  0 on success. */
int
tg_test_ev_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"creates and destroys a loop", test_creates_and_destroys},
        {"fires timers in deadline order", test_timers_fire_in_order},
        {"does not fire deleted timers", test_timer_del},
        {"moves the deadline of a re-armed timer",
         test_timer_rearm_moves_deadline},
        {"dispatches a readable pipe to its handler", test_dispatches_pipe},
        {"survives deleting an fd inside another fd's handler of the round",
         test_delete_fd_inside_other_handler},
        {"skips the stale event of an fd re-added in the same round",
         test_readd_in_same_round_skips_stale_event},
        {"runs the before-sleep hook and stops on request",
         test_before_sleep_and_stop},
        {"rejects fds outside the set size", test_rejects_fd_out_of_range},
        {"changes the mask of a registered fd", test_mod_changes_mask},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("ev", NULL, NULL);
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
