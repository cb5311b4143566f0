#!/usr/bin/env bash
# Builds the libpng-shim fuzzer with libFuzzer, AddressSanitizer and UndefinedBehavior-
# Sanitizer, and runs it on a copy of the PngSuite seed corpus.
# Usage: Tests/Fuzz/run-png-fuzzer.sh [SECONDS]   (default 600; needs clang, libpng-dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
work=$(mktemp -d)
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I Sources/CPNG/include Sources/CPNG/cpng.c Tests/Fuzz/png_fuzzer.c -lpng16 -lz -o "$work/png_fuzzer"
mkdir -p "$work/corpus"
cp Tests/VisionTests/Fixtures/pngsuite/png/*.png "$work/corpus/"
cd "$work"
./png_fuzzer -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 corpus 2>&1 | tail -n 20
echo "work folder (corpus, any crash-* files): $work"
