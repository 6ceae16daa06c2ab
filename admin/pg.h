/*
 * admin/pg.h
 *      One asynchronous PostgreSQL connection on admin's event loop.
 *
 * NOTES
 *      Admin only.  admin/pg.c is the only file that includes libpq-fe.h;
 *      everything else sees this interface.  Statements are queued and run
 *      one at a time on the connection, with the socket in admin's epoll
 *      set: no call here ever blocks on the server.  The connection
 *      reconnects by itself with back-off after a loss; statements that
 *      were queued or running when it broke complete with an error result
 *      (sqlstate "08006").
 */
#ifndef TG_ADMIN_PG_H
#define TG_ADMIN_PG_H

#include "core/ev.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_pg_s tg_pg_t;
typedef struct tg_pg_res_s tg_pg_res_t; /* one result; opaque */

typedef enum {
    TG_PG_DOWN = 0,       /* not connected; a retry is scheduled */
    TG_PG_CONNECTING = 1, /* connecting */
    TG_PG_READY = 2       /* connected, statements run */
} tg_pg_state_t;

/* <res> is never NULL and valid only during the call. */
typedef void (*tg_pg_done_cb)(void *ctx, const tg_pg_res_t *res);
typedef void (*tg_pg_notify_cb)(void *ctx, const char *channel,
                                const char *payload);
typedef void (*tg_pg_state_cb)(void *ctx, tg_pg_state_t state);

/* A connection to <conninfo> (copied) on <loop>, not yet started.  NULL
 * when out of memory.  Destroy with tg_pg_destroy. */
tg_pg_t *tg_pg_create(tg_ev_loop_t *loop, const char *conninfo);

/* Close the connection; queued statements are dropped without their
 * callbacks. */
void tg_pg_destroy(tg_pg_t *pg);

/* Begin connecting; from here on the connection keeps itself up.  TG_OK,
 * or TG_ERROR when out of memory. */
int tg_pg_start(tg_pg_t *pg);

tg_pg_state_t tg_pg_state(const tg_pg_t *pg);

/* Called on every change of state (connected, lost). */
void tg_pg_on_state(tg_pg_t *pg, tg_pg_state_cb cb, void *ctx);

/* Called for every notification received on a channel LISTENed to. */
void tg_pg_on_notify(tg_pg_t *pg, tg_pg_notify_cb cb, void *ctx);

/*
 * LISTEN on <channel> (a lower-case identifier: [a-z_][a-z0-9_]*, at most
 * 63 bytes) now if READY and again after every reconnect, before the
 * connection reports READY.  Notifications sent while the connection was
 * down are lost: a READY state callback is the owner's cue to reload.
 * TG_OK, or TG_ERROR for a bad name or too many channels (8).
 */
int tg_pg_listen(tg_pg_t *pg, const char *channel);

/*
 * Change the bounds: <connect_ms> for a connection attempt (default 5 s),
 * <statement_ms> for one statement (default 10 s; the server's
 * statement_timeout, and a client-side guard 5 s later that drops the
 * connection when the server does not answer at all).  0 keeps a value.
 * Takes effect at the next connection.
 */
void tg_pg_set_timeouts(tg_pg_t *pg, uint32_t connect_ms,
                        uint32_t statement_ms);

/*
 * Queue <sql> with <nparams> text parameters $1..$n (<params>[i] NULL is
 * SQL NULL; the strings are copied).  <cb>(<ctx>, res) runs when it is
 * done.  <sql> must be a constant: never built from input.  TG_OK, or
 * TG_ERROR when the connection is not READY or out of memory (the caller
 * answers 503); <cb> is then not called.
 */
int tg_pg_query(tg_pg_t *pg, const char *sql, int nparams,
                const char *const *params, tg_pg_done_cb cb, void *ctx);

/* Queue a multi-statement script without parameters (migrations, the
 * tg_api schema).  Like tg_pg_query otherwise. */
int tg_pg_script(tg_pg_t *pg, const char *sql, tg_pg_done_cb cb, void *ctx);

/* <ctx> is going away: none of its pending callbacks will be called (the
 * statements still run to completion). */
void tg_pg_forget(tg_pg_t *pg, void *ctx);

bool tg_pg_res_ok(const tg_pg_res_t *res); /* command or tuples OK */
int tg_pg_res_rows(const tg_pg_res_t *res);
int tg_pg_res_cols(const tg_pg_res_t *res);
/* Text of a value; "" for SQL NULL (see tg_pg_res_null). */
const char *tg_pg_res_value(const tg_pg_res_t *res, int row, int col);
bool tg_pg_res_null(const tg_pg_res_t *res, int row, int col);
const char *tg_pg_res_sqlstate(const tg_pg_res_t *res); /* "" when ok */
const char *tg_pg_res_message(const tg_pg_res_t *res);  /* primary text */
const char *tg_pg_res_detail(const tg_pg_res_t *res);   /* "" when none */
const char *tg_pg_res_hint(const tg_pg_res_t *res);     /* "" when none */

#endif /* TG_ADMIN_PG_H */
