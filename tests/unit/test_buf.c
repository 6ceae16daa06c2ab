/*
 * tests/unit/test_buf.c
 *      CUnit suite "buf": bounded byte buffers.
 *
 * NOTES
 *      The bound is the point of tg_buf_t, so most tests push against it.
 */
#include "core/buf.h"
#include "core/core.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>


static void
test_starts_empty(void)
{
    tg_buf_t b;

    tg_buf_init(&b, 4096);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    CU_ASSERT_EQUAL(b.cap, 0);
    CU_ASSERT_EQUAL(b.max, 4096);
    tg_buf_fini(&b);
    CU_ASSERT_PTR_NULL(b.data);
}


static void
test_appends_and_consumes(void)
{
    tg_buf_t b;

    tg_buf_init(&b, 4096);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "hello ", 6), TG_OK);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "world", 5), TG_OK);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 11);
    CU_ASSERT_EQUAL(memcmp(b.data + b.pos, "hello world", 11), 0);
    tg_buf_consume(&b, 6);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 5);
    CU_ASSERT_EQUAL(memcmp(b.data + b.pos, "world", 5), 0);
    tg_buf_consume(&b, 5);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    /* Emptied buffers rewind, so the whole block is free again. */
    CU_ASSERT_EQUAL(b.pos, 0);
    CU_ASSERT_EQUAL(b.last, 0);
    tg_buf_fini(&b);
}


static void
test_consume_more_than_available(void)
{
    tg_buf_t b;

    tg_buf_init(&b, 64);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "abc", 3), TG_OK);
    tg_buf_consume(&b, 100);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    CU_ASSERT_EQUAL(b.pos, 0);
    tg_buf_consume(&b, 1);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    tg_buf_fini(&b);
}


static void
test_append_zero_bytes(void)
{
    tg_buf_t b;

    tg_buf_init(&b, 64);
    CU_ASSERT_EQUAL(tg_buf_append(&b, NULL, 0), TG_OK);
    CU_ASSERT_PTR_NULL(b.data);
    tg_buf_fini(&b);
}


static void
test_grows_up_to_max(void)
{
    char chunk[1000];
    size_t i;
    tg_buf_t b;

    memset(chunk, 'x', sizeof(chunk));
    tg_buf_init(&b, 10000);
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, sizeof(chunk)), TG_OK);
        CU_ASSERT(b.cap <= b.max);
        CU_ASSERT(b.cap >= tg_buf_len(&b));
    }
    CU_ASSERT_EQUAL(tg_buf_len(&b), 10000);
    CU_ASSERT_EQUAL(b.cap, 10000);
    /* Full: one more byte is declined, and the data is intact. */
    CU_ASSERT_EQUAL(tg_buf_append(&b, "y", 1), TG_DECLINED);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 10000);
    CU_ASSERT_EQUAL(b.data[9999], 'x');
    tg_buf_fini(&b);
}


static void
test_declines_beyond_max(void)
{
    char big[300];
    tg_buf_t b;

    memset(big, 'z', sizeof(big));
    tg_buf_init(&b, 2048);
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, 2049), TG_DECLINED);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, SIZE_MAX), TG_DECLINED);
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, 2048), TG_OK);
    CU_ASSERT_EQUAL(tg_buf_append(&b, big, 300), TG_OK);
    /* 300 held: SIZE_MAX - 100 more must not wrap around the check. */
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, SIZE_MAX - 100), TG_DECLINED);
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, 1749), TG_DECLINED);
    CU_ASSERT_EQUAL(tg_buf_reserve(&b, 1748), TG_OK);
    tg_buf_fini(&b);
}


static void
test_never_allocates_past_max(void)
{
    tg_buf_t b;

    /* A bound below the first block size must still hold. */
    tg_buf_init(&b, 100);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "0123456789", 10), TG_OK);
    CU_ASSERT(b.cap <= 100);
    tg_buf_fini(&b);
}


static void
test_slides_instead_of_growing(void)
{
    char chunk[1024];
    size_t cap;
    tg_buf_t b;

    memset(chunk, 'a', sizeof(chunk));
    tg_buf_init(&b, 1 << 20);
    CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, sizeof(chunk)), TG_OK);
    cap = b.cap;
    tg_buf_consume(&b, 1000);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 24);
    chunk[0] = 'b';
    CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, 1000), TG_OK);
    /* The 24 unread bytes moved to the front; no new block needed. */
    CU_ASSERT_EQUAL(b.cap, cap);
    CU_ASSERT_EQUAL(b.pos, 0);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 1024);
    CU_ASSERT_EQUAL(b.data[23], 'a');
    CU_ASSERT_EQUAL(b.data[24], 'b');
    tg_buf_fini(&b);
}


static void
test_grows_with_unread_offset(void)
{
    char chunk[1024];
    size_t i;
    tg_buf_t b;

    for (i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (char)i;
    }
    tg_buf_init(&b, 1 << 20);
    CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, sizeof(chunk)), TG_OK);
    tg_buf_consume(&b, 10);
    CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, sizeof(chunk)), TG_OK);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 2 * sizeof(chunk) - 10);
    CU_ASSERT_EQUAL(memcmp(b.data + b.pos, chunk + 10, sizeof(chunk) - 10), 0);
    CU_ASSERT_EQUAL(
        memcmp(b.data + b.pos + sizeof(chunk) - 10, chunk, sizeof(chunk)), 0);
    tg_buf_fini(&b);
}


static void
test_reset_releases_large_blocks(void)
{
    char chunk[4096];
    tg_buf_t b;

    memset(chunk, 'q', sizeof(chunk));
    tg_buf_init(&b, 1 << 20);
    CU_ASSERT_EQUAL(tg_buf_append(&b, chunk, sizeof(chunk)), TG_OK);
    tg_buf_reset(&b, 1024);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.cap, 0);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    CU_ASSERT_EQUAL(b.max, 1 << 20);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "x", 1), TG_OK);
    tg_buf_fini(&b);
}


static void
test_reset_keeps_small_blocks(void)
{
    char *data;
    tg_buf_t b;

    tg_buf_init(&b, 1 << 20);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "abc", 3), TG_OK);
    data = b.data;
    tg_buf_reset(&b, 1 << 16);
    CU_ASSERT_PTR_EQUAL(b.data, data);
    CU_ASSERT_EQUAL(tg_buf_len(&b), 0);
    tg_buf_fini(&b);
}


/* Register the "buf" suite.  0 on success. */
int
tg_test_buf_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"starts empty and allocates nothing", test_starts_empty},
        {"appends and consumes bytes", test_appends_and_consumes},
        {"empties on consuming more than it holds",
         test_consume_more_than_available},
        {"treats an append of zero bytes as a no-op", test_append_zero_bytes},
        {"grows up to max and declines beyond it", test_grows_up_to_max},
        {"declines reservations beyond max without overflow",
         test_declines_beyond_max},
        {"never allocates more than max", test_never_allocates_past_max},
        {"slides unread data to the front instead of growing",
         test_slides_instead_of_growing},
        {"keeps unread data when growing", test_grows_with_unread_offset},
        {"releases a large block on reset", test_reset_releases_large_blocks},
        {"keeps a small block on reset", test_reset_keeps_small_blocks},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("buf", NULL, NULL);
    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
