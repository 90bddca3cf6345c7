/*
 * sdp.c - parse, negotiate and write the audio part of SDP (RFC 4566/3264).
 *
 * The parser walks the text line by line with explicit lengths (the body
 * need not be NUL-terminated), keeps the session-level connection address
 * and direction, and reads only the first m=audio section. Anything it does
 * not understand is skipped; anything out of range makes the offer unusable.
 */
#include "sip/sdp.h"
#include "base/cw.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct span {
    const char *p;
    size_t n;
};

static bool span_eq(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Next space-separated token of s; false when none is left. */
static bool next_token(struct span *s, struct span *tok)
{
    while (s->n && (*s->p == ' ' || *s->p == '\t'))
        s->p++, s->n--;
    if (!s->n) return false;
    tok->p = s->p;
    while (s->n && *s->p != ' ' && *s->p != '\t')
        s->p++, s->n--;
    tok->n = (size_t)(s->p - tok->p);
    return true;
}

/* A whole decimal number in [0, max]; -1 otherwise. */
static long span_num(struct span s, long max)
{
    if (s.n == 0 || s.n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v <= max ? v : -1;
}

static void span_copy(struct span s, char *dst, size_t size)
{
    size_t n = s.n < size - 1 ? s.n : size - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static bool parse_dir(struct span v, enum sdp_dir *dir)
{
    static const char *names[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (int i = 0; i < 4; i++)
        if (span_eq(v, names[i])) {
            *dir = (enum sdp_dir)i;
            return true;
        }
    return false;
}

/* "IN IP4 1.2.3.4" -> addr; false when malformed. */
static bool parse_conn(struct span v, char *addr, size_t size)
{
    struct span net, type, a;
    if (!next_token(&v, &net) || !next_token(&v, &type) || !next_token(&v, &a)) return false;
    if (!span_eq(net, "IN")) return false;
    if (!span_eq(type, "IP4") && !span_eq(type, "IP6")) return false;
    /* strip a multicast /ttl suffix */
    for (size_t i = 0; i < a.n; i++)
        if (a.p[i] == '/') a.n = i;
    if (a.n == 0 || a.n >= size) return false;
    for (size_t i = 0; i < a.n; i++) {
        char c = a.p[i];
        if (!isxdigit((unsigned char)c) && c != '.' && c != ':') return false;
    }
    span_copy(a, addr, size);
    return true;
}

static void static_codec(struct sdp_codec *c)
{
    static const struct {
        int pt;
        const char *name;
    } known[] = {{0, "PCMU"}, {3, "GSM"}, {4, "G723"}, {8, "PCMA"},
                 {9, "G722"}, {13, "CN"}, {18, "G729"}};
    for (size_t i = 0; i < CW_ARRAY_LEN(known); i++)
        if (known[i].pt == c->pt) {
            cw_strlcpy(c->name, known[i].name, sizeof c->name);
            c->rate = 8000;
            return;
        }
}

/* "audio 49170 RTP/AVP 0 8 101" */
static bool parse_mline(struct span v, struct sdp_media *m, bool *audio)
{
    struct span media, port, proto, fmt;
    *audio = false;
    if (!next_token(&v, &media) || !next_token(&v, &port) || !next_token(&v, &proto)) return false;
    if (!span_eq(media, "audio")) return true;
    for (size_t i = 0; i < port.n; i++)
        if (port.p[i] == '/') port.n = i; /* port/count */
    long p = span_num(port, 65535);
    if (p < 0) return false;
    if (!span_eq(proto, "RTP/AVP") && !span_eq(proto, "RTP/AVPF")) return false;
    *audio = true;
    m->port = (int)p;
    m->ncodecs = 0;
    while (next_token(&v, &fmt)) {
        long pt = span_num(fmt, 127);
        if (pt < 0) return false;
        if (m->ncodecs == SDP_MAX_CODECS) continue;
        struct sdp_codec *c = &m->codecs[m->ncodecs++];
        memset(c, 0, sizeof *c);
        c->pt = (int)pt;
        static_codec(c);
    }
    return m->ncodecs > 0;
}

/* "0 PCMU/8000" or "101 telephone-event/8000/1" */
static void parse_rtpmap(struct span v, struct sdp_media *m)
{
    struct span pt, enc;
    if (!next_token(&v, &pt) || !next_token(&v, &enc)) return;
    long n = span_num(pt, 127);
    if (n < 0) return;
    struct span name = enc, rate = {enc.p + enc.n, 0};
    for (size_t i = 0; i < enc.n; i++)
        if (enc.p[i] == '/') {
            name.n = i;
            rate.p = enc.p + i + 1;
            rate.n = enc.n - i - 1;
            for (size_t j = 0; j < rate.n; j++)
                if (rate.p[j] == '/') rate.n = j;
            break;
        }
    long r = span_num(rate, 1000000);
    if (name.n == 0 || r <= 0) return;
    for (int i = 0; i < m->ncodecs; i++)
        if (m->codecs[i].pt == n) {
            span_copy(name, m->codecs[i].name, sizeof m->codecs[i].name);
            m->codecs[i].rate = (int)r;
        }
}

int sdp_parse(const char *text, size_t len, struct sdp_media *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return CW_EINVAL;
    enum { SESSION, AUDIO, OTHER, DONE } where = SESSION;
    char sess_addr[64] = "";
    enum sdp_dir sess_dir = SDP_SENDRECV, media_dir = SDP_SENDRECV;
    bool media_dir_set = false, seen_v = false, found = false;
    const char *p = text, *end = text + len;

    while (p < end && where != DONE) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol) eol = end;
        if (eol > p && eol[-1] == '\r') eol--;
        struct span line = {p, (size_t)(eol - p)};
        p = next;
        if (line.n == 0) continue;
        if (line.n < 2 || line.p[1] != '=') return CW_EINVAL;
        char type = line.p[0];
        struct span v = {line.p + 2, line.n - 2};
        if (!seen_v) {
            if (type != 'v' || !span_eq(v, "0")) return CW_EINVAL;
            seen_v = true;
            continue;
        }
        if (type == 'm') {
            if (where == AUDIO) {
                where = DONE;
                break;
            }
            bool audio;
            struct sdp_media tmp = *out;
            if (!parse_mline(v, &tmp, &audio)) {
                if (audio) return CW_EINVAL;
                where = OTHER;
                continue;
            }
            if (audio) {
                *out = tmp;
                where = AUDIO;
                found = true;
            } else {
                where = OTHER;
            }
            continue;
        }
        if (where == OTHER) continue;
        if (type == 'c') {
            char *dst = where == SESSION ? sess_addr : out->addr;
            if (!parse_conn(v, dst, sizeof out->addr)) return CW_EINVAL;
        } else if (type == 'a') {
            enum sdp_dir d;
            if (parse_dir(v, &d)) {
                if (where == SESSION)
                    sess_dir = d;
                else {
                    media_dir = d;
                    media_dir_set = true;
                }
            } else if (where == AUDIO && v.n > 7 && memcmp(v.p, "rtpmap:", 7) == 0) {
                parse_rtpmap((struct span){v.p + 7, v.n - 7}, out);
            } else if (where == AUDIO && v.n > 6 && memcmp(v.p, "ptime:", 6) == 0) {
                long pt = span_num((struct span){v.p + 6, v.n - 6}, 1000);
                if (pt > 0) out->ptime = (int)pt;
            }
        }
    }
    if (!found) return CW_EINVAL;
    if (!out->addr[0]) cw_strlcpy(out->addr, sess_addr, sizeof out->addr);
    if (!out->addr[0] && out->port != 0) return CW_EINVAL;
    out->dir = media_dir_set ? media_dir : sess_dir;
    /* RFC 2543 hold: a null address means "do not send to me" */
    if (!strcmp(out->addr, "0.0.0.0")) {
        if (out->dir == SDP_SENDRECV)
            out->dir = SDP_SENDONLY;
        else if (out->dir == SDP_RECVONLY)
            out->dir = SDP_INACTIVE;
    }
    return CW_OK;
}

static bool codec_is(const struct sdp_codec *c, int pt, const char *name)
{
    if (c->name[0]) return strcasecmp(c->name, name) == 0 && (c->rate == 8000 || c->rate == 0);
    return c->pt == pt;
}

int sdp_negotiate(const struct sdp_media *remote, const int *allowed, int nallowed, int *pt,
                  int *dtmf_pt)
{
    static const struct {
        int pt;
        const char *name;
    } ours[] = {{0, "PCMU"}, {8, "PCMA"}, {9, "G722"}};
    *pt = -1;
    *dtmf_pt = 0;
    if (remote->port == 0) return CW_EINVAL;
    for (int i = 0; i < remote->ncodecs && *pt < 0; i++) {
        const struct sdp_codec *c = &remote->codecs[i];
        for (size_t k = 0; k < CW_ARRAY_LEN(ours); k++) {
            bool ok = ours[k].pt == 0 || ours[k].pt == 8;
            for (int a = 0; a < nallowed && allowed; a++)
                if (allowed[a] == ours[k].pt) ok = true;
            if (ok && codec_is(c, ours[k].pt, ours[k].name)) {
                *pt = c->pt;
                break;
            }
        }
    }
    for (int i = 0; i < remote->ncodecs; i++)
        if (!strcasecmp(remote->codecs[i].name, "telephone-event") &&
            remote->codecs[i].rate == 8000) {
            *dtmf_pt = remote->codecs[i].pt;
            break;
        }
    return *pt >= 0 ? CW_OK : CW_EINVAL;
}

const char *sdp_dir_name(enum sdp_dir d)
{
    switch (d) {
    case SDP_SENDONLY:
        return "sendonly";
    case SDP_RECVONLY:
        return "recvonly";
    case SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

enum sdp_dir sdp_answer_dir(enum sdp_dir offered)
{
    switch (offered) {
    case SDP_SENDONLY:
        return SDP_RECVONLY;
    case SDP_RECVONLY:
        return SDP_SENDONLY;
    case SDP_INACTIVE:
        return SDP_INACTIVE;
    default:
        return SDP_SENDRECV;
    }
}

bool sdp_dir_is_hold(enum sdp_dir d)
{
    return d == SDP_SENDONLY || d == SDP_INACTIVE;
}

static const char *codec_name(int pt)
{
    switch (pt) {
    case 0:
        return "PCMU";
    case 8:
        return "PCMA";
    case 9:
        return "G722";
    default:
        return NULL;
    }
}

char *sdp_write(const struct sdp_local *l)
{
    cw_buf b;
    cw_buf_init(&b);
    const char *ipv = strchr(l->addr, ':') ? "IP6" : "IP4";
    cw_buf_printf(&b, "v=0\r\no=callwright %llu %llu IN %s %s\r\ns=callwright\r\n", l->session_id,
                  l->version, ipv, l->addr);
    cw_buf_printf(&b, "c=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP", ipv, l->addr, l->port);
    for (int i = 0; i < l->npts; i++)
        cw_buf_printf(&b, " %d", l->pts[i]);
    if (l->dtmf_pt > 0) cw_buf_printf(&b, " %d", l->dtmf_pt);
    cw_buf_puts(&b, "\r\n");
    for (int i = 0; i < l->npts; i++) {
        const char *n = codec_name(l->pts[i]);
        if (n) cw_buf_printf(&b, "a=rtpmap:%d %s/8000\r\n", l->pts[i], n);
    }
    if (l->dtmf_pt > 0)
        cw_buf_printf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", l->dtmf_pt,
                      l->dtmf_pt);
    if (l->ptime > 0) cw_buf_printf(&b, "a=ptime:%d\r\n", l->ptime);
    cw_buf_printf(&b, "a=%s\r\n", sdp_dir_name(l->dir));
    return cw_buf_steal(&b);
}

/* o=<user> <sess-id> <version> ...: copy with version+1 into b. */
static bool bump_origin(cw_buf *b, const char *line, size_t n)
{
    const char *p = line, *end = line + n;
    int field = 0;
    const char *vstart = NULL, *vend = NULL;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *s = p;
        while (p < end && *p != ' ')
            p++;
        if (field == 2) {
            vstart = s;
            vend = p;
            break;
        }
        field++;
    }
    if (!vstart || vend == vstart || vend - vstart > 19) return false;
    unsigned long long v = 0;
    for (const char *q = vstart; q < vend; q++) {
        if (*q < '0' || *q > '9') return false;
        v = v * 10 + (unsigned long long)(*q - '0');
    }
    cw_buf_append(b, line, (size_t)(vstart - line));
    cw_buf_printf(b, "%llu", v + 1);
    cw_buf_append(b, vend, (size_t)(end - vend));
    return true;
}

char *sdp_with_dir(const char *text, enum sdp_dir dir, bool bump)
{
    if (!text) return NULL;
    cw_buf b;
    cw_buf_init(&b);
    bool has_o = false, has_m = false, in_audio = false, dir_done = false;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *next = eol ? eol + 1 : p + strlen(p);
        if (!eol) eol = next;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r') n--;
        struct span line = {p, n};
        p = next;
        if (n == 0) continue;
        if (line.n > 2 && line.p[0] == 'a' && line.p[1] == '=') {
            enum sdp_dir d;
            if (parse_dir((struct span){line.p + 2, line.n - 2}, &d)) continue; /* replaced */
        }
        if (line.p[0] == 'm' && n > 1 && line.p[1] == '=') {
            if (in_audio && !dir_done) {
                cw_buf_printf(&b, "a=%s\r\n", sdp_dir_name(dir));
                dir_done = true;
            }
            in_audio = n > 8 && !memcmp(line.p, "m=audio ", 8);
            has_m = true;
        }
        if (line.p[0] == 'o' && n > 1 && line.p[1] == '=') {
            has_o = true;
            if (bump) {
                if (!bump_origin(&b, line.p, n)) {
                    cw_buf_free(&b);
                    return NULL;
                }
                cw_buf_puts(&b, "\r\n");
                continue;
            }
        }
        cw_buf_append(&b, line.p, n);
        cw_buf_puts(&b, "\r\n");
    }
    if (in_audio && !dir_done) cw_buf_printf(&b, "a=%s\r\n", sdp_dir_name(dir));
    if (!has_o || !has_m) {
        cw_buf_free(&b);
        return NULL;
    }
    return cw_buf_steal(&b);
}
