/*
 * sounds.c - a domain's sound files (greetings, music on hold): upload with
 * format checks, download, and the CRUD entity for names and descriptions.
 *
 * An upload is the raw file as the request body (?name=...&description=...).
 * The format is read from the bytes themselves, never from a header or a
 * file name: WAV (PCM 8/16-bit, A-law, mu-law; mono or stereo; 8-48 kHz) or
 * MP3 (MPEG audio frames, optional ID3 tags). The file is written under
 * var_dir/sounds/<domain>/ by a worker thread; the row is inserted on the
 * core thread once the file is safely on disk.
 */
#include "domain/crud.h"
#include "config/config.h"
#include "events/events.h"
#include "log/log.h"
#include "loop/work.h"

/* descriptor tables name the leading members and leave the rest zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- format checks */

struct sound_info {
    const char *format; /* "wav" or "mp3" */
    int64_t duration_ms;
};

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static const char *check_wav(const unsigned char *d, size_t n, struct sound_info *out)
{
    if (n < 12 || memcmp(d, "RIFF", 4) || memcmp(d + 8, "WAVE", 4)) return "not a WAV file";
    size_t pos = 12;
    bool have_fmt = false;
    uint16_t fmt = 0, channels = 0, bits = 0;
    uint32_t rate = 0, byte_rate = 0;
    while (pos + 8 <= n) {
        uint32_t len = le32(d + pos + 4);
        const unsigned char *body = d + pos + 8;
        size_t avail = n - pos - 8;
        if (!memcmp(d + pos, "fmt ", 4)) {
            if (len < 16 || len > avail) return "WAV fmt chunk is truncated";
            fmt = le16(body);
            channels = le16(body + 2);
            rate = le32(body + 4);
            byte_rate = le32(body + 8);
            bits = le16(body + 14);
            have_fmt = true;
        } else if (!memcmp(d + pos, "data", 4)) {
            if (!have_fmt) return "WAV data comes before its format";
            if (len > avail) return "WAV data chunk is truncated";
            bool pcm = fmt == 1 && (bits == 8 || bits == 16);
            bool g711 = (fmt == 6 || fmt == 7) && bits == 8;
            if (!pcm && !g711) return "WAV encoding must be PCM 8/16-bit, A-law or mu-law";
            if (channels < 1 || channels > 2) return "WAV must be mono or stereo";
            if (rate < 8000 || rate > 48000) return "WAV sample rate must be 8000..48000 Hz";
            if (byte_rate != rate * channels * (bits / 8u)) return "WAV byte rate is inconsistent";
            if (len == 0) return "WAV holds no audio";
            out->format = "wav";
            out->duration_ms = (int64_t)len * 1000 / byte_rate;
            return NULL;
        }
        pos += 8 + (size_t)len + (len & 1);
    }
    return have_fmt ? "WAV has no data chunk" : "WAV has no fmt chunk";
}

/* Length in bytes of the MPEG audio frame at p, with its samples and rate; 0 if none. */
static size_t mp3_frame(const unsigned char *p, size_t avail, int *samples, int *rate)
{
    static const int bitrates[2][3][16] = {
        /* MPEG-1: layer I, II, III */
        {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
         {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
         {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}},
        /* MPEG-2 and 2.5 */
        {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
         {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
         {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}}};
    static const int rates[3] = {44100, 48000, 32000};
    if (avail < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0) return 0;
    int ver = (p[1] >> 3) & 3;   /* 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5 */
    int layer = (p[1] >> 1) & 3; /* 3 = I, 2 = II, 1 = III */
    int bri = (p[2] >> 4) & 15, sri = (p[2] >> 2) & 3, pad = (p[2] >> 1) & 1;
    if (ver == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3) return 0;
    int v = ver == 3 ? 0 : 1, l = 3 - layer;
    int kbps = bitrates[v][l][bri];
    *rate = rates[sri] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    size_t len;
    if (l == 0) {
        *samples = 384;
        len = (size_t)((12 * kbps * 1000 / *rate + pad) * 4);
    } else {
        *samples = (l == 2 && v == 1) ? 576 : 1152;
        len = (size_t)(*samples / 8 * kbps * 1000 / *rate + pad);
    }
    return len >= 4 && len <= avail ? len : 0;
}

static const char *check_mp3(const unsigned char *d, size_t n, struct sound_info *out)
{
    size_t pos = 0;
    if (n >= 10 && !memcmp(d, "ID3", 3)) {
        if ((d[6] | d[7] | d[8] | d[9]) & 0x80) return "MP3 ID3 tag is malformed";
        size_t tag = (size_t)d[6] << 21 | (size_t)d[7] << 14 | (size_t)d[8] << 7 | d[9];
        pos = 10 + tag + ((d[5] & 0x10) ? 10 : 0);
        if (pos >= n) return "MP3 holds only a tag";
    }
    size_t end = n;
    if (n >= 128 && !memcmp(d + n - 128, "TAG", 3)) end = n - 128;
    int64_t frames = 0, total_samples = 0;
    int rate = 0;
    while (pos < end) {
        int s, r;
        size_t len = mp3_frame(d + pos, end - pos, &s, &r);
        if (!len) break;
        if (rate && r != rate) return "MP3 changes sample rate between frames";
        rate = r;
        total_samples += s;
        frames++;
        pos += len;
    }
    if (frames < 2 || end - pos > 1024) return "not an MP3 file (no run of MPEG audio frames)";
    out->format = "mp3";
    out->duration_ms = total_samples * 1000 / rate;
    return NULL;
}

/* ---------------------------------------------------------------- entity */

static const struct crud_field sound_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"description", FT_TEXT, FF_SEARCH, 0, 200},
    {"format", FT_TEXT, FF_READONLY | FF_FILTER},
    {"size", FT_INT, FF_READONLY},
    {"duration_ms", FT_INT, FF_READONLY},
    {"path", FT_TEXT, FF_HIDDEN},
    {"created_at", FT_INT, FF_READONLY},
};

struct file_job {
    char *dir, *path;
    unsigned char *data;
    size_t len;
    int rc;
    char error[128];
    /* upload */
    http_req *req;
    int64_t domain_id;
    char *name, *description;
    struct sound_info info;
};

static void unlink_run(void *arg)
{
    struct file_job *j = arg;
    if (unlink(j->path) && errno != ENOENT) log_warn("api", "cannot remove %s", j->path);
}

static void job_free(void *arg)
{
    struct file_job *j = arg;
    free(j->dir);
    free(j->path);
    free(j->data);
    free(j->name);
    free(j->description);
    free(j);
}

static void remove_file(const char *path)
{
    struct file_job *j = cw_calloc(1, sizeof *j);
    j->path = cw_strdup(path);
    work_submit(unlink_run, job_free, j);
}

static void sound_after_delete(struct crud_ctx *c)
{
    const char *path = c->extra ? json_string_value(json_object_get(c->extra, "path")) : NULL;
    if (path) remove_file(path);
}

static bool sound_before_delete(struct crud_ctx *c)
{
    if (!routing_not_referenced(c, "sound_file")) return false;
    store_res *r;
    if (store_query(store_main(), &r, "SELECT path FROM sound_files WHERE id = ?", SA_INT(c->id),
                    SA_END) >= 0 &&
        store_next(r))
        c->extra = json_pack("{s:s}", "path", store_str(r, 0));
    store_res_free(r);
    return true;
}

static const struct crud_entity sounds = {.path = "sounds",
                                          .type = "sound_file",
                                          .label = "sound file",
                                          .table = "sound_files",
                                          .scope = SCOPE_DOMAIN,
                                          .fields = sound_fields,
                                          .nfields = CW_ARRAY_LEN(sound_fields),
                                          .name_field = "name",
                                          .order = "name",
                                          .read_role = ROLE_SUPERVISOR,
                                          .write_role = ROLE_DOMAIN_ADMIN,
                                          .created_at = true,
                                          .no_create = true,
                                          .before_delete = sound_before_delete,
                                          .after_delete = sound_after_delete};

/* ---------------------------------------------------------------- upload */

static int mkdir_p(const char *dir)
{
    char *p = cw_strdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0750) && errno != EEXIST) {
            free(p);
            return CW_EIO;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0750) && errno != EEXIST ? CW_EIO : CW_OK;
    free(p);
    return rc;
}

/* Worker: write the bytes to a temporary name, then rename into place. */
static void write_run(void *arg)
{
    struct file_job *j = arg;
    if (mkdir_p(j->dir)) {
        j->rc = CW_EIO;
        snprintf(j->error, sizeof j->error, "cannot create the sound folder");
        return;
    }
    char *tmp = cw_sprintf("%s.part", j->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    size_t off = 0;
    while (fd >= 0 && off < j->len) {
        ssize_t w = write(fd, j->data + off, j->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    bool ok = fd >= 0 && off == j->len && fsync(fd) == 0;
    if (fd >= 0 && close(fd)) ok = false;
    if (ok && rename(tmp, j->path)) ok = false;
    if (!ok) {
        unlink(tmp);
        j->rc = CW_EIO;
        snprintf(j->error, sizeof j->error, "cannot write the sound file");
    }
    free(tmp);
    free(j->data); /* the bytes are on disk; free them on this thread */
    j->data = NULL;
}

/* Core thread: the file is on disk (or not); record it. */
static void write_done(void *arg)
{
    struct file_job *j = arg;
    http_req *req = j->req;
    struct crud_ctx cx = {
        .req = req, .e = &sounds, .scope_id = j->domain_id, .domain_id = j->domain_id};
    if (j->rc) {
        log_error("api", "sound upload: %s (%s)", j->error, j->path);
        http_reply_error(req, 500, "io", NULL, "%s", j->error);
        job_free(j);
        return;
    }
    store *st = store_main();
    store_begin(st);
    store_res *r;
    int rc =
        store_query(st, &r,
                    "INSERT INTO sound_files(domain_id, name, description, format, size, "
                    "duration_ms, path, created_at) VALUES(?,?,?,?,?,?,?,?) RETURNING id",
                    SA_INT(j->domain_id), SA_STR(j->name), SA_STR(j->description),
                    SA_STR(j->info.format), SA_INT((int64_t)j->len), SA_INT(j->info.duration_ms),
                    SA_STR(j->path), SA_INT(cw_wall_time()), SA_END);
    if (rc < 0 || !store_next(r)) {
        store_res_free(r);
        store_rollback(st);
        remove_file(j->path);
        if (rc == CW_EEXIST)
            http_reply_error(req, 409, "conflict", "name", "name \"%s\" is already taken", j->name);
        else
            crud_store_fail(&cx, rc < 0 ? rc : CW_EIO);
        job_free(j);
        return;
    }
    cx.id = store_int(r, 0);
    store_res_free(r);
    json_t *obj = crud_fetch(&cx, cx.id);
    http_audit(req, j->domain_id, "sound_file", j->name, "add", json_deep_copy(obj));
    store_commit(st);
    events_emit("config.sound_file.created", j->domain_id,
                json_pack("{s:I,s:s}", "id", (json_int_t)cx.id, "name", j->name));
    http_reply_json(req, 201, obj);
    job_free(j);
}

static void upload(http_req *req)
{
    static const char *const allowed[] = {"name", "description", NULL};
    int64_t domain;
    if (!http_domain_param(req, 0, &domain) || !http_query_only(req, allowed)) return;
    const char *name = http_query(req, "name");
    const char *desc = http_query(req, "description");
    if (!name || !*name || strlen(name) > 64 || strchr(name, '\n')) {
        http_reply_error(req, 400, "invalid_parameter", "name",
                         "name (1..64 characters) is required in the query");
        return;
    }
    if (desc && strlen(desc) > 200) {
        http_reply_error(req, 400, "invalid_parameter", "description",
                         "description is at most 200 characters");
        return;
    }
    size_t len;
    const unsigned char *data = http_body(req, &len);
    if (!data) {
        http_reply_error(req, 400, "empty_body", NULL, "send the WAV or MP3 file as the body");
        return;
    }
    struct sound_info info = {0};
    const char *why = len >= 4 && !memcmp(data, "RIFF", 4) ? check_wav(data, len, &info)
                                                           : check_mp3(data, len, &info);
    if (why) {
        http_reply_error(req, 415, "bad_sound_format", NULL, "%s", why);
        return;
    }
    int64_t one;
    if (store_query_int(store_main(), &one,
                        "SELECT 1 FROM sound_files WHERE domain_id = ? AND name = ?",
                        SA_INT(domain), SA_STR(name), SA_END) == CW_OK) {
        http_reply_error(req, 409, "conflict", "name", "name \"%s\" is already taken", name);
        return;
    }
    store_res *r;
    char dname[256] = "";
    if (store_query(store_main(), &r, "SELECT name FROM domains WHERE id = ?", SA_INT(domain),
                    SA_END) >= 0 &&
        store_next(r))
        cw_strlcpy(dname, store_str(r, 0), sizeof dname);
    store_res_free(r);
    unsigned char rnd[12];
    char hex[25];
    cw_random_bytes(rnd, sizeof rnd);
    cw_hex(rnd, sizeof rnd, hex);
    struct file_job *j = cw_calloc(1, sizeof *j);
    j->req = req;
    j->domain_id = domain;
    j->info = info;
    j->name = cw_strdup(name);
    j->description = cw_strdup(desc ? desc : "");
    j->dir = cw_sprintf("%s/sounds/%s", config_str("var_dir"), dname);
    j->path = cw_sprintf("%s/%s.%s", j->dir, hex, info.format);
    j->data = cw_malloc(len);
    memcpy(j->data, data, len);
    j->len = len;
    http_async(req);
    work_submit(write_run, write_done, j);
}

static void download(http_req *req)
{
    int64_t domain, id;
    if (!http_domain_param(req, 0, &domain)) return;
    store_res *r;
    if (cw_parse_i64(req->params[1], &id) ||
        store_query(store_main(), &r,
                    "SELECT path, format, name FROM sound_files WHERE id = ? AND domain_id = ?",
                    SA_INT(id), SA_INT(domain), SA_END) < 0) {
        http_reply_error(req, 404, "not_found", NULL, "no such sound file");
        return;
    }
    if (!store_next(r)) {
        store_res_free(r);
        http_reply_error(req, 404, "not_found", NULL, "no such sound file");
        return;
    }
    char *fname = cw_sprintf("sound-%lld.%s", (long long)id, store_str(r, 1));
    http_reply_file(req, store_str(r, 0),
                    !strcmp(store_str(r, 1), "wav") ? "audio/wav" : "audio/mpeg", fname);
    free(fname);
    store_res_free(r);
}

void sounds_api_init(void)
{
    crud_register(&sounds);
    http_route("POST", "/api/v1/domains/:domain/sounds", upload, ROLE_DOMAIN_ADMIN, HTTP_UPLOAD,
               "Upload a WAV or MP3 file as the body (?name=&description=); format and size "
               "are checked");
    http_route("GET", "/api/v1/domains/:domain/sounds/:id/file", download, ROLE_SUPERVISOR, 0,
               "Download a sound file");
}
