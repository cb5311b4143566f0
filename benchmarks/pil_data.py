#!/usr/bin/env python3
"""PIL's decode + resize on a folder of photos: the reference for `pretext bench data
--folder`. Per file, what torchvision's ImageFolder does with `Resize(size)`:
`Image.open(path).convert("RGB")`, then `resize` of the shorter side to `size` with
BILINEAR (the longer side scaled and truncated, as torchvision computes it). Runs on
`--workers` processes, as a DataLoader's workers do, in whole passes over the folder
until `--seconds` have passed. Prints JSON: images per second.

With `--draft`, JPEGs are first decoded at a reduced DCT scale (`Image.draft`, which
torchvision does not call): PIL's best case, for comparison with Pretext's own reduced
decode.
"""
import argparse
import json
import os
import time
from multiprocessing import Pool

from PIL import Image

SIZE = 64
DRAFT = False


def load(path):
    with open(path, "rb") as f:
        image = Image.open(f)
        if DRAFT:
            image.draft("RGB", (SIZE, SIZE))  # the largest reduction keeping both sides >= SIZE
        image = image.convert("RGB")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    if short > SIZE:
        new_long = int(SIZE * long / short)
        image = image.resize((SIZE, new_long) if w <= h else (new_long, SIZE), Image.BILINEAR)
    return image.size


def init(size, draft):
    global SIZE, DRAFT
    SIZE, DRAFT = size, draft


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--draft", action="store_true")
    args = parser.parse_args()
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(args.folder) if "/." not in d
                   for f in fs if f.lower().endswith((".jpg", ".jpeg", ".png")))
    with Pool(args.workers, initializer=init, initargs=(args.size, args.draft)) as pool:
        pool.map(load, files[: args.workers])  # warm-up: workers started, imports done
        start, done = time.perf_counter(), 0
        while True:
            pool.map(load, files, chunksize=max(1, len(files) // (4 * args.workers)))
            done += len(files)
            if time.perf_counter() - start >= args.seconds:
                break
        seconds = time.perf_counter() - start
    print(json.dumps({"images": len(files), "size": args.size, "workers": args.workers,
                      "draft": args.draft,
                      "images_per_second": done / seconds, "pillow": Image.__version__}))


if __name__ == "__main__":
    main()
