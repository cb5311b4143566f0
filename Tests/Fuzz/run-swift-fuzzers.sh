#!/usr/bin/env bash
# Builds the Swift parsers' fuzz entry points (Sources/pretext-fuzz) with libFuzzer and
# AddressSanitizer, and runs each target on a copy of its seed corpus.
# Usage: Tests/Fuzz/run-swift-fuzzers.sh [SECONDS] [TARGET...]
#   SECONDS per target (default 600); TARGETs: safetensors idx config (default: all)
# The work folder keeps each target's grown corpus and full log (TARGET.log). A crash leaves
# crash-* there; replay it with the normal build:
#   .build/release/pretext-fuzz TARGET crash-file
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
shift || true
targets=${*:-safetensors idx config}
swift build -c release --scratch-path .build-fuzz --product pretext-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >/dev/null
work=$(mktemp -d)
for t in $targets; do
  mkdir -p "$work/$t"
  cp Tests/Fuzz/corpus/"$t"/* "$work/$t/"
  echo "== $t ($seconds s)"
  PRETEXT_FUZZ_TARGET=$t .build-fuzz/release/pretext-fuzz -max_total_time="$seconds" -max_len=16384 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$work/$t-" "$work/$t" 2>&1 | tee "$work/$t.log" | tail -n 3
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" || true  # executions, coverage, corpus
done
echo "work folder: $work"
