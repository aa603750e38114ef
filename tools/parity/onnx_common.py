"""Shared by the ONNX parity fixture scripts (export_resnet18_onnx.py, efficientnet_lite0_fixtures.py).

- `generate`: the deterministic weight generator that tests/common/onnx_weights.rs implements too;
- `onnx_output_of`: the ONNX tensor that holds a torch module's output, checked with onnxruntime;
- `captum_cases`: the attributions the Rust test compares (Saliency, Integrated Gradients, layer
  gradients), with `save` writing float32 .npy files, and how far float32 rounding alone moves
  each (the same attributions on a float64 copy of the model);
- `relu_pass_cases`: the same for Guided Backprop and Deconvolution (models with `nn.ReLU` only).
"""
import os

import numpy as np
import torch

GAMMA = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def splitmix64_reference(state: int, n: int):
    """The generator one step at a time (what the Rust side does): n outputs from `state`."""
    out = []
    for _ in range(n):
        state = (state + GAMMA) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def splitmix64(state: int, n: int) -> np.ndarray:
    """The same n outputs, vectorised: the i-th state is `state + (i + 1) * GAMMA` (mod 2^64)."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    z = np.uint64(state) + i * np.uint64(GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(z: np.ndarray) -> np.ndarray:
    """`((z >> 40) as f32) / 2^24 * 2 - 1`: in [-1, 1), every step exact in float32."""
    u = (z >> np.uint64(40)).astype(np.float32)
    return u / np.float32(16777216.0) * np.float32(2.0) - np.float32(1.0)


def generate(name: str, shape, offset: float, scale: float) -> np.ndarray:
    """Tensor `name`: element i (row-major) = offset + scale * u_i in float32, where u_i comes from
    splitmix64 seeded with fnv1a64(name)."""
    n = int(np.prod(shape, dtype=np.int64))
    u = uniform(splitmix64(fnv1a64(name.encode()), n))
    return (np.float32(offset) + np.float32(scale) * u).astype(np.float32).reshape(shape)


def self_test():
    seed = fnv1a64(b"conv1.weight")
    ref = splitmix64_reference(seed, 5)
    assert [int(v) for v in splitmix64(seed, 5)] == ref
    assert fnv1a64(b"") == 0xCBF29CE484222325 and fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    # splitmix64's published first output from state 0.
    assert splitmix64_reference(0, 1)[0] == 0xE220A8397B1DCDAF
    return {"name": "conv1.weight", "fnv1a64": f"{seed:016x}",
            "splitmix64": [f"{v:016x}" for v in ref],
            "u": [float(v) for v in uniform(np.array(ref, dtype=np.uint64))]}


def save(folder, name, array):
    np.save(os.path.join(folder, name), np.ascontiguousarray(np.asarray(array), dtype=np.float32))


def with_outputs(model_proto, names):
    """A copy of `model_proto` that also outputs the tensors `names` (float32, any shape)."""
    import onnx
    from onnx import TensorProto, helper
    m = onnx.ModelProto()
    m.CopyFrom(model_proto)
    for name in names:
        m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return m


def producer(graph, tensor):
    return next(n for n in graph.node if tensor in n.output)


def block_output(graph, consumer_node):
    """The tensor a block hands on: the first input of the node named `consumer_node`."""
    return next(n for n in graph.node if n.name == consumer_node).input[0]


def module_outputs(model, names, x):
    """Forward-hook outputs of torch modules `names` on input x."""
    modules = dict(model.named_modules())
    seen, hooks = {}, []
    def hook(name):
        def record(_module, _inputs, out):
            seen.setdefault(name, out.detach().clone())  # returns None: the output is unchanged
        return record

    for n in names:
        hooks.append(modules[n].register_forward_hook(hook(n)))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def check_layers(model, model_proto, layers, x, session_factory):
    """Asserts that each ONNX tensor holds its torch module's output; returns max abs diffs."""
    torch_out = module_outputs(model, [t for t, _ in layers], x)
    session = session_factory(with_outputs(model_proto, [o for _, o in layers]))
    onnx_names = [o for _, o in layers]
    values = session.run(onnx_names, {"input": x.numpy()})
    diffs = {}
    for (t, o), v in zip(layers, values):
        expected = torch_out[t].numpy()
        assert v.shape == expected.shape, (t, o, v.shape, expected.shape)
        diffs[t] = float(np.abs(v - expected).max())
        scale = float(np.abs(expected).max())
        assert diffs[t] <= 1e-4 * max(scale, 1.0), (t, o, diffs[t], scale)
        print(f"  {t:<16} = {o}  {tuple(v.shape)}  max abs diff {diffs[t]:.2e} (scale {scale:.2f})")
    return diffs


def attributions(model, x, targets, layers, n_steps=50, internal_batch_size=None):
    """{case name: (attributions, delta or None)} for Saliency (abs), Integrated Gradients (zero
    baseline, gausslegendre) and the target's gradient at each torch layer
    (LayerGradientXActivation, multiply_by_inputs=False), in the dtype of `model` and `x`."""
    from captum.attr import IntegratedGradients, LayerGradientXActivation, Saliency
    modules = dict(model.named_modules())
    target = torch.tensor(targets)
    xg = x.clone().requires_grad_()
    out = {"saliency": (Saliency(model).attribute(xg, target=target, abs=True), None)}
    out["integrated_gradients"] = IntegratedGradients(model).attribute(
        xg, target=target, n_steps=n_steps, method="gausslegendre",
        internal_batch_size=internal_batch_size, return_convergence_delta=True)
    for torch_name in layers:
        out["layer_gradient_" + slug(torch_name)] = (LayerGradientXActivation(
            model, modules[torch_name], multiply_by_inputs=False).attribute(xg, target=target), None)
    return {k: (a.detach().double().numpy(), None if d is None else d.detach().double().numpy())
            for k, (a, d) in out.items()}


def slug(torch_name):
    return torch_name.replace(".", "_").strip("_")


def rel_l2(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def captum_cases(model, x, targets, layers, out, n_steps=50, internal_batch_size=None):
    """Runs `attributions` on the float32 model (saved as the expected values) and on a float64
    copy: `float64_rel_l2`, the relative L2 distance between the two, is how far float32 rounding
    alone moves each result (the noise floor a third implementation cannot beat)."""
    import copy
    kw = dict(n_steps=n_steps, internal_batch_size=internal_batch_size)
    a32 = attributions(model, x, targets, [t for t, _ in layers], **kw)
    a64 = attributions(copy.deepcopy(model).double(), x.double(), targets, [t for t, _ in layers], **kw)
    noise = {k: rel_l2(a64[k][0], a32[k][0]) for k in a32}
    for k, v in noise.items():
        print(f"  {k:<28} float32 vs float64 rel L2 {v:.2e}")

    cases = []
    save(out, "saliency.npy", a32["saliency"][0])
    cases.append({"name": "saliency", "method": "saliency", "file": "saliency.npy", "abs": True,
                  "float64_rel_l2": noise["saliency"]})
    a, d = a32["integrated_gradients"]
    save(out, "integrated_gradients.npy", a)
    save(out, "integrated_gradients.delta.npy", d)
    cases.append({"name": "integrated_gradients", "method": "integrated_gradients",
                  "file": "integrated_gradients.npy", "delta": "integrated_gradients.delta.npy",
                  "n_steps": n_steps, "approximation": "gausslegendre", "baselines": "zeros",
                  "delta_values": [float(v) for v in d],
                  "float64_rel_l2": noise["integrated_gradients"]})
    for torch_name, onnx_name in layers:
        name = "layer_gradient_" + slug(torch_name)
        a = a32[name][0]
        save(out, name + ".npy", a)
        cases.append({"name": name, "method": "layer_gradient_x_activation",
                      "multiply_by_inputs": False, "file": name + ".npy",
                      "torch_layer": torch_name, "onnx_layer": onnx_name, "shape": list(a.shape),
                      "float64_rel_l2": noise[name]})
    return cases


def relu_pass_cases(model, x, targets, out):
    """Guided Backprop and Deconvolution (Captum's, which override the backward pass of every
    `nn.ReLU` module: the model's ReLUs must not be in-place), saved like `captum_cases`, with the
    float32 noise floor from a float64 copy of the model."""
    import copy
    from captum.attr import Deconvolution, GuidedBackprop
    target = torch.tensor(targets)
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))

    def run(m, xs):
        xg = xs.clone().requires_grad_()
        return {"guided_backprop": GuidedBackprop(m).attribute(xg, target=target),
                "deconvolution": Deconvolution(m).attribute(xg, target=target)}

    a32 = {k: v.detach().double().numpy() for k, v in run(model, x).items()}
    a64 = {k: v.detach().double().numpy()
           for k, v in run(copy.deepcopy(model).double(), x.double()).items()}
    cases = []
    for name, a in a32.items():
        noise = rel_l2(a64[name], a)
        print(f"  {name:<28} float32 vs float64 rel L2 {noise:.2e}")
        save(out, name + ".npy", a)
        cases.append({"name": name, "method": name, "file": name + ".npy",
                      "float64_rel_l2": noise})
    return cases


def versions():
    import captum
    import onnx
    import onnxruntime
    return {"torch": torch.__version__, "captum": captum.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def assert_generated(proto, rules):
    """Every initializer is a generated tensor and equals the generator's output exactly; returns
    the initializers' names in file order."""
    from onnx import TensorProto, numpy_helper
    names = [t.name for t in proto.graph.initializer]
    assert sorted(names) == sorted(rules), (set(names) ^ set(rules))
    for t in proto.graph.initializer:
        assert t.data_type == TensorProto.FLOAT, t.name
        got = numpy_helper.to_array(t)
        want = generate(t.name, tuple(t.dims), *rules[t.name])
        assert got.dtype == np.float32 and got.shape == want.shape, t.name
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), t.name
    return names


def write_external_weights(proto, out, rules, check, generator):
    """Saves `proto` as `out`/model.onnx with every initializer in `out`/weights.bin (ONNX external
    data, back to back) and writes `out`/weights.json, the manifest tests/common/onnx_weights.rs
    rebuilds weights.bin from (`rules`: name -> (offset, scale); `check`: `self_test()`'s vector).
    Returns the manifest's tensor records."""
    import json

    import onnx
    from onnx.external_data_helper import convert_model_to_external_data
    order = assert_generated(proto, rules)
    onnx_path = os.path.join(out, "model.onnx")
    weights_path = os.path.join(out, "weights.bin")
    if os.path.exists(weights_path):
        os.remove(weights_path)
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="weights.bin",
                                   size_threshold=0)
    onnx.save(proto, onnx_path)
    onnx.checker.check_model(onnx_path)

    # The manifest, from the external-data records as saved; tensors are back to back.
    saved = onnx.load(onnx_path, load_external_data=False)
    tensors, end = [], 0
    for t in saved.graph.initializer:
        info = {e.key: e.value for e in t.external_data}
        offset, length = int(info.get("offset", 0)), int(info["length"])
        assert info["location"] == "weights.bin" and offset == end, (t.name, info, end)
        assert length == 4 * int(np.prod(t.dims, dtype=np.int64)), t.name
        o, s = rules[t.name]
        tensors.append({"name": t.name, "shape": list(t.dims), "offset": o, "scale": s,
                        "byte_offset": offset, "byte_length": length})
        end = offset + length
    assert [t["name"] for t in tensors] == order
    assert os.path.getsize(weights_path) == end, (os.path.getsize(weights_path), end)
    with open(os.path.join(out, "weights.json"), "w") as f:
        json.dump({"generator": generator,
                   "file": "weights.bin", "dtype": "float32", "byte_order": "little",
                   "total_bytes": end, "check": check, "tensors": tensors}, f, indent=1)
    assert_generated(onnx.load(onnx_path), rules)  # read back through the external data
    with open(os.path.join(out, ".gitignore"), "w") as f:
        f.write(f"# Rebuilt by tests/onnx_parity.rs from weights.json (see {generator})\n"
                "weights.bin\n")
    return tensors
