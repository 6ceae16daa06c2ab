/*
 * admin/api_export.c
 *      GET /admin/api/keys/export: every key the caller may see, as CSV or
 *      one JSON array, streamed from PostgreSQL page by page.
 *
 * NOTES
 *      Admin only, on admin's loop.  The export is tg_api.keys_export_count
 *      (the X-Total-Count header, and the audit row), then
 *      tg_api.keys_export pages of 1000 keys on a key_id cursor, each
 *      written as one chunk of a chunked answer.  The next page is asked
 *      for only once the previous one has left for the socket
 *      (tg_api_stream_*), so admin holds one page at a time however slowly
 *      the client reads: memory stays flat for any number of keys.
 *
 *      Keys appear as prefix and last4, never a digest or a secret; with
 *      mask=email the owners' addresses are masked in the database.
 *
 *      CSV follows RFC 4180: a header row, CRLF line ends, a field in
 *      double quotes when it holds a comma, a double quote, CR or LF (its
 *      quotes doubled).  Free-text fields (name, username, email, group,
 *      models) that begin with =, +, -, @, TAB or CR get a leading
 *      apostrophe, so a spreadsheet opening the file shows them as text
 *      instead of running them as formulas (OWASP's CSV injection advice);
 *      the JSON export carries every value unchanged.
 *
 *      A failure after the head has gone out (database lost mid-way)
 *      closes the connection without the last chunk: the client sees a
 *      cut transfer, never a short file that looks complete.
 */
#include "admin/api_int.h"
#include "core/core.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_EXPORT_PIECE (4u << 20) /* bound of one page's output */

typedef struct {
    const char *name; /* member of the page item */
    bool text;        /* free text: guarded against formulas */
} tg_export_col_t;

static const tg_export_col_t tg_export_cols[] = {
    {"key_id", false},     {"user_id", false},     {"username", true},
    {"email", true},       {"name", true},         {"prefix", false},
    {"last4", false},      {"status", false},      {"expires_at", false},
    {"group", true},       {"models", true},       {"rpm", false},
    {"burst", false},      {"tpm", false},         {"concurrency", false},
    {"created_at", false}, {"last_used_at", false}};

static void tg_export_page(tg_api_req_t *r);


/* True when the export is CSV. */
static bool
tg_export_csv(const tg_api_req_t *r)
{
    const char *f = json_string_value(json_object_get(r->state_json, "format"));

    return f == NULL || strcmp(f, "csv") == 0;
}


/* Append <n> bytes of <s> to <b> as one CSV field. */
static int
tg_export_csv_field(tg_buf_t *b, const char *s, size_t n, bool text)
{
    bool quote = false, guard = false;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') {
            quote = true;
            break;
        }
    }
    if (text && n > 0 &&
        (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
         s[0] == '\t' || s[0] == '\r')) {
        guard = true;
    }
    if (quote && tg_buf_append(b, "\"", 1) != TG_OK) {
        return TG_ERROR;
    }
    if (guard && tg_buf_append(b, "'", 1) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '"' && tg_buf_append(b, "\"", 1) != TG_OK) {
            return TG_ERROR;
        }
        if (tg_buf_append(b, &s[i], 1) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (quote && tg_buf_append(b, "\"", 1) != TG_OK) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* Append the CSV text of value <v> of column <col>. */
static int
tg_export_csv_value(tg_buf_t *b, const json_t *v, const tg_export_col_t *col)
{
    char num[32];
    const json_t *m;
    size_t i;
    int n;

    if (json_is_string(v)) {
        return tg_export_csv_field(b, json_string_value(v),
                                   json_string_length(v), col->text);
    }
    if (json_is_integer(v)) {
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        return tg_buf_append(b, num, (size_t)n);
    }
    if (json_is_array(v)) {
        /* models: space-separated (a model name holds no space). */
        tg_buf_t tmp;
        int rc = TG_OK;

        tg_buf_init(&tmp, 64 * 1024);
        json_array_foreach(v, i, m)
        {
            if ((i > 0 && tg_buf_append(&tmp, " ", 1) != TG_OK) ||
                (json_is_string(m) &&
                 tg_buf_append(&tmp, json_string_value(m),
                               json_string_length(m)) != TG_OK)) {
                rc = TG_ERROR;
                break;
            }
        }
        if (rc == TG_OK && tg_buf_len(&tmp) > 0) {
            rc = tg_export_csv_field(b, tmp.data + tmp.pos, tg_buf_len(&tmp),
                                     col->text);
        }
        tg_buf_fini(&tmp);
        return rc;
    }
    return TG_OK; /* null: empty field */
}


/* One CSV row for key <item>. */
static int
tg_export_csv_row(tg_buf_t *b, const json_t *item)
{
    size_t i;

    for (i = 0; i < TG_NELEMS(tg_export_cols); i++) {
        if ((i > 0 && tg_buf_append(b, ",", 1) != TG_OK) ||
            tg_export_csv_value(b,
                                json_object_get(item, tg_export_cols[i].name),
                                &tg_export_cols[i]) != TG_OK) {
            return TG_ERROR;
        }
    }
    return tg_buf_append(b, "\r\n", 2);
}


/* One JSON array element for key <item>; <first> opens the array. */
static int
tg_export_json_item(tg_buf_t *b, const json_t *item, bool first)
{
    char *s = json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc;

    if (s == NULL) {
        return TG_ERROR;
    }
    rc = tg_buf_append(b, first ? "\n" : ",\n", first ? 1 : 2);
    if (rc == TG_OK) {
        rc = tg_buf_append(b, s, strlen(s));
    }
    free(s);
    return rc;
}


/* Write the keys of one page into the answer as one chunk. */
static int
tg_export_write_items(tg_api_req_t *r, const json_t *items)
{
    json_t *done = json_object_get(r->state_json, "written");
    json_int_t written = json_integer_value(done);
    const json_t *item;
    tg_buf_t piece;
    size_t i;
    int rc = TG_OK;

    tg_buf_init(&piece, TG_EXPORT_PIECE);
    json_array_foreach(items, i, item)
    {
        rc = tg_export_csv(r) ? tg_export_csv_row(&piece, item)
                              : tg_export_json_item(&piece, item, written == 0);
        if (rc != TG_OK) {
            break;
        }
        written++;
    }
    if (rc == TG_OK) {
        rc = tg_api_stream_write(r, piece.data + piece.pos, tg_buf_len(&piece));
    }
    tg_buf_fini(&piece);
    if (rc == TG_OK && json_object_set_new(r->state_json, "written",
                                           json_integer(written)) != 0) {
        rc = TG_ERROR;
    }
    return rc;
}


/* A page arrived: write it, then end or wait for the socket to drain. */
static void
tg_export_page_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *next;
    const char *tail;

    if (result == NULL) {
        tg_log(TG_LOG_ERR, 0, "key export: a page failed: %s", e->message);
        tg_api_stream_abort(r);
        return;
    }
    if (tg_export_write_items(r, json_object_get(result, "items")) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "key export: out of memory");
        tg_api_stream_abort(r);
        return;
    }
    next = json_object_get(result, "next_cursor");
    if (!json_is_string(next)) {
        tail =
            tg_export_csv(r) ? ""
            : json_integer_value(json_object_get(r->state_json, "written")) > 0
                ? "\n]\n"
                : "]\n";
        if (tg_api_stream_write(r, tail, strlen(tail)) != TG_OK) {
            tg_api_stream_abort(r);
            return;
        }
        tg_api_stream_end(r);
        return;
    }
    if (json_object_set_new(
            r->args, "cursor",
            json_integer(strtoll(json_string_value(next), NULL, 10))) != 0) {
        tg_api_stream_abort(r);
        return;
    }
    r->more = tg_export_page;
    tg_api_stream_flush(r);
}


/* Ask for the next page (the output has drained). */
static void
tg_export_page(tg_api_req_t *r)
{
    (void)tg_api_call(r, TG_API_SQL("keys_export"), r->args,
                      tg_export_page_done);
}


/* The count arrived: send the head and the first line, fetch page one. */
static void
tg_export_count_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    static const char csv_head[] =
        "key_id,user_id,username,email,name,prefix,last4,status,expires_at,"
        "group,models,rpm,burst,tpm,concurrency,created_at,last_used_at\r\n";
    bool csv = tg_export_csv(r);
    char extra[256], disp[96];
    json_int_t total;

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    total = json_integer_value(json_object_get(result, "total"));
    snprintf(disp, sizeof(disp),
             "content-disposition: attachment; filename=\"keys.%s\"\r\n",
             csv ? "csv" : "json");
    snprintf(extra, sizeof(extra),
             "x-total-count: %" JSON_INTEGER_FORMAT "\r\n%s", total, disp);
    if (tg_api_stream_start(r, 200,
                            csv ? "text/csv; charset=utf-8; header=present"
                                : "application/json",
                            extra, NULL) != TG_OK ||
        tg_api_stream_write(r, csv ? csv_head : "[",
                            csv ? sizeof(csv_head) - 1 : 1) != TG_OK) {
        tg_api_stream_abort(r);
        return;
    }
    /* The head and the first line go out while page one is fetched. */
    r->more = tg_export_page;
    tg_api_stream_flush(r);
}


/* See api_int.h. */
void
tg_api_keys_export(tg_api_req_t *r)
{
    json_t *format = json_object_get(r->args, "format");

    json_decref(r->state_json);
    r->state_json =
        json_pack("{s:s,s:I}", "format",
                  json_is_string(format) ? json_string_value(format) : "csv",
                  "written", (json_int_t)0);
    if (r->state_json == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    json_object_del(r->args, "format");
    json_object_del(r->args, "cursor");
    (void)tg_api_call(r, TG_API_SQL("keys_export_count"), r->args,
                      tg_export_count_done);
}
