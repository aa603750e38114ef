//! TCAV speed and memory on EfficientNet-Lite0: one concept + 10 random concepts, 3 layers, 50
//! inputs, the same work as `tools/parity/bench_tcav_captum.py` does with Captum (which also
//! writes the data):
//!
//! ```text
//! /work/pyenv/bin/python tools/parity/bench_tcav_captum.py --make-data /tmp/tcav_bench
//! cargo run --release --example tcav_bench -- /tmp/tcav_bench
//! ```
//!
//! Times CAV training (activations of every concept, computed afresh: no cache) and scoring (the
//! gradients of class 340 at the three layers and every CAV), and prints the process's peak
//! resident memory (VmHWM).

use std::path::PathBuf;
use std::time::Instant;

use firelight::bundled::ImageClassifier;
use firelight::concept::{Concept, Tcav};
use firelight::prelude::*;

const LAYERS: [&str; 3] = [
    "/_blocks.5/_project_conv/Conv_output_0",
    "/_blocks.10/Add_output_0",
    "/_blocks.15/_project_conv/Conv_output_0",
];

fn main() -> Result<()> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/tcav_bench".into()),
    );
    let device = Device::flex();
    let classifier = ImageClassifier::efficientnet_lite0(&device)?;
    let transform = &classifier.preprocess;
    let loading = Instant::now();
    let concept = Concept::from_folder("striped", data.join("concept"), transform, &device)?;
    let randoms = (0..10)
        .map(|k| {
            Concept::from_folder(
                format!("random_{k}"),
                data.join(format!("random_{k}")),
                transform,
                &device,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let inputs = Concept::from_folder("inputs", data.join("inputs"), transform, &device)?;
    let loading = loading.elapsed().as_secs_f64();

    let tcav = Tcav::new(classifier.model(), LAYERS)?.batch_size(25);
    let start = Instant::now();
    let sets: Vec<Vec<&Concept>> = randoms.iter().map(|r| vec![&concept, r]).collect();
    let cavs = tcav.compute_cavs(&sets)?;
    let cav_seconds = start.elapsed().as_secs_f64();
    let scores = tcav.interpret(inputs.examples(), &Target::class(340), &cavs)?;
    let seconds = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let sign: Vec<Vec<f32>> = (0..LAYERS.len())
        .map(|l| scores[0][l].iter().map(|s| s.sign_count).collect())
        .collect();
    println!(
        "{{\"firelight_seconds\": {seconds:.2}, \"cav_seconds\": {cav_seconds:.2}, \"image_loading_seconds\": {loading:.2}, \"peak_rss_mib\": {:.0}, \"sign_count_first_set\": {sign:?}}}",
        peak_kib / 1024.0
    );
    Ok(())
}
