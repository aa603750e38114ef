#!/usr/bin/env python3
"""Tabular attributions for firelight-viz's chart examples (docs/images/tabular_*.png).

A small MLP regressor on scikit-learn's diabetes data (10 standardised features, 442 rows), and
Captum's attributions of its prediction against the all-zero (mean) baseline. Writes
crates/firelight-viz/tests/fixtures/diabetes/:
  features.npy   [442, 10] the standardised feature values
  ig.npy         [442, 10] IntegratedGradients of every row
  methods.npy    [5, 10]   row 0 under IntegratedGradients, FeatureAblation, ShapleyValueSampling,
                           KernelShap and Lime (the order of manifest["methods"])
  manifest.json  feature names, methods, model, versions

    /tmp/fl/bin/python tools/viz/diabetes_attributions.py
"""
import json
import os

import captum
import numpy as np
import sklearn
import torch
from captum.attr import (
    FeatureAblation,
    IntegratedGradients,
    KernelShap,
    Lime,
    ShapleyValueSampling,
)
from sklearn.datasets import load_diabetes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "crates", "firelight-viz", "tests", "fixtures", "diabetes")
METHODS = ["IntegratedGradients", "FeatureAblation", "ShapleyValueSampling", "KernelShap", "Lime"]


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    data = load_diabetes()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    y = (data.target - data.target.mean()) / data.target.std()
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(400):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    forward = lambda inp: model(inp)[:, 0]  # noqa: E731
    baseline = torch.zeros(1, 10)

    ig = IntegratedGradients(forward).attribute(x, baselines=baseline, n_steps=64)
    row = x[:1]
    rows = [
        IntegratedGradients(forward).attribute(row, baselines=baseline, n_steps=64),
        FeatureAblation(forward).attribute(row, baselines=baseline),
        ShapleyValueSampling(forward).attribute(row, baselines=baseline, n_samples=50),
        KernelShap(forward).attribute(row, baselines=baseline, n_samples=300),
        Lime(forward).attribute(row, baselines=baseline, n_samples=300),
    ]
    save("features.npy", x.numpy())
    save("ig.npy", ig.detach().numpy())
    save("methods.npy", torch.cat(rows).detach().numpy())
    manifest = {
        "generator": "tools/viz/diabetes_attributions.py",
        "features": list(data.feature_names),
        "methods": METHODS,
        "model": "MLP 10-32-1 (ReLU), Adam 400 steps on the standardised target",
        "train_mse": float(loss.detach()),
        "versions": {
            "captum": captum.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
        },
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
