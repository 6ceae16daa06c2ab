/*
 * admin/health.c
 *      Active health checks: libcurl multi on admin's event loop.
 *
 * NOTES
 *      Admin only; never blocks (curl resolves names on its own thread and
 *      every socket is non-blocking, driven by epoll through the same
 *      libcurl multi glue as worker/proxy.c, core/ev_curl).  A tick every
 * TG_HEALTH_TICK_MS starts the probes that are due, at most
 * TG_HEALTH_MAX_INFLIGHT at once; a probe that cannot start for lack of a slot
 * waits for the next tick.  Each endpoint has at most one probe in flight,
 * bounded by its health_timeout.  Connections are not reused between probes: a
 * probe every 30 s would find most idle connections closed anyway, and a fresh
 * connect tests what a new request would need.
 *
 *      The history of each endpoint lives here, in admin's memory; only
 *      the verdict goes to shared memory.  A new admin (reload, restart)
 *      starts with an empty history and keeps the shared state it finds.
 */
#include "admin/health.h"
#include "core/core.h"
#include "core/ev_curl.h"
#include "core/json.h"
#include "core/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TG_HEALTH_TICK_MS 250 /* how often due probes are started */

typedef struct {
    CURL *easy;                 /* probe in flight, NULL when none */
    struct curl_slist *headers; /* its request headers */
    uint64_t due;               /* loop ms of the next probe */
    uint64_t started_us;        /* when the probe in flight started */
    tg_health_hist_t hist;      /* recent results */
} tg_health_ep_t;

static struct {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_ev_curl_t *m;    /* libcurl multi on admin's loop */
    tg_ev_timer_t tick; /* starts due probes */
    tg_health_ep_t *eps;
    size_t neps;
    uint32_t inflight;
    int32_t pid;
} tg_health;

static void tg_health_done_cb(void *data, CURL *easy, CURLcode rc);


/* See health.h. */
void
tg_health_judge(tg_health_hist_t *h, const tg_health_probe_t *p,
                tg_health_verdict_t *v)
{
    bool failed, degraded = false, auth = false;
    uint32_t bad, mask = (1u << TG_HEALTH_WINDOW) - 1;
    int s = p->status;

    memset(v, 0, sizeof(*v));
    if (p->transport != 0 || s == 0) {
        failed = true;
        snprintf(v->reason, sizeof(v->reason), "health check: %s",
                 p->transport ? curl_easy_strerror((CURLcode)p->transport)
                              : "no response");
    } else if (s == 401 || s == 403) {
        failed = auth = true;
        snprintf(v->reason, sizeof(v->reason),
                 "health check: status %d, the credential is refused", s);
    } else if (s == 429 || s == 529) {
        failed = false;
        degraded = true;
        snprintf(v->reason, sizeof(v->reason), "health check: status %d", s);
    } else if (s >= 500) {
        failed = true;
        snprintf(v->reason, sizeof(v->reason), "health check: status %d", s);
    } else {
        failed = false;
        snprintf(v->reason, sizeof(v->reason), "health check: status %d", s);
    }
    h->hist = ((h->hist << 1) | (failed ? 1u : 0u)) & mask;
    if (h->nhist < TG_HEALTH_WINDOW) {
        h->nhist++;
    }
    h->fails = failed ? h->fails + 1 : 0;
    bad = (uint32_t)__builtin_popcount(h->hist & ((1u << h->nhist) - 1));
    v->ok_milli = (h->nhist - bad) * 1000 / h->nhist;
    if (auth || h->fails >= TG_HEALTH_FAILS) {
        v->state = TG_EP_HEALTH_UNHEALTHY;
        v->trip = true;
    } else if (failed || degraded || v->ok_milli < TG_HEALTH_DEGRADED_OK ||
               p->latency_us > (uint64_t)p->timeout_ms * 1000 / 2) {
        v->state = TG_EP_HEALTH_DEGRADED;
    } else {
        v->state = TG_EP_HEALTH_HEALTHY;
    }
    v->ok = !failed && !degraded;
    if (v->ok && p->latency_us > (uint64_t)p->timeout_ms * 1000 / 2) {
        snprintf(v->reason, sizeof(v->reason),
                 "health check: status %d, slow (%llu ms)", s,
                 (unsigned long long)(p->latency_us / 1000));
    } else if (v->ok && v->state == TG_EP_HEALTH_DEGRADED) {
        snprintf(v->reason, sizeof(v->reason),
                 "health check: status %d, %u of the last %u probes failed", s,
                 bad, h->nhist);
    }
}


/* Probe bodies are not read, only counted out of curl's way. */
static size_t
tg_health_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}


/* Start the probe of endpoint <i>.  TG_OK or TG_ERROR (logged). */
static int
tg_health_probe_start(size_t i)
{
    const tg_conf_endpoint_t *e = &tg_health.conf->endpoints[i];
    tg_health_ep_t *h = &tg_health.eps[i];
    struct curl_slist *list = NULL, *t;
    char url[1024], line[640];
    long verify = e->tls_verify ? 1L : 0L;
    uint32_t connect_ms;
    CURL *easy;
    int n;

    n = snprintf(url, sizeof(url), "%s%s", e->url, e->health_path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        tg_log(TG_LOG_ERR, 0, "health check URL of %s is too long", e->name);
        return TG_ERROR;
    }
    if (e->style == TG_STYLE_ANTHROPIC) {
        snprintf(line, sizeof(line), "x-api-key: %s", e->credential);
        list = curl_slist_append(list, line);
        t = list ? curl_slist_append(list, "anthropic-version: 2023-06-01")
                 : NULL;
    } else {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", e->credential);
        t = list = curl_slist_append(list, line);
    }
    easy = curl_easy_init();
    if (t == NULL || easy == NULL) {
        tg_log(TG_LOG_ERR, 0, "setting up the health check of %s failed",
               e->name);
        curl_slist_free_all(list);
        curl_easy_cleanup(easy);
        return TG_ERROR;
    }
    connect_ms = TG_MIN(e->connect_timeout_ms, e->health_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)(uintptr_t)i);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "tollgate-health/" TG_VERSION);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_health_write_cb);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)e->health_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(easy, CURLOPT_PROXY, e->proxy);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (tg_ev_curl_add(tg_health.m, easy) != TG_OK) {
        curl_slist_free_all(list);
        curl_easy_cleanup(easy);
        return TG_ERROR;
    }
    h->easy = easy;
    h->headers = list;
    h->started_us = tg_time_mono_us();
    tg_health.inflight++;
    return TG_OK;
}


/* Apply the result <rc> of endpoint <i>'s finished probe. */
static void
tg_health_probe_done(size_t i, CURLcode rc)
{
    const tg_conf_endpoint_t *e = &tg_health.conf->endpoints[i];
    tg_health_ep_t *h = &tg_health.eps[i];
    tg_shm_ep_t *ep =
        tg_shm_ep_get(tg_shm_table(tg_health.shm, TG_SHM_T_EPS), (uint32_t)i);
    tg_shm_ring_t *events = tg_shm_events(tg_health.shm);
    tg_health_probe_t p;
    tg_health_verdict_t v;
    uint64_t now = tg_time_wall_ms();
    long code = 0;

    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    p.status = (int)code;
    p.transport = (rc == CURLE_OK) ? 0 : (int)rc;
    p.latency_us = tg_time_mono_us() - h->started_us;
    p.timeout_ms = e->health_timeout_ms;
    tg_health_judge(&h->hist, &p, &v);
    tg_shm_ep_health_set(
        ep, v.state, v.ok_milli, p.latency_us, now, tg_health.pid,
        p.transport ? 1000u + (uint32_t)rc : (uint32_t)p.status, v.reason,
        events);
    if (v.trip) {
        if (tg_shm_ep_trip(
                ep, now, tg_health.conf->groups[e->group].cooldown_ms,
                tg_health.pid, TG_EV_SRC_HEALTH,
                p.transport ? 1000u + (uint32_t)rc : (uint32_t)p.status,
                v.reason, events)) {
            tg_log(TG_LOG_WARN, 0, "endpoint %s is unhealthy: %s", e->name,
                   v.reason);
        }
    } else if (v.ok) {
        tg_shm_ep_recover(ep, now, tg_health.pid, v.reason, events);
    }
    tg_ev_curl_remove(tg_health.m, h->easy);
    curl_easy_cleanup(h->easy);
    h->easy = NULL;
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    tg_health.inflight--;
}


/* A probe finished (core/ev_curl, outside curl's callbacks). */
static void
tg_health_done_cb(void *data, CURL *easy, CURLcode rc)
{
    void *priv = NULL;
    size_t i;

    (void)data;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv);
    i = (size_t)(uintptr_t)priv;
    if (i < tg_health.neps && tg_health.eps[i].easy == easy) {
        tg_health_probe_done(i, rc);
    }
}


/* Start the probes that are due, within the concurrency bound. */
static void
tg_health_tick_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    uint64_t now = tg_ev_now(loop);
    size_t i;

    for (i = 0; i < tg_health.neps; i++) {
        const tg_conf_endpoint_t *e = &tg_health.conf->endpoints[i];
        tg_health_ep_t *h = &tg_health.eps[i];

        if (tg_health.inflight >= TG_HEALTH_MAX_INFLIGHT) {
            break;
        }
        if (e->health_interval_ms == 0 || !e->enabled || h->easy != NULL ||
            now < h->due) {
            continue;
        }
        /* A probe that cannot start waits a whole interval, not a tick:
         * set-up failures are out of memory, which a retry storm helps
         * nobody with. */
        h->due = now + e->health_interval_ms;
        (void)tg_health_probe_start(i);
    }
    tg_ev_timer_add(loop, t, TG_HEALTH_TICK_MS);
}


/* See health.h. */
int
tg_health_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm)
{
    uint64_t now;
    size_t i;

    memset(&tg_health, 0, sizeof(tg_health));
    tg_health.loop = loop;
    tg_health.conf = conf;
    tg_health.shm = shm;
    tg_health.pid = (int32_t)getpid();
    tg_health.neps =
        TG_MIN(conf->nendpoints, (size_t)tg_shm_capacity(shm, TG_SHM_T_EPS));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_global_init() failed");
        return TG_ERROR;
    }
    tg_health.eps =
        calloc(tg_health.neps ? tg_health.neps : 1, sizeof(tg_health_ep_t));
    tg_health.m = tg_ev_curl_create(loop, tg_health_done_cb, NULL);
    if (tg_health.eps == NULL || tg_health.m == NULL) {
        tg_log(TG_LOG_ERR, 0, "setting up health checks failed");
        tg_health_stop();
        return TG_ERROR;
    }
    tg_health.tick.handler = tg_health_tick_handler;
    now = tg_ev_now(loop);
    for (i = 0; i < tg_health.neps; i++) {
        /* Spread the first probes over the first second, so a restart
         * does not fire them all in one burst. */
        tg_health.eps[i].due = now + 100 + (i * 131) % 1000;
    }
    tg_ev_timer_add(loop, &tg_health.tick, TG_HEALTH_TICK_MS);
    return TG_OK;
}


/* See health.h. */
void
tg_health_stop(void)
{
    size_t i;

    if (tg_health.loop == NULL) {
        return;
    }
    tg_ev_timer_del(tg_health.loop, &tg_health.tick);
    for (i = 0; tg_health.eps != NULL && i < tg_health.neps; i++) {
        tg_health_ep_t *h = &tg_health.eps[i];

        if (h->easy != NULL) {
            tg_ev_curl_remove(tg_health.m, h->easy);
            curl_easy_cleanup(h->easy);
            h->easy = NULL;
        }
        curl_slist_free_all(h->headers);
        h->headers = NULL;
    }
    tg_ev_curl_destroy(tg_health.m);
    tg_health.m = NULL;
    free(tg_health.eps);
    tg_health.eps = NULL;
    tg_health.loop = NULL;
    curl_global_cleanup();
}


static const char *
tg_health_breaker_name(uint32_t b)
{
    return b == TG_EP_BREAKER_OPEN   ? "open"
           : b == TG_EP_BREAKER_HALF ? "half_open"
                                     : "closed";
}


static const char *
tg_health_state_name(uint32_t h)
{
    static const char *const names[] = {"unknown", "healthy", "degraded",
                                        "unhealthy"};

    return h < TG_NELEMS(names) ? names[h] : "unknown";
}


/* See health.h. */
char *
tg_health_endpoints_json(const tg_conf_t *conf, tg_shm_t *shm, size_t *len)
{
    size_t n = 0, cap, i, neps;
    uint64_t now = tg_time_wall_ms();
    char *p, name[sizeof(conf->endpoints[0].name) * 6];
    int k;

    neps = TG_MIN(conf->nendpoints, (size_t)tg_shm_capacity(shm, TG_SHM_T_EPS));
    cap = 64 + neps * 1024;
    p = malloc(cap);
    if (p == NULL) {
        return NULL;
    }
    p[n++] = '[';
    for (i = 0; i < neps; i++) {
        tg_shm_ep_t *e =
            tg_shm_ep_get(tg_shm_table(shm, TG_SHM_T_EPS), (uint32_t)i);

        /* A slot with no URL holds no endpoint (never used, or gone). */
        if (conf->endpoints[i].url[0] == '\0') {
            continue;
        }
        tg_json_escape(name, sizeof(name), conf->endpoints[i].name,
                       strlen(conf->endpoints[i].name));
        k = snprintf(p + n, cap - n,
                     "%s{\"index\":%zu,\"name\":\"%s\",\"available\":%s,"
                     "\"breaker\":\"%s\",\"health\":\"%s\",\"inflight\":%llu,"
                     "\"requests\":%llu,\"failures\":%llu,\"consecutive\":%llu,"
                     "\"latency_ewma_us\":%llu,\"last_error\":%u,"
                     "\"last_error_ms\":%llu,\"open_until_ms\":%llu,"
                     "\"cooled_until_ms\":%llu,\"out_until_ms\":%llu,"
                     "\"probe_pid\":%d,\"health_ok_milli\":%u,"
                     "\"health_latency_us\":%llu,\"health_checked_ms\":%llu,"
                     "\"now_ms\":%llu}",
                     n > 1 ? "," : "", i, name,
                     tg_shm_ep_available(e, now) ? "true" : "false",
                     tg_health_breaker_name(atomic_load(&e->breaker)),
                     tg_health_state_name(atomic_load(&e->health)),
                     (unsigned long long)atomic_load(&e->inflight),
                     (unsigned long long)atomic_load(&e->requests),
                     (unsigned long long)atomic_load(&e->failures),
                     (unsigned long long)atomic_load(&e->consecutive),
                     (unsigned long long)atomic_load(&e->latency_ewma_us),
                     atomic_load(&e->last_error),
                     (unsigned long long)atomic_load(&e->last_error_ms),
                     (unsigned long long)atomic_load(&e->open_until_ms),
                     (unsigned long long)atomic_load(&e->cooled_until_ms),
                     (unsigned long long)atomic_load(&e->out_until_ms),
                     (int)atomic_load(&e->probe_pid),
                     atomic_load(&e->health_ok_milli),
                     (unsigned long long)atomic_load(&e->health_latency_us),
                     (unsigned long long)atomic_load(&e->health_checked_ms),
                     (unsigned long long)now);
        if (k < 0 || (size_t)k >= cap - n) {
            free(p);
            return NULL;
        }
        n += (size_t)k;
    }
    p[n++] = ']';
    *len = n;
    return p;
}


/* See health.h. */
int
tg_health_reenable(const tg_conf_t *conf, tg_shm_t *shm, tg_str_t name)
{
    size_t i, neps;
    unsigned from;

    neps = TG_MIN(conf->nendpoints, (size_t)tg_shm_capacity(shm, TG_SHM_T_EPS));
    for (i = 0; i < neps; i++) {
        if (conf->endpoints[i].url[0] == '\0' ||
            !tg_str_eq(name, (tg_str_t){conf->endpoints[i].name,
                                        strlen(conf->endpoints[i].name)})) {
            continue;
        }
        from = tg_shm_ep_reenable(
            tg_shm_ep_get(tg_shm_table(shm, TG_SHM_T_EPS), (uint32_t)i),
            tg_time_wall_ms(), (int32_t)getpid(),
            "re-enabled through the admin API", tg_shm_events(shm));
        tg_log(TG_LOG_NOTICE, 0, "endpoint %s re-enabled (was %s)",
               conf->endpoints[i].name, tg_shm_events_state_name(from));
        return TG_OK;
    }
    return TG_DECLINED;
}
