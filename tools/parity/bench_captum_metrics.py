#!/usr/bin/env python3
"""Times Captum's `infidelity` (Gaussian noise of std 0.003, 10 perturbations per input, of a
Saliency map computed beforehand) and `sensitivity_max` of Saliency (10 perturbations, radius
0.02), both with `max_examples_per_batch=16`, on ResNet-18 (224x224, random weights) at batch 1
and 8, with 2 torch threads: the reference for firelight's `cargo bench --bench metrics`. Median
of --reps runs after a warm-up.

    /tmp/fl/bin/python tools/parity/bench_captum_metrics.py [--reps 3] [--threads 2]
"""
import argparse
import os
import sys

import torch
from captum.attr import Saliency
from captum.metrics import infidelity, sensitivity_max

sys.path.insert(0, os.path.dirname(__file__))
from bench_captum import timed  # noqa: E402
from models import ResNet18, randomize_batch_norm  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("filter", nargs="?", default="", help="run only cases containing this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = randomize_batch_norm(ResNet18(), torch.Generator().manual_seed(0)).eval()
    for m in model.modules():  # Captum's gradient methods need non-inplace ReLUs
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    saliency = Saliency(model)

    def noise(inputs):
        perturbation = torch.randn_like(inputs) * 0.003
        return perturbation, inputs - perturbation

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("case                      batch  seconds  inputs/s")
    for batch in [1, 8]:
        x = torch.randn(batch, 3, 224, 224)
        target = torch.tensor([(i * 97) % 1000 for i in range(batch)])
        attributions = saliency.attribute(x, target=target, abs=False)
        cases = [
            ("infidelity", lambda: infidelity(model, noise, x, attributions, target=target,
                                              n_perturb_samples=10, max_examples_per_batch=16)),
            ("sensitivity_max", lambda: sensitivity_max(saliency.attribute, x, target=target,
                                                        abs=False, n_perturb_samples=10,
                                                        max_examples_per_batch=16)),
        ]
        for name, f in cases:
            if args.filter not in name:
                continue
            t = timed(args.reps, f)
            print(f"{name:<25} {batch:>5}  {t:>7.3f}  {batch / t:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
