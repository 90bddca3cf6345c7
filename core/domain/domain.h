/*
 * domain.h - the domain model behind REST API v1: tenants (pools,
 * subgroups, domains), accounts (system admins, pool admins, domain users),
 * pickup and call-processing groups, external numbers, sound files, address
 * books, IVR flow rows (with their menu trees checked), routing data (day
 * groups, schedules, classifiers, routing rules, black/white lists), access
 * to recordings and voicemail, operator messages, bulk user import, and the
 * demo tenant.
 *
 * Everything here runs on the core thread and reads and writes through
 * store_main(); other subsystems read the same tables directly (e.g. the
 * registrar reads users.sip_ha1_*, the ACD reads call_groups and
 * call_group_members) and learn about changes from config.<type>.<action>
 * events (created, updated, deleted) carrying {id, name}.
 */
#ifndef CW_DOMAIN_H
#define CW_DOMAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Register every endpoint of the domain model (before http_start()). */
void domain_api_init(void);

/*
 * The demo tenant (config `demo`): creates whatever of it is missing, so a
 * second start changes nothing. Runs at start-up, before the loop.
 */
int domain_demo_ensure(void);

/*
 * Is target a valid routing target of the domain (routing rules, the
 * answers of tenant routing scripts)? Every object it names must exist.
 * On false: where names the element (path + ".on.busy.id" ...) and msg says why.
 */
bool domain_target_valid(int64_t domain_id, json_t *target, const char *path, char *where,
                         size_t wlen, char *msg, size_t mlen);

#endif
