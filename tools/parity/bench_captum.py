#!/usr/bin/env python3
"""Times Captum's Saliency, DeepLift and IntegratedGradients (n_steps=50, internal_batch_size=50)
on ResNet-18 (224x224, random weights) at batch 1 and 8, with 2 torch threads: the reference for
firelight's `cargo bench --bench attribution`. Median of --reps runs after a warm-up.

Captum's DeepLift refuses torchvision's BasicBlock, which calls one ReLU module twice;
`deeplift_own_relus` times it on the same network with a second ReLU module in every block (the
same function: only Captum's hooks see a difference).

    /tmp/fl/bin/python tools/parity/bench_captum.py [--reps 3] [--threads 2]
"""
import argparse
import os
import sys
import time

import torch
from captum.attr import DeepLift, IntegratedGradients, Saliency

sys.path.insert(0, os.path.dirname(__file__))
from models import BasicBlock, ResNet18, randomize_batch_norm  # noqa: E402


def own_relus(model):
    """The same network with each BasicBlock's second ReLU call on a module of its own."""
    import types

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(out + identity)

    for m in model.modules():
        if isinstance(m, BasicBlock):
            m.relu_out = torch.nn.ReLU()
            m.forward = types.MethodType(forward, m)
    return model


def timed(reps, f):
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


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
    import copy
    separate = own_relus(copy.deepcopy(model))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("case                      batch  seconds  inputs/s")
    for batch in [1, 8]:
        x = torch.randn(batch, 3, 224, 224)
        target = torch.tensor([(i * 97) % 1000 for i in range(batch)])
        cases = [
            ("saliency", args.reps, lambda: Saliency(model).attribute(x, target=target)),
            ("deeplift", args.reps, lambda: DeepLift(model).attribute(x, target=target)),
            ("deeplift_own_relus", args.reps, lambda: DeepLift(separate).attribute(x, target=target)),
            ("integrated_gradients_50", min(args.reps, 2), lambda: IntegratedGradients(model).attribute(
                x, target=target, n_steps=50, internal_batch_size=50)),
        ]
        for name, reps, f in cases:
            if args.filter not in name:
                continue
            try:
                t = timed(reps, f)
            except RuntimeError as e:  # Captum's DeepLift refuses a ReLU module used twice
                print(f"{name:<25} {batch:>5}  Captum refused: {str(e).split('.')[0]}", flush=True)
                continue
            print(f"{name:<25} {batch:>5}  {t:>7.3f}  {batch / t:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
