#!/usr/bin/env bash
# Compares the sgemm rate `pretext doctor` measures (with the core type Pretext chooses)
# against a plain C program linked to OpenBLAS with OPENBLAS_CORETYPE=SkylakeX (the
# fastest x86-64 kernels of OpenBLAS 0.3.21), alternating three times each.
# Usage: benchmarks/sgemm_vs_c.sh   (after `make build`; needs gcc and libopenblas-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
gcc -O2 -o "$out/sgemm" benchmarks/sgemm.c $(pkg-config --cflags --libs openblas)
for i in 1 2 3; do
  c=$(OPENBLAS_CORETYPE=${REFERENCE_CORE:-SkylakeX} "$out/sgemm" 1024)
  # Capture first, parse after: a parser starting in parallel would steal a core.
  json=$(env -u OPENBLAS_CORETYPE .build/release/pretext doctor --json)
  p=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.1f %s" % (d["sgemm_gflops"], d["openblas_core"]))')
  read -r pg core <<<"$p"
  python3 -c "print('C (${REFERENCE_CORE:-SkylakeX}): $c GFLOP/s   pretext ($core): $pg GFLOP/s   ratio %.2f' % ($pg / $c))"
done
rm -rf "$out"
