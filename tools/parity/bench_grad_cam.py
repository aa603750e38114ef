#!/usr/bin/env python3
"""Times pytorch-grad-cam's GradCAM and ScoreCAM at `layer4` of ResNet-18 (224x224, random weights)
at batch 1 and 8, with 2 torch threads: the reference for firelight's `cargo bench --bench cam`.
GradCAM: median of --reps runs after a warm-up; ScoreCAM (batch_size 16, as its default): one run,
after the GradCAM runs warmed up.

    python tools/parity/bench_grad_cam.py [--reps 3] [--threads 2]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_captum import timed  # noqa: E402
from models import ResNet18, randomize_batch_norm  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from pytorch_grad_cam import GradCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    model = randomize_batch_norm(ResNet18(), torch.Generator().manual_seed(0)).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("case                      batch  seconds  inputs/s")
    for batch in [1, 8]:
        x = torch.randn(batch, 3, 224, 224)
        targets = [ClassifierOutputTarget((i * 97) % 1000) for i in range(batch)]

        def gradcam():
            with GradCAM(model=model, target_layers=[model.layer4]) as cam:
                cam(input_tensor=x, targets=targets)

        t = timed(args.reps, gradcam)
        print(f"{'gradcam':<25} {batch:>5}  {t:>7.3f}  {batch / t:>8.3f}", flush=True)
        start = time.perf_counter()
        with ScoreCAM(model=model, target_layers=[model.layer4]) as cam:
            cam(input_tensor=x, targets=targets)
        t = time.perf_counter() - start
        print(f"{'scorecam':<25} {batch:>5}  {t:>7.3f}  {batch / t:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
