#!/usr/bin/env bash
# Builds the libjpeg-turbo-shim fuzzer with libFuzzer, AddressSanitizer and Undefined-
# BehaviorSanitizer, and runs it on a copy of the seed corpus (Tests/Fuzz/corpus/jpeg:
# tiny JPEGs from Tests/VisionTests/Fixtures/jpeg: 4:2:0, progressive gray, CMYK, YCCK,
# EXIF-rotated, 1×1).
# Usage: Tests/Fuzz/run-jpeg-fuzzer.sh [SECONDS]   (default 600; needs clang, libjpeg62-turbo-dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
work=$(mktemp -d)
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I Sources/CJPEG/include Sources/CJPEG/cjpeg.c Tests/Fuzz/jpeg_fuzzer.c -ljpeg -o "$work/jpeg_fuzzer"
mkdir -p "$work/corpus"
cp Tests/Fuzz/corpus/jpeg/*.jpg "$work/corpus/"
cd "$work"
./jpeg_fuzzer -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 corpus 2>&1 |
  tee fuzz.log | tail -n 5
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' fuzz.log || true  # executions, coverage, corpus
echo "work folder (corpus, fuzz.log, any crash-* files): $work"
