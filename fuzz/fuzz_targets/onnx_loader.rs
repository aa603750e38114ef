//! Fuzzes the ONNX loader with untrusted bytes: `OnnxModel::from_bytes` must return Ok or Err,
//! never panic, abort or allocate without bound. A model that loads is also run once on zeros
//! of its declared input shapes, when those are fully known and small.
//!
//! By default every panic is a crash, also one that firelight-onnx catches and turns into an
//! error (libfuzzer-sys aborts in its panic hook); with `FIRELIGHT_FUZZ_CAUGHT_PANICS_OK=1` only
//! panics that reach the caller are.
//!
//!     cargo +nightly fuzz run onnx_loader      (from the repository root; see fuzz/README.md)

#![no_main]

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

use burn::tensor::{DType, Device, TensorData};
use firelight_onnx::{OnnxModel, Value};
use libfuzzer_sys::fuzz_target;

/// Largest input (elements, all inputs together) the target runs a loaded model on.
const MAX_ELEMENTS: usize = 1 << 16;

/// Set (to anything) to tolerate panics that firelight-onnx catches itself and returns as
/// errors, and stop only on panics that reach the caller.
const CAUGHT_PANICS_OK: &str = "FIRELIGHT_FUZZ_CAUGHT_PANICS_OK";

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    static LENIENT: OnceLock<bool> = OnceLock::new();
    let lenient = *LENIENT.get_or_init(|| {
        let on = std::env::var_os(CAUGHT_PANICS_OK).is_some();
        if on {
            // Replaces libfuzzer-sys's hook, which aborts on every panic, caught or not.
            panic::set_hook(Box::new(|info| {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            }));
        }
        on
    });
    if !lenient {
        run(data);
    } else if panic::catch_unwind(AssertUnwindSafe(|| run(data))).is_err() {
        let message = LAST_PANIC.with(|p| p.borrow_mut().take());
        eprintln!("panic reached the caller: {}", message.unwrap_or_default());
        std::process::abort();
    }
});

fn run(data: &[u8]) {
    let device = Device::flex();
    let Ok(model) = OnnxModel::from_bytes(data, &device) else {
        return;
    };
    let Some(inputs) = zero_inputs(&model, &device) else {
        return;
    };
    if let Ok(outputs) = model.run(inputs) {
        for output in outputs {
            let _ = output.into_data();
        }
    }
}

/// Zeros for each declared graph input, or None when a shape is not fully known, the inputs are
/// large, or an element type is not one the target makes.
fn zero_inputs(model: &OnnxModel, device: &Device) -> Option<Vec<Value>> {
    let mut total = 0usize;
    let mut values = Vec::new();
    for input in model.inputs() {
        let shape: Vec<usize> = input.shape.iter().copied().collect::<Option<_>>()?;
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        total = total.checked_add(n).filter(|&t| t <= MAX_ELEMENTS)?;
        let zeros = match input.dtype? {
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::Flex32 => {
                TensorData::zeros::<f32, _>(shape)
            }
            DType::I64 | DType::I32 | DType::I16 | DType::I8 => TensorData::zeros::<i64, _>(shape),
            DType::U64 | DType::U32 | DType::U16 | DType::U8 => TensorData::zeros::<i64, _>(shape),
            DType::Bool(_) => TensorData::zeros::<bool, _>(shape),
            _ => return None,
        };
        values.push(Value::from_data(zeros, device).ok()?);
    }
    Some(values)
}
