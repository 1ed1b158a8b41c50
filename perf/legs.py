#!/usr/bin/env python3
"""The time a proxy holds a request on its way through, from a syscall trace.

A request crosses a proxy in two legs: the request leg, from the moment the proxy
is woken by epoll with the client's request to its first write to the upstream,
and the answer leg, from the moment it is woken with the upstream's answer to its
first write to the client. Whatever the proxy does in a leg adds to the latency a
client sees; whatever it does after the write does not, at a light rate.

  legs.py fds UPSTREAM_PORT PROXY_PORT PID...   prints "pid fd up|client" for each
      socket of the processes that goes to the upstream or came from a client
  legs.py read TRACE FDS                        reads `perf script --ns` output of
      raw_syscalls:sys_enter/sys_exit and sched:sched_switch for the proxy's
      threads, prints each leg's time split into user space, system calls and
      time off the CPU, and the system calls a leg most often makes
"""
import collections
import os
import re
import sys

EPOLL = {232, 281, 441}  # epoll_wait, epoll_pwait, epoll_pwait2
WRITES = {1, 20, 44, 46, 307}  # write, writev, sendto, sendmsg, sendmmsg
NAMES = {0: "read", 1: "write", 19: "readv", 20: "writev", 44: "sendto",
         45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 54: "setsockopt",
         55: "getsockopt", 202: "futex", 228: "clock_gettime", 233: "epoll_ctl"}
EVENT = re.compile(r"^\s*\S+\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")


def fds(up_port, proxy_port, pids):
    kinds = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in open(table).readlines()[1:]:
            f = row.split()
            local, remote = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)
            if remote == up_port:
                kinds[f[9]] = "up"
            elif local == proxy_port:
                kinds[f[9]] = "client"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kind = kinds.get(link[len("socket:["):-1]) if link.startswith("socket:[") else None
            if kind:
                print(pid, fd, kind)


class Leg:
    """One thread's time since epoll woke it: µs in user space, in system calls
    and off the CPU, and the system calls made."""

    def __init__(self, t):
        self.last, self.user, self.sys, self.off = t, 0.0, 0.0, 0.0
        self.calls, self.in_call, self.switched = [], False, False

    def advance(self, t):
        gap = t - self.last
        if self.switched:
            self.off += gap
        elif self.in_call:
            self.sys += gap
        else:
            self.user += gap
        self.last, self.switched = t, False


def read(trace, fd_file):
    kind_of = {}
    for row in open(fd_file):
        pid, fd, kind = row.split()
        kind_of[(int(pid), int(fd))] = kind
    legs = {"up": [], "client": []}
    after = []  # µs from a leg's write to the thread's next epoll_wait
    open_legs, written = {}, {}
    for row in open(trace):
        m = EVENT.match(row)
        if not m:
            continue
        pid, tid, t, event, rest = int(m[1]), int(m[2]), float(m[3]) * 1e6, m[4], m[5]
        leg = open_legs.get(tid)
        if event == "sched:sched_switch":
            if leg and f"prev_pid={tid} " in rest:
                leg.advance(t)
                leg.switched = True
            continue
        nr = int(rest.split()[1])
        if event.endswith("sys_exit"):
            if nr in EPOLL:
                ready = int(rest.rsplit("=", 1)[1]) if "=" in rest else 0
                open_legs[tid] = Leg(t) if ready > 0 else None
            elif leg:
                leg.advance(t)
                leg.in_call = False
            continue
        if nr in EPOLL and tid in written:
            after.append(t - written.pop(tid))
        if not leg:
            continue
        leg.advance(t)
        fd = int(rest.split("(")[1].split(",")[0], 16) if "(" in rest else -1
        kind = kind_of.get((pid, fd)) if nr in WRITES else None
        if kind:
            legs[kind].append(leg)
            open_legs[tid], written[tid] = None, t
        else:
            leg.calls.append(NAMES.get(nr, str(nr)))
            leg.in_call = True

    def q(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")

    print(f"{'leg':<8} {'n':>6} {'p50':>6} {'p90':>6} {'user':>6} {'sys':>6} {'off':>6}  most often")
    for kind, name in (("up", "request"), ("client", "answer")):
        ls = legs[kind]
        total = [x.user + x.sys + x.off for x in ls]
        calls = collections.Counter(" ".join(x.calls) for x in ls).most_common(1)
        seq, n = calls[0] if calls else ("-", 0)
        share = 100 * n / len(ls) if ls else 0
        print(f"{name:<8} {len(ls):>6} {q(total, .5):>6.1f} {q(total, .9):>6.1f} "
              f"{q([x.user for x in ls], .5):>6.1f} {q([x.sys for x in ls], .5):>6.1f} "
              f"{q([x.off for x in ls], .5):>6.1f}  {seq or '(none)'} then the write ({share:.0f}%)")
    print(f"after a leg's write, until epoll_wait: p50 {q(after, .5):.1f} µs, p90 {q(after, .9):.1f} µs")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "fds":
        fds(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
