/*
 * admin/api_spec.h
 *      Admin API: declarative field specs, the route matcher and the
 *      mapping of database errors to HTTP statuses.
 *
 * NOTES
 *      Pure functions over jansson values and strings: no I/O, no
 *      logging, no database; they are what the unit tests exercise.  A
 *      request body is checked field by field against its spec before any
 *      database call: unknown fields, wrong types, out-of-range numbers,
 *      values outside an enumeration and over-long strings are a 400 that
 *      names the field.
 */
#ifndef TG_ADMIN_API_SPEC_H
#define TG_ADMIN_API_SPEC_H

#include "core/core.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define TG_API_ID_MAX ((int64_t)9007199254740991) /* 2^53 - 1: JSON-safe */

/* Field types. */
enum {
    TG_API_F_STRING = 0, /* length in [min, max] characters (UTF-8 bytes) */
    TG_API_F_INT,        /* integer in [min, max] */
    TG_API_F_BOOL,
    TG_API_F_ENUM,    /* one of values[] */
    TG_API_F_STRINGS, /* array of at most max strings of 1..64 bytes */
    TG_API_F_DECIMAL, /* non-negative decimal: number or string "12.50" */
    TG_API_F_TIME,    /* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" */
    TG_API_F_OBJECT,  /* nested object checked against fields[] */
    TG_API_F_OBJECTS  /* array of at most max objects, each against
                         fields[] with its required members */
};

/* Field flags. */
#define TG_API_REQUIRED 0x01 /* must be present (on create) */
#define TG_API_NULLABLE 0x02 /* null is accepted (clears the value) */

typedef struct tg_api_field_s {
    const char *name;
    int type;       /* TG_API_F_* */
    unsigned flags; /* TG_API_REQUIRED, TG_API_NULLABLE */
    int64_t min;    /* int: smallest value; string: shortest length */
    int64_t max;    /* int: largest; string: longest; strings: most items */
    const char *const *values;           /* enum values, NULL-terminated */
    const struct tg_api_field_s *fields; /* object members, NULL name ends */
} tg_api_field_t;

/* One error answer. */
typedef struct {
    int status;        /* HTTP status */
    const char *code;  /* "invalid_request", "not_found", ... */
    char message[256]; /* safe to show; never a secret */
    char field[64];    /* offending field, "" when none */
} tg_api_error_t;

/* Fill <e> with <status>, its code, the message and <field> (may be NULL). */
void tg_api_error_set(tg_api_error_t *e, int status, const char *field,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The error code word of <status> ("not_found" for 404, ...). */
const char *tg_api_error_code(int status);

/*
 * Check object <obj> against <spec> (array ended by a NULL name).  With
 * <partial> (PATCH) no field is required but at least one must be given.
 * TG_OK, or TG_ERROR with <e> filled (400 naming the field).
 */
int tg_api_validate(const json_t *obj, const tg_api_field_t *spec, bool partial,
                    tg_api_error_t *e);

/*
 * Parse the query string <q> ("a=1&b=x", percent-encoded) against <spec>
 * into members of <args> (integers as integers, the rest as strings).
 * Unknown or repeated parameters and bad values are a 400 naming them.
 * TG_OK or TG_ERROR with <e>.
 */
int tg_api_query_parse(tg_str_t q, const tg_api_field_t *spec, json_t *args,
                       tg_api_error_t *e);

/*
 * Match <path> against <pattern>, whose segments are literals or "{id}"
 * (a decimal integer in [1, 2^53 - 1], no sign, no leading zero).  On a
 * match the id (0 when the pattern has none) goes to *<id>.  True or
 * false.
 */
bool tg_api_path_match(const char *pattern, tg_str_t path, int64_t *id);

/*
 * Map a database error to an answer: "TGnnn" raised by the tg_api
 * functions map to status nnn; 23505 to 409; 23503, 23514 and class 22
 * to 422; anything else to 500.  <message> and <detail> (the field name
 * or "") fill <e> for the TG and 23/22 classes; a 500 gets a generic
 * message (the caller logs the real one).  Returns the status.
 */
int tg_api_sqlstate_map(const char *sqlstate, const char *message,
                        const char *detail, tg_api_error_t *e);

/* The error body {"error":{"code","message","field"}} of <e>, a new
 * string the caller frees, or NULL when out of memory. */
char *tg_api_error_json(const tg_api_error_t *e);

#endif /* TG_ADMIN_API_SPEC_H */
