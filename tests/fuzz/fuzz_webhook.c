/*
 * tests/fuzz/fuzz_webhook.c
 *      libFuzzer target for how admin reads a webhook's or an endpoint
 *      test's answer (admin/webhook.c, tg_webhook_snippet): any bytes an
 *      HTTP peer sends back become the text shown in the admin API.
 *
 * NOTES
 *      The first input byte picks the output size; the rest is the body
 *      the peer answered.  Besides crashes (ASan, UBSan) it checks that
 *      the snippet fits, holds no control character, is valid UTF-8 (it
 *      goes into a JSON answer) and is the start of the body with only
 *      control characters and bytes that are not UTF-8 replaced.
 *      Build and run with tools/fuzz.sh.
 */
#include "admin/webhook.h"
#include "tests/fuzz/harness.h"

#include <jansson.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_webhook_result_t res;
    char *body, *out;
    size_t cap, n, i;
    json_t *j;

    if (size < 1) {
        return 0;
    }
    cap = 1 + data[0] * 3;
    /* Exact-size copies: any read past them is an ASan report. */
    body = malloc(size - 1 ? size - 1 : 1);
    out = malloc(cap);
    CHECK(body != NULL && out != NULL);
    memcpy(body, data + 1, size - 1);
    memset(&res, 0, sizeof(res));
    res.status = 500;
    res.body = body;
    res.body_len = size - 1;
    n = tg_webhook_snippet(&res, out, cap);
    CHECK(n < cap && strlen(out) == n && n <= res.body_len);
    j = json_stringn(out, n);
    CHECK(j != NULL);
    json_decref(j);
    for (i = 0; i < n; i++) {
        CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
        CHECK(out[i] == body[i] || out[i] == ' ' || out[i] == '?');
    }
    free(body);
    free(out);
    return 0;
}
