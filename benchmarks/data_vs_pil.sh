#!/usr/bin/env bash
# Decode + resize of a photo folder, Pretext against PIL on the same files and thread
# count, at the sizes training uses (64, 128 and 224 px on the shorter side), against
# PIL as torchvision's ImageFolder uses it (full decode, then resize) and PIL's best case
# (`draft`: a reduced JPEG decode); then Pretext's cached path, and whether its loader
# keeps a SimCLR ResNet-18 step fed at half the decode size (64 px for 128).
#   benchmarks/data_vs_pil.sh [FOLDER] [THREADS]
# FOLDER defaults to a folder of 60 photos from 300x200 to 4000x3000 px, made by
# benchmarks/photo_folder.py. Needs Pillow (pip install pillow) for the PIL side.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-/tmp/pretext-photos-bench}
threads=${2:-$(nproc)}
python=${PYTHON:-python3}
[ -d "$folder" ] || "$python" benchmarks/photo_folder.py bench "$folder"
pretext=.build/release/pretext
[ -x "$pretext" ] || swift build -c release
for size in 64 128 224; do
  ours=$("$pretext" bench data --folder "$folder" --size "$size" --threads "$threads" --json)
  pil=$("$python" benchmarks/pil_data.py "$folder" --size "$size" --workers "$threads")
  draft=$("$python" benchmarks/pil_data.py "$folder" --size "$size" --workers "$threads" --draft)
  "$python" - "$ours" "$pil" "$draft" <<'PY'
import json, sys
ours, pil, draft = (json.loads(a) for a in sys.argv[1:4])
print(f"{ours['images']} photos, shorter side {ours['size']} px, {ours['threads']} threads:")
print(f"  decode + resize  Pretext {ours['decode_images_per_second']:7.1f} images/s, "
      f"PIL {pil['pillow']} {pil['images_per_second']:7.1f} images/s: {ours['decode_images_per_second'] / pil['images_per_second']:.2f}x; "
      f"PIL with draft {draft['images_per_second']:7.1f}: {ours['decode_images_per_second'] / draft['images_per_second']:.2f}x")
print(f"  cached           Pretext {ours['cached_images_per_second']:7.0f} images/s: {ours['cache_speedup']:.0f}x its decode")
print(f"  SimCLR at {ours['size'] // 2} px   loader {ours['loader_views_per_second']:.0f} views/s on one thread, "
      f"step {ours['step_views_per_second']:.0f} views/s: feed ratio {ours['feed_ratio']:.2f}")
PY
done
