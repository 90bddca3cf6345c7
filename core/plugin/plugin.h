/*
 * plugin.h - loading plugins (.so files speaking include/callwright/plugin.h).
 *
 * Core thread only. A plugin that cannot be used (file missing, not a
 * Callwright plugin, another ABI version, init refused) is an error naming
 * the file, and the daemon goes on without it. Routes, Lua modules and
 * metric collectors a plugin registers take effect only once its init has
 * succeeded. Load plugins before script_init() and http_start(): their
 * Lua modules and routes must be in place first.
 */
#ifndef CW_PLUGIN_H
#define CW_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Load every plugin named in the `plugins` key from plugin_dir; returns how many are running. */
int plugins_load_config(void);
/* Load one plugin by name (letters, digits, _ and -). 0, or CW_E... with the reason in err. */
int plugin_load(const char *name, char *err, size_t errlen);
/* Is a plugin of that name running? */
bool plugin_loaded(const char *name);
/* Call every plugin's shutdown, last loaded first, and drop their event subscriptions. */
void plugins_shutdown(void);

#endif
