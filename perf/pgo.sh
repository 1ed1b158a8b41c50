#!/usr/bin/env bash
# Profile-guided builds of sluice and of the bare passthrough, so that each is
# compared with the other built the same way. Each is built instrumented (own
# target dir), trained on fake-llm with the load the perf scripts measure (chat at
# a fixed 1,000 req/s and closed-loop, streamed chat, embeddings; sluice's
# /metrics too), its profile merged with llvm-profdata, and built again with it.
# Prints the two binaries' paths; to measure them:
#   SLUICE_BIN=target/pgo/x86_64-unknown-linux-gnu/release/sluice \
#   PASS_BIN=target/pgo/x86_64-unknown-linux-gnu/release/examples/passthrough perf/paired.sh
# (or paired-latency.sh, instructions.sh, throughput.sh, memory.sh).
# STATIC=1 links both statically (glibc crt-static, as perf/static.sh), for a
# release binary. BOLT=1 then lays out both binaries' machine code again with
# llvm-bolt, from a second training run of each built instrumented by llvm-bolt
# (hot blocks together, cold ones split off): into target/pgo/bolt/. Needs oha and
# llvm-profdata (Debian: apt-get install llvm-19; LLVM_PROFDATA picks one), and for
# BOLT=1 llvm-bolt (apt-get install bolt-19; LLVM_BOLT picks one); BOLT=1 builds
# dynamically linked binaries only.
# Usage: [STATIC=1] [BOLT=1] perf/pgo.sh [train_secs=10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
triple=x86_64-unknown-linux-gnu
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
profdata=${LLVM_PROFDATA:-$(ls -d /usr/lib/llvm-*/bin/llvm-profdata 2>/dev/null | sort -V | tail -1)}
profdata=${profdata:-$(command -v llvm-profdata || true)}
[ -x "$profdata" ] || { echo "needs llvm-profdata (apt-get install llvm-19, or set LLVM_PROFDATA)"; exit 1; }
if [ -n "${BOLT:-}" ]; then
  # Tried: llvm-bolt 19 and 22 crash instrumenting a static binary.
  [ -z "${STATIC:-}" ] || { echo "STATIC=1 and BOLT=1 do not go together (llvm-bolt crashes on the static binary)"; exit 1; }
  bolt=${LLVM_BOLT:-$(ls -d /usr/lib/llvm-*/bin/llvm-bolt 2>/dev/null | sort -V | tail -1)}
  bolt=${bolt:-$(command -v llvm-bolt || true)}
  [ -x "$bolt" ] || { echo "needs llvm-bolt (apt-get install bolt-19, or set LLVM_BOLT)"; exit 1; }
fi
PERF_NO_WRK=1
. perf/lib.sh
prof=$PWD/target/pgo-profile
rm -rf "$prof"; mkdir -p "$prof/sluice" "$prof/passthrough"
streamed=${body%\}},\"stream\":true}

build() { # flags -> cargo builds sluice and the passthrough with RUSTFLAGS=flags
  # --target keeps the flags off build scripts and proc macros, which would
  # otherwise write profiles of the build itself.
  local dir=$1; shift
  [ -z "${STATIC:-}" ] || set -- "$@" -Ctarget-feature=+crt-static
  # llvm-bolt moves functions only in a binary that keeps its relocations. Both
  # builds take the same flags, so that the profile's functions are found again.
  [ -z "${BOLT:-}" ] || set -- "$@" -Clink-arg=-Wl,--emit-relocs
  echo "+ RUSTFLAGS=$* cargo build --release --bin sluice --example passthrough --target $triple --target-dir $dir"
  # The profile places the functions itself (the hot ones in sections of their
  # own), so these builds leave out build.rs's hot-text.ld, as the profile-guided
  # figures in perf/RESULTS.md were measured.
  SLUICE_HOT_TEXT=0 RUSTFLAGS="$*" cargo build --release --quiet --bin sluice --example passthrough --target "$triple" --target-dir "$dir"
}
# Trains sluice binary $1 (a graceful stop makes it write its profile).
train_sluice() {
  SLUICE_BIN=$1 start_fake_and_sluice
  train "$sluice"
  curl -sS -o /dev/null "$sluice/metrics"
  kill -TERM "$sluice_pid"; wait "$sluice_pid" || true
}
# Trains passthrough binary $1 on the fake-llm started last.
train_passthrough() {
  "$1" --upstream "$fake" --port 0 >"$work/pass.out" 2>&1 &
  pass_pid=$!; pids+=($pass_pid)
  train "$(wait_url "$work/pass.out")"
  kill -INT "$pass_pid"; wait "$pass_pid" || true
}
train() { # url -> runs each load on it for $secs seconds, quietly
  load() { oha --no-tui -z "${secs}s" -m POST -T application/json -H 'Authorization: Bearer sk-1234' "$@" >/dev/null; }
  load -q 1000 -c 50 -d "$body" "$1/v1/chat/completions"
  load -c 50 -d "$body" "$1/v1/chat/completions"
  load -c 20 -d "$streamed" "$1/v1/chat/completions"
  load -c 20 -d '{"model":"fake-gpt","input":"hello there"}' "$1/v1/embeddings"
}
merge() { # name -> merges its profiles into $prof/name.profdata
  ls "$prof/$1"/*.profraw >/dev/null 2>&1 || { echo "FAIL: $1 wrote no profile"; exit 1; }
  "$profdata" merge -o "$prof/$1.profdata" "$prof/$1"/*.profraw
}

# Both binaries write to one directory while instrumented; each is trained alone,
# and its profile moved aside before the other runs.
build target/pgo-gen "-Cprofile-generate=$prof"
gen=target/pgo-gen/$triple/release
echo "training each: $secs s of chat at 1,000 req/s, chat closed-loop, streamed chat, embeddings"
train_sluice "$gen/sluice"
mv "$prof"/*.profraw "$prof/sluice/"
train_passthrough "$gen/examples/passthrough"
mv "$prof"/*.profraw "$prof/passthrough/"
merge sluice
merge passthrough

# One profile file for both: each function's name says which binary it is from,
# and code the two share (hyper, tokio) is weighed by both loads.
"$profdata" merge -o "$prof/both.profdata" "$prof/sluice.profdata" "$prof/passthrough.profdata"
build target/pgo "-Cprofile-use=$prof/both.profdata"
out=target/pgo/$triple/release
if [ -n "${BOLT:-}" ]; then
  # Each binary runs the training again, built instrumented by llvm-bolt, and is
  # laid out anew from what ran: hot blocks in order, cold ones split off.
  # The same paths under target/pgo/bolt as under $out.
  mkdir -p target/pgo/bolt/examples
  for bin in sluice examples/passthrough; do
    name=${bin##*/}
    rm -f "$prof/$name.fdata"
    "$bolt" "$out/$bin" -instrument -instrumentation-file="$prof/$name.fdata" -o "$work/$name.inst" >"$work/bolt.log" 2>&1 ||
      { cat "$work/bolt.log"; exit 1; }
    "train_$name" "$work/$name.inst"
    [ -s "$prof/$name.fdata" ] || { echo "FAIL: $name wrote no BOLT profile"; exit 1; }
    "$bolt" "$out/$bin" -o "target/pgo/bolt/$bin" -data="$prof/$name.fdata" -reorder-blocks=ext-tsp \
      -reorder-functions=cdsort -split-functions -split-all-cold -split-eh -icf=1 -use-gnu-stack \
      >"$work/bolt.log" 2>&1 || { cat "$work/bolt.log"; exit 1; }
  done
  out=target/pgo/bolt
fi
# The built sluice answers a chat and a streamed chat.
SLUICE_BIN=$out/sluice start_fake_and_sluice
for b in "$body" "$streamed"; do
  curl -sS --fail-with-body -m 5 -o /dev/null -H 'content-type: application/json' -d "$b" \
    "$sluice/v1/chat/completions" || { echo "FAIL: the built sluice did not answer"; exit 1; }
done
file "$out/sluice"
echo "profile-guided sluice:      $out/sluice"
echo "profile-guided passthrough: $out/examples/passthrough"
