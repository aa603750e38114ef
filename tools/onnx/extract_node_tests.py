#!/usr/bin/env python3
"""Copies ONNX backend node conformance tests into tests/fixtures/onnx_node/.

The ONNX project's backend node tests are one directory per test case:

    <test_name>/model.onnx                    a one-node (or "_expanded": a few-node) model
    <test_name>/test_data_set_0/input_<i>.pb  TensorProto, in graph input order
    <test_name>/test_data_set_0/output_<i>.pb TensorProto, in graph output order

This script keeps the tests whose every node is an op firelight-onnx claims, copies them byte for
byte into tests/fixtures/onnx_node/<test_name>/, writes tests/fixtures/onnx_node/INDEX.json
(name, op types, opset, input/output names, dtypes and shapes of each test) and prints how many
tests each op has. `tests/onnx_conformance.rs` runs them.

Selection
  * every node's op type (subgraphs included) is in the op list, in the default domain
    ("" or "ai.onnx"); the op list is crates/firelight-onnx/SUPPORTED_OPS.txt (one op type a
    line, '#' comments), or the built-in list below while that file does not exist, or --ops;
  * every graph input and output, and every tensor in test_data_set_0, is float32, float64,
    int32, int64 or bool (no float16/bfloat16/float8/int4/uint*/string, no sequences/optionals);
    so are tensor attributes (Constant's value, ConstantOfShape's value), Cast's `to`, and the
    types ONNX shape inference gives intermediate values;
  * the test's files add up to at most --max-test-kb (256 KiB);
  * `_expanded` tests (a function op expanded into primitive ops) are kept when all their ops are
    in the list, like any other test.

Where the tests come from
  The onnx wheel (1.23.x) no longer ships onnx/backend/test/data/node, and ONNX removed the
  directory from its repository after v1.22.0 (onnx/onnx#7959: the data are now generated on the
  fly). So there are three sources, the first one that applies is used:
    --node-dir DIR           a directory of node tests (e.g. .../onnx/backend/test/data/node of
                             an onnx <= 1.22 source tree or wheel);
    --git-repo R --git-rev V the same directory read from a git clone of github.com/onnx/onnx at
                             revision V (read only: `git archive`);
    --generate               the installed onnx package's test-case generators
                             (onnx.backend.test.loader.load_node_model_tests, numpy seeded 0);
                             inputs are random, so files differ from the ones ONNX committed.
  With none of them, the installed package's data/node is used if it has one.

The committed fixtures were made with the ONNX v1.22.0 files:

    git clone --depth 1 --branch v1.22.0 https://github.com/onnx/onnx /tmp/onnx
    python tools/onnx/extract_node_tests.py --git-repo /tmp/onnx --git-rev v1.22.0

Re-running replaces every test_* directory and INDEX.json under the output directory (and only
those). Needs the `onnx` and `numpy` packages (e.g. /work/pyenv).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import onnx
from onnx import TensorProto

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OPS_FILE = os.path.join(REPO, "crates", "firelight-onnx", "SUPPORTED_OPS.txt")
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "onnx_node")
GIT_NODE_PATH = "onnx/backend/test/data/node"

# Used while crates/firelight-onnx/SUPPORTED_OPS.txt does not exist.
FALLBACK_OPS = """
Abs Add AveragePool BatchNormalization Cast Ceil Clip Concat Constant ConstantOfShape Conv Cos
Div Dropout Elu Equal Erf Exp Expand Flatten Floor Gather Gelu Gemm GlobalAveragePool
GlobalMaxPool Greater HardSigmoid HardSwish Identity LayerNormalization LeakyRelu Less Log
LogSoftmax LRN MatMul Max MaxPool Mean Min Mul Neg Not Pad Pow PRelu Range Reciprocal ReduceMax
ReduceMean ReduceMin ReduceSum Relu Reshape Shape Sigmoid Sin Slice Softmax Softplus Split Sqrt
Squeeze Sub Sum Tanh Tile Transpose Unsqueeze Where
""".split()

ALLOWED_DTYPES = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.BOOL: "bool",
}
DEFAULT_DOMAINS = ("", "ai.onnx")


class Skip(Exception):
    """A test that is not copied, with the reason."""


def read_ops(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.ops:
        return sorted(set(args.ops.replace(",", " ").split())), "--ops"
    path = args.ops_file
    if os.path.exists(path):
        ops = []
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    ops.append(line)
        return sorted(set(ops)), os.path.relpath(path, REPO)
    return sorted(set(FALLBACK_OPS)), "built-in list (no SUPPORTED_OPS.txt yet)"


def dtype_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type).lower()


def check_dtype(elem_type: int, what: str) -> str:
    if elem_type not in ALLOWED_DTYPES:
        raise Skip(f"dtype {dtype_name(elem_type)} ({what})")
    return ALLOWED_DTYPES[elem_type]


def walk_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from walk_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from walk_nodes(g)


def op_types_of(model: onnx.ModelProto, ops: set[str]) -> list[str]:
    found = set()
    for node in walk_nodes(model.graph):
        if node.domain not in DEFAULT_DOMAINS:
            raise Skip(f"op {node.domain}::{node.op_type} (not the default domain)")
        if node.op_type not in ops:
            raise Skip(f"op {node.op_type}")
        found.add(node.op_type)
    # Every op is listed: now the types the nodes carry.
    for node in walk_nodes(model.graph):
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                check_dtype(attr.t.data_type, f"attribute {node.op_type}.{attr.name}")
            elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                raise Skip(f"sparse tensor attribute {node.op_type}.{attr.name}")
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to":
                    check_dtype(attr.i, "Cast to")
    if not found:
        raise Skip("no nodes")
    return sorted(found)


def value_info(vi: onnx.ValueInfoProto, what: str) -> dict:
    if not vi.type.HasField("tensor_type"):
        raise Skip(f"{what} {vi.name!r} is not a tensor")
    dtype = check_dtype(vi.type.tensor_type.elem_type, f"{what} {vi.name!r}")
    shape = None
    if vi.type.tensor_type.HasField("shape"):
        shape = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in vi.type.tensor_type.shape.dim
        ]
    return {"name": vi.name, "dtype": dtype, "declared_shape": shape}


def read_tensor(path: str, what: str) -> TensorProto:
    t = TensorProto()
    with open(path, "rb") as f:
        data = f.read()
    try:
        t.ParseFromString(data)
    except Exception as e:  # a SequenceProto/OptionalProto/MapProto, or garbage
        raise Skip(f"{what} is not a TensorProto ({e})") from e
    if t.data_type == TensorProto.UNDEFINED:
        raise Skip(f"{what} is not a TensorProto")
    if t.HasField("data_location") and t.data_location == TensorProto.EXTERNAL:
        raise Skip(f"{what} uses external data")
    return t


def inspect_test(test_dir: str, ops: set[str]) -> dict:
    model_path = os.path.join(test_dir, "model.onnx")
    data_dir = os.path.join(test_dir, "test_data_set_0")
    if not os.path.isfile(model_path) or not os.path.isdir(data_dir):
        raise Skip("no model.onnx / test_data_set_0")
    model = onnx.load(model_path, load_external_data=False)
    op_types = op_types_of(model, ops)
    if model.functions:
        raise Skip("model-local functions")
    if len(model.graph.initializer) or len(model.graph.sparse_initializer):
        for init in model.graph.initializer:
            check_dtype(init.data_type, f"initializer {init.name!r}")
        if len(model.graph.sparse_initializer):
            raise Skip("sparse initializer")

    inputs = [value_info(vi, "input") for vi in model.graph.input]
    outputs = [value_info(vi, "output") for vi in model.graph.output]

    # Types of intermediate values (an `_expanded` test may Cast to float16 in the middle).
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for vi in inferred.graph.value_info:
            if vi.type.HasField("tensor_type"):
                check_dtype(vi.type.tensor_type.elem_type, f"intermediate {vi.name!r}")
    except Skip:
        raise
    except Exception:
        pass  # inference is best effort; the checks above stand

    files = sorted(os.listdir(data_dir))
    n_in = len([f for f in files if f.startswith("input_")])
    n_out = len([f for f in files if f.startswith("output_")])
    if n_in != len(inputs) or n_out != len(outputs):
        raise Skip(
            f"{n_in} input / {n_out} output files for {len(inputs)} inputs / {len(outputs)} outputs"
        )
    for kind, infos in (("input", inputs), ("output", outputs)):
        for i, info in enumerate(infos):
            t = read_tensor(os.path.join(data_dir, f"{kind}_{i}.pb"), f"{kind}_{i}.pb")
            dtype = check_dtype(t.data_type, f"{kind}_{i}.pb")
            if dtype != info["dtype"]:
                raise Skip(f"{kind}_{i}.pb is {dtype}, the graph declares {info['dtype']}")
            info["shape"] = list(t.dims)
    opset = {
        (o.domain or "ai.onnx"): o.version for o in model.opset_import
    }
    return {
        "name": os.path.basename(test_dir.rstrip("/")),
        "op_types": op_types,
        "opset": opset,
        "ir_version": model.ir_version,
        "inputs": inputs,
        "outputs": outputs,
    }


def generate_into(tmp: str) -> None:
    """Writes the installed onnx package's node test cases as model.onnx + .pb files."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.backend.test.loader import load_node_model_tests

    np.random.seed(0)
    for case in load_node_model_tests():
        out = os.path.join(tmp, case.name)
        data = os.path.join(out, "test_data_set_0")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(out, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        inputs, outputs = case.data_sets[0]
        for kind, values, vis in (
            ("input", inputs, case.model.graph.input),
            ("output", outputs, case.model.graph.output),
        ):
            for j, value in enumerate(values):
                if isinstance(value, TensorProto):
                    proto = value
                elif isinstance(value, np.ndarray) or np.isscalar(value):
                    try:
                        proto = numpy_helper.from_array(np.asarray(value), vis[j].name)
                    except Exception:
                        proto = TensorProto()  # undefined: skipped by inspect_test
                else:
                    proto = TensorProto()  # sequence/optional/map: skipped
                with open(os.path.join(data, f"{kind}_{j}.pb"), "wb") as f:
                    f.write(proto.SerializeToString())


def source_dir(args: argparse.Namespace, tmp: str) -> tuple[str, str]:
    if args.node_dir:
        return args.node_dir, f"directory {args.node_dir}"
    if args.git_repo:
        rev = args.git_rev or "HEAD"
        commit = subprocess.run(
            ["git", "-C", args.git_repo, "rev-parse", f"{rev}^{{commit}}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", args.git_repo, "archive", "--format=tar", commit, GIT_NODE_PATH],
            check=True, capture_output=True,
        ).stdout
        tar_path = os.path.join(tmp, "node.tar")
        with open(tar_path, "wb") as f:
            f.write(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(tmp, filter="data")
        return os.path.join(tmp, GIT_NODE_PATH), f"github.com/onnx/onnx {rev} ({commit}) {GIT_NODE_PATH}"
    if args.generate:
        generate_into(tmp)
        return tmp, f"generated by onnx {onnx.__version__} (load_node_model_tests, numpy seed 0)"
    packaged = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    if os.path.isdir(packaged):
        return packaged, f"onnx {onnx.__version__} package data/node"
    sys.exit(
        f"onnx {onnx.__version__} does not ship backend/test/data/node: pass --node-dir, "
        "--git-repo/--git-rev (e.g. an onnx clone at v1.22.0) or --generate"
    )


def index_json(index: dict) -> str:
    """INDEX.json with one line per test (small diffs when the op list changes)."""
    tests = index.pop("tests")
    head = json.dumps(index, indent=1)[:-2]  # without the closing "\n}"
    lines = ",\n".join("  " + json.dumps(t, separators=(", ", ": ")) for t in tests)
    return f'{head},\n "tests": [\n{lines}\n ]\n}}\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops-file", default=DEFAULT_OPS_FILE)
    parser.add_argument("--ops", help="op types, space or comma separated (overrides --ops-file)")
    parser.add_argument("--node-dir", help="a directory of node tests (<test_name>/model.onnx)")
    parser.add_argument("--git-repo", help="a git clone of github.com/onnx/onnx")
    parser.add_argument("--git-rev", default="v1.22.0", help="revision for --git-repo")
    parser.add_argument("--generate", action="store_true", help="use onnx's test-case generators")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument(
        "--max-test-kb", type=int, default=256,
        help="skip tests whose files add up to more than this (default 256 KiB: drops the two "
        "32x32x32 3-D pooling tests, 742 KiB each)",
    )
    parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each skipped test")
    args = parser.parse_args()

    ops, ops_from = read_ops(args)
    op_set = set(ops)
    with tempfile.TemporaryDirectory() as tmp:
        src, src_desc = source_dir(args, tmp)
        selected, skipped = [], collections.Counter()
        near_misses = collections.defaultdict(list)  # op in list, test skipped for another reason
        for name in sorted(os.listdir(src)):
            test_dir = os.path.join(src, name)
            if not os.path.isdir(test_dir):
                continue
            try:
                info = inspect_test(test_dir, op_set)
                size = sum(
                    os.path.getsize(os.path.join(root, f))
                    for root, _, fs in os.walk(test_dir) for f in fs
                )
                if size > args.max_test_kb * 1024:
                    raise Skip(f"size {size // 1024} KiB > --max-test-kb {args.max_test_kb}")
                selected.append((test_dir, info))
            except Skip as why:
                reason = str(why)
                words = reason.split(" ")
                skipped[" ".join(words[:2]) if words[0] in ("dtype", "op") else words[0]] += 1
                if not reason.startswith("op ") and not reason.startswith("no "):
                    near_misses[name].append(reason)
                if args.verbose:
                    print(f"skip {name}: {reason}")

        if not args.dry_run:
            os.makedirs(args.out, exist_ok=True)
            for entry in os.listdir(args.out):
                path = os.path.join(args.out, entry)
                if entry.startswith("test_") and os.path.isdir(path):
                    shutil.rmtree(path)
            for test_dir, info in selected:
                dst = os.path.join(args.out, info["name"])
                os.makedirs(os.path.join(dst, "test_data_set_0"))
                shutil.copyfile(os.path.join(test_dir, "model.onnx"), os.path.join(dst, "model.onnx"))
                for f in sorted(os.listdir(os.path.join(test_dir, "test_data_set_0"))):
                    if f.endswith(".pb"):
                        shutil.copyfile(
                            os.path.join(test_dir, "test_data_set_0", f),
                            os.path.join(dst, "test_data_set_0", f),
                        )
            index = {
                "about": "ONNX backend node tests copied by tools/onnx/extract_node_tests.py; "
                "run by tests/onnx_conformance.rs",
                "source": src_desc,
                "max_test_kb": args.max_test_kb,
                "ops_from": ops_from,
                "ops": " ".join(ops),
                "tolerance": {"rtol": 1e-3, "atol": 1e-7},
                "tests": [info for _, info in selected],
            }
            with open(os.path.join(args.out, "INDEX.json"), "w") as f:
                f.write(index_json(index))

    per_op = collections.Counter()
    single = collections.Counter()
    for _, info in selected:
        for op in info["op_types"]:
            per_op[op] += 1
        if len(info["op_types"]) == 1:
            single[info["op_types"][0]] += 1
    print(f"source: {src_desc}")
    print(f"ops: {len(ops)} from {ops_from}")
    print(f"{len(selected)} tests selected{' (dry run)' if args.dry_run else ' -> ' + os.path.relpath(args.out, REPO)}")
    print(f"{'op':<22}{'tests':>6}{'  (only this op)':>17}")
    for op in ops:
        print(f"{op:<22}{per_op[op]:>6}{single[op]:>17}")
    missing = [op for op in ops if per_op[op] == 0]
    if missing:
        print(f"ops with no test: {' '.join(missing)}")
    print("skipped, by reason: " + ", ".join(f"{k}: {v}" for k, v in skipped.most_common()))
    if near_misses:
        print("tests of listed ops skipped for another reason (dtype, type, ...):")
        for name, reasons in sorted(near_misses.items()):
            print(f"  {name}: {'; '.join(reasons)}")


if __name__ == "__main__":
    main()
