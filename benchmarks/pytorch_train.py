#!/usr/bin/env python3
"""The `pretext bench train` workloads in PyTorch (CPU, float32), for side-by-side speed.

One step = forward + backward + AdamW update on random 3×32×32 inputs:
  mae              ViT-Tiny encoder (patch 4, width 192, depth 12, 3 heads) on 25% visible
                   patches + class token; decoder width 128, depth 2, 4 heads; MSE on masked
                   patches with per-patch normalized targets. Batch 256.
  simclr           the same ViT-Tiny on two views (512 images), class token, projection
                   192→512→128 (ReLU), NT-Xent τ=0.2. Batch 256.
  relloc           the same ViT-Tiny on 256 pairs (512 images), [f1, f2] → 384→512→8, CE.
  simclr-resnet18  CIFAR ResNet-18 (3×3 stem, no max pool) on two views, 512→512→128, NT-Xent.
                   Batch 128.

Install (CPU): python3 -m venv venv && venv/bin/pip install torch timm torchvision
Usage: pytorch_train.py --workload NAME [--batch N] [--steps N] [--threads N] [--json]
Prints median images/s, median step time and peak resident memory (like pretext).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import timm
import torchvision


def vit_tiny():
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=4, in_chans=3, num_classes=0, embed_dim=192, depth=12, num_heads=3,
        global_pool="token")


def nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / tau
    n = z1.shape[0]
    sim.fill_diagonal_(-1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


class MAE(nn.Module):
    """MAE as in He et al.'s reference code, on a timm ViT encoder."""

    def __init__(self, encoder, dec_width=128, dec_depth=2, dec_heads=4, patch=4, grid=8):
        super().__init__()
        self.encoder, self.patch, self.grid = encoder, patch, grid
        self.decoder_embed = nn.Linear(192, dec_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dec_width), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [timm.models.vision_transformer.Block(dec_width, dec_heads, 4.0, qkv_bias=True) for _ in range(dec_depth)])
        self.decoder_norm = nn.LayerNorm(dec_width, eps=1e-6)
        self.decoder_pred = nn.Linear(dec_width, patch * patch * 3)

    def patchify(self, x):
        b, p, g = x.shape[0], self.patch, self.grid
        x = x.reshape(b, 3, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, g * g, p * p * 3)

    def forward(self, x, ids_keep, mask):
        e = self.encoder
        t = e.patch_embed(x) + e.pos_embed[:, 1:, :]
        d = t.shape[-1]
        t = torch.gather(t, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
        cls = (e.cls_token + e.pos_embed[:, :1, :]).expand(t.shape[0], -1, -1)
        t = e.norm(e.blocks(torch.cat([cls, t], dim=1)))
        y = self.decoder_embed(t)
        b, n = x.shape[0], self.grid * self.grid
        full = self.mask_token.expand(b, n, -1).clone()
        full = full.scatter(1, ids_keep.unsqueeze(-1).repeat(1, 1, y.shape[-1]), y[:, 1:, :])
        y = torch.cat([y[:, :1, :], full], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            y = blk(y)
        pred = self.decoder_pred(self.decoder_norm(y))[:, 1:, :]
        target = self.patchify(x)
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(-1)
        return (loss * mask).sum() / mask.sum()


def make(workload, batch):
    g = torch.Generator().manual_seed(11)
    x1 = torch.rand(batch, 3, 32, 32, generator=g)
    x2 = torch.rand(batch, 3, 32, 32, generator=g)
    if workload == "mae":
        model = MAE(vit_tiny())
        ids_keep = torch.stack([torch.randperm(64, generator=g)[:16].sort().values for _ in range(batch)])
        mask = torch.ones(batch, 64)
        mask.scatter_(1, ids_keep, 0)
        return model, (lambda: model(x1, ids_keep, mask)), batch
    if workload in ("simclr", "simclr-resnet18"):
        if workload == "simclr":
            backbone, width = vit_tiny(), 192
        else:
            backbone = torchvision.models.resnet18()
            backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            backbone.maxpool, backbone.fc, width = nn.Identity(), nn.Identity(), 512
        head = nn.Sequential(nn.Linear(width, 512), nn.ReLU(), nn.Linear(512, 128))
        model = nn.ModuleList([backbone, head])

        def loss():
            z = head(backbone(torch.cat([x1, x2])))
            return nt_xent(z[:batch], z[batch:], 0.2)
        return model, loss, 2 * batch
    if workload == "relloc":
        backbone = vit_tiny()
        head = nn.Sequential(nn.Linear(384, 512), nn.ReLU(), nn.Linear(512, 8))
        model = nn.ModuleList([backbone, head])
        targets = torch.randint(0, 8, (batch,), generator=g)

        def loss():
            f = backbone(torch.cat([x1, x2]))
            return F.cross_entropy(head(torch.cat([f[:batch], f[batch:]], dim=1)), targets)
        return model, loss, 2 * batch
    raise SystemExit(f"unknown workload {workload}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    batch = a.batch or (128 if a.workload == "simclr-resnet18" else 256)
    model, loss_fn, images = make(a.workload, batch)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"workload": a.workload, "batch": batch, "images_per_step": images, "threads": a.threads,
              "median_step_seconds": median, "images_per_second": images / median, "peak_resident_mb": rss_mb,
              "torch": torch.__version__}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {a.workload}: median step {median:.3f} s, {images / median:.1f} images/s, peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
