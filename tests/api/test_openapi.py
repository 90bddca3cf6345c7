#!/usr/bin/python3
"""The OpenAPI document lists every endpoint the daemon registers.

The list of what must be there is read from the sources, not from the
daemon: every `struct crud_entity` in core/ (its path, scope and whether it
has a create endpoint) must be registered with crud_register() and appear
with list / get / create / update / delete; every http_route() literal in
core/ must appear with its method. The entities and routes the platform
promises by name (ring lists, trunks with status and log, pickup groups,
SIP bans, registrations) are checked to be among them, so a source that the
parser stops seeing fails the test instead of shrinking it.
"""

import glob
import os
import re

from cwtest import SOURCE, run_tests

SCOPES = {"SCOPE_GLOBAL": "/api/v1/%s", "SCOPE_POOL": "/api/v1/pools/{pool}/%s",
          "SCOPE_DOMAIN": "/api/v1/domains/{domain}/%s", "SCOPE_OWNER": "/api/v1/me/%s"}


def sources():
    for path in sorted(glob.glob(os.path.join(SOURCE, "core", "**", "*.c"), recursive=True)):
        with open(path) as f:
            yield os.path.relpath(path, SOURCE), f.read()


def crud_entities():
    """[(file, variable, base path, has_create)] of every entity defined in core/."""
    out = []
    for name, text in sources():
        registered = set(re.findall(r"crud_register\(\s*&(\w+)\s*\)", text))
        for var, body in re.findall(r"struct crud_entity\s+(\w+)\s*=\s*\{(.*?)\};", text, re.S):
            path = re.search(r'\.path\s*=\s*"([^"]+)"', body)
            scope = re.search(r"\.scope\s*=\s*(SCOPE_\w+)", body)
            assert path and scope, "%s: entity %s without .path or .scope" % (name, var)
            assert var in registered, "%s: entity %s is never registered" % (name, var)
            no_create = re.search(r"\.no_create\s*=\s*true", body) is not None
            out.append((name, var, SCOPES[scope.group(1)] % path.group(1), not no_create))
    return out


def route_literals():
    """[(file, method, OpenAPI path)] of every http_route("M", "/pattern", ...) in core/."""
    out = []
    for name, text in sources():
        for method, pattern in re.findall(r'http_route\(\s*"([A-Z]+)",\s*"([^"]+)"', text):
            path = re.sub(r":(\w+)", r"{\1}", pattern)
            out.append((name, method.lower(), path))
    return out


def test_every_crud_entity_has_its_five_operations(d):
    paths = d.client().ok("GET", "/api/v1/openapi.json")["paths"]
    entities = crud_entities()
    bases = {base for _, _, base, _ in entities}
    for must in ("/api/v1/domains/{domain}/ring-lists", "/api/v1/domains/{domain}/trunks",
                 "/api/v1/domains/{domain}/pickup-groups", "/api/v1/domains/{domain}/users",
                 "/api/v1/pools", "/api/v1/domains", "/api/v1/me/contacts"):
        assert must in bases, "the sources no longer show the entity %s" % must
    missing = []
    for name, var, base, has_create in entities:
        item = base + "/{id}"
        want = [(base, "get"), (item, "get"), (item, "patch"), (item, "delete")]
        if has_create:
            want.append((base, "post"))
        for path, method in want:
            op = paths.get(path, {}).get(method)
            if op is None:
                missing.append("%s %s (%s in %s)" % (method.upper(), path, var, name))
            elif method in ("post", "patch") and "requestBody" not in op:
                missing.append("%s %s has no request schema" % (method.upper(), path))
            elif not op.get("summary") or not op.get("x-min-role"):
                missing.append("%s %s has no summary or role" % (method.upper(), path))
    assert not missing, "\n".join(missing)
    assert len(entities) >= 30, len(entities)


def test_every_route_of_the_sources_is_listed(d):
    paths = d.client().ok("GET", "/api/v1/openapi.json")["paths"]
    routes = route_literals()
    listed = {(m, p) for _, m, p in routes}
    for must in (("get", "/api/v1/domains/{domain}/trunks/{id}/status"),
                 ("get", "/api/v1/domains/{domain}/trunks/{id}/log"),
                 ("get", "/api/v1/domains/{domain}/registrations"),
                 ("get", "/api/v1/sip/bans"), ("delete", "/api/v1/sip/bans/{ip}"),
                 ("post", "/api/v1/domains/{domain}/sounds"), ("post", "/api/v1/me/faxes")):
        assert must in listed, "the sources no longer show %s %s" % must
    missing = ["%s %s (%s)" % (m.upper(), p, name) for name, m, p in routes
               if m not in paths.get(p, {})]
    assert not missing, "\n".join(missing)


def test_the_document_lists_nothing_the_sources_do_not_register(d):
    paths = d.client().ok("GET", "/api/v1/openapi.json")["paths"]
    known = {(m, p) for _, m, p in route_literals()}
    for _, _, base, has_create in crud_entities():
        known |= {("get", base), ("get", base + "/{id}"), ("patch", base + "/{id}"),
                  ("delete", base + "/{id}")}
        if has_create:
            known.add(("post", base))
    extra = ["%s %s" % (m.upper(), p) for p, ops in paths.items() for m in ops
             if (m, p) not in known]
    assert not extra, "listed but not found in core/: %s" % extra


if __name__ == "__main__":
    run_tests([test_every_crud_entity_has_its_five_operations,
               test_every_route_of_the_sources_is_listed,
               test_the_document_lists_nothing_the_sources_do_not_register])
