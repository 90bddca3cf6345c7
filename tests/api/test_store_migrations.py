#!/usr/bin/python3
# cw-test: both-stores
"""Numbered migrations on both stores, and SQLite in WAL mode.

The list of migrations is read from core/store/schema.c. A fresh store gets
every one, in order, each logged once and recorded in schema_migrations
with its number and name; every table the migrations create (and do not
drop later) exists. A second start applies nothing: schema_migrations,
the data made through the API and the logins are as they were. A SQLite
store runs with the WAL journal.
"""

import os
import re
import sqlite3
import time

from cwtest import DEMO, DEMO_DOMAIN, SOURCE, run_tests

S = {}


def migrations():
    """[(version, name)] of core/store/schema.c, and the tables they leave."""
    with open(os.path.join(SOURCE, "core", "store", "schema.c")) as f:
        text = f.read()
    listed = [(int(v), n) for v, n in re.findall(r'\{\s*(\d+),\s*"([^"]+)",\s*m\d+\s*\}', text)]
    created = re.findall(r'"\s*CREATE TABLE (?:IF NOT EXISTS )?(\w+)', text)
    dropped = set(re.findall(r'"\s*DROP TABLE (?:IF EXISTS )?(\w+)', text))
    return listed, [t for t in created if t not in dropped]


def tables(d):
    if d.store == "pg":
        rows = d.sql("SELECT table_name FROM information_schema.tables "
                     "WHERE table_schema = 'public'")
    else:
        rows = d.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows}


def test_a_fresh_store_gets_every_migration_in_order(d):
    listed, created = migrations()
    assert len(listed) >= 8 and len(created) > 30, (listed, created)
    assert [v for v, _ in listed] == list(range(1, len(listed) + 1)), listed
    rows = d.sql("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    assert [(int(v), n) for v, n, _ in rows] == listed, rows
    stamps = [int(a) for _, _, a in rows]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time()) < 600, stamps
    log = d.log_text()
    applied = [(int(v), n) for v, n in re.findall(r"\[store\] applied migration (\d+): (.+)$",
                                                   log, re.M)]
    assert applied == listed, applied
    missing = set(created) - tables(d)
    assert not missing, "tables missing after the migrations: %s" % sorted(missing)
    S["rows"] = rows


def test_a_second_start_applies_nothing_and_loses_nothing(d):
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    base = "/api/v1/domains/%s" % DEMO_DOMAIN
    user = admin.ok("POST", base + "/users", {"login": "kept", "display_name": "Kept User",
                                              "password": "Kept-pass-1"}, status=201)
    ring = admin.ok("POST", base + "/ring-lists",
                    {"name": "Kept list", "members": [{"number": "79001234567"}]}, status=201)
    users_before = d.sql("SELECT id, login, display_name, password_hash FROM users ORDER BY id")
    mark = len(d.log_text())
    d.restart()
    assert "applied migration" not in d.log_text()[mark:], d.log_text()[mark:]
    assert d.sql("SELECT version, name, applied_at FROM schema_migrations ORDER BY version") \
        == S["rows"]
    assert d.sql("SELECT id, login, display_name, password_hash FROM users ORDER BY id") \
        == users_before
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    assert admin.ok("GET", base + "/users/%d" % user["id"])["display_name"] == "Kept User"
    got = admin.ok("GET", base + "/ring-lists/%d" % ring["id"])
    assert got["name"] == "Kept list" and got["members"][0]["number"] == "79001234567", got
    d.login("kept", "Kept-pass-1", DEMO_DOMAIN)


def test_sqlite_runs_in_wal_mode(d):
    if d.store != "sqlite":
        return
    assert os.path.exists(d.db + "-wal"), "no write-ahead log next to %s" % d.db
    con = sqlite3.connect(d.db, timeout=10)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()
    assert mode == "wal", mode


if __name__ == "__main__":
    run_tests([test_a_fresh_store_gets_every_migration_in_order,
               test_a_second_start_applies_nothing_and_loses_nothing,
               test_sqlite_runs_in_wal_mode],
              demo=True)
