#!/usr/bin/env bash
# Pretext against PyTorch on the same machine, same threads, alternating per workload:
# prints each side's median images/s and peak memory, and the ratios.
# Usage: benchmarks/compare_train.sh [PYTHON] [THREADS] [STEPS]
#   PYTHON: an interpreter with torch, timm and torchvision (default: python3)
#   e.g. python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch timm torchvision
#        benchmarks/compare_train.sh /tmp/torch/bin/python 2 5
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
THREADS=${2:-2}
STEPS=${3:-5}
PRETEXT=.build/release/pretext
[ -x "$PRETEXT" ] || make build >/dev/null
printf "%-16s %12s %12s %8s %10s %10s %8s\n" workload pretext_img/s torch_img/s ratio pretext_MB torch_MB mem
for w in mae simclr relloc simclr-resnet18; do
  # Each side runs in its own process (peak memory is per process); captured first,
  # parsed after, so no parser competes for the cores during a measurement.
  p=$(env -u OPENBLAS_CORETYPE "$PRETEXT" bench train --workload "$w" --threads "$THREADS" --steps "$STEPS" --json)
  t=$(OMP_NUM_THREADS=$THREADS "$PY" benchmarks/pytorch_train.py --workload "$w" --threads "$THREADS" --steps "$STEPS" --json)
  python3 - "$w" "$p" "$t" <<'PYEOF'
import json, sys
w, p, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{w:<16} {p['images_per_second']:12.1f} {t['images_per_second']:12.1f} {p['images_per_second'] / t['images_per_second']:8.2f} "
      f"{p['peak_resident_mb']:10.0f} {t['peak_resident_mb']:10.0f} {p['peak_resident_mb'] / t['peak_resident_mb']:8.2f}")
PYEOF
done
