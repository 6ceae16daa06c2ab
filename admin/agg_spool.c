/*
 * admin/agg_spool.c
 *      Admin's usage journal: framed records and batch marks in one
 *      append-only file, acknowledged batch by batch.
 *
 * NOTES
 *      Admin only.  Files under usage.spool_dir:
 *        usage.journal  frames: a tg_agg_frame_t header (magic, type,
 *                       payload length, CRC-32 of the payload) and the
 *                       payload.  REC and WREC frames carry one usage
 *                       record; a BATCH frame closes the batch made of
 *                       every record since the previous BATCH frame.
 *        usage.state    32 bytes, rewritten in place: spool id, acked
 *                       offset, acked sequence, next sequence.
 *
 *      Why this order keeps every record exactly once:
 *      - admin copies records out of the ring without consuming them,
 *        appends them here with write(2), and only then hands their ring
 *        slots back (admin/agg.c).  A kill -9 before the write leaves them
 *        in the ring; after the write and before the release, the next
 *        admin finds them in the ring again, and skips those whose ring
 *        position is not past the newest one the journal holds (recovery
 *        below);
 *      - worker spool records are appended one by one before the worker's
 *        file is unlinked; the ids of those in the journal are kept so a
 *        file delivered again is not counted twice;
 *      - a batch is closed by a BATCH frame and fsync(2), once a second;
 *        its boundaries never change after that, so its id (spool id and
 *        sequence number) always names the same records, and PostgreSQL
 *        applies an id once (usage_batches);
 *      - the acknowledged offset moves only after PostgreSQL committed a
 *        batch; the state file needs no fsync, since losing its update
 *        only replays a batch PostgreSQL ignores.
 *      A torn tail (a write cut by a crash or a full disk) fails its CRC
 *      and is cut off at open, so later frames follow whole ones.
 *
 *      The journal starts over when every closed batch has been applied
 *      and it has grown past TG_AGG_SPOOL_ROTATE bytes: the open records
 *      (after the last mark) are copied into usage.journal.new, the state
 *      goes to offset 0, and the new file is renamed over the old; a crash
 *      at any point replays batches PostgreSQL ignores.
 */
#include "admin/agg_spool.h"
#include "core/core.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define TG_AGG_SPOOL_ROTATE (64ull << 20)
#define TG_AGG_SPOOL_CARRY  (256u << 20) /* open bytes a rotation copies */
#define TG_AGG_STATE_MAGIC  0x54534754u  /* "TGST" */
#define TG_AGG_READ_CHUNK   (1u << 20)

/* CRC-32 (IEEE 802.3) of <n> bytes at <p>: zlib's, which is several
 * times faster than shm/spool.c's small-table one on these frames. */
static uint32_t
tg_agg_crc32(const void *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}


typedef struct {
    uint32_t magic;
    uint32_t zero;
    uint64_t spool_id;
    uint64_t acked_off;
    uint64_t acked_seq;
    uint64_t next_seq;
} tg_agg_state_t;


static void
tg_agg_state_write(tg_agg_spool_t *s)
{
    tg_agg_state_t st = {TG_AGG_STATE_MAGIC, 0,
                         s->spool_id,        s->acked_off,
                         s->acked_seq,       s->next_seq};

    if (pwrite(s->state_fd, &st, sizeof(st), 0) != (ssize_t)sizeof(st)) {
        tg_log(TG_LOG_ERR, errno, "pwrite(usage.state) failed");
    }
}


/* See agg_spool.h. */
size_t
tg_agg_spool_frame(void *out, uint16_t type, const void *payload, uint16_t len)
{
    tg_agg_frame_t h = {TG_AGG_SPOOL_MAGIC, type, len,
                        tg_agg_crc32(payload, len), 0};

    memcpy(out, &h, sizeof(h));
    memcpy((char *)out + sizeof(h), payload, len);
    return sizeof(h) + len;
}


/* Remember <id> in the open-addressing set; false when it was there. */
static bool
tg_agg_wset_add(tg_agg_spool_t *s, uint64_t id)
{
    size_t i, mask;

    if (id == 0) {
        id = UINT64_MAX; /* 0 marks an empty slot */
    }
    if ((s->nwseen + 1) * 2 > s->capwseen) {
        size_t cap = s->capwseen ? s->capwseen * 2 : 1024, j;
        uint64_t *old = s->wseen, *n = calloc(cap, sizeof(*n));

        if (n == NULL) {
            return true; /* out of memory: count it, as before */
        }
        s->wseen = n;
        s->capwseen = cap;
        s->nwseen = 0;
        for (j = 0; old != NULL && j < cap / 2; j++) {
            if (old[j] != 0) {
                tg_agg_wset_add(s, old[j]);
            }
        }
        free(old);
    }
    mask = s->capwseen - 1;
    for (i = (size_t)(id * 0x9e3779b97f4a7c15ull) & mask;; i = (i + 1) & mask) {
        if (s->wseen[i] == id) {
            return false;
        }
        if (s->wseen[i] == 0) {
            s->wseen[i] = id;
            s->nwseen++;
            return true;
        }
    }
}


/* See agg_spool.h. */
bool
tg_agg_spool_wseen(tg_agg_spool_t *s, uint64_t request_id)
{
    return !tg_agg_wset_add(s, request_id);
}


/* See agg_spool.h. */
void
tg_agg_spool_wforget(tg_agg_spool_t *s)
{
    free(s->wseen);
    s->wseen = NULL;
    s->nwseen = s->capwseen = 0;
}


/*
 * Walk the frames from <off>: <fn>(<ctx>, header, payload, offset of the
 * frame's end) for each whole, valid frame; stops at the end, at the
 * first bad frame, or when <fn> returns false.  Returns the offset where
 * it stopped, or UINT64_MAX on a read error (logged).
 */
static uint64_t
tg_agg_spool_walk(tg_agg_spool_t *s, uint64_t off,
                  bool (*fn)(void *ctx, const tg_agg_frame_t *h,
                             const void *payload, uint64_t end),
                  void *ctx)
{
    char *buf = malloc(TG_AGG_READ_CHUNK);
    size_t have = 0, pos = 0;
    uint64_t base = off;
    ssize_t n;

    if (buf == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(journal buffer) failed");
        return UINT64_MAX;
    }
    for (;;) {
        tg_agg_frame_t h;

        if (have - pos < sizeof(h) || (memcpy(&h, buf + pos, sizeof(h)),
                                       have - pos < sizeof(h) + h.len)) {
            memmove(buf, buf + pos, have - pos);
            base += pos;
            have -= pos;
            pos = 0;
            n = pread(s->fd, buf + have, TG_AGG_READ_CHUNK - have,
                      (off_t)(base + have));
            if (n < 0) {
                tg_log(TG_LOG_ERR, errno, "pread(\"%s\") failed", s->path);
                free(buf);
                return UINT64_MAX;
            }
            if (n == 0) {
                break;
            }
            have += (size_t)n;
            continue;
        }
        if (h.magic != TG_AGG_SPOOL_MAGIC || h.zero != 0 ||
            tg_agg_crc32(buf + pos + sizeof(h), h.len) != h.crc) {
            break;
        }
        if (!fn(ctx, &h, buf + pos + sizeof(h),
                base + pos + sizeof(h) + h.len)) {
            pos += sizeof(h) + h.len;
            break;
        }
        pos += sizeof(h) + h.len;
    }
    free(buf);
    return base + pos;
}


static bool
tg_agg_spool_recover_fn(void *ctx, const tg_agg_frame_t *h, const void *p,
                        uint64_t end)
{
    tg_agg_spool_t *s = ctx;
    tg_agg_frame_rec_t fr;
    tg_agg_frame_batch_t fb;

    if ((h->type == TG_AGG_FR_REC || h->type == TG_AGG_FR_WREC) &&
        h->len == sizeof(fr)) {
        memcpy(&fr, p, sizeof(fr));
        s->open_recs++;
        if (h->type == TG_AGG_FR_REC) {
            s->last_ring_id = fr.ring_id;
            s->last_pos = fr.pos;
            s->have_last = true;
        } else {
            tg_agg_wset_add(s, fr.rec.request_id);
        }
    } else if (h->type == TG_AGG_FR_BATCH && h->len == sizeof(fb)) {
        memcpy(&fb, p, sizeof(fb));
        s->open_recs = 0;
        s->closed_off = end;
        if (fb.seq >= s->next_seq) {
            s->next_seq = fb.seq + 1;
        }
    }
    return true;
}


static int
tg_agg_spool_state_open(tg_agg_spool_t *s, const char *dir, char *err,
                        size_t errlen)
{
    char path[4200];
    tg_agg_state_t st;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/usage.state", dir);
    s->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->state_fd == -1) {
        snprintf(err, errlen, "open(\"%s\") failed (%d: %s)", path, errno,
                 strerror(errno));
        return TG_ERROR;
    }
    n = pread(s->state_fd, &st, sizeof(st), 0);
    if (n == (ssize_t)sizeof(st) && st.magic == TG_AGG_STATE_MAGIC &&
        st.spool_id != 0) {
        s->spool_id = st.spool_id;
        s->acked_off = st.acked_off;
        s->acked_seq = st.acked_seq;
        s->next_seq = TG_MAX(st.next_seq, 1);
        return TG_OK;
    }
    if (n != 0) {
        tg_log(TG_LOG_WARN, 0,
               "%s is damaged; starting a new usage spool (batches already "
               "in the journal are sent again under new ids)",
               path);
    }
    if (getrandom(&s->spool_id, sizeof(s->spool_id), 0) !=
            (ssize_t)sizeof(s->spool_id) ||
        s->spool_id == 0) {
        snprintf(err, errlen, "getrandom() failed");
        return TG_ERROR;
    }
    s->acked_off = 0;
    s->acked_seq = 0;
    s->next_seq = 1;
    tg_agg_state_write(s);
    return TG_OK;
}


/* See agg_spool.h. */
int
tg_agg_spool_open(tg_agg_spool_t *s, const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    uint64_t end;

    memset(s, 0, sizeof(*s));
    s->fd = s->state_fd = -1;
    s->rotate_bytes = TG_AGG_SPOOL_ROTATE;
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir(\"%s\") failed (%d: %s)", dir, errno,
                 strerror(errno));
        return TG_ERROR;
    }
    if (tg_agg_spool_state_open(s, dir, err, errlen) != TG_OK) {
        return TG_ERROR;
    }
    snprintf(s->path, sizeof(s->path), "%s/usage.journal", dir);
    s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd == -1 || fstat(s->fd, &sb) == -1) {
        snprintf(err, errlen, "open(\"%s\") failed (%d: %s)", s->path, errno,
                 strerror(errno));
        return TG_ERROR;
    }
    if (s->acked_off > (uint64_t)sb.st_size) {
        /* Emptied after the state moved to 0 ... or damaged: start over
         * from the beginning; PostgreSQL ignores what it has. */
        s->acked_off = 0;
    }
    s->closed_off = s->acked_off;
    end = tg_agg_spool_walk(s, s->acked_off, tg_agg_spool_recover_fn, s);
    if (end == UINT64_MAX) {
        snprintf(err, errlen, "reading %s failed", s->path);
        return TG_ERROR;
    }
    if (end < (uint64_t)sb.st_size) {
        tg_log(TG_LOG_WARN, 0,
               "%s: cut %llu bytes of a torn or damaged tail at offset %llu",
               s->path, (unsigned long long)((uint64_t)sb.st_size - end),
               (unsigned long long)end);
        if (ftruncate(s->fd, (off_t)end) == -1) {
            snprintf(err, errlen, "ftruncate(\"%s\") failed (%d: %s)", s->path,
                     errno, strerror(errno));
            return TG_ERROR;
        }
    }
    s->size = end;
    tg_agg_state_write(s);
    return TG_OK;
}


/* See agg_spool.h. */
void
tg_agg_spool_close(tg_agg_spool_t *s)
{
    if (s->fd != -1) {
        close(s->fd);
    }
    if (s->state_fd != -1) {
        close(s->state_fd);
    }
    s->fd = s->state_fd = -1;
    tg_agg_spool_wforget(s);
}


/* See agg_spool.h. */
int
tg_agg_spool_append(tg_agg_spool_t *s, const void *frames, size_t n,
                    uint32_t nrecs)
{
    const char *p = frames;
    size_t done = 0;
    ssize_t w;

    while (done < n) {
        w = write(s->fd, p + done, n - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            tg_log(TG_LOG_ERR, errno,
                   "write(\"%s\") failed; usage records stay in the ring",
                   s->path);
            /* Cut what went out, so the file stays whole frames. */
            if (done > 0 && ftruncate(s->fd, (off_t)s->size) == -1) {
                tg_log(TG_LOG_ERR, errno, "ftruncate(\"%s\") failed", s->path);
            }
            return TG_ERROR;
        }
        done += (size_t)w;
    }
    s->size += n;
    s->open_recs += nrecs;
    return TG_OK;
}


/* See agg_spool.h. */
int
tg_agg_spool_close_batch(tg_agg_spool_t *s, uint64_t now_ms)
{
    tg_agg_frame_batch_t b = {s->next_seq, s->open_recs, now_ms};
    char frame[sizeof(tg_agg_frame_t) + sizeof(b)];
    size_t n;

    if (s->open_recs == 0) {
        return TG_OK;
    }
    n = tg_agg_spool_frame(frame, TG_AGG_FR_BATCH, &b, sizeof(b));
    if (tg_agg_spool_append(s, frame, n, 0) != TG_OK) {
        return TG_ERROR;
    }
    if (fdatasync(s->fd) == -1) {
        tg_log(TG_LOG_ERR, errno, "fdatasync(\"%s\") failed", s->path);
    }
    s->open_recs = 0;
    s->closed_off = s->size;
    s->next_seq++;
    return TG_OK;
}


typedef struct {
    void (*cb)(void *ctx, const tg_usage_rec_t *rec);
    void *ctx;
    bool done;
    uint64_t seq, end;
} tg_agg_read_t;


static bool
tg_agg_spool_read_fn(void *ctx, const tg_agg_frame_t *h, const void *p,
                     uint64_t end)
{
    tg_agg_read_t *rd = ctx;
    tg_agg_frame_rec_t fr;
    tg_agg_frame_batch_t fb;

    if ((h->type == TG_AGG_FR_REC || h->type == TG_AGG_FR_WREC) &&
        h->len == sizeof(fr)) {
        memcpy(&fr, p, sizeof(fr));
        rd->cb(rd->ctx, &fr.rec);
        return true;
    }
    if (h->type == TG_AGG_FR_BATCH && h->len == sizeof(fb)) {
        memcpy(&fb, p, sizeof(fb));
        rd->seq = fb.seq;
        rd->end = end;
        rd->done = true;
        return false;
    }
    return true;
}


/* See agg_spool.h. */
int
tg_agg_spool_read_batch(tg_agg_spool_t *s,
                        void (*cb)(void *ctx, const tg_usage_rec_t *rec),
                        void *ctx, uint64_t *seq, uint64_t *end)
{
    tg_agg_read_t rd = {cb, ctx, false, 0, 0};

    if (s->closed_off <= s->acked_off) {
        return TG_DECLINED;
    }
    if (tg_agg_spool_walk(s, s->acked_off, tg_agg_spool_read_fn, &rd) ==
        UINT64_MAX) {
        return TG_ERROR;
    }
    if (!rd.done) {
        return TG_DECLINED;
    }
    *seq = rd.seq;
    *end = rd.end;
    return TG_OK;
}


/*
 * Start a new journal holding only the open records (those after the last
 * batch mark, at most TG_AGG_SPOOL_CARRY bytes), once every closed batch
 * is applied.  The state goes to offset 0 first: a crash before the
 * rename replays the old file from its start (PostgreSQL ignores the
 * batches it has), a crash after it finds the new file.  TG_OK or
 * TG_ERROR (logged; the old journal stays in use).
 */
static int
tg_agg_spool_rotate(tg_agg_spool_t *s)
{
    size_t n = (size_t)(s->size - s->closed_off);
    char path[4300], *buf = NULL;
    int fd = -1, rc = TG_ERROR;

    if (n > TG_AGG_SPOOL_CARRY || (n > 0 && (buf = malloc(n)) == NULL) ||
        (n > 0 && pread(s->fd, buf, n, (off_t)s->closed_off) != (ssize_t)n)) {
        goto done;
    }
    snprintf(path, sizeof(path), "%s.new", s->path);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1 || (n > 0 && write(fd, buf, n) != (ssize_t)n) ||
        fdatasync(fd) == -1) {
        tg_log(TG_LOG_ERR, errno, "writing \"%s\" failed", path);
        goto done;
    }
    s->acked_off = 0;
    tg_agg_state_write(s);
    if (rename(path, s->path) == -1) {
        tg_log(TG_LOG_ERR, errno, "rename(\"%s\") failed", path);
        goto done;
    }
    close(s->fd);
    s->fd = fd;
    fd = -1;
    s->size = n;
    s->closed_off = 0;
    rc = TG_OK;
done:
    if (fd != -1) {
        close(fd);
    }
    free(buf);
    return rc;
}


/* See agg_spool.h. */
void
tg_agg_spool_ack(tg_agg_spool_t *s, uint64_t seq, uint64_t end)
{
    s->acked_off = end;
    s->acked_seq = seq;
    if (end == s->closed_off && s->size > s->rotate_bytes &&
        tg_agg_spool_rotate(s) != TG_OK) {
        s->acked_off = end;
    }
    tg_agg_state_write(s);
}
