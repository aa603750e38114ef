#!/usr/bin/env python3
"""ONNX parity fixture: torchvision's ResNet-18 with generated weights, and Captum's attributions.

The model is torchvision's `resnet18()` architecture as is (1000 classes), with every parameter and
batch-norm statistic set by a deterministic generator instead of trained weights. The exported ONNX
keeps its initializers as ONNX external data in `weights.bin`, which is NOT committed (46 MB): the
Rust test (tests/onnx_parity.rs, generator in tests/common/onnx_weights.rs) rebuilds it from
`weights.json`. Generator, per tensor (all arithmetic wrapping u64, then float32):

    state = fnv1a64(tensor name)                  # offset basis 0xcbf29ce484222325, prime 0x100000001b3
    next():  state += 0x9E3779B97F4A7C15; z = state
             z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB
             return z ^ (z >> 31)
    element i (row-major): u = ((next() >> 40) as f32) / 16777216 * 2 - 1;  value = offset + scale * u

offset / scale: conv weights 0 / sqrt(3 / fan_in) (variance 1/fan_in: logits of a few units, two
different top-1 classes; He's sqrt(6 / fan_in) makes them ~70 and equal); batch norm weight 1 / 0.1, bias and
running_mean 0 / 0.1, running_var 1 / 0.5; fc weight 0 / 1/sqrt(512), fc bias 0 / 0.01.

Writes tests/fixtures/onnx_resnet18/:
  model.onnx            opset 17, `input` [N, 3, H, W] -> `logits` [N, 1000]; BatchNormalization
                        kept (exported with TrainingMode.PRESERVE on an eval model: no Conv+BN fusion);
                        every initializer external, in weights.bin, float32 little-endian, back to back
  weights.json          per initializer in file order: name, shape, offset, scale, byte_offset, byte_length
  input.npy             chelsea.png and coffee.png: Resize(128), CenterCrop(112), ImageNet mean/std
  logits_torch.npy, logits_onnxruntime.npy
  saliency.npy, integrated_gradients.npy (+ .delta.npy), layer_gradient_<layer>.npy,
  guided_backprop.npy, deconvolution.npy
  manifest.json         targets (torch top-1), cases, ONNX names of the layers, versions, errors
  .gitignore            weights.bin

Asserted here: every initializer of the exported ONNX (read back with onnx.numpy_helper, before and
after moving it to external data) equals the generator's output bit for bit; onnxruntime's logits
match torch's; each layer's ONNX tensor (an extra graph output in onnxruntime) equals the torch
module's output.

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision captum onnx onnxruntime pillow numpy
    /tmp/fl/bin/python tools/parity/export_resnet18_onnx.py [--keep-weights]

`--only relu-passes` (re)writes just guided_backprop.npy, deconvolution.npy and their manifest
cases, from the committed input.npy and targets, leaving every other file as it is.
"""
import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_common import (  # noqa: E402
    block_output, captum_cases, check_layers, generate, producer,
    relu_pass_cases, save, self_test, versions, write_external_weights)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGES = ["chelsea.png", "coffee.png"]
# (torch module, how to find its ONNX tensor). torch reuses each BasicBlock's ReLU module, so
# layers are block outputs (the block's second ReLU, read as the next block's input) or modules used
# once (bn2).
LAYERS = [
    ("layer3", lambda g: block_output(g, "/layer4/layer4.0/conv1/Conv")),
    ("layer4.1.bn2", lambda g: next(n for n in g.node
                                    if n.name == "/layer4/layer4.1/bn2/BatchNormalization").output[0]),
]


def init_of(module_type, param, shape):
    """(offset, scale) of one generated tensor, rounded to float32."""
    if module_type is nn.Conv2d:
        fan_in = int(np.prod(shape[1:]))
        o, s = 0.0, math.sqrt(3.0 / fan_in)  # variance 1 / fan_in
    elif module_type is nn.BatchNorm2d:
        o, s = {"weight": (1.0, 0.1), "bias": (0.0, 0.1), "running_mean": (0.0, 0.1),
                "running_var": (1.0, 0.5)}[param]
    elif module_type is nn.Linear:
        o, s = (0.0, 1.0 / math.sqrt(shape[1])) if param == "weight" else (0.0, 0.01)
    else:
        raise ValueError(f"no rule for {module_type.__name__}.{param}")
    return float(np.float32(o)), float(np.float32(s))


def build_model():
    """resnet18() with generated tensors; returns (model, {name: (offset, scale)})."""
    from torchvision.models import resnet18
    model = resnet18()
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False  # so Captum's hooks see each module's own output
    modules = dict(model.named_modules())
    rules, state = {}, {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        module, param = key.rsplit(".", 1)
        rules[key] = init_of(type(modules[module]), param, tuple(value.shape))
        state[key] = torch.from_numpy(generate(key, tuple(value.shape), *rules[key]))
    model.load_state_dict(state, strict=False)
    return model.eval(), rules


def preprocess(path, resize, crop):
    from PIL import Image
    from torchvision import transforms
    t = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop),
                            transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    return t(Image.open(path).convert("RGB")).unsqueeze(0)


def only_relu_passes(out):
    """Adds (or replaces) the Guided Backprop and Deconvolution cases of an existing fixture."""
    path = os.path.join(out, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    model, _ = build_model()
    x = torch.from_numpy(np.load(os.path.join(out, manifest["input"]["file"])))
    with torch.no_grad():
        targets = [int(i) for i in model(x).argmax(1)]
    assert targets == manifest["targets"], (targets, manifest["targets"])
    new = relu_pass_cases(model, x, targets, out)
    names = {c["name"] for c in new}
    manifest["cases"] = [c for c in manifest["cases"] if c["name"] not in names] + new
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(new)} cases to {os.path.relpath(out)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "onnx_resnet18"))
    p.add_argument("--images", default=os.path.join(ROOT, "models", "images"))
    p.add_argument("--size", type=int, default=112, help="centre crop (after resizing to size*8/7)")
    p.add_argument("--steps", type=int, default=50, help="Integrated Gradients steps")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--keep-weights", action="store_true", help="leave weights.bin in --out")
    p.add_argument("--only", choices=["relu-passes"],
                   help="only (re)write Guided Backprop and Deconvolution into an existing fixture")
    args = p.parse_args()
    if args.only == "relu-passes":
        return only_relu_passes(args.out)

    import onnx
    import onnxruntime as ort

    check = self_test()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model, rules = build_model()
    resize = round(args.size * 8 / 7)
    x = torch.cat([preprocess(os.path.join(args.images, n), resize, args.size) for n in IMAGES])

    onnx_path = os.path.join(args.out, "model.onnx")
    weights_path = os.path.join(args.out, "weights.bin")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(
            model, (x,), raw, dynamo=False, opset_version=args.opset,
            training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(raw)
    ops = sorted({n.op_type for n in proto.graph.node})
    assert "BatchNormalization" in ops, ops
    tensors = write_external_weights(proto, args.out, rules, check,
                                     "tools/parity/export_resnet18_onnx.py")
    end = sum(t["byte_length"] for t in tensors)

    def session(m=None):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        if m is None:
            return ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    with torch.no_grad():
        logits = model(x).numpy()
    ort_logits = session().run(["logits"], {"input": x.numpy()})[0]
    diff = float(np.abs(ort_logits - logits).max())
    scale = float(np.abs(logits).max())
    print(f"ops {ops}; {len(tensors)} initializers, {end} bytes of weights")
    print(f"onnxruntime vs torch logits: max abs diff {diff:.3e} (logit scale {scale:.2f})")
    assert diff <= 1e-4 * scale, diff
    targets = [int(i) for i in logits.argmax(1)]
    print("targets (torch top-1):", targets)

    graph = onnx.load(onnx_path).graph
    layers = [(t, find(graph)) for t, find in LAYERS]
    layer_diffs = check_layers(model, onnx.load(onnx_path), layers, x, session)
    producers = {o: producer(graph, o).name for _, o in layers}

    save(args.out, "input.npy", x.numpy())
    save(args.out, "logits_torch.npy", logits)
    save(args.out, "logits_onnxruntime.npy", ort_logits)
    cases = captum_cases(model, x, targets, layers, args.out, n_steps=args.steps)
    cases += relu_pass_cases(model, x, targets, args.out)
    for c in cases:
        if "onnx_layer" in c:
            c["onnx_node"] = producers[c["onnx_layer"]]
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({
            "generator": "tools/parity/export_resnet18_onnx.py",
            "model": "model.onnx", "weights": "weights.json",
            "architecture": "torchvision resnet18(), 1000 classes, generated weights",
            "input": {"file": "input.npy", "shape": list(x.shape), "images": IMAGES,
                      "resize": resize, "crop": args.size, "mean": MEAN, "std": STD},
            "targets": targets,
            "logits": {"torch": "logits_torch.npy", "onnxruntime": "logits_onnxruntime.npy",
                       "max_abs_diff_torch_onnxruntime": diff, "max_abs_logit": scale},
            "layer_output_max_abs_diff_torch_onnxruntime": layer_diffs,
            "versions": versions(),
            "cases": cases,
        }, f, indent=1)
    if not args.keep_weights:
        os.remove(weights_path)
    print(f"wrote {len(cases)} cases to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
