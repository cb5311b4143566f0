#!/usr/bin/env bash
# Regenerates the JPEG fixtures of Tests/VisionTests (JPEGTests, the folder tests) and their
# reference pixels. Needs libjpeg-turbo-progs (cjpeg, djpeg, jpegtran), libjpeg62-turbo-dev
# and a C compiler. Made with libjpeg-turbo 2.1.5 (Debian 12).
#
#   pattern-*.jpg       37×29 (odd sides: partial MCUs) colour pattern, one file per kind:
#                       gray, 4:4:4, 4:2:2, 4:2:0, progressive 4:2:0, progressive gray,
#                       arithmetic-coded 4:2:0;
#                       pattern-*.ppm / .pgm are djpeg's decodes of each (the reference)
#   smooth.jpg          64×48 colour gradient, 4:2:0; smooth-1-N.ppm: djpeg -scale 1/N
#   smooth-gray.jpg     the same in gray (for the 1/8 = block-mean check); .pgm: djpeg
#   orient-K.jpg        EXIF orientation K = 1…8: a 32×16 image of four flat 16×8
#                       quadrants (red, green / blue, white) stored so that applying K
#                       shows it upright (jpegtran's inverse transform, lossless);
#                       odd K with a big-endian (MM) EXIF block, even K little-endian (II);
#                       orient-upright.ppm: djpeg's decode of the upright file
#   cmyk.jpg, ycck.jpg  16×8 Adobe (inverted) CMYK and YCCK, written by write_cmyk.c;
#                       cmyk.ppm / ycck.ppm: djpeg's decode (its PPM writer converts CMYK
#                       to RGB as R = C·K/255, the Adobe convention)
#   odd-1x1.jpg, odd-1x300.jpg, photo-640x480.jpg   odd sizes for the mixed-folder test
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Plain (ASCII) PPM of W×H from an awk expression for r, g, b in terms of x, y.
ppm() {  # W H R G B
  awk -v w="$1" -v h="$2" "BEGIN { print \"P3\", w, h, 255;
    for (y = 0; y < h; y++) for (x = 0; x < w; x++) print int($3) % 256, int($4) % 256, int($5) % 256 }"
}

ppm 37 29 'x * 7' 'y * 9' '(x * x + y * 3)' >"$work/pattern.ppm"
cjpeg -quality 90 -grayscale "$work/pattern.ppm" >pattern-gray.jpg
cjpeg -quality 90 -sample 1x1 "$work/pattern.ppm" >pattern-444.jpg
cjpeg -quality 90 -sample 2x1 "$work/pattern.ppm" >pattern-422.jpg
cjpeg -quality 90 -sample 2x2 "$work/pattern.ppm" >pattern-420.jpg
cjpeg -quality 90 -sample 2x2 -progressive "$work/pattern.ppm" >pattern-progressive.jpg
cjpeg -quality 90 -grayscale -progressive "$work/pattern.ppm" >pattern-progressive-gray.jpg
cjpeg -quality 90 -sample 2x2 -arithmetic "$work/pattern.ppm" >pattern-arithmetic.jpg
for kind in gray progressive-gray; do djpeg -pnm pattern-$kind.jpg >pattern-$kind.pgm; done
for kind in 444 422 420 progressive arithmetic; do djpeg -pnm pattern-$kind.jpg >pattern-$kind.ppm; done

ppm 64 48 '40 + x * 2 + y' '200 - x - y' '60 + y * 2' >"$work/smooth.ppm"
cjpeg -quality 90 -sample 2x2 "$work/smooth.ppm" >smooth.jpg
djpeg -pnm smooth.jpg >smooth-1-1.ppm
for n in 2 4 8; do djpeg -pnm -scale 1/$n smooth.jpg >smooth-1-$n.ppm; done
cjpeg -quality 90 -grayscale "$work/smooth.ppm" >smooth-gray.jpg
djpeg -pnm smooth-gray.jpg >smooth-gray.pgm

ppm 32 16 '(y < 8 ? (x < 16 ? 200 : 40) : (x < 16 ? 40 : 230))' \
  '(y < 8 ? (x < 16 ? 40 : 200) : (x < 16 ? 40 : 230))' \
  '(y < 8 ? 40 : (x < 16 ? 200 : 230))' >"$work/upright.ppm"
cjpeg -quality 95 -sample 1x1 "$work/upright.ppm" >"$work/upright.jpg"
djpeg -pnm "$work/upright.jpg" >orient-upright.ppm
# The stored image for orientation K is the upright one under the inverse of K's display
# transform (2, 3, 4, 5, 7 are their own inverses; 6 shows the stored image turned 90°
# clockwise, so it is stored turned 270°; 8 the reverse).
inverse=("" "" "-flip horizontal" "-rotate 180" "-flip vertical" "-transpose" "-rotate 270" \
  "-transverse" "-rotate 90")
for k in 1 2 3 4 5 6 7 8; do
  # shellcheck disable=SC2086
  jpegtran -perfect -copy none ${inverse[$k]} "$work/upright.jpg" >"$work/stored.jpg"
  # APP1: "Exif\0\0", a TIFF header, IFD0 with one entry: 0x0112 SHORT count 1 = K.
  if ((k % 2 == 1)); then
    exif="\xff\xe1\x00\x22Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x0$k\x00\x00\x00\x00\x00\x00"
  else
    exif="\xff\xe1\x00\x22Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x0$k\x00\x00\x00\x00\x00\x00\x00"
  fi
  { head -c 2 "$work/stored.jpg"; printf "$exif"; tail -c +3 "$work/stored.jpg"; } >orient-$k.jpg
done

cc -O1 -o "$work/write_cmyk" write_cmyk.c -ljpeg
for kind in cmyk ycck; do
  "$work/write_cmyk" $kind $kind.jpg
  djpeg -pnm $kind.jpg >$kind.ppm
done

ppm 1 1 '90' '150' '210' >"$work/1x1.ppm"
cjpeg -quality 90 "$work/1x1.ppm" >odd-1x1.jpg
ppm 1 300 'y * 0.8' '255 - y * 0.8' '128' >"$work/1x300.ppm"
cjpeg -quality 90 "$work/1x300.ppm" >odd-1x300.jpg
ppm 640 480 'x / 3' 'y / 2' '(x + y) / 5' >"$work/640x480.ppm"
cjpeg -quality 75 "$work/640x480.ppm" >photo-640x480.jpg
echo "fixtures written to $(pwd)"
