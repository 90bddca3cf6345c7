/*
 * test_mail.c - the SMTP sender against a real local SMTP server
 * (tests/lib/smtpsink.py, started here): recipients, a UTF-8 subject, a
 * text body that survives dot-stuffing, attachments from memory and from a
 * file, and the errors for bad addresses, mail switched off and a server
 * that is not there.
 */
#include "base/cw.h"
#include "config/config.h"
#include "mail/mail.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t sink_pid;
static int sink_stdin = -1;
static char sink_dir[] = "/tmp/cw-mail-XXXXXX";

static int start_sink(void **state)
{
    if (!mkdtemp(sink_dir)) return -1;
    const char *src = getenv("CW_SOURCE_DIR");
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/lib/smtpsink.py", src ? src : ".");
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return -1;
    sink_pid = fork();
    if (sink_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl("/usr/bin/python3", "python3", script, sink_dir, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    sink_stdin = in[1];
    char line[32] = "";
    size_t n = 0; /* the port, on the first line */
    while (n + 1 < sizeof line && !strchr(line, '\n')) {
        ssize_t got = read(out[0], line + n, sizeof line - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        line[n] = '\0';
    }
    close(out[0]);
    if (!strchr(line, '\n')) return -1;
    int port = atoi(line);
    char url[64], err[128];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    config_set("smtp.url", url, err, sizeof err);
    config_set("smtp.from", "pbx@example.com", err, sizeof err);
    return port > 0 ? 0 : -1;
}

static int stop_sink(void **state)
{
    close(sink_stdin);
    kill(sink_pid, SIGTERM);
    waitpid(sink_pid, NULL, 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", sink_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cw_buf b;
    cw_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cw_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return cw_buf_steal(&b);
}

/* Wait (bounded) for message number idx to land in the sink's folder. */
static char *received(int idx, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%d.eml", sink_dir, idx);
    for (int i = 0; i < 200; i++) {
        char *s = slurp(path, len);
        if (s) return s;
        usleep(25000);
    }
    return NULL;
}

/* Decode the base64 body of the MIME part whose headers contain marker. */
static unsigned char *part_body(const char *msg, const char *marker, size_t *outlen)
{
    const char *p = strstr(msg, marker);
    if (!p) return NULL;
    p = strstr(p, "\r\n\r\n");
    if (!p) return NULL;
    p += 4;
    const char *end = strstr(p, "\r\n--");
    if (!end) end = p + strlen(p);
    cw_buf b64;
    cw_buf_init(&b64);
    for (const char *q = p; q < end; q++)
        if (*q != '\r' && *q != '\n') cw_buf_append(&b64, q, 1);
    unsigned char *out = cw_malloc(b64.len + 1);
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64.data, (int)b64.len);
    size_t pad = 0;
    while (b64.len > pad && b64.data[b64.len - 1 - pad] == '=')
        pad++;
    cw_buf_free(&b64);
    *outlen = n < 0 ? 0 : (size_t)n - pad;
    return out;
}

struct outcome {
    int calls, rc;
    char error[256];
};

static void done(int rc, const char *error, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->rc = rc;
    snprintf(o->error, sizeof o->error, "%s", error ? error : "");
}

static int sent; /* messages the sink should hold so far */

static void text_mail_with_attachment_arrives_intact(void **state)
{
    static const char text[] = "Новое голосовое сообщение от 74951234567.\r\n"
                               ".a line that starts with a dot\r\n"
                               "end.\r\n";
    unsigned char wav[3000];
    for (size_t i = 0; i < sizeof wav; i++)
        wav[i] = (unsigned char)(i * 7 + (i >> 8));
    struct mail_attachment att = {"message.wav", "audio/wav", wav, sizeof wav, NULL};
    struct outcome o = {0};
    assert_int_equal(
        mail_send("first@example.com; second@example.com", "Голосовая почта", text, &att, done, &o),
        0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.rc, 0);
    size_t len;
    char *msg = received(sent++, &len);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "To: first@example.com, second@example.com\r\n"));
    assert_non_null(strstr(msg, "From: pbx@example.com\r\n"));
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(msg, "Content-Type: multipart/mixed"));
    size_t n;
    unsigned char *body = part_body(msg, "Content-Type: text/plain", &n);
    assert_non_null(body);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(body, text, n);
    free(body);
    unsigned char *a = part_body(msg, "Content-Type: audio/wav", &n);
    assert_non_null(a);
    assert_int_equal(n, sizeof wav);
    assert_memory_equal(a, wav, n);
    free(a);
    free(msg);
}

static void attachment_is_read_from_a_file(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/fax.tif", sink_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const char bytes[] = "II*\0fake tiff bytes\0\x01\x02";
    fwrite(bytes, 1, sizeof bytes, f);
    fclose(f);
    struct mail_attachment att = {"fax.tif", "image/tiff", NULL, 0, path};
    struct outcome o = {0};
    assert_int_equal(mail_send("fax@example.com", "Fax", "A fax arrived.", &att, done, &o), 0);
    assert_int_equal(o.rc, 0);
    size_t len, n;
    char *msg = received(sent++, &len);
    assert_non_null(msg);
    unsigned char *a = part_body(msg, "Content-Type: image/tiff", &n);
    assert_non_null(a);
    assert_int_equal(n, sizeof bytes);
    assert_memory_equal(a, bytes, n);
    free(a);
    free(msg);
}

static void bad_addresses_are_refused_before_sending(void **state)
{
    struct outcome o = {0};
    assert_int_equal(mail_send("not-an-address", "s", "t", NULL, done, &o), CW_EINVAL);
    assert_int_equal(mail_send("a@example.com; <evil>@x.org", "s", "t", NULL, done, &o), CW_EINVAL);
    assert_int_equal(mail_send("", "s", "t", NULL, done, &o), CW_EINVAL);
    assert_int_equal(o.calls, 0);
    assert_false(mail_address_valid("a b@example.com"));
    assert_true(mail_address_valid("ivanov.ii@company.name"));
}

static void unreachable_server_reports_an_error(void **state)
{
    char err[128], url[64];
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t al = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s); /* a port nobody listens on */
    char keep[256];
    snprintf(keep, sizeof keep, "%s", config_str("smtp.url"));
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ntohs(a.sin_port));
    config_set("smtp.url", url, err, sizeof err);
    struct outcome o = {0};
    assert_int_equal(mail_send("x@example.com", "s", "t", NULL, done, &o), 0);
    assert_int_equal(o.calls, 1);
    assert_int_not_equal(o.rc, 0);
    assert_true(strlen(o.error) > 0);
    config_set("smtp.url", "", err, sizeof err);
    assert_false(mail_enabled());
    assert_int_equal(mail_send("x@example.com", "s", "t", NULL, done, &o), CW_ESTATE);
    config_set("smtp.url", keep, err, sizeof err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_mail_with_attachment_arrives_intact),
        cmocka_unit_test(attachment_is_read_from_a_file),
        cmocka_unit_test(bad_addresses_are_refused_before_sending),
        cmocka_unit_test(unreachable_server_reports_an_error),
    };
    mail_init();
    int rc = cmocka_run_group_tests(tests, start_sink, stop_sink);
    mail_shutdown();
    return rc;
}
