#!/usr/bin/env python3
"""Small ONNX files with the exact GELU and SiLU written as several nodes (tests/fixtures/onnx_fusion).

Each graph is y = GELU(x) @ W (or SiLU), x of shape [batch, 16], W a fixed [16, 4] matrix, with the GELU
spelled the ways exporters spell it, so firelight-onnx's fusion (`src/fuse.rs`) is checked on the
real exports and on the orders a hand-written graph may use:

- gelu_torch_nn.onnx: torch.nn.GELU() through torch.onnx.export (opset 17, TorchScript exporter):
  Div(x, sqrt 2), Erf, Add 1, Mul(x, .), Mul(., 0.5); what torchvision's ConvNeXt contains.
- gelu_hf.onnx: Hugging Face's `x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))` through the same
  exporter: Mul(x, 0.5) first, then times (1 + erf).
- gelu_commuted.onnx (onnx.helper): Mul(1/sqrt 2, x), Add(1, erf), Mul(., x), Mul(0.5, .):
  every constant on the left.
- gelu_intermediate_output.onnx: the torch.nn.GELU chain with erf's output also a graph output:
  not fused (a caller asked for that value).
- gelu_erf_read_twice.onnx: y = GELU(x) @ W + erf(x / sqrt 2) @ W: erf's output has a second
  reader, so not fused.
- silu_torch_nn.onnx: torch.nn.SiLU() through the same exporter: Sigmoid, Mul(x, .); what every
  EfficientNet contains.
- silu_commuted.onnx (onnx.helper): Mul(sigmoid(x), x).
- sigmoid_gate.onnx: y = (x * sigmoid(x + 1)) @ W, a gate of another value (as a
  squeeze-excitation block's): not SiLU, not fused.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch onnx onnxscript numpy
        /tmp/fl/bin/python tools/onnx/make_fusion.py
"""
import math
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "onnx_fusion")
FEATURES, CLASSES = 16, 4


def weight():
    # Fixed, readable values: w[i, j] = ((i * 7 + j * 3) % 11 - 5) / 5.
    w = np.array(
        [[((i * 7 + j * 3) % 11 - 5) / 5.0 for j in range(CLASSES)] for i in range(FEATURES)],
        dtype=np.float32,
    )
    return w


class Head(torch.nn.Module):
    def __init__(self, gelu):
        super().__init__()
        self.gelu = gelu
        self.w = torch.nn.Parameter(torch.from_numpy(weight()), requires_grad=False)

    def forward(self, x):
        return self.gelu(x) @ self.w


def hf_gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def export(name, gelu):
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(
        Head(gelu),
        (torch.zeros(2, FEATURES),),
        path,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    print(path, [n.op_type for n in onnx.load(path).graph.node])


def constant(name, value):
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


def save(name, nodes, inits, outputs):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FEATURES])],
        outputs,
        initializer=inits + [numpy_helper.from_array(weight(), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(model, path)
    print(path, [n.op_type for n in nodes])


def y_info():
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", CLASSES])


def main():
    os.makedirs(OUT, exist_ok=True)
    export("gelu_torch_nn", torch.nn.GELU())
    export("gelu_hf", hf_gelu)
    export("silu_torch_nn", torch.nn.SiLU())
    save(
        "silu_commuted",
        [
            helper.make_node("Sigmoid", ["x"], ["s"]),
            helper.make_node("Mul", ["s", "x"], ["g"]),
            helper.make_node("MatMul", ["g", "w"], ["y"]),
        ],
        [],
        [y_info()],
    )
    save(
        "sigmoid_gate",
        [
            helper.make_node("Add", ["x", "one"], ["shifted"]),
            helper.make_node("Sigmoid", ["shifted"], ["s"]),
            helper.make_node("Mul", ["x", "s"], ["g"]),
            helper.make_node("MatMul", ["g", "w"], ["y"]),
        ],
        [constant("one", 1.0)],
        [y_info()],
    )

    save(
        "gelu_commuted",
        [
            helper.make_node("Mul", ["inv_sqrt2", "x"], ["s"]),
            helper.make_node("Erf", ["s"], ["e"]),
            helper.make_node("Add", ["one", "e"], ["a"]),
            helper.make_node("Mul", ["a", "x"], ["m"]),
            helper.make_node("Mul", ["half", "m"], ["g"]),
            helper.make_node("MatMul", ["g", "w"], ["y"]),
        ],
        [
            constant("inv_sqrt2", 1 / math.sqrt(2)),
            constant("one", 1.0),
            constant("half", 0.5),
        ],
        [y_info()],
    )

    torch_chain = [
        helper.make_node("Div", ["x", "sqrt2"], ["s"]),
        helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["g"]),
        helper.make_node("MatMul", ["g", "w"], ["y"]),
    ]
    torch_constants = [constant("sqrt2", math.sqrt(2)), constant("one", 1.0), constant("half", 0.5)]
    save(
        "gelu_intermediate_output",
        torch_chain,
        torch_constants,
        [y_info(), helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", FEATURES])],
    )
    save(
        "gelu_erf_read_twice",
        [n for n in torch_chain if n.output[0] != "y"]
        + [
            helper.make_node("MatMul", ["g", "w"], ["yg"]),
            helper.make_node("MatMul", ["e", "w"], ["ye"]),
            helper.make_node("Add", ["yg", "ye"], ["y"]),
        ],
        torch_constants,
        [y_info()],
    )


if __name__ == "__main__":
    main()
