//! `firelight`: explain the predictions of an image classifier from the shell.
//!
//! The model is the bundled EfficientNet-Lite0 (an ONNX file run through Burn), the bundled native
//! MobileNetV2, or any ONNX image classifier given by path.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use firelight::bundled::{ImageClassifier, Prediction, Preprocess, default_image, read_labels};
use firelight::by_name::{Method, MethodOptions, attribute};
use firelight::core::npy::{read_npy_tensor, write_npy_tensor};
use firelight::prelude::*;
use firelight::viz::{RgbImage, attribution_overlay};
use indicatif::{ProgressBar, ProgressStyle};

mod tcav;

/// Explain the predictions of an image classifier: which pixels made it say what it said.
///
/// With no arguments, `firelight explain` runs the bundled ImageNet EfficientNet-Lite0 (an ONNX
/// file) on the bundled photo of a cat, prints the top-5 classes, and writes the Integrated
/// Gradients of the top class as a heatmap over the photo (PNG) and as raw numbers (.npy) into
/// ./firelight-out. `--model` takes any ONNX image classifier; every tensor in its graph is a layer
/// (`firelight layers --model net.onnx` lists them).
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
    ///   firelight explain --model resnet.onnx --preprocess resnet.json --image dog.jpg
    ///   firelight explain --method layer_conductance --layer /_blocks.15/Add_output_0 --steps 32
    ///   firelight explain --method gradcam++ --layer /_conv_head/Conv_output_0
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
    /// Test a model with concept activation vectors (TCAV): does a concept (a folder of images)
    /// matter to a class? Significance against random concepts, written as JSON, PNG and HTML.
    ///
    /// Example (the bundled ground-truth model):
    ///   firelight tcav --model models/texture_cnn/model.onnx \
    ///     --concept striped=models/texture_cnn/concepts/striped \
    ///     --concept dotted=models/texture_cnn/concepts/dotted \
    ///     --random-pool models/texture_cnn/concepts/random \
    ///     --target striped=models/texture_cnn/inputs/striped \
    ///     --layer /relu2/Relu_output_0 --layer /relu3/Relu_output_0
    #[command(verbatim_doc_comment)]
    Tcav(tcav::TcavArgs),
    /// List the layers (tap points) that layer methods can use, with their operator and shape.
    Layers {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        device: DeviceArgs,
    },
}

#[derive(clap::Args, Debug)]
struct ModelArgs {
    /// `efficientnet_lite0` (bundled ONNX), `mobilenet_v2` (bundled, native Burn) or the path of
    /// any ONNX image classifier (its preprocess.json and labels.json are used when they sit next
    /// to it).
    #[arg(long, default_value = "efficientnet_lite0")]
    model: String,
    /// A preprocessing JSON (`resize`, `crop`, `mean`, `std`) replacing the model's.
    #[arg(long)]
    preprocess: Option<PathBuf>,
    /// Resize the photo's short side to this many pixels (overrides the JSON).
    #[arg(long)]
    resize: Option<usize>,
    /// Centre-crop a square of this side (overrides the JSON).
    #[arg(long)]
    crop: Option<usize>,
    /// Per-channel mean, `r,g,b` on the [0, 1] scale (overrides the JSON).
    #[arg(long, value_parser = parse_triple)]
    mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, `r,g,b` (overrides the JSON).
    #[arg(long, value_parser = parse_triple)]
    std: Option<[f32; 3]>,
    /// A JSON list of class names replacing the model's.
    #[arg(long)]
    labels: Option<PathBuf>,
}

fn parse_triple(text: &str) -> std::result::Result<[f32; 3], String> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse::<f32>().map_err(|e| format!("`{v}`: {e}")))
        .collect::<std::result::Result<_, _>>()?;
    values
        .try_into()
        .map_err(|_| "expected three comma-separated numbers, e.g. 0.485,0.456,0.406".to_string())
}

fn classifier(args: &ModelArgs, device: &Device) -> Result<ImageClassifier> {
    let mut classifier = match args.model.as_str() {
        "efficientnet_lite0" => ImageClassifier::efficientnet_lite0(device)?,
        "mobilenet_v2" => ImageClassifier::mobilenet_v2(device)?,
        path if path.ends_with(".onnx") || Path::new(path).is_file() => {
            ImageClassifier::onnx(path, device)?
        }
        other => {
            return Err(Error::parameter(
                "model",
                other,
                "use efficientnet_lite0, mobilenet_v2 or the path of an .onnx file",
            ));
        }
    };
    if let Some(path) = &args.preprocess {
        classifier.preprocess = Preprocess::from_json(path)?;
    }
    let pre = &mut classifier.preprocess;
    if let Some(resize) = args.resize {
        pre.resize = resize;
    }
    if let Some(crop) = args.crop {
        pre.crop = crop;
    }
    if let Some(mean) = args.mean {
        pre.mean = mean;
    }
    if let Some(std) = args.std {
        pre.std = std;
    }
    if pre.resize == 0
        || pre.crop == 0
        || pre.crop > pre.resize
        || pre.std.iter().any(|s| *s <= 0.0)
    {
        return Err(Error::parameter(
            "preprocess",
            format!("{pre:?}"),
            "resize and crop must be positive with crop <= resize, std positive",
        ));
    }
    if let Some(path) = &args.labels {
        classifier.labels = read_labels(path)?;
    }
    Ok(classifier)
}

#[derive(clap::Args, Debug)]
struct InputArgs {
    /// A PNG or JPEG photo (resized and centre-cropped as the model expects) or a preprocessed
    /// .npy tensor [1, 3, H, W]. Default: the bundled photo of Chelsea the cat.
    #[arg(long)]
    image: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(clap::Args, Debug)]
struct DeviceArgs {
    /// Where to compute: flex (CPU, the default), wgpu or cuda (when built with those features);
    /// cpu (CubeCL's CPU backend) needs an LLVM bundle at build time and is not in this build.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Flex)]
    device: DeviceChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceChoice {
    Flex,
    Wgpu,
    Cuda,
    Cpu,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// integrated_gradients (ig), saliency, input_x_gradient, smoothgrad, gradient_shap,
    /// guided_backprop, deconvolution, layer_activation, layer_gradient_x_activation,
    /// layer_integrated_gradients, layer_conductance; class activation maps at --layer: gradcam,
    /// hirescam, gradcamelementwise, gradcam++, xgradcam, layercam, eigencam, eigengradcam.
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
        DeviceChoice::Cpu => Err(Error::parameter(
            "device",
            "cpu",
            "CubeCL's CPU backend is not in this build (its build downloads LLVM); flex is the CPU backend",
        )),
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
        classifier.model().check_input(&tensor)?;
        return Ok((None, tensor));
    }
    let photo = classifier.crop(&RgbImage::read(path)?);
    let input = classifier.input(&photo, device)?;
    Ok((Some(photo), input))
}

fn resolve_target(classifier: &ImageClassifier, top: &Prediction, spec: &str) -> Result<usize> {
    if spec == "top" {
        return Ok(top.class);
    }
    if let Ok(index) = spec.parse::<usize>() {
        let classes = top.outputs;
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
                    format!(
                        "; use an index 0-{} or `top`",
                        top.outputs.saturating_sub(1)
                    )
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
    let classifier = classifier(&args.input.model, &device)?;
    let path = args.input.image.clone().unwrap_or_else(default_image);
    let (photo, input) = load_input(&classifier, &path, &device)?;
    let model = classifier.model();
    if let Some(layer) = &args.layer {
        model.check_layer(layer)?;
    }

    let top5 = classifier
        .top_k(model.predict(input.clone())?, 5)?
        .remove(0);
    println!("{}: top-5 of {}", path.display(), classifier.name);
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

    let label = &classifier.label(class);
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
        Some(layer) if method.is_layer_method() || method.is_cam() => {
            // ONNX names hold slashes; a file name must not.
            let layer: String = layer
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{stem}_{method}_{}", layer.trim_matches('_'))
        }
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
        Command::Tcav(args) => tcav::run(args),
        Command::Predict { input, top } => {
            let device = device(input.device.device)?;
            let classifier = classifier(&input.model, &device)?;
            let path = input.image.clone().unwrap_or_else(default_image);
            let (_, tensor) = load_input(&classifier, &path, &device)?;
            let predictions = classifier
                .top_k(classifier.model().predict(tensor)?, top)?
                .remove(0);
            println!("{}:", path.display());
            print_predictions(&predictions);
            Ok(())
        }
        Command::Layers {
            model,
            device: choice,
        } => {
            let classifier = classifier(&model, &device(choice.device)?)?;
            let layers = classifier.model().layers();
            let width = layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
            for layer in layers {
                let shape = layer.shape.map(|s| {
                    let dims: Vec<String> = s
                        .iter()
                        .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                        .collect();
                    format!("[{}]", dims.join(", "))
                });
                println!(
                    "{:<width$}  {:<20} {}",
                    layer.name,
                    layer.kind,
                    shape.unwrap_or_default()
                );
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
