/*
 * tests/unit/test_crypto.c
 *      admin/crypto: known answers (SHA-256, AES-256-GCM from the GCM
 *      specification's test cases, scrypt from RFC 7914), key and token
 *      formats, password hashes, codes, sealing and the key file.
 */
#include "admin/crypto.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
unhex(const char *s, uint8_t *out, size_t *n)
{
    CU_ASSERT_FATAL(tg_crypto_unhex(s, strlen(s), out, 256, n) == TG_OK);
}


static void
test_sha256_known_answer(void)
{
    uint8_t d[32];
    char hex[65];

    tg_crypto_sha256("abc", 3, d);
    tg_crypto_hex(d, 32, hex);
    CU_ASSERT_STRING_EQUAL(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tg_crypto_digest_hex("", 0, hex);
    CU_ASSERT_STRING_EQUAL(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}


static void
test_unhex_rejects_bad_input(void)
{
    uint8_t out[4];
    size_t n;

    CU_ASSERT(tg_crypto_unhex("abc", 3, out, 4, &n) == TG_ERROR);
    CU_ASSERT(tg_crypto_unhex("zz", 2, out, 4, &n) == TG_ERROR);
    CU_ASSERT(tg_crypto_unhex("0011223344", 10, out, 4, &n) == TG_ERROR);
    CU_ASSERT(tg_crypto_unhex("A0ff", 4, out, 4, &n) == TG_OK);
    CU_ASSERT(n == 2 && out[0] == 0xa0 && out[1] == 0xff);
}


static void
test_base62_of_edge_values(void)
{
    uint8_t n[32];
    char out[44];

    memset(n, 0, sizeof(n));
    tg_crypto_base62(n, out);
    CU_ASSERT_STRING_EQUAL(out, "0000000000000000000000000000000000000000000");
    n[31] = 61;
    tg_crypto_base62(n, out);
    CU_ASSERT_STRING_EQUAL(out, "000000000000000000000000000000000000000000z");
    n[31] = 62;
    tg_crypto_base62(n, out);
    CU_ASSERT_STRING_EQUAL(out, "0000000000000000000000000000000000000000010");
    /* 2^256 - 1 needs all 43 digits and does not overflow them. */
    memset(n, 0xff, sizeof(n));
    tg_crypto_base62(n, out);
    CU_ASSERT(strlen(out) == 43);
    CU_ASSERT(out[0] != '0');
    CU_ASSERT_STRING_EQUAL(out, "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1");
}


static void
test_api_key_has_the_documented_shape(void)
{
    tg_crypto_apikey_t k, k2;
    char hex[65];
    size_t i;

    CU_ASSERT_FATAL(tg_crypto_apikey_create(&k) == TG_OK);
    CU_ASSERT(strlen(k.key) == 49);
    CU_ASSERT(strncmp(k.key, "sk-tg-", 6) == 0);
    for (i = 6; i < 49; i++) {
        CU_ASSERT(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                         "opqrstuvwxyz",
                         k.key[i]) != NULL);
    }
    CU_ASSERT(strncmp(k.prefix, k.key, 10) == 0 && strlen(k.prefix) == 10);
    CU_ASSERT_STRING_EQUAL(k.last4, k.key + 45);
    tg_crypto_digest_hex(k.key, 49, hex);
    CU_ASSERT_STRING_EQUAL(k.digest_hex, hex);
    CU_ASSERT_FATAL(tg_crypto_apikey_create(&k2) == TG_OK);
    CU_ASSERT(strcmp(k.key, k2.key) != 0);
}


static void
test_tokens_carry_their_prefix(void)
{
    char t[TG_CRYPTO_TOKEN_MAX];

    CU_ASSERT_FATAL(tg_crypto_token_create("tgs_", t) == TG_OK);
    CU_ASSERT(strlen(t) == 47 && strncmp(t, "tgs_", 4) == 0);
    CU_ASSERT_FATAL(tg_crypto_token_create("tgt_", t) == TG_OK);
    CU_ASSERT(strlen(t) == 47 && strncmp(t, "tgt_", 4) == 0);
    CU_ASSERT(tg_crypto_token_create("a-prefix-far-too-long-to-fit-into-"
                                     "the-token-buffer",
                                     t) == TG_ERROR);
}


static void
test_scrypt_rfc7914_vectors(void)
{
    uint8_t out[64], want[256];
    size_t n;

    CU_ASSERT_FATAL(tg_crypto_scrypt("", 0, (const uint8_t *)"", 0, 4, 1, 1,
                                     out, 64) == TG_OK);
    unhex("77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
          "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
          want, &n);
    CU_ASSERT(n == 64 && memcmp(out, want, 64) == 0);
    CU_ASSERT_FATAL(tg_crypto_scrypt("password", 8, (const uint8_t *)"NaCl", 4,
                                     10, 8, 16, out, 64) == TG_OK);
    unhex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
          "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
          want, &n);
    CU_ASSERT(n == 64 && memcmp(out, want, 64) == 0);
}


static void
test_password_hash_verifies_and_rejects(void)
{
    char h[TG_CRYPTO_HASH_MAX], h2[TG_CRYPTO_HASH_MAX];

    CU_ASSERT_FATAL(tg_crypto_password_hash("s3cret pw", 9, h) == TG_OK);
    CU_ASSERT(strncmp(h, "scrypt$15$8$1$", 14) == 0);
    CU_ASSERT(strlen(h) == 14 + 24 + 1 + 44);
    CU_ASSERT(tg_crypto_password_verify("s3cret pw", 9, h) == TG_OK);
    CU_ASSERT(tg_crypto_password_verify("s3cret pX", 9, h) == TG_DECLINED);
    CU_ASSERT(tg_crypto_password_verify("", 0, h) == TG_DECLINED);
    /* A fresh salt every time. */
    CU_ASSERT_FATAL(tg_crypto_password_hash("s3cret pw", 9, h2) == TG_OK);
    CU_ASSERT(strcmp(h, h2) != 0);
}


static void
test_password_verify_refuses_malformed_hashes(void)
{
    static const char *bad[] = {
        "",
        "bcrypt$xx",
        "scrypt$15$8$1$",
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$",
        "scrypt$21$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$99$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "scrypt$0$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$-1$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    size_t i;

    for (i = 0; i < TG_NELEMS(bad); i++) {
        CU_ASSERT(tg_crypto_password_verify("x", 1, bad[i]) == TG_ERROR);
    }
    CU_ASSERT(tg_crypto_password_verify("x", 1, NULL) == TG_ERROR);
}


static void
test_codes_are_six_digits_and_vary(void)
{
    char c[7], first[7];
    int i, j, differ = 0;

    CU_ASSERT_FATAL(tg_crypto_code_create(first) == TG_OK);
    for (i = 0; i < 50; i++) {
        CU_ASSERT_FATAL(tg_crypto_code_create(c) == TG_OK);
        CU_ASSERT(strlen(c) == 6);
        for (j = 0; j < 6; j++) {
            CU_ASSERT(c[j] >= '0' && c[j] <= '9');
        }
        differ += strcmp(c, first) != 0;
    }
    CU_ASSERT(differ > 45);
}


/* The GCM specification's test cases 13, 14 (AES-256, empty and zero
 * input) and 16 (AES-256 with AAD and a 96-bit IV). */
static void
test_gcm_known_answers(void)
{
    uint8_t key[256], iv[256], pt[256], aad[256], ct[256], tag[16];
    uint8_t want_ct[256], want_tag[256], back[256];
    size_t nk, niv, npt, naad, nct, ntag;

    memset(key, 0, 32);
    memset(iv, 0, 12);
    CU_ASSERT_FATAL(tg_crypto_gcm_encrypt(key, iv, NULL, 0, NULL, 0, ct, tag) ==
                    TG_OK);
    unhex("530f8afbc74536b9a963b4f1c4cb738b", want_tag, &ntag);
    CU_ASSERT(memcmp(tag, want_tag, 16) == 0);

    memset(pt, 0, 16);
    CU_ASSERT_FATAL(tg_crypto_gcm_encrypt(key, iv, NULL, 0, pt, 16, ct, tag) ==
                    TG_OK);
    unhex("cea7403d4d606b6e074ec5d3baf39d18", want_ct, &nct);
    unhex("d0d1c8a799996bf0265b98b5d48ab919", want_tag, &ntag);
    CU_ASSERT(memcmp(ct, want_ct, 16) == 0);
    CU_ASSERT(memcmp(tag, want_tag, 16) == 0);

    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          key, &nk);
    unhex("cafebabefacedbaddecaf888", iv, &niv);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          pt, &npt);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, &naad);
    unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
          want_ct, &nct);
    unhex("76fc6ece0f4e1768cddf8853bb2d551b", want_tag, &ntag);
    CU_ASSERT_FATAL(nk == 32 && niv == 12 && npt == 60 && nct == 60);
    CU_ASSERT_FATAL(
        tg_crypto_gcm_encrypt(key, iv, aad, naad, pt, npt, ct, tag) == TG_OK);
    CU_ASSERT(memcmp(ct, want_ct, 60) == 0);
    CU_ASSERT(memcmp(tag, want_tag, 16) == 0);
    CU_ASSERT(tg_crypto_gcm_decrypt(key, iv, aad, naad, want_ct, 60, want_tag,
                                    back) == TG_OK);
    CU_ASSERT(memcmp(back, pt, 60) == 0);
    aad[0] ^= 1;
    CU_ASSERT(tg_crypto_gcm_decrypt(key, iv, aad, naad, want_ct, 60, want_tag,
                                    back) == TG_DECLINED);
}


static void
test_keyring(tg_crypto_keyring_t *kr, const char *hex)
{
    tg_err_t err;

    memset(kr, 0, sizeof(*kr));
    CU_ASSERT_FATAL(tg_crypto_key_parse(&kr->keys[0], hex, strlen(hex), &err) ==
                    TG_OK);
    kr->nkeys = 1;
}


static void
test_seal_open_round_trip_and_tampering(void)
{
    tg_crypto_keyring_t kr;
    uint8_t sealed[128], out[128];
    char id[9];
    size_t n, m, i;
    tg_err_t err;

    test_keyring(&kr, "000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f");
    CU_ASSERT(strlen(kr.keys[0].id) == 8);
    CU_ASSERT_FATAL(tg_crypto_seal(&kr, "endpoint:main", "upstream-key", 12,
                                   sealed, sizeof(sealed), &n, id) == TG_OK);
    CU_ASSERT(n == 12 + 28);
    CU_ASSERT_STRING_EQUAL(id, kr.keys[0].id);
    CU_ASSERT(tg_crypto_open(&kr, id, "endpoint:main", sealed, n, out,
                             sizeof(out), &m, &err) == TG_OK);
    CU_ASSERT(m == 12 && memcmp(out, "upstream-key", 12) == 0);
    /* Any flipped bit of nonce, ciphertext or tag is refused. */
    for (i = 0; i < n; i++) {
        sealed[i] ^= 0x40;
        CU_ASSERT(tg_crypto_open(&kr, id, "endpoint:main", sealed, n, out,
                                 sizeof(out), &m, &err) == TG_DECLINED);
        sealed[i] ^= 0x40;
    }
    CU_ASSERT(tg_crypto_open(&kr, id, "endpoint:other", sealed, n, out,
                             sizeof(out), &m, &err) == TG_DECLINED);
    CU_ASSERT(tg_crypto_open(&kr, "deadbeef", "endpoint:main", sealed, n, out,
                             sizeof(out), &m, &err) == TG_DECLINED);
    CU_ASSERT(strstr(err.text, "no secret key") != NULL);
    CU_ASSERT(tg_crypto_open(&kr, id, "endpoint:main", sealed, 20, out,
                             sizeof(out), &m, &err) == TG_ERROR);
    CU_ASSERT(tg_crypto_open(&kr, id, "endpoint:main", sealed, n - 1, out,
                             sizeof(out), &m, &err) == TG_DECLINED);
    tg_crypto_keyring_wipe(&kr);
}


static void
test_old_key_opens_after_rotation(void)
{
    static const char *k1 = "1111111111111111111111111111111111111111111111111"
                            "111111111111111";
    static const char *k2 = "2222222222222222222222222222222222222222222222222"
                            "222222222222222";
    tg_crypto_keyring_t old, cur;
    uint8_t sealed[64], out[64];
    char id[9];
    size_t n, m;
    tg_err_t err;

    test_keyring(&old, k1);
    CU_ASSERT_FATAL(tg_crypto_seal(&old, "application:7", "secret", 6, sealed,
                                   sizeof(sealed), &n, id) == TG_OK);
    test_keyring(&cur, k2);
    CU_ASSERT(tg_crypto_open(&cur, id, "application:7", sealed, n, out,
                             sizeof(out), &m, &err) == TG_DECLINED);
    cur.keys[1] = old.keys[0];
    cur.nkeys = 2;
    CU_ASSERT(tg_crypto_open(&cur, id, "application:7", sealed, n, out,
                             sizeof(out), &m, &err) == TG_OK);
    CU_ASSERT(m == 6 && memcmp(out, "secret", 6) == 0);
}


static void
test_key_file_created_once_with_mode_0600(void)
{
    char dir[] = "/tmp/tg-crypto-XXXXXX", path[128], again_id[9];
    tg_crypto_keyring_t kr;
    struct stat st;
    bool created;
    tg_err_t err;

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    CU_ASSERT_FATAL(
        tg_crypto_keyring_load(&kr, path, NULL, 0, &created, &err) == TG_OK);
    CU_ASSERT(created);
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT((st.st_mode & 0777) == 0600);
    CU_ASSERT(st.st_size == 65);
    memcpy(again_id, kr.keys[0].id, 9);
    CU_ASSERT_FATAL(
        tg_crypto_keyring_load(&kr, path, NULL, 0, &created, &err) == TG_OK);
    CU_ASSERT(!created);
    CU_ASSERT_STRING_EQUAL(kr.keys[0].id, again_id);
    /* Wider permissions are refused, and the message says why. */
    CU_ASSERT_FATAL(chmod(path, 0644) == 0);
    CU_ASSERT(tg_crypto_keyring_load(&kr, path, NULL, 0, &created, &err) ==
              TG_ERROR);
    CU_ASSERT(strstr(err.text, "group or others") != NULL);
    unlink(path);
    rmdir(dir);
}


static void
test_key_from_environment(void)
{
    const char *old[] = {"env:TG_TEST_OLD_KEY"};
    tg_crypto_keyring_t kr;
    bool created;
    tg_err_t err;

    setenv("TG_TEST_KEY",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaaaaaaaaaaaa\n",
           1);
    setenv("TG_TEST_OLD_KEY",
           "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
           "bbbbbbbbbbbbbbbb",
           1);
    CU_ASSERT(tg_crypto_keyring_load(&kr, "env:TG_TEST_KEY", old, 1, &created,
                                     &err) == TG_OK);
    CU_ASSERT(kr.nkeys == 2 && !created);
    CU_ASSERT(strcmp(kr.keys[0].id, kr.keys[1].id) != 0);
    setenv("TG_TEST_KEY", "short", 1);
    CU_ASSERT(tg_crypto_keyring_load(&kr, "env:TG_TEST_KEY", NULL, 0, &created,
                                     &err) == TG_ERROR);
    CU_ASSERT(strstr(err.text, "64 hex") != NULL);
    CU_ASSERT(strstr(err.text, "short") == NULL);
    CU_ASSERT(tg_crypto_keyring_load(&kr, "env:TG_TEST_UNSET_VAR", NULL, 0,
                                     &created, &err) == TG_ERROR);
    unsetenv("TG_TEST_KEY");
    unsetenv("TG_TEST_OLD_KEY");
}


/* See unit.h. */
int
tg_test_crypto_register(void)
{
    CU_pSuite s = CU_add_suite("crypto", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "sha-256 known answers", test_sha256_known_answer) ||
        !CU_add_test(s, "unhex rejects bad input",
                     test_unhex_rejects_bad_input) ||
        !CU_add_test(s, "base62 of edge values", test_base62_of_edge_values) ||
        !CU_add_test(s, "api key has the documented shape",
                     test_api_key_has_the_documented_shape) ||
        !CU_add_test(s, "tokens carry their prefix",
                     test_tokens_carry_their_prefix) ||
        !CU_add_test(s, "scrypt matches the rfc 7914 vectors",
                     test_scrypt_rfc7914_vectors) ||
        !CU_add_test(s, "password hash verifies and rejects",
                     test_password_hash_verifies_and_rejects) ||
        !CU_add_test(s, "password verify refuses malformed hashes",
                     test_password_verify_refuses_malformed_hashes) ||
        !CU_add_test(s, "codes are six digits and vary",
                     test_codes_are_six_digits_and_vary) ||
        !CU_add_test(s, "aes-256-gcm known answers", test_gcm_known_answers) ||
        !CU_add_test(s, "seal and open round trip, tampering refused",
                     test_seal_open_round_trip_and_tampering) ||
        !CU_add_test(s, "old key opens after rotation",
                     test_old_key_opens_after_rotation) ||
        !CU_add_test(s, "key file created once with mode 0600",
                     test_key_file_created_once_with_mode_0600) ||
        !CU_add_test(s, "key from the environment",
                     test_key_from_environment)) {
        return 1;
    }
    return 0;
}
