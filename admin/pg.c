/*
 * admin/pg.c
 *      One asynchronous PostgreSQL connection on admin's event loop.
 *
 * NOTES
 *      Admin only; the only file that includes libpq-fe.h.  Nothing here
 *      blocks on the server: the connection is made with PQconnectStart
 *      and PQconnectPoll, statements are sent with PQsendQueryParams or
 *      PQsendQuery on a non-blocking connection and flushed with PQflush,
 *      and results are read with PQconsumeInput, PQisBusy and PQgetResult,
 *      all driven by the connection's socket in admin's epoll set.  The
 *      socket may change between PQconnectPoll calls, so it is registered
 *      again after each one.  XXX: a host name in the conninfo is resolved
 *      by libpq with getaddrinfo, which blocks; give hostaddr (or a socket
 *      directory) where that matters.
 *
 *      Statements wait in a FIFO queue and run one at a time.  A connection
 *      goes DOWN -> CONNECTING -> READY.  After the protocol handshake it
 *      runs a set-up script (statement_timeout, application_name and the
 *      LISTENs) before it reports READY, so every READY connection has its
 *      timeouts and listens in place.  A connection lost (or a connect that
 *      fails or takes longer than the connect bound) goes DOWN: the
 *      statement running and those queued complete with a result whose
 *      sqlstate is 08006, and a new attempt is scheduled after a back-off
 *      that starts at 0.5 s and doubles up to 30 s; it starts again at 0.5 s
 *      once a connection reaches READY.
 *
 *      A statement that gets no answer at all (server stopped, network cut)
 *      is not caught by statement_timeout; a client-side timer 5 s past it
 *      drops the connection instead.
 *
 *      Callbacks run from the loop.  They may queue statements and call
 *      tg_pg_forget, but must not call tg_pg_destroy on this connection.
 */
#include "admin/pg.h"
#include "core/core.h"
#include "core/log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_PG_BACKOFF_MIN   500
#define TG_PG_BACKOFF_MAX   30000
#define TG_PG_CONNECT_MS    5000
#define TG_PG_STATEMENT_MS  10000
#define TG_PG_GUARD_MS      5000 /* past statement_timeout: connection dead */
#define TG_PG_LISTEN_MAX    8
#define TG_PG_PARAMS_MAX    64
#define TG_PG_SQLSTATE_LOST "08006"

typedef struct tg_pg_q_s tg_pg_q_t;

struct tg_pg_q_s {
    tg_pg_q_t *next;
    const char *sql;  /* constant; never freed */
    char *owned_sql;  /* internal statements built here; freed */
    int nparams;      /* -1: a script sent with PQsendQuery */
    char **params;    /* copies; NULL entries are SQL NULL */
    tg_pg_done_cb cb; /* NULL once forgotten */
    void *ctx;        /* the owner */
    bool setup;       /* the connection's own set-up script */
};

struct tg_pg_res_s {
    PGresult *r;         /* NULL for a synthetic result */
    const char *state;   /* synthetic: sqlstate */
    const char *message; /* synthetic: primary message */
};

struct tg_pg_s {
    tg_ev_loop_t *loop;
    char *conninfo;
    PGconn *conn;
    int fd; /* registered in the loop, or -1 */
    tg_pg_state_t state;
    bool started;
    bool polling; /* PQconnectPoll phase */
    bool sent;    /* the head of the queue was sent */
    bool flush;   /* output is pending: wait for EPOLLOUT */
    bool quiet;   /* the failure of this series was logged already */
    tg_pg_q_t *head, *tail;
    PGresult *keep; /* result kept for the statement running */
    tg_ev_timer_t retry;
    tg_ev_timer_t guard; /* connect bound, then statement guard */
    uint32_t backoff_ms;
    uint32_t connect_ms;
    uint32_t statement_ms;
    char listen[TG_PG_LISTEN_MAX][64];
    int nlisten;
    tg_pg_state_cb state_cb;
    void *state_ctx;
    tg_pg_notify_cb notify_cb;
    void *notify_ctx;
};

static void tg_pg_io_handler(tg_ev_loop_t *loop, int fd, void *data,
                             uint32_t events);
static void tg_pg_lost(tg_pg_t *pg, const char *why);
static void tg_pg_next(tg_pg_t *pg);
static int tg_pg_add(tg_pg_t *pg, const char *sql, char *owned, int nparams,
                     const char *const *params, tg_pg_done_cb cb, void *ctx);


static void
tg_pg_set_state(tg_pg_t *pg, tg_pg_state_t state)
{
    if (pg->state == state) {
        return;
    }
    pg->state = state;
    if (pg->state_cb != NULL) {
        pg->state_cb(pg->state_ctx, state);
    }
}


static void
tg_pg_q_free(tg_pg_q_t *q)
{
    int i;

    for (i = 0; i < q->nparams; i++) {
        if (q->params[i] != NULL) {
            explicit_bzero(q->params[i], strlen(q->params[i]));
        }
        free(q->params[i]);
    }
    free(q->params);
    free(q->owned_sql);
    free(q);
}


/* libpq's notices (a DROP ... IF EXISTS that skipped) go to the debug log
 * rather than to stderr. */
static void
tg_pg_notice_cb(void *arg, const char *message)
{
    size_t len = strcspn(message, "\n");

    (void)arg;
    tg_log(TG_LOG_DEBUG, 0, "database: %.*s", (int)len, message);
}


/* Register the connection's current socket for <mask>. */
static int
tg_pg_watch(tg_pg_t *pg, uint32_t mask)
{
    int fd = PQsocket(pg->conn);

    if (fd != pg->fd && pg->fd != -1) {
        tg_ev_del(pg->loop, pg->fd);
        pg->fd = -1;
    }
    if (fd < 0) {
        return TG_ERROR;
    }
    if (tg_ev_add(pg->loop, fd, mask, tg_pg_io_handler, pg) != TG_OK) {
        return TG_ERROR;
    }
    pg->fd = fd;
    return TG_OK;
}


static void tg_pg_retry_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t);


/* Close the connection (if any) and schedule the next attempt. */
static void
tg_pg_close(tg_pg_t *pg)
{
    tg_ev_timer_del(pg->loop, &pg->guard);
    if (pg->fd != -1) {
        tg_ev_del(pg->loop, pg->fd);
        pg->fd = -1;
    }
    PQclear(pg->keep);
    pg->keep = NULL;
    PQfinish(pg->conn);
    pg->conn = NULL;
    pg->polling = false;
    pg->sent = false;
    pg->flush = false;
}


/* Complete <q> with <res> (its callback unless forgotten) and free it. */
static void
tg_pg_complete(tg_pg_q_t *q, const tg_pg_res_t *res)
{
    if (q->cb != NULL) {
        q->cb(q->ctx, res);
    }
    tg_pg_q_free(q);
}


/*
 * The connection is gone (or never came up): fail every statement with
 * sqlstate 08006, go DOWN and schedule a retry.  <why> is libpq's message
 * or ours; it is logged once per series of failures.
 */
static void
tg_pg_lost(tg_pg_t *pg, const char *why)
{
    tg_pg_res_t res = {NULL, TG_PG_SQLSTATE_LOST,
                       "connection to the database lost"};
    tg_pg_q_t *q, *list;
    size_t len = strcspn(why, "\n"); /* the rest is libpq's advice */

    tg_log(pg->quiet ? TG_LOG_DEBUG : TG_LOG_ERR, 0,
           "database %s: %.*s; retrying in %u ms",
           pg->state == TG_PG_READY ? "connection lost" : "connect failed",
           (int)len, why, pg->backoff_ms);
    pg->quiet = true;
    tg_pg_close(pg);
    list = pg->head;
    pg->head = pg->tail = NULL;
    tg_ev_timer_add(pg->loop, &pg->retry, pg->backoff_ms);
    pg->backoff_ms = TG_MIN(pg->backoff_ms * 2, TG_PG_BACKOFF_MAX);
    tg_pg_set_state(pg, TG_PG_DOWN);
    while (list != NULL) {
        q = list;
        list = q->next;
        tg_pg_complete(q, &res);
    }
}


static void
tg_pg_guard_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_pg_t *pg = t->data;

    (void)loop;
    tg_pg_lost(pg, pg->polling ? "connection attempt timed out"
                               : "no answer from the server in time");
}


/* Queue <q> at the head (set-up) or the tail. */
static void
tg_pg_enqueue(tg_pg_t *pg, tg_pg_q_t *q, bool first)
{
    if (first) {
        q->next = pg->head;
        pg->head = q;
        if (pg->tail == NULL) {
            pg->tail = q;
        }
        return;
    }
    q->next = NULL;
    if (pg->tail != NULL) {
        pg->tail->next = q;
    } else {
        pg->head = q;
    }
    pg->tail = q;
}


/* The set-up script of a new connection. */
static int
tg_pg_queue_setup(tg_pg_t *pg)
{
    char *sql, *p;
    size_t size = 256 + (size_t)pg->nlisten * 80;
    tg_pg_q_t *q;
    int i, n;

    q = calloc(1, sizeof(*q));
    sql = malloc(size);
    if (q == NULL || sql == NULL) {
        free(q);
        free(sql);
        return TG_ERROR;
    }
    p = sql;
    n = snprintf(p, size,
                 "SET statement_timeout = %u; "
                 "SET client_min_messages = warning; "
                 "SET application_name = 'tollgate-admin'; ",
                 pg->statement_ms);
    p += n;
    size -= (size_t)n;
    /* Channel names were checked to be plain identifiers. */
    for (i = 0; i < pg->nlisten; i++) {
        n = snprintf(p, size, "LISTEN %s; ", pg->listen[i]);
        p += n;
        size -= (size_t)n;
    }
    q->owned_sql = sql;
    q->sql = sql;
    q->nparams = -1;
    q->setup = true;
    tg_pg_enqueue(pg, q, true);
    return TG_OK;
}


/* PQconnectPoll once and act on what it says. */
static void
tg_pg_connect_poll(tg_pg_t *pg)
{
    PostgresPollingStatusType st = PQconnectPoll(pg->conn);

    switch (st) {
    case PGRES_POLLING_READING:
        if (tg_pg_watch(pg, EPOLLIN) != TG_OK) {
            tg_pg_lost(pg, "cannot watch the connection's socket");
        }
        return;
    case PGRES_POLLING_WRITING:
        if (tg_pg_watch(pg, EPOLLOUT) != TG_OK) {
            tg_pg_lost(pg, "cannot watch the connection's socket");
        }
        return;
    case PGRES_POLLING_OK:
        break;
    default:
        tg_pg_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->polling = false;
    tg_ev_timer_del(pg->loop, &pg->guard);
    if (PQsetnonblocking(pg->conn, 1) != 0 || tg_pg_watch(pg, EPOLLIN) != 0 ||
        tg_pg_queue_setup(pg) != TG_OK) {
        tg_pg_lost(pg, "cannot set the connection up");
        return;
    }
    PQsetNoticeProcessor(pg->conn, tg_pg_notice_cb, NULL);
    tg_pg_next(pg);
}


/* Begin a connection attempt. */
static void
tg_pg_connect(tg_pg_t *pg)
{
    pg->conn = PQconnectStart(pg->conninfo);
    if (pg->conn == NULL) {
        tg_log(TG_LOG_ERR, 0, "PQconnectStart() failed: out of memory");
        tg_pg_lost(pg, "out of memory");
        return;
    }
    tg_pg_set_state(pg, TG_PG_CONNECTING);
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        /* A malformed conninfo: the message names the bad part, never a
         * password. */
        tg_pg_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->polling = true;
    tg_ev_timer_add(pg->loop, &pg->guard, pg->connect_ms);
    /* libpq's first PQconnectPoll acts as if the socket were writable. */
    tg_pg_connect_poll(pg);
}


static void
tg_pg_retry_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    tg_pg_connect(t->data);
}


/* Flush pending output; TG_OK, or TG_ERROR after the connection was
 * dropped. */
static int
tg_pg_flush(tg_pg_t *pg)
{
    int rc = PQflush(pg->conn);

    if (rc == -1) {
        tg_pg_lost(pg, PQerrorMessage(pg->conn));
        return TG_ERROR;
    }
    pg->flush = (rc == 1);
    if (tg_ev_mod(pg->loop, pg->fd, EPOLLIN | (pg->flush ? EPOLLOUT : 0)) !=
        TG_OK) {
        tg_pg_lost(pg, "cannot watch the connection's socket");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Send the head of the queue if nothing runs. */
static void
tg_pg_next(tg_pg_t *pg)
{
    tg_pg_q_t *q = pg->head;
    int ok;

    if (q == NULL || pg->sent || pg->conn == NULL || pg->polling) {
        return;
    }
    if (q->nparams < 0) {
        ok = PQsendQuery(pg->conn, q->sql);
    } else {
        ok = PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL,
                               (const char *const *)q->params, NULL, NULL, 0);
    }
    if (!ok) {
        tg_pg_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->sent = true;
    tg_ev_timer_add(pg->loop, &pg->guard, pg->statement_ms + TG_PG_GUARD_MS);
    (void)tg_pg_flush(pg);
}


/* The statement at the head finished: call back and send the next one. */
static void
tg_pg_finish(tg_pg_t *pg)
{
    tg_pg_q_t *q = pg->head;
    tg_pg_res_t res = {pg->keep, NULL, NULL};
    bool setup = q->setup, ok;

    pg->head = q->next;
    if (pg->head == NULL) {
        pg->tail = NULL;
    }
    pg->sent = false;
    tg_ev_timer_del(pg->loop, &pg->guard);
    pg->keep = NULL;
    if (res.r == NULL) {
        res.state = "XX000";
        res.message = "the statement returned no result";
    }
    ok = tg_pg_res_ok(&res);
    if (setup) {
        if (!ok) {
            char why[256];

            snprintf(why, sizeof(why), "set-up failed: %s",
                     tg_pg_res_message(&res));
            PQclear(res.r);
            tg_pg_q_free(q);
            tg_pg_lost(pg, why);
            return;
        }
        PQclear(res.r);
        tg_pg_q_free(q);
        if (pg->quiet || pg->backoff_ms > TG_PG_BACKOFF_MIN) {
            tg_log(TG_LOG_NOTICE, 0, "database connection ready");
        }
        pg->quiet = false;
        pg->backoff_ms = TG_PG_BACKOFF_MIN;
        tg_pg_set_state(pg, TG_PG_READY);
    } else {
        tg_pg_complete(q, &res);
        PQclear(res.r);
    }
    if (pg->conn != NULL) {
        tg_pg_next(pg);
    }
}


/* Read every result that is complete; keep the first error, or else the
 * last result, for the statement running. */
static void
tg_pg_results(tg_pg_t *pg)
{
    PGresult *r;

    while (pg->conn != NULL && pg->sent && !PQisBusy(pg->conn)) {
        r = PQgetResult(pg->conn);
        if (r == NULL) {
            tg_pg_finish(pg);
            continue;
        }
        if (pg->keep != NULL && PQresultStatus(pg->keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(pg->keep);
        pg->keep = r;
    }
}


static void
tg_pg_notifies(tg_pg_t *pg)
{
    PGnotify *n;

    while (pg->conn != NULL && (n = PQnotifies(pg->conn)) != NULL) {
        if (pg->notify_cb != NULL) {
            pg->notify_cb(pg->notify_ctx, n->relname, n->extra);
        }
        PQfreemem(n);
    }
}


static void
tg_pg_io_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_pg_t *pg = data;

    (void)loop;
    (void)fd;
    if (pg->polling) {
        tg_pg_connect_poll(pg);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (!PQconsumeInput(pg->conn)) {
            tg_pg_lost(pg, PQerrorMessage(pg->conn));
            return;
        }
    }
    if ((pg->flush || (events & EPOLLOUT)) && tg_pg_flush(pg) != TG_OK) {
        return;
    }
    tg_pg_results(pg);
    tg_pg_notifies(pg);
    if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_BAD) {
        tg_pg_lost(pg, PQerrorMessage(pg->conn));
    }
}


/* See pg.h. */
tg_pg_t *
tg_pg_create(tg_ev_loop_t *loop, const char *conninfo)
{
    tg_pg_t *pg = calloc(1, sizeof(*pg));

    if (pg == NULL) {
        return NULL;
    }
    pg->conninfo = strdup(conninfo);
    if (pg->conninfo == NULL) {
        free(pg);
        return NULL;
    }
    pg->loop = loop;
    pg->fd = -1;
    pg->state = TG_PG_DOWN;
    pg->backoff_ms = TG_PG_BACKOFF_MIN;
    pg->connect_ms = TG_PG_CONNECT_MS;
    pg->statement_ms = TG_PG_STATEMENT_MS;
    pg->retry.handler = tg_pg_retry_handler;
    pg->retry.data = pg;
    pg->guard.handler = tg_pg_guard_handler;
    pg->guard.data = pg;
    return pg;
}


/* See pg.h.  Queued statements are dropped without their callbacks. */
void
tg_pg_destroy(tg_pg_t *pg)
{
    tg_pg_q_t *q;

    if (pg == NULL) {
        return;
    }
    tg_ev_timer_del(pg->loop, &pg->retry);
    tg_pg_close(pg);
    while (pg->head != NULL) {
        q = pg->head;
        pg->head = q->next;
        tg_pg_q_free(q);
    }
    explicit_bzero(pg->conninfo, strlen(pg->conninfo));
    free(pg->conninfo);
    free(pg);
}


/* See pg.h. */
int
tg_pg_start(tg_pg_t *pg)
{
    if (pg->started) {
        return TG_OK;
    }
    pg->started = true;
    tg_pg_connect(pg);
    return TG_OK;
}


/* See pg.h. */
tg_pg_state_t
tg_pg_state(const tg_pg_t *pg)
{
    return pg->state;
}


/* See pg.h. */
void
tg_pg_on_state(tg_pg_t *pg, tg_pg_state_cb cb, void *ctx)
{
    pg->state_cb = cb;
    pg->state_ctx = ctx;
}


/* See pg.h. */
void
tg_pg_on_notify(tg_pg_t *pg, tg_pg_notify_cb cb, void *ctx)
{
    pg->notify_cb = cb;
    pg->notify_ctx = ctx;
}


/* See pg.h. */
void
tg_pg_set_timeouts(tg_pg_t *pg, uint32_t connect_ms, uint32_t statement_ms)
{
    if (connect_ms > 0) {
        pg->connect_ms = connect_ms;
    }
    if (statement_ms > 0) {
        pg->statement_ms = statement_ms;
    }
}


static bool
tg_pg_is_ident(const char *s)
{
    size_t i;

    if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if (i >= 63 || !((s[i] >= 'a' && s[i] <= 'z') ||
                         (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return false;
        }
    }
    return true;
}


/* See pg.h. */
int
tg_pg_listen(tg_pg_t *pg, const char *channel)
{
    static const char prefix[] = "LISTEN ";
    char *sql;
    size_t len;
    int i;

    if (!tg_pg_is_ident(channel)) {
        tg_log(TG_LOG_ERR, 0, "LISTEN: bad channel name");
        return TG_ERROR;
    }
    for (i = 0; i < pg->nlisten; i++) {
        if (strcmp(pg->listen[i], channel) == 0) {
            return TG_OK;
        }
    }
    if (pg->nlisten == TG_PG_LISTEN_MAX) {
        tg_log(TG_LOG_ERR, 0, "LISTEN: more than %d channels",
               TG_PG_LISTEN_MAX);
        return TG_ERROR;
    }
    len = strlen(channel);
    memcpy(pg->listen[pg->nlisten++], channel, len + 1);
    if (pg->state != TG_PG_READY) {
        return TG_OK;
    }
    sql = malloc(sizeof(prefix) + len);
    if (sql == NULL) {
        return TG_ERROR;
    }
    memcpy(sql, prefix, sizeof(prefix) - 1);
    memcpy(sql + sizeof(prefix) - 1, channel, len + 1);
    return tg_pg_add(pg, sql, sql, -1, NULL, NULL, NULL);
}


/* Queue <sql> (taking <owned>, freed with the entry, when not NULL). */
static int
tg_pg_add(tg_pg_t *pg, const char *sql, char *owned, int nparams,
          const char *const *params, tg_pg_done_cb cb, void *ctx)
{
    tg_pg_q_t *q;
    int i;

    if (pg->state != TG_PG_READY || nparams > TG_PG_PARAMS_MAX) {
        free(owned);
        return TG_ERROR;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        free(owned);
        return TG_ERROR;
    }
    q->sql = sql;
    q->owned_sql = owned;
    q->cb = cb;
    q->ctx = ctx;
    q->nparams = nparams;
    if (nparams > 0) {
        q->params = calloc((size_t)nparams, sizeof(char *));
        if (q->params == NULL) {
            free(q);
            return TG_ERROR;
        }
        for (i = 0; i < nparams; i++) {
            if (params[i] == NULL) {
                continue;
            }
            q->params[i] = strdup(params[i]);
            if (q->params[i] == NULL) {
                tg_pg_q_free(q);
                return TG_ERROR;
            }
        }
    }
    tg_pg_enqueue(pg, q, false);
    tg_pg_next(pg);
    return TG_OK;
}


/* See pg.h. */
int
tg_pg_query(tg_pg_t *pg, const char *sql, int nparams,
            const char *const *params, tg_pg_done_cb cb, void *ctx)
{
    return tg_pg_add(pg, sql, NULL, nparams < 0 ? 0 : nparams, params, cb, ctx);
}


/* See pg.h. */
int
tg_pg_script(tg_pg_t *pg, const char *sql, tg_pg_done_cb cb, void *ctx)
{
    return tg_pg_add(pg, sql, NULL, -1, NULL, cb, ctx);
}


/* See pg.h. */
void
tg_pg_forget(tg_pg_t *pg, void *ctx)
{
    tg_pg_q_t *q;

    for (q = pg->head; q != NULL; q = q->next) {
        if (q->ctx == ctx) {
            q->cb = NULL;
        }
    }
}


/* See pg.h. */
bool
tg_pg_res_ok(const tg_pg_res_t *res)
{
    ExecStatusType st;

    if (res->r == NULL) {
        return false;
    }
    st = PQresultStatus(res->r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
           st == PGRES_EMPTY_QUERY;
}


/* See pg.h. */
int
tg_pg_res_rows(const tg_pg_res_t *res)
{
    return res->r != NULL ? PQntuples(res->r) : 0;
}


/* See pg.h. */
int
tg_pg_res_cols(const tg_pg_res_t *res)
{
    return res->r != NULL ? PQnfields(res->r) : 0;
}


/* See pg.h.  Out-of-range cells read as NULL. */
const char *
tg_pg_res_value(const tg_pg_res_t *res, int row, int col)
{
    if (res->r == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) ||
        col >= PQnfields(res->r)) {
        return "";
    }
    return PQgetvalue(res->r, row, col);
}


/* See pg.h. */
bool
tg_pg_res_null(const tg_pg_res_t *res, int row, int col)
{
    if (res->r == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) ||
        col >= PQnfields(res->r)) {
        return true;
    }
    return PQgetisnull(res->r, row, col) != 0;
}


static const char *
tg_pg_res_field(const tg_pg_res_t *res, int code)
{
    const char *v;

    if (res->r == NULL) {
        return "";
    }
    v = PQresultErrorField(res->r, code);
    return v != NULL ? v : "";
}


/* See pg.h. */
const char *
tg_pg_res_sqlstate(const tg_pg_res_t *res)
{
    if (res->r == NULL) {
        return res->state;
    }
    if (tg_pg_res_ok(res)) {
        return "";
    }
    /* An error libpq made up itself (no server message) has no code. */
    return tg_pg_res_field(res, PG_DIAG_SQLSTATE)[0] != '\0'
               ? tg_pg_res_field(res, PG_DIAG_SQLSTATE)
               : "XX000";
}


/* See pg.h. */
const char *
tg_pg_res_message(const tg_pg_res_t *res)
{
    if (res->r == NULL) {
        return res->message;
    }
    if (tg_pg_res_ok(res)) {
        return "";
    }
    if (tg_pg_res_field(res, PG_DIAG_MESSAGE_PRIMARY)[0] != '\0') {
        return tg_pg_res_field(res, PG_DIAG_MESSAGE_PRIMARY);
    }
    return PQresultErrorMessage(res->r);
}


/* See pg.h. */
const char *
tg_pg_res_detail(const tg_pg_res_t *res)
{
    return tg_pg_res_field(res, PG_DIAG_MESSAGE_DETAIL);
}


/* See pg.h. */
const char *
tg_pg_res_hint(const tg_pg_res_t *res)
{
    return tg_pg_res_field(res, PG_DIAG_MESSAGE_HINT);
}
