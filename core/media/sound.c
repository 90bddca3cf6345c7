/*
 * sound.c - sound files: WAV and MP3 decoding, conversion to 8 kHz mono with
 * an on-disk cache, the shared in-memory cache of loaded sounds, the WAV
 * writer used by recording, music-on-hold streams and MP3 export.
 *
 * Called from media workers (loading prompts) and from the core thread
 * (definitions, upload checks). The two caches are guarded by one mutex each;
 * a loaded sound is immutable and reference-counted, so players share it
 * without locks.
 */
#include "media/media.h"
#include "media/media_int.h"
#include "base/cw.h"
#include "log/log.h"

#include <errno.h>
#include <lame/lame.h>
#include <mpg123.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct media_settings media_cfg = {.tone_locale = "ru", .sounds_dir = "sounds", .var_dir = "var"};

#define MAX_SOUND_BYTES (256u << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void sound_set_dirs(const char *sounds_dir, const char *var_dir)
{
    if (sounds_dir && *sounds_dir)
        cw_strlcpy(media_cfg.sounds_dir, sounds_dir, sizeof media_cfg.sounds_dir);
    if (var_dir && *var_dir) cw_strlcpy(media_cfg.var_dir, var_dir, sizeof media_cfg.var_dir);
}

int sound_resolve(const char *name, char *dst, size_t dstlen)
{
    if (!name || !*name || strstr(name, "..")) return CW_EINVAL;
    const char *ext = strrchr(name, '.');
    bool has_ext = ext && strchr(ext, '/') == NULL;
    int n;
    if (name[0] == '/')
        n = snprintf(dst, dstlen, "%s", name);
    else
        n = snprintf(dst, dstlen, "%s/%s%s", media_cfg.sounds_dir, name, has_ext ? "" : ".wav");
    return n < 0 || (size_t)n >= dstlen ? CW_EINVAL : CW_OK;
}

/* ---- reading whole files ---- */

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? CW_ENOENT : CW_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_SOUND_BYTES) {
        fclose(f);
        seterr(err, errlen, "%s: not a regular file or larger than 256 MiB", path);
        return CW_EINVAL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = cw_malloc(n ? n : 1);
    if (fread(b, 1, n, f) != n) {
        fclose(f);
        free(b);
        seterr(err, errlen, "%s: read error", path);
        return CW_EIO;
    }
    fclose(f);
    *out = b;
    *len = n;
    return CW_OK;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ---- WAV ---- */

static int wav_decode(const uint8_t *b, size_t len, int16_t **pcm, size_t *frames, int *rate,
                      int *channels, char *format, size_t fmtlen, char *err, size_t errlen)
{
    if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4)) {
        seterr(err, errlen, "not a RIFF/WAVE file");
        return CW_EINVAL;
    }
    const uint8_t *fmt = NULL, *data = NULL;
    size_t fmt_len = 0, data_len = 0;
    size_t off = 12;
    while (off + 8 <= len) {
        uint32_t clen = le32(b + off + 4);
        const uint8_t *c = b + off + 8;
        size_t avail = len - off - 8;
        if (!memcmp(b + off, "fmt ", 4)) {
            if (clen > avail) break;
            fmt = c;
            fmt_len = clen;
        } else if (!memcmp(b + off, "data", 4)) {
            data = c;
            data_len = clen > avail ? avail : clen; /* tolerate a truncated last chunk */
            break;
        }
        if (clen > avail) break;
        off += 8 + (size_t)clen + (clen & 1);
    }
    if (!fmt || fmt_len < 16) {
        seterr(err, errlen, "WAV without a valid fmt chunk");
        return CW_EINVAL;
    }
    if (!data) {
        seterr(err, errlen, "WAV without a data chunk");
        return CW_EINVAL;
    }
    int tag = le16(fmt);
    int ch = le16(fmt + 2);
    uint32_t sr = le32(fmt + 4);
    int align = le16(fmt + 12);
    int bits = le16(fmt + 14);
    if (tag == 0xFFFE && fmt_len >= 40) tag = le16(fmt + 24); /* WAVE_FORMAT_EXTENSIBLE */
    if (ch < 1 || ch > 8 || sr < 1000 || sr > 384000) {
        seterr(err, errlen, "WAV with %d channels at %u Hz is not supported", ch, sr);
        return CW_EINVAL;
    }
    const char *kind;
    int bps;
    if (tag == 1 && (bits == 8 || bits == 16 || bits == 24 || bits == 32)) {
        kind = bits == 8 ? "pcm8" : bits == 16 ? "pcm16" : bits == 24 ? "pcm24" : "pcm32";
        bps = bits / 8;
    } else if (tag == 3 && (bits == 32 || bits == 64)) {
        kind = bits == 32 ? "float32" : "float64";
        bps = bits / 8;
    } else if ((tag == 6 || tag == 7) && bits == 8) {
        kind = tag == 6 ? "alaw" : "ulaw";
        bps = 1;
    } else {
        seterr(err, errlen, "WAV encoding %d with %d bits is not supported", tag, bits);
        return CW_EINVAL;
    }
    if (align != ch * bps) {
        seterr(err, errlen, "WAV block align %d does not match %d channels of %d bits", align, ch,
               bits);
        return CW_EINVAL;
    }
    size_t nf = data_len / (size_t)align;
    size_t nsamp = nf * (size_t)ch;
    int16_t *o = cw_malloc(nsamp > 0 ? nsamp * sizeof *o : sizeof *o);
    const uint8_t *p = data;
    for (size_t i = 0; i < nf * (size_t)ch; i++, p += bps) {
        int32_t v;
        switch (tag) {
        case 1:
            if (bits == 8)
                v = ((int)p[0] - 128) << 8;
            else if (bits == 16)
                v = (int16_t)le16(p);
            else if (bits == 24)
                v = (int16_t)(p[1] | (p[2] << 8));
            else
                v = (int16_t)le16(p + 2);
            break;
        case 3: {
            double f;
            if (bits == 32) {
                uint32_t u = le32(p);
                float ff;
                memcpy(&ff, &u, 4);
                f = ff;
            } else {
                uint64_t u = le32(p) | ((uint64_t)le32(p + 4) << 32);
                memcpy(&f, &u, 8);
            }
            if (!(f == f)) f = 0; /* NaN */
            v = (int32_t)(f * 32767.0);
            break;
        }
        case 6:
            v = g711_alaw_decode(p[0]);
            break;
        default:
            v = g711_ulaw_decode(p[0]);
            break;
        }
        o[i] = dsp_clip16(v);
    }
    *pcm = o;
    *frames = nf;
    *rate = (int)sr;
    *channels = ch;
    if (format) snprintf(format, fmtlen, "wav %s %u Hz %d ch", kind, sr, ch);
    return CW_OK;
}

/* ---- MP3 (libmpg123) ---- */

static pthread_once_t mpg_once = PTHREAD_ONCE_INIT;
static void mpg_init(void)
{
    mpg123_init();
}

static bool looks_like_mp3(const uint8_t *b, size_t len)
{
    if (len >= 3 && !memcmp(b, "ID3", 3)) return true;
    return len >= 2 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0;
}

static int mp3_decode(const uint8_t *b, size_t len, int16_t **pcm, size_t *frames, int *rate,
                      int *channels, char *format, size_t fmtlen, char *err, size_t errlen)
{
    pthread_once(&mpg_once, mpg_init);
    int e = 0;
    mpg123_handle *mh = mpg123_new(NULL, &e);
    if (!mh) {
        seterr(err, errlen, "mp3 decoder: %s", mpg123_plain_strerror(e));
        return CW_EIO;
    }
    mpg123_param(mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0);
    mpg123_format_none(mh);
    const long *rates;
    size_t nrates;
    mpg123_rates(&rates, &nrates);
    for (size_t i = 0; i < nrates; i++)
        mpg123_format(mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_SIGNED_16);
    int rc = CW_EINVAL;
    cw_buf out;
    cw_buf_init(&out);
    long r = 0;
    int ch = 0, enc = 0;
    if (mpg123_open_feed(mh) != MPG123_OK) goto done;
    unsigned char buf[16384];
    size_t got = 0;
    int st = mpg123_decode(mh, b, len, buf, sizeof buf, &got);
    for (;;) {
        if (st == MPG123_NEW_FORMAT) mpg123_getformat(mh, &r, &ch, &enc);
        if (got) cw_buf_append(&out, buf, got);
        if (st == MPG123_ERR) {
            seterr(err, errlen, "mp3: %s", mpg123_strerror(mh));
            goto done;
        }
        if (st == MPG123_NEED_MORE || st == MPG123_DONE) break;
        st = mpg123_decode(mh, NULL, 0, buf, sizeof buf, &got);
    }
    if (r <= 0 || ch <= 0 || out.len < 2 * (size_t)ch) {
        seterr(err, errlen, "mp3: no audio frames");
        goto done;
    }
    *frames = out.len / (2 * (size_t)ch);
    *pcm = (int16_t *)cw_buf_steal(&out);
    *rate = (int)r;
    *channels = ch;
    if (format) snprintf(format, fmtlen, "mp3 %ld Hz %d ch", r, ch);
    rc = CW_OK;
done:
    cw_buf_free(&out);
    mpg123_delete(mh);
    return rc;
}

int sound_decode(const char *path, int16_t **pcm, size_t *frames, int *rate, int *channels,
                 char *format, size_t fmtlen, char *err, size_t errlen)
{
    uint8_t *b;
    size_t len;
    int rc = read_file(path, &b, &len, err, errlen);
    if (rc) return rc;
    if (len >= 12 && !memcmp(b, "RIFF", 4))
        rc = wav_decode(b, len, pcm, frames, rate, channels, format, fmtlen, err, errlen);
    else if (looks_like_mp3(b, len))
        rc = mp3_decode(b, len, pcm, frames, rate, channels, format, fmtlen, err, errlen);
    else {
        seterr(err, errlen, "unsupported sound format (WAV or MP3 expected)");
        rc = CW_EINVAL;
    }
    free(b);
    return rc;
}

/* Downmix and resample to 8 kHz mono; frees in. */
static int16_t *to_engine_form(int16_t *in, size_t frames, int rate, int ch, size_t *out_n)
{
    if (ch > 1) {
        for (size_t i = 0; i < frames; i++) {
            int32_t s = 0;
            for (int c = 0; c < ch; c++)
                s += in[i * (size_t)ch + (size_t)c];
            in[i] = dsp_clip16(s / ch);
        }
    }
    if (rate == MEDIA_RATE) {
        *out_n = frames;
        return in;
    }
    int16_t *o = dsp_resample(in, frames, rate, MEDIA_RATE, out_n);
    free(in);
    return o;
}

/* ---- WAV writer ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void wav_header(uint8_t *h, int channels, int rate, uint32_t frames)
{
    uint32_t data = frames * (uint32_t)channels * 2;
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    h[20] = 1;
    h[21] = 0;
    h[22] = (uint8_t)channels;
    h[23] = 0;
    put_le32(h + 24, (uint32_t)rate);
    put_le32(h + 28, (uint32_t)(rate * channels * 2));
    h[32] = (uint8_t)(channels * 2);
    h[33] = 0;
    h[34] = 16;
    h[35] = 0;
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data);
}

int wav_writer_open(struct wav_writer *w, const char *path, int channels, int rate)
{
    memset(w, 0, sizeof *w);
    w->f = fopen(path, "wb");
    if (!w->f) return CW_EIO;
    w->channels = channels;
    uint8_t h[44];
    wav_header(h, channels, rate, 0);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        fclose(w->f);
        w->f = NULL;
        return CW_EIO;
    }
    return CW_OK;
}

int wav_writer_write(struct wav_writer *w, const int16_t *s, int frames)
{
    if (!w->f) return CW_EIO;
    size_t n = (size_t)frames * (size_t)w->channels;
    if (fwrite(s, sizeof *s, n, w->f) != n) return CW_EIO;
    w->frames += (uint32_t)frames;
    return CW_OK;
}

int wav_writer_close(struct wav_writer *w)
{
    if (!w->f) return CW_EIO;
    uint8_t h[44];
    wav_header(h, w->channels, MEDIA_RATE, w->frames);
    int rc = CW_OK;
    if (fseek(w->f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, w->f) != sizeof h) rc = CW_EIO;
    if (fclose(w->f)) rc = CW_EIO;
    w->f = NULL;
    return rc;
}

static int write_wav_file(const char *path, const int16_t *pcm, size_t n)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    struct wav_writer w;
    if (wav_writer_open(&w, tmp, 1, MEDIA_RATE)) return CW_EIO;
    int rc = wav_writer_write(&w, pcm, (int)n);
    if (wav_writer_close(&w)) rc = CW_EIO;
    if (!rc && rename(tmp, path)) rc = CW_EIO;
    if (rc) unlink(tmp);
    return rc;
}

/* ---- loaded sounds: memory cache plus converted files on disk ---- */

struct cached {
    struct sound *snd;
    int64_t mtime_ns;
    off_t size;
    struct cached *next;
};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache_head;

static struct sound *sound_ref(struct sound *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void sound_unref(struct sound *s)
{
    if (!s) return;
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(s->pcm);
        free(s->path);
        free(s);
    }
}

void sound_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    struct cached *c = cache_head;
    cache_head = NULL;
    pthread_mutex_unlock(&cache_lock);
    while (c) {
        struct cached *n = c->next;
        sound_unref(c->snd);
        free(c);
        c = n;
    }
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void mkdirs(const char *dir)
{
    char tmp[1024];
    cw_strlcpy(tmp, dir, sizeof tmp);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0750);
            *p = '/';
        }
    }
    mkdir(tmp, 0750);
}

/* Where the converted copy of path (as it is now) lives. */
static void disk_cache_path(const char *path, const struct stat *st, char *out, size_t outlen)
{
    uint64_t h = fnv1a(path, strlen(path), 1469598103934665603ull);
    int64_t key[2] = {(int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                      (int64_t)st->st_size};
    h = fnv1a(key, sizeof key, h);
    snprintf(out, outlen, "%s/cache/sounds/%016llx.wav", media_cfg.var_dir, (unsigned long long)h);
}

/* The 8 kHz mono samples of path, from the disk cache or converted now. */
static int load_engine_form(const char *path, const struct stat *st, int16_t **pcm, size_t *n,
                            char *err, size_t errlen)
{
    int16_t *raw;
    size_t frames;
    int rate, ch;
    char cache_path[1100];
    disk_cache_path(path, st, cache_path, sizeof cache_path);
    if (access(cache_path, R_OK) == 0 &&
        !sound_decode(cache_path, &raw, &frames, &rate, &ch, NULL, 0, NULL, 0)) {
        if (rate == MEDIA_RATE && ch == 1) {
            *pcm = raw;
            *n = frames;
            return CW_OK;
        }
        free(raw);
    }
    int rc = sound_decode(path, &raw, &frames, &rate, &ch, NULL, 0, err, errlen);
    if (rc) return rc;
    if (rate == MEDIA_RATE && ch == 1) { /* already in the engine's form */
        *pcm = raw;
        *n = frames;
        return CW_OK;
    }
    *pcm = to_engine_form(raw, frames, rate, ch, n);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cache/sounds", media_cfg.var_dir);
    mkdirs(dir);
    if (write_wav_file(cache_path, *pcm, *n))
        log_warn("media", "cannot write converted sound %s", cache_path);
    else
        log_info("media", "converted %s (%d Hz, %d ch) to 8 kHz mono: %s", path, rate, ch,
                 cache_path);
    return CW_OK;
}

static void disk_cache_path(const char *path, const struct stat *st, char *out, size_t outlen);

bool sound_is_quick(const char *path)
{
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return true; /* fails fast */
    if (st.st_size < (256 << 10)) return true;
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    bool hit = false;
    pthread_mutex_lock(&cache_lock);
    for (struct cached *c = cache_head; c && !hit; c = c->next)
        hit = !strcmp(c->snd->path, path) && c->mtime_ns == mt && c->size == st.st_size;
    pthread_mutex_unlock(&cache_lock);
    if (hit) return true;
    char cp[1100];
    disk_cache_path(path, &st, cp, sizeof cp);
    return access(cp, R_OK) == 0;
}

struct sound *sound_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) {
        seterr(err, errlen, "no such sound file: %s", path);
        return NULL;
    }
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    pthread_mutex_lock(&cache_lock);
    for (struct cached *c = cache_head; c; c = c->next) {
        if (!strcmp(c->snd->path, path)) {
            if (c->mtime_ns == mt && c->size == st.st_size) {
                struct sound *s = sound_ref(c->snd);
                pthread_mutex_unlock(&cache_lock);
                return s;
            }
            break; /* changed on disk: load again below */
        }
    }
    pthread_mutex_unlock(&cache_lock);

    int16_t *pcm;
    size_t n;
    if (load_engine_form(path, &st, &pcm, &n, err, errlen)) return NULL;
    struct sound *s = cw_calloc(1, sizeof *s);
    s->refs = 1;
    s->pcm = pcm;
    s->n = n;
    s->path = cw_strdup(path);

    pthread_mutex_lock(&cache_lock);
    struct cached **pp = &cache_head;
    while (*pp && strcmp((*pp)->snd->path, path))
        pp = &(*pp)->next;
    if (*pp) { /* replace a stale or concurrently loaded entry */
        sound_unref((*pp)->snd);
    } else {
        *pp = cw_calloc(1, sizeof **pp);
    }
    (*pp)->snd = sound_ref(s);
    (*pp)->mtime_ns = mt;
    (*pp)->size = st.st_size;
    pthread_mutex_unlock(&cache_lock);
    return s;
}

/* ---- music on hold ---- */

struct moh_stream {
    int refs;
    char name[64];
    char **files;
    int nfiles;
    bool loaded, failed;
    int16_t *pcm;
    uint8_t *ulaw, *alaw;
    size_t n; /* samples, a multiple of MEDIA_FRAME */
    int64_t epoch_ms;
    int decodes;
    struct moh_stream *next;
};
static pthread_mutex_t moh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct moh_stream *moh_head;
static const int16_t silence_pcm[MEDIA_FRAME];
static uint8_t silence_ulaw[MEDIA_FRAME], silence_alaw[MEDIA_FRAME];

static void moh_free(struct moh_stream *m)
{
    for (int i = 0; i < m->nfiles; i++)
        free(m->files[i]);
    free(m->files);
    free(m->pcm);
    free(m->ulaw);
    free(m->alaw);
    free(m);
}

void moh_unref(struct moh_stream *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) moh_free(m);
}

static struct moh_stream *moh_new(const char *name, const char *const *files, int nfiles)
{
    struct moh_stream *m = cw_calloc(1, sizeof *m);
    m->refs = 1; /* the table's */
    cw_strlcpy(m->name, name, sizeof m->name);
    m->files = cw_calloc((size_t)nfiles, sizeof *m->files);
    for (int i = 0; i < nfiles; i++) {
        char path[1024];
        if (sound_resolve(files[i], path, sizeof path)) cw_strlcpy(path, files[i], sizeof path);
        m->files[i] = cw_strdup(path);
    }
    m->nfiles = nfiles;
    m->epoch_ms = cw_mono_ms();
    return m;
}

int moh_define(const char *name, const char *const *files, int nfiles)
{
    if (!name || !*name || strlen(name) >= 64 || nfiles < 1) return CW_EINVAL;
    for (int i = 0; i < nfiles; i++)
        if (!files[i] || !*files[i]) return CW_EINVAL;
    struct moh_stream *m = moh_new(name, files, nfiles);
    pthread_mutex_lock(&moh_lock);
    struct moh_stream **pp = &moh_head;
    while (*pp && strcmp((*pp)->name, name))
        pp = &(*pp)->next;
    if (*pp) {
        struct moh_stream *old = *pp;
        m->next = old->next;
        m->decodes = old->decodes;
        *pp = m;
        moh_unref(old);
    } else {
        m->next = moh_head;
        moh_head = m;
    }
    pthread_mutex_unlock(&moh_lock);
    return CW_OK;
}

/* Decode a stream's files once (called with moh_lock held). */
static void moh_load(struct moh_stream *m)
{
    cw_buf all;
    cw_buf_init(&all);
    for (int i = 0; i < m->nfiles; i++) {
        char err[256];
        struct sound *s = sound_load(m->files[i], err, sizeof err);
        if (!s) {
            log_warn("media", "music on hold '%s': %s", m->name, err);
            continue;
        }
        cw_buf_append(&all, s->pcm, s->n * sizeof(int16_t));
        sound_unref(s);
    }
    m->decodes++;
    size_t n = all.len / sizeof(int16_t);
    if (n < MEDIA_FRAME) {
        cw_buf_free(&all);
        m->failed = true;
        m->loaded = true;
        return;
    }
    n -= n % MEDIA_FRAME;
    m->pcm = (int16_t *)cw_buf_steal(&all);
    m->n = n;
    m->ulaw = cw_malloc(n);
    m->alaw = cw_malloc(n);
    g711_encode_frame(MEDIA_PCMU, m->pcm, m->ulaw, (int)n);
    g711_encode_frame(MEDIA_PCMA, m->pcm, m->alaw, (int)n);
    m->loaded = true;
    log_info("media", "music on hold '%s': %zu s decoded once for all listeners", m->name,
             n / MEDIA_RATE);
}

struct moh_stream *moh_get(const char *name)
{
    if (!name || !*name || strlen(name) >= 64 || strchr(name, '/') || strstr(name, ".."))
        return NULL;
    pthread_mutex_lock(&moh_lock);
    struct moh_stream *m = moh_head;
    while (m && strcmp(m->name, name))
        m = m->next;
    if (!m) { /* not defined: the stock track of that name, if there is one */
        char rel[128], path[1024];
        snprintf(rel, sizeof rel, "moh/%s.wav", name);
        if (!sound_resolve(rel, path, sizeof path) && access(path, R_OK) == 0) {
            const char *f = path;
            m = moh_new(name, &f, 1);
            m->next = moh_head;
            moh_head = m;
        }
    }
    if (m && !m->loaded) moh_load(m);
    if (m && m->failed) m = NULL;
    if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&moh_lock);
    return m;
}

void moh_frame(struct moh_stream *m, int64_t now_ms, const int16_t **pcm, const uint8_t **ulaw,
               const uint8_t **alaw)
{
    if (!m || !m->n) {
        silence_ulaw[0] = 0; /* force the arrays into existence */
        memset(silence_ulaw, 0xFF, sizeof silence_ulaw);
        memset(silence_alaw, 0xD5, sizeof silence_alaw);
        *pcm = silence_pcm;
        *ulaw = silence_ulaw;
        *alaw = silence_alaw;
        return;
    }
    size_t nframes = m->n / MEDIA_FRAME;
    int64_t t = now_ms - m->epoch_ms;
    if (t < 0) t = 0;
    size_t off = (size_t)((t / 20) % (int64_t)nframes) * MEDIA_FRAME;
    *pcm = m->pcm + off;
    *ulaw = m->ulaw + off;
    *alaw = m->alaw + off;
}

bool moh_is_loaded(const char *name)
{
    pthread_mutex_lock(&moh_lock);
    bool loaded = false;
    for (struct moh_stream *m = moh_head; m; m = m->next)
        if (!strcmp(m->name, name)) loaded = m->loaded;
    pthread_mutex_unlock(&moh_lock);
    return loaded;
}

int moh_decode_count(const char *name)
{
    pthread_mutex_lock(&moh_lock);
    int n = -1;
    for (struct moh_stream *m = moh_head; m; m = m->next)
        if (!strcmp(m->name, name)) n = m->decodes;
    pthread_mutex_unlock(&moh_lock);
    return n;
}

void moh_clear_all(void)
{
    pthread_mutex_lock(&moh_lock);
    struct moh_stream *m = moh_head;
    moh_head = NULL;
    pthread_mutex_unlock(&moh_lock);
    while (m) {
        struct moh_stream *n = m->next;
        moh_unref(m);
        m = n;
    }
}

/* ---- public helpers: upload check and MP3 export ---- */

int media_sound_check(const char *path, char *format, size_t fmtlen, int64_t *duration_ms,
                      char *err, size_t errlen)
{
    int16_t *pcm;
    size_t frames;
    int rate, ch;
    char fmt[96];
    int rc = sound_decode(path, &pcm, &frames, &rate, &ch, fmt, sizeof fmt, err, errlen);
    if (rc) return rc == CW_ENOENT ? CW_ENOENT : CW_EINVAL;
    free(pcm);
    if (frames == 0) {
        seterr(err, errlen, "the file holds no audio");
        return CW_EINVAL;
    }
    if (format) cw_strlcpy(format, fmt, fmtlen);
    if (duration_ms) *duration_ms = (int64_t)frames * 1000 / rate;
    struct sound *s = sound_load(path, err, errlen); /* convert and cache now, off the call path */
    if (!s) return CW_EINVAL;
    sound_unref(s);
    return CW_OK;
}

int media_export_mp3(const char *src, const char *dst, int kbps, char *err, size_t errlen)
{
    int16_t *pcm;
    size_t frames;
    int rate, ch;
    int rc = sound_decode(src, &pcm, &frames, &rate, &ch, NULL, 0, err, errlen);
    if (rc) return rc;
    if (ch > 2) {
        free(pcm);
        seterr(err, errlen, "MP3 export takes mono or stereo, not %d channels", ch);
        return CW_EINVAL;
    }
    lame_global_flags *gf = lame_init();
    if (!gf) {
        free(pcm);
        seterr(err, errlen, "lame_init failed");
        return CW_ENOMEM;
    }
    lame_set_in_samplerate(gf, rate);
    lame_set_num_channels(gf, ch);
    lame_set_mode(gf, ch == 1 ? MONO : JOINT_STEREO);
    lame_set_brate(gf, kbps > 0 ? kbps : (ch == 1 ? 32 : 48));
    lame_set_quality(gf, 5);
    if (lame_init_params(gf) < 0) {
        lame_close(gf);
        free(pcm);
        seterr(err, errlen, "MP3 encoder refused %d Hz, %d channels", rate, ch);
        return CW_EINVAL;
    }
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", dst, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lame_close(gf);
        free(pcm);
        seterr(err, errlen, "cannot create %s: %s", dst, strerror(errno));
        return CW_EIO;
    }
    size_t cap = 8192 * 5 / 4 + 7200;
    unsigned char *mp3 = cw_malloc(cap);
    rc = CW_OK;
    for (size_t off = 0; off < frames && !rc; off += 8192) {
        int n = (int)CW_MIN((size_t)8192, frames - off);
        int w = ch == 2 ? lame_encode_buffer_interleaved(gf, pcm + off * 2, n, mp3, (int)cap)
                        : lame_encode_buffer(gf, pcm + off, pcm + off, n, mp3, (int)cap);
        if (w < 0 || fwrite(mp3, 1, (size_t)w, f) != (size_t)w) rc = CW_EIO;
    }
    int w = lame_encode_flush(gf, mp3, (int)cap);
    if (!rc && (w < 0 || fwrite(mp3, 1, (size_t)w, f) != (size_t)w)) rc = CW_EIO;
    if (fclose(f)) rc = CW_EIO;
    if (!rc && rename(tmp, dst)) rc = CW_EIO;
    if (rc) {
        unlink(tmp);
        seterr(err, errlen, "writing %s failed", dst);
    }
    free(mp3);
    free(pcm);
    lame_close(gf);
    return rc;
}
