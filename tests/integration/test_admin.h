/*
 * tests/integration/test_admin.h
 *      Helpers for tests that use the admin API: a database for the
 *      fixture, the bootstrap administrator's login, and calls with a
 *      bearer token.
 *
 * NOTES
 *      The admin API needs PostgreSQL for every route but /healthz, so a
 *      fixture that calls it gets a database: the one its config already
 *      names, else a fresh one on the run's server (tg_it_pg_db_create).
 */
#ifndef TG_TESTS_INTEGRATION_TEST_ADMIN_H
#define TG_TESTS_INTEGRATION_TEST_ADMIN_H

#include "tests/integration/harness.h"

#include <jansson.h>
#include <stddef.h>

#define TG_IT_ADMIN_PASSWORD "tg-it-admin-password-0123"

/*
 * Give fixture <f> what the admin API needs: a database, a secret key
 * file in the test directory, the bootstrap password TG_IT_ADMIN_PASSWORD
 * and, when <webhook> is not NULL, the login-code webhook URL.  Call
 * before tg_it_fixture_start.
 */
void tg_it_admin_prepare(tg_it_fixture_t *f, const char *webhook);

/* Wait (at most 30 s) until admin's database is ready, then log in as
 * "admin"; the session token goes to <token> (<len> bytes). */
void tg_it_admin_login(tg_it_fixture_t *f, char *token, size_t len);

/*
 * One admin API call on <port>: <method> <path> with "Authorization:
 * Bearer <token>" (NULL: none) and JSON <body> (NULL: none).  Returns
 * the status; the parsed answer goes to *<out> (NULL when <out> is NULL;
 * the caller decrefs it).
 */
int tg_it_admin_call(int port, const char *token, const char *method,
                     const char *path, const char *body, json_t **out);

#endif /* TG_TESTS_INTEGRATION_TEST_ADMIN_H */
