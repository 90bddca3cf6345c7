/*
 * mail.c - builds a MIME message (text part plus optional attachment, both
 * base64) and hands it to libcurl's SMTP client on a worker thread.
 *
 * mail_send() runs on the core thread and only copies; build_and_send()
 * runs on a worker and owns the job until its completion returns to the
 * core thread, where done() is called and the job freed.
 */
#include "mail/mail.h"
#include "base/cw.h"
#include "config/config.h"
#include "log/log.h"
#include "loop/work.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RCPT         32
#define MAX_ATTACH_BYTES (64 * 1024 * 1024)

struct job {
    char *url, *from, *user, *password;
    char *rcpt[MAX_RCPT];
    int nrcpt;
    char *subject, *text;
    char *att_name, *att_type, *att_path;
    unsigned char *att_data;
    size_t att_len;
    mail_done_fn done;
    void *arg;
    /* result */
    int rc;
    char error[256];
    /* transfer */
    cw_buf msg;
    size_t sent;
};

static bool inited;

void mail_init(void)
{
    if (inited) return;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    inited = true;
}

void mail_shutdown(void)
{
    if (!inited) return;
    curl_global_cleanup();
    inited = false;
}

bool mail_enabled(void)
{
    return *config_str("smtp.url") != '\0';
}

bool mail_address_valid(const char *a)
{
    const char *at = strchr(a, '@');
    size_t n = strlen(a);
    if (!at || at == a || !at[1] || strchr(at + 1, '@') || n > 254) return false;
    if (!strchr(at + 1, '.') && strcmp(at + 1, "localhost") != 0) return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("<>()[]\\,;:\"", *p)) return false;
    return true;
}

static void b64(cw_buf *out, const unsigned char *in, size_t n, bool wrap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        cw_buf_append(out, q, 4);
        col += 4;
        if (wrap && col >= 76) {
            cw_buf_puts(out, "\r\n");
            col = 0;
        }
    }
    if (wrap && col) cw_buf_puts(out, "\r\n");
}

static bool ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return false;
    return true;
}

/* A header value: plain when printable ASCII, else RFC 2047 base64 words. */
static void header_text(cw_buf *b, const char *s)
{
    if (ascii_printable(s)) {
        cw_buf_puts(b, s);
        return;
    }
    cw_buf_puts(b, "=?UTF-8?B?");
    char clean[512];
    size_t n = 0;
    for (const char *p = s; *p && n + 1 < sizeof clean; p++)
        if (*p != '\r' && *p != '\n') clean[n++] = *p;
    b64(b, (const unsigned char *)clean, n, false);
    cw_buf_puts(b, "?=");
}

static void build(struct job *j)
{
    cw_buf *b = &j->msg;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char rnd[12];
    char id[25], boundary[40];
    cw_random_bytes(rnd, sizeof rnd);
    cw_hex(rnd, sizeof rnd, id);
    snprintf(boundary, sizeof boundary, "=_cw_%s", id);
    cw_buf_printf(b, "Date: %s\r\nFrom: %s\r\nTo: ", date, j->from);
    for (int i = 0; i < j->nrcpt; i++)
        cw_buf_printf(b, "%s%s", i ? ", " : "", j->rcpt[i]);
    cw_buf_puts(b, "\r\nSubject: ");
    header_text(b, j->subject);
    const char *at = strchr(j->from, '@');
    cw_buf_printf(b, "\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", id,
                  at ? at + 1 : "callwright");
    bool att = j->att_data != NULL;
    if (att)
        cw_buf_printf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary,
                      boundary);
    cw_buf_puts(b, "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n");
    b64(b, (const unsigned char *)j->text, strlen(j->text), true);
    if (att) {
        cw_buf_printf(b,
                      "\r\n--%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\n"
                      "Content-Disposition: attachment; filename=\"",
                      boundary, j->att_type);
        header_text(b, j->att_name);
        cw_buf_puts(b, "\"\r\n\r\n");
        b64(b, j->att_data, j->att_len, true);
        cw_buf_printf(b, "\r\n--%s--\r\n", boundary);
    }
}

static size_t reader(char *out, size_t size, size_t nmemb, void *arg)
{
    struct job *j = arg;
    size_t room = size * nmemb, left = j->msg.len - j->sent;
    size_t n = CW_MIN(room, left);
    memcpy(out, j->msg.data + j->sent, n);
    j->sent += n;
    return n;
}

static int read_attachment(struct job *j)
{
    int fd = open(j->att_path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || sb.st_size > MAX_ATTACH_BYTES) {
        if (fd >= 0) close(fd);
        snprintf(j->error, sizeof j->error, "cannot read attachment %s", j->att_path);
        return CW_EIO;
    }
    j->att_data = cw_malloc((size_t)sb.st_size + 1);
    ssize_t got = read(fd, j->att_data, (size_t)sb.st_size);
    close(fd);
    if (got != sb.st_size) {
        snprintf(j->error, sizeof j->error, "short read on attachment %s", j->att_path);
        return CW_EIO;
    }
    j->att_len = (size_t)got;
    return CW_OK;
}

static void build_and_send(void *arg)
{
    struct job *j = arg;
    if (j->att_path && !j->att_data && (j->rc = read_attachment(j))) return;
    build(j);
    CURL *c = curl_easy_init();
    if (!c) {
        j->rc = CW_ENOMEM;
        snprintf(j->error, sizeof j->error, "curl_easy_init failed");
        return;
    }
    struct curl_slist *rcpt = NULL;
    for (int i = 0; i < j->nrcpt; i++)
        rcpt = curl_slist_append(rcpt, j->rcpt[i]);
    char from[300];
    snprintf(from, sizeof from, "<%s>", j->from);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, reader);
    curl_easy_setopt(c, CURLOPT_READDATA, j);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->msg.len);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (j->user && *j->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, j->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, j->password);
    }
    CURLcode res = curl_easy_perform(c);
    if (res != CURLE_OK) {
        j->rc = CW_EIO;
        snprintf(j->error, sizeof j->error, "%s", *errbuf ? errbuf : curl_easy_strerror(res));
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
}

static void job_free(struct job *j)
{
    free(j->url);
    free(j->from);
    free(j->user);
    if (j->password) {
        memset(j->password, 0, strlen(j->password));
        free(j->password);
    }
    for (int i = 0; i < j->nrcpt; i++)
        free(j->rcpt[i]);
    free(j->subject);
    free(j->text);
    free(j->att_name);
    free(j->att_type);
    free(j->att_path);
    free(j->att_data);
    cw_buf_free(&j->msg);
    free(j);
}

static void finished(void *arg)
{
    struct job *j = arg;
    if (j->rc)
        log_warn("mail", "mail to %s (%d recipients) failed: %s", j->rcpt[0], j->nrcpt, j->error);
    else
        log_info("mail", "mail to %s (%d recipients) accepted by the server", j->rcpt[0], j->nrcpt);
    if (j->done) j->done(j->rc, j->rc ? j->error : NULL, j->arg);
    job_free(j);
}

int mail_send(const char *to, const char *subject, const char *text,
              const struct mail_attachment *att, mail_done_fn done, void *arg)
{
    if (!mail_enabled()) return CW_ESTATE;
    mail_init();
    struct job *j = cw_calloc(1, sizeof *j);
    char *list = cw_strdup(to ? to : "");
    for (char *save = NULL, *t = strtok_r(list, ",;", &save); t; t = strtok_r(NULL, ",;", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        if (!n) continue;
        if (!mail_address_valid(t) || j->nrcpt == MAX_RCPT) {
            free(list);
            job_free(j);
            return CW_EINVAL;
        }
        j->rcpt[j->nrcpt++] = cw_strdup(t);
    }
    free(list);
    if (!j->nrcpt) {
        job_free(j);
        return CW_EINVAL;
    }
    j->url = cw_strdup(config_str("smtp.url"));
    j->from = cw_strdup(config_str("smtp.from"));
    j->user = cw_strdup(config_str("smtp.user"));
    j->password = cw_strdup(config_str("smtp.password"));
    j->subject = cw_strdup(subject ? subject : "");
    j->text = cw_strdup(text ? text : "");
    if (att) {
        j->att_name = cw_strdup(att->filename ? att->filename : "attachment");
        j->att_type = cw_strdup(att->content_type ? att->content_type : "application/octet-stream");
        if (att->data) {
            j->att_data = cw_malloc(att->len + 1);
            memcpy(j->att_data, att->data, att->len);
            j->att_len = att->len;
        } else if (att->path) {
            j->att_path = cw_strdup(att->path);
        }
    }
    j->done = done;
    j->arg = arg;
    work_submit(build_and_send, finished, j);
    return CW_OK;
}
