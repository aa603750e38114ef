//! `firelight sanity`: Adebayo et al.'s model randomisation test for several methods on one photo.

use std::path::PathBuf;

use firelight::core::npy::write_atomic;
use firelight::methods::RunContext;
use firelight::metrics::{Randomization, SanityCheck};
use firelight::prelude::*;
use firelight::viz::titled_grid;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{InputArgs, MethodOptionArgs, TargetArgs, methods_help};
use crate::session::{Drawing, Session, draw};

#[derive(clap::Args, Debug)]
pub(crate) struct SanityArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The methods to check, comma-separated (CAMs need --layer).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "saliency,integrated_gradients",
        long_help = methods_help()
    )]
    method: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    options: MethodOptionArgs,
    /// Into how many steps the layers with weights are cut, top first.
    #[arg(long, default_value_t = 5)]
    groups: usize,
    /// Redraw one group at a time instead of cascading from the top down.
    #[arg(long)]
    independent: bool,
    /// A method fails when, with every layer redrawn, its map still has a rank correlation
    /// (absolute values) of at least this with the original.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Folder for the outputs.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
}

pub(crate) fn run(args: SanityArgs) -> Result<()> {
    let session = Session::open(&args.method, &args.input, &args.options)?;
    let Session {
        methods,
        device,
        classifier,
        photo,
        input,
        ..
    } = &session;
    session.refuse_layer_methods()?;
    let model = classifier.randomizable();
    let explained = args.target.resolve(classifier, input, device)?;
    let target = &explained.target;
    let randomization = if args.independent {
        Randomization::Independent
    } else {
        Randomization::Cascading
    };
    let check = SanityCheck::new(model)
        .randomization(randomization)
        .groups(args.groups)
        .seed(args.options.seed);
    let steps = check.step_layers()?;
    let context = RunContext {
        layer: args.options.layer.clone(),
        feature_mask: args.options.feature_mask(methods, photo.as_ref())?,
        ..RunContext::default()
    };
    let bar = ProgressBar::new(methods.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}, ~{eta} left]")
            .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let mut tiles = Vec::new();
    let mut rows = Vec::new();
    let mut failing = Vec::new();
    for config in methods {
        let name = config.info().name;
        bar.set_message(format!("{name}: {} models", steps.len() + 1));
        let explain =
            |m: &dyn Model, x: &DynTensor, t: &Target| config.attribute_tensor(m, x, t, &context);
        let report = check.run(&explain, input, target)?;
        let passes = report.passes(args.threshold);
        if !passes {
            failing.push(name);
        }
        if let Some(photo) = photo {
            tiles.push((
                format!("{name}: original"),
                draw(photo, config, &report.original, &Drawing::default())?,
            ));
            for (i, step) in report.steps.iter().enumerate() {
                tiles.push((
                    format!("step {} rho {:+.2}", i + 1, step.spearman_abs[0]),
                    draw(photo, config, &step.explanation, &Drawing::default())?,
                ));
            }
        }
        rows.push(serde_json::json!({
            "method": name,
            "passes": passes,
            "steps": report.steps.iter().map(|s| serde_json::json!({
                "randomized_layers": s.randomized.len(),
                "first": s.randomized.first(),
                "spearman": s.spearman[0],
                "spearman_abs": s.spearman_abs[0],
                "ssim": s.ssim[0],
                "hog": s.hog[0],
            })).collect::<Vec<_>>(),
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    println!(
        "{} randomisation of {} layers with weights in {} steps, for the {} ({seconds:.1} s):",
        if args.independent {
            "independent"
        } else {
            "cascading"
        },
        model.parameter_layers().len(),
        steps.len(),
        explained.description
    );
    for row in &rows {
        let similarity: Vec<String> = row["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{:+.2}", s["spearman_abs"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!(
            "  {:<22} rank correlation with the original by step: {}  {}",
            row["method"].as_str().unwrap_or_default(),
            similarity.join(" "),
            if row["passes"].as_bool() == Some(true) {
                "passes"
            } else {
                "FAILS: the map does not depend on the weights"
            }
        );
    }

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let name = format!("{}_sanity{}", session.stem(), explained.slug);
    let json = serde_json::json!({
        "model": classifier.name,
        "target": explained.description,
        "randomization": if args.independent { "independent" } else { "cascading" },
        "groups": steps.iter().map(Vec::len).collect::<Vec<_>>(),
        "threshold": args.threshold,
        "seed": args.options.seed,
        "seconds": seconds,
        "methods": rows,
    });
    let json_path = args.out.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&json_path, text.as_bytes())?;
    println!("numbers: {}", json_path.display());
    if !tiles.is_empty() {
        let png = args.out.join(format!("{name}.png"));
        titled_grid(&tiles, steps.len() + 1)?.write_png(&png)?;
        println!(
            "rows: methods; columns: more layers redrawn: {}",
            png.display()
        );
    }
    if !failing.is_empty() {
        println!("failing the check: {}", failing.join(", "));
    }
    Ok(())
}
