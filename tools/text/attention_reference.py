#!/usr/bin/env python3
"""NumPy references of Chefer et al. 2021 ("Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", rules 5 and 6 for self-attention) and of
attention rollout on a vision transformer, from torch's attention probabilities and their
gradients:

    R = I
    for each layer:  A_bar = mean_heads(clip(grad_A * A, min=0));  R = R + A_bar @ R

The gradient is that of the target class's logit. Written for tests/text.rs and
tests/attention.rs:

- tests/fixtures/text/chefer_<i>.npy ([t, t]) for the sentences of sentences.json and the
  bundled sentiment model (torch rebuilt as tools/text/bench_captum_text.py does), toward each
  case's target;
- tests/fixtures/cam_vit/attention.npy ([rows, layers, heads, 65, 65]), chefer.npy
  ([rows, 65, 65]) toward manifest.json's targets, and rollout_mean_0.9.npy ([rows, 65, 65],
  tools/text/rollout_reference.py's formula) for the tiny ViT of
  tools/parity/cam_fixtures_more.py (rebuilt from its seed; its logits are checked against
  logits.npy).

    /tmp/fl/bin/python tools/text/attention_reference.py
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "parity"))
from bench_captum_text import model_from_onnx  # noqa: E402
from make_text_model import FIXTURES  # noqa: E402
from rollout_reference import rollout  # noqa: E402


def chefer(attention, gradients):
    """Per layer [heads, t, t] attention and gradients, first layer first, in float64."""
    n = attention[0].shape[-1]
    r = np.eye(n)
    for a, g in zip(attention, gradients):
        a_bar = np.clip(g.astype(np.float64) * a.astype(np.float64), 0, None).mean(0)
        r = r + a_bar @ r
    return r


def text():
    model = model_from_onnx()
    with open(os.path.join(FIXTURES, "sentences.json")) as f:
        cases = json.load(f)["cases"]
    for i, case in enumerate(cases):
        ids = torch.tensor([case["ids"]])
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        out = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=types,
                         output_attentions=True)
        for a in out.attentions:
            a.retain_grad()
        h = out.last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        logits = model.head((h * m).sum(1) / m.sum(1).clamp(min=1e-9))
        logits[0, case["target"]].backward()
        r = chefer([a[0].detach().numpy() for a in out.attentions],
                   [a.grad[0].numpy() for a in out.attentions])
        np.save(os.path.join(FIXTURES, f"chefer_{i}.npy"), r.astype(np.float32))
        print(f"chefer_{i}.npy", case["text"], "mean-pooled row:", np.round(r.mean(0), 3))


def vit():
    from cam_fixtures_more import tiny_vit
    out = os.path.join(ROOT, "tests", "fixtures", "cam_vit")
    model = tiny_vit()
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    logits = model(x)
    expected = np.load(os.path.join(out, "logits.npy"))
    assert np.abs(logits.detach().numpy() - expected).max() < 1e-5, "not the fixture's ViT"
    for block in model.blocks:
        block.attention.retain_grad()
    with open(os.path.join(out, "manifest.json")) as f:
        targets = json.load(f)["targets"]
    logits[torch.arange(len(targets)), torch.tensor(targets)].sum().backward()
    attention = np.stack([b.attention.detach().numpy() for b in model.blocks], 1)
    gradients = np.stack([b.attention.grad.numpy() for b in model.blocks], 1)
    np.save(os.path.join(out, "attention.npy"), attention.astype(np.float32))
    relevance = np.stack([chefer(a, g) for a, g in zip(attention, gradients)])
    np.save(os.path.join(out, "chefer.npy"), relevance.astype(np.float32))
    rolled = np.stack([rollout(a, "mean", 0.9) for a in attention])
    np.save(os.path.join(out, "rollout_mean_0.9.npy"), rolled.astype(np.float32))
    print("vit: attention", attention.shape, "class-token relevance of row 0:",
          np.round(relevance[0, 0, 1:9], 4))


if __name__ == "__main__":
    text()
    vit()
