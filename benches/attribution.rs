//! Throughput of Saliency, Integrated Gradients (n_steps = 50) and DeepLift on ResNet-18
//! (224x224, random weights) at batch 1 and 8, on the CPU backend (flex). DeepLift runs the
//! inputs and their references as one batch of twice the rows.
//!
//! `cargo bench --bench attribution` prints one line per case; `tools/parity/bench_captum.py` times
//! Captum on the same shapes. Set `FIRELIGHT_BENCH_REPS` to change the repetitions (default 3;
//! the median is reported), and `FIRELIGHT_BENCH_IBS` to time Integrated Gradients at other
//! `internal_batch_size`s (comma-separated; default 50). Results and commands: BENCHMARKS.md.

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
        let chunk_sizes: Vec<usize> = std::env::var("FIRELIGHT_BENCH_IBS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![50]);
        let names: Vec<String> = chunk_sizes
            .iter()
            .map(|&rows| {
                if rows == 50 {
                    "integrated_gradients_50".to_string()
                } else {
                    format!("integrated_gradients_50_ibs{rows}")
                }
            })
            .collect();
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
        ];
        for (name, &rows) in names.iter().zip(&chunk_sizes) {
            let (model, x, target) = (&model, &x, &target);
            cases.push((
                name.as_str(),
                Box::new(move || {
                    IntegratedGradients::new(model)
                        .n_steps(50)
                        .internal_batch_size(rows)
                        .attribute(x, target)
                        .expect("ig");
                }),
            ));
        }
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
