/*
 * tests/fuzz/fuzz_conf.c
 *      libFuzzer target for the configuration loader.
 *
 * NOTES
 *      Each input is loaded with tg_conf_create_from_string, the same
 *      validation path tg_conf_create uses after libconfig has read the
 *      file.  A rejected input must leave a "fuzz.conf..." message; an
 *      accepted one must satisfy the invariants the rest of Tollgate relies
 *      on, checked below.  Inputs holding "@include" are skipped, because
 *      libconfig would open whatever file they name (/dev/zero, a FIFO).
 *
 *      tools/fuzz.sh builds it with clang -fsanitize=fuzzer,address,undefined,
 *      linking every core/ source, and runs it on tests/fuzz/corpus/conf.
 */
#include "core/conf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_FUZZ_CONF_MAX 65536

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);
const char *__lsan_default_options(void);

/*
 * libconfig 1.5 leaks the text of a string token that its parser discards
 * while recovering from a syntax error (hyperrealm/libconfig#142, fixed
 * upstream by #155 after 1.5; Debian 12 ships 1.5): "b \"x\"" leaks the
 * string's buffer (strbuf_append), "b \"\"" the empty string libconfig_yylex
 * callocs.  The block is out of our reach, so it is suppressed by the
 * scanner function that allocates it.  Any other leak is still reported:
 * a config_t we forgot to destroy also leaks its settings, which the
 * parser allocates outside the scanner.
 */
const char *
__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

const char *
__lsan_default_options(void)
{
    return "print_suppressions=0";
}

/* Abort with <what> so libFuzzer records the input as a crash. */
static void
tg_fuzz_conf_fail(const char *what)
{
    fprintf(stderr, "fuzz_conf: invariant broken: %s\n", what);
    abort();
}

static void
tg_fuzz_conf_check_str(const char *s, size_t size, const char *what)
{
    if (memchr(s, '\0', size) == NULL) {
        tg_fuzz_conf_fail(what);
    }
}

/* The promises of a tg_conf_t that the loader accepted. */
static void
tg_fuzz_conf_check(const tg_conf_t *conf)
{
    const tg_conf_endpoint_t *ep;
    size_t i, j, len;

    if (conf->nendpoints < 1 || conf->nmodels < 1) {
        tg_fuzz_conf_fail("no endpoints or no models");
    }
    if (conf->workers < 1 || conf->workers > 64) {
        tg_fuzz_conf_fail("workers out of range");
    }
    if (conf->listen_port < 1 || conf->listen_port > 65535 ||
        conf->admin_port < 0 || conf->admin_port > 65535) {
        tg_fuzz_conf_fail("port out of range");
    }
    if (conf->header_bytes < 1024 || conf->body_bytes < 1024 ||
        conf->stream_buffer < 4096 || conf->upstream_buffer < 1024) {
        tg_fuzz_conf_fail("size below its minimum");
    }
    if (conf->header_timeout_ms == 0 || conf->read_timeout_ms == 0 ||
        conf->shutdown_timeout_ms > 86400000) {
        tg_fuzz_conf_fail("duration out of range");
    }
    for (i = 0; i < conf->nendpoints; i++) {
        ep = &conf->endpoints[i];
        tg_fuzz_conf_check_str(ep->name, sizeof(ep->name), "endpoint name");
        tg_fuzz_conf_check_str(ep->url, sizeof(ep->url), "endpoint url");
        tg_fuzz_conf_check_str(ep->credential, sizeof(ep->credential),
                               "endpoint credential");
        len = strlen(ep->url);
        if (strncmp(ep->url, "http", 4) != 0 || ep->url[len - 1] == '/') {
            tg_fuzz_conf_fail("endpoint url not normalised");
        }
        if (ep->name[0] == '\0' || ep->credential[0] == '\0' ||
            strpbrk(ep->credential, "\r\n") != NULL) {
            tg_fuzz_conf_fail("endpoint name or credential");
        }
        if (ep->weight < 1 || ep->weight > 1000) {
            tg_fuzz_conf_fail("endpoint weight");
        }
        for (j = 0; j < i; j++) {
            if (strcmp(conf->endpoints[j].name, ep->name) == 0) {
                tg_fuzz_conf_fail("duplicate endpoint name");
            }
        }
    }
    for (i = 0; i < conf->nmodels; i++) {
        tg_fuzz_conf_check_str(conf->models[i].id, sizeof(conf->models[i].id),
                               "model id");
        if (conf->models[i].id[0] == '\0' ||
            conf->models[i].display_name[0] == '\0' ||
            conf->models[i].owned_by[0] == '\0') {
            tg_fuzz_conf_fail("model field empty");
        }
    }
    for (i = 0; i < conf->nkeys; i++) {
        tg_fuzz_conf_check_str(conf->keys[i].key, sizeof(conf->keys[i].key),
                               "key");
        if (strlen(conf->keys[i].key) < 16) {
            tg_fuzz_conf_fail("short key");
        }
    }
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* So that "env:" credentials in the corpus take the success path. */
    setenv("ANTHROPIC_API_KEY", "sk-ant-fuzz", 1);
    setenv("OPENAI_API_KEY", "sk-fuzz", 1);
    setenv("TG_FUZZ_EMPTY", "", 1);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], *text;
    tg_conf_t *conf;

    if (size > TG_FUZZ_CONF_MAX || memmem(data, size, "@include", 8) != NULL) {
        return 0;
    }
    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    conf = tg_conf_create_from_string(text, "fuzz.conf", err, sizeof(err));
    if (conf != NULL) {
        tg_fuzz_conf_check(conf);
    } else if (strncmp(err, "fuzz.conf", 9) != 0) {
        tg_fuzz_conf_fail("error without the file name");
    }
    tg_conf_destroy(conf);
    free(text);
    return 0;
}
