/*
 * admin/api.c
 *      Admin HTTP server: connections, bounded requests, routing,
 *      authentication, database calls and JSON answers.
 *
 * NOTES
 *      Admin only, on admin's loop; nothing here blocks.  One request per
 *      connection, answered with "connection: close".  A connection goes
 *      HEAD -> BODY -> WORK -> WRITE: the head is bounded to 16 KB (431),
 *      the body to 1 MB whether sent with Content-Length or chunked (413);
 *      a connection gets TG_API_TIMEOUT_MS for the whole exchange and at
 *      most TG_API_CONNS_MAX are open at once (more are closed on
 *      accept).  While a request WORKs (waits for PostgreSQL or an
 *      outbound request) the socket stays watched: a client that closes
 *      makes the request go away, after its pending callbacks were
 *      forgotten.
 *
 *      Every route but the public ones (/healthz, the login routes) starts
 *      with tg_api.session_lookup of the SHA-256 of its bearer token; only
 *      then is its body checked and its call made.  So an unauthenticated
 *      client learns nothing about a route but 401.  The token itself is
 *      never logged and is wiped when the request ends.
 */
#include "admin/api_int.h"
#include "admin/store.h"
#include "admin/webhook.h"
#include "core/core.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { TG_API_S_HEAD = 0, TG_API_S_BODY, TG_API_S_WORK, TG_API_S_WRITE };

static tg_api_t tg_api;

static void tg_api_conn_close(tg_api_req_t *r);
static void tg_api_dispatch(tg_api_req_t *r);
static int tg_api_body_parse(tg_api_req_t *r, tg_api_error_t *e);


/* See api_int.h. */
tg_pg_t *
tg_api_pg(void)
{
    return tg_store_pg();
}


/* See api_int.h.  The tg_api functions exist once the store has migrated
 * and published; before that a call would find no function. */
bool
tg_api_db_ready(const tg_api_t *a)
{
    tg_pg_t *pg = tg_store_pg();

    (void)a;
    return pg != NULL && tg_pg_state(pg) == TG_PG_READY &&
           tg_store_state() == TG_STORE_READY;
}


/* See api_int.h. */
const char *
tg_api_db_state(const tg_api_t *a)
{
    (void)a;
    return tg_store_state_name();
}


/* See api_int.h. */
bool
tg_api_is_admin(const tg_api_req_t *r)
{
    json_t *role = json_object_get(r->actor, "role");

    return json_is_string(role) &&
           strcmp(json_string_value(role), "admin") == 0;
}


/* See api_int.h. */
void
tg_api_send_type(tg_api_req_t *r, int status, const char *type,
                 const char *body, size_t len)
{
    char head[256];
    int n;

    if (r->streaming) {
        /* The head of a streamed answer has gone out: an error now can
         * only cut the body short, so the client sees a broken transfer
         * (no last chunk), never a clean end. */
        tg_api_stream_abort(r);
        return;
    }
    tg_buf_reset(&r->out, 0);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n"
                 "content-length: %zu\r\ncache-control: no-store\r\n"
                 "connection: close\r\n\r\n",
                 status, tg_http_reason(status), type, len);
    if (n < 0 || (size_t)n >= sizeof(head) ||
        tg_buf_append(&r->out, head, (size_t)n) != TG_OK ||
        tg_buf_append(&r->out, body, len) != TG_OK) {
        static const char oom[] =
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n";

        tg_buf_reset(&r->out, 0);
        (void)tg_buf_append(&r->out, oom, sizeof(oom) - 1);
    }
    r->state = TG_API_S_WRITE;
    if (tg_ev_mod(r->api->loop, r->fd, EPOLLOUT) != TG_OK) {
        tg_api_conn_close(r);
    }
}


/* Queue a JSON answer: status line, headers, <body> of <len> bytes. */
static void
tg_api_send(tg_api_req_t *r, int status, const char *body, size_t len)
{
    tg_api_send_type(r, status, "application/json", body, len);
}


/* See api_int.h. */
int
tg_api_stream_start(tg_api_req_t *r, int status, const char *type,
                    const char *extra, tg_api_more_pt more)
{
    char head[512];
    int n;

    tg_buf_reset(&r->out, 0);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n"
                 "transfer-encoding: chunked\r\ncache-control: no-store\r\n"
                 "%sconnection: close\r\n\r\n",
                 status, tg_http_reason(status), type, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head) ||
        tg_buf_append(&r->out, head, (size_t)n) != TG_OK) {
        return TG_ERROR;
    }
    r->streaming = true;
    r->more = more;
    return TG_OK;
}


/* See api_int.h. */
int
tg_api_stream_write(tg_api_req_t *r, const char *p, size_t n)
{
    char size[24];
    int k;

    if (n == 0) {
        return TG_OK;
    }
    k = snprintf(size, sizeof(size), "%zx\r\n", n);
    if (tg_buf_append(&r->out, size, (size_t)k) != TG_OK ||
        tg_buf_append(&r->out, p, n) != TG_OK ||
        tg_buf_append(&r->out, "\r\n", 2) != TG_OK) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* See api_int.h. */
void
tg_api_stream_flush(tg_api_req_t *r)
{
    r->state = TG_API_S_WRITE;
    /* Progress: a long export gets the exchange timeout per batch, not
     * for the whole transfer. */
    tg_ev_timer_del(r->api->loop, &r->timer);
    tg_ev_timer_add(r->api->loop, &r->timer, TG_API_TIMEOUT_MS);
    if (tg_ev_mod(r->api->loop, r->fd, EPOLLOUT) != TG_OK) {
        /* Closed on the next EPOLLOUT-less turn by the timer. */
        r->more = NULL;
    }
}


/* See api_int.h. */
void
tg_api_stream_end(tg_api_req_t *r)
{
    r->more = NULL;
    if (tg_buf_append(&r->out, "0\r\n\r\n", 5) != TG_OK) {
        tg_api_stream_abort(r);
        return;
    }
    tg_api_stream_flush(r);
}


/* See api_int.h. */
void
tg_api_stream_abort(tg_api_req_t *r)
{
    r->more = NULL;
    r->state = TG_API_S_WRITE;
    if (tg_ev_mod(r->api->loop, r->fd, EPOLLOUT) != TG_OK) {
        r->more = NULL;
    }
}


/* See api_int.h. */
void
tg_api_respond(tg_api_req_t *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

    if (s == NULL) {
        static const char oom[] = "{\"error\":{\"code\":\"unavailable\","
                                  "\"message\":\"out of memory\","
                                  "\"field\":null}}";

        tg_api_send(r, 503, oom, sizeof(oom) - 1);
    } else {
        tg_api_send(r, status, s, strlen(s));
        /* The body may carry a key or token shown once. */
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
    json_decref(body);
}


/* See api_int.h. */
void
tg_api_respond_error(tg_api_req_t *r, const tg_api_error_t *e)
{
    char *s = tg_api_error_json(e);

    if (s == NULL) {
        tg_api_send(r, 503, "{}", 2);
        return;
    }
    tg_api_send(r, e->status, s, strlen(s));
    free(s);
}


/* See api_int.h. */
void
tg_api_fail(tg_api_req_t *r, int status, const char *field, const char *fmt,
            ...)
{
    tg_api_error_t e;
    va_list ap;

    tg_api_error_set(&e, status, field, "%s", "");
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    tg_api_respond_error(r, &e);
}


/* libpq answered the call of request <ctx>. */
static void
tg_api_pg_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_api_req_t *r = ctx;
    tg_api_call_cb cb = r->call_cb;
    json_t *result = NULL;
    json_error_t jerr;
    tg_api_error_t e;
    int status;

    r->pg_pending = false;
    r->call_cb = NULL;
    memset(&e, 0, sizeof(e));
    if (!tg_pg_res_ok(res)) {
        const char *state = tg_pg_res_sqlstate(res);

        status = tg_api_sqlstate_map(state, tg_pg_res_message(res),
                                     tg_pg_res_detail(res), &e);
        if (status == 500) {
            /* The primary message names what failed; the detail could
             * echo a value, so it stays out of the log. */
            tg_log(TG_LOG_ERR, 0, "%s: database error %s: %s", r->path, state,
                   tg_pg_res_message(res));
            if (strncmp(state, "08", 2) == 0) {
                tg_api_error_set(&e, 503, NULL, "the database is unavailable");
            }
        }
        cb(r, NULL, &e);
        return;
    }
    if (tg_pg_res_rows(res) != 1 || tg_pg_res_cols(res) < 1 ||
        tg_pg_res_null(res, 0, 0)) {
        tg_api_error_set(&e, 404, NULL, "not found");
        cb(r, NULL, &e);
        return;
    }
    result =
        json_loads(tg_pg_res_value(res, 0, 0), JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(result)) {
        tg_log(TG_LOG_ERR, 0, "%s: the database answered no JSON object",
               r->path);
        tg_api_error_set(&e, 500, NULL, "internal error");
        json_decref(result);
        cb(r, NULL, &e);
        return;
    }
    cb(r, result, &e);
    json_decref(result);
}


/* See api_int.h. */
int
tg_api_call(tg_api_req_t *r, const char *sql, json_t *args, tg_api_call_cb cb)
{
    const char *params[2];
    char *p1 = NULL, *p2 = NULL;
    int rc = TG_ERROR;

    if (!tg_api_db_ready(r->api)) {
        tg_api_fail(r, 503, NULL,
                    tg_api_pg() == NULL
                        ? "no database is configured"
                        : "the database is not ready; try again shortly");
        return TG_ERROR;
    }
    p1 = json_dumps(r->ctx, JSON_COMPACT);
    p2 = json_dumps(args, JSON_COMPACT);
    if (p1 == NULL || p2 == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        goto done;
    }
    params[0] = p1;
    params[1] = p2;
    r->call_cb = cb;
    if (tg_pg_query(tg_api_pg(), sql, 2, params, tg_api_pg_cb, r) != TG_OK) {
        r->call_cb = NULL;
        tg_api_fail(r, 503, NULL, "the database is not ready");
        goto done;
    }
    r->pg_pending = true;
    rc = TG_OK;
done:
    /* The arguments may hold digests and hashes: not secrets, but no
     * reason to leave them in freed memory either. */
    if (p2 != NULL) {
        OPENSSL_cleanse(p2, strlen(p2));
    }
    free(p1);
    free(p2);
    return rc;
}


/* See api_int.h. */
void
tg_api_call_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    if (r->route->post != NULL && r->route->post(r, result, e) != TG_OK) {
        tg_api_respond_error(r, e);
        return;
    }
    tg_api_respond(r, r->route->status ? r->route->status : 200,
                   json_incref(result));
}


/* Build $1: who acts, from where. */
static int
tg_api_ctx_build(tg_api_req_t *r)
{
    json_t *uid = json_object_get(r->actor, "user_id");
    json_t *role = json_object_get(r->actor, "role");

    json_decref(r->ctx);
    r->ctx = json_pack("{s:O,s:O,s:s,s:s}", "actor", uid ? uid : json_null(),
                       "role", role ? role : json_null(), "addr", r->addr,
                       "host", r->api->host);
    return r->ctx ? TG_OK : TG_ERROR;
}


/* The argument name of a path id: the resource word of <pattern> in the
 * singular, "_id" appended ("/admin/api/keys/{id}" -> "key_id"). */
static bool
tg_api_id_name(const char *pattern, char *out, size_t cap)
{
    static const char base[] = "/admin/api/";
    const char *p, *slash;
    size_t n;

    if (strncmp(pattern, base, sizeof(base) - 1) != 0) {
        return false;
    }
    p = pattern + sizeof(base) - 1;
    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    if (n < 2 || n + 3 >= cap || p[n - 1] != 's') {
        return false;
    }
    memcpy(out, p, n - 1);
    memcpy(out + n - 1, "_id", 4);
    return true;
}


/* Check the query and body against the route's specs and build $2. */
static int
tg_api_args_build(tg_api_req_t *r, tg_api_error_t *e)
{
    const tg_api_route_t *rt = r->route;
    char name[64];

    r->args = r->body && json_is_object(r->body) ? json_deep_copy(r->body)
                                                 : json_object();
    if (r->args == NULL) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    if (r->query_len > 0) {
        if (rt->query == NULL) {
            tg_api_error_set(e, 400, NULL, "this route takes no query");
            return TG_ERROR;
        }
        if (tg_api_query_parse((tg_str_t){r->query, r->query_len}, rt->query,
                               r->args, e) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (r->id != 0 && tg_api_id_name(rt->pattern, name, sizeof(name)) &&
        json_object_set_new(r->args, name, json_integer(r->id)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Authenticated (or public): check the input and run the route. */
static void
tg_api_proceed(tg_api_req_t *r)
{
    const tg_api_route_t *rt = r->route;
    tg_api_error_t e;

    if ((rt->flags & TG_API_R_ADMIN) && !tg_api_is_admin(r)) {
        tg_api_fail(r, 403, NULL, "administrators only");
        return;
    }
    if (r->body_len > 0 && rt->body == NULL) {
        tg_api_fail(r, 400, NULL, "this route takes no body");
        return;
    }
    if (tg_api_body_parse(r, &e) != TG_OK) {
        tg_api_respond_error(r, &e);
        return;
    }
    if (r->body != NULL && rt->body != NULL &&
        tg_api_validate(r->body, rt->body, (rt->flags & TG_API_R_PARTIAL) != 0,
                        &e) != TG_OK) {
        tg_api_respond_error(r, &e);
        return;
    }
    if (r->body == NULL && rt->body != NULL) {
        /* No body at all is an empty object: required fields, or the
         * "nothing to change" of a PATCH, say so. */
        r->body = json_object();
        if (r->body == NULL) {
            tg_api_fail(r, 503, NULL, "out of memory");
            return;
        }
        if (tg_api_validate(r->body, rt->body,
                            (rt->flags & TG_API_R_PARTIAL) != 0, &e) != TG_OK) {
            tg_api_respond_error(r, &e);
            return;
        }
    }
    if (tg_api_args_build(r, &e) != TG_OK) {
        tg_api_respond_error(r, &e);
        return;
    }
    if (tg_api_ctx_build(r) != TG_OK) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    if (rt->run != NULL) {
        rt->run(r);
        return;
    }
    if (rt->prep != NULL && rt->prep(r, &e) != TG_OK) {
        tg_api_respond_error(r, &e);
        return;
    }
    (void)tg_api_call(r, rt->sql, r->args, tg_api_call_done);
}


/* session_lookup answered. */
static void
tg_api_auth_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    if (result == NULL) {
        if (e->status == 404 || e->status == 401) {
            tg_api_fail(r, 401, NULL, "invalid or expired token");
        } else {
            tg_api_respond_error(r, e);
        }
        return;
    }
    r->actor = json_incref(result);
    tg_api_proceed(r);
}


/* The request is complete: route it, authenticate it, run it. */
static void
tg_api_dispatch(tg_api_req_t *r)
{
    tg_str_t path = {r->path, r->path_len};
    const tg_api_route_t *rt, *found = NULL;
    char digest[2 * TG_CRYPTO_DIGEST_LEN + 1];
    bool path_seen = false;
    json_t *args;
    size_t i;
    int64_t id;

    r->state = TG_API_S_WORK;
    for (i = 0; i < tg_api_nroutes; i++) {
        rt = &tg_api_routes[i];
        if (!tg_api_path_match(rt->pattern, path, &id)) {
            continue;
        }
        path_seen = true;
        if (rt->method == r->method) {
            found = rt;
            r->id = id;
            break;
        }
    }
    if (found == NULL) {
        tg_api_fail(r, path_seen ? 405 : 404, NULL,
                    path_seen ? "method not allowed" : "no such route");
        return;
    }
    r->route = found;
    if (found->flags & TG_API_R_PUBLIC) {
        tg_api_proceed(r);
        return;
    }
    if (r->token_len == 0) {
        tg_api_fail(r, 401, NULL,
                    "authentication required: "
                    "Authorization: Bearer <token>");
        return;
    }
    tg_crypto_digest_hex(r->token, r->token_len, digest);
    args = json_pack("{s:s}", "digest", digest);
    if (args == NULL || tg_api_ctx_build(r) != TG_OK) {
        json_decref(args);
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("session_lookup"), args, tg_api_auth_done);
    json_decref(args);
}


/* Take what the request needs out of the parsed head (which points into
 * r->in, and r->in may move when the body is read). */
static int
tg_api_head_take(tg_api_req_t *r, const tg_http_req_t *h, tg_api_error_t *e)
{
    static const tg_str_t bearer = tg_str_lit("Bearer ");
    const tg_http_header_t *auth;

    r->method = h->method;
    if (h->path.len >= sizeof(r->path)) {
        tg_api_error_set(e, 404, NULL, "no such route");
        return TG_ERROR;
    }
    memcpy(r->path, h->path.data, h->path.len);
    r->path[h->path.len] = '\0';
    r->path_len = h->path.len;
    if (h->query.len > 0) {
        r->query = malloc(h->query.len + 1);
        if (r->query == NULL) {
            tg_api_error_set(e, 503, NULL, "out of memory");
            return TG_ERROR;
        }
        memcpy(r->query, h->query.data, h->query.len);
        r->query[h->query.len] = '\0';
        r->query_len = h->query.len;
    }
    auth = tg_http_find_header(h->headers, h->nheaders,
                               tg_str_lit("authorization"));
    if (auth != NULL && auth->value.len > bearer.len &&
        tg_str_caseeq((tg_str_t){auth->value.data, bearer.len}, bearer)) {
        size_t n = auth->value.len - bearer.len;

        if (n >= sizeof(r->token)) {
            tg_api_error_set(e, 401, NULL, "invalid or expired token");
            return TG_ERROR;
        }
        memcpy(r->token, auth->value.data + bearer.len, n);
        r->token_len = n;
    }
    if (h->content_length > TG_API_BODY_MAX) {
        tg_api_error_set(e, 413, NULL, "the body is larger than %d bytes",
                         TG_API_BODY_MAX);
        return TG_ERROR;
    }
    r->content_length = h->content_length;
    r->is_chunked = h->chunked;
    r->head_len = h->head_len;
    return TG_OK;
}


/* Parse the body held in r->in after the head: JSON object or nothing.
 * Done only once the route and the caller are known, so that an
 * unauthenticated client learns nothing from a 400. */
static int
tg_api_body_parse(tg_api_req_t *r, tg_api_error_t *e)
{
    const char *p = r->in.data + r->in.pos + r->head_len;
    size_t n = r->body_len;
    json_error_t jerr;

    if (n == 0) {
        return TG_OK;
    }
    r->body = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    if (r->body == NULL) {
        /* jansson's text ends in "near '<input>'": cut, so that a
         * password sent in broken JSON never comes back. */
        char *near = strstr(jerr.text, " near ");

        if (near != NULL) {
            *near = '\0';
        }
        tg_api_error_set(e, 400, NULL, "bad JSON at line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
        return TG_ERROR;
    }
    if (!json_is_object(r->body)) {
        tg_api_error_set(e, 400, NULL, "the body must be a JSON object");
        return TG_ERROR;
    }
    return TG_OK;
}


/* More body bytes arrived: TG_OK when complete, TG_AGAIN for more,
 * TG_ERROR with <e>. */
static int
tg_api_body_read(tg_api_req_t *r, tg_api_error_t *e)
{
    char *start = r->in.data + r->in.pos + r->head_len;
    size_t avail = tg_buf_len(&r->in) - r->head_len;
    size_t used, out;
    tg_err_t err;
    int rc;

    if (!r->is_chunked) {
        if (r->content_length <= 0) {
            return TG_OK;
        }
        if ((int64_t)avail < r->content_length) {
            return TG_AGAIN;
        }
        r->body_len = (size_t)r->content_length;
        return TG_OK;
    }
    /* Chunked: decode in place behind the payload already decoded. */
    rc = tg_http_chunked_decode(&r->chunked, start + r->body_len,
                                avail - r->body_len, &used, &out, &err);
    if (rc == TG_ERROR) {
        tg_api_error_set(e, 400, NULL, "bad chunked body: %s", err.text);
        return TG_ERROR;
    }
    /* Payload now at start + body_len; drop the framing bytes behind it. */
    memmove(start + r->body_len + out, start + r->body_len + used,
            avail - r->body_len - used);
    r->in.last -= used - out;
    r->body_len += out;
    if (r->body_len > TG_API_BODY_MAX) {
        tg_api_error_set(e, 413, NULL, "the body is larger than %d bytes",
                         TG_API_BODY_MAX);
        return TG_ERROR;
    }
    return rc;
}


/* Bytes arrived while reading the head or body. */
static void
tg_api_read(tg_api_req_t *r)
{
    tg_http_req_t h;
    tg_api_error_t e;
    tg_err_t err;
    ssize_t n;
    int rc;

    if (tg_buf_reserve(&r->in, 4096) != TG_OK) {
        tg_api_fail(r, r->state == TG_API_S_HEAD ? 431 : 413, NULL,
                    "request too large");
        return;
    }
    n = recv(r->fd, r->in.data + r->in.last, r->in.cap - r->in.last, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        tg_api_conn_close(r);
        return;
    }
    if (n < 0) {
        return;
    }
    r->in.last += (size_t)n;
    if (r->state == TG_API_S_HEAD) {
        rc = tg_http_parse_request(&h, r->in.data + r->in.pos,
                                   tg_buf_len(&r->in), TG_API_HEAD_MAX, &err);
        if (rc == TG_AGAIN) {
            return;
        }
        if (rc == TG_ERROR) {
            tg_api_fail(r, err.code, NULL, "bad request: %s", err.text);
            return;
        }
        if (tg_api_head_take(r, &h, &e) != TG_OK) {
            tg_api_respond_error(r, &e);
            return;
        }
        r->state = TG_API_S_BODY;
        if (h.expect_continue && tg_buf_len(&r->in) == r->head_len) {
            /* curl waits a second for this before a large body; best
             * effort: if the socket cannot take 25 bytes now, the client
             * sends the body after its own timeout. */
            (void)!send(r->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25,
                        MSG_NOSIGNAL);
        }
    }
    rc = tg_api_body_read(r, &e);
    if (rc == TG_AGAIN) {
        return;
    }
    if (rc == TG_ERROR) {
        tg_api_respond_error(r, &e);
        return;
    }
    tg_api_dispatch(r);
}


/* A streamed answer's output drained: wait for its next piece, watching
 * the socket only for a close meanwhile. */
static void
tg_api_stream_next(tg_api_req_t *r)
{
    tg_api_more_pt more = r->more;

    r->state = TG_API_S_WORK;
    tg_buf_reset(&r->out, 64u << 10);
    if (tg_ev_mod(r->api->loop, r->fd, EPOLLIN) != TG_OK) {
        tg_api_conn_close(r);
        return;
    }
    more(r);
}


static void
tg_api_conn_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_api_req_t *r = data;
    char sink[512];
    ssize_t n;

    (void)loop;
    if (r->state == TG_API_S_WRITE) {
        n = tg_buf_len(&r->out) == 0 ? 0
                                     : send(fd, r->out.data + r->out.pos,
                                            tg_buf_len(&r->out), MSG_NOSIGNAL);
        if (n > 0) {
            tg_buf_consume(&r->out, (size_t)n);
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            tg_api_conn_close(r);
        } else if (tg_buf_len(&r->out) == 0 && r->more != NULL) {
            /* A streamed answer drained: only now is the next piece
             * asked for, so a slow reader holds at most one piece. */
            tg_api_stream_next(r);
        } else if (tg_buf_len(&r->out) == 0) {
            tg_api_conn_close(r);
        }
        return;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        tg_api_conn_close(r);
        return;
    }
    if (r->state == TG_API_S_WORK) {
        /* Only a close matters now; extra bytes are not a second request. */
        n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            tg_api_conn_close(r);
        }
        return;
    }
    tg_api_read(r);
}


static void
tg_api_timeout(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    tg_api_conn_close(t->data);
}


/* Free request <r>, forgetting whatever may still call it back. */
static void
tg_api_conn_close(tg_api_req_t *r)
{
    tg_api_t *a = r->api;

    if (r->pg_pending && tg_api_pg() != NULL) {
        tg_pg_forget(tg_api_pg(), r);
    }
    tg_webhook_forget(r);
    tg_ev_timer_del(a->loop, &r->timer);
    tg_ev_del(a->loop, r->fd);
    close(r->fd);
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        a->conns = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    a->nconns--;
    if (r->in.data != NULL) {
        OPENSSL_cleanse(r->in.data, r->in.cap);
    }
    tg_buf_fini(&r->in);
    tg_buf_fini(&r->out);
    free(r->query);
    json_decref(r->body);
    json_decref(r->args);
    json_decref(r->ctx);
    json_decref(r->actor);
    json_decref(r->state_json);
    OPENSSL_cleanse(r->token, sizeof(r->token));
    OPENSSL_cleanse(r->secret, sizeof(r->secret));
    OPENSSL_cleanse(r->code, sizeof(r->code));
    free(r);
}


/* The peer's address as text, for the audit log. */
static void
tg_api_peer(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    snprintf(out, cap, "unknown");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out,
                  (socklen_t)cap);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
                  (socklen_t)cap);
    }
}


/* Accepting resumes after a pause for want of descriptors. */
static void
tg_api_accept_resume(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_api_t *a = t->data;

    (void)tg_ev_mod(loop, a->listen_fd, EPOLLIN);
}


/*
 * accept4 failed on listening socket <fd> with <err>.  Out of descriptors
 * or memory, the socket stays readable and the loop would spin on it:
 * stop accepting for 100 ms (the clients wait in the backlog) and warn
 * at most once a second with a count, as the workers do.
 */
static void
tg_api_accept_failed(tg_api_t *a, int fd, int err)
{
    uint64_t now = tg_ev_now(a->loop);

    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
            tg_log(TG_LOG_ERR, err, "accept4() failed");
        }
        return;
    }
    a->accept_fails++;
    if (a->accept_logged == 0 || now - a->accept_logged >= 1000) {
        tg_log(TG_LOG_WARN, err,
               "accept4() failed %llu time(s) for want of descriptors or "
               "memory, with %u admin connections open; accepting paused "
               "for 100 ms each time",
               (unsigned long long)a->accept_fails, a->nconns);
        a->accept_fails = 0;
        a->accept_logged = now;
    }
    if (tg_ev_mod(a->loop, fd, 0) == TG_OK) {
        a->accept_timer.handler = tg_api_accept_resume;
        a->accept_timer.data = a;
        tg_ev_timer_add(a->loop, &a->accept_timer, 100);
    }
}


static void
tg_api_accept_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_api_t *a = data;
    tg_api_req_t *r;
    int i, cfd;

    (void)events;
    for (i = 0; i < 64; i++) {
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd == -1) {
            tg_api_accept_failed(a, fd, errno);
            return;
        }
        if (a->nconns >= TG_API_CONNS_MAX) {
            /* Over the cap: closing at once is the cheapest answer and
             * leaves the open ones their time. */
            close(cfd);
            continue;
        }
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            close(cfd);
            continue;
        }
        r->api = a;
        r->fd = cfd;
        r->content_length = -1;
        tg_buf_init(&r->in, TG_API_HEAD_MAX + TG_API_BODY_MAX + 4096);
        tg_buf_init(&r->out, 64u << 20);
        r->timer.handler = tg_api_timeout;
        r->timer.data = r;
        tg_api_peer(cfd, r->addr, sizeof(r->addr));
        if (tg_ev_add(loop, cfd, EPOLLIN, tg_api_conn_handler, r) != TG_OK) {
            close(cfd);
            free(r);
            continue;
        }
        r->next = a->conns;
        if (a->conns != NULL) {
            a->conns->prev = r;
        }
        a->conns = r;
        a->nconns++;
        tg_ev_timer_add(loop, &r->timer, TG_API_TIMEOUT_MS);
    }
}


static void
tg_api_tick_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_api_t *a = t->data;

    if (a->bootstrap == 3) {
        a->bootstrap = 0;
        tg_ev_timer_add(loop, t, 5000);
        return;
    }
    if (a->bootstrap == 0 && tg_api_db_ready(a)) {
        tg_api_bootstrap_check(a);
    }
    if (a->bootstrap != 2) {
        tg_ev_timer_add(loop, t, 200);
    }
}


/* Load the secret keys; without them admin still serves. */
static void
tg_api_keys_load(tg_api_t *a)
{
    const char *spec = a->opts.secret_key && a->opts.secret_key[0]
                           ? a->opts.secret_key
                           : "run/secret.key";
    bool created = false;
    tg_err_t err;

    memset(&err, 0, sizeof(err));
    if (tg_crypto_keyring_load(&a->keyring, spec, a->opts.old_secret_keys,
                               a->opts.nold_secret_keys, &created,
                               &err) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "admin.secret_key: %s; endpoint credentials and new-key "
               "approvals are unavailable",
               err.text);
        return;
    }
    a->have_keys = true;
    if (created) {
        tg_log(TG_LOG_NOTICE, 0,
               "created the secret key file %s (mode 0600, key id %s); "
               "back it up: stored credentials cannot be read without it",
               spec, a->keyring.keys[0].id);
    }
}


/* See api.h. */
int
tg_api_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm,
             int listen_fd, const tg_api_opts_t *opts)
{
    tg_api_t *a = &tg_api;

    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->conf = conf;
    a->shm = shm;
    a->listen_fd = listen_fd;
    a->opts = *opts;
    if (a->opts.session_ttl_s == 0) {
        a->opts.session_ttl_s = 12 * 3600;
    }
    if (gethostname(a->host, sizeof(a->host) - 1) != 0) {
        snprintf(a->host, sizeof(a->host), "unknown");
    }
    tg_api_keys_load(a);
    if (tg_webhook_init(loop) != TG_OK) {
        tg_log(TG_LOG_WARN, 0, "code login and endpoint tests are off");
    }
    if (listen_fd != -1 && tg_ev_add(loop, listen_fd, EPOLLIN,
                                     tg_api_accept_handler, a) != TG_OK) {
        return TG_ERROR;
    }
    a->tick.handler = tg_api_tick_handler;
    a->tick.data = a;
    if (tg_api_pg() != NULL) {
        if (tg_api_bootstrap_prepare(a) != TG_OK) {
            tg_log(TG_LOG_ERR, 0,
                   "no bootstrap administrator: hashing its "
                   "password failed");
        }
        tg_ev_timer_add(loop, &a->tick, 0);
    }
    return TG_OK;
}


/* See api.h. */
void
tg_api_stop(void)
{
    tg_api_t *a = &tg_api;

    if (a->loop == NULL) {
        return;
    }
    while (a->conns != NULL) {
        tg_api_conn_close(a->conns);
    }
    if (tg_api_pg() != NULL) {
        tg_pg_forget(tg_api_pg(), a);
    }
    tg_ev_timer_del(a->loop, &a->tick);
    tg_ev_timer_del(a->loop, &a->accept_timer);
    if (a->listen_fd != -1) {
        tg_ev_del(a->loop, a->listen_fd);
    }
    tg_webhook_fini();
    tg_crypto_keyring_wipe(&a->keyring);
    OPENSSL_cleanse(a->bootstrap_pw, sizeof(a->bootstrap_pw));
    a->loop = NULL;
}
