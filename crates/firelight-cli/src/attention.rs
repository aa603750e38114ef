//! `firelight attention`: what a transformer attends to. For text, every layer and head as a
//! head view and, per token, attention rollout and Chefer et al.'s relevance; for a vision
//! transformer, rollout and relevance from the class token to the patches, drawn over the photo.

use std::path::PathBuf;

use clap::ValueEnum;
use firelight::attention::{
    self, AttentionMaps, HeadFusion, Readout, Square, attention_layers, chefer_relevance,
};
use firelight::bundled::ImageClassifier;
use firelight::cam::resize_bilinear;
use firelight::core::npy::write_atomic;
use firelight::prelude::*;
use firelight::viz::{
    Colormap, Preprocess, RgbImage, TokenLine, head_view, overlay, titled_grid, token_strip,
};

use crate::args::{DeviceArgs, load_input};
use crate::explain_text::{TextInputArgs, shorten, target_classes};
use crate::session::{file_safe, spinner};

#[derive(clap::Args, Debug)]
pub(crate) struct AttentionArgs {
    #[command(flatten)]
    input: TextInputArgs,
    /// A photo for a vision transformer (--model), resized and cropped by the preprocess.json
    /// next to the model or --preprocess.
    #[arg(long, requires = "model")]
    image: Option<PathBuf>,
    /// A preprocessing JSON (`resize`, `crop`, `mean`, `std`) for --image.
    #[arg(long, requires = "image")]
    preprocess: Option<PathBuf>,
    /// The class whose relevance is traced, by label or index (default: the predicted one).
    #[arg(long)]
    target: Option<String>,
    /// How rollout fuses each layer's heads.
    #[arg(long, value_enum, default_value_t = FusionChoice::Mean)]
    fusion: FusionChoice,
    /// The share of each fused map's lowest weights rollout zeroes, in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    discard_ratio: f32,
    /// Which output token's row turns a token-to-token matrix into token scores (relevance is
    /// shown as Chefer's R minus the identity: what attention adds) (default:
    /// mean-pooled for text, as the bundled model pools; the class token for images).
    #[arg(long, value_enum)]
    readout: Option<ReadoutChoice>,
    /// Where to write the pictures and attention.json.
    #[arg(long, default_value = "firelight-out")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FusionChoice {
    Mean,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReadoutChoice {
    /// The first token's row ([CLS], a ViT's class token).
    Cls,
    /// The mean of every token's row.
    Mean,
}

impl AttentionArgs {
    fn fusion(&self) -> HeadFusion {
        match self.fusion {
            FusionChoice::Mean => HeadFusion::Mean,
            FusionChoice::Max => HeadFusion::Max,
            FusionChoice::Min => HeadFusion::Min,
        }
    }

    fn readout(&self, default: Readout) -> Readout {
        match self.readout {
            None => default,
            Some(ReadoutChoice::Cls) => Readout::ClassToken,
            Some(ReadoutChoice::Mean) => Readout::MeanPooled,
        }
    }
}

pub(crate) fn run(args: AttentionArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.discard_ratio) {
        return Err(Error::parameter(
            "discard-ratio",
            args.discard_ratio,
            "must be in [0, 1)",
        ));
    }
    let device = args.device.open()?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    match args.image.clone() {
        Some(image) => vision(&args, image, &device),
        None => text(&args, &device),
    }
}

fn text(args: &AttentionArgs, device: &Device) -> Result<()> {
    let (texts, classifier, encoded) = args.input.load(device)?;
    let probabilities = classifier.probabilities(&encoded)?;
    let classes = target_classes(&classifier, &probabilities, args.target.as_deref())?;
    let bar = spinner(format!(
        "attention and relevance over {} sentence(s)",
        texts.len()
    ));
    let maps = classifier.attention(&encoded)?;
    let relevance = classifier.chefer_relevance(&encoded, &Target::classes(classes.clone()))?;
    bar.finish_and_clear();
    let readout = args.readout(Readout::MeanPooled);
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for (i, ((sentence, map), relevance)) in encoded
        .sentences
        .iter()
        .zip(&maps)
        .zip(&relevance)
        .enumerate()
    {
        let label = classifier
            .labels
            .get(classes[i])
            .cloned()
            .unwrap_or_default();
        let rolled = readout.read(&map.rollout(args.fusion(), args.discard_ratio)?);
        let relevant = added_relevance(readout, relevance);
        let heads_path = args.out.join(format!("attention_heads_{i}.png"));
        head_view(&map.maps, map.heads, &sentence.tokens)?.write_png(&heads_path)?;
        println!(
            "{:?} ({label} {:.2})",
            texts[i], probabilities[i][classes[i]]
        );
        println!("  rollout:  {}", top_tokens(&sentence.tokens, &rolled));
        println!("  relevance: {}", top_tokens(&sentence.tokens, &relevant));
        println!("  wrote {}", heads_path.display());
        let heading = format!("{:?}", shorten(&texts[i], 60));
        lines.push(TokenLine {
            heading: format!("{heading}: rollout"),
            tokens: sentence.tokens.clone(),
            scores: rolled.clone(),
        });
        lines.push(TokenLine {
            heading: format!("{heading}: relevance to {label}"),
            tokens: sentence.tokens.clone(),
            scores: relevant.clone(),
        });
        rows.push(serde_json::json!({
            "text": texts[i],
            "target": label,
            "tokens": sentence.tokens,
            "rollout": rolled,
            "relevance": relevant,
            "heads_picture": heads_path.file_name().map(|n| n.to_string_lossy().into_owned()),
        }));
    }
    let tokens_path = args.out.join("attention_tokens.png");
    token_strip(
        "firelight: rollout and relevance (Chefer et al.)",
        &lines,
        1000,
        ("negative", "positive"),
    )?
    .write_png(&tokens_path)?;
    let layers = maps.first().map(|m| m.layers.clone()).unwrap_or_default();
    write_json(args, &layers, readout, serde_json::Value::Array(rows))?;
    println!("wrote {}", tokens_path.display());
    Ok(())
}

/// The least side a photo is drawn at.
const DISPLAY_SIDE: usize = 224;

fn vision(args: &AttentionArgs, image: PathBuf, device: &Device) -> Result<()> {
    let path = args
        .input
        .model
        .as_ref()
        .expect("clap requires --model with --image");
    let mut classifier = ImageClassifier::onnx(path, device)?;
    if let Some(json) = &args.preprocess {
        classifier.preprocess = Preprocess::from_json(json)?;
    }
    let (photo, input) = load_input(&classifier, &image, device)?;
    let model = classifier.model();
    let inputs: Inputs = (&input).into();
    let logits = model.predict(&inputs)?;
    let top = classifier.top_k(logits, 1)?.swap_remove(0).swap_remove(0);
    let class = match args.target.as_deref() {
        None => top.class,
        Some(spec) => crate::args::resolve_target(&classifier, &top, spec)?,
    };
    let layers = attention_layers(model);
    let maps = attention::attention_maps(model, &inputs, &layers, None)?.swap_remove(0);
    let relevance =
        chefer_relevance(model, &inputs, &layers, &Target::class(class), None)?.swap_remove(0);
    let readout = args.readout(Readout::ClassToken);
    let rolled = readout.read(&maps.rollout(args.fusion(), args.discard_ratio)?);
    let relevant = added_relevance(readout, &relevance);
    let side = patch_grid(&maps)?;
    println!(
        "{} ({:.2}%): {} attention layers of {} heads over {} tokens",
        classifier.label(class),
        100.0 * top.probability,
        layers.len(),
        maps.heads,
        maps.tokens
    );
    let photo = photo.unwrap_or_else(|| RgbImage::filled(side * 16, side * 16, [128, 128, 128]));
    // A small model's input is drawn larger, so that its patches and the labels can be seen.
    let scale = DISPLAY_SIDE.div_ceil(photo.width.min(photo.height).max(1));
    let photo = if scale > 1 {
        photo.resize(photo.width * scale, photo.height * scale)
    } else {
        photo
    };
    let draw = |scores: &[f32]| -> Result<RgbImage> {
        // From the least to the largest patch: a rollout is often nearly flat, and dividing by
        // its peak alone (vit-explain's `mask / mask.max()`) would paint every patch alike.
        let patches = &scores[1..];
        let low = patches.iter().fold(f32::INFINITY, |m, v| m.min(*v));
        let high = patches.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        let span = (high - low).max(1e-12);
        let scaled: Vec<f32> = patches.iter().map(|v| (v - low) / span).collect();
        let map = resize_bilinear(&scaled, 1, [side, side], [photo.height, photo.width]);
        overlay(&photo, &map, Colormap::Jet, 0.5)
    };
    let tiles = vec![
        ("photo".to_string(), photo.clone()),
        ("rollout".to_string(), draw(&rolled)?),
        (
            format!("relevance: {}", shorten(&classifier.label(class), 18)),
            draw(&relevant)?,
        ),
    ];
    let picture = titled_grid(&tiles, 3)?;
    let stem = file_safe(&image.file_stem().unwrap_or_default().to_string_lossy());
    let picture_path = args.out.join(format!("attention_{stem}.png"));
    picture.write_png(&picture_path)?;
    let row = serde_json::json!({
        "image": image.display().to_string(),
        "target": classifier.label(class),
        "grid": side,
        "rollout": rolled,
        "relevance": relevant,
    });
    write_json(args, &layers, readout, serde_json::Value::Array(vec![row]))?;
    println!("wrote {}", picture_path.display());
    Ok(())
}

/// The token scores of Chefer et al.'s `R - I`: what attention adds to each token's own
/// identity term, which otherwise dominates a mean-pooled readout (each token's `1/n`) and the
/// class token's own entry.
fn added_relevance(readout: Readout, relevance: &Square) -> Vec<f32> {
    let own = readout.read(&Square::identity(relevance.n));
    readout
        .read(relevance)
        .iter()
        .zip(own)
        .map(|(r, i)| r - i)
        .collect()
}

/// The side of the square patch grid after the class token.
fn patch_grid(maps: &AttentionMaps) -> Result<usize> {
    let patches = maps.tokens.saturating_sub(1);
    let side = (patches as f64).sqrt().round() as usize;
    if side * side != patches || patches == 0 {
        return Err(Error::Model(format!(
            "{} tokens are not a class token and a square grid of patches",
            maps.tokens
        )));
    }
    Ok(side)
}

fn write_json(
    args: &AttentionArgs,
    layers: &[String],
    readout: Readout,
    rows: serde_json::Value,
) -> Result<()> {
    let json = serde_json::json!({
        "layers": layers,
        "fusion": format!("{:?}", args.fusion).to_lowercase(),
        "discard_ratio": args.discard_ratio,
        "readout": match readout { Readout::ClassToken => "cls", Readout::MeanPooled => "mean" },
        "inputs": rows,
    });
    let path = args.out.join("attention.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Model(e.to_string()))?;
    write_atomic(&path, text.as_bytes())
}

/// The three highest-scoring tokens, with their scores.
fn top_tokens(tokens: &[String], scores: &[f32]) -> String {
    let mut order: Vec<usize> = (0..tokens.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
        .into_iter()
        .take(3)
        .map(|i| format!("{} {:.3}", tokens[i], scores[i]))
        .collect::<Vec<_>>()
        .join(", ")
}
