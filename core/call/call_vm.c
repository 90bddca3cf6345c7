/*
 * call_vm.c - voicemail primitives of the Lua call object: store a message
 * that was just recorded (and tell its owner by e-mail), list a box, mark or
 * delete a message, find the box greeting. The call flows themselves are
 * scripts/cw/voicemail.lua.
 *
 * These work after the caller has hung up (a message is stored once its
 * file is complete). Boxes belong to users of the call's own domain only.
 * Core thread.
 */
#include "base/cw.h"
#include "base/tz.h"
#include "call/call_int.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "mail/mail.h"
#include "store/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A user box of the call's domain: true and its id; false when not ours. */
static bool box_of(lua_State *L, call *c, int idx, int64_t *box)
{
    *box = luaL_checkinteger(L, idx);
    int64_t one;
    return c &&
           store_query_int(store_main(), &one, "SELECT 1 FROM users WHERE id = ? AND domain_id = ?",
                           SA_INT(*box), SA_INT(call_domain(c)), SA_END) == CW_OK;
}

struct vm_mail {
    int64_t message_id;
};

static void mail_done(int rc, const char *error, void *arg)
{
    struct vm_mail *m = arg;
    if (rc)
        log_warn("voicemail", "notice of message %lld not sent: %s", (long long)m->message_id,
                 error ? error : cw_strerror(rc));
    free(m);
}

static void notify_by_mail(int64_t domain, int64_t box, int64_t id, const char *caller,
                           const char *caller_name, int64_t ms, const char *path)
{
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT u.email, u.voicemail_notify, u.display_name, d.timezone, d.name "
                    "FROM users u JOIN domains d ON d.id = u.domain_id WHERE u.id = ?",
                    SA_INT(box), SA_END) < 0 ||
        !store_next(r) || !store_str(r, 0) || !*store_str(r, 0) || !store_int(r, 1) ||
        !mail_enabled()) {
        store_res_free(r);
        return;
    }
    struct cw_localtime lt;
    cw_tz_local(store_str(r, 3), cw_wall_time(), &lt);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02d %02d:%02d (%s)", lt.year, lt.month, lt.day, lt.hour,
             lt.min, store_str(r, 3));
    char *subject = cw_sprintf("Voicemail from %s%s%s%s", caller, *caller_name ? " (" : "",
                               caller_name, *caller_name ? ")" : "");
    char *text = cw_sprintf("Hello %s,\n\n"
                            "you have a new voicemail message.\n\n"
                            "From: %s %s\n"
                            "Received: %s\n"
                            "Length: %lld s\n\n"
                            "Listen online: %s/api/v1/domains/%s/voicemail/%lld/audio\n"
                            "The recording is attached.\n",
                            store_str(r, 2), caller, caller_name, when, (long long)(ms / 1000),
                            config_str("public_url"), store_str(r, 4), (long long)id);
    struct mail_attachment att = {
        .filename = "voicemail.wav", .content_type = "audio/wav", .path = path};
    struct vm_mail *m = cw_calloc(1, sizeof *m);
    m->message_id = id;
    if (mail_send(store_str(r, 0), subject, text, &att, mail_done, m)) {
        log_warn("voicemail", "notice of message %lld not queued for domain %lld", (long long)id,
                 (long long)domain);
        free(m);
    }
    free(subject);
    free(text);
    store_res_free(r);
}

/* call:voicemail_store(box_user_id, path, ms) -> message id, or nil and why */
static int l_voicemail_store(lua_State *L)
{
    call *c = call_lua_check(L);
    int64_t box;
    if (!box_of(L, c, 2, &box)) {
        lua_pushnil(L);
        lua_pushstring(L, "no_box");
        return 2;
    }
    const char *path = luaL_checkstring(L, 3);
    lua_Integer ms = luaL_checkinteger(L, 4);
    char *full =
        path[0] == '/' ? cw_strdup(path) : cw_sprintf("%s/%s", config_str("var_dir"), path);
    struct stat sb;
    if (strstr(path, "..") || stat(full, &sb) || sb.st_size <= 44) {
        free(full);
        lua_pushnil(L);
        lua_pushstring(L, "no_recording");
        return 2;
    }
    int64_t id = 0;
    json_t *info = call_to_json(c);
    const char *caller = json_string_value(json_object_get(info, "from"));
    const char *name = json_string_value(json_object_get(info, "from_name"));
    int rc = store_query_int(
        store_main(), &id,
        "INSERT INTO voicemail_messages(domain_id, owner_id, call_uuid, caller, "
        "caller_name, duration_ms, path, created_at) VALUES (?,?,?,?,?,?,?,?) "
        "RETURNING id",
        SA_INT(call_domain(c)), SA_INT(box), SA_STR(call_uuid(c)), SA_STR(caller ? caller : ""),
        SA_STR(name ? name : ""), SA_INT(ms), SA_STR(full), SA_INT(cw_wall_time()), SA_END);
    if (rc) {
        log_error("voicemail", "message for box %lld not stored: %s", (long long)box,
                  store_errmsg(store_main()));
        json_decref(info);
        free(full);
        lua_pushnil(L);
        lua_pushstring(L, "store");
        return 2;
    }
    call_log(c, "voicemail", "message %lld for user %lld, %lld ms", (long long)id, (long long)box,
             (long long)ms);
    events_emit("voicemail.new", call_domain(c),
                json_pack("{s:I,s:I,s:s,s:s,s:I}", "id", (json_int_t)id, "user_id", (json_int_t)box,
                          "caller", caller ? caller : "", "caller_name", name ? name : "",
                          "duration_ms", (json_int_t)ms));
    notify_by_mail(call_domain(c), box, id, caller ? caller : "", name ? name : "", ms, full);
    json_decref(info);
    free(full);
    lua_pushinteger(L, id);
    return 1;
}

/* call:voicemail_list(box, {new_only=}) -> {{id, caller, caller_name, created_at, duration_ms,
 * path, heard}, ...} oldest first */
static int l_voicemail_list(lua_State *L)
{
    call *c = call_lua_check(L);
    int64_t box;
    lua_newtable(L);
    if (!box_of(L, c, 2, &box)) return 1;
    bool new_only = false;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "new_only");
        new_only = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 3);
    lua_newtable(L);
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT id, caller, caller_name, created_at, duration_ms, path, heard "
                    "FROM voicemail_messages WHERE owner_id = ? AND domain_id = ? AND "
                    "(? = 0 OR heard = 0) ORDER BY created_at, id",
                    SA_INT(box), SA_INT(call_domain(c)), SA_INT(new_only), SA_END) < 0)
        return 1;
    for (int i = 1; store_next(r); i++) {
        lua_createtable(L, 0, 7);
        lua_pushinteger(L, store_int(r, 0)), lua_setfield(L, -2, "id");
        lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "caller");
        lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "caller_name");
        lua_pushinteger(L, store_int(r, 3)), lua_setfield(L, -2, "created_at");
        lua_pushinteger(L, store_int(r, 4)), lua_setfield(L, -2, "duration_ms");
        lua_pushstring(L, store_str(r, 5)), lua_setfield(L, -2, "path");
        lua_pushboolean(L, store_int(r, 6) != 0), lua_setfield(L, -2, "heard");
        lua_rawseti(L, -2, i);
    }
    store_res_free(r);
    return 1;
}

/* call:voicemail_mark(box, id, "heard" | "delete") -> true | nil */
static int l_voicemail_mark(lua_State *L)
{
    call *c = call_lua_check(L);
    int64_t box;
    if (!box_of(L, c, 2, &box)) return 0;
    lua_Integer id = luaL_checkinteger(L, 3);
    const char *what = luaL_checkstring(L, 4);
    store_res *r;
    char *path = NULL;
    if (store_query(store_main(), &r,
                    "SELECT path FROM voicemail_messages WHERE id = ? AND owner_id = ? AND "
                    "domain_id = ?",
                    SA_INT(id), SA_INT(box), SA_INT(call_domain(c)), SA_END) >= 0 &&
        store_next(r))
        path = cw_strdup(store_str(r, 0));
    store_res_free(r);
    if (!path) return 0;
    int rc;
    if (!strcmp(what, "delete")) {
        rc = store_exec(store_main(), "DELETE FROM voicemail_messages WHERE id = ?", SA_INT(id),
                        SA_END);
        if (rc > 0) unlink(path);
    } else if (!strcmp(what, "heard")) {
        rc = store_exec(store_main(), "UPDATE voicemail_messages SET heard = 1 WHERE id = ?",
                        SA_INT(id), SA_END);
    } else {
        free(path);
        return luaL_argerror(L, 4, "heard or delete");
    }
    free(path);
    if (rc <= 0) return 0;
    lua_pushboolean(L, 1);
    return 1;
}

/*
 * Voicemail PINs are stored as "sha256$<salt>$<digest of salt and PIN>".
 * A PIN is a few digits, so a slow KDF would add nothing but a stall of
 * the core loop; the salt keeps equal PINs from looking equal.
 */
static void pin_digest(const char *salt, const char *pin, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, salt, strlen(salt));
    EVP_DigestUpdate(x, pin, strlen(pin));
    EVP_DigestFinal_ex(x, md, &n);
    EVP_MD_CTX_free(x);
    cw_hex(md, 32, out);
}

char *call_vm_pin_hash(const char *pin)
{
    unsigned char raw[8];
    char salt[17], dig[65];
    cw_random_bytes(raw, sizeof raw);
    cw_hex(raw, sizeof raw, salt);
    pin_digest(salt, pin, dig);
    return cw_sprintf("sha256$%s$%s", salt, dig);
}

static bool pin_matches(const char *stored, const char *pin)
{
    char salt[33], want[65], dig[65];
    if (sscanf(stored, "sha256$%32[0-9a-f]$%64[0-9a-f]", salt, want) != 2) return false;
    pin_digest(salt, pin, dig);
    return CRYPTO_memcmp(dig, want, 64) == 0;
}

/* call:voicemail_pin_ok(box, digits) -> true when the box has no PIN or it matches */
static int l_voicemail_pin_ok(lua_State *L)
{
    call *c = call_lua_check(L);
    int64_t box;
    const char *digits = luaL_checkstring(L, 3);
    bool ok = false;
    if (box_of(L, c, 2, &box)) {
        store_res *r;
        if (store_query(store_main(), &r, "SELECT voicemail_pin FROM users WHERE id = ?",
                        SA_INT(box), SA_END) >= 0 &&
            store_next(r))
            ok = !store_str(r, 0) || !*store_str(r, 0) || pin_matches(store_str(r, 0), digits);
        store_res_free(r);
    }
    lua_pushboolean(L, ok);
    return 1;
}

/* call:voicemail_box(box) -> {has_pin=, greeting= path or nil, language=, enabled=} */
static int l_voicemail_box(lua_State *L)
{
    call *c = call_lua_check(L);
    int64_t box;
    if (!box_of(L, c, 2, &box)) return 0;
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT u.voicemail_pin, (SELECT path FROM sound_files f WHERE "
                    "f.id = u.vm_greeting_sound_id AND f.domain_id = u.domain_id), u.language, "
                    "u.voicemail_enabled FROM users u WHERE u.id = ?",
                    SA_INT(box), SA_END) < 0 ||
        !store_next(r)) {
        store_res_free(r);
        return 0;
    }
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, store_str(r, 0) && *store_str(r, 0)), lua_setfield(L, -2, "has_pin");
    if (store_str(r, 1)) lua_pushstring(L, store_str(r, 1)), lua_setfield(L, -2, "greeting");
    lua_pushstring(L, store_str(r, 2)), lua_setfield(L, -2, "language");
    lua_pushboolean(L, store_int(r, 3) != 0), lua_setfield(L, -2, "enabled");
    store_res_free(r);
    return 1;
}

const luaL_Reg call_vm_methods[] = {
    {"voicemail_store", l_voicemail_store},   {"voicemail_list", l_voicemail_list},
    {"voicemail_mark", l_voicemail_mark},     {"voicemail_box", l_voicemail_box},
    {"voicemail_pin_ok", l_voicemail_pin_ok}, {NULL, NULL},
};
