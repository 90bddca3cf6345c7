/*
 * schema.c - the numbered schema migrations, in one portable dialect.
 *
 * {{pk}} is an auto-increment integer key, {{bigint}} a 64-bit integer,
 * {{blob}} raw bytes. Times are seconds since the epoch unless a column
 * name ends in _ms. Booleans are 0/1 integers. Statements end with ";\n".
 * Never edit a migration that has shipped: add the next one. Each is
 * applied once, by version, in the order of this table.
 */
#include "store/store_int.h"

static const char m001[] =
    "CREATE TABLE pools (\n"
    "  id {{pk}}, name TEXT NOT NULL UNIQUE, created_at {{bigint}} NOT NULL);\n"
    "CREATE TABLE subgroups (\n"
    "  id {{pk}}, pool_id {{bigint}} NOT NULL REFERENCES pools(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0,\n"
    "  created_at {{bigint}} NOT NULL, UNIQUE(pool_id, name));\n"
    "CREATE TABLE domains (\n"
    "  id {{pk}}, pool_id {{bigint}} REFERENCES pools(id),\n"
    "  subgroup_id {{bigint}} REFERENCES subgroups(id),\n"
    "  name TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL DEFAULT '',\n"
    "  routing_number TEXT UNIQUE, timezone TEXT NOT NULL DEFAULT 'UTC',\n"
    "  default_cli TEXT, language TEXT NOT NULL DEFAULT 'ru',\n"
    "  max_users INTEGER NOT NULL DEFAULT 1000, max_channels INTEGER NOT NULL DEFAULT 100,\n"
    "  pickup_code TEXT NOT NULL DEFAULT '*8', ivr_timeout INTEGER NOT NULL DEFAULT 5,\n"
    "  ivr_max_errors INTEGER NOT NULL DEFAULT 3, notify_email TEXT,\n"
    "  status TEXT NOT NULL DEFAULT 'active', created_at {{bigint}} NOT NULL);\n"
    "CREATE TABLE users (\n"
    "  id {{pk}}, domain_id {{bigint}} REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  pool_id {{bigint}} REFERENCES pools(id) ON DELETE CASCADE,\n"
    "  login TEXT NOT NULL, display_name TEXT NOT NULL, extension TEXT,\n"
    "  role TEXT NOT NULL, is_operator INTEGER NOT NULL DEFAULT 0,\n"
    "  email TEXT, job_title TEXT, phone TEXT, cli_number TEXT,\n"
    "  restriction TEXT NOT NULL DEFAULT 'none', language TEXT NOT NULL DEFAULT 'ru',\n"
    "  status TEXT NOT NULL DEFAULT 'active',\n"
    "  voicemail_enabled INTEGER NOT NULL DEFAULT 0, voicemail_notify INTEGER NOT NULL DEFAULT 0,\n"
    "  recording_enabled INTEGER NOT NULL DEFAULT 0, dtmf_mode TEXT NOT NULL DEFAULT 'auto',\n"
    "  password_hash TEXT NOT NULL, sip_ha1_md5 TEXT, sip_ha1_sha256 TEXT,\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL);\n"
    "CREATE UNIQUE INDEX users_domain_login ON users(domain_id, login) WHERE domain_id IS NOT NULL;\n"
    "CREATE UNIQUE INDEX users_global_login ON users(login) WHERE domain_id IS NULL;\n"
    "CREATE UNIQUE INDEX users_domain_ext ON users(domain_id, extension);\n"
    "CREATE TABLE user_subgroups (\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  subgroup_id {{bigint}} NOT NULL REFERENCES subgroups(id) ON DELETE CASCADE,\n"
    "  PRIMARY KEY(user_id, subgroup_id));\n"
    "CREATE TABLE sessions (\n"
    "  token_hash TEXT PRIMARY KEY, user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  created_at {{bigint}} NOT NULL, expires_at {{bigint}} NOT NULL, ip TEXT);\n"
    "CREATE TABLE api_tokens (\n"
    "  id {{pk}}, user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at {{bigint}} NOT NULL,\n"
    "  last_used_at {{bigint}});\n"
    "CREATE TABLE password_resets (\n"
    "  token_hash TEXT PRIMARY KEY, user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  expires_at {{bigint}} NOT NULL, used INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE pickup_groups (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, UNIQUE(domain_id, name));\n"
    "CREATE TABLE pickup_members (\n"
    "  group_id {{bigint}} NOT NULL REFERENCES pickup_groups(id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,\n"
    "  PRIMARY KEY(group_id, user_id));\n"
    "CREATE TABLE call_groups (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, extension TEXT NOT NULL, strategy TEXT NOT NULL DEFAULT 'not_set',\n"
    "  email TEXT, greeting_text TEXT, info_url TEXT,\n"
    "  voicemail_enabled INTEGER NOT NULL DEFAULT 0,\n"
    "  ring_timeout INTEGER NOT NULL DEFAULT 20, wrapup_time INTEGER NOT NULL DEFAULT 5,\n"
    "  max_wait INTEGER NOT NULL DEFAULT 0, max_length INTEGER NOT NULL DEFAULT 0,\n"
    "  max_misses INTEGER NOT NULL DEFAULT 3, avg_talk_time INTEGER NOT NULL DEFAULT 0,\n"
    "  moh TEXT NOT NULL DEFAULT 'default', announce_interval INTEGER NOT NULL DEFAULT 0,\n"
    "  announce_position INTEGER NOT NULL DEFAULT 0, overflow_target TEXT,\n"
    "  join_empty INTEGER NOT NULL DEFAULT 1, leave_empty INTEGER NOT NULL DEFAULT 0,\n"
    "  callback_key TEXT, tier_escalation INTEGER NOT NULL DEFAULT 0,\n"
    "  created_at {{bigint}} NOT NULL, UNIQUE(domain_id, name), UNIQUE(domain_id, extension));\n"
    "CREATE TABLE call_group_members (\n"
    "  group_id {{bigint}} NOT NULL REFERENCES call_groups(id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  priority INTEGER NOT NULL DEFAULT 1, penalty INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY(group_id, user_id));\n"
    "CREATE TABLE external_numbers (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  number TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',\n"
    "  kind TEXT NOT NULL DEFAULT 'city', target TEXT, created_at {{bigint}} NOT NULL);\n"
    "CREATE TABLE sound_files (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', format TEXT NOT NULL,\n"
    "  size {{bigint}} NOT NULL, duration_ms {{bigint}} NOT NULL DEFAULT 0, path TEXT NOT NULL,\n"
    "  created_at {{bigint}} NOT NULL, UNIQUE(domain_id, name));\n"
    "CREATE TABLE contact_groups (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_id {{bigint}} REFERENCES users(id) ON DELETE CASCADE, name TEXT NOT NULL);\n"
    "CREATE TABLE contacts (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_id {{bigint}} REFERENCES users(id) ON DELETE CASCADE,\n"
    "  group_id {{bigint}} REFERENCES contact_groups(id) ON DELETE SET NULL,\n"
    "  name TEXT NOT NULL, speed_dial TEXT NOT NULL, numbers TEXT NOT NULL DEFAULT '[]',\n"
    "  created_at {{bigint}} NOT NULL);\n"
    "CREATE TABLE audit_log (\n"
    "  id {{pk}}, ts {{bigint}} NOT NULL, pool_id {{bigint}}, domain_id {{bigint}},\n"
    "  actor_id {{bigint}}, actor_login TEXT NOT NULL, actor_name TEXT NOT NULL, ip TEXT,\n"
    "  object_type TEXT NOT NULL, object_name TEXT NOT NULL, action TEXT NOT NULL,\n"
    "  details TEXT NOT NULL DEFAULT '{}');\n"
    "CREATE INDEX audit_log_domain_ts ON audit_log(domain_id, ts);\n"
    "CREATE TABLE registrations (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  contact TEXT NOT NULL, expires_at {{bigint}} NOT NULL, user_agent TEXT,\n"
    "  source TEXT, transport TEXT, call_id TEXT, node TEXT NOT NULL DEFAULT '',\n"
    "  updated_at {{bigint}} NOT NULL, UNIQUE(user_id, contact));\n"
    "CREATE TABLE ivr_flows (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, extension TEXT, script TEXT, flow TEXT NOT NULL DEFAULT '{}',\n"
    "  version INTEGER NOT NULL DEFAULT 1, updated_at {{bigint}} NOT NULL,\n"
    "  UNIQUE(domain_id, name), UNIQUE(domain_id, extension));\n"
    "CREATE TABLE agents (\n"
    "  user_id {{bigint}} PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,\n"
    "  state TEXT NOT NULL DEFAULT 'logged_out', reason TEXT, since {{bigint}} NOT NULL);\n"
    "CREATE TABLE cdrs (\n"
    "  id {{pk}}, uuid TEXT NOT NULL UNIQUE, domain_id {{bigint}},\n"
    "  direction TEXT NOT NULL, a_number TEXT, a_name TEXT, b_number TEXT, b_name TEXT,\n"
    "  dialed TEXT, trunk TEXT, queue_id {{bigint}}, agent_id {{bigint}}, states TEXT NOT NULL,\n"
    "  released_by TEXT, cause TEXT, start_ms {{bigint}} NOT NULL, answer_ms {{bigint}},\n"
    "  end_ms {{bigint}} NOT NULL, talk_s INTEGER NOT NULL DEFAULT 0,\n"
    "  wait_s INTEGER NOT NULL DEFAULT 0, recording TEXT, quality TEXT NOT NULL DEFAULT '{}',\n"
    "  events TEXT NOT NULL DEFAULT '[]');\n"
    "CREATE INDEX cdrs_domain_start ON cdrs(domain_id, start_ms);\n"
    "CREATE TABLE queue_log (\n"
    "  id {{pk}}, ts_ms {{bigint}} NOT NULL, domain_id {{bigint}} NOT NULL,\n"
    "  queue_id {{bigint}} NOT NULL, call_uuid TEXT NOT NULL, agent_id {{bigint}},\n"
    "  event TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');\n"
    "CREATE INDEX queue_log_queue_ts ON queue_log(queue_id, ts_ms);\n";

/* SIP trunks and outbound lines (seed 004, seed 001 §9.6) with their event log. */
static const char m002[] =
    "CREATE TABLE trunks (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'sip_trunk',\n"
    "  enabled INTEGER NOT NULL DEFAULT 1,\n"
    "  host TEXT NOT NULL, port INTEGER NOT NULL DEFAULT 5060,\n"
    "  transport TEXT NOT NULL DEFAULT 'udp',\n"
    "  login TEXT NOT NULL DEFAULT '', password TEXT NOT NULL DEFAULT '',\n"
    "  realm TEXT NOT NULL DEFAULT '',\n"
    "  register INTEGER NOT NULL DEFAULT 1, register_expires INTEGER NOT NULL DEFAULT 600,\n"
    "  priority INTEGER NOT NULL DEFAULT 100,\n"
    "  dial_pattern TEXT NOT NULL DEFAULT 'sip:8(\\d{3}@.*)',\n"
    "  strip_digits INTEGER NOT NULL DEFAULT 0, prefix TEXT NOT NULL DEFAULT '',\n"
    "  max_in INTEGER NOT NULL DEFAULT 0, max_out INTEGER NOT NULL DEFAULT 0,\n"
    "  caller_ids TEXT NOT NULL DEFAULT '',\n"
    "  only_group_id {{bigint}} REFERENCES call_groups(id) ON DELETE SET NULL,\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL,\n"
    "  UNIQUE(domain_id, name));\n"
    "CREATE TABLE trunk_log (\n"
    "  id {{pk}}, trunk_id {{bigint}} NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,\n"
    "  ts_ms {{bigint}} NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');\n"
    "CREATE INDEX trunk_log_trunk ON trunk_log(trunk_id, id);\n";

/* API v1: indexes for the audit log's filters and the auth lookups. */
static const char m003[] =
    "CREATE INDEX audit_log_pool_ts ON audit_log(pool_id, ts);\n"
    "CREATE INDEX audit_log_ts ON audit_log(ts);\n"
    "CREATE INDEX sessions_user ON sessions(user_id);\n"
    "CREATE INDEX api_tokens_user ON api_tokens(user_id);\n"
    "CREATE INDEX password_resets_user ON password_resets(user_id);\n"
    "CREATE INDEX call_group_members_user ON call_group_members(user_id);\n"
    "CREATE INDEX contacts_owner ON contacts(domain_id, owner_id);\n"
    "CREATE INDEX users_pool ON users(pool_id);\n"
    "CREATE INDEX domains_pool ON domains(pool_id, subgroup_id);\n";

/* Call control: forwarding schemes, voicemail, recordings, VIP callers, operator messages. */
static const char m004[] =
    "CREATE TABLE forwarding_rules (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  kind TEXT NOT NULL DEFAULT 'sip', number TEXT NOT NULL,\n"
    "  priority INTEGER NOT NULL DEFAULT 10, ring_time INTEGER NOT NULL DEFAULT 40,\n"
    "  schedule TEXT, enabled INTEGER NOT NULL DEFAULT 1, is_main INTEGER NOT NULL DEFAULT 0,\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX forwarding_rules_owner ON forwarding_rules(owner_id, priority);\n"
    "ALTER TABLE users ADD COLUMN voicemail_pin TEXT;\n"
    "ALTER TABLE users ADD COLUMN greeting_sound_id {{bigint}};\n"
    "ALTER TABLE users ADD COLUMN vm_greeting_sound_id {{bigint}};\n"
    "ALTER TABLE users ADD COLUMN ringback_sound_id {{bigint}};\n"
    "CREATE TABLE voicemail_messages (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_id {{bigint}} REFERENCES users(id) ON DELETE CASCADE,\n"
    "  group_id {{bigint}} REFERENCES call_groups(id) ON DELETE CASCADE,\n"
    "  call_uuid TEXT NOT NULL, caller TEXT NOT NULL, caller_name TEXT NOT NULL DEFAULT '',\n"
    "  duration_ms {{bigint}} NOT NULL, path TEXT NOT NULL, heard INTEGER NOT NULL DEFAULT 0,\n"
    "  created_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX voicemail_owner ON voicemail_messages(owner_id, created_at);\n"
    "CREATE TABLE recordings (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  call_uuid TEXT NOT NULL, path TEXT NOT NULL, duration_ms {{bigint}} NOT NULL DEFAULT 0,\n"
    "  size {{bigint}} NOT NULL DEFAULT 0, a_number TEXT, b_number TEXT, user_id {{bigint}},\n"
    "  group_id {{bigint}}, created_at {{bigint}} NOT NULL, expires_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX recordings_domain ON recordings(domain_id, created_at);\n"
    "CREATE INDEX recordings_expiry ON recordings(expires_at);\n"
    "ALTER TABLE domains ADD COLUMN record_all INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE domains ADD COLUMN recording_retention INTEGER NOT NULL DEFAULT 6;\n"
    "ALTER TABLE call_groups ADD COLUMN recording_enabled INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE vip_numbers (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  number TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 1, comment TEXT NOT NULL DEFAULT '',\n"
    "  created_at {{bigint}} NOT NULL, UNIQUE(domain_id, number));\n"
    "CREATE TABLE operator_messages (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  group_id {{bigint}} NOT NULL REFERENCES call_groups(id) ON DELETE CASCADE,\n"
    "  author_id {{bigint}} REFERENCES users(id) ON DELETE SET NULL, text TEXT NOT NULL,\n"
    "  created_at {{bigint}} NOT NULL);\n"
    "CREATE TABLE operator_message_reads (\n"
    "  message_id {{bigint}} NOT NULL REFERENCES operator_messages(id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  read_at {{bigint}} NOT NULL, PRIMARY KEY(message_id, user_id));\n";

/*
 * Routing of incoming numbers (day groups, schedules, classifiers, rules,
 * black/white lists) and what routing refers to; recording bookkeeping;
 * operator messages to several groups, with the recipients fixed when sent
 * (these replace migration 4's single-group tables, which nothing used).
 */
static const char m005[] =
    "CREATE TABLE day_groups (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, days TEXT NOT NULL DEFAULT '[]', holidays TEXT NOT NULL DEFAULT '[]',\n"
    "  extra_days TEXT NOT NULL DEFAULT '[]', created_at {{bigint}} NOT NULL,\n"
    "  updated_at {{bigint}} NOT NULL, UNIQUE(domain_id, name));\n"
    "CREATE TABLE schedules (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, periods TEXT NOT NULL DEFAULT '[]', created_at {{bigint}} NOT NULL,\n"
    "  updated_at {{bigint}} NOT NULL, UNIQUE(domain_id, name));\n"
    "CREATE TABLE classifiers (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL,\n"
    "  UNIQUE(domain_id, name));\n"
    "CREATE TABLE classifier_numbers (\n"
    "  classifier_id {{bigint}} NOT NULL REFERENCES classifiers(id) ON DELETE CASCADE,\n"
    "  number TEXT NOT NULL, norm TEXT NOT NULL, PRIMARY KEY(classifier_id, norm));\n"
    "CREATE INDEX classifier_numbers_norm ON classifier_numbers(norm);\n"
    "CREATE TABLE routing_rules (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  number_id {{bigint}} NOT NULL REFERENCES external_numbers(id) ON DELETE CASCADE,\n"
    "  priority INTEGER NOT NULL, name TEXT NOT NULL DEFAULT '',\n"
    "  enabled INTEGER NOT NULL DEFAULT 1, schedule TEXT, schedule_id {{bigint}},\n"
    "  schedule_match TEXT NOT NULL DEFAULT 'inside', prefixes TEXT, classifier_id {{bigint}},\n"
    "  target TEXT NOT NULL, created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX routing_rules_number ON routing_rules(number_id, priority);\n"
    "CREATE TABLE routing_refs (\n"
    "  domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_type TEXT NOT NULL, owner_id {{bigint}} NOT NULL,\n"
    "  ref_type TEXT NOT NULL, ref_id {{bigint}} NOT NULL);\n"
    "CREATE INDEX routing_refs_owner ON routing_refs(owner_type, owner_id);\n"
    "CREATE INDEX routing_refs_ref ON routing_refs(ref_type, ref_id);\n"
    "ALTER TABLE external_numbers ADD COLUMN filter_mode TEXT NOT NULL DEFAULT 'none';\n"
    "ALTER TABLE external_numbers ADD COLUMN filter_list TEXT NOT NULL DEFAULT '[]';\n"
    "ALTER TABLE recordings ADD COLUMN state TEXT NOT NULL DEFAULT 'done';\n"
    "ALTER TABLE recordings ADD COLUMN caller_user_id {{bigint}};\n"
    "CREATE INDEX recordings_call ON recordings(call_uuid);\n"
    "CREATE INDEX voicemail_group ON voicemail_messages(group_id, created_at);\n"
    "DROP TABLE operator_message_reads;\n"
    "DROP TABLE operator_messages;\n"
    "CREATE TABLE operator_messages (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  title TEXT NOT NULL, text TEXT NOT NULL,\n"
    "  author_id {{bigint}} REFERENCES users(id) ON DELETE SET NULL,\n"
    "  created_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX operator_messages_domain ON operator_messages(domain_id, created_at);\n"
    "CREATE TABLE operator_message_groups (\n"
    "  message_id {{bigint}} NOT NULL REFERENCES operator_messages(id) ON DELETE CASCADE,\n"
    "  group_id {{bigint}} NOT NULL REFERENCES call_groups(id) ON DELETE CASCADE,\n"
    "  PRIMARY KEY(message_id, group_id));\n"
    "CREATE TABLE operator_message_recipients (\n"
    "  message_id {{bigint}} NOT NULL REFERENCES operator_messages(id) ON DELETE CASCADE,\n"
    "  user_id {{bigint}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "  read_at {{bigint}}, PRIMARY KEY(message_id, user_id));\n"
    "CREATE INDEX operator_message_recipients_user ON operator_message_recipients(user_id);\n";

/*
 * Conference rooms (seed 002: up to 16 parties; seed 000: rooms of a subscriber that end
 * when their creator leaves) and fax boxes (seed 001 §4.4, §7.5.4, §8.1.4: received and
 * sent faxes with status and protocol). Room recordings are rows of recordings.
 */
static const char m006[] =
    "CREATE TABLE conference_rooms (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, extension TEXT NOT NULL, pin TEXT, moderator_pin TEXT,\n"
    "  owner_id {{bigint}} REFERENCES users(id) ON DELETE SET NULL,\n"
    "  max_parties INTEGER NOT NULL DEFAULT 16, record INTEGER NOT NULL DEFAULT 0,\n"
    "  end_with_moderator INTEGER NOT NULL DEFAULT 0, language TEXT,\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL,\n"
    "  UNIQUE(domain_id, name), UNIQUE(domain_id, extension));\n"
    "ALTER TABLE recordings ADD COLUMN room_id {{bigint}};\n"
    "CREATE TABLE faxes (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  owner_id {{bigint}} REFERENCES users(id) ON DELETE CASCADE,\n"
    "  group_id {{bigint}} REFERENCES call_groups(id) ON DELETE CASCADE,\n"
    "  direction TEXT NOT NULL, counterpart TEXT NOT NULL DEFAULT '',\n"
    "  counterpart_name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,\n"
    "  pages INTEGER NOT NULL DEFAULT 0, doc_pages INTEGER NOT NULL DEFAULT 0,\n"
    "  resolution INTEGER NOT NULL DEFAULT 0, bit_rate INTEGER NOT NULL DEFAULT 0,\n"
    "  remote_ident TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',\n"
    "  attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 1,\n"
    "  send_at {{bigint}}, call_uuid TEXT, path TEXT, size {{bigint}} NOT NULL DEFAULT 0,\n"
    "  origin TEXT NOT NULL DEFAULT 'call',\n"
    "  protocol TEXT NOT NULL DEFAULT '[]',\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL);\n"
    "CREATE INDEX faxes_domain ON faxes(domain_id, created_at);\n"
    "CREATE INDEX faxes_owner ON faxes(owner_id, created_at);\n"
    "CREATE INDEX faxes_status ON faxes(status, send_at);\n";

/* Personal IVR (seed 000): a subscriber's own script for incoming calls. */
static const char m007[] = "ALTER TABLE users ADD COLUMN personal_ivr TEXT;\n";

/*
 * Ring lists (seed 002): an extension of the dial plan that rings a list of users and
 * outside numbers, one after another or all at once, with retries, melodies and the
 * caller's number announced to whoever answers. Their conversations' recordings are rows
 * of recordings with the list.
 */
static const char m008[] =
    "CREATE TABLE ring_lists (\n"
    "  id {{pk}}, domain_id {{bigint}} NOT NULL REFERENCES domains(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, extension TEXT NOT NULL, method TEXT NOT NULL DEFAULT 'sequential',\n"
    "  answer_timeout INTEGER NOT NULL DEFAULT 20, retries INTEGER NOT NULL DEFAULT 0,\n"
    "  retry_pause INTEGER NOT NULL DEFAULT 10,\n"
    "  ring_sound_id {{bigint}} REFERENCES sound_files(id) ON DELETE SET NULL,\n"
    "  pause_sound_id {{bigint}} REFERENCES sound_files(id) ON DELETE SET NULL,\n"
    "  announce_caller INTEGER NOT NULL DEFAULT 0, record INTEGER NOT NULL DEFAULT 0,\n"
    "  is_default INTEGER NOT NULL DEFAULT 0, language TEXT,\n"
    "  created_at {{bigint}} NOT NULL, updated_at {{bigint}} NOT NULL,\n"
    "  UNIQUE(domain_id, name), UNIQUE(domain_id, extension));\n"
    "CREATE TABLE ring_list_members (\n"
    "  list_id {{bigint}} NOT NULL REFERENCES ring_lists(id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL, number TEXT NOT NULL, lines INTEGER NOT NULL DEFAULT 1,\n"
    "  schedule TEXT, PRIMARY KEY(list_id, position));\n"
    "ALTER TABLE recordings ADD COLUMN ring_list_id {{bigint}};\n";

/*
 * Call-processing groups: the ring-progressively step, a greeting the caller hears once on
 * entering the queue (seed 001 §8.1.2) and what the caller hears while waiting.
 */
static const char m009[] =
    "ALTER TABLE call_groups ADD COLUMN progressive_step INTEGER NOT NULL DEFAULT 5;\n"
    "ALTER TABLE call_groups ADD COLUMN greeting_sound_id {{bigint}}\n"
    "  REFERENCES sound_files(id) ON DELETE SET NULL;\n"
    "ALTER TABLE call_groups ADD COLUMN waiting_audio TEXT NOT NULL DEFAULT 'moh';\n";

/*
 * Indexes for the API's list pages: a domain's users in the order the list shows them
 * (display name, then id), so a page is read from the index instead of sorting every
 * user of the domain on each request.
 */
static const char m010[] = "CREATE INDEX users_domain_display ON users(domain_id, display_name, id);\n";

const struct store_migration store_migrations[] = {
    {1, "domain model, auth, registrations, cdrs, queue log", m001},
    {2, "SIP trunks and their log", m002},
    {3, "API v1 indexes", m003},
    {4, "forwarding, voicemail, recordings, VIP numbers, operator messages", m004},
    {5, "routing rules, schedules, classifiers, number filters, operator messages", m005},
    {6, "conference rooms, fax boxes", m006},
    {7, "personal IVR scripts", m007},
    {8, "ring lists", m008},
    {9, "queue greeting, waiting audio, ring-progressively step", m009},
    {10, "users list index", m010},
};
const int store_n_migrations = (int)(sizeof store_migrations / sizeof store_migrations[0]);
