//! Explains the bundled ImageNet classifier (MobileNetV2) on a photo with gradient methods.
//!
//! ```text
//! cargo run --release --example explain                      # Chelsea the cat, Integrated Gradients
//! cargo run --release --example explain -- IMAGE.png --method all --out firelight-out
//! ```
//!
//! Prints the top-5 classes, explains the top one, and writes for each method an overlay PNG
//! (attribution magnitude in jet over the photo) and the raw attributions as `.npy`.
//!
//! Guided Backprop and Deconvolution are left out: MobileNetV2's activations are ReLU6, not ReLU,
//! and (as in Captum, which hooks only `nn.ReLU`) their rules apply to ReLUs alone, so here they
//! would only repeat the plain gradient.

use std::path::PathBuf;
use std::time::Instant;

use firelight::bundled::{ImageClassifier, default_image};
use firelight::core::npy::write_npy_tensor;
use firelight::methods::{MethodConfig, Overrides, RunContext};
use firelight::prelude::*;
use firelight::viz::{RgbImage, attribution_overlay};

const METHODS: &[&str] = &[
    "integrated_gradients",
    "saliency",
    "input_x_gradient",
    "smoothgrad",
    "gradient_shap",
];

const USAGE: &str = "usage: explain [IMAGE.png] [--method NAME|all] [--out DIR] [--steps N]
  IMAGE.png   photo to explain (default: models/images/chelsea.png)
  --method    integrated_gradients (default), saliency, input_x_gradient, smoothgrad,
              gradient_shap, or all
  --out       folder for the overlays and .npy attributions (default: firelight-out)
  --steps     Integrated Gradients steps (default 50)";

struct Args {
    image: PathBuf,
    methods: Vec<String>,
    out: PathBuf,
    steps: usize,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        image: default_image(),
        methods: vec!["integrated_gradients".into()],
        out: PathBuf::from("firelight-out"),
        steps: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--method" => {
                let m = value("--method")?;
                args.methods = if m == "all" {
                    METHODS.iter().map(|s| s.to_string()).collect()
                } else if METHODS.contains(&m.as_str()) {
                    vec![m]
                } else {
                    return Err(format!(
                        "unknown method `{m}`; known: {}",
                        METHODS.join(", ")
                    ));
                };
            }
            "--out" => args.out = value("--out")?.into(),
            "--steps" => {
                args.steps = value("--steps")?
                    .parse()
                    .map_err(|_| "--steps needs a whole number".to_string())?
            }
            other if other.starts_with('-') => return Err(format!("unknown option `{other}`")),
            image => args.image = image.into(),
        }
    }
    Ok(args)
}

fn run(args: Args) -> firelight::core::Result<()> {
    let device = Device::flex();
    let classifier = ImageClassifier::mobilenet_v2(&device)?;
    let photo = classifier.crop(&RgbImage::read(&args.image)?);
    let input = classifier.input(&photo, &device)?;
    let model = classifier.model();

    let top5 = classifier
        .top_k(model.predict(&input.clone().into())?, 5)?
        .remove(0);
    println!("{}: top-5 of MobileNetV2 (ImageNet)", args.image.display());
    for p in &top5 {
        println!(
            "  {:>6.2}%  {:>3}  {}",
            100.0 * p.probability,
            p.class,
            p.label
        );
    }
    let explained = &top5[0];
    let target = Target::class(explained.class);
    std::fs::create_dir_all(&args.out).map_err(|e| firelight::core::Error::io(&args.out, e))?;
    let stem = args
        .image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());

    for method in &args.methods {
        let start = Instant::now();
        let mut config = MethodConfig::from_name(method)?;
        config.apply(&Overrides {
            n_steps: Some(args.steps),
            internal_batch_size: Some(25),
            ..Overrides::default()
        });
        let context = RunContext {
            baselines: match config {
                // A distribution of two references: a black and a mid-grey photo.
                MethodConfig::GradientShap(_) => Baseline::Distribution(DynTensor::cat(vec![
                    input.with_flat(input.flat().zeros_like()),
                    input.with_flat(input.flat().ones_like().mul_scalar(-1.0)),
                ])?),
                _ => Baseline::Zeros,
            },
            ..RunContext::default()
        };
        let attribution = config.attribute_tensor(model, &input, &target, &context)?;
        let picture = attribution_overlay(&photo, &attribution)?;
        let method = config.info().name;
        let png = args.out.join(format!("{stem}_{method}.png"));
        let npy = args.out.join(format!("{stem}_{method}.npy"));
        picture.write_png(&png)?;
        write_npy_tensor(&npy, &attribution)?;
        println!(
            "{method} for `{}` in {:.1}s -> {}",
            explained.label,
            start.elapsed().as_secs_f64(),
            png.display()
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                0.into()
            } else {
                2.into()
            };
        }
    };
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
