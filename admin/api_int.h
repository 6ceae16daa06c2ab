/*
 * admin/api_int.h
 *      Admin API internals shared by the server (api.c), the auth routes
 *      (api_auth.c) and the resource routes (api_routes.c).
 *
 * NOTES
 *      Admin only.  One tg_api_req_t per connection: admin answers one
 *      request per connection and closes it; a large answer may be
 *      streamed in pieces (tg_api_stream_*).  A request that waits for the
 *      database or an outbound request keeps its connection; when the
 *      client goes away first, its pending callbacks are forgotten
 *      (tg_pg_forget, tg_webhook_forget) before it is freed.
 */
#ifndef TG_ADMIN_API_INT_H
#define TG_ADMIN_API_INT_H

#include "admin/api.h"
#include "admin/api_spec.h"
#include "admin/crypto.h"
#include "admin/pg.h"
#include "core/buf.h"
#include "core/http.h"

#include <jansson.h>

#define TG_API_HEAD_MAX   16384     /* request head */
#define TG_API_BODY_MAX   (1 << 20) /* request body */
#define TG_API_CONNS_MAX  256       /* connections at once */
#define TG_API_TIMEOUT_MS 30000     /* whole exchange of one connection */

/* The one call of a route: a constant statement, never built from input. */
#define TG_API_SQL(name) "SELECT tg_api." name "($1::jsonb, $2::jsonb)"

/* Route flags. */
#define TG_API_R_PUBLIC  0x01 /* no authentication */
#define TG_API_R_PARTIAL 0x02 /* PATCH: every field optional */
#define TG_API_R_ADMIN   0x04 /* checked in C: administrators only */

typedef struct tg_api_s tg_api_t;
typedef struct tg_api_req_s tg_api_req_t;

/* The answer of one tg_api function: <result> (borrowed; NULL when the
 * call failed, then <e> says why). */
typedef void (*tg_api_call_cb)(tg_api_req_t *r, json_t *result,
                               tg_api_error_t *e);

typedef struct {
    int method;                 /* TG_HTTP_* */
    const char *pattern;        /* "/admin/api/keys/{id}/rotate" */
    const char *sql;            /* the one call, or NULL with <run> */
    const tg_api_field_t *body; /* accepted body; NULL: none */
    const tg_api_field_t *query;
    unsigned flags; /* TG_API_R_* */
    /* Before the call: replace secrets in r->args (TG_OK or TG_ERROR
     * with <e>). */
    int (*prep)(tg_api_req_t *r, tg_api_error_t *e);
    /* After the call: adjust the result before it is sent. */
    int (*post)(tg_api_req_t *r, json_t *result, tg_api_error_t *e);
    /* A route done in C instead of the one call. */
    void (*run)(tg_api_req_t *r);
    int status; /* on success: 200 or 201 */
} tg_api_route_t;

struct tg_api_s {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    int listen_fd;
    tg_api_opts_t opts;
    tg_crypto_keyring_t keyring;
    bool have_keys;
    char host[256];
    uint32_t nconns;
    tg_ev_timer_t tick; /* bootstrap check */
    int bootstrap;      /* 0 to do, 1 running, 2 done, 3 failed: wait */
    bool bootstrap_logged;
    char bootstrap_hash[TG_CRYPTO_HASH_MAX];
    char bootstrap_pw[TG_CRYPTO_TOKEN_MAX];
    tg_api_req_t *conns;        /* list of open connections */
    tg_ev_timer_t accept_timer; /* re-enables accepting after EMFILE */
    uint64_t accept_fails;      /* failed accepts since the last warning */
    uint64_t accept_logged;     /* loop ms of the last warning */
};

struct tg_api_req_s {
    tg_api_t *api;
    tg_api_req_t *next, *prev;
    int fd;
    int state; /* reading head, body, working, writing */
    tg_buf_t in;
    tg_buf_t out;
    tg_ev_timer_t timer;
    tg_http_chunked_t chunked;
    bool is_chunked;
    int64_t content_length;
    size_t head_len;
    size_t body_len;

    int method;
    char path[1024];
    size_t path_len;
    char *query; /* copied, NUL-terminated; NULL when none */
    size_t query_len;
    char token[160]; /* bearer token; wiped when the request ends */
    size_t token_len;
    char addr[64];

    const tg_api_route_t *route;
    int64_t id;
    json_t *body;       /* parsed body, NULL when none */
    json_t *args;       /* $2 of the call */
    json_t *ctx;        /* $1 of the call */
    json_t *actor;      /* session_lookup's answer; NULL when public */
    json_t *state_json; /* a route's own state between its steps */
    tg_api_call_cb call_cb;
    bool pg_pending;
    bool hook_pending;
    bool streaming; /* a chunked answer's head is queued or sent */
    void (*more)(tg_api_req_t *r);    /* asks for the next piece; NULL: none */
    char secret[TG_CRYPTO_TOKEN_MAX]; /* a key or token to show once */
    char code[8];                     /* a login code in flight */
};

extern const tg_api_route_t tg_api_routes[];
extern const size_t tg_api_nroutes;

/* Answer with <body> (reference stolen) and <status>. */
void tg_api_respond(tg_api_req_t *r, int status, json_t *body);

/* Answer <status> with <len> bytes of <body> of content type <type>. */
void tg_api_send_type(tg_api_req_t *r, int status, const char *type,
                      const char *body, size_t len);

/*
 * Streamed answers (chunked transfer coding), for bodies too large to
 * hold: tg_api_stream_start queues the head (<extra>: header lines ending
 * in CRLF, or NULL) and remembers <more>; the route appends pieces with
 * tg_api_stream_write and hands them to the socket with
 * tg_api_stream_flush.  When the output has drained completely, <more>
 * is called to produce the next piece (from a callback, later, if it must
 * wait), so a slow client holds at most one piece in memory.
 * tg_api_stream_end queues the last chunk and closes once it is sent;
 * tg_api_stream_abort (and any error answer once streaming) closes
 * without it, so the client sees a cut transfer.  tg_api_stream_start
 * and tg_api_stream_write return TG_OK or TG_ERROR (out of memory).
 */
typedef void (*tg_api_more_pt)(tg_api_req_t *r);
int tg_api_stream_start(tg_api_req_t *r, int status, const char *type,
                        const char *extra, tg_api_more_pt more);
int tg_api_stream_write(tg_api_req_t *r, const char *p, size_t n);
void tg_api_stream_flush(tg_api_req_t *r);
void tg_api_stream_end(tg_api_req_t *r);
void tg_api_stream_abort(tg_api_req_t *r);

/* Answer with error <e>. */
void tg_api_respond_error(tg_api_req_t *r, const tg_api_error_t *e);

/* Answer with an error built from <status>, <field> and the message. */
void tg_api_fail(tg_api_req_t *r, int status, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Call <sql> ("SELECT tg_api.<name>($1::jsonb, $2::jsonb)", a constant)
 * with r->ctx and <args> (borrowed); <cb> gets the result.  When the
 * database is not there the request is answered 503 here and TG_ERROR
 * returned; otherwise TG_OK.
 */
int tg_api_call(tg_api_req_t *r, const char *sql, json_t *args,
                tg_api_call_cb cb);

/* The default end of a route: run route->post, answer the result. */
void tg_api_call_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e);

/* True when the actor is an administrator. */
bool tg_api_is_admin(const tg_api_req_t *r);

/* The database connection (the store's), NULL in config-only mode. */
tg_pg_t *tg_api_pg(void);

/* True when the database can take tg_api calls. */
bool tg_api_db_ready(const tg_api_t *a);

/* The database state word for /healthz. */
const char *tg_api_db_state(const tg_api_t *a);

/* Auth routes (api_auth.c). */
void tg_api_auth_login(tg_api_req_t *r);
void tg_api_auth_code(tg_api_req_t *r);
void tg_api_auth_code_verify(tg_api_req_t *r);
int tg_api_auth_token_prep(tg_api_req_t *r, tg_api_error_t *e);
int tg_api_auth_token_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e);
int tg_api_auth_logout_prep(tg_api_req_t *r, tg_api_error_t *e);

#define TG_API_CRED_MAX 1024 /* bytes of an endpoint credential */

/* POST /admin/api/endpoints/{id}/test (api_endpoints.c). */
void tg_api_endpoint_test(tg_api_req_t *r);

/* PATCH /admin/api/endpoints/{id}: seals a new credential under the
 * endpoint's name, then updates (api_endpoints.c). */
void tg_api_endpoint_update(tg_api_req_t *r);

/* POST /admin/api/endpoints/{id}/enable (api_endpoints.c): sets the
 * status, and re-enables a configured endpoint in shared memory; an
 * endpoint from the config file is only re-enabled there. */
void tg_api_endpoint_enable(tg_api_req_t *r);

/* Endpoint answers gain their live state, lose any secret (the route
 * post step of endpoint routes). */
int tg_api_endpoint_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e);

/* Seal credential <cred> (<len> bytes) of endpoint <name> into r->args
 * (credential_ciphertext, credential_key_id), dropping "credential".
 * TG_OK or TG_ERROR with <e>. */
int tg_api_endpoint_seal(tg_api_req_t *r, const char *name, const char *cred,
                         size_t len, tg_api_error_t *e);

/* GET /admin/api/keys/export (api_export.c): the keys the caller may
 * see, streamed as CSV or JSON. */
void tg_api_keys_export(tg_api_req_t *r);

/* Make the bootstrap administrator's password hash (api_auth.c). TG_OK or
 * TG_ERROR. */
int tg_api_bootstrap_prepare(tg_api_t *a);

/* Start the bootstrap administrator check (api_auth.c). */
void tg_api_bootstrap_check(tg_api_t *a);

#endif /* TG_ADMIN_API_INT_H */
