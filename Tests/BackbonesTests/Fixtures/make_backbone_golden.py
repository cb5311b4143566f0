#!/usr/bin/env python3
"""Golden outputs of Pretext's backbones, produced by the reference implementations.

Generates, for a small ViT (timm.VisionTransformer) and a small ResNet (torchvision's
ResNet with Pretext's small stem), in this folder:
  <name>.safetensors   the PyTorch model's state_dict (seeded random init; no classifier)
  <name>.json          the model configuration, a seeded input batch and the features
                       the PyTorch model computes for it in eval mode
BackbonesTests loads each file into the same Pretext architecture (strictly: every name
and shape must match) and checks the features agree to 1e-4 relative error.

Regenerate (needs torch, timm, torchvision, safetensors; CPU is fine):
    python3 Tests/BackbonesTests/Fixtures/make_backbone_golden.py
"""
import json
import os

import numpy as np
import torch
import timm
import torchvision
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
torch.set_num_threads(1)


def randomize_batchnorm(model):
    # Non-trivial running statistics and affine parameters, so eval mode is tested.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def emit(name, model, config, input_shape, features_fn):
    model.eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(*input_shape, generator=g)
    with torch.no_grad():
        feats = features_fn(model, x)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(HERE, name + ".safetensors"), metadata={"format": "pt"})
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({
            "config": config,
            "input_shape": list(x.shape),
            "input": [float(v) for v in x.flatten().numpy().astype(np.float32)],
            "features_shape": list(feats.shape),
            "features": [float(v) for v in feats.flatten().numpy().astype(np.float32)],
            "names": list(state.keys()),
        }, f)


# A small ViT: 32 px, patch 8, width 48, depth 2, 3 heads, class-token pooling.
vit = timm.models.vision_transformer.VisionTransformer(
    img_size=32, patch_size=8, in_chans=3, num_classes=0, embed_dim=48, depth=2,
    num_heads=3, mlp_ratio=4.0, qkv_bias=True, global_pool="token")
with torch.no_grad():
    for p in vit.parameters():  # larger values than the init, so every term matters
        p.add_(torch.randn_like(p) * 0.05)
emit("vit_small_test", vit,
     {"imageSize": 32, "patchSize": 8, "inChannels": 3, "width": 48, "depth": 2, "heads": 3},
     (2, 3, 32, 32), lambda m, x: m(x))

# A small ResNet (basic blocks, [1, 1, 1, 1], width 8, gray input, small stem).
# torchvision's ResNet has no width argument for BasicBlock networks, so this mirrors its
# structure (same module names, same BasicBlock class) at width 8 with the small stem.
class SmallResNet(torch.nn.Module):
    def __init__(self, width=8, in_ch=1):
        super().__init__()
        B = torchvision.models.resnet.BasicBlock
        self.inplanes = width
        self.conv1 = torch.nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.relu = torch.nn.ReLU(inplace=True)
        self.layer1 = self._make(B, width, 1, 1)
        self.layer2 = self._make(B, width * 2, 1, 2)
        self.layer3 = self._make(B, width * 4, 1, 2)
        self.layer4 = self._make(B, width * 8, 1, 2)

    def _make(self, B, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = torch.nn.Sequential(torch.nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       torch.nn.BatchNorm2d(planes))
        layers = [B(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        return torch.nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)

small = SmallResNet()
randomize_batchnorm(small)
emit("resnet_small_test", small,
     {"layers": [1, 1, 1, 1], "width": 8, "inChannels": 1, "imageSize": 16},
     (2, 1, 16, 16), lambda m, x: m(x))
print("wrote fixtures to", HERE)
