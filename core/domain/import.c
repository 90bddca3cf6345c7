/*
 * import.c - bulk user import from CSV (seed 001 §7.3).
 *
 * POST /api/v1/domains/:domain/users/import?mode=preview|commit
 * Columns (seed order, or any order under a header row, Russian or English
 * names): login, password, display_name, extension, groups, cli, email.
 * Preview answers every row with its per-cell errors and warnings and the
 * counts. Commit creates the valid rows in one transaction (groups that do
 * not exist are created); it refuses the whole file when any row is bad
 * unless skip_invalid=true, which creates only the valid rows, as the
 * seed's import dialog does after its preview. Passwords are hashed on the
 * worker pool before the transaction and are never echoed.
 */
#include "domain/crud.h"
#include "events/events.h"
#include "log/log.h"
#include "mail/mail.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 10000
#define NCOLS    7

enum col { C_LOGIN, C_PASSWORD, C_NAME, C_EXT, C_GROUPS, C_CLI, C_EMAIL };

static const char *const col_names[NCOLS] = {"login",  "password", "display_name", "extension",
                                             "groups", "cli",      "email"};
static const char *const col_names_ru[NCOLS] = {"логин",
                                                "пароль",
                                                "отображаемое имя",
                                                "внутренний номер",
                                                "названия групп",
                                                "аон для исходящих вызовов",
                                                "email"};

struct row {
    int line;
    char *cell[NCOLS];
    char ext[16];
    json_t *groups; /* names */
    json_t *errors, *warnings;
    char cli[20]; /* the domain number to use as caller id, or "" */
    /* commit */
    struct auth_pw_job *pw;
};

struct import {
    http_req *req;
    int64_t domain_id;
    char domain[256];
    struct row *rows;
    int nrows;
    int pending; /* hashing jobs outstanding */
    bool skip_invalid;
};

/* ------------------------------------------------------------- parsing */

static void import_free(struct import *im)
{
    for (int i = 0; i < im->nrows; i++) {
        struct row *r = &im->rows[i];
        for (int c = 0; c < NCOLS; c++)
            free(r->cell[c]);
        json_decref(r->groups);
        json_decref(r->errors);
        json_decref(r->warnings);
        auth_pw_job_free(r->pw);
    }
    free(im->rows);
    free(im);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Pick ',' or ';' by which is more frequent outside quotes on the first line. */
static char sniff_delimiter(const char *p, const char *end)
{
    int comma = 0, semi = 0;
    bool q = false;
    for (; p < end && (q || (*p != '\n' && *p != '\r')); p++) {
        if (*p == '"') q = !q;
        if (!q && *p == ',') comma++;
        if (!q && *p == ';') semi++;
    }
    return semi > comma ? ';' : ',';
}

/*
 * RFC 4180 records: quoted fields with "" escapes, CRLF or LF. Returns the
 * number of fields of the record at *pp (advancing it), or -1 with err set.
 */
static int parse_record(const char **pp, const char *end, char delim, cw_buf *fields, int *nfields,
                        char *err, size_t errlen)
{
    const char *p = *pp;
    *nfields = 0;
    cw_buf_reset(fields);
    for (;;) {
        cw_buf f;
        cw_buf_init(&f);
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end) {
                    cw_buf_free(&f);
                    snprintf(err, errlen, "a quoted field is not closed");
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        cw_buf_append(&f, "\"", 1);
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                cw_buf_append(&f, p++, 1);
            }
            if (p < end && *p != delim && *p != '\n' && *p != '\r') {
                cw_buf_free(&f);
                snprintf(err, errlen, "text after a closing quote");
                return -1;
            }
        } else {
            while (p < end && *p != delim && *p != '\n' && *p != '\r') {
                if (*p == '"') {
                    cw_buf_free(&f);
                    snprintf(err, errlen, "a quote inside an unquoted field");
                    return -1;
                }
                cw_buf_append(&f, p++, 1);
            }
        }
        cw_buf_append(fields, f.data ? f.data : "", f.len + 1); /* NUL-separated */
        cw_buf_free(&f);
        (*nfields)++;
        if (p < end && *p == delim) {
            p++;
            continue;
        }
        if (p < end && *p == '\r') p++;
        if (p < end && *p == '\n') p++;
        *pp = p;
        return *nfields;
    }
}

/* Lower-case ASCII and Cyrillic (А-Я, Ё) letters of a UTF-8 string, trimmed. */
static void lower_utf8(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)in;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && n + 3 < outlen) {
        if (*p >= 'A' && *p <= 'Z') {
            out[n++] = (char)(*p++ + 32);
        } else if (p[0] == 0xD0 && p[1] >= 0x90 && p[1] <= 0x9F) { /* А-П -> а-п */
            out[n++] = (char)0xD0;
            out[n++] = (char)(p[1] + 0x20);
            p += 2;
        } else if (p[0] == 0xD0 && p[1] >= 0xA0 && p[1] <= 0xAF) { /* Р-Я -> р-я */
            out[n++] = (char)0xD1;
            out[n++] = (char)(p[1] - 0x20);
            p += 2;
        } else if (p[0] == 0xD0 && p[1] == 0x81) { /* Ё -> ё */
            out[n++] = (char)0xD1;
            out[n++] = (char)0x91;
            p += 2;
        } else {
            out[n++] = (char)*p++;
        }
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
}

static bool header_is(const char *cell, int c)
{
    char low[160];
    lower_utf8(cell, low, sizeof low);
    return !strcmp(low, col_names[c]) || !strcmp(low, col_names_ru[c]) ||
           (c == C_CLI && (!strcmp(low, "аон") || !strcmp(low, "cli_number")));
}

static bool parse_csv(struct import *im, const char *data, size_t len, char *err, size_t errlen,
                      int *err_line)
{
    const char *p = data, *end = data + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    char delim = sniff_delimiter(p, end);
    int map[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        map[c] = c;
    int expect = NCOLS, line = 0;
    cw_buf fields;
    cw_buf_init(&fields);
    bool first = true, ok = true;
    while (p < end) {
        int n;
        line++;
        if (*p == '\n' || *p == '\r') { /* blank line */
            if (*p == '\r') p++;
            if (p < end && *p == '\n') p++;
            continue;
        }
        if (parse_record(&p, end, delim, &fields, &n, err, errlen) < 0) {
            *err_line = line;
            ok = false;
            break;
        }
        const char *cells[32];
        const char *f = fields.data;
        for (int i = 0; i < n && i < 32; i++, f += strlen(f) + 1)
            cells[i] = f;
        if (first) {
            first = false;
            int found = 0, hmap[NCOLS];
            for (int c = 0; c < NCOLS; c++) {
                hmap[c] = -1;
                for (int i = 0; i < n && i < 32; i++)
                    if (header_is(cells[i], c)) hmap[c] = i;
                found += hmap[c] >= 0;
            }
            if (found) {
                for (int c = 0; c < NCOLS; c++) {
                    if (hmap[c] < 0 && c != C_EXT && c != C_CLI && c != C_EMAIL) {
                        snprintf(err, errlen, "the header has no \"%s\" column", col_names[c]);
                        *err_line = line;
                        ok = false;
                        break;
                    }
                    map[c] = hmap[c];
                }
                expect = n;
                if (!ok) break;
                continue;
            }
        }
        if (n != expect) {
            snprintf(err, errlen, "expected %d columns, found %d", expect, n);
            *err_line = line;
            ok = false;
            break;
        }
        if (im->nrows == MAX_ROWS) {
            snprintf(err, errlen, "more than %d rows", MAX_ROWS);
            *err_line = line;
            ok = false;
            break;
        }
        im->rows = cw_realloc(im->rows, sizeof *im->rows * (size_t)(im->nrows + 1));
        struct row *r = &im->rows[im->nrows++];
        memset(r, 0, sizeof *r);
        r->line = line;
        for (int c = 0; c < NCOLS; c++) {
            char *v = map[c] >= 0 ? cw_strdup(cells[map[c]]) : cw_strdup("");
            char *t = trim(v);
            r->cell[c] = cw_strdup(t);
            free(v);
        }
    }
    cw_buf_free(&fields);
    return ok;
}

/* ----------------------------------------------------------- validation */

static void cell_error(struct row *r, int c, const char *msg)
{
    json_array_append_new(r->errors,
                          json_pack("{s:s,s:s}", "column", col_names[c], "message", msg));
}

static bool login_ok(const char *s)
{
    static regex_t re;
    static bool compiled;
    if (!compiled) compiled = !regcomp(&re, "^[a-z][a-z0-9._-]{0,63}$", REG_EXTENDED | REG_NOSUB);
    return regexec(&re, s, 0, NULL, 0) == 0;
}

static bool seen_before(struct import *im, int upto, int col, const char *v)
{
    for (int i = 0; i < upto; i++)
        if (!strcmp(im->rows[i].cell[col], v)) return true;
    return false;
}

static bool ext_taken_in_file(struct import *im, int upto, const char *ext)
{
    for (int i = 0; i < upto; i++)
        if (!strcmp(im->rows[i].ext, ext)) return true;
    return false;
}

static void validate_rows(struct import *im)
{
    store *st = store_main();
    int64_t users = 0, max = 0, one;
    store_query_int(st, &users, "SELECT COUNT(*) FROM users WHERE domain_id = ?",
                    SA_INT(im->domain_id), SA_END);
    store_query_int(st, &max, "SELECT max_users FROM domains WHERE id = ?", SA_INT(im->domain_id),
                    SA_END);
    int valid = 0;
    for (int i = 0; i < im->nrows; i++) {
        struct row *r = &im->rows[i];
        r->errors = json_array();
        r->warnings = json_array();
        r->groups = json_array();
        const char *login = r->cell[C_LOGIN];
        if (!*login)
            cell_error(r, C_LOGIN, "login is required");
        else if (!login_ok(login))
            cell_error(r, C_LOGIN,
                       "login must be lower-case Latin letters, digits, . _ -, "
                       "starting with a letter");
        else if (seen_before(im, i, C_LOGIN, login))
            cell_error(r, C_LOGIN, "login repeats an earlier row of the file");
        else if (store_query_int(st, &one, "SELECT 1 FROM users WHERE domain_id = ? AND login = ?",
                                 SA_INT(im->domain_id), SA_STR(login), SA_END) == CW_OK)
            cell_error(r, C_LOGIN, "login is already taken in this domain");
        const char *why = auth_password_problem(r->cell[C_PASSWORD]);
        if (!*r->cell[C_PASSWORD])
            cell_error(r, C_PASSWORD, "password is required");
        else if (why) {
            char msg[200];
            snprintf(msg, sizeof msg, "password %s", why);
            cell_error(r, C_PASSWORD, msg);
        }
        size_t nl = 0;
        for (const char *p = r->cell[C_NAME]; *p; p++)
            if (((unsigned char)*p & 0xC0) != 0x80) nl++;
        if (!nl || nl > 128) cell_error(r, C_NAME, "display_name must be 1..128 characters");
        const char *ext = r->cell[C_EXT];
        if (*ext) {
            if (!cw_str_is_digits(ext) || strlen(ext) > 5)
                cell_error(r, C_EXT, "extension must be up to 5 digits");
            else if (ext_taken_in_file(im, i, ext))
                cell_error(r, C_EXT, "extension repeats an earlier row of the file");
            else if (!domain_extension_free(im->domain_id, ext, "users", 0))
                cell_error(r, C_EXT, "extension is already used in this domain");
            else
                cw_strlcpy(r->ext, ext, sizeof r->ext);
        }
        char *groups = cw_strdup(r->cell[C_GROUPS]);
        for (char *save = NULL, *g = strtok_r(groups, ",", &save); g;
             g = strtok_r(NULL, ",", &save)) {
            g = trim(g);
            if (!*g) continue;
            if (strlen(g) > 64) {
                cell_error(r, C_GROUPS, "a group name is longer than 64 characters");
                break;
            }
            json_array_append_new(r->groups, json_string(g));
        }
        free(groups);
        if (!json_array_size(r->groups))
            cell_error(r, C_GROUPS, "at least one group name is required");
        /* the seed's 10-digit CLI, or the full number as the domain stores it */
        const char *cli = r->cell[C_CLI];
        r->cli[0] = '\0';
        if (*cli) {
            size_t n = strlen(cli);
            char full[20];
            snprintf(full, sizeof full, "7%s", cli);
            if (!cw_str_is_digits(cli) || n < 10 || n > 15)
                json_array_append_new(r->warnings,
                                      json_pack("{s:s,s:s}", "column", "cli", "message",
                                                "not a 10-digit number: the user gets no caller "
                                                "id"));
            else if (store_query_int(st, &one,
                                     "SELECT 1 FROM external_numbers WHERE domain_id = ? AND "
                                     "number = ?",
                                     SA_INT(im->domain_id), SA_STR(cli), SA_END) == CW_OK)
                cw_strlcpy(r->cli, cli, sizeof r->cli);
            else if (n == 10 &&
                     store_query_int(st, &one,
                                     "SELECT 1 FROM external_numbers WHERE domain_id = ? AND "
                                     "number = ?",
                                     SA_INT(im->domain_id), SA_STR(full), SA_END) == CW_OK)
                cw_strlcpy(r->cli, full, sizeof r->cli);
            else
                json_array_append_new(r->warnings,
                                      json_pack("{s:s,s:s}", "column", "cli", "message",
                                                "not a number of this domain: the user gets no "
                                                "caller id"));
        }
        if (*r->cell[C_EMAIL] && !mail_address_valid(r->cell[C_EMAIL]))
            cell_error(r, C_EMAIL, "email is not a valid address");
        if (!json_array_size(r->errors)) {
            if (users + valid >= max)
                json_array_append_new(r->errors,
                                      json_pack("{s:n,s:s}", "column", "message",
                                                "the domain's maximum number of users is reached"));
            else
                valid++;
        }
    }
    /* extensions for rows without one: after every explicit one is known */
    for (int i = 0; i < im->nrows; i++) {
        struct row *r = &im->rows[i];
        if (json_array_size(r->errors) || r->ext[0]) continue;
        char next[16];
        int64_t base = 100;
        for (;;) {
            snprintf(next, sizeof next, "%lld", (long long)base);
            if (base > 99999) break;
            if (domain_extension_free(im->domain_id, next, "users", 0) &&
                !ext_taken_in_file(im, im->nrows, next))
                break;
            base++;
        }
        if (base > 99999)
            cell_error(r, C_EXT, "no free extension is left");
        else
            cw_strlcpy(r->ext, next, sizeof r->ext);
    }
}

static bool row_ok(const struct row *r)
{
    return json_array_size(r->errors) == 0;
}

static json_t *row_json(const struct row *r)
{
    /* every cell but the password */
    json_t *o = json_pack("{s:i,s:s,s:s,s:s,s:O,s:s,s:s,s:s,s:O,s:O}", "row", r->line, "login",
                          r->cell[C_LOGIN], "display_name", r->cell[C_NAME], "extension",
                          r->ext[0] ? r->ext : r->cell[C_EXT], "groups", r->groups, "cli",
                          r->cell[C_CLI], "email", r->cell[C_EMAIL], "status",
                          row_ok(r) ? "ok" : "error", "errors", r->errors, "warnings", r->warnings);
    return o;
}

static json_t *groups_to_create(struct import *im)
{
    json_t *out = json_array();
    for (int i = 0; i < im->nrows; i++) {
        if (!row_ok(&im->rows[i])) continue;
        size_t k;
        json_t *g;
        json_array_foreach(im->rows[i].groups, k, g)
        {
            int64_t one;
            bool listed = false;
            size_t m;
            json_t *x;
            json_array_foreach(out, m, x) if (!strcmp(json_string_value(x), json_string_value(g)))
                listed = true;
            if (!listed &&
                store_query_int(store_main(), &one,
                                "SELECT 1 FROM call_groups WHERE domain_id = ? AND name = ?",
                                SA_INT(im->domain_id), SA_STR(json_string_value(g)),
                                SA_END) != CW_OK)
                json_array_append(out, g);
        }
    }
    return out;
}

static json_t *report(struct import *im, bool errors_only)
{
    json_t *rows = json_array();
    int valid = 0;
    for (int i = 0; i < im->nrows; i++) {
        valid += row_ok(&im->rows[i]);
        if (!errors_only || !row_ok(&im->rows[i]))
            json_array_append_new(rows, row_json(&im->rows[i]));
    }
    return json_pack("{s:i,s:i,s:i,s:o,s:o}", "total", im->nrows, "valid", valid, "invalid",
                     im->nrows - valid, "groups_to_create", groups_to_create(im), "rows", rows);
}

/* --------------------------------------------------------------- commit */

static int64_t group_id(struct import *im, const char *name, json_t *created, int *rc)
{
    store *st = store_main();
    int64_t id = 0;
    *rc = CW_OK;
    if (store_query_int(st, &id, "SELECT id FROM call_groups WHERE domain_id = ? AND name = ?",
                        SA_INT(im->domain_id), SA_STR(name), SA_END) == CW_OK)
        return id;
    char ext[16];
    if ((*rc = domain_next_extension(im->domain_id, ext, sizeof ext))) return 0;
    store_res *r;
    *rc = store_query(st, &r,
                      "INSERT INTO call_groups(domain_id, name, extension, strategy, created_at) "
                      "VALUES(?,?,?,'not_set',?) RETURNING id",
                      SA_INT(im->domain_id), SA_STR(name), SA_STR(ext), SA_INT(cw_wall_time()),
                      SA_END);
    if (*rc >= 0 && store_next(r)) {
        id = store_int(r, 0);
        *rc = CW_OK;
        json_array_append_new(created, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "name",
                                                 name, "extension", ext));
        http_audit(im->req, im->domain_id, "call_group", name, "add",
                   json_pack("{s:s,s:s,s:s,s:s}", "name", name, "extension", ext, "strategy",
                             "not_set", "source", "bulk import"));
    }
    store_res_free(r);
    return id;
}

static int insert_row(struct import *im, struct row *r, json_t *users, json_t *groups_created)
{
    store *st = store_main();
    int64_t now = cw_wall_time();
    store_res *res;
    int rc = store_query(st, &res,
                         "INSERT INTO users(domain_id, login, display_name, extension, role, "
                         "email, cli_number, password_hash, sip_ha1_md5, sip_ha1_sha256, "
                         "created_at, updated_at) VALUES(?,?,?,?,'subscriber',?,?,?,?,?,?,?) "
                         "RETURNING id",
                         SA_INT(im->domain_id), SA_STR(r->cell[C_LOGIN]), SA_STR(r->cell[C_NAME]),
                         SA_STR(r->ext), *r->cell[C_EMAIL] ? SA_STR(r->cell[C_EMAIL]) : SA_NULL,
                         r->cli[0] ? SA_STR(r->cli) : SA_NULL, SA_STR(r->pw->hash),
                         SA_STR(r->pw->ha1_md5), SA_STR(r->pw->ha1_sha256), SA_INT(now),
                         SA_INT(now), SA_END);
    if (rc < 0) return rc;
    rc = CW_OK;
    int64_t uid = store_next(res) ? store_int(res, 0) : 0;
    store_res_free(res);
    size_t k;
    json_t *g;
    json_array_foreach(r->groups, k, g)
    {
        int64_t gid = group_id(im, json_string_value(g), groups_created, &rc);
        if (rc) return rc;
        int64_t one;
        if (store_query_int(st, &one,
                            "SELECT 1 FROM call_group_members WHERE group_id = ? AND user_id = ?",
                            SA_INT(gid), SA_INT(uid), SA_END) == CW_OK)
            continue;
        rc = store_exec(st, "INSERT INTO call_group_members(group_id, user_id) VALUES(?,?)",
                        SA_INT(gid), SA_INT(uid), SA_END);
        if (rc < 0) return rc;
    }
    json_array_append_new(users, json_pack("{s:I,s:s,s:s,s:i}", "id", (json_int_t)uid, "login",
                                           r->cell[C_LOGIN], "extension", r->ext, "row", r->line));
    http_audit(im->req, im->domain_id, "user", r->cell[C_LOGIN], "add",
               json_pack("{s:s,s:s,s:s,s:O,s:s,s:s}", "login", r->cell[C_LOGIN], "display_name",
                         r->cell[C_NAME], "extension", r->ext, "groups", r->groups, "password",
                         "set", "source", "bulk import"));
    return CW_OK;
}

static void commit(struct import *im)
{
    store *st = store_main();
    json_t *users = json_array(), *groups = json_array();
    store_begin(st);
    int rc = CW_OK;
    struct row *bad = NULL;
    for (int i = 0; i < im->nrows && !rc; i++) {
        struct row *r = &im->rows[i];
        if (!row_ok(r)) continue;
        if (r->pw->rc) rc = CW_EIO;
        if (!rc) rc = insert_row(im, r, users, groups);
        if (rc) bad = r;
    }
    if (rc) {
        store_rollback(st);
        json_decref(users);
        json_decref(groups);
        if (rc == CW_EEXIST)
            http_reply_error(im->req, 409, "conflict", NULL,
                             "row %d: its login or extension was taken meanwhile; nothing was "
                             "created",
                             bad ? bad->line : 0);
        else {
            log_error("api", "import into domain %lld failed at row %d: %s",
                      (long long)im->domain_id, bad ? bad->line : 0, store_errmsg(st));
            http_reply_error(im->req, 500, "store", NULL, "the import failed; nothing was created");
        }
        return;
    }
    store_commit(st);
    size_t k;
    json_t *u;
    json_array_foreach(users, k, u)
        events_emit("config.user.created", im->domain_id,
                    json_pack("{s:O,s:O,s:O}", "id", json_object_get(u, "id"), "user_id",
                              json_object_get(u, "id"), "name", json_object_get(u, "login")));
    json_t *rep = report(im, true);
    json_object_set_new(rep, "created", json_integer((json_int_t)json_array_size(users)));
    json_object_set_new(rep, "users", users);
    json_object_set_new(rep, "groups_created", groups);
    json_object_del(rep, "groups_to_create");
    http_reply_json(im->req, 201, rep);
}

static void hashed(struct auth_pw_job *job)
{
    struct import *im = job->arg;
    if (--im->pending > 0) return;
    commit(im);
    import_free(im);
}

/* --------------------------------------------------------------- handler */

static void import_users(http_req *req)
{
    static const char *const allowed[] = {"mode", "skip_invalid", NULL};
    int64_t domain;
    if (!http_domain_param(req, 0, &domain) || !http_query_only(req, allowed)) return;
    const char *mode = http_query(req, "mode");
    const char *skip = http_query(req, "skip_invalid");
    if (!mode || (strcmp(mode, "preview") && strcmp(mode, "commit"))) {
        http_reply_error(req, 400, "invalid_parameter", "mode", "mode must be preview or commit");
        return;
    }
    if (skip && strcmp(skip, "true") && strcmp(skip, "false")) {
        http_reply_error(req, 400, "invalid_parameter", "skip_invalid",
                         "skip_invalid must be true or false");
        return;
    }
    size_t len;
    const unsigned char *data = http_body(req, &len);
    if (!data) {
        http_reply_error(req, 400, "empty_body", NULL, "send the CSV file as the body");
        return;
    }
    struct import *im = cw_calloc(1, sizeof *im);
    im->req = req;
    im->domain_id = domain;
    im->skip_invalid = skip && !strcmp(skip, "true");
    char err[200];
    int line = 0;
    if (!parse_csv(im, (const char *)data, len, err, sizeof err, &line)) {
        http_reply_error_with(req, 400, "invalid_csv", NULL, json_pack("{s:i}", "row", line), err);
        import_free(im);
        return;
    }
    if (!im->nrows) {
        http_reply_error(req, 400, "invalid_csv", NULL, "the file holds no rows");
        import_free(im);
        return;
    }
    validate_rows(im);
    json_t *rep = report(im, false);
    int invalid = (int)json_integer_value(json_object_get(rep, "invalid"));
    if (!strcmp(mode, "preview")) {
        http_reply_json(req, 200, rep);
        import_free(im);
        return;
    }
    if (invalid && !im->skip_invalid) {
        json_t *extra =
            json_pack("{s:O,s:O,s:O}", "rows", json_object_get(rep, "rows"), "valid",
                      json_object_get(rep, "valid"), "invalid", json_object_get(rep, "invalid"));
        json_decref(rep);
        /* only the bad rows */
        json_t *rows = json_object_get(extra, "rows"), *bad = json_array();
        size_t k;
        json_t *r;
        json_array_foreach(rows, k, r) if (strcmp(json_string_value(json_object_get(r, "status")),
                                                  "ok")) json_array_append(bad, r);
        json_object_set_new(extra, "rows", bad);
        http_reply_error_with(req, 400, "invalid_rows", NULL, extra,
                              "some rows are invalid; nothing was created (fix them, or commit "
                              "with skip_invalid=true)");
        import_free(im);
        return;
    }
    json_decref(rep);
    char realm[256] = "";
    store_res *res;
    if (store_query(store_main(), &res, "SELECT name FROM domains WHERE id = ?", SA_INT(domain),
                    SA_END) >= 0 &&
        store_next(res))
        cw_strlcpy(realm, store_str(res, 0), sizeof realm);
    store_res_free(res);
    struct auth_pw_job **jobs = cw_calloc((size_t)im->nrows, sizeof *jobs);
    int n = 0;
    for (int i = 0; i < im->nrows; i++) {
        struct row *r = &im->rows[i];
        if (!row_ok(r)) continue;
        r->pw = auth_pw_job_new();
        cw_strlcpy(r->pw->password, r->cell[C_PASSWORD], sizeof r->pw->password);
        cw_strlcpy(r->pw->login, r->cell[C_LOGIN], sizeof r->pw->login);
        cw_strlcpy(r->pw->realm, realm, sizeof r->pw->realm);
        r->pw->done = hashed;
        r->pw->arg = im;
        jobs[n++] = r->pw;
    }
    if (!n) {
        free(jobs);
        http_reply_error(req, 400, "invalid_rows", NULL, "no row is valid; nothing was created");
        import_free(im);
        return;
    }
    im->pending = n;
    http_async(req);
    /* im may be gone once the last job completes: walk the local list only */
    for (int i = 0; i < n; i++)
        auth_pw_submit(jobs[i]);
    free(jobs);
}

void import_api_init(void)
{
    http_route("POST", "/api/v1/domains/:domain/users/import", import_users, ROLE_DOMAIN_ADMIN, 0,
               "Bulk user import from CSV: mode=preview reports per-row errors; mode=commit "
               "creates the valid rows atomically (skip_invalid=true to skip bad rows)");
}
