/*
 * conference.c - conference rooms and fax boxes of API v1.
 *
 * A conference room (seed 002: up to 16 parties; seed 000: a room ends when
 * its creator leaves, if so set) has an extension in the domain's dial
 * plan, an optional PIN for everyone and a moderator PIN, an owner (who
 * joins as moderator), a party limit and a record flag. Who is in a room
 * right now, and the moderator's mute and kick, are live call state: see
 * core/call/call_conf.c (/api/v1/domains/:domain/conferences).
 *
 * Faxes (seed 001 §4.4, §7.5.4, §8.1.4) are listed and deleted here; they
 * are made by calls and by the send endpoint in core/call/call_fax.c,
 * which also serves their files. Core thread only.
 */
#include "config/config.h"
#include "domain/crud.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field tables name only the members that matter; the rest are zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct crud_field room_fields[] = {
    {"name", FT_TEXT, FF_REQUIRED | FF_UNIQUE | FF_SEARCH, 1, 64},
    {"extension", FT_DIGITS, FF_FILTER | FF_SEARCH, 2, 5, NULL, NULL, 0, NULL,
     "number to dial; the lowest free one when not given"},
    {"pin", FT_DIGITS, FF_NULLABLE, 3, 12, NULL, NULL, 0, NULL,
     "digits every party must key to enter; null = none"},
    {"moderator_pin", FT_DIGITS, FF_NULLABLE, 3, 12, NULL, NULL, 0, NULL,
     "keyed instead of the PIN, makes the party a moderator"},
    {"owner_id", FT_ID, FF_NULLABLE | FF_FILTER, 0, 0, NULL, NULL, 0, "users",
     "the user who runs the room: joins as moderator without a PIN"},
    {"max_parties", FT_INT, 0, 2, 16, NULL, NULL, 0, NULL, "most parties at once (2..16)"},
    {"record", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL,
     "record the whole room while anyone is in it (a recording per session)"},
    {"end_with_moderator", FT_BOOL, 0, 0, 0, NULL, NULL, 0, NULL,
     "when the last moderator leaves, everyone else is let go"},
    {"language", FT_ENUM, FF_NULLABLE, 0, 0, crud_languages, NULL, 0, NULL,
     "language of the room's prompts; null = the domain's"},
    {"created_at", FT_INT, FF_READONLY},
    {"updated_at", FT_INT, FF_READONLY},
};

static bool room_validate(struct crud_ctx *c)
{
    json_t *pin = crud_value(c, "pin"), *mod = crud_value(c, "moderator_pin");
    if (json_is_string(pin) && json_is_string(mod) &&
        !strcmp(json_string_value(pin), json_string_value(mod)))
        return crud_fail(c, 400, "invalid_value", "moderator_pin",
                         "moderator_pin must differ from pin");
    return domain_extension_rule(c, true);
}

static const struct crud_entity rooms = {.path = "conference-rooms",
                                         .type = "conference_room",
                                         .label = "conference room",
                                         .table = "conference_rooms",
                                         .scope = SCOPE_DOMAIN,
                                         .fields = room_fields,
                                         .nfields = CW_ARRAY_LEN(room_fields),
                                         .name_field = "name",
                                         .order = "name",
                                         .read_role = ROLE_SUPERVISOR,
                                         .write_role = ROLE_DOMAIN_ADMIN,
                                         .created_at = true,
                                         .updated_at = true,
                                         .validate = room_validate};

/* ---- faxes: made by calls and the send endpoint, listed and deleted here ---- */

static const char *const fax_directions[] = {"in", "out", NULL};
static const char *const fax_statuses[] = {"receiving",     "received", "partial",    "failed",
                                           "converted",     "sending",  "retry_wait", "delivered",
                                           "not_delivered", NULL};

#define FAX_FIELDS                                                                                 \
    {"direction", FT_ENUM, FF_READONLY | FF_FILTER, 0, 0, fax_directions},                         \
        {"counterpart",                                                                            \
         FT_TEXT,                                                                                  \
         FF_READONLY | FF_SEARCH,                                                                  \
         0,                                                                                        \
         64,                                                                                       \
         NULL,                                                                                     \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL,                                                                                     \
         "the other party's number"},                                                              \
        {"counterpart_name", FT_TEXT, FF_READONLY | FF_SEARCH, 0, 128},                            \
        {"status",                                                                                 \
         FT_ENUM,                                                                                  \
         FF_READONLY | FF_FILTER,                                                                  \
         0,                                                                                        \
         0,                                                                                        \
         fax_statuses,                                                                             \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL,                                                                                     \
         "in: receiving, received, partial, failed; out: converted, sending, retry_wait, "         \
         "delivered, not_delivered"},                                                              \
        {"pages", FT_INT, FF_READONLY, 0, 0, NULL, NULL, 0, NULL, "pages transferred"},            \
        {"doc_pages", FT_INT, FF_READONLY, 0,    0,                                                \
         NULL,        NULL,   0,           NULL, "pages of the document to send"},                 \
        {"resolution", FT_INT, FF_READONLY, 0, 0, NULL, NULL, 0, NULL, "dpi across"},              \
        {"bit_rate", FT_INT, FF_READONLY},                                                         \
        {"remote_ident", FT_TEXT, FF_READONLY | FF_SEARCH, 0, 32},                                 \
        {"error", FT_TEXT, FF_READONLY}, {"attempts", FT_INT, FF_READONLY},                        \
        {"max_attempts", FT_INT, FF_READONLY}, {"send_at", FT_INT, FF_READONLY},                   \
        {"call_uuid", FT_TEXT, FF_READONLY | FF_FILTER}, {"size", FT_INT, FF_READONLY},            \
        {"protocol", FT_JSON, FF_READONLY, 0,    0,                                                \
         NULL,       NULL,    0,           NULL, "what happened, in order: [{t (ms), text}]"},     \
        {"path", FT_TEXT, FF_READONLY | FF_HIDDEN}, {"created_at", FT_INT, FF_READONLY},           \
    {                                                                                              \
        "updated_at", FT_INT, FF_READONLY                                                          \
    }

static const struct crud_field fax_admin_fields[] = {
    {"owner_id", FT_ID, FF_READONLY | FF_FILTER | FF_NULLABLE, 0, 0, NULL, NULL, 0, "users",
     "the user whose fax box it is"},
    {"group_id", FT_ID, FF_READONLY | FF_FILTER | FF_NULLABLE, 0, 0, NULL, NULL, 0, "call_groups",
     "the call-processing group whose fax box it is"},
    FAX_FIELDS,
};

static const struct crud_field fax_own_fields[] = {FAX_FIELDS};

static void fax_decorate(struct crud_ctx *c, json_t *o)
{
    json_int_t id = json_integer_value(json_object_get(o, "id"));
    char *base = c->e->scope == SCOPE_OWNER ? cw_sprintf("/api/v1/me/faxes/%lld", (long long)id)
                                            : cw_sprintf("/api/v1/domains/%lld/faxes/%lld",
                                                         (long long)c->scope_id, (long long)id);
    char *file = cw_sprintf("%s/file", base);
    char *pages = cw_sprintf("%s/pages/1?format=png", base);
    json_object_set_new(o, "file_url", json_string(file));
    json_object_set_new(o, "page_url", json_string(pages));
    free(file);
    free(pages);
    free(base);
}

static bool fax_before_delete(struct crud_ctx *c)
{
    const char *st = json_string_value(json_object_get(c->old, "status"));
    if (st && (!strcmp(st, "receiving") || !strcmp(st, "sending")))
        return crud_fail(c, 409, "busy", "status", "the fax is being transferred; try later");
    return true;
}

static void fax_after_delete(struct crud_ctx *c)
{
    /* a fax's document is always var_dir/faxes/<domain>/<id>.tiff */
    json_t *id = json_object_get(c->old, "id");
    if (!json_is_integer(id)) return;
    char *tiff = cw_sprintf("%s/faxes/%lld/%lld.tiff", config_str("var_dir"),
                            (long long)c->domain_id, (long long)json_integer_value(id));
    remove(tiff);
    free(tiff);
}

static const struct crud_entity faxes_admin = {.path = "faxes",
                                               .type = "fax",
                                               .label = "fax",
                                               .table = "faxes",
                                               .scope = SCOPE_DOMAIN,
                                               .fields = fax_admin_fields,
                                               .nfields = CW_ARRAY_LEN(fax_admin_fields),
                                               .name_field = "counterpart",
                                               .order = "created_at DESC, id DESC",
                                               .read_role = ROLE_SUPERVISOR,
                                               .write_role = ROLE_DOMAIN_ADMIN,
                                               .no_create = true,
                                               .created_at = true,
                                               .updated_at = true,
                                               .before_delete = fax_before_delete,
                                               .after_delete = fax_after_delete,
                                               .decorate = fax_decorate};

static const struct crud_entity faxes_own = {.path = "faxes",
                                             .type = "fax",
                                             .label = "own fax",
                                             .table = "faxes",
                                             .scope = SCOPE_OWNER,
                                             .fields = fax_own_fields,
                                             .nfields = CW_ARRAY_LEN(fax_own_fields),
                                             .name_field = "counterpart",
                                             .order = "created_at DESC, id DESC",
                                             .read_role = ROLE_SUBSCRIBER,
                                             .write_role = ROLE_SUBSCRIBER,
                                             .no_create = true,
                                             .created_at = true,
                                             .updated_at = true,
                                             .before_delete = fax_before_delete,
                                             .after_delete = fax_after_delete,
                                             .decorate = fax_decorate};

void conference_api_init(void)
{
    crud_register(&rooms);
}

void faxes_api_init(void)
{
    crud_register(&faxes_admin);
    crud_register(&faxes_own);
}
