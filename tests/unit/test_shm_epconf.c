/*
 * tests/unit/test_shm_epconf.c
 *      The endpoint and group configuration table (shm/epconf.h) and its
 *      publisher (admin/publish_ep.c).
 *
 * NOTES
 *      The table tests map a region of their own; the publisher tests
 *      create a small shared region with tg_shm_create (4 endpoint slots,
 *      4 group slots).  The concurrency test forks a writer that keeps
 *      rewriting one entry with two whole patterns while the parent reads:
 *      a read that succeeds must be one pattern, never a mix.
 */
#include "admin/publish_ep.h"
#include "core/core.h"
#include "shm/epconf.h"
#include "shm/shm.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>


static tg_shm_epconf_hdr_t *
table_map(uint32_t neps, uint32_t ngroups, size_t *size)
{
    void *mem;

    *size = tg_shm_epconf_size(neps, ngroups);
    mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    return tg_shm_epconf_init(mem, neps, ngroups);
}


static void
test_sizes_and_entry_addresses(void)
{
    tg_shm_epconf_hdr_t *h;
    size_t size;

    CU_ASSERT_EQUAL(tg_shm_epconf_size(0, 0), sizeof(tg_shm_epconf_hdr_t));
    CU_ASSERT_EQUAL(tg_shm_epconf_size(2, 3),
                    64 + 2 * sizeof(tg_shm_epconf_ep_t) +
                        3 * sizeof(tg_shm_epconf_group_t));
    CU_ASSERT_EQUAL(
        tg_shm_epconf_size(UINT32_MAX, UINT32_MAX) > (size_t)UINT32_MAX, true);
    h = table_map(5, 7, &size);
    CU_ASSERT_EQUAL(h->neps, 5);
    CU_ASSERT_EQUAL(h->ngroups, 7);
    CU_ASSERT_EQUAL(tg_shm_epconf_generation(h), 0);
    /* Endpoints right after the header line, groups right after them,
     * the last group ending at the end of the table. */
    CU_ASSERT_PTR_EQUAL(tg_shm_epconf_ep(h, 0), (char *)h + 64);
    CU_ASSERT_PTR_EQUAL(tg_shm_epconf_group(h, 0), tg_shm_epconf_ep(h, 5));
    CU_ASSERT_PTR_EQUAL(tg_shm_epconf_group(h, 6) + 1, (char *)h + size);
    CU_ASSERT_EQUAL((uintptr_t)tg_shm_epconf_group(h, 3) % 64, 0);
    munmap(h, size);
}


static void
test_a_written_entry_reads_back_with_its_generation(void)
{
    tg_shm_epconf_ep_t *src = calloc(1, sizeof(*src)), *dst;
    tg_shm_epconf_group_t g = {0}, gr;
    tg_shm_epconf_hdr_t *h;
    size_t size;

    dst = calloc(1, sizeof(*dst));
    CU_ASSERT_FATAL(src != NULL && dst != NULL);
    h = table_map(2, 2, &size);
    src->state = TG_SHM_EPCONF_LIVE;
    snprintf(src->name, sizeof(src->name), "relay-1");
    snprintf(src->credential, sizeof(src->credential), "sk-secret");
    src->weight = 7;
    src->nmodels = 1;
    snprintf(src->models[0], sizeof(src->models[0]), "claude-*");
    snprintf(src->maps[15].to, sizeof(src->maps[15].to), "last-map");
    tg_shm_epconf_ep_write(tg_shm_epconf_ep(h, 1), src, tg_shm_epconf_next(h));
    CU_ASSERT_EQUAL(atomic_load(&tg_shm_epconf_ep(h, 1)->seq) % 2, 0);
    CU_ASSERT_EQUAL(tg_shm_epconf_ep_read(tg_shm_epconf_ep(h, 1), dst),
                    TG_SHM_OK);
    CU_ASSERT_STRING_EQUAL(dst->name, "relay-1");
    CU_ASSERT_STRING_EQUAL(dst->credential, "sk-secret");
    CU_ASSERT_STRING_EQUAL(dst->models[0], "claude-*");
    CU_ASSERT_STRING_EQUAL(dst->maps[15].to, "last-map");
    CU_ASSERT_EQUAL(dst->weight, 7);
    CU_ASSERT_EQUAL(dst->generation, 1);
    /* The table generation moves only when the writer bumps it. */
    CU_ASSERT_EQUAL(tg_shm_epconf_generation(h), 0);
    tg_shm_epconf_bump(h, 1);
    CU_ASSERT_EQUAL(tg_shm_epconf_generation(h), 1);
    CU_ASSERT_EQUAL(tg_shm_epconf_next(h), 2);

    g.state = TG_SHM_EPCONF_LIVE;
    snprintf(g.name, sizeof(g.name), "team-a");
    g.max_retries = 3;
    tg_shm_epconf_group_write(tg_shm_epconf_group(h, 1), &g, 2);
    CU_ASSERT_EQUAL(tg_shm_epconf_group_read(tg_shm_epconf_group(h, 1), &gr),
                    TG_SHM_OK);
    CU_ASSERT_STRING_EQUAL(gr.name, "team-a");
    CU_ASSERT_EQUAL(gr.max_retries, 3);
    CU_ASSERT_EQUAL(gr.generation, 2);
    /* Neighbours untouched. */
    CU_ASSERT_EQUAL(tg_shm_epconf_group(h, 0)->state, TG_SHM_EPCONF_FREE);
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, 0)->state, TG_SHM_EPCONF_FREE);
    free(src);
    free(dst);
    munmap(h, size);
}


static void
test_an_entry_left_mid_write_fails_reads_until_rewritten(void)
{
    tg_shm_epconf_group_t g = {0}, gr;
    tg_shm_epconf_hdr_t *h;
    tg_shm_epconf_group_t *e;
    size_t size;

    h = table_map(1, 1, &size);
    e = tg_shm_epconf_group(h, 0);
    g.state = TG_SHM_EPCONF_LIVE;
    snprintf(g.name, sizeof(g.name), "default");
    tg_shm_epconf_group_write(e, &g, 1);
    CU_ASSERT_FALSE(tg_shm_epconf_torn(&e->seq));
    /* A writer that died after write_begin leaves the seqlock odd. */
    (void)tg_shm_seq_write_begin(&e->seq);
    CU_ASSERT_TRUE(tg_shm_epconf_torn(&e->seq));
    CU_ASSERT_EQUAL(tg_shm_epconf_group_read(e, &gr), TG_SHM_BUSY);
    /* The next writer closes it. */
    g.cooldown_ms = 5;
    tg_shm_epconf_group_write(e, &g, 2);
    CU_ASSERT_FALSE(tg_shm_epconf_torn(&e->seq));
    CU_ASSERT_EQUAL(tg_shm_epconf_group_read(e, &gr), TG_SHM_OK);
    CU_ASSERT_EQUAL(gr.cooldown_ms, 5);
    munmap(h, size);
}


static void
pattern(tg_shm_epconf_ep_t *e, int c)
{
    memset(e, c, sizeof(*e));
    e->state = TG_SHM_EPCONF_LIVE;
}


static void
test_concurrent_reads_never_see_a_torn_entry(void)
{
    tg_shm_epconf_ep_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    tg_shm_epconf_ep_t *r = malloc(sizeof(*r));
    tg_shm_epconf_hdr_t *h;
    unsigned long ok = 0, busy = 0, torn = 0, i;
    size_t size, k;
    pid_t pid;
    int st;

    CU_ASSERT_FATAL(a != NULL && b != NULL && r != NULL);
    h = table_map(1, 0, &size);
    pattern(a, 'a');
    pattern(b, 'b');
    tg_shm_epconf_ep_write(tg_shm_epconf_ep(h, 0), a, 1);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* Bursts of writes with short pauses, as a real writer leaves:
         * a writer that never pauses may starve every read (they give
         * up after a bounded number of retries), most of all under a
         * sanitizer on a loaded machine. */
        for (i = 0;; i++) {
            tg_shm_epconf_ep_write(tg_shm_epconf_ep(h, 0), i & 1 ? a : b, 1);
            if ((i & 15) == 15) {
                usleep(20);
            }
        }
    }
    /* At least 20,000 reads and 1,000 good ones (bounded). */
    for (i = 0; (i < 20000 || ok < 1000) && i < 50000000; i++) {
        if (tg_shm_epconf_ep_read(tg_shm_epconf_ep(h, 0), r) != TG_SHM_OK) {
            busy++;
            continue;
        }
        ok++;
        /* Past the header words, every byte is one pattern's. */
        for (k = offsetof(tg_shm_epconf_ep_t, id); k < sizeof(*r); k++) {
            if (((unsigned char *)r)[k] !=
                ((unsigned char *)r)[offsetof(tg_shm_epconf_ep_t, id)]) {
                torn++;
                break;
            }
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT(ok > 0);
    (void)busy;
    free(a);
    free(b);
    free(r);
    munmap(h, size);
}


/* ------------------------------------------------------------ publisher */

static tg_shm_t tg_test_ep_shm;
static tg_conf_t tg_test_ep_conf;


static void
publisher_start(void)
{
    tg_shm_sizes_t sizes;
    char err[256];

    memset(&sizes, 0, sizeof(sizes));
    sizes.procs = 2;
    sizes.max_keys = 64;
    sizes.users = 4;
    sizes.endpoints = 4;
    sizes.groups = 4;
    sizes.ring = 64;
    sizes.leases = 4;
    CU_ASSERT_EQUAL_FATAL(
        tg_shm_create(&tg_test_ep_shm, &sizes, err, sizeof(err)), 0);
    memset(&tg_test_ep_conf, 0, sizeof(tg_test_ep_conf));
    CU_ASSERT_EQUAL_FATAL(tg_publish_ep_init(&tg_test_ep_conf, &tg_test_ep_shm),
                          TG_OK);
}


static void
publisher_stop(void)
{
    tg_publish_ep_fini();
    tg_shm_destroy(&tg_test_ep_shm);
}


static tg_conf_endpoint_t
ep(const char *name, const char *group)
{
    tg_conf_endpoint_t e;

    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.group_name, sizeof(e.group_name), "%s", group);
    snprintf(e.url, sizeof(e.url), "http://127.0.0.1:1");
    snprintf(e.credential, sizeof(e.credential), "cred-%s", name);
    e.weight = 1;
    e.enabled = true;
    return e;
}


static int
slot_of(const char *name)
{
    tg_shm_epconf_hdr_t *h = tg_shm_epconf(&tg_test_ep_shm);
    uint32_t i;

    for (i = 0; i < h->neps; i++) {
        if (tg_shm_epconf_ep(h, i)->state == TG_SHM_EPCONF_LIVE &&
            strcmp(tg_shm_epconf_ep(h, i)->name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}


static void
test_publish_keeps_slots_by_name_and_retires_deleted_ones(void)
{
    tg_shm_epconf_hdr_t *h;
    tg_conf_group_t groups[2];
    tg_conf_endpoint_t eps[4];
    uint64_t gen;
    int a;

    publisher_start();
    h = tg_shm_epconf(&tg_test_ep_shm);
    memset(groups, 0, sizeof(groups));
    snprintf(groups[0].name, sizeof(groups[0].name), "team");
    groups[0].max_retries = 1;
    eps[0] = ep("a", "default");
    eps[1] = ep("b", "team");
    CU_ASSERT_EQUAL(
        tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 2, NULL),
        4); /* default (made), team, a, b */
    gen = tg_shm_epconf_generation(h);
    CU_ASSERT_EQUAL(gen, 1);
    CU_ASSERT_STRING_EQUAL(tg_shm_epconf_group(h, 0)->name, "default");
    CU_ASSERT_EQUAL(tg_publish_group_index("team"), 1);
    CU_ASSERT_EQUAL(tg_publish_group_index("nope"), 0);
    a = slot_of("a");
    CU_ASSERT(a >= 0);
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, (uint32_t)slot_of("b"))->group, 1);
    /* The same set again changes nothing, not even the generation. */
    CU_ASSERT_EQUAL(
        tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 2, NULL), 0);
    CU_ASSERT_EQUAL(tg_shm_epconf_generation(h), gen);
    /* Listed in another order, each keeps its slot; a change is one
     * entry written. */
    eps[2] = eps[0];
    eps[0] = eps[1];
    eps[1] = eps[2];
    eps[1].weight = 9;
    CU_ASSERT_EQUAL(
        tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 2, NULL), 1);
    CU_ASSERT_EQUAL(slot_of("a"), a);
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, (uint32_t)a)->weight, 9);
    CU_ASSERT(tg_shm_epconf_generation(h) > gen);
    /* "a" deleted: its slot is GONE (name kept, credential wiped) and
     * not given to the newcomers while never-used slots remain. */
    eps[1] = ep("c", "default");
    eps[2] = ep("d", "default");
    CU_ASSERT(tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 3, NULL) >
              0);
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, (uint32_t)a)->state,
                    TG_SHM_EPCONF_GONE);
    CU_ASSERT_STRING_EQUAL(tg_shm_epconf_ep(h, (uint32_t)a)->name, "a");
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, (uint32_t)a)->credential[0], '\0');
    CU_ASSERT_EQUAL(tg_shm_epconf_ep(h, (uint32_t)a)->enabled, 0);
    CU_ASSERT(slot_of("c") >= 0 && slot_of("c") != a);
    CU_ASSERT(slot_of("d") >= 0 && slot_of("d") != a);
    /* The table is full (4 slots, one retired within its grace period):
     * a fourth live endpoint is refused, the others stay. */
    eps[3] = ep("e", "default");
    CU_ASSERT_EQUAL(
        tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 4, NULL), -1);
    CU_ASSERT_EQUAL(slot_of("e"), -1);
    CU_ASSERT(slot_of("b") >= 0 && slot_of("c") >= 0 && slot_of("d") >= 0);
    /* An endpoint of an unpublished group is left out. */
    eps[3] = ep("f", "no-such-group");
    CU_ASSERT_EQUAL(
        tg_publish_endpoints(&tg_test_ep_shm, groups, 1, eps, 4, NULL), -1);
    CU_ASSERT_EQUAL(slot_of("f"), -1);
    /* Admin's view: slot-indexed, the gone slot without a URL. */
    CU_ASSERT_STRING_EQUAL(tg_publish_ep_conf()->endpoints[slot_of("b")].name,
                           "b");
    CU_ASSERT_EQUAL(tg_publish_ep_conf()->endpoints[a].url[0], '\0');
    publisher_stop();
}


static void
test_a_new_name_on_a_slot_starts_with_fresh_health_counters(void)
{
    tg_conf_endpoint_t eps[1];
    tg_shm_ep_t *health;
    int s;

    publisher_start();
    eps[0] = ep("x", "default");
    CU_ASSERT(tg_publish_endpoints(&tg_test_ep_shm, NULL, 0, eps, 1, NULL) > 0);
    s = slot_of("x");
    CU_ASSERT_FATAL(s >= 0);
    health =
        tg_shm_ep_get(tg_shm_table(&tg_test_ep_shm, TG_SHM_T_EPS), (uint32_t)s);
    CU_ASSERT_STRING_EQUAL(health->name, "x");
    atomic_store(&health->failures, 5);
    /* Republishing the same endpoint keeps its history. */
    eps[0].weight = 3;
    CU_ASSERT(tg_publish_endpoints(&tg_test_ep_shm, NULL, 0, eps, 1, NULL) > 0);
    CU_ASSERT_EQUAL(atomic_load(&health->failures), 5);
    publisher_stop();
}


int
tg_test_shm_epconf_register(void)
{
    CU_pSuite s = CU_add_suite("shm_epconf", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "sizes and entry addresses",
                     test_sizes_and_entry_addresses) ||
        !CU_add_test(s, "a written entry reads back with its generation",
                     test_a_written_entry_reads_back_with_its_generation) ||
        !CU_add_test(
            s, "an entry left mid-write fails reads until rewritten",
            test_an_entry_left_mid_write_fails_reads_until_rewritten) ||
        !CU_add_test(s, "concurrent reads never see a torn entry",
                     test_concurrent_reads_never_see_a_torn_entry) ||
        !CU_add_test(
            s, "publish keeps slots by name and retires deleted ones",
            test_publish_keeps_slots_by_name_and_retires_deleted_ones) ||
        !CU_add_test(
            s, "a new name on a slot starts with fresh health counters",
            test_a_new_name_on_a_slot_starts_with_fresh_health_counters)) {
        return 1;
    }
    return 0;
}
