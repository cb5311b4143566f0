#!/usr/bin/env python3
"""Golden outputs of Pretext's backbones, produced by the reference implementations.

Generates, in this folder, for small ViTs (timm.VisionTransformer, class-token and
average pooling) and small ResNets (torchvision's own ResNet class with its BasicBlock and
Bottleneck, ImageNet stem with max pool; and a mirror of it with Pretext's small stem):
  <name>.safetensors   the PyTorch model's state_dict (seeded random init; no classifier)
  <name>.json          the architecture (Pretext's ViTConfig / ResNetConfig fields and
                       "kind"), a seeded input batch and the features the PyTorch model
                       computes for it in eval mode
BackbonesTests builds each architecture from its JSON, loads the file into it (strictly:
every name and shape must match) and checks the features agree to 1e-4 relative error.

Regenerate (needs torch, timm, torchvision, safetensors; CPU is fine):
    python3 Tests/BackbonesTests/Fixtures/make_backbone_golden.py
"""
import json
import os
import sys
import types

import numpy as np
import torch

# PyPI's torchvision wheels are CUDA builds whose compiled operators do not load beside a
# CPU torch; the model classes used here are pure Python. Skipping the module that
# registers the (detection) operators' meta kernels lets the package import.
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
import timm  # noqa: E402  (imports torchvision)
import torchvision  # noqa: E402
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
def vit_config(name, pooling):
    return {"kind": "vit", "name": name, "imageSize": 32, "patchSize": 8, "inChannels": 3, "width": 48, "depth": 2,
            "heads": 3, "mlpRatio": 4.0, "fixedPositionEmbedding": False, "pooling": pooling}


emit("vit_small_test", vit, vit_config("vit-test", "token"), (2, 3, 32, 32), lambda m, x: m(x))

# The same with average pooling: the final norm on every token, then the mean of the patch
# tokens (timm's global_pool="avg" with fc_norm=False).
vit_avg = timm.models.vision_transformer.VisionTransformer(
    img_size=32, patch_size=8, in_chans=3, num_classes=0, embed_dim=48, depth=2,
    num_heads=3, mlp_ratio=4.0, qkv_bias=True, global_pool="avg", fc_norm=False)
with torch.no_grad():
    for p in vit_avg.parameters():
        p.add_(torch.randn_like(p) * 0.05)
emit("vit_avg_test", vit_avg, vit_config("vit-avg-test", "avg"), (2, 3, 32, 32), lambda m, x: m(x))

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
     {"kind": "resnet", "name": "resnet-test", "block": "basic", "layers": [1, 1, 1, 1], "width": 8,
      "inChannels": 1, "stem": "small", "imageSize": 16},
     (2, 1, 16, 16), lambda m, x: m(x))


# torchvision's own ResNet class (7×7 stride-2 stem, 3×3 max pool, average pool, its
# BasicBlock and Bottleneck), narrowed: the class fixes the first stage at 64 channels,
# so `inplanes` and the stage widths are scaled by width / 64 as they are set.
class NarrowResNet(torchvision.models.resnet.ResNet):
    def __init__(self, block, layers, width):
        self._scale = width / 64
        super().__init__(block, layers)
        self.fc = torch.nn.Identity()

    def __setattr__(self, name, value):
        # The class's first assignment is its literal first-stage width (64).
        if name == "inplanes" and not self.__dict__.get("_stem_scaled", False):
            self.__dict__["_stem_scaled"] = True
            value = int(value * self._scale)
        super().__setattr__(name, value)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        return super()._make_layer(block, int(planes * self._scale), blocks, stride, dilate)


for name, block, kind in [("resnet_basic_imagenet_test", torchvision.models.resnet.BasicBlock, "basic"),
                          ("resnet_bottleneck_test", torchvision.models.resnet.Bottleneck, "bottleneck")]:
    model = NarrowResNet(block, [1, 1, 1, 1], width=8)
    randomize_batchnorm(model)
    state = model.state_dict()
    assert not any(k.startswith("fc.") for k in state), "no classifier"
    emit(name, model,
         {"kind": "resnet", "name": name.replace("_", "-"), "block": kind, "layers": [1, 1, 1, 1], "width": 8,
          "inChannels": 3, "stem": "imagenet", "imageSize": 32},
         (2, 3, 32, 32), lambda m, x: m(x))
print("wrote fixtures to", HERE)
