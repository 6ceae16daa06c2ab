/*
 * worker/failover.c
 *      Classify upstream failures: retry or not, and the endpoint verdict.
 *
 * NOTES
 *      Pure and bounded (see failover.h); called by worker/proxy.c when a
 *      response head arrives and when an attempt ends.  The body scanner
 *      walks at most TG_FAILOVER_BODY_MAX bytes once, keeps the keys of
 *      the first TG_FAILOVER_DEPTH nested objects, and stops at the first
 *      byte that cannot continue a JSON document.
 */
#include "worker/failover.h"
#include "shm/ep.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TG_FAILOVER_DEPTH 4 /* object levels whose keys are tracked */

enum {
    TG_FAILOVER_S_VALUE = 0, /* a value may start */
    TG_FAILOVER_S_KEY,       /* a member name or '}' */
    TG_FAILOVER_S_COLON,     /* ':' after a member name */
    TG_FAILOVER_S_AFTER      /* ',' or a closing bracket */
};

typedef struct {
    char kind;    /* '{' or '[' */
    char key[24]; /* current member name in an object, cut to fit */
} tg_failover_frame_t;


/* See failover.h. */
int
tg_failover_status(int status)
{
    switch (status) {
    case 401:
    case 402:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
        return TG_FAILOVER_RETRY;
    default:
        return TG_FAILOVER_PASS;
    }
}


/*
 * Read the JSON string starting after the opening quote at p[*i] into
 * <dst> of <cap> bytes (cut to fit, escapes kept as written; NULL to
 * skip it).  Leaves *i after the closing quote; false when the input ends
 * first.
 */
static bool
tg_failover_string(const char *p, size_t len, size_t *i, char *dst, size_t cap)
{
    size_t n = 0;

    while (*i < len) {
        char ch = p[(*i)++];

        if (ch == '"') {
            if (dst != NULL) {
                dst[n] = '\0';
            }
            return true;
        }
        if (ch == '\\' && *i < len) {
            if (dst != NULL && n + 2 < cap) {
                dst[n++] = ch;
                dst[n++] = p[*i];
            }
            (*i)++;
            continue;
        }
        if (dst != NULL && n + 1 < cap) {
            dst[n++] = ((unsigned char)ch < 0x20) ? ' ' : ch;
        }
    }
    if (dst != NULL) {
        dst[n] = '\0';
    }
    return false;
}


/* The field of <out> for a string at <path> (<depth> object keys), or
 * NULL when it is not one we keep. */
static char *
tg_failover_slot(tg_failover_frame_t *st, unsigned depth,
                 tg_failover_body_t *out, size_t *cap)
{
    unsigned d;

    for (d = 0; d < depth; d++) {
        if (st[d].kind != '{') {
            return NULL;
        }
    }
    if (depth == 1 && strcmp(st[0].key, "error") == 0) {
        *cap = sizeof(out->type);
        return out->type;
    }
    if (depth < 2 || strcmp(st[0].key, "error") != 0) {
        return NULL;
    }
    if (depth == 2 && strcmp(st[1].key, "type") == 0) {
        *cap = sizeof(out->type);
        return out->type;
    }
    if (depth == 2 && strcmp(st[1].key, "code") == 0) {
        *cap = sizeof(out->code);
        return out->code;
    }
    if (depth == 2 && strcmp(st[1].key, "message") == 0) {
        *cap = sizeof(out->message);
        return out->message;
    }
    if (depth == 3 && strcmp(st[1].key, "details") == 0 &&
        strcmp(st[2].key, "error_code") == 0) {
        *cap = sizeof(out->error_code);
        return out->error_code;
    }
    return NULL;
}


/* See failover.h. */
bool
tg_failover_scan(const char *p, size_t len, tg_failover_body_t *out)
{
    tg_failover_frame_t st[TG_FAILOVER_DEPTH];
    unsigned depth = 0, state = TG_FAILOVER_S_VALUE;
    uint64_t arrays = 0; /* bit d: level d + 1 is an array */
    size_t i = 0, cap = 0;
    char *dst;

    memset(out, 0, sizeof(*out));
    if (p == NULL) {
        return false;
    }
    len = len < TG_FAILOVER_BODY_MAX ? len : TG_FAILOVER_BODY_MAX;
    while (i < len) {
        char ch = p[i];

        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            i++;
            continue;
        }
        switch (state) {
        case TG_FAILOVER_S_KEY:
            if (ch == '}') {
                goto pop;
            }
            if (ch != '"') {
                goto done;
            }
            i++;
            if (!tg_failover_string(
                    p, len, &i,
                    depth <= TG_FAILOVER_DEPTH ? st[depth - 1].key : NULL,
                    sizeof(st[0].key))) {
                goto done;
            }
            state = TG_FAILOVER_S_COLON;
            continue;
        case TG_FAILOVER_S_COLON:
            if (ch != ':') {
                goto done;
            }
            i++;
            state = TG_FAILOVER_S_VALUE;
            continue;
        case TG_FAILOVER_S_AFTER:
            if (depth == 0) {
                goto done;
            }
            if (ch == ',') {
                i++;
                state = (arrays >> (depth - 1) & 1) ? TG_FAILOVER_S_VALUE
                                                    : TG_FAILOVER_S_KEY;
                continue;
            }
            if (ch == '}' || ch == ']') {
                goto pop;
            }
            goto done;
        default: /* TG_FAILOVER_S_VALUE */
            break;
        }

        /* A value. */
        if (ch == '{' || ch == '[') {
            if (depth == 64) {
                goto done;
            }
            if (depth < TG_FAILOVER_DEPTH) {
                st[depth].kind = ch;
                st[depth].key[0] = '\0';
            }
            arrays &= ~(1ull << depth);
            arrays |= (uint64_t)(ch == '[') << depth;
            depth++;
            i++;
            state = (ch == '{') ? TG_FAILOVER_S_KEY : TG_FAILOVER_S_VALUE;
            continue;
        }
        if (ch == ']' && depth > 0) {
            /* An empty array. */
            goto pop;
        }
        if (ch == '"') {
            i++;
            dst = depth <= TG_FAILOVER_DEPTH
                      ? tg_failover_slot(st, depth, out, &cap)
                      : NULL;
            if (!tg_failover_string(p, len, &i, dst, cap)) {
                goto done;
            }
            state = TG_FAILOVER_S_AFTER;
            continue;
        }
        /* A number, true, false or null: skip to its end. */
        while (i < len && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
               p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t') {
            if (p[i] == '"' || p[i] == '{' || p[i] == '[' || p[i] == ':') {
                goto done;
            }
            i++;
        }
        state = TG_FAILOVER_S_AFTER;
        continue;

    pop:
        if (depth == 0) {
            goto done;
        }
        depth--;
        i++;
        state = TG_FAILOVER_S_AFTER;
        if (depth == 0) {
            break;
        }
    }

done:
    return out->type[0] != '\0' || out->code[0] != '\0' ||
           out->error_code[0] != '\0' || out->message[0] != '\0';
}


/* Whether <hay> contains <needle>, ignoring ASCII case. */
static bool
tg_failover_has(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return true;
        }
    }
    return false;
}


/* Whether the NUL-free bytes <p>/<len> contain <needle> exactly. */
static bool
tg_failover_mem(const char *p, size_t len, const char *needle)
{
    return p != NULL && memmem(p, len, needle, strlen(needle)) != NULL;
}


/*
 * Whether the error says the endpoint's account ran out of money: set
 * <why> to the evidence.  <status> is 429, 402 or 400; see failover.h for
 * why a 400 needs the message to start with the text.
 */
static bool
tg_failover_quota(int status, const tg_failover_body_t *b, const char *body,
                  size_t len, const char **why)
{
    static const char *const starts[] = {
        "You have reached your specified API usage limits",
        "Your credit balance is too low"};
    static const char *const phrases[] = {"spend limit", "spending limit",
                                          "usage limits", "credit balance",
                                          "exceeded your current quota"};
    size_t k;

    if (strcmp(b->error_code, "enforced_spend_limit_reached") == 0) {
        *why = "enforced_spend_limit_reached";
        return true;
    }
    if (strcmp(b->code, "insufficient_quota") == 0 ||
        strcmp(b->type, "insufficient_quota") == 0) {
        *why = "insufficient_quota";
        return true;
    }
    for (k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
        if (strncmp(b->message, starts[k], strlen(starts[k])) == 0) {
            *why = b->message;
            return true;
        }
    }
    if (status == 402) {
        *why = b->message[0] ? b->message : "payment required";
        return true;
    }
    if (status != 429) {
        return false;
    }
    for (k = 0; k < sizeof(phrases) / sizeof(phrases[0]); k++) {
        if (tg_failover_has(b->message, phrases[k])) {
            *why = b->message;
            return true;
        }
    }
    len = len < TG_FAILOVER_BODY_MAX ? len : TG_FAILOVER_BODY_MAX;
    if (tg_failover_mem(body, len, "enforced_spend_limit_reached")) {
        *why = "enforced_spend_limit_reached";
        return true;
    }
    if (tg_failover_mem(body, len, "insufficient_quota")) {
        *why = "insufficient_quota";
        return true;
    }
    return false;
}


/* A brief, jittered cool-down: 1 s plus up to 4 s. */
static uint64_t
tg_failover_brief(uint32_t rnd)
{
    return TG_FAILOVER_BRIEF_MIN + rnd % (TG_FAILOVER_BRIEF_SPAN + 1);
}


/*
 * Cool <out> for the upstream's retry-after (capped at 5 min) plus a
 * jitter of up to 10% (at most 5 s), so endpoints cooled by one storm do
 * not all come back in the same millisecond.  Returns the capped wait.
 */
static uint64_t
tg_failover_retry_after(const tg_failover_in_t *in, tg_failover_t *out)
{
    uint64_t ra = (uint64_t)in->retry_after_ms, jitter;

    if (ra > TG_FAILOVER_RETRY_AFTER_MAX) {
        ra = TG_FAILOVER_RETRY_AFTER_MAX;
    }
    jitter =
        ra / 10 < TG_FAILOVER_JITTER_MAX ? ra / 10 : TG_FAILOVER_JITTER_MAX;
    out->until_ms = in->now_ms + ra + in->rnd % (jitter + 1);
    out->cool_kind = TG_EP_COOL_RETRY_AFTER;
    return ra;
}


/* See failover.h. */
void
tg_failover_classify(const tg_failover_in_t *in, tg_failover_t *out)
{
    tg_failover_body_t b;
    const char *why = NULL, *regain;
    uint64_t ra;
    int s = in->status;

    memset(out, 0, sizeof(*out));
    out->verdict = TG_EP_V_OK;
    if (in->client_gone) {
        out->verdict = TG_EP_V_NONE;
        snprintf(out->reason, sizeof(out->reason), "client closed");
        return;
    }
    if (s == 0 || in->transport != 0) {
        out->verdict = TG_EP_V_FAIL;
        snprintf(out->reason, sizeof(out->reason), "%s",
                 in->transport_text ? in->transport_text
                                    : "no response from upstream");
        return;
    }
    if (s < 400 || (s < 500 && s != 400 && s != 401 && s != 402 && s != 429)) {
        return;
    }
    tg_failover_scan(in->body, in->body_len, &b);
    if (s == 400 || s == 402 || s == 429) {
        if (tg_failover_quota(s, &b, in->body, in->body_len, &why)) {
            out->verdict = TG_EP_V_QUOTA;
            out->until_ms = in->now_ms + in->quota_cooldown_ms;
            regain = strstr(b.message, "regain access on ");
            if (regain != NULL && why != b.message) {
                /* Anthropic says when the cap resets: worth keeping. */
                snprintf(out->reason, sizeof(out->reason),
                         "spend cap: %.32s; %.48s", why, regain);
            } else {
                snprintf(out->reason, sizeof(out->reason), "spend cap: %.80s",
                         why);
            }
            return;
        }
        if (s == 400) {
            return;
        }
    }
    if (s == 401) {
        out->verdict = TG_EP_V_FAIL;
        snprintf(out->reason, sizeof(out->reason),
                 "upstream status 401: the endpoint's credential was "
                 "refused");
        return;
    }
    if (s == 429) {
        out->verdict = TG_EP_V_RATE;
        if (in->retry_after_ms >= 0) {
            ra = tg_failover_retry_after(in, out);
            snprintf(out->reason, sizeof(out->reason),
                     "rate limited (status %d, retry-after %llu ms)", s,
                     (unsigned long long)ra);
        } else {
            out->until_ms = in->now_ms + tg_failover_brief(in->rnd);
            out->cool_kind = TG_EP_COOL_BRIEF;
            snprintf(out->reason, sizeof(out->reason),
                     "rate limited (status %d, no retry-after)", s);
        }
        return;
    }
    if (s == 529 || strcmp(b.type, "overloaded_error") == 0 ||
        tg_failover_has(b.message, "overloaded")) {
        out->verdict = TG_EP_V_OVERLOAD;
        if (in->retry_after_ms >= 0) {
            tg_failover_retry_after(in, out);
            snprintf(out->reason, sizeof(out->reason),
                     "overloaded (status %d, retry-after %lld ms)", s,
                     (long long)in->retry_after_ms);
            return;
        }
        out->until_ms = in->now_ms + tg_failover_brief(in->rnd);
        out->cool_kind = TG_EP_COOL_BRIEF;
        snprintf(out->reason, sizeof(out->reason), "overloaded (status %d)", s);
        return;
    }
    out->verdict = TG_EP_V_FAIL;
    snprintf(out->reason, sizeof(out->reason), "upstream status %d%s%.60s", s,
             b.type[0] ? ": " : "", b.type);
}
