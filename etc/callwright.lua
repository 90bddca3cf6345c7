-- Callwright configuration: a Lua table, read as data (no libraries).
-- Every key the daemon knows is here with its meaning and default;
-- "live" keys change on SIGHUP, the others need a restart. Nested tables
-- are dotted keys ({ http = { port = 8080 } } is http.port), and
-- --set key=value on the command line beats this file.
-- Made by `callwright --help-config=lua`, then values chosen for `make run`.
return {
  http = {
    -- address the HTTP API and web apps listen on; default "127.0.0.1"
    listen = "127.0.0.1",
    -- HTTP port (0 = no plain HTTP); default 8080
    port = 8080,
    -- HTTPS port; needs http.tls_cert and http.tls_key; default 0
    tls_port = 0,
    -- PEM certificate chain for HTTPS; default ""
    tls_cert = "",
    -- PEM private key for HTTPS; default ""
    tls_key = "",
    -- largest request body accepted, bytes (uploads); default 1048576 (live)
    max_body = 1048576,
    -- largest sound-file upload, bytes; default 33554432 (live)
    max_upload = 33554432,
    -- folder served as the browser apps; default "web"
    web_root = "web",
    -- seconds between keep-alive comments on event streams; default 15
    sse_heartbeat = 15,
  },
  -- base URL put into e-mailed links (password reset, voicemail); default "http://127.0.0.1:8080" (live)
  public_url = "http://127.0.0.1:8080",
  sip = {
    -- address SIP listens on (UDP and TCP); default "0.0.0.0"
    listen = "0.0.0.0",
    -- SIP port for UDP and TCP; default 5060
    port = 5060,
    -- SIP over TLS port when sip.tls_cert is set; default 5061
    tls_port = 5061,
    -- folder with agent.pem (cert+key) for SIP TLS; empty = off; default ""
    tls_cert = "",
    -- address put in Contact and SDP; empty = sip.listen, or the primary interface; default ""
    public_ip = "",
    -- shortest registration accepted, seconds; default 60 (live)
    reg_min_expires = 60,
    -- longest registration granted, seconds; default 3600 (live)
    reg_max_expires = 3600,
    -- OPTIONS keep-alive to registered contacts, seconds (0=off); default 30 (live)
    keepalive = 30,
    -- digest challenges: md5, sha-256, or both (SHA-256 first; needs RFC 8760 phones); default "md5" (live)
    digest = "md5",
    -- failed authentications from one IP before a ban; default 5 (live)
    ban_failures = 5,
    -- window the failures are counted in, seconds; default 60 (live)
    ban_window = 60,
    -- how long a banned IP is ignored, seconds; default 600 (live)
    ban_time = 600,
    -- session-timer interval offered, seconds; default 1800 (live)
    session_timer = 1800,
    -- shortest session-timer interval accepted (Min-SE, RFC 4028: 90), seconds; default 90
    session_min_se = 90,
    -- default ring time before no_answer, seconds; default 40 (live)
    ring_timeout = 40,
    -- first wait before a failed trunk registration is retried, seconds (doubles up to 16x); default 30 (live)
    trunk_retry = 30,
    -- age after which a digest nonce is stale and the client is challenged again, seconds; default 300 (live)
    nonce_ttl = 300,
  },
  call = {
    -- park the other party in the first free slot (transfer to it, or dial ##<code>); default "*70" (live)
    park_code = "*70",
    -- park slots of every domain, a range first-last; default "701-709" (live)
    park_slots = "701-709",
    -- a parked call rings the one who parked it after this long, seconds; default 60 (live)
    park_timeout = 60,
    -- in-call codes: pause after the last digit of ##<number> that ends it, seconds; default 3 (live)
    dtmf_timeout = 3,
  },
  media = {
    -- media worker threads (0 = one per core); default 0
    workers = 0,
    -- lowest RTP port; default 16384
    rtp_min = 16384,
    -- highest RTP port; default 32767
    rtp_max = 32767,
    -- end a call after this many seconds without RTP; default 60 (live)
    rtp_timeout = 60,
    -- default DTMF detection: rfc4733, inband, or auto (both); default "auto" (live)
    dtmf_mode = "auto",
    -- tone plan for ringback/busy: ru or us; default "ru" (live)
    tone_locale = "ru",
    -- media workers at real-time priority (SCHED_FIFO; else nice -10), when allowed; default true
    realtime = true,
    -- most concurrent RTP sessions (calls beyond get 503); 0 = no limit; default 0
    max_sessions = 0,
    -- address RTP binds to; empty = sip.public_ip or all; default ""
    ip = "",
  },
  fax = {
    -- more attempts after a fax the API sends fails (0..10); default 3 (live)
    retries = 3,
    -- wait between attempts to send a fax, seconds; default 120 (live)
    retry_interval = 120,
  },
  -- store: a SQLite file path, or postgresql://user@host:port/db; default "var/callwright.db"
  db = "var/callwright.db",
  -- folder for recordings, sound files, voicemail, faxes; default "var"
  var_dir = "var",
  -- folder with generated prompt sets; default the sounds folder of the build (live)
  -- sounds_dir = "sounds",
  -- Lua library and system scripts; default "scripts" (live)
  scripts_dir = "scripts",
  -- IVR flow scripts; default "ivr-flows" (live)
  flows_dir = "ivr-flows",
  -- folder searched for plugin .so files; default "build/plugins"
  plugin_dir = "build/plugins",
  -- plugins loaded at start, by name, e.g. { "metrics" }; default {}
  plugins = { "metrics" },
  metrics = {
    -- serve /metrics without credentials (false: a sysadmin session or token is needed); default true
    public = true,
  },
  log = {
    -- default log level: error, warn, info, debug, trace; default "info" (live)
    level = "info",
    -- per-subsystem levels, e.g. "sip=debug,media=warn"; default "" (live)
    levels = "",
    -- log file; empty = stderr; default "" (live)
    file = "",
  },
  auth = {
    -- web session lifetime, seconds; default 43200 (live)
    session_ttl = 43200,
    -- PBKDF2-SHA256 iterations for new hashes (at least 210000); default 210000 (live)
    pbkdf2_iterations = 210000,
    -- failed logins of one account before it locks; default 5 (live)
    login_max_failures = 5,
    -- failed logins from one IP address (any accounts) before it locks; default 20 (live)
    login_max_failures_ip = 20,
    -- window failed logins are counted in, seconds; default 300 (live)
    login_window = 300,
    -- how long a locked account or IP waits, seconds; default 900 (live)
    lockout = 900,
    -- password-reset link lifetime, seconds; default 3600 (live)
    reset_ttl = 3600,
  },
  lua = {
    -- VM instructions a tenant script may run between yields; default 20000000 (live)
    instruction_budget = 20000000,
    -- bytes a tenant's Lua state may hold; default 33554432 (live)
    memory_cap = 33554432,
    -- wall time a tenant script may run between yields; default 30 (live)
    time_budget_ms = 30,
    -- wall time a system script may run between yields (0 = no limit); default 2000 (live)
    system_time_budget_ms = 2000,
    -- largest response body cw.http accepts, bytes; default 4194304 (live)
    http_max_body = 4194304,
    -- let tenant scripts' cw.http reach loopback and private addresses; default false (live)
    tenant_http_private = false,
  },
  smtp = {
    -- mail server, e.g. smtp://127.0.0.1:25 (empty = mail off); default "" (live)
    url = "",
    -- sender address of mail; default "callwright@localhost" (live)
    from = "callwright@localhost",
    -- SMTP login (empty = none); default "" (live)
    user = "",
    -- SMTP password; default "" (live)
    password = "",
  },
  cdr = {
    -- how often buffered CDRs and queue-log rows are written; default 500 (live)
    flush_ms = 500,
  },
  route = {
    -- longest a routing rule's tenant script may take to decide before its fallback, ms; default 3000 (live)
    script_time_ms = 3000,
  },
  recording = {
    -- how often recordings past their domain's retention are deleted, seconds; default 3600 (live)
    sweep_interval = 3600,
  },
  -- create the demo tenant at start if it is missing; default false
  demo = false,
  clock = {
    -- seconds added to the wall clock (signed); for tests and demos of schedules; default "0" (live)
    offset = "0",
  },
}
