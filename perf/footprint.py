#!/usr/bin/env python3
"""Memory a request touches, from a valgrind lackey trace (--trace-mem=yes) on stdin.

Usage: footprint.py FLAG MAPS REQUESTS PROGRAM

Only the part of the trace read while the file FLAG exists is kept: the driving
script creates it before the measured requests and removes it after them. That
part is cut into REQUESTS windows of equal work (changes of code line), one
request's worth each, and the result is the median over the windows of:
- code lines: distinct 64-byte lines of machine code run;
- data lines: distinct 64-byte lines of memory read or written, split by where
  they are (MAPS, the process's /proc/PID/maps, read once the trace ends): thread
  stacks, heap (anonymous memory), the constants and statics of PROGRAM (the
  executable's file name), and shared libraries.
With each request starting on cold caches, as at a light fixed rate on a host
whose caches others use in between, each such line is a fetch from memory or a
far cache.
"""
import array
import bisect
import os
import statistics
import sys


def trace(flag):
    """Line changes while FLAG exists: code line l as 2*l, data line l as 2*l + 1."""
    events = array.array("q")
    on = False
    last_code = last_data = -1
    for n, text in enumerate(sys.stdin):
        if n % 20000 == 0:
            on = os.path.exists(flag)
        if not on or len(text) < 4 or text[0] not in "I ":
            continue
        line = int(text[3 : text.index(",")], 16) >> 6
        if text[0] == "I":
            if line != last_code:
                events.append(2 * line)
                last_code = line
        elif line != last_data:
            events.append(2 * line + 1)
            last_data = line
    return events


def regions(maps, program):
    """Sorted (start line, end line, kind) for each mapping."""
    out = []
    guard_end = -1
    for text in open(maps):
        f = text.split()
        start, end = (int(x, 16) for x in f[0].split("-"))
        perms, path = f[1], (f[5] if len(f) > 5 else "")
        if perms.startswith("---"):
            # A thread's stack sits right above its one-page guard. (A glibc malloc
            # arena also follows an inaccessible mapping, the previous one's
            # reserved tail, which is larger.)
            guard_end = end if end - start == 4096 else -1
            continue
        if path == "[stack]" or (not path and start == guard_end):
            kind = "stack"
        elif not path or path.startswith("["):
            kind = "heap"
        elif os.path.basename(path) == program:
            kind = "program"
        else:
            kind = "libs"
        out.append((start >> 6, end >> 6, kind))
    out.sort()
    return out


KINDS = ["stack", "heap", "program", "libs"]


def main():
    flag, maps, requests, program = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    events = trace(flag)
    spans = regions(maps, os.path.basename(program))
    starts = [s[0] for s in spans]

    def kind(line):
        i = bisect.bisect_right(starts, line) - 1
        return spans[i][2] if i >= 0 and line < spans[i][1] else "other"

    code_changes = sum(1 for e in events if not e & 1)
    per_window = max(1, code_changes // requests)
    windows = []
    code, data, seen = set(), set(), 0
    for e in events:
        if e & 1:
            data.add(e >> 1)
            continue
        code.add(e >> 1)
        seen += 1
        if seen == per_window:
            by_kind = dict.fromkeys(KINDS + ["other"], 0)
            for line in data:
                by_kind[kind(line)] += 1
            windows.append((len(code), len(data), by_kind))
            code, data, seen = set(), set(), 0
    if not windows:
        sys.exit("no requests were traced")
    def median(values):
        return round(statistics.median(values))

    row = [median([w[0] for w in windows]), median([w[1] for w in windows])]
    row += [median([w[2][k] for w in windows]) for k in KINDS]
    print(" ".join(str(x) for x in row))


main()
