/*
 * tools/mock-upstream.c
 *      A fast, faithful mock of the upstream model APIs (Anthropic Messages
 *      and OpenAI Chat Completions) for the integration tests and the
 *      benchmark.  Usage and formulas: docs/mock-upstream.md.
 *
 * NOTES
 *      One epoll loop (core/ev) per process.  "-w N" binds N SO_REUSEPORT
 *      sockets to the same port before forking N worker processes, each of
 *      which owns one socket; the parent only forwards TERM/INT and reaps.
 *      Workers get TERM/INT through a signalfd in their loop.
 *
 *      A request head is parsed with core/http into one scratch struct, and
 *      the few fields the mock needs are copied into the connection; the
 *      JSON body is read with jansson, reduced to a handful of flags and
 *      numbers, and dropped before answering.  Nothing points into the
 *      input buffer across loop rounds, so the buffer may move freely.
 *
 *      Non-stream bodies are formatted straight into the output buffer
 *      behind TG_MOCK_HEADROOM reserved bytes; the head is written into the
 *      headroom last, once the body length is known (one pass, no copy of
 *      the body).  Streams are produced one event at a time, each event its
 *      own write(2); the next event is produced only once the previous one
 *      has left the buffer, so a slow reader costs one event of memory and
 *      back-pressure comes from EPOLLOUT.  Delays use loop timers, never
 *      sleep.
 *
 *      The global fault and the counters live in a small MAP_SHARED region
 *      mapped before the fork, so POST /_mock/fault and GET /_mock/stats
 *      act on all workers alike.  The fault text is published under a
 *      seqlock (writers serialise on a spin flag; readers retry); each
 *      worker re-parses it only when the sequence number moved.  Counters
 *      are relaxed atomics.
 *
 *      Compression (x-mock-encoding / --encoding, tools/mock-encode.c):
 *      a non-stream body is compressed in place once it is built; a stream
 *      gets one encoder flushed after every event, so each chunk on the
 *      wire holds exactly one event's compressed bytes.
 *
 *      Every helper is static and uses the tg_mock_ prefix; a function
 *      that may close the connection returns TG_DONE after doing so, and
 *      its caller must not touch the connection again.
 *
 *      XXX: this file is longer than the house limit of about 1,500 lines.
 *      The Makefile builds the mock from this file, tools/mock-encode.c
 *      and core/; splitting it further (protocol shapes vs connection
 *      handling) is left for the lead.
 */
#include "core/buf.h"
#include "core/core.h"
#include "core/ev.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "tools/mock-encode.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TG_MOCK_HEAD_MAX   (64 * 1024)
#define TG_MOCK_BODY_MAX   (32 * 1024 * 1024)
#define TG_MOCK_IN_MAX     (TG_MOCK_HEAD_MAX + TG_MOCK_BODY_MAX + 65536)
#define TG_MOCK_IN_KEEP    (64 * 1024) /* block kept by an idle conn */
#define TG_MOCK_OUT_MAX    (16 * 1024 * 1024)
#define TG_MOCK_OUT_KEEP   (64 * 1024)
#define TG_MOCK_READ_MIN   16384
#define TG_MOCK_IDLE_MS    120000
#define TG_MOCK_CHUNKS_DEF 5
#define TG_MOCK_CHUNKS_MAX 10000
#define TG_MOCK_DELAY_MAX  600000
#define TG_MOCK_HEADROOM   512  /* room for a response head */
#define TG_MOCK_SPEC_MAX   128  /* fault spec text, NUL included */
#define TG_MOCK_MODEL_MAX  256  /* longest model name accepted */
#define TG_MOCK_PATH_COPY  128  /* bytes of the path kept for the ledger */
#define TG_MOCK_EVENT_MAX  4096 /* one formatted SSE event */
#define TG_MOCK_ACCEPT_MAX 256  /* accepts per readiness event */

/* Routes. */
enum {
    TG_MOCK_P_MESSAGES = 0,
    TG_MOCK_P_COUNT_TOKENS,
    TG_MOCK_P_CHAT,
    TG_MOCK_P_MODELS,
    TG_MOCK_P_OTHER, /* unknown path: 404, counted and logged */
    TG_MOCK_P_HEALTHZ,
    TG_MOCK_P_FAULT,
    TG_MOCK_P_STATS,
    TG_MOCK_P_RESET
};

/* Shared counters; the names are in tg_mock_cnt_names. */
enum {
    TG_MOCK_C_REQUESTS = 0,
    TG_MOCK_C_STREAMS,
    TG_MOCK_C_ABORTED,
    TG_MOCK_C_ACCEPTED,
    TG_MOCK_C_ACTIVE,
    TG_MOCK_C_IN_TOK,
    TG_MOCK_C_OUT_TOK,
    TG_MOCK_C_CACHE_READ,
    TG_MOCK_C_CACHE_CREATE,
    TG_MOCK_C_PATH, /* + TG_MOCK_P_* up to TG_MOCK_P_OTHER */
    TG_MOCK_C_FAULT = TG_MOCK_C_PATH + TG_MOCK_P_OTHER + 1, /* + F_* */
    TG_MOCK_C_STATUS = TG_MOCK_C_FAULT + 11, /* 2xx, 4xx, 5xx, other */
    TG_MOCK_C_MAX = TG_MOCK_C_STATUS + 4
};

/* Fault kinds, for the counters. */
enum {
    TG_MOCK_F_NONE = 0,
    TG_MOCK_F_429,
    TG_MOCK_F_429_QUOTA,
    TG_MOCK_F_500,
    TG_MOCK_F_529,
    TG_MOCK_F_STATUS, /* any other injected status */
    TG_MOCK_F_RESET_BEFORE,
    TG_MOCK_F_RESET_MID,
    TG_MOCK_F_ERROR_MID,
    TG_MOCK_F_SLOW,
    TG_MOCK_F_HANG
};

/* Connection states. */
enum {
    TG_MOCK_S_HEAD = 0, /* waiting for a request head */
    TG_MOCK_S_BODY,     /* reading the request body */
    TG_MOCK_S_WAIT,     /* slow-first-byte: answer when the timer fires */
    TG_MOCK_S_WRITE,    /* whole response buffered; done when flushed */
    TG_MOCK_S_STREAM,   /* producing SSE events */
    TG_MOCK_S_HANG      /* never answering */
};

typedef struct {
    int status;        /* injected error status; 0 = none */
    int retry_after;   /* seconds for retry-after; -1 = no header */
    bool quota;        /* 429-quota: spend limit / insufficient_quota */
    bool reset_before; /* RST right after reading the request */
    bool reset_mid;    /* RST after half of the response */
    bool error_mid;    /* streams: error event after half */
    bool hang;         /* never answer */
    uint32_t slow_ms;  /* delay of the response head */
    int64_t times;     /* "*N": next N requests only; -1 = all */
    char spec[TG_MOCK_SPEC_MAX]; /* text as given; "" = no fault */
} tg_mock_fault_t;

/*
 * Shared between the workers (MAP_SHARED, mapped before fork).  The fault
 * text is a seqlock: a writer takes fault_lock, makes fault_seq odd,
 * copies, makes it even; readers copy and retry while it moved.  A worker
 * that dies mid-update leaves the sequence odd and readers keep their old
 * fault; the mock is a test tool and this is acceptable.
 */
typedef struct {
    _Atomic uint32_t fault_seq;  /* even when fault_spec is stable */
    _Atomic uint32_t fault_lock; /* writers' spin flag */
    _Atomic int64_t fault_left;  /* requests left for "*N"; -1 = all */
    char fault_spec[TG_MOCK_SPEC_MAX];
    _Atomic uint64_t cnt[TG_MOCK_C_MAX]; /* relaxed counters */
} tg_mock_shared_t;

/* Per request; zeroed when a request finishes. */
typedef struct {
    int path;               /* TG_MOCK_P_* */
    int method;             /* TG_HTTP_* */
    bool keep_alive;        /* per version and Connection */
    bool http11;            /* chunked responses allowed */
    bool chunked_in;        /* request body is chunked */
    bool dispatched;        /* a response is owed or under way */
    bool counted;           /* /v1 route: stats and ledger */
    bool openai;            /* answer in OpenAI shapes */
    bool close_after;       /* close once the response is out */
    bool rst_after_flush;   /* reset once the buffer is out */
    int64_t content_length; /* -1 when absent */
    size_t body_len;        /* body bytes at in.pos (decoded) */
    tg_http_chunked_t ch;   /* request body decoder */
    /* headers */
    bool has_key, key_ok;          /* x-api-key present / acceptable */
    bool has_version;              /* anthropic-version present */
    bool has_bearer, bearer_ok;    /* Authorization: Bearer present / ok */
    bool hdr_fault, hdr_fault_bad; /* x-mock-fault present / invalid */
    uint32_t chunks;               /* content deltas */
    uint32_t delay_ms;             /* between deltas */
    int enc_want;                  /* TG_MOCK_ENC_* asked for, -1 unset */
    unsigned accepts;              /* bit per TG_MOCK_ENC_*: client takes it */
    bool enc_force;                /* x-mock-encoding ended in '!' */
    int enc;                       /* TG_MOCK_ENC_* of the response */
    tg_mock_enc_t *encoder;        /* stream encoder, NULL when none */
    char path_text[TG_MOCK_PATH_COPY + 1]; /* raw path, cut */
    /* body */
    bool json_ok; /* body is a JSON object */
    bool has_model, has_max_tokens, has_messages;
    bool stream, include_usage, cache;
    char json_err[160];                    /* escaped parse error */
    char model[TG_MOCK_MODEL_MAX * 6 + 1]; /* escaped model name */
    uint32_t in_tok, out_tok, cache_read, cache_create;
    /* response */
    tg_mock_fault_t fault;
    int status;        /* status sent (0: none yet) */
    uint32_t ev_idx;   /* next stream event */
    uint32_t ev_total; /* events in the stream */
    bool ev_waited;    /* delay before ev_idx already served */
    uint64_t created;  /* unix seconds, OpenAI "created" */
    char id[40];       /* request-id */
    char mid[48];      /* message / completion id */
} tg_mock_req_t;

typedef struct tg_mock_conn_s tg_mock_conn_t;

struct tg_mock_conn_s {
    int fd;
    int state;      /* TG_MOCK_S_* */
    bool in_paused; /* EPOLLIN off: input buffer full */
    tg_buf_t in;
    tg_buf_t out;
    tg_ev_timer_t idle;          /* lazy idle check on last_active */
    tg_ev_timer_t step;          /* slow-first-byte and stream delays */
    uint64_t last_active;        /* loop ms of the last read or write */
    tg_mock_conn_t *prev, *next; /* all connections, for shutdown */
    tg_mock_req_t r;
};

typedef struct {
    const char *listen; /* HOST:PORT */
    int workers;
    uint32_t chunks;
    uint32_t delay_ms;
    const char *fault;
    const char *ledger;
    const char *require_key; /* NULL: any non-empty key */
    size_t require_key_len;
    bool quiet;
    int encoding; /* TG_MOCK_ENC_* by default (--encoding) */
} tg_mock_conf_t;

static tg_mock_conf_t tg_mock_conf = {
    NULL, 1, TG_MOCK_CHUNKS_DEF, 0, NULL, NULL, NULL, 0, false, 0};
static tg_mock_shared_t *tg_mock_shm;
static tg_ev_loop_t *tg_mock_loop;
static int tg_mock_ledger_fd = -1;
static int tg_mock_listen_fd = -1;
static tg_ev_timer_t tg_mock_accept_timer;
static tg_mock_conn_t *tg_mock_conns;
static unsigned tg_mock_pid;
static uint64_t tg_mock_seq;
static tg_mock_fault_t tg_mock_gfault;  /* cached global fault */
static uint32_t tg_mock_gfault_seq = 1; /* odd: never seen, re-read */
static tg_http_req_t tg_mock_hreq;      /* scratch head */

static const char *tg_mock_cnt_names[TG_MOCK_C_MAX] = {
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
    [TG_MOCK_C_STATUS + 0] = "2xx",
    [TG_MOCK_C_STATUS + 1] = "4xx",
    [TG_MOCK_C_STATUS + 2] = "5xx",
    [TG_MOCK_C_STATUS + 3] = "other",
};

/* Two "tokens" of text per content delta, cycled. */
static const char *tg_mock_words[] = {
    "Lorem ipsum ",      "dolor sit ", "amet, consectetur ",
    "adipiscing elit, ", "sed do ",    "eiusmod tempor ",
    "incididunt ut ",    "labore et ",
};

static int tg_mock_process(tg_mock_conn_t *c);
static int tg_mock_conn_drive(tg_mock_conn_t *c);
static int tg_mock_out_printf(tg_mock_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- utils */

static void
tg_mock_cnt_add(int idx, uint64_t n)
{
    atomic_fetch_add_explicit(&tg_mock_shm->cnt[idx], n, memory_order_relaxed);
}

static bool
tg_mock_lit_eq(tg_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.data, lit, n) == 0;
}

static bool
tg_mock_lit_caseeq(tg_str_t s, const char *lit)
{
    tg_str_t l = {lit, strlen(lit)};

    return tg_str_caseeq(s, l);
}

/* Parse decimal digits in <s> up to <max>; false unless all are digits. */
static bool
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

static void
tg_mock_make_ids(tg_mock_req_t *r)
{
    unsigned long long n = ++tg_mock_seq;
    unsigned p = tg_mock_pid & 0xffffff;

    snprintf(r->id, sizeof(r->id), "req_mock%06x%012llx", p, n);
    if (r->openai) {
        snprintf(r->mid, sizeof(r->mid), "chatcmpl-mock%06x%012llx", p, n);
    } else {
        snprintf(r->mid, sizeof(r->mid), "msg_mock%06x%012llx", p, n);
    }
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
static int
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
static void
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
static void
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
static bool
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

static void
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
}

/* ---------------------------------------------------------------- ledger */

/* Count a finished request and append its ledger line (one write(2)). */
static void
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
                 "\"cache_creation_input_tokens\":%u,\"fault\":\"%s\","
                 "\"request_id\":\"%s\",\"completed\":%s}\n",
                 (unsigned long long)tg_time_wall_ms(), path, r->model,
                 r->stream ? "true" : "false", r->status, r->in_tok, r->out_tok,
                 r->cache_read, r->cache_create,
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

/* ---------------------------------------------------------- connections */

static void
tg_mock_conn_mask(tg_mock_conn_t *c, bool want_out)
{
    uint32_t mask =
        (c->in_paused ? 0 : TG_EV_READ) | (want_out ? TG_EV_WRITE : 0);

    (void)tg_ev_mod(tg_mock_loop, c->fd, mask);
}

/* Finish the current request: ledger, counters, state reset. */
static void
tg_mock_req_finish(tg_mock_conn_t *c, bool completed)
{
    if (c->r.counted) {
        tg_mock_ledger(&c->r, completed);
    }
    tg_ev_timer_del(tg_mock_loop, &c->step);
    tg_mock_enc_destroy(c->r.encoder);
    memset(&c->r, 0, sizeof(c->r));
}

/* Close <c>; <rst> makes the close abortive (SO_LINGER 0 sends RST).  A
 * request still owed is finished as not completed. */
static void
tg_mock_conn_close(tg_mock_conn_t *c, bool rst)
{
    if (c->r.dispatched) {
        tg_mock_req_finish(c, false);
    }
    tg_mock_enc_destroy(c->r.encoder);
    c->r.encoder = NULL;
    if (rst) {
        struct linger l = {1, 0};

        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    tg_ev_del(tg_mock_loop, c->fd);
    close(c->fd);
    tg_ev_timer_del(tg_mock_loop, &c->idle);
    tg_ev_timer_del(tg_mock_loop, &c->step);
    tg_buf_fini(&c->in);
    tg_buf_fini(&c->out);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        tg_mock_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    atomic_fetch_sub_explicit(&tg_mock_shm->cnt[TG_MOCK_C_ACTIVE], 1,
                              memory_order_relaxed);
    free(c);
}

/*
 * Write out c->out.  TG_OK when empty, TG_AGAIN when the socket is full
 * (EPOLLOUT armed), TG_DONE when the peer is gone (closed).
 */
static int
tg_mock_flush(tg_mock_conn_t *c)
{
    size_t len;
    ssize_t n;

    while ((len = tg_buf_len(&c->out)) > 0) {
        n = send(c->fd, c->out.data + c->out.pos, len, MSG_NOSIGNAL);
        if (n > 0) {
            tg_buf_consume(&c->out, (size_t)n);
            c->last_active = tg_ev_now(tg_mock_loop);
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!(tg_ev_mask(tg_mock_loop, c->fd) & TG_EV_WRITE)) {
                tg_mock_conn_mask(c, true);
            }
            return TG_AGAIN;
        }
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    if (tg_ev_mask(tg_mock_loop, c->fd) & TG_EV_WRITE) {
        tg_mock_conn_mask(c, false);
    }
    if (c->out.cap > TG_MOCK_OUT_KEEP) {
        tg_buf_reset(&c->out, TG_MOCK_OUT_KEEP);
    }
    return TG_OK;
}

/* The response went out: finish the request and keep the connection for
 * the next one, or close it.  TG_OK or TG_DONE. */
static int
tg_mock_req_done(tg_mock_conn_t *c)
{
    bool keep = c->r.keep_alive && !c->r.close_after;

    tg_mock_req_finish(c, true);
    if (!keep) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    c->state = TG_MOCK_S_HEAD;
    if (c->in_paused) {
        c->in_paused = false;
        tg_mock_conn_mask(c, false);
    }
    if (tg_buf_len(&c->in) == 0) {
        tg_buf_reset(&c->in, TG_MOCK_IN_KEEP);
    }
    return TG_OK;
}

/* ------------------------------------------------------- response output */

static int
tg_mock_out_printf(tg_mock_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    int n;

    if (c->out.data == NULL && tg_buf_reserve(&c->out, 1024) != TG_OK) {
        return TG_ERROR;
    }
    room = c->out.cap - c->out.last;
    va_start(ap, fmt);
    n = vsnprintf(c->out.data + c->out.last, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return TG_ERROR;
    }
    if ((size_t)n >= room) {
        if (tg_buf_reserve(&c->out, (size_t)n + 1) != TG_OK) {
            return TG_ERROR;
        }
        va_start(ap, fmt);
        n = vsnprintf(c->out.data + c->out.last, c->out.cap - c->out.last, fmt,
                      ap);
        va_end(ap);
        if (n < 0) {
            return TG_ERROR;
        }
    }
    c->out.last += (size_t)n;
    return TG_OK;
}

/* Start a body: the output buffer is empty, and TG_MOCK_HEADROOM bytes are
 * kept in front of the body for the head. */
static int
tg_mock_body_begin(tg_mock_conn_t *c)
{
    TG_ASSERT(tg_buf_len(&c->out) == 0);
    if (tg_buf_reserve(&c->out, TG_MOCK_HEADROOM + 2048) != TG_OK) {
        return TG_ERROR;
    }
    c->out.pos = 0;
    c->out.last = TG_MOCK_HEADROOM;
    return TG_OK;
}

/* Replace the body built since tg_mock_body_begin() by its compressed
 * form in r->enc.  TG_OK or TG_ERROR. */
static int
tg_mock_body_compress(tg_mock_conn_t *c)
{
    tg_mock_enc_t *e = tg_mock_enc_create(c->r.enc);
    tg_buf_t z;
    int rc = TG_ERROR;

    tg_buf_init(&z, TG_MOCK_OUT_MAX);
    if (e == NULL ||
        tg_mock_enc_write(e, c->out.data + TG_MOCK_HEADROOM,
                          c->out.last - TG_MOCK_HEADROOM, true, &z) != TG_OK) {
        goto done;
    }
    c->out.last = TG_MOCK_HEADROOM;
    rc = tg_buf_append(&c->out, z.data + z.pos, tg_buf_len(&z));

done:
    tg_buf_fini(&z);
    tg_mock_enc_destroy(e);
    return rc;
}

/*
 * Write the head of a <status> response with content type <ctype> and
 * extra header lines <extra> (each ending in CRLF) into the headroom in
 * front of the body built since tg_mock_body_begin(), compressing the
 * body first when the request asked for it.  reset-mid cuts the response
 * in half and asks for a reset once that half is out.
 */
static int
tg_mock_body_end(tg_mock_conn_t *c, int status, const char *ctype,
                 const char *extra)
{
    tg_mock_req_t *r = &c->r;
    size_t blen;
    char head[TG_MOCK_HEADROOM], ce[64] = "";
    int n;

    if (r->enc != TG_MOCK_ENC_NONE) {
        if (tg_mock_body_compress(c) != TG_OK) {
            return TG_ERROR;
        }
        snprintf(ce, sizeof(ce), "content-encoding: %s\r\n",
                 tg_mock_enc_coding(r->enc));
    }
    blen = c->out.last - TG_MOCK_HEADROOM;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n"
                 "content-length: %zu\r\n%s%s: %s\r\n%sconnection: %s"
                 "\r\n\r\n",
                 status, tg_http_reason(status), ctype, blen, ce,
                 r->openai ? "x-request-id" : "request-id", r->id, extra,
                 (r->keep_alive && !r->close_after) ? "keep-alive" : "close");
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        return TG_ERROR;
    }
    memcpy(c->out.data + TG_MOCK_HEADROOM - n, head, (size_t)n);
    c->out.pos = TG_MOCK_HEADROOM - (size_t)n;
    r->status = status;
    if (r->fault.reset_mid) {
        c->out.last = TG_MOCK_HEADROOM + blen / 2;
        r->rst_after_flush = true;
    }
    c->state = TG_MOCK_S_WRITE;
    return TG_OK;
}

/* A small complete response: <body> is a NUL-terminated string. */
static int
tg_mock_respond(tg_mock_conn_t *c, int status, const char *ctype,
                const char *extra, const char *body)
{
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_buf_append(&c->out, body, strlen(body)) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, ctype, extra);
}

/* Anthropic error body; <msg> must be JSON-safe, <details> is "" or a
 * ",\"details\":{...}" member. */
static int
tg_mock_error_anthropic(tg_mock_conn_t *c, int status, const char *type,
                        const char *msg, const char *details, const char *extra)
{
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                           "\"message\":\"%s\"%s},\"request_id\":\"%s\"}",
                           type, msg, details, c->r.id) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, "application/json", extra);
}

/* OpenAI error body; NULL <param> or <code> become null. */
static int
tg_mock_error_openai(tg_mock_conn_t *c, int status, const char *type,
                     const char *msg, const char *param, const char *code,
                     const char *extra)
{
    char p[64], k[64];

    if (param != NULL) {
        snprintf(p, sizeof(p), "\"%s\"", param);
    } else {
        memcpy(p, "null", 5);
    }
    if (code != NULL) {
        snprintf(k, sizeof(k), "\"%s\"", code);
    } else {
        memcpy(k, "null", 5);
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"error\":{\"message\":\"%s\",\"type\":\"%s\","
                           "\"param\":%s,\"code\":%s}}",
                           msg, type, p, k) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, "application/json", extra);
}

/* Answer with the injected status of r->fault in the route's shape. */
static int
tg_mock_answer_fault(tg_mock_conn_t *c)
{
    const tg_mock_fault_t *f = &c->r.fault;
    const char *at, *am, *ot, *om, *oc = NULL, *det = "";
    char extra[64] = "";
    int s = f->status;

    if (f->retry_after >= 0) {
        snprintf(extra, sizeof(extra), "retry-after: %d\r\n", f->retry_after);
    }
    at = (s >= 500) ? "api_error" : "invalid_request_error";
    am =
        (s >= 500) ? "Internal server error" : "Injected fault (mock-upstream)";
    ot = (s >= 500) ? "server_error" : "invalid_request_error";
    om = (s >= 500) ? "The server had an error while processing your "
                      "request. Sorry about that!"
                    : am;
    if (c->r.hdr_fault_bad) {
        am = om = "invalid x-mock-fault header (see docs/mock-upstream.md)";
    } else if (s == 401) {
        at = "authentication_error";
        am = "invalid x-api-key";
        om = "Incorrect API key provided.";
        oc = "invalid_api_key";
    } else if (s == 403) {
        at = "permission_error";
        am = "Your API key does not have permission to use the specified "
             "resource.";
    } else if (s == 404) {
        at = "not_found_error";
        am = "Not found";
    } else if (s == 413) {
        at = "request_too_large";
        am = "Request exceeds the maximum allowed number of bytes.";
    } else if (s == 429 && f->quota) {
        at = "rate_limit_error";
        am = "You have reached your specified API usage limits. You will "
             "regain access on 2099-01-01 at 00:00 UTC.";
        det = ",\"details\":{\"error_code\":\"enforced_spend_limit_reached\"}";
        ot = oc = "insufficient_quota";
        om = "You exceeded your current quota, please check your plan and "
             "billing details.";
    } else if (s == 429) {
        at = "rate_limit_error";
        am = "This request would exceed the rate limit for your "
             "organization (mock-upstream). Please retry after the time "
             "in the retry-after header.";
        ot = "requests";
        oc = "rate_limit_exceeded";
        om = "Rate limit reached for requests (mock-upstream).";
    } else if (s == 529) {
        at = "overloaded_error";
        am = "Overloaded";
        om = "The engine is currently overloaded, please try again later.";
    }
    if (c->r.openai) {
        return tg_mock_error_openai(c, s, ot, om, NULL, oc, extra);
    }
    return tg_mock_error_anthropic(c, s, at, am, det, extra);
}

/* ----------------------------------------------------------- request body */

/* Reduce the JSON body at <body> to the fields the mock answers from, and
 * compute the token counts (see docs/mock-upstream.md). */
static void
tg_mock_req_parse_body(tg_mock_req_t *r, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root, *v;
    size_t n;

    r->cache = len > 0 && memmem(body, len, "\"cache_control\"", 15) != NULL;
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        tg_json_escape(r->json_err, sizeof(r->json_err), jerr.text,
                       strlen(jerr.text));
        return;
    }
    if (!json_is_object(root)) {
        snprintf(r->json_err, sizeof(r->json_err),
                 "request body must be a JSON object");
        goto done;
    }
    r->json_ok = true;
    v = json_object_get(root, "model");
    if (json_is_string(v) && json_string_length(v) <= TG_MOCK_MODEL_MAX) {
        r->has_model = true;
        tg_json_escape(r->model, sizeof(r->model), json_string_value(v),
                       json_string_length(v));
    }
    r->has_max_tokens = json_is_integer(json_object_get(root, "max_tokens"));
    v = json_object_get(root, "messages");
    if (json_is_array(v)) {
        r->has_messages = true;
        n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
        r->in_tok = (uint32_t)((n + 3) / 4 + 1);
    }
    r->stream = json_is_true(json_object_get(root, "stream"));
    v = json_object_get(root, "stream_options");
    r->include_usage = json_is_true(json_object_get(v, "include_usage"));
    r->out_tok = 2 * r->chunks;
    if (r->cache) {
        r->cache_read = r->in_tok / 2;
        r->cache_create = r->openai ? 0 : r->in_tok / 4;
    }

done:
    json_decref(root);
}

/* ------------------------------------------------------------- streaming */

/* Format Anthropic stream event <i> into <buf>; returns its length. */
static int
tg_mock_event_anthropic(const tg_mock_req_t *r, uint32_t i, char *buf,
                        size_t cap)
{
    uint32_t n = r->chunks;

    if (r->fault.error_mid && i == r->ev_total / 2) {
        return snprintf(buf, cap,
                        "event: error\ndata: {\"type\":\"error\",\"error\":"
                        "{\"type\":\"overloaded_error\",\"message\":"
                        "\"Overloaded\"}}\n\n");
    }
    if (i == 0) {
        return snprintf(
            buf, cap,
            "event: message_start\ndata: {\"type\":\"message_start\","
            "\"message\":{\"id\":\"%s\",\"type\":\"message\",\"role\":"
            "\"assistant\",\"model\":\"%s\",\"content\":[],\"stop_reason\":"
            "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%u,"
            "\"cache_creation_input_tokens\":%u,\"cache_read_input_tokens\":"
            "%u,\"output_tokens\":1}}}\n\n",
            r->mid, r->model, r->in_tok, r->cache_create, r->cache_read);
    }
    if (i == 1) {
        return snprintf(buf, cap,
                        "event: content_block_start\ndata: {\"type\":"
                        "\"content_block_start\",\"index\":0,"
                        "\"content_block\":{\"type\":\"text\",\"text\":"
                        "\"\"}}\n\n");
    }
    if (i == 2) {
        return snprintf(buf, cap,
                        "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    }
    if (i < 3 + n) {
        return snprintf(buf, cap,
                        "event: content_block_delta\ndata: {\"type\":"
                        "\"content_block_delta\",\"index\":0,\"delta\":"
                        "{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n",
                        tg_mock_words[(i - 3) % TG_NELEMS(tg_mock_words)]);
    }
    if (i == 3 + n) {
        return snprintf(buf, cap,
                        "event: content_block_stop\ndata: {\"type\":"
                        "\"content_block_stop\",\"index\":0}\n\n");
    }
    if (i == 4 + n) {
        return snprintf(buf, cap,
                        "event: message_delta\ndata: {\"type\":"
                        "\"message_delta\",\"delta\":{\"stop_reason\":"
                        "\"end_turn\",\"stop_sequence\":null},\"usage\":"
                        "{\"output_tokens\":%u}}\n\n",
                        r->out_tok);
    }
    return snprintf(buf, cap,
                    "event: message_stop\ndata: {\"type\":"
                    "\"message_stop\"}\n\n");
}

/* Format OpenAI stream chunk <i> into <buf>; returns its length. */
static int
tg_mock_event_openai(const tg_mock_req_t *r, uint32_t i, char *buf, size_t cap)
{
    const char *usage_null = r->include_usage ? ",\"usage\":null" : "";
    uint32_t n = r->chunks;
    char pre[1800];

    if (r->fault.error_mid && i == r->ev_total / 2) {
        return snprintf(buf, cap,
                        "data: {\"error\":{\"message\":\"The server had an "
                        "error while processing your request. Sorry about "
                        "that!\",\"type\":\"server_error\",\"param\":null,"
                        "\"code\":null}}\n\n");
    }
    if (i == r->ev_total - 1) {
        return snprintf(buf, cap, "data: [DONE]\n\n");
    }
    snprintf(pre, sizeof(pre),
             "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
             "\"created\":%llu,\"model\":\"%s\",\"system_fingerprint\":"
             "\"fp_mock\",\"choices\":[",
             r->mid, (unsigned long long)r->created, r->model);
    if (i == 0) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        "\"content\":\"\",\"refusal\":null},\"logprobs\":"
                        "null,\"finish_reason\":null}]%s}\n\n",
                        pre, usage_null);
    }
    if (i <= n) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"content\":\"%s\"},"
                        "\"logprobs\":null,\"finish_reason\":null}]%s}\n\n",
                        pre, tg_mock_words[(i - 1) % TG_NELEMS(tg_mock_words)],
                        usage_null);
    }
    if (i == n + 1) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{},\"logprobs\":null,"
                        "\"finish_reason\":\"stop\"}]%s}\n\n",
                        pre, usage_null);
    }
    return snprintf(buf, cap,
                    "%s],\"usage\":{\"prompt_tokens\":%u,"
                    "\"completion_tokens\":%u,\"total_tokens\":%u,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":%u,"
                    "\"audio_tokens\":0},\"completion_tokens_details\":"
                    "{\"reasoning_tokens\":0,\"audio_tokens\":0,"
                    "\"accepted_prediction_tokens\":0,"
                    "\"rejected_prediction_tokens\":0}}}\n\n",
                    pre, r->in_tok, r->out_tok, r->in_tok + r->out_tok,
                    r->cache_read);
}

/* Append <len> bytes of <p> as one chunk (or raw for HTTP/1.0). */
static int
tg_mock_out_chunk(tg_mock_conn_t *c, const char *p, size_t len)
{
    char hdr[24];
    int n;

    if (!c->r.http11) {
        return tg_buf_append(&c->out, p, len);
    }
    n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    if (tg_buf_append(&c->out, hdr, (size_t)n) != TG_OK ||
        tg_buf_append(&c->out, p, len) != TG_OK ||
        tg_buf_append(&c->out, "\r\n", 2) != TG_OK) {
        return TG_ERROR;
    }
    return TG_OK;
}

/* Append stream bytes <p> of <len> as one chunk, through the stream's
 * encoder when it has one (<last> ends the compressed stream).  An
 * encoder that produced nothing adds no chunk (an empty chunk would end
 * the body). */
static int
tg_mock_out_stream(tg_mock_conn_t *c, const char *p, size_t len, bool last)
{
    tg_buf_t z;
    int rc;

    if (c->r.encoder == NULL) {
        return len > 0 ? tg_mock_out_chunk(c, p, len) : TG_OK;
    }
    tg_buf_init(&z, TG_MOCK_OUT_MAX);
    rc = tg_mock_enc_write(c->r.encoder, p, len, last, &z);
    if (rc == TG_OK && tg_buf_len(&z) > 0) {
        rc = tg_mock_out_chunk(c, z.data + z.pos, tg_buf_len(&z));
    }
    tg_buf_fini(&z);
    return rc;
}

/*
 * Queue the next piece of the stream: one event, the end of the stream,
 * or nothing when a delay or reset-mid applies.  TG_OK when the caller
 * should flush and come back, TG_AGAIN when a delay timer was armed,
 * TG_ERROR when the buffer could not take the event.
 */
static int
tg_mock_stream_next(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char ev[TG_MOCK_EVENT_MAX];
    uint32_t i = r->ev_idx, first = r->openai ? 1 : 3;
    int n;

    if (i >= r->ev_total) {
        c->state = TG_MOCK_S_WRITE;
        if (tg_mock_out_stream(c, NULL, 0, true) != TG_OK) {
            return TG_ERROR;
        }
        return r->http11 ? tg_buf_append(&c->out, "0\r\n\r\n", 5) : TG_OK;
    }
    if (r->fault.reset_mid && i >= r->ev_total / 2) {
        r->rst_after_flush = true;
        return TG_OK;
    }
    if (r->delay_ms > 0 && i >= first && i < first + r->chunks &&
        !r->ev_waited) {
        r->ev_waited = true;
        tg_ev_timer_add(tg_mock_loop, &c->step, r->delay_ms);
        return TG_AGAIN;
    }
    r->ev_waited = false;
    n = r->openai ? tg_mock_event_openai(r, i, ev, sizeof(ev))
                  : tg_mock_event_anthropic(r, i, ev, sizeof(ev));
    if (n <= 0 || (size_t)n >= sizeof(ev)) {
        return TG_ERROR;
    }
    /* After a mid-stream error event the stream just ends, without
     * message_stop or [DONE], as the real APIs do. */
    r->ev_idx =
        (r->fault.error_mid && i == r->ev_total / 2) ? r->ev_total : i + 1;
    return tg_mock_out_stream(c, ev, (size_t)n, false);
}

/* Send the stream head and start producing events. */
static int
tg_mock_stream_start(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (!r->http11) {
        r->close_after = true;
    }
    r->status = 200;
    r->ev_idx = 0;
    r->ev_total =
        r->openai ? r->chunks + 3 + (r->include_usage ? 1 : 0) : r->chunks + 6;
    if (r->enc != TG_MOCK_ENC_NONE) {
        r->encoder = tg_mock_enc_create(r->enc);
        if (r->encoder == NULL) {
            return TG_ERROR;
        }
    }
    if (tg_mock_out_printf(
            c,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            "cache-control: no-cache\r\n%s%s%s%s: %s\r\n%sconnection: %s"
            "\r\n\r\n",
            r->encoder ? "content-encoding: " : "",
            r->encoder ? tg_mock_enc_coding(r->enc) : "",
            r->encoder ? "\r\n" : "", r->openai ? "x-request-id" : "request-id",
            r->id, r->http11 ? "transfer-encoding: chunked\r\n" : "",
            r->close_after || !r->keep_alive ? "close" : "keep-alive") !=
        TG_OK) {
        return TG_ERROR;
    }
    tg_mock_cnt_add(TG_MOCK_C_STREAMS, 1);
    c->state = TG_MOCK_S_STREAM;
    return TG_OK;
}

/* ------------------------------------------------------------- endpoints */

static int
tg_mock_text(tg_mock_conn_t *c)
{
    uint32_t k;

    for (k = 0; k < c->r.chunks; k++) {
        const char *w = tg_mock_words[k % TG_NELEMS(tg_mock_words)];

        if (tg_buf_append(&c->out, w, strlen(w)) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

static int
tg_mock_messages_body(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"id\":\"%s\",\"type\":\"message\",\"role\":"
                           "\"assistant\",\"model\":\"%s\",\"content\":"
                           "[{\"type\":\"text\",\"text\":\"",
                           r->mid, r->model) != TG_OK ||
        tg_mock_text(c) != TG_OK ||
        tg_mock_out_printf(
            c,
            "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
            "\"usage\":{\"input_tokens\":%u,\"cache_creation_input_tokens\":"
            "%u,\"cache_read_input_tokens\":%u,\"output_tokens\":%u}}",
            r->in_tok, r->cache_create, r->cache_read, r->out_tok) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

/* POST /v1/messages and /v1/messages/count_tokens. */
static int
tg_mock_answer_messages(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char msg[256];

    if (!r->has_key) {
        return tg_mock_error_anthropic(c, 401, "authentication_error",
                                       "x-api-key header is required", "", "");
    }
    if (!r->key_ok) {
        return tg_mock_error_anthropic(c, 401, "authentication_error",
                                       "invalid x-api-key", "", "");
    }
    if (!r->has_version) {
        return tg_mock_error_anthropic(c, 400, "invalid_request_error",
                                       "anthropic-version: header is required",
                                       "", "");
    }
    if (!r->json_ok) {
        snprintf(msg, sizeof(msg), "invalid JSON body: %s", r->json_err);
        return tg_mock_error_anthropic(c, 400, "invalid_request_error", msg, "",
                                       "");
    }
    if (!r->has_model ||
        (r->path == TG_MOCK_P_MESSAGES && !r->has_max_tokens) ||
        !r->has_messages) {
        snprintf(msg, sizeof(msg), "%s: Field required",
                 !r->has_model      ? "model"
                 : !r->has_messages ? "messages"
                                    : "max_tokens");
        return tg_mock_error_anthropic(c, 400, "invalid_request_error", msg, "",
                                       "");
    }
    if (r->path == TG_MOCK_P_COUNT_TOKENS) {
        r->out_tok = r->cache_read = r->cache_create = 0;
        r->stream = false;
        if (tg_mock_body_begin(c) != TG_OK ||
            tg_mock_out_printf(c, "{\"input_tokens\":%u}", r->in_tok) !=
                TG_OK) {
            return TG_ERROR;
        }
        return tg_mock_body_end(c, 200, "application/json", "");
    }
    if (r->stream) {
        return tg_mock_stream_start(c);
    }
    return tg_mock_messages_body(c);
}

/* POST /v1/chat/completions. */
static int
tg_mock_answer_chat(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char msg[256];

    if (!r->has_bearer || !r->bearer_ok) {
        return tg_mock_error_openai(
            c, 401, "invalid_request_error",
            !r->has_bearer
                ? "You didn't provide an API key. You need to provide your "
                  "API key in an Authorization header using Bearer auth "
                  "(i.e. Authorization: Bearer YOUR_KEY)."
                : "Incorrect API key provided.",
            NULL, "invalid_api_key", "");
    }
    if (!r->json_ok) {
        snprintf(msg, sizeof(msg),
                 "We could not parse the JSON body of your request. (%s)",
                 r->json_err);
        return tg_mock_error_openai(c, 400, "invalid_request_error", msg, NULL,
                                    NULL, "");
    }
    if (!r->has_model) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "you must provide a model parameter", NULL,
                                    NULL, "");
    }
    if (!r->has_messages) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "Missing required parameter: 'messages'.",
                                    "messages", "missing_required_parameter",
                                    "");
    }
    r->created = tg_time_wall_ms() / 1000;
    if (r->stream) {
        return tg_mock_stream_start(c);
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"id\":\"%s\",\"object\":\"chat.completion\","
                           "\"created\":%llu,\"model\":\"%s\",\"choices\":"
                           "[{\"index\":0,\"message\":{\"role\":\"assistant\","
                           "\"content\":\"",
                           r->mid, (unsigned long long)r->created,
                           r->model) != TG_OK ||
        tg_mock_text(c) != TG_OK ||
        tg_mock_out_printf(
            c,
            "\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
            "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%u,"
            "\"completion_tokens\":%u,\"total_tokens\":%u,"
            "\"prompt_tokens_details\":{\"cached_tokens\":%u,"
            "\"audio_tokens\":0},\"completion_tokens_details\":"
            "{\"reasoning_tokens\":0,\"audio_tokens\":0,"
            "\"accepted_prediction_tokens\":0,"
            "\"rejected_prediction_tokens\":0}},\"service_tier\":\"default\","
            "\"system_fingerprint\":\"fp_mock\"}",
            r->in_tok, r->out_tok, r->in_tok + r->out_tok,
            r->cache_read) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

/* GET /v1/models: Anthropic shape, or OpenAI shape for a Bearer-only
 * client. */
static int
tg_mock_answer_models(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (!r->has_key && r->has_bearer) {
        r->openai = true;
        if (!r->bearer_ok) {
            return tg_mock_error_openai(c, 401, "invalid_request_error",
                                        "Incorrect API key provided.", NULL,
                                        "invalid_api_key", "");
        }
        return tg_mock_respond(
            c, 200, "application/json", "",
            "{\"object\":\"list\",\"data\":["
            "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1715367049,"
            "\"owned_by\":\"system\"},"
            "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":"
            "1721172741,\"owned_by\":\"system\"}]}");
    }
    if (!r->has_key || !r->key_ok) {
        return tg_mock_error_anthropic(
            c, 401, "authentication_error",
            r->has_key ? "invalid x-api-key" : "x-api-key header is required",
            "", "");
    }
    return tg_mock_respond(
        c, 200, "application/json", "",
        "{\"data\":["
        "{\"type\":\"model\",\"id\":\"claude-sonnet-4-5-20250929\","
        "\"display_name\":\"Claude Sonnet 4.5\","
        "\"created_at\":\"2025-09-29T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-opus-4-1-20250805\","
        "\"display_name\":\"Claude Opus 4.1\","
        "\"created_at\":\"2025-08-05T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-haiku-4-5-20251001\","
        "\"display_name\":\"Claude Haiku 4.5\","
        "\"created_at\":\"2025-10-01T00:00:00Z\"}],"
        "\"has_more\":false,\"first_id\":\"claude-sonnet-4-5-20250929\","
        "\"last_id\":\"claude-haiku-4-5-20251001\"}");
}

/* The answer of a /v1 request once its fault delays are over. */
static int
tg_mock_answer(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    int rc;

    if (r->fault.status != 0) {
        rc = tg_mock_answer_fault(c);
    } else if (r->path == TG_MOCK_P_OTHER) {
        rc = r->openai ? tg_mock_error_openai(c, 404, "invalid_request_error",
                                              "Unknown request URL.", NULL,
                                              "unknown_url", "")
                       : tg_mock_error_anthropic(c, 404, "not_found_error",
                                                 "Not Found", "", "");
    } else if ((r->path == TG_MOCK_P_MODELS) != (r->method == TG_HTTP_GET)) {
        rc = r->openai
                 ? tg_mock_error_openai(c, 405, "invalid_request_error",
                                        "Method not allowed.", NULL, NULL, "")
                 : tg_mock_error_anthropic(c, 405, "invalid_request_error",
                                           "Method Not Allowed", "", "");
    } else if (r->path == TG_MOCK_P_MODELS) {
        rc = tg_mock_answer_models(c);
    } else if (r->path == TG_MOCK_P_CHAT) {
        rc = tg_mock_answer_chat(c);
    } else {
        rc = tg_mock_answer_messages(c);
    }
    if (rc != TG_OK) {
        tg_log(TG_LOG_WARN, 0, "cannot build a response; closing fd %d", c->fd);
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    if (r->status != 200) {
        /* Token counts belong to successful answers only. */
        r->in_tok = r->out_tok = r->cache_read = r->cache_create = 0;
    }
    return tg_mock_conn_drive(c);
}

static int
tg_mock_answer_stats(tg_mock_conn_t *c)
{
    static const struct {
        const char *name;
        int from, to;
    } groups[] = {
        {NULL, TG_MOCK_C_REQUESTS, TG_MOCK_C_ACCEPTED},
        {"connections", TG_MOCK_C_ACCEPTED, TG_MOCK_C_IN_TOK},
        {"tokens", TG_MOCK_C_IN_TOK, TG_MOCK_C_PATH},
        {"paths", TG_MOCK_C_PATH, TG_MOCK_C_FAULT},
        {"faults", TG_MOCK_C_FAULT, TG_MOCK_C_STATUS},
        {"status", TG_MOCK_C_STATUS, TG_MOCK_C_MAX},
    };
    size_t g;
    int i;

    if (tg_mock_body_begin(c) != TG_OK || tg_mock_out_printf(c, "{") != TG_OK) {
        return TG_ERROR;
    }
    for (g = 0; g < TG_NELEMS(groups); g++) {
        if (groups[g].name != NULL &&
            tg_mock_out_printf(c, ",\"%s\":{", groups[g].name) != TG_OK) {
            return TG_ERROR;
        }
        for (i = groups[g].from; i < groups[g].to; i++) {
            uint64_t v = atomic_load_explicit(&tg_mock_shm->cnt[i],
                                              memory_order_relaxed);

            if (tg_mock_out_printf(
                    c, "%s\"%s\":%llu", i == groups[g].from ? "" : ",",
                    tg_mock_cnt_names[i], (unsigned long long)v) != TG_OK) {
                return TG_ERROR;
            }
        }
        if (groups[g].name != NULL && tg_mock_out_printf(c, "}") != TG_OK) {
            return TG_ERROR;
        }
    }
    if (tg_mock_out_printf(c, "}\n") != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

static int
tg_mock_answer_fault_ctl(tg_mock_conn_t *c, const char *body, size_t len)
{
    tg_mock_fault_t f;
    char err[160], out[1024], spec[TG_MOCK_SPEC_MAX * 6];

    if (c->r.method == TG_HTTP_POST) {
        if (tg_mock_fault_parse(&f, body, len, err, sizeof(err)) != TG_OK) {
            tg_json_escape(spec, sizeof(spec), err, strlen(err));
            snprintf(out, sizeof(out), "{\"error\":\"%s\"}\n", spec);
            return tg_mock_respond(c, 400, "application/json", "", out);
        }
        tg_mock_fault_store(&f);
        tg_log(TG_LOG_NOTICE, 0, "global fault set to \"%s\"",
               f.spec[0] ? f.spec : "none");
    } else if (c->r.method != TG_HTTP_GET) {
        return tg_mock_respond(c, 405, "text/plain", "",
                               "method not allowed\n");
    }
    tg_mock_fault_sync();
    tg_json_escape(spec, sizeof(spec), tg_mock_gfault.spec,
                   strlen(tg_mock_gfault.spec));
    snprintf(out, sizeof(out), "{\"fault\":\"%s\",\"remaining\":%lld}\n",
             spec[0] ? spec : "none",
             (long long)atomic_load(&tg_mock_shm->fault_left));
    return tg_mock_respond(c, 200, "application/json", "", out);
}

/* Answer the mock's own routes (health, fault control, stats). */
static int
tg_mock_answer_local(tg_mock_conn_t *c, const char *body, size_t len)
{
    int i;

    switch (c->r.path) {
    case TG_MOCK_P_HEALTHZ:
        return tg_mock_respond(c, 200, "text/plain", "", "ok\n");
    case TG_MOCK_P_FAULT:
        return tg_mock_answer_fault_ctl(c, body, len);
    case TG_MOCK_P_STATS:
        return tg_mock_answer_stats(c);
    default:
        if (c->r.method != TG_HTTP_POST) {
            return tg_mock_respond(c, 405, "text/plain", "",
                                   "method not allowed\n");
        }
        for (i = 0; i < TG_MOCK_C_MAX; i++) {
            if (i != TG_MOCK_C_ACTIVE) {
                atomic_store(&tg_mock_shm->cnt[i], 0);
            }
        }
        return tg_mock_respond(c, 200, "application/json", "",
                               "{\"reset\":true}\n");
    }
}

/* -------------------------------------------------------------- requests */

static int
tg_mock_route(tg_str_t path)
{
    if (tg_mock_lit_eq(path, "/v1/messages")) {
        return TG_MOCK_P_MESSAGES;
    }
    if (tg_mock_lit_eq(path, "/v1/chat/completions")) {
        return TG_MOCK_P_CHAT;
    }
    if (tg_mock_lit_eq(path, "/v1/messages/count_tokens")) {
        return TG_MOCK_P_COUNT_TOKENS;
    }
    if (tg_mock_lit_eq(path, "/v1/models")) {
        return TG_MOCK_P_MODELS;
    }
    if (tg_mock_lit_eq(path, "/healthz")) {
        return TG_MOCK_P_HEALTHZ;
    }
    if (tg_mock_lit_eq(path, "/_mock/fault")) {
        return TG_MOCK_P_FAULT;
    }
    if (tg_mock_lit_eq(path, "/_mock/stats")) {
        return TG_MOCK_P_STATS;
    }
    if (tg_mock_lit_eq(path, "/_mock/reset")) {
        return TG_MOCK_P_RESET;
    }
    return TG_MOCK_P_OTHER;
}

/* Whether accept-encoding parameters <p> of <len> bytes hold "q=0",
 * "q=0.0", ...: the coding is refused. */
static bool
tg_mock_q_zero(const char *p, size_t len)
{
    const char *q = memmem(p, len, "q=", 2);
    size_t i;

    if (q == NULL) {
        return false;
    }
    i = (size_t)(q - p) + 2;
    if (i >= len || p[i] != '0') {
        return false;
    }
    for (i++; i < len && p[i] != ' ' && p[i] != ';'; i++) {
        if (p[i] != '.' && p[i] != '0') {
            return false;
        }
    }
    return true;
}

/* Bits (1 << TG_MOCK_ENC_*) of the encodings whose coding an
 * accept-encoding value <v> lists with a q-value above zero. */
static unsigned
tg_mock_accepts(tg_str_t v)
{
    unsigned bits = 0;
    size_t i = 0, start, end;
    int enc;

    while (i < v.len) {
        while (i < v.len && (v.data[i] == ' ' || v.data[i] == ',')) {
            i++;
        }
        start = i;
        while (i < v.len && v.data[i] != ',' && v.data[i] != ';' &&
               v.data[i] != ' ') {
            i++;
        }
        end = i;
        while (i < v.len && v.data[i] != ',') {
            i++;
        }
        if (tg_mock_q_zero(v.data + end, i - end)) {
            continue;
        }
        for (enc = TG_MOCK_ENC_NONE + 1; enc < TG_MOCK_ENC_N; enc++) {
            const char *coding = tg_mock_enc_coding(enc);

            if (tg_str_caseeq((tg_str_t){v.data + start, end - start},
                              (tg_str_t){coding, strlen(coding)})) {
                bits |= 1u << enc;
            }
        }
    }
    return bits;
}

static void
tg_mock_req_header(tg_mock_req_t *r, tg_str_t name, tg_str_t v)
{
    tg_str_t key = {tg_mock_conf.require_key, tg_mock_conf.require_key_len};
    uint64_t n;
    char err[128];

    if (tg_mock_lit_caseeq(name, "x-api-key")) {
        r->has_key = v.len > 0;
        r->key_ok = r->has_key && (key.data == NULL || tg_str_eq(v, key));
    } else if (tg_mock_lit_caseeq(name, "anthropic-version")) {
        r->has_version = v.len > 0;
    } else if (tg_mock_lit_caseeq(name, "authorization")) {
        if (v.len > 7 && tg_mock_lit_caseeq((tg_str_t){v.data, 7}, "bearer ")) {
            tg_str_t tok = {v.data + 7, v.len - 7};

            r->has_bearer = true;
            r->bearer_ok = key.data == NULL || tg_str_eq(tok, key);
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-chunks")) {
        if (tg_mock_parse_uint(v.data, v.len, TG_MOCK_CHUNKS_MAX, &n)) {
            r->chunks = (uint32_t)n;
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-delay-ms")) {
        if (tg_mock_parse_uint(v.data, v.len, TG_MOCK_DELAY_MAX, &n)) {
            r->delay_ms = (uint32_t)n;
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-fault")) {
        r->hdr_fault = true;
        r->hdr_fault_bad = tg_mock_fault_parse(&r->fault, v.data, v.len, err,
                                               sizeof(err)) != TG_OK;
    } else if (tg_mock_lit_caseeq(name, "x-mock-encoding")) {
        /* A trailing "!" compresses whatever the client accepts, as some
         * servers and relays do.  An unknown name asks for none. */
        if (v.len > 0 && v.data[v.len - 1] == '!') {
            r->enc_force = true;
            v.len--;
        }
        r->enc_want = TG_MAX(tg_mock_enc_parse(v), TG_MOCK_ENC_NONE);
    } else if (tg_mock_lit_caseeq(name, "accept-encoding")) {
        r->accepts |= tg_mock_accepts(v);
    }
}

/* Copy what the mock needs from the parsed head <h> into c->r. */
static void
tg_mock_req_init(tg_mock_conn_t *c, const tg_http_req_t *h)
{
    tg_mock_req_t *r = &c->r;
    size_t i, n;

    r->path = tg_mock_route(h->path);
    r->method = h->method;
    r->keep_alive = h->keep_alive;
    r->http11 = h->version == 11;
    r->content_length = h->content_length;
    r->chunked_in = h->chunked;
    r->chunks = tg_mock_conf.chunks;
    r->delay_ms = tg_mock_conf.delay_ms;
    r->enc_want = -1;
    r->openai = r->path == TG_MOCK_P_CHAT;
    n = TG_MIN(h->path.len, (size_t)TG_MOCK_PATH_COPY);
    memcpy(r->path_text, h->path.data, n);
    r->path_text[n] = '\0';
    for (i = 0; i < h->nheaders; i++) {
        tg_mock_req_header(r, h->headers[i].name, h->headers[i].value);
    }
    if (r->path == TG_MOCK_P_OTHER && r->has_bearer && !r->has_key) {
        r->openai = true;
    }
    /* Compress only what the client said it can take, like a server. */
    r->enc = r->enc_want >= 0 ? r->enc_want : tg_mock_conf.encoding;
    if (!r->enc_force && !(r->accepts & (1u << r->enc))) {
        r->enc = TG_MOCK_ENC_NONE;
    }
    if (r->chunked_in) {
        tg_http_chunked_init(&r->ch);
    }
    tg_mock_make_ids(r);
}

/* Fail a request that cannot be read: answer <status> and close. */
static int
tg_mock_reject(tg_mock_conn_t *c, int status, const char *msg)
{
    c->r.close_after = true;
    c->r.dispatched = false;
    if (c->r.id[0] == '\0') {
        tg_mock_make_ids(&c->r);
    }
    if (tg_mock_error_anthropic(c, status,
                                status == 413 ? "request_too_large"
                                              : "invalid_request_error",
                                msg, "", "") != TG_OK) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    return tg_mock_conn_drive(c);
}

/* Parse a request head at the front of c->in.  TG_OK: moved to BODY;
 * TG_AGAIN: incomplete; TG_DONE: rejected and closed or answered. */
static int
tg_mock_parse_head(tg_mock_conn_t *c)
{
    tg_http_req_t *h = &tg_mock_hreq;
    tg_err_t err;
    ssize_t n;
    int rc;

    if (tg_buf_len(&c->in) == 0) {
        return TG_AGAIN;
    }
    rc = tg_http_parse_request(h, c->in.data + c->in.pos, tg_buf_len(&c->in),
                               TG_MOCK_HEAD_MAX, &err);
    if (rc == TG_AGAIN) {
        return TG_AGAIN;
    }
    if (rc != TG_OK) {
        char msg[sizeof(err.text) * 6];

        tg_json_escape(msg, sizeof(msg), err.text, strlen(err.text));
        rc = tg_mock_reject(c, err.code, msg);
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    tg_mock_req_init(c, h);
    tg_buf_consume(&c->in, h->head_len);
    if (c->r.content_length > TG_MOCK_BODY_MAX) {
        rc = tg_mock_reject(c, 413,
                            "Request exceeds the maximum allowed number of "
                            "bytes.");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    if (c->r.content_length > 0 &&
        tg_buf_reserve(&c->in, (size_t)c->r.content_length) == TG_ERROR) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    c->state = TG_MOCK_S_BODY;
    if (h->expect_continue &&
        (c->r.chunked_in ||
         tg_buf_len(&c->in) < (size_t)TG_MAX(c->r.content_length, 0))) {
        /* 25 bytes on a socket that has just delivered a request always
         * fit; if they do not, the client is not reading at all. */
        n = send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
        if (n != 25) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
    }
    return TG_OK;
}

/* See whether the body is complete.  TG_OK, TG_AGAIN, or TG_DONE. */
static int
tg_mock_read_body(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    size_t avail, used = 0, out = 0;
    tg_err_t err;
    char *p;
    int rc;

    if (!r->chunked_in) {
        r->body_len = (size_t)TG_MAX(r->content_length, 0);
        return tg_buf_len(&c->in) >= r->body_len ? TG_OK : TG_AGAIN;
    }
    p = c->in.data + c->in.pos + r->body_len;
    avail = tg_buf_len(&c->in) - r->body_len;
    if (avail == 0) {
        return TG_AGAIN;
    }
    rc = tg_http_chunked_decode(&r->ch, p, avail, &used, &out, &err);
    memmove(p + out, p + used, avail - used);
    c->in.last -= used - out;
    r->body_len += out;
    if (rc == TG_ERROR) {
        rc = tg_mock_reject(c, 400, "malformed chunked request body");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    if (r->body_len > TG_MOCK_BODY_MAX) {
        rc = tg_mock_reject(c, 413,
                            "Request exceeds the maximum allowed number of "
                            "bytes.");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    return rc;
}

/*
 * The request in c->r with its body at the front of c->in is complete:
 * consume it and answer.  Returns what the answer path returns (TG_OK
 * with the request finished, TG_AGAIN while the answer is under way,
 * TG_DONE when the connection is gone).
 */
static int
tg_mock_dispatch(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    const char *body = c->in.data + c->in.pos;
    int rc;

    r->dispatched = true;
    if (r->path >= TG_MOCK_P_HEALTHZ) {
        rc = tg_mock_answer_local(c, body, r->body_len);
        tg_buf_consume(&c->in, r->body_len);
        if (rc != TG_OK) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
        return tg_mock_conn_drive(c);
    }
    r->counted = true;
    if (r->method == TG_HTTP_POST) {
        tg_mock_req_parse_body(r, body, r->body_len);
    }
    tg_buf_consume(&c->in, r->body_len);
    tg_mock_cnt_add(TG_MOCK_C_REQUESTS, 1);
    tg_mock_cnt_add(TG_MOCK_C_PATH + r->path, 1);
    if (r->hdr_fault_bad) {
        memset(&r->fault, 0, sizeof(r->fault));
        r->fault.status = 400;
        r->fault.retry_after = -1;
    } else if (!r->hdr_fault && !tg_mock_fault_take(&r->fault)) {
        memset(&r->fault, 0, sizeof(r->fault));
        r->fault.retry_after = -1;
    }
    tg_mock_fault_count(&r->fault);
    if (r->fault.reset_before) {
        tg_mock_conn_close(c, true);
        return TG_DONE;
    }
    if (r->fault.hang) {
        c->state = TG_MOCK_S_HANG;
        return TG_AGAIN;
    }
    if (r->fault.slow_ms > 0) {
        c->state = TG_MOCK_S_WAIT;
        tg_ev_timer_add(tg_mock_loop, &c->step, r->fault.slow_ms);
        return TG_AGAIN;
    }
    return tg_mock_answer(c);
}

/* Handle every complete request in c->in.  TG_OK or TG_DONE. */
static int
tg_mock_process(tg_mock_conn_t *c)
{
    int rc;

    while (c->state == TG_MOCK_S_HEAD || c->state == TG_MOCK_S_BODY) {
        if (c->state == TG_MOCK_S_HEAD) {
            rc = tg_mock_parse_head(c);
        } else {
            rc = tg_mock_read_body(c);
            if (rc == TG_OK) {
                rc = tg_mock_dispatch(c);
                if (rc == TG_AGAIN) {
                    rc = TG_OK; /* answer under way; state moved on */
                }
            }
        }
        if (rc == TG_DONE) {
            return TG_DONE;
        }
        if (rc == TG_AGAIN) {
            return TG_OK;
        }
    }
    return TG_OK;
}

/*
 * Push output and advance the response: more stream events, the end of
 * the request, or a reset.  TG_OK (idle or request finished), TG_AGAIN
 * (waiting for EPOLLOUT or a timer), TG_DONE (closed).
 */
static int
tg_mock_conn_drive(tg_mock_conn_t *c)
{
    int rc;

    for (;;) {
        rc = tg_mock_flush(c);
        if (rc != TG_OK) {
            return rc;
        }
        if (c->r.rst_after_flush) {
            tg_mock_conn_close(c, true);
            return TG_DONE;
        }
        if (c->state == TG_MOCK_S_WRITE) {
            return tg_mock_req_done(c);
        }
        if (c->state != TG_MOCK_S_STREAM) {
            return TG_OK;
        }
        rc = tg_mock_stream_next(c);
        if (rc == TG_AGAIN) {
            return TG_AGAIN;
        }
        if (rc != TG_OK) {
            tg_log(TG_LOG_WARN, 0, "stream event does not fit; closing fd %d",
                   c->fd);
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
    }
}

/* Drive the response, then serve requests pipelined behind it. */
static int
tg_mock_conn_run(tg_mock_conn_t *c)
{
    int rc = tg_mock_conn_drive(c);

    if (rc == TG_DONE) {
        return TG_DONE;
    }
    if (c->state == TG_MOCK_S_HEAD && tg_buf_len(&c->in) > 0) {
        return tg_mock_process(c);
    }
    return rc;
}

/* ---------------------------------------------------------- event handlers */

/* Read what is there.  TG_OK, or TG_DONE when the connection closed. */
static int
tg_mock_conn_read(tg_mock_conn_t *c, uint32_t events)
{
    size_t room;
    ssize_t n;
    int rc;

    for (;;) {
        rc = tg_buf_reserve(&c->in, TG_MOCK_READ_MIN);
        if (rc == TG_DECLINED && c->state >= TG_MOCK_S_WAIT &&
            !(events & (EPOLLERR | EPOLLHUP))) {
            /* Pipelined input piles up behind a long answer: stop reading
             * until the answer is out. */
            c->in_paused = true;
            tg_mock_conn_mask(c, tg_buf_len(&c->out) > 0);
            return TG_OK;
        }
        if (rc != TG_OK) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
        room = c->in.cap - c->in.last;
        n = read(c->fd, c->in.data + c->in.last, room);
        if (n > 0) {
            c->in.last += (size_t)n;
            c->last_active = tg_ev_now(tg_mock_loop);
            if ((size_t)n < room) {
                return TG_OK;
            }
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return TG_OK;
        }
        /* EOF or a reset: a request still owed is logged as aborted. */
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
}

static void
tg_mock_conn_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_mock_conn_t *c = data;

    (void)loop;
    (void)fd;
    if (events & EPOLLOUT) {
        if (tg_mock_conn_run(c) == TG_DONE) {
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (c->in_paused && (events & (EPOLLERR | EPOLLHUP))) {
            tg_mock_conn_close(c, false);
            return;
        }
        if (c->in_paused || tg_mock_conn_read(c, events) == TG_DONE) {
            return;
        }
        if (c->state == TG_MOCK_S_HEAD || c->state == TG_MOCK_S_BODY) {
            (void)tg_mock_process(c);
        }
    }
}

static void
tg_mock_idle_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_mock_conn_t *c = t->data;
    uint64_t quiet = tg_ev_now(loop) - c->last_active;

    if (quiet >= TG_MOCK_IDLE_MS) {
        tg_mock_conn_close(c, false);
        return;
    }
    tg_ev_timer_add(loop, &c->idle, TG_MOCK_IDLE_MS - quiet);
}

static void
tg_mock_step_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_mock_conn_t *c = t->data;

    (void)loop;
    if (c->state == TG_MOCK_S_WAIT) {
        if (tg_mock_answer(c) == TG_DONE) {
            return;
        }
        if (c->state == TG_MOCK_S_HEAD && tg_buf_len(&c->in) > 0) {
            (void)tg_mock_process(c);
        }
        return;
    }
    (void)tg_mock_conn_run(c);
}

static void tg_mock_accept_handler(tg_ev_loop_t *loop, int fd, void *data,
                                   uint32_t events);

static void
tg_mock_accept_resume(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)t;
    (void)tg_ev_add(loop, tg_mock_listen_fd, TG_EV_READ, tg_mock_accept_handler,
                    NULL);
}

static void
tg_mock_conn_open(tg_ev_loop_t *loop, int cfd)
{
    tg_mock_conn_t *c;
    int one = 1;

    (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tg_log(TG_LOG_WARN, errno, "calloc(conn) failed");
        close(cfd);
        return;
    }
    c->fd = cfd;
    tg_buf_init(&c->in, TG_MOCK_IN_MAX);
    tg_buf_init(&c->out, TG_MOCK_OUT_MAX);
    c->idle.handler = tg_mock_idle_handler;
    c->idle.data = c;
    c->step.handler = tg_mock_step_handler;
    c->step.data = c;
    if (tg_ev_add(loop, cfd, TG_EV_READ, tg_mock_conn_handler, c) != TG_OK) {
        close(cfd);
        free(c);
        return;
    }
    c->next = tg_mock_conns;
    if (c->next != NULL) {
        c->next->prev = c;
    }
    tg_mock_conns = c;
    c->last_active = tg_ev_now(loop);
    tg_ev_timer_add(loop, &c->idle, TG_MOCK_IDLE_MS);
    tg_mock_cnt_add(TG_MOCK_C_ACCEPTED, 1);
    tg_mock_cnt_add(TG_MOCK_C_ACTIVE, 1);
}

static void
tg_mock_accept_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    int i, cfd;

    (void)data;
    (void)events;
    for (i = 0; i < TG_MOCK_ACCEPT_MAX; i++) {
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            tg_mock_conn_open(loop, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        /* Out of fds or memory: the listening socket would stay readable
         * and spin the loop, so stop accepting for a moment. */
        tg_log(TG_LOG_WARN, errno, "accept4() failed; pausing accepts 100 ms");
        tg_ev_del(loop, fd);
        tg_ev_timer_add(loop, &tg_mock_accept_timer, 100);
        return;
    }
}

static void
tg_mock_signal_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    struct signalfd_siginfo si;

    (void)data;
    (void)events;
    if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        tg_log(TG_LOG_NOTICE, 0, "signal %u received; exiting", si.ssi_signo);
    }
    tg_ev_stop(loop);
}

/* -------------------------------------------------------------- process */

/* One worker: serve <lfd> until TERM/INT.  Returns the exit status. */
static int
tg_mock_worker(int lfd, int slot, int setsize)
{
    sigset_t mask;
    int sfd = -1, rc = 1;

    tg_log_set_role("mock", slot);
    tg_mock_pid = (unsigned)getpid();
    tg_mock_listen_fd = lfd;
    tg_mock_accept_timer.handler = tg_mock_accept_resume;
    tg_mock_loop = tg_ev_create(setsize);
    if (tg_mock_loop == NULL) {
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd == -1) {
        tg_log(TG_LOG_ERR, errno, "signalfd() failed");
        goto done;
    }
    if (tg_ev_add(tg_mock_loop, sfd, TG_EV_READ, tg_mock_signal_handler,
                  NULL) != TG_OK ||
        tg_ev_add(tg_mock_loop, lfd, TG_EV_READ, tg_mock_accept_handler,
                  NULL) != TG_OK) {
        goto done;
    }
    tg_ev_run(tg_mock_loop);
    rc = 0;

done:
    while (tg_mock_conns != NULL) {
        memset(&tg_mock_conns->r, 0, sizeof(tg_mock_conns->r));
        tg_mock_conn_close(tg_mock_conns, false);
    }
    tg_ev_timer_del(tg_mock_loop, &tg_mock_accept_timer);
    if (sfd != -1) {
        close(sfd);
    }
    close(lfd);
    tg_ev_destroy(tg_mock_loop);
    tg_mock_loop = NULL;
    return rc;
}

/*
 * Open a listening socket for <host>:<port> with SO_REUSEPORT.  Returns
 * the fd, or -1 after logging.
 */
static int
tg_mock_listen(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        tg_log(TG_LOG_ERR, 0, "getaddrinfo(\"%s\") failed (%s)", host,
               gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, 4096) == 0) {
            break;
        }
        tg_log(TG_LOG_ERR, errno, "bind/listen(%s:%s) failed", host, port);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int
tg_mock_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Parent of -w N workers: forward TERM/INT, reap, exit when all are gone. */
static int
tg_mock_supervise(pid_t *pids, int n)
{
    sigset_t mask;
    siginfo_t si;
    int alive = n, rc = 0, st, i;
    pid_t pid;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    while (alive > 0) {
        if (sigwaitinfo(&mask, &si) == -1) {
            continue;
        }
        if (si.si_signo != SIGCHLD) {
            for (i = 0; i < n; i++) {
                if (pids[i] > 0) {
                    kill(pids[i], SIGTERM);
                }
            }
            continue;
        }
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (i = 0; i < n; i++) {
                if (pids[i] == pid) {
                    pids[i] = 0;
                    alive--;
                }
            }
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                tg_log(TG_LOG_ERR, 0, "worker %d exited abnormally (status %d)",
                       (int)pid, st);
                rc = 1;
            }
        }
    }
    return rc;
}

/* Fork one worker per socket in <fds> (the parent closes its copies and
 * sets them to -1), then supervise.  Returns the exit status. */
static int
tg_mock_spawn(int *fds, int n, int setsize)
{
    pid_t pids[256];
    int i, j;

    for (i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (j = 0; j < n; j++) {
                if (j != i) {
                    close(fds[j]);
                }
            }
            _exit(tg_mock_worker(fds[i], i, setsize));
        }
        if (pids[i] == -1) {
            tg_log(TG_LOG_ERR, errno, "fork() failed");
            pids[i] = 0;
        }
    }
    for (i = 0; i < n; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    return tg_mock_supervise(pids, n);
}

static void
tg_mock_usage(FILE *f)
{
    fprintf(f,
            "usage: mock-upstream -l HOST:PORT [-w N] [--chunks N] "
            "[--delay-ms MS]\n"
            "                     [--fault SPEC] [--ledger FILE] "
            "[--require-key KEY] [--encoding ENC] [-q]\n"
            "  -l, --listen HOST:PORT  address to listen on (port 0: any)\n"
            "  -w, --workers N         worker processes (SO_REUSEPORT), "
            "default 1\n"
            "      --chunks N          content deltas per answer, default 5\n"
            "      --delay-ms MS       delay before each stream delta\n"
            "      --fault SPEC        global fault (see docs/mock-upstream.md)"
            "\n"
            "      --ledger FILE       append one JSON line per request\n"
            "      --require-key KEY   accept only this API key\n"
            "      --encoding ENC      compress answers (gzip, deflate, br, "
            "zstd, ...)\n"
            "                          when the request accepts it\n"
            "  -q, --quiet             log errors only\n");
}

static int
tg_mock_parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"chunks", required_argument, NULL, 'c'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"fault", required_argument, NULL, 'f'},
        {"ledger", required_argument, NULL, 'L'},
        {"require-key", required_argument, NULL, 'k'},
        {"encoding", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int ch;

    while ((ch = getopt_long(argc, argv, "l:w:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            tg_mock_conf.listen = optarg;
            break;
        case 'w':
        case 'c':
        case 'd':
            if (!tg_mock_parse_uint(optarg, strlen(optarg), 1u << 30, &v) ||
                (ch == 'w' && (v < 1 || v > 256)) ||
                (ch == 'c' && v > TG_MOCK_CHUNKS_MAX) ||
                (ch == 'd' && v > TG_MOCK_DELAY_MAX)) {
                fprintf(stderr, "mock-upstream: bad value \"%s\"\n", optarg);
                return TG_ERROR;
            }
            if (ch == 'w') {
                tg_mock_conf.workers = (int)v;
            } else if (ch == 'c') {
                tg_mock_conf.chunks = (uint32_t)v;
            } else {
                tg_mock_conf.delay_ms = (uint32_t)v;
            }
            break;
        case 'f':
            tg_mock_conf.fault = optarg;
            break;
        case 'L':
            tg_mock_conf.ledger = optarg;
            break;
        case 'k':
            tg_mock_conf.require_key = optarg;
            tg_mock_conf.require_key_len = strlen(optarg);
            break;
        case 'e':
            tg_mock_conf.encoding =
                tg_mock_enc_parse((tg_str_t){optarg, strlen(optarg)});
            if (tg_mock_conf.encoding < 0) {
                fprintf(stderr, "mock-upstream: bad --encoding \"%s\"\n",
                        optarg);
                return TG_ERROR;
            }
            break;
        case 'q':
            tg_mock_conf.quiet = true;
            break;
        case 'h':
            tg_mock_usage(stdout);
            exit(0);
        default:
            tg_mock_usage(stderr);
            return TG_ERROR;
        }
    }
    if (tg_mock_conf.listen == NULL || optind != argc) {
        tg_mock_usage(stderr);
        return TG_ERROR;
    }
    return TG_OK;
}

/* Map the shared region and install the --fault spec. */
static int
tg_mock_setup_shared(void)
{
    tg_mock_fault_t f;
    char err[160];
    const char *spec = tg_mock_conf.fault ? tg_mock_conf.fault : "";

    if (tg_mock_fault_parse(&f, spec, strlen(spec), err, sizeof(err)) !=
        TG_OK) {
        fprintf(stderr, "mock-upstream: --fault: %s\n", err);
        return TG_ERROR;
    }
    tg_mock_shm = mmap(NULL, sizeof(*tg_mock_shm), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tg_mock_shm == MAP_FAILED) {
        tg_mock_shm = NULL;
        tg_log(TG_LOG_ERR, errno, "mmap(shared counters) failed");
        return TG_ERROR;
    }
    atomic_store(&tg_mock_shm->fault_left, -1);
    tg_mock_fault_store(&f);
    return TG_OK;
}

/* Bind <n> sockets to the same address; the first one fixes port 0. */
static int
tg_mock_open_sockets(int *fds, int n, char *host, size_t host_cap, int *port)
{
    const char *colon = strrchr(tg_mock_conf.listen, ':');
    char portbuf[16];
    size_t hl;
    int i;

    if (colon == NULL) {
        fprintf(stderr, "mock-upstream: -l wants HOST:PORT\n");
        return TG_ERROR;
    }
    hl = (size_t)(colon - tg_mock_conf.listen);
    if (hl >= 2 && tg_mock_conf.listen[0] == '[' &&
        tg_mock_conf.listen[hl - 1] == ']') {
        snprintf(host, host_cap, "%.*s", (int)(hl - 2),
                 tg_mock_conf.listen + 1);
    } else {
        snprintf(host, host_cap, "%.*s", (int)hl, tg_mock_conf.listen);
    }
    snprintf(portbuf, sizeof(portbuf), "%s", colon + 1);
    for (i = 0; i < n; i++) {
        fds[i] = tg_mock_listen(host, portbuf);
        if (fds[i] == -1) {
            return TG_ERROR;
        }
        if (i == 0) {
            *port = tg_mock_bound_port(fds[0]);
            snprintf(portbuf, sizeof(portbuf), "%d", *port);
        }
    }
    return TG_OK;
}

/*
 * Parse the options, map the shared region, bind the sockets, print the
 * "listening" line, then serve in this process (-w 1) or fork the workers
 * and supervise them.  Exit status 0 after TERM/INT, 1 on a setup failure
 * or a worker that died, 2 on a usage error.
 */
int
main(int argc, char **argv)
{
    int fds[256], port = 0, i, rc = 1, setsize;
    char host[256];
    sigset_t mask;

    if (tg_mock_parse_args(argc, argv) != TG_OK) {
        return 2;
    }
    tg_log_open(NULL, NULL, tg_mock_conf.quiet ? TG_LOG_WARN : TG_LOG_NOTICE);
    tg_log_set_role("mock", -1);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    setsize = tg_nofile_raise();
    if (tg_mock_setup_shared() != TG_OK) {
        return 1;
    }
    if (tg_mock_conf.ledger != NULL) {
        tg_mock_ledger_fd =
            open(tg_mock_conf.ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                 0644);
        if (tg_mock_ledger_fd == -1) {
            tg_log(TG_LOG_ERR, errno, "open(\"%s\") failed",
                   tg_mock_conf.ledger);
            return 1;
        }
    }
    for (i = 0; i < tg_mock_conf.workers; i++) {
        fds[i] = -1;
    }
    if (tg_mock_open_sockets(fds, tg_mock_conf.workers, host, sizeof(host),
                             &port) != TG_OK) {
        goto done;
    }
    if (strchr(host, ':') != NULL) {
        printf("mock-upstream listening on [%s]:%d\n", host, port);
    } else {
        printf("mock-upstream listening on %s:%d\n", host, port);
    }
    fflush(stdout);
    if (tg_mock_conf.workers == 1) {
        rc = tg_mock_worker(fds[0], 0, setsize);
        fds[0] = -1;
        goto done;
    }
    rc = tg_mock_spawn(fds, tg_mock_conf.workers, setsize);

done:
    for (i = 0; i < tg_mock_conf.workers; i++) {
        if (fds[i] != -1) {
            close(fds[i]);
        }
    }
    if (tg_mock_ledger_fd != -1) {
        close(tg_mock_ledger_fd);
    }
    munmap(tg_mock_shm, sizeof(*tg_mock_shm));
    return rc;
}
