/*
 * tools/mock.h
 *      The mock upstream's shared types, state and internal interface.
 *
 * NOTES
 *      The mock is split along its phases, each file using only those
 *      after it: tools/mock-upstream.c (process, connections, reading and
 *      dispatching requests), tools/mock-respond.c (response output,
 *      streams and the API shapes of each endpoint) and tools/mock-fault.c
 *      (process state, counters, the shared fault, the ledger, helpers).
 * Everything here is internal to the mock; one process per worker, single
 * threaded.
 */
#ifndef TG_TOOLS_MOCK_H
#define TG_TOOLS_MOCK_H

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
    TG_MOCK_P_RESPONSES, /* OpenAI Responses API */
    TG_MOCK_P_OTHER,     /* unknown path: 404, counted and logged */
    TG_MOCK_P_HEALTHZ,
    TG_MOCK_P_FAULT,
    TG_MOCK_P_STATS,
    TG_MOCK_P_RESET
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
    TG_MOCK_F_HANG,
    TG_MOCK_F_CLOSE_REUSED,
    TG_MOCK_F_GARBAGE,
    TG_MOCK_F_BOMB,
    TG_MOCK_F_HUGE_HEAD,
    TG_MOCK_F_ENDLESS,
    TG_MOCK_F_MAX
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
    TG_MOCK_C_STATUS = TG_MOCK_C_FAULT + TG_MOCK_F_MAX,     /* 2xx, 4xx, ... */
    TG_MOCK_C_MAX = TG_MOCK_C_STATUS + 4
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
    bool close_reused; /* close a reused connection without answering */
    bool garbage;      /* answer bytes that are not HTTP, then close */
    bool bomb;         /* 200 whose gzip body inflates to 256 MiB */
    bool huge_head;    /* a response head of 1 MiB that never ends */
    bool endless;      /* streams: content deltas without end */
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
    uint32_t reasoning; /* Responses API: reasoning part of out_tok */
    char tool[TG_MOCK_MODEL_MAX * 6 + 1]; /* escaped name of the tool the
                                             answer calls, "" = text */
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
    uint32_t served;             /* requests dispatched on it so far */
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

/* Process state (tools/mock-fault.c). */
extern tg_mock_conf_t tg_mock_conf;
extern tg_mock_shared_t *tg_mock_shm;
extern tg_ev_loop_t *tg_mock_loop;
extern int tg_mock_ledger_fd;
extern int tg_mock_listen_fd;
extern tg_ev_timer_t tg_mock_accept_timer;
extern tg_mock_conn_t *tg_mock_conns;
extern unsigned tg_mock_pid;
extern uint64_t tg_mock_seq;
extern tg_mock_fault_t tg_mock_gfault;
extern uint32_t tg_mock_gfault_seq;
extern tg_http_req_t tg_mock_hreq;
extern const char *tg_mock_cnt_names[TG_MOCK_C_MAX];

/* Internal interface, by the file that defines each function. */
void tg_mock_fault_count(const tg_mock_fault_t *f);
int tg_mock_fault_parse(tg_mock_fault_t *f, const char *s, size_t len,
                        char *err, size_t errlen);
void tg_mock_fault_store(const tg_mock_fault_t *f);
void tg_mock_fault_sync(void);
bool tg_mock_fault_take(tg_mock_fault_t *f);
void tg_mock_ledger(const tg_mock_req_t *r, bool completed);
void tg_mock_cnt_add(int idx, uint64_t n);
void tg_mock_conn_close(tg_mock_conn_t *c, bool rst);
int tg_mock_conn_drive(tg_mock_conn_t *c);
bool tg_mock_lit_eq(tg_str_t s, const char *lit);
bool tg_mock_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);
int tg_mock_answer(tg_mock_conn_t *c);
int tg_mock_huge_head(tg_mock_conn_t *c);
int tg_mock_answer_local(tg_mock_conn_t *c, const char *body, size_t len);
int tg_mock_error_anthropic(tg_mock_conn_t *c, int status, const char *type,
                            const char *msg, const char *details,
                            const char *extra);
int tg_mock_stream_next(tg_mock_conn_t *c);

#endif /* TG_TOOLS_MOCK_H */
