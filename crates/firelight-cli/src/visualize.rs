//! `firelight visualize`: what a channel of a layer detects, by activation maximisation.

use std::path::PathBuf;

use firelight::grad::{ActivationMaximization, Objective};
use firelight::prelude::*;
use firelight::viz::{RgbImage, titled_grid};

use crate::args::{DeviceArgs, ModelArgs, classifier, device};
use crate::session::{file_safe, method_bar};

#[derive(clap::Args, Debug)]
pub(crate) struct VisualizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The layer (`firelight layers` lists them).
    #[arg(long)]
    layer: String,
    /// The channels to visualise, comma-separated: one picture each.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    channel: Vec<usize>,
    /// Maximise the mean square of the whole layer instead (DeepDream's objective).
    #[arg(long, conflicts_with = "channel")]
    whole_layer: bool,
    /// Adam steps (Lucid: 512).
    #[arg(long, default_value_t = 512)]
    steps: usize,
    /// Adam's learning rate (Lucid: 0.05).
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// The picture's side in pixels [default: the model's input side when it is fixed, else
    /// Lucid's 128].
    #[arg(long)]
    size: Option<usize>,
    /// The largest random shift per step, in pixels.
    #[arg(long, default_value_t = 8)]
    jitter: usize,
    /// Seed of the start and the jitter.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the picture.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// `[1, 3, n, n]` values in [0, 1] as a picture.
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

pub(crate) fn run(args: VisualizeArgs) -> Result<()> {
    let device = device(args.device.device)?;
    let classifier = classifier(&args.model, &device)?;
    let model = classifier.model();
    model.check_layer(&args.layer)?;
    let objectives: Vec<(String, Objective)> = if args.whole_layer {
        vec![("layer".into(), Objective::Layer)]
    } else {
        args.channel
            .iter()
            .map(|&c| (format!("channel {c}"), Objective::Channel(c)))
            .collect()
    };
    let fixed_side = model
        .input_specs()
        .first()
        .and_then(|spec| spec.shape.last().copied().flatten());
    let size = args.size.or(fixed_side).unwrap_or(128);
    let mean = classifier.preprocess.mean.to_vec();
    let std = classifier.preprocess.std.to_vec();
    let mut tiles = Vec::new();
    for (name, objective) in objectives {
        let (bar, progress) = method_bar(format!("{name} of {}", args.layer));
        let found = ActivationMaximization::new(model, args.layer.clone(), objective)
            .steps(args.steps)
            .lr(args.lr)
            .size(size)
            .jitter(args.jitter)
            .normalization(mean.clone(), std.clone())
            .seed(args.seed)
            .device(&device)
            .progress(move |done, total| (progress.0)(done, total))
            .run()?;
        bar.finish_and_clear();
        let last = found.objective.last().copied().unwrap_or(f32::NAN);
        println!("{name}: objective {:.3} -> {last:.3}", found.objective[0]);
        tiles.push((format!("{name} ({last:.2})"), picture(&found.image)?));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let png = args
        .out
        .join(format!("visualize_{}.png", file_safe(&args.layer)));
    titled_grid(&tiles, tiles.len().min(4))?.write_png(&png)?;
    println!("wrote {}", png.display());
    Ok(())
}
