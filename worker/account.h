/*
 * worker/account.h
 *      End-of-request bookkeeping: one usage record per request.
 *
 * NOTES
 *      Every request whose head was parsed ends here exactly once, however
 *      it ends (answered, refused, upstream failure, client gone): the
 *      concurrency lease is given back, the tokens are charged to the key's
 *      minute window and the user's quota, and one usage record goes to the
 *      shared ring, or to this worker's spool file when the ring is full.
 *      Worker only; the spool write is the one blocking call, taken only
 *      when admin has fallen a whole ring behind.
 */
#ifndef TG_WORKER_ACCOUNT_H
#define TG_WORKER_ACCOUNT_H

#include "worker/conn.h"

/* Finish <c>'s request bookkeeping; a no-op when already done. */
void tg_account_finish(tg_conn_t *c);

#endif /* TG_WORKER_ACCOUNT_H */
