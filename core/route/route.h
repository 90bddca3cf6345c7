/*
 * route.h - routing of incoming numbers at call time: what the rule
 * interpreter (scripts/cw/routing.lua) needs from the core, and the
 * routing check the API offers.
 *
 * The rules are data (core/domain/routing.c validates them on save); this
 * side reads them for one call, adds what only the store knows (is the
 * caller in a classifier?) and hands them to Lua as the `cwroute` module of
 * the system VM. A rule may leave the decision to a tenant's own Lua,
 * which runs sandboxed in the tenant's VM with a time limit and may only
 * answer with a target that passes the same checks as a saved rule.
 * Core thread only.
 */
#ifndef CW_ROUTE_H
#define CW_ROUTE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Canonical form of a phone number for exact matching: digits only, and an
 * 11-digit Russian number (7... or 8...) without its leading 7 / 8, so
 * +74951234567, 74951234567, 84951234567 and 4951234567 are one number.
 */
void route_number_norm(const char *in, char *out, size_t outlen);

/* Register the `cwroute` Lua module (before script_init()). */
void route_init(void);

/*
 * Which rule of an external number would take a call from caller at the
 * instant at (epoch seconds): {blocked, rule_id, priority, target, fallback,
 * local_time, ...} as the interpreter decides it. NULL and err on failure.
 */
json_t *route_explain(int64_t domain_id, const char *number, const char *caller, int64_t at,
                      char *err, size_t errlen);

#endif
