/*
 * core/ev_curl.c
 *      libcurl multi <-> event loop glue.
 *
 * NOTES
 *      See ev_curl.h.  Runs in whichever process owns the loop (workers,
 *      admin); never blocks.
 */
#include "core/ev_curl.h"
#include "core/core.h"
#include "core/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define TG_EV_CURL_FDS 65536 /* fds tracked for parked sockets */

struct tg_ev_curl_s {
    CURLM *multi;
    tg_ev_loop_t *loop;
    tg_ev_curl_done_pt done;
    void *data;
    uint8_t *idle; /* per fd: curl's socket, registered but not watched */
    size_t nidle;
    tg_ev_timer_t timer;
    int running;
};


static void
tg_ev_curl_sock_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_ev_curl_t *m = data;
    int flags = 0;

    if (fd >= 0 && (size_t)fd < m->nidle && m->idle[fd]) {
        /* curl parked this connection; an event on it means the peer
         * closed or sent something unasked.  Stop watching until curl asks
         * again (it will notice the state itself when it reuses it). */
        tg_ev_del(loop, fd);
        m->idle[fd] = 0;
        return;
    }
    if (events & EPOLLIN) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & EPOLLOUT) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        flags |= CURL_CSELECT_ERR;
    }
    curl_multi_socket_action(m->multi, fd, flags, &m->running);
    tg_ev_curl_check(m);
}


static int
tg_ev_curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    tg_ev_curl_t *m = userp;
    uint32_t mask = 0;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* A connection going back to curl's cache is usually reused by
         * the next transfer at once: keep it registered (the handler drops
         * it if it fires while curl does not watch it) and save two
         * epoll_ctl calls per request.  curl tells us when it really
         * closes the socket through tg_ev_curl_close_cb. */
        if (s >= 0 && (size_t)s < m->nidle) {
            m->idle[s] = 1;
        } else {
            tg_ev_del(m->loop, s);
        }
        return 0;
    }
    if (s >= 0 && (size_t)s < m->nidle) {
        m->idle[s] = 0;
    }
    if (what & CURL_POLL_IN) {
        mask |= EPOLLIN;
    }
    if (what & CURL_POLL_OUT) {
        mask |= EPOLLOUT;
    }
    if (tg_ev_mask(m->loop, s) != 0) {
        return tg_ev_mod(m->loop, s, mask) == TG_OK ? 0 : -1;
    }
    return tg_ev_add(m->loop, s, mask, tg_ev_curl_sock_handler, m) == TG_OK
               ? 0
               : -1;
}


static void
tg_ev_curl_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_ev_curl_t *m = t->data;

    (void)loop;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &m->running);
    tg_ev_curl_check(m);
}


static int
tg_ev_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    tg_ev_curl_t *m = userp;

    (void)multi;
    if (timeout_ms < 0) {
        tg_ev_timer_del(m->loop, &m->timer);
    } else {
        tg_ev_timer_add(m->loop, &m->timer, (uint64_t)timeout_ms);
    }
    return 0;
}


/* curl closes one of its sockets: unregister it first, so a new fd with
 * the same number starts clean. */
static int
tg_ev_curl_close_cb(void *clientp, curl_socket_t s)
{
    tg_ev_curl_t *m = clientp;

    tg_ev_del(m->loop, s);
    if (s >= 0 && (size_t)s < m->nidle) {
        m->idle[s] = 0;
    }
    return close(s);
}


/* See ev_curl.h. */
tg_ev_curl_t *
tg_ev_curl_create(tg_ev_loop_t *loop, tg_ev_curl_done_pt done, void *data)
{
    tg_ev_curl_t *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(curl multi) failed");
        return NULL;
    }
    m->loop = loop;
    m->done = done;
    m->data = data;
    m->nidle = TG_EV_CURL_FDS;
    m->idle = calloc(m->nidle, 1);
    m->multi = curl_multi_init();
    if (m->idle == NULL || m->multi == NULL) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_init() or its fd table failed");
        tg_ev_curl_destroy(m);
        return NULL;
    }
    m->timer.handler = tg_ev_curl_timer_handler;
    m->timer.data = m;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, tg_ev_curl_socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, tg_ev_curl_timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}


/* See ev_curl.h. */
void
tg_ev_curl_destroy(tg_ev_curl_t *m)
{
    if (m == NULL) {
        return;
    }
    tg_ev_timer_del(m->loop, &m->timer);
    if (m->multi != NULL) {
        curl_multi_cleanup(m->multi);
    }
    free(m->idle);
    free(m);
}


/* See ev_curl.h. */
CURLM *
tg_ev_curl_multi(tg_ev_curl_t *m)
{
    return m->multi;
}


/* See ev_curl.h. */
int
tg_ev_curl_add(tg_ev_curl_t *m, CURL *easy)
{
    CURLMcode mrc;

    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, tg_ev_curl_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, m);
    mrc = curl_multi_add_handle(m->multi, easy);
    if (mrc != CURLM_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_add_handle() failed (%s)",
               curl_multi_strerror(mrc));
        return TG_ERROR;
    }
    return TG_OK;
}


/* See ev_curl.h. */
void
tg_ev_curl_remove(tg_ev_curl_t *m, CURL *easy)
{
    curl_multi_remove_handle(m->multi, easy);
}


/* See ev_curl.h. */
void
tg_ev_curl_check(tg_ev_curl_t *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            m->done(m->data, msg->easy_handle, msg->data.result);
        }
    }
}


/* See ev_curl.h. */
int
tg_ev_curl_running(const tg_ev_curl_t *m)
{
    return m->running;
}
