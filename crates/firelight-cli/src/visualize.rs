//! `firelight visualize`: what a layer responds to, by activation maximisation (Lucid's way) or
//! by DeepDream on a photo; for channels, the whole layer, or a concept's direction (a CAV).

use std::path::{Path, PathBuf};

use firelight::bundled::ImageClassifier;
use firelight::concept::{Cav, CavTrainer, Classifier, Concept};
use firelight::core::gradients::layer_activations;
use firelight::grad::{
    ActivationMaximization, DeepDream, Objective, Parameterization, Transforms, Visualization,
};
use firelight::prelude::*;
use firelight::viz::{RgbImage, titled_grid};

use crate::args::{DeviceArgs, ModelArgs, classifier};
use crate::session::{file_safe, method_bar};

/// How the picture is parameterised.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PictureChoice {
    /// Lucid's Fourier spectrum, scaled by 1 / frequency^decay_power: smooth pictures.
    Fft,
    /// One parameter per pixel: grainy.
    Pixel,
}

/// The random transforms of each step.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TransformChoice {
    /// Lucid's standard transforms: pad 12, jitter, scale 0.9-1.1, rotate +-10 degrees, jitter 4.
    Lucid,
    /// A random shift of up to --jitter pixels only.
    Jitter,
    /// None: the picture as it is (pictures exploit single pixels).
    None,
}

#[derive(clap::Args, Debug)]
pub(crate) struct VisualizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The layer (`firelight layers` lists them).
    #[arg(long)]
    layer: String,
    /// The channels to visualise, comma-separated: one picture each [default: 0; with --dream,
    /// the whole layer].
    #[arg(long, value_delimiter = ',')]
    channel: Vec<usize>,
    /// Maximise the mean square of the whole layer instead (DeepDream's objective).
    #[arg(long, conflicts_with_all = ["channel", "concept", "cav"])]
    whole_layer: bool,
    /// Maximise a concept's direction instead: NAME=FOLDER of images of the concept, its CAV
    /// trained at the layer against --random (what "striped" looks like to the model).
    #[arg(long, requires = "random", conflicts_with_all = ["channel", "cav"])]
    concept: Option<String>,
    /// A folder of random images the concept's CAV is trained against.
    #[arg(long, requires = "concept")]
    random: Option<PathBuf>,
    /// Maximise the first row of a CAV saved as JSON (`firelight::concept::Cav::save`) at the
    /// layer.
    #[arg(long, conflicts_with = "channel")]
    cav: Option<PathBuf>,
    /// DeepDream on this photo instead of a picture from noise.
    #[arg(long)]
    dream: Option<PathBuf>,
    /// DeepDream's octaves (sizes the photo is dreamt at).
    #[arg(long, default_value_t = 4, requires = "dream")]
    octaves: usize,
    /// DeepDream's ratio between octaves.
    #[arg(long, default_value_t = 1.4, requires = "dream")]
    octave_scale: f32,
    /// Adam steps (Lucid: 512), or DeepDream's steps per octave (10) [default: those].
    #[arg(long)]
    steps: Option<usize>,
    /// Adam's learning rate (Lucid: 0.05).
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// The picture's side in pixels [default: the model's input side when it is fixed, else
    /// Lucid's 128].
    #[arg(long)]
    size: Option<usize>,
    /// How the picture is parameterised.
    #[arg(long, value_enum, default_value_t = PictureChoice::Fft)]
    picture: PictureChoice,
    /// How fast the Fourier spectrum's scale falls with frequency (Lucid: 1).
    #[arg(long, default_value_t = 1.0)]
    decay_power: f32,
    /// Keep RGB channels independent (Lucid decorrelates them with ImageNet's colour statistics).
    #[arg(long)]
    no_decorrelate: bool,
    /// The random transforms of each step.
    #[arg(long, value_enum, default_value_t = TransformChoice::Lucid)]
    transforms: TransformChoice,
    /// The largest random shift per step, in pixels [default: 8, Lucid's; DeepDream's roll: 32].
    #[arg(long)]
    jitter: Option<usize>,
    /// Seed of the start and the transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the picture.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The least side a picture is drawn at: smaller ones are drawn in blocks of pixels.
const DISPLAY_SIDE: usize = 192;

/// Drawn at least [`DISPLAY_SIDE`] pixels wide.
fn displayed(image: RgbImage) -> RgbImage {
    let factor = DISPLAY_SIDE.div_ceil(image.width.max(1));
    if factor > 1 {
        image.upscale(factor)
    } else {
        image
    }
}

/// `[1, c, h, w]` values in [0, 1] as a picture.
fn picture(image: &DynTensor) -> Result<RgbImage> {
    let [_, c, h, w] = image.shape() else {
        return Err(Error::Model(
            "a picture is [1, channels, height, width]".into(),
        ));
    };
    let (c, h, w) = (*c, *h, *w);
    let v = image.to_vec()?;
    let mut out = RgbImage::filled(w, h, [0, 0, 0]);
    for y in 0..h {
        for x in 0..w {
            for k in 0..3 {
                let value = v[(k.min(c - 1) * h + y) * w + x];
                out.data[(y * w + x) * 3 + k] = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    Ok(out)
}

/// The examples' values at `layer`, flattened per example, 16 examples per pass.
fn activations(model: &dyn Model, examples: &DynTensor, layer: &str) -> Result<DynTensor> {
    let n = examples.shape().first().copied().unwrap_or(0);
    let parts = (0..n)
        .step_by(16)
        .map(|start| {
            let rows = examples.rows(start, (start + 16).min(n));
            layer_activations(model, &Inputs::from(rows), layer)
        })
        .collect::<Result<Vec<_>>>()?;
    DynTensor::cat(parts)
}

/// The concept's CAV at the layer, trained against the random images (Captum's default
/// classifier), as a direction.
fn concept_direction(
    args: &VisualizeArgs,
    spec: &str,
    random: &Path,
    classifier: &ImageClassifier,
    device: &Device,
) -> Result<(String, Vec<f32>)> {
    let (name, folder) = spec.split_once('=').ok_or_else(|| {
        Error::parameter(
            "concept",
            spec,
            "NAME=FOLDER, a folder of the concept's images",
        )
    })?;
    let model = classifier.model();
    let concept = Concept::from_folder(name, folder, &classifier.preprocess, device)?;
    let randoms = Concept::from_folder("random", random, &classifier.preprocess, device)?;
    let acts = [
        activations(model, concept.examples(), &args.layer)?,
        activations(model, randoms.examples(), &args.layer)?,
    ];
    let cav = CavTrainer::new(Classifier::Sgd).train(
        &[name.to_string(), "random".to_string()],
        &[&acts[0], &acts[1]],
        &args.layer,
    )?;
    if let Some(accuracy) = cav.accuracy {
        println!(
            "CAV of `{name}` at {}: held-out accuracy {:.2} on {} images",
            args.layer, accuracy, cav.test_examples
        );
    }
    Ok((format!("concept {name}"), cav.weights[0].clone()))
}

/// The first row of a saved CAV, checked against the layer.
fn saved_direction(path: &Path, layer: &str) -> Result<(String, Vec<f32>)> {
    let cav = Cav::load(path)?;
    if cav.layer != layer {
        return Err(Error::parameter(
            "cav",
            path.display(),
            format!(
                "the CAV was trained at `{}`, not at --layer `{layer}`",
                cav.layer
            ),
        ));
    }
    let name = cav.concepts.first().cloned().unwrap_or_default();
    Ok((format!("concept {name}"), cav.weights[0].clone()))
}

pub(crate) fn run(args: VisualizeArgs) -> Result<()> {
    let device = args.device.open()?;
    let classifier = classifier(&args.model, &device)?;
    let model = classifier.model();
    model.check_layer(&args.layer)?;
    let objectives: Vec<(String, Objective)> = if args.whole_layer {
        vec![("layer".into(), Objective::Layer)]
    } else if let (Some(spec), Some(random)) = (&args.concept, &args.random) {
        let (name, w) = concept_direction(&args, spec, random, &classifier, &device)?;
        vec![(name, Objective::Direction(w))]
    } else if let Some(path) = &args.cav {
        let (name, w) = saved_direction(path, &args.layer)?;
        vec![(name, Objective::Direction(w))]
    } else if args.dream.is_some() && args.channel.is_empty() {
        // DeepDream's own objective unless channels are asked for.
        vec![("layer".into(), Objective::Layer)]
    } else {
        let channels = if args.channel.is_empty() {
            &[0][..]
        } else {
            &args.channel[..]
        };
        channels
            .iter()
            .map(|&c| (format!("channel {c}"), Objective::Channel(c)))
            .collect()
    };
    let fixed_side = model
        .input_specs()
        .first()
        .and_then(|spec| spec.shape.last().copied().flatten());
    let mean = classifier.preprocess.mean.to_vec();
    let std = classifier.preprocess.std.to_vec();
    let mut tiles = Vec::new();
    let photo = match &args.dream {
        Some(path) => {
            let cropped = classifier.crop(&RgbImage::read(path)?);
            tiles.push(("photo".to_string(), displayed(cropped.clone())));
            Some(cropped.to_tensor([0.0; 3], [1.0; 3], &device)?)
        }
        None => None,
    };
    for (name, objective) in objectives {
        let (bar, progress) = method_bar(format!("{name} of {}", args.layer));
        let found: Visualization = if let Some(photo) = &photo {
            let mut dream = DeepDream::new(model, args.layer.clone())
                .objective(objective)
                .octaves(args.octaves)
                .octave_scale(args.octave_scale)
                .steps(args.steps.unwrap_or(10))
                .jitter(args.jitter.unwrap_or(32))
                .normalization(mean.clone(), std.clone())
                .seed(args.seed)
                .device(&device)
                .progress(move |done, total| (progress.0)(done, total));
            if let Some(side) = fixed_side {
                dream = dream.input_size(side);
            }
            dream.run(photo)?
        } else {
            let jitter = args.jitter.unwrap_or(8);
            let transforms = match args.transforms {
                TransformChoice::Lucid => Transforms {
                    jitter,
                    ..Transforms::lucid()
                },
                TransformChoice::Jitter => Transforms::jitter_only(jitter),
                TransformChoice::None => Transforms::jitter_only(0),
            };
            let parameterization = match args.picture {
                PictureChoice::Fft => Parameterization::Fft {
                    decay_power: args.decay_power,
                },
                PictureChoice::Pixel => Parameterization::Pixel,
            };
            let mut search = ActivationMaximization::new(model, args.layer.clone(), objective)
                .steps(args.steps.unwrap_or(512))
                .lr(args.lr)
                .size(args.size.or(fixed_side).unwrap_or(128))
                .parameterization(parameterization)
                .decorrelate(!args.no_decorrelate)
                .transforms(transforms)
                .normalization(mean.clone(), std.clone())
                .seed(args.seed)
                .device(&device)
                .progress(move |done, total| (progress.0)(done, total));
            if let Some(side) = fixed_side {
                search = search.input_size(side);
            }
            search.run()?
        };
        bar.finish_and_clear();
        let first = found.objective.first().copied().unwrap_or(f32::NAN);
        let last = found.objective.last().copied().unwrap_or(f32::NAN);
        println!("{name}: objective {first:.3} -> {last:.3}");
        tiles.push((
            format!("{name} ({last:.2})"),
            displayed(picture(&found.image)?),
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let kind = if args.dream.is_some() {
        "dream"
    } else {
        "visualize"
    };
    let png = args
        .out
        .join(format!("{kind}_{}.png", file_safe(&args.layer)));
    titled_grid(&tiles, tiles.len().min(4))?.write_png(&png)?;
    println!("wrote {}", png.display());
    Ok(())
}
