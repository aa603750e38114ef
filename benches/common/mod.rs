//! Timing and inputs shared by the benchmarks.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use firelight::prelude::*;

/// The `firelight` command's allocator, so that the benchmarks time what it does. glibc's malloc
/// returns every large buffer (a batch of activations is hundreds of MB) to the kernel on free and
/// takes fresh zeroed pages for the next: page clearing, faults and TLB-shootdown interrupts were
/// 40% of an Integrated Gradients run on EfficientNet-B0, which mimalloc's reuse makes 2.1x faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As the command does (its `keep_freed_memory`): mimalloc keeps freed memory for reuse rather
/// than purging it after a second (`mi_option_purge_delay`, option 15 of mimalloc v3); run once,
/// before the first timed call.
fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: sets one of mimalloc's options, which it reads when it next purges.
    ONCE.call_once(|| unsafe { libmimalloc_sys::mi_option_set(15, -1) });
}

/// Repetitions per case: `FIRELIGHT_BENCH_REPS`, default 3.
pub fn reps() -> usize {
    std::env::var("FIRELIGHT_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// The first command-line argument that is not a flag: a substring of the cases to run.
pub fn case_filter() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

/// A deterministic batch of `batch` 224x224 RGB inputs and one class per input.
pub fn imagenet_batch(batch: usize, device: &Device) -> (DynTensor, Target) {
    let data: Vec<f32> = (0..batch * 3 * 224 * 224)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let x = DynTensor::from_vec(data, vec![batch, 3, 224, 224], device).expect("input");
    let target = Target::classes((0..batch).map(|i| (i * 97) % 1000).collect());
    (x, target)
}

/// The median of `times`.
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The median of `reps` calls of `f`, after one warm-up call (allocations, thread pools).
pub fn time(reps: usize, mut f: impl FnMut()) -> Duration {
    keep_freed_memory();
    f();
    median(
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}
