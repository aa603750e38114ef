#!/usr/bin/env python3
"""TCAV speed and memory next to Captum: one concept + 10 random concepts, 3 layers, 50 inputs,
EfficientNet-Lite0 (tools/models/export_efficientnet_lite0.py builds the torch model the bundled ONNX
file was exported from).

    /work/pyenv/bin/python tools/parity/bench_tcav_captum.py --make-data /tmp/tcav_bench
    /usr/bin/time -v /work/pyenv/bin/python tools/parity/bench_tcav_captum.py --data /tmp/tcav_bench
    cargo run --release --example tcav_bench -- /tmp/tcav_bench

Data (--make-data, tools/models/textures.py, 32x32 PNGs upscaled by the preprocessing):
  concept/       20 striped textures (seed 2001)
  random_0..9/   10 random concepts of 20 images each (make_mixed, seed 2002)
  inputs/        50 striped textures (seed 2003), explained for ImageNet class 340 ("zebra")
Captum: `TCAV(model, layers=["_blocks.5", "_blocks.10", "_blocks.15"]).interpret(inputs,
experimental_sets=[[concept, random_k] for k in 0..9], target=340)` with its defaults
(LayerGradientXActivation without inputs = gradients, DefaultClassifier, activations saved under a
fresh temporary save_path), concept batches of 20 (one batch per concept), torch threads = --threads.
Prints wall time of interpret (CAV training included) and the process's peak RSS (ru_maxrss).
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LAYERS = ["_blocks.5", "_blocks.10", "_blocks.15"]
ZEBRA = 340


def make_data(out):
    sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
    import textures
    from PIL import Image

    def write(folder, images):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img).save(os.path.join(out, folder, f"{i:03d}.png"))

    write("concept", textures.make("striped", 20, 2001))
    pool = textures.make_mixed(200, 2002)
    for k in range(10):
        write(f"random_{k}", pool[20 * k:20 * (k + 1)])
    write("inputs", textures.make("striped", 50, 2003))


def load(folder):
    sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
    from export_efficientnet_lite0 import preprocess
    import torch
    files = sorted(os.listdir(folder))
    return torch.cat([preprocess(os.path.join(folder, f)) for f in files])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-data")
    ap.add_argument("--data")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.make_data:
        make_data(args.make_data)
        return
    warnings.filterwarnings("ignore")
    import torch
    from captum.concept import TCAV, Concept
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
    from export_efficientnet_lite0 import build_model
    model = build_model()
    t_load = time.perf_counter()
    concept_x = load(os.path.join(args.data, "concept"))
    randoms_x = [load(os.path.join(args.data, f"random_{k}")) for k in range(10)]
    inputs = load(os.path.join(args.data, "inputs"))
    t_load = time.perf_counter() - t_load

    def concept(i, name, x):
        return Concept(i, name, torch.utils.data.DataLoader(x, batch_size=len(x)))

    c = concept(0, "striped", concept_x)
    rs = [concept(k + 1, f"random_{k}", x) for k, x in enumerate(randoms_x)]
    with tempfile.TemporaryDirectory() as save:
        tcav = TCAV(model, layers=LAYERS, save_path=save)
        start = time.perf_counter()
        scores = tcav.interpret(inputs, experimental_sets=[[c, r] for r in rs], target=ZEBRA)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = next(iter(scores.values()))
    print(json.dumps({"captum_seconds": round(seconds, 2), "image_loading_seconds": round(t_load, 2),
                      "peak_rss_mib": round(peak), "threads": args.threads,
                      "sign_count_first_set": {l: first[l]["sign_count"].tolist() for l in LAYERS}}))


if __name__ == "__main__":
    main()
