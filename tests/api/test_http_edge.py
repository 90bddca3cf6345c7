#!/usr/bin/python3
# cw-test: both-stores
"""The HTTP edge: /health, the generated OpenAPI document, JSON errors for
unknown paths and methods, the body limit (413 with JSON), static files and
the TLS listener with a Secure session cookie."""

import os
import socket
import ssl
import subprocess

from cwtest import (DEMO, DEMO_DOMAIN, Daemon, EventStream, free_port, run_tests,
                    wait_until)


def test_health_reports_status_version_schema_uptime(d):
    r = d.client().get("/health")
    assert r.status == 200, r
    j = r.json
    assert j["status"] == "ok" and j["version"], j
    assert j["store"]["schema"] >= 3, j
    assert j["store"]["backend"] == ("postgresql" if d.store == "pg" else "sqlite"), j
    assert isinstance(j["uptime_s"], int) and j["uptime_s"] >= 0, j
    assert r.header("cache-control") == "no-store"
    # request counters (for metrics): this request is counted, and the streams open
    h = j["http"]
    assert h["requests"] >= 1 and h["replies_5xx"] == 0, h
    admin = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    es = EventStream(d.http_port, cookies=admin.cookies)
    h2 = d.client().get("/health").json["http"]
    assert h2["streams"] == h["streams"] + 1 and h2["requests"] > h["requests"], (h, h2)
    es.close()
    wait_until(lambda: d.client().get("/health").json["http"]["streams"] == h["streams"], 10,
               what="the closed stream to be dropped")


def test_openapi_lists_every_endpoint_with_role_and_summary(d):
    r = d.client().get("/api/v1/openapi.json")
    assert r.status == 200, r
    doc = r.json
    assert doc["openapi"].startswith("3."), doc.keys()
    paths = doc["paths"]
    must = {
        ("get", "/health"), ("post", "/api/v1/auth/login"), ("get", "/api/v1/auth/me"),
        ("get", "/api/v1/events"), ("get", "/api/v1/audit"), ("get", "/api/v1/pools"),
        ("delete", "/api/v1/pools/{pool}/subgroups/{id}"), ("get", "/api/v1/domains"),
        ("post", "/api/v1/domains/{domain}/users"),
        ("get", "/api/v1/domains/{domain}/users/next-extension"),
        ("post", "/api/v1/domains/{domain}/users/import"),
        ("patch", "/api/v1/domains/{domain}/call-groups/{id}"),
        ("post", "/api/v1/domains/{domain}/sounds"),
        ("get", "/api/v1/me/contacts"), ("post", "/api/v1/auth/tokens"),
        ("post", "/api/v1/auth/reset-request"),
    }
    for method, path in must:
        assert path in paths and method in paths[path], (method, path)
    n = 0
    for path, ops in paths.items():
        for method, op in ops.items():
            n += 1
            assert op["summary"], (method, path)
            assert op["x-min-role"] in ("public", "sysadmin", "pool_supervisor",
                                        "subgroup_admin", "domain_admin", "supervisor",
                                        "operator", "subscriber"), op
            for seg in path.split("/"):
                if seg.startswith("{"):
                    names = [p["name"] for p in op["parameters"]]
                    assert seg[1:-1] in names, (path, names)
    assert n >= 60, n
    # request schemas come from the entity descriptors
    body = paths["/api/v1/domains/{domain}/users"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "login" in schema["required"] and schema["additionalProperties"] is False
    assert schema["properties"]["restriction"]["enum"] == [
        "none", "no_international", "no_international_longdistance", "internal_only"]
    # and every listed route is really served (no "no such endpoint" 404)
    c = d.client()
    for path, ops in paths.items():
        for method in ops:
            url = path.replace("{domain}", "1").replace("{pool}", "1").replace("{id}", "1")
            if path.endswith("/events"):
                continue
            r = c.request(method.upper(), url)
            assert r.error().get("message") != "no such endpoint", (method, path, r)
            assert r.status != 405, (method, path, r)


def test_unknown_paths_and_methods_get_json_errors(d):
    c = d.client()
    r = c.get("/api/v1/no-such-thing")
    assert r.status == 404 and r.error()["code"] == "not_found", r
    r = c.delete("/api/v1/audit")
    assert r.status == 405 and r.error()["code"] == "method_not_allowed", r
    assert "GET" in r.header("allow"), r.headers
    r = c.get("/api/v1/domains")
    assert r.status == 401 and r.error()["code"] == "unauthenticated", r
    r = c.get("/../../etc/passwd")
    assert r.status == 404, r


def test_body_over_the_limit_is_413_json_and_nothing_changes(d):
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    before = c.ok("GET", "/api/v1/domains/demo.local/contacts")["total"]
    big = {"name": "x" * (70 * 1024), "speed_dial": "1", "numbers": [{"type": "work", "number": "1"}]}
    r = c.post("/api/v1/domains/demo.local/contacts", big)
    assert r.status == 413, r
    assert r.error()["code"] == "body_too_large" and "http.max_body" in r.error()["message"], r
    # the answer names the limit: in words and as members
    assert "limit of 65536 bytes" in r.error()["message"], r
    assert r.error()["limit"] == 65536 and r.error()["setting"] == "http.max_body", r
    c = d.login("admin", DEMO["admin"], DEMO_DOMAIN)
    assert c.ok("GET", "/api/v1/domains/demo.local/contacts")["total"] == before


def test_static_files_are_served_from_web_root(d):
    c = d.client()
    r = c.get("/reset")
    assert r.status == 200 and "text/html" in r.header("content-type"), r
    assert b"/api/v1/auth/reset" in r.body
    assert r.header("x-content-type-options") == "nosniff"
    r = c.get("/no-such-file.js")
    assert r.status == 404, r


def test_tls_listener_serves_the_api_with_a_secure_cookie(d):
    key = os.path.join(d.dir, "tls.key")
    crt = os.path.join(d.dir, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    tls_port = free_port()
    t = Daemon(demo=True, sets={"http.tls_port": str(tls_port), "http.tls_cert": crt,
                                "http.tls_key": key}, store="sqlite")
    try:
        t.start()
        ctx = ssl.create_default_context(cafile=crt)
        ctx.check_hostname = False
        import http.client
        import json
        conn = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=20)
        conn.request("POST", "/api/v1/auth/login",
                     body=json.dumps({"login": "admin", "password": DEMO["admin"],
                                      "domain": DEMO_DOMAIN}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body
        cookie = r.getheader("Set-Cookie")
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
        conn.request("GET", "/api/v1/auth/me", headers={"Cookie": cookie.split(";")[0]})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["login"] == "admin"
        conn.close()
        # a plain-HTTP client on the TLS port gets no API answer
        s = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        try:
            data = s.recv(100)
        except OSError:
            data = b""
        s.close()
        assert not data.startswith(b"HTTP/1.1 200"), data
        t.stop()
    except Exception:
        print(t.log_text()[-4000:])
        raise
    finally:
        t.cleanup()


if __name__ == "__main__":
    run_tests([test_health_reports_status_version_schema_uptime,
               test_openapi_lists_every_endpoint_with_role_and_summary,
               test_unknown_paths_and_methods_get_json_errors,
               test_body_over_the_limit_is_413_json_and_nothing_changes,
               test_static_files_are_served_from_web_root,
               test_tls_listener_serves_the_api_with_a_secure_cookie],
              demo=True, sets={"http.max_body": "65536"})
