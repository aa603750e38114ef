#!/usr/bin/env python3
"""Fixtures for tests/metrics.rs: Captum 0.9's infidelity and sensitivity_max, and NumPy
references of RISE's deletion / insertion, Quantus's faithfulness correlation, sparseness and
complexity, on a small CNN exported to ONNX.

Every random draw is recorded so the Rust side replays it: the infidelity perturbations (Gaussian
noise and square removal), the perturbed inputs of sensitivity_max, the faithfulness subsets.

Writes tests/fixtures/metrics/:
  model.onnx             Conv(3->6, 3x3) ReLU MaxPool(2) Conv(6->8, 3x3) ReLU MaxPool(2) Flatten
                         Gemm(128->5), input [N, 3, 16, 16] (torch.manual_seed(0) weights)
  input.npy              2 images [2, 3, 16, 16] (seeded normal)
  saliency.npy           Captum Saliency(abs=False) toward the predicted classes [2, 3, 16, 16]
  noise.npy              infidelity perturbations N(0, 0.003), [20, 3, 16, 16] (10 per sample)
  square.npy             infidelity perturbations removing one 4x4 square, [20, 3, 16, 16]
  sens_perturbed.npy     sensitivity_max's perturbed inputs (uniform, radius 0.02), [20, 3, 16, 16]
  map.npy                |saliency| summed over channels, [2, 16, 16]: the causal metrics' map
  deletion.npy, insertion.npy   RISE's curves, step 16, softmax probability of the target [2, 17]
  fgsm.npy, fgsm_targeted.npy  Captum FGSM (cross-entropy, epsilon 0.05; toward class 0), [2, 3, 16, 16]
  pgd_linf.npy           Captum PGD, L-inf radius 0.1, step 0.02, 7 steps, bounds [-2, 2]
  pgd_l2.npy             Captum PGD, L2 radius 1.0, step 0.1, 5 steps, targeted toward class 0
  manifest.json          targets, infidelity (noise, noise normalized, square), sensitivity_max,
                         deletion / insertion AUCs, faithfulness subsets and correlations,
                         sparseness, complexity, versions

    /tmp/fl/bin/pip install torch captum onnx scipy numpy
    /tmp/fl/bin/python tools/metrics/metrics_fixtures.py
"""
import json
import os

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "metrics")
N_PERTURB = 10
STEP = 16
RUNS, SUBSET = 20, 32


def model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 5)).eval()


def save(name, a):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(a, dtype=np.float32))


def gkern(klen, nsig):
    """RISE's kernel (its evaluation.py)."""
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    return gaussian_filter(inp, nsig)


def causal(net, x, saliency, target, mode):
    """RISE's CausalMetric.single_run, one image, ties in position order, its softmax score."""
    c, hw = x.shape[1], x.shape[2] * x.shape[3]
    if mode == "del":
        start, finish = x.clone(), torch.zeros_like(x)
    else:
        k = torch.zeros((c, c, 11, 11))
        for i in range(c):
            k[i, i] = torch.from_numpy(gkern(11, 5).astype(np.float32))
        start, finish = torch.nn.functional.conv2d(x, k, padding=11 // 2), x.clone()
    n_steps = (hw + STEP - 1) // STEP
    order = np.argsort(-saliency.reshape(hw), kind="stable")
    scores = np.empty(n_steps + 1)
    for i in range(n_steps + 1):
        with torch.no_grad():
            scores[i] = torch.softmax(net(start), 1)[0, target].item()
        if i < n_steps:
            coords = order[STEP * i:STEP * (i + 1)]
            s = start.numpy().reshape(1, c, hw)
            s[0, :, coords] = finish.numpy().reshape(1, c, hw)[0, :, coords]
            start = torch.from_numpy(s.reshape(x.shape))
    return scores


def auc(arr):
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


def main():
    import captum
    from captum.attr import Saliency
    from captum.metrics import infidelity, sensitivity_max

    os.makedirs(OUT, exist_ok=True)
    net = model()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(2, 3, 16, 16)).astype(np.float32))
    with torch.no_grad():
        targets = net(x).argmax(1)
    torch.onnx.export(net, (x,), os.path.join(OUT, "model.onnx"), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    saliency = Saliency(net).attribute(x, target=targets, abs=False).detach()

    noise = torch.from_numpy(rng.normal(0, 0.003, size=(2 * N_PERTURB, 3, 16, 16))
                             .astype(np.float32))
    square = torch.zeros(2 * N_PERTURB, 3, 16, 16)
    expanded = x.repeat_interleave(N_PERTURB, 0)
    for r in range(2 * N_PERTURB):
        y0, x0 = rng.integers(0, 13, size=2)
        square[r, :, y0:y0 + 4, x0:x0 + 4] = expanded[r, :, y0:y0 + 4, x0:x0 + 4]

    def replay(perturbations):
        def perturb(inputs):
            assert inputs.shape == perturbations.shape
            return perturbations, inputs - perturbations
        return perturb

    inf = {}
    for name, p, norm in [("noise", noise, False), ("noise_normalized", noise, True),
                          ("square", square, False)]:
        inf[name] = infidelity(net, replay(p), x, saliency, target=targets,
                               n_perturb_samples=N_PERTURB, normalize=norm).tolist()

    sens_perturbed = expanded + torch.from_numpy(
        rng.uniform(-0.02, 0.02, size=expanded.shape).astype(np.float32))

    def given_perturbed(inputs, radius):
        assert inputs.shape == sens_perturbed.shape
        return sens_perturbed

    sens = sensitivity_max(Saliency(net).attribute, x, perturb_func=given_perturbed,
                           n_perturb_samples=N_PERTURB, target=targets, abs=False).tolist()

    saliency_map = saliency.abs().sum(1).numpy()
    deletion = np.stack([causal(net, x[i:i + 1], saliency_map[i], int(targets[i]), "del")
                         for i in range(2)])
    insertion = np.stack([causal(net, x[i:i + 1], saliency_map[i], int(targets[i]), "ins")
                          for i in range(2)])

    # Faithfulness correlation (Quantus's formula): subsets of positions set to the sample's
    # minimum in every channel; Pearson of the attribution sums and the logit drops.
    subsets = [[sorted(rng.choice(256, SUBSET, replace=False).tolist()) for _ in range(RUNS)]
               for _ in range(2)]
    faith = []
    with torch.no_grad():
        logits = net(x)
        for i in range(2):
            xi = x[i].numpy()
            drops, sums = [], []
            for s in subsets[i]:
                xp = xi.reshape(3, 256).copy()
                xp[:, s] = xi.min()
                pred = net(torch.from_numpy(xp.reshape(1, 3, 16, 16)))[0, targets[i]].item()
                drops.append(logits[i, targets[i]].item() - pred)
                sums.append(float(saliency_map[i].reshape(256)[s].sum()))
            faith.append(float(np.corrcoef(sums, drops)[0, 1]))

    def gini(a):
        a = np.sort(np.abs(a.flatten()).astype(np.float64)) + 1e-7
        n = a.shape[0]
        return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * np.sum(a)))

    def entropy(a):
        a = np.abs(a.flatten()).astype(np.float64)
        p = a / a.sum()
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    from captum.robust import FGSM, PGD
    ce = nn.CrossEntropyLoss(reduction="none")
    toward = torch.zeros(2, dtype=torch.long)
    save("fgsm.npy", FGSM(net, ce).perturb(x, 0.05, targets).detach().numpy())
    save("fgsm_targeted.npy", FGSM(net, ce).perturb(x, 0.05, toward, targeted=True).detach().numpy())
    save("pgd_linf.npy", PGD(net, ce, lower_bound=-2.0, upper_bound=2.0)
         .perturb(x, 0.1, 0.02, 7, targets).detach().numpy())
    save("pgd_l2.npy", PGD(net, ce).perturb(x, 1.0, 0.1, 5, toward, targeted=True, norm="L2")
         .detach().numpy())

    save("input.npy", x.numpy())
    save("saliency.npy", saliency.numpy())
    save("noise.npy", noise.numpy())
    save("square.npy", square.numpy())
    save("sens_perturbed.npy", sens_perturbed.numpy())
    save("map.npy", saliency_map)
    save("deletion.npy", deletion)
    save("insertion.npy", insertion)
    manifest = {
        "generator": "tools/metrics/metrics_fixtures.py",
        "targets": targets.tolist(),
        "n_perturb_samples": N_PERTURB,
        "infidelity": inf,
        "sensitivity_max": sens,
        "causal": {"step": STEP, "score": "softmax probability of the target",
                   "deletion_auc": [float(auc(d)) for d in deletion],
                   "insertion_auc": [float(auc(s)) for s in insertion]},
        "faithfulness": {"subsets": subsets, "baseline": "the sample's minimum",
                         "attributions": "map.npy", "correlation": faith},
        "sparseness": [gini(saliency[i].numpy()) for i in range(2)],
        "complexity": [entropy(saliency[i].numpy()) for i in range(2)],
        "versions": {"torch": torch.__version__, "captum": captum.__version__,
                     "numpy": np.__version__},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps({k: v for k, v in manifest.items() if k != "faithfulness"}, indent=1))


if __name__ == "__main__":
    main()
