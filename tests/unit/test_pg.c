/*
 * tests/unit/test_pg.c
 *      The asynchronous PostgreSQL connection (admin/pg.c) without a
 *      server: refusals before READY, connection failures and back-off,
 *      channel names.
 *
 * NOTES
 *      A server that accepts and never answers is a listening socket
 *      nobody accepts from: the connect bound must end the attempt.  The
 *      tests against a real server are the integration tests
 *      (tests/integration/test_store.c).
 */
#include "admin/pg.h"
#include "core/core.h"
#include "core/ev.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int downs;      /* DOWN reports */
    int connecting; /* CONNECTING reports */
    uint64_t down_ms[4];
} tg_test_pg_seen_t;


static void
tg_test_pg_state_cb(void *ctx, tg_pg_state_t state)
{
    tg_test_pg_seen_t *seen = ctx;

    if (state == TG_PG_DOWN) {
        if (seen->downs < 4) {
            seen->down_ms[seen->downs] = tg_time_mono_ms();
        }
        seen->downs++;
    } else if (state == TG_PG_CONNECTING) {
        seen->connecting++;
    }
}


/* A TCP socket on 127.0.0.1 that listens (<listen>) or is only bound;
 * its port in <port>. */
static int
tg_test_pg_socket(bool listening, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
        (listening && listen(fd, 1) != 0)) {
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}


static void
test_pg_refused_before_ready(void)
{
    tg_ev_loop_t *loop = tg_ev_create(256);
    const char *param = "1";
    tg_pg_t *pg;

    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    pg = tg_pg_create(loop, "host=127.0.0.1 port=1 dbname=x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL(tg_pg_state(pg), TG_PG_DOWN);
    CU_ASSERT_EQUAL(tg_pg_query(pg, "SELECT $1", 1, &param, NULL, NULL),
                    TG_ERROR);
    CU_ASSERT_EQUAL(tg_pg_script(pg, "SELECT 1", NULL, NULL), TG_ERROR);
    /* Channels are plain lower-case identifiers, at most 63 bytes. */
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "tollgate"), TG_OK);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "tollgate"), TG_OK);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "x; DROP TABLE users"), TG_ERROR);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "Tollgate"), TG_ERROR);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "1abc"), TG_ERROR);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, ""), TG_ERROR);
    /* 63 bytes fit, 64 do not. */
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "a23456789012345678901234567890"
                                     "123456789012345678901234567890123"),
                    TG_OK);
    CU_ASSERT_EQUAL(tg_pg_listen(pg, "b23456789012345678901234567890"
                                     "1234567890123456789012345678901234"),
                    TG_ERROR);
    tg_pg_destroy(pg);
    tg_ev_destroy(loop);
}


static void
test_pg_backoff(void)
{
    tg_ev_loop_t *loop = tg_ev_create(256);
    tg_test_pg_seen_t seen;
    char conninfo[128];
    uint64_t deadline;
    tg_pg_t *pg;
    int fd, port;

    /* Bound but not listening: every connection attempt is refused. */
    fd = tg_test_pg_socket(false, &port);
    CU_ASSERT_FATAL(fd >= 0 && loop != NULL);
    snprintf(conninfo, sizeof(conninfo),
             "hostaddr=127.0.0.1 port=%d dbname=x user=x", port);
    memset(&seen, 0, sizeof(seen));
    pg = tg_pg_create(loop, conninfo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    tg_pg_on_state(pg, tg_test_pg_state_cb, &seen);
    CU_ASSERT_EQUAL(tg_pg_start(pg), TG_OK);
    deadline = tg_time_mono_ms() + 5000;
    while (seen.downs < 3 && tg_time_mono_ms() < deadline) {
        tg_ev_run_once(loop, 50);
    }
    CU_ASSERT_TRUE(seen.downs >= 3);
    CU_ASSERT_TRUE(seen.connecting >= 3);
    CU_ASSERT_EQUAL(tg_pg_state(pg), TG_PG_DOWN);
    /* 0.5 s, then 1 s between attempts (with some slack for a loaded
     * machine on the low side only). */
    CU_ASSERT_TRUE(seen.down_ms[1] - seen.down_ms[0] >= 450);
    CU_ASSERT_TRUE(seen.down_ms[2] - seen.down_ms[1] >= 950);
    tg_pg_destroy(pg);
    close(fd);
    tg_ev_destroy(loop);
}


static void
test_pg_connect_timeout(void)
{
    tg_ev_loop_t *loop = tg_ev_create(256);
    tg_test_pg_seen_t seen;
    char conninfo[128];
    uint64_t start, deadline;
    tg_pg_t *pg;
    int fd, port;

    /* Listening, never accepting, never answering: the TCP handshake
     * completes and the server's reply never comes. */
    fd = tg_test_pg_socket(true, &port);
    CU_ASSERT_FATAL(fd >= 0 && loop != NULL);
    snprintf(conninfo, sizeof(conninfo),
             "hostaddr=127.0.0.1 port=%d dbname=x user=x sslmode=disable",
             port);
    memset(&seen, 0, sizeof(seen));
    pg = tg_pg_create(loop, conninfo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    tg_pg_set_timeouts(pg, 300, 0);
    tg_pg_on_state(pg, tg_test_pg_state_cb, &seen);
    start = tg_time_mono_ms();
    CU_ASSERT_EQUAL(tg_pg_start(pg), TG_OK);
    deadline = start + 5000;
    while (seen.downs < 1 && tg_time_mono_ms() < deadline) {
        tg_ev_run_once(loop, 20);
    }
    CU_ASSERT_EQUAL(seen.downs, 1);
    CU_ASSERT_TRUE(seen.down_ms[0] - start >= 250);
    CU_ASSERT_TRUE(seen.down_ms[0] - start < 3000);
    tg_pg_destroy(pg);
    close(fd);
    tg_ev_destroy(loop);
}


int
tg_test_pg_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"refuses statements before the connection is ready and channel "
         "names that are not plain identifiers",
         test_pg_refused_before_ready},
        {"retries a refused connection after 0.5 s, then 1 s", test_pg_backoff},
        {"gives up a connection attempt the server never answers after the "
         "connect bound",
         test_pg_connect_timeout},
    };
    CU_pSuite suite;
    size_t i;

    suite = CU_add_suite("pg", NULL, NULL);
    if (suite == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
