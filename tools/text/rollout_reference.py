#!/usr/bin/env python3
"""NumPy reference of attention rollout (Abnar & Zuidema 2020) for tests/text.rs, from the
papers' formula on torch's attention maps of tests/fixtures/text/attention_1.npy
([layers, heads, t, t], written by make_text_model.py):

    A_l = fuse_heads(attention_l)                     # mean / max / min over heads
    A_l[lowest discard_ratio of the flat map] = 0     # flat index 0 kept (vit-explain)
    A_l = 0.5 * A_l + 0.5 * I;  A_l /= A_l.sum(-1, keepdims=True)   # rows sum to one
    rollout = A_L @ ... @ A_1

vit-explain divides by `a.sum(dim=-1)` without keepdims, which broadcasts the row sums along
the other axis (each column j divided by row j's sum); rollout_vit_explain_bug.npy is that
variant (max fusion, discard_ratio 0.9), to show the difference.

    python3 tools/text/rollout_reference.py
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "text")


def rollout(att, fusion, discard_ratio, keepdims=True):
    att = att.astype(np.float64)
    n = att.shape[-1]
    result = np.eye(n)
    for layer in att:
        a = {"mean": layer.mean(0), "max": layer.max(0), "min": layer.min(0)}[fusion].copy()
        flat = a.reshape(-1)
        drop = int(flat.size * discard_ratio)
        if drop:
            order = np.argsort(flat, kind="stable")[:drop]
            order = order[order != 0]
            flat[order] = 0.0
        a = 0.5 * a + 0.5 * np.eye(n)
        a = a / (a.sum(-1, keepdims=True) if keepdims else a.sum(-1))
        result = a @ result
    return result


def main():
    att = np.load(os.path.join(FIXTURES, "attention_1.npy"))
    for fusion, ratio in [("mean", 0.0), ("max", 0.9), ("min", 0.5)]:
        r = rollout(att, fusion, ratio)
        np.save(os.path.join(FIXTURES, f"rollout_{fusion}_{ratio}.npy"), r.astype(np.float32))
    # With mean fusion and nothing discarded every row already sums to one and the bug is
    # invisible; with max fusion and discarding it is not.
    bug = rollout(att, "max", 0.9, keepdims=False)
    np.save(os.path.join(FIXTURES, "rollout_vit_explain_bug.npy"), bug.astype(np.float32))
    good = rollout(att, "max", 0.9)
    print("rows sum to", good.sum(-1)[:3], "; vit-explain's rows", bug.sum(-1)[:3],
          "; rel diff", np.linalg.norm(bug - good) / np.linalg.norm(good))


if __name__ == "__main__":
    main()
