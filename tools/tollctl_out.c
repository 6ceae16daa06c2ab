/*
 * tools/tollctl_out.c
 *      tollctl: what it prints.  Tables, "field  value" listings, readable
 *      numbers and times, colour, error lines.
 *
 * NOTES
 *      Everything the server sends is untrusted text: every string passes
 *      through tg_ctl_clean before it reaches the terminal, so control
 *      characters (and with them terminal escape sequences) become '?'.
 *
 *      Column widths count code points (jansson guarantees valid UTF-8);
 *      wide East Asian characters count as one, which can misalign a
 *      column holding them but never breaks the output.
 *
 *      Colour is used only when stdout is a terminal, NO_COLOR is unset or
 *      empty, TERM is not "dumb" and --no-color was not given; --json
 *      never colours.
 */
#include "tools/tollctl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TG_CTL_CELL     512 /* bytes of one formatted cell */
#define TG_CTL_COLS_MAX 32  /* columns of a generic table */
#define TG_CTL_SHOW_MAX 256 /* fields of one shown object */

#define TG_CTL_RESET  "\033[0m"
#define TG_CTL_BOLD   "\033[1m"
#define TG_CTL_RED    "\033[31m"
#define TG_CTL_GREEN  "\033[32m"
#define TG_CTL_YELLOW "\033[33m"


/* See tollctl.h. */
void
tg_ctl_errorf(tg_ctl_t *ctl, const char *fmt, ...)
{
    char msg[1024], clean[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_ctl_clean(clean, sizeof(clean), msg, 0);
    if (strcmp(ctl->cmd, "tollctl") == 0) {
        fprintf(ctl->err, "tollctl: %s\n", clean);
    } else {
        fprintf(ctl->err, "tollctl: %s: %s\n", ctl->cmd, clean);
    }
    fflush(ctl->err);
}


/* See tollctl.h. */
size_t
tg_ctl_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        w += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return w;
}


/* Length of the UTF-8 sequence starting with byte <c> (1 for stray). */
static size_t
tg_ctl_utf8_len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}


/* See tollctl.h. */
void
tg_ctl_clean(char *dst, size_t cap, const char *src, size_t max)
{
    size_t n = 0, cols = 0, total = tg_ctl_width(src);
    bool cut = max > 0 && total > max;
    size_t keep = cut ? (max > 3 ? max - 3 : max) : (size_t)-1;

    if (cap == 0) {
        return;
    }
    while (*src != '\0' && cols < keep) {
        unsigned char c = (unsigned char)*src;
        size_t k = tg_ctl_utf8_len(c), j;

        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && (unsigned char)src[1] >= 0x80 &&
             (unsigned char)src[1] <= 0x9f)) {
            /* C0, DEL and C1 controls: never copied to a terminal. */
            if (n + 1 >= cap) {
                cut = true;
                break;
            }
            dst[n++] = '?';
            src += c == 0xc2 ? 2 : 1;
            cols++;
            continue;
        }
        for (j = 1; j < k; j++) {
            if (((unsigned char)src[j] & 0xc0) != 0x80) {
                k = j; /* malformed: copy what is there, one byte at a time */
                break;
            }
        }
        if (n + k + 4 >= cap) {
            cut = true;
            break;
        }
        memcpy(dst + n, src, k);
        n += k;
        src += k;
        cols++;
    }
    if (cut && n + 4 <= cap && *src != '\0') {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}


/* See tollctl.h. */
void
tg_ctl_fmt_count(char *buf, size_t cap, long long n)
{
    static const char *const units[] = {"", "k", "M", "G", "T", "P"};
    double v = (double)(n < 0 ? -n : n);
    size_t u = 0;

    if (v < 10000) {
        snprintf(buf, cap, "%lld", n);
        return;
    }
    while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000;
        u++;
    }
    if (v >= 999.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000;
        u++;
    }
    snprintf(buf, cap, v < 100 ? "%s%.1f%s" : "%s%.0f%s", n < 0 ? "-" : "", v,
             units[u]);
}


/* See tollctl.h. */
void
tg_ctl_fmt_bytes(char *buf, size_t cap, double n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;

    while (n >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        n /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, cap, "%.0f B", n);
    } else {
        snprintf(buf, cap, n < 10 ? "%.1f %s" : "%.0f %s", n, units[u]);
    }
}


/* See tollctl.h. */
void
tg_ctl_fmt_us(char *buf, size_t cap, double us)
{
    if (us < 0.5) {
        snprintf(buf, cap, "0"); /* a duration set to none, or none seen */
    } else if (us < 1000) {
        snprintf(buf, cap, "%.0fus", us);
    } else if (us < 10000) {
        snprintf(buf, cap, "%.2fms", us / 1000);
    } else if (us < 1000000) {
        snprintf(buf, cap, "%.0fms", us / 1000);
    } else if (us < 100000000) {
        snprintf(buf, cap, "%.2fs", us / 1000000);
    } else {
        snprintf(buf, cap, "%.0fs", us / 1000000);
    }
}


/* Parse RFC 3339 <t> to a time; false when it is not one. */
static bool
tg_ctl_time_read(const char *t, time_t *out)
{
    char norm[64];
    struct tm tm;

    if (!tg_ctl_time_parse(t, 0, norm, sizeof(norm)) || t[0] == '+' ||
        t[0] == '-' || strcmp(t, "now") == 0) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    if (strptime(norm, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL) {
        return false;
    }
    *out = timegm(&tm);
    return true;
}


/* "5m ago" / "in 3h" for <d> seconds (positive: past). */
static void
tg_ctl_fmt_ago(char *buf, size_t cap, long long d)
{
    long long a = d < 0 ? -d : d;
    const char *unit;
    long long v;

    if (a < 60) {
        snprintf(buf, cap, "%s",
                 a < 5   ? "just now"
                 : d > 0 ? "<1m ago"
                         : "<1m");
        if (d < 0 && a >= 5) {
            snprintf(buf, cap, "in <1m");
        }
        return;
    }
    if (a < 3600) {
        v = a / 60;
        unit = "m";
    } else if (a < 86400) {
        v = a / 3600;
        unit = "h";
    } else {
        v = a / 86400;
        unit = "d";
    }
    snprintf(buf, cap, d > 0 ? "%lld%s ago" : "in %lld%s", v, unit);
}


/* See tollctl.h. */
void
tg_ctl_fmt_time(char *buf, size_t cap, const char *t, time_t now, bool full)
{
    char rel[32];
    struct tm tm;
    time_t at;
    long long d;

    if (!tg_ctl_time_read(t, &at) || gmtime_r(&at, &tm) == NULL) {
        tg_ctl_clean(buf, cap, t, 0);
        return;
    }
    d = (long long)now - (long long)at;
    tg_ctl_fmt_ago(rel, sizeof(rel), d);
    if (full) {
        char abs[32];

        strftime(abs, sizeof(abs), "%Y-%m-%d %H:%M:%SZ", &tm);
        snprintf(buf, cap, "%s (%s)", abs, rel);
    } else if (d < 7 * 86400 && d > -7 * 86400) {
        snprintf(buf, cap, "%s", rel);
    } else {
        strftime(buf, cap, "%Y-%m-%d", &tm);
    }
}


/* See tollctl.h. */
void
tg_ctl_fmt_progress(char *buf, size_t cap, double bytes, long long rows,
                    long long total, double secs)
{
    char b[32], rate[32], eta[32] = "";
    double r;
    int fill, i, n;

    tg_ctl_fmt_bytes(b, sizeof(b), bytes);
    if (rows < 0 || total <= 0) {
        tg_ctl_fmt_bytes(rate, sizeof(rate), secs > 0 ? bytes / secs : 0);
        snprintf(buf, cap, "%s written, %s/s", b, rate);
        return;
    }
    if (rows > total) {
        rows = total;
    }
    r = secs > 0 ? (double)rows / secs : 0;
    tg_ctl_fmt_count(rate, sizeof(rate), (long long)r);
    if (r > 0 && rows < total) {
        tg_ctl_fmt_us(eta, sizeof(eta), (double)(total - rows) / r * 1e6);
    }
    fill = (int)(20 * rows / total);
    n = snprintf(buf, cap, "[");
    for (i = 0; i < 20 && n + 2 < (int)cap; i++) {
        buf[n++] = i < fill ? '#' : '-';
    }
    snprintf(buf + n, cap - (size_t)n,
             "] %3lld%%  %lld/%lld rows  %s rows/s%s%s  %s", rows * 100 / total,
             rows, total, rate, eta[0] ? "  ETA " : "", eta, b);
}


/* A JSON number or numeric string as a double; false otherwise. */
static bool
tg_ctl_num(const json_t *v, double *out)
{
    char *end;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v) && json_string_length(v) > 0) {
        *out = strtod(json_string_value(v), &end);
        return *end == '\0';
    }
    return false;
}


/* Scalar <v> as text (no formatting): strings as is, numbers, true/false,
 * arrays of scalars joined with ",", "-" for null. */
static void
tg_ctl_fmt_plain(char *buf, size_t cap, const json_t *v)
{
    size_t i, n = 0;
    json_t *e;

    buf[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, cap, "-");
    } else if (json_is_string(v)) {
        tg_ctl_clean(buf, cap, json_string_value(v), 0);
    } else if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, cap, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) {
            snprintf(buf, cap, "(all)");
            return;
        }
        json_array_foreach(v, i, e)
        {
            char one[TG_CTL_CELL];

            tg_ctl_fmt_plain(one, sizeof(one), e);
            if (n + strlen(one) + 5 > cap) {
                if (n + 4 <= cap) {
                    memcpy(buf + n, "...", 4);
                }
                break;
            }
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", one);
        }
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

        tg_ctl_clean(buf, cap, s ? s : "?", 0);
        free(s);
    }
}


/* See tollctl.h. */
void
tg_ctl_fmt_value(char *buf, size_t cap, const json_t *v, tg_ctl_fmt_t fmt,
                 time_t now)
{
    double d;

    if (v == NULL || json_is_null(v)) {
        snprintf(buf, cap, "-");
        return;
    }
    switch (fmt) {
    case TG_CTL_F_ID:
        if (json_is_integer(v) && json_integer_value(v) == 0) {
            snprintf(buf, cap, "-");
            return;
        }
        break;
    case TG_CTL_F_LIMIT:
        if (tg_ctl_num(v, &d) && d == 0) {
            snprintf(buf, cap, "-");
            return;
        }
        /* fall through */
    case TG_CTL_F_COUNT:
        if (tg_ctl_num(v, &d) && fabs(d) < 9e18) {
            tg_ctl_fmt_count(buf, cap, (long long)d);
            return;
        }
        break;
    case TG_CTL_F_TIME:
        if (json_is_string(v)) {
            tg_ctl_fmt_time(buf, cap, json_string_value(v), now, false);
            return;
        }
        break;
    case TG_CTL_F_US:
    case TG_CTL_F_MS:
        if (tg_ctl_num(v, &d) && d >= 0) {
            tg_ctl_fmt_us(buf, cap, fmt == TG_CTL_F_MS ? d * 1000 : d);
            return;
        }
        break;
    case TG_CTL_F_PCT:
        if (tg_ctl_num(v, &d)) {
            snprintf(buf, cap, "%.1f%%", d * 100);
            return;
        }
        break;
    case TG_CTL_F_BYTES:
        if (tg_ctl_num(v, &d) && d >= 0) {
            tg_ctl_fmt_bytes(buf, cap, d);
            return;
        }
        break;
    default:
        break;
    }
    tg_ctl_fmt_plain(buf, cap, v);
}


/* See tollctl.h. */
const char *
tg_ctl_state_color(const char *w)
{
    static const char *const good[] = {
        "active", "enabled", "approved", "healthy", "closed",
        "ok",     "up",      "ready",    "yes",     NULL};
    static const char *const bad[] = {
        "disabled", "rejected", "unhealthy", "open", "down",
        "failed",   "error",    "revoked",   "no",   NULL};
    static const char *const warn[] = {"pending", "degraded", "half_open",
                                       "expired", "unknown",  "connecting",
                                       "cooling", NULL};
    size_t i;

    for (i = 0; good[i] != NULL; i++) {
        if (strcasecmp(w, good[i]) == 0) {
            return TG_CTL_GREEN;
        }
    }
    for (i = 0; bad[i] != NULL; i++) {
        if (strcasecmp(w, bad[i]) == 0) {
            return TG_CTL_RED;
        }
    }
    for (i = 0; warn[i] != NULL; i++) {
        if (strcasecmp(w, warn[i]) == 0) {
            return TG_CTL_YELLOW;
        }
    }
    return NULL;
}


/* One path without alternatives: "a.b.c". */
static json_t *
tg_ctl_json_path1(const json_t *obj, const char *path, size_t len)
{
    char part[128];
    const char *p = path, *end = path + len;

    while (p < end && obj != NULL) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);

        if (n >= sizeof(part) || !json_is_object(obj)) {
            return NULL;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        obj = json_object_get(obj, part);
        p += n + (dot != NULL);
    }
    return (json_t *)obj;
}


/* See tollctl.h. */
json_t *
tg_ctl_json_path(const json_t *obj, const char *path)
{
    const char *p = path;

    while (p != NULL) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        json_t *v = tg_ctl_json_path1(obj, p, n);

        if (v != NULL && !json_is_null(v)) {
            return v;
        }
        if (v != NULL && bar == NULL) {
            return v;
        }
        p = bar ? bar + 1 : NULL;
    }
    return NULL;
}


/* Print <cell> padded to <width>, right-aligned when <right>, coloured
 * when <color> (a code or NULL). */
static void
tg_ctl_cell_print(tg_ctl_t *ctl, const char *cell, size_t width, bool right,
                  const char *color, bool last)
{
    size_t w = tg_ctl_width(cell), pad = width > w ? width - w : 0;

    if (right) {
        fprintf(ctl->out, "%*s", (int)pad, "");
    }
    if (color != NULL && ctl->color) {
        fprintf(ctl->out, "%s%s%s", color, cell, TG_CTL_RESET);
    } else {
        fputs(cell, ctl->out);
    }
    if (!right && !last) {
        fprintf(ctl->out, "%*s", (int)pad, "");
    }
    if (!last) {
        fputs("  ", ctl->out);
    }
}


/* Build generic columns from the scalar fields of <items> into <cols>
 * (at most TG_CTL_COLS_MAX; paths point into <items>). */
static size_t
tg_ctl_cols_guess(const json_t *items, tg_ctl_col_t *cols)
{
    size_t i, n = 0, k;
    const char *key;
    json_t *it, *v;

    json_array_foreach(items, i, it)
    {
        json_object_foreach((json_t *)it, key, v)
        {
            if (json_is_object(v) || n >= TG_CTL_COLS_MAX) {
                continue;
            }
            for (k = 0; k < n && strcmp(cols[k].path, key) != 0; k++) {
            }
            if (k == n) {
                size_t kl = strlen(key);
                bool at = kl > 3 && strcmp(key + kl - 3, "_at") == 0;

                cols[n].header = key;
                cols[n].path = key;
                cols[n].fmt = at                           ? TG_CTL_F_TIME
                              : strcmp(key, "status") == 0 ? TG_CTL_F_STATE
                              : json_is_integer(v)         ? TG_CTL_F_INT
                                                           : TG_CTL_F_TEXT;
                cols[n].max = 40;
                n++;
            }
        }
    }
    return n;
}


/* Whether cells of <fmt> are right-aligned. */
static bool
tg_ctl_fmt_right(tg_ctl_fmt_t fmt)
{
    return fmt == TG_CTL_F_INT || fmt == TG_CTL_F_COUNT ||
           fmt == TG_CTL_F_LIMIT || fmt == TG_CTL_F_US || fmt == TG_CTL_F_MS ||
           fmt == TG_CTL_F_PCT || fmt == TG_CTL_F_BYTES;
}


/* Cell <c> of row <it> formatted and cleaned into <cell>. */
static void
tg_ctl_cell(tg_ctl_t *ctl, const json_t *it, const tg_ctl_col_t *c, char *cell,
            size_t len)
{
    char raw[TG_CTL_CELL];

    tg_ctl_fmt_value(raw, sizeof(raw), tg_ctl_json_path(it, c->path), c->fmt,
                     ctl->now);
    tg_ctl_clean(cell, len, raw, c->max > 0 ? (size_t)c->max : 0);
}


/* See tollctl.h.  Two passes over the rows (widths, then printing) keep
 * memory flat however long the list is. */
void
tg_ctl_table(tg_ctl_t *ctl, const json_t *items, const tg_ctl_col_t *cols)
{
    tg_ctl_col_t guess[TG_CTL_COLS_MAX];
    size_t ncols = 0, nrows = json_array_size(items), r, c;
    size_t width[TG_CTL_COLS_MAX];
    char cell[TG_CTL_CELL];

    if (nrows == 0) {
        fprintf(ctl->out, "(none)\n");
        return;
    }
    if (cols == NULL) {
        ncols = tg_ctl_cols_guess(items, guess);
        cols = guess;
    } else {
        while (ncols < TG_CTL_COLS_MAX && cols[ncols].header != NULL) {
            ncols++;
        }
    }
    for (c = 0; c < ncols; c++) {
        width[c] = tg_ctl_width(cols[c].header);
        for (r = 0; r < nrows; r++) {
            tg_ctl_cell(ctl, json_array_get(items, r), &cols[c], cell,
                        sizeof(cell));
            width[c] = TG_CTL_MAX(width[c], tg_ctl_width(cell));
        }
    }
    for (c = 0; c < ncols; c++) {
        tg_ctl_cell_print(ctl, cols[c].header, width[c],
                          tg_ctl_fmt_right(cols[c].fmt),
                          ctl->color ? TG_CTL_BOLD : NULL, c + 1 == ncols);
    }
    fputc('\n', ctl->out);
    for (r = 0; r < nrows; r++) {
        for (c = 0; c < ncols; c++) {
            tg_ctl_cell(ctl, json_array_get(items, r), &cols[c], cell,
                        sizeof(cell));
            tg_ctl_cell_print(
                ctl, cell, width[c], tg_ctl_fmt_right(cols[c].fmt),
                cols[c].fmt == TG_CTL_F_STATE ? tg_ctl_state_color(cell) : NULL,
                c + 1 == ncols);
        }
        fputc('\n', ctl->out);
    }
}


/* The format a shown field gets from its name: times for "_at", sizes
 * for "_bytes", durations for "_us" and "_ms" (not epoch "_ms" times). */
static tg_ctl_fmt_t
tg_ctl_show_fmt(const char *key)
{
    size_t kl = strlen(key);

    if (kl > 3 && strcmp(key + kl - 3, "_at") == 0) {
        return TG_CTL_F_TIME;
    }
    if (kl > 6 && strcmp(key + kl - 6, "_bytes") == 0) {
        return TG_CTL_F_BYTES;
    }
    if (kl > 3 && strcmp(key + kl - 3, "_us") == 0) {
        return TG_CTL_F_US;
    }
    if (kl > 3 && strcmp(key + kl - 3, "_ms") == 0 &&
        strstr(key, "until") == NULL && strstr(key, "now") == NULL &&
        strstr(key, "last_") == NULL && strstr(key, "checked") == NULL) {
        return TG_CTL_F_MS;
    }
    return TG_CTL_F_TEXT;
}


/* Where a field goes in a listing: ids, then names, then the rest, then
 * times. */
static int
tg_ctl_key_rank(const char *key)
{
    size_t kl = strlen(key);

    if (strcmp(key, "id") == 0 ||
        (kl > 3 && strcmp(key + kl - 3, "_id") == 0)) {
        return 0;
    }
    if (strcmp(key, "name") == 0 || strcmp(key, "username") == 0 ||
        strcmp(key, "kind") == 0) {
        return 1;
    }
    return kl > 3 && strcmp(key + kl - 3, "_at") == 0 ? 3 : 2;
}


static int
tg_ctl_key_cmp(const void *a, const void *b)
{
    const char *ka = *(const char *const *)a, *kb = *(const char *const *)b;
    int ra = tg_ctl_key_rank(ka), rb = tg_ctl_key_rank(kb);

    return ra != rb ? ra - rb : strcmp(ka, kb);
}


/* Collect the "field  value" lines of <obj> under <prefix> into <lines>
 * (an array of [name, value] pairs), and arrays of objects into
 * <tables> ([name, array] pairs) to print as tables after them. */
static void
tg_ctl_show_collect(tg_ctl_t *ctl, const json_t *obj, const char *prefix,
                    json_t *lines, json_t *tables, int depth)
{
    char name[256], val[TG_CTL_CELL * 2];
    const char *key, *keys[TG_CTL_SHOW_MAX];
    size_t n = 0, i;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (n < TG_CTL_SHOW_MAX) {
            keys[n++] = key;
        }
    }
    qsort(keys, n, sizeof(keys[0]), tg_ctl_key_cmp);
    for (i = 0; i < n; i++) {
        tg_ctl_fmt_t fmt = tg_ctl_show_fmt(keys[i]);

        key = keys[i];
        v = json_object_get(obj, key);

        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "",
                 key);
        if (json_is_object(v) && json_object_size(v) > 0 && depth < 4) {
            tg_ctl_show_collect(ctl, v, name, lines, tables, depth + 1);
            continue;
        }
        if (json_is_array(v) && json_is_object(json_array_get(v, 0))) {
            json_array_append_new(tables, json_pack("[sO]", name, v));
            continue;
        }
        if (fmt == TG_CTL_F_TIME && json_is_string(v)) {
            tg_ctl_fmt_time(val, sizeof(val), json_string_value(v), ctl->now,
                            true);
        } else {
            tg_ctl_fmt_value(val, sizeof(val), v, fmt, ctl->now);
        }
        json_array_append_new(lines, json_pack("[ss]", name, val));
    }
}


/* Whether a shown field's value is coloured by meaning. */
static bool
tg_ctl_show_stateful(const char *name)
{
    return strstr(name, "status") || strstr(name, "state") ||
           strstr(name, "health") || strstr(name, "breaker") ||
           strstr(name, "database") || strstr(name, "available");
}


/* See tollctl.h. */
void
tg_ctl_show(tg_ctl_t *ctl, const json_t *obj)
{
    json_t *lines = json_array(), *tables = json_array(), *l;
    size_t i, w = 0;
    char name[256];

    if (lines == NULL || tables == NULL) {
        json_decref(lines);
        json_decref(tables);
        return;
    }
    tg_ctl_show_collect(ctl, obj, "", lines, tables, 0);
    json_array_foreach(lines, i, l)
    {
        tg_ctl_clean(name, sizeof(name),
                     json_string_value(json_array_get(l, 0)), 0);
        w = TG_CTL_MAX(w, tg_ctl_width(name));
    }
    json_array_foreach(lines, i, l)
    {
        const char *val = json_string_value(json_array_get(l, 1));

        tg_ctl_clean(name, sizeof(name),
                     json_string_value(json_array_get(l, 0)), 0);
        fputs(name, ctl->out);
        fprintf(ctl->out, "%*s  ", (int)(w - tg_ctl_width(name)), "");
        tg_ctl_cell_print(
            ctl, val, 0, false,
            tg_ctl_show_stateful(name) ? tg_ctl_state_color(val) : NULL, true);
        fputc('\n', ctl->out);
    }
    if (json_array_size(lines) == 0 && json_array_size(tables) == 0) {
        fprintf(ctl->out, "(empty)\n");
    }
    json_array_foreach(tables, i, l)
    {
        tg_ctl_clean(name, sizeof(name),
                     json_string_value(json_array_get(l, 0)), 0);
        fprintf(ctl->out, "\n%s:\n", name);
        tg_ctl_table(ctl, json_array_get(l, 1), NULL);
    }
    json_decref(lines);
    json_decref(tables);
}


/* See tollctl.h. */
void
tg_ctl_print_json(tg_ctl_t *ctl, const json_t *v)
{
    if (json_dumpf(v, ctl->out, JSON_INDENT(2) | JSON_ENCODE_ANY) == 0) {
        fputc('\n', ctl->out);
    }
}


/* See tollctl.h. */
void
tg_ctl_error_response(tg_ctl_t *ctl, const char *what, long status,
                      const json_t *body, const char *raw, size_t rawlen)
{
    const json_t *e = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    char snippet[128];

    if (json_is_object(e) && (code != NULL || msg != NULL)) {
        tg_ctl_errorf(
            ctl, "%s: %ld %s: %s%s%s%s", what, status, code ? code : "error",
            msg ? msg : "(no message)", field && field[0] ? " (field " : "",
            field && field[0] ? field : "", field && field[0] ? ")" : "");
    } else if (json_is_string(e)) {
        /* The older {"error":"text"} shape. */
        tg_ctl_errorf(ctl, "%s: %ld: %s", what, status, json_string_value(e));
    } else if (rawlen > 0) {
        size_t n = rawlen < 100 ? rawlen : 100, i;

        memcpy(snippet, raw, n);
        snippet[n] = '\0';
        for (i = 0; i < n; i++) {
            if (snippet[i] == '\n' || snippet[i] == '\r') {
                snippet[i] = ' ';
            }
        }
        tg_ctl_errorf(ctl,
                      "%s: HTTP %ld with a body that is not a JSON "
                      "error: %s%s",
                      what, status, snippet, rawlen > 100 ? "..." : "");
    } else {
        tg_ctl_errorf(ctl, "%s: HTTP %ld with an empty body", what, status);
    }
}
