/*
 * crud.h - the table-driven REST engine behind every entity of API v1.
 *
 * An entity is described once (table, fields with type and limits, who may
 * read and write, tenant scope, hooks for what is special) and gets list /
 * get / create / update / delete endpoints with pagination, filters,
 * validation that names the offending field, role and tenant checks, one
 * transaction per change with its audit row, and a config.<type>.<action>
 * event. For API v1's entities: core/domain/, and the SIP edge's trunks.
 * Core thread only.
 */
#ifndef CW_CRUD_H
#define CW_CRUD_H

#include "auth/auth.h"
#include "base/cw.h"
#include "http/http.h"
#include "store/store.h"

#include <jansson.h>

enum crud_type {
    FT_TEXT = 1, /* string; min..max characters; optional ERE pattern */
    FT_INT,      /* integer in min..max */
    FT_BOOL,
    FT_ENUM,     /* one of values */
    FT_DIGITS,   /* string of min..max decimal digits */
    FT_EMAIL,    /* an address, or "" / null for none */
    FT_JSON,     /* any JSON array or object, stored as text; hooks check the shape */
    FT_ID,       /* id of a row of `ref` in the same domain (or null) */
    FT_PASSWORD, /* write-only; hashed off the core thread into password_hash (+ SIP HA1) */
    FT_IDLIST,   /* virtual array of ids; hooks store it */
};

enum {
    FF_REQUIRED = 1 << 0,   /* must be given on create */
    FF_CREATE = 1 << 1,     /* settable on create only */
    FF_READONLY = 1 << 2,   /* set by the server; clients may not send it */
    FF_VIRTUAL = 1 << 3,    /* not a column: hooks read and write it */
    FF_FILTER = 1 << 4,     /* list filter: ?name=value */
    FF_SEARCH = 1 << 5,     /* matched by ?q= */
    FF_UNIQUE = 1 << 6,     /* unique within the scope (domain, pool, owner) */
    FF_NULLABLE = 1 << 7,   /* null clears it */
    FF_HIDDEN = 1 << 8,     /* a column never shown (file paths) */
    FF_GLOBAL = 1 << 9,     /* with FF_UNIQUE: unique across the whole system */
    FF_WRITEONLY = 1 << 10, /* accepted on input, never shown (a hook stores a digest) */
};

struct crud_field {
    const char *name; /* JSON member and column */
    enum crud_type type;
    unsigned flags;
    int64_t min, max;
    const char *const *values; /* FT_ENUM, NULL-terminated */
    const char *pattern;       /* FT_TEXT: POSIX extended regex the whole value must match */
    enum cw_role write_role;   /* least powerful role that may set it; 0 = the entity's */
    const char *ref;           /* FT_ID: table whose row must exist in the same domain */
    const char *doc;
};

enum crud_scope {
    SCOPE_GLOBAL, /* /api/v1/<path>: rows limited by the reach hook */
    SCOPE_POOL,   /* /api/v1/pools/:pool/<path>: rows with pool_id */
    SCOPE_DOMAIN, /* /api/v1/domains/:domain/<path>: rows with domain_id */
    SCOPE_OWNER,  /* /api/v1/me/<path>: rows with the caller's domain_id and owner_id */
};

struct crud_entity;

/* One request's state as it moves through the engine (and across async work). */
struct crud_ctx {
    http_req *req;
    const struct crud_entity *e;
    int64_t scope_id;  /* pool, domain or owner id from the path */
    int64_t domain_id; /* tenant of the object, for audit and events; 0 = none */
    int64_t pool_id;   /* pool of the object when it is pool-level */
    int64_t id;        /* the object (update, delete, after insert) */
    bool creating;
    json_t *in;    /* the validated request body */
    json_t *cols;  /* column -> value to write; hooks may add derived columns */
    json_t *old;   /* the object before the change (update, delete) */
    json_t *extra; /* hook scratch: e.g. member lists to store in after_write */
    const char *password;
};

struct crud_entity {
    const char *path;  /* URL segment, e.g. "call-groups" */
    const char *type;  /* object type for audit and events, e.g. "call_group" */
    const char *label; /* for summaries, e.g. "call-processing group" */
    const char *table;
    enum crud_scope scope;
    const char *where; /* fixed extra condition, e.g. "owner_id IS NULL" */
    const struct crud_field *fields;
    int nfields;
    const char *name_field; /* the object's name in the audit log */
    const char *order;      /* default ORDER BY */
    enum cw_role read_role, write_role, create_role, delete_role; /* 0 = write_role */
    bool created_at, updated_at;                                  /* the table has these columns */
    bool no_create;          /* creation has its own endpoint (uploads) */
    bool is_domain, is_pool; /* the object is itself a tenant (for audit and events) */

    /* Append the caller's reach to where (" AND ..." with args); false = sees nothing. */
    bool (*reach)(struct crud_ctx *c, cw_buf *where, store_arg *args, int *nargs);
    /* After field checks, before writing: cross-field rules, derived columns. */
    bool (*validate)(struct crud_ctx *c);
    /* Inside the transaction after INSERT/UPDATE (c->id set): member tables etc. */
    bool (*after_write)(struct crud_ctx *c);
    /* Inside the transaction before DELETE: refuse (reply, false) or tidy up. */
    bool (*before_delete)(struct crud_ctx *c);
    /* After a committed delete: files. */
    void (*after_delete)(struct crud_ctx *c);
    /* Add virtual members to an output object (id is set). */
    void (*decorate)(struct crud_ctx *c, json_t *obj);
    /* Add virtual members to every object of a list page at once (a few queries a page,
     * not a few a row); when set, lists call it instead of decorate. */
    void (*decorate_page)(struct crud_ctx *c, json_t *items);
    /* The decorate hooks read the store and nothing else (no live call or registration
     * state), so a list page may be served again while the store is unchanged. Entities
     * without decorate hooks need not say so. */
    bool decorate_stored;
    /* For FT_PASSWORD: SIP login and realm for the HA1 digests ("" = none). */
    void (*pw_identity)(struct crud_ctx *c, char *login, size_t llen, char *realm, size_t rlen);
};

/* Register the five routes of an entity. */
void crud_register(const struct crud_entity *e);

/* The object with this id as the API shows it, if the caller's scope holds it. */
json_t *crud_fetch(struct crud_ctx *c, int64_t id);

/* Helpers for hooks. */
bool crud_fail(struct crud_ctx *c, int status, const char *code, const char *field, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
/* The value a field will have after the change: input, else old, else NULL. */
json_t *crud_value(struct crud_ctx *c, const char *field);
/* A store failure as the right HTTP error (409 for unique/foreign-key). */
bool crud_store_fail(struct crud_ctx *c, int rc);
/* before_delete hook: refuse deleting the account making the request. */
bool crud_not_self(struct crud_ctx *c);
/* Read an id list (JSON array of integers) from an SQL query with one id argument. */
json_t *crud_id_list(const char *sql, int64_t id);
/*
 * For decorate_page hooks: one query over the ids of a page's objects. sql holds one
 * "(?)" that becomes the list of ids "(?, ?, ...)", padded with 0 to a few fixed lengths
 * so that a handful of prepared statements serve every page size. NULL on a store error.
 */
store_res *crud_page_query(json_t *items, const char *sql);
/* The objects of a page by id: a JSON object "<id>" -> object (borrowed references). */
json_t *crud_page_index(json_t *items);

/* Every entity of API v1 (entities.c) and the special endpoints. */
void crud_entities_init(void);
void users_api_init(void);
void import_api_init(void);
void sounds_api_init(void);
void callctl_api_init(void);
void conference_api_init(void); /* conference rooms (conference.c) */
void faxes_api_init(void);      /* fax boxes: list, delete (conference.c) */
void routing_api_init(void);
void media_api_init(void);
void opmsg_api_init(void);

/*
 * before_delete rule for objects routing refers to (users, groups, IVR
 * flows, sound files, day groups, schedules, classifiers): 409 naming the
 * rule or schedule that uses it; otherwise the object's own references go.
 * ref_type: user, call_group, ivr_flow, sound_file, day_group, schedule, classifier.
 */
bool routing_not_referenced(struct crud_ctx *c, const char *ref_type);
/* The IVR menu tree of an ivr_flows row: 400 naming the menu node and field. */
bool flow_check(struct crud_ctx *c, json_t *flow);

/* Shared rules. */
extern const char *const crud_languages[];
extern const char *const crud_statuses[]; /* of accounts and domains: active, blocked */
/* Is this extension free in the domain (users, call groups, IVR flows, conference rooms,
 * ring lists)? */
bool domain_extension_free(int64_t domain_id, const char *ext, const char *self_table,
                           int64_t self_id);
/*
 * validate-hook rule for tables sharing the dial plan (users, call groups,
 * IVR flows): an extension given must be free; a missing one is chosen now
 * when required. Replies and returns false on a clash.
 */
bool domain_extension_rule(struct crud_ctx *c, bool required);
/* The lowest free extension of at least 3 digits. */
int domain_next_extension(int64_t domain_id, char *out, size_t outlen);

#endif
