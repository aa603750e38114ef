#!/usr/bin/env python3
"""Captum parity fixtures for firelight's DeepLift, DeepLiftShap and neuron methods
(tests/deeplift.rs, tests/neuron.rs).

Writes under tests/fixtures/deeplift/:
  small_cnn_*.npy   DeepLift / DeepLiftShap of tools/parity/models.py's SmallCnn with the weights,
                    inputs, targets and baselines of tests/fixtures/small_cnn (ReLUs used once each,
                    a 2x2 max pool right after a ReLU, where Captum 0.9 misses completeness);
  zoo.onnx, zoo_*.npy  an MLP whose every nonlinearity (ReLU, ELU, LeakyReLU, Sigmoid, Tanh,
                    Softplus) is a module used once, exported to ONNX, with Captum's DeepLift;
  reused.onnx, reused_*.npy  a network that calls one ReLU module twice and a functional ReLU
                    (captum#1082), with Captum's attributions and convergence deltas, which are not
                    zero: firelight must satisfy completeness there instead;
  cnn.onnx, cnn_*.npy  convolutions with a 2x2 max pool and ReLU / Tanh, no two nonlinearities
                    adjacent: the CNN where Captum 0.9 is right (DeepLift, local multipliers,
                    DeepLiftShap over cnn_distribution.npy);
  overlap.onnx, overlap_*.npy  a CNN with ResNet's overlapping 3x3 stride-2 max pool, where
                    Captum's max_unpool keeps one of the overlapping contributions;
  cnn_neuron_*.npy  Captum's NeuronConductance (one unit, to the targets), NeuronGradient, NeuronIntegratedGradients, NeuronGuidedBackprop,
                    NeuronDeconvolution, NeuronDeepLift and NeuronFeatureAblation of the CNN at
                    conv3, for one unit and for a box of units;
  cnn_layer_*.npy, cnn_guided_grad_cam.npy, cnn_internal_influence*.npy  Captum's
                    InternalInfluence, LayerDeepLift, LayerGradCam (plain,
                    relu_attributions, attr_dim_summation=False) and GuidedGradCam at conv3;
  cnn_shap_deep_explainer.npy  shap's DeepExplainer of the CNN over cnn_distribution.npy;
  softmax.onnx, softmax_*.npy  Linear, Softmax, Linear with Captum's DeepLift one sample at a time;
  log_softmax.onnx  Linear, LogSoftmax, Linear: refused by firelight's DeepLift, naming the node;
  manifest.json     versions and the convergence deltas Captum reached.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch captum shap numpy onnx
        /tmp/fl/bin/python tools/parity/deeplift_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from models import SmallCnn  # noqa: E402

import captum  # noqa: E402
from captum.attr import DeepLift, DeepLiftShap  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "deeplift")
SMALL = os.path.join(ROOT, "tests", "fixtures", "small_cnn")
TARGETS = [3, 7, 0, 9]


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(np.asarray(array), dtype=np.float32))


def small_cnn():
    model = SmallCnn()
    state = model.state_dict()
    for key in state:
        if not key.endswith("num_batches_tracked"):
            state[key] = torch.from_numpy(np.load(os.path.join(SMALL, "weights", key + ".npy")))
    model.load_state_dict(state)
    return model.eval()


class Zoo(nn.Module):
    """Every Captum-supported element-wise nonlinearity once: input [N, 6], output [N, 3]."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act1 = nn.Linear(6, 12), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(12, 12), nn.ELU(alpha=0.7)
        self.fc3, self.act3 = nn.Linear(12, 12), nn.LeakyReLU(0.05)
        self.fc4, self.act4 = nn.Linear(12, 12), nn.Sigmoid()
        self.fc5, self.act5 = nn.Linear(12, 12), nn.Tanh()
        self.fc6, self.act6 = nn.Linear(12, 12), nn.Softplus()
        self.fc7 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.act1(self.fc1(x))
        x = self.act2(self.fc2(x))
        x = self.act3(self.fc3(x))
        x = self.act4(self.fc4(x))
        x = self.act5(self.fc5(x))
        x = self.act6(self.fc6(x))
        return self.fc7(x)


class Reused(nn.Module):
    """A ReLU module, then functional ReLUs (captum#1082): Captum's hooks see only the module, so
    the functional ones pass plain gradients and completeness fails. (Calling the one module twice
    makes Captum raise instead; the manifest records that message.)"""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(8, 8)
        self.fc4 = nn.Linear(8, 2)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        return self.fc4(x)


class Cnn(nn.Module):
    """Convolutions, a 2x2 max pool and nonlinearities, no two nonlinearities adjacent (Captum
    0.9's hooks mis-handle a nonlinearity fed straight by another, captum#1104)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 6, 1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(6, 8, 3, padding=1)
        self.tanh = nn.Tanh()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(self.conv2(self.relu1(self.conv1(x))))
        x = self.tanh(self.conv3(x))
        return self.fc(torch.flatten(self.avg(x), 1))


class Overlap(nn.Module):
    """ResNet's stem pooling: 3x3 max pool, stride 2, padding 1 (overlapping windows)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.avg(x), 1))


def export(model, example, name):
    torch.onnx.export(
        model, example, os.path.join(OUT, name), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
        dynamo=False,
    )


def deeplift(model, x, targets, baselines, name, notes, multiply=True):
    explainer = DeepLift(model, multiply_by_inputs=multiply)
    attr, delta = explainer.attribute(
        x, baselines=baselines, target=targets, return_convergence_delta=True)
    save(f"{name}.npy", attr.detach().numpy())
    notes[name] = {"captum_delta_max_abs": float(delta.abs().max())}
    return attr, delta


def neurons(net, x, refs, notes):
    """Captum's neuron methods at the CNN's conv3 output (ONNX `/conv3/Conv_output_0`), one unit
    (2, 3, 3) and the box (0:4, 1:3, 2:5) of units summed."""
    from captum.attr import (NeuronConductance, NeuronDeconvolution, NeuronDeepLift,
                             NeuronFeatureAblation, NeuronGradient, NeuronGuidedBackprop,
                             NeuronIntegratedGradients)
    layer = net.conv3
    targets = [i % 4 for i in range(x.shape[0])]
    save("cnn_neuron_conductance_unit.npy", NeuronConductance(net, layer).attribute(
        x, (2, 3, 3), baselines=refs, target=targets).detach().numpy())
    save("cnn_neuron_conductance_gausslegendre_unit.npy", NeuronConductance(net, layer).attribute(
        x, (2, 3, 3), baselines=refs, target=targets, n_steps=32,
        method="gausslegendre").detach().numpy())
    selectors = {"unit": (2, 3, 3), "box": (slice(0, 4), slice(1, 3), slice(2, 5))}
    for sel_name, sel in selectors.items():
        cases = {
            "neuron_gradient": lambda: NeuronGradient(net, layer).attribute(x, sel),
            "neuron_integrated_gradients": lambda: NeuronIntegratedGradients(net, layer).attribute(
                x, sel, baselines=refs),
            "neuron_guided_backprop": lambda: NeuronGuidedBackprop(net, layer).attribute(x, sel),
            "neuron_deconvolution": lambda: NeuronDeconvolution(net, layer).attribute(x, sel),
            "neuron_deeplift": lambda: NeuronDeepLift(net, layer).attribute(x, sel, baselines=refs),
            "neuron_feature_ablation": lambda: NeuronFeatureAblation(net, layer).attribute(
                x, sel, baselines=refs),
        }
        for name, run in cases.items():
            save(f"cnn_{name}_{sel_name}.npy", run().detach().numpy())
    notes["neurons"] = {"layer": "/conv3/Conv_output_0", "unit": [2, 3, 3],
                        "box": [[0, 4], [1, 3], [2, 5]]}


def layer_methods(net, x, refs, targets):
    """Captum's InternalInfluence (Gauss-Legendre 50, Riemann trapezoid 20), LayerDeepLift, LayerGradCam (as is, with relu_attributions, without the channel
    sum) and GuidedGradCam at the CNN's conv3 output."""
    from captum.attr import GuidedGradCam, InternalInfluence, LayerDeepLift, LayerGradCam
    layer = net.conv3
    save("cnn_internal_influence.npy", InternalInfluence(net, layer).attribute(
        x, baselines=refs, target=targets).detach().numpy())
    save("cnn_internal_influence_riemann.npy", InternalInfluence(net, layer).attribute(
        x, baselines=refs, target=targets, n_steps=20, method="riemann_trapezoid").detach().numpy())
    save("cnn_layer_deeplift.npy", LayerDeepLift(net, layer).attribute(
        x, baselines=refs, target=targets).detach().numpy())
    cam = LayerGradCam(net, layer)
    save("cnn_layer_grad_cam.npy", cam.attribute(x, target=targets).detach().numpy())
    save("cnn_layer_grad_cam_relu.npy", cam.attribute(
        x, target=targets, relu_attributions=True).detach().numpy())
    save("cnn_layer_grad_cam_channels.npy", cam.attribute(
        x, target=targets, attr_dim_summation=False).detach().numpy())
    save("cnn_guided_grad_cam.npy", GuidedGradCam(net, layer).attribute(
        x, target=targets).detach().numpy())


def shap_deep_explainer(net, x, distribution, targets, notes):
    """shap's DeepExplainer (DeepLift averaged over the background, shap's own rules) on the CNN,
    the target class of each sample: cnn_shap_deep_explainer.npy."""
    import shap
    values = shap.DeepExplainer(net, distribution).shap_values(x, check_additivity=True)
    values = np.asarray(values)  # [N, C, H, W, classes]
    picked = np.stack([values[i, ..., t] for i, t in enumerate(targets)])
    save("cnn_shap_deep_explainer.npy", picked)
    notes["shap"] = shap.__version__


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    notes = {}

    model = small_cnn()
    x = torch.from_numpy(np.load(os.path.join(SMALL, "inputs.npy")))
    baselines = torch.from_numpy(np.load(os.path.join(SMALL, "baselines.npy")))
    distribution = torch.from_numpy(np.load(os.path.join(SMALL, "baseline_distribution.npy")))
    deeplift(model, x, TARGETS, baselines, "small_cnn_deeplift", notes)
    deeplift(model, x, TARGETS, 0.0 * x, "small_cnn_deeplift_zeros", notes)
    deeplift(model, x, TARGETS, baselines, "small_cnn_deeplift_local", notes, multiply=False)
    shap = DeepLiftShap(model).attribute(x, baselines=distribution, target=TARGETS)
    save("small_cnn_deeplift_shap.npy", shap.detach().numpy())

    g = torch.Generator().manual_seed(7)
    for name, net, shape, classes in [
        ("zoo", Zoo(), (4, 6), 3),
        ("reused", Reused(), (4, 5), 2),
        ("cnn", Cnn(), (3, 3, 12, 12), 4),
        ("overlap", Overlap(), (3, 3, 12, 12), 4),
    ]:
        net = net.eval()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.6)
        inputs = torch.randn(*shape, generator=g)
        refs = 0.2 * torch.randn(*shape, generator=g)
        targets = [i % classes for i in range(shape[0])]
        export(net, inputs, f"{name}.onnx")
        save(f"{name}_inputs.npy", inputs.numpy())
        save(f"{name}_baselines.npy", refs.numpy())
        save(f"{name}_targets.npy", np.array(targets))
        deeplift(net, inputs, targets, refs, f"{name}_deeplift", notes)
        if name == "cnn":
            deeplift(net, inputs, targets, refs, "cnn_deeplift_local", notes, multiply=False)
            distribution = 0.3 * torch.randn(5, *shape[1:], generator=g)
            save("cnn_distribution.npy", distribution.numpy())
            shap = DeepLiftShap(net).attribute(inputs, baselines=distribution, target=targets)
            save("cnn_deeplift_shap.npy", shap.detach().numpy())
            neurons(net, inputs, refs, notes)
            layer_methods(net, inputs, refs, targets)
            shap_deep_explainer(net, inputs, distribution, targets, notes)

    # A softmax inside the network: Captum's softmax rule, compared one sample at a time (Captum
    # centres the multipliers over the whole batch, firelight over each input-reference pair).
    head = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    export(head, torch.randn(2, 4), "softmax.onnx")
    sm_x = torch.randn(3, 4, generator=g)
    sm_refs = 0.3 * torch.randn(3, 4, generator=g)
    save("softmax_inputs.npy", sm_x.numpy())
    save("softmax_baselines.npy", sm_refs.numpy())
    per_sample = [DeepLift(head).attribute(sm_x[i:i + 1], baselines=sm_refs[i:i + 1], target=1)
                  for i in range(3)]
    save("softmax_deeplift.npy", torch.cat(per_sample).detach().numpy())
    # An operator without a DeepLift rule (in Captum or firelight): LogSoftmax.
    export(nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1), nn.Linear(3, 2)).eval(),
           torch.randn(2, 4), "log_softmax.onnx")

    class TwiceCalled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 2)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))

    try:
        DeepLift(TwiceCalled().eval()).attribute(torch.randn(2, 5), target=0)
        notes["captum_on_a_module_called_twice"] = "no error"
    except RuntimeError as e:
        notes["captum_on_a_module_called_twice"] = str(e).split(".")[0]

    manifest = {
        "captum": captum.__version__,
        "torch": torch.__version__,
        "targets": TARGETS,
        "cases": notes,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
