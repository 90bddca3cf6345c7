/*
 * msgparse.c - the bits of SIP messages sofia hands us as raw text and we
 * read ourselves: the Replaces header inside a REFER's Refer-To URI, and
 * the body of a SIP INFO carrying a DTMF digit.
 *
 * Pure functions over bytes from the network (fuzz_sipmsg.c runs them):
 * every length is bounded, nothing is allocated, no state is kept.
 */
#include "base/cw.h"
#include "sip/sip_int.h"

#include <string.h>
#include <strings.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated); CW_EINVAL when it does not fit. */
static int unescape(const char *s, size_t n, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (c == '\0' || j + 1 >= outlen) return CW_EINVAL;
        out[j++] = c;
    }
    out[j] = '\0';
    return CW_OK;
}

/* Copy a token (up to ';' or the end) without surrounding blanks. */
static int token(const char *s, const char *end, char *out, size_t outlen)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= outlen) return CW_EINVAL;
    memcpy(out, s, n);
    out[n] = '\0';
    return CW_OK;
}

int sip_replaces_parse(const char *headers, struct sip_replaces *out)
{
    memset(out, 0, sizeof *out);
    if (!headers) return CW_ENOENT;
    /* headers: "Replaces=callid%3Bto-tag%3Da%3Bfrom-tag%3Db&Other=x" */
    const char *p = headers;
    const char *val = NULL;
    while (*p) {
        if (!strncasecmp(p, "Replaces=", 9)) {
            val = p + 9;
            break;
        }
        const char *amp = strchr(p, '&');
        if (!amp) break;
        p = amp + 1;
    }
    if (!val) return CW_ENOENT;
    const char *amp = strchr(val, '&');
    size_t n = amp ? (size_t)(amp - val) : strlen(val);
    char dec[512];
    if (unescape(val, n, dec, sizeof dec)) return CW_EINVAL;

    /* callid *( ";" replaces-param ), RFC 3891 section 6.1 */
    char *semi = strchr(dec, ';');
    char *end = semi ? semi : dec + strlen(dec);
    if (token(dec, end, out->call_id, sizeof out->call_id)) return CW_EINVAL;
    while (semi) {
        char *param = semi + 1;
        semi = strchr(param, ';');
        char *pend = semi ? semi : param + strlen(param);
        char *eq = memchr(param, '=', (size_t)(pend - param));
        char name[16];
        if (token(param, eq ? eq : pend, name, sizeof name)) continue;
        if (!eq) {
            if (!strcasecmp(name, "early-only")) out->early_only = true;
            continue;
        }
        char *dst = NULL;
        size_t dlen = 0;
        if (!strcasecmp(name, "to-tag")) {
            dst = out->to_tag;
            dlen = sizeof out->to_tag;
        } else if (!strcasecmp(name, "from-tag")) {
            dst = out->from_tag;
            dlen = sizeof out->from_tag;
        }
        if (dst && token(eq + 1, pend, dst, dlen)) return CW_EINVAL;
    }
    /* both tags are what identifies the dialog: a Call-ID alone names nothing */
    if (!out->to_tag[0] || !out->from_tag[0]) return CW_EINVAL;
    return CW_OK;
}

static bool is_dtmf(char c)
{
    return c && strchr("0123456789*#ABCDabcd", c);
}

int sip_dtmf_info_parse(const char *body, size_t len, bool plain, char *digit, int *duration_ms)
{
    char buf[256];
    size_t n = CW_MIN(len, sizeof buf - 1);
    memcpy(buf, body, n);
    buf[n] = '\0';
    char d = 0;
    int dur = 160;
    const char *s = strcasestr(buf, "Signal=");
    if (s) { /* application/dtmf-relay: "Signal=5\r\nDuration=160\r\n" */
        s += 7;
        while (*s == ' ')
            s++;
        d = *s;
        const char *du = strcasestr(buf, "Duration=");
        if (du) {
            du += 9;
            while (*du == ' ')
                du++;
            long v = 0;
            int digits = 0;
            for (; *du >= '0' && *du <= '9' && digits < 6; du++, digits++)
                v = v * 10 + (*du - '0');
            if (digits) dur = (int)v;
        }
    } else if (plain) { /* application/dtmf: the digit alone */
        const char *p = buf;
        while (*p == ' ' || *p == '\r' || *p == '\n')
            p++;
        d = *p;
    }
    if (!is_dtmf(d)) return CW_EINVAL;
    if (d >= 'a' && d <= 'd') d = (char)(d - 'a' + 'A');
    *digit = d;
    *duration_ms = dur > 0 && dur < 10000 ? dur : 160;
    return CW_OK;
}
