//! Throughput of Grad-CAM and Score-CAM at `layer4` of ResNet-18 (224x224, random weights) at
//! batch 1 and 8, on the CPU backend (flex).
//!
//! `cargo bench --bench cam` prints one line per case; `tools/parity/bench_grad_cam.py` times
//! pytorch-grad-cam on the same shapes. Grad-CAM is the median of `FIRELIGHT_BENCH_REPS` runs
//! (default 3) after a warm-up; Score-CAM (512 forward passes per image) is timed once, after the
//! Grad-CAM runs have warmed up the thread pools. Results and commands: BENCHMARKS.md.

mod common;

use std::time::Instant;

use common::{case_filter, imagenet_batch, reps, time};
use firelight::cam::{Cam, GradCam, ScoreCam};
use firelight::models::{RandomWeights, ResNet18};
use firelight::prelude::*;

fn main() {
    let reps = reps();
    let filter = case_filter();
    let device = Device::flex();
    let model = ResNet18::new(&mut RandomWeights::new(0), 1000, &device).expect("model");
    println!("case                      batch  seconds  inputs/s");
    for batch in [1usize, 8] {
        let (x, target) = imagenet_batch(batch, &device);
        let report = |name: &str, seconds: f64| {
            println!(
                "{name:<25} {batch:>5}  {seconds:>7.3}  {:>8.3}",
                batch as f64 / seconds
            );
        };
        let wanted = |name: &str| filter.as_deref().is_none_or(|pat| name.contains(pat));
        if wanted("gradcam") {
            let t = time(reps, || {
                Cam::new(&model, ["layer4"], GradCam)
                    .and_then(|cam| cam.attribute(&x, &target))
                    .expect("gradcam");
            });
            report("gradcam", t.as_secs_f64());
        }
        if wanted("scorecam") {
            let start = Instant::now();
            Cam::new(&model, ["layer4"], ScoreCam::default())
                .and_then(|cam| cam.attribute(&x, &target))
                .expect("scorecam");
            report("scorecam", start.elapsed().as_secs_f64());
        }
    }
}
