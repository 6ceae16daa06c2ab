/*
 * tests/fuzz/fuzz_json.c
 *      libFuzzer target for the top-level member scanner (request "model",
 *      "stream", "metadata"; response "usage").
 *
 * NOTES
 *      Invariants: never reads or writes out of bounds (ASan), captures stay
 *      within their buffers, and feeding the input in two pieces at a split
 *      chosen by the first byte gives exactly the result of one feed.
 */
#include "core/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char a[32], b[8], c[300];
    tg_json_field_t f[3];
} tg_fz_t;


static void
tg_fz_run(tg_fz_t *t, const char *p, size_t len, size_t split)
{
    tg_json_scan_t s;

    t->f[0] = (tg_json_field_t){
        .name = "model", .name_len = 5, .buf = t->a, .cap = sizeof(t->a)};
    t->f[1] = (tg_json_field_t){
        .name = "stream", .name_len = 6, .buf = t->b, .cap = sizeof(t->b)};
    t->f[2] = (tg_json_field_t){
        .name = "usage", .name_len = 5, .buf = t->c, .cap = sizeof(t->c)};
    tg_json_scan_init(&s, t->f, 3);
    tg_json_scan_feed(&s, p, split);
    tg_json_scan_feed(&s, p + split, len - split);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fz_t x, y;
    size_t split, i;

    if (size == 0) {
        return 0;
    }
    split = data[0] % size;
    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    tg_fz_run(&x, (const char *)data + 1, size - 1, 0);
    tg_fz_run(&y, (const char *)data + 1, size - 1,
              split < size - 1 ? split : size - 1);
    for (i = 0; i < 3; i++) {
        if (x.f[i].len > x.f[i].cap || x.f[i].len != y.f[i].len ||
            x.f[i].found != y.f[i].found ||
            memcmp(x.f[i].buf, y.f[i].buf, x.f[i].len) != 0) {
            abort();
        }
    }
    return 0;
}
