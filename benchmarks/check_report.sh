#!/usr/bin/env bash
# Renders a comparison report in a real browser and fails when it does not show.
#
#   benchmarks/check_report.sh runs/<name>/report.html [SCREENSHOT.png] [WIDTH,HEIGHT]
#
# Installs Debian's `chromium` when it is missing (as root, or through sudo), renders the
# page headless to a PNG (default: next to the report, report.png, 1280×4000 px), then
# checks that
#   - the browser parsed the page into a DOM with inline SVG charts (--dump-dom),
#   - the screenshot exists and is not blank: enough non-background pixels, and enough
#     coloured ones (the charts and pictures; a page whose SVG failed to draw is grey text).
# Look at the screenshot too: this check catches a broken page, not an ugly one.
set -euo pipefail

report=${1:?usage: $0 REPORT.html [SCREENSHOT.png] [WIDTH,HEIGHT]}
shot=${2:-${report%.html}.png}
size=${3:-1280,4000}
[ -f "$report" ] || { echo "no such report: $report" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)…" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

url="file://$(realpath "$report")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --mute-audio --no-first-run
  --disable-dev-shm-usage --user-data-dir="$(mktemp -d)")

# 1. The DOM the browser built holds the charts.
dom=$(chromium "${flags[@]}" --dump-dom "$url" 2>/dev/null)
svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
if [ "$svgs" -eq 0 ]; then
  echo "FAIL: the browser's DOM of $report has no <svg> element" >&2
  exit 1
fi

# 2. The screenshot.
rm -f "$shot"
chromium "${flags[@]}" --window-size="$size" --screenshot="$(realpath -m "$shot")" "$url" >/dev/null 2>&1 || true
if [ ! -s "$shot" ]; then
  echo "FAIL: chromium wrote no screenshot at $shot" >&2
  exit 1
fi

# 3. Not blank: decode the PNG (standard library only) and count pixels.
python3 - "$shot" "$svgs" <<'EOF'
import struct, sys, zlib
from collections import Counter

path, svgs = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width, height, ctype, depth = 8, b"", 0, 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and interlace == 0 and ctype in (2, 6), f"unexpected PNG format {ctype}/{depth}"
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
channels = 4 if ctype == 6 else 3
raw = zlib.decompress(idat)
stride = width * channels
rows, prev = [], bytearray(stride)
for y in range(height):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - channels] if i >= channels else 0
        b = prev[i]
        c = prev[i - channels] if i >= channels else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
pixels = Counter()
coloured = 0
for line in rows:
    for x in range(0, stride, channels):
        r, g, b = line[x], line[x + 1], line[x + 2]
        pixels[(r, g, b)] += 1
        if max(r, g, b) - min(r, g, b) > 40:
            coloured += 1
total = width * height
background, count = pixels.most_common(1)[0]
drawn = (total - count) / total
colour = coloured / total
print(f"{path}: {width}×{height}, {len(pixels)} colours, {100 * drawn:.1f}% drawn over the background "
      f"{background}, {100 * colour:.2f}% coloured; {svgs} SVG charts in the DOM")
if len(pixels) < 16 or drawn < 0.01:
    sys.exit("FAIL: the screenshot is blank")
if colour < 0.002:
    sys.exit("FAIL: the screenshot has almost no colour: the charts did not render")
print("OK")
EOF
