#!/usr/bin/env python3
"""Trains firelight's bundled tabular model and writes models/diabetes_mlp/.

Data: scikit-learn's bundled copy of the diabetes data of Efron, Hastie, Johnstone and Tibshirani
(2004), "Least Angle Regression", Annals of Statistics 32(2): 442 patients, 10 baseline variables
in raw units (age, sex, bmi, bp, s1..s6) and the target, a quantitative measure of disease
progression one year after baseline. `sklearn.datasets.load_diabetes(scaled=False)`; no download.

Split: `train_test_split(test_size=0.2, random_state=0)` -> 353 training and 89 test rows.
Inputs are standardised with the training split's mean and population std (ddof=0); the target is
standardised likewise for training and the de-standardisation is folded into the last layer, so
the model's output is the progression in its real units.

Model: Linear(10, 32) - ReLU - Linear(32, 32) - ReLU - Linear(32, 1), modules fc1, relu1, fc2,
relu2, fc3. Full-batch Adam (lr 3e-3, 4000 steps), MSE on the standardised target plus
lambda * sum of squared weights (biases not penalised). lambda is chosen from LAMBDAS on a
validation split of the training rows (25%, random_state=0), then the model is refit on all
training rows. torch seed 0 before each fit, one thread: the run is deterministic.

Writes models/diabetes_mlp/:
  model.onnx         opset 17, TorchScript exporter (dynamo=False), input `features` [N, 10]
                     (dynamic N, standardised), output `progression` [N, 1]; Gemm and Relu only;
                     initialisers fc1.weight, fc1.bias, ..., fc3.bias
  model.json         feature names, mean, std, output name, target name, metrics
  test_rows.csv      the 89 raw test rows (header = feature names), in split order
  test_targets.csv   their targets (header `progression`)

    /tmp/fl/bin/python tools/models/train_diabetes_mlp.py [--out models/diabetes_mlp]

(venv: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch numpy onnx onnxruntime scikit-learn)
"""
import argparse
import hashlib
import json
import os

import numpy as np
import torch
from torch import nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LAMBDAS = [0.01, 0.03, 0.1, 0.3]
STEPS = 4000
LR = 3e-3


class DiabetesMlp(nn.Module):
    """Input: standardised features [N, 10]. Output: predicted progression [N, 1], real units."""

    def __init__(self, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(10, hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


def load_split():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    d = load_diabetes(scaled=False)
    x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.2, random_state=0)
    return list(d.feature_names), x_tr, x_te, y_tr, y_te


def fit(x_raw, y_raw, lam):
    """Fits on raw rows; returns (model with the target de-standardisation folded in, mean, std, loss)."""
    mean, std = x_raw.mean(0), x_raw.std(0)
    y_mean, y_std = y_raw.mean(), y_raw.std()
    x = torch.tensor((x_raw - mean) / std, dtype=torch.float32)
    y = torch.tensor((y_raw - y_mean) / y_std, dtype=torch.float32)[:, None]
    torch.manual_seed(0)
    net = DiabetesMlp()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean() + lam * sum((w ** 2).sum() for w in weights)
        loss.backward()
        opt.step()
    with torch.no_grad():
        net.fc3.weight.mul_(float(y_std))
        net.fc3.bias.mul_(float(y_std)).add_(float(y_mean))
    return net.eval(), mean, std, float(loss.detach())


def predict(net, x_raw, mean, std):
    with torch.no_grad():
        return net(torch.tensor((x_raw - mean) / std, dtype=torch.float32)).numpy()[:, 0].astype(np.float64)


def r2(y, p):
    return float(1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def rmse(y, p):
    return float(np.sqrt(((y - p) ** 2).mean()))


def fmt(v):
    """Shortest repr that round-trips a float64 (what the CSVs and JSON hold)."""
    return repr(float(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "diabetes_mlp"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    names, x_tr, x_te, y_tr, y_te = load_split()

    # lambda by validation on the training rows only
    x_a, x_v, y_a, y_v = train_test_split(x_tr, y_tr, test_size=0.25, random_state=0)
    selection = {}
    for lam in LAMBDAS:
        net, mean, std, _ = fit(x_a, y_a, lam)
        selection[str(lam)] = r2(y_v, predict(net, x_v, mean, std))
        print(f"lambda {lam}: validation R^2 {selection[str(lam)]:.4f}")
    lam = max(LAMBDAS, key=lambda v: selection[str(v)])

    net, mean, std, loss = fit(x_tr, y_tr, lam)
    p_te = predict(net, x_te, mean, std)
    lin = LinearRegression().fit(x_tr, y_tr)
    p_lin = lin.predict(x_te)
    print(f"lambda {lam}: final training loss {loss:.5f}")
    print(f"MLP test R^2 {r2(y_te, p_te):.4f} RMSE {rmse(y_te, p_te):.3f}; "
          f"LinearRegression test R^2 {r2(y_te, p_lin):.4f} RMSE {rmse(y_te, p_lin):.3f}")

    onnx_path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(
        net, (torch.zeros(2, 10),), onnx_path, dynamo=False, opset_version=17,
        input_names=["features"], output_names=["progression"],
        dynamic_axes={"features": {0: "batch"}, "progression": {0: "batch"}},
        do_constant_folding=True,
    )

    import onnx
    import onnxruntime as ort

    graph = onnx.load(onnx_path).graph
    ops = sorted({n.op_type for n in graph.node})
    inits = [i.name for i in graph.initializer]
    assert set(ops) <= {"Gemm", "MatMul", "Add", "Relu"}, ops
    assert sorted(inits) == sorted(k for k in net.state_dict()), inits
    x_std = ((x_te - mean) / std).astype(np.float32)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {"features": x_std})[0]
    with torch.no_grad():
        torch_out = net(torch.from_numpy(x_std)).numpy()
    diff = float(np.abs(ort_out - torch_out).max())
    assert diff < 1e-4, diff
    print(f"onnxruntime vs torch on the test split: max abs diff {diff:.2e}; ops {ops}")

    meta = {
        "features": names,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "std_ddof": 0,
        "input": "features",
        "output": "progression",
        "target_name": "progression",
        "target_description": "quantitative measure of disease progression one year after baseline",
        "split": "sklearn train_test_split(test_size=0.2, random_state=0): 353 train, 89 test",
        "l2_lambda": lam,
        "validation_r2_by_lambda": selection,
        "test_r2": r2(y_te, p_te),
        "test_rmse": rmse(y_te, p_te),
        "linear_regression_test_r2": r2(y_te, p_lin),
        "linear_regression_test_rmse": rmse(y_te, p_lin),
        "onnxruntime_vs_torch_max_abs_diff": diff,
    }
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "test_rows.csv"), "w") as f:
        f.write(",".join(names) + "\n")
        for row in x_te:
            f.write(",".join(fmt(v) for v in row) + "\n")
    with open(os.path.join(args.out, "test_targets.csv"), "w") as f:
        f.write("progression\n")
        for v in y_te:
            f.write(fmt(v) + "\n")
    for name in ["model.onnx", "model.json", "test_rows.csv", "test_targets.csv"]:
        with open(os.path.join(args.out, name), "rb") as f:
            print(f"{name} sha256 {hashlib.sha256(f.read()).hexdigest()}")


if __name__ == "__main__":
    main()
