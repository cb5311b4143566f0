#!/usr/bin/env python3
"""Loads a Pretext-saved backbone into timm / torchvision with strict=True.

    pretext inspect vit-tiny --save-weights /tmp/vit.safetensors
    pretext inspect resnet18 --save-weights /tmp/resnet.safetensors
    python3 Tests/BackbonesTests/Fixtures/check_in_pytorch.py /tmp/vit.safetensors /tmp/resnet.safetensors

Reads the architecture from the file's metadata, builds the matching PyTorch model
(no classifier head), loads the tensors strictly and runs a forward pass. (That the
features are equal for equal weights is checked the other way round by
BackbonesTests/PyTorchGoldenTests.)
"""
import json
import sys

import timm
import torch
import torchvision
from safetensors.torch import load_file
from safetensors import safe_open


def build(config):
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


for path in sys.argv[1:]:
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()["pretext.backbone"])
    model, size = build(config)
    state = load_file(path)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, *size))
    print(f"{path}: loaded {len(state)} tensors strictly into {type(model).__name__}; features {tuple(out.shape)}")
