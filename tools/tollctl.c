/*
 * tools/tollctl.c
 *      tollctl, the command-line client of Tollgate's admin API: main().
 *
 * NOTES
 *      Only main() lives here, so the rest of tollctl (tools/tollctl_*.c)
 *      links into the unit-test binary.  docs/tollctl.md is the manual.
 */
#include "tools/tollctl.h"

#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>


int
main(int argc, char **argv)
{
    tg_ctl_t ctl;
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tollctl: curl_global_init failed\n");
        return TG_CTL_EXIT_FAILED;
    }
    tg_ctl_init(&ctl, stdout, stderr);
    rc = tg_ctl_main(&ctl, argc, argv);
    tg_ctl_fini(&ctl);
    if (fflush(stdout) != 0 && rc == TG_CTL_EXIT_OK) {
        perror("tollctl: writing the output failed");
        rc = TG_CTL_EXIT_FAILED;
    }
    curl_global_cleanup();
    return rc;
}
