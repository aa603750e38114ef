//! ONNX backend node conformance: the ONNX project's own per-operator tests, run through
//! `firelight::onnx`.
//!
//! `tests/fixtures/onnx_node/<test>/` holds `model.onnx` and `test_data_set_0/{input,output}_<i>.pb`
//! (ONNX TensorProto), copied unchanged from ONNX's backend test data by
//! `tools/onnx/extract_node_tests.py`, which also writes `INDEX.json` (op types, dtypes and
//! shapes of each test). Every test whose op types are all in [`SUPPORTED_OPS`] must load, run,
//! and match the expected outputs: same shape and element kind (float, integer, bool; the width
//! may differ, as the interpreter computes floats as f32 and integers as i64), floats within
//! ONNX's backend tolerance `|a - b| <= atol + rtol * |b|` (rtol 1e-3, atol 1e-7, NaN matching
//! NaN, infinities exactly), integers and booleans exactly. Tests of ops the interpreter does not
//! claim are counted as skipped.
//!
//! `FIRELIGHT_ONNX_TEST=<substring>` runs only the tests whose name contains it;
//! `FIRELIGHT_TEST_DEVICE` picks the device as in the other integration tests.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device, TensorData};
use firelight::onnx::{OnnxModel, SUPPORTED_OPS, Value};

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;

/// Tests whose expected outputs come from numpy's random generator (Dropout in training mode
/// with ratio > 0): no implementation reproduces them, so they are not run (ONNX Runtime's
/// backend-test filters leave them out too).
const RANDOM_OUTPUTS: &[&str] = &[
    "test_training_dropout",
    "test_training_dropout_default",
    "test_training_dropout_default_mask",
    "test_training_dropout_mask",
];

/// Variants of claimed operators that firelight declines, by test-name prefix (or, starting with
/// `*`, a part of the name of a test that is not `_expanded`), with the reason.
/// These must fail with an error (at load or at run), never return numbers: the test checks it.
/// They are listed in docs/onnx-ops.md.
const DECLINED_VARIANTS: &[(&str, &str)] = &[
    (
        "test_averagepool_2d_dilations",
        "AveragePool with dilations > 1 (Burn's avg_pool2d has none)",
    ),
    ("test_averagepool_3d", "3-D pooling"),
    ("test_maxpool_3d", "3-D pooling"),
    (
        "test_maxpool_with_argmax",
        "MaxPool's second output (Indices)",
    ),
    (
        "test_batchnorm_epsilon_training_mode",
        "BatchNormalization in training mode (refused by onnx-ir)",
    ),
    (
        "test_batchnorm_example_training_mode",
        "BatchNormalization in training mode (refused by onnx-ir)",
    ),
    (
        "test_matmul_1d_1d",
        "MatMul of two vectors: a rank-0 result (refused by onnx-ir)",
    ),
    (
        "test_max_example",
        "Max/Min with other than two inputs (onnx-ir takes exactly two)",
    ),
    (
        "test_max_one_input",
        "Max/Min with other than two inputs (onnx-ir takes exactly two)",
    ),
    (
        "test_min_example",
        "Max/Min with other than two inputs (onnx-ir takes exactly two)",
    ),
    (
        "test_min_one_input",
        "Max/Min with other than two inputs (onnx-ir takes exactly two)",
    ),
    (
        "test_reshape_allowzero",
        "Reshape with allowzero=1 (onnx-ir does not pass the attribute on)",
    ),
    (
        "test_rotary_embedding_interleaved_expanded",
        "Slice with runtime bounds and a step other than 1 (refused by onnx-ir)",
    ),
    (
        "test_rotary_embedding_no_position_ids_interleaved_expanded",
        "Slice with runtime bounds and a step other than 1 (refused by onnx-ir)",
    ),
    ("test_wrap_pad", "Pad in wrap mode (refused by onnx-ir)"),
    (
        "*_with_past_and_present",
        "Attention with past/present key-value caches",
    ),
    ("*_with_qk_matmul", "Attention's optional QK-product output"),
    (
        "*_padded_kv",
        "Attention with `nonpad_kv_seqlen` (padded key-value caches)",
    ),
];

fn declined(name: &str) -> Option<&'static str> {
    DECLINED_VARIANTS
        .iter()
        .find(|(pattern, _)| match pattern.strip_prefix('*') {
            // A `*` pattern names a variant of a fused operator (Attention); its `_expanded`
            // twin is written in primitive operators, which must pass.
            Some(part) => name.contains(part) && !name.ends_with("_expanded"),
            None => name.starts_with(pattern),
        })
        .map(|(_, why)| *why)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_node")
}

/// One test of INDEX.json.
struct Case {
    name: String,
    op_types: Vec<String>,
}

fn read_index() -> Vec<Case> {
    let path = fixtures().join("INDEX.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index: serde_json::Value = serde_json::from_str(&text).expect("INDEX.json is not JSON");
    index["tests"]
        .as_array()
        .expect("INDEX.json has no tests")
        .iter()
        .map(|t| Case {
            name: t["name"].as_str().expect("test without a name").to_string(),
            op_types: t["op_types"]
                .as_array()
                .expect("test without op_types")
                .iter()
                .map(|op| op.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// TensorProto, decoded by hand (the few fields the node tests use).

/// Protobuf wire-format reader.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// `(field number, wire type)`.
    fn key(&mut self) -> Result<(u64, u64), String> {
        let key = self.varint()?;
        Ok((key >> 3, key & 7))
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.bytes(8).map(drop),
            2 => {
                let n = self.varint()? as usize;
                self.bytes(n).map(drop)
            }
            5 => self.bytes(4).map(drop),
            other => Err(format!("wire type {other}")),
        }
    }

    /// A repeated varint field, packed (wire type 2) or not (0).
    fn varints(&mut self, wire: u64, out: &mut Vec<u64>) -> Result<(), String> {
        if wire == 2 {
            let n = self.varint()? as usize;
            let mut packed = Wire::new(self.bytes(n)?);
            while !packed.done() {
                out.push(packed.varint()?);
            }
            Ok(())
        } else {
            out.push(self.varint()?);
            Ok(())
        }
    }

    /// A repeated fixed-width field (`W` bytes), packed (wire type 2) or not.
    fn fixed<const W: usize>(&mut self, wire: u64, out: &mut Vec<[u8; W]>) -> Result<(), String> {
        let bytes = if wire == 2 {
            let n = self.varint()? as usize;
            self.bytes(n)?
        } else {
            self.bytes(W)?
        };
        if bytes.len() % W != 0 {
            return Err("packed field length".into());
        }
        out.extend(
            bytes
                .chunks_exact(W)
                .map(|c| <[u8; W]>::try_from(c).unwrap()),
        );
        Ok(())
    }
}

// onnx.TensorProto.DataType
const FLOAT: u64 = 1;
const INT32: u64 = 6;
const INT64: u64 = 7;
const BOOL: u64 = 9;
const DOUBLE: u64 = 11;

/// A TensorProto as burn [`TensorData`] (f32, f64, i32, i64 or bool).
fn decode_tensor(bytes: &[u8]) -> Result<TensorData, String> {
    let mut w = Wire::new(bytes);
    let (mut dims, mut data_type, mut raw) = (Vec::new(), 0u64, None::<&[u8]>);
    let (mut int32s, mut int64s) = (Vec::new(), Vec::new());
    let (mut floats, mut doubles) = (Vec::<[u8; 4]>::new(), Vec::<[u8; 8]>::new());
    while !w.done() {
        let (field, wire) = w.key()?;
        match field {
            1 => w.varints(wire, &mut dims)?,
            2 => data_type = w.varint()?,
            4 => w.fixed(wire, &mut floats)?,
            5 => w.varints(wire, &mut int32s)?,
            7 => w.varints(wire, &mut int64s)?,
            9 => {
                let n = w.varint()? as usize;
                raw = Some(w.bytes(n)?);
            }
            10 => w.fixed(wire, &mut doubles)?,
            13 | 14 => return Err("external data".into()),
            _ => w.skip(wire)?,
        }
    }
    let shape: Vec<usize> = dims.iter().map(|&d| d as i64 as usize).collect();
    let n: usize = shape.iter().product();
    fn from_raw<const W: usize, E>(
        raw: &[u8],
        n: usize,
        f: fn([u8; W]) -> E,
    ) -> Result<Vec<E>, String> {
        if raw.len() != n * W {
            return Err(format!(
                "raw_data has {} bytes for {n} elements of {W}",
                raw.len()
            ));
        }
        Ok(raw
            .chunks_exact(W)
            .map(|c| f(c.try_into().unwrap()))
            .collect())
    }
    fn counted<E>(values: Vec<E>, n: usize) -> Result<Vec<E>, String> {
        if values.len() != n {
            return Err(format!("{} values for {n} elements", values.len()));
        }
        Ok(values)
    }
    let data = match (data_type, raw) {
        (FLOAT, Some(raw)) => TensorData::new(from_raw(raw, n, f32::from_le_bytes)?, shape),
        (FLOAT, None) => TensorData::new(
            counted(floats.into_iter().map(f32::from_le_bytes).collect(), n)?,
            shape,
        ),
        (DOUBLE, Some(raw)) => TensorData::new(from_raw(raw, n, f64::from_le_bytes)?, shape),
        (DOUBLE, None) => TensorData::new(
            counted(doubles.into_iter().map(f64::from_le_bytes).collect(), n)?,
            shape,
        ),
        (INT32, Some(raw)) => TensorData::new(from_raw(raw, n, i32::from_le_bytes)?, shape),
        (INT32, None) => TensorData::new(
            counted(int32s.into_iter().map(|v| v as i64 as i32).collect(), n)?,
            shape,
        ),
        (INT64, Some(raw)) => TensorData::new(from_raw(raw, n, i64::from_le_bytes)?, shape),
        (INT64, None) => TensorData::new(
            counted(int64s.into_iter().map(|v| v as i64).collect(), n)?,
            shape,
        ),
        (BOOL, Some(raw)) => TensorData::new(from_raw(raw, n, |[b]: [u8; 1]| b != 0)?, shape),
        (BOOL, None) => TensorData::new(
            counted(int32s.into_iter().map(|v| v != 0).collect(), n)?,
            shape,
        ),
        (other, _) => return Err(format!("TensorProto data_type {other}")),
    };
    Ok(data)
}

// ---------------------------------------------------------------------------------------------
// Comparison.

#[derive(PartialEq, Debug, Clone, Copy)]
enum Kind {
    Float,
    Int,
    Bool,
    Other,
}

fn kind(dtype: DType) -> Kind {
    match dtype {
        DType::F64 | DType::F32 | DType::Flex32 | DType::F16 | DType::BF16 => Kind::Float,
        DType::I64
        | DType::I32
        | DType::I16
        | DType::I8
        | DType::U64
        | DType::U32
        | DType::U16
        | DType::U8 => Kind::Int,
        DType::Bool(_) => Kind::Bool,
        _ => Kind::Other,
    }
}

/// The element width differs within a kind (f32 for f64, i64 for i32): the interpreter computes
/// floats in the backend's float type and integers as i64, so this is noted, not failed.
fn width_differs(actual: DType, expected: DType) -> bool {
    let canonical = |d: DType| if d == DType::Flex32 { DType::F32 } else { d };
    kind(actual) != Kind::Bool && canonical(actual) != canonical(expected)
}

/// `None` when `actual` matches `expected`, else why not.
fn compare(actual: &TensorData, expected: &TensorData) -> Option<String> {
    if actual.shape().as_slice() != expected.shape().as_slice() {
        return Some(format!(
            "shape {:?}, expected {:?}",
            actual.shape().as_slice(),
            expected.shape().as_slice()
        ));
    }
    let (ka, ke) = (kind(actual.dtype()), kind(expected.dtype()));
    if ka != ke || ka == Kind::Other {
        return Some(format!(
            "dtype {:?}, expected {:?}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    match ke {
        Kind::Float => {
            let a: Vec<f64> = actual.iter::<f64>().collect();
            let b: Vec<f64> = expected.iter::<f64>().collect();
            let mut bad = 0;
            let mut worst: Option<(usize, f64)> = None; // index, excess over the tolerance
            for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                let ok = if y.is_nan() {
                    x.is_nan()
                } else if y.is_infinite() || x.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= ATOL + RTOL * y.abs()
                };
                if !ok {
                    bad += 1;
                    let excess = if x.is_finite() && y.is_finite() {
                        (x - y).abs() - RTOL * y.abs()
                    } else {
                        f64::INFINITY
                    };
                    if worst.is_none_or(|(_, e)| excess > e) {
                        worst = Some((i, excess));
                    }
                }
            }
            let (i, _) = worst?;
            let max_abs = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            Some(format!(
                "{bad}/{} values off (rtol {RTOL}, atol {ATOL}); worst at flat index {i}: got {}, expected {}; max |diff| {max_abs:.3e}",
                b.len(),
                a[i],
                b[i]
            ))
        }
        Kind::Int | Kind::Bool => {
            let a: Vec<i64> = actual.iter::<i64>().collect();
            let b: Vec<i64> = expected.iter::<i64>().collect();
            let bad: Vec<usize> = (0..b.len()).filter(|&i| a[i] != b[i]).collect();
            let &i = bad.first()?;
            Some(format!(
                "{}/{} values differ; first at flat index {i}: got {}, expected {}",
                bad.len(),
                b.len(),
                a[i],
                b[i]
            ))
        }
        Kind::Other => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running one test.

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static CAPTURING: RefCell<bool> = const { RefCell::new(false) };
}

fn read_pbs(dir: &Path, prefix: &str) -> Result<Vec<TensorData>, String> {
    let mut out = Vec::new();
    for i in 0.. {
        let path = dir.join(format!("{prefix}_{i}.pb"));
        if !path.exists() {
            break;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(decode_tensor(&bytes).map_err(|e| format!("fixture {prefix}_{i}.pb: {e}"))?);
    }
    Ok(out)
}

/// Ok with notes (outputs whose element width differs from ONNX's), or why the test fails.
fn run_case(dir: &Path, device: &Device) -> Result<Vec<String>, String> {
    let data_dir = dir.join("test_data_set_0");
    let inputs = read_pbs(&data_dir, "input")?;
    let expected = read_pbs(&data_dir, "output")?;
    let model =
        OnnxModel::load(dir.join("model.onnx"), device).map_err(|e| format!("load: {e}"))?;
    let values = inputs
        .into_iter()
        .enumerate()
        .map(|(i, data)| Value::from_data(data, device).map_err(|e| format!("input {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = model.run(values).map_err(|e| format!("run: {e}"))?;
    if outputs.len() != expected.len() {
        return Err(format!(
            "{} outputs, expected {}",
            outputs.len(),
            expected.len()
        ));
    }
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    for (i, (value, want)) in outputs.into_iter().zip(&expected).enumerate() {
        match value.into_data() {
            Err(e) => problems.push(format!("output {i}: into_data: {e}")),
            Ok(got) => {
                if let Some(why) = compare(&got, want) {
                    problems.push(format!("output {i}: {why}"));
                } else if width_differs(got.dtype(), want.dtype()) {
                    notes.push(format!("{:?} for {:?}", got.dtype(), want.dtype()));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(notes)
    } else {
        Err(problems.join("; "))
    }
}

/// [`run_case`], with a panic turned into an error naming where it happened.
fn run_case_caught(dir: &Path, device: &Device) -> Result<Vec<String>, String> {
    match panic::catch_unwind(AssertUnwindSafe(|| run_case(dir, device))) {
        Ok(result) => result,
        Err(payload) => {
            let message = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(format!("PANIC: {message}"))
        }
    }
}

#[test]
fn onnx_backend_node_tests() {
    let device = common::device();
    let filter = std::env::var("FIRELIGHT_ONNX_TEST").ok();
    let claimed: BTreeSet<&str> = SUPPORTED_OPS.iter().copied().collect();
    let cases = read_index();

    // The fixture directories and INDEX.json agree.
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let indexed: BTreeSet<String> = cases.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        on_disk, indexed,
        "tests/fixtures/onnx_node and its INDEX.json disagree: rerun tools/onnx/extract_node_tests.py"
    );

    // Panics on this thread become failures: keep their message and location, print nothing.
    // Other threads (other tests) keep the usual hook.
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if CAPTURING.with(|c| *c.borrow()) {
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
        } else {
            previous_hook(info);
        }
    }));
    CAPTURING.with(|c| *c.borrow_mut() = true);

    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new(); // op -> (passed, run)
    let mut skipped_ops: BTreeMap<String, usize> = BTreeMap::new(); // unclaimed op -> tests
    let mut widths: BTreeMap<String, usize> = BTreeMap::new(); // "F32 for F64" -> outputs
    let mut failures = Vec::new();
    let (mut run, mut passed, mut skipped, mut random, mut declined_count) = (0, 0, 0, 0, 0);
    for case in &cases {
        if filter.as_deref().is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        if RANDOM_OUTPUTS.contains(&case.name.as_str()) {
            random += 1;
            continue;
        }
        let unclaimed: Vec<&String> = case
            .op_types
            .iter()
            .filter(|op| !claimed.contains(op.as_str()))
            .collect();
        if !unclaimed.is_empty() {
            skipped += 1;
            for op in unclaimed {
                *skipped_ops.entry(op.clone()).or_default() += 1;
            }
            continue;
        }
        if let Some(why) = declined(&case.name) {
            match run_case_caught(&fixtures().join(&case.name), &device) {
                Err(message)
                    if !message.starts_with("PANIC")
                        && !message.contains("values off")
                        && !message.contains("differ") =>
                {
                    declined_count += 1;
                }
                other => failures.push(format!(
                    "{} [declined: {why}] must fail with a clear error, got {other:?}",
                    case.name
                )),
            }
            continue;
        }
        run += 1;
        let result = run_case_caught(&fixtures().join(&case.name), &device);
        for op in &case.op_types {
            let entry = per_op.entry(op.clone()).or_default();
            entry.1 += 1;
            entry.0 += usize::from(result.is_ok());
        }
        match result {
            Ok(notes) => {
                passed += 1;
                for note in notes {
                    *widths.entry(note).or_default() += 1;
                }
            }
            Err(why) => failures.push(format!(
                "{} [{}]: {why}",
                case.name,
                case.op_types.join(",")
            )),
        }
    }
    CAPTURING.with(|c| *c.borrow_mut() = false);

    eprintln!(
        "ONNX node tests: {passed}/{run} passed, {skipped} skipped (ops not in SUPPORTED_OPS), \
         {random} not run (random expected outputs), {declined_count} declined variants refused with an error"
    );
    eprintln!("{:<22}{:>6}{:>6}", "op", "pass", "run");
    for (op, (ok, total)) in &per_op {
        let mark = if ok == total { "" } else { "  <--" };
        eprintln!("{op:<22}{ok:>6}{total:>6}{mark}");
    }
    let untested: Vec<&str> = claimed
        .iter()
        .copied()
        .filter(|op| !per_op.contains_key(*op))
        .collect();
    if !untested.is_empty() && filter.is_none() {
        eprintln!(
            "claimed ops without a node test here: {}",
            untested.join(" ")
        );
    }
    for (note, n) in &widths {
        eprintln!("passing outputs returned as {note} (element width, not checked): {n}");
    }
    if !skipped_ops.is_empty() {
        let list: Vec<String> = skipped_ops
            .iter()
            .map(|(op, n)| format!("{op} ({n})"))
            .collect();
        eprintln!("skipped, unclaimed ops (tests): {}", list.join(", "));
    }
    assert!(
        run > 0 || filter.is_some(),
        "no ONNX node test ran: SUPPORTED_OPS claims none of the fixtures' ops"
    );
    assert!(
        failures.is_empty(),
        "{} of {run} ONNX node tests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The harness itself (no interpreter involved).

#[test]
fn tensor_proto_decoding_matches_index() {
    let index = std::fs::read_to_string(fixtures().join("INDEX.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let mut checked = 0;
    for test in index["tests"].as_array().unwrap() {
        let dir = fixtures()
            .join(test["name"].as_str().unwrap())
            .join("test_data_set_0");
        for (kind, prefix) in [("inputs", "input"), ("outputs", "output")] {
            for (i, info) in test[kind].as_array().unwrap().iter().enumerate() {
                let bytes = std::fs::read(dir.join(format!("{prefix}_{i}.pb"))).unwrap();
                let data = decode_tensor(&bytes)
                    .unwrap_or_else(|e| panic!("{}/{prefix}_{i}.pb: {e}", test["name"]));
                let shape: Vec<usize> = info["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(
                    data.shape().as_slice(),
                    &shape[..],
                    "{} {prefix}_{i}",
                    test["name"]
                );
                let dtype = match info["dtype"].as_str().unwrap() {
                    "float32" => DType::F32,
                    "float64" => DType::F64,
                    "int32" => DType::I32,
                    "int64" => DType::I64,
                    "bool" => bool_dtype(),
                    other => panic!("dtype {other} in INDEX.json"),
                };
                assert_eq!(data.dtype(), dtype, "{} {prefix}_{i}", test["name"]);
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
    // The comparison itself.
    let a = TensorData::new(vec![1.0f32, 2.0, f32::NAN], [3]);
    assert_eq!(compare(&a, &a.clone()), None);
    let b = TensorData::new(vec![1.0005f32, 2.0, f32::NAN], [3]);
    assert_eq!(compare(&b, &a), None, "within rtol 1e-3");
    let c = TensorData::new(vec![1.01f32, 2.0, f32::NAN], [3]);
    assert!(compare(&c, &a).is_some());
    let d = TensorData::new(vec![1.0f32, 2.0, 0.0], [3]);
    assert!(compare(&d, &a).is_some(), "NaN expected");
    assert!(
        compare(
            &TensorData::new(vec![1i64, 2], [2]),
            &TensorData::new(vec![1i64, 3], [2])
        )
        .is_some()
    );
    assert!(
        compare(
            &TensorData::new(vec![1i64, 2], [2]),
            &TensorData::new(vec![1i64, 2], [1, 2])
        )
        .is_some()
    );
}

fn bool_dtype() -> DType {
    TensorData::new(vec![true], [1]).dtype()
}

// ---------------------------------------------------------------------------------------------
// The operator table in the docs, generated from the code.

/// `docs/onnx-ops.md` and `crates/firelight-onnx/SUPPORTED_OPS.txt` (the list
/// `tools/onnx/extract_node_tests.py` selects node tests by) are generated from
/// [`SUPPORTED_OPS`], the declined variants above and the node tests here. Regenerate with
/// `FIRELIGHT_BLESS=1 cargo test --test onnx_conformance`.
#[test]
fn supported_ops_docs_are_current() {
    let cases = read_index();
    let mut tests_per_op: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        for op in &case.op_types {
            if let Some(claimed) = SUPPORTED_OPS.iter().find(|o| **o == op.as_str()) {
                *tests_per_op.entry(claimed).or_default() += 1;
            }
        }
    }
    let mut doc = String::from(
        "# ONNX operators firelight runs\n\n\
         Generated from `firelight_onnx::SUPPORTED_OPS` by `tests/onnx_conformance.rs`\n\
         (`FIRELIGHT_BLESS=1 cargo test --test onnx_conformance` rewrites it). Every operator is\n\
         checked against ONNX's own backend node tests (`tests/fixtures/onnx_node`, from ONNX\n\
         v1.22.0): all tests whose operators are all listed here must pass, at rtol 1e-3 and atol\n\
         1e-7. A model using any other operator is refused at load, naming every such node.\n\n\
         Opsets 1 to 24 are read (onnx-ir). Tensors up to rank 6; float types compute in the\n\
         backend's float (f32), integer types in its int.\n\n\
         The DeepLift column says how `DeepLift` passes each operator: a rule (Rescale for\n\
         element-wise nonlinearities, Captum's max-pool rule), linear (the gradient is the\n\
         multiplier), or refused with the node's name when applied to values that depend on\n\
         the input.\n\n\
         | operator | ONNX node tests | DeepLift |\n|---|---:|---|\n",
    );
    for op in SUPPORTED_OPS {
        let n = tests_per_op.get(op).copied().unwrap_or(0);
        let count = if n == 0 {
            "none in the suite".to_string()
        } else {
            n.to_string()
        };
        doc.push_str(&format!(
            "| {op} | {count} | {} |\n",
            firelight::onnx::deeplift_treatment(op)
        ));
    }
    doc.push_str(
        "\n## Variants refused with an error\n\n\
         These variants of listed operators fail with a clear error (the conformance test checks\n\
         they never return numbers):\n\n",
    );
    let mut reasons: Vec<&str> = DECLINED_VARIANTS.iter().map(|(_, why)| *why).collect();
    reasons.dedup();
    for why in reasons {
        doc.push_str(&format!("- {why}\n"));
    }
    doc.push_str(
        "- Dropout in training mode with a non-zero ratio (random: firelight runs inference)\n",
    );
    let list: String = SUPPORTED_OPS.iter().map(|op| format!("{op}\n")).collect();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let targets = [
        (root.join("docs/onnx-ops.md"), doc),
        (root.join("crates/firelight-onnx/SUPPORTED_OPS.txt"), list),
    ];
    for (path, expected) in targets {
        if std::env::var_os("FIRELIGHT_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == expected,
            "{} is out of date: run FIRELIGHT_BLESS=1 cargo test --test onnx_conformance",
            path.display()
        );
    }
}
