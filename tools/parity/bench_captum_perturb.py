#!/usr/bin/env python3
"""Times Captum's perturbation methods on the cases of firelight's `cargo bench --bench perturb`:

- Occlusion on ResNet-18 (224x224, random weights, batch 1), sliding_window_shapes (3, 16, 16),
  strides (3, 8, 8);
- KernelShap and Lime on ResNet-18, n_samples 200, over the superpixel mask the Rust bench wrote
  (target/perturb_bench_mask.npy: about 50 SLIC superpixels of the bundled photo);
- FeatureAblation, ShapleyValueSampling (n_samples 25), KernelShap and Lime (n_samples 200) on the
  diabetes MLP (weights from models/diabetes_mlp/model.onnx) for its 89 held-out rows.

Each at perturbations_per_eval 1 (Captum's default) and 16, 2 torch threads. Image cases run once
after a warm-up forward pass; tabular cases are the median of --reps runs after a warm-up.

    cargo bench --bench perturb          # first: writes the mask
    python tools/parity/bench_captum_perturb.py [--reps 3] [--threads 2] [filter]
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
from bench_captum import timed  # noqa: E402
from models import ResNet18, randomize_batch_norm  # noqa: E402
from train_diabetes_mlp import DiabetesMlp  # noqa: E402


def once(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def diabetes():
    import onnx
    from onnx import numpy_helper

    mdir = os.path.join(ROOT, "models", "diabetes_mlp")
    graph = onnx.load(os.path.join(mdir, "model.onnx")).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = DiabetesMlp()
    model.load_state_dict(weights)
    model.eval()
    with open(os.path.join(mdir, "model.json")) as f:
        meta = json.load(f)
    with open(os.path.join(mdir, "test_rows.csv")) as f:
        rows = list(csv.reader(f))
    raw = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
    x = (raw - np.array(meta["mean"])) / np.array(meta["std"])
    return model, torch.from_numpy(x.astype(np.float32))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("filter", nargs="?", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import captum
    from captum.attr import FeatureAblation, KernelShap, Lime, Occlusion, ShapleyValueSampling

    print(f"torch {torch.__version__}, captum {captum.__version__}, {torch.get_num_threads()} threads")
    print("case                                  per_eval  seconds  inputs/s")

    def report(name, per_eval, rows, t):
        print(f"{name:<37} {per_eval:>8}  {t:>7.3f}  {rows / t:>8.3f}", flush=True)

    def wanted(name):
        return args.filter in name

    if wanted("resnet18"):
        model = randomize_batch_norm(ResNet18(), torch.Generator().manual_seed(0)).eval()
        x = torch.randn(1, 3, 224, 224)
        mask = torch.from_numpy(np.load(os.path.join(ROOT, "target", "perturb_bench_mask.npy"))).long()
        print(f"({int(mask.max()) + 1} superpixels)")
        with torch.no_grad():
            model(x)
        for per_eval in [1, 16]:
            if wanted("occlusion"):
                t = once(lambda: Occlusion(model).attribute(
                    x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=0,
                    perturbations_per_eval=per_eval))
                report("occlusion resnet18 w16 s8", per_eval, 1, t)
            if wanted("kernel_shap"):
                t = once(lambda: KernelShap(model).attribute(
                    x, target=0, feature_mask=mask, n_samples=200, perturbations_per_eval=per_eval))
                report("kernel_shap resnet18 200x50", per_eval, 1, t)
            if wanted("lime"):
                t = once(lambda: Lime(model).attribute(
                    x, target=0, feature_mask=mask, n_samples=200, perturbations_per_eval=per_eval))
                report("lime resnet18 200x50", per_eval, 1, t)

    if wanted("mlp"):
        model, x = diabetes()
        rows = x.shape[0]
        for per_eval in [1, 16]:
            if wanted("feature_ablation"):
                t = timed(args.reps, lambda: FeatureAblation(model).attribute(
                    x, target=0, perturbations_per_eval=per_eval))
                report("feature_ablation mlp", per_eval, rows, t)
            if wanted("shapley"):
                t = timed(args.reps, lambda: ShapleyValueSampling(model).attribute(
                    x, target=0, n_samples=25, perturbations_per_eval=per_eval))
                report("shapley_value_sampling mlp 25", per_eval, rows, t)
            if wanted("kernel_shap"):
                t = timed(args.reps, lambda: KernelShap(model).attribute(
                    x, target=0, n_samples=200, perturbations_per_eval=per_eval))
                report("kernel_shap mlp 200", per_eval, rows, t)
            if wanted("lime"):
                t = timed(args.reps, lambda: Lime(model).attribute(
                    x, target=0, n_samples=200, perturbations_per_eval=per_eval))
                report("lime mlp 200", per_eval, rows, t)


if __name__ == "__main__":
    main()
