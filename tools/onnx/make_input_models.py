#!/usr/bin/env python3
"""Small ONNX models for firelight's named-inputs tests (tests/fixtures/onnx_inputs).

- fixed_batch.onnx: one image input exported with batch 1 baked in (`x` [1, 3, 8, 8]) and a
  Reshape to [1, -1], as most files in the wild are; firelight must run it at any batch.
- two_inputs.onnx: an image (`image` [N, 3, 8, 8]) and a metadata vector (`meta` [N, 4]) joined
  before the head: the metadata is carried while the image is explained (or both explained).
- tokens.onnx: integer token ids (`input_ids` [N, 6]) and an integer `attention_mask` [N, 6]:
  an embedding, masked mean pooling and a head, as a text classifier takes them.

Each comes with inputs and onnxruntime's outputs (`<name>.<input>.npy`, `<name>.expected.npy`).

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch onnx onnxruntime numpy
        /tmp/fl/bin/python tools/onnx/make_input_models.py
"""
import os

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "onnx_inputs")


class FixedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = nn.functional.max_pool2d(y, 2)
        # A reshape with the batch baked in, as torch.onnx.export writes for `view(1, -1)`.
        return self.fc(y.reshape(1, -1))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.meta = nn.Linear(4, 4)
        self.fc = nn.Linear(8, 3)

    def forward(self, image, meta):
        y = torch.relu(self.conv(image)).mean(dim=(2, 3))
        m = torch.tanh(self.meta(meta))
        return self.fc(torch.cat([y * m, m], dim=1))


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        e = self.embedding(input_ids)
        m = attention_mask.unsqueeze(-1).to(e.dtype)
        pooled = (e * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.fc(pooled)


def export(name, model, inputs, names, dynamic):
    path = os.path.join(OUT, name + ".onnx")
    model.eval()
    torch.onnx.export(
        model,
        tuple(inputs),
        path,
        input_names=names,
        output_names=["out"],
        opset_version=17,
        dynamic_axes={n: {0: "batch"} for n in names} | {"out": {0: "batch"}} if dynamic else None,
        dynamo=False,
    )
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    fixed = FixedBatch()
    path = export("fixed_batch", fixed, [torch.zeros(1, 3, 8, 8)], ["x"], dynamic=False)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(path)
    # onnxruntime runs the file as it is: one row at a time.
    expected = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(3)])
    np.save(os.path.join(OUT, "fixed_batch.x.npy"), x)
    np.save(os.path.join(OUT, "fixed_batch.expected.npy"), expected.astype(np.float32))

    two = TwoInputs()
    path = export(
        "two_inputs", two, [torch.zeros(2, 3, 8, 8), torch.zeros(2, 4)], ["image", "meta"], True
    )
    image = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    meta = rng.standard_normal((2, 4)).astype(np.float32)
    out = ort.InferenceSession(path).run(None, {"image": image, "meta": meta})[0]
    np.save(os.path.join(OUT, "two_inputs.image.npy"), image)
    np.save(os.path.join(OUT, "two_inputs.meta.npy"), meta)
    np.save(os.path.join(OUT, "two_inputs.expected.npy"), out.astype(np.float32))

    tokens = Tokens()
    ids = torch.zeros(2, 6, dtype=torch.int64)
    path = export("tokens", tokens, [ids, torch.ones(2, 6, dtype=torch.int64)],
                  ["input_ids", "attention_mask"], True)
    input_ids = rng.integers(1, 20, (2, 6)).astype(np.int64)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=np.int64)
    out = ort.InferenceSession(path).run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
    np.save(os.path.join(OUT, "tokens.input_ids.npy"), input_ids)
    np.save(os.path.join(OUT, "tokens.attention_mask.npy"), mask)
    np.save(os.path.join(OUT, "tokens.expected.npy"), out.astype(np.float32))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
