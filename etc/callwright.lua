-- Callwright configuration. A Lua table; every key, its type and default is
-- listed by `build/callwright --help-config` and in the README.
-- Any key can be overridden on the command line: --set http.port=8081
return {
  http = { listen = "127.0.0.1", port = 8080 },
  sip = { listen = "0.0.0.0", port = 5060 },
  media = { rtp_min = 16384, rtp_max = 32767 },
  db = "var/callwright.db",
  var_dir = "var",
  log = { level = "info" },
  plugins = { "metrics" },
}
