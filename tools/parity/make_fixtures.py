#!/usr/bin/env python3
"""Captum parity fixtures for firelight-grad.

Builds tools/parity/models.py's SmallCnn with fixed-seed weights, runs every gradient method of
Captum on fixed inputs and targets, and writes under tests/fixtures/small_cnn/:
  weights/<state_dict key>.npy, inputs.npy, baselines.npy, baseline_distribution.npy,
  <case>.npy (expected attributions), <case>.delta.npy (convergence deltas), manifest.json.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch captum numpy
        /tmp/fl/bin/python tools/parity/make_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
from captum.attr import (
    Deconvolution,
    GradientShap,
    LayerGradientShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerActivation,
    LayerConductance,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    NoiseTunnel,
    Saliency,
)

sys.path.insert(0, os.path.dirname(__file__))
from models import SmallCnn, randomize_batch_norm  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "small_cnn")
TARGETS = [3, 7, 0, 9]


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


def main():
    torch.manual_seed(0)
    os.makedirs(os.path.join(OUT, "weights"), exist_ok=True)
    g = torch.Generator().manual_seed(1)
    model = randomize_batch_norm(SmallCnn(), g).eval()
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        save(os.path.join("weights", key + ".npy"), value.detach().numpy())
    modules = dict(model.named_modules())

    inputs = torch.randn(4, 3, 16, 16, generator=g)
    baselines = 0.1 * torch.randn(4, 3, 16, 16, generator=g)
    distribution = 0.3 * torch.randn(6, 3, 16, 16, generator=g)
    save("inputs.npy", inputs.numpy())
    save("baselines.npy", baselines.numpy())
    save("baseline_distribution.npy", distribution.numpy())
    target = torch.tensor(TARGETS)
    with torch.no_grad():
        save("logits.npy", model(inputs).numpy())

    cases = []

    def case(name, kind, attr, delta=None, tolerance="deterministic", **params):
        save(name + ".npy", attr.detach().numpy())
        entry = {"name": name, "method": kind, "params": params, "tolerance": tolerance}
        if delta is not None:
            save(name + ".delta.npy", delta.detach().numpy())
            entry["delta"] = True
        cases.append(entry)

    x = inputs.clone().requires_grad_()
    case("saliency_abs", "saliency", Saliency(model).attribute(x, target=target), abs=True)
    case("saliency_signed", "saliency", Saliency(model).attribute(x, target=target, abs=False), abs=False)
    case("input_x_gradient", "input_x_gradient", InputXGradient(model).attribute(x, target=target))
    case("guided_backprop", "guided_backprop", GuidedBackprop(model).attribute(x, target=target))
    case("deconvolution", "deconvolution", Deconvolution(model).attribute(x, target=target))

    ig = IntegratedGradients(model)
    a, d = ig.attribute(x, target=target, return_convergence_delta=True)
    case("ig_default", "integrated_gradients", a, d, n_steps=50, method="gausslegendre", baselines="zeros")
    for method in ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]:
        a, d = ig.attribute(x, baselines=baselines, target=target, n_steps=20, method=method,
                            return_convergence_delta=True)
        case("ig_" + method, "integrated_gradients", a, d, n_steps=20, method=method, baselines="tensor")
    a = IntegratedGradients(model, multiply_by_inputs=False).attribute(
        x, baselines=baselines, target=target, n_steps=20)
    case("ig_local", "integrated_gradients", a, n_steps=20, method="gausslegendre", baselines="tensor",
         multiply_by_inputs=False)

    a = LayerActivation(model, modules["layer1.add"]).attribute(x)
    case("layer_activation_layer1_add", "layer_activation", a, layer="layer1.add")
    a = LayerGradientXActivation(model, modules["conv2"]).attribute(x, target=target)
    case("layer_gxa_conv2", "layer_gradient_x_activation", a, layer="conv2")
    for layer in ["layer1.relu1", "conv2"]:
        lig = LayerIntegratedGradients(model, modules[layer])
        a, d = lig.attribute(x, baselines=baselines, target=target, n_steps=20, return_convergence_delta=True)
        case("layer_ig_" + layer.replace(".", "_"), "layer_integrated_gradients", a, d,
             layer=layer, n_steps=20, method="gausslegendre", baselines="tensor")
        lc = LayerConductance(model, modules[layer])
        a, d = lc.attribute(x, baselines=baselines, target=target, n_steps=20, return_convergence_delta=True)
        case("layer_conductance_" + layer.replace(".", "_"), "layer_conductance", a, d,
             layer=layer, n_steps=20, method="gausslegendre", baselines="tensor")

    # Stochastic methods: the expectation, estimated with many samples, is what must agree.
    torch.manual_seed(2)
    np.random.seed(2)
    n = 4000
    a = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=500, stdevs=0.2, target=target, abs=False)
    case("smoothgrad_saliency", "noise_tunnel_saliency", a, tolerance="statistical",
         nt_type="smoothgrad", nt_samples=n, stdevs=0.2, abs=False)
    a = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="vargrad", nt_samples=n, nt_samples_batch_size=500, stdevs=0.2, target=target, abs=False)
    case("vargrad_saliency", "noise_tunnel_saliency", a, tolerance="statistical",
         nt_type="vargrad", nt_samples=n, stdevs=0.2, abs=False)
    a = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad_sq", nt_samples=n, nt_samples_batch_size=500, stdevs=0.2, target=target, abs=False)
    case("smoothgrad_sq_saliency", "noise_tunnel_saliency", a, tolerance="statistical",
         nt_type="smoothgrad_sq", nt_samples=n, stdevs=0.2, abs=False)
    a = GradientShap(model).attribute(x, baselines=distribution, n_samples=n, stdevs=0.1, target=target)
    case("gradient_shap", "gradient_shap", a, tolerance="statistical", n_samples=n, stdevs=0.1)
    a = LayerGradientShap(model, modules["conv2"]).attribute(
        x, baselines=distribution, n_samples=n, stdevs=0.1, target=target)
    case("layer_gradient_shap_conv2", "layer_gradient_shap", a, tolerance="statistical",
         layer="conv2", n_samples=n, stdevs=0.1)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({
            "generator": "tools/parity/make_fixtures.py",
            "torch": torch.__version__,
            "captum": __import__("captum").__version__,
            "targets": TARGETS,
            "cases": cases,
        }, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
