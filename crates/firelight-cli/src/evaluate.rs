//! `firelight evaluate`: how faithful, robust and concentrated several methods' explanations of
//! one photo are, by the metrics of firelight-metrics; deletion and insertion curves drawn.

use std::path::PathBuf;

use clap::ValueEnum;
use firelight::core::npy::write_atomic;
use firelight::methods::{Family, RunContext};
use firelight::metrics::{
    CausalMetric, FaithfulnessCorrelation, Infidelity, InfidelityPerturbation, RegionPerturbation,
    Road, RoadOrder, SensitivityMax, agreement, cam_mult_image_confidence_change, complexity,
    sparseness,
};
use firelight::prelude::*;
use firelight::viz::{line_chart, matrix_heatmap, pixel_map, titled_grid};
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
    /// The metrics, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "road,confidence,deletion,insertion,sparseness"
    )]
    metric: Vec<MetricChoice>,
    /// Deletion and insertion: pixels removed (inserted) per step (RISE: 224).
    #[arg(long, default_value_t = 224)]
    step: usize,
    /// Infidelity and sensitivity: perturbed copies per photo (Captum's `n_perturb_samples`).
    #[arg(long, default_value_t = 10)]
    n_perturb_samples: usize,
    /// Infidelity: the standard deviation of its Gaussian perturbations (Captum's tutorial).
    #[arg(long, default_value_t = 0.003)]
    infidelity_stdev: f32,
    /// Sensitivity: the largest change of any input element (Captum's `perturb_radius`).
    #[arg(long, default_value_t = 0.02)]
    perturb_radius: f32,
    /// Faithfulness correlation: random pixel subsets (Quantus's `nr_runs`).
    #[arg(long, default_value_t = 100)]
    nr_runs: usize,
    /// Faithfulness correlation: pixels per subset (Quantus's `subset_size`).
    #[arg(long, default_value_t = 224)]
    subset_size: usize,
    /// Region perturbation: the side of a region in pixels (Quantus: 8).
    #[arg(long, default_value_t = 8)]
    patch_size: usize,
    /// Region perturbation: regions removed, most relevant first (Quantus: 100).
    #[arg(long, default_value_t = 100)]
    regions: usize,
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

/// What `evaluate` can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MetricChoice {
    /// pytorch-grad-cam's ROAD: most and least relevant first, and their combination (higher
    /// is more faithful).
    Road,
    /// pytorch-grad-cam's confidence change when the photo is multiplied by the map.
    Confidence,
    /// RISE's deletion AUC of the target's probability (lower is more faithful).
    Deletion,
    /// RISE's insertion AUC into a blurred photo (higher is more faithful).
    Insertion,
    /// Captum's infidelity, normalized (lower is more faithful).
    Infidelity,
    /// Captum's sensitivity_max: the method re-run on nearby inputs (lower is more robust).
    Sensitivity,
    /// Quantus's faithfulness correlation (higher is more faithful).
    Faithfulness,
    /// Quantus's region perturbation, most relevant region first: the AOPC of the target's
    /// logit (higher is more faithful); its curve is drawn.
    Region,
    /// Quantus's sparseness, the Gini index (higher is more concentrated).
    Sparseness,
    /// Quantus's complexity, an entropy (lower is simpler).
    Complexity,
}

/// One curve of one method: its name and the target's scores along it.
type Series = (String, Vec<f32>);

/// One method's scores, in the order of the metrics asked for.
struct Scores {
    method: &'static str,
    values: Vec<(&'static str, f32)>,
    combined: Option<f32>,
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
    session.refuse_layer_methods()?;
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
    // RISE's curves follow the target's probability.
    let probability = match target {
        Target::Class(classes) => Target::Probability(classes.clone()),
        other => other.clone(),
    };
    let mut rows = Vec::new();
    let mut tiles = Vec::new();
    let mut curves: Vec<(&'static str, Vec<Series>)> = Vec::new();
    let mut all_maps: Vec<Series> = Vec::new();
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
        all_maps.push((method.to_string(), map.clone()));
        let maps = DynTensor::from_vec(map, vec![1, height, width], device)?;
        let mut values = Vec::new();
        let mut combined = None;
        for metric in &args.metric {
            bar.set_message(format!("{method}: {metric:?}"));
            match metric {
                MetricChoice::Road => {
                    let morf =
                        road.score(model, input, &maps, target, RoadOrder::MostRelevantFirst)?[0];
                    let lerf =
                        road.score(model, input, &maps, target, RoadOrder::LeastRelevantFirst)?[0];
                    combined = Some((lerf - morf) / 2.0);
                    values.extend([
                        ("road_morf", morf),
                        ("road_lerf", lerf),
                        ("road_combined", (lerf - morf) / 2.0),
                    ]);
                }
                MetricChoice::Confidence => values.push((
                    "confidence_change",
                    cam_mult_image_confidence_change(model, input, &maps, target)?[0],
                )),
                MetricChoice::Deletion | MetricChoice::Insertion => {
                    let (name, causal) = if *metric == MetricChoice::Deletion {
                        ("deletion_auc", CausalMetric::deletion(model))
                    } else {
                        ("insertion_auc", CausalMetric::insertion(model))
                    };
                    let curve = causal
                        .step(args.step)
                        .curves(input, &maps, &probability)?
                        .swap_remove(0);
                    values.push((name, curve.auc));
                    let title = if name == "deletion_auc" {
                        "deletion"
                    } else {
                        "insertion"
                    };
                    match curves.iter_mut().find(|(t, _)| *t == title) {
                        Some((_, series)) => series.push((method.to_string(), curve.scores)),
                        None => curves.push((title, vec![(method.to_string(), curve.scores)])),
                    }
                }
                MetricChoice::Infidelity => values.push((
                    "infidelity",
                    Infidelity::new(model)
                        .perturbation(InfidelityPerturbation::Noise {
                            stdev: args.infidelity_stdev,
                        })
                        .n_perturb_samples(args.n_perturb_samples)
                        .normalize(true)
                        .seed(seed)
                        .score(input, &attribution, target)?[0],
                )),
                MetricChoice::Sensitivity => {
                    let explain =
                        |x: &DynTensor, t: &Target| config.attribute_tensor(model, x, t, &context);
                    values.push((
                        "sensitivity_max",
                        SensitivityMax::new(&explain)
                            .perturb_radius(args.perturb_radius)
                            .n_perturb_samples(args.n_perturb_samples)
                            .seed(seed)
                            .score(input, target)?[0],
                    ));
                }
                MetricChoice::Faithfulness => values.push((
                    "faithfulness_correlation",
                    FaithfulnessCorrelation::new(model)
                        .nr_runs(args.nr_runs)
                        .subset_size(args.subset_size)
                        .seed(seed)
                        .score(input, &maps, target)?[0],
                )),
                MetricChoice::Region => {
                    let curve = RegionPerturbation::new(model)
                        .patch_size(args.patch_size)
                        .regions_evaluation(args.regions)
                        .curves(input, &maps, target)?
                        .swap_remove(0);
                    values.push(("region_aopc", curve.aopc()));
                    let series = (method.to_string(), curve.drops);
                    match curves.iter_mut().find(|(t, _)| *t == "region") {
                        Some((_, all)) => all.push(series),
                        None => curves.push(("region", vec![series])),
                    }
                }
                MetricChoice::Sparseness => {
                    values.push(("sparseness", sparseness(&attribution)?[0]));
                }
                MetricChoice::Complexity => {
                    values.push(("complexity", complexity(&attribution)?[0]));
                }
            }
        }
        if let Some(photo) = &photo {
            let picture = draw(photo, config, &attribution, &Drawing::default())?;
            let caption = match combined {
                Some(c) => format!("{method} {c:+.3}"),
                None => method.to_string(),
            };
            tiles.push((caption, picture));
        }
        rows.push(Scores {
            method,
            values,
            combined,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    println!("for the {}:", explained.description);
    if let Some(first) = rows.first() {
        let header: Vec<String> = first
            .values
            .iter()
            .map(|(n, _)| format!("{n:>13}"))
            .collect();
        println!("  {:<20} {}", "method", header.join(" "));
    }
    for r in &rows {
        let cells: Vec<String> = r
            .values
            .iter()
            .map(|(_, v)| format!("{v:>+13.4}"))
            .collect();
        println!("  {:<20} {}", r.method, cells.join(" "));
    }
    if let Some(best) = rows
        .iter()
        .filter_map(|r| r.combined.map(|c| (r, c)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, _)| r)
    {
        println!("  most faithful by ROAD combined: {}", best.method);
    }

    // Do the methods agree? Every pair's rank correlation and overlap of their top tenth.
    let positions = all_maps.first().map_or(0, |(_, m)| m.len());
    let agreed = if all_maps.len() > 1 {
        let a = agreement(&all_maps, (positions / 10).max(1))?;
        println!("agreement (Spearman; shared top {} pixels):", a.k);
        for (i, name) in a.names.iter().enumerate() {
            let cells: Vec<String> = (0..a.names.len())
                .map(|j| format!("{:+.2}/{:.2}", a.spearman[i][j], a.top_k[i][j]))
                .collect();
            println!("  {name:<20} {}", cells.join(" "));
        }
        Some(a)
    } else {
        None
    };

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
        "causal": {"step": args.step, "score": "the target's probability"},
        "infidelity": {"stdev": args.infidelity_stdev, "n_perturb_samples": args.n_perturb_samples, "normalize": true},
        "sensitivity": {"perturb_radius": args.perturb_radius, "n_perturb_samples": args.n_perturb_samples},
        "faithfulness": {"nr_runs": args.nr_runs, "subset_size": args.subset_size},
        "region": {"patch_size": args.patch_size, "regions_evaluation": args.regions, "order": "most relevant first", "score": "drop of the target's logit"},
        "methods": rows.iter().map(|r| {
            let mut row = serde_json::Map::new();
            row.insert("method".into(), r.method.into());
            for (name, value) in &r.values {
                row.insert((*name).into(), serde_json::json!(value));
            }
            serde_json::Value::Object(row)
        }).collect::<Vec<_>>(),
        "agreement": agreed.as_ref().map(|a| serde_json::json!({
            "methods": a.names,
            "spearman": a.spearman,
            "top_k": a.top_k,
            "k": a.k,
        })),
        "curves": curves.iter().map(|(title, series)| serde_json::json!({
            "curve": title,
            "methods": series.iter().map(|(m, v)| serde_json::json!({"method": m, "scores": v})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let json_path = args.out.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&json_path, text.as_bytes())?;
    println!("scores: {}", json_path.display());
    if !tiles.is_empty() {
        let png = args.out.join(format!("{name}.png"));
        titled_grid(&tiles, 3)?.write_png(&png)?;
        println!("maps: {}", png.display());
    }
    if let Some(a) = &agreed {
        let png = args.out.join(format!("{name}_agreement.png"));
        let tiles = vec![
            (
                "Spearman rank correlation".to_string(),
                matrix_heatmap("methods' maps", &a.names, &a.spearman, (-1.0, 1.0))?,
            ),
            (
                format!("share of the top {} pixels", a.k),
                matrix_heatmap("methods' maps", &a.names, &a.top_k, (-1.0, 1.0))?,
            ),
        ];
        titled_grid(&tiles, 2)?.write_png(&png)?;
        println!("agreement: {}", png.display());
    }
    for (title, series) in &curves {
        let png = args.out.join(format!("{name}_{title}.png"));
        let (heading, axis) = match *title {
            "deletion" => (
                "deletion: the target's probability",
                "fraction of pixels removed",
            ),
            "insertion" => (
                "insertion: the target's probability",
                "fraction of pixels inserted",
            ),
            _ => (
                "regions: drop of the logit",
                "share of the regions removed, most relevant first",
            ),
        };
        line_chart(heading, axis, series)?.write_png(&png)?;
        println!("{title} curves: {}", png.display());
    }
    Ok(())
}
