//! Argument groups the subcommands share: the model, the input photo, the device, the target,
//! and the methods with their options (derived from the typed registry).

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use firelight::bundled::{ImageClassifier, Prediction, Preprocess, read_labels};
use firelight::core::lrp::LrpComposite;
use firelight::core::npy::read_npy_tensor;
use firelight::core::{Classes, Embedding, NeuronSelector};
use firelight::grad::Approximation;
use firelight::methods::{MethodConfig, Overrides, method_help};
use firelight::perturb::FeatureMask;
use firelight::prelude::*;
use firelight::viz::{RgbImage, Slic};

use crate::session::print_predictions;

#[derive(clap::Args, Debug)]
pub(crate) struct ModelArgs {
    /// `efficientnet_lite0` (bundled ONNX), `mobilenet_v2` (bundled, native Burn) or the path of
    /// any ONNX image classifier (its preprocess.json and labels.json are used when they sit next
    /// to it).
    #[arg(long, default_value = "efficientnet_lite0")]
    pub(crate) model: String,
    /// A preprocessing JSON (`resize`, `crop`, `mean`, `std`) replacing the model's.
    #[arg(long)]
    pub(crate) preprocess: Option<PathBuf>,
    /// Resize the photo's short side to this many pixels (overrides the JSON).
    #[arg(long)]
    pub(crate) resize: Option<usize>,
    /// Centre-crop a square of this side (overrides the JSON).
    #[arg(long)]
    pub(crate) crop: Option<usize>,
    /// Per-channel mean, `r,g,b` on the [0, 1] scale (overrides the JSON).
    #[arg(long, value_parser = parse_triple)]
    pub(crate) mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, `r,g,b` (overrides the JSON).
    #[arg(long, value_parser = parse_triple)]
    pub(crate) std: Option<[f32; 3]>,
    /// A JSON list of class names replacing the model's.
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
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

pub(crate) fn classifier(args: &ModelArgs, device: &Device) -> Result<ImageClassifier> {
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
pub(crate) struct InputArgs {
    /// A PNG or JPEG photo (resized and centre-cropped as the model expects) or a preprocessed
    /// .npy tensor [1, 3, H, W]. Default: the bundled photo of Chelsea the cat.
    #[arg(long)]
    pub(crate) image: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DeviceArgs {
    /// Where to compute: flex (CPU, the default), wgpu or cuda (builds with those features), or
    /// a device another machine serves, ws://HOST:PORT (`firelight serve` there; the
    /// default build has it), gradients included. A data-set job (--inputs) takes several: repeat
    /// --device, one worker per device. cpu (CubeCL's CPU backend) needs an LLVM bundle at build
    /// time and is not in this build.
    #[arg(long, value_parser = parse_device, default_value = "flex", value_name = "DEVICE")]
    pub(crate) device: Vec<DeviceSpec>,
    /// The token the remote servers ask for (`firelight serve --token`).
    #[arg(long, env = "FIRELIGHT_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

impl DeviceArgs {
    /// The one device of a command that computes on one.
    pub(crate) fn open(&self) -> Result<Device> {
        if self.device.len() > 1 {
            return Err(Error::parameter(
                "device",
                self.describe(),
                "several devices are for data-set jobs (--inputs), one worker each; give one",
            ));
        }
        self.device[0].open(self.token.as_deref())
    }

    /// Worker `k`'s device: the devices in turn.
    pub(crate) fn for_worker(&self, k: usize) -> &DeviceSpec {
        &self.device[k % self.device.len()]
    }

    /// What the devices compute on, for a job's settings: a job computed on one server resumes
    /// on another (the numbers are the server backend's, not its address's).
    pub(crate) fn kind(&self) -> String {
        let mut kinds: Vec<&str> = self.device.iter().map(DeviceSpec::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.join("+")
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.device.iter().map(ToString::to_string).collect();
        names.join(",")
    }
}

/// A device named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DeviceSpec {
    Flex,
    Wgpu,
    Cuda,
    Cpu,
    /// A device another machine serves: `ws://host:port`.
    Remote(String),
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Remote(url) => f.write_str(url),
            other => f.write_str(other.kind()),
        }
    }
}

/// `--device`: a backend name or a `ws://` URL.
pub(crate) fn parse_device(text: &str) -> std::result::Result<DeviceSpec, String> {
    match text.to_lowercase().as_str() {
        "flex" => Ok(DeviceSpec::Flex),
        "wgpu" => Ok(DeviceSpec::Wgpu),
        "cuda" => Ok(DeviceSpec::Cuda),
        "cpu" => Ok(DeviceSpec::Cpu),
        _ if text.starts_with("ws://") || text.starts_with("wss://") => {
            #[cfg(feature = "remote")]
            firelight::core::remote::check_url(text).map_err(|e| e.to_string())?;
            Ok(DeviceSpec::Remote(text.to_string()))
        }
        _ => Err(format!(
            "`{text}` is not a device: flex, wgpu, cuda, or ws://HOST:PORT for a served one"
        )),
    }
}

impl DeviceSpec {
    fn kind(&self) -> &'static str {
        match self {
            DeviceSpec::Flex => "flex",
            DeviceSpec::Wgpu => "wgpu",
            DeviceSpec::Cuda => "cuda",
            DeviceSpec::Cpu => "cpu",
            DeviceSpec::Remote(_) => "remote",
        }
    }

    /// The device, connected if it is remote.
    pub(crate) fn open(&self, token: Option<&str>) -> Result<Device> {
        match self {
            DeviceSpec::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda => Ok(Device::cuda(0)),
            DeviceSpec::Cpu => Err(Error::parameter(
                "device",
                "cpu",
                "CubeCL's CPU backend is not in this build (its build downloads LLVM); flex is the CPU backend",
            )),
            #[cfg(feature = "remote")]
            DeviceSpec::Remote(url) => firelight::core::remote::connect(url, token),
            #[cfg(not(feature = "remote"))]
            DeviceSpec::Remote(url) => {
                let _ = token;
                Err(Error::parameter(
                    "device",
                    url,
                    "this build has no remote devices; rebuild with the default features (or --features remote)",
                ))
            }
            #[allow(unreachable_patterns)]
            other => Err(Error::parameter(
                "device",
                other,
                "this build has only flex; rebuild with --features wgpu or --features cuda",
            )),
        }
    }
}

/// What is explained: a class (logit or probability), or likeness to a concept image.
#[derive(clap::Args, Debug)]
pub(crate) struct TargetArgs {
    /// What to explain: `top` (the predicted class), a class index (0-999) or a class name; for a
    /// batch given as `.npy`, one for every sample or one per sample (`--target 3,top,tabby`).
    #[arg(long, default_value = "top")]
    pub(crate) target: String,
    /// Explain the class's softmax probability instead of its logit.
    #[arg(long)]
    pub(crate) probability: bool,
    /// Explain likeness to this photo instead of a class: the model, cut at --embedding-layer, is
    /// an embedding model, and the target is the cosine similarity (or difference, with
    /// --concept-mode difference) between the photo's embedding and this one's.
    #[arg(long)]
    pub(crate) concept_image: Option<PathBuf>,
    /// The layer whose value is the embedding (default: the model's last global pooling).
    #[arg(long)]
    pub(crate) embedding_layer: Option<String>,
    /// similarity: what looks like the concept; difference: what does not.
    #[arg(long, value_enum, default_value_t = ConceptMode::Similarity)]
    pub(crate) concept_mode: ConceptMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConceptMode {
    Similarity,
    Difference,
}

/// The model to explain and the target on it, with a description for messages and file names.
pub(crate) struct Explained<'a> {
    pub(crate) model: Box<dyn Model + 'a>,
    pub(crate) target: Target,
    pub(crate) description: String,
    pub(crate) slug: String,
}

impl TargetArgs {
    /// Resolves the target against `classifier` for `input` (printing its top-5 first).
    pub(crate) fn resolve<'a>(
        &self,
        classifier: &'a ImageClassifier,
        input: &DynTensor,
        device: &Device,
    ) -> Result<Explained<'a>> {
        let model = classifier.model();
        let batch = input.shape()[0];
        let tops = classifier.top_k(model.predict(&input.clone().into())?, 5)?;
        if batch == 1 {
            print_predictions(&tops[0]);
        } else {
            for (row, top) in tops.iter().enumerate() {
                println!(
                    "  sample {row}: {:.2}% {}",
                    100.0 * top[0].probability,
                    top[0].label
                );
            }
        }
        let Some(concept) = &self.concept_image else {
            // One target for every sample, or one per sample (`--target 3,1,4` for a batch).
            let specs: Vec<&str> = self.target.split(',').map(str::trim).collect();
            let per_sample = |spec_of: Vec<&str>| {
                tops.iter()
                    .zip(spec_of)
                    .enumerate()
                    .map(|(row, (top, spec))| {
                        resolve_target(classifier, &top[0], spec).map_err(|e| match e {
                            Error::TargetOutOfRange { index, outputs, .. } => {
                                Error::TargetOutOfRange {
                                    index,
                                    sample: row,
                                    outputs,
                                }
                            }
                            other => other,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            };
            let classes = match specs.len() {
                1 => per_sample(vec![specs[0]; batch])?,
                n if n == batch => per_sample(specs.clone())?,
                n => {
                    return Err(Error::parameter(
                        "target",
                        &self.target,
                        format!("{n} targets for a batch of {batch}: give one, or one per sample"),
                    ));
                }
            };
            let kind = if self.probability {
                "probability of"
            } else {
                "logit of"
            };
            let description = if classes.iter().all(|&c| c == classes[0]) {
                let class = classes[0];
                let label = classifier.label(class);
                format!("{kind} `{label}` (class {class})")
            } else {
                format!("{kind} classes {classes:?}, one per sample")
            };
            let target = class_target(self.probability, classes);
            return Ok(Explained {
                model: Box::new(model),
                target,
                description,
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

/// The logit (or, with `probability`, the softmax probability) of one class per sample: one
/// class for every sample when they agree.
pub(crate) fn class_target(probability: bool, classes: Vec<usize>) -> Target {
    let all_one = classes
        .first()
        .is_some_and(|&first| classes.iter().all(|&c| c == first));
    match (probability, all_one) {
        (true, true) => Target::probability(classes[0]),
        (false, true) => Target::class(classes[0]),
        (true, false) => Target::Probability(Classes::PerSample(classes)),
        (false, false) => Target::classes(classes),
    }
}

/// The last global pooling of a model: where an image classifier's embedding is.
pub(crate) fn default_embedding_layer(model: &dyn Model) -> Result<String> {
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

/// The photo (when the input is one) and the model input.
pub(crate) fn load_input(
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

pub(crate) fn resolve_target(
    classifier: &ImageClassifier,
    top: &Prediction,
    spec: &str,
) -> Result<usize> {
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

/// The methods to run and the options that reach them (each method takes the options it has;
/// an option none of them has is an error).
#[derive(clap::Args, Debug)]
pub(crate) struct MethodOptionArgs {
    /// The layer of layer methods and CAMs (`firelight layers` lists them).
    #[arg(long)]
    pub(crate) layer: Option<String>,
    /// Explain units of `--layer` instead of the target (Captum's Neuron* methods): `2,3,3` is
    /// one unit (channel, row, column), `0:4,2,2` the sum of a box. Runs the gradient and
    /// perturbation methods on that unit: saliency --signed is NeuronGradient,
    /// integrated_gradients NeuronIntegratedGradients, deeplift NeuronDeepLift, ...;
    /// neuron_conductance instead attributes the target through that one unit.
    #[arg(long, requires = "layer", value_parser = parse_neuron)]
    pub(crate) neuron: Option<NeuronSelector>,
    /// `n_steps` of the path methods (integrated gradients, layer IG, conductance; Captum: 50).
    #[arg(long)]
    pub(crate) steps: Option<usize>,
    /// Integrated gradients to a bound: --steps doubled until every input's |convergence
    /// delta| is at most this (the steps taken are printed).
    #[arg(long)]
    pub(crate) target_delta: Option<f32>,
    /// The most steps --target-delta may take.
    #[arg(long, requires = "target_delta")]
    pub(crate) max_steps: Option<usize>,
    /// The path methods' quadrature (Captum's `method`; default gausslegendre).
    #[arg(long, value_enum)]
    pub(crate) ig_method: Option<IgMethod>,
    /// `nt_samples` of smoothgrad (Captum: 5), `n_samples` of gradient_shap (5) and of the
    /// sampling perturbation methods: shapley_value_sampling, kernel_shap, lime (25 each).
    #[arg(long, alias = "nt-samples", alias = "n-samples")]
    pub(crate) samples: Option<usize>,
    /// NoiseTunnel's combination for smoothgrad (Captum's `nt_type`).
    #[arg(long, value_enum)]
    pub(crate) nt_type: Option<NtType>,
    /// Noise standard deviation in input units (smoothgrad: 1.0, gradient_shap: 0.0).
    #[arg(long)]
    pub(crate) stdevs: Option<f32>,
    /// Signed attributions: Saliency and SmoothGrad without `abs`.
    #[arg(long)]
    pub(crate) signed: bool,
    /// `multiply_by_inputs` of IG, layer IG, GradientSHAP and layer gradient x activation.
    #[arg(long)]
    pub(crate) multiply_by_inputs: Option<bool>,
    /// CAMs: the first principal component of the weighted activations instead of their sum.
    #[arg(long)]
    pub(crate) eigen_smooth: bool,
    /// CAMs: average the maps of six test-time augmentations (flip x brightness 0.9/1/1.1).
    #[arg(long)]
    pub(crate) aug_smooth: bool,
    /// Seed of the stochastic methods' draws.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// At most this many rows per forward/backward (bounds memory; Score-CAM and Ablation-CAM
    /// copies per pass).
    #[arg(long, default_value_t = 25)]
    pub(crate) internal_batch_size: usize,
    /// Perturbation methods: perturbed copies of the input per forward pass (bounds memory; the
    /// results do not depend on it). Captum's default is 1; the command line's is 16.
    #[arg(long, value_name = "N")]
    pub(crate) perturbations_per_eval: Option<usize>,
    /// Occlusion: the side of the square window slid over the pixels (covering every channel;
    /// the feature axis of tabular rows) [default: 16].
    #[arg(long)]
    pub(crate) window: Option<usize>,
    /// LRP's rules per layer (zennit's composites) [default: epsilon_plus_flat].
    #[arg(long, value_enum)]
    pub(crate) lrp_composite: Option<LrpCompositeChoice>,
    /// Occlusion: the step between window positions [default: 8].
    #[arg(long)]
    pub(crate) stride: Option<usize>,
    /// Perturbation methods on photos: about this many SLIC superpixels are the features
    /// switched on and off [default for photos: 50].
    #[arg(long, value_name = "N", conflicts_with_all = ["grid", "feature_mask"])]
    pub(crate) superpixels: Option<usize>,
    /// Perturbation methods: square cells of this many pixels are the features.
    #[arg(long, value_name = "CELL", conflicts_with = "feature_mask")]
    pub(crate) grid: Option<usize>,
    /// Perturbation methods: Captum's `feature_mask` from a `.npy` file of integer ids that
    /// broadcasts to the input (`[1, 1, H, W]` shares one mask over the channels); equal ids form
    /// one feature.
    #[arg(long, value_name = "FILE")]
    pub(crate) feature_mask: Option<PathBuf>,
}

fn parse_neuron(text: &str) -> std::result::Result<NeuronSelector, String> {
    NeuronSelector::parse(text).map_err(|e| e.to_string())
}

/// Superpixels a photo is cut into for the perturbation methods when no mask is given.
pub(crate) const DEFAULT_SUPERPIXELS: usize = 50;

/// Perturbed copies per forward pass when `--perturbations-per-eval` is not given.
const DEFAULT_PERTURBATIONS_PER_EVAL: usize = 16;

/// Captum's `method` of the path methods.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum IgMethod {
    Gausslegendre,
    RiemannLeft,
    RiemannRight,
    RiemannMiddle,
    RiemannTrapezoid,
}

/// zennit's composites, as `--lrp-composite` names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LrpCompositeChoice {
    /// Flat first, ZPlus at convolutions, Epsilon at fully connected layers.
    EpsilonPlusFlat,
    /// Flat first, AlphaBeta(2, 1) at convolutions, Epsilon at fully connected layers.
    EpsilonAlpha2Beta1Flat,
    /// WSquare first, Gamma(0.25) at convolutions, Epsilon(0.25) at fully connected layers.
    EpsilonGammaWsquare,
    /// Epsilon everywhere.
    Epsilon,
    /// ZBox first (inputs within -3..3), Gamma(0.25) at convolutions, Epsilon at fully connected
    /// layers.
    EpsilonGammaBox,
    /// Captum's LRP defaults: Epsilon(1e-9) everywhere, pooling included.
    Captum,
}

impl From<LrpCompositeChoice> for LrpComposite {
    fn from(choice: LrpCompositeChoice) -> Self {
        match choice {
            LrpCompositeChoice::EpsilonPlusFlat => LrpComposite::EpsilonPlusFlat,
            LrpCompositeChoice::EpsilonAlpha2Beta1Flat => LrpComposite::EpsilonAlpha2Beta1Flat,
            LrpCompositeChoice::EpsilonGammaWsquare => LrpComposite::EpsilonGammaWSquare,
            LrpCompositeChoice::Epsilon => LrpComposite::Epsilon,
            LrpCompositeChoice::EpsilonGammaBox => LrpComposite::EPSILON_GAMMA_BOX,
            LrpCompositeChoice::Captum => LrpComposite::Captum,
        }
    }
}

/// Captum's `nt_type`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum NtType {
    Smoothgrad,
    SmoothgradSq,
    Vargrad,
}

/// The `--method` help, from the registry.
pub(crate) fn methods_help() -> String {
    method_help()
}

impl MethodOptionArgs {
    /// The methods named in `names`, with these options applied; fails for an unknown name and
    /// for an option that none of the methods has.
    pub(crate) fn configs(&self, names: &[String]) -> Result<Vec<MethodConfig>> {
        let overrides = Overrides {
            n_steps: self.steps,
            ig_method: self.ig_method.map(|m| match m {
                IgMethod::Gausslegendre => Approximation::GaussLegendre,
                IgMethod::RiemannLeft => Approximation::RiemannLeft,
                IgMethod::RiemannRight => Approximation::RiemannRight,
                IgMethod::RiemannMiddle => Approximation::RiemannMiddle,
                IgMethod::RiemannTrapezoid => Approximation::RiemannTrapezoid,
            }),
            n_samples: self.samples,
            nt_type: self.nt_type.map(|t| match t {
                NtType::Smoothgrad => NoiseType::SmoothGrad,
                NtType::SmoothgradSq => NoiseType::SmoothGradSq,
                NtType::Vargrad => NoiseType::VarGrad,
            }),
            stdevs: self.stdevs,
            seed: Some(self.seed),
            internal_batch_size: Some(self.internal_batch_size),
            signed: self.signed,
            multiply_by_inputs: self.multiply_by_inputs,
            eigen_smooth: self.eigen_smooth,
            aug_smooth: self.aug_smooth,
            perturbations_per_eval: Some(
                self.perturbations_per_eval
                    .unwrap_or(DEFAULT_PERTURBATIONS_PER_EVAL),
            ),
            window: self.window,
            stride: self.stride,
            lrp_composite: self.lrp_composite.map(Into::into),
            target_delta: self.target_delta,
            max_steps: self.max_steps,
        };
        let mut configs: Vec<MethodConfig> = names
            .iter()
            .map(|n| MethodConfig::from_name(n))
            .collect::<Result<_>>()?;
        let taken: Vec<&str> = configs
            .iter_mut()
            .flat_map(|c| c.apply(&overrides))
            .collect();
        let asked = [
            ("--steps", self.steps.is_some(), "n_steps"),
            ("--ig-method", self.ig_method.is_some(), "ig_method"),
            (
                "--target-delta",
                self.target_delta.is_some(),
                "target_delta",
            ),
            ("--max-steps", self.max_steps.is_some(), "max_steps"),
            ("--samples", self.samples.is_some(), "n_samples"),
            ("--nt-type", self.nt_type.is_some(), "nt_type"),
            ("--stdevs", self.stdevs.is_some(), "stdevs"),
            ("--signed", self.signed, "signed"),
            (
                "--multiply-by-inputs",
                self.multiply_by_inputs.is_some(),
                "multiply_by_inputs",
            ),
            ("--eigen-smooth", self.eigen_smooth, "eigen_smooth"),
            ("--aug-smooth", self.aug_smooth, "aug_smooth"),
            (
                "--perturbations-per-eval",
                self.perturbations_per_eval.is_some(),
                "perturbations_per_eval",
            ),
            ("--window", self.window.is_some(), "window"),
            (
                "--lrp-composite",
                self.lrp_composite.is_some(),
                "lrp_composite",
            ),
            ("--stride", self.stride.is_some(), "stride"),
        ];
        for (flag, given, option) in asked {
            if given && !taken.contains(&option) {
                let takers: Vec<&str> = MethodConfig::all()
                    .into_iter()
                    .filter(|m| m.clone().apply(&overrides).contains(&option))
                    .map(|m| m.info().name)
                    .collect();
                return Err(Error::parameter(
                    "method",
                    names.join(","),
                    format!(
                        "{flag} applies to none of these methods; it is an option of: {}",
                        takers.join(", ")
                    ),
                ));
            }
        }
        let masked =
            self.superpixels.is_some() || self.grid.is_some() || self.feature_mask.is_some();
        if masked && !configs.iter().any(MethodConfig::uses_feature_mask) {
            let takers: Vec<&str> = MethodConfig::all()
                .iter()
                .filter(|m| m.uses_feature_mask())
                .map(|m| m.info().name)
                .collect();
            return Err(Error::parameter(
                "method",
                names.join(","),
                format!(
                    "--superpixels, --grid and --feature-mask apply to none of these methods; \
                     they are options of: {}",
                    takers.join(", ")
                ),
            ));
        }
        Ok(configs)
    }

    /// The perturbation methods' feature mask: `--feature-mask`, `--grid`, `--superpixels` of
    /// `photo`, for a photo whose methods take a mask [`DEFAULT_SUPERPIXELS`] superpixels (one
    /// feature per pixel would take a forward pass per pixel), else every element its own.
    pub(crate) fn feature_mask(
        &self,
        configs: &[MethodConfig],
        photo: Option<&RgbImage>,
    ) -> Result<FeatureMask> {
        if let Some(path) = &self.feature_mask {
            return FeatureMask::from_npy(path);
        }
        if let Some(cell) = self.grid {
            if cell == 0 {
                return Err(Error::parameter("grid", 0, "a cell is at least one pixel"));
            }
            return Ok(FeatureMask::Grid(cell));
        }
        let wanted = configs.iter().any(MethodConfig::uses_feature_mask);
        match (self.superpixels, photo) {
            (Some(_), None) => Err(Error::parameter(
                "superpixels",
                "no photo",
                "superpixels cut a photo (PNG, JPEG, ...); for a .npy input give --feature-mask",
            )),
            (Some(n), Some(photo)) => superpixel_mask(photo, n),
            (None, Some(photo)) if wanted => superpixel_mask(photo, DEFAULT_SUPERPIXELS),
            (None, _) => Ok(FeatureMask::Elements),
        }
    }
}

/// About `n` SLIC superpixels of `photo` as a mask `[1, 1, H, W]` shared by the channels.
fn superpixel_mask(photo: &RgbImage, n: usize) -> Result<FeatureMask> {
    let slic = Slic {
        n_segments: n,
        ..Slic::default()
    };
    let (labels, _) = firelight::viz::slic(photo, slic)?;
    FeatureMask::ids(
        labels.into_iter().map(|l| l as i64).collect(),
        vec![1, 1, photo.height, photo.width],
    )
}
