#!/usr/bin/env python3
"""A second labeled dataset made locally: coloured shapes (Python standard library only).

    python3 benchmarks/shapes_dataset.py --out data/shapes [--seed 0]

Writes `unlabeled/` (8,000 images), `train/<class>/` (500 per class) and
`test/<class>/` (150 per class): RGB PNGs of one of 8 shapes (circle, ring, square,
diamond, triangle, cross, horizontal bar, vertical bar) in a random colour on a random
background colour, at a random position and size, with pixel noise. Image sizes vary
from 28 to 44 px per side (not square), so every run also exercises the resize. Unlike
Fashion-MNIST, the class is the shape alone: colour and position are nuisances that a
good representation must ignore, and raw pixels cannot (their linear probe is weak).
"""
import argparse
import os
import random
import struct
import zlib

CLASSES = ["circle", "ring", "square", "diamond", "triangle", "cross", "hbar", "vbar"]


def inside(shape, dx, dy, s):
    """Whether the offset (dx, dy) from the centre is inside a shape of half-size s."""
    r2 = dx * dx + dy * dy
    if shape == "circle":
        return r2 <= s * s
    if shape == "ring":
        return (0.55 * s) ** 2 <= r2 <= s * s
    if shape == "square":
        return max(abs(dx), abs(dy)) <= 0.85 * s
    if shape == "diamond":
        return abs(dx) + abs(dy) <= s
    if shape == "triangle":
        # Apex up: the half-width grows from 0 at the top (dy = -s) to s at the base.
        return -s <= dy <= s and abs(dx) <= (dy + s) / 2
    if shape == "cross":
        t = s / 3
        return (abs(dx) <= t and abs(dy) <= s) or (abs(dy) <= t and abs(dx) <= s)
    if shape == "hbar":
        return abs(dy) <= s / 3 and abs(dx) <= s
    if shape == "vbar":
        return abs(dx) <= s / 3 and abs(dy) <= s
    raise ValueError(shape)


def colour_pair(rng):
    """A background and a foreground colour at least 120 apart (sum of channel gaps)."""
    while True:
        bg = [rng.randrange(256) for _ in range(3)]
        fg = [rng.randrange(256) for _ in range(3)]
        if sum(abs(a - b) for a, b in zip(bg, fg)) >= 120:
            return bg, fg


def render(shape, rng):
    w, h = rng.randint(28, 44), rng.randint(28, 44)
    s = rng.uniform(0.2, 0.36) * min(w, h)
    cx = rng.uniform(s + 1, w - s - 1)
    cy = rng.uniform(s + 1, h - s - 1)
    bg, fg = colour_pair(rng)
    rows = []
    for y in range(h):
        row = bytearray([0])  # PNG filter type 0 (none)
        for x in range(w):
            c = fg if inside(shape, x + 0.5 - cx, y + 0.5 - cy, s) else bg
            for v in c:
                row.append(min(255, max(0, v + rng.randint(-20, 20))))
        rows.append(bytes(row))
    return w, h, b"".join(rows)


def png(w, h, raw):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write(path, shape, rng):
    w, h, raw = render(shape, rng)
    with open(path, "wb") as f:
        f.write(png(w, h, raw))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=150)
    parser.add_argument("--unlabeled", type=int, default=8000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for split, per in [("train", args.train_per_class), ("test", args.test_per_class)]:
        for name in CLASSES:
            folder = os.path.join(args.out, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per):
                write(os.path.join(folder, f"{i:05d}.png"), name, rng)
    folder = os.path.join(args.out, "unlabeled")
    os.makedirs(folder, exist_ok=True)
    for i in range(args.unlabeled):
        write(os.path.join(folder, f"{i:05d}.png"), rng.choice(CLASSES), rng)
    total = len(CLASSES) * (args.train_per_class + args.test_per_class) + args.unlabeled
    print(f"wrote {total} images of {len(CLASSES)} classes to {args.out}")


if __name__ == "__main__":
    main()
