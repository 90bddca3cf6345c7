/*
 * config.c - key registry, Lua file loading, overrides and reload.
 *
 * The file is run in an empty Lua environment (no libraries), must return a
 * table, and nested tables flatten to dotted keys: { http = { port = 8080 } }
 * is the key "http.port".
 */
#include "config/config.h"
#include "base/cw.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_DEFAULT_SOUNDS_DIR
#define CW_DEFAULT_SOUNDS_DIR "sounds"
#endif

enum ctype { C_STR, C_INT, C_BOOL, C_LIST };

struct key {
    const char *name;
    enum ctype type;
    const char *def;
    bool live;
    const char *doc;
};

static const struct key keys[] = {
    {"http.listen", C_STR, "127.0.0.1", false, "address the HTTP API and web apps listen on"},
    {"http.port", C_INT, "8080", false, "HTTP port (0 = no plain HTTP)"},
    {"http.tls_port", C_INT, "0", false, "HTTPS port; needs http.tls_cert and http.tls_key"},
    {"http.tls_cert", C_STR, "", false, "PEM certificate chain for HTTPS"},
    {"http.tls_key", C_STR, "", false, "PEM private key for HTTPS"},
    {"http.max_body", C_INT, "1048576", true, "largest request body accepted, bytes (uploads)"},
    {"http.max_upload", C_INT, "33554432", true, "largest sound-file upload, bytes"},
    {"http.web_root", C_STR, "web", false, "folder served as the browser apps"},
    {"http.sse_heartbeat", C_INT, "15", false,
     "seconds between keep-alive comments on event streams"},
    {"public_url", C_STR, "http://127.0.0.1:8080", true,
     "base URL put into e-mailed links (password reset, voicemail)"},
    {"sip.listen", C_STR, "0.0.0.0", false, "address SIP listens on (UDP and TCP)"},
    {"sip.port", C_INT, "5060", false, "SIP port for UDP and TCP"},
    {"sip.tls_port", C_INT, "5061", false, "SIP over TLS port when sip.tls_cert is set"},
    {"sip.tls_cert", C_STR, "", false, "folder with agent.pem (cert+key) for SIP TLS; empty = off"},
    {"sip.public_ip", C_STR, "", false,
     "address put in Contact and SDP; empty = sip.listen, or the primary interface"},
    {"sip.reg_min_expires", C_INT, "60", true, "shortest registration accepted, seconds"},
    {"sip.reg_max_expires", C_INT, "3600", true, "longest registration granted, seconds"},
    {"sip.keepalive", C_INT, "30", true,
     "OPTIONS keep-alive to registered contacts, seconds (0=off)"},
    {"sip.digest", C_STR, "md5", true,
     "digest challenges: md5, sha-256, or both (SHA-256 first; needs RFC 8760 phones)"},
    {"sip.ban_failures", C_INT, "5", true, "failed authentications from one IP before a ban"},
    {"sip.ban_window", C_INT, "60", true, "window the failures are counted in, seconds"},
    {"sip.ban_time", C_INT, "600", true, "how long a banned IP is ignored, seconds"},
    {"sip.session_timer", C_INT, "1800", true, "session-timer interval offered, seconds"},
    {"sip.session_min_se", C_INT, "90", false,
     "shortest session-timer interval accepted (Min-SE, RFC 4028: 90), seconds"},
    {"sip.ring_timeout", C_INT, "40", true, "default ring time before no_answer, seconds"},
    {"sip.trunk_retry", C_INT, "30", true,
     "first wait before a failed trunk registration is retried, seconds (doubles up to 16x)"},
    {"sip.nonce_ttl", C_INT, "300", true,
     "age after which a digest nonce is stale and the client is challenged again, seconds"},
    {"call.park_code", C_STR, "*70", true,
     "park the other party in the first free slot (transfer to it, or dial ##<code>)"},
    {"call.park_slots", C_STR, "701-709", true, "park slots of every domain, a range first-last"},
    {"call.park_timeout", C_INT, "60", true,
     "a parked call rings the one who parked it after this long, seconds"},
    {"call.dtmf_timeout", C_INT, "3", true,
     "in-call codes: pause after the last digit of ##<number> that ends it, seconds"},
    {"media.workers", C_INT, "0", false, "media worker threads (0 = one per core)"},
    {"media.rtp_min", C_INT, "16384", false, "lowest RTP port"},
    {"media.rtp_max", C_INT, "32767", false, "highest RTP port"},
    {"media.rtp_timeout", C_INT, "60", true, "end a call after this many seconds without RTP"},
    {"media.dtmf_mode", C_STR, "auto", true,
     "default DTMF detection: rfc4733, inband, or auto (both)"},
    {"media.tone_locale", C_STR, "ru", true, "tone plan for ringback/busy: ru or us"},
    {"media.realtime", C_BOOL, "true", false,
     "media workers at real-time priority (SCHED_FIFO; else nice -10), when allowed"},
    {"media.max_sessions", C_INT, "0", false,
     "most concurrent RTP sessions (calls beyond get 503); 0 = no limit"},
    {"media.ip", C_STR, "", false, "address RTP binds to; empty = sip.public_ip or all"},
    {"fax.retries", C_INT, "3", true, "more attempts after a fax the API sends fails (0..10)"},
    {"fax.retry_interval", C_INT, "120", true, "wait between attempts to send a fax, seconds"},
    {"db", C_STR, "var/callwright.db", false,
     "store: a SQLite file path, or postgresql://user@host:port/db"},
    {"var_dir", C_STR, "var", false, "folder for recordings, sound files, voicemail, faxes"},
    {"sounds_dir", C_STR, CW_DEFAULT_SOUNDS_DIR, true, "folder with generated prompt sets"},
    {"scripts_dir", C_STR, "scripts", true, "Lua library and system scripts"},
    {"flows_dir", C_STR, "ivr-flows", true, "IVR flow scripts"},
    {"plugin_dir", C_STR, "build/plugins", false, "folder searched for plugin .so files"},
    {"plugins", C_LIST, "", false, "plugins loaded at start, by name, e.g. { \"metrics\" }"},
    {"metrics.public", C_BOOL, "true", false,
     "serve /metrics without credentials (false: a sysadmin session or token is needed)"},
    {"log.level", C_STR, "info", true, "default log level: error, warn, info, debug, trace"},
    {"log.levels", C_STR, "", true, "per-subsystem levels, e.g. \"sip=debug,media=warn\""},
    {"log.file", C_STR, "", true, "log file; empty = stderr"},
    {"auth.session_ttl", C_INT, "43200", true, "web session lifetime, seconds"},
    {"auth.pbkdf2_iterations", C_INT, "210000", true,
     "PBKDF2-SHA256 iterations for new hashes (at least 210000)"},
    {"auth.login_max_failures", C_INT, "5", true, "failed logins of one account before it locks"},
    {"auth.login_max_failures_ip", C_INT, "20", true,
     "failed logins from one IP address (any accounts) before it locks"},
    {"auth.login_window", C_INT, "300", true, "window failed logins are counted in, seconds"},
    {"auth.lockout", C_INT, "900", true, "how long a locked account or IP waits, seconds"},
    {"auth.reset_ttl", C_INT, "3600", true, "password-reset link lifetime, seconds"},
    {"lua.instruction_budget", C_INT, "20000000", true,
     "VM instructions a tenant script may run between yields"},
    {"lua.memory_cap", C_INT, "33554432", true, "bytes a tenant's Lua state may hold"},
    {"lua.time_budget_ms", C_INT, "30", true, "wall time a tenant script may run between yields"},
    {"lua.system_time_budget_ms", C_INT, "2000", true,
     "wall time a system script may run between yields (0 = no limit)"},
    {"lua.http_max_body", C_INT, "4194304", true, "largest response body cw.http accepts, bytes"},
    {"lua.tenant_http_private", C_BOOL, "false", true,
     "let tenant scripts' cw.http reach loopback and private addresses"},
    {"smtp.url", C_STR, "", true, "mail server, e.g. smtp://127.0.0.1:25 (empty = mail off)"},
    {"smtp.from", C_STR, "callwright@localhost", true, "sender address of mail"},
    {"smtp.user", C_STR, "", true, "SMTP login (empty = none)"},
    {"smtp.password", C_STR, "", true, "SMTP password"},
    {"cdr.flush_ms", C_INT, "500", true, "how often buffered CDRs and queue-log rows are written"},
    {"route.script_time_ms", C_INT, "3000", true,
     "longest a routing rule's tenant script may take to decide before its fallback, ms"},
    {"recording.sweep_interval", C_INT, "3600", true,
     "how often recordings past their domain's retention are deleted, seconds"},
    {"demo", C_BOOL, "false", false, "create the demo tenant at start if it is missing"},
    {"clock.offset", C_STR, "0", true,
     "seconds added to the wall clock (signed); for tests and demos of schedules"},
};

#define NKEYS CW_ARRAY_LEN(keys)

struct value {
    char *s;
    int64_t i;
    bool b;
    char **list;
    int nlist;
};

static struct {
    struct value v[NKEYS];
    char *path;
    char **overrides;
    int n_overrides;
    bool loaded;
} C;

static int key_index(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return (int)i;
    return -1;
}

static void value_clear(struct value *v)
{
    free(v->s);
    for (int i = 0; i < v->nlist; i++)
        free(v->list[i]);
    free(v->list);
    memset(v, 0, sizeof *v);
}

static int parse_scalar(int k, const char *text, struct value *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    switch (keys[k].type) {
    case C_STR:
        out->s = cw_strdup(text);
        return CW_OK;
    case C_INT:
        if (cw_parse_i64(text, &out->i) || out->i < 0) {
            snprintf(err, errlen, "%s: expected a non-negative integer, got \"%s\"", keys[k].name,
                     text);
            return CW_EINVAL;
        }
        return CW_OK;
    case C_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
            out->b = true;
        else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
            out->b = false;
        else {
            snprintf(err, errlen, "%s: expected true or false, got \"%s\"", keys[k].name, text);
            return CW_EINVAL;
        }
        return CW_OK;
    case C_LIST: {
        /* comma-separated on the command line */
        char *copy = cw_strdup(text);
        for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t;
             t = strtok_r(NULL, ", ", &save)) {
            out->list = cw_realloc(out->list, sizeof(char *) * (size_t)(out->nlist + 1));
            out->list[out->nlist++] = cw_strdup(t);
        }
        free(copy);
        return CW_OK;
    }
    }
    return CW_EINVAL;
}

/* Read one Lua value at the stack top into out, checking the key's type. */
static int lua_value(lua_State *L, int k, struct value *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int t = lua_type(L, -1);
    switch (keys[k].type) {
    case C_STR:
        if (t != LUA_TSTRING) break;
        out->s = cw_strdup(lua_tostring(L, -1));
        return CW_OK;
    case C_INT:
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) break;
        out->i = lua_tointeger(L, -1);
        return CW_OK;
    case C_BOOL:
        if (t != LUA_TBOOLEAN) break;
        out->b = lua_toboolean(L, -1);
        return CW_OK;
    case C_LIST: {
        if (t != LUA_TTABLE) break;
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING) {
                lua_pop(L, 1);
                value_clear(out);
                snprintf(err, errlen, "%s[%lld]: expected a string", keys[k].name, (long long)i);
                return CW_EINVAL;
            }
            out->list = cw_realloc(out->list, sizeof(char *) * (size_t)(out->nlist + 1));
            out->list[out->nlist++] = cw_strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        return CW_OK;
    }
    }
    static const char *names[] = {"a string", "a non-negative integer", "a boolean",
                                  "a list of strings"};
    snprintf(err, errlen, "%s: expected %s, got %s", keys[k].name, names[keys[k].type],
             lua_typename(L, t));
    return CW_EINVAL;
}

/* Walk the table at the top of the stack, flattening nested tables. */
static int walk(lua_State *L, const char *prefix, struct value *vals, bool *set, char *err,
                size_t errlen)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            snprintf(err, errlen, "%s: keys must be names", *prefix ? prefix : "config");
            return CW_EINVAL;
        }
        char name[128];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", lua_tostring(L, -2));
        int k = key_index(name);
        if (k < 0 && lua_type(L, -1) == LUA_TTABLE) {
            int rc = walk(L, name, vals, set, err, errlen);
            if (rc) {
                lua_pop(L, 2);
                return rc;
            }
        } else if (k < 0) {
            lua_pop(L, 2);
            snprintf(err, errlen, "%s: unknown configuration key", name);
            return CW_EINVAL;
        } else {
            value_clear(&vals[k]);
            int rc = lua_value(L, k, &vals[k], err, errlen);
            if (rc) {
                lua_pop(L, 2);
                return rc;
            }
            set[k] = true;
        }
        lua_pop(L, 1);
    }
    return CW_OK;
}

static int build(const char *path, char **overrides, int n_over, struct value *vals, char *err,
                 size_t errlen)
{
    bool set[NKEYS] = {0};
    if (path) {
        lua_State *L = luaL_newstate();
        if (luaL_loadfilex(L, path, "t")) {
            snprintf(err, errlen, "%s", lua_tostring(L, -1));
            lua_close(L);
            return CW_EINVAL;
        }
        /* empty environment: the file is data, not a program */
        lua_newtable(L);
        lua_setupvalue(L, -2, 1);
        if (lua_pcall(L, 0, 1, 0)) {
            snprintf(err, errlen, "%s", lua_tostring(L, -1));
            lua_close(L);
            return CW_EINVAL;
        }
        if (!lua_istable(L, -1)) {
            snprintf(err, errlen, "%s: must return a table", path);
            lua_close(L);
            return CW_EINVAL;
        }
        int rc = walk(L, "", vals, set, err, errlen);
        lua_close(L);
        if (rc) return rc;
    }
    for (int i = 0; i < n_over; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq) {
            snprintf(err, errlen, "--set %s: expected key=value", overrides[i]);
            return CW_EINVAL;
        }
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - overrides[i]), overrides[i]);
        int k = key_index(name);
        if (k < 0) {
            snprintf(err, errlen, "%s: unknown configuration key", name);
            return CW_EINVAL;
        }
        struct value v;
        if (parse_scalar(k, eq + 1, &v, err, errlen)) return CW_EINVAL;
        value_clear(&vals[k]);
        vals[k] = v;
        set[k] = true;
    }
    for (size_t k = 0; k < NKEYS; k++) {
        if (set[k]) continue;
        struct value v;
        if (parse_scalar((int)k, keys[k].def, &v, err, errlen)) return CW_EINVAL;
        vals[k] = v;
    }
    return CW_OK;
}

static void free_values(struct value *vals)
{
    for (size_t k = 0; k < NKEYS; k++)
        value_clear(&vals[k]);
}

int config_load(const char *path, const char *const *overrides, int n_overrides, char *err,
                size_t errlen)
{
    struct value vals[NKEYS];
    memset(vals, 0, sizeof vals);
    char **ov = cw_calloc((size_t)n_overrides + 1, sizeof(char *));
    for (int i = 0; i < n_overrides; i++)
        ov[i] = cw_strdup(overrides[i]);
    if (build(path, ov, n_overrides, vals, err, errlen)) {
        free_values(vals);
        for (int i = 0; i < n_overrides; i++)
            free(ov[i]);
        free(ov);
        return CW_EINVAL;
    }
    config_free();
    memcpy(C.v, vals, sizeof vals);
    C.path = path ? cw_strdup(path) : NULL;
    C.overrides = ov;
    C.n_overrides = n_overrides;
    C.loaded = true;
    return CW_OK;
}

int config_reload(char *err, size_t errlen)
{
    struct value vals[NKEYS];
    memset(vals, 0, sizeof vals);
    if (build(C.path, C.overrides, C.n_overrides, vals, err, errlen)) {
        free_values(vals);
        return CW_EINVAL;
    }
    for (size_t k = 0; k < NKEYS; k++) {
        if (keys[k].live) {
            value_clear(&C.v[k]);
            C.v[k] = vals[k];
        } else {
            value_clear(&vals[k]);
        }
    }
    return CW_OK;
}

void config_free(void)
{
    free_values(C.v);
    free(C.path);
    for (int i = 0; i < C.n_overrides; i++)
        free(C.overrides[i]);
    free(C.overrides);
    memset(&C, 0, sizeof C);
}

static const struct value *get(const char *key, enum ctype type)
{
    int k = key_index(key);
    if (k < 0 || keys[k].type != type) {
        fprintf(stderr, "callwright: internal error: config key %s read as wrong type\n", key);
        abort();
    }
    if (!C.loaded) {
        /* defaults until loaded (unit tests) */
        char err[128];
        config_load(NULL, NULL, 0, err, sizeof err);
    }
    return &C.v[k];
}

const char *config_str(const char *key)
{
    return get(key, C_STR)->s;
}

int64_t config_int(const char *key)
{
    return get(key, C_INT)->i;
}

bool config_bool(const char *key)
{
    return get(key, C_BOOL)->b;
}

int config_list(const char *key, const char *const **items)
{
    const struct value *v = get(key, C_LIST);
    *items = (const char *const *)v->list;
    return v->nlist;
}

char config_kind(const char *key)
{
    int k = key_index(key);
    if (k < 0) return 0;
    return "sibl"[keys[k].type];
}

int config_set(const char *key, const char *value, char *err, size_t errlen)
{
    int k = key_index(key);
    if (k < 0) {
        snprintf(err, errlen, "%s: unknown configuration key", key);
        return CW_EINVAL;
    }
    get(key, keys[k].type);
    struct value v;
    if (parse_scalar(k, value, &v, err, errlen)) return CW_EINVAL;
    value_clear(&C.v[k]);
    C.v[k] = v;
    return CW_OK;
}

/* A default as a Lua literal. */
static void print_lua_value(FILE *out, const struct key *k)
{
    switch (k->type) {
    case C_STR:
        fputc('"', out);
        for (const char *p = k->def; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', out);
            fputc(*p, out);
        }
        fputc('"', out);
        break;
    case C_INT:
    case C_BOOL:
        fputs(k->def, out);
        break;
    case C_LIST: {
        fputs("{", out);
        char *copy = cw_strdup(k->def);
        const char *sep = " ";
        for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t;
             t = strtok_r(NULL, ", ", &save), sep = ", ")
            fprintf(out, "%s\"%s\"", sep, t);
        free(copy);
        fputs(*k->def ? " }" : "}", out);
        break;
    }
    }
}

/* One key of the Lua reference: its meaning and default, then the assignment. A default
 * computed at build time (sounds_dir) is shown but left commented out. */
static void print_lua_key(FILE *out, const struct key *k, const char *name, const char *indent)
{
    bool computed = !strcmp(k->name, "sounds_dir");
    fprintf(out, "%s-- %s; default ", indent, k->doc);
    if (computed)
        fputs("the sounds folder of the build", out);
    else
        print_lua_value(out, k);
    fprintf(out, "%s\n%s%s", k->live ? " (live)" : "", indent, computed ? "-- " : "");
    if (strchr(name, '.'))
        fprintf(out, "[\"%s\"] = ", name);
    else
        fprintf(out, "%s = ", name);
    if (computed)
        fputs("\"sounds\"", out);
    else
        print_lua_value(out, k);
    fputs(",\n", out);
}

/* The configuration file form: keys grouped by their first dotted part. */
static void print_lua(FILE *out)
{
    fputs("-- Callwright configuration: a Lua table, read as data (no libraries).\n"
          "-- Every key the daemon knows is here with its meaning and default;\n"
          "-- \"live\" keys change on SIGHUP, the others need a restart. Nested tables\n"
          "-- are dotted keys ({ http = { port = 8080 } } is http.port), and\n"
          "-- --set key=value on the command line beats this file.\n"
          "-- Made by `callwright --help-config=lua`, then values chosen for `make run`.\n"
          "return {\n",
          out);
    bool done[NKEYS] = {0};
    for (size_t k = 0; k < NKEYS; k++) {
        if (done[k]) continue;
        const char *dot = strchr(keys[k].name, '.');
        if (!dot) {
            print_lua_key(out, &keys[k], keys[k].name, "  ");
            done[k] = true;
            continue;
        }
        size_t plen = (size_t)(dot - keys[k].name);
        fprintf(out, "  %.*s = {\n", (int)plen, keys[k].name);
        for (size_t j = k; j < NKEYS; j++) {
            if (strncmp(keys[j].name, keys[k].name, plen + 1)) continue;
            print_lua_key(out, &keys[j], keys[j].name + plen + 1, "    ");
            done[j] = true;
        }
        fputs("  },\n", out);
    }
    fputs("}\n", out);
}

void config_print_reference(FILE *out, enum config_format format)
{
    static const char *tn[] = {"string", "integer", "boolean", "list"};
    if (format == CONFIG_REF_LUA) {
        print_lua(out);
        return;
    }
    bool markdown = format == CONFIG_REF_MARKDOWN;
    if (markdown) {
        fprintf(out, "| key | type | default | live | meaning |\n|---|---|---|---|---|\n");
    }
    for (size_t k = 0; k < NKEYS; k++) {
        const char *def = keys[k].def;
        if (!strcmp(keys[k].name, "sounds_dir")) def = "<build>/sounds";
        if (markdown)
            fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", keys[k].name, tn[keys[k].type],
                    *def ? def : "\"\"", keys[k].live ? "yes" : "no", keys[k].doc);
        else
            fprintf(out, "%-26s %-8s %-22s %-4s %s\n", keys[k].name, tn[keys[k].type],
                    *def ? def : "\"\"", keys[k].live ? "live" : "", keys[k].doc);
    }
}
