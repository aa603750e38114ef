//! `firelight explain-text`: which words made a text classifier say what it said.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use firelight::core::npy::write_atomic;
use firelight::prelude::*;
use firelight::text::{
    Encoded, Reduction, TextClassifier, TextOptions, TokenReplacement, TokenScores, Truncation,
    html, text_method_help, text_route,
};

use firelight::viz::{TokenLine, token_strip};

use firelight::methods::MethodConfig;

use crate::args::{DeviceArgs, MethodOptionArgs};
use crate::dataset::DatasetArgs;
use crate::explain_text_dataset::TextColumnArgs;
use crate::session::method_bar;

/// The sentence explained when none is given.
const DEFAULT_TEXT: &str = "It was a fantastic performance!";

#[derive(clap::Args, Debug)]
pub(crate) struct ExplainTextArgs {
    #[command(flatten)]
    pub(crate) input: TextInputArgs,
    /// How to attribute.
    #[arg(long, default_value = "layer_integrated_gradients", long_help = text_method_help())]
    method: String,
    /// What the perturbation methods put in place of a token.
    #[arg(long, value_enum, default_value_t = ReplacementChoice::Pad)]
    pub(crate) replacement: ReplacementChoice,
    /// The class to explain, by label or index (default: each sentence's predicted class).
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Merge word pieces into words (their scores summed); perturbation methods then take
    /// words, not tokens, as their features.
    #[arg(long)]
    pub(crate) words: bool,
    /// Score tokens by the L2 norm of their attribution instead of its signed sum.
    #[arg(long)]
    pub(crate) l2: bool,
    #[command(flatten)]
    pub(crate) options: MethodOptionArgs,
    /// Where to write explain_text.html, explain_text.png and explain_text.json (a data-set job:
    /// its chunks, attributions/ and index.jsonl).
    #[arg(long, default_value = "firelight-out")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    #[command(flatten)]
    pub(crate) columns: TextColumnArgs,
}

/// The sentences and the text model: what `explain-text` and `attention` share.
#[derive(clap::Args, Debug)]
pub(crate) struct TextInputArgs {
    /// The sentences (default: "It was a fantastic performance!").
    pub(crate) texts: Vec<String>,
    /// A file with one sentence per line (empty lines skipped), after the others.
    #[arg(long)]
    pub(crate) text_file: Option<PathBuf>,
    /// An ONNX text classifier taking input_ids and attention_mask (and token_type_ids);
    /// default: the bundled all-MiniLM-L6-v2 sentiment model (negative, neutral, positive).
    /// `attention --image` takes a vision transformer here.
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Its tokenizer.json (default: the one next to the model).
    #[arg(long)]
    pub(crate) tokenizer: Option<PathBuf>,
    /// Refuse sentences longer than the model's positions instead of cutting them (with a
    /// warning that says how many tokens were dropped).
    #[arg(long)]
    pub(crate) no_truncate: bool,
}

impl TextInputArgs {
    /// The sentences, the model and the sentences encoded for it.
    pub(crate) fn load(&self, device: &Device) -> Result<(Vec<String>, TextClassifier, Encoded)> {
        let texts = read_texts(&self.texts, self.text_file.as_deref())?;
        let (classifier, encoded) = load_and_encode(
            self.model.as_deref(),
            self.tokenizer.as_deref(),
            &texts,
            self.no_truncate,
            device,
        )?;
        Ok((texts, classifier, encoded))
    }
}

/// What a perturbation method puts in place of a token.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ReplacementChoice {
    /// `[PAD]` (Captum's text tutorials).
    Pad,
    /// `[MASK]`: what a masked language model saw in training.
    Mask,
    /// `[UNK]`.
    Unk,
}

impl From<ReplacementChoice> for TokenReplacement {
    fn from(choice: ReplacementChoice) -> Self {
        match choice {
            ReplacementChoice::Pad => TokenReplacement::Pad,
            ReplacementChoice::Mask => TokenReplacement::Mask,
            ReplacementChoice::Unk => TokenReplacement::Unk,
        }
    }
}

/// Occlusion's window over tokens when none is given: three tokens, moved one at a time.
const TEXT_OCCLUSION_WINDOW: (usize, usize) = (3, 1);

/// The method named on the command line with its options, checked against what text takes.
fn text_method(args: &ExplainTextArgs) -> Result<MethodConfig> {
    let options = &args.options;
    if options.superpixels.is_some() || options.grid.is_some() || options.feature_mask.is_some() {
        return Err(Error::parameter(
            "feature_mask",
            "given",
            "text features are tokens, or words with --words; --superpixels, --grid and \
             --feature-mask are for photos and tables",
        ));
    }
    if options.neuron.is_some() {
        return Err(Error::parameter(
            "neuron",
            "given",
            "explain-text explains a class; --neuron is for image models",
        ));
    }
    let mut method = options
        .configs(std::slice::from_ref(&args.method))?
        .pop()
        .expect("one method named");
    text_route(&method)?;
    if let MethodConfig::Occlusion(c) = &mut method {
        c.window = options.window.unwrap_or(TEXT_OCCLUSION_WINDOW.0);
        c.stride = options.stride.unwrap_or(TEXT_OCCLUSION_WINDOW.1);
    }
    Ok(method)
}

/// The sentences of the command line, then those of `text_file` (one per line, empty lines
/// skipped); the default sentence when there are none.
fn read_texts(texts: &[String], text_file: Option<&Path>) -> Result<Vec<String>> {
    let mut texts = texts.to_vec();
    if let Some(path) = text_file {
        let content = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        texts.extend(
            content
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        texts.push(DEFAULT_TEXT.to_string());
    }
    Ok(texts)
}

/// The text model (the bundled one by default) and `texts` encoded for it, a warning printed for
/// each sentence cut to the model's positions.
fn load_and_encode(
    model: Option<&Path>,
    tokenizer: Option<&Path>,
    texts: &[String],
    no_truncate: bool,
    device: &Device,
) -> Result<(TextClassifier, Encoded)> {
    let model = model.map_or_else(firelight::text::default_text_model, Path::to_path_buf);
    let classifier = TextClassifier::load(&model, tokenizer, device)?;
    let truncation = if no_truncate {
        Truncation::Error
    } else {
        Truncation::Warn
    };
    let encoded = classifier.encode(texts, truncation)?;
    for (i, s) in encoded.sentences.iter().enumerate() {
        if s.dropped > 0 {
            eprintln!(
                "warning: sentence {} is longer than the model's {} positions: its last {} \
                 tokens were dropped (--no-truncate refuses it instead)",
                i + 1,
                classifier.max_positions.unwrap_or(encoded.length),
                s.dropped
            );
        }
    }
    Ok((classifier, encoded))
}

/// Each sentence's class to explain: `target` (a label or an index) for all, or each one's
/// most probable class.
pub(crate) fn target_classes(
    classifier: &TextClassifier,
    probabilities: &[Vec<f32>],
    target: Option<&str>,
) -> Result<Vec<usize>> {
    let fixed = target.map(|t| classifier.class(t)).transpose()?;
    Ok(probabilities
        .iter()
        .map(|p| {
            fixed.unwrap_or_else(|| {
                (0..p.len())
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                    .unwrap_or(0)
            })
        })
        .collect())
}

pub(crate) fn run(args: ExplainTextArgs) -> Result<()> {
    let method = text_method(&args)?;
    if let Some(inputs) = &args.dataset.data_set {
        return crate::explain_text_dataset::explain(&args, inputs, method);
    }
    let name = method.info().name;
    let device = args.device.open()?;
    let (texts, classifier, encoded) = args.input.load(&device)?;
    let probabilities = classifier.probabilities(&encoded)?;
    let classes = target_classes(&classifier, &probabilities, args.target.as_deref())?;
    let (bar, progress) = method_bar(format!("{name} over {} sentence(s)", texts.len()));
    let layer = args
        .options
        .layer
        .clone()
        .unwrap_or_else(|| classifier.embedding.clone());
    let result = classifier.attribute(
        &encoded,
        &Target::classes(classes.clone()),
        &method,
        &TextOptions {
            layer: Some(layer.clone()),
            replacement: args.replacement.into(),
            words: args.words,
            progress: Some(progress),
        },
    )?;
    bar.finish_and_clear();
    let reduction = if args.l2 {
        Reduction::L2
    } else {
        Reduction::Sum
    };
    let per_token = TokenScores::from_embedding(&encoded, &result.attributions, reduction)?;
    let shown: Vec<TokenScores> = per_token
        .iter()
        .zip(&encoded.sentences)
        .map(|(s, sentence)| {
            if args.words {
                s.words(sentence)
            } else {
                s.clone()
            }
        })
        .collect();

    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for (i, scores) in shown.iter().enumerate() {
        let class = classes[i];
        let label = classifier
            .labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        let summary: Vec<String> = classifier
            .labels
            .iter()
            .zip(&probabilities[i])
            .map(|(l, p)| format!("{l} {:.1}%", 100.0 * p))
            .collect();
        let delta = result.delta.as_ref().map(|d| d[i]);
        println!("{:?}", texts[i]);
        println!("  {}", summary.join(", "));
        let delta_text = delta.map_or_else(String::new, |d| format!(", convergence delta {d:.2e}"));
        println!("  explaining {label}{delta_text}:");
        println!("  {}", terminal_line(scores, color));
        rows.push(html::Row {
            scores,
            prediction: format!("{label} ({:.2})", probabilities[i][class]),
            delta,
        });
        json_rows.push(serde_json::json!({
            "text": texts[i],
            "target": label,
            "probabilities": classifier.labels.iter().cloned().zip(probabilities[i].iter().copied()).collect::<std::collections::BTreeMap<_, _>>(),
            "delta": delta,
            "dropped_tokens": encoded.sentences[i].dropped,
            "labels": scores.labels,
            "scores": scores.scores,
        }));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let page = html::page("firelight: token attributions", name, &rows);
    let html_path = args.out.join("explain_text.html");
    write_atomic(&html_path, page.as_bytes())?;
    let lines: Vec<TokenLine> = shown
        .iter()
        .zip(&rows)
        .zip(&texts)
        .map(|((scores, row), text)| TokenLine {
            heading: format!("{:?}: {}", shorten(text, 70), row.prediction),
            tokens: scores.labels.clone(),
            scores: scores.scores.clone(),
        })
        .collect();
    let png_path = args.out.join("explain_text.png");
    token_strip(
        &format!("firelight: {name} at {layer}"),
        &lines,
        1000,
        ("against", "for the class"),
    )?
    .write_png(&png_path)?;
    let json = serde_json::json!({
        "model": args.input.model.as_ref().map_or_else(|| "bundled minilm_sentiment".to_string(), |p| p.display().to_string()),
        "method": name,
        "options": method.options().into_iter().map(|(k, v)| (k.to_string(), v)).collect::<std::collections::BTreeMap<_, _>>(),
        "layer": layer,
        "replacement": format!("{:?}", args.replacement).to_lowercase(),
        "reduction": if args.l2 { "l2" } else { "sum" },
        "words": args.words,
        "sentences": json_rows,
    });
    let json_path = args.out.join("explain_text.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&json_path, text.as_bytes())?;
    println!(
        "wrote {}, {} and {}",
        html_path.display(),
        png_path.display(),
        json_path.display()
    );
    Ok(())
}

/// `text` cut to `chars` characters, `...` marking a cut.
pub(crate) fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// The tokens on one line, each with its score; coloured by it on a terminal (green for the
/// class, red against it), as in the HTML view.
fn terminal_line(scores: &TokenScores, color: bool) -> String {
    let peak = scores
        .scores
        .iter()
        .fold(0.0f32, |m, s| m.max(s.abs()))
        .max(1e-12);
    scores
        .labels
        .iter()
        .zip(&scores.scores)
        .map(|(label, score)| {
            if !color {
                return format!("{label}({score:+.3})");
            }
            let s = (score / peak).clamp(-1.0, 1.0);
            let fade = |c: f32| (255.0 - (255.0 - c) * s.abs()).round() as u8;
            let (r, g, b) = if s >= 0.0 {
                (fade(40.0), fade(170.0), fade(40.0))
            } else {
                (fade(200.0), fade(40.0), fade(40.0))
            };
            format!("\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{label}\x1b[0m")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
