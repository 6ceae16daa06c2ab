/*
 * tools/tollctl_args.c
 *      tollctl: the program's entry point after main(), command lookup,
 *      option parsing and value conversion, and --help.
 *
 * NOTES
 *      Options are long only ("--name value" or "--name=value"), with "-h"
 *      for help and "-o" for output files; "--" ends options.  A command's
 *      option table says where each value goes (a body field, possibly
 *      nested with "a.b", a query parameter, or the command itself) and
 *      how its text is checked and converted, so a bad value is a usage
 *      error (exit 2) naming the option before anything is sent.
 *
 *      Common options are accepted anywhere on the line: before the group
 *      ("tollctl --json users list") or after ("tollctl users list
 *      --json").
 */
#include "tools/tollctl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TG_CTL_WHY   256
#define TG_NWORDS(a) (sizeof(a) / sizeof((a)[0]))

/* The options every command takes; handled here, never sent. */
static const tg_ctl_opt_t tg_ctl_common_opts[] = {
    {"json", NULL, TG_CTL_T_FLAG, 0, NULL,
     "print the server's JSON instead of a table"},
    {"all", NULL, TG_CTL_T_FLAG, 0, NULL,
     "lists: follow next_cursor and print every page"},
    {"url", NULL, TG_CTL_T_STR, 0, NULL,
     "admin API base URL (see Environment in tollctl --help)"},
    {"timeout", NULL, TG_CTL_T_DURATION, 0, NULL,
     "give up on a request after this long (default 60s; 0 = never)"},
    {"no-color", NULL, TG_CTL_T_FLAG, 0, NULL, "never colour the output"},
    {"help", NULL, TG_CTL_T_FLAG, 0, NULL, "show this help"},
    {NULL, NULL, 0, 0, NULL, NULL},
};

const tg_ctl_group_t tg_ctl_groups[] = {
    {"login", "log in and store a session token", tg_ctl_login_cmds, "login"},
    {"logout", "end the session and forget the token", tg_ctl_logout_cmds,
     "logout"},
    {"users", "manage users", tg_ctl_users_cmds, NULL},
    {"keys", "manage API keys", tg_ctl_keys_cmds, NULL},
    {"apps", "applications: apply, review, approve, reject", tg_ctl_apps_cmds,
     NULL},
    {"endpoints", "manage upstream endpoints", tg_ctl_endpoints_cmds, NULL},
    {"groups", "manage endpoint groups", tg_ctl_groups_cmds, NULL},
    {"tokens", "manage automation tokens", tg_ctl_tokens_cmds, NULL},
    {"health", "endpoint health: state and history", tg_ctl_health_cmds, NULL},
    {"audit", "read the audit log", tg_ctl_audit_cmds, "audit"},
    {"status", "server status", tg_ctl_status_cmds, "status"},
    {"usage", "token and cost usage", tg_ctl_usage_cmds, "usage"},
    {"prices", "model prices", tg_ctl_prices_cmds, NULL},
    {"export", "export API keys to a file", tg_ctl_export_cmds, "export"},
    {NULL, NULL, NULL, NULL},
};


/* See tollctl.h. */
bool
tg_ctl_color_wanted(bool tty, const char *no_color, const char *term)
{
    return tty && (no_color == NULL || no_color[0] == '\0') &&
           (term == NULL || strcmp(term, "dumb") != 0);
}


/* See tollctl.h. */
void
tg_ctl_init(tg_ctl_t *ctl, FILE *out, FILE *err)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

    memset(ctl, 0, sizeof(*ctl));
    ctl->out = out;
    ctl->err = err;
    ctl->tty_in = isatty(STDIN_FILENO) == 1;
    ctl->tty_out = out == stdout && isatty(STDOUT_FILENO) == 1;
    ctl->color = tg_ctl_color_wanted(ctl->tty_out, nc, term);
    ctl->timeout_s = 60;
    ctl->now = time(NULL);
    snprintf(ctl->cmd, sizeof(ctl->cmd), "tollctl");
}


/* See tollctl.h. */
bool
tg_ctl_id_valid(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 18 || s[0] == '0') {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}


/* See tollctl.h. */
bool
tg_ctl_duration_parse(const char *in, long long *secs)
{
    char *end;
    long long v, mul = 1;

    if (in[0] < '0' || in[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtoll(in, &end, 10);
    if (errno != 0) {
        return false;
    }
    if (*end != '\0') {
        if (end[1] != '\0') {
            return false;
        }
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        case 'w':
            mul = 7 * 86400;
            break;
        default:
            return false;
        }
    }
    if (v > LLONG_MAX / mul) {
        return false;
    }
    *secs = v * mul;
    return true;
}


/* "+HH:MM" / "-HH:MM" / "Z" at <p> -> offset seconds east; false if bad. */
static bool
tg_ctl_zone_parse(const char *p, long *off)
{
    int hh, mm, n = 0;

    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *off = 0;
        return true;
    }
    if ((p[0] != '+' && p[0] != '-') ||
        sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || p[1 + n] != '\0' ||
        n != 5 || hh > 23 || mm > 59) {
        return false;
    }
    *off = (hh * 3600L + mm * 60L) * (p[0] == '-' ? -1 : 1);
    return true;
}


/* See tollctl.h. */
bool
tg_ctl_time_parse(const char *in, time_t now, char *out, size_t len)
{
    struct tm tm;
    long long secs;
    long off = 0;
    time_t t;
    int n = 0, k;

    memset(&tm, 0, sizeof(tm));
    if (strcmp(in, "now") == 0) {
        t = now;
    } else if (in[0] == '+' || in[0] == '-') {
        if (!tg_ctl_duration_parse(in + 1, &secs) ||
            secs > 100LL * 366 * 86400) {
            return false;
        }
        t = in[0] == '+' ? now + (time_t)secs : now - (time_t)secs;
    } else {
        if (sscanf(in, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &n) != 3 ||
            n != 10) {
            return false;
        }
        if (in[n] == 'T' || in[n] == 't' || in[n] == ' ') {
            int m = 0;

            if (sscanf(in + n + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min,
                       &tm.tm_sec, &m) != 3 ||
                m != 8) {
                return false;
            }
            n += 1 + m;
            if (in[n] == '.') { /* fractions are dropped */
                n++;
                while (in[n] >= '0' && in[n] <= '9') {
                    n++;
                }
            }
            if (!tg_ctl_zone_parse(in + n, &off)) {
                return false;
            }
        } else if (in[n] != '\0') {
            return false;
        }
        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
            tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60 || tm.tm_year < 1970) {
            return false;
        }
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = timegm(&tm) - off;
    }
    if (gmtime_r(&t, &tm) == NULL) {
        return false;
    }
    k = (int)strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return k > 0;
}


/* A decimal amount: digits, at most one '.', at most 9 decimals. */
static bool
tg_ctl_money_valid(const char *s)
{
    size_t i, digits = 0, decimals = 0;
    bool dot = false;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] == '.' && !dot) {
            dot = true;
        } else if (s[i] >= '0' && s[i] <= '9') {
            digits++;
            decimals += dot;
        } else {
            return false;
        }
    }
    return digits > 0 && digits <= 20 && decimals <= 9 && s[i - 1] != '.';
}


/* "a,b,c" -> ["a","b","c"], blanks around items dropped, empty items
 * refused; "" -> []. */
static json_t *
tg_ctl_list_parse(const char *in, char *why, size_t len)
{
    json_t *arr = json_array();
    const char *p = in;

    while (arr != NULL && *p != '\0') {
        const char *e = strchr(p, ','), *b = p;
        size_t n = e ? (size_t)(e - p) : strlen(p);

        while (n > 0 && isspace((unsigned char)*b)) {
            b++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)b[n - 1])) {
            n--;
        }
        if (n == 0) {
            snprintf(why, len, "empty item in the list");
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, json_stringn(b, n));
        p = e ? e + 1 : p + strlen(p);
        if (e != NULL && *p == '\0') {
            snprintf(why, len, "empty item in the list");
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}


/* Whether <word> is one of the '|'-separated <choices>. */
static bool
tg_ctl_choice(const char *choices, const char *word)
{
    size_t n = strlen(word);
    const char *p = choices;

    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);

        if (k == n && memcmp(p, word, n) == 0) {
            return true;
        }
        p = e ? e + 1 : NULL;
    }
    return false;
}


/* See tollctl.h. */
json_t *
tg_ctl_value_parse(tg_ctl_type_t type, const char *choices, const char *in,
                   time_t now, char *why, size_t len)
{
    char buf[64], *end;
    long long v;

    switch (type) {
    case TG_CTL_T_FLAG:
        return json_true();
    case TG_CTL_T_STR: {
        json_t *s = json_string(in);

        if (s == NULL) {
            snprintf(why, len, "not valid UTF-8");
        }
        return s;
    }
    case TG_CTL_T_INT:
    case TG_CTL_T_ID:
        errno = 0;
        v = strtoll(in, &end, 10);
        if (in[0] == '\0' || *end != '\0' || errno != 0 ||
            (type == TG_CTL_T_ID && v < 1) || isspace((unsigned char)in[0])) {
            snprintf(why, len, "expected %s, got '%.40s'",
                     type == TG_CTL_T_ID ? "a positive integer id"
                                         : "an integer",
                     in);
            return NULL;
        }
        return json_integer(v);
    case TG_CTL_T_MONEY:
    case TG_CTL_T_DECIMAL:
        if (!tg_ctl_money_valid(in)) {
            snprintf(why, len, "expected %s, got '%.40s'",
                     type == TG_CTL_T_MONEY ? "an amount like 12.50"
                                            : "a decimal like 0.05",
                     in);
            return NULL;
        }
        return json_string(in);
    case TG_CTL_T_LIST:
        return tg_ctl_list_parse(in, why, len);
    case TG_CTL_T_TIME:
        if (!tg_ctl_time_parse(in, now, buf, sizeof(buf))) {
            snprintf(why, len,
                     "expected a time like 2026-12-31, "
                     "2026-12-31T10:00:00Z, +30d or -2h, got '%.40s'",
                     in);
            return NULL;
        }
        return json_string(buf);
    case TG_CTL_T_DURATION:
        if (!tg_ctl_duration_parse(in, &v)) {
            snprintf(why, len,
                     "expected a duration like 90d, 12h, 30m or 45s, "
                     "got '%.40s'",
                     in);
            return NULL;
        }
        return json_integer(v);
    case TG_CTL_T_ENUM:
        if (!tg_ctl_choice(choices, in)) {
            snprintf(why, len, "expected one of %s, got '%.40s'", choices, in);
            return NULL;
        }
        return json_string(in);
    case TG_CTL_T_BOOL:
        if (tg_ctl_choice("on|true", in) || tg_ctl_choice("off|false", in)) {
            return json_boolean(tg_ctl_choice("on|true", in));
        }
        snprintf(why, len, "expected on or off, got '%.40s'", in);
        return NULL;
    case TG_CTL_T_JSON:
        break;
    }
    snprintf(why, len, "unsupported value");
    return NULL;
}


/* Set <v> (stolen) at dotted <path> in <obj>, creating objects between. */
static int
tg_ctl_set_path(json_t *obj, const char *path, json_t *v)
{
    const char *dot;
    char part[128];

    while ((dot = strchr(path, '.')) != NULL) {
        json_t *sub;
        size_t n = (size_t)(dot - path);

        if (n >= sizeof(part)) {
            json_decref(v);
            return -1;
        }
        memcpy(part, path, n);
        part[n] = '\0';
        sub = json_object_get(obj, part);
        if (!json_is_object(sub)) {
            sub = json_object();
            if (json_object_set_new(obj, part, sub) != 0) {
                json_decref(v);
                return -1;
            }
        }
        obj = sub;
        path = dot + 1;
    }
    return json_object_set_new(obj, path, v);
}


/* --set field=value: the value as JSON when it parses as JSON, else as
 * text; the field may be dotted. */
static int
tg_ctl_set_pair(tg_ctl_t *ctl, json_t *body, const char *in)
{
    const char *eq = strchr(in, '=');
    char field[128];
    json_t *v;

    if (eq == NULL || eq == in || (size_t)(eq - in) >= sizeof(field)) {
        tg_ctl_errorf(ctl, "--set expects field=value, got '%.60s'", in);
        return TG_CTL_EXIT_USAGE;
    }
    memcpy(field, in, (size_t)(eq - in));
    field[eq - in] = '\0';
    v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (v == NULL) {
        v = json_string(eq + 1);
    }
    if (v == NULL || tg_ctl_set_path(body, field, v) != 0) {
        tg_ctl_errorf(ctl, "--set %s: the value is not valid UTF-8", field);
        return TG_CTL_EXIT_USAGE;
    }
    return TG_CTL_EXIT_OK;
}


/* Handle common option <o> with value <val>. */
static int
tg_ctl_common_apply(tg_ctl_t *ctl, const tg_ctl_opt_t *o, const char *val,
                    tg_ctl_args_t *a)
{
    long long secs;

    if (strcmp(o->name, "json") == 0) {
        ctl->json = true;
    } else if (strcmp(o->name, "all") == 0) {
        ctl->all = true;
    } else if (strcmp(o->name, "no-color") == 0) {
        ctl->color = false;
    } else if (strcmp(o->name, "help") == 0) {
        a->help = true;
    } else if (strcmp(o->name, "url") == 0) {
        json_object_set_new(a->local, "url", json_string(val));
    } else if (strcmp(o->name, "timeout") == 0) {
        if (!tg_ctl_duration_parse(val, &secs) || secs > 86400) {
            tg_ctl_errorf(ctl,
                          "--timeout: expected a duration like 30s, "
                          "got '%.40s'",
                          val);
            return TG_CTL_EXIT_USAGE;
        }
        ctl->timeout_s = (long)secs;
    }
    return TG_CTL_EXIT_OK;
}


/* Find option <name> (<n> bytes) in <opts>. */
static const tg_ctl_opt_t *
tg_ctl_opt_find(const tg_ctl_opt_t *opts, const char *name, size_t n)
{
    for (; opts != NULL && opts->name != NULL; opts++) {
        if (strlen(opts->name) == n && memcmp(opts->name, name, n) == 0) {
            return opts;
        }
    }
    return NULL;
}


/* Store command option <o> with text <val>. */
static int
tg_ctl_opt_apply(tg_ctl_t *ctl, const tg_ctl_opt_t *o, const char *val,
                 tg_ctl_args_t *a)
{
    char why[TG_CTL_WHY];
    const char *field = o->field ? o->field : o->name;
    json_t *v;

    if (o->type == TG_CTL_T_JSON) {
        return tg_ctl_set_pair(ctl, a->body, val);
    }
    if (o->flags & TG_CTL_O_LOCAL) {
        v = o->type == TG_CTL_T_FLAG ? json_true() : json_string(val);
        json_object_set_new(a->local, o->name, v);
        return TG_CTL_EXIT_OK;
    }
    why[0] = '\0';
    if ((o->flags & TG_CTL_O_NULLABLE) && strcmp(val, "none") == 0) {
        v = json_null();
    } else {
        v = tg_ctl_value_parse(o->type, o->choices, val, ctl->now, why,
                               sizeof(why));
    }
    if (v == NULL) {
        tg_ctl_errorf(ctl, "--%s: %s", o->name, why[0] ? why : "bad value");
        return TG_CTL_EXIT_USAGE;
    }
    if (o->flags & TG_CTL_O_QUERY) {
        json_t *s = json_is_string(v) ? json_incref(v) : NULL;

        if (s == NULL) { /* integers and lists go out as text */
            char *txt =
                json_is_array(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);

            s = json_string(txt != NULL ? txt : val);
            free(txt);
        }
        json_decref(v);
        json_object_set_new(a->query, field, s);
        return TG_CTL_EXIT_OK;
    }
    if (tg_ctl_set_path(a->body, field, v) != 0) {
        tg_ctl_errorf(ctl, "--%s: out of memory", o->name);
        return TG_CTL_EXIT_FAILED;
    }
    return TG_CTL_EXIT_OK;
}


/* Parse one option word <argv>[*i] ("--x", "--x=v", "-h", "-o"). */
static int
tg_ctl_args_opt(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, int argc, char **argv,
                int *i, tg_ctl_args_t *a)
{
    const char *word = argv[*i], *name, *eq, *val = NULL;
    const tg_ctl_opt_t *o;
    bool common = false;
    size_t n;

    if (strcmp(word, "-h") == 0) {
        a->help = true;
        return TG_CTL_EXIT_OK;
    }
    name = strcmp(word, "-o") == 0 ? "output" : word + 2;
    eq = strchr(name, '=');
    n = eq ? (size_t)(eq - name) : strlen(name);
    o = tg_ctl_opt_find(cmd->opts, name, n);
    if (o == NULL) {
        o = tg_ctl_opt_find(tg_ctl_common_opts, name, n);
        common = o != NULL;
    }
    if (o == NULL) {
        tg_ctl_errorf(ctl, "unknown option '%.*s'; see --help", (int)n + 2,
                      word);
        return TG_CTL_EXIT_USAGE;
    }
    if (o->type == TG_CTL_T_FLAG) {
        if (eq != NULL) {
            tg_ctl_errorf(ctl, "--%s takes no value", o->name);
            return TG_CTL_EXIT_USAGE;
        }
        val = "true";
    } else if (eq != NULL) {
        val = eq + 1;
    } else if (*i + 1 < argc) {
        val = argv[++*i];
    } else {
        tg_ctl_errorf(ctl, "--%s needs a value", o->name);
        return TG_CTL_EXIT_USAGE;
    }
    return common ? tg_ctl_common_apply(ctl, o, val, a)
                  : tg_ctl_opt_apply(ctl, o, val, a);
}


/* Check required options after parsing. */
static int
tg_ctl_args_check(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    const tg_ctl_opt_t *o;

    if (a->npos < cmd->pos_min) {
        tg_ctl_errorf(ctl, "missing %s; usage: tollctl %s %s", cmd->synopsis,
                      ctl->cmd, cmd->synopsis);
        return TG_CTL_EXIT_USAGE;
    }
    for (o = cmd->opts; o != NULL && o->name != NULL; o++) {
        const char *field = o->field ? o->field : o->name;
        json_t *where = (o->flags & TG_CTL_O_LOCAL)   ? a->local
                        : (o->flags & TG_CTL_O_QUERY) ? a->query
                                                      : a->body;

        if ((o->flags & TG_CTL_O_REQUIRED) &&
            tg_ctl_json_path(
                where, (o->flags & TG_CTL_O_LOCAL) ? o->name : field) == NULL) {
            tg_ctl_errorf(ctl, "--%s is required; see --help", o->name);
            return TG_CTL_EXIT_USAGE;
        }
    }
    return TG_CTL_EXIT_OK;
}


/* See tollctl.h. */
int
tg_ctl_args_parse(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, int argc, char **argv,
                  tg_ctl_args_t *a)
{
    bool opts_done = false;
    int i, rc;

    memset(a, 0, sizeof(*a));
    a->body = json_object();
    a->query = json_object();
    a->local = json_object();
    if (a->body == NULL || a->query == NULL || a->local == NULL) {
        tg_ctl_errorf(ctl, "out of memory");
        return TG_CTL_EXIT_FAILED;
    }
    for (i = 0; i < argc; i++) {
        const char *w = argv[i];

        if (!opts_done && strcmp(w, "--") == 0) {
            opts_done = true;
        } else if (!opts_done && w[0] == '-' && w[1] != '\0' &&
                   !(w[1] >= '0' && w[1] <= '9')) {
            if (w[1] != '-' && strcmp(w, "-h") != 0 && strcmp(w, "-o") != 0) {
                tg_ctl_errorf(ctl, "unknown option '%.40s'; see --help", w);
                return TG_CTL_EXIT_USAGE;
            }
            rc = tg_ctl_args_opt(ctl, cmd, argc, argv, &i, a);
            if (rc != TG_CTL_EXIT_OK) {
                return rc;
            }
        } else if (a->npos < cmd->pos_max && a->npos < TG_CTL_POS_MAX) {
            a->pos[a->npos++] = argv[i];
        } else {
            tg_ctl_errorf(ctl, "unexpected argument '%.40s'; see --help", w);
            return TG_CTL_EXIT_USAGE;
        }
    }
    return a->help ? TG_CTL_EXIT_OK : tg_ctl_args_check(ctl, cmd, a);
}


/* See tollctl.h. */
void
tg_ctl_args_fini(tg_ctl_args_t *a)
{
    json_decref(a->body);
    json_decref(a->query);
    json_decref(a->local);
    a->body = a->query = a->local = NULL;
}


/* See tollctl.h. */
const char *
tg_ctl_local_str(const tg_ctl_args_t *a, const char *name)
{
    return json_string_value(json_object_get(a->local, name));
}


/* See tollctl.h. */
bool
tg_ctl_local_flag(const tg_ctl_args_t *a, const char *name)
{
    return json_is_true(json_object_get(a->local, name));
}


/* The metavariable shown for an option of <type>. */
static const char *
tg_ctl_metavar(const tg_ctl_opt_t *o)
{
    static const char *const names[] = {
        [TG_CTL_T_FLAG] = "",        [TG_CTL_T_STR] = " TEXT",
        [TG_CTL_T_INT] = " N",       [TG_CTL_T_ID] = " ID",
        [TG_CTL_T_MONEY] = " USD",   [TG_CTL_T_LIST] = " A,B,...",
        [TG_CTL_T_TIME] = " TIME",   [TG_CTL_T_DURATION] = " DURATION",
        [TG_CTL_T_ENUM] = " WORD",   [TG_CTL_T_BOOL] = " on|off",
        [TG_CTL_T_DECIMAL] = " X.Y", [TG_CTL_T_JSON] = " FIELD=VALUE",
    };

    if ((o->flags & TG_CTL_O_LOCAL) && o->type == TG_CTL_T_STR &&
        strcmp(o->name, "output") == 0) {
        return " FILE";
    }
    return names[o->type];
}


/* Print the option table <opts> under <title>. */
static void
tg_ctl_help_opts(FILE *f, const char *title, const tg_ctl_opt_t *opts)
{
    const tg_ctl_opt_t *o;
    char left[96];

    if (opts == NULL || opts->name == NULL) {
        return;
    }
    fprintf(f, "\n%s:\n", title);
    for (o = opts; o->name != NULL; o++) {
        snprintf(left, sizeof(left), "--%s%s", o->name, tg_ctl_metavar(o));
        fprintf(f, "  %-26s %s", left, o->help);
        if (o->type == TG_CTL_T_ENUM) {
            fprintf(f, " (%s)", o->choices);
        }
        if (o->flags & TG_CTL_O_NULLABLE) {
            fprintf(f, "; \"none\" = no limit");
        }
        if (o->flags & TG_CTL_O_REQUIRED) {
            fprintf(f, " [required]");
        }
        fputc('\n', f);
    }
}


/* See tollctl.h. */
void
tg_ctl_help_main(FILE *f)
{
    const tg_ctl_group_t *g;

    fprintf(f, "usage: tollctl [--json] [--url URL] COMMAND [SUBCOMMAND] "
               "[ARGS...]\n\n"
               "tollctl drives a Tollgate server through its admin API.\n\n"
               "Commands:\n");
    for (g = tg_ctl_groups; g->name != NULL; g++) {
        fprintf(f, "  %-10s %s\n", g->name, g->summary);
    }
    fprintf(
        f,
        "\n`tollctl COMMAND --help` describes a command.\n\n"
        "Environment:\n"
        "  TOLLGATE_ADMIN_URL  admin API base URL (default " TG_CTL_DEFAULT_URL
        ")\n"
        "  TOLLGATE_TOKEN      bearer token (else the credentials file "
        "that\n"
        "                      `tollctl login` writes: "
        "$XDG_CONFIG_HOME/tollgate/credentials\n"
        "                      or ~/.config/tollgate/credentials)\n"
        "  NO_COLOR            when set and not empty, no colour\n\n"
        "Exit status: 0 done, 1 failed, 2 usage error.\n");
    tg_ctl_help_opts(f, "Options of every command", tg_ctl_common_opts);
}


/* See tollctl.h. */
void
tg_ctl_help_group(FILE *f, const tg_ctl_group_t *g)
{
    const tg_ctl_cmd_t *c;

    fprintf(f,
            "usage: tollctl %s SUBCOMMAND [ARGS...]\n\n%c%s.\n\n"
            "Subcommands:\n",
            g->name, toupper((unsigned char)g->summary[0]), g->summary + 1);
    for (c = g->cmds; c->name != NULL; c++) {
        char left[64];

        snprintf(left, sizeof(left), "%s %s", c->name, c->synopsis);
        fprintf(f, "  %-20s %s\n", left, c->summary);
    }
    fprintf(f, "\n`tollctl %s SUBCOMMAND --help` describes one.\n", g->name);
}


/* See tollctl.h. */
void
tg_ctl_help_cmd(FILE *f, const tg_ctl_group_t *g, const tg_ctl_cmd_t *c)
{
    if (g->single != NULL) {
        fprintf(f, "usage: tollctl %s%s%s [OPTIONS]\n\n%c%s.\n", g->name,
                c->synopsis[0] ? " " : "", c->synopsis,
                toupper((unsigned char)c->summary[0]), c->summary + 1);
    } else {
        fprintf(f, "usage: tollctl %s %s%s%s [OPTIONS]\n\n%c%s.\n", g->name,
                c->name, c->synopsis[0] ? " " : "", c->synopsis,
                toupper((unsigned char)c->summary[0]), c->summary + 1);
    }
    if (c->route != NULL) {
        fprintf(f, "\nSends: %s %s\n", c->route->method, c->route->path);
    }
    if (c->help != NULL) {
        fprintf(f, "\n%s\n", c->help);
    }
    tg_ctl_help_opts(f, "Options", c->opts);
    tg_ctl_help_opts(f, "Common options", tg_ctl_common_opts);
}


/* Find group <name>, accepting a few aliases. */
static const tg_ctl_group_t *
tg_ctl_group_find(const char *name)
{
    const tg_ctl_group_t *g;

    if (strcmp(name, "applications") == 0) {
        name = "apps";
    } else if (strcmp(name, "user") == 0 || strcmp(name, "key") == 0 ||
               strcmp(name, "endpoint") == 0 || strcmp(name, "group") == 0 ||
               strcmp(name, "token") == 0 || strcmp(name, "app") == 0) {
        static char plural[16];

        snprintf(plural, sizeof(plural), "%ss", name);
        name = plural;
    }
    for (g = tg_ctl_groups; g->name != NULL; g++) {
        if (strcmp(g->name, name) == 0) {
            return g;
        }
    }
    return NULL;
}


/* Run command <c> of group <g> with the words after it. */
static int
tg_ctl_run_cmd(tg_ctl_t *ctl, const tg_ctl_group_t *g, const tg_ctl_cmd_t *c,
               int argc, char **argv)
{
    tg_ctl_args_t a;
    int rc;

    if (g->single != NULL) {
        snprintf(ctl->cmd, sizeof(ctl->cmd), "%s", g->name);
    } else {
        snprintf(ctl->cmd, sizeof(ctl->cmd), "%s %s", g->name, c->name);
    }
    rc = tg_ctl_args_parse(ctl, c, argc, argv, &a);
    if (rc == TG_CTL_EXIT_OK && a.help) {
        tg_ctl_help_cmd(ctl->out, g, c);
    } else if (rc == TG_CTL_EXIT_OK) {
        ctl->login = g->cmds == tg_ctl_login_cmds;
        rc = tg_ctl_setup(ctl, tg_ctl_local_str(&a, "url"));
        if (rc == TG_CTL_EXIT_OK) {
            rc = c->run(ctl, c, &a);
        }
    }
    tg_ctl_args_fini(&a);
    return rc;
}


/*
 * Common options given before the command: flags are applied here, and
 * "--url X" / "--timeout X" are appended to <extra> (at most 4 words) for
 * the command parser, so "tollctl --json users list" works like "tollctl
 * users list --json".  Sets <*first> to the command word's index.
 * Returns 0, 1 (help asked), 2 (usage error) or 3 (version printed).
 */
static int
tg_ctl_leading(tg_ctl_t *ctl, int argc, char **argv, int *first, char **extra,
               int *nextra)
{
    int i = 1;

    *nextra = 0;
    while (i < argc && argv[i][0] == '-') {
        const char *w = argv[i];

        if (strcmp(w, "--json") == 0) {
            ctl->json = true;
        } else if (strcmp(w, "--no-color") == 0) {
            ctl->color = false;
        } else if (strcmp(w, "--all") == 0) {
            ctl->all = true;
        } else if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            return 1;
        } else if (strcmp(w, "--version") == 0) {
            fprintf(ctl->out, "tollctl %s\n", TG_CTL_VERSION);
            return 3;
        } else if ((strcmp(w, "--url") == 0 || strcmp(w, "--timeout") == 0) &&
                   i + 1 < argc && *nextra + 2 <= 4) {
            extra[(*nextra)++] = argv[i++];
            extra[(*nextra)++] = argv[i];
        } else if ((strncmp(w, "--url=", 6) == 0 ||
                    strncmp(w, "--timeout=", 10) == 0) &&
                   *nextra + 1 <= 4) {
            extra[(*nextra)++] = argv[i];
        } else {
            tg_ctl_errorf(ctl, "unknown option '%.40s'; see tollctl --help", w);
            return 2;
        }
        i++;
    }
    *first = i;
    return 0;
}


/* Find subcommand <word> of <g> ("ls" and "show" are aliases of "list"
 * and "get"). */
static const tg_ctl_cmd_t *
tg_ctl_cmd_find(const tg_ctl_group_t *g, const char *word)
{
    const tg_ctl_cmd_t *c;

    for (c = g->cmds; c->name != NULL; c++) {
        if (strcmp(c->name, word) == 0 ||
            (strcmp(word, "ls") == 0 && strcmp(c->name, "list") == 0) ||
            (strcmp(word, "show") == 0 && strcmp(c->name, "get") == 0)) {
            return c;
        }
    }
    return NULL;
}


/* See tollctl.h. */
int
tg_ctl_main(tg_ctl_t *ctl, int argc, char **argv)
{
    char *words[256], *extra[4];
    const tg_ctl_group_t *g;
    const tg_ctl_cmd_t *c;
    int first = 1, rc, nw = 0, i, nextra;

    rc = tg_ctl_leading(ctl, argc, argv, &first, extra, &nextra);
    if (rc == 1 || (rc == 0 && first >= argc)) {
        tg_ctl_help_main(rc == 1 ? ctl->out : ctl->err);
        return rc == 1 ? TG_CTL_EXIT_OK : TG_CTL_EXIT_USAGE;
    }
    if (rc != 0) {
        return rc == 3 ? TG_CTL_EXIT_OK : TG_CTL_EXIT_USAGE;
    }
    if (argc - first + nextra > (int)TG_NWORDS(words)) {
        tg_ctl_errorf(ctl, "too many arguments");
        return TG_CTL_EXIT_USAGE;
    }
    if (strcmp(argv[first], "help") == 0) {
        g = first + 1 < argc ? tg_ctl_group_find(argv[first + 1]) : NULL;
        if (g != NULL) {
            tg_ctl_help_group(ctl->out, g);
        } else {
            tg_ctl_help_main(ctl->out);
        }
        return TG_CTL_EXIT_OK;
    }
    g = tg_ctl_group_find(argv[first]);
    if (g == NULL) {
        tg_ctl_errorf(ctl, "unknown command '%.40s'; see tollctl --help",
                      argv[first]);
        return TG_CTL_EXIT_USAGE;
    }
    i = first + 1;
    c = g->cmds;
    if (g->single == NULL) {
        if (i >= argc || strcmp(argv[i], "--help") == 0 ||
            strcmp(argv[i], "-h") == 0) {
            tg_ctl_help_group(i >= argc ? ctl->err : ctl->out, g);
            return i >= argc ? TG_CTL_EXIT_USAGE : TG_CTL_EXIT_OK;
        }
        c = tg_ctl_cmd_find(g, argv[i]);
        if (c == NULL) {
            snprintf(ctl->cmd, sizeof(ctl->cmd), "%s", g->name);
            tg_ctl_errorf(ctl,
                          "unknown subcommand '%.40s'; see tollctl %s --help",
                          argv[i], g->name);
            return TG_CTL_EXIT_USAGE;
        }
        i++;
    }
    for (nw = 0; nw < nextra; nw++) {
        words[nw] = extra[nw];
    }
    for (; i < argc; i++) {
        words[nw++] = argv[i];
    }
    return tg_ctl_run_cmd(ctl, g, c, nw, words);
}
