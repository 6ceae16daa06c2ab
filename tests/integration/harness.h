/*
 * tests/integration/harness.h
 *      Integration test harness: checks, helper processes, ports,
 *      configuration files and the tollgate plus mock fixture.
 *
 * NOTES
 *      The HTTP client, JSON and SSE helpers are in client.h.
 *
 *      Every test runs in its own process, forked by main.c, with its own
 *      temporary directory (tg_it_dir()).  Helper processes (tollgate,
 *      mock-upstream, loadgen, the wiretap) are started with fork+exec in
 *      their own process group, their stdout and stderr go to "<name>.out"
 *      in the test directory, and their pids are appended to "pids" there
 *      so the runner can kill whatever a crashed or timed-out test left
 *      behind.  Binaries come from $TG_BUILD (default "build").
 *
 *      A failed check prints "file:line: message" and ends the test process
 *      with status 1 (tg_it_fail); the runner does the cleanup.  Nothing
 *      here is thread-safe, and nothing needs to be.
 */
#ifndef TG_TESTS_INTEGRATION_HARNESS_H
#define TG_TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The client key every default config accepts, and the credential the
 * mock upstream requires (so a 200 proves the credential was swapped in). */
#define TG_IT_KEY  "tg-it-client-key-0123456789"
#define TG_IT_CRED "tg-it-upstream-credential-abcdef"

#define TG_IT_TIMEOUT_MS 10000 /* default bound of one client operation */

/* 1 when the tests (and so the binaries under test, built the same way)
 * run under AddressSanitizer (make asan): several times slower, so tests
 * that bound a latency the product promises allow more there. */
#if defined(__SANITIZE_ADDRESS__)
#define TG_IT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_IT_SANITIZED 1
#endif
#endif
#ifndef TG_IT_SANITIZED
#define TG_IT_SANITIZED 0
#endif

/* A test: a sentence naming what must hold, and its body.  The body
 * returns normally when it passed; a failed check exits the process. */
typedef struct {
    const char *name;
    void (*fn)(void);
} tg_it_test_t;

/* Test tables, one per file, each ended by {NULL, NULL}. */
extern const tg_it_test_t tg_it_proxy_tests[];
extern const tg_it_test_t tg_it_tollctl_tests[];
extern const tg_it_test_t tg_it_limits_tests[];
extern const tg_it_test_t tg_it_master_tests[];
extern const tg_it_test_t tg_it_load_tests[];
extern const tg_it_test_t tg_it_sdk_tests[];
extern const tg_it_test_t tg_it_auth_tests[];
extern const tg_it_test_t tg_it_encoding_tests[];
extern const tg_it_test_t tg_it_routing_tests[];
extern const tg_it_test_t tg_it_admin_tests[];
extern const tg_it_test_t tg_it_store_tests[];
extern const tg_it_test_t tg_it_ends_tests[];
extern const tg_it_test_t tg_it_usage_pg_tests[];
extern const tg_it_test_t tg_it_endpoints_shm_tests[];
extern const tg_it_test_t tg_it_hostile_tests[];
extern const tg_it_test_t tg_it_quota_tests[];
extern const tg_it_test_t tg_it_translate_tests[];
extern const tg_it_test_t tg_it_metrics_tests[];
extern const tg_it_test_t tg_it_export_tests[];
extern const tg_it_test_t tg_it_responses_tests[];

/* ------------------------------------------------------------ checks */

/* Print "<file>:<line>: <fmt...>" to stderr and end the test (status 1). */
void tg_it_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define TG_IT_CHECK(x)                                                         \
    do {                                                                       \
        if (!(x)) {                                                            \
            tg_it_fail(__FILE__, __LINE__, "check failed: %s", #x);            \
        }                                                                      \
    } while (0)

#define TG_IT_CHECKF(x, ...)                                                   \
    do {                                                                       \
        if (!(x)) {                                                            \
            tg_it_fail(__FILE__, __LINE__, __VA_ARGS__);                       \
        }                                                                      \
    } while (0)

/* Integers and NUL-terminated strings (NULL allowed), values printed. */
#define TG_IT_CHECK_INT(a, b)                                                  \
    tg_it_check_int(__FILE__, __LINE__, #a, (long long)(a), (long long)(b))
#define TG_IT_CHECK_STR(a, b) tg_it_check_str(__FILE__, __LINE__, #a, (a), (b))

void tg_it_check_int(const char *file, int line, const char *expr,
                     long long got, long long want);
void tg_it_check_str(const char *file, int line, const char *expr,
                     const char *got, const char *want);

/* Print a progress note to the test's log (kept with the test's output). */
void tg_it_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------- context */

/* Set by the runner in the test process: the test's own directory and the
 * directory holding the binaries.  Both strings live for the process. */
void tg_it_context_set(const char *dir, const char *build);
const char *tg_it_dir(void);
const char *tg_it_build(void);

/* "<dir>/<name>" into <buf> of <len> bytes; returns <buf>.  Fails the test
 * when the path does not fit. */
char *tg_it_path(char *buf, size_t len, const char *name);

/* A free TCP port on 127.0.0.1 (bound to port 0, then released). */
int tg_it_port_free(void);

/* Whether a connection to 127.0.0.1:<port> is accepted within
 * <timeout_ms>, retrying every 20 ms. */
bool tg_it_port_wait(int port, int timeout_ms);

/* Sleep <ms> milliseconds. */
void tg_it_sleep_ms(unsigned ms);

/* Monotonic milliseconds. */
uint64_t tg_it_now_ms(void);

/* ------------------------------------------------------- processes */

typedef struct {
    pid_t pid;      /* 0 when not running */
    char name[32];  /* "tollgate", "mock", ... */
    char out[4096]; /* stdout+stderr file */
    int status;     /* wait status once reaped */
    bool reaped;
} tg_it_proc_t;

/*
 * Start <argv>[0] (a path) with <argv> in its own process group, stdin
 * from /dev/null, stdout and stderr appended to "<dir>/<name>.out".  Fails
 * the test when fork or exec fails.
 */
void tg_it_proc_start(tg_it_proc_t *p, const char *name, char *const argv[]);

/* Wait up to <timeout_ms> for <p> to exit; true when it did (p->status
 * holds the wait status). */
bool tg_it_proc_wait(tg_it_proc_t *p, int timeout_ms);

/* Send <signo> to <p> (the process, not its group). */
void tg_it_proc_signal(tg_it_proc_t *p, int signo);

/*
 * Stop <p>: SIGTERM, wait up to <timeout_ms>, then SIGKILL to its whole
 * process group.  Returns the wait status, or -1 when it had to be killed.
 * Whatever is left of the group is killed in both cases.
 */
int tg_it_proc_stop(tg_it_proc_t *p, int timeout_ms);

/*
 * Run <argv> to completion (at most <timeout_ms>) with stdout and stderr
 * captured into <out> (NUL-terminated, cut at <outlen>).  Returns the exit
 * status, or -1 when it did not exit normally in time.
 */
int tg_it_run(char *const argv[], char *out, size_t outlen, int timeout_ms);

/* Read the whole file at <path> into a NUL-terminated heap string (the
 * caller frees it); NULL when it cannot be read. */
char *tg_it_file_read(const char *path, size_t *len);

/* Write <text> to <path> (replacing it); fails the test on error. */
void tg_it_file_write(const char *path, const char *text);

/* Wait up to <timeout_ms> until the file at <path> contains <needle>. */
bool tg_it_file_wait(const char *path, const char *needle, int timeout_ms);

/* Number of lines of the file at <path> that contain every one of the
 * NULL-terminated <needles>. */
int tg_it_file_count(const char *path, const char *const needles[]);

/* Wait up to <timeout_ms> until tg_it_file_count reaches <want>; returns
 * the last count (helpers write their logs after answering, so a count
 * checked right after a response may still be short). */
int tg_it_file_wait_count(const char *path, const char *const needles[],
                          int want, int timeout_ms);

/* ---------------------------------------------------- configuration */

#define TG_IT_CONF_MAX 64

/*
 * A configuration as an ordered list of settings: "name" for top-level
 * settings, "group.name" for members of a group.  Values are libconfig
 * text as written to the file (strings with their quotes).  Setting a name
 * again replaces its value, so a test overrides the defaults it cares
 * about and nothing else.
 */
typedef struct {
    size_t n;
    struct {
        char name[64];
        char *value;
    } items[TG_IT_CONF_MAX];
} tg_it_conf_t;

void tg_it_conf_init(tg_it_conf_t *c);
void tg_it_conf_fini(tg_it_conf_t *c);
/* Set <name> to the printf-formatted value. */
void tg_it_conf_set(tg_it_conf_t *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Remove <name>; no-op when absent. */
void tg_it_conf_unset(tg_it_conf_t *c, const char *name);
/* Write <c> to <path> as a libconfig file; fails the test on error. */
void tg_it_conf_write(const tg_it_conf_t *c, const char *path);

/* ---------------------------------------------------------- servers */

/*
 * One tollgate in front of one mock upstream, the common fixture.
 * tg_it_fixture_init picks the ports and fills <conf> with the defaults
 * (2 workers, debug logs in the test directory, one anthropic and one
 * openai endpoint on the mock, key TG_IT_KEY); the test may change <conf>,
 * <mock_args> and <no_mock> before tg_it_fixture_start.
 */
typedef struct {
    tg_it_conf_t conf;
    tg_it_proc_t mock;
    tg_it_proc_t tg;
    int port; /* tollgate listen port */
    int admin_port;
    int mock_port;
    const char *mock_args[8]; /* extra mock arguments, NULL-terminated */
    bool no_mock;             /* do not start the mock */
    char conf_path[4096];
    char error_log[4096];
    char access_log[4096];
    char ledger[4096]; /* mock ledger, one JSON line per request */
} tg_it_fixture_t;

void tg_it_fixture_init(tg_it_fixture_t *f);
/* Write the config, start the mock (unless no_mock) and tollgate, and wait
 * until both accept connections.  Fails the test otherwise. */
void tg_it_fixture_start(tg_it_fixture_t *f);
/*
 * Wait (at most 5 s) until tollgate's master has at least its configured
 * number of workers plus the admin, and every child of it blocks SIGTERM,
 * which each does once its own signal handling is in place.  A signal sent
 * to a child before that is lost (see the test "a TERM that arrives while
 * a process starts is not lost"); tests that are not about that race call
 * this before they signal.
 */
void tg_it_fixture_settle(tg_it_fixture_t *f);
/* Stop tollgate (checking that it exits with status 0 within 10 s) and
 * the mock. */
void tg_it_fixture_stop(tg_it_fixture_t *f);

/* Start a mock upstream on <port>; <args> are extra arguments (NULL ends
 * them, <args> may be NULL).  Waits until it accepts connections. */
void tg_it_mock_start(tg_it_proc_t *p, const char *name, int port,
                      const char *ledger, const char *const *args);

/* Text of one endpoint entry for an "endpoints" list. */
void tg_it_endpoint(char *buf, size_t len, const char *name, int port,
                    const char *style, const char *priority);

/*
 * A wiretap: listen on <port> and relay every connection to <target_port>
 * byte for byte, appending what the client side sends to <capture>.  It
 * knows nothing of HTTP; the real upstream behind it answers.
 */
void tg_it_tap_start(tg_it_proc_t *p, int port, int target_port,
                     const char *capture);

/* Whether process <pid> blocks (SigBlk) or catches with a handler (SigCgt)
 * signal <signo>, from /proc/<pid>/status.  False when it is gone. */
bool tg_it_sig_blocked(pid_t pid, int signo);
bool tg_it_sig_caught(pid_t pid, int signo);

/* Pids of <parent>'s children whose /proc comm starts with <prefix>, into
 * <pids> (at most <max>).  Returns the count. */
int tg_it_children(pid_t parent, const char *prefix, pid_t *pids, int max);

/* ------------------------------------------------------ PostgreSQL */

/*
 * One PostgreSQL per test run, started by the first test that asks for
 * it (tools/pg-local.sh, in "<run dir>/pg", as the postgres user when run
 * as root, on a free port with its socket directory inside) and stopped by
 * the runner at the end of the run, whatever happened.  Tests that need no
 * database do not pay for it.  psql runs the statements (only admin/pg.c
 * links libpq): $TG_PSQL, default /usr/bin/psql.
 */

/* The server's conninfo (database "postgres", superuser, trust). */
const char *tg_it_pg_conninfo(void);

/* CREATE DATABASE from template0 with a name unique to the run; its
 * conninfo into <conninfo> (<len> bytes).  Fails the test on error. */
void tg_it_pg_db_create(char *conninfo, size_t len);

/* Run <sql> with psql (unaligned, tuples only, stop on error) against
 * <conninfo>; its output without the final newline into <out> (may be
 * NULL).  Returns psql's exit status (0 = success). */
int tg_it_pg_exec(const char *conninfo, const char *sql, char *out,
                  size_t outlen);

/* tg_it_pg_exec of <sql> started in the background as process <p> named
 * <name> (output in "<dir>/<name>.out"); tg_it_proc_wait for its end. */
void tg_it_pg_start_query(tg_it_proc_t *p, const char *name,
                          const char *conninfo, const char *sql);

/* tg_it_pg_exec of <sql> against <conninfo> that must succeed: its output
 * (a static buffer the next call overwrites), or a failed test naming the
 * statement. */
const char *tg_it_pg_query(const char *conninfo, const char *sql);

/* Stop the run's server (fast shutdown), and start it again on its port:
 * for tests of a database that goes away. */
void tg_it_pg_stop(void);
void tg_it_pg_start(void);

#endif /* TG_TESTS_INTEGRATION_HARNESS_H */
