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
use firelight::core::Embedding;
use firelight::core::npy::{read_npy_tensor, write_npy_tensor};
use firelight::prelude::*;
use firelight::viz::{Colormap, RgbImage, attribution_overlay_with, overlay, titled_grid};
use indicatif::{ProgressBar, ProgressStyle};

mod evaluate;
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
    ///   firelight explain --method layer_conductance --layer /_blocks.14/Add_output_0 --steps 32
    ///   firelight explain --method gradcam++ --layer /_conv_head/Conv_output_0
    ///   firelight explain --method gradcam,scorecam,eigencam --layer /_conv_head/Conv_output_0
    ///   firelight explain --image two_things.png --concept-image cat.png \
    ///       --method gradcam --layer /_conv_head/Conv_output_0
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),
    /// Score how faithful maps are to the model (ROAD and the confidence change), method by method.
    ///
    /// ROAD imputes the pixels a map ranks most relevant (MoRF) or least relevant (LeRF) with noisy
    /// linear imputation and reports the change of the target's score, averaged over percentiles
    /// 10..90; `combined` = (LeRF - MoRF) / 2, higher is better. `confidence` is the change when the
    /// photo is multiplied by the map. Writes a JSON table and a grid of the maps with their scores.
    ///
    /// Examples:
    ///   firelight evaluate --layer /_conv_head/Conv_output_0
    ///   firelight evaluate --method gradcam,gradcam++,scorecam,saliency --layer /_blocks.14/Add_output_0
    #[command(verbatim_doc_comment)]
    Evaluate(evaluate::EvaluateArgs),
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
    /// One method or several, comma-separated (several also draw a grid side by side):
    /// integrated_gradients (ig), saliency, input_x_gradient, smoothgrad, gradient_shap,
    /// guided_backprop, deconvolution, layer_activation, layer_gradient_x_activation,
    /// layer_integrated_gradients, layer_conductance; class activation maps at --layer: gradcam,
    /// hirescam, gradcamelementwise, gradcam++, xgradcam, layercam, eigencam, eigengradcam,
    /// scorecam, ablationcam.
    #[arg(long, value_delimiter = ',', default_value = "integrated_gradients")]
    method: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
    /// The layer for layer methods and CAMs (see `firelight layers`).
    #[arg(long)]
    layer: Option<String>,
    /// CAMs: the first principal component of the weighted activations instead of their sum.
    #[arg(long)]
    eigen_smooth: bool,
    /// CAMs: average the maps of six test-time augmentations (flip x brightness 0.9/1/1.1).
    #[arg(long)]
    aug_smooth: bool,
    /// How gradient attributions are drawn: jet or viridis (magnitudes), diverging (signed:
    /// blue negative, red positive). CAMs are drawn as they are, in jet or viridis.
    #[arg(long, value_enum, default_value_t = ColormapChoice::Jet)]
    colormap: ColormapChoice,
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

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColormapChoice {
    Jet,
    Viridis,
    Diverging,
}

impl From<ColormapChoice> for Colormap {
    fn from(choice: ColormapChoice) -> Self {
        match choice {
            ColormapChoice::Jet => Colormap::Jet,
            ColormapChoice::Viridis => Colormap::Viridis,
            ColormapChoice::Diverging => Colormap::Diverging,
        }
    }
}

/// What is explained: a class (logit or probability), or likeness to a concept image.
#[derive(clap::Args, Debug)]
struct TargetArgs {
    /// What to explain: `top` (the predicted class), a class index (0-999) or a class name.
    #[arg(long, default_value = "top")]
    target: String,
    /// Explain the class's softmax probability instead of its logit.
    #[arg(long)]
    probability: bool,
    /// Explain likeness to this photo instead of a class: the model, cut at --embedding-layer, is
    /// an embedding model, and the target is the cosine similarity (or difference, with
    /// --concept-mode difference) between the photo's embedding and this one's.
    #[arg(long)]
    concept_image: Option<PathBuf>,
    /// The layer whose value is the embedding (default: the model's last global pooling).
    #[arg(long)]
    embedding_layer: Option<String>,
    /// similarity: what looks like the concept; difference: what does not.
    #[arg(long, value_enum, default_value_t = ConceptMode::Similarity)]
    concept_mode: ConceptMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ConceptMode {
    Similarity,
    Difference,
}

/// The model to explain and the target on it, with a description for messages and file names.
struct Explained<'a> {
    model: Box<dyn Model + 'a>,
    target: Target,
    description: String,
    slug: String,
}

impl TargetArgs {
    /// Resolves the target against `classifier` for `input` (printing its top-5 first).
    fn resolve<'a>(
        &self,
        classifier: &'a ImageClassifier,
        input: &DynTensor,
        device: &Device,
    ) -> Result<Explained<'a>> {
        let model = classifier.model();
        let top5 = classifier
            .top_k(model.predict(&input.clone().into())?, 5)?
            .remove(0);
        print_predictions(&top5);
        let Some(concept) = &self.concept_image else {
            let class = resolve_target(classifier, &top5[0], &self.target)?;
            let label = classifier.label(class);
            let (target, kind) = if self.probability {
                (Target::probability(class), "probability of")
            } else {
                (Target::class(class), "logit of")
            };
            return Ok(Explained {
                model: Box::new(model),
                target,
                description: format!("{kind} `{label}` (class {class})"),
                slug: String::new(),
            });
        };
        let layer = match &self.embedding_layer {
            Some(layer) => layer.clone(),
            None => default_embedding_layer(model)?,
        };
        let embedder = Embedding::new(model, layer.clone())?;
        let (_, reference) = load_input(classifier, concept, device)?;
        let embedding = embedder.predict(&reference.into())?;
        let [_, width] = embedding.dims();
        let embedding = embedding.reshape([width]);
        let name = concept
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "concept".into());
        let (target, kind) = match self.concept_mode {
            ConceptMode::Similarity => (Target::CosineSimilarity(embedding), "similarity"),
            ConceptMode::Difference => (Target::CosineDifference(embedding), "difference"),
        };
        Ok(Explained {
            model: Box::new(embedder),
            target,
            description: format!("{kind} to `{}` at {layer}", concept.display()),
            slug: format!("_{kind}_{name}"),
        })
    }
}

/// The last global pooling of a model: where an image classifier's embedding is.
fn default_embedding_layer(model: &dyn Model) -> Result<String> {
    model
        .layers()
        .into_iter()
        .rev()
        .find(|l| {
            let kind = l.kind.to_lowercase();
            kind.contains("globalaveragepool") || kind.contains("adaptiveavgpool")
        })
        .map(|l| l.name)
        .ok_or_else(|| {
            Error::parameter(
                "embedding_layer",
                "none",
                "the model has no global pooling layer; give --embedding-layer (see `firelight layers`)",
            )
        })
}

/// A layer name made safe for a file name (ONNX names hold slashes).
fn file_safe(layer: &str) -> String {
    let safe: String = layer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.trim_matches('_').to_string()
}

/// A method's result drawn over the photo: CAMs as they are, gradient maps through `colormap`.
fn draw(
    photo: &RgbImage,
    method: Method,
    attribution: &DynTensor,
    colormap: Colormap,
) -> Result<RgbImage> {
    if method.is_cam() {
        let map = attribution.to_vec()?;
        let colormap = match colormap {
            Colormap::Diverging => Colormap::Jet,
            other => other,
        };
        return overlay(photo, &map, colormap, 0.5);
    }
    attribution_overlay_with(photo, attribution, colormap)
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
        classifier.model().check_inputs(&(&tensor).into())?;
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

/// What `explain` and `evaluate` share: the methods by name, and the photo loaded for the model.
struct Session {
    methods: Vec<Method>,
    device: Device,
    classifier: ImageClassifier,
    path: PathBuf,
    photo: Option<RgbImage>,
    input: DynTensor,
}

impl Session {
    /// Parses `methods`, loads the model and the photo, and checks `layer` before anything runs.
    fn open(methods: &[String], input: &InputArgs, layer: Option<&str>) -> Result<Self> {
        let methods: Vec<Method> = methods
            .iter()
            .map(|m| m.trim().parse())
            .collect::<Result<_>>()?;
        let device = device(input.device.device)?;
        let classifier = classifier(&input.model, &device)?;
        let path = input.image.clone().unwrap_or_else(default_image);
        let (photo, tensor) = load_input(&classifier, &path, &device)?;
        if let Some(layer) = layer {
            classifier.model().check_layer(layer)?;
        }
        println!("{}: top-5 of {}", path.display(), classifier.name);
        Ok(Self {
            methods,
            device,
            classifier,
            path,
            photo,
            input: tensor,
        })
    }

    /// The photo's file name without its extension, for output names.
    fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into())
    }
}

fn explain(args: ExplainArgs) -> Result<()> {
    let session = Session::open(&args.method, &args.input, args.layer.as_deref())?;
    let Session {
        methods,
        device,
        classifier,
        photo,
        input,
        ..
    } = &session;
    let explained = args.target.resolve(classifier, input, device)?;
    let baselines = match args.baseline.as_str() {
        "zeros" => Baseline::Zeros,
        "black" => Baseline::Tensor(classifier.input(
            &RgbImage::filled(input.shape()[3], input.shape()[2], [0, 0, 0]),
            device,
        )?),
        npy => Baseline::Tensor(load_input(classifier, Path::new(npy), device)?.1),
    };
    let options = MethodOptions {
        n_steps: args.steps,
        baselines,
        internal_batch_size: Some(args.internal_batch_size),
        seed: args.seed,
        layer: args.layer.clone(),
        eigen_smooth: args.eigen_smooth,
        aug_smooth: args.aug_smooth,
        ..MethodOptions::default()
    };

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = session.stem();
    let mut tiles = Vec::new();
    if let Some(photo) = photo {
        tiles.push(("photo".to_string(), photo.clone()));
    }
    for &method in methods {
        let bar = spinner(format!("{method} for the {}", explained.description));
        let result = attribute(
            method,
            explained.model.as_ref(),
            input,
            &explained.target,
            &options,
        );
        bar.finish_and_clear();
        let attribution = result?;
        let name = match &args.layer {
            Some(layer) if method.is_layer_method() || method.is_cam() => {
                format!("{stem}_{method}{}_{}", explained.slug, file_safe(layer))
            }
            _ => format!("{stem}_{method}{}", explained.slug),
        };
        let npy = args.out.join(format!("{name}.npy"));
        write_npy_tensor(&npy, &attribution)?;
        println!(
            "{method} for the {}: {}",
            explained.description,
            npy.display()
        );
        if let (Some(photo), false) = (photo, method.is_layer_method()) {
            let png = args.out.join(format!("{name}.png"));
            let picture = draw(photo, method, &attribution, args.colormap.into())?;
            picture.write_png(&png)?;
            println!("  heatmap over the photo: {}", png.display());
            tiles.push((method.to_string(), picture));
        }
    }
    if tiles.len() > 2 {
        let png = args.out.join(format!("{stem}{}_grid.png", explained.slug));
        let columns = if tiles.len() <= 5 {
            tiles.len()
        } else {
            tiles.len().div_ceil(2)
        };
        titled_grid(&tiles, columns)?.write_png(&png)?;
        println!("all methods side by side: {}", png.display());
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Explain(args) => explain(args),
        Command::Evaluate(args) => evaluate::evaluate(args),
        Command::Tcav(args) => tcav::run(args),
        Command::Predict { input, top } => {
            let device = device(input.device.device)?;
            let classifier = classifier(&input.model, &device)?;
            let path = input.image.clone().unwrap_or_else(default_image);
            let (_, tensor) = load_input(&classifier, &path, &device)?;
            let predictions = classifier
                .top_k(classifier.model().predict(&tensor.into())?, top)?
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
