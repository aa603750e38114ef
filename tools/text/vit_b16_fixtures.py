#!/usr/bin/env python3
"""Attention fixtures on torchvision's ViT-B/16 (generated weights): the last block's attention
probabilities, attention rollout and Chefer et al.'s relevance, toward the top-1 class.

The model is torchvision's `vit_b_16()` architecture as is (16x16 patches, 12 blocks of 12 heads,
hidden 768, MLP 3072, 197 tokens, 1000 classes), every parameter set by the deterministic
generator of tools/parity/onnx_common.py (`generate`; the Rust side is
tests/common/onnx_weights.rs). Per tensor, offset / scale (uniform in [offset - scale,
offset + scale)):

    conv_proj.weight, mlp.0.weight, mlp.3.weight, heads.head.weight   0 / sqrt(3 / fan_in)
    self_attention.in_proj_weight    0 / 2 sqrt(3 / 768)   q.k / sqrt(64) of std ~4: peaked maps
    self_attention.out_proj.weight   0 / sqrt(3 / 768) / 2 (undoes the factor 2 of the values)
    LayerNorm weights 1 / 0.1, LayerNorm biases 0 / 0.05, every other bias 0 / 0.02
    class_token, encoder.pos_embedding                                  0 / 0.02

The legacy exporter folds the transpose of every linear layer applied to [N, 197, 768] tokens
(in_proj, mlp.0, mlp.3) into a new initializer (`onnx::MatMul_<n>`, [in, out]); for those the
generated tensor is the ONNX one, renamed `<torch name>.T`, and the torch weight is its transpose.
So every initializer of model.onnx is `generate(name, shape, offset, scale)` exactly, and
weights.json (per initializer in file order: name, shape, offset, scale, byte range) rebuilds
weights.bin (346 MB, NOT committed).

The reference attention comes from a copy of the model whose blocks compute
nn.MultiheadAttention explicitly (q, k, v from in_proj_weight / in_proj_bias, 12 heads,
softmax(q k^T / sqrt(64)), probs @ v, out_proj): its logits are checked against torchvision's,
and its probabilities against the ONNX graph's Softmax outputs (onnxruntime), before use.

Writes tests/fixtures/attention_vit_b16/:
  model.onnx, weights.json, .gitignore   opset 17, `input` [1, 3, 224, 224] -> `logits` [1, 1000]
                           (a fixed batch: with a dynamic one the exporter builds the attention's
                           reshape targets from Shape ops, and leaves their ranks undeclared,
                           which onnx-ir refuses; ONNX's shape inference cannot infer them either)
  preprocess.json          Resize(256) (bilinear), CenterCrop(224), ImageNet mean/std: torchvision's
                           ViT_B_16_Weights.IMAGENET1K_V1 transform
  input.npy                chelsea.png through that transform (PIL), [1, 3, 224, 224]
  logits.npy               torch's logits, [1, 1000]
  attention_last.npy       the class token's row of the last block's attention probabilities,
                           per head, [12, 197]
  rollout_mean_0.9.npy     the class token's row of tools/text/rollout_reference.py's rollout of
                           the 12 blocks' [12, 197, 197] maps, mean fusion, discard_ratio 0.9,
                           [197]
  chefer.npy               the class token's row of tools/text/attention_reference.py's `chefer`
                           on the probabilities and the gradients of the target's logit, [197]
  (class-token rows only: the whole matrices are 2.8 MB, and the class token's row is what a
  ViT's picture shows)
  manifest.json            target, logit, rules, ops, the Softmax outputs' names in block order,
                           max abs diffs, attention statistics, versions

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision captum onnx onnxruntime pillow numpy
    /tmp/fl/bin/python tools/text/vit_b16_fixtures.py
"""
import copy
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "parity"))
from attention_reference import chefer  # noqa: E402
from export_resnet18_onnx import MEAN, STD, preprocess  # noqa: E402
from onnx_common import (  # noqa: E402
    generate, save, self_test, versions, with_outputs, write_external_weights)
from rollout_reference import rollout  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "attention_vit_b16")
GENERATOR = "tools/text/vit_b16_fixtures.py"
RESIZE, CROP = 256, 224
QKV_GAIN = 2.0  # in_proj_weight's scale factor (out_proj's is its inverse)
DISCARD_RATIO = 0.9
THREADS = 2


def transposed(key):
    """Whether the exporter stores this torch weight transposed (a linear layer on 3-D tokens)."""
    return key.startswith("encoder.layers.") and key.endswith(
        ("self_attention.in_proj_weight", "mlp.0.weight", "mlp.3.weight"))


def rule(key, shape):
    """(offset, scale) of the generated tensor behind torch parameter `key`."""
    module, param = key.rsplit(".", 1) if "." in key else ("", key)
    if key in ("class_token", "encoder.pos_embedding"):
        return 0.0, 0.02
    if module.endswith(("ln_1", "ln_2")) or module == "encoder.ln":
        return (1.0, 0.1) if param == "weight" else (0.0, 0.05)
    if param.endswith("bias"):
        return 0.0, 0.02
    fan_in = int(np.prod(shape[1:]))
    s = math.sqrt(3.0 / fan_in)
    if param == "in_proj_weight":
        s *= QKV_GAIN
    elif key.endswith("out_proj.weight"):
        s /= QKV_GAIN
    return 0.0, s


def build_model():
    """vit_b_16() with generated tensors; returns (model, {ONNX initializer name: (offset, scale)})."""
    from torchvision.models import vit_b_16
    model = vit_b_16()
    rules, state = {}, {}
    for key, value in model.state_dict().items():
        shape = tuple(value.shape)
        o, s = rule(key, shape)
        o, s = float(np.float32(o)), float(np.float32(s))
        if transposed(key):
            name = key + ".T"
            tensor = np.ascontiguousarray(generate(name, shape[::-1], o, s).T)
        else:
            name = key
            tensor = generate(name, shape, o, s)
        rules[name] = (o, s)
        state[key] = torch.from_numpy(tensor)
    model.load_state_dict(state)
    return model.eval(), rules


def rename_folded(proto, model):
    """Renames each folded `onnx::MatMul_<n>` initializer `<torch name>.T` (found by value)."""
    from onnx import numpy_helper
    wanted = {k + ".T": v.detach().numpy().T for k, v in model.state_dict().items() if transposed(k)}
    renames = {}
    for t in proto.graph.initializer:
        if not t.name.startswith("onnx::MatMul_"):
            continue
        got = numpy_helper.to_array(t)
        hits = [n for n, w in wanted.items() if w.shape == got.shape and np.array_equal(w, got)]
        assert len(hits) == 1, (t.name, hits)
        renames[t.name] = hits[0]
    assert sorted(renames.values()) == sorted(wanted), set(wanted) - set(renames.values())
    for t in proto.graph.initializer:
        t.name = renames.get(t.name, t.name)
    for n in proto.graph.node:
        for i, name in enumerate(n.input):
            if name in renames:
                n.input[i] = renames[name]
    return renames


class ExplicitAttention(nn.Module):
    """nn.MultiheadAttention's self-attention (batch first, no mask, eval) written out, keeping
    the probabilities [N, heads, t, t] (their gradient retained) in `self.probs`."""

    def __init__(self, mha):
        super().__init__()
        assert mha.batch_first and mha._qkv_same_embed_dim and mha.bias_k is None
        self.mha = mha
        self.probs = None

    def forward(self, query, key, value, need_weights=False):
        assert query is key is value and not need_weights
        mha = self.mha
        e, h = mha.embed_dim, mha.num_heads
        d = e // h
        n, t, _ = query.shape
        q, k, v = F.linear(query, mha.in_proj_weight, mha.in_proj_bias).split(e, -1)
        q, k, v = (z.reshape(n, t, h, d).transpose(1, 2) for z in (q, k, v))
        probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), -1)
        if probs.requires_grad:
            probs.retain_grad()
        self.probs = probs
        out = (probs @ v).transpose(1, 2).reshape(n, t, e)
        return F.linear(out, mha.out_proj.weight, mha.out_proj.bias), None


def explicit(model):
    patched = copy.deepcopy(model)
    for block in patched.encoder.layers:
        block.self_attention = ExplicitAttention(block.self_attention)
    return patched.eval()


def softmax_outputs(graph, layers):
    """The Softmax outputs in block order, checked to sit in each block's self_attention scope and
    to feed one MatMul as its first input (probs @ V)."""
    softmaxes = [n for n in graph.node if n.op_type == "Softmax"]
    assert len(softmaxes) == layers, [n.name for n in softmaxes]
    names, direct = [], []
    for i, s in enumerate(softmaxes):
        assert s.name.startswith(f"/encoder/layers/encoder_layer_{i}/self_attention/"), s.name
        out = s.output[0]
        consumers = [n for n in graph.node if out in n.input]
        direct.append(len(consumers) == 1 and consumers[0].op_type == "MatMul"
                      and consumers[0].input[0] == out)
        names.append(out)
    return names, all(direct)


def main():
    import onnx
    import onnxruntime as ort

    torch.set_num_threads(THREADS)
    check = self_test()
    os.makedirs(OUT, exist_ok=True)
    model, rules = build_model()
    x = preprocess(os.path.join(ROOT, "models", "images", "chelsea.png"), RESIZE, CROP)
    assert x.shape == (1, 3, CROP, CROP) and x.dtype == torch.float32

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(model, (x,), raw, dynamo=False, opset_version=17,
                          do_constant_folding=True, input_names=["input"], output_names=["logits"])
        proto = onnx.load(raw)
    renames = rename_folded(proto, model)
    ops = sorted({n.op_type for n in proto.graph.node})
    op_counts = {op: sum(n.op_type == op for n in proto.graph.node) for op in ops}
    layers = len(model.encoder.layers)
    softmax_names, softmax_then_matmul = softmax_outputs(proto.graph, layers)
    tensors = write_external_weights(proto, OUT, rules, check, GENERATOR)
    with open(os.path.join(OUT, ".gitignore"), "w") as f:
        f.write(f"# Rebuilt from weights.json by tests/common/onnx_weights.rs (see {GENERATOR})\n"
                "weights.bin\n")

    # torchvision's forward, and the explicit one (which must agree) with the probabilities.
    with torch.no_grad():
        logits = model(x)
    patched = explicit(model)
    logits_patched = patched(x)
    diff_patched = float((logits_patched.detach() - logits).abs().max())
    assert diff_patched < 1e-4, diff_patched
    target = int(logits.argmax(1))
    top2 = logits[0].topk(2).values
    logits_patched[0, target].backward()
    blocks = [b.self_attention for b in patched.encoder.layers]
    attention = np.stack([b.probs[0].detach().numpy() for b in blocks])  # [layers, heads, t, t]
    gradients = np.stack([b.probs.grad[0].numpy() for b in blocks])
    assert attention.shape == (layers, 12, 197, 197), attention.shape

    # onnxruntime: logits and every block's Softmax output.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the Softmaxes
    full = with_outputs(onnx.load(os.path.join(OUT, "model.onnx")), softmax_names)
    session = ort.InferenceSession(full.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    del full
    got = session.run(["logits"] + softmax_names, {"input": x.numpy()})
    del session
    diff_ort = float(np.abs(got[0] - logits.numpy()).max())
    assert diff_ort <= 1e-4 * max(float(logits.abs().max()), 1.0), diff_ort
    diff_att = [float(np.abs(a[0] - attention[i]).max()) for i, a in enumerate(got[1:])]
    assert max(diff_att) < 1e-4, diff_att
    rolled = rollout(attention, "mean", DISCARD_RATIO)
    relevance = chefer(attention, gradients)
    max_per_row = attention.max(-1).mean((1, 2))  # per block, over heads and rows
    print("mean max attention per row, by block:", np.round(max_per_row, 4),
          f"(uniform: {1 / 197:.4f})")

    save(OUT, "input.npy", x.numpy())
    save(OUT, "logits.npy", logits.numpy())
    save(OUT, "attention_last.npy", np.ascontiguousarray(attention[-1][:, 0, :]))
    save(OUT, f"rollout_mean_{DISCARD_RATIO}.npy", np.ascontiguousarray(rolled[0]))
    save(OUT, "chefer.npy", np.ascontiguousarray(relevance[0]))
    with open(os.path.join(OUT, "preprocess.json"), "w") as f:
        json.dump({"resize": RESIZE, "crop": CROP, "mean": MEAN, "std": STD, "layout": "NCHW",
                   "input": [3, CROP, CROP], "classes": 1000}, f, indent=1)

    manifest = {
        "generator": GENERATOR,
        "architecture": "torchvision vit_b_16(): 16x16 patches, 12 blocks, 12 heads, hidden 768, "
                        "MLP 3072, 197 tokens (class token first), 1000 classes; generated weights",
        "input": {"file": "input.npy", "image": "models/images/chelsea.png",
                  "transform": f"PIL RGB, Resize({RESIZE}) bilinear, CenterCrop({CROP}), "
                               "ToTensor, Normalize(ImageNet mean/std)",
                  "mean": MEAN, "std": STD},
        "target": target,
        "target_rule": "top-1 class of the logits",
        "logit": float(logits[0, target]),
        "top2_margin": float(top2[0] - top2[1]),
        "weights": {
            "rules": {"conv_proj.weight, mlp.0.weight, mlp.3.weight, heads.head.weight":
                      "0 / sqrt(3 / fan_in)",
                      "self_attention.in_proj_weight": f"0 / {QKV_GAIN} * sqrt(3 / 768)",
                      "self_attention.out_proj.weight": f"0 / sqrt(3 / 768) / {QKV_GAIN}",
                      "LayerNorm weight": "1 / 0.1", "LayerNorm bias": "0 / 0.05",
                      "other biases": "0 / 0.02",
                      "class_token, encoder.pos_embedding": "0 / 0.02"},
            "transposed": "initializers named `<torch name>.T` ([in, out]) are the exporter's "
                          "folded transposes of linear weights on 3-D tokens; the torch weight "
                          "is their transpose",
            "renamed_from": {v: k for k, v in renames.items()},
            "per_tensor": "weights.json",
        },
        "ops": ops,
        "op_counts": op_counts,
        "initializers": len(tensors),
        "softmax_outputs": softmax_names,
        "softmax_feeds_matmul_with_v": softmax_then_matmul,
        "attention_scaling": "the exporter's scaled_dot_product_attention: q * sqrt(1/sqrt(64)) "
                             "and k^T * sqrt(1/sqrt(64)) (Mul), MatMul, Softmax(axis -1), MatMul "
                             "with V",
        "files": {
            "logits.npy": [1, 1000],
            "attention_last.npy": list(attention[-1][:, 0, :].shape),
            f"rollout_mean_{DISCARD_RATIO}.npy": list(rolled[0].shape),
            "chefer.npy": list(relevance[0].shape),
        },
        "rollout": {"fusion": "mean", "discard_ratio": DISCARD_RATIO,
                    "reference": "tools/text/rollout_reference.py rollout"},
        "chefer": {"reference": "tools/text/attention_reference.py chefer",
                   "gradient_of": "the target's logit", "dtype": "float64, stored float32"},
        "mean_max_attention_per_row": [float(v) for v in max_per_row],
        "uniform_attention": 1 / 197,
        "max_abs_diff": {"torch_explicit_attention_logits": diff_patched,
                         "torch_onnxruntime_logits": diff_ort,
                         "torch_onnxruntime_attention": diff_att},
        "versions": {**versions(), "torchvision": __import__("torchvision").__version__},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.remove(os.path.join(OUT, "weights.bin"))
    print(json.dumps({k: v for k, v in manifest.items() if k != "weights"}, indent=1))


if __name__ == "__main__":
    main()
