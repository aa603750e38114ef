#!/usr/bin/env python3
"""TCAV parity fixtures: Captum's default CAV classifier and its TCAV scores.

Writes tests/fixtures/tcav/:
  acts_<name>.npy      activations of two concepts on the ground-truth model at its pooled layer
                       (/pool/GlobalAveragePool_output_0, [20, 32] each: striped then random[:20])
                       and a synthetic three-concept set (gaussian clusters, [30, 64] each)
  cav_<set>_<k>.npy    the CAV weights [concepts, features] Captum's DefaultClassifier's model
                       (`SkLearnSGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3)`, i.e. sklearn's
                       SGDClassifier) learns on *all* of the set's activations (no train/test split,
                       so that both sides see the same data), rows ordered as Captum's
                       `DefaultClassifier.weights()` (two concepts: [-w, w]); k = 0..4 are five
                       sklearn shuffling seeds, since SGD's answer depends on its shuffle
  exact_<set>.npy      the exact minimiser of the same objective (hinge loss + alpha/2 |w|^2, alpha
                       0.01, intercept unregularised): sklearn LinearSVC(loss="hinge",
                       C=1/(alpha n), intercept_scaling=100, tol=1e-10), one-vs-rest rows, ordered
                       as the CAVs above. Captum's SGD stops after a few dozen epochs (tol=1e-3),
                       far from this minimiser: its five seeds disagree with each other (cosine
                       0.3-0.9); manifest.json records how far
  grads.npy            gradients [12, 32] of a target (random, seed 0) to score
  score_cavs.npy       CAVs [3 sets, 2 concepts, 32] to score them with
  scores.json          Captum's sign_count and magnitude per set and concept, computed by
                       `TCAV._tcav_sub_computation` itself (the method `TCAV.interpret` calls)

    /work/pyenv/bin/python tools/parity/tcav_fixtures.py
"""
import json
import os
import random
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tcav")


def texture_acts():
    """Pooled activations of the bundled striped concept and 20 random images."""
    import onnx
    import onnxruntime as ort
    from PIL import Image
    model_path = os.path.join(ROOT, "models", "texture_cnn", "model.onnx")
    m = onnx.load(model_path)
    layer = "/pool/GlobalAveragePool_output_0"
    m.graph.output.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString())

    def load(folder, count):
        d = os.path.join(ROOT, "models", "texture_cnn", "concepts", folder)
        files = sorted(f for f in os.listdir(d) if f.endswith(".png"))[:count]
        x = np.stack([np.asarray(Image.open(os.path.join(d, f)).convert("RGB")) for f in files])
        x = (x.astype(np.float32) / 255.0 - 0.5) / 0.5
        return sess.run([layer], {"input": x.transpose(0, 3, 1, 2).copy()})[0].reshape(count, -1)

    return [load("striped", 20), load("random", 20)]


def synthetic_acts():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1.0, (3, 64))
    return [(c + rng.normal(0, 1.5, (30, 64))).astype(np.float32) for c in centres]


def captum_cav(acts, seed):
    """Captum DefaultClassifier's model on all of `acts`, weights as DefaultClassifier.weights()."""
    from captum._utils.models.linear_model import model
    np.random.seed(seed)
    random.seed(seed)
    lm = model.SkLearnSGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3)
    x = torch.from_numpy(np.concatenate(acts))
    y = torch.cat([torch.full((len(a),), i) for i, a in enumerate(acts)])
    lm.fit(DataLoader(TensorDataset(x, y), batch_size=len(x)))
    w = lm.representation()
    return torch.stack([-1 * w[0], w[0]]) if w.shape[0] == 1 else w


def main():
    from captum.concept import Concept
    from captum.concept._core.tcav import TCAV
    import captum
    os.makedirs(OUT, exist_ok=True)
    sets = {"texture": texture_acts(), "synthetic3": synthetic_acts()}
    for name, acts in sets.items():
        for i, a in enumerate(acts):
            np.save(os.path.join(OUT, f"acts_{name}_{i}.npy"), a.astype(np.float32))
        for k in range(5):
            np.save(os.path.join(OUT, f"cav_{name}_{k}.npy"), captum_cav(acts, k).numpy().astype(np.float32))

    from sklearn.svm import LinearSVC
    cos = lambda a, b: float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))
    manifest = {}
    for name, acts in sets.items():
        x = np.concatenate(acts).astype(np.float64)
        y = np.concatenate([np.full(len(a), i) for i, a in enumerate(acts)])
        svc = LinearSVC(loss="hinge", C=1 / (0.01 * len(x)), tol=1e-10, max_iter=10**6,
                        intercept_scaling=100).fit(x, y)
        w = svc.coef_
        w = np.stack([-w[0], w[0]]) if w.shape[0] == 1 else w
        np.save(os.path.join(OUT, f"exact_{name}.npy"), np.ascontiguousarray(w, dtype=np.float32))
        captum_cavs = [np.load(os.path.join(OUT, f"cav_{name}_{k}.npy")) for k in range(5)]
        manifest[name] = {
            "captum_seed_vs_seed_cosine_row0": [cos(captum_cavs[0][0], c[0]) for c in captum_cavs[1:]],
            "captum_vs_exact_cosine_row0": [cos(w[0], c[0]) for c in captum_cavs],
        }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    rng = np.random.default_rng(0)
    grads = rng.normal(0, 1, (12, 32)).astype(np.float32)
    cavs = rng.normal(0, 1, (3, 2, 32)).astype(np.float32)
    np.save(os.path.join(OUT, "grads.npy"), grads)
    np.save(os.path.join(OUT, "score_cavs.npy"), cavs)
    concepts = [[Concept(2 * i, f"a{i}", None), Concept(2 * i + 1, f"b{i}", None)] for i in range(3)]
    classes = [[2 * i, 2 * i + 1] for i in range(3)]
    from collections import defaultdict
    scores = defaultdict(lambda: defaultdict())
    TCAV._tcav_sub_computation(None, scores, "layer", torch.from_numpy(grads),
                               torch.from_numpy(cavs), classes, concepts)
    out = []
    for i in range(3):
        key = "-".join(str(c.id) for c in concepts[i])
        s = scores[key]["layer"]
        out.append({"sign_count": s["sign_count"].tolist(), "magnitude": s["magnitude"].tolist()})
    with open(os.path.join(OUT, "scores.json"), "w") as f:
        json.dump({"captum": captum.__version__, "sets": out}, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
