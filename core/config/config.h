/*
 * config.h - the daemon's configuration: a Lua table file plus --set overrides.
 *
 * Every key is declared once in config.c with its type, default, whether it
 * may change on SIGHUP, and one line of documentation (printed by
 * `callwright --help-config`). Unknown keys and wrong types are errors that
 * name the key; a failed reload keeps the previous configuration.
 * Read on the core thread; other threads copy what they need at start.
 */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Load file (may be NULL for defaults only) and apply "key=value" overrides. */
int config_load(const char *path, const char *const *overrides, int n_overrides, char *err,
                size_t errlen);
/* Reload the same file and overrides; keys that cannot change live are kept. */
int config_reload(char *err, size_t errlen);
void config_free(void);

const char *config_str(const char *key);
int64_t config_int(const char *key);
bool config_bool(const char *key);
/* List values: count and items (owned by the config). */
int config_list(const char *key, const char *const **items);

enum config_format {
    CONFIG_REF_TEXT,     /* one aligned line a key */
    CONFIG_REF_MARKDOWN, /* the README's table */
    CONFIG_REF_LUA,      /* a configuration file with every key documented (etc/callwright.lua) */
};
/* Print the reference of every key (name, type, default, live, doc). */
void config_print_reference(FILE *out, enum config_format format);

/* Type of a key: 's' string, 'i' integer, 'b' boolean, 'l' list; 0 when there is no such key. */
char config_kind(const char *key);

/* Set one value as if from --set (tests); returns 0 or CW_EINVAL. */
int config_set(const char *key, const char *value, char *err, size_t errlen);

#endif
