#!/usr/bin/env python3
"""Writes the malformed-ONNX corpus tests/fixtures/onnx_malformed/ (untrusted files).

Every `<case>.onnx` there is a file a loader must refuse with an error (never a panic, never a
huge allocation, never a read outside the model's folder). `cases.json` maps each file to

    {"description": ..., "expect": <lowercase substring of the error message>,
     "also_expect": [<more substrings, e.g. the offending node or tensor names>]}

and names the valid model the cases are derived from (`valid`, with an input and the output
onnxruntime computes for it). `run_cases` are models with degenerate but declared shapes (an
empty batch) that may load: run on zeros of their input shape they must return Ok or Err with
no panic at all, not even one firelight-onnx catches itself. `tests/onnx_malformed.rs` loads each case, and the fuzz target
`fuzz/fuzz_targets/onnx_loader.rs` starts from this corpus (copied to fuzz/corpus/onnx_loader/).

    python tools/onnx/make_malformed.py            # rewrite the corpus (deterministic)
    python tools/onnx/make_malformed.py --check    # also confirm with onnx/onnxruntime that the
                                                   # valid model runs and the cases are invalid

Needs `onnx` and `numpy` (onnxruntime for --check), e.g. /work/pyenv.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "onnx_malformed")
FUZZ_CORPUS = os.path.join(REPO, "fuzz", "corpus", "onnx_loader")

OPSET = 17
IR_VERSION = 8


def weights():
    rng = np.random.default_rng(7)
    return {
        "conv.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(2).astype(np.float32),
        "fc.weight": rng.standard_normal((3, 8)).astype(np.float32),
        "fc.bias": rng.standard_normal(3).astype(np.float32),
    }


def valid_graph(**overrides) -> onnx.GraphProto:
    """x[1,1,4,4] -> Conv(3x3, 2 channels) -> Relu -> Flatten -> Gemm(8 -> 3) -> y[1,3]."""
    nodes = overrides.pop(
        "nodes",
        [
            helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv0",
                             kernel_shape=[3, 3]),
            helper.make_node("Relu", ["c"], ["r"], name="relu0"),
            helper.make_node("Flatten", ["r"], ["f"], name="flatten0", axis=1),
            helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc0", transB=1),
        ],
    )
    inits = overrides.pop(
        "initializer", [numpy_helper.from_array(v, k) for k, v in weights().items()]
    )
    inputs = overrides.pop(
        "inputs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])]
    )
    outputs = overrides.pop(
        "outputs", [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])]
    )
    assert not overrides, overrides
    return helper.make_graph(nodes, "small_cnn", inputs, outputs, initializer=inits)


def model_of(graph: onnx.GraphProto, opset: int | None = OPSET, extra_opsets=()) -> onnx.ModelProto:
    opsets = [] if opset is None else [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="firelight-malformed")
    m.ir_version = IR_VERSION
    if opset is None:
        del m.opset_import[:]
    return m


def replace_init(graph: onnx.GraphProto, name: str, tensor: TensorProto) -> onnx.GraphProto:
    for i, t in enumerate(graph.initializer):
        if t.name == name:
            graph.initializer[i].CopyFrom(tensor)
            return graph
    raise KeyError(name)


def raw_tensor(name, data_type, dims, raw: bytes) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = data_type
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def external_tensor(name, dims, location, offset, length) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def parses(data: bytes) -> bool:
    try:
        onnx.ModelProto().ParseFromString(data)
        return True
    except Exception:
        return False


def build() -> tuple[dict[str, bytes], dict[str, dict], bytes, dict]:
    files: dict[str, bytes] = {}
    cases: dict[str, dict] = {}

    def case(name, data, description, expect, also=()):
        if isinstance(data, onnx.ModelProto):
            data = data.SerializeToString()
        files[name] = data
        cases[name] = {"description": description, "expect": expect, "also_expect": list(also)}

    valid = model_of(valid_graph())
    onnx.checker.check_model(valid, full_check=True)
    valid_bytes = valid.SerializeToString()

    # --- not a model at all ---------------------------------------------------------------
    case("empty.onnx", b"", "empty file (0 bytes)", "empty")
    rng = random.Random(0x5EED)
    while True:  # random bytes that do not happen to parse as a ModelProto
        junk = bytes(rng.randrange(256) for _ in range(512))
        if not parses(junk):
            break
    case("random_bytes.onnx", junk, "512 random bytes", "parse")
    text = b"<html><body>404 Not Found</body></html>\n"
    case("html_404.onnx", text, "an HTML error page saved as .onnx", "parse")

    # --- the valid model, truncated ---------------------------------------------------------
    n = len(valid_bytes)
    for label, at in (("header", 3), ("quarter", n // 4), ("half", n // 2), ("last_byte", n - 1)):
        cut = at
        while parses(valid_bytes[:cut]):  # land inside a field, not on a field boundary
            cut -= 1
        case(f"truncated_{label}.onnx", valid_bytes[:cut],
             f"the valid model cut after {cut} of {n} bytes", "parse")

    # --- initializers whose payload does not match their type or shape ----------------------
    g = valid_graph()
    t = TensorProto()
    t.name, t.data_type = "conv.weight", TensorProto.FLOAT
    t.dims.extend([2, 1, 3, 3])
    t.int64_data.extend(range(18))
    case("init_float_with_int64_data.onnx", model_of(replace_init(g, "conv.weight", t)),
         "initializer conv.weight declared FLOAT [2,1,3,3] with its 18 values in int64_data",
         "initializer", ["conv.weight"])
    g = valid_graph()
    case("init_raw_too_short.onnx",
         model_of(replace_init(g, "conv.weight",
                               raw_tensor("conv.weight", TensorProto.FLOAT, [2, 1, 3, 3],
                                          b"\x00" * (17 * 4)))),
         "initializer conv.weight FLOAT [2,1,3,3] (72 bytes) with 68 bytes of raw_data",
         "initializer", ["conv.weight"])
    g = valid_graph()
    case("init_raw_not_multiple.onnx",
         model_of(replace_init(g, "fc.bias",
                               raw_tensor("fc.bias", TensorProto.FLOAT, [3], b"\x00" * 11))),
         "initializer fc.bias FLOAT [3] with 11 bytes of raw_data (not a multiple of 4)",
         "initializer", ["fc.bias"])
    g = valid_graph()
    t = TensorProto()
    t.name, t.data_type = "fc.bias", TensorProto.FLOAT
    t.dims.extend([3])
    t.float_data.extend([1.0, 2.0, 3.0, 4.0, 5.0])
    case("init_float_data_count.onnx", model_of(replace_init(g, "fc.bias", t)),
         "initializer fc.bias FLOAT [3] with 5 float_data values", "initializer", ["fc.bias"])
    g = valid_graph()
    case("init_undefined_type.onnx",
         model_of(replace_init(g, "fc.bias",
                               raw_tensor("fc.bias", TensorProto.UNDEFINED, [3], b"\x00" * 12))),
         "initializer fc.bias with data_type UNDEFINED (0)", "initializer", ["fc.bias"])
    g = valid_graph()
    case("init_unknown_type.onnx",
         model_of(replace_init(g, "fc.bias", raw_tensor("fc.bias", 999, [3], b"\x00" * 12))),
         "initializer fc.bias with data_type 999 (no such type)", "initializer", ["fc.bias"])

    # --- absurd shapes ------------------------------------------------------------------------
    g = valid_graph()
    case("init_huge_dims.onnx",
         model_of(replace_init(g, "fc.weight",
                               raw_tensor("fc.weight", TensorProto.FLOAT, [2**40, 2**40],
                                          b"\x00" * 16))),
         "initializer fc.weight declaring dims [2^40, 2^40] (2^80 elements) with 16 bytes",
         "initializer", ["fc.weight"])
    g = valid_graph()
    case("init_dims_overflow_usize.onnx",
         model_of(replace_init(g, "fc.weight",
                               raw_tensor("fc.weight", TensorProto.FLOAT,
                                          [2**62, 2**62, 2**62, 4], b"\x00" * 16))),
         "initializer fc.weight whose dims multiply past 2^64 (wrapping products look small)",
         "initializer", ["fc.weight"])
    g = valid_graph()
    case("init_negative_dims.onnx",
         model_of(replace_init(g, "conv.weight",
                               raw_tensor("conv.weight", TensorProto.FLOAT, [-2, 1, 3, 3],
                                          b"\x00" * 72))),
         "initializer conv.weight with dims [-2,1,3,3]", "negative", ["conv.weight"])
    case("input_dim_2_62.onnx",
         model_of(valid_graph(inputs=[
             helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2**62, 4])])),
         "graph input x declaring shape [1,1,2^62,4]", "shape", ["x"])
    case("input_negative_dim.onnx",
         model_of(valid_graph(inputs=[
             helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, -4, 4])])),
         "graph input x declaring shape [1,1,-4,4]", "negative", ["x"])

    # Static shapes a node cannot take (found by fuzzing: Burn panicked inside Conv).
    case("conv_input_smaller_than_kernel.onnx",
         model_of(valid_graph(inputs=[
             helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 4])])),
         "graph input x [1,1,2,4] into conv0's 3x3 kernel without padding (height 2 < 3)",
         "kernel", ["conv0"])

    # The same for pooling windows (found in review: the pools lacked Conv's check).
    for op, node_name in (("MaxPool", "maxpool0"), ("AveragePool", "avgpool0")):
        files_name = f"{op.lower()}_input_smaller_than_kernel.onnx"
        case(files_name,
             model_of(valid_graph(
                 nodes=[helper.make_node(op, ["x"], ["y"], name=node_name, kernel_shape=[3, 3])],
                 initializer=[],
                 inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 4])],
                 outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])),
             f"graph input x [1,1,2,4] into {node_name}'s 3x3 window without padding (height 2 < 3)",
             "kernel", [node_name])

    # --- graph structure ----------------------------------------------------------------------
    cyc = valid_graph(
        nodes=[
            helper.make_node("Add", ["x", "b_out"], ["a_out"], name="cycle_a"),
            helper.make_node("Relu", ["a_out"], ["b_out"], name="cycle_b"),
        ],
        initializer=[],
        outputs=[helper.make_tensor_value_info("a_out", TensorProto.FLOAT, [1, 1, 4, 4])],
    )
    case("cycle.onnx", model_of(cyc),
         "node cycle_a consumes cycle_b's output and cycle_b consumes cycle_a's", "cycle")
    self_loop = valid_graph(
        nodes=[helper.make_node("Add", ["x", "loop_out"], ["loop_out"], name="self_loop")],
        initializer=[],
        outputs=[helper.make_tensor_value_info("loop_out", TensorProto.FLOAT, [1, 1, 4, 4])],
    )
    case("self_loop.onnx", model_of(self_loop), "node self_loop consumes its own output", "cycle")
    g = valid_graph()
    g.node[0].input[1] = "missing_weight"
    case("missing_input.onnx", model_of(g),
         "node conv0 reads missing_weight, which no initializer, input or node provides",
         "missing_weight", ["conv0"])
    g = valid_graph(outputs=[helper.make_tensor_value_info("ghost_output", TensorProto.FLOAT, [1, 3])])
    case("output_not_produced.onnx", model_of(g),
         "graph output ghost_output is produced by no node", "ghost_output")
    g = valid_graph()
    g.node[1].output[0] = "c"  # relu0 writes conv0's output name again (not SSA)
    g.node[2].input[0] = "c"
    case("duplicate_output_name.onnx", model_of(g),
         "relu0 and conv0 both produce value c (the graph is not in SSA form)", "duplicate", ["c"])

    # --- external data ------------------------------------------------------------------------
    files["ext_weights.bin"] = np.arange(18, dtype=np.float32).tobytes()  # 72 bytes, next to the models
    for name, loc, offset, length, desc, expect, also in (
        ("external_parent_dir.onnx", "../../etc/passwd", 0, 72,
         "conv.weight stored in '../../etc/passwd' (outside the model's folder)", "outside", []),
        ("external_absolute.onnx", "/etc/passwd", 0, 72,
         "conv.weight stored in '/etc/passwd' (an absolute path)", "outside", []),
        ("external_beyond_file.onnx", "ext_weights.bin", 1000, 72,
         "conv.weight at offset 1000 of ext_weights.bin, a 72-byte file", "offset", []),
        ("external_length_beyond_file.onnx", "ext_weights.bin", 8, 72,
         "conv.weight: 72 bytes from offset 8 of the 72-byte ext_weights.bin", "length", []),
        ("external_missing_file.onnx", "no_such_weights.bin", 0, 72,
         "conv.weight stored in no_such_weights.bin, which does not exist", "no_such_weights.bin", []),
    ):
        g = valid_graph()
        replace_init(g, "conv.weight", external_tensor("conv.weight", [2, 1, 3, 3], loc, offset, length))
        case(name, model_of(g), desc, expect, also)

    # --- ops the interpreter does not run -----------------------------------------------------
    def with_extra_nodes(extra_nodes, extra_inputs=(), extra_outputs=(), extra_opsets=()):
        g = valid_graph()
        g.node.extend(extra_nodes)
        g.input.extend(extra_inputs)
        g.output.extend(extra_outputs)
        return model_of(g, extra_opsets=extra_opsets)

    nms_inputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 4, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 4]),
    ]
    nms = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"],
                           name="nms_node_7f3a")
    nms_out = [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])]
    case("unsupported_op.onnx", with_extra_nodes([nms], nms_inputs, nms_out),
         "a NonMaxSuppression node named nms_node_7f3a", "unsupported", ["nms_node_7f3a"])
    custom = helper.make_node("MysteryOp", ["y"], ["z"], name="mystery_node_c0de",
                              domain="com.example.firelight")
    custom_out = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])]
    case("custom_domain_op.onnx",
         with_extra_nodes([custom], [], custom_out, [("com.example.firelight", 1)]),
         "op com.example.firelight::MysteryOp in node mystery_node_c0de", "unsupported",
         ["mystery_node_c0de"])
    case("two_unsupported_ops.onnx",
         with_extra_nodes([nms, custom], nms_inputs, nms_out + custom_out,
                          [("com.example.firelight", 1)]),
         "two unsupported nodes, nms_node_7f3a and mystery_node_c0de: both must be listed",
         "unsupported", ["nms_node_7f3a", "mystery_node_c0de"])

    # --- model-level omissions ----------------------------------------------------------------
    empty_graph = helper.make_graph([], "nothing", [], [])
    case("no_inputs_outputs.onnx", model_of(empty_graph),
         "a graph with no nodes, inputs or outputs", "output")
    case("no_graph.onnx", onnx.ModelProto(ir_version=IR_VERSION, producer_name="x",
                                           opset_import=[helper.make_opsetid("", OPSET)]),
         "a ModelProto without a graph", "graph")
    case("no_opset_import.onnx", model_of(valid_graph(), opset=None),
         "the valid model without opset_import", "opset")

    # Models that may load; run on zeros of their declared input shape they must return Ok or
    # Err without any panic, not even one firelight-onnx catches (found by fuzzing).
    run_cases = {}
    for name, shape, desc in (
        ("zero_batch.onnx", [0, 1, 4, 4], "the valid model with input x [0,1,4,4] (empty batch)"),
        ("zero_width.onnx", [1, 1, 4, 0], "the valid model with input x [1,1,4,0] (zero width)"),
        ("conv_channel_mismatch.onnx", [1, 3, 4, 4],
         "input x [1,3,4,4] (3 channels) into conv0, whose weight [2,1,3,3] takes 1 "
         "(onnx.checker and onnxruntime load it; running fails)"),
    ):
        files[name] = model_of(valid_graph(inputs=[
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)])).SerializeToString()
        run_cases[name] = {"description": desc, "input_shape": shape}
    # An empty tensor through an elementwise op (found by fuzzing: Relu/Selu/Clip on a [1,0,4,46]
    # input panicked inside OnnxModel::load's trial run, uncaught).
    files["zero_dim_relu.onnx"] = model_of(valid_graph(
        nodes=[helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        initializer=[],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 0, 4, 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 0, 4, 4])],
    )).SerializeToString()
    run_cases["zero_dim_relu.onnx"] = {
        "description": "x [1,0,4,4] -> Relu -> y (onnxruntime returns an empty y)",
        "input_shape": [1, 0, 4, 4],
    }

    info = {
        "file": "valid_small.onnx",
        "description": "x[1,1,4,4] -> Conv(3x3, 2) -> Relu -> Flatten -> Gemm(8 -> 3) -> y[1,3], "
        f"opset {OPSET}, ir_version {IR_VERSION}",
    }
    return files, cases, run_cases, valid_bytes, info


def check(files, cases, run_cases, valid_bytes, info) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(valid_bytes, providers=["CPUExecutionProvider"])
    x = np.asarray(info["input"], dtype=np.float32).reshape(1, 1, 4, 4)
    (y,) = sess.run(None, {"x": x})
    assert np.allclose(y.ravel(), info["output"], atol=1e-6), (y, info["output"])
    print(f"valid_small.onnx runs in onnxruntime {ort.__version__}: y = {y.ravel().tolist()}")
    for name in cases:
        data = files[name]
        verdicts = []
        try:
            m = onnx.ModelProto()
            m.ParseFromString(data)
            try:
                onnx.checker.check_model(m, full_check=True)
                verdicts.append("checker: ok")
            except Exception as e:
                verdicts.append(f"checker: {type(e).__name__}")
        except Exception:
            verdicts.append("protobuf: does not parse")
        try:
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            verdicts.append("onnxruntime: LOADS")
        except Exception as e:
            verdicts.append(f"onnxruntime: {type(e).__name__}")
        print(f"  {name:<36} {', '.join(verdicts)}")
    for name, run_case in run_cases.items():
        try:
            sess = ort.InferenceSession(files[name], providers=["CPUExecutionProvider"])
            x = np.zeros(run_case["input_shape"], dtype=np.float32)
            (y,) = sess.run(None, {"x": x})
            verdict = f"onnxruntime runs it: y {list(y.shape)}"
        except Exception as e:
            verdict = f"onnxruntime: {type(e).__name__}"
        print(f"  run case {name:<27} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="cross-check with onnx/onnxruntime")
    args = parser.parse_args()

    files, cases, run_cases, valid_bytes, info = build()
    x = (np.arange(16, dtype=np.float32) / 8.0 - 1.0)
    w = weights()
    # The expected output, computed with numpy (cross-checked with onnxruntime by --check).
    img = x.reshape(4, 4)
    conv = np.zeros((2, 2, 2), dtype=np.float64)
    for o in range(2):
        for i in range(2):
            for j in range(2):
                conv[o, i, j] = (img[i:i + 3, j:j + 3] * w["conv.weight"][o, 0]).sum() + w["conv.bias"][o]
    y = w["fc.weight"].astype(np.float64) @ np.maximum(conv, 0).ravel() + w["fc.bias"]
    info["input"] = x.tolist()
    info["input_shape"] = [1, 1, 4, 4]
    info["output"] = [float(v) for v in y]
    info["output_shape"] = [1, 3]

    os.makedirs(OUT, exist_ok=True)
    for entry in os.listdir(OUT):
        if entry.endswith(".onnx") or entry.endswith(".bin") or entry == "cases.json":
            os.remove(os.path.join(OUT, entry))
    with open(os.path.join(OUT, "valid_small.onnx"), "wb") as f:
        f.write(valid_bytes)
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({
            "about": "Malformed ONNX files (tools/onnx/make_malformed.py); loading each must fail "
            "with an error whose lowercased message contains `expect` and every `also_expect`. "
            "Run by tests/onnx_malformed.rs.",
            "valid": info,
            "cases": cases,
            "run_cases": run_cases,
        }, f, indent=1)
        f.write("\n")

    # The fuzz corpus: every model file, valid one included (external-data cases keep their
    # references, which resolve nowhere under from_bytes).
    os.makedirs(FUZZ_CORPUS, exist_ok=True)
    for entry in os.listdir(FUZZ_CORPUS):
        os.remove(os.path.join(FUZZ_CORPUS, entry))
    shutil.copyfile(os.path.join(OUT, "valid_small.onnx"), os.path.join(FUZZ_CORPUS, "valid_small.onnx"))
    for name in list(cases) + list(run_cases):
        if files[name]:  # libFuzzer adds the empty input itself
            shutil.copyfile(os.path.join(OUT, name), os.path.join(FUZZ_CORPUS, name))

    total = sum(len(d) for d in files.values()) + len(valid_bytes)
    print(f"{len(cases)} malformed cases, {len(run_cases)} run cases + valid_small.onnx ({len(valid_bytes)} bytes), "
          f"{total} bytes in all -> {os.path.relpath(OUT, REPO)}")
    if args.check:
        check(files, cases, run_cases, valid_bytes, info)


if __name__ == "__main__":
    main()
