/*
 * tests/fuzz/fuzz_models.c
 *      libFuzzer target for the model-name patterns: the glob matcher of
 *      shm/models.c, the model table behind key allow-lists, and the price
 *      table of shm/prices.c (lookup and cost).
 *
 * NOTES
 *      The input is lines: every line but the last is a pattern, the last
 *      is the model name (any bytes).  Besides crashes (ASan, UBSan) it
 *      checks the matcher against a plain dynamic-programming one, the table's
 * bitmap against the matcher for every pattern, that a price lookup finds a row
 * exactly when some pattern matches and that the row found matches, and the
 * cost against 128-bit arithmetic done here. Build and run with tools/fuzz.sh.
 */
#include "shm/models.h"
#include "shm/prices.h"
#include "shm/shm.h"
#include "tests/fuzz/harness.h"

#define NPAT 16


/* The obvious glob by dynamic programming: '*' matches any run of bytes;
 * ok[i][j]: the first i pattern bytes match the first j name bytes. */
static bool
fuzz_glob_ref(const char *p, size_t pn, const char *s, size_t sn)
{
    static bool ok[TG_SHM_MODELS_PATTERN + 1][257];
    size_t i, j;

    CHECK(pn <= TG_SHM_MODELS_PATTERN && sn <= 256);
    for (i = 0; i <= pn; i++) {
        for (j = 0; j <= sn; j++) {
            if (i == 0) {
                ok[i][j] = j == 0;
            } else if (p[i - 1] == '*') {
                ok[i][j] = ok[i - 1][j] || (j > 0 && ok[i][j - 1]);
            } else {
                ok[i][j] = j > 0 && ok[i - 1][j - 1] && p[i - 1] == s[j - 1];
            }
        }
    }
    return ok[pn][sn];
}


static void
fuzz_cost(const uint8_t *data, size_t size)
{
    uint64_t tokens[TG_PRICE_N], pusd[TG_PRICE_N], cost, v;
    unsigned __int128 sum = 0, want;
    uint32_t factor;
    size_t i, j;

    for (i = 0; i < TG_PRICE_N; i++) {
        for (v = 0, j = 0; j < 8; j++) {
            v = (v << 8) | data[(i * 16 + j) % size];
        }
        tokens[i] = v >> (data[i % size] % 40);
        for (v = 0, j = 8; j < 16; j++) {
            v = (v << 8) | data[(i * 16 + j) % size];
        }
        pusd[i] = v >> (data[(i + 1) % size] % 48);
        sum += (unsigned __int128)tokens[i] * pusd[i];
    }
    factor = (uint32_t)data[0] * 37 + data[size - 1];
    if (tg_shm_prices_cost(tokens, pusd, factor, &cost) == TG_SHM_OK) {
        want = sum * factor / 1000 + ((sum * factor) % 1000 >= 500);
        CHECK(want == cost);
    } else {
        CHECK(cost == UINT64_MAX);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tg_shm_models_t *m;
    static tg_shm_prices_t *t;
    static tg_shm_price_t rows[NPAT];
    const char *pats[NPAT], *s = (const char *)data, *nl, *model;
    char buf[NPAT][TG_SHM_MODELS_PATTERN];
    size_t n = 0, len = size, mlen, plen, i;
    uint64_t mask, pusd[TG_PRICE_N];
    bool any = false, hit;
    int rc;

    if (m == NULL) {
        m = tg_shm_models_init(aligned_alloc(64, tg_shm_models_size()));
        t = tg_shm_prices_init(aligned_alloc(64, tg_shm_prices_size()));
        CHECK(m != NULL && t != NULL);
    }
    if (size == 0) {
        return 0;
    }
    fuzz_cost(data, size);
    while (n < NPAT && (nl = memchr(s, '\n', len)) != NULL) {
        plen = (size_t)(nl - s);
        if (plen > 0 && plen < TG_SHM_MODELS_PATTERN &&
            memchr(s, '\0', plen) == NULL) {
            memcpy(buf[n], s, plen);
            buf[n][plen] = '\0';
            pats[n] = buf[n];
            n++;
        }
        len -= plen + 1;
        s = nl + 1;
    }
    /* The name: an exact-size copy, so any read past it is reported. */
    mlen = len > 256 ? 256 : len;
    model = memcpy(malloc(mlen ? mlen : 1), s, mlen);

    CHECK(tg_shm_models_set(m, pats, (uint32_t)n) == TG_SHM_OK);
    CHECK(tg_shm_models_match(m, model, mlen, &mask) == TG_SHM_OK);
    for (i = 0; i < n; i++) {
        hit = fuzz_glob_ref(pats[i], strlen(pats[i]), model, mlen);
        CHECK(hit == tg_shm_models_glob(pats[i], strlen(pats[i]), model, mlen));
        CHECK(hit == ((mask >> i) & 1));
        CHECK(tg_shm_models_find(m, pats[i]) >= 0);
        any = any || hit;
        memset(&rows[i], 0, sizeof(rows[i]));
        memcpy(rows[i].pattern, buf[i], strlen(buf[i]) + 1);
        rows[i].pusd[0] = i + 1;
    }
    CHECK((mask >> n) == 0 || n == 64);

    rc = tg_shm_prices_set(t, rows, n);
    CHECK(rc == TG_SHM_OK);
    rc = tg_shm_prices_lookup(t, model, mlen, pusd);
    CHECK(rc == (any ? TG_SHM_OK : TG_SHM_MISS));
    if (rc == TG_SHM_OK) {
        i = pusd[0] - 1;
        CHECK(i < n);
        CHECK(fuzz_glob_ref(pats[i], strlen(pats[i]), model, mlen));
    }
    free((void *)model);
    return 0;
}
