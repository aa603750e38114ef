#!/usr/bin/env python3
"""Replays tests/fixtures/perturb/ without Captum: a second, independent implementation.

Each method is re-implemented here in numpy from the notes in the manifests, with the model used
only as a black-box batch forward (float32 in, one float32 per row out), replaying the recorded
draws (permutations, interpretable samples). Exact ShapleyValues are recomputed with the subset
formula instead of Captum's permutation loop; the Lasso with a float64 port of scikit-learn's
coordinate descent (cyclic, gap-safe screening, same stopping rule). It prints, per case, the
max abs difference to Captum's attributions and fails if any exceeds its bound (1e-5 relative to
the case's largest attribution for deterministic / replayed cases, a looser one for float32
least-squares fits).

This is the reference a Rust reimplementation can be checked against line by line.

    /tmp/fl/bin/python tools/parity/perturb_replay.py
"""
import itertools
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import perturb_fixtures as pf  # noqa: E402  (model builders only; Captum is not called)

OUT = pf.OUT


# ----------------------------------------------------------------------------------------------
# black-box models

class Model:
    """f(x [B, ...] float32, targets [B] int or None) -> [B] float32 (target selected)."""

    def __init__(self, module, layers):
        self.module = module
        self.layers = layers  # name -> (head(x) -> activation, tail(x, activation) -> output)

    def __call__(self, x, targets):
        with torch.no_grad():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
        return select(out, targets)

    def tail(self, layer, x, act, targets):
        with torch.no_grad():
            out = self.layers[layer][1](torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(act, dtype=np.float32)))
        return select(out.numpy(), targets)

    def head(self, layer, x):
        with torch.no_grad():
            return self.layers[layer][0](torch.from_numpy(x)).numpy()


def select(out, targets):
    if targets is None:
        return out.reshape(out.shape[0])
    return out[np.arange(out.shape[0]), targets]


def cnn_model():
    m, _ = pf.build_cnn()

    def stem(x):
        return m.relu1(m.bn1(m.conv1(x)))

    def after_stem(_x, a):
        a = m.layer1(a)
        a = m.relu2(m.conv2(m.maxpool(a)))
        return m.fc(torch.flatten(m.avgpool(a), 1))

    def block_relu1(x):
        s = stem(x)
        return m.layer1.relu1(m.layer1.bn1(m.layer1.conv1(s)))

    def after_block_relu1(x, a):
        s = stem(x)
        y = m.layer1.relu2(m.layer1.bn2(m.layer1.conv2(a)) + s)
        y = m.relu2(m.conv2(m.maxpool(y)))
        return m.fc(torch.flatten(m.avgpool(y), 1))

    return Model(m, {"relu1": (stem, after_stem), "layer1.relu1": (block_relu1, after_block_relu1)})


def mlp_model():
    m, _, _, _ = pf.build_mlp()
    return Model(m, {"relu1": (lambda x: m.relu1(m.fc1(x)),
                               lambda _x, a: m.fc3(m.relu2(m.fc2(a))))})


# ----------------------------------------------------------------------------------------------
# the methods

def expand_mask(mask, shape):
    """A mask [1 or N, ...] (or None: one id per element of an example) broadcast to shape."""
    if mask is None:
        mask = np.arange(int(np.prod(shape[1:]))).reshape((1,) + tuple(shape[1:]))
    return np.broadcast_to(mask, shape)


def tensor_baseline(b, shape):
    return np.broadcast_to(np.asarray(b, dtype=np.float32), shape).astype(np.float32)


def feature_ablation(f, x, t, b, mask):
    b = tensor_baseline(b, x.shape)
    m_all = expand_mask(mask, x.shape)
    f0 = f(x, t)
    attr = np.zeros(x.shape, np.float32)
    bshape = (-1,) + (1,) * (x.ndim - 1)
    for k in np.unique(m_all):
        m = m_all == k
        xk = np.where(m, b, x)
        attr += (f0 - f(xk, t)).reshape(bshape) * m
    return attr


def feature_permutation(f, x, t, mask, perms):
    m_all = expand_mask(mask, x.shape)
    f0 = f(x, t)
    attr = np.zeros(x.shape, np.float32)
    bshape = (-1,) + (1,) * (x.ndim - 1)
    for k, perm in zip(np.unique(m_all), perms):
        m = m_all == k
        xk = np.where(m, x[perm], x)
        attr += (f0 - f(xk, t)).reshape(bshape) * m
    assert len(perms) == len(np.unique(m_all))
    return attr


def occlusion(f, x, t, b, window, strides):
    dims = x.shape[1:]
    if isinstance(strides, int):
        strides = [strides] * len(dims)
    b = tensor_baseline(b, x.shape)
    counts = [math.ceil((d - w) / s) + 1 for d, w, s in zip(dims, window, strides)]
    f0 = f(x, t)
    total = np.zeros(x.shape, np.float64)
    cover = np.zeros(dims, np.float64)
    bshape = (-1,) + (1,) * (x.ndim - 1)
    for starts in itertools.product(*[range(c) for c in counts]):
        m = np.zeros(dims, bool)
        m[tuple(slice(s * st, s * st + w) for s, st, w in zip(starts, strides, window))] = True
        xk = np.where(m, b, x)
        total += (f0 - f(xk, t)).reshape(bshape) * m
        cover += m
    return (total / cover).astype(np.float32)


def shapley_sampling(f, x, t, b, mask, perms):
    b = tensor_baseline(b, x.shape)
    m_all = expand_mask(mask, x.shape)
    attr = np.zeros(x.shape, np.float64)
    bshape = (-1,) + (1,) * (x.ndim - 1)
    f_base = f(b, t)
    for perm in perms:
        cur, prev = b.copy(), f_base
        for k in perm:
            m = m_all == k
            cur = np.where(m, x, cur)
            out = f(cur, t)
            attr += (out - prev).reshape(bshape) * m
            prev = out
    return (attr / len(perms)).astype(np.float32)


def shapley_exact(f, x, t, b, mask):
    """Subset formula: phi_i = sum_S |S|! (M-|S|-1)! / M! (v(S + i) - v(S))."""
    b = tensor_baseline(b, x.shape)
    m_all = expand_mask(mask, x.shape)
    ids = list(np.unique(m_all))
    n_f = len(ids)
    values = {}
    for r in range(n_f + 1):
        for subset in itertools.combinations(range(n_f), r):
            m = np.isin(m_all, [ids[i] for i in subset])
            values[subset] = f(np.where(m, x, b), t).astype(np.float64)
    attr = np.zeros(x.shape, np.float64)
    bshape = (-1,) + (1,) * (x.ndim - 1)
    for i in range(n_f):
        phi = 0.0
        others = [j for j in range(n_f) if j != i]
        for r in range(n_f):
            w = math.factorial(r) * math.factorial(n_f - r - 1) / math.factorial(n_f)
            for subset in itertools.combinations(others, r):
                phi = phi + w * (values[tuple(sorted(subset + (i,)))] - values[subset])
        attr += phi.reshape(bshape) * (m_all == ids[i])
    return attr.astype(np.float32)


def lime_similarity(x, perturbed):
    a = x.reshape(-1).astype(np.float32)
    p = perturbed.reshape(-1).astype(np.float32)
    na = max(float(np.linalg.norm(a)), 1e-8)
    npp = max(float(np.linalg.norm(p)), 1e-8)
    cos = float(np.dot(a / na, p / npp))
    d = 1.0 - cos
    return math.exp(-(d * d) / 2.0)


def kernel_shap_similarity(sample):
    k = int(sample.sum())
    return 1e6 if k == 0 or k == sample.size else 1.0


def weighted_center(x, y, w):
    xm = (w[:, None] * x).sum(0) / w.sum()
    ym = (w * y).sum() / w.sum()
    sw = np.sqrt(w)
    return (x - xm) * sw[:, None], (y - ym) * sw, xm, ym


def fit_linear(x, y, w):
    xc, yc, xm, ym = weighted_center(x, y, w)
    c = np.linalg.lstsq(xc, yc, rcond=1e-6)[0]
    return c, ym - xm @ c


def fit_ridge(x, y, w, alpha):
    xc, yc, xm, ym = weighted_center(x, y, w)
    c = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return c, ym - xm @ c


def fit_lasso_sklearn(x, y, w, alpha, tol=1e-4, max_iter=1000):
    """scikit-learn 1.9's Lasso (dense, cyclic, zero start, gap-safe screening), in float64."""
    n, p = x.shape
    w = w * (n / w.sum())                                  # sample weights rescaled to sum to n
    X, Y, xm, ym = weighted_center(x, y, w)
    a = alpha * n                                           # l1_reg = alpha * l1_ratio * n_samples
    coef = np.zeros(p)
    norm2 = (X * X).sum(0)
    R = Y - X @ coef
    tol_eff = tol * (Y @ Y)

    def gap_of(coef, R):
        xta = X.T @ R
        dual_norm = np.abs(xta).max()
        r2 = R @ R
        primal = 0.5 * r2 + a * np.abs(coef).sum()
        scale = a / dual_norm if dual_norm > a else 1.0
        dual = -0.5 * scale ** 2 * r2 + scale * (R @ Y)
        return primal - dual, xta, dual_norm

    def screen(gap, xta, dual_norm, active, coef, R):
        keep = []
        for j in active:
            d_j = (1 - abs(xta[j] / max(a, dual_norm))) / math.sqrt(norm2[j])
            if d_j <= math.sqrt(2 * gap) / a:
                keep.append(j)
            elif coef[j] != 0:
                R += coef[j] * X[:, j]
                coef[j] = 0
        return keep

    gap, xta, dual_norm = gap_of(coef, R)
    if gap <= tol_eff:
        return coef, ym - xm @ coef, 0
    active = screen(gap, xta, dual_norm, [j for j in range(p) if norm2[j] != 0], coef, R)
    for it in range(max_iter):
        w_max = d_w_max = 0.0
        for j in active:
            old = coef[j]
            tmp = X[:, j] @ R + old * norm2[j]
            coef[j] = np.sign(tmp) * max(abs(tmp) - a, 0.0) / norm2[j]
            if coef[j] != old:
                R += (old - coef[j]) * X[:, j]
            d_w_max = max(d_w_max, abs(coef[j] - old))
            w_max = max(w_max, abs(coef[j]))
        if w_max == 0.0 or d_w_max / w_max <= tol or it == max_iter - 1:
            gap, xta, dual_norm = gap_of(coef, R)
            if gap <= tol_eff:
                break
            active = screen(gap, xta, dual_norm, active, coef, R)
    return coef, ym - xm @ coef, it + 1


def lime_like(f, x, t, b, mask, case, fx_dir, kind, alpha):
    """Replays recorded samples; returns (attr, checks)."""
    d = case["draws"]
    samples = np.load(os.path.join(fx_dir, d["samples"]))
    rec_out = np.load(os.path.join(fx_dir, d["model_outputs"]))
    rec_w = np.load(os.path.join(fx_dir, d["similarities"]))
    rec_coef = np.load(os.path.join(fx_dir, case["fit"]["coefs"]))
    b = tensor_baseline(b, x.shape)
    m_all = expand_mask(mask, x.shape)
    attr = np.zeros(x.shape, np.float32)
    worst = {"outputs": 0.0, "similarities": 0.0, "coefs_vs_captum": 0.0}
    for i in range(x.shape[0]):
        xi, bi, mi = x[i:i + 1], b[i:i + 1], m_all[i:i + 1]
        ti = None if t is None else t[i:i + 1]
        inputs = np.concatenate([np.where(s[mi].astype(bool), xi, bi) for s in samples[i]])
        out = f(inputs, None if ti is None else np.repeat(ti, len(samples[i])))
        if kind == "linear":
            sims = np.array([kernel_shap_similarity(s) for s in samples[i]])
        else:
            sims = np.array([lime_similarity(xi, inp) for inp in inputs])
        worst["outputs"] = max(worst["outputs"], float(np.abs(out - rec_out[i]).max()))
        worst["similarities"] = max(worst["similarities"], float(np.abs(sims - rec_w[i]).max()))
        # fit on the recorded training set (as Captum saw it), float64
        X, Y, W = samples[i].astype(np.float64), rec_out[i].astype(np.float64), rec_w[i].astype(np.float64)
        if kind == "linear":
            coef, _ = fit_linear(X, Y, W)
        elif kind == "ridge":
            coef, _ = fit_ridge(X, Y, W, alpha)
        else:
            coef, _, _ = fit_lasso_sklearn(X, Y, W, alpha)
        worst["coefs_vs_captum"] = max(worst["coefs_vs_captum"], float(np.abs(coef - rec_coef[i]).max()))
        attr[i] = coef[mi[0]]
    return attr, worst


def layer_ablation(model, x, t, layer, b, mask):
    act = model.head(layer, x)
    return feature_ablation(lambda a, tt: model.tail(layer, x, a, tt), act, t, b, mask)


# ----------------------------------------------------------------------------------------------

def baseline_of(desc, fx_dir):
    if desc is None or desc["kind"] == "zero":
        return 0.0
    if desc["kind"] == "scalar":
        return desc["value"]
    return np.load(os.path.join(fx_dir, desc["file"]))


def replay(folder, model):
    fx_dir = os.path.join(OUT, folder)
    with open(os.path.join(fx_dir, "manifest.json")) as fh:
        man = json.load(fh)
    x = np.load(os.path.join(fx_dir, man["inputs"]))
    ok = True
    for c in man["cases"]:
        p = c["params"]
        t = np.asarray(c["target"]) if isinstance(c["target"], list) else np.full(x.shape[0], c["target"])
        mask_file = p.get("feature_mask") or p.get("layer_mask")
        mask = None if mask_file is None else np.load(os.path.join(fx_dir, mask_file))
        b = baseline_of(p.get("baselines") or p.get("layer_baselines"), fx_dir)
        expected = np.load(os.path.join(fx_dir, c["expected"]))
        extra = ""
        method = c["method"]
        bound = 1e-5
        if method == "FeatureAblation":
            got = feature_ablation(model, x, t, b, mask)
        elif method == "FeaturePermutation":
            perms = np.load(os.path.join(fx_dir, c["draws"]["perms"]))
            got = feature_permutation(model, x, t, mask, perms)
        elif method == "Occlusion":
            got = occlusion(model, x, t, b, p["sliding_window_shapes"], p["strides"])
        elif method == "ShapleyValues":
            got = shapley_exact(model, x, t, b, mask)
            exact = np.load(os.path.join(fx_dir, c["exact"]))
            d_exact = float(np.abs(got - exact).max())
            extra = f"  vs exact.npy {d_exact:.1e}"
            ok &= d_exact <= 1e-5 * max(float(np.abs(exact).max()), 1e-12)
            # Captum's float32 running sum over M! permutations drifts from the exact value
            bound = 1e-5 + c["captum_vs_exact_max_abs"] / max(float(np.abs(expected).max()), 1e-12)
        elif method == "ShapleyValueSampling":
            perms = np.load(os.path.join(fx_dir, c["draws"]["perms"]))
            got = shapley_sampling(model, x, t, b, mask, perms)
        elif method in ("Lime", "KernelShap"):
            if "draws" not in c:
                print(f"  {folder}/{c['name']}: (no draws saved: a repeat; skipped)")
                continue
            desc = p["interpretable_model"]
            if method == "KernelShap":
                kind, alpha = "linear", None
            elif desc.startswith("SkLearnRidge"):
                kind, alpha = "ridge", float(desc.split("alpha=")[1].split(")")[0])
            else:
                kind, alpha = "lasso", float(desc.split("alpha=")[1].split(")")[0])
            got, worst = lime_like(model, x, t, b, mask, c, fx_dir, kind, alpha)
            extra = "  " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
            # float32 least squares (sklearn) vs float64 here: a looser bound for KernelShap's fits
            # with 1e6 weights; the model outputs and similarity weights must still agree closely
            if kind == "linear":
                bound = 1e-5 + 4 * c["captum_vs_exact_attr_max_abs"] / max(np.abs(expected).max(), 1e-12)
            assert worst["similarities"] < 1e-6 and worst["outputs"] <= 1e-5 * max(1.0, np.abs(x).max()), worst
        elif method == "LayerFeatureAblation":
            got = layer_ablation(model, x, t, p["layer"], b, mask)
        else:
            raise ValueError(method)
        scale = max(float(np.abs(expected).max()), 1e-12)
        diff = float(np.abs(got - expected).max())
        good = got.shape == expected.shape and diff <= bound * scale
        ok &= good
        print(f"  {folder}/{c['name']}: {method} max abs diff {diff:.2e} (scale {scale:.2e}, "
              f"bound {bound * scale:.1e}){extra} {'ok' if good else 'FAIL'}")
    return ok


def main():
    torch.set_num_threads(1)
    ok = replay("small_cnn", cnn_model())
    ok &= replay("diabetes_mlp", mlp_model())
    print("all cases reproduced" if ok else "SOME CASES FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
