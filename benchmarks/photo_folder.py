#!/usr/bin/env python3
"""Builds folders of real colour JPEG photos, for `bench data` and for trying Pretext
on colour images: crops of the photographs that Debian ships as desktop wallpapers
(plasma-workspace-wallpapers, fetched with `apt-get download` and unpacked here; no
installation, no root needed).

  photo_folder.py bench OUT      60 JPEGs from 300x200 to 4000x3000 px (the sizes of
                                 phone pictures and web scrapes), mixed chroma
                                 subsampling, some progressive
  photo_folder.py labeled OUT    OUT/unlabeled (600 crops), OUT/train/<photo>/ (20 per
                                 class) and OUT/test/<photo>/ (30 per class): 10 classes,
                                 one per photograph, crops of 10-40% of its area saved at
                                 320-800 px; a probe then asks which photograph a crop
                                 comes from (colour, texture and content)

Deterministic (seeded); needs Pillow. Nothing it writes is committed.
"""
import argparse
import glob
import os
import random
import subprocess
import tempfile

from PIL import Image

PHOTOS = ["Autumn", "BytheWater", "ColdRipple", "ColorfulCups", "EveningGlow",
          "FallenLeaf", "Kite", "PastelHills", "SafeLanding", "Volna"]
BENCH_SIZES = [(300, 200), (640, 480), (1024, 768), (1920, 1080), (3000, 2000), (4000, 3000)]


def wallpapers(cache):
    """The largest image of each wallpaper, by name (unpacking the package once)."""
    root = os.path.join(cache, "x")
    if not os.path.isdir(root):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=cache, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(cache, "plasma-workspace-wallpapers_*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    best = {}
    for path in glob.glob(os.path.join(root, "usr/share/wallpapers/*/contents/images/*")):
        name = path.split("/")[-4]
        with Image.open(path) as im:
            area = im.size[0] * im.size[1]
        if name not in best or area > best[name][0]:
            best[name] = (area, path)
    return {name: path for name, (_, path) in best.items()}


def save(image, path, rng):
    """JPEG at a random quality, chroma subsampling (4:2:0 mostly) and sometimes progressive."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, "JPEG", quality=rng.randint(75, 95), subsampling=rng.choice([2, 2, 2, 1, 0]),
               progressive=rng.random() < 0.15)


def crop(source, rng, min_area=0.1, max_area=0.4):
    w, h = source.size
    area = rng.uniform(min_area, max_area) * w * h
    ratio = rng.uniform(3 / 4, 4 / 3)
    cw = min(w, int(round((area * ratio) ** 0.5)))
    ch = min(h, int(round((area / ratio) ** 0.5)))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return source.crop((x, y, x + cw, y + ch))


def bench(out, sources, rng):
    names = sorted(sources)
    for i in range(60):
        width, height = BENCH_SIZES[i % len(BENCH_SIZES)]
        if rng.random() < 0.3:
            width, height = height, width  # portrait
        with Image.open(sources[names[i % len(names)]]) as im:
            source = im.convert("RGB")
        # The largest centred box of the target's aspect, scaled to the target size.
        w, h = source.size
        scale = min(w / width, h / height)
        box_w, box_h = int(width * scale), int(height * scale)
        left, top = (w - box_w) // 2, (h - box_h) // 2
        image = source.crop((left, top, left + box_w, top + box_h)).resize((width, height), Image.LANCZOS)
        save(image, os.path.join(out, f"{i:03d}-{width}x{height}.jpg"), rng)


def labeled(out, sources, rng, unlabeled=600, train=20, test=30):
    photos = {}
    for name in PHOTOS:
        with Image.open(sources[name]) as im:
            photos[name] = im.convert("RGB")

    def sample(name):
        image = crop(photos[name], rng)
        longer = rng.randint(320, 800)
        w, h = image.size
        s = longer / max(w, h)
        return image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)

    for i in range(unlabeled):
        save(sample(PHOTOS[i % len(PHOTOS)]), os.path.join(out, "unlabeled", f"{i:04d}.jpg"), rng)
    for split, count in (("train", train), ("test", test)):
        for name in PHOTOS:
            for i in range(count):
                save(sample(name), os.path.join(out, split, name, f"{i:03d}.jpg"), rng)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bench", "labeled"])
    parser.add_argument("out")
    parser.add_argument("--wallpapers", default=os.path.join(tempfile.gettempdir(), "pretext-wallpapers"),
                        help="where the package is unpacked (reused)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sources = wallpapers(args.wallpapers)
    (bench if args.kind == "bench" else labeled)(args.out, sources, rng)


if __name__ == "__main__":
    main()
