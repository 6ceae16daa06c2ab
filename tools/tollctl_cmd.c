/*
 * tools/tollctl_cmd.c
 *      tollctl: the generic command runners (list, get, send) every route
 *      without special needs goes through.
 *
 * NOTES
 *      Lists are {"items":[...],"next_cursor":...}.  Without --all one
 *      page is printed (and a note on stderr names the next cursor);
 *      with --all the runner follows next_cursor up to TG_CTL_ALL_MAX rows,
 *      and --json then prints one {"items":[every row],"next_cursor":null}.
 *
 *      Answers that hold a secret shown once (a new key, a new token) are
 *      printed without it in the listing, then the secret alone with a
 *      warning on stderr; never written anywhere else.
 */
#include "tools/tollctl.h"

#include <stdlib.h>
#include <string.h>

/* Fields that carry a shown-once secret in an answer. */
static const char *const tg_ctl_secret_fields[] = {"key", "token", NULL};


/* See tollctl.h. */
int
tg_ctl_route_path(tg_ctl_t *ctl, const char *tmpl, const tg_ctl_args_t *a,
                  char *buf, size_t len)
{
    const char *at = strstr(tmpl, "{id}");
    int k;

    if (at == NULL) {
        k = snprintf(buf, len, "%s", tmpl);
    } else if (a->npos < 1 || !tg_ctl_id_valid(a->pos[0])) {
        tg_ctl_errorf(ctl, "expected a positive integer id, got '%.40s'",
                      a->npos > 0 ? a->pos[0] : "");
        return TG_CTL_EXIT_USAGE;
    } else {
        k = snprintf(buf, len, "%.*s%s%s", (int)(at - tmpl), tmpl, a->pos[0],
                     at + 4);
    }
    return k > 0 && (size_t)k < len ? TG_CTL_EXIT_OK : TG_CTL_EXIT_USAGE;
}


/* The rows of a list answer: "items" of an object, or the array itself
 * (the older routes answer bare arrays or {"endpoints":[...]}). */
static json_t *
tg_ctl_items(const json_t *page)
{
    json_t *it;

    if (json_is_array(page)) {
        return (json_t *)page;
    }
    it = json_object_get(page, "items");
    if (!json_is_array(it)) {
        it = json_object_get(page, "endpoints");
    }
    return json_is_array(it) ? it : NULL;
}


/* The next cursor of list page <page> as text into <buf> (a string or
 * an integer, cleaned for the terminal); false when there is none. */
static bool
tg_ctl_cursor(const json_t *page, char *buf, size_t len)
{
    const json_t *next = json_object_get(page, "next_cursor");

    if (json_is_integer(next)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(next));
        return true;
    }
    if (!json_is_string(next) || json_string_length(next) == 0 ||
        json_string_length(next) > 256) {
        return false;
    }
    tg_ctl_clean(buf, len, json_string_value(next), 0);
    return true;
}


/* See tollctl.h. */
int
tg_ctl_fetch_list(tg_ctl_t *ctl, const char *path, const json_t *query,
                  bool optional, json_t **items, json_t **last)
{
    json_t *q = query != NULL ? json_deep_copy(query) : json_object();
    json_t *all = json_array(), *page = NULL;
    char cursor[300];
    int rc = TG_CTL_EXIT_FAILED;

    *items = NULL;
    *last = NULL;
    if (q == NULL || all == NULL) {
        goto done;
    }
    if (ctl->all && json_object_get(q, "limit") == NULL) {
        json_object_set_new(q, "limit", json_string("500"));
    }
    for (;;) {
        const json_t *rows;

        json_decref(page);
        rc = tg_ctl_call(ctl, "GET", path, q, NULL, optional, &page);
        if (rc != TG_CTL_EXIT_OK) {
            goto done;
        }
        rows = tg_ctl_items(page);
        if (rows == NULL) {
            tg_ctl_errorf(ctl, "GET %s: the answer holds no \"items\" list",
                          path);
            rc = TG_CTL_EXIT_FAILED;
            goto done;
        }
        json_array_extend(all, (json_t *)rows);
        if (!ctl->all || !tg_ctl_cursor(page, cursor, sizeof(cursor))) {
            break;
        }
        if (json_array_size(all) >= TG_CTL_ALL_MAX) {
            tg_ctl_errorf(ctl,
                          "GET %s: stopped after %d rows; narrow the "
                          "list with filters",
                          path, TG_CTL_ALL_MAX);
            rc = TG_CTL_EXIT_FAILED;
            goto done;
        }
        json_object_set_new(q, "cursor", json_string(cursor));
    }
    *items = all;
    *last = page;
    all = page = NULL;
    rc = TG_CTL_EXIT_OK;
done:
    json_decref(q);
    json_decref(all);
    json_decref(page);
    return rc;
}


/* See tollctl.h. */
int
tg_ctl_run_list(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    const tg_ctl_route_t *rt = cmd->route;
    json_t *items = NULL, *last = NULL;
    char path[512];
    int rc;

    rc = tg_ctl_route_path(ctl, rt->path, a, path, sizeof(path));
    if (rc == TG_CTL_EXIT_OK) {
        rc =
            tg_ctl_fetch_list(ctl, path, a->query, rt->optional, &items, &last);
    }
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    tg_ctl_print_list(ctl, items, last, rt->cols);
    json_decref(items);
    json_decref(last);
    return TG_CTL_EXIT_OK;
}


/* See tollctl.h. */
void
tg_ctl_print_list(tg_ctl_t *ctl, json_t *items, json_t *last,
                  const tg_ctl_col_t *cols)
{
    char cursor[300];

    if (ctl->json && !ctl->all) {
        tg_ctl_print_json(ctl, last);
    } else if (ctl->json) {
        json_t *o = json_pack("{s:O, s:n}", "items", items, "next_cursor");

        tg_ctl_print_json(ctl, o);
        json_decref(o);
    } else {
        tg_ctl_table(ctl, items, cols);
        if (!ctl->all && tg_ctl_cursor(last, cursor, sizeof(cursor))) {
            fprintf(ctl->err, "(more rows: --cursor %s, or --all)\n", cursor);
        }
    }
}


/* See tollctl.h. */
void
tg_ctl_print_secret(tg_ctl_t *ctl, const char *what, const char *value)
{
    char clean[TG_CTL_SECRET_MAX];

    tg_ctl_clean(clean, sizeof(clean), value, 0);
    fprintf(ctl->err, "\nThe new %s is shown only this once; store it now:\n",
            what);
    fflush(ctl->err);
    fprintf(ctl->out, "%s\n", clean);
    fflush(ctl->out);
    explicit_bzero(clean, sizeof(clean));
}


/*
 * Show an answer object in human form: every field but shown-once
 * secrets, then each secret with its warning.  The secret strings are
 * wiped from <obj> afterwards.
 */
static void
tg_ctl_show_result(tg_ctl_t *ctl, json_t *obj)
{
    json_t *copy = json_is_object(obj) ? json_copy(obj) : NULL;
    size_t i;

    if (copy == NULL) {
        tg_ctl_print_json(ctl, obj);
        return;
    }
    for (i = 0; tg_ctl_secret_fields[i] != NULL; i++) {
        json_object_del(copy, tg_ctl_secret_fields[i]);
    }
    tg_ctl_show(ctl, copy);
    json_decref(copy);
    for (i = 0; tg_ctl_secret_fields[i] != NULL; i++) {
        json_t *s = json_object_get(obj, tg_ctl_secret_fields[i]);

        if (json_is_string(s) && json_string_length(s) > 0) {
            tg_ctl_print_secret(ctl, tg_ctl_secret_fields[i],
                                json_string_value(s));
            tg_ctl_json_wipe(s);
        }
    }
}


/* See tollctl.h. */
int
tg_ctl_run_get(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_t *obj = NULL;
    char path[512];
    int rc;

    rc = tg_ctl_route_path(ctl, cmd->route->path, a, path, sizeof(path));
    if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_call(ctl, "GET", path, a->query, NULL, false, &obj);
    }
    if (rc == TG_CTL_EXIT_OK) {
        if (ctl->json) {
            tg_ctl_print_json(ctl, obj);
        } else {
            tg_ctl_show_result(ctl, obj);
        }
    }
    if (obj != NULL && cmd->route->secret) {
        tg_ctl_json_wipe(obj);
    }
    json_decref(obj);
    return rc;
}


/* See tollctl.h. */
bool
tg_ctl_confirm(tg_ctl_t *ctl, const char *question)
{
    char line[16];

    if (!ctl->tty_in) {
        return true;
    }
    fprintf(ctl->err, "%s [y/N] ", question);
    fflush(ctl->err);
    if (fgets(line, sizeof(line), stdin) == NULL) {
        return false;
    }
    return line[0] == 'y' || line[0] == 'Y';
}


/* "deleted user {id}" with the id filled in, printed on stdout. */
static void
tg_ctl_done_print(tg_ctl_t *ctl, const char *done, const tg_ctl_args_t *a)
{
    const char *at = strstr(done, "{id}");

    if (at != NULL && a->npos > 0) {
        fprintf(ctl->out, "%.*s%s%s\n", (int)(at - done), done, a->pos[0],
                at + 4);
    } else {
        fprintf(ctl->out, "%s\n", done);
    }
}


/* See tollctl.h. */
int
tg_ctl_run_send(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    const tg_ctl_route_t *rt = cmd->route;
    bool with_body = strcmp(rt->method, "POST") == 0 ||
                     strcmp(rt->method, "PATCH") == 0 ||
                     strcmp(rt->method, "PUT") == 0;
    json_t *obj = NULL;
    char path[512], q[160];
    int rc;

    rc = tg_ctl_route_path(ctl, rt->path, a, path, sizeof(path));
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    if (strcmp(rt->method, "PATCH") == 0 && json_object_size(a->body) == 0) {
        tg_ctl_errorf(ctl, "nothing to change; give at least one option (see "
                           "--help)");
        return TG_CTL_EXIT_USAGE;
    }
    if (rt->confirm && !tg_ctl_local_flag(a, "yes")) {
        snprintf(q, sizeof(q), "%s %s %s?", cmd->name, rt->noun,
                 a->npos > 0 ? a->pos[0] : "");
        q[0] = (char)(q[0] - 'a' + 'A');
        if (!tg_ctl_confirm(ctl, q)) {
            tg_ctl_errorf(ctl, "not confirmed; nothing was changed");
            return TG_CTL_EXIT_FAILED;
        }
    }
    rc = tg_ctl_call(ctl, rt->method, path, a->query,
                     with_body ? a->body : NULL, false, &obj);
    if (rc == TG_CTL_EXIT_OK) {
        if (ctl->json) {
            tg_ctl_print_json(ctl, obj);
        } else if (rt->done != NULL) {
            tg_ctl_done_print(ctl, rt->done, a);
        } else if (json_object_size(obj) == 0) {
            fprintf(ctl->out, "done\n");
        } else {
            tg_ctl_show_result(ctl, obj);
        }
    }
    if (obj != NULL && rt->secret) {
        tg_ctl_json_wipe(obj);
    }
    json_decref(obj);
    return rc;
}
