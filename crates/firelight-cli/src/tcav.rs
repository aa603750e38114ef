//! `firelight tcav`: a TCAV experiment (concepts, random concepts, targets, layers) from flags or a
//! TOML file, with progress bars, written as JSON, PNG plots and a self-contained HTML report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use firelight::bundled::{ImageClassifier, models_dir};
use firelight::concept::report::write_report;
use firelight::concept::{
    ActivationCache, CavTrainer, Classifier, Concept, ExperimentConfig, ModelKey, Progress,
    RandomConcepts, ScoreKind, TargetInputs, Tcav,
};
use firelight::prelude::*;
use firelight::text::TextClassifier;
use firelight::text::concepts::{PooledText, read_sentences};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::args::{DeviceArgs, ModelArgs, classifier};

/// Flags of `firelight tcav`. Every flag may instead be given in the `--config` TOML file (flags
/// win); see `TcavFile` for its keys.
#[derive(clap::Args, Debug)]
pub(crate) struct TcavArgs {
    /// A TOML file describing the experiment: model, layers, [concepts], random_pool or random,
    /// [targets], runs, random_size, seed, alpha, score, classifier, cache, out.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// A concept as NAME=FOLDER of images (repeatable); for a text model (a tokenizer.json
    /// beside the .onnx, or `--model minilm_sentiment`), NAME=FILE of sentences, one per line.
    #[arg(long = "concept", value_parser = parse_pair)]
    concepts: Vec<(String, PathBuf)>,
    /// A folder of random images (a file of random sentences for a text model); random concepts
    /// are random subsets of it.
    #[arg(long)]
    random_pool: Option<PathBuf>,
    /// A folder of random images (or file of sentences) as one random concept (repeatable; at
    /// least 3), instead of a pool.
    #[arg(long = "random")]
    random: Vec<PathBuf>,
    /// A class to explain and the folder of its input images (or file of its sentences),
    /// CLASS=FOLDER (CLASS: a label or an index; repeatable).
    #[arg(long = "target", value_parser = parse_pair)]
    targets: Vec<(String, PathBuf)>,
    /// A layer (repeatable; `firelight layers` lists them). For a text model, pool an encoder
    /// layer [sentences, tokens, hidden] per sentence: LAYER@mean (its real tokens' mean) or
    /// LAYER@cls (the first token).
    #[arg(long = "layer")]
    layers: Vec<String>,
    /// Random runs (default 10).
    #[arg(long)]
    runs: Option<usize>,
    /// Examples per random concept drawn from the pool (default: as many as the largest concept).
    #[arg(long)]
    random_size: Option<usize>,
    /// Seed of the random draws and of the CAV train/test split (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Significance level after Bonferroni correction (default 0.05).
    #[arg(long)]
    alpha: Option<f64>,
    /// The score the t-test compares: sign_count (default) or magnitude.
    #[arg(long)]
    score: Option<String>,
    /// CAV classifier: sgd (Captum's default objective, default), logistic or fastcav.
    #[arg(long)]
    classifier: Option<String>,
    /// Folder of the activation cache (default: <out>/cache).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Compute every activation afresh and cache nothing.
    #[arg(long)]
    no_cache: bool,
    /// Inputs per forward/backward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Output folder (default firelight-out/tcav).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The TOML form of the experiment. Relative paths are relative to the TOML file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct TcavFile {
    model: Option<String>,
    #[serde(default)]
    layers: Vec<String>,
    #[serde(default)]
    concepts: BTreeMap<String, PathBuf>,
    random_pool: Option<PathBuf>,
    #[serde(default)]
    random: Vec<PathBuf>,
    #[serde(default)]
    targets: BTreeMap<String, PathBuf>,
    runs: Option<usize>,
    random_size: Option<usize>,
    seed: Option<u64>,
    alpha: Option<f64>,
    score: Option<String>,
    classifier: Option<String>,
    cache: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_pair(text: &str) -> std::result::Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FOLDER, got `{text}`"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=FOLDER, got `{text}`"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

fn read_file(path: &Path) -> Result<TcavFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut file: TcavFile = toml::from_str(&text)
        .map_err(|e| Error::parameter("config", path.display(), e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    file.concepts.values_mut().for_each(rebase);
    file.targets.values_mut().for_each(rebase);
    file.random.iter_mut().for_each(rebase);
    file.random_pool.as_mut().map(rebase);
    file.cache.as_mut().map(rebase);
    file.out.as_mut().map(rebase);
    if let Some(model) = &mut file.model
        && model.ends_with(".onnx")
        && Path::new(model).is_relative()
    {
        *model = base.join(&*model).to_string_lossy().into_owned();
    }
    Ok(file)
}

/// The file whose bytes identify the model's weights, for the cache key.
fn model_file(model: &str) -> PathBuf {
    match model {
        "minilm_sentiment" => firelight::text::default_text_model(),
        "efficientnet_lite0" => models_dir().join("efficientnet_lite0/model.onnx"),
        "mobilenet_v2" => models_dir().join("mobilenet_v2/weights.safetensors"),
        path => PathBuf::from(path),
    }
}

fn class_index(classifier: &ImageClassifier, spec: &str) -> Result<usize> {
    if let Some(i) = classifier.labels.iter().position(|l| l == spec) {
        return Ok(i);
    }
    spec.parse::<usize>().map_err(|_| {
        Error::parameter(
            "target",
            spec,
            format!(
                "not a class index or label of the model (labels: {})",
                classifier.labels.join(", ")
            ),
        )
    })
}

/// The ONNX file of a text classifier (a `tokenizer.json` beside it; `minilm_sentiment` names
/// the bundled one), or `None` for an image model.
fn text_model(model: &str) -> Option<PathBuf> {
    if model == "minilm_sentiment" {
        return Some(firelight::text::default_text_model());
    }
    let path = Path::new(model);
    (model.ends_with(".onnx") && path.with_file_name("tokenizer.json").is_file())
        .then(|| path.to_path_buf())
}

type Sets = (Vec<Concept>, RandomConcepts, Vec<TargetInputs>);

/// The concepts, random concepts and targets, each set made a [`Concept`] by `load` (a folder of
/// images, or a text file of sentences) and each target class resolved by `class_of` to its
/// index and label.
fn load_sets(
    concepts: &[(String, PathBuf)],
    random_pool: Option<PathBuf>,
    random_sets: &[PathBuf],
    targets: &[(String, PathBuf)],
    load: &dyn Fn(&str, &Path) -> Result<Concept>,
    class_of: &dyn Fn(&str) -> Result<(usize, String)>,
) -> Result<Sets> {
    let concepts = concepts
        .iter()
        .map(|(name, path)| load(name, path))
        .collect::<Result<Vec<_>>>()?;
    let random = match (random_pool, random_sets.is_empty()) {
        (Some(pool), true) => RandomConcepts::Pool(load("random", &pool)?),
        (None, false) => RandomConcepts::Sets(
            random_sets
                .iter()
                .enumerate()
                .map(|(k, path)| load(&format!("random_{k}"), path))
                .collect::<Result<_>>()?,
        ),
        _ => {
            return Err(Error::parameter(
                "random",
                "",
                "give either --random-pool FOLDER or at least three --random FOLDER",
            ));
        }
    };
    let targets = targets
        .iter()
        .map(|(spec, path)| {
            let (class, name) = class_of(spec)?;
            let inputs = load(spec, path)?;
            Ok(TargetInputs {
                name,
                class,
                inputs: inputs.examples().clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((concepts, random, targets))
}

pub(crate) fn run(mut args: TcavArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => TcavFile::default(),
    };
    // Flags win over the file; the model flag has a default, so the file's model applies when the
    // flag was left at it.
    if let Some(model) = file.model
        && args.model.model == "efficientnet_lite0"
    {
        args.model.model = model;
    }
    let layers = if args.layers.is_empty() {
        file.layers
    } else {
        args.layers
    };
    let concepts_spec: Vec<(String, PathBuf)> = if args.concepts.is_empty() {
        file.concepts.into_iter().collect()
    } else {
        args.concepts
    };
    let targets_spec: Vec<(String, PathBuf)> = if args.targets.is_empty() {
        file.targets.into_iter().collect()
    } else {
        args.targets
    };
    let random_pool = args.random_pool.or(file.random_pool);
    let random_sets = if args.random.is_empty() {
        file.random
    } else {
        args.random
    };
    let out = args
        .out
        .or(file.out)
        .unwrap_or_else(|| PathBuf::from("firelight-out/tcav"));
    let config = ExperimentConfig {
        n_runs: args.runs.or(file.runs).unwrap_or(10),
        random_size: args.random_size.or(file.random_size),
        seed: args.seed.or(file.seed).unwrap_or(0),
        alpha: args.alpha.or(file.alpha).unwrap_or(0.05),
        score: match args.score.or(file.score).as_deref() {
            None | Some("sign_count") => ScoreKind::SignCount,
            Some("magnitude") => ScoreKind::Magnitude,
            Some(other) => {
                return Err(Error::parameter(
                    "score",
                    other,
                    "use sign_count or magnitude",
                ));
            }
        },
    };
    let trainer = CavTrainer {
        classifier: Classifier::from_name(
            args.classifier
                .or(file.classifier)
                .as_deref()
                .unwrap_or("sgd"),
        )?,
        seed: config.seed,
        ..CavTrainer::default()
    };
    if layers.is_empty() {
        return Err(Error::parameter(
            "layer",
            "none",
            "give at least one --layer",
        ));
    }
    if concepts_spec.is_empty() {
        return Err(Error::parameter(
            "concept",
            "none",
            "give at least one --concept NAME=FOLDER",
        ));
    }
    if targets_spec.is_empty() {
        return Err(Error::parameter(
            "target",
            "none",
            "give at least one --target CLASS=FOLDER",
        ));
    }

    let device = args.device.open()?;
    // Declared here so that the model TCAV borrows outlives the experiment.
    let image_classifier;
    let text_classifier;
    let pooled;
    type Load<'a> = Box<dyn Fn(&str, &Path) -> Result<Concept> + 'a>;
    type ClassOf<'a> = Box<dyn Fn(&str) -> Result<(usize, String)> + 'a>;
    let (model, load, class_of): (&dyn Model, Load, ClassOf) = match text_model(&args.model.model) {
        Some(path) => {
            text_classifier = TextClassifier::load(&path, None, &device)?;
            pooled = PooledText::new(&text_classifier, &layers)?;
            // Every set padded to one length, so that random subsets and unions stack.
            let mut files: Vec<&Path> = concepts_spec
                .iter()
                .chain(&targets_spec)
                .map(|(_, p)| p.as_path())
                .chain(random_sets.iter().map(PathBuf::as_path))
                .collect();
            files.extend(random_pool.as_deref());
            let sentences = files
                .iter()
                .map(read_sentences)
                .collect::<Result<Vec<_>>>()?;
            let sets: Vec<&[String]> = sentences.iter().map(Vec::as_slice).collect();
            let length = pooled.length(&sets)?;
            let pooled = &pooled;
            let load = move |name: &str, file: &Path| -> Result<Concept> {
                let texts = read_sentences(file)?;
                Concept::from_tensor(name, pooled.examples(&texts, length)?)?.with_texts(texts)
            };
            let class_of = |spec: &str| -> Result<(usize, String)> {
                let class = text_classifier.class(spec)?;
                Ok((class, text_classifier.labels[class].clone()))
            };
            (pooled, Box::new(load), Box::new(class_of))
        }
        None => {
            image_classifier = classifier(&args.model, &device)?;
            let transform = &image_classifier.preprocess;
            let load = |name: &str, dir: &Path| Concept::from_folder(name, dir, transform, &device);
            let class_of = |spec: &str| -> Result<(usize, String)> {
                let class = class_index(&image_classifier, spec)?;
                let label = image_classifier
                    .labels
                    .get(class)
                    .cloned()
                    .unwrap_or_else(|| spec.to_string());
                Ok((class, label))
            };
            (image_classifier.model(), Box::new(load), Box::new(class_of))
        }
    };
    let (concepts, random, targets) = load_sets(
        &concepts_spec,
        random_pool,
        &random_sets,
        &targets_spec,
        &*load,
        &*class_of,
    )?;

    let key = ModelKey::of_file(model_file(&args.model.model))?;
    let mut tcav = Tcav::new(model, layers.clone())?
        .trainer(trainer)
        .batch_size(args.batch_size)
        .model_key(key.as_str());
    if !args.no_cache {
        let dir = args
            .cache
            .or(file.cache)
            .unwrap_or_else(|| out.join("cache"));
        tcav = tcav.cache(ActivationCache::new(dir, key));
    }

    let random_steps = match &random {
        RandomConcepts::Pool(_) => 1,
        RandomConcepts::Sets(s) => s.len(),
    };
    let steps = random_steps + concepts.len() + layers.len() * (1 + targets.len());
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let report = tcav.experiment(&concepts, &random, &targets, &config, &mut |p| {
        bar.set_message(match p {
            Progress::Activations { concept } => format!("activations of {concept}"),
            Progress::Cavs { layer, count } => format!("{count} CAVs at {layer}"),
            Progress::Scored { layer, target } => format!("scored {target} at {layer}"),
        });
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let concept_refs: Vec<&Concept> = concepts.iter().collect();
    let files = write_report(&out, &report, &concept_refs)?;
    println!(
        "TCAV: {} concept(s) x {} layer(s) x {} target(s), {} random runs, in {:.1} s (cache: {} hit(s), {} computed)",
        concepts.len(),
        layers.len(),
        targets.len(),
        report.results.first().map_or(0, |r| r.concept_scores.len()),
        started.elapsed().as_secs_f64(),
        report.cache.0,
        report.cache.1,
    );
    for r in &report.results {
        println!(
            "  {:<12} {:<28} {:<12} {} {:.3} (random {:.3})  p = {:.2e}  {}",
            r.concept,
            r.layer,
            r.target,
            match config.score {
                ScoreKind::SignCount => "sign_count",
                ScoreKind::Magnitude => "magnitude",
            },
            r.mean,
            r.random_mean,
            r.p_adjusted,
            match (r.significant, r.mean > r.random_mean) {
                (true, true) => "SIGNIFICANT (above random)",
                (true, false) => "SIGNIFICANT (below random)",
                _ => "not significant",
            }
        );
    }
    println!("wrote {}", files.html.display());
    println!("wrote {}", files.json.display());
    for p in &files.plots {
        println!("wrote {}", p.display());
    }
    Ok(())
}
