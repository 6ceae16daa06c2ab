/*
 * tests/fuzz/fuzz_api.c
 *      libFuzzer target for admin/api_spec.c: request bodies checked
 *      against field specs, query strings, route patterns and the mapping
 *      of database errors to answers.
 *
 * NOTES
 *      The first input byte picks what the rest is: a JSON body validated
 *      against a spec holding every field type (whole, and as a PATCH), a
 *      query string parsed against a spec of every query type, a path
 *      matched against the admin API's pattern shapes, or a SQLSTATE and
 *      message mapped to an answer.  Besides crashes (ASan, UBSan) it
 *      checks:
 *        - a refusal is a 4xx naming a field of the spec (or none), and
 *          its error body is JSON with that code and message;
 *        - parsed query values have the spec's types and bounds;
 *        - a matched id is in [1, 2^53 - 1] and written back in decimal
 *          gives the path's segment.
 *      The admin HTTP head goes through core/http.c (fuzz_http).
 *      Build and run with tools/fuzz.sh.
 */
#include "admin/api_spec.h"
#include "tests/fuzz/harness.h"

#include <inttypes.h>

#define END                                                                    \
    {                                                                          \
        NULL, 0, 0, 0, 0, NULL, NULL                                           \
    }

static const char *const fuzz_enum[] = {"csv", "json", "a b", "", NULL};
static const tg_api_field_t fuzz_inner[] = {
    {"from", TG_API_F_STRING, TG_API_REQUIRED, 1, 8, NULL, NULL},
    {"to", TG_API_F_STRING, TG_API_REQUIRED | TG_API_NULLABLE, 0, 3, NULL,
     NULL},
    {"n", TG_API_F_INT, 0, -5, 5, NULL, NULL},
    END};
static const tg_api_field_t fuzz_body[] = {
    {"name", TG_API_F_STRING, TG_API_REQUIRED, 1, 16, NULL, NULL},
    {"id", TG_API_F_INT, 0, 1, 9007199254740991, NULL, NULL},
    {"on", TG_API_F_BOOL, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {"format", TG_API_F_ENUM, 0, 0, 0, fuzz_enum, NULL},
    {"models", TG_API_F_STRINGS, 0, 0, 4, NULL, NULL},
    {"price", TG_API_F_DECIMAL, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {"at", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    {"quota", TG_API_F_OBJECT, 0, 0, 0, NULL, fuzz_inner},
    {"map", TG_API_F_OBJECTS, TG_API_NULLABLE, 0, 3, NULL, fuzz_inner},
    {"text", TG_API_F_STRING, 0, 0, 2000, NULL, NULL},
    END};
static const tg_api_field_t fuzz_query[] = {
    {"q", TG_API_F_STRING, 0, 1, 12, NULL, NULL},
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, 9007199254740991, NULL, NULL},
    {"format", TG_API_F_ENUM, 0, 0, 0, fuzz_enum, NULL},
    {"on", TG_API_F_BOOL, 0, 0, 0, NULL, NULL},
    {"at", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    END};
static const char *const fuzz_patterns[] = {
    "/admin/api/users",
    "/admin/api/users/{id}",
    "/admin/api/users/{id}/keys",
    "/admin/api/keys/export",
    "/",
};


/* <e> is a well-formed refusal naming a field of <spec> or none. */
static void
fuzz_check_error(const tg_api_error_t *e, const tg_api_field_t *spec,
                 bool nested)
{
    char *s = tg_api_error_json(e);
    json_t *j, *err;
    size_t i;
    bool named = e->field[0] == '\0' || nested;

    CHECK(e->status >= 400 && e->status < 600);
    CHECK(strlen(e->message) < sizeof(e->message));
    for (i = 0; spec[i].name != NULL && !named; i++) {
        named = strncmp(e->field, spec[i].name, strlen(spec[i].name)) == 0;
    }
    CHECK(named);
    CHECK(s != NULL);
    j = json_loads(s, 0, NULL);
    err = json_object_get(j, "error");
    CHECK(json_is_object(err));
    CHECK(json_is_string(json_object_get(err, "message")));
    json_decref(j);
    free(s);
}


static void
fuzz_validate(const char *p, size_t n, bool partial)
{
    tg_api_error_t e;
    json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    memset(&e, 0, sizeof(e));
    if (tg_api_validate(j, fuzz_body, partial, &e) != TG_OK) {
        /* Nested fields are named "quota.from", "map[1].to". */
        fuzz_check_error(&e, fuzz_body, true);
    } else {
        CHECK(partial || json_is_string(json_object_get(j, "name")));
    }
    json_decref(j);
}


static void
fuzz_query_parse(const char *p, size_t n)
{
    tg_api_error_t e;
    json_t *args = json_object(), *v;
    const char *k;

    CHECK(args != NULL);
    memset(&e, 0, sizeof(e));
    if (tg_api_query_parse((tg_str_t){p, n}, fuzz_query, args, &e) != TG_OK) {
        /* An unknown parameter is named as the client wrote it. */
        fuzz_check_error(&e, fuzz_query, true);
    } else {
        json_object_foreach(args, k, v)
        {
            if (strcmp(k, "limit") == 0) {
                CHECK(json_integer_value(v) >= 1 &&
                      json_integer_value(v) <= 500);
            } else if (strcmp(k, "cursor") == 0) {
                CHECK(json_is_integer(v) && json_integer_value(v) >= 0);
            } else if (strcmp(k, "q") == 0) {
                CHECK(json_is_string(v));
            }
        }
    }
    json_decref(args);
}


static void
fuzz_path(const char *p, size_t n)
{
    char buf[32];
    int64_t id;
    size_t i;

    for (i = 0; i < sizeof(fuzz_patterns) / sizeof(fuzz_patterns[0]); i++) {
        id = -1;
        if (!tg_api_path_match(fuzz_patterns[i], (tg_str_t){p, n}, &id)) {
            continue;
        }
        if (strstr(fuzz_patterns[i], "{id}") == NULL) {
            CHECK(id == 0);
            continue;
        }
        CHECK(id >= 1 && id <= TG_API_ID_MAX);
        snprintf(buf, sizeof(buf), "/%" PRId64, id);
        CHECK(memmem(p, n, buf, strlen(buf)) != NULL);
    }
}


static void
fuzz_sqlstate(const char *p, size_t n)
{
    char state[6], msg[300];
    size_t m = n < 5 ? n : 5;
    tg_api_error_t e;
    int status;

    memcpy(state, p, m);
    state[m] = '\0';
    snprintf(msg, sizeof(msg), "%.*s", (int)(n - m), p + m);
    memset(&e, 0, sizeof(e));
    status = tg_api_sqlstate_map(state, msg, msg, &e);
    CHECK(status >= 100 && status < 1000);
    CHECK(e.status == status);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;
    char *copy;
    size_t n;

    if (size < 1) {
        return 0;
    }
    n = size - 1;
    /* An exact-size copy: any read past it is an ASan report. */
    copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    memcpy(copy, p, n);
    switch (data[0] % 5) {
    case 0:
        fuzz_validate(copy, n, false);
        break;
    case 1:
        fuzz_validate(copy, n, true);
        break;
    case 2:
        fuzz_query_parse(copy, n);
        break;
    case 3:
        fuzz_path(copy, n);
        break;
    default:
        fuzz_sqlstate(copy, n);
        break;
    }
    free(copy);
    return 0;
}
