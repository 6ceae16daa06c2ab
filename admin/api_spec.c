/*
 * admin/api_spec.c
 *      Field specs, query strings, path patterns, error mapping.
 *
 * NOTES
 *      Pure and library-like: never logs, never touches the network.
 *      Messages name the field and say what was expected, but never echo
 *      the value: a password or credential sent with a wrong type must not
 *      come back in an error body or reach a log.
 */
#include "admin/api_spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_API_QUERY_MAX 2048 /* bytes of one decoded query value */


/* See api_spec.h. */
const char *
tg_api_error_code(int status)
{
    switch (status) {
    case 400:
        return "invalid_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "timeout";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 415:
        return "unsupported_media_type";
    case 422:
        return "unprocessable";
    case 429:
        return "rate_limited";
    case 431:
        return "too_large";
    case 502:
        return "bad_gateway";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "invalid_request";
    }
}


/* See api_spec.h. */
void
tg_api_error_set(tg_api_error_t *e, int status, const char *field,
                 const char *fmt, ...)
{
    va_list ap;

    e->status = status;
    e->code = tg_api_error_code(status);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    /* A message may quote what the client sent (an unknown query
     * parameter) and may be cut mid-character: the body must be JSON. */
    tg_utf8_fix(e->message);
    tg_utf8_fix(e->field);
}


/* The length in characters of UTF-8 <s> (jansson guarantees validity). */
static size_t
tg_api_utf8_len(const char *s, size_t n)
{
    size_t i, chars = 0;

    for (i = 0; i < n; i++) {
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return chars;
}


/* "YYYY-MM-DDTHH:MM:SSZ" with plausible field values. */
static bool
tg_api_time_ok(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    int mon, day, hh, mm, ss;
    size_t i;

    if (n != sizeof(shape) - 1) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) {
            return false;
        }
    }
    mon = (s[5] - '0') * 10 + (s[6] - '0');
    day = (s[8] - '0') * 10 + (s[9] - '0');
    hh = (s[11] - '0') * 10 + (s[12] - '0');
    mm = (s[14] - '0') * 10 + (s[15] - '0');
    ss = (s[17] - '0') * 10 + (s[18] - '0');
    return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hh <= 23 &&
           mm <= 59 && ss <= 60;
}


/* A non-negative decimal of at most 11 integer and 9 fraction digits
 * (numeric(20,9)). */
static bool
tg_api_decimal_ok(const char *s, size_t n)
{
    size_t i = 0, ints = 0, frac = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        ints++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac++;
        }
        if (frac == 0) {
            return false;
        }
    }
    return i == n && ints >= 1 && ints <= 11 && frac <= 9;
}


static int
tg_api_check_string(const tg_api_field_t *f, const json_t *v, tg_api_error_t *e)
{
    size_t len;

    if (!json_is_string(v)) {
        tg_api_error_set(e, 400, f->name, "%s must be a string", f->name);
        return TG_ERROR;
    }
    if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
        tg_api_error_set(e, 400, f->name, "%s must not contain NUL", f->name);
        return TG_ERROR;
    }
    len = tg_api_utf8_len(json_string_value(v), json_string_length(v));
    if ((int64_t)len < f->min || (int64_t)len > f->max) {
        tg_api_error_set(e, 400, f->name,
                         "%s must be %lld to %lld characters long", f->name,
                         (long long)f->min, (long long)f->max);
        return TG_ERROR;
    }
    return TG_OK;
}


static int
tg_api_check_enum(const tg_api_field_t *f, const json_t *v, tg_api_error_t *e)
{
    char list[160] = "";
    size_t i, n = 0;

    if (json_is_string(v)) {
        for (i = 0; f->values[i] != NULL; i++) {
            if (strcmp(f->values[i], json_string_value(v)) == 0) {
                return TG_OK;
            }
        }
    }
    for (i = 0; f->values[i] != NULL && n < sizeof(list); i++) {
        int k = snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "",
                         f->values[i]);

        n += k > 0 ? (size_t)k : 0;
    }
    tg_api_error_set(e, 400, f->name, "%s must be one of %s", f->name, list);
    return TG_ERROR;
}


static int
tg_api_check_strings(const tg_api_field_t *f, const json_t *v,
                     tg_api_error_t *e)
{
    size_t i;
    json_t *item;

    if (!json_is_array(v) || (int64_t)json_array_size(v) > f->max) {
        tg_api_error_set(e, 400, f->name,
                         "%s must be an array of at most %lld strings", f->name,
                         (long long)f->max);
        return TG_ERROR;
    }
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0 ||
            json_string_length(item) > 64 ||
            memchr(json_string_value(item), '\0', json_string_length(item))) {
            tg_api_error_set(e, 400, f->name,
                             "%s[%zu] must be a string of 1 to 64 bytes",
                             f->name, i);
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* Decimals (a number or a decimal string) and times. */
static int
tg_api_check_text(const tg_api_field_t *f, const json_t *v, tg_api_error_t *e)
{
    if (f->type == TG_API_F_DECIMAL) {
        if ((json_is_integer(v) && json_integer_value(v) >= 0) ||
            (json_is_real(v) && json_real_value(v) >= 0 &&
             json_real_value(v) < 1e11) ||
            (json_is_string(v) &&
             tg_api_decimal_ok(json_string_value(v), json_string_length(v)))) {
            return TG_OK;
        }
        tg_api_error_set(e, 400, f->name,
                         "%s must be a non-negative decimal (\"12.50\")",
                         f->name);
        return TG_ERROR;
    }
    if (json_is_string(v) &&
        tg_api_time_ok(json_string_value(v), json_string_length(v))) {
        return TG_OK;
    }
    tg_api_error_set(e, 400, f->name,
                     "%s must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"", f->name);
    return TG_ERROR;
}


/* Prefix e->field with "<name>." (cut to fit). */
static void
tg_api_field_prefix(tg_api_error_t *e, const char *name)
{
    char inner[sizeof(e->field)];
    size_t n = strlen(name), m;

    memcpy(inner, e->field, sizeof(inner));
    m = strnlen(inner, sizeof(inner) - 1);
    if (n + 2 >= sizeof(e->field)) {
        return;
    }
    memcpy(e->field, name, n);
    e->field[n] = '.';
    m = TG_MIN(m, sizeof(e->field) - n - 2);
    memcpy(e->field + n + 1, inner, m);
    e->field[n + 1 + m] = '\0';
}


static int
tg_api_check_objects(const tg_api_field_t *f, const json_t *v,
                     tg_api_error_t *e)
{
    char name[64];
    json_t *item;
    size_t i;

    if (!json_is_array(v) || (int64_t)json_array_size(v) > f->max) {
        tg_api_error_set(e, 400, f->name,
                         "%s must be an array of at most %lld objects", f->name,
                         (long long)f->max);
        return TG_ERROR;
    }
    json_array_foreach(v, i, item)
    {
        if (tg_api_validate(item, f->fields, false, e) != TG_OK) {
            snprintf(name, sizeof(name), "%.32s.%u", f->name,
                     (unsigned)(i % 100000));
            if (e->field[0] == '\0') {
                snprintf(e->field, sizeof(e->field), "%s", name);
            } else {
                tg_api_field_prefix(e, name);
            }
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* Check one present value <v> of field <f>. */
static int
tg_api_check_field(const tg_api_field_t *f, const json_t *v, bool partial,
                   tg_api_error_t *e)
{
    json_int_t x;

    if (json_is_null(v)) {
        if (f->flags & TG_API_NULLABLE) {
            return TG_OK;
        }
        tg_api_error_set(e, 400, f->name, "%s must not be null", f->name);
        return TG_ERROR;
    }
    switch (f->type) {
    case TG_API_F_STRING:
        return tg_api_check_string(f, v, e);
    case TG_API_F_INT:
        if (!json_is_integer(v)) {
            tg_api_error_set(e, 400, f->name, "%s must be an integer", f->name);
            return TG_ERROR;
        }
        x = json_integer_value(v);
        if (x < f->min || x > f->max) {
            tg_api_error_set(e, 400, f->name,
                             "%s must be between %lld and %lld", f->name,
                             (long long)f->min, (long long)f->max);
            return TG_ERROR;
        }
        return TG_OK;
    case TG_API_F_BOOL:
        if (!json_is_boolean(v)) {
            tg_api_error_set(e, 400, f->name, "%s must be true or false",
                             f->name);
            return TG_ERROR;
        }
        return TG_OK;
    case TG_API_F_ENUM:
        return tg_api_check_enum(f, v, e);
    case TG_API_F_STRINGS:
        return tg_api_check_strings(f, v, e);
    case TG_API_F_DECIMAL:
    case TG_API_F_TIME:
        return tg_api_check_text(f, v, e);
    case TG_API_F_OBJECT:
        if (!json_is_object(v)) {
            tg_api_error_set(e, 400, f->name, "%s must be an object", f->name);
            return TG_ERROR;
        }
        if (tg_api_validate(v, f->fields, partial, e) != TG_OK) {
            /* Name the member by its path: "key.rpm". */
            if (e->field[0] != '\0') {
                tg_api_field_prefix(e, f->name);
            }
            return TG_ERROR;
        }
        return TG_OK;
    case TG_API_F_OBJECTS:
        return tg_api_check_objects(f, v, e);
    default:
        tg_api_error_set(e, 500, NULL, "bad field spec");
        return TG_ERROR;
    }
}


/* See api_spec.h. */
int
tg_api_validate(const json_t *obj, const tg_api_field_t *spec, bool partial,
                tg_api_error_t *e)
{
    const tg_api_field_t *f;
    const char *name;
    json_t *v;

    if (!json_is_object(obj)) {
        tg_api_error_set(e, 400, NULL, "the body must be a JSON object");
        return TG_ERROR;
    }
    json_object_foreach((json_t *)obj, name, v)
    {
        for (f = spec; f->name != NULL; f++) {
            if (strcmp(f->name, name) == 0) {
                break;
            }
        }
        if (f->name == NULL) {
            char shown[48];

            snprintf(shown, sizeof(shown), "%s", name);
            tg_api_error_set(e, 400, shown, "unknown field \"%s\"", shown);
            return TG_ERROR;
        }
        if (tg_api_check_field(f, v, partial, e) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (partial) {
        if (json_object_size(obj) == 0 && spec->name != NULL) {
            tg_api_error_set(e, 400, NULL, "nothing to change");
            return TG_ERROR;
        }
        return TG_OK;
    }
    for (f = spec; f->name != NULL; f++) {
        if ((f->flags & TG_API_REQUIRED) &&
            json_object_get(obj, f->name) == NULL) {
            tg_api_error_set(e, 400, f->name, "%s is required", f->name);
            return TG_ERROR;
        }
    }
    return TG_OK;
}


static int
tg_api_unhex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}


/* Percent-decode <s> (<n> bytes, '+' is a space) into <out> (<cap>
 * bytes, NUL).  False on bad escapes, NUL bytes or overflow. */
static bool
tg_api_url_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;

            if (i + 2 >= n) {
                return false;
            }
            hi = tg_api_unhex_digit(s[i + 1]);
            lo = tg_api_unhex_digit(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) {
            return false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}


/* Convert query value <val> of field <f> into a JSON value; NULL on error
 * (then <e> is filled). */
static json_t *
tg_api_query_value(const tg_api_field_t *f, const char *val, tg_api_error_t *e)
{
    json_t *v = NULL;
    char *end;
    long long x;

    if (f->type == TG_API_F_INT) {
        if (val[0] == '\0' || (val[0] == '-' && f->min >= 0)) {
            tg_api_error_set(e, 400, f->name, "%s must be an integer", f->name);
            return NULL;
        }
        errno = 0;
        x = strtoll(val, &end, 10);
        if (*end != '\0' || errno != 0) {
            tg_api_error_set(e, 400, f->name, "%s must be an integer", f->name);
            return NULL;
        }
        v = json_integer(x);
    } else if (f->type == TG_API_F_BOOL) {
        if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0) {
            tg_api_error_set(e, 400, f->name, "%s must be true or false",
                             f->name);
            return NULL;
        }
        v = json_boolean(val[0] == 't');
    } else {
        v = json_string(val);
    }
    if (v == NULL) {
        tg_api_error_set(e, 400, f->name, "%s is not valid UTF-8", f->name);
        return NULL;
    }
    if (tg_api_check_field(f, v, false, e) != TG_OK) {
        json_decref(v);
        return NULL;
    }
    return v;
}


/* See api_spec.h. */
int
tg_api_query_parse(tg_str_t q, const tg_api_field_t *spec, json_t *args,
                   tg_api_error_t *e)
{
    char name[64], *val = NULL;
    const char *p = q.data, *end = q.data + q.len;
    const tg_api_field_t *f;
    int rc = TG_ERROR;

    val = malloc(TG_API_QUERY_MAX);
    if (val == NULL) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        json_t *v;

        if (stop == p) {
            p = stop + 1;
            continue;
        }
        if (!tg_api_url_decode(p, (size_t)((eq ? eq : stop) - p), name,
                               sizeof(name)) ||
            !tg_api_url_decode(eq ? eq + 1 : stop,
                               eq ? (size_t)(stop - eq - 1) : 0, val,
                               TG_API_QUERY_MAX)) {
            tg_api_error_set(e, 400, NULL, "malformed query string");
            goto done;
        }
        for (f = spec; f != NULL && f->name != NULL; f++) {
            if (strcmp(f->name, name) == 0) {
                break;
            }
        }
        if (f == NULL || f->name == NULL) {
            tg_api_error_set(e, 400, name, "unknown query parameter \"%s\"",
                             name);
            goto done;
        }
        if (json_object_get(args, name) != NULL) {
            tg_api_error_set(e, 400, name, "query parameter \"%s\" repeated",
                             name);
            goto done;
        }
        v = tg_api_query_value(f, val, e);
        if (v == NULL || json_object_set_new(args, name, v) != 0) {
            goto done;
        }
        p = stop + 1;
    }
    rc = TG_OK;
done:
    free(val);
    return rc;
}


/* See api_spec.h. */
bool
tg_api_path_match(const char *pattern, tg_str_t path, int64_t *id)
{
    const char *p = pattern;
    size_t i = 0;

    *id = 0;
    while (*p != '\0') {
        if (strncmp(p, "{id}", 4) == 0) {
            int64_t v = 0;
            size_t start = i;

            while (i < path.len && path.data[i] >= '0' && path.data[i] <= '9') {
                if (v > (TG_API_ID_MAX - (path.data[i] - '0')) / 10) {
                    return false;
                }
                v = v * 10 + (path.data[i] - '0');
                i++;
            }
            if (i == start || v == 0 || path.data[start] == '0') {
                return false;
            }
            *id = v;
            p += 4;
            continue;
        }
        if (i >= path.len || path.data[i] != *p) {
            return false;
        }
        i++;
        p++;
    }
    return i == path.len;
}


/* See api_spec.h. */
int
tg_api_sqlstate_map(const char *sqlstate, const char *message,
                    const char *detail, tg_api_error_t *e)
{
    int status = 500;

    if (strncmp(sqlstate, "TG", 2) == 0 && strlen(sqlstate) == 5) {
        status = atoi(sqlstate + 2);
        if (status < 400 || status > 499) {
            status = 500;
        }
    } else if (strcmp(sqlstate, "23505") == 0) {
        status = 409;
    } else if (strcmp(sqlstate, "23503") == 0 ||
               strcmp(sqlstate, "23514") == 0 ||
               strncmp(sqlstate, "22", 2) == 0) {
        status = 422;
    }
    if (status == 500) {
        tg_api_error_set(e, 500, NULL, "internal error");
    } else if (status == 409 && strcmp(sqlstate, "23505") == 0) {
        /* A unique violation's message names the constraint, which is
         * useful and holds no secret; the detail would echo the value. */
        tg_api_error_set(e, 409, NULL, "%s", message);
    } else {
        tg_api_error_set(e, status, detail, "%s", message);
    }
    return status;
}


/* See api_spec.h. */
char *
tg_api_error_json(const tg_api_error_t *e)
{
    json_t *body;
    char *s;

    body = json_pack("{s:{s:s,s:s,s:o}}", "error", "code", e->code, "message",
                     e->message, "field",
                     e->field[0] ? json_string(e->field) : json_null());
    if (body == NULL) {
        return NULL;
    }
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return s;
}
