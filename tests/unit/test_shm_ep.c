/*
 * tests/unit/test_shm_ep.c
 *      CUnit suite "shm_ep": the endpoint circuit breaker, cool-downs and
 *      take-outs (shm/ep.h), the endpoint events ring (shm/events.h) and
 *      its log lines (admin/events.h), the failure classifier
 *      (worker/failover.h) and the health-check verdicts (admin/health.h).
 *
 * NOTES
 *      The endpoint table and the events ring live in an anonymous
 *      MAP_SHARED mapping made before fork, as the real region is.  The
 *      breaker tests run in one process on a simulated wall clock (every
 *      function takes now_ms); the probe tests fork real processes that
 *      race for the probe, and the test process plays master when it
 *      releases a dead holder's probe.  The classifier is fed error bodies
 *      as the Anthropic and OpenAI APIs send them.
 */
#include "admin/events.h"
#include "admin/health.h"
#include "shm/ep.h"
#include "shm/events.h"
#include "tests/unit/unit.h"
#include "worker/failover.h"

#include <CUnit/CUnit.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define T0        1800000000000ull /* simulated wall clock start, ms */
#define COOLDOWN  1000u
#define THRESHOLD 3u
#define EVENTS    64u

typedef struct {
    void *mem;
    size_t size;
    tg_shm_ep_t *eps;      /* two entries */
    tg_shm_ring_t *events; /* EVENTS slots */
} fixture_t;


static void *
map_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}


static bool
fixture_init(fixture_t *f, uint32_t nevents)
{
    size_t eps = tg_shm_ep_size(2);

    f->size = eps + tg_shm_events_size(nevents);
    f->mem = map_shared(f->size);
    if (f->mem == NULL) {
        return false;
    }
    f->eps = f->mem;
    f->events = tg_shm_events_init((char *)f->mem + eps, nevents);
    tg_shm_ep_set(&f->eps[0], 0, "anthropic-a", true);
    tg_shm_ep_set(&f->eps[1], 1, "anthropic-b", true);
    return f->events != NULL;
}


static void
fixture_fini(fixture_t *f)
{
    munmap(f->mem, f->size);
}


/* Take the next event; false when there is none. */
static bool
next_event(fixture_t *f, tg_shm_event_t *ev)
{
    uint64_t id;

    return tg_shm_events_consume(f->events, ev, &id) == TG_SHM_OK;
}


static int
count_events(fixture_t *f)
{
    tg_shm_event_t ev;
    int n = 0;

    while (next_event(f, &ev)) {
        n++;
    }
    return n;
}


/* An outcome with the suite's group settings. */
static tg_shm_ep_outcome_t
outcome(int verdict, bool probe, int32_t pid, uint64_t now)
{
    tg_shm_ep_outcome_t o;

    memset(&o, 0, sizeof(o));
    o.verdict = verdict;
    o.probe = probe;
    o.error = verdict == TG_EP_V_OK ? 200 : 1007;
    o.threshold = THRESHOLD;
    o.cooldown_ms = COOLDOWN;
    o.pid = pid;
    o.now_ms = now;
    o.reason = "test";
    return o;
}


/* Start and end one attempt on <e> with <verdict>. */
static void
attempt(fixture_t *f, tg_shm_ep_t *e, int verdict, bool probe, int32_t pid,
        uint64_t now)
{
    tg_shm_ep_outcome_t o = outcome(verdict, probe, pid, now);
    _Atomic uint32_t mine = 0;

    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f->events);
}


/* Open entry 0's breaker at T0 with THRESHOLD failures. */
static void
open_breaker(fixture_t *f)
{
    uint32_t i;

    for (i = 0; i < THRESHOLD; i++) {
        attempt(f, &f->eps[0], TG_EP_V_FAIL, false, 100, T0);
    }
}


static void
test_opens_after_threshold_failures(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 100, T0, COOLDOWN, f.events),
                    TG_SHM_EP_ADMIT);
    attempt(&f, e, TG_EP_V_FAIL, false, 100, T0);
    attempt(&f, e, TG_EP_V_FAIL, false, 100, T0);
    /* A success in between resets the streak. */
    attempt(&f, e, TG_EP_V_OK, false, 100, T0);
    attempt(&f, e, TG_EP_V_FAIL, false, 100, T0);
    attempt(&f, e, TG_EP_V_FAIL, false, 100, T0);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(count_events(&f), 0);
    attempt(&f, e, TG_EP_V_FAIL, false, 100, T0 + 5);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&e->open_until_ms), T0 + 5 + COOLDOWN);
    CU_ASSERT_EQUAL(atomic_load(&e->inflight), 0);
    CU_ASSERT_EQUAL(atomic_load(&e->failures), 5);
    /* Exactly one event, whatever more failures arrive. */
    attempt(&f, e, TG_EP_V_FAIL, false, 101, T0 + 6);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_OPENED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_CLOSED);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_OPEN);
    CU_ASSERT_EQUAL(ev.consecutive, 3);
    CU_ASSERT_EQUAL(ev.until_ms, T0 + 5 + COOLDOWN);
    CU_ASSERT_EQUAL(ev.time_ms, T0 + 5);
    CU_ASSERT_EQUAL(ev.status, 1007);
    CU_ASSERT_EQUAL(ev.pid, 100);
    CU_ASSERT_EQUAL(ev.source, TG_EV_SRC_WORKER);
    CU_ASSERT_STRING_EQUAL(ev.name, "anthropic-a");
    CU_ASSERT_STRING_EQUAL(ev.reason, "test");
    CU_ASSERT_FALSE(next_event(&f, &ev));
    /* Open: nobody gets in before the deadline, and the sibling is fine. */
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 5 + COOLDOWN - 1));
    CU_ASSERT_EQUAL(
        tg_shm_ep_admit(e, 100, T0 + 5 + COOLDOWN - 1, COOLDOWN, f.events),
        TG_SHM_EP_DENY);
    CU_ASSERT_TRUE(tg_shm_ep_available(&f.eps[1], T0 + 6));
    fixture_fini(&f);
}


static void
test_half_opens_after_cooldown_with_one_probe(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    uint64_t t;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    count_events(&f);
    t = T0 + COOLDOWN;
    CU_ASSERT_TRUE(tg_shm_ep_available(e, t));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_HALF);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 200);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, t));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 201, t + 1, COOLDOWN, f.events),
                    TG_SHM_EP_DENY);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t + 1, COOLDOWN, f.events),
                    TG_SHM_EP_DENY);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_HALF_OPEN);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_OPEN);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_HALF_OPEN);
    CU_ASSERT_EQUAL(ev.pid, 200);
    CU_ASSERT_FALSE(next_event(&f, &ev));
    fixture_fini(&f);
}


static void
test_probe_success_closes(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    uint64_t t = T0 + COOLDOWN;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    count_events(&f);
    /* Another process's verdict is not the probe's. */
    CU_ASSERT_FALSE(tg_shm_ep_probe_ok(e, 201, 200, t + 10, f.events));
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_HALF);
    CU_ASSERT_TRUE(tg_shm_ep_probe_ok(e, 200, 200, t + 10, f.events));
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 0);
    CU_ASSERT_EQUAL(atomic_load(&e->consecutive), 0);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_CLOSED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_HALF_OPEN);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_CLOSED);
    CU_ASSERT_EQUAL(ev.status, 200);
    CU_ASSERT_FALSE(next_event(&f, &ev));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 201, t + 11, COOLDOWN, f.events),
                    TG_SHM_EP_ADMIT);

    /* The same through the end of the attempt: a rate limit on the probe
     * also shows the endpoint is reachable. */
    open_breaker(&f);
    t += 10 + COOLDOWN;
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 300, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    attempt(&f, e, TG_EP_V_OK, true, 300, t + 1);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 0);
    fixture_fini(&f);
}


static void
test_probe_failure_reopens(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    uint64_t t = T0 + COOLDOWN;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    count_events(&f);
    attempt(&f, e, TG_EP_V_FAIL, true, 200, t + 50);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&e->open_until_ms), t + 50 + COOLDOWN);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 0);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_OPENED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_HALF_OPEN);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_OPEN);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, t + 51));
    /* And the cycle repeats. */
    CU_ASSERT_EQUAL(
        tg_shm_ep_admit(e, 201, t + 50 + COOLDOWN, COOLDOWN, f.events),
        TG_SHM_EP_PROBE);
    fixture_fini(&f);
}


static void
test_overdue_probe_is_taken_over(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    uint64_t t = T0 + COOLDOWN;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    count_events(&f);
    CU_ASSERT_EQUAL(
        tg_shm_ep_admit(e, 201, t + 2 * COOLDOWN - 1, COOLDOWN, f.events),
        TG_SHM_EP_DENY);
    CU_ASSERT_EQUAL(
        tg_shm_ep_admit(e, 201, t + 2 * COOLDOWN, COOLDOWN, f.events),
        TG_SHM_EP_PROBE);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 201);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_HALF_OPEN);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_HALF_OPEN);
    CU_ASSERT_STRING_EQUAL(ev.reason, "probe of pid 200 overdue; taken over");
    /* The overtaken holder's late failure no longer decides. */
    attempt(&f, e, TG_EP_V_FAIL, true, 200, t + 2 * COOLDOWN + 1);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_HALF);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 201);
    attempt(&f, e, TG_EP_V_OK, true, 201, t + 2 * COOLDOWN + 2);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    fixture_fini(&f);
}


static void
test_client_gone_releases_probe_without_verdict(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    uint64_t t = T0 + COOLDOWN;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 200, t, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    count_events(&f);
    attempt(&f, e, TG_EP_V_NONE, true, 200, t + 1);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_HALF);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 0);
    CU_ASSERT_EQUAL(count_events(&f), 0);
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 201, t + 2, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    fixture_fini(&f);
}


static void
test_cools_once_per_storm(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_ep_outcome_t o;
    tg_shm_event_t ev;
    _Atomic uint32_t mine = 0;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    o = outcome(TG_EP_V_RATE, false, 100, T0);
    o.error = 429;
    o.until_ms = T0 + 5000;
    o.cool_kind = TG_EP_COOL_RETRY_AFTER;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    CU_ASSERT_EQUAL(atomic_load(&e->cooled_until_ms), T0 + 5000);
    CU_ASSERT_EQUAL(atomic_load(&e->cool_kind), TG_EP_COOL_RETRY_AFTER);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 4999));
    CU_ASSERT_TRUE(tg_shm_ep_available(e, T0 + 5000));
    CU_ASSERT_EQUAL(tg_shm_ep_wait_ms(e, T0 + 1000), 4000);
    CU_ASSERT_EQUAL(tg_shm_ep_wait_ms(e, T0 + 5000), 0);
    /* Cooling steers the router; it does not refuse a last resort. */
    CU_ASSERT_TRUE(tg_shm_ep_usable(e, T0 + 1));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 100, T0 + 1, COOLDOWN, f.events),
                    TG_SHM_EP_ADMIT);
    /* A shorter cool-down does not shorten it; a longer one extends it;
     * neither is a new event. */
    o.until_ms = T0 + 3000;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    CU_ASSERT_EQUAL(atomic_load(&e->cooled_until_ms), T0 + 5000);
    o.until_ms = T0 + 6000;
    o.now_ms = T0 + 10;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    CU_ASSERT_EQUAL(atomic_load(&e->cooled_until_ms), T0 + 6000);
    /* Rate limits are not breaker failures. */
    CU_ASSERT_EQUAL(atomic_load(&e->consecutive), 0);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&e->failures), 3);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_COOLED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_AVAILABLE);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_COOLED);
    CU_ASSERT_EQUAL(ev.until_ms, T0 + 5000);
    CU_ASSERT_EQUAL(ev.status, 429);
    CU_ASSERT_FALSE(next_event(&f, &ev));
    /* After it ended, the next storm is a new event. */
    o.now_ms = T0 + 7000;
    o.until_ms = T0 + 8000;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    CU_ASSERT_EQUAL(count_events(&f), 1);
    fixture_fini(&f);
}


static void
test_spend_cap_takes_out_until_reenabled(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_ep_outcome_t o;
    tg_shm_event_t ev;
    _Atomic uint32_t mine = 0;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    o = outcome(TG_EP_V_QUOTA, false, 100, T0);
    o.error = 429;
    o.until_ms = T0 + 3600000;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 3599999));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, 100, T0 + 1, COOLDOWN, f.events),
                    TG_SHM_EP_DENY);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_OUT);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_OUT);
    CU_ASSERT_EQUAL(ev.until_ms, T0 + 3600000);
    /* A good health check does not bring it back. */
    tg_shm_ep_recover(e, T0 + 2, 50, "health check: status 200", f.events);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 2));
    /* An operator does. */
    CU_ASSERT_EQUAL(tg_shm_ep_reenable(e, T0 + 3, 50, "admin", f.events),
                    TG_EV_S_OUT);
    CU_ASSERT_TRUE(tg_shm_ep_available(e, T0 + 3));
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_REENABLED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_OUT);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_AVAILABLE);
    CU_ASSERT_EQUAL(ev.source, TG_EV_SRC_ADMIN);
    CU_ASSERT_FALSE(next_event(&f, &ev));
    fixture_fini(&f);
}


static void
test_health_recovery_closes_and_ends_brief_cools_only(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_ep_outcome_t o;
    tg_shm_event_t ev;
    _Atomic uint32_t mine = 0;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    o = outcome(TG_EP_V_OVERLOAD, false, 100, T0);
    o.until_ms = T0 + 4000;
    o.cool_kind = TG_EP_COOL_BRIEF;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    count_events(&f);
    tg_shm_ep_recover(e, T0 + 10, 50, "health check: status 200", f.events);
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&e->cooled_until_ms), 0);
    CU_ASSERT_TRUE(tg_shm_ep_available(e, T0 + 10));
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_CLOSED);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_OPEN);
    CU_ASSERT_EQUAL(ev.source, TG_EV_SRC_HEALTH);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_UNCOOLED);
    CU_ASSERT_FALSE(next_event(&f, &ev));

    /* A retry-after is the upstream's word: it stays. */
    o = outcome(TG_EP_V_RATE, false, 100, T0 + 20);
    o.until_ms = T0 + 60000;
    o.cool_kind = TG_EP_COOL_RETRY_AFTER;
    tg_shm_ep_start(e, &mine);
    tg_shm_ep_end(e, &mine, &o, f.events);
    tg_shm_ep_recover(e, T0 + 30, 50, "health check: status 200", f.events);
    CU_ASSERT_EQUAL(atomic_load(&e->cooled_until_ms), T0 + 60000);
    fixture_fini(&f);
}


static void
test_health_trip_and_state_events(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[1];
    tg_shm_ep_health_set(e, TG_EP_HEALTH_HEALTHY, 1000, 1500, T0, 50, 200,
                         "health check: status 200", f.events);
    tg_shm_ep_health_set(e, TG_EP_HEALTH_HEALTHY, 1000, 1400, T0 + 1, 50, 200,
                         "health check: status 200", f.events);
    tg_shm_ep_health_set(e, TG_EP_HEALTH_UNHEALTHY, 800, 0, T0 + 2, 50, 1007,
                         "health check: connect failed", f.events);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 2));
    CU_ASSERT_EQUAL(atomic_load(&e->health_ok_milli), 800);
    CU_ASSERT_EQUAL(atomic_load(&e->health_checked_ms), T0 + 2);
    CU_ASSERT_TRUE(tg_shm_ep_trip(e, T0 + 2, COOLDOWN, 50, TG_EV_SRC_HEALTH,
                                  1007, "health check: connect failed",
                                  f.events));
    CU_ASSERT_FALSE(tg_shm_ep_trip(e, T0 + 3, COOLDOWN, 50, TG_EV_SRC_HEALTH,
                                   1007, "again", f.events));
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_HEALTH);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_UNKNOWN);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_HEALTHY);
    CU_ASSERT_EQUAL(ev.endpoint, 1);
    CU_ASSERT_STRING_EQUAL(ev.name, "anthropic-b");
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_HEALTH);
    CU_ASSERT_EQUAL(ev.from, TG_EV_S_HEALTHY);
    CU_ASSERT_EQUAL(ev.to, TG_EV_S_UNHEALTHY);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_OPENED);
    CU_ASSERT_EQUAL(ev.source, TG_EV_SRC_HEALTH);
    CU_ASSERT_FALSE(next_event(&f, &ev));
    fixture_fini(&f);
}


static void
test_republishing_another_endpoint_resets_availability(void)
{
    fixture_t f;
    tg_shm_ep_t *e;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    e = &f.eps[0];
    open_breaker(&f);
    atomic_store(&e->out_until_ms, UINT64_MAX);
    tg_shm_ep_set(e, 0, "anthropic-a", false);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, T0 + 10 * COOLDOWN));
    tg_shm_ep_set(e, 0, "relay", true);
    CU_ASSERT_TRUE(tg_shm_ep_available(e, T0));
    CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_CLOSED);
    fixture_fini(&f);
}


/* Fork <n> processes that wait for *go and race for the probe on <e>;
 * each writes its admit result into results[i].  Returns how many got
 * the probe. */
static int
race_for_probe(fixture_t *f, tg_shm_ep_t *e, _Atomic int *go, int *results,
               pid_t *pids, int n, uint64_t now)
{
    int i, st, probes = 0;

    atomic_store(go, 0);
    for (i = 0; i < n; i++) {
        results[i] = -1;
        pids[i] = fork();
        if (pids[i] == 0) {
            while (atomic_load(go) == 0) {
                sched_yield();
            }
            results[i] =
                tg_shm_ep_admit(e, (int32_t)getpid(), now, COOLDOWN, f->events);
            _exit(0);
        }
    }
    atomic_store(go, 1);
    for (i = 0; i < n; i++) {
        if (pids[i] > 0) {
            waitpid(pids[i], &st, 0);
        }
        probes += results[i] == TG_SHM_EP_PROBE;
    }
    return probes;
}


static void
test_exactly_one_probe_across_processes(void)
{
    enum { NPROC = 4, ROUNDS = 50 };
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    _Atomic int *go;
    int *results, r, i, bad = 0, halfs = 0, denied;
    pid_t pids[NPROC];
    uint64_t t;

    CU_ASSERT_FATAL(fixture_init(&f, 256));
    go = map_shared(4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(go);
    results = (int *)(go + 1);
    e = &f.eps[0];
    for (r = 0; r < ROUNDS; r++) {
        t = T0 + (uint64_t)r * 10 * COOLDOWN;
        /* Open it, let the cooldown pass, race. */
        atomic_store(&e->consecutive, 0);
        open_breaker(&f);
        atomic_store(&e->open_until_ms, t);
        if (race_for_probe(&f, e, go, results, pids, NPROC, t) != 1) {
            bad++;
        }
        denied = 0;
        for (i = 0; i < NPROC; i++) {
            denied += results[i] == TG_SHM_EP_DENY;
        }
        CU_ASSERT_EQUAL(denied, NPROC - 1);
        CU_ASSERT_EQUAL(atomic_load(&e->breaker), TG_EP_BREAKER_HALF);
        /* Whoever held it is dead now: play master, then close it. */
        for (i = 0; i < NPROC; i++) {
            if (results[i] == TG_SHM_EP_PROBE) {
                CU_ASSERT_EQUAL(tg_shm_ep_release_probes(f.eps, 2, pids[i],
                                                         getpid(), t, f.events),
                                1);
            }
        }
        tg_shm_ep_recover(e, t, getpid(), "test", f.events);
        while (next_event(&f, &ev)) {
            halfs += ev.type == TG_EV_HALF_OPEN;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(halfs, ROUNDS);
    munmap(go, 4096);
    fixture_fini(&f);
}


static void
test_dead_probe_holder_is_released(void)
{
    fixture_t f;
    tg_shm_ep_t *e;
    tg_shm_event_t ev;
    _Atomic int *go;
    int *results;
    pid_t pid;
    uint64_t t = T0 + COOLDOWN;

    CU_ASSERT_FATAL(fixture_init(&f, EVENTS));
    go = map_shared(4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(go);
    results = (int *)(go + 1);
    e = &f.eps[0];
    open_breaker(&f);
    count_events(&f);
    /* One process takes the probe and dies without a verdict. */
    CU_ASSERT_EQUAL(race_for_probe(&f, e, go, results, &pid, 1, t), 1);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), pid);
    CU_ASSERT_FALSE(tg_shm_ep_available(e, t + 1));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, getpid(), t + 1, COOLDOWN, f.events),
                    TG_SHM_EP_DENY);
    /* Master reaps it: another pid's probe is left alone, its own goes. */
    CU_ASSERT_EQUAL(
        tg_shm_ep_release_probes(f.eps, 2, pid + 1, getpid(), t + 2, f.events),
        0);
    CU_ASSERT_EQUAL(
        tg_shm_ep_release_probes(f.eps, 2, pid, getpid(), t + 2, f.events), 1);
    CU_ASSERT_EQUAL(atomic_load(&e->probe_pid), 0);
    CU_ASSERT_TRUE(tg_shm_ep_available(e, t + 2));
    CU_ASSERT_EQUAL(tg_shm_ep_admit(e, getpid(), t + 3, COOLDOWN, f.events),
                    TG_SHM_EP_PROBE);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_HALF_OPEN);
    CU_ASSERT_TRUE_FATAL(next_event(&f, &ev));
    CU_ASSERT_EQUAL(ev.type, TG_EV_PROBE_RESET);
    CU_ASSERT_EQUAL(ev.source, TG_EV_SRC_MASTER);
    CU_ASSERT_EQUAL(ev.pid, getpid());
    munmap(go, 4096);
    fixture_fini(&f);
}


static void
test_events_ring_exactly_once_in_order(void)
{
    enum { NPROD = 4, PER = 20000, CAP = 1024 };
    fixture_t f;
    tg_shm_event_t ev;
    int64_t last[NPROD];
    uint8_t *seen;
    pid_t pids[NPROD];
    uint64_t id, prev_id = 0, total = 0, dups = 0, disorder = 0, ids = 0;
    int i, st, alive = NPROD;

    CU_ASSERT_FATAL(fixture_init(&f, CAP));
    seen = calloc((size_t)NPROD * PER, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    for (i = 0; i < NPROD; i++) {
        last[i] = -1;
        pids[i] = fork();
        if (pids[i] == 0) {
            uint32_t s;

            for (s = 0; s < PER; s++) {
                tg_shm_events_fill(&ev, (uint32_t)i, "ep", TG_EV_COOLED,
                                   TG_EV_S_AVAILABLE, TG_EV_S_COOLED,
                                   "producer");
                ev.consecutive = s;
                ev.time_ms = T0 + s;
                ev.pid = (int32_t)getpid();
                /* A full ring drops events in production; here the
                 * producer waits, to check that nothing else is lost. */
                while (tg_shm_events_publish(f.events, &ev) != TG_SHM_OK) {
                    sched_yield();
                }
            }
            _exit(0);
        }
    }
    while (alive > 0 || total < (uint64_t)NPROD * PER) {
        if (tg_shm_events_consume(f.events, &ev, &id) != TG_SHM_OK) {
            for (i = 0; i < NPROD; i++) {
                if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                    pids[i] = 0;
                    alive--;
                }
            }
            if (alive == 0 &&
                tg_shm_events_consume(f.events, &ev, &id) != TG_SHM_OK) {
                break;
            }
            if (alive > 0) {
                continue;
            }
        }
        total++;
        if (total > 1 && id != prev_id + 1) {
            ids++;
        }
        prev_id = id;
        if (ev.endpoint >= NPROD || ev.consecutive >= PER) {
            continue;
        }
        if (seen[ev.endpoint * PER + ev.consecutive]++ != 0) {
            dups++;
        }
        if ((int64_t)ev.consecutive <= last[ev.endpoint]) {
            disorder++;
        }
        last[ev.endpoint] = ev.consecutive;
    }
    CU_ASSERT_EQUAL(total, (uint64_t)NPROD * PER);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(disorder, 0);
    CU_ASSERT_EQUAL(ids, 0);
    for (i = 0; i < NPROD; i++) {
        CU_ASSERT_EQUAL(last[i], PER - 1);
    }
    free(seen);
    fixture_fini(&f);
}


static void
test_events_ring_drops_when_full_and_counts(void)
{
    fixture_t f;
    tg_shm_event_t ev;
    uint32_t i;

    CU_ASSERT_FATAL(fixture_init(&f, 4));
    tg_shm_events_fill(&ev, 0, "ep", TG_EV_OPENED, TG_EV_S_CLOSED, TG_EV_S_OPEN,
                       "x");
    ev.pid = (int32_t)getpid();
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(tg_shm_events_publish(f.events, &ev), TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(tg_shm_events_publish(f.events, &ev), TG_SHM_FULL);
    CU_ASSERT_EQUAL(atomic_load(&f.events->full), 1);
    CU_ASSERT_EQUAL(tg_shm_events_publish(NULL, &ev), TG_SHM_FULL);
    ev.pid = 0;
    CU_ASSERT_EQUAL(tg_shm_events_publish(f.events, &ev), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(count_events(&f), 4);
    CU_ASSERT_PTR_NULL(tg_shm_ring_attach_for(f.events, f.size, 256));
    CU_ASSERT_PTR_EQUAL(tg_shm_ring_attach_for(f.events, tg_shm_events_size(4),
                                               sizeof(tg_shm_event_t)),
                        f.events);
    fixture_fini(&f);
}


static void
test_event_log_line(void)
{
    tg_shm_event_t ev;
    char line[1024];
    size_t n;

    tg_shm_events_fill(&ev, 3, "relay \"eu\"", TG_EV_OPENED, TG_EV_S_CLOSED,
                       TG_EV_S_OPEN, "Couldn't connect to server\n");
    ev.time_ms = 1795313056680ull;
    ev.until_ms = 1795313086680ull;
    ev.status = 1007;
    ev.consecutive = 5;
    ev.pid = 4242;
    ev.source = TG_EV_SRC_WORKER;
    n = tg_events_format(line, sizeof(line), &ev, 17, "gw1");
    CU_ASSERT_STRING_EQUAL(
        line,
        "{\"event_id\":17,\"time_ms\":1795313056680,"
        "\"at\":\"2026-11-22T02:04:16.680Z\",\"host\":\"gw1\","
        "\"endpoint\":\"relay \\\"eu\\\"\",\"endpoint_index\":3,"
        "\"type\":\"opened\",\"from_state\":\"closed\","
        "\"to_state\":\"open\",\"reason\":\"Couldn't connect to server \","
        "\"status\":1007,\"consecutive\":5,\"until_ms\":1795313086680,"
        "\"pid\":4242,\"source\":\"worker\"}\n");
    CU_ASSERT_EQUAL(n, strlen(line));
    ev.until_ms = 0;
    tg_events_format(line, sizeof(line), &ev, 18, "gw1");
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"until_ms\":null,"));
    CU_ASSERT_EQUAL(tg_events_format(line, 40, &ev, 18, "gw1"), 0);
}


/* ------------------------------------------------------------ classifier */

static const char anthropic_rate[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
    "\"message\":\"This request would exceed your account's rate limit. "
    "Please try again "
    "later.\"},\"request_id\":\"req_011CZsHtUjPVsseLAsotwYsF\"}";

static const char anthropic_spend[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
    "\"message\":\"You have reached your specified API usage limits. You will "
    "regain access on 2099-01-01 at 00:00 UTC.\",\"details\":{\"error_code\":"
    "\"enforced_spend_limit_reached\"}},\"request_id\":\"req_mock0001\"}";

static const char anthropic_usage_400[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"You have reached your specified API usage limits. You will "
    "regain access on 2025-07-01 at 00:00 UTC.\"}}";

static const char anthropic_credit_400[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"Your credit balance is too low to access the Anthropic "
    "API. Please go to Plans & Billing to upgrade or purchase credits.\"},"
    "\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}";

static const char anthropic_echo_400[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"model: insufficient_quota enforced_spend_limit_reached "
    "You have reached your specified API usage limits\"}}";

static const char anthropic_overloaded[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
    "\"message\":\"Overloaded\"},\"request_id\":null}";

static const char anthropic_api_error[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
    "\"Internal server error\"}}";

static const char anthropic_invalid[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"max_tokens: Field required\"}}";

static const char openai_quota[] =
    "{\n    \"error\": {\n        \"message\": \"You exceeded your current "
    "quota, please check your plan and billing details. For more information "
    "on this error, read the docs: https://platform.openai.com/docs/guides/"
    "error-codes/api-errors.\",\n        \"type\": \"insufficient_quota\",\n"
    "        \"param\": null,\n        \"code\": \"insufficient_quota\"\n    "
    "}\n}\n";

static const char openai_rate[] =
    "{\"error\":{\"message\":\"Rate limit reached for gpt-4o in organization "
    "org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested "
    "1500. Please try again in 1.0s. Visit https://platform.openai.com/"
    "account/rate-limits to learn more.\",\"type\":\"tokens\",\"param\":null,"
    "\"code\":\"rate_limit_exceeded\"}}";

static const char openai_overloaded[] =
    "{\"error\":{\"message\":\"The engine is currently overloaded, please "
    "try again later.\",\"type\":\"server_error\",\"param\":null,"
    "\"code\":null}}";


static void
classify(int status, int64_t ra, const char *body, tg_failover_t *out)
{
    tg_failover_in_t in;

    memset(&in, 0, sizeof(in));
    in.status = status;
    in.retry_after_ms = ra;
    in.body = body;
    in.body_len = body ? strlen(body) : 0;
    in.now_ms = T0;
    in.quota_cooldown_ms = 3600000;
    in.rnd = 0xdeadbeefu;
    tg_failover_classify(&in, out);
}


static void
test_classifies_rate_limits(void)
{
    tg_failover_t fo;

    classify(429, 12000, anthropic_rate, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_RATE);
    CU_ASSERT_EQUAL(fo.cool_kind, TG_EP_COOL_RETRY_AFTER);
    CU_ASSERT(fo.until_ms >= T0 + 12000 && fo.until_ms <= T0 + 13200);
    CU_ASSERT_STRING_EQUAL(fo.reason,
                           "rate limited (status 429, retry-after 12000 ms)");
    /* Without retry-after: a brief, jittered guess. */
    classify(429, -1, anthropic_rate, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_RATE);
    CU_ASSERT_EQUAL(fo.cool_kind, TG_EP_COOL_BRIEF);
    CU_ASSERT(fo.until_ms >= T0 + 1000 && fo.until_ms <= T0 + 5000);
    classify(429, 2000, openai_rate, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_RATE);
    /* An hour of retry-after is capped at five minutes (plus jitter). */
    classify(429, 3600000, anthropic_rate, &fo);
    CU_ASSERT(fo.until_ms >= T0 + TG_FAILOVER_RETRY_AFTER_MAX &&
              fo.until_ms <=
                  T0 + TG_FAILOVER_RETRY_AFTER_MAX + TG_FAILOVER_JITTER_MAX);
    /* No body at all. */
    classify(429, 1000, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_RATE);
}


static void
test_classifies_spend_caps(void)
{
    tg_failover_t fo;
    char cut[80];

    classify(429, -1, anthropic_spend, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
    CU_ASSERT_EQUAL(fo.until_ms, T0 + 3600000);
    CU_ASSERT_STRING_EQUAL(fo.reason,
                           "spend cap: enforced_spend_limit_reached; regain "
                           "access on 2099-01-01 at 00:00 UTC.");
    classify(429, -1, openai_quota, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
    CU_ASSERT_STRING_EQUAL(fo.reason, "spend cap: insufficient_quota");
    /* Anthropic has also sent the spend limit and an empty balance as 400s. */
    classify(400, -1, anthropic_usage_400, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
    CU_ASSERT_PTR_NOT_NULL(strstr(fo.reason, "specified API usage limits"));
    classify(400, -1, anthropic_credit_400, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
    /* A 400 that merely quotes the words is the client's own fault. */
    classify(400, -1, anthropic_echo_400, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OK);
    classify(402, -1, "{\"error\":{\"message\":\"Insufficient credits\"}}",
             &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
    /* A 429 body cut before its error code is a plain rate limit... */
    snprintf(cut, sizeof(cut), "%.60s", anthropic_spend);
    classify(429, -1, cut, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_RATE);
    /* ...but a relay's own wrapping of the token still counts on a 429. */
    classify(
        429, -1,
        "{\"upstream_error\":\"{\\\"code\\\":\\\"insufficient_quota\\\"}\"}",
        &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_QUOTA);
}


static void
test_classifies_overloads_and_failures(void)
{
    tg_failover_t fo;
    tg_failover_in_t in;

    classify(529, -1, anthropic_overloaded, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OVERLOAD);
    CU_ASSERT_EQUAL(fo.cool_kind, TG_EP_COOL_BRIEF);
    CU_ASSERT(fo.until_ms >= T0 + 1000 && fo.until_ms <= T0 + 5000);
    classify(529, -1, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OVERLOAD);
    classify(503, -1, openai_overloaded, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OVERLOAD);
    classify(500, -1, anthropic_api_error, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_FAIL);
    CU_ASSERT_STRING_EQUAL(fo.reason, "upstream status 500: api_error");
    classify(502, -1, "<html>bad gateway</html>", &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_FAIL);
    classify(401, -1, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_FAIL);
    /* The client's faults say nothing about the endpoint. */
    classify(400, -1, anthropic_invalid, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OK);
    classify(413, -1, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OK);
    classify(422, -1, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OK);
    classify(200, -1, NULL, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_OK);
    memset(&in, 0, sizeof(in));
    in.transport = 7;
    in.transport_text = "Couldn't connect to server";
    in.retry_after_ms = -1;
    tg_failover_classify(&in, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_FAIL);
    CU_ASSERT_STRING_EQUAL(fo.reason, "Couldn't connect to server");
    in.status = 200;
    in.transport = 56; /* reset mid-stream */
    tg_failover_classify(&in, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_FAIL);
    in.client_gone = true;
    tg_failover_classify(&in, &fo);
    CU_ASSERT_EQUAL(fo.verdict, TG_EP_V_NONE);
}


static void
test_retry_statuses(void)
{
    static const int retry[] = {401, 402, 429, 500, 502, 503, 504, 529};
    static const int pass[] = {200, 201, 301, 400, 403, 404, 408,
                               409, 413, 422, 501, 505, 599};
    size_t i;

    for (i = 0; i < NELEMS(retry); i++) {
        CU_ASSERT_EQUAL(tg_failover_status(retry[i]), TG_FAILOVER_RETRY);
    }
    for (i = 0; i < NELEMS(pass); i++) {
        CU_ASSERT_EQUAL(tg_failover_status(pass[i]), TG_FAILOVER_PASS);
    }
}


static void
test_scanner_reads_fields_and_survives_garbage(void)
{
    tg_failover_body_t b;
    char buf[TG_FAILOVER_BODY_MAX + 64];
    uint32_t x = 12345;
    size_t i, n;
    int k;

    CU_ASSERT_TRUE(
        tg_failover_scan(anthropic_spend, strlen(anthropic_spend), &b));
    CU_ASSERT_STRING_EQUAL(b.type, "rate_limit_error");
    CU_ASSERT_STRING_EQUAL(b.error_code, "enforced_spend_limit_reached");
    CU_ASSERT_EQUAL(strncmp(b.message, "You have reached", 16), 0);
    CU_ASSERT_TRUE(tg_failover_scan(openai_quota, strlen(openai_quota), &b));
    CU_ASSERT_STRING_EQUAL(b.type, "insufficient_quota");
    CU_ASSERT_STRING_EQUAL(b.code, "insufficient_quota");
    /* Members of other objects do not count. */
    CU_ASSERT_FALSE(tg_failover_scan(
        "{\"data\":{\"error\":{\"code\":\"insufficient_quota\"}}}", 47, &b));
    CU_ASSERT_FALSE(tg_failover_scan(
        "{\"error\":[{\"code\":\"insufficient_quota\"}]}", 40, &b));
    CU_ASSERT_TRUE(
        tg_failover_scan("{\"error\":\"insufficient_quota\"}", 30, &b));
    CU_ASSERT_STRING_EQUAL(b.type, "insufficient_quota");
    CU_ASSERT_FALSE(tg_failover_scan("not json", 8, &b));
    CU_ASSERT_FALSE(tg_failover_scan(NULL, 10, &b));
    CU_ASSERT_FALSE(tg_failover_scan("", 0, &b));
    /* Deep nesting, then a field: found only within the tracked depth. */
    n = 0;
    for (i = 0; i < 100; i++) {
        buf[n++] = '[';
    }
    memcpy(buf + n, "1", 1);
    n++;
    CU_ASSERT_FALSE(tg_failover_scan(buf, n, &b));
    /* Random bytes and random cuts of real bodies never crash or read
     * past the end. */
    for (k = 0; k < 20000; k++) {
        const char *src = (k & 1) ? anthropic_spend : openai_quota;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        n = x % sizeof(buf);
        if (k % 3 == 0) {
            for (i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf[i] = "{}[]\":,\\ aeiou0"[x % 15];
            }
            tg_failover_scan(buf, n, &b);
        } else {
            n = n % (strlen(src) + 1);
            memcpy(buf, src, n);
            tg_failover_scan(buf, n, &b);
        }
        CU_ASSERT_FATAL(strlen(b.message) < sizeof(b.message));
    }
}


/* ---------------------------------------------------------- health judge */

static void
judge(tg_health_hist_t *h, int status, int transport, uint64_t latency_ms,
      tg_health_verdict_t *v)
{
    tg_health_probe_t p;

    p.status = status;
    p.transport = transport;
    p.latency_us = latency_ms * 1000;
    p.timeout_ms = 5000;
    tg_health_judge(h, &p, v);
}


static void
test_health_verdicts(void)
{
    tg_health_hist_t h;
    tg_health_verdict_t v;
    int i;

    memset(&h, 0, sizeof(h));
    for (i = 0; i < 10; i++) {
        judge(&h, 200, 0, 40, &v);
    }
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_HEALTHY);
    CU_ASSERT_EQUAL(v.ok_milli, 1000);
    CU_ASSERT_TRUE(v.ok);
    CU_ASSERT_FALSE(v.trip);
    /* One connect failure: degraded; two in a row: unhealthy, trip. */
    judge(&h, 0, 7, 1, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_DEGRADED);
    CU_ASSERT_FALSE(v.trip);
    CU_ASSERT_FALSE(v.ok);
    judge(&h, 0, 28, 5000, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_UNHEALTHY);
    CU_ASSERT_TRUE(v.trip);
    CU_ASSERT_EQUAL(v.ok_milli, 800);
    /* Back: a good probe; 8 of the last 10 succeeded. */
    judge(&h, 200, 0, 40, &v);
    CU_ASSERT_TRUE(v.ok);
    CU_ASSERT_EQUAL(v.ok_milli, 800);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_HEALTHY);
    /* Slow is degraded; 404 means only that the path is not served. */
    judge(&h, 200, 0, 2600, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_DEGRADED);
    judge(&h, 404, 0, 40, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_HEALTHY);
    /* Rate limited or overloaded: answering, degraded, no recovery. */
    judge(&h, 429, 0, 40, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_DEGRADED);
    CU_ASSERT_FALSE(v.ok);
    CU_ASSERT_FALSE(v.trip);
    /* A refused credential is unhealthy at once. */
    memset(&h, 0, sizeof(h));
    judge(&h, 401, 0, 40, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_UNHEALTHY);
    CU_ASSERT_TRUE(v.trip);
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, "credential"));
    /* 5xx twice: unhealthy. */
    memset(&h, 0, sizeof(h));
    judge(&h, 503, 0, 40, &v);
    judge(&h, 500, 0, 40, &v);
    CU_ASSERT_EQUAL(v.state, TG_EP_HEALTH_UNHEALTHY);
}


/* See unit.h. */
int
tg_test_shm_ep_register(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"opens after failure_threshold consecutive failures, with one event",
         test_opens_after_threshold_failures},
        {"half-opens after the cooldown and admits one probe",
         test_half_opens_after_cooldown_with_one_probe},
        {"closes when the probe answers", test_probe_success_closes},
        {"reopens when the probe fails", test_probe_failure_reopens},
        {"lets another process take over a probe overdue by twice the "
         "cooldown",
         test_overdue_probe_is_taken_over},
        {"releases the probe without a verdict when the client leaves",
         test_client_gone_releases_probe_without_verdict},
        {"cools on rate limits with one event per storm",
         test_cools_once_per_storm},
        {"takes an endpoint out on a spend cap until an operator re-enables "
         "it",
         test_spend_cap_takes_out_until_reenabled},
        {"a good health check closes the breaker and ends brief cool-downs "
         "only",
         test_health_recovery_closes_and_ends_brief_cools_only},
        {"a failing health check trips the breaker; state changes are events",
         test_health_trip_and_state_events},
        {"resets availability when another endpoint takes the index",
         test_republishing_another_endpoint_resets_availability},
        {"admits exactly one probe among 4 racing processes",
         test_exactly_one_probe_across_processes},
        {"releases the probe of a holder that died, on reap",
         test_dead_probe_holder_is_released},
        {"delivers events from 4 processes exactly once and in order",
         test_events_ring_exactly_once_in_order},
        {"drops and counts events when the ring is full",
         test_events_ring_drops_when_full_and_counts},
        {"formats an event as one JSON line", test_event_log_line},
        {"classifies Anthropic and OpenAI rate limits",
         test_classifies_rate_limits},
        {"classifies spend caps, and not a 400 that quotes their words",
         test_classifies_spend_caps},
        {"classifies overloads, server errors and the client's faults",
         test_classifies_overloads_and_failures},
        {"retries exactly the endpoint's failure statuses",
         test_retry_statuses},
        {"scans error bodies and survives garbage and cuts",
         test_scanner_reads_fields_and_survives_garbage},
        {"judges health probes", test_health_verdicts},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("shm_ep", NULL, NULL);
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
