/*
 * worker/account.c
 *      One usage record per request; lease release and token charges.
 *
 * NOTES
 *      Worker only.  See account.h.
 */
#include "worker/account.h"
#include "core/core.h"
#include "core/log.h"
#include "shm/spool.h"
#include "worker/auth.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>


static void
tg_account_record(tg_conn_t *c, tg_usage_rec_t *rec)
{
    uint64_t now_us = tg_time_mono_us();
    int i;

    memset(rec, 0, sizeof(*rec));
    rec->request_id = c->req_id;
    rec->time_ms = tg_time_wall_ms();
    rec->user =
        c->have_key && c->key.user != TG_SHM_USER_NONE ? c->key.user + 1 : 0;
    rec->key_id = c->have_key ? c->key.key_id : 0;
    rec->endpoint = c->u.endpoint >= 0 ? (uint16_t)c->u.endpoint : UINT16_MAX;
    rec->status = (uint16_t)c->status;
    rec->outcome = (uint8_t)c->outcome;
    rec->flags = (uint8_t)((c->stream_req ? TG_USAGE_F_STREAM : 0) |
                           (c->u.attempts > 1 ? TG_USAGE_F_RETRIED : 0) |
                           (c->api == TG_API_OPENAI ? TG_USAGE_F_OPENAI : 0) |
                           (c->usage_on && !tg_usage_known(&c->usage, c->status)
                                ? TG_USAGE_F_UNKNOWN
                                : 0));
    rec->attempts = (uint8_t)TG_MIN(c->u.attempts, 255);
    rec->pid = (int32_t)getpid();
    if (c->usage_on) {
        for (i = 0; i < TG_TOK_N; i++) {
            rec->tokens[i] = c->usage.tokens[i];
        }
    }
    rec->latency_us = now_us - c->req_start_us;
    rec->ttfb_us =
        c->u.first_byte_us ? c->u.first_byte_us - c->req_start_us : 0;
    rec->bytes_in = c->req_end;
    rec->bytes_out = c->resp_bytes;
    /* The model the upstream reports, else the one the client asked for. */
    if (c->usage_on && c->usage.model[0] != '\0') {
        memcpy(rec->model, c->usage.model,
               TG_MIN(strlen(c->usage.model), sizeof(rec->model) - 1));
    } else {
        memcpy(rec->model, c->model,
               TG_MIN(strlen(c->model), sizeof(rec->model) - 1));
    }
}


/* See account.h. */
void
tg_account_finish(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_usage_rec_t rec;

    if (!c->req_open) {
        return;
    }
    c->req_open = false;
    if (c->usage_on && c->usage.error_event && c->outcome == TG_USAGE_OK) {
        c->outcome = TG_USAGE_UPSTREAM_ERROR;
    }
    tg_auth_release(c);
    if (c->usage_on) {
        tg_auth_charge(c, tg_usage_total(&c->usage));
    } else {
        tg_auth_charge(c, 0);
    }
    tg_account_record(c, &rec);
    if (tg_shm_ring_publish(tg_shm_ring(w->shm), &rec) == TG_SHM_OK) {
        return;
    }
    /* The ring is full: admin is behind.  The record goes to this
     * worker's spool file, never to the floor. */
    if (tg_shm_spool_append(w->conf->spool_dir, rec.pid, &rec) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, errno,
               "usage record %016llx: ring full and spool append to \"%s\" "
               "failed",
               (unsigned long long)rec.request_id, w->conf->spool_dir);
        return;
    }
    if (w->spooled++ % 1000 == 0) {
        tg_log(TG_LOG_WARN, 0, "usage ring full; %llu records spooled to %s",
               (unsigned long long)w->spooled, w->conf->spool_dir);
    }
}
