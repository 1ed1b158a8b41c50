#!/usr/bin/env python3
"""Code footprint from a callgrind profile made with --dump-instr=yes.

Usage: code_lines.py PROFILE REQUESTS [TOP]

Prints how many distinct 64-byte lines of machine code ran at least one
instruction a request on average over the profile's window (REQUESTS requests):
the code a request brings into the caches. When each request starts with cold
caches, as at a light fixed rate, each such line is one fetch from memory or a far
cache. Then, on the same line, how many distinct 4 KB pages those lines lie on:
the instruction TLB entries a request needs, which the order of functions in the
binary decides. With TOP, also the functions owning the most of those lines.
"""
import collections
import re
import sys


def define(text, names):
    """The id of a `fn=`, `cfn=`, `ob=` or `cob=` line; the name it gives the id
    (only its first use does) goes into `names`."""
    m = re.match(r"c?(?:fn|ob)=\((\d+)\)(?: (.*))?", text.rstrip("\n"))
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return m.group(1)


def read(path):
    """(object, line) -> instructions run on it, (object, line) -> owning function
    name, and object -> file name ("???" for code valgrind places in no object)."""
    runs = collections.Counter()
    owner = {}
    names = {}
    objects = {}
    obj = fn = None
    last = 0
    after_call = False
    with open(path) as f:
        for text in f:
            if text.startswith(("fn=", "cfn=")):
                ident = define(text, names)
                if text.startswith("fn="):
                    fn = ident
                continue
            if text.startswith(("ob=", "cob=")):
                ident = define(text, objects)
                if text.startswith("ob="):
                    obj = ident
                continue
            if text.startswith("calls="):
                after_call = True  # the next cost line is the call's inclusive cost
                continue
            if not text[:1] or text[0] not in "0123456789+-*":
                continue
            fields = text.split()
            pos = fields[0]
            if pos == "*":
                addr = last
            elif pos[0] in "+-":
                step = int(pos[1:], 0)
                addr = last + step if pos[0] == "+" else last - step
            else:
                addr = int(pos, 0)
            last = addr
            if after_call:
                after_call = False
                continue
            ir = int(fields[2]) if len(fields) > 2 else 0  # fields: address, source line, Ir, ...
            if ir:
                key = (obj, addr >> 6)
                runs[key] += ir
                owner[key] = fn
    return runs, {k: names.get(v, v) for k, v in owner.items()}, objects


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    runs, owner, _ = read(path)
    every = [k for k, ir in runs.items() if ir >= requests]
    pages = {(obj, line >> 6) for obj, line in every}
    print(len(every), len(pages))
    if top:
        by_fn = collections.Counter(owner[k] for k in every)
        for name, n in by_fn.most_common(top):
            print(f"  {n:5d}  {name[:150]}", file=sys.stderr)


if __name__ == "__main__":
    main()
