#!/usr/bin/python3
"""scripts/README.md documents the whole call API, and its examples compile.

Every method the core registers on the call object (the luaL_Reg tables
core/call/call_lua.c installs as callapi.methods, wherever in core/ they are
defined) and every method the Lua library adds (scripts/cw/*.lua) appears in
the README as
`call:<name>(` (or `{`); every Lua block of the README's call API part
compiles (luac5.4 -p)."""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cwtest import SOURCE  # noqa: E402


def read(*parts):
    with open(os.path.join(SOURCE, *parts), encoding="utf-8") as f:
        return f.read()


REG_TABLE = re.compile(r"luaL_Reg\s+(\w+)\[\]\s*=\s*\{(.*?)\n\};", re.S)


def c_methods(problems):
    """The names of every luaL_Reg table call_lua.c puts into callapi.methods (its own
    `methods` through luaL_newlib, the others through luaL_setfuncs), found in whichever
    core/ file defines them."""
    installer = read("core", "call", "call_lua.c")
    block = installer[installer.index("luaL_newlib(L, methods)"):]
    block = block[:block.index('lua_setfield(L, -2, "methods")')]
    wanted = set(re.findall(r"luaL_setfuncs\(L,\s*(\w+),\s*0\)", block))
    if len(wanted) < 4:
        problems.append("call_lua.c installs only %r: the parser is broken" % wanted)
    tables = {name: body for name, body in REG_TABLE.findall(installer) if name == "methods"}
    for root, _, files in os.walk(os.path.join(SOURCE, "core")):
        for f in files:
            if f.endswith(".c"):
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    for name, body in REG_TABLE.findall(fh.read()):
                        if name in wanted:
                            tables[name] = body
    for name in sorted(wanted - set(tables)):
        problems.append("the table %s is defined in no file of core/" % name)
    names = set()
    for body in tables.values():
        names.update(re.findall(r'\{"(\w+)",\s*\w+\}', body))
    return names


def lua_methods():
    names = set()
    for f in os.listdir(os.path.join(SOURCE, "scripts", "cw")):
        text = read("scripts", "cw", f)
        if re.search(r"^local M = callapi\.methods", text, re.M):
            names.update(re.findall(r"^function M\.(\w+)\(", text, re.M))
        names.update(re.findall(r"^callapi\.methods\.(\w+)\s*=", text, re.M))
    return names


def main():
    readme = read("scripts", "README.md")
    part = readme[readme.index("## The call API"):]
    problems = []
    methods = c_methods(problems) | lua_methods()
    if len(methods) < 40:
        problems.append("found only %d methods: the parser is broken" % len(methods))
    for name in sorted(methods):
        if "call:%s(" % name not in part and "call:%s{" % name not in part:
            problems.append("call:%s is not documented" % name)
    blocks = re.findall(r"```lua\n(.*?)```", part, re.S)
    if len(blocks) < 4:
        problems.append("the call API part has %d examples" % len(blocks))
    with tempfile.TemporaryDirectory() as d:
        for i, code in enumerate(blocks):
            path = os.path.join(d, "example%d.lua" % i)
            with open(path, "w") as f:
                f.write(code)
            r = subprocess.run(["luac5.4", "-p", path], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0:
                problems.append("example %d does not compile: %s" % (i + 1, r.stderr.strip()))
            elif "return function(call, ivr)" not in code:
                problems.append("example %d is not a flow file" % (i + 1))
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("ok   %d call methods documented, %d examples compile" % (len(methods), len(blocks)))


main()
