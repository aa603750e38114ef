#!/usr/bin/env python3
"""zennit parity fixtures for firelight's LRP (tests/lrp.rs).

A small VGG-like ReLU network (convolutions, max pooling, global average pooling, two linear
layers; random weights and biases), exported to ONNX, and zennit's relevance at the input for
each composite, the target's output seeded with one (zennit's `Gradient` attributor):
  epsilon_plus_flat   EpsilonPlusFlat: Flat at the first layer, ZPlus at convolutions, Epsilon at
                      linear layers, Norm at average pooling, Pass at activations;
  epsilon_alpha2_beta1_flat  EpsilonAlpha2Beta1Flat (AlphaBeta(2, 1) at convolutions);
  epsilon_gamma_wsquare  WSquare first, Gamma(0.25) at convolutions, Epsilon(0.25) at linear layers;
  epsilon             Epsilon(1e-6) everywhere (LRP-0-like), for the conservation check.
vgg_nobias.onnx is the same network with zero biases (relevance conservation).
Writes vgg.onnx, inputs.npy, targets.npy, <composite>.npy, manifest.json under tests/fixtures/lrp.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch zennit numpy onnx
        /tmp/fl/bin/python tools/parity/lrp_fixtures.py
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import zennit
from zennit.composites import (EpsilonAlpha2Beta1Flat, EpsilonPlusFlat, LayerMapComposite,
                               SpecialFirstLayerMapComposite)
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
    # The same network without biases, for conservation: LRP-epsilon with a tiny epsilon passes
    # the seed's 1 down to the input unchanged.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.zero_()
    torch.onnx.export(model, x, os.path.join(OUT, "vgg_nobias.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False)
    manifest = {"zennit": "0.5.1", "torch": torch.__version__, "targets": targets,
                "relevance_sums": sums}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
