#!/usr/bin/env python3
"""ONNX parity fixtures for the bundled EfficientNet-Lite0 (models/efficientnet_lite0/model.onnx).

The torch model is the one tools/models/export_efficientnet_lite0.py exported (same package, same
ImageNet weights); onnxruntime runs the bundled ONNX file. Writes tests/fixtures/onnx_efficientnet_lite0/:
  input.npy                chelsea.png and coffee.png preprocessed per models/efficientnet_lite0/preprocess.json
  logits_torch.npy, logits_onnxruntime.npy
  saliency.npy             Captum Saliency, abs=True, target = torch's top-1 class of each sample
  integrated_gradients.npy Captum IntegratedGradients, n_steps 50, gausslegendre, zero baseline (+ .delta.npy)
  layer_gradient_<layer>.npy  LayerGradientXActivation(multiply_by_inputs=False): d target / d layer output
  manifest.json            targets, cases (torch module name and ONNX tensor name of each layer), versions

Run tools/models/export_efficientnet_lite0.py first, then:

    /tmp/fl/bin/pip install captum
    /tmp/fl/bin/python tools/parity/efficientnet_lite0_fixtures.py
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
from export_efficientnet_lite0 import build_model, imagenet_labels, preprocess  # noqa: E402
from onnx_common import block_output, captum_cases, check_layers, producer, save, versions  # noqa: E402

IMAGES = ["chelsea.png", "coffee.png"]
# `_blocks.10`: the last block of the 112-channel stage, a residual block (its output is the Add).
LAYERS = [("_blocks.10", lambda g: block_output(g, "/_blocks.11/_expand_conv/Conv"))]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default=os.path.join(ROOT, "models", "efficientnet_lite0"))
    p.add_argument("--images", default=os.path.join(ROOT, "models", "images"))
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "onnx_efficientnet_lite0"))
    p.add_argument("--steps", type=int, default=50, help="Integrated Gradients steps")
    p.add_argument("--internal-batch-size", type=int, default=25)
    args = p.parse_args()

    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.model_dir, "preprocess.json")) as f:
        pre = json.load(f)
    onnx_path = os.path.join(args.model_dir, "model.onnx")
    model = build_model()
    x = torch.cat([preprocess(os.path.join(args.images, n), pre["mean"], pre["std"], pre["resize"],
                              pre["crop"]) for n in IMAGES])

    def session(m=None):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        source = onnx_path if m is None else m.SerializeToString()
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])

    with torch.no_grad():
        logits = model(x).numpy()
    ort_logits = session().run(["logits"], {"input": x.numpy()})[0]
    diff = float(np.abs(ort_logits - logits).max())
    scale = float(np.abs(logits).max())
    print(f"onnxruntime vs torch logits: max abs diff {diff:.3e} (logit scale {scale:.2f})")
    assert diff <= 1e-4 * scale, diff
    targets = [int(i) for i in logits.argmax(1)]
    labels = imagenet_labels()
    print("targets (torch top-1):", [(t, labels[t]) for t in targets])

    proto = onnx.load(onnx_path)
    layers = [(t, find(proto.graph)) for t, find in LAYERS]
    layer_diffs = check_layers(model, proto, layers, x, session)
    producers = {o: producer(proto.graph, o).name for _, o in layers}

    save(args.out, "input.npy", x.numpy())
    save(args.out, "logits_torch.npy", logits)
    save(args.out, "logits_onnxruntime.npy", ort_logits)
    cases = captum_cases(model, x, targets, layers, args.out, n_steps=args.steps,
                         internal_batch_size=args.internal_batch_size)
    for c in cases:
        if "onnx_layer" in c:
            c["onnx_node"] = producers[c["onnx_layer"]]
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({
            "generator": "tools/parity/efficientnet_lite0_fixtures.py",
            "model": "models/efficientnet_lite0/model.onnx",
            "input": {"file": "input.npy", "shape": list(x.shape), "images": IMAGES,
                      "preprocess": "models/efficientnet_lite0/preprocess.json",
                      "resize": "torchvision Resize (bilinear, antialiased)"},
            "targets": targets,
            "target_labels": [labels[t] for t in targets],
            "logits": {"torch": "logits_torch.npy", "onnxruntime": "logits_onnxruntime.npy",
                       "max_abs_diff_torch_onnxruntime": diff, "max_abs_logit": scale},
            "layer_output_max_abs_diff_torch_onnxruntime": layer_diffs,
            "versions": versions(),
            "cases": cases,
        }, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
