//! Throughput of the perturbation methods next to Captum's (`tools/parity/bench_captum_perturb.py`
//! times the same cases):
//!
//! - Occlusion on ResNet-18 (224x224, random weights, batch 1), windows `(3, 16, 16)`, strides
//!   `(3, 8, 8)`: 729 occluded forward passes;
//! - KernelSHAP and LIME on ResNet-18, 200 samples over about 50 SLIC superpixels of the bundled
//!   photo (the mask is written to `target/perturb_bench_mask.npy` for the Python side);
//! - Feature Ablation, Shapley Value Sampling (25 permutations), KernelSHAP and LIME (200 samples
//!   each) on the diabetes MLP for its 89 held-out rows.
//!
//! Each at `perturbations_per_eval` 1 (Captum's default) and 16. The image cases run once after a
//! warm-up forward pass; the tabular ones are the median of `FIRELIGHT_BENCH_REPS` runs (default
//! 3). `cargo bench --bench perturb [filter]`; results and commands: BENCHMARKS.md.

mod common;

use std::time::{Duration, Instant};

use common::{case_filter, imagenet_batch, reps, time};
use firelight::bundled::{ImageClassifier, default_image};
use firelight::core::npy::write_npy;
use firelight::models::{RandomWeights, ResNet18};
use firelight::perturb::{
    FeatureAblation, FeatureMask, KernelShap, Lime, Occlusion, ShapleyValueSampling,
};
use firelight::prelude::*;
use firelight::tabular::{Table, TabularModel};
use firelight::viz::{RgbImage, Slic, slic};

fn once(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    let filter = case_filter();
    let wanted = |name: &str| filter.as_deref().is_none_or(|pat| name.contains(pat));
    let device = Device::flex();
    println!("case                                  per_eval  seconds  inputs/s");
    let report = |name: &str, per_eval: usize, rows: usize, t: Duration| {
        let s = t.as_secs_f64();
        println!(
            "{name:<37} {per_eval:>8}  {s:>7.3}  {:>8.3}",
            rows as f64 / s
        );
    };

    if wanted("resnet18") {
        let model = ResNet18::new(&mut RandomWeights::new(0), 1000, &device).expect("model");
        let (x, target) = imagenet_batch(1, &device);
        let photo = ImageClassifier::efficientnet_lite0(&device)
            .expect("bundled model")
            .crop(&RgbImage::read(default_image()).expect("bundled photo"));
        let (labels, count) = slic(
            &photo,
            Slic {
                n_segments: 50,
                ..Slic::default()
            },
        )
        .expect("superpixels");
        let ids: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let mask_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("perturb_bench_mask.npy");
        write_npy(&mask_file, &[1, 1, 224, 224], &ids).expect("mask written");
        println!("({count} superpixels, mask in {})", mask_file.display());
        let mask = FeatureMask::ids(
            labels.iter().map(|&l| l as i64).collect(),
            vec![1, 1, 224, 224],
        )
        .expect("mask");
        // Warm the thread pools and allocator.
        model.predict(&(&x).into()).expect("forward");
        for per_eval in [1, 16] {
            if wanted("occlusion") {
                let t = once(|| {
                    Occlusion::new(&model, [3, 16, 16])
                        .strides([3, 8, 8])
                        .perturbations_per_eval(per_eval)
                        .attribute(&x, &target)
                        .expect("occlusion");
                });
                report("occlusion resnet18 w16 s8", per_eval, 1, t);
            }
            if wanted("kernel_shap") {
                let t = once(|| {
                    KernelShap::new(&model)
                        .feature_mask(mask.clone())
                        .n_samples(200)
                        .perturbations_per_eval(per_eval)
                        .attribute(&x, &target)
                        .expect("kernel shap");
                });
                report("kernel_shap resnet18 200x50", per_eval, 1, t);
            }
            if wanted("lime") {
                let t = once(|| {
                    Lime::new(&model)
                        .feature_mask(mask.clone())
                        .n_samples(200)
                        .perturbations_per_eval(per_eval)
                        .attribute(&x, &target)
                        .expect("lime");
                });
                report("lime resnet18 200x50", per_eval, 1, t);
            }
        }
    }

    if wanted("mlp") {
        let tabular = TabularModel::diabetes_mlp(&device).expect("bundled MLP");
        let table = Table::read_csv(TabularModel::diabetes_test_rows(), &tabular.spec.features)
            .expect("rows");
        let inputs = tabular.inputs(&table, &device).expect("inputs");
        let rows = table.len();
        let model = tabular.model();
        let target = Target::class(0);
        let reps = reps();
        for per_eval in [1, 16] {
            if wanted("feature_ablation") {
                let t = time(reps, || {
                    FeatureAblation::new(model)
                        .perturbations_per_eval(per_eval)
                        .attribute_inputs(&inputs, &target)
                        .expect("feature ablation");
                });
                report("feature_ablation mlp", per_eval, rows, t);
            }
            if wanted("shapley") {
                let t = time(reps, || {
                    ShapleyValueSampling::new(model)
                        .perturbations_per_eval(per_eval)
                        .attribute_inputs(&inputs, &target)
                        .expect("shapley sampling");
                });
                report("shapley_value_sampling mlp 25", per_eval, rows, t);
            }
            if wanted("kernel_shap") {
                let t = time(reps, || {
                    KernelShap::new(model)
                        .n_samples(200)
                        .perturbations_per_eval(per_eval)
                        .attribute_inputs(&inputs, &target)
                        .expect("kernel shap");
                });
                report("kernel_shap mlp 200", per_eval, rows, t);
            }
            if wanted("lime") {
                let t = time(reps, || {
                    Lime::new(model)
                        .n_samples(200)
                        .perturbations_per_eval(per_eval)
                        .attribute_inputs(&inputs, &target)
                        .expect("lime");
                });
                report("lime mlp 200", per_eval, rows, t);
            }
        }
    }
}
