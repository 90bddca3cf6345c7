/*
 * media_api.c - stored call audio through the API: call recordings and
 * voicemail messages (list, one, delete, mark heard), each downloadable as
 * WAV or MP3.
 *
 * Who sees what: recordings - supervisors and administrators of the domain
 * every recording; operators and subscribers those of their own calls.
 * Voicemail - domain administrators every box; anyone else their own box
 * and the boxes of the groups they are a member of. Other tenants' objects
 * are 404. MP3s are converted on a worker thread (media_export_mp3) next
 * to the WAV and reused; deleting a recording or message removes both.
 * Core thread only.
 */
#include "domain/crud.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/work.h"
#include "media/media.h"
#include "recording/recording.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ---------------------------------------------------------- audio files */

/* A stored path as a file: absolute as is, relative under var_dir. */
static char *file_of(const char *path)
{
    if (!path || !*path || strstr(path, "..")) return NULL;
    return path[0] == '/' ? cw_strdup(path) : cw_sprintf("%s/%s", config_str("var_dir"), path);
}

struct mp3_job {
    http_req *req;
    char *wav, *mp3, *name;
    int rc;
    char err[200];
};

static void mp3_run(void *arg)
{
    struct mp3_job *j = arg;
    struct stat w, m;
    /* a conversion already made from this very file is reused */
    if (stat(j->mp3, &m) == 0 && stat(j->wav, &w) == 0 && m.st_mtime >= w.st_mtime) return;
    j->rc = media_export_mp3(j->wav, j->mp3, 0, j->err, sizeof j->err);
}

static void mp3_done(void *arg)
{
    struct mp3_job *j = arg;
    if (j->rc) {
        log_warn("api", "MP3 of %s: %s", j->wav, j->err);
        http_reply_error(j->req, 500, "conversion", NULL, "the MP3 could not be made: %s", j->err);
    } else {
        http_reply_file(j->req, j->mp3, "audio/mpeg", j->name);
    }
    free(j->wav);
    free(j->mp3);
    free(j->name);
    free(j);
}

/* Reply with the audio of a stored path in ?format=wav (default) or mp3. */
static void reply_audio(http_req *req, const char *path, const char *stem)
{
    static const char *const allowed[] = {"format", NULL};
    if (!http_query_only(req, allowed)) return;
    const char *fmt = http_query(req, "format");
    if (fmt && strcmp(fmt, "wav") && strcmp(fmt, "mp3")) {
        http_reply_error(req, 400, "invalid_parameter", "format", "format must be wav or mp3");
        return;
    }
    char *wav = file_of(path);
    struct stat sb;
    if (!wav || stat(wav, &sb) != 0) {
        free(wav);
        http_reply_error(req, 404, "not_found", NULL, "the audio file is gone");
        return;
    }
    if (!fmt || !strcmp(fmt, "wav")) {
        char *name = cw_sprintf("%s.wav", stem);
        http_reply_file(req, wav, "audio/wav", name);
        free(name);
        free(wav);
        return;
    }
    struct mp3_job *j = cw_calloc(1, sizeof *j);
    j->req = req;
    j->wav = wav;
    size_t n = strlen(wav);
    j->mp3 = n > 4 && !strcmp(wav + n - 4, ".wav") ? cw_sprintf("%.*s.mp3", (int)(n - 4), wav)
                                                   : cw_sprintf("%s.mp3", wav);
    j->name = cw_sprintf("%s.mp3", stem);
    http_async(req);
    work_submit(mp3_run, mp3_done, j);
}

/* The path of an object the caller may see (through the entity's scope and reach), or 404. */
static char *visible_path(http_req *req, const struct crud_entity *e, const char *table)
{
    struct crud_ctx c = {.req = req, .e = e};
    int64_t domain, id;
    if (!http_domain_param(req, 0, &domain)) return NULL;
    c.scope_id = c.domain_id = domain;
    json_t *o = NULL;
    if (!cw_parse_i64(req->params[1], &id)) o = crud_fetch(&c, id);
    if (!o) {
        http_reply_error(req, 404, "not_found", NULL, "no such %s", e->label);
        return NULL;
    }
    json_decref(o);
    char *sql = cw_sprintf("SELECT path FROM %s WHERE id = ?", table);
    store_res *r;
    char *path = NULL;
    if (store_query(store_main(), &r, sql, SA_INT(id), SA_END) >= 0) {
        if (store_next(r)) path = cw_strdup(store_str(r, 0));
        store_res_free(r);
    }
    free(sql);
    if (!path) http_reply_error(req, 404, "not_found", NULL, "no such %s", e->label);
    return path;
}

/* ------------------------------------------------------------ recordings */

static const struct crud_field recording_fields[] = {
    {"call_uuid", FT_TEXT, FF_READONLY | FF_FILTER, 0, 0, NULL, NULL, 0, NULL,
     "the call (its CDR) this is the recording of"},
    {"a_number", FT_TEXT, FF_READONLY | FF_SEARCH},
    {"b_number", FT_TEXT, FF_READONLY | FF_SEARCH},
    {"user_id", FT_ID, FF_READONLY | FF_FILTER, 0, 0, NULL, NULL, 0, NULL, "the user who answered"},
    {"caller_user_id", FT_ID, FF_READONLY | FF_FILTER, 0, 0, NULL, NULL, 0, NULL,
     "the user who called, for calls from inside"},
    {"group_id", FT_ID, FF_READONLY | FF_FILTER},
    {"duration_ms", FT_INT, FF_READONLY},
    {"size", FT_INT, FF_READONLY},
    {"created_at", FT_INT, FF_READONLY},
    {"expires_at", FT_INT, FF_READONLY, 0, 0, NULL, NULL, 0, NULL,
     "when the domain's retention deletes it"},
    {"path", FT_TEXT, FF_HIDDEN},
};

/* Operators and subscribers: recordings of calls they took part in. */
static bool own_calls_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    enum cw_role r = c->req->auth->role;
    if (r != ROLE_OPERATOR && r != ROLE_SUBSCRIBER) return true;
    cw_buf_puts(w, " AND (user_id = ? OR caller_user_id = ?)");
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    return true;
}

static bool recording_before_delete(struct crud_ctx *c)
{
    store_res *r;
    if (store_query(store_main(), &r, "SELECT path FROM recordings WHERE id = ?", SA_INT(c->id),
                    SA_END) >= 0 &&
        store_next(r))
        c->extra = json_pack("{s:s}", "path", store_str(r, 0));
    store_res_free(r);
    return true;
}

static void remove_audio(struct crud_ctx *c)
{
    const char *path = c->extra ? json_string_value(json_object_get(c->extra, "path")) : NULL;
    char *file = file_of(path);
    if (file) recording_remove_files(file);
    free(file);
}

static void recording_after_delete(struct crud_ctx *c)
{
    remove_audio(c);
    store_exec(store_main(), "UPDATE cdrs SET recording = NULL WHERE uuid = ?",
               SA_STR(json_string_value(json_object_get(c->old, "call_uuid"))), SA_END);
}

static void audio_link(struct crud_ctx *c, json_t *o, const char *what)
{
    char *url = cw_sprintf("/api/v1/domains/%lld/%s/%lld/audio", (long long)c->domain_id, what,
                           (long long)json_integer_value(json_object_get(o, "id")));
    json_object_set_new(o, "audio_url", json_string(url));
    free(url);
}

static void recording_decorate(struct crud_ctx *c, json_t *o)
{
    audio_link(c, o, "recordings");
}

static const struct crud_entity recordings = {.path = "recordings",
                                              .type = "recording",
                                              .label = "recording",
                                              .table = "recordings",
                                              .scope = SCOPE_DOMAIN,
                                              .where = "state = 'done'",
                                              .fields = recording_fields,
                                              .nfields = CW_ARRAY_LEN(recording_fields),
                                              .name_field = "call_uuid",
                                              .order = "created_at DESC",
                                              .read_role = ROLE_SUBSCRIBER,
                                              .write_role = ROLE_DOMAIN_ADMIN,
                                              .no_create = true,
                                              .reach = own_calls_reach,
                                              .before_delete = recording_before_delete,
                                              .after_delete = recording_after_delete,
                                              .decorate = recording_decorate};

static void recording_audio(http_req *req)
{
    char *path = visible_path(req, &recordings, "recordings");
    if (!path) return;
    char stem[64];
    snprintf(stem, sizeof stem, "recording-%s", req->params[1]);
    reply_audio(req, path, stem);
    free(path);
}

/* ------------------------------------------------------------- voicemail */

static const struct crud_field voicemail_fields[] = {
    {"owner_id", FT_ID, FF_READONLY | FF_FILTER, 0, 0, NULL, NULL, 0, NULL,
     "the user whose box it is (or null for a group box)"},
    {"group_id", FT_ID, FF_READONLY | FF_FILTER, 0, 0, NULL, NULL, 0, NULL,
     "the call-processing group whose box it is"},
    {"call_uuid", FT_TEXT, FF_READONLY},
    {"caller", FT_TEXT, FF_READONLY | FF_SEARCH},
    {"caller_name", FT_TEXT, FF_READONLY | FF_SEARCH},
    {"duration_ms", FT_INT, FF_READONLY},
    {"heard", FT_BOOL, FF_FILTER, 0, 0, NULL, NULL, 0, NULL, "listened to (settable)"},
    {"created_at", FT_INT, FF_READONLY},
    {"path", FT_TEXT, FF_HIDDEN},
};

/* Below domain admin: one's own box and the boxes of one's groups. */
static bool box_reach(struct crud_ctx *c, cw_buf *w, store_arg *args, int *n)
{
    if (cw_role_at_least(c->req->auth->role, ROLE_DOMAIN_ADMIN)) return true;
    cw_buf_puts(w, " AND (owner_id = ? OR group_id IN (SELECT group_id FROM call_group_members "
                   "WHERE user_id = ?))");
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    args[(*n)++] = SA_INT(c->req->auth->user_id);
    return true;
}

static bool voicemail_before_delete(struct crud_ctx *c)
{
    store_res *r;
    if (store_query(store_main(), &r, "SELECT path FROM voicemail_messages WHERE id = ?",
                    SA_INT(c->id), SA_END) >= 0 &&
        store_next(r))
        c->extra = json_pack("{s:s}", "path", store_str(r, 0));
    store_res_free(r);
    return true;
}

static void voicemail_decorate(struct crud_ctx *c, json_t *o)
{
    audio_link(c, o, "voicemail");
}

static const struct crud_entity voicemail = {.path = "voicemail",
                                             .type = "voicemail_message",
                                             .label = "voicemail message",
                                             .table = "voicemail_messages",
                                             .scope = SCOPE_DOMAIN,
                                             .fields = voicemail_fields,
                                             .nfields = CW_ARRAY_LEN(voicemail_fields),
                                             .name_field = "caller",
                                             .order = "created_at DESC",
                                             .read_role = ROLE_SUBSCRIBER,
                                             .write_role = ROLE_SUBSCRIBER,
                                             .no_create = true,
                                             .reach = box_reach,
                                             .before_delete = voicemail_before_delete,
                                             .after_delete = remove_audio,
                                             .decorate = voicemail_decorate};

static void voicemail_audio(http_req *req)
{
    char *path = visible_path(req, &voicemail, "voicemail_messages");
    if (!path) return;
    char stem[64];
    snprintf(stem, sizeof stem, "voicemail-%s", req->params[1]);
    reply_audio(req, path, stem);
    free(path);
}

void media_api_init(void)
{
    crud_register(&recordings);
    http_route("GET", "/api/v1/domains/:domain/recordings/:id/audio", recording_audio,
               ROLE_SUBSCRIBER, 0, "Download a call recording (?format=wav | mp3)");
    crud_register(&voicemail);
    http_route("GET", "/api/v1/domains/:domain/voicemail/:id/audio", voicemail_audio,
               ROLE_SUBSCRIBER, 0, "Download a voicemail message (?format=wav | mp3)");
}
