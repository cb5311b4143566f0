#!/usr/bin/env python3
"""Reference resizes for ImageResizeTests, made with PIL (Pillow).

The input is a deterministic 131x97 RGB image (noise, hard edges and a gradient, so
that both the antialiasing filter and the edge handling show) and its gray twin; each
is resized with `Image.resize(size, Image.BILINEAR)`, which is what torchvision's
ImageFolder pipeline does (`Image.open(p).convert("RGB")`, then `Resize`).
Run: python3 make_resize_fixtures.py (needs Pillow). Writes binary PPM/PGM files here.
"""
import random

from PIL import Image

W, H = 131, 97
rng = random.Random(17)
rgb = Image.new("RGB", (W, H))
pixels = []
for y in range(H):
    for x in range(W):
        if x < 40:  # noise
            pixels.append(tuple(rng.randrange(256) for _ in range(3)))
        elif x < 80:  # hard edges: a checkerboard of 5-px squares
            v = 255 if ((x // 5) + (y // 5)) % 2 else 0
            pixels.append((v, 255 - v, v // 2))
        else:  # gradients
            pixels.append(((x * 5) % 256, (y * 2) % 256, ((x + y) * 3) % 256))
rgb.putdata(pixels)
rgb.save("input-rgb.ppm")
gray = rgb.convert("L")
gray.save("input-gray.pgm")
for name, image, ext in (("rgb", rgb, "ppm"), ("gray", gray, "pgm")):
    for size in ((40, 29), (131, 50), (17, 97), (1, 1), (200, 150)):
        image.resize(size, Image.BILINEAR).save(f"{name}-{size[0]}x{size[1]}.{ext}")
