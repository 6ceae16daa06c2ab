/*
 * shm/spool.c
 *      Overflow spool files for usage records: append (workers) and ingest
 *      (admin).
 *
 * NOTES
 *      Runs in workers (tg_shm_spool_append, on the rare path where the
 *      ring is full) and admin (tg_shm_spool_ingest).  Each worker writes
 *      only its own file, so the only lock contention on a file is with
 *      admin, and admin takes a file's lock only after renaming it away
 *      from the path writers open; neither side ever waits for the other
 *      (see the protocol in shm/spool.h).  Library-like: nothing is
 *      logged, errors come back as TG_SHM_* codes with errno.
 */
#include "shm/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_SHM_SPOOL_PREFIX    "usage-"
#define TG_SHM_SPOOL_SUFFIX    ".spool"
#define TG_SHM_SPOOL_INGESTING ".ingesting"
#define TG_SHM_SPOOL_READBUF   (64 * 1024)
#define TG_SHM_SPOOL_RENAMES   1000 /* .<n> suffixes tried per rename */

/* Results of tg_shm_spool_lock(). */
enum { TG_SHM_SPOOL_LOCKED = 0, TG_SHM_SPOOL_STALE = 1, TG_SHM_SPOOL_ERR = 2 };

typedef struct {
    int (*cb)(void *ctx, const tg_usage_rec_t *rec); /* the caller's */
    void *ctx;                                       /* its argument */
    uint32_t nrecs;                                  /* records accepted */
    uint32_t nbad;                                   /* damaged frames */
    int err;                                         /* first errno kept */
    bool busy;                                       /* a file was kept */
    bool stop;                                       /* cb refused */
} tg_shm_spool_ingest_t;


/*
 * CRC-32 of <n> bytes at <p>: the reflected IEEE polynomial 0xEDB88320,
 * four bits at a time from a 16-entry table, so there is no table to
 * build at run time.  Any process.
 */
uint32_t
tg_shm_spool_crc32(const void *p, size_t n)
{
    static const uint32_t t[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    const unsigned char *b = p;
    uint32_t crc = 0xffffffffu;
    size_t i;

    for (i = 0; i < n; i++) {
        crc ^= b[i];
        crc = (crc >> 4) ^ t[crc & 0x0f];
        crc = (crc >> 4) ^ t[crc & 0x0f];
    }
    return crc ^ 0xffffffffu;
}


/*
 * Lock the spool file <fd> that was opened as <path> and check that it is
 * still the live file: linked, and named by <path>.  With <renamed_ok>, a
 * file that admin renamed to .ingesting but has not read yet is accepted
 * too (see tg_shm_spool_append).  Fills <*st> with the file's state under
 * the lock.  Returns TG_SHM_SPOOL_LOCKED, TG_SHM_SPOOL_STALE (admin took
 * the file away: reopen), or TG_SHM_SPOOL_ERR with errno.
 */
static int
tg_shm_spool_lock(int fd, const char *path, bool renamed_ok, struct stat *st)
{
    struct stat pst;

    while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno == EINTR) {
            continue;
        }
        if (errno != EWOULDBLOCK) {
            return TG_SHM_SPOOL_ERR;
        }

        /*
         * Admin locks a file only after renaming it, so if the path still
         * names our file the holder is another appender with our pid (a
         * test, or a pid reused across restarts): its frame takes
         * microseconds, so wait for it.  Otherwise admin may be reading
         * the file, and a worker never waits for admin.
         */
        if (fstat(fd, st) == -1) {
            return TG_SHM_SPOOL_ERR;
        }
        if (stat(path, &pst) == -1 || pst.st_dev != st->st_dev ||
            pst.st_ino != st->st_ino) {
            return TG_SHM_SPOOL_STALE;
        }
        while (flock(fd, LOCK_EX) == -1) {
            if (errno != EINTR) {
                return TG_SHM_SPOOL_ERR;
            }
        }
        break;
    }

    /*
     * Admin may have renamed or unlinked the file between our open and our
     * lock.  A frame written into an unlinked inode is lost, so that is
     * always refused.  A renamed file that is still linked has not been
     * read to its end and removed yet: admin reads only under the lock and
     * unlinks before unlocking, so a frame we write there now is read
     * later, and it is safe, merely untidy; we prefer the live file.
     */
    if (fstat(fd, st) == -1) {
        return TG_SHM_SPOOL_ERR;
    }
    if (st->st_nlink == 0) {
        return TG_SHM_SPOOL_STALE;
    }
    if (renamed_ok) {
        return TG_SHM_SPOOL_LOCKED;
    }
    if (stat(path, &pst) == -1) {
        return errno == ENOENT ? TG_SHM_SPOOL_STALE : TG_SHM_SPOOL_ERR;
    }
    if (pst.st_dev != st->st_dev || pst.st_ino != st->st_ino) {
        return TG_SHM_SPOOL_STALE;
    }
    return TG_SHM_SPOOL_LOCKED;
}


/*
 * Write the frame <f> of TG_SHM_SPOOL_FRAME_SIZE bytes to the locked file
 * <fd> whose size before the write is <size>.  Returns 0, or an errno
 * value after cutting off what part of the frame was written.
 */
static int
tg_shm_spool_write(int fd, const unsigned char *f, off_t size)
{
    size_t off = 0;
    ssize_t n;
    int err, rc;

    /*
     * One write(2) normally takes the whole frame.  A short one means the
     * disk, the quota or RLIMIT_FSIZE ran out mid-frame; writing the rest
     * either completes the frame (we hold the lock, so nobody appended in
     * between) or fails with the reason.
     */
    while (off < TG_SHM_SPOOL_FRAME_SIZE) {
        n = write(fd, f + off, TG_SHM_SPOOL_FRAME_SIZE - off);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            goto failed;
        }
        off += (size_t)n;
    }
    return 0;

failed:
    err = errno;
    if (off > 0) {
        /*
         * Cut the file back to whole frames.  Should this fail too, ingest
         * skips the partial frame as damaged.
         */
        rc = ftruncate(fd, size);
        (void)rc;
    }
    return err;
}


/*
 * Append <rec> to <dir>/usage-<pid>.spool.  Workers.  Returns TG_SHM_OK,
 * TG_SHM_FULL with errno, or TG_SHM_INVAL.
 */
int
tg_shm_spool_append(const char *dir, int32_t pid, const tg_usage_rec_t *rec)
{
    unsigned char frame[TG_SHM_SPOOL_FRAME_SIZE];
    tg_shm_spool_frame_t h;
    char path[4096];
    struct stat st;
    int fd, i, n, err = EAGAIN;

    if (pid <= 0) {
        errno = EINVAL;
        return TG_SHM_INVAL;
    }
    n = snprintf(path, sizeof(path),
                 "%s/" TG_SHM_SPOOL_PREFIX "%d" TG_SHM_SPOOL_SUFFIX, dir,
                 (int)pid);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return TG_SHM_FULL;
    }
    memset(&h, 0, sizeof(h));
    h.magic = TG_SHM_SPOOL_MAGIC;
    h.version = TG_SHM_SPOOL_VERSION;
    h.rec_size = sizeof(tg_usage_rec_t);
    h.crc = tg_shm_spool_crc32(rec, sizeof(*rec));
    memcpy(frame, &h, sizeof(h));
    memcpy(frame + sizeof(h), rec, sizeof(*rec));

    for (i = 0; i < TG_SHM_SPOOL_RETRIES; i++) {
        int rc;

        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd == -1) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        /*
         * Each retry means admin renamed the file in the few microseconds
         * between our open and our lock.  Only an admin ingesting in a
         * tight loop does that repeatedly; after a few rounds, settle for
         * a renamed file that is still linked rather than fail.
         */
        rc = tg_shm_spool_lock(fd, path, i >= TG_SHM_SPOOL_PREFER, &st);
        if (rc == TG_SHM_SPOOL_LOCKED) {
            err = tg_shm_spool_write(fd, frame, st.st_size);
        } else if (rc == TG_SHM_SPOOL_ERR) {
            err = errno;
        } else {
            err = EAGAIN;
        }
        /* close() drops the lock. */
        close(fd);
        if (rc != TG_SHM_SPOOL_STALE) {
            break;
        }
    }
    errno = err;
    return err == 0 ? TG_SHM_OK : TG_SHM_FULL;
}


/* True when <name> is "usage-<something><suffix>". */
static bool
tg_shm_spool_match(const char *name, const char *suffix)
{
    size_t n = strlen(name), p = strlen(TG_SHM_SPOOL_PREFIX);
    size_t s = strlen(suffix);

    return n > p + s && memcmp(name, TG_SHM_SPOOL_PREFIX, p) == 0 &&
           memcmp(name + n - s, suffix, s) == 0;
}


/* Remember the first failure of an ingest: keep <err> and mark it busy. */
static void
tg_shm_spool_keep(tg_shm_spool_ingest_t *in, int err)
{
    if (!in->busy) {
        in->err = err;
    }
    in->busy = true;
}


/*
 * Check the frame at <p> and copy its record to <rec>.  Returns true when
 * the header matches this binary's format and the CRC matches the record.
 */
static bool
tg_shm_spool_frame(const unsigned char *p, tg_usage_rec_t *rec)
{
    tg_shm_spool_frame_t h;

    memcpy(&h, p, sizeof(h));
    if (h.magic != TG_SHM_SPOOL_MAGIC || h.version != TG_SHM_SPOOL_VERSION ||
        h.rec_size != sizeof(tg_usage_rec_t) || h.reserved != 0) {
        return false;
    }
    memcpy(rec, p + sizeof(h), sizeof(*rec));
    return tg_shm_spool_crc32(rec, sizeof(*rec)) == h.crc;
}


/*
 * Read every frame of the locked file <fd> into <in>->cb.  A damaged
 * stretch (bad header or CRC, or a partial frame at the end) counts once
 * in nbad and is skipped a byte at a time until a valid frame starts, so
 * one torn frame does not hide the ones after it.  Returns 0, or -1 when
 * the callback refused a record or read() failed (recorded in <in>).
 */
static int
tg_shm_spool_read(int fd, unsigned char *buf, tg_shm_spool_ingest_t *in)
{
    size_t len = 0, off = 0;
    bool eof = false, inbad = false;
    tg_usage_rec_t rec;
    ssize_t n;

    for (;;) {
        if (len - off < TG_SHM_SPOOL_FRAME_SIZE && !eof) {
            memmove(buf, buf + off, len - off);
            len -= off;
            off = 0;
            n = read(fd, buf + len, TG_SHM_SPOOL_READBUF - len);
            if (n == -1) {
                if (errno == EINTR) {
                    continue;
                }
                tg_shm_spool_keep(in, errno);
                return -1;
            }
            eof = n == 0;
            len += (size_t)n;
            continue;
        }
        if (len - off < TG_SHM_SPOOL_FRAME_SIZE) {
            if (len > off && !inbad) {
                in->nbad++;
            }
            return 0;
        }
        if (!tg_shm_spool_frame(buf + off, &rec)) {
            if (!inbad) {
                in->nbad++;
                inbad = true;
            }
            off++;
            continue;
        }
        inbad = false;
        off += TG_SHM_SPOOL_FRAME_SIZE;
        if (in->cb(in->ctx, &rec) != 0) {
            tg_shm_spool_keep(in, errno);
            in->stop = true;
            return -1;
        }
        in->nrecs++;
    }
}


/*
 * Ingest the file <name> in directory <dfd>, already renamed away from
 * the writers' path, and unlink it under its lock when every frame was
 * read.  A file a writer holds locked is kept for the next call.
 */
static void
tg_shm_spool_ingest_file(int dfd, const char *name, unsigned char *buf,
                         tg_shm_spool_ingest_t *in)
{
    int fd;

    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        if (errno != ENOENT) {
            tg_shm_spool_keep(in, errno);
        }
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        /* EWOULDBLOCK: a writer is mid-frame; take the file next time. */
        tg_shm_spool_keep(in, errno);
        goto done;
    }
    if (tg_shm_spool_read(fd, buf, in) != 0) {
        goto done;
    }

    /*
     * Unlink before unlocking: a writer that opened this file before our
     * rename and is waiting for the lock must find it unlinked and move
     * to a fresh file, not append to one we have finished reading.
     */
    if (unlinkat(dfd, name, 0) == -1) {
        tg_shm_spool_keep(in, errno);
    }

done:
    close(fd);
}


/*
 * Rename the live spool file <name> to usage-<pid>.<n>.ingesting, the
 * first free <n>, and ingest it.
 */
static void
tg_shm_spool_take(int dfd, const char *name, unsigned char *buf,
                  tg_shm_spool_ingest_t *in)
{
    size_t stem = strlen(name) - strlen(TG_SHM_SPOOL_SUFFIX);
    char to[512];
    int i, n;

    for (i = 0; i < TG_SHM_SPOOL_RENAMES; i++) {
        n = snprintf(to, sizeof(to), "%.*s.%d" TG_SHM_SPOOL_INGESTING,
                     (int)stem, name, i);
        if (n < 0 || (size_t)n >= sizeof(to)) {
            tg_shm_spool_keep(in, ENAMETOOLONG);
            return;
        }

        /*
         * RENAME_NOREPLACE: a kept .ingesting file of the same pid must
         * not be overwritten, which plain rename() would do silently.
         */
        if (renameat2(dfd, name, dfd, to, RENAME_NOREPLACE) == 0) {
            tg_shm_spool_ingest_file(dfd, to, buf, in);
            return;
        }
        if (errno == ENOENT) {
            return;
        }
        if (errno != EEXIST) {
            tg_shm_spool_keep(in, errno);
            return;
        }
    }
    tg_shm_spool_keep(in, EEXIST);
}


/*
 * List the names in <d> that end in <suffix> into a malloc'ed array of
 * malloc'ed strings, stored in <*names> with the count in <*n>.  Listing
 * first keeps the renames we do from showing up in our own readdir.
 * Returns 0, or -1 with errno (what was listed so far is kept).
 */
static int
tg_shm_spool_list(DIR *d, char ***names, size_t *n, size_t *cap)
{
    struct dirent *de;

    errno = 0;
    while ((de = readdir(d)) != NULL) {
        bool spool = tg_shm_spool_match(de->d_name, TG_SHM_SPOOL_SUFFIX);
        bool ingesting = tg_shm_spool_match(de->d_name, TG_SHM_SPOOL_INGESTING);
        char *s;

        if (!spool && !ingesting) {
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 16;
            char **p = realloc(*names, ncap * sizeof(char *));

            if (p == NULL) {
                return -1;
            }
            *names = p;
            *cap = ncap;
        }
        s = strdup(de->d_name);
        if (s == NULL) {
            return -1;
        }
        (*names)[(*n)++] = s;
        errno = 0;
    }
    return errno == 0 ? 0 : -1;
}


/*
 * Ingest every spool file in <dir> through <cb>(<ctx>, rec).  Admin only;
 * never waits for a lock.  Returns TG_SHM_OK or TG_SHM_BUSY with errno;
 * counts in <*nrecs> and <*nbad>.
 */
int
tg_shm_spool_ingest(const char *dir,
                    int (*cb)(void *ctx, const tg_usage_rec_t *rec), void *ctx,
                    uint32_t *nrecs, uint32_t *nbad)
{
    tg_shm_spool_ingest_t in;
    unsigned char *buf = NULL;
    char **names = NULL;
    size_t i, n = 0, cap = 0;
    int pass;
    DIR *d;

    memset(&in, 0, sizeof(in));
    in.cb = cb;
    in.ctx = ctx;
    d = opendir(dir);
    if (d == NULL) {
        if (errno != ENOENT) {
            tg_shm_spool_keep(&in, errno);
        }
        goto done;
    }
    if (tg_shm_spool_list(d, &names, &n, &cap) != 0) {
        tg_shm_spool_keep(&in, errno);
    }
    if (n == 0) {
        goto done;
    }
    buf = malloc(TG_SHM_SPOOL_READBUF);
    if (buf == NULL) {
        tg_shm_spool_keep(&in, errno);
        goto done;
    }

    /*
     * Leftovers first: they are older than any live file, and a live
     * file renamed now must not be mistaken for one.
     */
    for (pass = 0; pass < 2 && !in.stop; pass++) {
        for (i = 0; i < n && !in.stop; i++) {
            bool ingesting =
                tg_shm_spool_match(names[i], TG_SHM_SPOOL_INGESTING);

            if (pass == 0 && ingesting) {
                tg_shm_spool_ingest_file(dirfd(d), names[i], buf, &in);
            } else if (pass == 1 && !ingesting) {
                tg_shm_spool_take(dirfd(d), names[i], buf, &in);
            }
        }
    }

done:
    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    free(buf);
    if (d != NULL) {
        closedir(d);
    }
    if (nrecs != NULL) {
        *nrecs = in.nrecs;
    }
    if (nbad != NULL) {
        *nbad = in.nbad;
    }
    errno = in.err;
    return in.busy ? TG_SHM_BUSY : TG_SHM_OK;
}
