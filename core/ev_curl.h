/*
 * core/ev_curl.h
 *      libcurl's multi interface on a tg_ev loop: the glue, written once.
 *
 * NOTES
 *      curl's sockets are registered on the loop through
 *      CURLMOPT_SOCKETFUNCTION and its timer through
 *      CURLMOPT_TIMERFUNCTION, so one thread drives curl transfers and
 *      everything else on the loop.  Finished transfers are handed to the
 *      owner's <done> callback, always outside curl's own callbacks, so
 *      the owner may remove the handle there.  A socket that curl parks in
 *      its connection cache stays registered (it is usually reused at
 *      once) and is dropped if it fires while curl does not watch it; the
 *      close-socket callback unregisters every socket curl really closes,
 *      so a new fd with the same number starts clean: every easy handle
 *      must be added through tg_ev_curl_add, which installs it.
 *      Used by the worker's proxy and admin's health checker; single
 *      threaded; never blocks (curl resolves names on its own thread).
 */
#ifndef TG_CORE_EV_CURL_H
#define TG_CORE_EV_CURL_H

#include "core/ev.h"

#include <curl/curl.h>

typedef struct tg_ev_curl_s tg_ev_curl_t;

/* Transfer <easy> finished with <rc>; <data> is the owner's. */
typedef void (*tg_ev_curl_done_pt)(void *data, CURL *easy, CURLcode rc);

/*
 * A multi handle on <loop> whose finished transfers go to <done>(<data>,
 * ...).  Returns NULL (logged) when out of memory or curl fails.  The
 * caller owns it (tg_ev_curl_destroy).  curl_global_init is the caller's.
 */
tg_ev_curl_t *tg_ev_curl_create(tg_ev_loop_t *loop, tg_ev_curl_done_pt done,
                                void *data);

/* Free <m> (transfers still added are the caller's to remove first). */
void tg_ev_curl_destroy(tg_ev_curl_t *m);

/* The multi handle, for curl_multi_setopt. */
CURLM *tg_ev_curl_multi(tg_ev_curl_t *m);

/* Add <easy>.  TG_OK or TG_ERROR (logged). */
int tg_ev_curl_add(tg_ev_curl_t *m, CURL *easy);

/* Remove <easy> (added before); never from inside a curl callback. */
void tg_ev_curl_remove(tg_ev_curl_t *m, CURL *easy);

/* Hand finished transfers to <done>; call after curl_easy_pause and
 * anything else that may finish transfers outside the loop's events. */
void tg_ev_curl_check(tg_ev_curl_t *m);

/* Transfers running. */
int tg_ev_curl_running(const tg_ev_curl_t *m);

#endif /* TG_CORE_EV_CURL_H */
