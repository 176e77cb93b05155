#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#
# Long fuzzing, not part of CI: builds every cargo-fuzz target (installing cargo-fuzz
# from crates.io on first use; the first ASan build takes about 17 minutes on 2 cores)
# and runs each for SECONDS_PER_TARGET (default 600, i.e. 10 minutes), one after the
# other, on the corpus kept in fuzz/corpus/<target>. Prints, per target, the executions,
# executions per second, corpus size and crashes, and exits non-zero if any target
# crashed (the crashing inputs are in fuzz/artifacts/<target>/).
#
# Environment: FUZZ_JOBS (parallel libFuzzer jobs per target, default 1),
# CARGO_TARGET_DIR (default /work/fuzz-target, away from the main target/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
jobs=${FUZZ_JOBS:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/fuzz-target}
# cargo-fuzz passes nightly flags (-Zsanitizer=address); this lets the stable toolchain
# take them.
export RUSTC_BOOTSTRAP=1

log() { echo "fuzz.sh: $*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
log "building ${targets[*]} (ASan, release)"
cargo fuzz build -O

bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
failed=0
printf '%-12s %14s %10s %8s %8s\n' target executions exec/s corpus crashes
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  out=$(mktemp)
  parallel=()
  if [ "$jobs" -gt 1 ]; then
    parallel=(-jobs="$jobs" -workers="$jobs")
  fi
  set +e
  "$bin_dir/$target" -max_total_time="$seconds" "${parallel[@]}" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$out" 2>&1
  status=$?
  set -e
  # libFuzzer's final stats: "stat::number_of_executed_units: N" (per job).
  # (With several jobs each writes fuzz-<n>.log here; with one, only $out exists.)
  execs=$(cat "$out" fuzz-*.log 2>/dev/null |
    grep -o 'stat::number_of_executed_units: *[0-9]*' |
    awk '{ s += $2 } END { print s + 0 }' || true)
  rm -f fuzz-*.log
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  rate=$(( execs / (seconds > 0 ? seconds : 1) ))
  printf '%-12s %14s %10s %8s %8s\n' "$target" "$execs" "$rate" "$(find "$corpus" -type f | wc -l)" "$crashes"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    log "$target: exit $status, $crashes crash file(s) in $artifacts; log kept at $out"
  else
    rm -f "$out"
  fi
done
exit "$failed"
