#!/usr/bin/env python3
"""zennit parity fixtures for firelight's LRP (tests/lrp.rs).

A small VGG-like ReLU network (convolutions, max pooling, global average pooling, two linear
layers; random weights and biases), exported to ONNX, and zennit's relevance at the input for
each composite, the target's output seeded with one (zennit's `Gradient` attributor):
  epsilon_plus_flat   EpsilonPlusFlat: Flat at the first layer, ZPlus at convolutions, Epsilon at
                      linear layers, Norm at average pooling, Pass at activations;
  epsilon_alpha2_beta1_flat  EpsilonAlpha2Beta1Flat (AlphaBeta(2, 1) at convolutions);
  epsilon_gamma_wsquare  WSquare first, Gamma(0.25) at convolutions, Epsilon(0.25) at linear layers;
  epsilon             Epsilon(1e-6) everywhere (LRP-0-like), for the conservation check;
  epsilon_gamma_box   zennit's EpsilonGammaBox(low=-3, high=3): ZBox at the first convolution,
                      Gamma(0.25) at the others, Epsilon at linear layers;
  captum              Captum 0.9's LRP with its default rules (Epsilon(1e-9) at every layer,
                      pooling included), divided by the target's output: Captum seeds the target
                      with its own value, zennit and firelight with one.
vgg_nobias.onnx is the same network with zero biases (relevance conservation).
bn_residual.onnx: batch norms kept as nodes (merged into their convolutions, as zennit's
SequentialMergeBatchNorm does), an overlapping max pool and a residual sum, target class 1.
With --resnet18: zennit's EpsilonPlusFlat with its ResNet canonizer on the ResNet-18 of
tests/fixtures/onnx_resnet18 (needs torchvision), resnet18_epsilon_plus_flat.npy.
Writes vgg.onnx, inputs.npy, targets.npy, <composite>.npy, manifest.json under tests/fixtures/lrp.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch zennit captum numpy onnx
        /tmp/fl/bin/python tools/parity/lrp_fixtures.py
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import zennit
from zennit.composites import (EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlusFlat,
                               LayerMapComposite, SpecialFirstLayerMapComposite)
from zennit.rules import Epsilon, Gamma, Norm, Pass, WSquare
from zennit.types import Activation, AvgPool, Convolution, Linear

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "lrp")


class Vgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 4))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BnResidual(nn.Module):
    """Convolutions with batch norms (kept as ONNX BatchNormalization nodes), ResNet's
    overlapping 3x3 stride-2 max pool, and a residual sum (zennit's `Sum` module, Norm rule; a
    plain `+` in the ONNX export)."""

    def __init__(self):
        super().__init__()
        from zennit.layer import Sum
        self.c1, self.b1, self.r1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.c2, self.b2, self.r2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.c3, self.b3, self.r3 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        self.avg, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 4)
        self.sum = Sum()
        self.zennit_sum = False

    def forward(self, x):
        x = self.pool(self.r2(self.b2(self.c2(self.r1(self.b1(self.c1(x)))))))
        branch = self.b3(self.c3(x))
        y = self.sum(torch.stack([x, branch], dim=-1)) if self.zennit_sum else x + branch
        return self.fc(torch.flatten(self.avg(self.r3(y)), 1))


def bn_residual():
    from zennit.canonizers import SequentialMergeBatchNorm
    g = torch.Generator().manual_seed(5)
    net = BnResidual().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(8, generator=g) + 0.5)
                m.bias.copy_(torch.rand(8, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(8, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(8, generator=g) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.5)
    x = torch.randn(2, 3, 12, 12, generator=g)
    torch.onnx.export(net, x, os.path.join(OUT, "bn_residual.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    np.save(os.path.join(OUT, "bn_residual_inputs.npy"), x.numpy())
    net.zennit_sum = True
    inp = x.clone().requires_grad_()
    with EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()]).context(net) as modified:
        out = modified(inp)
        seed = torch.zeros_like(out)
        seed[:, 1] = 1.0
        (relevance,) = torch.autograd.grad(out, inp, seed)
    np.save(os.path.join(OUT, "bn_residual_epsilon_plus_flat.npy"), relevance.detach().numpy())


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    model = Vgg().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(3, 3, 12, 12, generator=g)
    targets = [1, 3, 0]
    torch.onnx.export(model, x, os.path.join(OUT, "vgg.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False)
    np.save(os.path.join(OUT, "inputs.npy"), x.numpy())
    np.save(os.path.join(OUT, "targets.npy"), np.array(targets, dtype=np.float32))

    base = [(Activation, Pass()), (AvgPool, Norm())]
    composites = {
        "epsilon_plus_flat": EpsilonPlusFlat(),
        "epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat(),
        "epsilon_gamma_wsquare": SpecialFirstLayerMapComposite(
            layer_map=base + [(Convolution, Gamma(gamma=0.25)), (nn.Linear, Epsilon(epsilon=0.25))],
            first_map=[(Linear, WSquare())],
        ),
        "epsilon": LayerMapComposite(layer_map=base + [(Linear, Epsilon())]),
        "epsilon_gamma_box": EpsilonGammaBox(low=-3.0, high=3.0),
    }
    sums = {}
    for name, composite in composites.items():
        inp = x.clone().requires_grad_()
        with composite.context(model) as modified:
            out = modified(inp)
            seed = torch.zeros_like(out)
            seed[torch.arange(len(targets)), targets] = 1.0
            (relevance,) = torch.autograd.grad(out, inp, seed)
        np.save(os.path.join(OUT, f"{name}.npy"), relevance.detach().numpy())
        sums[name] = relevance.sum(dim=(1, 2, 3)).tolist()
    from captum.attr import LRP
    with torch.no_grad():
        picked = model(x)[torch.arange(len(targets)), targets]
    captum = LRP(model).attribute(x.clone().requires_grad_(), target=targets).detach()
    captum = captum / picked.reshape(-1, 1, 1, 1)
    np.save(os.path.join(OUT, "captum.npy"), captum.numpy())
    sums["captum"] = captum.sum(dim=(1, 2, 3)).tolist()
    # The same network without biases, for conservation: LRP-epsilon with a tiny epsilon passes
    # the seed's 1 down to the input unchanged.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.zero_()
    torch.onnx.export(model, x, os.path.join(OUT, "vgg_nobias.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False)
    bn_residual()
    manifest = {"zennit": "0.5.1", "torch": torch.__version__, "targets": targets,
                "relevance_sums": sums}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__" and "--resnet18" not in __import__("sys").argv:
    main()


def resnet18():
    """zennit's EpsilonPlusFlat with its ResNet canonizer (batch norms merged into their
    convolutions, block sums under Norm) on torchvision's ResNet-18 with the generated weights
    of tests/fixtures/onnx_resnet18 and its inputs: resnet18_epsilon_plus_flat.npy."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from export_resnet18_onnx import build_model
    from zennit.torchvision import ResNetCanonizer

    model, _ = build_model()
    fixture = os.path.join(ROOT, "tests", "fixtures", "onnx_resnet18")
    x = torch.from_numpy(np.load(os.path.join(fixture, "input.npy")))
    with open(os.path.join(fixture, "manifest.json")) as f:
        targets = json.load(f)["targets"]
    inp = x.clone().requires_grad_()
    with EpsilonPlusFlat(canonizers=[ResNetCanonizer()]).context(model) as modified:
        out = modified(inp)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(targets)), targets] = 1.0
        (relevance,) = torch.autograd.grad(out, inp, seed)
    np.save(os.path.join(OUT, "resnet18_epsilon_plus_flat.npy"), relevance.detach().numpy())
    print("resnet18 targets", targets, "relevance sums", relevance.sum(dim=(1, 2, 3)).tolist())

    # zennit's MergeBatchNorm leaves each merged batch norm with running_var 1 and its eps, so it
    # computes x / sqrt(1 + eps) instead of x: a 5e-6 shrink after every convolution. The same
    # run with the batch norms made exact identities (running_var = 1 - eps) is what an exact
    # merge gives: resnet18_epsilon_plus_flat_exact_merge.npy.
    model, _ = build_model()
    canonizer = ResNetCanonizer()
    handles = canonizer.apply(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.data = torch.full_like(m.running_var.data, 1.0 - m.eps)
    inp = x.clone().requires_grad_()
    with EpsilonPlusFlat().context(model) as modified:
        out = modified(inp)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(targets)), targets] = 1.0
        (exact,) = torch.autograd.grad(out, inp, seed)
    for h in handles:
        h.remove()
    np.save(os.path.join(OUT, "resnet18_epsilon_plus_flat_exact_merge.npy"), exact.detach().numpy())
    gap = (exact - relevance).norm() / relevance.norm()
    print("zennit's canonizer vs an exact merge: rel L2", float(gap))


if __name__ == "__main__" and "--resnet18" in __import__("sys").argv:
    resnet18()
