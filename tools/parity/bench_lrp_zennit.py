#!/usr/bin/env python3
"""Times zennit's LRP (EpsilonPlusFlat with its ResNet canonizer) and Saliency on torchvision's
ResNet-18 with the generated weights of tests/fixtures/onnx_resnet18, 224x224, batch 1 and 8,
with 2 torch threads: the reference for `cargo bench --bench onnx rules`. Median of --reps runs
after a warm-up.

    /tmp/fl/bin/python tools/parity/bench_lrp_zennit.py [--reps 3] [--threads 2]
"""
import argparse
import os
import sys

import torch
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_captum import timed  # noqa: E402
from export_resnet18_onnx import build_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = build_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("case           batch  seconds  x saliency")
    for batch in [1, 8]:
        # The input of benches/onnx.rs: ((i % 251) / 125) - 1 in row-major order.
        n = batch * 3 * 224 * 224
        x = ((torch.arange(n) % 251).float() / 125.0 - 1.0).reshape(batch, 3, 224, 224)
        targets = torch.tensor([(i * 97) % 1000 for i in range(batch)])

        def saliency():
            inp = x.clone().requires_grad_()
            out = model(inp)
            seed = torch.zeros_like(out)
            seed[torch.arange(batch), targets] = 1.0
            torch.autograd.grad(out, inp, seed)

        def lrp():
            inp = x.clone().requires_grad_()
            with EpsilonPlusFlat(canonizers=[ResNetCanonizer()]).context(model) as modified:
                out = modified(inp)
                seed = torch.zeros_like(out)
                seed[torch.arange(batch), targets] = 1.0
                torch.autograd.grad(out, inp, seed)

        base = timed(args.reps, saliency)
        for name, f in [("saliency", saliency), ("lrp", lrp)]:
            t = base if name == "saliency" else timed(args.reps, f)
            print(f"{name:<14} {batch:>5}  {t:>7.3f}  {t / base:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
