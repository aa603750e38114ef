#!/usr/bin/env python3
"""Tiny ONNX files that ask for far more memory than any budget allows (tests/fixtures/onnx_budget).

Each is a few hundred bytes: a graph whose ConstantOfShape, Expand, Tile or Range asks for about
14 GB (60000 x 60000 floats). firelight must refuse them, naming the node, before allocating.

Re-run: python3 -m venv /tmp/fl && /tmp/fl/bin/pip install onnx numpy
        /tmp/fl/bin/python tools/onnx/make_budget.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "onnx_budget")
N = 60000


def save(name, nodes, inits, inputs, output_shape=None):
    graph = helper.make_graph(
        nodes,
        name,
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(model, path)
    print(path, os.path.getsize(path), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    x = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])]
    shape = numpy_helper.from_array(np.array([N, N], dtype=np.int64), "shape")
    # y = x + ConstantOfShape([60000, 60000]): the constant alone is 14.4 GB of float32.
    save(
        "constant_of_shape",
        [
            helper.make_node(
                "ConstantOfShape",
                ["shape"],
                ["big"],
                name="huge_constant",
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
            ),
            helper.make_node("Add", ["x", "big"], ["y"], name="add"),
        ],
        [shape],
        x,
    )
    # The shape comes from the input at run time: only the interpreter can refuse it.
    save(
        "constant_of_shape_runtime",
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape_of_x"),
            helper.make_node("Mul", ["s", "scale"], ["big_shape"], name="scale_shape"),
            helper.make_node(
                "ConstantOfShape",
                ["big_shape"],
                ["y"],
                name="huge_constant",
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
            ),
        ],
        [numpy_helper.from_array(np.array([N, N], dtype=np.int64), "scale")],
        x,
    )
    # Expand of [N, 1] to [N, N]: the shape input has N elements, the output N * N.
    save(
        "expand",
        [
            helper.make_node("Expand", ["col", "shape"], ["big"], name="huge_expand"),
            helper.make_node("Add", ["x", "big"], ["y"], name="add"),
        ],
        [
            numpy_helper.from_array(np.zeros([N, 1], dtype=np.float32)[:1], "col"),
            shape,
        ],
        x,
    )
    save(
        "tile",
        [helper.make_node("Tile", ["x", "repeats"], ["y"], name="huge_tile")],
        [numpy_helper.from_array(np.array([N, N], dtype=np.int64), "repeats")],
        x,
    )


if __name__ == "__main__":
    main()
