/*
 * admin/store.c
 *      PostgreSQL as the system of record: admin's start-up state machine,
 *      migrations, the tg_api schema, the config-file import, LISTEN/NOTIFY
 *      and publishing users and keys from the database into shared memory.
 *
 * NOTES
 *      Admin only, all on admin's event loop through admin/pg.c: nothing
 *      here blocks, so a slow or absent database never delays the usage
 *      drain, health checks or routes that need no database.
 *
 *      Config-only mode (no "database" and no $TOLLGATE_DATABASE): the file
 *      is published as before and "published" is set at once.
 *
 *      With a database, on every (re)connection, in order:
 *        1. pg_advisory_lock, so two hosts starting at once migrate and
 *           import one after the other;
 *        2. schema_migrations is created if absent and its highest version
 *           read; a database newer than this binary is refused (state
 *           "refused", not retried: an older binary must not write to a
 *           schema it does not know) and the workers keep the last state;
 *        3. each pending migration runs in its own transaction (BEGIN, the
 *           file and its schema_migrations row, COMMIT);
 *        4. schema tg_api is dropped and re-created from sql/functions,
 *           then sql/views are applied, in one transaction;
 *        5. the config file is imported (admin/store_import.c);
 *        6. the lock is released and users and keys are loaded and
 *           published (a full publish: whatever a crashed admin left
 *           half-written is repaired, whatever the database no longer
 *           holds is removed); "published" is set.
 *      A failure in steps 1-5 on a live connection releases the lock and
 *      starts over after a back-off (0.5 s doubling to 30 s); a lost
 *      connection starts over when admin/pg.c has reconnected.
 *
 *      On a first start (shared "published" still 0) the file is
 *      published before connecting, so workers that start on the timeout
 *      (database_start_timeout) serve what the file declares; after a
 *      restart or a reload the tables already hold the last published
 *      state, which stays until the database answers.  A database's keys
 *      never vanish from shared memory because it is unreachable.
 *
 *      Changes: the schema's triggers send NOTIFY tollgate
 *      '<table>:<I|U|D>:<id>' when a change commits; the connection
 *      LISTENs before it reports READY (admin/pg.c).  A key notification
 *      reloads that key and republishes it (or deletes it); a user
 *      notification reloads the user and its keys (group, status).
 *      Notifications that arrive during a full load are kept (up to
 *      TG_STORE_PENDING_MAX, beyond which one more full load runs) and
 *      handled after it.  Notifications lost while disconnected are
 *      covered by the full load every reconnection does, and a full load
 *      every admin.reconcile_interval is the safety net for anything else.
 *
 *      Shared-memory indexes: a user's slot is users.user_id - 1, so it is
 *      the same in every admin and on every host, and the usage records
 *      workers write (slot + 1) carry the user_id.  A user_id beyond
 *      shm.max_users cannot be published: the user's keys are published
 *      disabled and an error is logged.  A key's group is its own
 *      group_name, else its user's, looked up among the published
 *      groups (admin/publish_ep.c: its slot in shared memory); a
 *      group that is not published routes through "default".  Endpoints
 *      and groups are loaded and published whole (admin/store_ep.c) at
 *      every full load, before users and keys, and on every endpoints
 *      notification; a group notification runs a full load, since keys
 *      follow their group's slot.
 *
 *      Quotas: shared memory holds one token quota per user; a user with
 *      both tokens_day and tokens_month is held to the daily one.
 *      XXX: per-key token quotas and cost quotas are stored, not enforced.
 */
#include "admin/store.h"
#include "admin/publish.h"
#include "admin/publish_ep.h"
#include "core/core.h"
#include "core/log.h"
#include "shm/keys.h"
#include "shm/users.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_STORE_RETRY_MIN   500
#define TG_STORE_RETRY_MAX   30000
#define TG_STORE_PENDING_MAX 256
#define TG_STORE_BATCH_MAX   256 /* statements of one transaction */
#define TG_STORE_LOCK_SQL    "SELECT pg_advisory_lock(7345120801)"
#define TG_STORE_UNLOCK_SQL  "SELECT pg_advisory_unlock_all()"

static const char tg_store_ledger_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now());"
    "COMMENT ON TABLE schema_migrations IS"
    " 'migrations applied, one row each, written by the admin process';"
    "COMMENT ON COLUMN schema_migrations.version IS"
    " 'NNNN of sql/migrations/NNNN_name.sql';"
    "COMMENT ON COLUMN schema_migrations.name IS"
    " 'file name without .sql';"
    "COMMENT ON COLUMN schema_migrations.applied_at IS"
    " 'when the migration committed';";

static const char tg_store_api_sql[] =
    "DROP SCHEMA IF EXISTS tg_api CASCADE; CREATE SCHEMA tg_api;"
    "COMMENT ON SCHEMA tg_api IS"
    " 'functions the admin API calls; re-created at every admin start'";

#define TG_STORE_KEY_COLS                                                      \
    "SELECT k.key_id, encode(k.digest, 'hex'), k.user_id, k.status,"           \
    " COALESCE(extract(epoch FROM k.expires_at)::bigint, 0),"                  \
    " array_to_string(k.models, E'\\x1f'), k.rpm, k.burst, k.tpm,"             \
    " k.concurrency, COALESCE(k.group_name, u.group_name, 'default'),"         \
    " k.prefix FROM api_keys k LEFT JOIN users u USING (user_id)"

static const char tg_store_keys_sql[] = TG_STORE_KEY_COLS " ORDER BY k.key_id";
static const char tg_store_key_sql[] =
    TG_STORE_KEY_COLS " WHERE k.key_id = $1::bigint";
static const char tg_store_user_keys_sql[] =
    TG_STORE_KEY_COLS " WHERE k.user_id = $1::bigint";

#define TG_STORE_USER_COLS                                                     \
    "SELECT user_id, status, tokens_day, tokens_month FROM users"

static const char tg_store_users_sql[] = TG_STORE_USER_COLS " ORDER BY user_id";
static const char tg_store_user_sql[] =
    TG_STORE_USER_COLS " WHERE user_id = $1::bigint";

typedef struct tg_store_s tg_store_t;
typedef void (*tg_store_step_pt)(tg_store_t *s, bool ok);

/* key_id -> digest of the key published under it (to delete it). */
typedef struct {
    uint32_t key_id; /* 0 = empty */
    bool live;       /* false: deleted (a tombstone) */
    uint8_t digest[32];
} tg_store_kd_t;

/* A statement about one row, waiting for its answer. */
typedef struct {
    tg_store_t *s;
    uint32_t id;
} tg_store_one_t;

struct tg_store_s {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_pg_t *pg;
    tg_store_state_t state;
    tg_crypto_keyring_t kr;
    bool have_kr;
    int next_migration;       /* index in tg_sql_migrations */
    bool loading;             /* a full load is in flight */
    bool again;               /* run one more full load after this one */
    tg_publish_user_t *users; /* the users of the load in flight */
    size_t nusers;
    char pending[TG_STORE_PENDING_MAX][48];
    size_t npending;
    tg_store_kd_t *map;
    size_t mapcap, mapused;
    /* the transaction in flight (tg_store_batch) */
    int batch_pending;
    bool batch_queuing;
    bool batch_failed;
    char batch_err[256];
    tg_store_step_pt batch_done;
    tg_ev_timer_t start_timer;
    tg_ev_timer_t retry_timer;
    tg_ev_timer_t reconcile_timer;
    uint32_t retry_ms;
    bool fail_logged; /* a start-up failure was logged since the last
                         success */
};

static tg_store_t *tg_store;

static void tg_store_begin(tg_store_t *s);
static void tg_store_load(tg_store_t *s);
static void tg_store_notify_apply(tg_store_t *s, const char *payload);


static void
tg_store_set_state(tg_store_t *s, tg_store_state_t state)
{
    s->state = state;
}


/* Let master start the workers, whatever the database is doing. */
static void
tg_store_published(tg_store_t *s)
{
    atomic_store(&tg_shm_hdr(s->shm)->published, 1);
    tg_ev_timer_del(s->loop, &s->start_timer);
}


/*
 * A start-up step failed.  On a live connection, release the lock and
 * start over after a back-off; a lost connection starts over by itself.
 */
static void
tg_store_fail(tg_store_t *s, const char *what, const char *why)
{
    s->loading = false;
    if (tg_pg_state(s->pg) != TG_PG_READY) {
        return;
    }
    /* Once per series of failures in the error log; the retries go to
     * the debug log until a start-up succeeds. */
    tg_log(s->fail_logged ? TG_LOG_DEBUG : TG_LOG_ERR, 0,
           "database start-up: %s failed: %s; retrying in %u ms", what, why,
           s->retry_ms);
    s->fail_logged = true;
    (void)tg_pg_query(s->pg, TG_STORE_UNLOCK_SQL, 0, NULL, NULL, NULL);
    tg_store_set_state(s, TG_STORE_DOWN);
    tg_ev_timer_add(s->loop, &s->retry_timer, s->retry_ms);
    s->retry_ms = TG_MIN(s->retry_ms * 2, TG_STORE_RETRY_MAX);
}


/* ------------------------------------------------------- transactions */

static void
tg_store_batch_finish(tg_store_t *s)
{
    tg_store_step_pt done = s->batch_done;

    s->batch_done = NULL;
    if (done != NULL) {
        done(s, !s->batch_failed);
    }
}


static void
tg_store_batch_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;

    if (!tg_pg_res_ok(res) && !s->batch_failed) {
        s->batch_failed = true;
        snprintf(s->batch_err, sizeof(s->batch_err), "%s (%s)%s%s",
                 tg_pg_res_message(res), tg_pg_res_sqlstate(res),
                 tg_pg_res_detail(res)[0] ? ": " : "", tg_pg_res_detail(res));
    }
    if (--s->batch_pending == 0 && !s->batch_queuing) {
        tg_store_batch_finish(s);
    }
}


/*
 * Run the <n> scripts <sql> as one transaction (BEGIN ... COMMIT); then
 * <done>(s, ok).  An error makes the rest fail and COMMIT roll back.
 */
static void
tg_store_batch(tg_store_t *s, const char *const *sql, size_t n,
               tg_store_step_pt done)
{
    size_t i;

    s->batch_done = done;
    s->batch_failed = false;
    s->batch_err[0] = '\0';
    s->batch_pending = 0;
    s->batch_queuing = true;
    for (i = 0; i < n + 2; i++) {
        const char *q = i == 0 ? "BEGIN" : i == n + 1 ? "COMMIT" : sql[i - 1];

        s->batch_pending++;
        if (tg_pg_script(s->pg, q, tg_store_batch_cb, s) != TG_OK) {
            s->batch_pending--;
            if (!s->batch_failed) {
                s->batch_failed = true;
                snprintf(s->batch_err, sizeof(s->batch_err),
                         "the database went away");
            }
            break;
        }
    }
    s->batch_queuing = false;
    if (s->batch_pending == 0) {
        tg_store_batch_finish(s);
    }
}


/* ------------------------------------------------------------ start-up */

static void
tg_store_unlocked_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;

    (void)res;
    tg_store_load(s);
}


static void
tg_store_imported(void *ctx, bool ok, const char *err)
{
    tg_store_t *s = ctx;

    if (!ok) {
        tg_store_fail(s, "config import", err);
        return;
    }
    if (tg_pg_query(s->pg, TG_STORE_UNLOCK_SQL, 0, NULL, tg_store_unlocked_cb,
                    s) != TG_OK) {
        tg_store_fail(s, "unlock", "the database went away");
    }
}


static void
tg_store_api_done(tg_store_t *s, bool ok)
{
    if (!ok) {
        tg_store_fail(s, "re-creating schema tg_api", s->batch_err);
        return;
    }
    if (tg_store_import(s->pg, s->conf, s->have_kr ? &s->kr : NULL,
                        tg_store_imported, s) != TG_OK) {
        tg_store_fail(s, "config import", "cannot start it");
    }
}


/* Step 4: tg_api from sql/functions, then sql/views. */
static void
tg_store_api(tg_store_t *s)
{
    const char *sql[TG_STORE_BATCH_MAX];
    size_t n = 0, i;

    sql[n++] = tg_store_api_sql;
    for (i = 0; tg_sql_functions[i].name != NULL && n < TG_NELEMS(sql); i++) {
        sql[n++] = tg_sql_functions[i].sql;
    }
    for (i = 0; tg_sql_views[i].name != NULL && n < TG_NELEMS(sql); i++) {
        sql[n++] = tg_sql_views[i].sql;
    }
    tg_store_batch(s, sql, n, tg_store_api_done);
}


static void tg_store_migrate(tg_store_t *s);


static void
tg_store_migrated(tg_store_t *s, bool ok)
{
    const tg_sql_file_t *m = &tg_sql_migrations[s->next_migration];

    if (!ok) {
        char what[128];

        snprintf(what, sizeof(what), "migration %s", m->name);
        tg_store_fail(s, what, s->batch_err);
        return;
    }
    tg_log(TG_LOG_NOTICE, 0, "database: applied migration %s", m->name);
    s->next_migration++;
    tg_store_migrate(s);
}


/* Step 3: the next pending migration, or step 4. */
static void
tg_store_migrate(tg_store_t *s)
{
    const tg_sql_file_t *m = &tg_sql_migrations[s->next_migration];

    if (m->name == NULL) {
        tg_store_api(s);
        return;
    }
    tg_store_batch(s, &m->sql, 1, tg_store_migrated);
}


static void
tg_store_version_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;
    int have, mine = tg_store_schema_version(), i;

    if (!tg_pg_res_ok(res) || tg_pg_res_rows(res) != 1) {
        tg_store_fail(s, "reading schema_migrations", tg_pg_res_message(res));
        return;
    }
    have = atoi(tg_pg_res_value(res, 0, 0));
    if (have > mine) {
        tg_log(TG_LOG_ERR, 0,
               "database schema version %d is newer than this tollgate "
               "supports (schema version %d, tollgate %s); refusing to use "
               "it; upgrade tollgate",
               have, mine, TG_VERSION);
        (void)tg_pg_query(s->pg, TG_STORE_UNLOCK_SQL, 0, NULL, NULL, NULL);
        tg_store_set_state(s, TG_STORE_REFUSED);
        tg_store_published(s);
        return;
    }
    for (i = 0; tg_sql_migrations[i].name != NULL &&
                tg_sql_migrations[i].version <= have;
         i++) {
    }
    s->next_migration = i;
    tg_store_migrate(s);
}


static void
tg_store_ledger_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;

    if (!tg_pg_res_ok(res)) {
        tg_store_fail(s, "creating schema_migrations", tg_pg_res_message(res));
        return;
    }
    if (tg_pg_query(s->pg,
                    "SELECT COALESCE(max(version), 0) FROM schema_migrations",
                    0, NULL, tg_store_version_cb, s) != TG_OK) {
        tg_store_fail(s, "reading schema_migrations", "the database went away");
    }
}


static void
tg_store_lock_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;

    if (!tg_pg_res_ok(res)) {
        tg_store_fail(s, "pg_advisory_lock", tg_pg_res_message(res));
        return;
    }
    if (tg_pg_script(s->pg, tg_store_ledger_sql, tg_store_ledger_cb, s) !=
        TG_OK) {
        tg_store_fail(s, "creating schema_migrations",
                      "the database went away");
    }
}


/* Step 1 on a new connection (or after a failed start-up). */
static void
tg_store_begin(tg_store_t *s)
{
    if (s->state == TG_STORE_REFUSED) {
        return;
    }
    tg_store_set_state(s, TG_STORE_CONNECTING);
    s->loading = false;
    s->npending = 0;
    if (tg_pg_query(s->pg, TG_STORE_LOCK_SQL, 0, NULL, tg_store_lock_cb, s) !=
        TG_OK) {
        tg_store_fail(s, "pg_advisory_lock", "the database went away");
    }
}


static void
tg_store_retry_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_store_t *s = t->data;

    (void)loop;
    if (tg_pg_state(s->pg) == TG_PG_READY) {
        tg_store_begin(s);
    }
}


static void
tg_store_start_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_store_t *s = t->data;

    (void)loop;
    if (atomic_load(&tg_shm_hdr(s->shm)->published) == 0) {
        tg_log(TG_LOG_WARN, 0,
               "the database is not ready after %u ms "
               "(database_start_timeout); starting the workers on the "
               "configuration file's users and keys",
               s->conf->database_start_timeout_ms);
    }
    tg_store_published(s);
}


/* ---------------------------------------------------------- rows -> shm */

/* Users table slot of users.user_id <id>, or UINT32_MAX when none fits. */
static uint32_t
tg_store_user_idx(const tg_store_t *s, long long id)
{
    if (id < 1 || id > (long long)tg_shm_capacity(s->shm, TG_SHM_T_USERS)) {
        return UINT32_MAX;
    }
    return (uint32_t)(id - 1);
}


/* Row <i> of a users result (see TG_STORE_USER_COLS) into <u>. */
static bool
tg_store_user_row(const tg_store_t *s, const tg_pg_res_t *res, int i,
                  tg_publish_user_t *u)
{
    long long id = atoll(tg_pg_res_value(res, i, 0));

    memset(u, 0, sizeof(*u));
    u->idx = tg_store_user_idx(s, id);
    if (u->idx == UINT32_MAX) {
        tg_log(TG_LOG_ERR, 0,
               "user %lld does not fit shm.max_users (%u); its keys are "
               "published disabled; raise shm.max_users",
               id, tg_shm_capacity(s->shm, TG_SHM_T_USERS));
        return false;
    }
    u->user_id = (uint32_t)id;
    u->disabled = strcmp(tg_pg_res_value(res, i, 1), "active") != 0;
    if (!tg_pg_res_null(res, i, 2)) {
        u->period = TG_SHM_USER_PERIOD_DAY;
        u->quota_tokens = strtoull(tg_pg_res_value(res, i, 2), NULL, 10);
    } else if (!tg_pg_res_null(res, i, 3)) {
        u->period = TG_SHM_USER_PERIOD_MONTH;
        u->quota_tokens = strtoull(tg_pg_res_value(res, i, 3), NULL, 10);
    }
    if (u->quota_tokens == 0) {
        /* A quota of 0 tokens means nothing may be used; shared memory
         * says 0 = unlimited, so hold the user to one token instead. */
        u->quota_tokens = u->period != TG_SHM_USER_PERIOD_NONE ? 1 : 0;
    }
    return true;
}


static int
tg_store_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


/* Split the 0x1f-separated <list> into the allow-list of <k>. */
static bool
tg_store_models(const char *list, tg_publish_key_t *k)
{
    const char *p = list, *q;
    size_t len;

    k->nmodels = 0;
    while (*p != '\0') {
        q = strchr(p, 0x1f);
        len = q != NULL ? (size_t)(q - p) : strlen(p);
        if (k->nmodels == TG_NELEMS(k->models) || len >= sizeof(k->models[0])) {
            return false;
        }
        memcpy(k->models[k->nmodels], p, len);
        k->models[k->nmodels][len] = '\0';
        k->nmodels++;
        p += len + (q != NULL);
    }
    return true;
}


/* Row <i> of a keys result (see TG_STORE_KEY_COLS) into <k>.  False for a
 * malformed row (logged). */
static bool
tg_store_key_row(const tg_store_t *s, const tg_pg_res_t *res, int i,
                 tg_publish_key_t *k)
{
    const char *hex = tg_pg_res_value(res, i, 1);
    long long v;
    int j, hi, lo;

    memset(k, 0, sizeof(*k));
    k->key_id = (uint32_t)strtoul(tg_pg_res_value(res, i, 0), NULL, 10);
    for (j = 0; j < 32; j++) {
        hi = tg_store_hex(hex[2 * j]);
        lo = hi >= 0 ? tg_store_hex(hex[2 * j + 1]) : -1;
        if (lo < 0) {
            tg_log(TG_LOG_ERR, 0, "key %u: malformed digest; not published",
                   k->key_id);
            return false;
        }
        k->digest[j] = (uint8_t)(hi << 4 | lo);
    }
    k->user = TG_SHM_USER_NONE;
    k->disabled = strcmp(tg_pg_res_value(res, i, 3), "active") != 0;
    if (!tg_pg_res_null(res, i, 2)) {
        k->user = tg_store_user_idx(s, atoll(tg_pg_res_value(res, i, 2)));
        if (k->user == UINT32_MAX) {
            k->user = TG_SHM_USER_NONE;
            k->disabled = true;
        }
    }
    v = atoll(tg_pg_res_value(res, i, 4));
    k->expires_at = v > 0 ? (uint64_t)v : 0;
    if (!tg_store_models(tg_pg_res_value(res, i, 5), k)) {
        tg_log(TG_LOG_ERR, 0,
               "key %u: allow-list does not fit; published "
               "disabled",
               k->key_id);
        k->nmodels = 0;
        k->disabled = true;
    }
    k->rpm = (uint32_t)strtoul(tg_pg_res_value(res, i, 6), NULL, 10);
    k->burst = (uint32_t)strtoul(tg_pg_res_value(res, i, 7), NULL, 10);
    if (k->burst == 0) {
        k->burst = TG_MAX(1u, k->rpm / 10);
    }
    k->tpm = (uint32_t)strtoul(tg_pg_res_value(res, i, 8), NULL, 10);
    k->concurrency = (uint32_t)strtoul(tg_pg_res_value(res, i, 9), NULL, 10);
    k->group = tg_publish_group_index(tg_pg_res_value(res, i, 10));
    snprintf(k->prefix, sizeof(k->prefix), "%s", tg_pg_res_value(res, i, 11));
    return true;
}


/* ------------------------------------------------------ key_id -> digest */

static tg_store_kd_t *
tg_store_map_find(tg_store_t *s, uint32_t key_id, bool insert)
{
    size_t i, mask;

    if (s->mapcap == 0 || (insert && (s->mapused + 1) * 2 > s->mapcap)) {
        size_t cap = s->mapcap ? s->mapcap * 2 : 1024, j;
        tg_store_kd_t *old = s->map, *m = calloc(cap, sizeof(*m));

        if (m == NULL) {
            return NULL;
        }
        s->map = m;
        s->mapcap = cap;
        s->mapused = 0;
        for (j = 0; old != NULL && j < cap / 2; j++) {
            if (old[j].key_id != 0 && old[j].live) {
                *tg_store_map_find(s, old[j].key_id, true) = old[j];
            }
        }
        free(old);
    }
    mask = s->mapcap - 1;
    for (i = (key_id * 2654435761u) & mask;; i = (i + 1) & mask) {
        if (s->map[i].key_id == key_id) {
            return &s->map[i];
        }
        if (s->map[i].key_id == 0) {
            if (!insert) {
                return NULL;
            }
            s->map[i].key_id = key_id;
            s->mapused++;
            return &s->map[i];
        }
    }
}


/* Publish <k>; a key whose digest changed (rotated) loses the old one. */
static void
tg_store_key_publish(tg_store_t *s, const tg_publish_key_t *k)
{
    tg_store_kd_t *e = tg_store_map_find(s, k->key_id, true);

    if (e != NULL && e->live && memcmp(e->digest, k->digest, 32) != 0) {
        tg_publish_key_delete(s->shm, e->digest);
    }
    tg_publish_key(s->shm, k);
    if (e != NULL) {
        memcpy(e->digest, k->digest, 32);
        e->live = true;
    }
}


static void
tg_store_key_unpublish(tg_store_t *s, uint32_t key_id)
{
    tg_store_kd_t *e = tg_store_map_find(s, key_id, false);

    if (e != NULL && e->live) {
        tg_publish_key_delete(s->shm, e->digest);
        e->live = false;
    }
}


/* ------------------------------------------------------------ full load */

static void
tg_store_keys_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;
    tg_publish_key_t *keys;
    size_t n = 0, i;
    int rows, r;

    if (!tg_pg_res_ok(res)) {
        tg_store_fail(s, "loading keys", tg_pg_res_message(res));
        return;
    }
    rows = tg_pg_res_rows(res);
    keys = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*keys));
    if (keys == NULL) {
        tg_store_fail(s, "loading keys", "out of memory");
        return;
    }
    for (r = 0; r < rows; r++) {
        n += tg_store_key_row(s, res, r, &keys[n]);
    }
    tg_publish_users(s->shm, s->users, s->nusers);
    tg_publish_keys(s->shm, keys, n, true);
    free(s->map);
    s->map = NULL;
    s->mapcap = s->mapused = 0;
    for (i = 0; i < n; i++) {
        tg_store_kd_t *e = tg_store_map_find(s, keys[i].key_id, true);

        if (e != NULL) {
            memcpy(e->digest, keys[i].digest, 32);
            e->live = true;
        }
    }
    explicit_bzero(keys, (size_t)(rows > 0 ? rows : 1) * sizeof(*keys));
    free(keys);
    s->loading = false;
    if (s->state != TG_STORE_READY) {
        tg_log(TG_LOG_NOTICE, 0,
               "database ready: published %zu users and %zu keys", s->nusers,
               n);
    }
    tg_store_set_state(s, TG_STORE_READY);
    s->retry_ms = TG_STORE_RETRY_MIN;
    s->fail_logged = false;
    tg_store_published(s);
    tg_ev_timer_add(s->loop, &s->reconcile_timer,
                    s->conf->reconcile_interval_ms);
    for (i = 0; i < s->npending; i++) {
        tg_store_notify_apply(s, s->pending[i]);
    }
    s->npending = 0;
    if (s->again) {
        s->again = false;
        tg_store_load(s);
    }
}


static void
tg_store_users_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_t *s = ctx;
    int rows, r;

    if (!tg_pg_res_ok(res)) {
        tg_store_fail(s, "loading users", tg_pg_res_message(res));
        return;
    }
    rows = tg_pg_res_rows(res);
    free(s->users);
    s->nusers = 0;
    s->users = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*s->users));
    if (s->users == NULL) {
        tg_store_fail(s, "loading users", "out of memory");
        return;
    }
    for (r = 0; r < rows; r++) {
        s->nusers += tg_store_user_row(s, res, r, &s->users[s->nusers]);
    }
    if (tg_pg_query(s->pg, tg_store_keys_sql, 0, NULL, tg_store_keys_cb, s) !=
        TG_OK) {
        tg_store_fail(s, "loading keys", "the database went away");
    }
}


static void
tg_store_eps_loaded(void *ctx, bool ok, const char *err)
{
    tg_store_t *s = ctx;

    if (!ok) {
        tg_store_fail(s, "loading endpoints", err);
        return;
    }
    if (tg_pg_query(s->pg, tg_store_users_sql, 0, NULL, tg_store_users_cb, s) !=
        TG_OK) {
        tg_store_fail(s, "loading users", "the database went away");
    }
}


/* Load every group, endpoint, user and key and publish them (a full
 * publish).  Groups come first: a key's group is its slot. */
static void
tg_store_load(tg_store_t *s)
{
    if (s->loading) {
        s->again = true;
        return;
    }
    s->loading = true;
    if (tg_store_ep_load(s->pg, s->conf, s->have_kr ? &s->kr : NULL, s->shm,
                         tg_store_eps_loaded, s) != TG_OK) {
        tg_store_fail(s, "loading endpoints", "the database went away");
    }
}


static void
tg_store_eps_changed(void *ctx, bool ok, const char *err)
{
    (void)ctx;
    if (!ok) {
        tg_log(TG_LOG_ERR, 0,
               "reloading endpoints failed: %s; the next reconcile retries",
               err);
    }
}


static void
tg_store_reconcile_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_store_t *s = t->data;

    (void)loop;
    if (s->state == TG_STORE_READY && !s->loading) {
        tg_log(TG_LOG_DEBUG, 0, "reconciling shared memory with the database");
        tg_store_load(s);
    }
}


/* -------------------------------------------------------- notifications */

static void
tg_store_one_key_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_one_t *one = ctx;
    tg_store_t *s = one->s;
    tg_publish_key_t k;
    int r;

    if (tg_pg_res_ok(res)) {
        if (tg_pg_res_rows(res) == 0 && one->id != 0) {
            tg_store_key_unpublish(s, one->id);
        }
        for (r = 0; r < tg_pg_res_rows(res); r++) {
            if (tg_store_key_row(s, res, r, &k)) {
                tg_store_key_publish(s, &k);
            }
        }
        explicit_bzero(&k, sizeof(k));
    }
    free(one);
}


static void
tg_store_one_user_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_one_t *one = ctx;
    tg_store_t *s = one->s;
    tg_publish_user_t u;
    uint32_t idx = tg_store_user_idx(s, one->id);

    if (tg_pg_res_ok(res) && tg_pg_res_rows(res) == 1 &&
        tg_store_user_row(s, res, 0, &u)) {
        tg_publish_user(s->shm, &u);
    } else if (tg_pg_res_ok(res) && tg_pg_res_rows(res) == 0 &&
               idx != UINT32_MAX) {
        tg_publish_user_delete(s->shm, idx);
    }
    free(one);
}


/* Query <sql> about row <id>, answered by <cb> with a tg_store_one_t. */
static void
tg_store_one(tg_store_t *s, const char *sql, uint32_t id, uint32_t miss_id,
             tg_pg_done_cb cb)
{
    tg_store_one_t *one = malloc(sizeof(*one));
    char param[16];
    const char *p = param;

    if (one == NULL) {
        s->again = true;
        return;
    }
    one->s = s;
    one->id = miss_id;
    snprintf(param, sizeof(param), "%u", id);
    if (tg_pg_query(s->pg, sql, 1, &p, cb, one) != TG_OK) {
        free(one);
    }
}


/* Act on one "<table>:<I|U|D>:<id>" notification. */
static void
tg_store_notify_apply(tg_store_t *s, const char *payload)
{
    char table[32], op;
    unsigned long id;
    uint32_t idx;
    int n = 0;

    if (sscanf(payload, "%31[a-z_]:%c:%lu%n", table, &op, &id, &n) != 3 ||
        payload[n] != '\0' || id == 0 || id > UINT32_MAX) {
        tg_log(TG_LOG_WARN, 0, "ignoring a malformed database notification");
        return;
    }
    if (strcmp(table, "api_keys") == 0) {
        if (op == 'D') {
            tg_store_key_unpublish(s, (uint32_t)id);
        } else {
            tg_store_one(s, tg_store_key_sql, (uint32_t)id, (uint32_t)id,
                         tg_store_one_key_cb);
        }
    } else if (strcmp(table, "users") == 0) {
        idx = tg_store_user_idx(s, (long long)id);
        if (op == 'D') {
            /* Its keys went with it, each with its own notification. */
            if (idx != UINT32_MAX) {
                tg_publish_user_delete(s->shm, idx);
            }
            return;
        }
        tg_store_one(s, tg_store_user_sql, (uint32_t)id, (uint32_t)id,
                     tg_store_one_user_cb);
        /* Its keys follow its group and its slot. */
        tg_store_one(s, tg_store_user_keys_sql, (uint32_t)id, 0,
                     tg_store_one_key_cb);
    } else if (strcmp(table, "endpoints") == 0) {
        /* Endpoints and groups are published whole: a few hundred rows
         * at most, and a rename-free slot assignment needs them all. */
        if (tg_store_ep_load(s->pg, s->conf, s->have_kr ? &s->kr : NULL, s->shm,
                             tg_store_eps_changed, s) != TG_OK) {
            s->again = true;
        }
    } else if (strcmp(table, "endpoint_groups") == 0) {
        /* A group that appears or goes changes the group slot of the keys
         * that name it: everything is published again. */
        tg_store_load(s);
    } else {
        tg_log(TG_LOG_DEBUG, 0, "database change %s", payload);
    }
}


static void
tg_store_notify_cb(void *ctx, const char *channel, const char *payload)
{
    tg_store_t *s = ctx;
    size_t i, len = strlen(payload);

    if (strcmp(channel, "tollgate") != 0) {
        return;
    }
    if (s->state == TG_STORE_READY && !s->loading) {
        tg_store_notify_apply(s, payload);
        return;
    }
    if (s->state == TG_STORE_REFUSED) {
        return;
    }
    /* A load is in flight (or the start-up is): keep it for after. */
    for (i = 0; i < s->npending; i++) {
        if (strcmp(s->pending[i], payload) == 0) {
            return;
        }
    }
    if (s->npending == TG_STORE_PENDING_MAX || len >= sizeof(s->pending[0])) {
        s->again = true;
        return;
    }
    memcpy(s->pending[s->npending++], payload, len + 1);
}


static void
tg_store_pg_state_cb(void *ctx, tg_pg_state_t state)
{
    tg_store_t *s = ctx;

    if (s->state == TG_STORE_REFUSED) {
        return;
    }
    if (state == TG_PG_READY) {
        tg_ev_timer_del(s->loop, &s->retry_timer);
        tg_store_begin(s);
    } else if (state == TG_PG_DOWN) {
        s->loading = false;
        s->again = false;
        tg_ev_timer_del(s->loop, &s->retry_timer);
        tg_ev_timer_del(s->loop, &s->reconcile_timer);
        if (s->state == TG_STORE_READY) {
            tg_log(TG_LOG_ERR, 0,
                   "database down: the workers keep the last published "
                   "users and keys");
        }
        tg_store_set_state(s, TG_STORE_DOWN);
    }
}


/* ----------------------------------------------------------------- API */

/* See store.h. */
int
tg_store_schema_version(void)
{
    int v = 0, i;

    for (i = 0; tg_sql_migrations[i].name != NULL; i++) {
        v = tg_sql_migrations[i].version;
    }
    return v;
}


/* Load the sealing keys; without them credentials are not stored. */
static void
tg_store_keyring(tg_store_t *s)
{
    const char *old[TG_CONF_OLD_SECRET_KEYS];
    bool created = false;
    tg_err_t err;
    uint32_t i;

    for (i = 0; i < s->conf->nold_secret_keys; i++) {
        old[i] = s->conf->old_secret_keys[i];
    }
    if (tg_crypto_keyring_load(&s->kr, s->conf->secret_key, old,
                               s->conf->nold_secret_keys, &created,
                               &err) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "secret key: %s; endpoint credentials from the file are not "
               "stored in the database",
               err.text);
        return;
    }
    s->have_kr = true;
    if (created) {
        tg_log(TG_LOG_NOTICE, 0, "created secret key file %s",
               s->conf->secret_key);
    }
}


/* See store.h. */
int
tg_store_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_store_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(store) failed");
        return TG_ERROR;
    }
    s->loop = loop;
    s->conf = conf;
    s->shm = shm;
    s->retry_ms = TG_STORE_RETRY_MIN;
    s->start_timer =
        (tg_ev_timer_t){.handler = tg_store_start_handler, .data = s};
    s->retry_timer =
        (tg_ev_timer_t){.handler = tg_store_retry_handler, .data = s};
    s->reconcile_timer =
        (tg_ev_timer_t){.handler = tg_store_reconcile_handler, .data = s};
    tg_store = s;
    if (conf->database_source == TG_CONF_DB_NONE) {
        tg_store_set_state(s, TG_STORE_NONE);
        tg_log(TG_LOG_WARN, 0,
               "no database configured (\"database\" or "
               "$TOLLGATE_DATABASE): users and keys come from the "
               "configuration file only");
        tg_publish_all(conf, shm);
        tg_store_published(s);
        return TG_OK;
    }
    tg_store_set_state(s, TG_STORE_CONNECTING);
    if (atomic_load(&tg_shm_hdr(shm)->published) == 0) {
        tg_publish_all(conf, shm);
        tg_ev_timer_add(loop, &s->start_timer, conf->database_start_timeout_ms);
    }
    tg_store_keyring(s);
    s->pg = tg_pg_create(loop, conf->database);
    if (s->pg == NULL || tg_pg_listen(s->pg, "tollgate") != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "creating the database connection failed");
        tg_store_published(s);
        return TG_ERROR;
    }
    tg_pg_on_state(s->pg, tg_store_pg_state_cb, s);
    tg_pg_on_notify(s->pg, tg_store_notify_cb, s);
    tg_log(TG_LOG_INFO, 0, "connecting to the database (%s)",
           conf->database_source == TG_CONF_DB_ENV ? "$TOLLGATE_DATABASE"
                                                   : "database");
    return tg_pg_start(s->pg);
}


/* See store.h. */
void
tg_store_stop(void)
{
    tg_store_t *s = tg_store;

    if (s == NULL) {
        return;
    }
    tg_ev_timer_del(s->loop, &s->start_timer);
    tg_ev_timer_del(s->loop, &s->retry_timer);
    tg_ev_timer_del(s->loop, &s->reconcile_timer);
    tg_pg_destroy(s->pg);
    tg_crypto_keyring_wipe(&s->kr);
    free(s->users);
    free(s->map);
    free(s);
    tg_store = NULL;
}


/* See store.h. */
tg_store_state_t
tg_store_state(void)
{
    return tg_store != NULL ? tg_store->state : TG_STORE_NONE;
}


/* See store.h. */
const char *
tg_store_state_name(void)
{
    static const char *const names[] = {"none", "connecting", "ready", "down",
                                        "refused"};

    return names[tg_store_state()];
}


/* See store.h. */
tg_pg_t *
tg_store_pg(void)
{
    return tg_store != NULL ? tg_store->pg : NULL;
}
