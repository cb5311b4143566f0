#!/usr/bin/env python3
"""Loads a Pretext-saved backbone into timm / torchvision with strict=True and checks
that PyTorch computes the same features as Pretext on the same input.

    pretext inspect vit-tiny --save-weights /tmp/vit.safetensors --save-features /tmp/vit.json
    pretext inspect resnet18 --save-weights /tmp/resnet.safetensors --save-features /tmp/resnet.json
    python3 Tests/BackbonesTests/Fixtures/check_in_pytorch.py /tmp/vit.safetensors /tmp/resnet.safetensors

Reads the architecture from the file's metadata, builds the matching PyTorch model
(no classifier head), loads the tensors strictly, runs the input Pretext saved beside
the weights (same name, .json) and compares the features (relative L2 error ≤ 1e-4).
Exits non-zero on any failure.
"""
import json
import sys

import timm
import torch
import torchvision
from safetensors.torch import load_file
from safetensors import safe_open


def build(config):
    if "architecture" in config:  # {"architecture": "vit", "width": 192, ...}
        kind, c = config["architecture"], config
    else:  # files written before the flat form: {"vit": {"_0": {...}}}
        kind, c = next(iter(config.items()))
        c = c["_0"] if "_0" in c else c
    if kind == "vit":
        m = timm.models.vision_transformer.VisionTransformer(
            img_size=c["imageSize"], patch_size=c["patchSize"], in_chans=c["inChannels"], num_classes=0,
            embed_dim=c["width"], depth=c["depth"], num_heads=c["heads"], mlp_ratio=c["mlpRatio"],
            global_pool="token" if c["pooling"] == "token" else "avg")
        size = (c["inChannels"], c["imageSize"], c["imageSize"])
    else:
        block = torchvision.models.resnet.BasicBlock if c["block"] == "basic" else torchvision.models.resnet.Bottleneck
        m = torchvision.models.resnet.ResNet(block, c["layers"])
        if c["stem"] == "small":
            m.conv1 = torch.nn.Conv2d(c["inChannels"], 64, 3, 1, 1, bias=False)
            m.maxpool = torch.nn.Identity()
        elif c["inChannels"] != 3:
            m.conv1 = torch.nn.Conv2d(c["inChannels"], 64, 7, 2, 3, bias=False)
        m.fc = torch.nn.Identity()
        size = (c["inChannels"], c["imageSize"], c["imageSize"])
    return m, size


failures = 0
for path in sys.argv[1:]:
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()["pretext.backbone"])
    model, size = build(config)
    state = load_file(path)
    model.load_state_dict(state, strict=True)
    model.eval()
    with open(path.rsplit(".", 1)[0] + ".json") as f:
        saved = json.load(f)
    x = torch.tensor(saved["input"], dtype=torch.float32).reshape([int(d) for d in saved["input_shape"]])
    expected = torch.tensor(saved["features"], dtype=torch.float32).reshape([int(d) for d in saved["features_shape"]])
    with torch.no_grad():
        out = model(x)
    # Relative L2 error of the whole feature batch (float32 sums over 12 blocks differ
    # in the last bits between BLAS libraries; the worst single element is printed too).
    error = ((out - expected).norm() / expected.norm()).item()
    worst = (out - expected).abs().max().item()
    status = "OK" if error <= 1e-4 else "MISMATCH"
    failures += error > 1e-4
    print(f"{path}: loaded {len(state)} tensors strictly into {type(model).__name__}; features "
          f"{tuple(out.shape)}, relative difference from Pretext {error:.1e} (largest element {worst:.1e}): {status}")

sys.exit(1 if failures else 0)
