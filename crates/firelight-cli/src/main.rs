//! `firelight`: explain the predictions of an image classifier from the shell.
//!
//! The model is the bundled ImageNet MobileNetV2 (native Burn); ONNX models come later.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use firelight::bundled::{ImageClassifier, Prediction, default_image};
use firelight::by_name::{Method, MethodOptions, attribute};
use firelight::core::npy::{read_npy_tensor, write_npy_tensor};
use firelight::prelude::*;
use firelight::viz::{RgbImage, attribution_overlay};
use indicatif::{ProgressBar, ProgressStyle};

/// Explain the predictions of an image classifier: which pixels made it say what it said.
///
/// With no arguments, `firelight explain` runs the bundled ImageNet MobileNetV2 on the bundled photo
/// of a cat, prints the top-5 classes, and writes the Integrated Gradients of the top class as a
/// heatmap over the photo (PNG) and as raw numbers (.npy) into ./firelight-out.
#[derive(Parser, Debug)]
#[command(name = "firelight", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Attribute a prediction to the input pixels (or to a layer's units) and draw it.
    ///
    /// Examples:
    ///   firelight explain
    ///   firelight explain --image coffee.png --method smoothgrad --target espresso
    ///   firelight explain --method layer_conductance --layer features.17 --steps 32
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),
    /// Print the most probable classes for an image.
    Predict {
        #[command(flatten)]
        input: InputArgs,
        /// How many classes to print.
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
    /// List the layers (tap points) that layer methods can use.
    Layers {
        #[command(flatten)]
        device: DeviceArgs,
    },
}

#[derive(clap::Args, Debug)]
struct InputArgs {
    /// A PNG photo (resized to 256, centre-cropped to 224) or a preprocessed .npy tensor
    /// [1, 3, 224, 224]. Default: the bundled photo of Chelsea the cat.
    #[arg(long)]
    image: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(clap::Args, Debug)]
struct DeviceArgs {
    /// Where to compute: flex (CPU), wgpu or cuda (when built with those features).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Flex)]
    device: DeviceChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceChoice {
    Flex,
    Wgpu,
    Cuda,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// integrated_gradients (ig), saliency, input_x_gradient, smoothgrad, gradient_shap,
    /// guided_backprop, deconvolution, layer_activation, layer_gradient_x_activation,
    /// layer_integrated_gradients, layer_conductance.
    #[arg(long, default_value = "integrated_gradients")]
    method: String,
    /// What to explain: `top` (the predicted class), a class index (0-999) or a class name.
    #[arg(long, default_value = "top")]
    target: String,
    /// The layer for layer methods (see `firelight layers`).
    #[arg(long)]
    layer: Option<String>,
    /// Steps along the path for the integrated methods.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// The reference input: `zeros` (the mean photo after normalisation), `black`, or a .npy tensor.
    #[arg(long, default_value = "zeros")]
    baseline: String,
    /// Seed for SmoothGrad's and GradientSHAP's random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// At most this many rows per forward/backward (bounds memory).
    #[arg(long, default_value_t = 25)]
    internal_batch_size: usize,
    /// Folder for the outputs.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
}

fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Flex => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => Ok(Device::cuda(0)),
        #[allow(unreachable_patterns)]
        other => Err(Error::parameter(
            "device",
            format!("{other:?}").to_lowercase(),
            "this build has only flex; rebuild with --features wgpu or --features cuda",
        )),
    }
}

/// The photo (when the input is one) and the model input.
fn load_input(
    classifier: &ImageClassifier,
    path: &Path,
    device: &Device,
) -> Result<(Option<RgbImage>, DynTensor)> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        let tensor = read_npy_tensor(path, device)?;
        let tensor = match tensor.shape() {
            [3, h, w] => {
                let (h, w) = (*h, *w);
                DynTensor::from_flat(tensor.into_flat().reshape([1, 3 * h * w]), vec![1, 3, h, w])?
            }
            _ => tensor,
        };
        classifier.model.check_input(&tensor)?;
        return Ok((None, tensor));
    }
    let photo = classifier.crop(&RgbImage::read_png(path)?);
    let input = classifier.input(&photo, device)?;
    Ok((Some(photo), input))
}

fn resolve_target(classifier: &ImageClassifier, top: &Prediction, spec: &str) -> Result<usize> {
    let classes = classifier.labels.len();
    if spec == "top" {
        return Ok(top.class);
    }
    if let Ok(index) = spec.parse::<usize>() {
        if index >= classes {
            return Err(Error::TargetOutOfRange {
                index,
                sample: 0,
                outputs: classes,
            });
        }
        return Ok(index);
    }
    let wanted = spec.to_lowercase();
    classifier
        .labels
        .iter()
        .position(|l| l.to_lowercase() == wanted)
        .ok_or_else(|| {
            let close: Vec<&str> = classifier
                .labels
                .iter()
                .filter(|l| l.to_lowercase().contains(&wanted))
                .map(String::as_str)
                .take(8)
                .collect();
            Error::InvalidTarget(format!(
                "no class named `{spec}`{}",
                if close.is_empty() {
                    "; use an index 0-999 or `top`".to_string()
                } else {
                    format!("; did you mean: {}", close.join(", "))
                }
            ))
        })
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("a valid template"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn print_predictions(predictions: &[Prediction]) {
    for p in predictions {
        println!(
            "  {:>6.2}%  {:>4}  {}",
            100.0 * p.probability,
            p.class,
            p.label
        );
    }
}

fn explain(args: ExplainArgs) -> Result<()> {
    let method: Method = args.method.parse()?;
    let device = device(args.input.device.device)?;
    let classifier = ImageClassifier::mobilenet_v2(&device)?;
    let path = args.input.image.clone().unwrap_or_else(default_image);
    let (photo, input) = load_input(&classifier, &path, &device)?;
    let model = &classifier.model;
    if let Some(layer) = &args.layer {
        model.check_layer(layer)?;
    }

    let top5 = classifier
        .top_k(model.predict(input.clone())?, 5)?
        .remove(0);
    println!("{}: top-5 of MobileNetV2 (ImageNet)", path.display());
    print_predictions(&top5);
    let class = resolve_target(&classifier, &top5[0], &args.target)?;
    let baselines = match args.baseline.as_str() {
        "zeros" => Baseline::Zeros,
        "black" => Baseline::Tensor(classifier.input(
            &RgbImage {
                width: input.shape()[3],
                height: input.shape()[2],
                data: vec![0; input.shape()[2] * input.shape()[3] * 3],
            },
            &device,
        )?),
        npy => Baseline::Tensor(load_input(&classifier, Path::new(npy), &device)?.1),
    };
    let options = MethodOptions {
        n_steps: args.steps,
        baselines,
        internal_batch_size: Some(args.internal_batch_size),
        seed: args.seed,
        layer: args.layer.clone(),
        ..MethodOptions::default()
    };

    let label = &classifier.labels[class];
    let bar = spinner(format!("{method} for `{label}` (class {class})"));
    let result = attribute(method, model, &input, &Target::class(class), &options);
    bar.finish_and_clear();
    let attribution = result?;

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let name = match &args.layer {
        Some(layer) if method.is_layer_method() => format!("{stem}_{method}_{layer}"),
        _ => format!("{stem}_{method}"),
    };
    let npy = args.out.join(format!("{name}.npy"));
    write_npy_tensor(&npy, &attribution)?;
    println!("{method} for `{label}` (class {class}): {}", npy.display());
    if let (Some(photo), false) = (&photo, method.is_layer_method()) {
        let png = args.out.join(format!("{name}.png"));
        attribution_overlay(photo, &attribution)?.write_png(&png)?;
        println!("heatmap over the photo: {}", png.display());
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Explain(args) => explain(args),
        Command::Predict { input, top } => {
            let device = device(input.device.device)?;
            let classifier = ImageClassifier::mobilenet_v2(&device)?;
            let path = input.image.clone().unwrap_or_else(default_image);
            let (_, tensor) = load_input(&classifier, &path, &device)?;
            let predictions = classifier
                .top_k(classifier.model.predict(tensor)?, top)?
                .remove(0);
            println!("{}:", path.display());
            print_predictions(&predictions);
            Ok(())
        }
        Command::Layers { device: choice } => {
            let classifier = ImageClassifier::mobilenet_v2(&device(choice.device)?)?;
            for layer in classifier.model.layers() {
                println!("{:<14} {}", layer.name, layer.kind);
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
