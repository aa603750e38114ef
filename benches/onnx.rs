//! ONNX models through firelight-onnx, CPU backend (flex):
//!
//! - the interpreter's cost: ResNet-18 as the native Burn network vs the same architecture loaded
//!   from ONNX (forward, and Saliency = forward + backward), batch 1 and 8;
//! - Integrated Gradients (50 steps) on ResNet-18 and EfficientNet-Lite0 (ONNX) at batch 1 and 8,
//!   timed at internal_batch_size 50, with peak memory at internal_batch_size 10 and 50;
//! - the rule methods next to Saliency on ResNet-18 (ONNX), batch 1 and 8: DeepLift (inputs and
//!   references as one batch of twice the rows) and LRP (EpsilonPlusFlat, batch norms merged);
//!   `tools/parity/bench_lrp_zennit.py` times zennit on the same network;
//! - torchvision's EfficientNet-B0, RegNet-Y-400MF and ConvNeXt-Tiny (random weights, exported by
//!   `tools/models/export_torchvision_random.py` into the folder `FIRELIGHT_BENCH_TORCHVISION`;
//!   `FIRELIGHT_BENCH_EFFICIENTNET_B0` names EfficientNet-B0's file alone): Saliency and
//!   Integrated Gradients (50 steps) at batch 1 and 8;
//! - text: Layer Integrated Gradients (50 steps) at the word embeddings of the bundled
//!   all-MiniLM-L6-v2 sentiment model, one 32-token sentence and a batch of 16 of them;
//!   `tools/text/bench_captum_text.py` times Captum on the same model.
//!
//! `cargo bench --bench onnx` runs every case; memory cases run one per child process (this binary
//! again, with `--one-case`) so each peak RSS is its own. `tools/parity/bench_captum_onnx_models.py`
//! measures Captum the same way. `FIRELIGHT_BENCH_REPS` sets the repetitions (default 3, median).

#[allow(dead_code)]
#[path = "../tests/common/onnx_weights.rs"]
mod onnx_weights;

use std::path::PathBuf;
use std::process::Command;
mod common;

use std::time::{Duration, Instant};

use common::time;

use firelight::models::{RandomWeights, ResNet18};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn input(batch: usize, device: &Device) -> (DynTensor, Target) {
    let data: Vec<f32> = (0..batch * 3 * 224 * 224)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let x = DynTensor::from_vec(data, vec![batch, 3, 224, 224], device).expect("input");
    (
        x,
        Target::classes((0..batch).map(|i| (i * 97) % 1000).collect()),
    )
}

/// The ONNX ResNet-18 fixture with its generated weights in a temporary folder.
///
/// The fixture declares 112x112 inputs; the benchmark runs 224x224 like Captum's and the native
/// network, so the copy's spatial dimensions are made dynamic.
fn resnet18_onnx(device: &Device) -> (onnx_weights::TempDir, OnnxModel) {
    use firelight::onnx::onnx_ir::{Message, ModelProto};
    let (dir, path) = onnx_weights::materialize(&root().join("tests/fixtures/onnx_resnet18"));
    let mut proto =
        ModelProto::parse_from_bytes(&std::fs::read(&path).expect("read")).expect("proto");
    let graph = proto.graph.as_mut().expect("graph");
    for input in &mut graph.input {
        if let Some(shape) = input
            .type_
            .as_mut()
            .and_then(|t| t.mut_tensor_type().shape.as_mut())
        {
            for (i, dim) in shape.dim.iter_mut().enumerate().skip(2) {
                dim.set_dim_param(format!("spatial{i}"));
            }
        }
    }
    std::fs::write(&path, proto.write_to_bytes().expect("encode")).expect("write");
    let model = OnnxModel::load(path, device).expect("ResNet-18 ONNX");
    (dir, model)
}

fn efficientnet(device: &Device) -> OnnxModel {
    OnnxModel::load(root().join("models/efficientnet_lite0/model.onnx"), device)
        .expect("EfficientNet-Lite0")
}

fn ig(model: &dyn Model, x: &DynTensor, target: &Target, internal_batch_size: usize) {
    IntegratedGradients::new(model)
        .n_steps(50)
        .internal_batch_size(internal_batch_size)
        .attribute(x, target)
        .expect("integrated gradients");
}

/// Resident memory of this process, current and peak, in MiB (Linux).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One memory case in this (fresh) process: `model:batch:internal_batch_size`.
fn one_case(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, batch, ibs] = parts.as_slice() else {
        panic!("--one-case model:batch:internal_batch_size");
    };
    let (batch, ibs): (usize, usize) = (batch.parse().unwrap(), ibs.parse().unwrap());
    let device = Device::flex();
    let (x, target) = input(batch, &device);
    let (_dir, model) = match *name {
        "resnet18" => {
            let (dir, model) = resnet18_onnx(&device);
            (Some(dir), model)
        }
        _ => (None, efficientnet(&device)),
    };
    // Peak RSS counts from here: loading (and its parsing buffers) is not the method's memory.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (after_load, _) = rss_mib();
    let start = Instant::now();
    ig(&model, &x, &target, ibs);
    let seconds = start.elapsed().as_secs_f64();
    let (_, peak) = rss_mib();
    println!(
        "{name:<18} {batch:>5} {ibs:>4}  {seconds:>7.2}  {after_load:>10.0}  {peak:>8.0}  {:>11.0}",
        peak - after_load
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--one-case") {
        one_case(&args[i + 1]);
        return;
    }
    let reps = common::reps();
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let device = Device::flex();

    if wanted("overhead") {
        println!("interpreter overhead, ResNet-18 224x224 (seconds, median of {reps})");
        println!("case           batch   native     onnx  onnx/native");
        let native = ResNet18::new(&mut RandomWeights::new(0), 1000, &device).expect("native");
        let (_dir, onnx) = resnet18_onnx(&device);
        for batch in [1usize, 8] {
            let (x, target) = input(batch, &device);
            let forward = |m: &dyn Model| {
                let x = x.detached();
                time(reps * 3, || {
                    m.predict(&x.clone().into()).expect("forward").into_data();
                })
            };
            let saliency = |m: &dyn Model| {
                time(reps * 2, || {
                    Saliency::new(m).attribute(&x, &target).expect("saliency");
                })
            };
            let rows: [(&str, Duration, Duration); 2] = [
                ("forward", forward(&native), forward(&onnx)),
                ("saliency", saliency(&native), saliency(&onnx)),
            ];
            for (name, a, b) in rows {
                println!(
                    "{name:<14} {batch:>5}  {:>7.3}  {:>7.3}  {:>11.3}",
                    a.as_secs_f64(),
                    b.as_secs_f64(),
                    b.as_secs_f64() / a.as_secs_f64()
                );
            }
        }
    }

    if wanted("ig") {
        println!("\nIntegrated Gradients, 50 steps, internal_batch_size 50 (seconds, median)");
        println!("model              batch  seconds  inputs/s");
        let (_dir, resnet) = resnet18_onnx(&device);
        let effnet = efficientnet(&device);
        for (name, model) in [
            ("resnet18", &resnet as &dyn Model),
            ("efficientnet_lite0", &effnet),
        ] {
            for batch in [1usize, 8] {
                let (x, target) = input(batch, &device);
                let t = time(reps.clamp(1, 2), || ig(model, &x, &target, 50));
                println!(
                    "{name:<18} {batch:>5}  {:>7.2}  {:>8.3}",
                    t.as_secs_f64(),
                    batch as f64 / t.as_secs_f64()
                );
            }
        }
    }

    // torchvision classifiers with random weights (tools/models/export_torchvision_random.py):
    // EfficientNet-B0 (SiLU and squeeze-excitation gates: a sigmoid per activation, vectorised
    // by `firelight_core::activation`; depthwise convolutions), RegNet-Y-400MF (grouped
    // convolutions, squeeze-excitation) and ConvNeXt-Tiny (7x7 depthwise convolutions,
    // LayerNorm, GELU through Erf, MatMul). `FIRELIGHT_KERNELS=burn` runs Burn's kernels.
    for name in ["efficientnet_b0", "regnet_y_400mf", "convnext_tiny"] {
        if !wanted(name) {
            continue;
        }
        let path = std::env::var_os("FIRELIGHT_BENCH_TORCHVISION")
            .map(|dir| PathBuf::from(dir).join(format!("{name}.onnx")))
            .or_else(|| {
                (name == "efficientnet_b0")
                    .then(|| std::env::var_os("FIRELIGHT_BENCH_EFFICIENTNET_B0").map(PathBuf::from))
                    .flatten()
            })
            .filter(|path| path.exists());
        let Some(path) = path else {
            println!(
                "\n{name}: skipped (set FIRELIGHT_BENCH_TORCHVISION to the folder of \
                 tools/models/export_torchvision_random.py --models {name})"
            );
            continue;
        };
        let model = OnnxModel::load(&path, &device).expect(name);
        let kernels = std::env::var("FIRELIGHT_KERNELS").unwrap_or("firelight".into());
        println!("\n{name} (torchvision, ONNX), {kernels} kernels (seconds, median)");
        println!("case                 batch  seconds  inputs/s");
        let row = |case: &str, batch: usize, t: Duration| {
            println!(
                "{case:<20} {batch:>5}  {:>7.3}  {:>8.3}",
                t.as_secs_f64(),
                batch as f64 / t.as_secs_f64()
            )
        };
        for batch in [1usize, 8] {
            let (x, target) = input(batch, &device);
            let t = time(reps, || {
                Saliency::new(&model)
                    .attribute(&x, &target)
                    .expect("saliency");
            });
            row("saliency", batch, t);
        }
        for batch in [1usize, 8] {
            let (x, target) = input(batch, &device);
            // Batch 8 is 400 forward and backward passes: one timed call after the warm-up.
            let reps = if batch == 1 { reps.clamp(1, 2) } else { 1 };
            let t = time(reps, || ig(&model, &x, &target, 50));
            row("ig50 (ibs 50)", batch, t);
        }
    }

    if wanted("rules") {
        println!("\nrule methods on ResNet-18 (ONNX) 224x224 (seconds, median of {reps})");
        println!("case           batch  seconds  x saliency");
        let (_dir, onnx) = resnet18_onnx(&device);
        for batch in [1usize, 8] {
            let (x, target) = input(batch, &device);
            let saliency = time(reps, || {
                Saliency::new(&onnx)
                    .attribute(&x, &target)
                    .expect("saliency");
            });
            let deeplift = time(reps, || {
                firelight::grad::DeepLift::new(&onnx)
                    .attribute(&x, &target)
                    .expect("deeplift");
            });
            let lrp = time(reps, || {
                firelight::grad::Lrp::new(&onnx)
                    .attribute(&x, &target)
                    .expect("lrp");
            });
            for (name, t) in [("saliency", saliency), ("deeplift", deeplift), ("lrp", lrp)] {
                println!(
                    "{name:<14} {batch:>5}  {:>7.3}  {:>10.2}",
                    t.as_secs_f64(),
                    t.as_secs_f64() / saliency.as_secs_f64()
                );
            }
        }
    }

    if wanted("text") {
        use firelight::methods::{IntegratedGradientsConfig, MethodConfig};
        use firelight::text::{TextClassifier, TextOptions, Truncation};
        println!(
            "\nLayer IG (50 steps) at the word embeddings, MiniLM sentiment (seconds, median of {reps})"
        );
        println!("case                       batch  ibs  seconds  sentences/s");
        let c = TextClassifier::bundled(&device).expect("bundled text model");
        // 30 words plus [CLS] and [SEP]: 32 tokens.
        let sentence = "the staff were friendly but the wait was long and the room was cold so \
                        i would not come back here again unless they fix the heating very soon now";
        for (batch, ibs) in [(1usize, 50usize), (16, 100), (16, 400)] {
            let texts = vec![sentence; batch];
            let encoded = c.encode(&texts, Truncation::Error).expect("encode");
            assert_eq!(encoded.length, 32, "the benchmark sentence is 32 tokens");
            let target = Target::class(2);
            let t = time(reps.clamp(1, 2), || {
                c.attribute(
                    &encoded,
                    &target,
                    &MethodConfig::LayerIntegratedGradients(IntegratedGradientsConfig {
                        internal_batch_size: Some(ibs),
                        ..IntegratedGradientsConfig::default()
                    }),
                    &TextOptions::default(),
                )
                .expect("layer integrated gradients");
            });
            println!(
                "lig50_32_tokens            {batch:>5} {ibs:>4}  {:>7.2}  {:>11.2}",
                t.as_secs_f64(),
                batch as f64 / t.as_secs_f64()
            );
        }
    }

    if wanted("memory") {
        println!("\npeak memory, Integrated Gradients 50 steps, one process per case (MiB)");
        println!("model              batch  ibs  seconds  after load  peak RSS  peak - load");
        let exe = std::env::current_exe().expect("own path");
        for name in ["resnet18", "efficientnet_lite0"] {
            for batch in [1usize, 8] {
                for ibs in [10usize, 50] {
                    let out = Command::new(&exe)
                        .args(["--one-case", &format!("{name}:{batch}:{ibs}")])
                        .output()
                        .expect("child");
                    print!("{}", String::from_utf8_lossy(&out.stdout));
                    if !out.status.success() {
                        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
                    }
                }
            }
        }
    }
}
