"""Reads `perf sched timehist -w` output and prints, for each named process, how
its threads came to run: which process woke them, whether on the waker's own
CPU, how long they then waited for the CPU (scheduling delay) and how long they
ran. perf/wakeups.sh runs it.

Usage: wakeups.py TIMEHIST REQUESTS NAME=PID[,PID...] ...
"""

import re
import statistics
import sys

# "  time [cpu]  comm[tid/pid]   awakened: comm[tid/pid]" (a thread of a process
# with one thread shows as comm[pid])
WAKE = re.compile(
    r"^\s*[\d.]+\s+\[(\d+)\]\s+\S*?\[(?:\d+/)?(\d+)\]\s+awakened: \S*?\[(?:(\d+)/)?(\d+)\]"
)
# "  time [cpu]  comm[tid/pid]   wait  sch_delay  run" (in ms): the thread leaves
# the CPU after running for `run`
SWITCH = re.compile(
    r"^\s*[\d.]+\s+\[(\d+)\]\s+\S*?\[(?:(\d+)/)?(\d+)\]\s+[\d.]+\s+([\d.]+)\s+([\d.]+)"
)


def main():
    path, requests, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    name_of = {}
    for spec in specs:
        name, pids = spec.split("=", 1)
        for pid in filter(None, pids.split(",")):
            name_of[int(pid)] = name
    waker = {}  # thread -> (waking process, its CPU), until the thread runs
    runs = {}  # (process name, how it came to run) -> [(delay µs, run µs)]
    with open(path) as lines:
        for line in lines:
            m = WAKE.match(line)
            if m:
                cpu, by, tid, pid = m.groups()
                waker[int(tid or pid)] = (int(by), int(cpu))
                continue
            m = SWITCH.match(line)
            if not m:
                continue
            cpu, tid, pid, delay, run = m.groups()
            name = name_of.get(int(pid))
            if name is None:
                continue
            woken = waker.pop(int(tid or pid), None)
            if woken is None:
                how = "(preempted, not woken)"
            else:
                where = "same CPU" if woken[1] == int(cpu) else "other CPU"
                how = f"{name_of.get(woken[0], 'other')}, {where}"
            runs.setdefault((name, how), []).append((float(delay) * 1e3, float(run) * 1e3))
    print(f"{'process':12} {'woken by, on the waker CPU?':28} {'per_req':>8} "
          f"{'delay_p50':>10} {'delay_p90':>10} {'run_mean':>9}  (µs)")
    for (name, how), rows in sorted(runs.items()):
        delays = sorted(d for d, _ in rows)
        print(f"{name:12} {how:28} {len(rows) / requests:8.2f} "
              f"{statistics.median(delays):10.1f} {delays[int(0.9 * len(delays))]:10.1f} "
              f"{statistics.mean(r for _, r in rows):9.1f}")


if __name__ == "__main__":
    main()
