/*
 * admin/crypto.h
 *      Secrets of the admin API: digests, API keys and tokens, password
 *      hashes, verification codes, and AES-256-GCM sealing of stored
 *      credentials.
 *
 * NOTES
 *      Admin only.  Library-like: nothing here logs (a secret must never
 *      reach a log line by accident); failures fill a caller-owned
 *      tg_err_t whose text never contains secret material.  Every random
 *      byte comes from OpenSSL's RAND_bytes.
 *
 *      Formats (docs/admin-api.md):
 *      - API key: "sk-tg-" + base62 of 32 random bytes, 43 characters
 *        (zero-padded), so 49 characters in all.  Stored as the SHA-256
 *        of the whole key, shown as its first 10 characters (prefix) and
 *        its last 4 (last4).
 *      - Session token "tgs_" and automation token "tgt_" + the same 43
 *        base62 characters; stored as their SHA-256.
 *      - Password: scrypt N=2^15, r=8, p=1, 16-byte salt, 32-byte hash,
 *        "scrypt$15$8$1$<salt base64>$<hash base64>" (standard base64
 *        with padding).
 *      - Sealed secret: 12-byte random nonce || ciphertext || 16-byte tag,
 *        AES-256-GCM, with the caller's purpose string as additional
 *        authenticated data, so a ciphertext moved to another row (another
 *        purpose) does not open.  The key id stored beside it is the first
 *        8 hex characters of SHA-256(key).
 */
#ifndef TG_ADMIN_CRYPTO_H
#define TG_ADMIN_CRYPTO_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_CRYPTO_DIGEST_LEN 32 /* SHA-256 */
#define TG_CRYPTO_KEY_LEN    32 /* AES-256 */
#define TG_CRYPTO_NONCE_LEN  12
#define TG_CRYPTO_TAG_LEN    16
#define TG_CRYPTO_SEAL_EXTRA (TG_CRYPTO_NONCE_LEN + TG_CRYPTO_TAG_LEN)
#define TG_CRYPTO_B62_LEN    43  /* base62 of 32 bytes */
#define TG_CRYPTO_TOKEN_MAX  64  /* room for any prefix + 43 chars + NUL */
#define TG_CRYPTO_PREFIX_LEN 10  /* "sk-tg-" + 4 */
#define TG_CRYPTO_HASH_MAX   128 /* a stored password hash, with NUL */
#define TG_CRYPTO_KEYID_LEN  8
#define TG_CRYPTO_MAX_KEYS   8 /* current key + old keys */

#define TG_CRYPTO_API_KEY_PREFIX "sk-tg-"
#define TG_CRYPTO_SESSION_PREFIX "tgs_"
#define TG_CRYPTO_TOKEN_PREFIX   "tgt_"

/* A freshly made API key and what is stored of it. */
typedef struct {
    char key[TG_CRYPTO_TOKEN_MAX]; /* plaintext, shown once */
    char digest_hex[2 * TG_CRYPTO_DIGEST_LEN + 1];
    char prefix[TG_CRYPTO_PREFIX_LEN + 1]; /* "sk-tg-AbC1" */
    char last4[5];
} tg_crypto_apikey_t;

/* One AES key and its id. */
typedef struct {
    uint8_t key[TG_CRYPTO_KEY_LEN];
    char id[TG_CRYPTO_KEYID_LEN + 1]; /* hex of SHA-256(key), 8 chars */
} tg_crypto_key_t;

/* keys[0] seals; every key opens what carries its id. */
typedef struct {
    tg_crypto_key_t keys[TG_CRYPTO_MAX_KEYS];
    size_t nkeys;
} tg_crypto_keyring_t;

/* SHA-256 of <n> bytes at <p> into <out>. */
void tg_crypto_sha256(const void *p, size_t n,
                      uint8_t out[TG_CRYPTO_DIGEST_LEN]);

/* Lower-case hex of <n> bytes at <p> into <out> (2n + 1 bytes, NUL). */
void tg_crypto_hex(const uint8_t *p, size_t n, char *out);

/* Hex text <s> of <len> characters into <out> of <cap> bytes; the byte
 * count in *<outlen>.  TG_OK, or TG_ERROR on odd length, a non-hex
 * character or too little room. */
int tg_crypto_unhex(const char *s, size_t len, uint8_t *out, size_t cap,
                    size_t *outlen);

/* Hex of SHA-256(<s>, <len>) into <out> (65 bytes). */
void tg_crypto_digest_hex(const char *s, size_t len,
                          char out[2 * TG_CRYPTO_DIGEST_LEN + 1]);

/* The 43 base62 characters ([0-9A-Za-z], most significant first,
 * zero-padded) of the 256-bit big-endian number <in>, NUL-terminated. */
void tg_crypto_base62(const uint8_t in[32], char out[TG_CRYPTO_B62_LEN + 1]);

/* <n> random bytes.  TG_OK, or TG_ERROR when RAND_bytes fails. */
int tg_crypto_random(void *p, size_t n);

/* <prefix> + base62 of 32 random bytes into <out> (TG_CRYPTO_TOKEN_MAX).
 * TG_OK or TG_ERROR (randomness failed, prefix too long). */
int tg_crypto_token_create(const char *prefix, char out[TG_CRYPTO_TOKEN_MAX]);

/* A new API key with its digest, prefix and last4.  TG_OK or TG_ERROR. */
int tg_crypto_apikey_create(tg_crypto_apikey_t *k);

/* Fill digest, prefix and last4 of <k> from the key already in k->key. */
void tg_crypto_apikey_describe(tg_crypto_apikey_t *k);

/* Raw scrypt (EVP_PBE_scrypt) with N = 2^<log2n>. TG_OK or TG_ERROR. */
int tg_crypto_scrypt(const char *pw, size_t pwlen, const uint8_t *salt,
                     size_t saltlen, unsigned log2n, uint64_t r, uint64_t p,
                     uint8_t *out, size_t outlen);

/* Hash password <pw> (<len> bytes) in the stored format into <out>
 * (TG_CRYPTO_HASH_MAX).  TG_OK or TG_ERROR. */
int tg_crypto_password_hash(const char *pw, size_t len,
                            char out[TG_CRYPTO_HASH_MAX]);

/* Check <pw> against <stored>.  TG_OK when it matches, TG_DECLINED when
 * it does not, TG_ERROR when <stored> is malformed or its parameters are
 * out of the accepted range (N <= 2^20, r <= 32, p <= 16). Constant time
 * in the comparison (CRYPTO_memcmp). */
int tg_crypto_password_verify(const char *pw, size_t len, const char *stored);

/* A 6-digit decimal code, uniformly distributed (rejection sampling), into
 * <out> (7 bytes, NUL).  TG_OK or TG_ERROR. */
int tg_crypto_code_create(char out[7]);

/* One AES-256-GCM operation with an explicit <nonce>; for sealing and for
 * known-answer tests.  <ct> receives <n> bytes, <tag> 16.  TG_OK or
 * TG_ERROR. */
int tg_crypto_gcm_encrypt(const uint8_t key[TG_CRYPTO_KEY_LEN],
                          const uint8_t nonce[TG_CRYPTO_NONCE_LEN],
                          const void *aad, size_t aadlen, const void *pt,
                          size_t n, uint8_t *ct, uint8_t tag[16]);

/* The inverse; TG_DECLINED when the tag does not verify (tampered data,
 * other AAD, wrong key), TG_ERROR on a library failure. */
int tg_crypto_gcm_decrypt(const uint8_t key[TG_CRYPTO_KEY_LEN],
                          const uint8_t nonce[TG_CRYPTO_NONCE_LEN],
                          const void *aad, size_t aadlen, const uint8_t *ct,
                          size_t n, const uint8_t tag[16], uint8_t *pt);

/* Make a key from <hex> (64 hex characters, surrounding white space
 * ignored) with its id.  TG_OK or TG_ERROR with <err>. */
int tg_crypto_key_parse(tg_crypto_key_t *k, const char *hex, size_t len,
                        tg_err_t *err);

/*
 * Load the sealing key from <spec>: "env:NAME" (64 hex characters in that
 * variable) or a file path.  A missing file is created (O_EXCL, mode
 * 0600) with 32 fresh random bytes in hex; *<created> tells.  A file
 * readable or writable by group or others is refused, as is anything but
 * a regular file.  Then each of <old> (<nold> specs of the same kinds,
 * never created) is added for opening only.  TG_OK, or TG_ERROR with
 * <err> naming the spec (never the key).
 */
int tg_crypto_keyring_load(tg_crypto_keyring_t *kr, const char *spec,
                           const char *const *old, size_t nold, bool *created,
                           tg_err_t *err);

/* Wipe every key of <kr>. */
void tg_crypto_keyring_wipe(tg_crypto_keyring_t *kr);

/*
 * Seal <n> bytes at <pt> for <purpose> (the AAD) with kr->keys[0]:
 * writes n + TG_CRYPTO_SEAL_EXTRA bytes to <out> (<cap> bytes) and the
 * key id to <key_id>.  TG_OK or TG_ERROR (no key, too little room, RNG).
 */
int tg_crypto_seal(const tg_crypto_keyring_t *kr, const char *purpose,
                   const void *pt, size_t n, uint8_t *out, size_t cap,
                   size_t *outlen, char key_id[TG_CRYPTO_KEYID_LEN + 1]);

/*
 * Open <in> (<n> bytes, nonce || ciphertext || tag) sealed under key
 * <key_id> for <purpose> into <out> (<cap> bytes, at least n - 28); the
 * plaintext length in *<outlen>.  TG_OK; TG_DECLINED when no key has that
 * id or the data does not authenticate; TG_ERROR otherwise.  <err> says
 * which.
 */
int tg_crypto_open(const tg_crypto_keyring_t *kr, const char *key_id,
                   const char *purpose, const uint8_t *in, size_t n,
                   uint8_t *out, size_t cap, size_t *outlen, tg_err_t *err);

#endif /* TG_ADMIN_CRYPTO_H */
