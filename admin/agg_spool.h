/*
 * admin/agg_spool.h
 *      Admin's usage journal: an append-only file of framed usage records
 *      and batch marks, from which batches are flushed to PostgreSQL.
 *
 * NOTES
 *      Admin only, one process at a time (the admin role in shared memory
 *      serialises admins).  See agg_spool.c for the file format and the
 *      recovery rules.
 */
#ifndef TG_ADMIN_AGG_SPOOL_H
#define TG_ADMIN_AGG_SPOOL_H

#include "shm/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_AGG_SPOOL_MAGIC 0x4c4e524au /* "JRNL" */

/* Frame types. */
enum {
    TG_AGG_FR_REC = 1,  /* a record drained from the ring */
    TG_AGG_FR_WREC = 2, /* a record read from a worker's spool file */
    TG_AGG_FR_BATCH = 3 /* closes the batch of the records before it */
};

/* Frame header; the payload follows. */
typedef struct {
    uint32_t magic; /* TG_AGG_SPOOL_MAGIC */
    uint16_t type;  /* TG_AGG_FR_* */
    uint16_t len;   /* payload bytes */
    uint32_t crc;   /* CRC-32 of the payload */
    uint32_t zero;  /* zero */
} tg_agg_frame_t;

/* Payload of TG_AGG_FR_REC and TG_AGG_FR_WREC. */
typedef struct {
    uint64_t ring_id; /* the ring it came from (0 for a worker spool) */
    uint64_t pos;     /* its ring position */
    tg_usage_rec_t rec;
} tg_agg_frame_rec_t;

/* Payload of TG_AGG_FR_BATCH. */
typedef struct {
    uint64_t seq;     /* batch sequence number, from 1 */
    uint64_t records; /* records in the batch */
    uint64_t time_ms; /* wall clock when it was closed */
} tg_agg_frame_batch_t;

#define TG_AGG_FRAME_REC_SIZE                                                  \
    (sizeof(tg_agg_frame_t) + sizeof(tg_agg_frame_rec_t))

typedef struct {
    int fd;                /* the journal, O_APPEND */
    int state_fd;          /* the state file */
    char path[4200];       /* <dir>/usage.journal */
    uint64_t spool_id;     /* random, names the batches */
    uint64_t acked_off;    /* journal offset up to which batches are applied */
    uint64_t acked_seq;    /* last batch applied */
    uint64_t next_seq;     /* sequence number of the next batch mark */
    uint64_t size;         /* bytes in the journal */
    uint64_t open_recs;    /* records after the last batch mark */
    uint64_t closed_off;   /* end of the last batch mark */
    uint64_t rotate_bytes; /* start a new journal past this size (64 MB) */
    /* from recovery: the newest ring record already in the journal */
    uint64_t last_ring_id, last_pos;
    bool have_last;
    uint64_t *wseen; /* request ids of worker-spool records in the journal */
    size_t nwseen, capwseen;
} tg_agg_spool_t;

/*
 * Open (creating) the journal and its state under <dir> and recover: a
 * torn or damaged tail is cut off, the newest ring position and the
 * worker-spool request ids after the last applied batch are remembered.
 * TG_OK, or TG_ERROR with a message in <err> (<errlen> bytes).
 */
int tg_agg_spool_open(tg_agg_spool_t *s, const char *dir, char *err,
                      size_t errlen);
void tg_agg_spool_close(tg_agg_spool_t *s);

/* Encode one frame of <type> around the <len> bytes at <payload> into
 * <out> (sizeof(tg_agg_frame_t) + len bytes).  Returns the bytes. */
size_t tg_agg_spool_frame(void *out, uint16_t type, const void *payload,
                          uint16_t len);

/* Append <n> bytes of whole frames with write(2) (no fsync): safe from a
 * kill once it returns.  <nrecs> of them are records.  TG_OK, or TG_ERROR
 * (logged) with nothing appended. */
int tg_agg_spool_append(tg_agg_spool_t *s, const void *frames, size_t n,
                        uint32_t nrecs);

/* Close the open batch, if it holds records: append its mark and fsync.
 * TG_OK (also when empty) or TG_ERROR (logged). */
int tg_agg_spool_close_batch(tg_agg_spool_t *s, uint64_t now_ms);

/*
 * Read the oldest batch not yet applied: <cb>(<ctx>, rec) for each of its
 * records; its mark into <*seq>, <*end>.  TG_OK when a whole batch was
 * read, TG_DECLINED when none is closed, TG_ERROR on a read error.
 */
int tg_agg_spool_read_batch(tg_agg_spool_t *s,
                            void (*cb)(void *ctx, const tg_usage_rec_t *rec),
                            void *ctx, uint64_t *seq, uint64_t *end);

/* Batch <seq> ending at <end> is applied: move the acknowledged offset,
 * and empty the journal when everything in it is applied and it passed
 * its size bound. */
void tg_agg_spool_ack(tg_agg_spool_t *s, uint64_t seq, uint64_t end);

/* Whether worker-spool record <request_id> is already in the journal;
 * otherwise remember it. */
bool tg_agg_spool_wseen(tg_agg_spool_t *s, uint64_t request_id);

/* Forget the worker-spool ids (no spool file can deliver them again). */
void tg_agg_spool_wforget(tg_agg_spool_t *s);

#endif /* TG_ADMIN_AGG_SPOOL_H */
