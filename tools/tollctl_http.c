/*
 * tools/tollctl_http.c
 *      tollctl: talking to the admin API (libcurl), the credentials file,
 *      and reading secrets from a terminal.
 *
 * NOTES
 *      One easy handle, reset before each request; one request at a time.
 *      Responses kept in memory are bounded (TG_CTL_BODY_MAX); an export
 *      streams to a file instead.  Connect timeout 10 s, whole-request
 *      timeout --timeout (default 60 s).  Only http and https, and
 *      redirects are never followed: the bearer token must not travel to
 *      another address.
 *
 *      The credentials file ($XDG_CONFIG_HOME/tollgate/credentials or
 *      ~/.config/tollgate/credentials) is JSON {"url","token",
 *      "expires_at","user"}, written atomically (temporary file, fsync,
 *      rename) with mode 0600 in a 0700 directory.  A file that others
 *      can read, or that belongs to someone else, is refused.  Its token
 *      is sent only to the URL it was issued by.
 *
 *      Secrets read from a terminal are read with echo off; SIGINT while
 *      echo is off restores the terminal first.
 */
#include "tools/tollctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define TG_CTL_CRED_MAX (64 * 1024) /* credentials file size bound */

typedef struct {
    tg_ctl_t *ctl;
    tg_ctl_resp_t *r;
    char *buf;
    size_t len, cap;
    bool too_big;
    FILE *sink;
    bool progress;
    size_t sunk;
    long long lines; /* newlines written to the sink */
    time_t shown;
    bool sink_failed;
} tg_ctl_xfer_t;

static struct termios tg_ctl_saved_tty;
static volatile sig_atomic_t tg_ctl_tty_changed;


/* See tollctl.h. */
void
tg_ctl_resp_fini(tg_ctl_resp_t *r)
{
    json_decref(r->json);
    free(r->raw);
    r->json = NULL;
    r->raw = NULL;
    r->len = 0;
}


/* See tollctl.h. */
void
tg_ctl_fini(tg_ctl_t *ctl)
{
    if (ctl->curl != NULL) {
        curl_easy_cleanup(ctl->curl);
        ctl->curl = NULL;
    }
    explicit_bzero(ctl->token, sizeof(ctl->token));
}


/* Redraw the export's progress line on stderr, at most once a second
 * (and once more at the end, <last>). */
static void
tg_ctl_progress(tg_ctl_xfer_t *x, bool last)
{
    time_t now = time(NULL);
    char line[160];

    if (!last && now == x->shown) {
        return;
    }
    x->shown = now;
    tg_ctl_fmt_progress(line, sizeof(line), (double)x->sunk,
                        x->ctl->csv_rows ? x->lines - 1 : -1, x->r->total,
                        difftime(now, x->ctl->now));
    fprintf(x->ctl->err, "\r%s\033[K%s", line, last ? "\n" : "");
    fflush(x->ctl->err);
}


static size_t
tg_ctl_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    tg_ctl_xfer_t *x = userdata;
    size_t n = size * nmemb;
    char *nb, *p;

    if (x->sink != NULL && x->r->status >= 200 && x->r->status < 300) {
        if (fwrite(ptr, 1, n, x->sink) != n) {
            x->sink_failed = true;
            return 0;
        }
        x->sunk += n;
        for (p = memchr(ptr, '\n', n); p != NULL;
             p = memchr(p + 1, '\n', n - (size_t)(p + 1 - ptr))) {
            x->lines++;
        }
        if (x->progress) {
            tg_ctl_progress(x, false);
        }
        return n;
    }
    if (x->len + n + 1 > TG_CTL_BODY_MAX) {
        x->too_big = true;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;

        while (cap < x->len + n + 1) {
            cap *= 2;
        }
        nb = realloc(x->buf, cap);
        if (nb == NULL) {
            x->too_big = true;
            return 0;
        }
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, ptr, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return n;
}


static size_t
tg_ctl_header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
    tg_ctl_xfer_t *x = userdata;
    size_t n = size * nitems, k;
    char line[600];

    k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, ptr, k);
    line[k] = '\0';
    while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == '\n')) {
        line[--k] = '\0';
    }
    if (strncmp(line, "HTTP/", 5) == 0) {
        /* A new response head (after 100 Continue): its status. */
        x->r->status =
            strtol(strchr(line, ' ') ? strchr(line, ' ') : "0", NULL, 10);
    } else if (strncasecmp(line, "x-total-count:", 14) == 0) {
        x->r->total = strtoll(line + 14, NULL, 10);
    } else if (strncasecmp(line, "location:", 9) == 0) {
        tg_ctl_clean(x->r->location, sizeof(x->r->location),
                     line + 9 + strspn(line + 9, " \t"), 0);
    }
    return n;
}


/* Append "?a=b&c=d" from <query> (strings) to <url> of <cap> bytes. */
static bool
tg_ctl_query_append(CURL *curl, char *url, size_t cap, const json_t *query)
{
    size_t n = strlen(url);
    const char *key;
    json_t *v;
    bool first = true;

    json_object_foreach((json_t *)query, key, v)
    {
        const char *s = json_string_value(v);
        char *ek, *ev;
        int k;

        if (s == NULL) {
            continue;
        }
        ek = curl_easy_escape(curl, key, 0);
        ev = curl_easy_escape(curl, s, 0);
        k = ek && ev ? snprintf(url + n, cap - n, "%c%s=%s", first ? '?' : '&',
                                ek, ev)
                     : -1;
        curl_free(ek);
        curl_free(ev);
        if (k < 0 || (size_t)k >= cap - n) {
            return false;
        }
        n += (size_t)k;
        first = false;
    }
    return true;
}


/* Set the options of one exchange on <curl>. */
static int
tg_ctl_setopts(tg_ctl_t *ctl, CURL *curl, const char *method, const char *url,
               struct curl_slist *hdrs, const char *data, size_t dlen,
               tg_ctl_xfer_t *x, char *errbuf)
{
    CURLcode rc = CURLE_OK;

#define TG_CTL_SET(opt, val)                                                   \
    if (rc == CURLE_OK) {                                                      \
        rc = curl_easy_setopt(curl, opt, val);                                 \
    }
    TG_CTL_SET(CURLOPT_URL, url);
    TG_CTL_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    TG_CTL_SET(CURLOPT_FOLLOWLOCATION, 0L);
    TG_CTL_SET(CURLOPT_NOSIGNAL, 1L);
    TG_CTL_SET(CURLOPT_ERRORBUFFER, errbuf);
    TG_CTL_SET(CURLOPT_USERAGENT, "tollctl/" TG_CTL_VERSION);
    TG_CTL_SET(CURLOPT_HTTPHEADER, hdrs);
    TG_CTL_SET(CURLOPT_CUSTOMREQUEST, method);
    TG_CTL_SET(CURLOPT_WRITEFUNCTION, tg_ctl_write_cb);
    TG_CTL_SET(CURLOPT_WRITEDATA, x);
    TG_CTL_SET(CURLOPT_HEADERFUNCTION, tg_ctl_header_cb);
    TG_CTL_SET(CURLOPT_HEADERDATA, x);
    TG_CTL_SET(CURLOPT_CONNECTTIMEOUT, 10L);
    TG_CTL_SET(CURLOPT_ACCEPT_ENCODING, "");
    if (data != NULL) {
        TG_CTL_SET(CURLOPT_POSTFIELDSIZE, (long)dlen);
        TG_CTL_SET(CURLOPT_POSTFIELDS, data);
    } else if (strcmp(method, "GET") == 0) {
        TG_CTL_SET(CURLOPT_HTTPGET, 1L);
    }
    if (x->sink != NULL) {
        /* An export may run long: give up only when it stalls. */
        TG_CTL_SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        TG_CTL_SET(CURLOPT_LOW_SPEED_TIME,
                   ctl->timeout_s > 0 ? ctl->timeout_s : 60L);
    } else if (ctl->timeout_s > 0) {
        TG_CTL_SET(CURLOPT_TIMEOUT, ctl->timeout_s);
    }
#undef TG_CTL_SET
    if (rc != CURLE_OK) {
        tg_ctl_errorf(ctl, "curl_easy_setopt failed (%s)",
                      curl_easy_strerror(rc));
        return TG_CTL_EXIT_FAILED;
    }
    return TG_CTL_EXIT_OK;
}


/* The request headers: Accept, Content-Type, Authorization. */
static struct curl_slist *
tg_ctl_headers(tg_ctl_t *ctl, bool body)
{
    struct curl_slist *h = NULL, *t;
    char auth[1100];

    h = curl_slist_append(h, "Accept: application/json");
    if (h != NULL && body) {
        t = curl_slist_append(h, "Content-Type: application/json");
        h = t ? t : (curl_slist_free_all(h), NULL);
    }
    if (h != NULL && ctl->token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctl->token);
        t = curl_slist_append(h, auth);
        explicit_bzero(auth, sizeof(auth));
        h = t ? t : (curl_slist_free_all(h), NULL);
    }
    /* curl sends "Expect: 100-continue" for large bodies; the admin server
     * answers directly. */
    if (h != NULL) {
        t = curl_slist_append(h, "Expect:");
        h = t ? t : (curl_slist_free_all(h), NULL);
    }
    return h;
}


/* Print the transport error of a failed exchange. */
static void
tg_ctl_transport_error(tg_ctl_t *ctl, const char *method, const char *url,
                       CURLcode rc, const char *errbuf, tg_ctl_xfer_t *x)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

    if (x->too_big) {
        tg_ctl_errorf(ctl,
                      "%s %s: the answer is larger than %d MiB; narrow it "
                      "with --limit or filters",
                      method, url, TG_CTL_BODY_MAX / (1024 * 1024));
    } else if (x->sink_failed) {
        tg_ctl_errorf(ctl, "%s %s: writing the output failed (%s)", method, url,
                      strerror(errno));
    } else if (rc == CURLE_COULDNT_CONNECT ||
               rc == CURLE_COULDNT_RESOLVE_HOST) {
        tg_ctl_errorf(ctl,
                      "%s %s: %s; is tollgate running there? (set "
                      "TOLLGATE_ADMIN_URL or --url)",
                      method, url, why);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        tg_ctl_errorf(ctl,
                      "%s %s: no answer within the timeout (%s); "
                      "--timeout sets it",
                      method, url, why);
    } else {
        tg_ctl_errorf(ctl, "%s %s: %s", method, url, why);
    }
}


/* See tollctl.h. */
int
tg_ctl_request(tg_ctl_t *ctl, const char *method, const char *path,
               const json_t *query, const json_t *body, tg_ctl_resp_t *r,
               FILE *sink, bool progress)
{
    char url[4096], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    tg_ctl_xfer_t x;
    char *data = NULL;
    CURLcode rc;
    int ret = TG_CTL_EXIT_FAILED;

    memset(r, 0, sizeof(*r));
    r->total = -1;
    memset(&x, 0, sizeof(x));
    x.ctl = ctl;
    x.r = r;
    x.sink = sink;
    x.progress = progress;
    if (ctl->curl == NULL && (ctl->curl = curl_easy_init()) == NULL) {
        tg_ctl_errorf(ctl, "curl_easy_init failed");
        return TG_CTL_EXIT_FAILED;
    }
    curl_easy_reset(ctl->curl);
    if ((size_t)snprintf(url, sizeof(url), "%s%s", ctl->url, path) >=
            sizeof(url) ||
        !tg_ctl_query_append(ctl->curl, url, sizeof(url), query)) {
        tg_ctl_errorf(ctl, "%s %s: the URL is too long", method, path);
        return TG_CTL_EXIT_FAILED;
    }
    if (body != NULL) {
        data = json_dumps(body, JSON_COMPACT);
    }
    hdrs = tg_ctl_headers(ctl, body != NULL);
    if ((body != NULL && data == NULL) || hdrs == NULL) {
        tg_ctl_errorf(ctl, "%s %s: out of memory", method, path);
        goto done;
    }
    if (tg_ctl_setopts(ctl, ctl->curl, method, url, hdrs, data,
                       data ? strlen(data) : 0, &x, errbuf) != TG_CTL_EXIT_OK) {
        goto done;
    }
    rc = curl_easy_perform(ctl->curl);
    if (rc != CURLE_OK) {
        tg_ctl_transport_error(ctl, method, url, rc, errbuf, &x);
        goto done;
    }
    curl_easy_getinfo(ctl->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (x.sink != NULL && x.progress && r->status >= 200 && r->status < 300) {
        tg_ctl_progress(&x, true);
    }
    r->raw = x.buf;
    r->len = x.len;
    x.buf = NULL;
    if (r->raw == NULL && (r->raw = calloc(1, 1)) == NULL) {
        goto done;
    }
    if (r->len > 0) {
        r->json = json_loadb(r->raw, r->len, JSON_REJECT_DUPLICATES, NULL);
    }
    ret = TG_CTL_EXIT_OK;
done:
    if (data != NULL) {
        explicit_bzero(data, strlen(data));
    }
    free(data);
    free(x.buf);
    for (struct curl_slist *h = hdrs; h != NULL; h = h->next) {
        explicit_bzero(h->data, strlen(h->data)); /* the bearer token */
    }
    curl_slist_free_all(hdrs);
    return ret;
}


/* One line for a 401: what token was used and what to do. */
static void
tg_ctl_error_401(tg_ctl_t *ctl, const char *what, const tg_ctl_resp_t *r)
{
    const json_t *e = json_object_get(r->json, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));

    if (ctl->token[0] == '\0') {
        tg_ctl_errorf(ctl,
                      "%s: 401 unauthorized: not logged in to %s; run "
                      "`tollctl login` or set TOLLGATE_TOKEN%s%s",
                      what, ctl->url, ctl->token_from[0] ? " " : "",
                      ctl->token_from);
    } else {
        tg_ctl_errorf(ctl,
                      "%s: 401 unauthorized: %s; the token from %s was "
                      "refused (expired or revoked?): run `tollctl "
                      "login`",
                      what, msg ? msg : "(no message)", ctl->token_from);
    }
}


/* See tollctl.h. */
int
tg_ctl_call(tg_ctl_t *ctl, const char *method, const char *path,
            const json_t *query, const json_t *body, bool optional,
            json_t **out)
{
    tg_ctl_resp_t r;
    char what[600];
    int rc;

    *out = NULL;
    snprintf(what, sizeof(what), "%s %s", method, path);
    rc = tg_ctl_request(ctl, method, path, query, body, &r, NULL, false);
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    rc = TG_CTL_EXIT_FAILED;
    if (r.status >= 200 && r.status < 300) {
        if (r.len == 0) {
            *out = json_object();
            rc = TG_CTL_EXIT_OK;
        } else if (r.json == NULL) {
            tg_ctl_errorf(ctl, "%s: %ld answer is not valid JSON", what,
                          r.status);
        } else {
            *out = json_incref(r.json);
            rc = TG_CTL_EXIT_OK;
        }
    } else if (r.status >= 300 && r.status < 400) {
        tg_ctl_errorf(ctl,
                      "%s: redirected (%ld) to %s; tollctl does not "
                      "follow redirects, set TOLLGATE_ADMIN_URL to the "
                      "final address",
                      what, r.status, r.location[0] ? r.location : "?");
    } else if (r.status == 401 && strncmp(path, "/admin/api/auth/", 16) != 0) {
        /* Logging in answers 401 for wrong credentials: that is the
         * server's message, not a missing session. */
        tg_ctl_error_401(ctl, what, &r);
    } else if (r.status == 404 && optional) {
        tg_ctl_errorf(ctl,
                      "this server has no such route (404 %s); it "
                      "comes with a newer Tollgate",
                      what);
    } else {
        tg_ctl_error_response(ctl, what, r.status, r.json, r.raw, r.len);
    }
    tg_ctl_resp_fini(&r);
    return rc;
}


/* See tollctl.h. */
bool
tg_ctl_cred_path(char *buf, size_t len)
{
    const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
    int k;

    /* The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored. */
    if (x != NULL && x[0] == '/') {
        k = snprintf(buf, len, "%s/tollgate/credentials", x);
    } else if (h != NULL && h[0] == '/') {
        k = snprintf(buf, len, "%s/.config/tollgate/credentials", h);
    } else {
        return false;
    }
    return k > 0 && (size_t)k < len;
}


/* Copy a URL into ctl->url after checking it; 2 when it is not usable. */
static int
tg_ctl_url_set(tg_ctl_t *ctl, const char *url, const char *from)
{
    size_t n = strlen(url), i;

    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        n >= sizeof(ctl->url) || n < 8) {
        tg_ctl_errorf(ctl, "%s: '%.80s' is not an http:// or https:// URL",
                      from, url);
        return TG_CTL_EXIT_USAGE;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f || url[i] == '?' ||
            url[i] == '#') {
            tg_ctl_errorf(ctl,
                          "%s: the URL '%.80s' holds a space, a control "
                          "character, a query or a fragment",
                          from, url);
            return TG_CTL_EXIT_USAGE;
        }
    }
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    memcpy(ctl->url, url, n);
    ctl->url[n] = '\0';
    return TG_CTL_EXIT_OK;
}


/* Whether <t> may go into an Authorization header (visible ASCII). */
static bool
tg_ctl_token_valid(const char *t)
{
    size_t i, n = strlen(t);

    for (i = 0; i < n; i++) {
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f) {
            return false;
        }
    }
    return n > 0 && n < 1000;
}


/* Read and check the credentials file; NULL (no message) when absent,
 * NULL with <*rc> set after printing why it is refused. */
static json_t *
tg_ctl_cred_read(tg_ctl_t *ctl, int *rc)
{
    struct stat st;
    json_error_t je;
    json_t *cred = NULL;
    int fd;

    *rc = TG_CTL_EXIT_OK;
    fd = open(ctl->cred_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) {
            tg_ctl_errorf(ctl, "open(%s) failed (%s)", ctl->cred_path,
                          strerror(errno));
            *rc = TG_CTL_EXIT_FAILED;
        }
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > TG_CTL_CRED_MAX) {
        tg_ctl_errorf(ctl, "%s is not a regular file of at most 64 KiB",
                      ctl->cred_path);
        *rc = TG_CTL_EXIT_FAILED;
    } else if (st.st_uid != getuid() || (st.st_mode & 077) != 0) {
        tg_ctl_errorf(ctl,
                      "refusing %s: it %s (mode %04o); run chmod 600 "
                      "on it or log in again",
                      ctl->cred_path,
                      st.st_uid != getuid() ? "belongs to another user"
                                            : "is readable by others",
                      (unsigned)(st.st_mode & 07777));
        *rc = TG_CTL_EXIT_FAILED;
    } else {
        cred = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(cred)) {
            tg_ctl_errorf(ctl,
                          "%s: not a credentials file (line %d: %s); "
                          "log in again",
                          ctl->cred_path, je.line, je.text);
            json_decref(cred);
            cred = NULL;
            *rc = TG_CTL_EXIT_FAILED;
        }
    }
    close(fd);
    return cred;
}


/* Take the token of credentials <cred> when it was issued by ctl->url. */
static int
tg_ctl_cred_token(tg_ctl_t *ctl, const json_t *cred)
{
    const char *url = json_string_value(json_object_get(cred, "url"));
    const char *tok = json_string_value(json_object_get(cred, "token"));
    char norm[sizeof(ctl->url)];
    size_t n;

    if (url == NULL || tok == NULL) {
        return TG_CTL_EXIT_OK;
    }
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    snprintf(norm, sizeof(norm), "%.*s", (int)n, url);
    if (strcmp(norm, ctl->url) != 0) {
        snprintf(ctl->token_from, sizeof(ctl->token_from),
                 "(%s holds a session for %.200s only)", ctl->cred_path, norm);
        return TG_CTL_EXIT_OK;
    }
    if (!tg_ctl_token_valid(tok)) {
        tg_ctl_errorf(ctl, "%s: the token is malformed; log in again",
                      ctl->cred_path);
        return TG_CTL_EXIT_FAILED;
    }
    snprintf(ctl->token, sizeof(ctl->token), "%s", tok);
    snprintf(ctl->token_from, sizeof(ctl->token_from), "%s", ctl->cred_path);
    return TG_CTL_EXIT_OK;
}


/* See tollctl.h. */
int
tg_ctl_setup(tg_ctl_t *ctl, const char *url_opt)
{
    const char *env_url = getenv("TOLLGATE_ADMIN_URL");
    const char *env_tok = getenv("TOLLGATE_TOKEN");
    json_t *cred = NULL;
    int rc = TG_CTL_EXIT_OK;

    if (!tg_ctl_cred_path(ctl->cred_path, sizeof(ctl->cred_path))) {
        ctl->cred_path[0] = '\0';
    }
    if (ctl->cred_path[0] != '\0' && (env_tok == NULL || env_tok[0] == '\0')) {
        cred = tg_ctl_cred_read(ctl, &rc);
        if (rc != TG_CTL_EXIT_OK && !ctl->login) {
            return rc;
        }
        /* login replaces a file it could not use. */
        rc = TG_CTL_EXIT_OK;
    }
    if (url_opt != NULL) {
        rc = tg_ctl_url_set(ctl, url_opt, "--url");
    } else if (env_url != NULL && env_url[0] != '\0') {
        rc = tg_ctl_url_set(ctl, env_url, "TOLLGATE_ADMIN_URL");
    } else if (json_is_string(json_object_get(cred, "url"))) {
        rc =
            tg_ctl_url_set(ctl, json_string_value(json_object_get(cred, "url")),
                           ctl->cred_path);
    } else {
        rc = tg_ctl_url_set(ctl, TG_CTL_DEFAULT_URL, "default");
    }
    if (rc == TG_CTL_EXIT_OK && env_tok != NULL && env_tok[0] != '\0') {
        if (!tg_ctl_token_valid(env_tok)) {
            tg_ctl_errorf(ctl, "TOLLGATE_TOKEN holds a space or a control "
                               "character");
            rc = TG_CTL_EXIT_USAGE;
        } else {
            snprintf(ctl->token, sizeof(ctl->token), "%s", env_tok);
            snprintf(ctl->token_from, sizeof(ctl->token_from),
                     "TOLLGATE_TOKEN");
        }
    } else if (rc == TG_CTL_EXIT_OK && cred != NULL) {
        rc = tg_ctl_cred_token(ctl, cred);
    }
    if (cred != NULL) {
        tg_ctl_json_wipe(cred);
    }
    json_decref(cred);
    return rc;
}


/* mkdir <path> with mode 0700 when missing. */
static int
tg_ctl_mkdir(tg_ctl_t *ctl, const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        tg_ctl_errorf(ctl, "mkdir(%s) failed (%s)", path, strerror(errno));
        return TG_CTL_EXIT_FAILED;
    }
    return TG_CTL_EXIT_OK;
}


/* Create the directories above the credentials file. */
static int
tg_ctl_cred_dirs(tg_ctl_t *ctl)
{
    char dir[sizeof(ctl->cred_path)], *slash;

    snprintf(dir, sizeof(dir), "%s", ctl->cred_path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return TG_CTL_EXIT_OK;
    }
    *slash = '\0';
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        /* ~/.config (or $XDG_CONFIG_HOME) itself. */
        *slash = '\0';
        if (tg_ctl_mkdir(ctl, dir) != TG_CTL_EXIT_OK) {
            return TG_CTL_EXIT_FAILED;
        }
        *slash = '/';
    }
    return tg_ctl_mkdir(ctl, dir);
}


/* See tollctl.h. */
int
tg_ctl_cred_write(tg_ctl_t *ctl, const char *url, const char *token,
                  const json_t *user, const char *expires_at)
{
    char tmp[sizeof(ctl->cred_path) + 16];
    json_t *cred;
    char *text = NULL;
    int fd = -1, rc = TG_CTL_EXIT_FAILED;
    size_t len;

    if (ctl->cred_path[0] == '\0') {
        tg_ctl_errorf(ctl, "neither XDG_CONFIG_HOME nor HOME is set: nowhere "
                           "to keep the session; use TOLLGATE_TOKEN");
        return TG_CTL_EXIT_FAILED;
    }
    cred = json_pack("{s:s, s:s, s:O?, s:s?}", "url", url, "token", token,
                     "user", user, "expires_at", expires_at);
    text = cred ? json_dumps(cred, JSON_INDENT(2)) : NULL;
    if (text == NULL || tg_ctl_cred_dirs(ctl) != TG_CTL_EXIT_OK) {
        goto done;
    }
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", ctl->cred_path);
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        tg_ctl_errorf(ctl, "mkstemp(%s) failed (%s)", tmp, strerror(errno));
        goto done;
    }
    len = strlen(text);
    if (fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len ||
        write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        tg_ctl_errorf(ctl, "writing %s failed (%s)", tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, ctl->cred_path) != 0) {
        tg_ctl_errorf(ctl, "rename(%s, %s) failed (%s)", tmp, ctl->cred_path,
                      strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = TG_CTL_EXIT_OK;
done:
    if (fd >= 0) {
        close(fd);
    }
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
    }
    free(text);
    /* Only the token: <user> is the caller's object, shared by "O". */
    tg_ctl_json_wipe(json_object_get(cred, "token"));
    json_decref(cred);
    return rc;
}


/* See tollctl.h. */
int
tg_ctl_cred_remove(tg_ctl_t *ctl)
{
    if (ctl->cred_path[0] == '\0' || unlink(ctl->cred_path) == 0 ||
        errno == ENOENT) {
        return TG_CTL_EXIT_OK;
    }
    tg_ctl_errorf(ctl, "unlink(%s) failed (%s)", ctl->cred_path,
                  strerror(errno));
    return TG_CTL_EXIT_FAILED;
}


static void
tg_ctl_sigint_handler(int signo)
{
    if (tg_ctl_tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tg_ctl_saved_tty);
    }
    signal(signo, SIG_DFL);
    raise(signo);
}


/* Read one line from stdin into <buf>; 0, or 1 when nothing or too long. */
static int
tg_ctl_read_line(tg_ctl_t *ctl, const char *what, char *buf, size_t cap)
{
    size_t n;

    if (fgets(buf, (int)cap, stdin) == NULL) {
        tg_ctl_errorf(ctl, "reading the %s failed (end of input)", what);
        return TG_CTL_EXIT_FAILED;
    }
    n = strlen(buf);
    if (n == cap - 1 && buf[n - 1] != '\n' && !feof(stdin)) {
        explicit_bzero(buf, cap);
        tg_ctl_errorf(ctl, "the %s is longer than %zu bytes", what, cap - 2);
        return TG_CTL_EXIT_FAILED;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    return TG_CTL_EXIT_OK;
}


/* See tollctl.h. */
int
tg_ctl_read_secret(tg_ctl_t *ctl, const char *prompt, bool echo,
                   bool from_stdin, bool allow_pipe, char *buf, size_t cap)
{
    struct termios t;
    int rc;

    if (from_stdin || (!ctl->tty_in && allow_pipe)) {
        return tg_ctl_read_line(ctl, prompt, buf, cap);
    }
    if (!ctl->tty_in) {
        tg_ctl_errorf(ctl,
                      "stdin is not a terminal to ask for the %s; pipe "
                      "it with --%s-stdin",
                      prompt, prompt);
        return TG_CTL_EXIT_USAGE;
    }
    fprintf(ctl->err, "%c%s: ", prompt[0] - 'a' + 'A', prompt + 1);
    fflush(ctl->err);
    if (!echo && tcgetattr(STDIN_FILENO, &tg_ctl_saved_tty) == 0) {
        t = tg_ctl_saved_tty;
        t.c_lflag &= ~(tcflag_t)ECHO;
        t.c_lflag |= ECHONL;
        signal(SIGINT, tg_ctl_sigint_handler);
        signal(SIGTERM, tg_ctl_sigint_handler);
        tg_ctl_tty_changed = 1;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
    }
    rc = tg_ctl_read_line(ctl, prompt, buf, cap);
    if (tg_ctl_tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tg_ctl_saved_tty);
        tg_ctl_tty_changed = 0;
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    return rc;
}


/* See tollctl.h. */
void
tg_ctl_json_wipe(json_t *v)
{
    const char *key;
    json_t *e;
    size_t i;

    if (json_is_string(v)) {
        /* jansson owns the bytes; they are overwritten before it frees
         * them so no secret lingers in freed memory. */
        explicit_bzero((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, e)
        {
            tg_ctl_json_wipe(e);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e)
        {
            tg_ctl_json_wipe(e);
        }
    }
}
