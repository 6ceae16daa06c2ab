/*
 * tools/mock-fault.c
 *      The mock upstream's state: its process-wide variables, the
 *      counters and the global fault shared by the workers, fault spec
 *      parsing, the ledger of answered requests, and the small helpers
 *      every part of the mock uses.
 *
 * NOTES
 *      See tools/mock-upstream.c for the process model and
 *      docs/mock-upstream.md for the fault syntax.
 */
#include "tools/mock.h"

tg_mock_conf_t tg_mock_conf = {
    NULL, 1, TG_MOCK_CHUNKS_DEF, 0, NULL, NULL, NULL, 0, false, 0};
tg_mock_shared_t *tg_mock_shm;
tg_ev_loop_t *tg_mock_loop;
int tg_mock_ledger_fd = -1;
int tg_mock_listen_fd = -1;
tg_ev_timer_t tg_mock_accept_timer;
tg_mock_conn_t *tg_mock_conns;
unsigned tg_mock_pid;
uint64_t tg_mock_seq;
tg_mock_fault_t tg_mock_gfault;  /* cached global fault */
uint32_t tg_mock_gfault_seq = 1; /* odd: never seen, re-read */
tg_http_req_t tg_mock_hreq;      /* scratch head */

const char *tg_mock_cnt_names[TG_MOCK_C_MAX] = {
    [TG_MOCK_C_REQUESTS] = "requests",
    [TG_MOCK_C_STREAMS] = "streams",
    [TG_MOCK_C_ABORTED] = "aborted",
    [TG_MOCK_C_ACCEPTED] = "accepted",
    [TG_MOCK_C_ACTIVE] = "active",
    [TG_MOCK_C_IN_TOK] = "input_tokens",
    [TG_MOCK_C_OUT_TOK] = "output_tokens",
    [TG_MOCK_C_CACHE_READ] = "cache_read_input_tokens",
    [TG_MOCK_C_CACHE_CREATE] = "cache_creation_input_tokens",
    [TG_MOCK_C_PATH + TG_MOCK_P_MESSAGES] = "/v1/messages",
    [TG_MOCK_C_PATH + TG_MOCK_P_COUNT_TOKENS] = "/v1/messages/count_tokens",
    [TG_MOCK_C_PATH + TG_MOCK_P_CHAT] = "/v1/chat/completions",
    [TG_MOCK_C_PATH + TG_MOCK_P_MODELS] = "/v1/models",
    [TG_MOCK_C_PATH + TG_MOCK_P_RESPONSES] = "/v1/responses",
    [TG_MOCK_C_PATH + TG_MOCK_P_OTHER] = "other",
    [TG_MOCK_C_FAULT + TG_MOCK_F_NONE] = "none",
    [TG_MOCK_C_FAULT + TG_MOCK_F_429] = "429",
    [TG_MOCK_C_FAULT + TG_MOCK_F_429_QUOTA] = "429-quota",
    [TG_MOCK_C_FAULT + TG_MOCK_F_500] = "500",
    [TG_MOCK_C_FAULT + TG_MOCK_F_529] = "529",
    [TG_MOCK_C_FAULT + TG_MOCK_F_STATUS] = "other-status",
    [TG_MOCK_C_FAULT + TG_MOCK_F_RESET_BEFORE] = "reset-before",
    [TG_MOCK_C_FAULT + TG_MOCK_F_RESET_MID] = "reset-mid",
    [TG_MOCK_C_FAULT + TG_MOCK_F_ERROR_MID] = "error-mid",
    [TG_MOCK_C_FAULT + TG_MOCK_F_SLOW] = "slow-first-byte",
    [TG_MOCK_C_FAULT + TG_MOCK_F_HANG] = "hang",
    [TG_MOCK_C_FAULT + TG_MOCK_F_CLOSE_REUSED] = "close-reused",
    [TG_MOCK_C_FAULT + TG_MOCK_F_GARBAGE] = "garbage",
    [TG_MOCK_C_FAULT + TG_MOCK_F_BOMB] = "gzip-bomb",
    [TG_MOCK_C_FAULT + TG_MOCK_F_HUGE_HEAD] = "huge-head",
    [TG_MOCK_C_FAULT + TG_MOCK_F_ENDLESS] = "endless",
    [TG_MOCK_C_STATUS + 0] = "2xx",
    [TG_MOCK_C_STATUS + 1] = "4xx",
    [TG_MOCK_C_STATUS + 2] = "5xx",
    [TG_MOCK_C_STATUS + 3] = "other",
};


/* Bump shared counter <idx> by <n>. */
void
tg_mock_cnt_add(int idx, uint64_t n)
{
    atomic_fetch_add_explicit(&tg_mock_shm->cnt[idx], n, memory_order_relaxed);
}


/* Whether <s> is exactly the NUL-terminated <lit>. */
bool
tg_mock_lit_eq(tg_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.data, lit, n) == 0;
}

/* Parse decimal digits in <s> up to <max>; false unless all are digits. */
bool
tg_mock_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 12) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = TG_MIN(v, max);
    return true;
}

/* ---------------------------------------------------------------- faults */

static int
tg_mock_fault_item(tg_mock_fault_t *f, const char *s, size_t len, char *err,
                   size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    size_t name_len = colon ? (size_t)(colon - s) : len;
    const char *arg = colon ? colon + 1 : NULL;
    size_t arg_len = colon ? len - name_len - 1 : 0;
    tg_str_t name = {s, name_len};
    uint64_t v;

    if (tg_mock_lit_eq(name, "reset-before") && arg == NULL) {
        f->reset_before = true;
    } else if (tg_mock_lit_eq(name, "reset-mid") && arg == NULL) {
        f->reset_mid = true;
    } else if (tg_mock_lit_eq(name, "error-mid") && arg == NULL) {
        f->error_mid = true;
    } else if (tg_mock_lit_eq(name, "hang") && arg == NULL) {
        f->hang = true;
    } else if (tg_mock_lit_eq(name, "close-reused") && arg == NULL) {
        f->close_reused = true;
    } else if (tg_mock_lit_eq(name, "garbage") && arg == NULL) {
        f->garbage = true;
    } else if (tg_mock_lit_eq(name, "gzip-bomb") && arg == NULL) {
        f->bomb = true;
    } else if (tg_mock_lit_eq(name, "huge-head") && arg == NULL) {
        f->huge_head = true;
    } else if (tg_mock_lit_eq(name, "endless") && arg == NULL) {
        f->endless = true;
    } else if (tg_mock_lit_eq(name, "slow-first-byte") && arg != NULL &&
               tg_mock_parse_uint(arg, arg_len, TG_MOCK_DELAY_MAX, &v)) {
        f->slow_ms = (uint32_t)v;
    } else if (tg_mock_lit_eq(name, "429-quota") && arg == NULL) {
        f->status = 429;
        f->quota = true;
        f->retry_after = -1;
    } else if (tg_mock_parse_uint(s, name_len, 999, &v) && v >= 400 &&
               v <= 599) {
        f->status = (int)v;
        f->quota = false;
        f->retry_after = (v == 429) ? 1 : -1;
        if (arg != NULL) {
            if (!tg_mock_parse_uint(arg, arg_len, 86400, &v)) {
                snprintf(err, errlen, "bad retry-after seconds in \"%.*s\"",
                         (int)len, s);
                return TG_ERROR;
            }
            f->retry_after = (int)v;
        }
    } else {
        snprintf(err, errlen, "unknown fault \"%.*s\"", (int)len, s);
        return TG_ERROR;
    }
    return TG_OK;
}

/*
 * Parse fault spec <s> of <len> bytes into <f>: a comma-separated list of
 * items (STATUS[:RETRY_AFTER], 429-quota, reset-before, reset-mid,
 * error-mid, slow-first-byte:MS, hang), optionally followed by "*N".  An
 * empty spec or "none" is no fault.  TG_OK, or TG_ERROR with <err> set.
 */
int
tg_mock_fault_parse(tg_mock_fault_t *f, const char *s, size_t len, char *err,
                    size_t errlen)
{
    const char *p, *end, *star;
    uint64_t v;

    memset(f, 0, sizeof(*f));
    f->retry_after = -1;
    f->times = -1;
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
                       s[len - 1] == '\n' || s[len - 1] == '\r')) {
        len--;
    }
    if (len == 0 || (len == 4 && memcmp(s, "none", 4) == 0)) {
        return TG_OK;
    }
    if (len >= sizeof(f->spec)) {
        snprintf(err, errlen, "fault spec longer than %zu bytes",
                 sizeof(f->spec) - 1);
        return TG_ERROR;
    }
    end = s + len;
    star = memchr(s, '*', len);
    if (star != NULL) {
        if (!tg_mock_parse_uint(star + 1, (size_t)(end - star - 1), 1u << 30,
                                &v)) {
            snprintf(err, errlen, "bad repeat count after '*'");
            return TG_ERROR;
        }
        f->times = (int64_t)v;
        end = star;
    }
    for (p = s; p < end;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);

        if (n == 0 || tg_mock_fault_item(f, p, n, err, errlen) != TG_OK) {
            if (n == 0) {
                snprintf(err, errlen, "empty item in fault spec");
            }
            return TG_ERROR;
        }
        p += n + (q ? 1 : 0);
    }
    memcpy(f->spec, s, len);
    f->spec[len] = '\0';
    return TG_OK;
}

/* Refresh the cached global fault when the shared one changed. */
void
tg_mock_fault_sync(void)
{
    char spec[TG_MOCK_SPEC_MAX], err[128];
    uint32_t s1, s2;
    int tries;

    for (tries = 0; tries < 10000; tries++) {
        s1 =
            atomic_load_explicit(&tg_mock_shm->fault_seq, memory_order_acquire);
        if (s1 == tg_mock_gfault_seq) {
            return;
        }
        if (s1 & 1) {
            continue;
        }
        memcpy(spec, tg_mock_shm->fault_spec, sizeof(spec));
        atomic_thread_fence(memory_order_acquire);
        s2 =
            atomic_load_explicit(&tg_mock_shm->fault_seq, memory_order_relaxed);
        if (s1 == s2) {
            spec[sizeof(spec) - 1] = '\0';
            if (tg_mock_fault_parse(&tg_mock_gfault, spec, strlen(spec), err,
                                    sizeof(err)) != TG_OK) {
                memset(&tg_mock_gfault, 0, sizeof(tg_mock_gfault));
            }
            tg_mock_gfault_seq = s1;
            return;
        }
    }
}

/* Publish <f> (already validated) as the global fault of all workers. */
void
tg_mock_fault_store(const tg_mock_fault_t *f)
{
    uint32_t seq;

    while (atomic_exchange_explicit(&tg_mock_shm->fault_lock, 1,
                                    memory_order_acquire)) {
        sched_yield();
    }
    seq = atomic_load_explicit(&tg_mock_shm->fault_seq, memory_order_relaxed);
    atomic_store_explicit(&tg_mock_shm->fault_seq, seq + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    memcpy(tg_mock_shm->fault_spec, f->spec, sizeof(f->spec));
    atomic_store_explicit(&tg_mock_shm->fault_left, f->times,
                          memory_order_relaxed);
    atomic_store_explicit(&tg_mock_shm->fault_seq, seq + 2,
                          memory_order_release);
    atomic_store_explicit(&tg_mock_shm->fault_lock, 0, memory_order_release);
}

/* Copy the global fault into <f> if it applies to this request (a "*N"
 * fault is consumed); false when there is none. */
bool
tg_mock_fault_take(tg_mock_fault_t *f)
{
    int64_t left;

    tg_mock_fault_sync();
    if (tg_mock_gfault.spec[0] == '\0') {
        return false;
    }
    if (tg_mock_gfault.times >= 0) {
        left = atomic_load_explicit(&tg_mock_shm->fault_left,
                                    memory_order_relaxed);
        do {
            if (left <= 0) {
                return false;
            }
        } while (!atomic_compare_exchange_weak(&tg_mock_shm->fault_left, &left,
                                               left - 1));
    }
    *f = tg_mock_gfault;
    return true;
}

void
tg_mock_fault_count(const tg_mock_fault_t *f)
{
    int k = TG_MOCK_C_FAULT;

    if (f->spec[0] == '\0') {
        tg_mock_cnt_add(k + TG_MOCK_F_NONE, 1);
        return;
    }
    if (f->status == 429) {
        tg_mock_cnt_add(k + (f->quota ? TG_MOCK_F_429_QUOTA : TG_MOCK_F_429),
                        1);
    } else if (f->status == 500) {
        tg_mock_cnt_add(k + TG_MOCK_F_500, 1);
    } else if (f->status == 529) {
        tg_mock_cnt_add(k + TG_MOCK_F_529, 1);
    } else if (f->status != 0) {
        tg_mock_cnt_add(k + TG_MOCK_F_STATUS, 1);
    }
    if (f->reset_before) {
        tg_mock_cnt_add(k + TG_MOCK_F_RESET_BEFORE, 1);
    }
    if (f->reset_mid) {
        tg_mock_cnt_add(k + TG_MOCK_F_RESET_MID, 1);
    }
    if (f->error_mid) {
        tg_mock_cnt_add(k + TG_MOCK_F_ERROR_MID, 1);
    }
    if (f->slow_ms > 0) {
        tg_mock_cnt_add(k + TG_MOCK_F_SLOW, 1);
    }
    if (f->hang) {
        tg_mock_cnt_add(k + TG_MOCK_F_HANG, 1);
    }
    if (f->close_reused) {
        tg_mock_cnt_add(k + TG_MOCK_F_CLOSE_REUSED, 1);
    }
    if (f->garbage) {
        tg_mock_cnt_add(k + TG_MOCK_F_GARBAGE, 1);
    }
    if (f->bomb) {
        tg_mock_cnt_add(k + TG_MOCK_F_BOMB, 1);
    }
    if (f->huge_head) {
        tg_mock_cnt_add(k + TG_MOCK_F_HUGE_HEAD, 1);
    }
    if (f->endless) {
        tg_mock_cnt_add(k + TG_MOCK_F_ENDLESS, 1);
    }
}

/* ---------------------------------------------------------------- ledger */

/* Count a finished request and append its ledger line (one write(2)). */
void
tg_mock_ledger(const tg_mock_req_t *r, bool completed)
{
    char line[4096], path[TG_MOCK_PATH_COPY * 6 + 1];
    int n, cls;
    ssize_t rc;

    cls = (r->status >= 200 && r->status < 300)   ? 0
          : (r->status >= 400 && r->status < 500) ? 1
          : (r->status >= 500 && r->status < 600) ? 2
                                                  : 3;
    tg_mock_cnt_add(TG_MOCK_C_STATUS + cls, 1);
    if (!completed) {
        tg_mock_cnt_add(TG_MOCK_C_ABORTED, 1);
    }
    if (r->status == 200) {
        tg_mock_cnt_add(TG_MOCK_C_IN_TOK, r->in_tok);
        tg_mock_cnt_add(TG_MOCK_C_OUT_TOK, r->out_tok);
        tg_mock_cnt_add(TG_MOCK_C_CACHE_READ, r->cache_read);
        tg_mock_cnt_add(TG_MOCK_C_CACHE_CREATE, r->cache_create);
    }
    if (tg_mock_ledger_fd < 0) {
        return;
    }
    tg_json_escape(path, sizeof(path), r->path_text, strlen(r->path_text));
    n = snprintf(line, sizeof(line),
                 "{\"t\":%llu,\"path\":\"%s\",\"model\":\"%s\","
                 "\"stream\":%s,\"status\":%d,\"input_tokens\":%u,"
                 "\"output_tokens\":%u,\"cache_read_input_tokens\":%u,"
                 "\"cache_creation_input_tokens\":%u,"
                 "\"reasoning_tokens\":%u,\"fault\":\"%s\","
                 "\"request_id\":\"%s\",\"completed\":%s}\n",
                 (unsigned long long)tg_time_wall_ms(), path, r->model,
                 r->stream ? "true" : "false", r->status, r->in_tok, r->out_tok,
                 r->cache_read, r->cache_create, r->reasoning,
                 r->fault.spec[0] ? r->fault.spec : "none", r->id,
                 completed ? "true" : "false");
    if (n <= 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    rc = write(tg_mock_ledger_fd, line, (size_t)n);
    if (rc != n) {
        tg_log(TG_LOG_WARN, errno, "write(ledger) failed");
    }
}
