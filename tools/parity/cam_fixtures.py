#!/usr/bin/env python3
"""CAM parity fixture: pytorch-grad-cam (PyPI `grad-cam`) on the ResNet-18 ONNX parity model.

Model: export_resnet18_onnx.build_model() -- torchvision resnet18() with the generated weights that
tests/fixtures/onnx_resnet18/model.onnx was exported from (ReLUs set inplace=False there). Input and
targets are those of tests/fixtures/onnx_resnet18 (input.npy, manifest.json "targets"); the script
asserts that torch's logits still equal logits_torch.npy and that the targets are still the top-1.

Writes tests/fixtures/cam_resnet18/:
  input.npy                         copy of onnx_resnet18/input.npy, [2, 3, 112, 112]
  <method>_<layer>.npy              grayscale CAM, float32 [2, 112, 112], for method in METHODS and
                                    layer in {layer3, layer4}:
                                    Method(model, target_layers=[layer])(input_tensor=x,
                                        targets=[ClassifierOutputTarget(t) for t in targets])
  gradcam_layer3+layer4.npy         GradCAM with target_layers=[layer3, layer4] (mean aggregation)
  activations_<layer>.npy           forward output of the layer, [2, C, h, w]
  gradients_<layer>.npy             d(sum_i logits[i, targets[i]]) / d(activations), [2, C, h, w]
                                    (the loss pytorch-grad-cam backpropagates)
  eigencam_projection_<layer>.npy   get_2d_projection(activations), before ReLU / scaling, [2, h, w]
  eigengradcam_projection_<layer>.npy  get_2d_projection(grads * activations), same
  manifest.json                     versions, methods, layers (torch + ONNX tensor names), targets,
                                    shapes, the pipeline and per-method formulas quoted from the
                                    installed package source, and the self-checks' results

ONNX tensor names are read from the ONNX graph (not hard-coded): layer4 = input of
/avgpool/GlobalAveragePool, layer3 = input of /layer4/layer4.0/conv1/Conv (the same rule as
export_resnet18_onnx.py's LAYERS); both are the block's second ReLU (relu_1) output.

Self-checks: the pipeline re-implemented here in numpy from the saved activations/gradients (weights,
ReLU, per-image min-max, cv2.resize INTER_LINEAR, aggregation + second min-max) reproduces every
saved CAM; GradCAM is unchanged when the model's ReLUs are in-place (torchvision default).

    pip install grad-cam --no-deps && pip install ttach opencv-python-headless scipy scikit-learn
    python tools/parity/cam_fixtures.py
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_resnet18_onnx import build_model  # noqa: E402
from onnx_common import block_output, save  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SRC = os.path.join(ROOT, "tests", "fixtures", "onnx_resnet18")

# (file-name slug, class name in pytorch_grad_cam)
METHODS = [("gradcam", "GradCAM"), ("hirescam", "HiResCAM"),
           ("gradcamelementwise", "GradCAMElementWise"), ("gradcamplusplus", "GradCAMPlusPlus"),
           ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM"), ("eigencam", "EigenCAM"),
           ("eigengradcam", "EigenGradCAM")]
# (torch module name, ONNX node whose first input is the module's output, expected tensor name)
LAYERS = [("layer3", "/layer4/layer4.0/conv1/Conv", "/layer3/layer3.1/relu_1/Relu_output_0"),
          ("layer4", "/avgpool/GlobalAveragePool", "/layer4/layer4.1/relu_1/Relu_output_0")]

# Quoted from the installed package source (verified against it at run time by `quote_check`).
PIPELINE = {
    "loss": "loss = sum([target(output) for target, output in zip(targets, outputs)]); "
            "ClassifierOutputTarget(c)(out) = out[c] (out is one sample's logits row); "
            "loss.backward(retain_graph=True)",
    "hooks": "activations: forward hook on each target module (output.cpu().detach()); gradients: "
             "forward hook registers output.register_hook(_store_grad), which prepends: "
             "self.gradients = [grad] + self.gradients -> both lists end up in forward order, and "
             "compute_cam_per_layer pairs them with target_layers by index (so target_layers must "
             "be listed in forward order for multi-layer use)",
    "get_cam_image (default, weight methods)": "weights = get_cam_weights(...)  # [N, C]; "
             "weighted_activations = weights[:, :, None, None] * activations; "
             "cam = weighted_activations.sum(axis=1)",
    "per layer": "cam = get_cam_image(...); cam = np.maximum(cam, 0); "
                 "scaled = scale_cam_image(cam, target_size)  # target_size = (W, H) of input",
    "scale_cam_image": "for img in cam: img = img - np.min(img); img = img / (1e-7 + np.max(img)); "
                       "if target_size is not None: img = cv2.resize(np.float32(img), target_size); "
                       "result = np.float32(result)",
    "cv2.resize interpolation": "default flag = cv2.INTER_LINEAR (bilinear, half-pixel centres "
                                "src = (dst + 0.5) * in/out - 0.5, edge-clamped; no antialias); "
                                "dsize = (width, height)",
    "aggregate_multi_layers": "c = np.concatenate(cam_per_target_layer, axis=1)  # [N, L, H, W]; "
                              "c = np.maximum(c, 0); result = np.mean(c, axis=1); "
                              "return scale_cam_image(result)  # no resize: a SECOND per-image "
                              "min-max, applied even with one layer",
    "min-max note": "the second min-max is applied to an image already in [0, ~1): with one layer it "
                    "is (img - min) / (1e-7 + max(img - min)) again (min is 0 unless the whole "
                    "resized map is > 0)",
}
FORMULAS = {
    "GradCAM": "weights = np.mean(grads, axis=(2, 3))",
    "HiResCAM": "cam = (grads * activations).sum(axis=1)  # overrides get_cam_image",
    "GradCAMElementWise": "cam = np.maximum(grads * activations, 0).sum(axis=1)  # overrides "
                          "get_cam_image",
    "GradCAMPlusPlus": "grads_power_2 = grads**2; grads_power_3 = grads_power_2 * grads; "
                       "sum_activations = np.sum(activations, axis=(2, 3))[:, :, None, None]; "
                       "eps = 0.000001; aij = grads_power_2 / (2 * grads_power_2 + "
                       "sum_activations * grads_power_3 + eps); "
                       "aij = np.where(grads != 0, aij, 0); "
                       "weights = np.maximum(grads, 0) * aij; weights = np.sum(weights, axis=(2, 3))",
    "XGradCAM": "sum_activations = np.sum(activations, axis=(2, 3))[:, :, None, None]; eps = 1e-7; "
                "weights = grads * activations / (sum_activations + eps); "
                "weights = weights.sum(axis=(2, 3))",
    "LayerCAM": "cam = (np.maximum(grads, 0) * activations).sum(axis=1)  # overrides get_cam_image",
    "EigenCAM": "cam = get_2d_projection(activations)  # uses_gradients=False: no backward",
    "EigenGradCAM": "cam = get_2d_projection(grads * activations)",
    "get_2d_projection": "a = batch.copy(); a[np.isnan(a)] = 0; per sample: "
                         "r = activations.reshape(C, -1).transpose()  # [h*w, C]; "
                         "r = r - r.mean(axis=0); U, S, VT = np.linalg.svd(r, full_matrices=True); "
                         "projection = r @ VT[0, :]; projection.reshape(h, w); "
                         "return np.float32(projections). NO sign fix: the sign of VT[0] is "
                         "whatever LAPACK (gesdd, float32 here since r is float32) returns; the "
                         "projection is then ReLU'd and min-max scaled, so a flipped sign gives a "
                         "different CAM",
}
# substrings that must occur in the installed source (guards against a package update)
QUOTES = {
    "grad_cam.py": ["np.mean(grads, axis=(2, 3))"],
    "hirescam.py": ["elementwise_activations = grads * activations"],
    "grad_cam_elementwise.py": ["np.maximum(grads * activations, 0)"],
    "grad_cam_plusplus.py": ["eps = 0.000001", "aij = np.where(grads != 0, aij, 0)",
                             "weights = np.maximum(grads, 0) * aij"],
    "xgrad_cam.py": ["eps = 1e-7"],
    "layer_cam.py": ["np.maximum(grads, 0) * activations"],
    "eigen_cam.py": ["get_2d_projection(activations)", "uses_gradients=False"],
    "eigen_grad_cam.py": ["get_2d_projection(grads * activations)"],
    "base_cam.py": ["cam = np.maximum(cam, 0)", "scale_cam_image(cam, target_size)",
                    "result = np.mean(cam_per_target_layer, axis=1)",
                    "return scale_cam_image(result)"],
    "utils/image.py": ["img = img / (1e-7 + np.max(img))",
                       "img = cv2.resize(np.float32(img), target_size)"],
    "utils/svd_on_activations.py": ["projection = reshaped_activations @ VT[0, :]"],
}


def quote_check():
    import pytorch_grad_cam
    d = os.path.dirname(pytorch_grad_cam.__file__)
    for f, quotes in QUOTES.items():
        text = open(os.path.join(d, f)).read()
        for q in quotes:
            assert q in text, (f, q)


def onnx_names():
    import onnx
    g = onnx.load(os.path.join(SRC, "model.onnx"), load_external_data=False).graph
    names = {}
    for layer, consumer, expected in LAYERS:
        names[layer] = block_output(g, consumer)
        assert names[layer] == expected, (layer, names[layer], expected)
    return names


def acts_and_grads(model, x, targets, layer_names):
    """Forward outputs of the modules and the gradients of sum_i logits[i, targets[i]] w.r.t. them."""
    modules = dict(model.named_modules())
    acts, hooks = {}, []
    for n in layer_names:
        def rec(_m, _i, out, n=n):
            out.retain_grad()
            acts[n] = out
        hooks.append(modules[n].register_forward_hook(rec))
    model.zero_grad()
    logits = model(x)
    sum(logits[i, t] for i, t in enumerate(targets)).backward()
    for h in hooks:
        h.remove()
    return ({n: a.detach().numpy().copy() for n, a in acts.items()},
            {n: a.grad.detach().numpy().copy() for n, a in acts.items()})


def projection(batch):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
    return get_2d_projection(batch)


def reference_cam(method, a, g):
    """Low-resolution CAM [N, h, w] before ReLU, re-implemented from the formulas above."""
    s = a.sum(axis=(2, 3))[:, :, None, None]
    if method == "GradCAM":
        w = g.mean(axis=(2, 3))
    elif method == "GradCAMPlusPlus":
        g2 = g ** 2
        aij = g2 / (2 * g2 + s * (g2 * g) + 0.000001)
        aij = np.where(g != 0, aij, 0)
        w = (np.maximum(g, 0) * aij).sum(axis=(2, 3))
    elif method == "XGradCAM":
        w = (g * a / (s + 1e-7)).sum(axis=(2, 3))
    elif method == "HiResCAM":
        return (g * a).sum(axis=1)
    elif method == "GradCAMElementWise":
        return np.maximum(g * a, 0).sum(axis=1)
    elif method == "LayerCAM":
        return (np.maximum(g, 0) * a).sum(axis=1)
    elif method == "EigenCAM":
        return projection(a)
    elif method == "EigenGradCAM":
        return projection(g * a)
    return (w[:, :, None, None] * a).sum(axis=1)


def minmax(img):
    img = img - np.min(img)
    return img / (1e-7 + np.max(img))


def reference_pipeline(cams, size):
    """cams: list of low-res [N, h, w] per layer -> [N, H, W], as base_cam.py does."""
    import cv2
    per_layer = []
    for cam in cams:
        cam = np.maximum(cam, 0)
        per_layer.append(np.float32([cv2.resize(np.float32(minmax(c)), (size[1], size[0]),
                                                interpolation=cv2.INTER_LINEAR) for c in cam]))
    c = np.maximum(np.stack(per_layer, axis=1), 0).mean(axis=1)
    return np.float32([minmax(i) for i in c])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "cam_resnet18"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import cv2
    import pytorch_grad_cam
    from importlib.metadata import version
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    quote_check()
    names = onnx_names()
    with open(os.path.join(SRC, "manifest.json")) as f:
        src_manifest = json.load(f)
    targets = [int(t) for t in src_manifest["targets"]]
    shutil.copyfile(os.path.join(SRC, "input.npy"), os.path.join(args.out, "input.npy"))
    x = torch.from_numpy(np.load(os.path.join(args.out, "input.npy")))
    size = tuple(x.shape[2:])

    torch.manual_seed(0)
    model, _ = build_model()
    with torch.no_grad():
        logits = model(x).numpy()
    logit_diff = float(np.abs(logits - np.load(os.path.join(SRC, "logits_torch.npy"))).max())
    assert logit_diff <= 1e-5, logit_diff
    assert [int(i) for i in logits.argmax(1)] == targets, (logits.argmax(1), targets)

    layer_names = [l for l, _, _ in LAYERS]
    acts, grads = acts_and_grads(model, x, targets, layer_names)
    modules = dict(model.named_modules())
    cam_targets = lambda: [ClassifierOutputTarget(t) for t in targets]  # noqa: E731

    files, checks = [], {}
    for layer in layer_names:
        save(args.out, f"activations_{layer}.npy", acts[layer])
        save(args.out, f"gradients_{layer}.npy", grads[layer])
        save(args.out, f"eigencam_projection_{layer}.npy", projection(acts[layer]))
        save(args.out, f"eigengradcam_projection_{layer}.npy",
             projection(grads[layer] * acts[layer]))
        files += [f"activations_{layer}.npy", f"gradients_{layer}.npy",
                  f"eigencam_projection_{layer}.npy", f"eigengradcam_projection_{layer}.npy"]

    def run(cls_name, layers, model=model):
        cls = getattr(pytorch_grad_cam, cls_name)
        with cls(model=model, target_layers=[dict(model.named_modules())[l] for l in layers]) as cam:
            out = cam(input_tensor=x, targets=cam_targets())
        out = np.asarray(out)
        assert out.dtype == np.float32 and out.shape == (x.shape[0],) + size, out.shape
        return out

    cases = []
    for slug, cls_name in METHODS:
        for layer in layer_names:
            out = run(cls_name, [layer])
            name = f"{slug}_{layer}.npy"
            save(args.out, name, out)
            ref = reference_pipeline([reference_cam(cls_name, acts[layer], grads[layer])], size)
            diff = float(np.abs(ref - out).max())
            cases.append({"method": cls_name, "layers": [layer], "file": name,
                          "reference_max_abs_diff": diff})
            print(f"  {name:<32} reference max abs diff {diff:.2e}")
            assert diff <= 1e-4, (name, diff)
    out = run("GradCAM", ["layer3", "layer4"])
    name = "gradcam_layer3+layer4.npy"
    save(args.out, name, out)
    ref = reference_pipeline([reference_cam("GradCAM", acts[l], grads[l])
                              for l in ["layer3", "layer4"]], size)
    diff = float(np.abs(ref - out).max())
    print(f"  {name:<32} reference max abs diff {diff:.2e}")
    assert diff <= 1e-4, (name, diff)
    cases.append({"method": "GradCAM", "layers": ["layer3", "layer4"], "file": name,
                  "aggregation": "mean over layers, then min-max", "reference_max_abs_diff": diff})

    # In-place ReLUs (torchvision's default): the hooked outputs are block outputs that nothing
    # modifies afterwards, so CAMs must not change.
    inplace_model, _ = build_model()
    for m in inplace_model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True
    inplace_diff = {l: float(np.abs(run("GradCAM", [l], inplace_model)
                                    - np.load(os.path.join(args.out, f"gradcam_{l}.npy"))).max())
                    for l in layer_names}
    print("  in-place ReLU GradCAM max abs diff", inplace_diff)
    checks["inplace_relu_gradcam_max_abs_diff"] = inplace_diff
    checks["logits_vs_onnx_resnet18_logits_torch_max_abs_diff"] = logit_diff

    manifest = {
        "generator": "tools/parity/cam_fixtures.py",
        "source_fixture": "tests/fixtures/onnx_resnet18 (model.onnx, input.npy, targets)",
        "model": "export_resnet18_onnx.build_model(): torchvision resnet18(), generated weights, "
                 "ReLU inplace=False",
        "input": {"file": "input.npy", "shape": list(x.shape)},
        "targets": targets,
        "target_kind": "ClassifierOutputTarget(t) per sample: the raw logit, no softmax",
        "methods": [c for _, c in METHODS],
        "method_files": {c: s for s, c in METHODS},
        "layers": {l: {"onnx": names[l], "activation_shape": list(acts[l].shape),
                       "activations": f"activations_{l}.npy", "gradients": f"gradients_{l}.npy",
                       "eigencam_projection": f"eigencam_projection_{l}.npy",
                       "eigengradcam_projection": f"eigengradcam_projection_{l}.npy"}
                   for l in layer_names},
        "cam_shape": [int(x.shape[0]), *size],
        "cases": cases,
        "pipeline": PIPELINE,
        "formulas": FORMULAS,
        "checks": checks,
        "versions": {"grad-cam": version("grad-cam"), "torch": torch.__version__,
                     "numpy": np.__version__, "opencv": cv2.__version__,
                     "ttach": version("ttach")},
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(files) + len(cases) + 2} files to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
