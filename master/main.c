/*
 * master/main.c
 *      Command line: tollgate [-c FILE] [-t] [-d] [-s SIGNAL] [-v] [-h].
 *
 * NOTES
 *      Parses arguments, validates the configuration and hands over to
 *      master.  `-t` validates and exits like `nginx -t`; `-s` sends a
 *      signal to the master named by the configured pid file.
 */
#include "core/conf.h"
#include "core/core.h"
#include "master/master.h"
#include "master/proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TG_DEFAULT_CONF "conf/tollgate.conf"


static void
tg_usage(FILE *f)
{
    fprintf(f,
            "usage: tollgate [-c FILE] [-t] [-d] [-s SIGNAL] [-v] [-h]\n"
            "  -c FILE    configuration file (default " TG_DEFAULT_CONF ")\n"
            "  -t         check the configuration and exit\n"
            "  -d         run in the background\n"
            "  -s SIGNAL  send stop|quit|reload|reopen to the running master\n"
            "  -v         print the version and exit\n"
            "  -h         this help\n");
}


static int
tg_send_signal(const tg_conf_t *conf, const char *name)
{
    static const struct {
        const char *name;
        int signo;
    } map[] = {{"stop", SIGTERM},
               {"quit", SIGQUIT},
               {"reload", SIGHUP},
               {"reopen", SIGUSR1}};
    pid_t pid;
    size_t i;

    for (i = 0; i < TG_NELEMS(map); i++) {
        if (strcmp(map[i].name, name) == 0) {
            break;
        }
    }
    if (i == TG_NELEMS(map)) {
        fprintf(stderr, "tollgate: unknown signal \"%s\"\n", name);
        return 1;
    }
    pid = tg_proc_pidfile_read(conf->pid_file);
    if (pid <= 0) {
        fprintf(stderr, "tollgate: cannot read a pid from \"%s\"\n",
                conf->pid_file);
        return 1;
    }
    if (kill(pid, map[i].signo) == -1) {
        perror("tollgate: kill");
        return 1;
    }
    return 0;
}


int
main(int argc, char **argv)
{
    const char *path = TG_DEFAULT_CONF, *sig = NULL;
    bool test = false, daemonize = false;
    char err[1024];
    tg_conf_t *conf;
    int opt, rc;

    tg_proc_title_init(argc, argv);
    while ((opt = getopt(argc, argv, "c:tds:vh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'd':
            daemonize = true;
            break;
        case 's':
            sig = optarg;
            break;
        case 'v':
            printf("tollgate %s\n", TG_VERSION);
            return 0;
        case 'h':
            tg_usage(stdout);
            return 0;
        default:
            tg_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        tg_usage(stderr);
        return 2;
    }
    conf = tg_conf_create(path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "tollgate: %s\n", err);
        if (test) {
            fprintf(stderr, "tollgate: configuration file %s test failed\n",
                    path);
        }
        return 1;
    }
    if (test) {
        (void)tg_master_nofile(conf, err, sizeof(err));
        if (err[0] != '\0') {
            fprintf(stderr, "tollgate: warning: %s\n", err);
        }
        printf("tollgate: the configuration file %s syntax is ok\n"
               "tollgate: configuration file %s test is successful\n",
               path, path);
        tg_conf_destroy(conf);
        return 0;
    }
    if (sig != NULL) {
        rc = tg_send_signal(conf, sig);
        tg_conf_destroy(conf);
        return rc;
    }
    return tg_master_run(conf, daemonize);
}
