//! `firelight evaluate`: ROAD and the confidence change for several methods on one photo.

use std::path::PathBuf;

use firelight::core::npy::write_atomic;
use firelight::methods::{Family, RunContext};
use firelight::metrics::{Road, RoadOrder, cam_mult_image_confidence_change};
use firelight::prelude::*;
use firelight::viz::{pixel_map, titled_grid};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{InputArgs, MethodOptionArgs, TargetArgs, methods_help};
use crate::session::{Drawing, Session, draw, file_safe};

#[derive(clap::Args, Debug)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The methods to compare, comma-separated (CAMs need --layer; gradient methods are scored on
    /// their per-pixel magnitudes scaled to [0, 1]).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gradcam,hirescam,gradcam++,xgradcam,layercam,eigencam",
        long_help = methods_help()
    )]
    method: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    options: MethodOptionArgs,
    /// ROAD's percentiles (comma-separated); scores are averaged over them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,30,40,50,60,70,80,90"
    )]
    percentiles: Vec<f32>,
    /// Standard deviation of ROAD's imputation noise.
    #[arg(long, default_value_t = 0.01)]
    noise: f32,
    /// Folder for the outputs.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
}

/// One method's scores.
struct Scores {
    method: &'static str,
    morf: f32,
    lerf: f32,
    combined: f32,
    confidence: f32,
}

pub(crate) fn evaluate(args: EvaluateArgs) -> Result<()> {
    let session = Session::open(&args.method, &args.input, &args.options)?;
    let Session {
        methods,
        device,
        classifier,
        path,
        photo,
        input,
    } = &session;
    if let Some(m) = methods.iter().find(|m| m.info().family == Family::Layer) {
        return Err(Error::parameter(
            "method",
            m.info().name,
            "layer attributions are not maps over the photo; use CAMs or input attributions",
        ));
    }
    if args.options.neuron.is_some() {
        return Err(Error::parameter(
            "neuron",
            "given",
            "evaluate scores maps of the target; explain a neuron with `firelight explain`",
        ));
    }
    let explained = args.target.resolve(classifier, input, device)?;
    let context = RunContext {
        layer: args.options.layer.clone(),
        feature_mask: args.options.feature_mask(methods, photo.as_ref())?,
        ..RunContext::default()
    };
    let seed = args.options.seed;
    let road = Road::new()
        .percentiles(args.percentiles.clone())
        .noise(args.noise)
        .seed(seed);
    let model = explained.model.as_ref();
    let target = &explained.target;

    let bar = ProgressBar::new(methods.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    let mut rows = Vec::new();
    let mut tiles = Vec::new();
    for config in methods {
        let method = config.info().name;
        bar.set_message(format!("{method}: map"));
        let attribution = config.attribute_tensor(model, input, target, &context)?;
        let [height, width] = [input.shape()[2], input.shape()[3]];
        let map = if config.info().family == Family::Cam {
            attribution.to_vec()?
        } else {
            pixel_map(&attribution)?.0
        };
        let maps = DynTensor::from_vec(map, vec![1, height, width], device)?;
        bar.set_message(format!("{method}: ROAD"));
        let morf = road.score(model, input, &maps, target, RoadOrder::MostRelevantFirst)?[0];
        let lerf = road.score(model, input, &maps, target, RoadOrder::LeastRelevantFirst)?[0];
        let confidence = cam_mult_image_confidence_change(model, input, &maps, target)?[0];
        let scores = Scores {
            method,
            morf,
            lerf,
            combined: (lerf - morf) / 2.0,
            confidence,
        };
        if let Some(photo) = &photo {
            let picture = draw(photo, config, &attribution, &Drawing::default())?;
            tiles.push((format!("{method} {:+.3}", scores.combined), picture));
        }
        rows.push(scores);
        bar.inc(1);
    }
    bar.finish_and_clear();

    println!(
        "faithfulness for the {} ({} percentiles, noise {}):",
        explained.description,
        args.percentiles.len(),
        args.noise
    );
    println!(
        "  {:<20} {:>10} {:>10} {:>10} {:>11}",
        "method", "ROAD MoRF", "ROAD LeRF", "combined", "confidence"
    );
    for r in &rows {
        println!(
            "  {:<20} {:>+10.4} {:>+10.4} {:>+10.4} {:>+11.4}",
            r.method.to_string(),
            r.morf,
            r.lerf,
            r.combined,
            r.confidence
        );
    }
    if let Some(best) = rows.iter().max_by(|a, b| a.combined.total_cmp(&b.combined)) {
        println!("  most faithful by ROAD combined: {}", best.method);
    }

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = session.stem();
    let layer = args
        .options
        .layer
        .as_deref()
        .map(|l| format!("_{}", file_safe(l)))
        .unwrap_or_default();
    let name = format!("{stem}_evaluate{}{layer}", explained.slug);
    let json = serde_json::json!({
        "image": path.display().to_string(),
        "model": classifier.name,
        "target": explained.description,
        "layer": args.options.layer,
        "road": {"percentiles": args.percentiles, "noise": args.noise, "seed": seed},
        "methods": rows.iter().map(|r| serde_json::json!({
            "method": r.method.to_string(),
            "road_morf": r.morf,
            "road_lerf": r.lerf,
            "road_combined": r.combined,
            "confidence_change": r.confidence,
        })).collect::<Vec<_>>(),
    });
    let json_path = args.out.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&json_path, text.as_bytes())?;
    println!("scores: {}", json_path.display());
    if !tiles.is_empty() {
        let png = args.out.join(format!("{name}.png"));
        titled_grid(&tiles, 3)?.write_png(&png)?;
        println!("maps with their ROAD combined score: {}", png.display());
    }
    Ok(())
}
