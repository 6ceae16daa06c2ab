/*
 * core/ev.c
 *      epoll event loop with a timer heap.
 *
 * NOTES
 *      Loop phases, in order: before-sleep hook (flush output), epoll_wait
 *      bounded by the nearest timer, fd handlers, due timers.  A handler may
 *      delete any fd, including ones whose events are still pending in this
 *      round: the pending entry is skipped because the table slot no longer
 *      matches (we compare the registration's generation).
 */
#include "core/ev.h"
#include "core/core.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    tg_ev_handler_pt handler;
    void *data;
    uint32_t mask;
    uint32_t gen; /* bumped on every add/del, to spot stale events */
} tg_ev_fd_t;

struct tg_ev_loop_s {
    int epfd;
    int setsize;
    tg_ev_fd_t *fds;
    struct epoll_event *events;
    int nevents;
    tg_ev_timer_t **heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t now;
    tg_ev_hook_pt before_sleep;
    void *before_sleep_data;
    bool stop;
};


/*
 * Create a loop for fds below <setsize>.  Returns NULL after logging on
 * failure; the caller owns the result and frees it with tg_ev_destroy().
 */
tg_ev_loop_t *
tg_ev_create(int setsize)
{
    tg_ev_loop_t *loop;

    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        tg_log(TG_LOG_ERR, errno, "calloc(ev loop) failed");
        return NULL;
    }
    loop->setsize = setsize;
    loop->nevents = 512;
    loop->fds = calloc((size_t)setsize, sizeof(tg_ev_fd_t));
    loop->events = calloc((size_t)loop->nevents, sizeof(struct epoll_event));
    loop->heap_cap = 256;
    loop->heap = calloc(loop->heap_cap, sizeof(tg_ev_timer_t *));
    if (loop->fds == NULL || loop->events == NULL || loop->heap == NULL) {
        tg_log(TG_LOG_ERR, errno, "calloc(ev tables) failed");
        goto failed;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1) {
        tg_log(TG_LOG_ERR, errno, "epoll_create1() failed");
        goto failed;
    }
    tg_ev_update_time(loop);
    return loop;

failed:
    free(loop->heap);
    free(loop->events);
    free(loop->fds);
    free(loop);
    return NULL;
}


/* Close the epoll fd and free the loop; registered fds are not closed. */
void
tg_ev_destroy(tg_ev_loop_t *loop)
{
    if (loop == NULL) {
        return;
    }
    close(loop->epfd);
    free(loop->heap);
    free(loop->events);
    free(loop->fds);
    free(loop);
}


/*
 * Register <fd> for <mask> events delivered to <handler>(<data>), or
 * replace its registration.  Returns TG_OK, or TG_ERROR after logging.
 */
int
tg_ev_add(tg_ev_loop_t *loop, int fd, uint32_t mask, tg_ev_handler_pt handler,
          void *data)
{
    struct epoll_event ee;
    tg_ev_fd_t *f;
    int op;

    if (fd < 0 || fd >= loop->setsize) {
        tg_log(TG_LOG_ERR, 0, "fd %d is out of the loop's range %d", fd,
               loop->setsize);
        return TG_ERROR;
    }
    f = &loop->fds[fd];
    op = (f->handler != NULL) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    ee.events = mask;
    ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)(f->gen + 1) << 32);
    if (epoll_ctl(loop->epfd, op, fd, &ee) == -1 &&
        !(op == EPOLL_CTL_MOD && errno == ENOENT &&
          epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) == 0)) {
        /* (A MOD that finds nothing means the old fd was closed behind our
         * back and the number reused: register the new one.) */
        tg_log(TG_LOG_ERR, errno, "epoll_ctl(%s, fd %d) failed",
               op == EPOLL_CTL_ADD ? "ADD" : "MOD", fd);
        return TG_ERROR;
    }
    f->gen++;
    f->handler = handler;
    f->data = data;
    f->mask = mask;
    return TG_OK;
}


/* Change the event mask of registered <fd>.  TG_OK or TG_ERROR. */
int
tg_ev_mod(tg_ev_loop_t *loop, int fd, uint32_t mask)
{
    struct epoll_event ee;
    tg_ev_fd_t *f;

    if (fd < 0 || fd >= loop->setsize || loop->fds[fd].handler == NULL) {
        return TG_ERROR;
    }
    f = &loop->fds[fd];
    if (f->mask == mask) {
        return TG_OK;
    }
    ee.events = mask;
    ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)f->gen << 32);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee) == -1) {
        tg_log(TG_LOG_ERR, errno, "epoll_ctl(MOD, fd %d) failed", fd);
        return TG_ERROR;
    }
    f->mask = mask;
    return TG_OK;
}


/* Unregister <fd>; harmless when it is not registered. */
void
tg_ev_del(tg_ev_loop_t *loop, int fd)
{
    tg_ev_fd_t *f;

    if (fd < 0 || fd >= loop->setsize || loop->fds[fd].handler == NULL) {
        return;
    }
    f = &loop->fds[fd];
    /* EBADF/ENOENT are expected when the fd was closed already. */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    f->handler = NULL;
    f->data = NULL;
    f->mask = 0;
    f->gen++;
}


/* The mask <fd> is registered with, or 0. */
uint32_t
tg_ev_mask(tg_ev_loop_t *loop, int fd)
{
    if (fd < 0 || fd >= loop->setsize) {
        return 0;
    }
    return loop->fds[fd].mask;
}


static void
tg_ev_heap_swap(tg_ev_loop_t *loop, size_t i, size_t j)
{
    tg_ev_timer_t *t = loop->heap[i];

    loop->heap[i] = loop->heap[j];
    loop->heap[j] = t;
    loop->heap[i]->heap_idx = i + 1;
    loop->heap[j]->heap_idx = j + 1;
}


static void
tg_ev_heap_up(tg_ev_loop_t *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (loop->heap[parent]->when <= loop->heap[i]->when) {
            break;
        }
        tg_ev_heap_swap(loop, i, parent);
        i = parent;
    }
}


static void
tg_ev_heap_down(tg_ev_loop_t *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < loop->heap_len && loop->heap[l]->when < loop->heap[m]->when) {
            m = l;
        }
        if (r < loop->heap_len && loop->heap[r]->when < loop->heap[m]->when) {
            m = r;
        }
        if (m == i) {
            break;
        }
        tg_ev_heap_swap(loop, i, m);
        i = m;
    }
}


/*
 * Arm <t> to fire <ms> milliseconds after the loop's current time.  An
 * armed timer is moved.  If the heap cannot grow the timer fires at once
 * on the next round instead of being lost (it is run from a small
 * emergency path in tg_ev_run_once through a zero deadline).
 */
void
tg_ev_timer_add(tg_ev_loop_t *loop, tg_ev_timer_t *t, uint64_t ms)
{
    uint64_t when = loop->now + ms;

    if (t->heap_idx != 0) {
        size_t i = t->heap_idx - 1;
        uint64_t old = t->when;

        t->when = when;
        if (when < old) {
            tg_ev_heap_up(loop, i);
        } else {
            tg_ev_heap_down(loop, i);
        }
        return;
    }
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap * 2;
        tg_ev_timer_t **h = realloc(loop->heap, cap * sizeof(*h));

        if (h == NULL) {
            /* Timers guard timeouts; losing one would leak a connection,
             * so failing to grow the heap is treated as fatal. */
            tg_log(TG_LOG_ERR, errno, "realloc(timer heap) failed");
            TG_ASSERT(h != NULL);
        }
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when = when;
    loop->heap[loop->heap_len] = t;
    t->heap_idx = ++loop->heap_len;
    tg_ev_heap_up(loop, loop->heap_len - 1);
}


/* Disarm <t>; harmless when it is not armed. */
void
tg_ev_timer_del(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    size_t i;

    if (t->heap_idx == 0) {
        return;
    }
    i = t->heap_idx - 1;
    t->heap_idx = 0;
    loop->heap_len--;
    if (i != loop->heap_len) {
        loop->heap[i] = loop->heap[loop->heap_len];
        loop->heap[i]->heap_idx = i + 1;
        tg_ev_heap_up(loop, i);
        tg_ev_heap_down(loop, loop->heap[i]->heap_idx - 1);
    }
}


/* The loop's cached monotonic time in milliseconds. */
uint64_t
tg_ev_now(tg_ev_loop_t *loop)
{
    return loop->now;
}


/* Refresh the cached time. */
void
tg_ev_update_time(tg_ev_loop_t *loop)
{
    loop->now = tg_time_mono_ms();
}


/* Set the hook run before each wait (one hook per loop). */
void
tg_ev_set_before_sleep(tg_ev_loop_t *loop, tg_ev_hook_pt hook, void *data)
{
    loop->before_sleep = hook;
    loop->before_sleep_data = data;
}


static void
tg_ev_run_timers(tg_ev_loop_t *loop)
{
    /* A handler may arm new timers for "now"; bound the round so a timer
     * re-armed with 0 ms cannot starve the fds. */
    size_t budget = loop->heap_len + 64;

    while (loop->heap_len > 0 && budget-- > 0) {
        tg_ev_timer_t *t = loop->heap[0];

        if (t->when > loop->now) {
            break;
        }
        tg_ev_timer_del(loop, t);
        t->handler(loop, t);
    }
}


/*
 * One loop round.  <max_ms> bounds the wait (-1: until the next timer or
 * event).  Returns the number of fd events dispatched, or TG_ERROR when
 * epoll_wait fails with anything but EINTR.
 */
int
tg_ev_run_once(tg_ev_loop_t *loop, int max_ms)
{
    int n, i, timeout = max_ms;

    if (loop->before_sleep != NULL) {
        loop->before_sleep(loop, loop->before_sleep_data);
    }
    if (loop->heap_len > 0) {
        uint64_t when = loop->heap[0]->when;
        int t;

        tg_ev_update_time(loop);
        t = (when <= loop->now) ? 0 : (int)TG_MIN(when - loop->now, 60000u);
        if (timeout < 0 || t < timeout) {
            timeout = t;
        }
    }
    n = epoll_wait(loop->epfd, loop->events, loop->nevents, timeout);
    tg_ev_update_time(loop);
    if (n == -1) {
        if (errno == EINTR) {
            return 0;
        }
        tg_log(TG_LOG_ERR, errno, "epoll_wait() failed");
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        int fd = (int)(uint32_t)loop->events[i].data.u64;
        uint32_t gen = (uint32_t)(loop->events[i].data.u64 >> 32);
        tg_ev_fd_t *f = &loop->fds[fd];

        /* Skip events for an fd deleted (and maybe re-added) by an
         * earlier handler in this round. */
        if (f->handler == NULL || f->gen != gen) {
            continue;
        }
        f->handler(loop, fd, f->data, loop->events[i].events);
    }
    tg_ev_run_timers(loop);
    return n;
}


/* Run rounds until tg_ev_stop() is called from a handler. */
void
tg_ev_run(tg_ev_loop_t *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        if (tg_ev_run_once(loop, -1) == TG_ERROR) {
            break;
        }
    }
}


/* Make tg_ev_run() return after the current round. */
void
tg_ev_stop(tg_ev_loop_t *loop)
{
    loop->stop = true;
}
