"""Real CNN architectures in plain PyTorch (torchvision's wheels do not load beside the CPU torch).

Random weights, non-trivial batch-norm statistics; shapes and blocks follow the papers:
MobileNetV3-small (Howard et al. 2019: depthwise convs, hard-swish, squeeze-excite, residuals),
ResNet-18 (He et al. 2016), a UNet/FPN-style head (strided encoder, ConvTranspose and Resize
upsampling, skip concatenations) and a CRNN-style text recognizer (a conv stack, then a transformer
encoder over the width axis in place of the recurrent layers, per-column character logits).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _divisible(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1, act=nn.ReLU):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        layers = []
        if exp != cin:
            layers.append(ConvBNAct(cin, exp, 1, act=act))
        layers.append(ConvBNAct(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, _divisible(exp // 4)))
        layers.append(ConvBNAct(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    # (kernel, expanded, out, squeeze-excite, activation, stride), Table 2 of the paper
    CONFIG = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
              (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
              (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
              (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers, cin = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish)], 16
        for k, exp, cout, se, act, stride in self.CONFIG:
            layers.append(InvertedResidual(cin, k, exp, cout, se, nn.ReLU if act == "RE" else nn.Hardswish, stride))
            cin = cout
        layers.append(ConvBNAct(cin, 576, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, classes))

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = ConvBNAct(cin, cout, 3, stride)
        self.c2 = ConvBNAct(cout, cout, 3, act=None)
        self.down = ConvBNAct(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None

    def forward(self, x):
        skip = x if self.down is None else self.down(x)
        return F.relu(self.c2(self.c1(x)) + skip)


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


class UNetHead(nn.Module):
    """A small UNet/FPN detector head: a strided encoder, then a decoder that upsamples with
    ConvTranspose and with Resize (nearest and bilinear), concatenates the skips, and predicts
    per-pixel class scores and box offsets."""

    def __init__(self, c: int = 32, classes: int = 4):
        super().__init__()
        self.e1, self.e2, self.e3 = ConvBNAct(3, c), ConvBNAct(c, 2 * c, 3, 2), ConvBNAct(2 * c, 4 * c, 3, 2)
        self.up3 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.d2 = ConvBNAct(4 * c, 2 * c)
        self.lat = nn.Conv2d(2 * c, c, 1)
        self.d1 = ConvBNAct(2 * c, c)
        self.cls, self.box = nn.Conv2d(c, classes, 3, padding=1), nn.Conv2d(c, 4, 1)

    def forward(self, x):
        f1 = self.e1(x)
        f2 = self.e2(f1)
        f3 = self.e3(f2)
        d2 = self.d2(torch.cat([self.up3(f3), f2], 1))
        up = F.interpolate(self.lat(d2), scale_factor=2, mode="nearest")
        d1 = self.d1(torch.cat([up, f1], 1))
        d1 = d1 + F.interpolate(F.avg_pool2d(d1, 2), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.cat([torch.sigmoid(self.cls(d1)), self.box(d1)], 1)


class CRNN(nn.Module):
    """A text-line recognizer: conv stack to a width sequence, a transformer encoder over it,
    and per-column character logits (CTC-style)."""

    def __init__(self, classes: int = 97, c: int = 64, layers: int = 2):
        super().__init__()
        self.convs = nn.Sequential(ConvBNAct(1, c // 2), nn.MaxPool2d(2), ConvBNAct(c // 2, c), nn.MaxPool2d(2),
                                   ConvBNAct(c, 2 * c), ConvBNAct(2 * c, 2 * c), nn.MaxPool2d((2, 1)))
        enc = nn.TransformerEncoderLayer(2 * c, 4, 4 * c, dropout=0.0, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(enc, layers, enable_nested_tensor=False)
        self.head = nn.Linear(2 * c, classes)

    def forward(self, x):
        f = self.convs(x).mean(2).transpose(1, 2)  # [B, W/4, C]
        return self.head(self.encoder(f)).log_softmax(-1)


ARCHITECTURES = {"mobilenetv3_small": (MobileNetV3Small, (1, 3, 224, 224)),
                 "resnet18": (ResNet18, (1, 3, 224, 224)),
                 "unet_head": (UNetHead, (1, 3, 128, 128)),
                 "crnn": (CRNN, (1, 1, 32, 128))}


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """The architecture with seeded random weights and batch-norm statistics, in eval mode."""
    cls, shape = ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = cls().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model, shape


def export_onnx(name: str, path, opset: int = 17, shape=None) -> tuple[int, ...]:
    model, default = build(name)
    shape = tuple(shape or default)
    torch.onnx.export(model, (torch.randn(*shape),), str(path), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=opset)
    return shape
