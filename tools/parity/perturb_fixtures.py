#!/usr/bin/env python3
"""Captum parity fixtures for firelight's perturbation methods.

Two models, one folder each under tests/fixtures/perturb/:

  small_cnn     tools/parity/models.py's SmallCnn with exactly the weights of
                tests/fixtures/small_cnn/weights/*.npy (file name = state_dict key), eval mode;
                inputs tests/fixtures/small_cnn/inputs.npy [4, 3, 16, 16], targets [3, 7, 0, 9]
  diabetes_mlp  models/diabetes_mlp/model.onnx (weights read from its initialisers into the torch
                twin DiabetesMlp of tools/models/train_diabetes_mlp.py); inputs the first 4 rows of
                models/diabetes_mlp/test_rows.csv standardised with model.json's mean/std
                [4, 10]; target 0 (the single output); zero baselines (= the training mean)

Every Captum method of the perturbation family is run with the arguments listed in each case of
manifest.json; sampled methods are run with torch.manual_seed(seed) right before `attribute`, and
what Captum drew (permutations, interpretable samples, similarity weights, the linear model's
training set and its fit) is recorded so that a reimplementation can replay it exactly. See
tests/fixtures/perturb/README.md for the format.

Re-run (the venv: python3 -m venv /tmp/fl &&
        /tmp/fl/bin/pip install torch captum numpy onnx onnxruntime scikit-learn):

    /tmp/fl/bin/python tools/parity/perturb_fixtures.py

The run is deterministic (fixed seeds, one torch thread).
"""
import contextlib
import csv
import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
from models import SmallCnn  # noqa: E402
from train_diabetes_mlp import DiabetesMlp  # noqa: E402

import captum  # noqa: E402
import sklearn  # noqa: E402
from captum._utils.models.linear_model import SkLearnLasso, SkLearnRidge  # noqa: E402
from captum.attr import (  # noqa: E402
    FeatureAblation,
    FeaturePermutation,
    KernelShap,
    LayerFeatureAblation,
    Lime,
    Occlusion,
    ShapleyValues,
    ShapleyValueSampling,
)

OUT = os.path.join(ROOT, "tests", "fixtures", "perturb")
CNN_TARGETS = [3, 7, 0, 9]
MLP_GROUPS8 = [0, 0, 1, 2, 3, 3, 4, 5, 6, 7]  # (age, sex), bmi, bp, (s1, s2), s3, s4, s5, s6
MLP_GROUPS7 = [0, 0, 1, 2, 3, 3, 4, 4, 5, 6]  # (age, sex), bmi, bp, (s1, s2), (s3, s4), s5, s6
SEEDS = (0, 1)  # primary run, repeat for the spread of sampled methods


# ----------------------------------------------------------------------------------------------
# models

def build_cnn():
    model = SmallCnn()
    wdir = os.path.join(ROOT, "tests", "fixtures", "small_cnn", "weights")
    state = model.state_dict()
    loaded = 0
    for key in state:
        path = os.path.join(wdir, key + ".npy")
        if key.endswith("num_batches_tracked"):
            continue
        state[key] = torch.from_numpy(np.load(path))
        loaded += 1
    assert loaded == len(os.listdir(wdir)), "weights folder and state_dict disagree"
    model.load_state_dict(state)
    model.eval()
    inputs = torch.from_numpy(np.load(os.path.join(ROOT, "tests", "fixtures", "small_cnn", "inputs.npy")))
    with torch.no_grad():
        logits = model(inputs)
    ref = np.load(os.path.join(ROOT, "tests", "fixtures", "small_cnn", "logits.npy"))
    assert np.abs(logits.numpy() - ref).max() < 1e-5, "SmallCnn does not reproduce small_cnn/logits.npy"
    return model, inputs


def build_mlp():
    import onnx
    from onnx import numpy_helper
    import onnxruntime as ort

    mdir = os.path.join(ROOT, "models", "diabetes_mlp")
    onnx_path = os.path.join(mdir, "model.onnx")
    graph = onnx.load(onnx_path).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = DiabetesMlp()
    model.load_state_dict(weights)
    model.eval()
    with open(os.path.join(mdir, "model.json")) as f:
        meta = json.load(f)
    with open(os.path.join(mdir, "test_rows.csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == meta["features"]
    raw = np.array([[float(v) for v in r] for r in rows[1:5]], dtype=np.float64)
    raw_more = np.array([[float(v) for v in r] for r in rows[5:9]], dtype=np.float64)
    mean, std = np.array(meta["mean"]), np.array(meta["std"])
    inputs = torch.from_numpy(((raw - mean) / std).astype(np.float32))
    other = torch.from_numpy(((raw_more - mean) / std).astype(np.float32))
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {"features": inputs.numpy()})[0]
    with torch.no_grad():
        out = model(inputs).numpy()
    assert np.abs(ort_out - out).max() < 1e-4, "torch twin and model.onnx disagree"
    return model, inputs, other, meta


# ----------------------------------------------------------------------------------------------
# recording what Captum draws

@contextlib.contextmanager
def record_randperm():
    """Patches torch.randperm (which Captum calls as `torch.randperm`) and records every draw."""
    draws = []
    real = torch.randperm

    def randperm(*args, **kwargs):
        r = real(*args, **kwargs)
        draws.append(r.clone())
        return r

    torch.randperm = randperm
    try:
        yield draws
    finally:
        torch.randperm = real


def record_linear_fits(explainer):
    """Wraps explainer.interpretable_model.fit: records each fit's training set and result."""
    fits = []
    model = explainer.interpretable_model
    real_fit = model.fit

    def fit(train_data, **kwargs):
        x, y, w = train_data.dataset.tensors
        result = real_fit(train_data, **kwargs)
        fits.append({
            "x": x.detach().clone(), "y": y.detach().clone(), "w": w.detach().clone(),
            "coef": model.representation().detach().clone().reshape(-1),
            "bias": model.bias().detach().clone().reshape(-1),
        })
        return result

    model.fit = fit
    return fits


# ----------------------------------------------------------------------------------------------
# the fixture folder

class Fixture:
    def __init__(self, name, model, inputs, target, description):
        self.name = name
        self.model = model
        self.inputs = inputs
        self.target = target
        self.dir = os.path.join(OUT, name)
        self.cases = []
        self.description = description
        self.files = {}
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.save("inputs.npy", inputs)
        with torch.no_grad():
            self.save("outputs.npy", model(inputs))

    def save(self, fname, arr, kind="float"):
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr)
        if kind == "float":
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        else:
            arr = np.ascontiguousarray(arr, dtype=np.int64)
        if fname in self.files:
            prev = np.load(os.path.join(self.dir, fname))
            assert prev.shape == arr.shape and (prev == arr).all(), f"{fname} saved twice with different data"
            return fname
        np.save(os.path.join(self.dir, fname), arr)
        self.files[fname] = list(arr.shape)
        return fname

    def case(self, name, method, attr, params, tolerance="deterministic", target=None, **extra):
        assert all(c["name"] != name for c in self.cases), name
        fname = self.save(name + ".npy", attr)
        entry = {"name": name, "method": method, "params": params, "inputs": "inputs.npy",
                 "target": self.target if target is None else target, "expected": fname, "expected_shape": list(attr.shape),
                 "tolerance": tolerance}
        entry.update(extra)
        self.cases.append(entry)
        print(f"  {self.name}/{name}: {method} -> {tuple(attr.shape)}")
        return entry

    def write_manifest(self, notes):
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump({
                "generator": "tools/parity/perturb_fixtures.py",
                "model": self.name,
                "model_description": self.description,
                "torch": torch.__version__,
                "captum": captum.__version__,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "inputs": "inputs.npy",
                "outputs": "outputs.npy",
                "target": self.target,
                "files": self.files,
                "notes": notes,
                "cases": self.cases,
            }, f, indent=1)
            f.write("\n")


def baseline_desc(kind, value=None, file=None):
    d = {"kind": kind}
    if value is not None:
        d["value"] = value
    if file is not None:
        d["file"] = file
    return d


def max_abs(a, b):
    return float((a - b).abs().max())


# ----------------------------------------------------------------------------------------------
# method runners shared by both models

def feature_permutation(fx, name, mask, mask_file, ppe, seed):
    fp = FeaturePermutation(fx.model)
    real_perm = fp.perm_func
    applied = []
    with record_randperm() as draws:
        def perm_func(x, feature_mask):
            n_before = len(draws)
            out = real_perm(x, feature_mask)
            assert len(draws) > n_before
            applied.append(draws[-1].clone())
            return out

        fp.perm_func = perm_func
        torch.manual_seed(seed)
        attr = fp.attribute(fx.inputs, target=fx.target, feature_mask=mask, perturbations_per_eval=ppe)
    perms = torch.stack(applied)
    perm_file = fx.save(name + ".perms.npy", perms, kind="int")
    return fx.case(
        name, "FeaturePermutation", attr,
        {"feature_mask": mask_file, "perturbations_per_eval": ppe, "seed": seed},
        tolerance="replay", draws={"perms": perm_file},
        draws_info=(f"perms[k] is the permutation torch.randperm(batch) drew for the k-th feature "
                    f"(features in ascending mask id order); row i of the permuted batch takes the "
                    f"masked elements of example perms[k][i]. {len(draws)} randperm calls, "
                    f"{len(draws) - len(applied)} rejected (identity, redrawn)."),
    ), attr


def shapley_sampling(fx, name, mask, mask_file, n_samples, ppe, seed, baselines=None, bdesc=None):
    svs = ShapleyValueSampling(fx.model)
    with record_randperm() as draws:
        torch.manual_seed(seed)
        attr = svs.attribute(fx.inputs, baselines=baselines, target=fx.target, feature_mask=mask,
                             n_samples=n_samples, perturbations_per_eval=ppe)
    perms = torch.stack(draws)
    assert perms.shape[0] == n_samples
    perm_file = fx.save(name + ".perms.npy", perms, kind="int")
    return fx.case(
        name, "ShapleyValueSampling", attr,
        {"feature_mask": mask_file, "n_samples": n_samples, "perturbations_per_eval": ppe,
         "seed": seed, "baselines": bdesc or baseline_desc("zero")},
        tolerance="replay", draws={"perms": perm_file},
        draws_info=("perms[s] = torch.randperm(num_features) of the s-th sample, in evaluation "
                    "order; one permutation is shared by every example of the batch"),
    ), attr


def refit_reference(kind, fit, alpha):
    """Refits a recorded training set: (a) with sklearn exactly as Captum called it (float32, default
    tolerances), to read the solver's iterations / dual gap and check the recording; (b) to the exact
    optimum in float64 (tight tolerance), to tell how far Captum's coefficients are from it."""
    from sklearn.linear_model import Lasso, LinearRegression, Ridge

    x32, y32, w32 = fit["x"].numpy(), fit["y"].numpy(), fit["w"].numpy()
    x64, y64, w64 = (a.astype(np.float64) for a in (x32, y32, w32))
    info = {}
    if kind == "lasso":
        m32 = Lasso(alpha=alpha).fit(x32, y32, sample_weight=w32)
        m64 = Lasso(alpha=alpha, tol=1e-14, max_iter=1_000_000).fit(x64, y64, sample_weight=w64)
        info = {"n_iter": int(m32.n_iter_), "dual_gap": float(m32.dual_gap_),
                "exact_n_iter": int(m64.n_iter_)}
    elif kind == "linear":
        m32 = LinearRegression().fit(x32, y32, sample_weight=w32)
        m64 = LinearRegression().fit(x64, y64, sample_weight=w64)
        info = {"rank": int(m32.rank_), "exact_rank": int(m64.rank_)}
    elif kind == "ridge":
        m32 = Ridge(alpha=alpha).fit(x32, y32, sample_weight=w32)
        m64 = Ridge(alpha=alpha, solver="cholesky").fit(x64, y64, sample_weight=w64)
    else:
        raise ValueError(kind)
    c32 = np.asarray(m32.coef_, dtype=np.float32).reshape(-1)
    assert np.array_equal(c32, fit["coef"].numpy()), "refit does not reproduce Captum's fit"
    info["captum_vs_exact_coef_max_abs"] = float(np.abs(fit["coef"].numpy().astype(np.float64) - m64.coef_).max())
    info["captum_vs_exact_intercept_abs"] = float(abs(float(fit["bias"][0]) - float(m64.intercept_)))
    return np.asarray(m64.coef_, dtype=np.float64), float(m64.intercept_), info


def lime_like(fx, name, method, mask, mask_file, n_samples, ppe, seed, interp=None, save_draws=True,
              baselines=None, bdesc=None, draws_name=None):
    """interp: None (the method's default), ("lasso", alpha) or ("ridge", alpha). draws_name: save the
    draws under that case's file names (asserting they are identical: same seed, same draws)."""
    draws_name = draws_name or name
    if method == "KernelShap":
        assert interp is None
        explainer = KernelShap(fx.model)
        kind, alpha, model_desc = "linear", None, "SkLearnLinearRegression() (sklearn LinearRegression(), fit_intercept=True)"
    elif interp is None:
        explainer = Lime(fx.model)
        kind, alpha, model_desc = "lasso", 0.01, "SkLearnLasso(alpha=0.01) (sklearn Lasso(alpha=0.01), fit_intercept=True, tol=1e-4, max_iter=1000) [Lime's default]"
    elif interp[0] == "lasso":
        kind, alpha = interp
        explainer = Lime(fx.model, interpretable_model=SkLearnLasso(alpha=alpha))
        model_desc = f"SkLearnLasso(alpha={alpha}) (sklearn Lasso(alpha={alpha}), fit_intercept=True, tol=1e-4, max_iter=1000)"
    else:
        kind, alpha = interp
        explainer = Lime(fx.model, interpretable_model=SkLearnRidge(alpha=alpha))
        model_desc = f"SkLearnRidge(alpha={alpha}) (sklearn Ridge(alpha={alpha}), fit_intercept=True)"
    fits = record_linear_fits(explainer)
    torch.manual_seed(seed)
    attr = explainer.attribute(fx.inputs, baselines=baselines, target=fx.target, feature_mask=mask,
                               n_samples=n_samples, perturbations_per_eval=ppe)
    assert len(fits) == fx.inputs.shape[0]
    params = {"feature_mask": mask_file, "n_samples": n_samples, "perturbations_per_eval": ppe,
              "seed": seed, "baselines": bdesc or baseline_desc("zero"),
              "interpretable_model": model_desc, "return_input_shape": True}
    if method == "Lime":
        params["similarity_func"] = "get_exp_kernel_similarity_function(distance_mode='cosine', kernel_width=1.0)"
        params["perturb_func"] = "default_perturb_func (torch.bernoulli(0.5) per interpretable feature)"
    else:
        params["similarity_func"] = "kernel_shap_similarity_kernel (1e6 for all-0/all-1 samples, else 1)"
        params["perturb_func"] = "kernel_shap_perturb_generator"
    coefs = torch.stack([f["coef"] for f in fits])
    bias = torch.stack([f["bias"][0] for f in fits])
    extra = {}
    exact, exact_b, infos = [], [], []
    for f in fits:
        c, b, info = refit_reference(kind, f, alpha)
        exact.append(c)
        exact_b.append(b)
        infos.append(info)
    extra["solver"] = infos
    # attributions from the exact coefficients, in Captum's output layout
    exact_c = torch.tensor(np.stack(exact), dtype=torch.float64)
    m = mask if mask is not None else torch.arange(fx.inputs[0].numel()).reshape((1,) + tuple(fx.inputs.shape[1:]))
    exact_attr = torch.zeros(fx.inputs.shape, dtype=torch.float64)
    for i in range(fx.inputs.shape[0]):
        exact_attr[i] = exact_c[i][m.expand((1,) + tuple(fx.inputs.shape[1:]))[0]]
    extra["captum_vs_exact_attr_max_abs"] = float((attr.double() - exact_attr).abs().max())
    if save_draws:
        extra["draws"] = {
            "samples": fx.save(draws_name + ".samples.npy", torch.stack([f["x"] for f in fits]), kind="int"),
            "model_outputs": fx.save(draws_name + ".outputs.npy", torch.stack([f["y"] for f in fits])),
            "similarities": fx.save(draws_name + ".weights.npy", torch.stack([f["w"] for f in fits])),
        }
        extra["draws_info"] = ("per example i (Captum fits one interpretable model per example): "
                               "samples[i] [n_samples, num_interp_features] in evaluation order, "
                               "model_outputs[i] the forward output (target selected) of each "
                               "sample, similarities[i] the sample weight passed to the fit")
        extra["fit"] = {"coefs": fx.save(name + ".coefs.npy", coefs),
                        "intercepts": fx.save(name + ".intercepts.npy", bias),
                        "coefs_exact": fx.save(name + ".coefs_exact.npy", np.stack(exact)),
                        "intercepts_exact": fx.save(name + ".intercepts_exact.npy", np.array(exact_b))}
    return fx.case(name, method, attr, params, tolerance="replay+solver", **extra), attr


def shapley_subsets(model, x, target, baselines, mask):
    """Exact Shapley values by the subset formula, accumulated in float64 (model evaluated in float32):
    phi_i = sum over S not containing i of |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S))."""
    import itertools
    import math

    b = torch.zeros_like(x) if baselines is None else (torch.full_like(x, baselines) if isinstance(baselines, float)
                                                       else baselines.expand_as(x))
    m_all = mask.expand_as(x)
    ids = sorted(torch.unique(m_all).tolist())
    n_f = len(ids)
    values = {}
    with torch.no_grad():
        for r in range(n_f + 1):
            for subset in itertools.combinations(range(n_f), r):
                m = torch.isin(m_all, torch.tensor([ids[i] for i in subset], dtype=m_all.dtype))
                out = model(torch.where(m, x, b))
                values[subset] = out[torch.arange(x.shape[0]), torch.as_tensor(target).expand(x.shape[0])].double()
    attr = torch.zeros(x.shape, dtype=torch.float64)
    shape = (-1,) + (1,) * (x.dim() - 1)
    for i in range(n_f):
        phi = torch.zeros(x.shape[0], dtype=torch.float64)
        others = [j for j in range(n_f) if j != i]
        for r in range(n_f):
            w = math.factorial(r) * math.factorial(n_f - r - 1) / math.factorial(n_f)
            for subset in itertools.combinations(others, r):
                phi += w * (values[tuple(sorted(subset + (i,)))] - values[subset])
        attr += phi.reshape(shape) * (m_all == ids[i])
    return attr


def add_exact_shapley(fx, entry, attr, baselines, mask):
    exact = shapley_subsets(fx.model, fx.inputs, fx.target, baselines, mask)
    entry["exact"] = fx.save(entry["name"] + ".exact.npy", exact)
    entry["captum_vs_exact_max_abs"] = float((attr.double() - exact).abs().max())
    entry["exact_info"] = ("exact.npy: the subset formula over all 2^M coalitions, accumulated in float64. "
                           "Captum accumulates M! permutations into a float32 total (then divides), "
                           "which drifts by captum_vs_exact_max_abs; a float32 loop over "
                           "itertools.permutations(range(M)) in that order reproduces Captum exactly.")


def add_spread(entry, a, b, name_b):
    d = (a - b).abs()
    entry["seed_spread"] = {"repeat_case": name_b, "max_abs_diff": float(d.max()),
                            "mean_abs_diff": float(d.mean()),
                            "attr_max_abs": float(a.abs().max())}


# ----------------------------------------------------------------------------------------------

def cnn_fixtures():
    model, inputs = build_cnn()
    fx = Fixture("small_cnn", model, inputs, CNN_TARGETS,
                 "tools/parity/models.py SmallCnn, weights tests/fixtures/small_cnn/weights/*.npy, eval mode; "
                 "inputs = tests/fixtures/small_cnn/inputs.npy")
    target = CNN_TARGETS
    n = inputs.shape[0]
    tensor_baselines = torch.from_numpy(np.load(os.path.join(ROOT, "tests", "fixtures", "small_cnn", "baselines.npy")))
    fx.save("baselines.npy", tensor_baselines)
    tb = baseline_desc("tensor", file="baselines.npy")

    hw = torch.arange(16)
    grid16 = ((hw[:, None] // 4) * 4 + (hw[None, :] // 4)).reshape(1, 1, 16, 16)
    coarse6 = ((hw[:, None] // 8) * 3 + torch.bucketize(hw, torch.tensor([5, 10]), right=True)[None, :]).reshape(1, 1, 16, 16)
    quad4 = ((hw[:, None] // 8) * 2 + (hw[None, :] // 8)).reshape(1, 1, 16, 16)
    fx.save("mask_grid16.npy", grid16, kind="int")
    fx.save("mask_coarse6.npy", coarse6, kind="int")
    fx.save("mask_quad4.npy", quad4, kind="int")
    assert sorted(torch.unique(coarse6).tolist()) == list(range(6))

    # FeatureAblation
    fa = FeatureAblation(model)
    a1 = fa.attribute(inputs, target=target)
    fx.case("fa_nomask", "FeatureAblation", a1,
            {"feature_mask": None, "perturbations_per_eval": 1, "baselines": baseline_desc("zero")})
    a = fa.attribute(inputs, target=target, perturbations_per_eval=16)
    e = fx.case("fa_nomask_ppe16", "FeatureAblation", a,
                {"feature_mask": None, "perturbations_per_eval": 16, "baselines": baseline_desc("zero")})
    e["max_abs_diff_vs"] = {"fa_nomask": max_abs(a, a1)}
    a = fa.attribute(inputs, target=target, feature_mask=grid16)
    fx.case("fa_grid16", "FeatureAblation", a,
            {"feature_mask": "mask_grid16.npy", "perturbations_per_eval": 1, "baselines": baseline_desc("zero")})
    a = fa.attribute(inputs, baselines=0.5, target=target, feature_mask=grid16)
    fx.case("fa_grid16_scalar_baseline", "FeatureAblation", a,
            {"feature_mask": "mask_grid16.npy", "perturbations_per_eval": 1, "baselines": baseline_desc("scalar", 0.5)})
    a = fa.attribute(inputs, baselines=tensor_baselines, target=target, feature_mask=grid16)
    a3 = fa.attribute(inputs, baselines=tensor_baselines, target=target, feature_mask=grid16, perturbations_per_eval=3)
    fx.case("fa_grid16_tensor_baseline", "FeatureAblation", a,
            {"feature_mask": "mask_grid16.npy", "perturbations_per_eval": 1, "baselines": tb})
    e = fx.case("fa_grid16_tensor_baseline_ppe3", "FeatureAblation", a3,
                {"feature_mask": "mask_grid16.npy", "perturbations_per_eval": 3, "baselines": tb})
    e["max_abs_diff_vs"] = {"fa_grid16_tensor_baseline": max_abs(a, a3)}

    # FeaturePermutation
    ea, aa = feature_permutation(fx, "fp_grid16", grid16, "mask_grid16.npy", 1, SEEDS[0])
    eb, ab = feature_permutation(fx, "fp_grid16_seed1", grid16, "mask_grid16.npy", 1, SEEDS[1])
    add_spread(ea, aa, ab, "fp_grid16_seed1")
    e, a = feature_permutation(fx, "fp_grid16_ppe4", grid16, "mask_grid16.npy", 4, SEEDS[0])
    e["max_abs_diff_vs"] = {"fp_grid16": max_abs(a, aa)}

    # Occlusion
    occ = Occlusion(model)
    a1 = occ.attribute(inputs, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=target)
    fx.case("occlusion_w344_s322", "Occlusion", a1,
            {"sliding_window_shapes": [3, 4, 4], "strides": [3, 2, 2], "perturbations_per_eval": 1,
             "baselines": baseline_desc("zero"), "shift_counts": [1, 7, 7]})
    a = occ.attribute(inputs, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=target,
                      perturbations_per_eval=8)
    e = fx.case("occlusion_w344_s322_ppe8", "Occlusion", a,
                {"sliding_window_shapes": [3, 4, 4], "strides": [3, 2, 2], "perturbations_per_eval": 8,
                 "baselines": baseline_desc("zero"), "shift_counts": [1, 7, 7]})
    e["max_abs_diff_vs"] = {"occlusion_w344_s322": max_abs(a, a1)}
    a = occ.attribute(inputs, sliding_window_shapes=(1, 5, 5), strides=(1, 3, 3), target=target,
                      baselines=tensor_baselines)
    fx.case("occlusion_w155_s133_tensor_baseline", "Occlusion", a,
            {"sliding_window_shapes": [1, 5, 5], "strides": [1, 3, 3], "perturbations_per_eval": 1,
             "baselines": tb, "shift_counts": [3, 5, 5]},
            notes="(16-5)/3 is not an integer: 5 window starts 0,3,6,9,12 per spatial dim; the last "
                  "window is cut to rows/cols 12..15 (4 wide)")
    a = occ.attribute(inputs, sliding_window_shapes=(3, 6, 6), strides=4, target=target, baselines=0.5)
    fx.case("occlusion_w366_s4_scalar_baseline", "Occlusion", a,
            {"sliding_window_shapes": [3, 6, 6], "strides": 4, "perturbations_per_eval": 1,
             "baselines": baseline_desc("scalar", 0.5), "shift_counts": [1, 4, 4]},
            notes="an int stride applies to every dim (channel too: (3-3)/4 -> 1 start); starts 0,4,8,12, "
                  "the last window cut to 12..15")

    # ShapleyValues (exact, all permutations)
    sv = ShapleyValues(model)
    a = sv.attribute(inputs, target=target, feature_mask=coarse6, perturbations_per_eval=6)
    e = fx.case("shapley_exact_coarse6", "ShapleyValues", a,
                {"feature_mask": "mask_coarse6.npy", "perturbations_per_eval": 6, "baselines": baseline_desc("zero")},
                notes="6! = 720 permutations, itertools.permutations order")
    add_exact_shapley(fx, e, a, None, coarse6)
    a = sv.attribute(inputs, baselines=tensor_baselines, target=target, feature_mask=quad4)
    e = fx.case("shapley_exact_quad4_tensor_baseline", "ShapleyValues", a,
                {"feature_mask": "mask_quad4.npy", "perturbations_per_eval": 1, "baselines": tb})
    add_exact_shapley(fx, e, a, tensor_baselines, quad4)

    # ShapleyValueSampling
    ea, aa = shapley_sampling(fx, "svs_grid16", grid16, "mask_grid16.npy", 25, 1, SEEDS[0])
    eb, ab = shapley_sampling(fx, "svs_grid16_seed1", grid16, "mask_grid16.npy", 25, 1, SEEDS[1])
    add_spread(ea, aa, ab, "svs_grid16_seed1")
    e, a = shapley_sampling(fx, "svs_grid16_ppe5", grid16, "mask_grid16.npy", 25, 5, SEEDS[0])
    e["max_abs_diff_vs"] = {"svs_grid16": max_abs(a, aa)}
    shapley_sampling(fx, "svs_coarse6_n5_tensor_baseline", coarse6, "mask_coarse6.npy", 5, 1, SEEDS[0],
                     baselines=tensor_baselines, bdesc=tb)

    # KernelShap and Lime. Lime's default Lasso(alpha=0.01) zeroes every coefficient here (the target
    # logit moves by ~0.01 across samples, so w = 0 is already optimal): those cases check the zeros;
    # alpha 1e-4 on the same draws (same seed) gives the non-trivial Lasso fixtures.
    lime_like(fx, "lime_grid16_n25", "Lime", grid16, "mask_grid16.npy", 25, 1, SEEDS[0])
    lime_like(fx, "lime_grid16_n200", "Lime", grid16, "mask_grid16.npy", 200, 1, SEEDS[0])
    for method, slug, interp in (("KernelShap", "kernelshap", None), ("Lime", "lime_lasso1e-4", ("lasso", 1e-4))):
        if method == "KernelShap":
            lime_like(fx, f"{slug}_grid16_n25", method, grid16, "mask_grid16.npy", 25, 1, SEEDS[0])
        ea, aa = lime_like(fx, f"{slug}_grid16_n200", method, grid16, "mask_grid16.npy", 200, 1, SEEDS[0],
                           interp=interp, draws_name=None if interp is None else "lime_grid16_n200")
        eb, ab = lime_like(fx, f"{slug}_grid16_n200_seed1", method, grid16, "mask_grid16.npy", 200, 1, SEEDS[1],
                           interp=interp, save_draws=False)
        add_spread(ea, aa, ab, f"{slug}_grid16_n200_seed1")
        e, a = lime_like(fx, f"{slug}_grid16_n200_ppe8", method, grid16, "mask_grid16.npy", 200, 8, SEEDS[0],
                         interp=interp, save_draws=False)
        e["max_abs_diff_vs"] = {f"{slug}_grid16_n200": max_abs(a, aa)}
        e["notes"] = "same seed as the ppe 1 case: the same draws (not saved again), evaluated 8 at a time"
    lime_like(fx, "lime_ridge_grid16_n200", "Lime", grid16, "mask_grid16.npy", 200, 1, SEEDS[0],
              interp=("ridge", 1.0), draws_name="lime_grid16_n200")
    lime_like(fx, "kernelshap_coarse6_n25_tensor_baseline", "KernelShap", coarse6, "mask_coarse6.npy", 25, 1,
              SEEDS[0], baselines=tensor_baselines, bdesc=tb)

    # LayerFeatureAblation at the stem ReLU (output [4, 8, 16, 16])
    lfa = LayerFeatureAblation(model, model.relu1)
    a1 = lfa.attribute(inputs, target=target)
    fx.case("layer_fa_relu1_nomask", "LayerFeatureAblation", a1,
            {"layer": "relu1", "layer_mask": None, "layer_baselines": baseline_desc("zero"),
             "attribute_to_layer_input": False, "perturbations_per_eval": 1})
    chan = torch.arange(8).reshape(1, 8, 1, 1)
    fx.save("layer_mask_channels8.npy", chan, kind="int")
    # Captum's LayerFeatureAblation does not expand a per-example target list when
    # perturbations_per_eval > 1 (it never passes `target` to the inner FeatureAblation; the hooked
    # forward selects with the original list and asserts): the ppe comparison uses one int target.
    a1 = lfa.attribute(inputs, target=3, layer_mask=chan)
    fx.case("layer_fa_relu1_channels_target3", "LayerFeatureAblation", a1,
            {"layer": "relu1", "layer_mask": "layer_mask_channels8.npy", "layer_baselines": baseline_desc("zero"),
             "attribute_to_layer_input": False, "perturbations_per_eval": 1}, target=3)
    a = lfa.attribute(inputs, target=3, layer_mask=chan, perturbations_per_eval=3)
    e = fx.case("layer_fa_relu1_channels_target3_ppe3", "LayerFeatureAblation", a,
                {"layer": "relu1", "layer_mask": "layer_mask_channels8.npy", "layer_baselines": baseline_desc("zero"),
                 "attribute_to_layer_input": False, "perturbations_per_eval": 3}, target=3,
                notes="target 3 for every example: with the list target [3, 7, 0, 9] and "
                      "perturbations_per_eval > 1 Captum 0.9 raises 'Target list length does not match output!'")
    e["max_abs_diff_vs"] = {"layer_fa_relu1_channels_target3": max_abs(a, a1)}
    a = lfa.attribute(inputs, target=target, layer_mask=chan)
    fx.case("layer_fa_relu1_channels", "LayerFeatureAblation", a,
            {"layer": "relu1", "layer_mask": "layer_mask_channels8.npy", "layer_baselines": baseline_desc("zero"),
             "attribute_to_layer_input": False, "perturbations_per_eval": 1},
            notes="layer_mask [1, 8, 1, 1]: each channel one feature (broadcast over batch and space)")
    a = lfa.attribute(inputs, target=target, layer_mask=grid16)
    fx.case("layer_fa_relu1_grid16", "LayerFeatureAblation", a,
            {"layer": "relu1", "layer_mask": "mask_grid16.npy", "layer_baselines": baseline_desc("zero"),
             "attribute_to_layer_input": False, "perturbations_per_eval": 1},
            notes="layer_mask [1, 1, 16, 16]: 4x4 spatial blocks across all 8 channels")
    lfa2 = LayerFeatureAblation(model, model.layer1.relu1)
    a = lfa2.attribute(inputs, target=target, layer_mask=chan, layer_baselines=0.25)
    fx.case("layer_fa_layer1_relu1_channels_scalar_baseline", "LayerFeatureAblation", a,
            {"layer": "layer1.relu1", "layer_mask": "layer_mask_channels8.npy",
             "layer_baselines": baseline_desc("scalar", 0.25),
             "attribute_to_layer_input": False, "perturbations_per_eval": 1})

    fx.write_manifest(NOTES + [
        "small_cnn: layers are named as SmallCnn's modules (relu1 = the stem ReLU after conv1/bn1, "
        "output [N, 8, 16, 16]; layer1.relu1 = the block's first ReLU, [N, 8, 16, 16]).",
        "mask_grid16: id = (h // 4) * 4 + w // 4 (4x4 pixel blocks, row-major), shape [1, 1, 16, 16], "
        "shared by the 3 channels and all examples. mask_coarse6: rows split 0-7 / 8-15, columns "
        "0-4 / 5-9 / 10-15, id = row_block * 3 + col_block. mask_quad4: 8x8 quadrants, id = "
        "(h // 8) * 2 + w // 8.",
        "baselines.npy = tests/fixtures/small_cnn/baselines.npy (per-example tensor baseline [4, 3, 16, 16]).",
    ])
    return fx


def mlp_fixtures():
    model, inputs, other, meta = build_mlp()
    fx = Fixture("diabetes_mlp", model, inputs, 0,
                 "models/diabetes_mlp/model.onnx (torch twin DiabetesMlp loaded from its initialisers); "
                 "inputs = first 4 rows of models/diabetes_mlp/test_rows.csv, (x - mean) / std with "
                 "model.json's mean/std, computed in float64 then cast to float32")
    target = 0
    fx.save("baselines_rows4to7.npy", other)
    tb = baseline_desc("tensor", file="baselines_rows4to7.npy")
    g8 = torch.tensor([MLP_GROUPS8])
    g7 = torch.tensor([MLP_GROUPS7])
    fx.save("mask_groups8.npy", g8, kind="int")
    fx.save("mask_groups7.npy", g7, kind="int")

    fa = FeatureAblation(model)
    a1 = fa.attribute(inputs, target=target)
    fx.case("fa_nomask", "FeatureAblation", a1,
            {"feature_mask": None, "perturbations_per_eval": 1, "baselines": baseline_desc("zero")})
    a = fa.attribute(inputs, target=target, perturbations_per_eval=3)
    e = fx.case("fa_nomask_ppe3", "FeatureAblation", a,
                {"feature_mask": None, "perturbations_per_eval": 3, "baselines": baseline_desc("zero")},
                notes="10 features in chunks of 3, 3, 3, 1")
    e["max_abs_diff_vs"] = {"fa_nomask": max_abs(a, a1)}
    a = fa.attribute(inputs, target=target, feature_mask=g8)
    fx.case("fa_groups8", "FeatureAblation", a,
            {"feature_mask": "mask_groups8.npy", "perturbations_per_eval": 1, "baselines": baseline_desc("zero")})
    a = fa.attribute(inputs, baselines=0.5, target=target, feature_mask=g8)
    fx.case("fa_groups8_scalar_baseline", "FeatureAblation", a,
            {"feature_mask": "mask_groups8.npy", "perturbations_per_eval": 1, "baselines": baseline_desc("scalar", 0.5)})
    a = fa.attribute(inputs, baselines=other, target=target, feature_mask=g8)
    fx.case("fa_groups8_tensor_baseline", "FeatureAblation", a,
            {"feature_mask": "mask_groups8.npy", "perturbations_per_eval": 1, "baselines": tb})
    a = fa.attribute(inputs, baselines=other, target=target)
    fx.case("fa_nomask_tensor_baseline", "FeatureAblation", a,
            {"feature_mask": None, "perturbations_per_eval": 1, "baselines": tb})

    ea, aa = feature_permutation(fx, "fp_groups8", g8, "mask_groups8.npy", 1, SEEDS[0])
    eb, ab = feature_permutation(fx, "fp_groups8_seed1", g8, "mask_groups8.npy", 1, SEEDS[1])
    add_spread(ea, aa, ab, "fp_groups8_seed1")
    e, a = feature_permutation(fx, "fp_nomask_ppe3", None, None, 3, SEEDS[0])

    sv = ShapleyValues(model)
    a = sv.attribute(inputs, target=target, feature_mask=g8, perturbations_per_eval=8)
    e = fx.case("shapley_exact_groups8", "ShapleyValues", a,
                {"feature_mask": "mask_groups8.npy", "perturbations_per_eval": 8, "baselines": baseline_desc("zero")},
                notes="8! = 40320 permutations: Captum's float32 running sum drifts by ~1e-2 (outputs ~150, "
                      "attributions up to 50); compare a float64 implementation with exact.npy")
    add_exact_shapley(fx, e, a, None, g8)
    a = sv.attribute(inputs, baselines=other, target=target, feature_mask=g7)
    e = fx.case("shapley_exact_groups7_tensor_baseline", "ShapleyValues", a,
                {"feature_mask": "mask_groups7.npy", "perturbations_per_eval": 1, "baselines": tb})
    add_exact_shapley(fx, e, a, other, g7)

    ea, aa = shapley_sampling(fx, "svs_nomask", None, None, 25, 1, SEEDS[0])
    eb, ab = shapley_sampling(fx, "svs_nomask_seed1", None, None, 25, 1, SEEDS[1])
    add_spread(ea, aa, ab, "svs_nomask_seed1")
    e, a = shapley_sampling(fx, "svs_nomask_ppe4", None, None, 25, 4, SEEDS[0])
    e["max_abs_diff_vs"] = {"svs_nomask": max_abs(a, aa)}
    shapley_sampling(fx, "svs_groups8_n5", g8, "mask_groups8.npy", 5, 1, SEEDS[0])
    shapley_sampling(fx, "svs_groups8_n25_scalar_baseline", g8, "mask_groups8.npy", 25, 1, SEEDS[0],
                     baselines=0.5, bdesc=baseline_desc("scalar", 0.5))

    for method, slug in (("KernelShap", "kernelshap"), ("Lime", "lime")):
        lime_like(fx, f"{slug}_nomask_n25", method, None, None, 25, 1, SEEDS[0])
        ea, aa = lime_like(fx, f"{slug}_nomask_n200", method, None, None, 200, 1, SEEDS[0])
        eb, ab = lime_like(fx, f"{slug}_nomask_n200_seed1", method, None, None, 200, 1, SEEDS[1], save_draws=False)
        add_spread(ea, aa, ab, f"{slug}_nomask_n200_seed1")
        e, a = lime_like(fx, f"{slug}_nomask_n200_ppe16", method, None, None, 200, 16, SEEDS[0], save_draws=False)
        e["max_abs_diff_vs"] = {f"{slug}_nomask_n200": max_abs(a, aa)}
        e["notes"] = "same seed as the ppe 1 case: the same draws (not saved again), evaluated 16 at a time"
        lime_like(fx, f"{slug}_groups8_n25_tensor_baseline", method, g8, "mask_groups8.npy", 25, 1, SEEDS[0],
                  baselines=other, bdesc=tb)
    lime_like(fx, "lime_ridge_nomask_n200", "Lime", None, None, 200, 1, SEEDS[0], interp=("ridge", 1.0),
              draws_name="lime_nomask_n200")

    lfa = LayerFeatureAblation(model, model.relu1)
    a1 = lfa.attribute(inputs, target=target)
    fx.case("layer_fa_relu1_nomask", "LayerFeatureAblation", a1,
            {"layer": "relu1", "onnx_tensor": "/relu1/Relu_output_0", "layer_mask": None,
             "layer_baselines": baseline_desc("zero"), "attribute_to_layer_input": False,
             "perturbations_per_eval": 1})
    a = lfa.attribute(inputs, target=target, perturbations_per_eval=7)
    e = fx.case("layer_fa_relu1_nomask_ppe7", "LayerFeatureAblation", a,
                {"layer": "relu1", "onnx_tensor": "/relu1/Relu_output_0", "layer_mask": None,
                 "layer_baselines": baseline_desc("zero"), "attribute_to_layer_input": False,
                 "perturbations_per_eval": 7})
    e["max_abs_diff_vs"] = {"layer_fa_relu1_nomask": max_abs(a, a1)}
    lm = (torch.arange(32) // 4).reshape(1, 32)
    fx.save("layer_mask_blocks8.npy", lm, kind="int")
    a = lfa.attribute(inputs, target=target, layer_mask=lm)
    fx.case("layer_fa_relu1_blocks8", "LayerFeatureAblation", a,
            {"layer": "relu1", "onnx_tensor": "/relu1/Relu_output_0", "layer_mask": "layer_mask_blocks8.npy",
             "layer_baselines": baseline_desc("zero"), "attribute_to_layer_input": False,
             "perturbations_per_eval": 1},
            notes="layer_mask [1, 32]: neuron j belongs to feature j // 4")

    fx.write_manifest(NOTES + [
        "diabetes_mlp: inputs are standardised features (model.json mean/std, ddof 0); a zero baseline "
        "is the training mean. The output has one column, target 0 selects it (Captum's output "
        "after target selection is [N]).",
        f"mask_groups8 = {MLP_GROUPS8} and mask_groups7 = {MLP_GROUPS7} over the columns "
        f"{meta['features']}; masks are [1, 10] (shared by all examples).",
        "baselines_rows4to7.npy: test rows 5-8 (0-based 4..7) standardised, used as a per-example tensor baseline.",
        "layer relu1 = the first hidden ReLU, ONNX tensor /relu1/Relu_output_0, [N, 32].",
    ])
    return fx


NOTES = [
    "Every attribution is Captum's return value, float32, shape as Captum returns it.",
    "FeatureAblation: features are the unique ids of the mask in ascending order (torch.unique); "
    "without a mask every element of one example is its own feature (ids arange(numel) in "
    "row-major order, shared by all examples). For each feature k: x_k = x * (1 - m_k) + b * m_k "
    "(m_k = (mask == k) broadcast to the input; b the baseline: scalar, or a tensor broadcast "
    "against one example or the whole batch); attr += (f(x) - f(x_k)) * m_k. Sign: POSITIVE when "
    "removing the feature LOWERS the output. Every element of a group gets the group's full "
    "difference (not divided by the group size). f(x) is evaluated once, in the first call.",
    "perturbations_per_eval p: the input is repeated p times along the batch (torch.cat([x]*p)) and "
    "chunk j of the batch ablates the j-th feature of the group of p; the last group may be "
    "smaller. Results equal p = 1 up to float rounding of batched kernels (see max_abs_diff_vs).",
    "FeaturePermutation = FeatureAblation where the ablated input is x[perm] * m_k + x * ~m_k "
    "with perm = torch.randperm(batch) drawn afresh for every feature (redrawn while it is the "
    "identity); the baseline argument is ignored; attr += f(x) - f(x_permuted). Batch must be > 1.",
    "Occlusion = FeatureAblation over sliding windows with averaging. Per input dim d (all dims "
    "except the batch, channels included): shift_count_d = ceil((D_d - window_d) / stride_d) + 1, "
    "window starts s_d * stride_d for s_d in 0..shift_count_d-1; a window that runs past the end "
    "is cut at the edge (F.pad with a negative pad), never shifted back. Window number k decodes "
    "with the FIRST dim fastest: s_0 = k % n_0, s_1 = (k // n_0) % n_1, ... (only matters for "
    "the grouping under perturbations_per_eval). attr = sum over windows W covering an element of "
    "(f(x) - f(x_W)) / (number of windows covering that element). strides as an int apply to "
    "every dim; stride must be <= window unless the window spans the dim.",
    "ShapleyValueSampling: initial f(baseline) (baselines tensorised: scalar -> full_like, [1,...] "
    "-> repeated over the batch). For each sampled permutation (torch.randperm(num_features), one "
    "per sample, shared by all examples): start from the baseline, add features in permutation "
    "order (current = current * ~m + x * m), evaluate, attr[m_feature] += f(current) - f(previous); "
    "previous resets to f(baseline) at every permutation. Finally attr / n_samples. "
    "perturbations_per_eval p batches p consecutive steps of the SAME permutation (never across "
    "permutations); the last batch of a permutation may be smaller; the number of permutations "
    "drawn does not depend on p. num_features = max(mask) + 1.",
    "ShapleyValues: the same loop over all num_features! permutations in itertools.permutations "
    "order, divided by their count: exact Shapley values of the game v(S) = f(x on S, baseline "
    "elsewhere).",
    "KernelShap = Lime with: samples from kernel_shap_perturb_generator (sample 0 = all ones, sample "
    "1 = all zeros, then: k ~ Categorical(p), p_k proportional to (M-1) / (k (M-k)) for k = 1..M-1, "
    "p_0 = 0; r = torch.randn(1, M); threshold = kthvalue(r, M - k); sample = (r > threshold), i.e. "
    "exactly k ones at the k largest r); similarity 1e6 for an all-zero or all-one sample, else 1 "
    "(the Shapley kernel lives in the sampling distribution, not in the weights); interpretable "
    "model SkLearnLinearRegression() = sklearn LinearRegression(fit_intercept=True, tol=1e-6) fit "
    "on float32 (X, y, sample_weight=similarities); attributions = coef_ (the intercept is "
    "dropped). Nothing is normalised.",
    "Lime (default): samples = torch.bernoulli(0.5) per interpretable feature, [1, M], drawn one at "
    "a time (no extra all-0/all-1 samples: they occur only by chance); model input = x where the "
    "sample is 1, baseline where 0 (curr_sample[0][feature_mask] broadcast); similarity = "
    "exp(-d^2 / (2 * kernel_width^2)), kernel_width 1, d = 1 - cosine_similarity(flatten(x), "
    "flatten(perturbed)) in float32 on the ORIGINAL input space (torch: x.y / (max(|x|, 1e-8) * "
    "max(|y|, 1e-8)); an all-baseline sample with zero baseline has cos 0 -> d = 1 -> "
    "exp(-0.5)); interpretable model SkLearnLasso(alpha=0.01) = sklearn Lasso(alpha=0.01, "
    "fit_intercept=True, tol=1e-4, max_iter=1000, cyclic coordinate descent) on float32 data "
    "with sample_weight = similarities; attributions = coef_ broadcast to every element of the "
    "group (intercept dropped).",
    "Lime / KernelShap with a batch > 1 whose forward returns one value per example: one "
    "interpretable model per example, examples in order, each with its own n_samples draws "
    "(KernelShap's generator restarts, so every example begins with the all-ones and all-zeros "
    "samples); the feature mask and per-example baselines are sliced per example. "
    "perturbations_per_eval only batches the forward calls; draws and results are unchanged.",
    "sklearn's weighted fits: sample_weight w is used as given by LinearRegression and Ridge; "
    "Lasso first rescales w to sum to n_samples. With fit_intercept the data are centred with "
    "the w-weighted means, rows scaled by sqrt(w), the problem solved without intercept, and "
    "intercept = ybar_w - xbar_w . coef. Lasso minimises (1 / (2 * sum(w))) * sum_i w_i (y_i - b - "
    "x_i . c)^2 + alpha * |c|_1 (b unpenalised); LinearRegression uses scipy.linalg.lstsq (gelsd) "
    "with cond=1e-6, i.e. the minimum-norm solution when X is rank-deficient; Ridge minimises "
    "sum_i w_i (y_i - b - x_i . c)^2 + alpha |c|^2 (no 1/n). Captum passes float32 arrays, and "
    "sklearn keeps float32 throughout (Lasso's coordinate descent runs in float32).",
    "Lasso stopping rule (sklearn 1.9): after a sweep, if max |coef change| <= tol * max |coef|, "
    "compute the duality gap and stop when it is <= tol * ||y_centred_scaled||^2 / n (tol 1e-4); "
    "max_iter 1000 sweeps. Captum's Lasso coefficients are therefore NOT the exact optimum: each "
    "Lime case records solver[i].n_iter / dual_gap and captum_vs_exact_coef_max_abs against the "
    "float64 optimum (tol 1e-14), saved as coefs_exact / intercepts_exact. A reimplementation that "
    "solves the Lasso exactly should compare to coefs_exact at ~1e-5 and to Captum within "
    "captum_vs_exact_attr_max_abs. LinearRegression / Ridge fits are exact up to float32 rounding "
    "(and rank truncation), also recorded.",
    "Replay: the 'draws' files hold everything random. FeaturePermutation perms[k] (row i takes "
    "example perms[k][i]), ShapleyValueSampling perms[s], Lime/KernelShap samples[i][s] (and the "
    "forward outputs and similarity weights Captum computed for them, so the linear fit can be "
    "checked without the model). torch's RNG cannot be reproduced outside torch; cases *_seed1 "
    "rerun the primary case with seed 1 and seed_spread in the primary case gives the difference, "
    "for statistical tests.",
    "Matching Captum's Lasso: solving the Lasso exactly is NOT enough (Captum's coefficients are "
    "off the optimum by up to captum_vs_exact_coef_max_abs, 7e-3 on attributions of 50 for the MLP "
    "with 25 samples). Port sklearn's solver instead: zero start; w rescaled to sum to n; weighted "
    "centring and sqrt(w) row scaling; l1 = alpha * n; tol_eff = 1e-4 * ||y||^2; a duality-gap check "
    "before the first sweep (return w = 0 if gap <= tol_eff); gap-safe screening (drop j when "
    "(1 - |X_j'R| / max(l1, ||X'R||_inf)) / ||X_j|| > sqrt(2 gap) / l1, zeroing w_j) before the "
    "first sweep and after every failed gap check; cyclic sweeps over the active set with "
    "w_j = soft(X_j'R + w_j ||X_j||^2, l1) / ||X_j||^2; after a sweep, if max|w| == 0 or "
    "max|dw| / max|w| <= 1e-4 or it is sweep 1000, compute the gap (primal 0.5 R'R + l1 |w|_1, "
    "dual with R scaled by min(1, l1 / ||X'R||_inf): -0.5 s^2 R'R + s R'y) and stop if gap <= "
    "tol_eff; intercept = ybar_w - xbar_w . w. tools/parity/perturb_replay.py's fit_lasso_sklearn "
    "(float64) reproduces every recorded Lasso fit to <= 4e-6 (MLP) / 1e-9 (CNN).",
    "Lime's default Lasso(alpha=0.01) gives all-zero attributions on small_cnn: its target logit "
    "moves by only ~0.01 across samples, so w = 0 is optimal (n_iter 0). The lime_lasso1e-4 cases "
    "use SkLearnLasso(alpha=1e-4) on the same draws.",
    "Captum 0.9 LayerFeatureAblation never passes `target` to its inner FeatureAblation, so a "
    "per-example target list fails with perturbations_per_eval > 1 ('Target list length does not "
    "match output!'); an int target works (layer_fa_relu1_channels_target3_ppe3).",
    "ShapleyValues accumulates all M! permutations in a float32 total: with M = 8 on the MLP the "
    "result drifts by 1e-2 from the exact value (exact.npy, float64 subset formula), 2e-4 relative. "
    "A float64 reimplementation should compare to exact.npy; emulating Captum needs a float32 "
    "running sum in itertools.permutations order.",
    "Tolerances: the forward pass itself differs between implementations by float32 rounding "
    "(onnxruntime vs torch on the MLP: 1.5e-5 on outputs ~150), so compare relative to the largest "
    "attribution of a case (1e-5 relative is met by the numpy replay for every case; KernelShap's "
    "float32 lstsq with 1e6 weights differs from float64 by up to 6.6e-5 absolute, 1.3e-6 "
    "relative, recorded as captum_vs_exact_attr_max_abs).",
    "LayerFeatureAblation: FeatureAblation on the layer's output (hooked: the layer's output is "
    "replaced by the ablated activation, the rest of the forward recomputed from the original "
    "input); layer_mask over the layer's output shape (broadcast), default one feature per "
    "element; layer_baselines default 0. Result has the layer's output shape.",
]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    print("small_cnn")
    cnn_fixtures()
    print("diabetes_mlp")
    mlp_fixtures()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
