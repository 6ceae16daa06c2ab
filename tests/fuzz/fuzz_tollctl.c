/*
 * tests/fuzz/fuzz_tollctl.c
 *      libFuzzer target for tollctl's input parsers: command lines of
 *      every command, option values of every type (durations, times,
 *      money, lists, --set pairs), and the credentials file.
 *
 * NOTES
 *      The first input byte picks the parser; the rest is NUL-separated
 *      words (a command line for the command picked by the next two
 *      bytes, or one option value), or the bytes of the credentials file,
 *      written with mode 0600 under a private XDG_CONFIG_HOME.  Nothing
 *      reaches the network: parsing stops before any request.  Besides
 *      crashes (ASan, UBSan) it checks:
 *        - a command line is accepted (0) or refused with a usage line (2);
 *        - a time comes out as RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ";
 *        - a duration is never negative;
 *        - a token taken from a credentials file is visible ASCII.
 *      Build and run with tools/fuzz.sh.
 */
#include "tests/fuzz/harness.h"
#include "tools/tollctl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define NWORDS 24

static FILE *fuzz_null;
static char fuzz_cred[4096];


/* Set up once: output to /dev/null, a private credentials directory. */
static void
fuzz_once(void)
{
    char dir[] = "/tmp/tg-fuzz-tollctl.XXXXXX", sub[256];

    fuzz_null = fopen("/dev/null", "w");
    CHECK(fuzz_null != NULL && mkdtemp(dir) != NULL);
    snprintf(sub, sizeof(sub), "%s/tollgate", dir);
    CHECK(mkdir(sub, 0700) == 0);
    setenv("XDG_CONFIG_HOME", dir, 1);
    unsetenv("TOLLGATE_ADMIN_URL");
    unsetenv("TOLLGATE_TOKEN");
    CHECK(tg_ctl_cred_path(fuzz_cred, sizeof(fuzz_cred)));
}


/* Split <p> (<n> bytes) at NULs into <words>; returns how many. */
static int
fuzz_words(char *p, size_t n, char **words)
{
    int k = 0;
    size_t i, start = 0;

    for (i = 0; i <= n && k < NWORDS; i++) {
        if (i == n || p[i] == '\0') {
            p[i] = '\0';
            words[k++] = p + start;
            start = i + 1;
        }
    }
    return k;
}


static void
fuzz_command(const uint8_t *sel, char *p, size_t n)
{
    const tg_ctl_group_t *g;
    const tg_ctl_cmd_t *c;
    tg_ctl_args_t a;
    tg_ctl_t ctl;
    char *words[NWORDS];
    int ng, nc, argc, rc;

    for (ng = 0; tg_ctl_groups[ng].name != NULL; ng++) {
    }
    g = &tg_ctl_groups[sel[0] % ng];
    for (nc = 0; g->cmds[nc].name != NULL; nc++) {
    }
    c = &g->cmds[sel[1] % nc];
    argc = fuzz_words(p, n, words);
    tg_ctl_init(&ctl, fuzz_null, fuzz_null);
    memset(&a, 0, sizeof(a));
    rc = tg_ctl_args_parse(&ctl, c, argc, words, &a);
    CHECK(rc == 0 || rc == 2);
    CHECK(rc != 0 || a.help || (a.npos >= c->pos_min && a.npos <= c->pos_max));
    tg_ctl_args_fini(&a);
    tg_ctl_fini(&ctl);
}


static void
fuzz_value(uint8_t type, const char *in)
{
    static const char *const shape = "dddd-dd-ddTdd:dd:ddZ";
    char out[64], why[256];
    long long secs;
    json_t *v;
    size_t i;

    if (tg_ctl_duration_parse(in, &secs)) {
        CHECK(secs >= 0);
    }
    if (tg_ctl_time_parse(in, 1767225600, out, sizeof(out))) {
        CHECK(strlen(out) == strlen(shape));
        for (i = 0; shape[i] != '\0'; i++) {
            CHECK(shape[i] == 'd' ? out[i] >= '0' && out[i] <= '9'
                                  : out[i] == shape[i]);
        }
    }
    (void)tg_ctl_id_valid(in);
    why[0] = '\0';
    v = tg_ctl_value_parse((tg_ctl_type_t)(type % (TG_CTL_T_JSON + 1)),
                           "admin|user|a b", in, 1767225600, why, sizeof(why));
    CHECK(v != NULL || why[0] != '\0');
    json_decref(v);
}


static void
fuzz_credentials(const uint8_t *p, size_t n)
{
    tg_ctl_t ctl;
    size_t i;
    int fd, rc;

    fd = open(fuzz_cred, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, p, n) == (ssize_t)n);
    close(fd);
    tg_ctl_init(&ctl, fuzz_null, fuzz_null);
    rc = tg_ctl_setup(&ctl, NULL);
    CHECK(rc == 0 || rc == 1 || rc == 2);
    for (i = 0; ctl.token[i] != '\0'; i++) {
        CHECK(ctl.token[i] > 0x20 && ctl.token[i] < 0x7f);
    }
    CHECK(strncmp(ctl.url, "http", 4) == 0 || rc != 0);
    tg_ctl_fini(&ctl);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy;
    size_t n;

    if (fuzz_null == NULL) {
        fuzz_once();
    }
    if (size < 3) {
        return 0;
    }
    n = size - 3;
    copy = malloc(n + 1);
    CHECK(copy != NULL);
    memcpy(copy, data + 3, n);
    copy[n] = '\0';
    switch (data[0] % 3) {
    case 0:
        fuzz_command(data + 1, copy, n);
        break;
    case 1:
        fuzz_value(data[1], copy);
        break;
    default:
        fuzz_credentials(data + 3, n);
        break;
    }
    free(copy);
    return 0;
}
