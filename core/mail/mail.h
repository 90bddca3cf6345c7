/*
 * mail.h - outgoing e-mail over SMTP (libcurl): password-reset links today,
 * voicemail and fax delivery later.
 *
 * mail_send() copies everything it is given and returns at once; the
 * message is built and sent on a worker thread (never on the core loop),
 * and done() then runs on the core thread with the outcome. The server,
 * sender and credentials come from the smtp.* configuration keys.
 */
#ifndef CW_MAIL_H
#define CW_MAIL_H

#include <stdbool.h>
#include <stddef.h>

struct mail_attachment {
    const char *filename;     /* name shown to the recipient */
    const char *content_type; /* e.g. "audio/wav"; NULL = application/octet-stream */
    const void *data;         /* the bytes, or NULL to read `path` on the worker */
    size_t len;
    const char *path;
};

/* rc 0 = accepted by the server; else a CW_E... code and a short reason. */
typedef void (*mail_done_fn)(int rc, const char *error, void *arg);

/* Call once on the core thread before any mail_send(). */
void mail_init(void);
void mail_shutdown(void);
/* True when smtp.url is set. */
bool mail_enabled(void);
/* A plausible single address: local@domain, printable, no spaces or brackets. */
bool mail_address_valid(const char *addr);

/*
 * Send a text mail (UTF-8) to one or more addresses separated by ',' or ';',
 * with an optional attachment. Returns CW_OK when queued (done will run),
 * CW_EINVAL for a bad address, CW_ESTATE when mail is off.
 */
int mail_send(const char *to, const char *subject, const char *text,
              const struct mail_attachment *att, mail_done_fn done, void *arg);

#endif
