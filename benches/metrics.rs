//! Throughput of Captum's two trust metrics on ResNet-18 (224x224, random weights) at batch 1 and
//! 8, on the CPU backend (flex): `infidelity` (Gaussian noise, 10 perturbations per input, of a
//! Saliency map computed beforehand) and `sensitivity_max` of Saliency (10 perturbations,
//! radius 0.02), both with `max_examples_per_batch = 16`.
//!
//! `cargo bench --bench metrics` prints one line per case; `tools/parity/bench_captum_metrics.py`
//! times Captum on the same shapes. `FIRELIGHT_BENCH_REPS` sets the repetitions (default 3;
//! the median is reported). Results and commands: BENCHMARKS.md.

mod common;

use common::{case_filter, imagenet_batch, reps, time};

use firelight::metrics::{Infidelity, SensitivityMax};
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
        let saliency = Saliency::new(&model)
            .abs(false)
            .attribute(&x, &target)
            .expect("saliency");
        let explain = |inputs: &DynTensor, target: &Target| {
            Saliency::new(&model).abs(false).attribute(inputs, target)
        };
        let mut cases: Vec<(&str, Case)> = vec![
            (
                "infidelity",
                Box::new(|| {
                    Infidelity::new(&model)
                        .n_perturb_samples(10)
                        .max_examples_per_batch(16)
                        .score(&x, &saliency, &target)
                        .expect("infidelity");
                }),
            ),
            (
                "sensitivity_max",
                Box::new(|| {
                    SensitivityMax::new(&explain)
                        .n_perturb_samples(10)
                        .max_examples_per_batch(16)
                        .score(&x, &target)
                        .expect("sensitivity");
                }),
            ),
        ];
        for (name, f) in cases.iter_mut() {
            if filter.as_deref().is_some_and(|pat| !name.contains(pat)) {
                continue;
            }
            let t = time(reps, f);
            println!(
                "{name:<25} {batch:>5}  {:>7.3}  {:>8.2}",
                t.as_secs_f64(),
                batch as f64 / t.as_secs_f64()
            );
        }
    }
}
