#!/usr/bin/env python3
"""Writes hot-text.ld from a callgrind profile of sluice made with --dump-instr=yes
and --demangle=no (`HOT_TEXT=file perf/instructions.sh` makes one).

Usage: hot_text.py PROFILE REQUESTS BINARY OUT

The linker script gathers the functions of BINARY that run code on at least one
request in twenty (lines of code_lines.py's kind, at 5% instead of every request)
into one output section, `.text.hot`, placed before `.text`. Each function is
named by its section (`.text.<symbol>`, one section per function as rustc and
the cc crate emit them), with a Rust symbol's hashes replaced by `*`: they
change with the compiler, the dependencies' versions and the build's flags, the
path does not, so the script goes on matching after such changes. A pattern that
matches nothing is not an error; generic functions match every instance. The
functions keep the order they had in the profiled binary.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from code_lines import read  # noqa: E402

# A legacy Rust symbol's hash, with any suffix LLVM added (".llvm.123", ".3568").
HASH = re.compile(r"17h[0-9a-f]{16}E(\.[0-9A-Za-z_]+)*$")
# A v0 Rust symbol's crate disambiguator ("Cs" base-62 "_").
CRATE = re.compile(r"Cs[0-9A-Za-z]+_")


def pattern(symbol):
    """The section glob for a symbol: its hashes, if it has any, are wildcards."""
    symbol = symbol.split("@")[0]
    if HASH.search(symbol):
        return ".text." + HASH.sub("17h*", symbol)
    if symbol.startswith("_R"):
        symbol = CRATE.sub("Cs*_", symbol)
    return ".text." + symbol + "*"


def main():
    path, requests, binary, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    runs, owner, objects = read(path)
    # valgrind names no object for code outside `.text`: a build already linked
    # with the script has the request's code in `.text.hot`, under "???".
    own = {
        k
        for k, name in objects.items()
        if name == "???" or (os.path.exists(name) and os.path.samefile(name, binary))
    }
    first = {}
    for (obj, line), ir in runs.items():
        # Only the binary's own code: shared libraries are laid out by their own builds.
        if ir * 20 >= requests and obj in own:
            fn = owner[(obj, line)]
            first[fn] = min(first.get(fn, line), line)
    patterns = []
    for fn in sorted(first, key=first.get):
        p = pattern(fn)
        if p not in patterns:
            patterns.append(p)
    with open(out, "w") as f:
        f.write("/* The functions a proxied request runs, in one place: made by\n")
        f.write("   HOT_TEXT=hot-text.ld perf/instructions.sh; used by build.rs. */\n")
        f.write("SECTIONS\n{\n  .text.hot : {\n")
        for p in patterns:
            f.write(f"    *({p})\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{len(patterns)} patterns from {len(first)} functions", file=sys.stderr)


if __name__ == "__main__":
    main()
