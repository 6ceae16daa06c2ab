/*
 * admin/crypto.c
 *      Digests, keys and tokens, scrypt passwords, codes, AES-256-GCM.
 *
 * NOTES
 *      Admin only; see crypto.h for the formats.  Nothing here logs, and
 *      every buffer that held a secret on the stack is wiped with
 *      OPENSSL_cleanse before it goes out of scope.  scrypt at N=2^15,
 *      r=8 costs 32 MB and ~50-100 ms of CPU: admin runs it on its loop
 *      (logins are rare and rate-limited), which is accepted in exchange for
 *      not having a thread pool in admin.
 */
#include "admin/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_CRYPTO_SCRYPT_LOG2N  15
#define TG_CRYPTO_SCRYPT_R      8
#define TG_CRYPTO_SCRYPT_P      1
#define TG_CRYPTO_SALT_LEN      16
#define TG_CRYPTO_PWHASH_LEN    32
#define TG_CRYPTO_SCRYPT_MAXMEM (1ull << 30)

static const char tg_crypto_b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


/* See crypto.h. */
void
tg_crypto_sha256(const void *p, size_t n, uint8_t out[TG_CRYPTO_DIGEST_LEN])
{
    SHA256(p, n, out);
}


/* See crypto.h. */
void
tg_crypto_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}


static int
tg_crypto_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


/* See crypto.h. */
int
tg_crypto_unhex(const char *s, size_t len, uint8_t *out, size_t cap,
                size_t *outlen)
{
    size_t i;

    if (len % 2 != 0 || len / 2 > cap) {
        return TG_ERROR;
    }
    for (i = 0; i < len / 2; i++) {
        int hi = tg_crypto_hexval(s[2 * i]),
            lo = tg_crypto_hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return TG_ERROR;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = len / 2;
    return TG_OK;
}


/* See crypto.h. */
void
tg_crypto_digest_hex(const char *s, size_t len,
                     char out[2 * TG_CRYPTO_DIGEST_LEN + 1])
{
    uint8_t d[TG_CRYPTO_DIGEST_LEN];

    tg_crypto_sha256(s, len, d);
    tg_crypto_hex(d, sizeof(d), out);
}


/* See crypto.h.  Schoolbook division of the 32-byte number by 62, one
 * digit per pass, least significant digit first. */
void
tg_crypto_base62(const uint8_t in[32], char out[TG_CRYPTO_B62_LEN + 1])
{
    uint8_t n[32];
    int i, j;

    memcpy(n, in, sizeof(n));
    for (i = TG_CRYPTO_B62_LEN - 1; i >= 0; i--) {
        unsigned rem = 0;

        for (j = 0; j < 32; j++) {
            unsigned cur = rem * 256 + n[j];

            n[j] = (uint8_t)(cur / 62);
            rem = cur % 62;
        }
        out[i] = tg_crypto_b62[rem];
    }
    out[TG_CRYPTO_B62_LEN] = '\0';
    OPENSSL_cleanse(n, sizeof(n));
}


/* See crypto.h. */
int
tg_crypto_random(void *p, size_t n)
{
    if (n > INT32_MAX || RAND_bytes(p, (int)n) != 1) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* See crypto.h. */
int
tg_crypto_token_create(const char *prefix, char out[TG_CRYPTO_TOKEN_MAX])
{
    uint8_t raw[32];
    size_t plen = strlen(prefix);
    int rc = TG_ERROR;

    if (plen + TG_CRYPTO_B62_LEN + 1 > TG_CRYPTO_TOKEN_MAX ||
        tg_crypto_random(raw, sizeof(raw)) != TG_OK) {
        goto done;
    }
    memcpy(out, prefix, plen);
    tg_crypto_base62(raw, out + plen);
    rc = TG_OK;
done:
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}


/* See crypto.h. */
void
tg_crypto_apikey_describe(tg_crypto_apikey_t *k)
{
    size_t len = strnlen(k->key, sizeof(k->key));

    tg_crypto_digest_hex(k->key, len, k->digest_hex);
    memset(k->prefix, 0, sizeof(k->prefix));
    memcpy(k->prefix, k->key, TG_MIN(len, (size_t)TG_CRYPTO_PREFIX_LEN));
    memset(k->last4, 0, sizeof(k->last4));
    if (len >= 4) {
        memcpy(k->last4, k->key + len - 4, 4);
    }
}


/* See crypto.h. */
int
tg_crypto_apikey_create(tg_crypto_apikey_t *k)
{
    memset(k, 0, sizeof(*k));
    if (tg_crypto_token_create(TG_CRYPTO_API_KEY_PREFIX, k->key) != TG_OK) {
        return TG_ERROR;
    }
    tg_crypto_apikey_describe(k);
    return TG_OK;
}


/* See crypto.h. */
int
tg_crypto_scrypt(const char *pw, size_t pwlen, const uint8_t *salt,
                 size_t saltlen, unsigned log2n, uint64_t r, uint64_t p,
                 uint8_t *out, size_t outlen)
{
    if (log2n < 1 || log2n > 20) {
        return TG_ERROR;
    }
    if (EVP_PBE_scrypt(pw, pwlen, salt, saltlen, (uint64_t)1 << log2n, r, p,
                       TG_CRYPTO_SCRYPT_MAXMEM, out, outlen) != 1) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* Standard base64 of <n> bytes into <out> (4 * ceil(n/3) + 1 bytes). */
static void
tg_crypto_b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}


/* Decode padded base64 <s> (<len> chars) of exactly <want> bytes into
 * <out>.  TG_OK or TG_ERROR.  EVP_DecodeBlock counts the padding as zero
 * bytes, so the length is checked against the padding seen. */
static int
tg_crypto_unb64(const char *s, size_t len, uint8_t *out, size_t want)
{
    uint8_t tmp[96];
    size_t pad = 0;
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp)) {
        return TG_ERROR;
    }
    pad = (s[len - 1] == '=') + (len >= 2 && s[len - 2] == '=');
    n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n - pad != want) {
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return TG_ERROR;
    }
    memcpy(out, tmp, want);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return TG_OK;
}


/* See crypto.h. */
int
tg_crypto_password_hash(const char *pw, size_t len,
                        char out[TG_CRYPTO_HASH_MAX])
{
    uint8_t salt[TG_CRYPTO_SALT_LEN], hash[TG_CRYPTO_PWHASH_LEN];
    char salt64[32], hash64[48];
    int n, rc = TG_ERROR;

    if (tg_crypto_random(salt, sizeof(salt)) != TG_OK ||
        tg_crypto_scrypt(pw, len, salt, sizeof(salt), TG_CRYPTO_SCRYPT_LOG2N,
                         TG_CRYPTO_SCRYPT_R, TG_CRYPTO_SCRYPT_P, hash,
                         sizeof(hash)) != TG_OK) {
        goto done;
    }
    tg_crypto_b64(salt, sizeof(salt), salt64);
    tg_crypto_b64(hash, sizeof(hash), hash64);
    n = snprintf(out, TG_CRYPTO_HASH_MAX, "scrypt$%u$%u$%u$%s$%s",
                 TG_CRYPTO_SCRYPT_LOG2N, TG_CRYPTO_SCRYPT_R, TG_CRYPTO_SCRYPT_P,
                 salt64, hash64);
    if (n > 0 && n < TG_CRYPTO_HASH_MAX) {
        rc = TG_OK;
    }
done:
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}


/* Parse a decimal in [1, max] from <*p> up to the next '$'. */
static int
tg_crypto_param(const char **p, unsigned long max, unsigned long *v)
{
    const char *s = *p;
    unsigned long x = 0;

    if (*s < '0' || *s > '9') {
        return TG_ERROR;
    }
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (unsigned long)(*s - '0');
        if (x > max) {
            return TG_ERROR;
        }
        s++;
    }
    if (*s != '$' || x == 0) {
        return TG_ERROR;
    }
    *v = x;
    *p = s + 1;
    return TG_OK;
}


/* See crypto.h. */
int
tg_crypto_password_verify(const char *pw, size_t len, const char *stored)
{
    uint8_t salt[TG_CRYPTO_SALT_LEN], want[TG_CRYPTO_PWHASH_LEN];
    uint8_t got[TG_CRYPTO_PWHASH_LEN];
    unsigned long log2n, r, p;
    const char *s = stored, *dollar;
    int rc = TG_ERROR;

    if (stored == NULL || strncmp(s, "scrypt$", 7) != 0) {
        goto done;
    }
    s += 7;
    if (tg_crypto_param(&s, 20, &log2n) != TG_OK ||
        tg_crypto_param(&s, 32, &r) != TG_OK ||
        tg_crypto_param(&s, 16, &p) != TG_OK) {
        goto done;
    }
    dollar = strchr(s, '$');
    if (dollar == NULL ||
        tg_crypto_unb64(s, (size_t)(dollar - s), salt, sizeof(salt)) != TG_OK ||
        tg_crypto_unb64(dollar + 1, strlen(dollar + 1), want, sizeof(want)) !=
            TG_OK) {
        goto done;
    }
    if (tg_crypto_scrypt(pw, len, salt, sizeof(salt), (unsigned)log2n, r, p,
                         got, sizeof(got)) != TG_OK) {
        goto done;
    }
    rc = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? TG_OK : TG_DECLINED;
done:
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}


/* See crypto.h.  A 32-bit draw is kept only below the largest multiple
 * of 10^6 that fits, so every code is equally likely. */
int
tg_crypto_code_create(char out[7])
{
    const uint32_t limit = UINT32_MAX - (UINT32_MAX % 1000000u);
    uint32_t v;
    int i;

    for (i = 0; i < 64; i++) {
        if (tg_crypto_random(&v, sizeof(v)) != TG_OK) {
            return TG_ERROR;
        }
        if (v < limit) {
            snprintf(out, 7, "%06u", v % 1000000u);
            OPENSSL_cleanse(&v, sizeof(v));
            return TG_OK;
        }
    }
    return TG_ERROR;
}


/* See crypto.h. */
int
tg_crypto_gcm_encrypt(const uint8_t key[TG_CRYPTO_KEY_LEN],
                      const uint8_t nonce[TG_CRYPTO_NONCE_LEN], const void *aad,
                      size_t aadlen, const void *pt, size_t n, uint8_t *ct,
                      uint8_t tag[16])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len, rc = TG_ERROR;

    if (ctx == NULL || n > INT32_MAX || aadlen > INT32_MAX ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TG_CRYPTO_NONCE_LEN,
                            NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) {
        goto done;
    }
    if (aadlen > 0 &&
        EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) {
        goto done;
    }
    if (n > 0 && EVP_EncryptUpdate(ctx, ct, &len, pt, (int)n) != 1) {
        goto done;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TG_CRYPTO_TAG_LEN,
                            tag) != 1) {
        goto done;
    }
    rc = TG_OK;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}


/* See crypto.h. */
int
tg_crypto_gcm_decrypt(const uint8_t key[TG_CRYPTO_KEY_LEN],
                      const uint8_t nonce[TG_CRYPTO_NONCE_LEN], const void *aad,
                      size_t aadlen, const uint8_t *ct, size_t n,
                      const uint8_t tag[16], uint8_t *pt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t t[TG_CRYPTO_TAG_LEN];
    int len, rc = TG_ERROR;

    memcpy(t, tag, sizeof(t));
    if (ctx == NULL || n > INT32_MAX || aadlen > INT32_MAX ||
        EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TG_CRYPTO_NONCE_LEN,
                            NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) {
        goto done;
    }
    if (aadlen > 0 &&
        EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) {
        goto done;
    }
    if (n > 0 && EVP_DecryptUpdate(ctx, pt, &len, ct, (int)n) != 1) {
        goto done;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TG_CRYPTO_TAG_LEN, t) !=
        1) {
        goto done;
    }
    /* The plaintext already written is only trusted once the tag checks;
     * on a mismatch it is wiped so no caller can use it by mistake. */
    if (EVP_DecryptFinal_ex(ctx, pt + n, &len) != 1) {
        OPENSSL_cleanse(pt, n);
        rc = TG_DECLINED;
        goto done;
    }
    rc = TG_OK;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}


/* See crypto.h. */
int
tg_crypto_key_parse(tg_crypto_key_t *k, const char *hex, size_t len,
                    tg_err_t *err)
{
    uint8_t d[TG_CRYPTO_DIGEST_LEN];
    char dhex[2 * TG_CRYPTO_DIGEST_LEN + 1];
    size_t n;

    while (len > 0 &&
           (*hex == ' ' || *hex == '\t' || *hex == '\n' || *hex == '\r')) {
        hex++;
        len--;
    }
    while (len > 0 && (hex[len - 1] == ' ' || hex[len - 1] == '\t' ||
                       hex[len - 1] == '\n' || hex[len - 1] == '\r')) {
        len--;
    }
    if (len != 2 * TG_CRYPTO_KEY_LEN ||
        tg_crypto_unhex(hex, len, k->key, sizeof(k->key), &n) != TG_OK ||
        n != TG_CRYPTO_KEY_LEN) {
        tg_err_set(err, 0, 0, "a secret key must be 64 hex characters");
        return TG_ERROR;
    }
    tg_crypto_sha256(k->key, sizeof(k->key), d);
    tg_crypto_hex(d, sizeof(d), dhex);
    memcpy(k->id, dhex, TG_CRYPTO_KEYID_LEN);
    k->id[TG_CRYPTO_KEYID_LEN] = '\0';
    return TG_OK;
}


/* Create <path> with a fresh key: O_EXCL so two admins starting at once
 * never overwrite each other's key (the loser reads the winner's file). */
static int
tg_crypto_keyfile_create(const char *path, tg_err_t *err)
{
    uint8_t raw[TG_CRYPTO_KEY_LEN];
    char hex[2 * TG_CRYPTO_KEY_LEN + 2];
    int fd, rc = TG_ERROR;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        rc = errno == EEXIST ? TG_DECLINED : TG_ERROR;
        if (rc == TG_ERROR) {
            tg_err_set(err, errno, 0, "open(\"%.80s\", O_CREAT) failed (%d)",
                       path, errno);
        }
        return rc;
    }
    if (tg_crypto_random(raw, sizeof(raw)) != TG_OK) {
        tg_err_set(err, 0, 0, "RAND_bytes failed");
        goto done;
    }
    tg_crypto_hex(raw, sizeof(raw), hex);
    hex[2 * TG_CRYPTO_KEY_LEN] = '\n';
    if (write(fd, hex, sizeof(hex) - 1) != (ssize_t)(sizeof(hex) - 1) ||
        fsync(fd) != 0) {
        tg_err_set(err, errno, 0, "write(\"%.80s\") failed (%d)", path, errno);
        goto done;
    }
    rc = TG_OK;
done:
    if (close(fd) != 0 && rc == TG_OK) {
        rc = TG_ERROR;
    }
    if (rc != TG_OK) {
        unlink(path);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}


/* Read the key in <path>, refusing a file others may read or write. */
static int
tg_crypto_keyfile_read(tg_crypto_key_t *k, const char *path, tg_err_t *err)
{
    char buf[160];
    struct stat st;
    ssize_t n;
    int fd, rc = TG_ERROR;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        tg_err_set(err, errno, 0, "open(\"%.80s\") failed (%d: %s)", path,
                   errno, strerror(errno));
        return TG_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tg_err_set(err, 0, 0, "\"%.80s\" is not a regular file", path);
        goto done;
    }
    if ((st.st_mode & 077) != 0) {
        tg_err_set(err, 0, 0,
                   "\"%.80s\" is accessible by group or others (mode %03o); "
                   "chmod 600 it",
                   path, (unsigned)(st.st_mode & 0777));
        goto done;
    }
    n = read(fd, buf, sizeof(buf));
    if (n < 0 || (size_t)n == sizeof(buf)) {
        tg_err_set(err, 0, 0, "\"%.80s\": %s", path,
                   n < 0 ? "read failed" : "file too long for a key");
        goto done;
    }
    if (tg_crypto_key_parse(k, buf, (size_t)n, err) != TG_OK) {
        tg_err_set(err, 0, 0,
                   "\"%.80s\": a secret key must be 64 hex "
                   "characters",
                   path);
        goto done;
    }
    rc = TG_OK;
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}


/* Load one key named by <spec>; create the file when <create>. */
static int
tg_crypto_key_load(tg_crypto_key_t *k, const char *spec, bool create,
                   bool *created, tg_err_t *err)
{
    const char *v;
    int rc;

    if (strncmp(spec, "env:", 4) == 0) {
        v = getenv(spec + 4);
        if (spec[4] == '\0' || v == NULL) {
            tg_err_set(err, 0, 0, "%.80s: the variable is not set", spec);
            return TG_ERROR;
        }
        if (tg_crypto_key_parse(k, v, strlen(v), err) != TG_OK) {
            tg_err_set(err, 0, 0,
                       "%.80s: a secret key must be 64 hex "
                       "characters",
                       spec);
            return TG_ERROR;
        }
        return TG_OK;
    }
    if (spec[0] == '\0') {
        tg_err_set(err, 0, 0, "empty secret key setting");
        return TG_ERROR;
    }
    if (create && access(spec, F_OK) != 0 && errno == ENOENT) {
        rc = tg_crypto_keyfile_create(spec, err);
        if (rc == TG_ERROR) {
            return TG_ERROR;
        }
        *created = rc == TG_OK;
    }
    return tg_crypto_keyfile_read(k, spec, err);
}


/* See crypto.h. */
int
tg_crypto_keyring_load(tg_crypto_keyring_t *kr, const char *spec,
                       const char *const *old, size_t nold, bool *created,
                       tg_err_t *err)
{
    size_t i;

    memset(kr, 0, sizeof(*kr));
    *created = false;
    if (nold + 1 > TG_CRYPTO_MAX_KEYS) {
        tg_err_set(err, 0, 0, "at most %d old secret keys",
                   TG_CRYPTO_MAX_KEYS - 1);
        return TG_ERROR;
    }
    if (tg_crypto_key_load(&kr->keys[0], spec, true, created, err) != TG_OK) {
        return TG_ERROR;
    }
    kr->nkeys = 1;
    for (i = 0; i < nold; i++) {
        bool dummy = false;

        if (tg_crypto_key_load(&kr->keys[kr->nkeys], old[i], false, &dummy,
                               err) != TG_OK) {
            tg_crypto_keyring_wipe(kr);
            return TG_ERROR;
        }
        kr->nkeys++;
    }
    return TG_OK;
}


/* See crypto.h. */
void
tg_crypto_keyring_wipe(tg_crypto_keyring_t *kr)
{
    OPENSSL_cleanse(kr, sizeof(*kr));
}


/* See crypto.h. */
int
tg_crypto_seal(const tg_crypto_keyring_t *kr, const char *purpose,
               const void *pt, size_t n, uint8_t *out, size_t cap,
               size_t *outlen, char key_id[TG_CRYPTO_KEYID_LEN + 1])
{
    size_t total;

    if (kr->nkeys == 0 || !tg_size_add(n, TG_CRYPTO_SEAL_EXTRA, &total) ||
        total > cap || tg_crypto_random(out, TG_CRYPTO_NONCE_LEN) != TG_OK) {
        return TG_ERROR;
    }
    if (tg_crypto_gcm_encrypt(kr->keys[0].key, out, purpose, strlen(purpose),
                              pt, n, out + TG_CRYPTO_NONCE_LEN,
                              out + TG_CRYPTO_NONCE_LEN + n) != TG_OK) {
        return TG_ERROR;
    }
    memcpy(key_id, kr->keys[0].id, TG_CRYPTO_KEYID_LEN + 1);
    *outlen = total;
    return TG_OK;
}


/* See crypto.h. */
int
tg_crypto_open(const tg_crypto_keyring_t *kr, const char *key_id,
               const char *purpose, const uint8_t *in, size_t n, uint8_t *out,
               size_t cap, size_t *outlen, tg_err_t *err)
{
    const tg_crypto_key_t *k = NULL;
    size_t i, len;
    int rc;

    for (i = 0; i < kr->nkeys; i++) {
        if (strcmp(kr->keys[i].id, key_id) == 0) {
            k = &kr->keys[i];
            break;
        }
    }
    if (k == NULL) {
        tg_err_set(err, 0, 0, "no secret key with id \"%.16s\"", key_id);
        return TG_DECLINED;
    }
    if (n < TG_CRYPTO_SEAL_EXTRA || n - TG_CRYPTO_SEAL_EXTRA > cap) {
        tg_err_set(err, 0, 0, "sealed data of %zu bytes is malformed", n);
        return TG_ERROR;
    }
    len = n - TG_CRYPTO_SEAL_EXTRA;
    rc = tg_crypto_gcm_decrypt(k->key, in, purpose, strlen(purpose),
                               in + TG_CRYPTO_NONCE_LEN, len,
                               in + TG_CRYPTO_NONCE_LEN + len, out);
    if (rc != TG_OK) {
        tg_err_set(err, 0, 0, "sealed data does not authenticate");
        return rc;
    }
    *outlen = len;
    return TG_OK;
}
