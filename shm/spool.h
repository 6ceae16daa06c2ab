/*
 * shm/spool.h
 *      Overflow spool files for usage records the ring could not take.
 *
 * NOTES
 *      Written by: each worker, into its own file <dir>/usage-<pid>.spool,
 *      when tg_shm_ring_publish() returns TG_SHM_FULL.  Read and removed
 *      by: admin (tg_shm_spool_ingest()), which ingests every spool file
 *      in the directory on each drain round.  Not shared memory: these are
 *      ordinary files, kept here because they carry the ring's records.
 *
 *      Format: a sequence of frames, each a tg_shm_spool_frame_t header
 *      followed by one tg_usage_rec_t, in host byte order (a spool never
 *      leaves the host that wrote it).  The header holds a magic, a format
 *      version, the record size and the CRC-32 of the record, so a reader
 *      can skip a damaged frame and find the next one.
 *
 *      Protocol (flock(2) on the file, never held across a blocking wait
 *      of the other side):
 *      - append: open the path O_APPEND|O_CREAT (0600), flock(LOCK_EX),
 *        then check under the lock that the file is still linked and is
 *        still the one the path names; otherwise admin has taken it away
 *        between our open and our lock, so close and open again (bounded
 *        retries).  Still linked is what matters for safety (admin unlinks
 *        a file only under its lock after reading all of it, so a frame
 *        written under the lock into a linked file is always read later);
 *        still named by the path only keeps frames out of files being
 *        ingested, so after TG_SHM_SPOOL_PREFER attempts append accepts a
 *        renamed file that is still linked.  One write(2) per frame; a
 *        short write is cut off with ftruncate() so the file stays a
 *        whole number of frames.
 *      - ingest: rename usage-<pid>.spool to usage-<pid>.<n>.ingesting
 *        (RENAME_NOREPLACE), so the next append creates a fresh file; open
 *        it, flock(LOCK_EX|LOCK_NB), read every frame, then unlink it
 *        while still holding the lock and close it.  A writer that opened
 *        the old file before the rename either finished its frame before
 *        admin got the lock (admin reads it) or gets the lock after the
 *        unlink and sees st_nlink == 0 (it reopens the path).  If a writer
 *        holds the lock (it is mid-frame), admin leaves the file for the
 *        next round instead of waiting.  Leftover .ingesting files (admin
 *        crashed, a callback failed, a writer held the lock) are ingested
 *        first on the next call.
 *
 *      Guarantees: a record is appended whole or not at all (then append
 *      returns an error and the caller still holds it).  Ingest is at
 *      least once: if admin dies after passing records to its callback
 *      and before the unlink, or the callback fails midway through a file,
 *      the file is read again from its start next time, so admin must
 *      dedupe on request_id (it does so when it flushes to PostgreSQL).
 *      There is no fsync: a worker must not wait for the disk, and a host
 *      crash loses the page cache along with the ring.
 *
 *      Dying processes: a writer killed mid-write(2) leaves at worst a
 *      partial frame at the tail, which ingest counts as bad and skips;
 *      the kernel drops its lock.  An admin killed mid-ingest leaves a
 *      .ingesting file that the next call replays (at least once, above).
 */
#ifndef TG_SHM_SPOOL_H
#define TG_SHM_SPOOL_H

#include "shm/layout.h"
#include "shm/ring.h"

#include <stddef.h>
#include <stdint.h>

#define TG_SHM_SPOOL_MAGIC   0x50534754u /* "TGSP" on disk */
#define TG_SHM_SPOOL_VERSION 1u          /* bumped with tg_usage_rec_t */

/*
 * Opens before append gives up on a file that keeps being taken away, and
 * after how many it accepts a renamed file that is still linked.
 */
#define TG_SHM_SPOOL_RETRIES 64
#define TG_SHM_SPOOL_PREFER  8

/* Frame header, followed on disk by one tg_usage_rec_t. */
typedef struct {
    uint32_t magic;    /* TG_SHM_SPOOL_MAGIC */
    uint16_t version;  /* TG_SHM_SPOOL_VERSION */
    uint16_t rec_size; /* sizeof(tg_usage_rec_t) */
    uint32_t crc;      /* tg_shm_spool_crc32() of the record */
    uint32_t reserved; /* zero */
} tg_shm_spool_frame_t;

_Static_assert(sizeof(tg_shm_spool_frame_t) == 16, "spool frame header");
_Static_assert(offsetof(tg_shm_spool_frame_t, crc) == 8, "spool frame");

/* Bytes of one frame on disk. */
#define TG_SHM_SPOOL_FRAME_SIZE                                                \
    (sizeof(tg_shm_spool_frame_t) + sizeof(tg_usage_rec_t))

/*
 * Append <rec> to <dir>/usage-<pid>.spool, creating it with mode 0600.
 * Workers, after TG_SHM_FULL from the ring; does a few file syscalls and
 * may wait briefly for another appender to the same file, never for
 * admin.  Returns TG_SHM_OK; TG_SHM_FULL when the record was not stored,
 * with errno telling why (ENOSPC, EACCES, ENAMETOOLONG, EAGAIN when the
 * file kept being taken away); TG_SHM_INVAL (EINVAL) when <pid> <= 0.  The
 * caller still owns <rec> and should keep it or log it on failure.
 */
int tg_shm_spool_append(const char *dir, int32_t pid,
                        const tg_usage_rec_t *rec);

/*
 * Pass every record of every spool file in <dir> to <cb>(<ctx>, rec) and
 * remove the files: leftover usage-*.ingesting files first, then
 * usage-*.spool.  <cb> returns 0 to accept a record; non-zero stops the
 * ingest and keeps the current file for the next call.  Admin only; never
 * waits for a lock.  Stores the records accepted in <*nrecs> and the
 * damaged frames and truncated tails skipped in <*nbad> (either may be
 * NULL).  Returns TG_SHM_OK when every file was read and removed (also
 * when <dir> does not exist), or TG_SHM_BUSY when a file was kept for the
 * next call, with errno from the failing call, EWOULDBLOCK when a writer
 * held a file's lock, or as <cb> left it.  Records of a kept file are
 * delivered again next time (at least once; see NOTES).
 */
int tg_shm_spool_ingest(const char *dir,
                        int (*cb)(void *ctx, const tg_usage_rec_t *rec),
                        void *ctx, uint32_t *nrecs, uint32_t *nbad);

/* CRC-32 (IEEE 802.3, as zlib's crc32()) of <n> bytes at <p>. */
uint32_t tg_shm_spool_crc32(const void *p, size_t n);

#endif /* TG_SHM_SPOOL_H */
