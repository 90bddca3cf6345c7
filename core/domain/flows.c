/*
 * flows.c - validation of IVR menu trees (ivr-flows/README.md) on save.
 *
 * A flow that reaches ivr-flows/menu.lua has been checked here: its start
 * menu exists, every menu's keys are 0-9 * # (each once), every action is
 * one menu.lua knows with the fields it needs, and every menu, user, group,
 * sound file and prompt it names exists. An error names the menu and the
 * element ("menus.main.keys.1.target.id") and nothing is stored. Core
 * thread only.
 */
#include "domain/crud.h"
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fcheck {
    struct crud_ctx *c;
    json_t *menus;
    const char *lang;
};

static bool ffail(struct fcheck *f, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool ffail(struct fcheck *f, const char *path, const char *fmt, ...)
{
    char msg[400], full[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char p[200];
    snprintf(p, sizeof p, "flow%s%s", *path ? "." : "", path);
    snprintf(full, sizeof full, "%s: %s", p, msg);
    http_reply_error_with(f->c->req, 400, "invalid_flow", "flow", json_pack("{s:s}", "path", p),
                          full);
    return false;
}

static bool only(struct fcheck *f, json_t *o, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, k)) ok = true;
        if (!ok) {
            char p[200];
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            return ffail(f, p, "unknown field");
        }
    }
    return true;
}

static bool sql_exists(const char *sql, int64_t domain, const char *a, const char *b)
{
    int64_t one;
    return store_query_int(store_main(), &one, sql, SA_INT(domain), SA_STR(a), SA_STR(b), SA_END) ==
           CW_OK;
}

static bool prompt_ok(struct fcheck *f, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    if (!s)
        return ffail(f, path, "a prompt is a name (\"welcome\", \"ru/welcome\") or \"sound:<id>\"");
    if (!strncmp(s, "sound:", 6)) {
        int64_t id, one;
        if (cw_parse_i64(s + 6, &id) ||
            store_query_int(store_main(), &one,
                            "SELECT 1 FROM sound_files WHERE id = ? AND domain_id = ?", SA_INT(id),
                            SA_INT(f->c->domain_id), SA_END) != CW_OK)
            return ffail(f, path, "no sound file %s in this domain", s + 6);
        return true;
    }
    size_t n = strlen(s);
    const char *name = s;
    char lang[3];
    cw_strlcpy(lang, f->lang, sizeof lang);
    if (n > 3 && s[2] == '/') {
        memcpy(lang, s, 2);
        lang[2] = '\0';
        name = s + 3;
    }
    size_t m = strlen(name);
    if (!m || m > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != m ||
        strspn(lang, "abcdefghijklmnopqrstuvwxyz") != 2)
        return ffail(f, path, "\"%s\" is not a prompt name", s);
    char *file = cw_sprintf("%s/%s/%s.wav", config_str("sounds_dir"), lang, name);
    struct stat sb;
    bool ok = stat(file, &sb) == 0;
    free(file);
    return ok ? true : ffail(f, path, "no prompt \"%s\" in the %s set", name, lang);
}

static bool prompts_ok(struct fcheck *f, json_t *p, const char *path)
{
    if (json_is_string(p)) return prompt_ok(f, p, path);
    if (!json_is_array(p) || json_array_size(p) > 32)
        return ffail(f, path, "must be a prompt or a list of up to 32 prompts");
    size_t i;
    json_t *v;
    json_array_foreach(p, i, v)
    {
        char q[200];
        snprintf(q, sizeof q, "%s[%zu]", path, i);
        if (!prompt_ok(f, v, q)) return false;
    }
    return true;
}

/* The id of a forward target as text (menu.lua accepts strings and numbers). */
static const char *id_text(json_t *v, char *buf, size_t len)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static bool forward_ok(struct fcheck *f, json_t *t, const char *path)
{
    static const char *const allowed[] = {"type", "id", NULL};
    if (!json_is_object(t)) return ffail(f, path, "must be {type, id}");
    if (!only(f, t, path, allowed)) return false;
    const char *type = json_string_value(json_object_get(t, "type"));
    char buf[32], p[256];
    snprintf(p, sizeof p, "%.200s.id", path);
    const char *id = id_text(json_object_get(t, "id"), buf, sizeof buf);
    int64_t dom = f->c->domain_id;
    if (!type) return ffail(f, path, "type must be user, group, voicemail, fax or number");
    if (!id || !*id) return ffail(f, p, "is required");
    static const char user_sql[] =
        "SELECT 1 FROM users WHERE domain_id = ? AND (extension = ? OR login = ?)";
    static const char group_sql[] =
        "SELECT 1 FROM call_groups WHERE domain_id = ? AND (extension = ? OR name = ?)";
    if (!strcmp(type, "user")) {
        if (!sql_exists(user_sql, dom, id, id)) return ffail(f, p, "no user %s in this domain", id);
    } else if (!strcmp(type, "group")) {
        if (!sql_exists(group_sql, dom, id, id))
            return ffail(f, p, "no call-processing group %s in this domain", id);
    } else if (!strcmp(type, "voicemail") || !strcmp(type, "fax")) {
        if (!sql_exists(user_sql, dom, id, id) && !sql_exists(group_sql, dom, id, id))
            return ffail(f, p, "no user or group %s in this domain", id);
    } else if (!strcmp(type, "number")) {
        size_t n = strlen(id), lead = id[0] == '+';
        if (n - lead < 3 || n > 21 || strspn(id + lead, "0123456789") != n - lead)
            return ffail(f, p, "must be a phone number of 3..20 digits");
    } else {
        snprintf(p, sizeof p, "%.200s.type", path);
        return ffail(f, p, "unknown target type \"%s\" (user, group, voicemail, fax, number)",
                     type);
    }
    return true;
}

static bool action_ok(struct fcheck *f, json_t *a, const char *path)
{
    static const struct {
        const char *name;
        const char *const allowed[4];
    } actions[] = {
        {"forward", {"action", "target", NULL}},
        {"message", {"action", "prompt", "then", NULL}},
        {"menu", {"action", "menu", NULL}},
        {"back", {"action", NULL}},
        {"dial_extension", {"action", NULL}},
        {"hangup", {"action", NULL}},
        {"repeat", {"action", NULL}},
    };
    if (!json_is_object(a)) return ffail(f, path, "must be an action {action, ...}");
    const char *name = json_string_value(json_object_get(a, "action"));
    size_t k = 0;
    while (k < CW_ARRAY_LEN(actions) && (!name || strcmp(actions[k].name, name)))
        k++;
    char p[200];
    snprintf(p, sizeof p, "%s.action", path);
    if (k == CW_ARRAY_LEN(actions))
        return ffail(f, p,
                     "unknown action \"%s\" (forward, message, menu, back, dial_extension, "
                     "hangup, repeat)",
                     name ? name : "");
    if (!only(f, a, path, actions[k].allowed)) return false;
    if (!strcmp(name, "forward")) {
        snprintf(p, sizeof p, "%s.target", path);
        return forward_ok(f, json_object_get(a, "target"), p);
    }
    if (!strcmp(name, "message")) {
        snprintf(p, sizeof p, "%s.prompt", path);
        json_t *pr = json_object_get(a, "prompt"), *then = json_object_get(a, "then");
        if (!pr) return ffail(f, p, "a message needs a prompt");
        if (!prompts_ok(f, pr, p)) return false;
        snprintf(p, sizeof p, "%s.then", path);
        if (then && (!json_is_string(then) || strcmp(json_string_value(then), "hangup")))
            return ffail(f, p, "may only be \"hangup\"");
        return true;
    }
    if (!strcmp(name, "menu")) {
        snprintf(p, sizeof p, "%s.menu", path);
        const char *m = json_string_value(json_object_get(a, "menu"));
        if (!m) return ffail(f, p, "names the menu to go to");
        if (!json_object_get(f->menus, m)) return ffail(f, p, "there is no menu \"%s\"", m);
    }
    return true;
}

static bool menu_ok(struct fcheck *f, const char *name, json_t *m)
{
    static const char *const allowed[] = {"name", "prompt", "keys", "default", "timeout", NULL};
    char path[200], p[240];
    snprintf(path, sizeof path, "menus.%s", name);
    size_t n = strlen(name);
    if (!n || n > 32 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
        return ffail(f, path, "a menu name is 1..32 of A-Z a-z 0-9 _ -");
    if (!json_is_object(m)) return ffail(f, path, "a menu must be an object");
    if (!only(f, m, path, allowed)) return false;
    json_t *title = json_object_get(m, "name");
    snprintf(p, sizeof p, "%s.name", path);
    if (title && (!json_is_string(title) || json_string_length(title) > 64))
        return ffail(f, p, "must be text of up to 64 characters");
    json_t *pr = json_object_get(m, "prompt");
    snprintf(p, sizeof p, "%s.prompt", path);
    if (pr && !prompts_ok(f, pr, p)) return false;
    json_t *keys = json_object_get(m, "keys");
    if (keys) {
        snprintf(p, sizeof p, "%s.keys", path);
        if (!json_is_object(keys)) return ffail(f, p, "must map keys 0-9 * # to actions");
        if (json_object_size(keys) > 12) return ffail(f, p, "a menu has at most 12 keys");
        const char *k;
        json_t *v;
        json_object_foreach(keys, k, v)
        {
            snprintf(p, sizeof p, "%s.keys.%s", path, k);
            if (strlen(k) != 1 || !strchr("0123456789*#", k[0]))
                return ffail(f, p, "\"%s\" is not a key: keys are 0-9, * and #, one each", k);
            if (!action_ok(f, v, p)) return false;
        }
    }
    static const char *const special[] = {"default", "timeout"};
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_object_get(m, special[i]);
        snprintf(p, sizeof p, "%s.%s", path, special[i]);
        if (a && !action_ok(f, a, p)) return false;
    }
    return true;
}

bool flow_check(struct crud_ctx *c, json_t *flow)
{
    static const char *const allowed[] = {"name",       "language", "start", "timeout",
                                          "max_errors", "menus",    NULL};
    struct fcheck f = {c, NULL, "en"};
    if (!json_is_object(flow)) return ffail(&f, "", "a flow must be an object");
    if (!only(&f, flow, "", allowed)) return false;
    json_t *v = json_object_get(flow, "language");
    if (v) {
        bool known = false;
        for (const char *const *l = crud_languages; *l; l++)
            if (json_is_string(v) && !strcmp(*l, json_string_value(v))) known = true;
        if (!known) return ffail(&f, "language", "must be one of ru, en, de, es, fr");
        f.lang = json_string_value(v);
    }
    v = json_object_get(flow, "name");
    if (v && (!json_is_string(v) || json_string_length(v) > 64))
        return ffail(&f, "name", "must be text of up to 64 characters");
    v = json_object_get(flow, "timeout");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 60))
        return ffail(&f, "timeout", "must be 1..60 seconds");
    v = json_object_get(flow, "max_errors");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10))
        return ffail(&f, "max_errors", "must be 1..10");
    f.menus = json_object_get(flow, "menus");
    if (!json_is_object(f.menus) || !json_object_size(f.menus) || json_object_size(f.menus) > 100)
        return ffail(&f, "menus", "a flow needs 1..100 menus");
    v = json_object_get(flow, "start");
    const char *start = v ? json_string_value(v) : "main";
    if (!start) return ffail(&f, "start", "must name a menu");
    if (!json_object_get(f.menus, start))
        return ffail(&f, "start", "there is no menu \"%s\" to start with", start);
    const char *name;
    json_t *m;
    json_object_foreach(f.menus, name, m) if (!menu_ok(&f, name, m)) return false;
    return true;
}
