#!/usr/bin/env python3
"""Trains firelight's TCAV ground-truth model and writes models/texture_cnn/.

A tiny CNN (3 conv blocks, global average pool, linear) classifies 32x32 procedural textures
(tools/models/textures.py) into striped / dotted / other. Because the classes are *defined* by
the textures, the truth TCAV should recover is known: the striped concept matters to the striped
class, the dotted concept does not (it pushes towards "dotted"). Each logit is trained as an
independent detector (binary cross-entropy per class), so the striped logit is low on dots.

Writes models/texture_cnn/:
  model.onnx       opset 17, input `input` [N, 3, 32, 32] (dynamic N), output `logits` [N, 3];
                   layers /conv1/Conv_output_0, /relu1/Relu_output_0, ..., /relu3/Relu_output_0,
                   /pool/GlobalAveragePool_output_0
  labels.json      ["striped", "dotted", "other"]
  preprocess.json  resize 32, crop 32, mean 0.5, std 0.5
  concepts/striped/*.png, concepts/dotted/*.png   20 each, seed 1001 / 1002
  concepts/random/*.png                           a pool of 60 random images, seed 1003: each
                                                  striped, dotted or other with equal chance, as
                                                  random photos of a data set hold every class
  inputs/striped/*.png, inputs/dotted/*.png       12 held-out images of each class to explain, seed 1004 / 1005
Training data uses seeds 0..2 (one per class); nothing bundled comes from a training seed.

    /work/pyenv/bin/python tools/models/train_texture_cnn.py [--out models/texture_cnn]
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import textures  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class TextureCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.pool(self.relu3(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


def to_input(images):
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255.0
    return (x - 0.5) / 0.5


def write_pngs(folder, images, prefix):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f"{prefix}_{i:02d}.png"), optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "texture_cnn"))
    ap.add_argument("--per-class", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    xs, ys = [], []
    for label, kind in enumerate(textures.CLASSES):
        xs.append(textures.make(kind, args.per_class, seed=label))
        ys.append(np.full(args.per_class, label))
    x, y = to_input(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)).long()
    model = TextureCnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x), generator=gen)
        model.train()
        total = 0.0
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            # One sigmoid per class (one-vs-rest), not a softmax: each logit must be a detector of its
            # own texture, low on the others. With a softmax, a feature shared by stripes and dots
            # could raise every logit alike at no cost, and TCAV would (rightly) report it.
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(x[idx]), nn.functional.one_hot(y[idx], 3).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}: loss {total / len(x):.4f}")
    model.eval()

    # held-out accuracy on fresh seeds
    with torch.no_grad():
        for label, kind in enumerate(textures.CLASSES):
            test = to_input(textures.make(kind, 300, seed=100 + label))
            acc = (model(test).argmax(1) == label).float().mean().item()
            print(f"held-out accuracy {kind}: {acc:.3f}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), path, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, dynamo=False)
    import onnxruntime as ort
    sess = ort.InferenceSession(path)
    probe = to_input(textures.make("striped", 4, seed=7))
    diff = np.abs(sess.run(None, {"input": probe.numpy()})[0] - model(probe).detach().numpy()).max()
    print(f"onnxruntime vs torch max abs diff {diff:.2e}")
    assert diff < 1e-4
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump(textures.CLASSES, f)
    with open(os.path.join(args.out, "preprocess.json"), "w") as f:
        json.dump({"resize": 32, "crop": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                   "layout": "NCHW", "input": [3, 32, 32], "classes": 3}, f, indent=1)
    write_pngs(os.path.join(args.out, "concepts", "striped"), textures.make("striped", 20, 1001), "striped")
    write_pngs(os.path.join(args.out, "concepts", "dotted"), textures.make("dotted", 20, 1002), "dotted")
    write_pngs(os.path.join(args.out, "concepts", "random"), textures.make_mixed(60, 1003), "random")
    write_pngs(os.path.join(args.out, "inputs", "striped"), textures.make("striped", 12, 1004), "striped")
    write_pngs(os.path.join(args.out, "inputs", "dotted"), textures.make("dotted", 12, 1005), "dotted")
    with open(path, "rb") as f:
        print("model.onnx sha256", hashlib.sha256(f.read()).hexdigest())


if __name__ == "__main__":
    main()
