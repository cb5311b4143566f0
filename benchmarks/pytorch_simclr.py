#!/usr/bin/env python3
"""A PyTorch SimCLR reference (Chen et al. 2020) for a wall-clock budget on a CPU.

The reference side of benchmarks/quality_vs_pytorch.sh: it pretrains on a folder of images
for a number of minutes (or steps) and saves the encoder with torchvision's tensor names,
so that `pretext probe --weights F --backbone resnet10-small --width W ...` evaluates it
with exactly Pretext's probe.

Made to be strong within 20 CPU-minutes, not a strawman:
  - a CIFAR-style ResNet with one basic block per stage (3x3 stem, no max pool), widths
    W-2W-4W-8W: at 28 px, more epochs in the minutes than ResNet-18 gives, and the probe
    still sees 8W features;
  - augmentation done on whole batches (one affine grid per view, `grid_sample`): random
    resized crop (area scale [s, 1], aspect 3/4..4/3), horizontal flip, brightness and
    contrast jitter with p = 0.8, so the cores spend the minutes in the network, not in
    per-image Python;
  - channels-last tensors (oneDNN's preferred layout for CPU convolution);
  - NT-Xent with T = 0.2 and a fc-BN-ReLU-fc projector (SimCLR's CIFAR settings);
  - SGD with momentum 0.9 (or LARS / AdamW), 5% linear warmup then cosine, scheduled
    over the fraction of the budget spent, so a time budget ends at the bottom of the
    cosine whatever the machine's speed.

Usage: pytorch_simclr.py --data DIR --out DIR (--minutes M | --steps N) [--width 32]
       [--batch 256] [--optimizer sgd|lars|adamw] [--lr R] [--weight-decay W]
       [--temperature 0.2] [--crop-scale 0.2] [--image-size 28] [--threads 2] [--seed 0]
Writes DIR/backbone.safetensors (torchvision names, no head) and DIR/run.json.
Needs torch and safetensors (python3 -m venv venv && venv/bin/pip install torch safetensors).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_folder(folder, size, channels):
    """Every image under `folder` (recursively, sorted), resized to size×size: uint8 N×C×S×S."""
    paths = sorted(
        os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise SystemExit(f"{folder}: no PNG or JPEG images found")
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    for i, p in enumerate(paths):
        im = Image.open(p).convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(im).reshape(size, size, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (the same tensor names)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet: 3×3 stride-1 stem, no max pool, `blocks` basic blocks per stage.
    Input N×C×S×S, output N×8W (global average pool of layer4)."""

    def __init__(self, in_channels, width, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            layers = [BasicBlock(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            cin = cout
        self.features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def augment(batch, crop_min, generator):
    """One SimCLR view of a uint8 batch N×C×S×S: float, normalized to [-1, 1]."""
    n, _, s, _ = batch.shape
    x = batch.float().div_(255)
    u = lambda: torch.rand(n, generator=generator)
    area = crop_min + (1 - crop_min) * u()
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u())
    w = torch.sqrt(area * ratio).clamp(max=1)  # crop side as a fraction of the image side
    h = torch.sqrt(area / ratio).clamp(max=1)
    cx = (1 - w) * (2 * u() - 1)  # crop centre in [-1, 1] coordinates, inside the image
    cy = (1 - h) * (2 * u() - 1)
    flip = torch.where(u() < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Colour jitter (gray images: brightness and contrast, strength 0.4) with p = 0.8.
    jitter = (u() < 0.8).float().view(n, 1, 1, 1)
    b = 1 + jitter * (0.8 * u().view(n, 1, 1, 1) - 0.4)
    c = 1 + jitter * (0.8 * u().view(n, 1, 1, 1) - 0.4)
    x = (x * b).clamp_(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * c + mean).clamp_(0, 1)
    return x.sub_(0.5).div_(0.5).contiguous(memory_format=torch.channels_last)


def nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / tau
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (You et al. 2017), biases and BN excluded."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, eta=0.001):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=g["weight_decay"])
                    pn, dn = torch.norm(p), torch.norm(d)
                    d = d.mul(torch.where((pn > 0) & (dn > 0), g["eta"] * pn / dn, torch.ones_like(pn)))
                buf = self.state[p].setdefault("mu", torch.zeros_like(p))
                buf.mul_(g["momentum"]).add_(d)
                p.add_(buf, alpha=-g["lr"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--blocks", default="1,1,1,1")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--optimizer", choices=["sgd", "lars", "adamw"], default="sgd")
    ap.add_argument("--lr", type=float, default=None, help="peak lr for batch 256 (sgd 0.3, lars 1.0, adamw 1e-3)")
    ap.add_argument("--weight-decay", type=float, default=None, help="sgd/lars 1e-4, adamw 1e-2")
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--crop-scale", type=float, default=0.2)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if (args.minutes > 0) == (args.steps > 0):
        raise SystemExit("give one of --minutes or --steps")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    images = load_folder(args.data, args.image_size, args.channels)
    load_seconds = time.time() - t0

    encoder = SmallResNet(args.channels, args.width, [int(b) for b in args.blocks.split(",")])
    projector = nn.Sequential(
        nn.Linear(encoder.features, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    model = nn.Sequential(encoder, projector).to(memory_format=torch.channels_last)
    scale = args.batch / 256
    lr = scale * (args.lr if args.lr is not None else {"sgd": 0.3, "lars": 1.0, "adamw": 1e-3}[args.optimizer])
    wd = args.weight_decay if args.weight_decay is not None else (1e-2 if args.optimizer == "adamw" else 1e-4)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [dict(params=decay, weight_decay=wd), dict(params=no_decay, weight_decay=0.0)]
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    elif args.optimizer == "lars":
        opt = LARS(groups, lr=lr)
    else:
        opt = torch.optim.AdamW(groups, lr=lr)

    budget = args.minutes * 60
    n = images.shape[0]
    order = torch.randperm(n, generator=gen)
    cursor, step, losses = 0, 0, []
    model.train()
    start = time.time()
    while True:
        done = (time.time() - start) / budget if budget > 0 else step / args.steps
        if done >= 1:
            break
        # 5% linear warmup, then cosine to 0, over the fraction of the budget spent.
        factor = done / args.warmup if done < args.warmup else 0.5 * (1 + math.cos(math.pi * (done - args.warmup) / (1 - args.warmup)))
        for g in opt.param_groups:
            g["lr"] = lr * factor
        if cursor + args.batch > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        batch = images[order[cursor:cursor + args.batch]]
        cursor += args.batch
        v1, v2 = augment(batch, args.crop_scale, gen), augment(batch, args.crop_scale, gen)
        loss = nt_xent(model(v1), model(v2), args.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(f"step {step}  loss {sum(losses[-50:]) / 50:.4f}  {time.time() - start:.0f} s", flush=True)
    seconds = time.time() - start

    os.makedirs(args.out, exist_ok=True)
    state = {k: v.contiguous() for k, v in encoder.state_dict().items()}
    tmp = os.path.join(args.out, "backbone.safetensors.tmp")
    save_file(state, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(args.out, "backbone.safetensors"))
    summary = dict(
        steps=step, seconds=round(seconds, 1), epochs=round(step * args.batch / n, 2),
        images_per_second=round(step * args.batch / seconds, 1), load_seconds=round(load_seconds, 1),
        first_loss=round(sum(losses[:20]) / max(1, len(losses[:20])), 4),
        last_loss=round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
        recipe=dict(width=args.width, blocks=args.blocks, batch=args.batch, optimizer=args.optimizer, lr=lr,
                    weight_decay=wd, warmup=args.warmup, temperature=args.temperature, crop_scale=args.crop_scale,
                    image_size=args.image_size, threads=args.threads, seed=args.seed, torch=torch.__version__))
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
