//! The page's work natively, to set beside the same work in wasm (`benches/wasm.mjs`): predict,
//! Grad-CAM and IG-50 (8 rows per batch, the page's default) on the bundled EfficientNet-Lite0 and
//! photo, through the same `WebSession` calls. Median of `FIRELIGHT_BENCH_REPS` runs (default 3)
//! after one warm-up. `RAYON_NUM_THREADS=1` gives the one-thread figure wasm is compared with.
//!
//! `cargo bench -p firelight-web --bench web`; results and commands: BENCHMARKS.md.

use std::time::Instant;

use firelight_web::{ExplainOptions, WebSession};

const MODEL: &[u8] = include_bytes!("../../../models/efficientnet_lite0/model.onnx");
const LABELS: &str = include_str!("../../../models/efficientnet_lite0/labels.json");
const PREPROCESS: &str = include_str!("../../../models/efficientnet_lite0/preprocess.json");
const PHOTO: &[u8] = include_bytes!("../../../models/images/chelsea.png");

fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let reps = std::env::var("FIRELIGHT_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let session = WebSession::load("EfficientNet-Lite0", MODEL, Some(LABELS), Some(PREPROCESS))
        .expect("the bundled model");
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("native flex, {threads} threads: case, median seconds of {reps}");
    let t = median(reps, || {
        session.predict(PHOTO, "chelsea.png", 5).expect("predict");
    });
    println!("predict {t:.3}");
    for (method, options) in [
        ("gradcam", "{}"),
        ("integrated_gradients", r#"{"n_steps": 50}"#),
    ] {
        let options = ExplainOptions::from_json(options).expect("options");
        let t = median(reps, || {
            session
                .explain(PHOTO, "chelsea.png", method, &options, None)
                .expect("explains");
        });
        println!("{method} {t:.3}");
    }
}
