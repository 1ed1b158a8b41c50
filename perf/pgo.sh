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
# release binary. Needs oha and llvm-profdata (Debian: apt-get install llvm-19;
# LLVM_PROFDATA picks one). Usage: [STATIC=1] perf/pgo.sh [train_secs=10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
triple=x86_64-unknown-linux-gnu
command -v oha >/dev/null || { echo "needs oha (cargo install --locked oha)"; exit 1; }
profdata=${LLVM_PROFDATA:-$(ls -d /usr/lib/llvm-*/bin/llvm-profdata 2>/dev/null | sort -V | tail -1)}
profdata=${profdata:-$(command -v llvm-profdata || true)}
[ -x "$profdata" ] || { echo "needs llvm-profdata (apt-get install llvm-19, or set LLVM_PROFDATA)"; exit 1; }
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
  echo "+ RUSTFLAGS=$* cargo build --release --bin sluice --example passthrough --target $triple --target-dir $dir"
  RUSTFLAGS="$*" cargo build --release --quiet --bin sluice --example passthrough --target "$triple" --target-dir "$dir"
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
SLUICE_BIN=$gen/sluice start_fake_and_sluice
train "$sluice"
curl -sS -o /dev/null "$sluice/metrics"
# A graceful stop runs sluice's exit, which writes the profile.
kill -TERM "$sluice_pid"; wait "$sluice_pid" || true
mv "$prof"/*.profraw "$prof/sluice/"
"$gen/examples/passthrough" --upstream "$fake" --port 0 >"$work/pass.out" 2>&1 &
pass_pid=$!; pids+=($pass_pid)
train "$(wait_url "$work/pass.out")"
kill -INT "$pass_pid"; wait "$pass_pid" || true
mv "$prof"/*.profraw "$prof/passthrough/"
merge sluice
merge passthrough

# One profile file for both: each function's name says which binary it is from,
# and code the two share (hyper, tokio) is weighed by both loads.
"$profdata" merge -o "$prof/both.profdata" "$prof/sluice.profdata" "$prof/passthrough.profdata"
build target/pgo "-Cprofile-use=$prof/both.profdata"
# The built sluice answers a chat and a streamed chat.
SLUICE_BIN=target/pgo/$triple/release/sluice start_fake_and_sluice
for b in "$body" "$streamed"; do
  curl -sS --fail-with-body -m 5 -o /dev/null -H 'content-type: application/json' -d "$b" \
    "$sluice/v1/chat/completions" || { echo "FAIL: the built sluice did not answer"; exit 1; }
done
file target/pgo/$triple/release/sluice
echo "profile-guided sluice:      target/pgo/$triple/release/sluice"
echo "profile-guided passthrough: target/pgo/$triple/release/examples/passthrough"
