/*
 * shm/ring.h
 *      The usage ring: a bounded multi-producer single-consumer queue of
 *      fixed-size usage records in shared memory.
 *
 * NOTES
 *      Written by: workers (producers; every finished request publishes
 *      exactly one tg_usage_rec_t).  Read by: admin (the single consumer,
 *      which drains the ring every 100 ms to 1 s).  Master initialises the
 *      ring before fork and calls tg_shm_ring_reap() for every worker it
 *      reaps.  A full ring never drops a record: publish returns
 *      TG_SHM_FULL and the worker appends the record to its own spool file
 *      (shm/spool.h), which admin ingests later.
 *
 *      Protocol: Dmitry Vyukov's bounded MPMC queue with one sequence
 *      number per slot, used with a single consumer, plus one extra slot
 *      state so that a producer that dies can always be cleaned up after.
 *      Positions are 64-bit counters that never wrap in practice (2^62
 *      records is 146,000 years at a million records a second).  For the
 *      slot of position <pos> (index pos & mask), seq takes the values
 *
 *          pos                 free for the producer of <pos>; once head
 *                              is past pos, claimed but not yet written
 *          BUSY | pid          being written by process <pid>
 *          pos + 1             published, waiting for the consumer
 *          pos + capacity      consumed (or skipped): free for the next lap
 *          BUSY | DEAD | pid   <pid> died while writing; master marked it
 *
 *      A producer reads head, checks that seq == pos, claims the position
 *      by a CAS on head (at most TG_SHM_RING_RETRIES attempts, then FULL),
 *      then moves seq from pos to BUSY|pid by a CAS ("begin"), copies the
 *      record into the slot and stores pos + 1 with release order.  The
 *      consumer loads seq with acquire order; when it is tail + 1 it
 *      copies the record out and stores tail + capacity with release
 *      order, which hands the slot to the next lap.  Producers never read
 *      tail and the consumer never writes head.
 *
 *      Dying producers.  A producer can die at three points:
 *      - before the head CAS: nothing happened;
 *      - after the head CAS, before begin (seq == pos, head > pos): the
 *        consumer cannot tell a dead producer from a slow one, so
 *        tg_shm_ring_skip_stuck() waits until the slot has stayed like
 *        this for a grace period (2 s; a live producer spends nanoseconds
 *        there) and then moves seq from pos to pos + capacity by a CAS.
 *        A slow producer that wakes up later fails its begin CAS, has
 *        written nothing into the slot, and gets TG_SHM_FULL, so its
 *        record goes to the spool;
 *      - after begin, before the release store (seq == BUSY | pid): the
 *        slot belongs to that producer alone and nobody else writes it, so
 *        the consumer waits.  Master calls tg_shm_ring_reap(pid) after
 *        waitpid() reports the worker dead and before it forks again,
 *        which turns BUSY | pid into BUSY | DEAD | pid; the consumer then
 *        skips the slot at once.  The record being written is lost with
 *        the process that was finishing it.
 *      A consumer (admin) that dies between its seq store and its tail
 *      store leaves tail one behind; the next admin's first
 *      tg_shm_ring_skip_stuck() moves it on (see shm/ring.c).
 *      Why the extra begin step: if the grace skip could take a slot from
 *      a producer that had already started copying its record, the next
 *      lap's producer could be handed the slot while the slow one was
 *      still writing it, and the consumer would read a mix of two records
 *      that passes every check.  With begin, the skip and the first write
 *      are separated by one CAS on the same word that exactly one side
 *      wins, so no two processes ever write the same record body, and the
 *      body is only read after the acquire load that pairs with its
 *      writer's release store.  See shm/ring.c for the full argument.
 *
 *      Generic over the record size.  The protocol never looks inside a
 *      record, so the same code carries any fixed-size record whose size
 *      is a multiple of a cache line: the *_for and *_raw functions take
 *      the record size (fixed at init and checked at attach) and the
 *      writer's pid, and the usage functions below are thin wrappers for
 *      tg_usage_rec_t.  The endpoint events ring (shm/events.h) is the
 *      second user.  A slot is one line for seq followed by the record, so
 *      slot_size = 64 + rec_size; the header (tg_shm_ring_t, 320 bytes)
 *      comes first and the slots follow it.
 *
 *      Layout: for the usage ring the header is exactly one slot long, so
 *      the directory entry in shm/layout.h is {capacity + 1,
 *      sizeof(tg_shm_ring_slot_t)}, with entry 0 the header.  head (CASed by
 * every producer) and tail (written by the consumer) sit on separate cache
 * lines: were they on one line, each consumer store would invalidate the line
 * the producers are CASing and each producer CAS would steal it back from the
 * consumer, so the two sides would serialise on one line even when they touch
 * different slots.  Each slot starts on a cache line so two producers writing
 * neighbouring slots never share a line.
 */
#ifndef TG_SHM_RING_H
#define TG_SHM_RING_H

#include "shm/layout.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* How a request ended (tg_usage_rec_t.outcome). */
enum {
    TG_USAGE_OK = 0,             /* answered (any status from upstream) */
    TG_USAGE_UPSTREAM_ERROR = 1, /* no endpoint answered usably */
    TG_USAGE_CLIENT_GONE = 2,    /* the client closed before the end */
    TG_USAGE_TIMEOUT = 3,        /* a deadline expired */
    TG_USAGE_REJECTED = 4,       /* refused by auth, quota or limits */
    TG_USAGE_BROKEN = 5,         /* the upstream stream broke mid-way */
    TG_USAGE_WORKER_CRASHED = 6  /* its worker died; written by master */
};

/* tg_usage_rec_t.flags bits. */
#define TG_USAGE_F_STREAM   0x01u /* the client asked for a stream (SSE) */
#define TG_USAGE_F_RETRIED  0x02u /* sent to more than one endpoint */
#define TG_USAGE_F_OPENAI   0x04u /* OpenAI-style API, else Anthropic */
#define TG_USAGE_F_UNKNOWN  0x08u /* tokens could not be (fully) read */
#define TG_USAGE_F_UNPRICED 0x10u /* no price matched the model: cost 0 */
#define TG_USAGE_F_RESPONSES                                                   \
    0x20u /* OpenAI Responses API (with F_OPENAI): the "responses" api */

/* The API of a record with flags <flags>: 0 anthropic, 1 openai (Chat
 * Completions), 2 responses (the OpenAI Responses API), as the api label
 * of metrics and the "api" of usage rows name them. */
static inline unsigned
tg_usage_api(uint32_t flags)
{
    return (flags & TG_USAGE_F_RESPONSES) ? 2u
           : (flags & TG_USAGE_F_OPENAI)  ? 1u
                                          : 0u;
}

/* The name of API <api> (tg_usage_api). */
static inline const char *
tg_usage_api_name(unsigned api)
{
    return api == 2u ? "responses" : api == 1u ? "openai" : "anthropic";
}

/* Indexes of tg_usage_rec_t.tokens. */
enum {
    TG_USAGE_TOK_INPUT = 0,          /* input tokens not read from cache */
    TG_USAGE_TOK_OUTPUT = 1,         /* output tokens */
    TG_USAGE_TOK_CACHE_READ = 2,     /* input tokens read from cache */
    TG_USAGE_TOK_CACHE_WRITE_5M = 3, /* tokens written to the 5-min cache */
    TG_USAGE_TOK_CACHE_WRITE_1H = 4, /* tokens written to the 1-hour cache */
    TG_USAGE_TOK_REASONING = 5,      /* reasoning tokens (part of output) */
    TG_USAGE_NTOKENS = 6
};

/*
 * One finished request.  Plain data: it is what the ring carries, what a
 * spool file stores (shm/spool.h) and what admin aggregates.  Unused
 * fields and reserved bytes are zero.
 */
typedef struct {
    uint64_t request_id; /* unique per host; admin dedupes on it */
    uint64_t time_ms;    /* wall clock (CLOCK_REALTIME) at finish */
    uint32_t user;       /* user id */
    uint32_t key_id;     /* API key id */
    uint16_t endpoint;   /* endpoint index; UINT16_MAX = none */
    uint16_t status;     /* HTTP status sent to the client */
    uint8_t outcome;     /* TG_USAGE_OK ... TG_USAGE_WORKER_CRASHED */
    uint8_t flags;       /* TG_USAGE_F_* */
    uint8_t attempts;    /* upstream attempts, 0 when never sent */
    uint8_t reserved0;   /* zero */
    int32_t pid;         /* producing worker; must be the caller's pid */
    uint32_t reserved1;  /* zero */
    uint64_t tokens[TG_USAGE_NTOKENS]; /* by TG_USAGE_TOK_* */
    uint64_t latency_us;               /* request received to last byte sent */
    uint64_t ttfb_us;                  /* request received to first byte sent */
    uint64_t bytes_in;                 /* bytes read from the client */
    uint64_t bytes_out;                /* bytes written to the client */
    uint64_t cost_pusd;                /* cost in pico-USD (1e-12 USD) after the
                                          endpoint's price_factor, as charged to the
                                          quotas; 0 when unpriced (TG_USAGE_F_UNPRICED) */
    char model[64];                    /* model name, NUL-padded, truncated */
    uint8_t reserved[64]; /* zero; room to grow without a new size */
} tg_usage_rec_t;

_Static_assert(sizeof(tg_usage_rec_t) == 256,
               "tg_usage_rec_t changed: bump TG_SHM_LAYOUT_VERSION and "
               "TG_SHM_SPOOL_VERSION");
_Static_assert(sizeof(tg_usage_rec_t) % TG_SHM_CACHELINE == 0,
               "tg_usage_rec_t is a whole number of cache lines");
_Static_assert(offsetof(tg_usage_rec_t, outcome) == 28, "usage rec layout");
_Static_assert(offsetof(tg_usage_rec_t, pid) == 32, "usage rec layout");
_Static_assert(offsetof(tg_usage_rec_t, tokens) == 40, "usage rec layout");
_Static_assert(offsetof(tg_usage_rec_t, cost_pusd) == 120, "usage rec layout");
_Static_assert(offsetof(tg_usage_rec_t, model) == 128, "usage rec layout");

#define TG_SHM_RING_MAGIC 0x52494e47u /* "RING" */

/* Capacity bounds; capacities are powers of two. */
#define TG_SHM_RING_MIN 2u
#define TG_SHM_RING_MAX (1u << 24)

/* seq states other than positions (see NOTES); positions stay below 2^62. */
#define TG_SHM_RING_BUSY (1ull << 63) /* low 32 bits: the writer's pid */
#define TG_SHM_RING_DEAD (1ull << 62) /* with BUSY: its writer died */

/* Bounded CAS retries on head before publish gives up with FULL. */
#define TG_SHM_RING_RETRIES 256

/*
 * One slot: the sequence number on its own line, then the record.  The
 * consumer polls seq while a producer fills the record, so keeping them on
 * different lines spares the producer's copy the consumer's reads.
 */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t seq; /* state, see NOTES */
    uint8_t pad[56];                                /* seq's own line */
    tg_usage_rec_t rec;                             /* the record */
} tg_shm_ring_slot_t;

_Static_assert(sizeof(tg_shm_ring_slot_t) == 320, "ring slot layout");
_Static_assert(offsetof(tg_shm_ring_slot_t, rec) == 64, "ring slot layout");

/*
 * The ring header, one slot long; the slots follow it.  Line 0 is written
 * once by tg_shm_ring_init(); line 1 belongs to the producers, line 2 to
 * the consumer, line 3 to producers that found the ring full.
 */
typedef struct {
    /* line 0: read-only after init */
    alignas(TG_SHM_CACHELINE) uint32_t magic; /* TG_SHM_RING_MAGIC */
    uint32_t capacity;                        /* slots, a power of two */
    uint32_t mask;                            /* capacity - 1 */
    uint32_t slot_size;                       /* 64 + rec_size */
    uint32_t rec_size;                        /* bytes of one record */
    uint8_t reserved0[44];                    /* zero */

    /* line 1: CASed by every producer; alone to avoid false sharing */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t head; /* next to claim */
    uint8_t pad1[56];                                /* head's own line */

    /* line 2: the consumer's; producers never touch it */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t tail; /* next to consume */
    _Atomic uint64_t consumed; /* records consumed (monotonic) */
    _Atomic uint64_t skipped;  /* slots skipped (monotonic) */
    uint64_t stuck_head;       /* head when the stuck timer started */
    uint64_t stuck_since_ms;   /* when the stuck timer started */
    uint8_t pad2[24];          /* rest of the consumer's line */

    /* line 3: bumped only on the slow path, so kept off the hot lines */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t full; /* FULL returns */
    uint8_t pad3[56];                                /* full's own line */

    /* line 4 */
    uint8_t reserved4[64]; /* zero; makes the header one slot long */
} tg_shm_ring_t;

_Static_assert(sizeof(tg_shm_ring_t) == sizeof(tg_shm_ring_slot_t),
               "the ring header is exactly one slot");
_Static_assert(offsetof(tg_shm_ring_t, head) == 64, "ring header layout");
_Static_assert(offsetof(tg_shm_ring_t, tail) == 128, "ring header layout");
_Static_assert(offsetof(tg_shm_ring_t, full) == 192, "ring header layout");

/*
 * Bytes needed for a ring of <capacity> slots of <rec_size>-byte records,
 * header included: sizeof(tg_shm_ring_t) + capacity * (64 + rec_size).
 * Returns 0 when <capacity> is not a power of two in [TG_SHM_RING_MIN,
 * TG_SHM_RING_MAX] or <rec_size> is not a non-zero multiple of
 * TG_SHM_CACHELINE (at most 64 KB).
 */
size_t tg_shm_ring_size_for(uint32_t capacity, uint32_t rec_size);

/*
 * Lay out an empty ring of <capacity> slots for <rec_size>-byte records in
 * <mem> (cache-line aligned, tg_shm_ring_size_for() bytes).  Master only,
 * before any producer or consumer runs.  Returns <mem> as a ring, or NULL
 * when <mem> is misaligned or the sizes are refused.
 */
tg_shm_ring_t *tg_shm_ring_init_for(void *mem, uint32_t capacity,
                                    uint32_t rec_size);

/*
 * Check that <mem> of <size> bytes holds a ring of <rec_size>-byte records
 * laid out by this binary.  Any process.  Returns the ring or NULL.
 */
tg_shm_ring_t *tg_shm_ring_attach_for(void *mem, size_t size,
                                      uint32_t rec_size);

/*
 * Write the r->rec_size bytes at <rec> into position <pos> from
 * tg_shm_ring_claim() and publish them; <pid> is the caller's pid (> 0).
 * Same results as tg_shm_ring_commit().
 */
int tg_shm_ring_commit_raw(tg_shm_ring_t *r, uint64_t pos, const void *rec,
                           int32_t pid);

/*
 * Publish a copy of the r->rec_size bytes at <rec>; <pid> is the caller's
 * pid (> 0).  Same results and constraints as tg_shm_ring_publish().
 */
int tg_shm_ring_publish_raw(tg_shm_ring_t *r, const void *rec, int32_t pid);

/*
 * Copy the oldest published record (r->rec_size bytes) into <out> and,
 * when <pos> is not NULL, its position (a number unique for the life of
 * the ring, increasing in publication order).  The single consumer only.
 * Returns TG_SHM_OK or TG_SHM_MISS, as tg_shm_ring_consume().
 */
int tg_shm_ring_consume_raw(tg_shm_ring_t *r, void *out, uint64_t *pos);

/*
 * Copy the record <k> places after the oldest one (k = 0 is the oldest)
 * into <out> (r->rec_size bytes) and its position into <*pos> (may be
 * NULL), without consuming it.  The single consumer only.  Returns
 * TG_SHM_OK, or TG_SHM_MISS when that slot is not published yet.  With
 * tg_shm_ring_release() this lets the consumer store records safely
 * before it hands their slots back: a consumer that dies in between
 * leaves them published, and the next one reads them again.
 */
int tg_shm_ring_peek_raw(tg_shm_ring_t *r, uint32_t k, void *out,
                         uint64_t *pos);

/*
 * Consume the <n> oldest records, which tg_shm_ring_peek_raw() reported
 * published, handing their slots to the next lap.  The single consumer
 * only.
 */
void tg_shm_ring_release(tg_shm_ring_t *r, uint32_t n);

/*
 * Bytes needed for a usage ring of <capacity> slots, header included:
 * (capacity + 1) * sizeof(tg_shm_ring_slot_t).  Returns 0 when <capacity>
 * is not a power of two in [TG_SHM_RING_MIN, TG_SHM_RING_MAX].
 */
size_t tg_shm_ring_size(uint32_t capacity);

/*
 * Lay out an empty ring of <capacity> slots in <mem>, which must be
 * cache-line aligned and tg_shm_ring_size(capacity) bytes long.  Master
 * only, before any producer or consumer runs.  Returns the ring (which is
 * <mem>), or NULL when <mem> is misaligned or <capacity> is refused.
 */
tg_shm_ring_t *tg_shm_ring_init(void *mem, uint32_t capacity);

/*
 * Check that <mem> of <size> bytes holds a ring of this binary's layout.
 * Any process.  Returns the ring, or NULL on a mismatch.
 */
tg_shm_ring_t *tg_shm_ring_attach(void *mem, size_t size);

/*
 * Publish a copy of <rec>; rec->pid must be the caller's pid (> 0).
 * Workers; never blocks and retries a CAS at most TG_SHM_RING_RETRIES
 * times.  Returns TG_SHM_OK, TG_SHM_FULL when the record was not taken
 * (the ring is full, contention outlasted the retries, or the slot was
 * skipped while this process was descheduled): the caller must then spool
 * the record, which is never also in the ring.  TG_SHM_INVAL when
 * rec->pid <= 0.  Same as tg_shm_ring_claim() then tg_shm_ring_commit().
 */
int tg_shm_ring_publish(tg_shm_ring_t *r, const tg_usage_rec_t *rec);

/*
 * The two halves of tg_shm_ring_publish(), exposed for tests that stop a
 * producer in between.  claim reserves a position and stores it in
 * <*pos>: TG_SHM_OK or TG_SHM_FULL.  commit writes <rec> at <pos>:
 * TG_SHM_OK, or TG_SHM_FULL when the consumer skipped the position (the
 * slot was not touched; spool the record), TG_SHM_INVAL when rec->pid <=
 * 0 (the position is then left for the grace skip).
 */
int tg_shm_ring_claim(tg_shm_ring_t *r, uint64_t *pos);
int tg_shm_ring_commit(tg_shm_ring_t *r, uint64_t pos,
                       const tg_usage_rec_t *rec);

/*
 * Copy the oldest published record into <out>.  The single consumer only
 * (admin).  Returns TG_SHM_OK, or TG_SHM_MISS when the ring is empty or
 * its oldest slot is not published yet; call tg_shm_ring_skip_stuck() on
 * each drain round so a hole left by a dead producer cannot block it.
 */
int tg_shm_ring_consume(tg_shm_ring_t *r, tg_usage_rec_t *out);

/*
 * Skip the slots at the tail that will never be published: those marked
 * dead by tg_shm_ring_reap(), at once, and those claimed but still not
 * begun <grace_ms> (2000 in production) after the consumer first saw them
 * stuck.  <now_ms> is a monotonic clock in ms (CLOCK_MONOTONIC, which is
 * system-wide, so a restarted admin may go on with the same timer).  The
 * single consumer only; call it on every drain round, it keeps its timer
 * in the header.  It also moves on a tail that a consumer which died
 * mid-consume left one behind (not counted).  Returns how many slots it skipped
 * (admin logs them; each is a record lost with a dead worker or spooled by a
 * slow one).
 */
uint32_t tg_shm_ring_skip_stuck(tg_shm_ring_t *r, uint64_t now_ms,
                                uint64_t grace_ms);

/*
 * Mark the slot that process <pid> was writing when it died, so the
 * consumer skips it.  Master only, after waitpid() reported <pid> dead
 * and before it forks again (so no live producer can have that pid).
 * Scans every slot.  Returns the number of slots marked (0 or 1).
 */
uint32_t tg_shm_ring_reap(tg_shm_ring_t *r, int32_t pid);

/* The sequence word of slot <i> (0 <= i < capacity) of any ring <r>. */
static inline _Atomic uint64_t *
tg_shm_ring_seq(tg_shm_ring_t *r, uint32_t i)
{
    return (_Atomic uint64_t *)(void *)((char *)(r + 1) +
                                        (size_t)i * r->slot_size);
}

/* The record bytes of slot <i> of any ring <r>. */
static inline void *
tg_shm_ring_body(tg_shm_ring_t *r, uint32_t i)
{
    return (char *)(r + 1) + (size_t)i * r->slot_size + TG_SHM_CACHELINE;
}

/* Slot <i> (0 <= i < capacity) of the usage ring <r>. */
static inline tg_shm_ring_slot_t *
tg_shm_ring_slot(tg_shm_ring_t *r, uint32_t i)
{
    return (tg_shm_ring_slot_t *)(void *)tg_shm_ring_seq(r, i);
}

#endif /* TG_SHM_RING_H */
