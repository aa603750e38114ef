#!/usr/bin/env python3
"""LRP parity on torchvision's VGG-16 (random weights): zennit's EpsilonPlusFlat and Captum's LRP.

The model is torchvision's `vgg16()` architecture as is (13 convolutions, 5 max pools, the 7x7
adaptive average pool, 3 linear layers, 1000 classes), every parameter set by the deterministic
generator of tools/parity/onnx_common.py (`generate`; the Rust side is
tests/common/onnx_weights.rs): convolution and hidden linear weights 0 / sqrt(6 / fan_in) (He:
the ReLUs keep the activations' scale through 15 layers), the last linear layer's 0 /
sqrt(3 / fan_in), biases 0 / 0.05. The ONNX file keeps its initializers as external data in
weights.bin (553 MB, NOT committed: the test rebuilds it from weights.json).

Writes tests/fixtures/lrp_vgg16/:
  model.onnx, weights.json, .gitignore   the network, `input` [N, 3, 224, 224] -> `logits`
  input.npy                chelsea.png: Resize(256), CenterCrop(224), ImageNet mean/std
  epsilon_plus_flat.npy    zennit 0.5.1 EpsilonPlusFlat (its VGG canonizer; VGG-16 has no batch
                           norm to merge), the top-1 logit seeded with one
  captum_lrp.npy           Captum 0.9's LRP with its default rules (Epsilon(1e-9) at every
                           convolution, linear and pooling layer; ReLUs pass), which seeds the
                           target's output with its own value
  *_float64.npy            the same two on a float64 copy of the network (stored as float32):
                           how far float32 rounding alone moves each reference is recorded as
                           `float32_rel_l2` (zennit's 3.7e-4: the ZPlus denominators of 13
                           convolutions), and no float32 implementation can promise less
  manifest.json            target, logit, relevance sums, noise floors, versions, onnxruntime vs torch

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision captum zennit onnx onnxruntime pillow numpy
    /tmp/fl/bin/python tools/parity/lrp_vgg16_fixtures.py
"""
import copy
import importlib.metadata
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_resnet18_onnx import preprocess  # noqa: E402
from onnx_common import generate, save, self_test, versions, write_external_weights  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "lrp_vgg16")
GENERATOR = "tools/parity/lrp_vgg16_fixtures.py"


def build_model():
    """vgg16() with generated tensors; returns (model, {name: (offset, scale)})."""
    from torchvision.models import vgg16
    model = vgg16()
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False  # Captum's LRP hooks need each module's own output
    modules = dict(model.named_modules())
    last = max(k for k, m in modules.items() if isinstance(m, nn.Linear))
    rules, state = {}, {}
    for key, value in model.state_dict().items():
        module, param = key.rsplit(".", 1)
        shape = tuple(value.shape)
        if param == "bias":
            o, s = 0.0, 0.05
        else:
            fan_in = int(np.prod(shape[1:]))
            s = math.sqrt((3.0 if module == last else 6.0) / fan_in)
            o = 0.0
        rules[key] = (float(np.float32(o)), float(np.float32(s)))
        state[key] = torch.from_numpy(generate(key, shape, *rules[key]))
    model.load_state_dict(state)
    return model.eval(), rules


def zennit_epsilon_plus_flat(model, x, target):
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import VGGCanonizer
    inp = x.clone().requires_grad_()
    with EpsilonPlusFlat(canonizers=[VGGCanonizer()]).context(model) as modified:
        out = modified(inp)
        seed = torch.zeros_like(out)
        seed[:, target] = 1.0
        (relevance,) = torch.autograd.grad(out, inp, seed)
    return relevance.detach()


def captum_lrp(model, x, target):
    from captum.attr import LRP
    return LRP(model).attribute(x.clone().requires_grad_(), target=target).detach()


def main():
    import onnx
    import onnxruntime as ort

    check = self_test()
    os.makedirs(OUT, exist_ok=True)
    model, rules = build_model()
    x = preprocess(os.path.join(ROOT, "models", "images", "chelsea.png"), 256, 224)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(model, (x,), raw, dynamo=False, opset_version=17,
                          do_constant_folding=True, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(raw)
    ops = sorted({n.op_type for n in proto.graph.node})
    tensors = write_external_weights(proto, OUT, rules, check, GENERATOR)

    with torch.no_grad():
        logits = model(x)
    target = int(logits.argmax(1))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(os.path.join(OUT, "model.onnx"), opts,
                                   providers=["CPUExecutionProvider"])
    ort_logits = session.run(["logits"], {"input": x.numpy()})[0]
    diff = float(np.abs(ort_logits - logits.numpy()).max())
    assert diff <= 1e-4 * float(logits.abs().max()), diff

    zennit = zennit_epsilon_plus_flat(model, x, target)
    captum = captum_lrp(model, x, target)
    wide = copy.deepcopy(model).double()
    zennit64 = zennit_epsilon_plus_flat(wide, x.double(), target)
    captum64 = captum_lrp(wide, x.double(), target)

    def rel(a, b):
        return float((a.double() - b).norm() / b.norm())

    save(OUT, "input.npy", x.numpy())
    save(OUT, "epsilon_plus_flat.npy", zennit.numpy())
    save(OUT, "captum_lrp.npy", captum.numpy())
    save(OUT, "epsilon_plus_flat_float64.npy", zennit64.numpy())
    save(OUT, "captum_lrp_float64.npy", captum64.numpy())
    manifest = {
        "generator": GENERATOR,
        "architecture": "torchvision vgg16(), 1000 classes, generated weights",
        "ops": ops,
        "initializers": len(tensors),
        "target": target,
        "logit": float(logits[0, target]),
        "max_abs_diff_torch_onnxruntime": diff,
        "relevance_sums": {"epsilon_plus_flat": float(zennit.sum()),
                           "captum_lrp": float(captum.sum())},
        "float32_rel_l2": {"epsilon_plus_flat": rel(zennit, zennit64),
                           "captum_lrp": rel(captum, captum64)},
        "versions": {**versions(), "zennit": importlib.metadata.version("zennit")},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.remove(os.path.join(OUT, "weights.bin"))
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
