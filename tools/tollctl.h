/*
 * tools/tollctl.h
 *      tollctl, the command-line client of the admin API: shared types and
 *      the functions the command groups are built from.
 *
 * NOTES
 *      tollctl is a separate program (libcurl + jansson, no core/): one
 *      process per command, one blocking HTTP exchange at a time.  main()
 *      lives alone in tools/tollctl.c so every other file links into the
 *      unit-test binary.
 *
 *      Commands are data: a group (users, keys, ...) is a table of
 *      tg_ctl_cmd_t, each with an option table (tg_ctl_opt_t) that says
 *      how a command-line option becomes a JSON body field or a query
 *      parameter, and a route (tg_ctl_route_t) that the generic runners
 *      in tollctl_cmd.c send and print.  Commands that need more (login,
 *      export, health) have their own run function.
 *
 *      Exit status: 0 done, 1 failed (server error, transport error),
 *      2 usage error.  Every failure prints exactly one line on stderr,
 *      "tollctl: <what>: <why>", before returning 1 or 2.
 *
 *      Secrets: passwords, verification codes and endpoint credentials are
 *      never taken from the command line (ps shows it); they come from a
 *      terminal without echo or from stdin.  A secret the server shows
 *      once (a new or rotated key, a new token) goes to stdout only.
 */
#ifndef TG_TOOLS_TOLLCTL_H
#define TG_TOOLS_TOLLCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define TG_CTL_VERSION "0.1.0"

#define TG_CTL_EXIT_OK     0 /* done */
#define TG_CTL_EXIT_FAILED 1 /* the server refused or could not be reached */
#define TG_CTL_EXIT_USAGE  2 /* bad command line */

#define TG_CTL_DEFAULT_URL "http://127.0.0.1:8081"
#define TG_CTL_BODY_MAX    (16 * 1024 * 1024) /* one JSON response */
#define TG_CTL_SECRET_MAX  1024               /* password, code, credential */
#define TG_CTL_POS_MAX     4                  /* positional arguments */
#define TG_CTL_ALL_MAX     100000             /* rows --all follows up to */

#define TG_CTL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------ options */

/* How an option's text becomes a JSON value. */
typedef enum {
    TG_CTL_T_FLAG = 0, /* no value: true */
    TG_CTL_T_STR,      /* string as given */
    TG_CTL_T_INT,      /* signed 64-bit integer */
    TG_CTL_T_ID,       /* integer >= 1 */
    TG_CTL_T_MONEY,    /* decimal "12.50", sent as a string */
    TG_CTL_T_LIST,     /* "a,b,c" -> ["a","b","c"]; "" -> [] */
    TG_CTL_T_TIME,     /* RFC 3339, a date, or relative "+30d" / "-2h" */
    TG_CTL_T_DURATION, /* "90d", "12h", "30m", "45s", "3600" -> seconds */
    TG_CTL_T_ENUM,     /* one of <choices> ("a|b|c") */
    TG_CTL_T_BOOL,     /* "on"/"true" -> true, "off"/"false" -> false */
    TG_CTL_T_DECIMAL,  /* decimal "0.05", sent as a string */
    TG_CTL_T_JSON      /* "field=value" pairs (--set), value JSON or text */
} tg_ctl_type_t;

#define TG_CTL_O_REQUIRED 0x01 /* must be given */
#define TG_CTL_O_NULLABLE 0x02 /* "none" sends null (no limit) */
#define TG_CTL_O_QUERY    0x04 /* a query parameter, not a body field */
#define TG_CTL_O_LOCAL    0x08 /* used by the command itself, not sent */

typedef struct {
    const char *name;    /* long option without "--" */
    const char *field;   /* JSON field, "a.b" nests; NULL = <name> */
    tg_ctl_type_t type;  /* value kind */
    unsigned flags;      /* TG_CTL_O_* */
    const char *choices; /* TG_CTL_T_ENUM: "admin|user" */
    const char *help;    /* one line */
} tg_ctl_opt_t;

/* ------------------------------------------------------------- output */

/* How a table cell or a shown value is written. */
typedef enum {
    TG_CTL_F_TEXT = 0, /* as is */
    TG_CTL_F_INT,      /* integer, right-aligned */
    TG_CTL_F_COUNT,    /* integer, short (12.3k, 4.5M), right-aligned */
    TG_CTL_F_LIMIT,    /* as COUNT, but 0 (no limit) is "-" */
    TG_CTL_F_TIME,     /* RFC 3339 -> "5m ago" / "in 3d" / "2026-01-31" */
    TG_CTL_F_STATE,    /* coloured by meaning (active, disabled, ...) */
    TG_CTL_F_LIST,     /* array joined with "," */
    TG_CTL_F_US,       /* microseconds -> "850us", "12.5ms", "1.20s" */
    TG_CTL_F_MS,       /* milliseconds -> as above */
    TG_CTL_F_PCT,      /* ratio 0..1 -> "99.5%" */
    TG_CTL_F_BYTES,    /* bytes -> "1.5 MiB" */
    TG_CTL_F_ID        /* a name or an id, as is; the id 0 (none) is "-" */
} tg_ctl_fmt_t;

/* One table column.  <path> names the field ("a.b" nests); alternatives
 * separated by '|' are tried in order, for fields whose name the server
 * may spell either way. */
typedef struct {
    const char *header;
    const char *path;
    tg_ctl_fmt_t fmt;
    int max; /* cut longer cells to this width; 0 = no limit */
} tg_ctl_col_t;

/* ------------------------------------------------------------ context */

typedef struct {
    char url[1024];        /* base URL, no trailing '/' */
    char token[1024];      /* bearer token, "" = none */
    char token_from[4400]; /* where the token came from, for messages */
    char cred_path[4096];  /* credentials file, "" when unknown */
    char cmd[64];          /* "users create", prefix of error lines */
    bool json;             /* --json */
    bool color;            /* colour on stdout */
    bool tty_in;           /* stdin is a terminal */
    bool tty_out;          /* stdout is a terminal */
    bool all;              /* --all: follow next_cursor */
    bool csv_rows;         /* export progress counts CSV rows */
    bool login;            /* running login: an unusable credentials file
                              is replaced, not an error */
    long timeout_s;        /* whole exchange; 0 = none */
    time_t now;            /* for relative times */
    FILE *out;             /* stdout (a memory stream in tests) */
    FILE *err;             /* stderr (likewise) */
    void *curl;            /* CURL *, created on first request */
} tg_ctl_t;

/* A parsed command line for one command. */
typedef struct {
    char *pos[TG_CTL_POS_MAX]; /* positional arguments (argv strings) */
    int npos;
    json_t *body;  /* body fields from options (object) */
    json_t *query; /* query parameters (object of strings) */
    json_t *local; /* TG_CTL_O_LOCAL options by name */
    bool help;     /* --help was given */
} tg_ctl_args_t;

typedef struct tg_ctl_cmd_s tg_ctl_cmd_t;

/* What a generic command sends and prints (tollctl_cmd.c). */
typedef struct {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/admin/api/users/{id}" */
    const tg_ctl_col_t *cols; /* list columns (NULL: from the items) */
    const char *done;         /* "deleted user {id}"; NULL shows the result */
    const char *noun;         /* "user", for confirmations */
    bool confirm;             /* ask on a terminal unless --yes */
    bool secret;              /* the answer holds a shown-once secret */
    bool optional;            /* a 404 means this server lacks the route */
} tg_ctl_route_t;

/*
 * The routes of a resource at <path> ("/admin/api/users"), indexed by
 * TG_CTL_RT_*: list (columns <cols>), get, create, update, delete (done
 * message "<gone> <noun> {id}", confirmed), disable and enable.  One
 * table per resource, so users, keys, endpoints and groups read alike;
 * a resource without some of them simply does not use those entries.
 */
enum {
    TG_CTL_RT_LIST = 0,
    TG_CTL_RT_GET,
    TG_CTL_RT_CREATE,
    TG_CTL_RT_UPDATE,
    TG_CTL_RT_DELETE,
    TG_CTL_RT_DISABLE,
    TG_CTL_RT_ENABLE,
    TG_CTL_RT_N
};

#define TG_CTL_RESOURCE(path_, noun_, cols_, gone_)                            \
    {                                                                          \
        [TG_CTL_RT_LIST] = {.method = "GET", .path = path_, .cols = cols_},    \
        [TG_CTL_RT_GET] = {.method = "GET", .path = path_ "/{id}"},            \
        [TG_CTL_RT_CREATE] = {.method = "POST", .path = path_},                \
        [TG_CTL_RT_UPDATE] = {.method = "PATCH", .path = path_ "/{id}"},       \
        [TG_CTL_RT_DELETE] = {.method = "DELETE",                              \
                              .path = path_ "/{id}",                           \
                              .done = gone_ " " noun_ " {id}",                 \
                              .noun = noun_,                                   \
                              .confirm = true},                                \
        [TG_CTL_RT_DISABLE] = {.method = "POST",                               \
                               .path = path_ "/{id}/disable",                  \
                               .done = "disabled " noun_ " {id}"},             \
        [TG_CTL_RT_ENABLE] = {.method = "POST",                                \
                              .path = path_ "/{id}/enable",                    \
                              .done = "enabled " noun_ " {id}"},               \
    }

struct tg_ctl_cmd_s {
    const char *name;         /* "create" */
    const char *synopsis;     /* positional part, "ID" */
    int pos_min, pos_max;     /* positional count bounds */
    const char *summary;      /* one line */
    const char *help;         /* more text for --help, may be NULL */
    const tg_ctl_opt_t *opts; /* ended by {NULL} */
    int (*run)(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a);
    const tg_ctl_route_t *route; /* for the generic runners */
};

typedef struct {
    const char *name;         /* "users" */
    const char *summary;      /* one line */
    const tg_ctl_cmd_t *cmds; /* ended by {NULL} */
    const char *single;       /* when set, the group is this one command */
} tg_ctl_group_t;

/* The command groups, in help order, ended by {NULL}. */
extern const tg_ctl_group_t tg_ctl_groups[];

/* Group tables, one per file. */
extern const tg_ctl_cmd_t tg_ctl_users_cmds[];
extern const tg_ctl_cmd_t tg_ctl_keys_cmds[];
extern const tg_ctl_cmd_t tg_ctl_tokens_cmds[];
extern const tg_ctl_cmd_t tg_ctl_apps_cmds[];
extern const tg_ctl_cmd_t tg_ctl_endpoints_cmds[];
extern const tg_ctl_cmd_t tg_ctl_groups_cmds[];
extern const tg_ctl_cmd_t tg_ctl_health_cmds[];
extern const tg_ctl_cmd_t tg_ctl_login_cmds[];
extern const tg_ctl_cmd_t tg_ctl_logout_cmds[];
extern const tg_ctl_cmd_t tg_ctl_audit_cmds[];
extern const tg_ctl_cmd_t tg_ctl_status_cmds[];
extern const tg_ctl_cmd_t tg_ctl_usage_cmds[];
extern const tg_ctl_cmd_t tg_ctl_prices_cmds[];
extern const tg_ctl_cmd_t tg_ctl_export_cmds[];

/* ------------------------------------------- tollctl_args.c: parsing */

/*
 * Run the whole program on <argc>/<argv> with <ctl> already set up by
 * tg_ctl_init.  Returns the exit status.  main() is this and nothing else.
 */
int tg_ctl_main(tg_ctl_t *ctl, int argc, char **argv);

/* Fill <ctl> with defaults: stdout/stderr, terminals, colour (a terminal,
 * NO_COLOR unset or empty, TERM not "dumb"), the current time. */
void tg_ctl_init(tg_ctl_t *ctl, FILE *out, FILE *err);
/* Whether to colour: stdout a terminal (<tty>), NO_COLOR (<no_color>)
 * unset or empty (no-color.org), TERM (<term>) not "dumb". */
bool tg_ctl_color_wanted(bool tty, const char *no_color, const char *term);
/* Release what <ctl> holds (the curl handle); wipes the token. */
void tg_ctl_fini(tg_ctl_t *ctl);

/*
 * Parse <argc>/<argv> (the words after the command name) for <cmd> into
 * <a> (tg_ctl_args_fini releases it).  Common options (--json, --all,
 * --url, --no-color, --timeout, --help) are accepted anywhere and set
 * <ctl>.  Returns 0, or 2 after printing one usage line.
 */
int tg_ctl_args_parse(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, int argc,
                      char **argv, tg_ctl_args_t *a);
void tg_ctl_args_fini(tg_ctl_args_t *a);

/* The value of local option <name>: its string, NULL when absent. */
const char *tg_ctl_local_str(const tg_ctl_args_t *a, const char *name);
bool tg_ctl_local_flag(const tg_ctl_args_t *a, const char *name);

/*
 * Convert option text <in> of <type> to a new JSON value (caller owns
 * it).  <now> anchors relative times.  NULL with a reason in <why> (at
 * most <len> bytes) when the text is not valid for the type.
 */
json_t *tg_ctl_value_parse(tg_ctl_type_t type, const char *choices,
                           const char *in, time_t now, char *why, size_t len);

/* "90d" / "12h" / "30m" / "45s" / "3600" -> seconds; false when bad. */
bool tg_ctl_duration_parse(const char *in, long long *secs);

/* A time option -> RFC 3339 UTC into <out>: "2026-12-31",
 * "2026-12-31T10:00:00Z" (or with an offset), "+30d", "-2h", "now". */
bool tg_ctl_time_parse(const char *in, time_t now, char *out, size_t len);

/* A positive decimal integer id (what path ids must be). */
bool tg_ctl_id_valid(const char *s);

/* Print --help of the program, of a group, or of one command to <f>. */
void tg_ctl_help_main(FILE *f);
void tg_ctl_help_group(FILE *f, const tg_ctl_group_t *g);
void tg_ctl_help_cmd(FILE *f, const tg_ctl_group_t *g, const tg_ctl_cmd_t *c);

/* ------------------------------------------ tollctl_out.c: formatting */

/* Print "tollctl: <cmd>: <fmt...>" as one line on <ctl>'s stderr. */
void tg_ctl_errorf(tg_ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Display width of UTF-8 <s> in columns (one per code point). */
size_t tg_ctl_width(const char *s);

/*
 * Copy <src> to <dst> (<cap> bytes, always terminated) replacing control
 * characters (C0, DEL, C1) with '?', so a hostile server cannot send
 * terminal escapes; cut at a character boundary, adding "..." when
 * <max> (columns, 0 = none) or <cap> is exceeded.
 */
void tg_ctl_clean(char *dst, size_t cap, const char *src, size_t max);

/* Readable forms of numbers and times into <buf> of <cap> bytes. */
void tg_ctl_fmt_count(char *buf, size_t cap, long long n);
void tg_ctl_fmt_bytes(char *buf, size_t cap, double n);
void tg_ctl_fmt_us(char *buf, size_t cap, double us);
/* RFC 3339 <t> relative to <now>: within a week "5m ago" / "in 3h",
 * else the date; with <full>, "2026-12-02 14:12:53Z (5m ago)".  Text
 * that is not a time is copied as is. */
void tg_ctl_fmt_time(char *buf, size_t cap, const char *t, time_t now,
                     bool full);
/* The export progress line: with <rows> (>= 0) and <total> (>= 0) a bar,
 * "rows of total", rows/s and ETA; else bytes and bytes/s.  <secs> since
 * the start. */
void tg_ctl_fmt_progress(char *buf, size_t cap, double bytes, long long rows,
                         long long total, double secs);
/* <v> as a cell of format <fmt>. */
void tg_ctl_fmt_value(char *buf, size_t cap, const json_t *v, tg_ctl_fmt_t fmt,
                      time_t now);

/* The ANSI colour for a state word, NULL for none. */
const char *tg_ctl_state_color(const char *word);

/* Look up <path> ("a.b", alternatives "x|y") in <obj>; NULL when none. */
json_t *tg_ctl_json_path(const json_t *obj, const char *path);

/*
 * Print <items> (array of objects) as a table with <cols> (NULL: every
 * scalar field of the items, in order of first appearance).  "(none)"
 * for an empty list.
 */
void tg_ctl_table(tg_ctl_t *ctl, const json_t *items, const tg_ctl_col_t *cols);

/* Print object <obj> as aligned "field  value" lines; nested objects are
 * flattened ("user.name"), fields ending in "_at" shown as times. */
void tg_ctl_show(tg_ctl_t *ctl, const json_t *obj);

/* Print <v> as indented JSON with a newline. */
void tg_ctl_print_json(tg_ctl_t *ctl, const json_t *v);

/*
 * Print the error the server answered, one line: status, error code,
 * message and field from {"error":{...}}, or what the body says when it
 * is not that shape.  <what> names the request ("GET /admin/api/users").
 */
void tg_ctl_error_response(tg_ctl_t *ctl, const char *what, long status,
                           const json_t *body, const char *raw, size_t rawlen);

/* ----------------------------------------- tollctl_http.c: transport */

typedef struct {
    long status;        /* HTTP status */
    json_t *json;       /* the body parsed, NULL when empty or not JSON */
    char *raw;          /* the body as received (NUL-terminated) */
    size_t len;         /* its length */
    long long total;    /* X-Total-Count, -1 when absent */
    char location[512]; /* Location of a redirect */
} tg_ctl_resp_t;

void tg_ctl_resp_fini(tg_ctl_resp_t *r);

/*
 * Send <method> <path> (with query parameters <query>, an object of
 * strings, may be NULL) and the JSON <body> (may be NULL), authenticated
 * when <ctl> has a token.  Returns 0 with <r> filled whatever the status,
 * or 1 after printing the transport error.  When <sink> is not NULL the
 * body streams into it instead of memory (no size bound but a
 * low-speed timeout; progress on stderr when <progress>).
 */
int tg_ctl_request(tg_ctl_t *ctl, const char *method, const char *path,
                   const json_t *query, const json_t *body, tg_ctl_resp_t *r,
                   FILE *sink, bool progress);

/*
 * tg_ctl_request and then: a 2xx answer stores the parsed body in
 * <*out> (caller decrefs; an empty object when the body was empty);
 * anything else prints one error line.  A 404 for a route that may not
 * exist yet on this server is reported as such when <optional>.
 * Returns the exit status (0 or 1).
 */
int tg_ctl_call(tg_ctl_t *ctl, const char *method, const char *path,
                const json_t *query, const json_t *body, bool optional,
                json_t **out);

/* Credentials file path: $XDG_CONFIG_HOME/tollgate/credentials, else
 * $HOME/.config/tollgate/credentials.  False when neither is set. */
bool tg_ctl_cred_path(char *buf, size_t len);

/*
 * Decide the URL and the token: --url, else TOLLGATE_ADMIN_URL, else the
 * credentials file's, else the default; TOLLGATE_TOKEN, else the file's
 * token when the file is for the same URL.  <url_opt> may be NULL.
 * Returns 0, or 1/2 after printing why (bad URL, unsafe file).
 */
int tg_ctl_setup(tg_ctl_t *ctl, const char *url_opt);

/* Write the credentials file atomically, mode 0600, in a 0700
 * directory.  Returns 0 or 1 (printed). */
int tg_ctl_cred_write(tg_ctl_t *ctl, const char *url, const char *token,
                      const json_t *user, const char *expires_at);
/* Remove it; 0 when removed or absent. */
int tg_ctl_cred_remove(tg_ctl_t *ctl);

/*
 * Read one secret line into <buf> (<cap> bytes): from the terminal
 * without echo after printing <prompt> on stderr, or from stdin when
 * <from_stdin> or stdin is not a terminal and <allow_pipe>.  Returns 0,
 * 1 (read failed) or 2 (no terminal and piping not allowed).
 */
int tg_ctl_read_secret(tg_ctl_t *ctl, const char *prompt, bool echo,
                       bool from_stdin, bool allow_pipe, char *buf, size_t cap);

/* Overwrite every string in <v> (request bodies that held secrets). */
void tg_ctl_json_wipe(json_t *v);

/* --------------------------------------- tollctl_cmd.c: generic runs */

/* Build "/admin/api/x/{id}" with the first positional argument into
 * <buf>; 2 after a usage line when the id is not a positive integer. */
int tg_ctl_route_path(tg_ctl_t *ctl, const char *tmpl, const tg_ctl_args_t *a,
                      char *buf, size_t len);

/* GET a list route (following next_cursor with --all) and print it. */
int tg_ctl_run_list(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a);
/* GET one object and show it. */
int tg_ctl_run_get(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a);
/* Send the route with the body from the options and show the answer
 * (create, update, delete, enable, ...). */
int tg_ctl_run_send(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a);

/*
 * Print a fetched list: with --json the last page as the server sent it
 * (every page as one {"items", "next_cursor": null} with --all), else a
 * table of <items> with <cols> (NULL: from the items) and, when <last>
 * names a next page, a hint on stderr.
 */
void tg_ctl_print_list(tg_ctl_t *ctl, json_t *items, json_t *last,
                       const tg_ctl_col_t *cols);

/* Fetch a whole list (every page with --all) into <*items>. */
int tg_ctl_fetch_list(tg_ctl_t *ctl, const char *path, const json_t *query,
                      bool optional, json_t **items, json_t **last);

/* Print a shown-once secret <value> of <what> ("key") with a warning. */
void tg_ctl_print_secret(tg_ctl_t *ctl, const char *what, const char *value);

/* Ask "<question> [y/N]" on a terminal; true for yes.  Without a
 * terminal on stdin, true (scripts pass --yes or pipe). */
bool tg_ctl_confirm(tg_ctl_t *ctl, const char *question);

/* ------------------------------------------ tollctl_misc.c: export */

/* keys export / export: stream the keys export into a file (atomically)
 * or stdout.  Its options are shared by both spellings. */
int tg_ctl_run_export(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a);
extern const tg_ctl_opt_t tg_ctl_export_opts[];

#endif /* TG_TOOLS_TOLLCTL_H */
