//! Throughput of Saliency, Integrated Gradients (n_steps = 50) and DeepLift on ResNet-18
//! (224x224, random weights) at batch 1 and 8, on the CPU backend (flex). DeepLift runs the
//! inputs and their references as one batch of twice the rows.
//!
//! `cargo bench --bench attribution` prints one line per case; `tools/parity/bench_captum.py` times
//! Captum on the same shapes. Set `FIRELIGHT_BENCH_REPS` to change the repetitions (default 3;
//! the median is reported). Results and commands: BENCHMARKS.md.

mod common;

use common::{case_filter, imagenet_batch, reps, time};

use firelight::models::{RandomWeights, ResNet18};
use firelight::prelude::*;

/// One timed call.
type Case<'a> = Box<dyn FnMut() + 'a>;

fn main() {
    let reps = reps();
    let filter = case_filter();
    let device = Device::flex();
    let model = ResNet18::new(&mut RandomWeights::new(0), 1000, &device).expect("model");
    println!("case                      batch  seconds  inputs/s");
    for batch in [1usize, 8] {
        let (x, target) = imagenet_batch(batch, &device);
        let mut cases: Vec<(&str, Case)> = vec![
            (
                "saliency",
                Box::new(|| {
                    Saliency::new(&model)
                        .attribute(&x, &target)
                        .expect("saliency");
                }),
            ),
            (
                "deeplift",
                Box::new(|| {
                    firelight::grad::DeepLift::new(&model)
                        .attribute(&x, &target)
                        .expect("deeplift");
                }),
            ),
            (
                "integrated_gradients_50",
                Box::new(|| {
                    IntegratedGradients::new(&model)
                        .n_steps(50)
                        .internal_batch_size(50)
                        .attribute(&x, &target)
                        .expect("ig");
                }),
            ),
        ];
        for (name, f) in cases.iter_mut() {
            if filter.as_deref().is_some_and(|pat| !name.contains(pat)) {
                continue;
            }
            let reps = if name.starts_with("integrated") {
                reps.clamp(1, 2)
            } else {
                reps
            };
            let t = time(reps, f);
            println!(
                "{name:<25} {batch:>5}  {:>7.3}  {:>8.2}",
                t.as_secs_f64(),
                batch as f64 / t.as_secs_f64()
            );
        }
    }
}
