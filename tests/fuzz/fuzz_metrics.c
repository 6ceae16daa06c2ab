/*
 * tests/fuzz/fuzz_metrics.c
 *      libFuzzer target for the text admin puts into /metrics label values
 *      (admin/metrics.c, tg_metrics_escape): endpoint names and model
 *      names, the latter as upstreams report them.
 *
 * NOTES
 *      The first input byte picks the output size; the rest is the value.
 *      Besides crashes (ASan, UBSan) it checks that the escaped value fits,
 *      is valid UTF-8 (the exposition says charset=utf-8), holds no raw
 *      line feed and no unescaped double quote or backslash, so one series
 *      can never be split or forged by a hostile name, and that it reads
 *      back to a prefix of the value where the value was valid.
 *      admin/metrics.c also renders from shared memory and admin's own
 *      state; the few admin functions it calls are stubbed here.
 *      Build and run with tools/fuzz.sh.
 */
#include "admin/agg.h"
#include "admin/events_store.h"
#include "admin/metrics.h"
#include "admin/store.h"
#include "tests/fuzz/harness.h"

#include <jansson.h>

/* Stubs of admin state tg_metrics_render reads (never called here). */
const tg_agg_stats_t *
tg_agg_stats(void)
{
    return NULL;
}


uint64_t
tg_agg_pending(void)
{
    return 0;
}


tg_store_state_t
tg_store_state(void)
{
    return (tg_store_state_t)0;
}


const tg_events_store_stats_t *
tg_events_store_stats(void)
{
    static const tg_events_store_stats_t zero;

    return &zero;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in, *out, *un;
    size_t cap, i, n = 0;
    json_t *j;

    if (size < 1) {
        return 0;
    }
    cap = 4 + data[0] % 200;
    in = malloc(size);
    out = malloc(cap);
    un = malloc(cap);
    CHECK(in != NULL && out != NULL && un != NULL);
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    tg_metrics_escape(in, out, cap);
    CHECK(strlen(out) < cap);
    CHECK(strchr(out, '\n') == NULL);
    /* Valid UTF-8: jansson takes it as a string. */
    j = json_string(out);
    CHECK(j != NULL);
    json_decref(j);
    for (i = 0; out[i] != '\0'; i++) {
        if (out[i] == '\\') {
            i++;
            CHECK(out[i] == '\\' || out[i] == '"' || out[i] == 'n');
            un[n++] = out[i] == 'n' ? '\n' : out[i];
        } else {
            CHECK(out[i] != '"');
            un[n++] = out[i];
        }
    }
    un[n] = '\0';
    /* Unescaped, it is the start of the value with only bytes that were
     * not UTF-8 (or a character cut at the end) replaced by '?'. */
    CHECK(n <= strlen(in));
    for (i = 0; i < n; i++) {
        CHECK(un[i] == in[i] || (un[i] == '?' && (unsigned char)in[i] >= 0x80));
    }
    free(in);
    free(out);
    free(un);
    return 0;
}
