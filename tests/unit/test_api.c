/*
 * tests/unit/test_api.c
 *      admin/api_spec: field specs, query strings, path patterns, the
 *      mapping of database errors, error bodies; run under a chaos
 *      allocator too.
 */
#include "admin/api_int.h"
#include "admin/api_spec.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"admin", "user", NULL};

static const tg_api_field_t quota[] = {
    {"tokens_day", TG_API_F_INT, TG_API_NULLABLE, 0, 1000, NULL, NULL},
    {"cost_day_usd", TG_API_F_DECIMAL, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL}};
static const tg_api_field_t rename_spec[] = {
    {"from", TG_API_F_STRING, TG_API_REQUIRED, 1, 8, NULL, NULL},
    {"to", TG_API_F_STRING, TG_API_REQUIRED, 1, 8, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL}};
static const tg_api_field_t spec[] = {
    {"name", TG_API_F_STRING, TG_API_REQUIRED, 1, 5, NULL, NULL},
    {"rpm", TG_API_F_INT, 0, 0, 100, NULL, NULL},
    {"on", TG_API_F_BOOL, 0, 0, 0, NULL, NULL},
    {"role", TG_API_F_ENUM, 0, 0, 0, roles, NULL},
    {"models", TG_API_F_STRINGS, 0, 0, 2, NULL, NULL},
    {"at", TG_API_F_TIME, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {"quota", TG_API_F_OBJECT, 0, 0, 0, NULL, quota},
    {"map", TG_API_F_OBJECTS, 0, 0, 2, NULL, rename_spec},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* Validate <text> against spec; the status (0 when valid) and, in
 * <field>, the field named. */
static int
check(const char *text, bool partial, char *field)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    tg_api_error_t e;
    int rc;

    CU_ASSERT_FATAL(v != NULL);
    memset(&e, 0, sizeof(e));
    rc = tg_api_validate(v, spec, partial, &e);
    json_decref(v);
    if (field != NULL) {
        strcpy(field, e.field);
    }
    return rc == TG_OK ? 0 : e.status;
}


static void
test_valid_bodies_pass(void)
{
    CU_ASSERT(check("{\"name\":\"ab\"}", false, NULL) == 0);
    CU_ASSERT(check("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\","
                    "\"rpm\":100,\"on\":false,\"role\":\"user\","
                    "\"models\":[\"a\",\"b\"],\"at\":null,"
                    "\"quota\":{\"tokens_day\":null,\"cost_day_usd\":\"1.5\"},"
                    "\"map\":[{\"from\":\"a\",\"to\":\"b\"}]}",
                    false, NULL) == 0);
    CU_ASSERT(check("{\"at\":\"2026-01-31T23:59:59Z\"}", true, NULL) == 0);
    CU_ASSERT(check("{\"quota\":{\"cost_day_usd\":12}}", true, NULL) == 0);
}


static void
test_errors_name_the_field(void)
{
    static const struct {
        const char *body;
        bool partial;
        const char *field;
    } cases[] = {
        {"{}", false, "name"},
        {"{\"name\":\"\"}", false, "name"},
        {"{\"name\":\"toolong\"}", false, "name"},
        {"{\"name\":7}", false, "name"},
        {"{\"name\":null}", false, "name"},
        {"{\"name\":\"a\",\"rpm\":101}", false, "rpm"},
        {"{\"name\":\"a\",\"rpm\":-1}", false, "rpm"},
        {"{\"name\":\"a\",\"rpm\":1.5}", false, "rpm"},
        {"{\"name\":\"a\",\"rpm\":\"5\"}", false, "rpm"},
        {"{\"on\":1}", true, "on"},
        {"{\"role\":\"root\"}", true, "role"},
        {"{\"models\":[\"a\",\"b\",\"c\"]}", true, "models"},
        {"{\"models\":[\"\"]}", true, "models"},
        {"{\"models\":[1]}", true, "models"},
        {"{\"at\":\"2026-13-01T00:00:00Z\"}", true, "at"},
        {"{\"at\":\"2026-01-01 00:00:00\"}", true, "at"},
        {"{\"quota\":{\"tokens_day\":\"x\"}}", true, "quota.tokens_day"},
        {"{\"quota\":{\"cost_day_usd\":\"-1\"}}", true, "quota.cost_day_usd"},
        {"{\"quota\":{\"cost_day_usd\":\"1.\"}}", true, "quota.cost_day_usd"},
        {"{\"quota\":{\"bogus\":1}}", true, "quota.bogus"},
        {"{\"quota\":[]}", true, "quota"},
        {"{\"map\":[{\"from\":\"a\"}]}", true, "map.0.to"},
        {"{\"map\":{}}", true, "map"},
        {"{\"map\":[1]}", true, "map.0"},
        {"{\"unknown\":1}", true, "unknown"},
        {"{\"name\":\"a\",\"DROP TABLE\":1}", false, "DROP TABLE"},
    };
    char field[64];
    size_t i;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        int st = check(cases[i].body, cases[i].partial, field);

        CU_ASSERT_EQUAL(st, 400);
        if (strcmp(field, cases[i].field) != 0) {
            fprintf(stderr, "\ncase %s: field \"%s\", want \"%s\"\n",
                    cases[i].body, field, cases[i].field);
            CU_FAIL("wrong field named");
        }
    }
}


static void
test_partial_needs_one_field(void)
{
    char field[64];

    CU_ASSERT(check("{}", true, field) == 400);
    CU_ASSERT(check("{\"rpm\":3}", true, field) == 0);
}


static void
test_messages_never_echo_values(void)
{
    json_t *v = json_pack("{s:i}", "name", 123456789);
    tg_api_error_t e;

    CU_ASSERT(tg_api_validate(v, spec, false, &e) == TG_ERROR);
    CU_ASSERT(strstr(e.message, "123456789") == NULL);
    json_decref(v);
}


/* Parse query <q> against spec into a JSON text (NULL on error, then the
 * field in <field>). */
static char *
query(const char *q, char *field)
{
    static const tg_api_field_t qs[] = {
        {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
        {"name", TG_API_F_STRING, 0, 1, 20, NULL, NULL},
        {"role", TG_API_F_ENUM, 0, 0, 0, roles, NULL},
        {"on", TG_API_F_BOOL, 0, 0, 0, NULL, NULL},
        {NULL, 0, 0, 0, 0, NULL, NULL}};
    json_t *args = json_object();
    tg_api_error_t e;
    char *s = NULL;

    memset(&e, 0, sizeof(e));
    if (tg_api_query_parse((tg_str_t){q, strlen(q)}, qs, args, &e) == TG_OK) {
        s = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    } else if (field != NULL) {
        strcpy(field, e.field);
    }
    json_decref(args);
    return s;
}


static void
test_query_strings(void)
{
    char field[64], *s;

    s = query("limit=5&name=a%20b+c&role=user&on=true", NULL);
    CU_ASSERT_STRING_EQUAL(s, "{\"limit\":5,\"name\":\"a b c\","
                              "\"on\":true,\"role\":\"user\"}");
    free(s);
    s = query("&&name=%C3%A9&", NULL);
    CU_ASSERT_STRING_EQUAL(s, "{\"name\":\"\xc3\xa9\"}");
    free(s);
    CU_ASSERT(query("limit=0", field) == NULL);
    CU_ASSERT_STRING_EQUAL(field, "limit");
    CU_ASSERT(query("limit=5x", field) == NULL);
    CU_ASSERT(query("limit=-1", field) == NULL);
    CU_ASSERT(query("limit=99999999999999999999999", field) == NULL);
    CU_ASSERT(query("bogus=1", field) == NULL);
    CU_ASSERT_STRING_EQUAL(field, "bogus");
    CU_ASSERT(query("limit=1&limit=2", field) == NULL);
    CU_ASSERT(query("name=%zz", field) == NULL);
    CU_ASSERT(query("name=%4", field) == NULL);
    CU_ASSERT(query("name=a%00b", field) == NULL);
    CU_ASSERT(query("name=%ff", field) == NULL);
    CU_ASSERT(query("role=root", field) == NULL);
    CU_ASSERT(query("on=yes", field) == NULL);
}


static void
test_error_body_of_hostile_names(void)
{
    static const tg_api_field_t qs[] = {{NULL, 0, 0, 0, 0, NULL, NULL}};
    json_t *args = json_object(), *j;
    tg_api_error_t e;
    char *s;

    /* An unknown parameter named in bytes that are not UTF-8, and a
     * message cut inside a character: the body is still JSON. */
    memset(&e, 0, sizeof(e));
    CU_ASSERT_EQUAL(tg_api_query_parse(tg_str_lit("a%aa%c3=1"), qs, args, &e),
                    TG_ERROR);
    CU_ASSERT_STRING_EQUAL(e.field, "a??");
    s = tg_api_error_json(&e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    j = json_loads(s, 0, NULL);
    CU_ASSERT(json_is_object(j));
    json_decref(j);
    free(s);
    tg_api_error_set(&e, 422, "\xe2\x82", "%0254d\xc3\xa9\xc3\xa9", 1);
    CU_ASSERT_STRING_EQUAL(e.field, "??");
    CU_ASSERT_EQUAL(e.message[254], '?');
    s = tg_api_error_json(&e);
    CU_ASSERT_PTR_NOT_NULL(s);
    free(s);
    json_decref(args);
}


static void
test_path_patterns(void)
{
    int64_t id;

    CU_ASSERT(tg_api_path_match("/admin/api/keys",
                                tg_str_lit("/admin/api/keys"), &id) &&
              id == 0);
    CU_ASSERT(tg_api_path_match("/admin/api/keys/{id}/rotate",
                                tg_str_lit("/admin/api/keys/42/rotate"), &id) &&
              id == 42);
    CU_ASSERT(tg_api_path_match("/admin/api/keys/{id}",
                                tg_str_lit("/admin/api/keys/9007199254740991"),
                                &id) &&
              id == 9007199254740991LL);
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/9007199254740992"),
                                 &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/0"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/007"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/-1"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/1/"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys",
                                 tg_str_lit("/admin/api/keys/"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}/rotate",
                                 tg_str_lit("/admin/api/keys/1/rotatex"), &id));
    CU_ASSERT(!tg_api_path_match("/admin/api/keys/{id}",
                                 tg_str_lit("/admin/api/keys/1a"), &id));
}


static void
test_database_errors_map_to_statuses(void)
{
    tg_api_error_t e;

    CU_ASSERT(tg_api_sqlstate_map("TG404", "no such key", "key_id", &e) == 404);
    CU_ASSERT_STRING_EQUAL(e.code, "not_found");
    CU_ASSERT_STRING_EQUAL(e.field, "key_id");
    CU_ASSERT_STRING_EQUAL(e.message, "no such key");
    CU_ASSERT(tg_api_sqlstate_map("TG409", "declared in the config file", "",
                                  &e) == 409);
    CU_ASSERT_STRING_EQUAL(e.field, "");
    CU_ASSERT(tg_api_sqlstate_map("TG429", "slow down", "", &e) == 429);
    CU_ASSERT(tg_api_sqlstate_map("23505", "duplicate key value", "Key (x)=(s)",
                                  &e) == 409);
    CU_ASSERT(strstr(e.message, "(s)") == NULL);
    CU_ASSERT(tg_api_sqlstate_map("23503", "fk", "", &e) == 422);
    CU_ASSERT(tg_api_sqlstate_map("23514", "check", "", &e) == 422);
    CU_ASSERT(tg_api_sqlstate_map("22P02", "bad input", "", &e) == 422);
    CU_ASSERT(tg_api_sqlstate_map("XX000", "internal detail", "", &e) == 500);
    CU_ASSERT(strstr(e.message, "internal detail") == NULL);
    CU_ASSERT(tg_api_sqlstate_map("TG999", "x", "", &e) == 500);
    CU_ASSERT(tg_api_sqlstate_map("TG", "x", "", &e) == 500);
    CU_ASSERT(tg_api_sqlstate_map("", "x", "", &e) == 500);
}


static void
test_error_body_shape(void)
{
    tg_api_error_t e;
    char *s;

    tg_api_error_set(&e, 400, "rpm", "rpm must be \"an integer\"");
    s = tg_api_error_json(&e);
    CU_ASSERT_STRING_EQUAL(s, "{\"error\":{\"code\":\"invalid_request\","
                              "\"message\":\"rpm must be \\\"an integer\\\"\","
                              "\"field\":\"rpm\"}}");
    free(s);
    tg_api_error_set(&e, 503, NULL, "down");
    s = tg_api_error_json(&e);
    CU_ASSERT_STRING_EQUAL(s, "{\"error\":{\"code\":\"unavailable\","
                              "\"message\":\"down\",\"field\":null}}");
    free(s);
}


/* Chaos allocator: fails call number chaos_fail_at (1-based). */
static int chaos_calls;
static int chaos_fail_at;

static void *
chaos_malloc(size_t n)
{
    if (++chaos_calls == chaos_fail_at) {
        return NULL;
    }
    return malloc(n);
}


static void
test_parsers_survive_allocation_failures(void)
{
    static const char body[] =
        "{\"name\":\"ab\",\"quota\":{\"tokens_day\":\"x\"},\"map\":[{}]}";
    tg_api_error_t e;
    json_t *v, *args;
    int i;

    v = json_loads(body, 0, NULL);
    CU_ASSERT_FATAL(v != NULL);
    for (i = 1; i < 64; i++) {
        chaos_calls = 0;
        chaos_fail_at = i;
        json_set_alloc_funcs(chaos_malloc, free);
        (void)tg_api_validate(v, spec, false, &e);
        args = json_object();
        if (args != NULL) {
            (void)tg_api_query_parse(tg_str_lit("limit=5&name=x%20y&on=true"),
                                     spec, args, &e);
            json_decref(args);
        }
        json_set_alloc_funcs(malloc, free);
        tg_api_error_set(&e, 400, "f", "m");
        free(tg_api_error_json(&e));
    }
    json_decref(v);
    CU_PASS("no crash under failing allocations");
}


static void
test_only_healthz_and_login_are_public(void)
{
    /* /metrics is the Prometheus scrape: public by design, read-only,
     * and carries no key, user or secret (docs/metrics.md). */
    static const char *const open_routes[] = {
        "/healthz", "/metrics", "/admin/api/auth/login", "/admin/api/auth/code",
        "/admin/api/auth/code/verify"};
    size_t i, j, npublic = 0;

    for (i = 0; i < tg_api_nroutes; i++) {
        const tg_api_route_t *rt = &tg_api_routes[i];
        bool listed = false;

        CU_ASSERT(rt->sql != NULL || rt->run != NULL);
        CU_ASSERT(strncmp(rt->pattern, "/admin/api/", 11) == 0 ||
                  strcmp(rt->pattern, "/healthz") == 0 ||
                  strcmp(rt->pattern, "/metrics") == 0);
        if (!(rt->flags & TG_API_R_PUBLIC)) {
            continue;
        }
        npublic++;
        for (j = 0; j < TG_NELEMS(open_routes); j++) {
            listed |= strcmp(rt->pattern, open_routes[j]) == 0;
        }
        CU_ASSERT(listed);
        /* The public mutations are the login steps, done in C. */
        CU_ASSERT(rt->method == TG_HTTP_GET || rt->run != NULL);
    }
    CU_ASSERT_EQUAL(npublic, TG_NELEMS(open_routes));
}


static void
test_every_route_pattern_matches_itself(void)
{
    char path[256], *p;
    int64_t id;
    size_t i, j;

    for (i = 0; i < tg_api_nroutes; i++) {
        snprintf(path, sizeof(path), "%s", tg_api_routes[i].pattern);
        p = strstr(path, "{id}");
        if (p != NULL) {
            memmove(p + 2, p + 4, strlen(p + 4) + 1);
            memcpy(p, "17", 2);
        }
        CU_ASSERT(tg_api_path_match(tg_api_routes[i].pattern,
                                    (tg_str_t){path, strlen(path)}, &id));
        CU_ASSERT(id == (p != NULL ? 17 : 0));
        /* No two routes share method and pattern. */
        for (j = i + 1; j < tg_api_nroutes; j++) {
            CU_ASSERT(tg_api_routes[i].method != tg_api_routes[j].method ||
                      strcmp(tg_api_routes[i].pattern,
                             tg_api_routes[j].pattern) != 0);
        }
    }
}


/* See unit.h. */
int
tg_test_api_register(void)
{
    CU_pSuite s = CU_add_suite("api", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "valid bodies pass", test_valid_bodies_pass) ||
        !CU_add_test(s, "errors name the field", test_errors_name_the_field) ||
        !CU_add_test(s, "partial updates need one field",
                     test_partial_needs_one_field) ||
        !CU_add_test(s, "messages never echo values",
                     test_messages_never_echo_values) ||
        !CU_add_test(s, "query strings", test_query_strings) ||
        !CU_add_test(s, "error bodies stay JSON whatever bytes they quote",
                     test_error_body_of_hostile_names) ||
        !CU_add_test(s, "path patterns", test_path_patterns) ||
        !CU_add_test(s, "database errors map to statuses",
                     test_database_errors_map_to_statuses) ||
        !CU_add_test(s, "error body shape", test_error_body_shape) ||
        !CU_add_test(s, "parsers survive allocation failures",
                     test_parsers_survive_allocation_failures) ||
        !CU_add_test(s, "only healthz, metrics and login are public",
                     test_only_healthz_and_login_are_public) ||
        !CU_add_test(s, "every route pattern matches itself",
                     test_every_route_pattern_matches_itself)) {
        return 1;
    }
    return 0;
}
