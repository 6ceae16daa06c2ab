/*
 * core/ev.h
 *      A small epoll event loop: fd handlers, timers and a before-sleep hook.
 *
 * NOTES
 *      Shaped after Redis' ae: one loop per process, an fd-indexed handler
 *      table, timers in a binary min-heap, and a before-sleep callback where
 *      buffered output is flushed (EPOLLOUT is armed only when a write would
 *      block).  Single-threaded; nothing here is safe across threads.
 */
#ifndef TG_CORE_EV_H
#define TG_CORE_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#define TG_EV_READ  EPOLLIN
#define TG_EV_WRITE EPOLLOUT

typedef struct tg_ev_loop_s tg_ev_loop_t;
typedef struct tg_ev_timer_s tg_ev_timer_t;

/* fd handler: <events> is the epoll mask that fired (EPOLLIN, EPOLLOUT,
 * EPOLLERR, EPOLLHUP). */
typedef void (*tg_ev_handler_pt)(tg_ev_loop_t *loop, int fd, void *data,
                                 uint32_t events);
typedef void (*tg_ev_timer_pt)(tg_ev_loop_t *loop, tg_ev_timer_t *t);
typedef void (*tg_ev_hook_pt)(tg_ev_loop_t *loop, void *data);

/* Embedded in its owner; zero-initialise before first use. */
struct tg_ev_timer_s {
    uint64_t when;          /* monotonic ms deadline */
    size_t heap_idx;        /* position in the heap + 1; 0 = not armed */
    tg_ev_timer_pt handler; /* called once when due */
    void *data;             /* owner */
};

/* Create a loop able to watch fds below <setsize>.  NULL on failure
 * (logged).  The caller owns the loop. */
tg_ev_loop_t *tg_ev_create(int setsize);
void tg_ev_destroy(tg_ev_loop_t *loop);

/* Watch <fd> for <mask> with <handler>(data); replaces an existing
 * registration.  TG_OK or TG_ERROR (logged). */
int tg_ev_add(tg_ev_loop_t *loop, int fd, uint32_t mask,
              tg_ev_handler_pt handler, void *data);
/* Change only the mask of a registered fd. */
int tg_ev_mod(tg_ev_loop_t *loop, int fd, uint32_t mask);
/* Stop watching <fd>; a no-op when it is not registered. */
void tg_ev_del(tg_ev_loop_t *loop, int fd);
/* The mask <fd> is registered with, or 0. */
uint32_t tg_ev_mask(tg_ev_loop_t *loop, int fd);

/* Arm <t> to fire <ms> from now (re-arms an armed timer). */
void tg_ev_timer_add(tg_ev_loop_t *loop, tg_ev_timer_t *t, uint64_t ms);
/* Disarm <t>; a no-op when not armed. */
void tg_ev_timer_del(tg_ev_loop_t *loop, tg_ev_timer_t *t);

static inline bool
tg_ev_timer_armed(const tg_ev_timer_t *t)
{
    return t->heap_idx != 0;
}

/* The loop's cached monotonic time in ms, refreshed after each wait. */
uint64_t tg_ev_now(tg_ev_loop_t *loop);
void tg_ev_update_time(tg_ev_loop_t *loop);

/* Hook run before every epoll_wait. */
void tg_ev_set_before_sleep(tg_ev_loop_t *loop, tg_ev_hook_pt hook, void *data);

/* Wait at most <max_ms> (-1 = until the next timer) and dispatch.  Returns
 * the number of events handled, or TG_ERROR on an epoll failure other
 * than EINTR. */
int tg_ev_run_once(tg_ev_loop_t *loop, int max_ms);

/* Loop until tg_ev_stop(). */
void tg_ev_run(tg_ev_loop_t *loop);
void tg_ev_stop(tg_ev_loop_t *loop);

#endif /* TG_CORE_EV_H */
