//! `firelight explain` on tabular rows: a model with named features (a `model.json` beside the
//! ONNX file), rows from a CSV file or `--row name=value,...`; several methods side by side in a
//! terminal table, JSON, CSV, a bar chart per row and, over many rows, a global summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use firelight::core::npy::write_atomic;
use firelight::methods::{Family, MethodConfig, ProgressCallback, RunContext};
use firelight::prelude::*;
use firelight::tabular::{Table, TabularModel};
use firelight::viz::{grouped_bar_chart, summary_bar_chart, summary_dot_plot};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::MethodOptionArgs;
use crate::explain::ExplainArgs;

/// The methods a tabular explanation runs when `--method` is not given: the gradient method and
/// the perturbation methods Captum's tabular tutorials set side by side.
pub(crate) const DEFAULT_METHODS: &str =
    "integrated_gradients,feature_ablation,shapley_value_sampling,kernel_shap,lime";

/// Rows drawn one chart each; more rows get the summary only.
const MAX_ROW_CHARTS: usize = 10;

/// Whether the model named by `--model` is a tabular one (the bundled diabetes MLP, or an ONNX
/// file with a `model.json` of features beside it).
pub(crate) fn is_tabular(model: &str) -> bool {
    model == "diabetes_mlp"
        || (model.ends_with(".onnx") && Path::new(model).with_file_name("model.json").is_file())
}

pub(crate) fn open_model(name: &str, device: &Device) -> Result<TabularModel> {
    if name == "diabetes_mlp" {
        TabularModel::diabetes_mlp(device)
    } else {
        TabularModel::load(name, device)
    }
}

pub(crate) fn explain(args: &ExplainArgs, methods: &[String]) -> Result<()> {
    let device = args.input.device.open()?;
    let tabular = open_model(&args.input.model.model, &device)?;
    let features = &tabular.spec.features;
    let table = match (&args.rows, &args.row) {
        (Some(_), Some(_)) => {
            return Err(Error::parameter(
                "rows",
                "--rows and --row",
                "give a CSV file or one row, not both",
            ));
        }
        (Some(path), None) => Table::read_csv(path, features)?,
        (None, Some(row)) => Table::parse_row(row, features)?,
        (None, None) => Table::read_csv(TabularModel::diabetes_test_rows(), features)
            .ok()
            .filter(|_| args.input.model.model == "diabetes_mlp")
            .ok_or_else(|| {
                Error::parameter(
                    "rows",
                    "none",
                    "give the rows to explain: --rows rows.csv (header = feature names) or --row name=value,...",
                )
            })?,
    };
    let configs = configs(&args.options, methods)?;
    let inputs = tabular.inputs(&table, &device)?;
    let predictions = tabular.predict(&table, &device)?;
    let output = tabular
        .spec
        .output
        .clone()
        .unwrap_or_else(|| "output".into());
    println!(
        "{}: {} row(s), {} features; explaining `{output}` (output 0), attributions in \
         standardised units against the training mean",
        tabular.name,
        table.len(),
        features.len()
    );

    let bar = ProgressBar::new(configs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    let target = Target::class(0);
    let context = RunContext {
        feature_mask: args.options.feature_mask(&configs, None)?,
        neuron: args.options.neuron.clone(),
        ..RunContext::default()
    };
    // attributions[method][row][feature]
    let mut attributions: Vec<Vec<Vec<f32>>> = Vec::new();
    for config in &configs {
        let name = config.info().name;
        bar.set_message(name);
        let reporter = bar.clone();
        let context = RunContext {
            progress: Some(ProgressCallback::new(move |done, total| {
                reporter.set_message(format!("{name} {done}/{total}"));
            })),
            ..context.clone()
        };
        let result = config.attribute(tabular.model(), &inputs, &target, &context)?;
        let values = result.into_single()?.to_vec()?;
        attributions.push(values.chunks(features.len()).map(<[f32]>::to_vec).collect());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let names: Vec<String> = configs.iter().map(|c| c.info().name.to_string()).collect();

    print_table(&table, features, &names, &attributions, &predictions);
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = tabular.name.clone();
    let written = write_outputs(
        &args.out,
        &stem,
        &table,
        features,
        &names,
        &attributions,
        &predictions,
    )?;
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

/// The methods by name, with the options applied; tabular inputs have no layer or CAM.
pub(crate) fn configs(options: &MethodOptionArgs, methods: &[String]) -> Result<Vec<MethodConfig>> {
    let configs = options.configs(methods)?;
    if let Some(m) = configs
        .iter()
        .find(|m| matches!(m.info().family, Family::Cam | Family::Layer))
    {
        return Err(Error::parameter(
            "method",
            m.info().name,
            "tabular rows are explained by input methods: gradient or perturbation methods",
        ));
    }
    Ok(configs)
}

fn print_table(
    table: &Table,
    features: &[String],
    methods: &[String],
    attributions: &[Vec<Vec<f32>>],
    predictions: &[f32],
) {
    let shown = table.len().min(3);
    for row in 0..shown {
        println!(
            "\n{} (prediction {:.2}):",
            table.labels[row], predictions[row]
        );
        let mut header = format!("  {:<10} {:>10}", "feature", "value");
        for m in methods {
            let _ = write!(header, " {:>14}", shorten(m, 14));
        }
        println!("{header}");
        // Features by their largest attribution magnitude over the methods, as the chart.
        let mut order: Vec<usize> = (0..features.len()).collect();
        let magnitude = |f: usize| {
            attributions
                .iter()
                .map(|m| m[row][f].abs())
                .fold(0.0f32, f32::max)
        };
        order.sort_by(|&a, &b| magnitude(b).total_cmp(&magnitude(a)));
        for f in order {
            let mut line = format!(
                "  {:<10} {:>10.3}",
                shorten(&features[f], 10),
                table.rows[row][f]
            );
            for m in attributions {
                let _ = write!(line, " {:>+14.4}", m[row][f]);
            }
            println!("{line}");
        }
    }
    if table.len() > shown {
        println!("\n({} more rows in the JSON and CSV)", table.len() - shown);
    }
    if table.len() > 1 {
        println!("\nmean |attribution| over {} rows:", table.len());
        let mut header = format!("  {:<10}", "feature");
        for m in methods {
            let _ = write!(header, " {:>14}", shorten(m, 14));
        }
        println!("{header}");
        for (f, name) in features.iter().enumerate() {
            let mut line = format!("  {:<10}", shorten(name, 10));
            for m in attributions {
                let mean = m.iter().map(|r| r[f].abs()).sum::<f32>() / m.len() as f32;
                let _ = write!(line, " {mean:>14.4}");
            }
            println!("{line}");
        }
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        text.chars().take(width - 1).chain(['.']).collect()
    }
}

fn write_outputs(
    out: &Path,
    stem: &str,
    table: &Table,
    features: &[String],
    methods: &[String],
    attributions: &[Vec<Vec<f32>>],
    predictions: &[f32],
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let json = serde_json::json!({
        "features": features,
        "methods": methods,
        "rows": (0..table.len()).map(|r| serde_json::json!({
            "label": table.labels[r],
            "values": table.rows[r],
            "prediction": predictions[r],
            "attributions": methods.iter().zip(attributions).map(|(m, a)| (m.clone(), serde_json::json!(a[r])))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
        })).collect::<Vec<_>>(),
    });
    let path = out.join(format!("{stem}_attributions.json"));
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&path, text.as_bytes())?;
    written.push(path);

    let mut csv = String::from("row,method,feature,value,attribution\n");
    for r in 0..table.len() {
        for (m, a) in methods.iter().zip(attributions) {
            for (f, name) in features.iter().enumerate() {
                let _ = writeln!(csv, "{},{m},{name},{},{}", r + 1, table.rows[r][f], a[r][f]);
            }
        }
    }
    let path = out.join(format!("{stem}_attributions.csv"));
    write_atomic(&path, csv.as_bytes())?;
    written.push(path);

    for r in 0..table.len().min(MAX_ROW_CHARTS) {
        let per_method: Vec<Vec<f32>> = attributions.iter().map(|a| a[r].clone()).collect();
        let title = format!("{} (prediction {:.1})", table.labels[r], predictions[r]);
        let chart = grouped_bar_chart(features, methods, &per_method, &title)?;
        let path = out.join(format!("{stem}_row{}.png", r + 1));
        chart.write_png(&path)?;
        written.push(path);
    }
    if table.len() > 1 {
        // The summary of the first method, as shap's users read it.
        let first = &attributions[0];
        let title = format!(
            "{}: mean |attribution| over {} rows",
            methods[0],
            table.len()
        );
        let path = out.join(format!("{stem}_summary_bars.png"));
        summary_bar_chart(features, first, &title)?.write_png(&path)?;
        written.push(path);
        let title = format!(
            "{}: attribution per row, coloured by feature value",
            methods[0]
        );
        let path = out.join(format!("{stem}_summary_dots.png"));
        summary_dot_plot(features, first, &table.rows, &title)?.write_png(&path)?;
        written.push(path);
    }
    Ok(written)
}
