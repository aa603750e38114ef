//! Untrusted ONNX files: the loader refuses malformed models with an error that says what is
//! wrong, and never panics.
//!
//! `tests/fixtures/onnx_malformed/` is written by `tools/onnx/make_malformed.py`: one `.onnx` per
//! case, `cases.json` with what each case is and the (lowercase) substrings its error message
//! should contain, and `valid_small.onnx` (Conv -> Relu -> Flatten -> Gemm), the model the
//! truncated/altered cases and the mutation tests start from.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use burn::tensor::{Device, TensorData};
use firelight::onnx::{OnnxModel, Value};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_malformed")
}

fn cases_json() -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join("cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json is not JSON")
}

struct Case {
    file: String,
    description: String,
    expect: Vec<String>,
}

fn cases() -> Vec<Case> {
    let json = cases_json();
    let mut out: Vec<Case> = json["cases"]
        .as_object()
        .expect("cases.json has no cases")
        .iter()
        .map(|(file, case)| {
            let mut expect = vec![case["expect"].as_str().unwrap().to_lowercase()];
            expect.extend(
                case["also_expect"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().unwrap().to_lowercase()),
            );
            Case {
                file: file.clone(),
                description: case["description"].as_str().unwrap_or_default().to_string(),
                expect,
            }
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    assert!(!out.is_empty());
    out
}

fn valid_bytes() -> Vec<u8> {
    std::fs::read(dir().join("valid_small.onnx")).expect("valid_small.onnx")
}

// ---------------------------------------------------------------------------------------------
// Panics as values, quietly (the default hook keeps printing for threads not inside `caught`).

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: Cell<Option<String>> = const { Cell::new(None) };
    static FIRST_PANIC: Cell<Option<String>> = const { Cell::new(None) };
}

/// `f()`, or the panic it raised (message and location) as `Err`.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let message = info.to_string();
                FIRST_PANIC.with(|p| {
                    let first = p.take().unwrap_or_else(|| message.clone());
                    p.set(Some(first));
                });
                LAST_PANIC.with(|p| p.set(Some(message)));
            } else {
                previous(info);
            }
        }));
    });
    CAPTURING.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    result.map_err(|payload| {
        LAST_PANIC
            .with(|p| p.take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into())
    })
}

/// `f()` (or the panic that escaped it, as `Err`), and the first panic raised while it ran,
/// caught inside or not: firelight-onnx turns panics inside Burn into errors, and this sees them.
fn any_panic<T>(f: impl FnOnce() -> T) -> (Result<T, String>, Option<String>) {
    LAST_PANIC.with(|p| p.set(None));
    FIRST_PANIC.with(|p| p.set(None));
    let result = caught(f);
    (result, FIRST_PANIC.with(|p| p.take()))
}

/// What loading gave: `Ok(())` (loaded), `Err(message)`, or the panic.
fn outcome(
    load: impl FnOnce() -> firelight::core::Result<OnnxModel>,
) -> Result<Result<(), String>, String> {
    caught(|| load().map(drop).map_err(|e| e.to_string()))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_models_are_refused_without_panicking() {
    let device = Device::flex();
    let mut problems = Vec::new();
    for case in cases() {
        let path = dir().join(&case.file);
        let bytes = std::fs::read(&path).unwrap();
        for (how, result) in [
            ("load", outcome(|| OnnxModel::load(&path, &device))),
            (
                "from_bytes",
                outcome(|| OnnxModel::from_bytes(&bytes, &device)),
            ),
        ] {
            match result {
                Err(panic) => problems.push(format!("{} ({how}): PANIC: {panic}", case.file)),
                Ok(Ok(())) => problems.push(format!(
                    "{} ({how}): loaded; {}",
                    case.file, case.description
                )),
                Ok(Err(_)) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn malformed_model_errors_say_what_is_wrong() {
    let device = Device::flex();
    let mut problems = Vec::new();
    let all = cases();
    for case in &all {
        let path = dir().join(&case.file);
        // Panics and models that load are the other test's business.
        let Ok(Err(message)) = outcome(|| OnnxModel::load(&path, &device)) else {
            continue;
        };
        // The file's own name (`cycle.onnx`, ...) would satisfy some expectations by itself.
        let lower = message
            .replace(path.to_string_lossy().as_ref(), "<model>")
            .replace(&case.file, "<model>")
            .to_lowercase();
        let missing: Vec<&String> = case
            .expect
            .iter()
            .filter(|s| !lower.contains(s.as_str()))
            .collect();
        eprintln!("{:<36} {message}", case.file);
        if !missing.is_empty() {
            problems.push(format!(
                "{} ({}): the error lacks {missing:?}: {message:?}",
                case.file, case.description
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} errors do not say what is wrong:\n{}",
        problems.len(),
        all.len(),
        problems.join("\n")
    );
}

/// Models with degenerate declared shapes (an empty batch, a zero width, a channel count the
/// weight does not take) may load; run on zeros of that shape they give Ok or Err, and nothing
/// panics on the way, not even inside Burn where firelight-onnx would catch it: such a panic is
/// a check missing before a Burn call (and without debug assertions, in release builds, the
/// same arithmetic wraps instead of panicking).
#[test]
fn degenerate_shapes_are_checked_before_burn_panics() {
    let device = Device::flex();
    let json = cases_json();
    let run_cases = json["run_cases"]
        .as_object()
        .expect("cases.json has no run_cases");
    let mut problems = Vec::new();
    for (file, case) in run_cases {
        let shape: Vec<usize> = case["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let path = dir().join(file);
        let (result, first_panic) = any_panic(|| -> Result<(), String> {
            let model = OnnxModel::load(&path, &device).map_err(|e| format!("load: {e}"))?;
            let input = Value::from_data(TensorData::zeros::<f32, _>(shape.clone()), &device)
                .map_err(|e| format!("input: {e}"))?;
            let outputs = model.run(vec![input]).map_err(|e| format!("run: {e}"))?;
            for output in outputs {
                output.into_data().map_err(|e| format!("into_data: {e}"))?;
            }
            Ok(())
        });
        let outcome = match &result {
            Ok(Ok(())) => "Ok".to_string(),
            Ok(Err(e)) => format!("Err({e})"),
            Err(_) => "PANIC reached the caller".to_string(),
        };
        eprintln!("{file:<32} {outcome}");
        if let Some(panic) = first_panic {
            problems.push(format!(
                "{file} ({}): panicked{}: {panic}",
                case["description"].as_str().unwrap_or_default(),
                if result.is_ok() {
                    " (caught inside, returned as an error)"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} models panicked:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The model the corpus is derived from is fine: it loads (from a path and from bytes) and
/// computes what numpy and onnxruntime compute.
#[test]
fn valid_small_model_loads_and_runs() {
    let device = Device::flex();
    let json = cases_json();
    let valid = &json["valid"];
    let floats = |key: &str| -> Vec<f32> {
        valid[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let dims = |key: &str| -> Vec<usize> {
        valid[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let (x, y) = (floats("input"), floats("output"));
    for model in [
        OnnxModel::load(dir().join("valid_small.onnx"), &device).expect("load"),
        OnnxModel::from_bytes(&valid_bytes(), &device).expect("from_bytes"),
    ] {
        let input =
            Value::from_data(TensorData::new(x.clone(), dims("input_shape")), &device).unwrap();
        let outputs = model.run(vec![input]).expect("run");
        assert_eq!(outputs.len(), 1);
        let out = outputs.into_iter().next().unwrap().into_data().unwrap();
        assert_eq!(out.shape().as_slice(), &dims("output_shape")[..]);
        let got: Vec<f32> = out.iter::<f32>().collect();
        for (g, e) in got.iter().zip(&y) {
            assert!(
                (g - e).abs() <= 1e-4 + 1e-4 * e.abs(),
                "got {got:?}, expected {y:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations of the valid model.

#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the bytes before this point.
    Truncate(Index),
    /// XOR these bytes with a non-zero mask.
    Flip(Vec<(Index, u8)>),
    /// Overwrite a range with these bytes (the file grows if the range passes its end).
    Overwrite(Index, Vec<u8>),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<Index>(), 1u8..=255), 1..8).prop_map(Mutation::Flip),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(at, bytes)| Mutation::Overwrite(at, bytes)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
            Mutation::Flip(flips) => {
                for (at, mask) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            Mutation::Overwrite(at, new) => {
                let start = at.index(bytes.len());
                for (k, b) in new.iter().enumerate() {
                    match bytes.get_mut(start + k) {
                        Some(slot) => *slot = *b,
                        None => bytes.push(*b),
                    }
                }
            }
            Mutation::Insert(at, new) => {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, new.iter().copied());
            }
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed),
        ..ProptestConfig::default()
    })]

    /// `from_bytes` on a mutated model returns Ok or Err, never panics.
    #[test]
    fn mutated_models_load_or_fail_without_panicking(mutations in prop::collection::vec(mutation(), 1..4)) {
        let bytes = mutate(valid_bytes(), &mutations);
        let device = Device::flex();
        let result = caught(|| OnnxModel::from_bytes(&bytes, &device).map(drop).map_err(|e| e.to_string()));
        prop_assert!(result.is_ok(), "from_bytes panicked: {}\nmodel ({} bytes): {}", result.unwrap_err(), bytes.len(), hex(&bytes));
    }

    /// A mutated model that loads runs on the original input (zeros, [1, 1, 4, 4]) to Ok or Err,
    /// never a panic.
    #[test]
    fn mutated_models_that_load_run_without_panicking(mutations in prop::collection::vec(mutation(), 1..4)) {
        let bytes = mutate(valid_bytes(), &mutations);
        let device = Device::flex();
        let result = caught(|| {
            let Ok(model) = OnnxModel::from_bytes(&bytes, &device) else { return };
            let Ok(input) = Value::from_data(TensorData::zeros::<f32, _>([1, 1, 4, 4]), &device) else { return };
            let _ = model.run(vec![input]).and_then(|outs| {
                outs.into_iter().map(|v| v.into_data()).collect::<Result<Vec<_>, _>>()
            });
        });
        prop_assert!(result.is_ok(), "panicked: {}\nmodel ({} bytes): {}", result.unwrap_err(), bytes.len(), hex(&bytes));
    }
}
