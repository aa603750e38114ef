//! Text: the bundled sentiment model (all-MiniLM-L6-v2 + a linear head, ONNX) against torch and
//! Captum 0.9 (fixtures from `tools/text/make_text_model.py`), the properties of token
//! attributions, a ground truth from the VADER lexicon, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::attention::attention_layers;
use firelight::core::npy::read_npy_tensor;
use firelight::core::{Inputs, LayerInfo, Model, Taps, Tensor};
use firelight::methods::{
    AblationConfig, IntegratedGradientsConfig, LayerConductanceConfig,
    LayerGradientXActivationConfig, MethodConfig, OcclusionConfig, RunContext, SaliencyConfig,
    SamplingConfig,
};
use firelight::models::BertConfig;
use firelight::models::bert::WORD_EMBEDDINGS;
use firelight::prelude::*;
use firelight::text::native_bert;
use firelight::text::{
    Encoded, Reduction, TextClassifier, TextOptions, TextTokenizer, TokenReplacement, TokenScores,
    Truncation, html,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text")
}

/// The values of fixture `name`.
fn fixture(name: &str) -> Vec<f32> {
    values(&read_npy_tensor(fixtures().join(name), &device()).unwrap())
}

/// Captum's LayerIntegratedGradients with `n_steps` and `internal_batch_size`.
fn lig(n_steps: usize, internal_batch_size: Option<usize>) -> MethodConfig {
    MethodConfig::LayerIntegratedGradients(IntegratedGradientsConfig {
        n_steps,
        internal_batch_size,
        ..IntegratedGradientsConfig::default()
    })
}

/// Captum's FeatureAblation scoring `perturbations_per_eval` copies per pass.
fn ablation(perturbations_per_eval: usize) -> MethodConfig {
    MethodConfig::FeatureAblation(AblationConfig {
        perturbations_per_eval,
    })
}

fn classifier() -> TextClassifier {
    TextClassifier::bundled(&device()).unwrap()
}

fn sentences() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("sentences.json")).unwrap())
        .unwrap()
}

/// The attributions of row `row` of a `[rows, length, hidden]` tensor, its first `tokens` tokens.
fn row_values(t: &DynTensor, row: usize, tokens: usize) -> Vec<f32> {
    let [_, length, hidden] = t.shape().try_into().unwrap();
    values(t)[row * length * hidden..(row * length + tokens) * hidden].to_vec()
}

#[test]
fn tokens_logits_and_layer_integrated_gradients_match_torch_and_captum() {
    // Captum's LayerIntegratedGradients on `word_embeddings`, baseline [CLS] [PAD] ... [SEP],
    // 50 Gauss-Legendre steps, one sentence at a time (as the fixture was made).
    let c = classifier();
    let manifest = sentences();
    for (i, case) in manifest["cases"].as_array().unwrap().iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let encoded = c.encode(&[text], Truncation::Error).unwrap();
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(encoded.sentences[0].ids, ids, "{text}: token ids");
        let logits = values(&DynTensor::new(
            c.model.predict(&c.inputs(&encoded).unwrap()).unwrap(),
        ));
        let torch: Vec<f32> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let logit_err = max_abs_diff(&logits, &torch);
        let target = case["target"].as_u64().unwrap() as usize;
        let result = c
            .attribute(
                &encoded,
                &Target::class(target),
                &lig(50, Some(25)),
                &TextOptions::default(),
            )
            .unwrap();
        let expected = fixture(&format!("lig_{i}.npy"));
        let err = rel_l2(&values(&result.attributions), &expected);
        let delta = result.delta.unwrap()[0];
        let captum_delta = case["delta"].as_f64().unwrap() as f32;
        println!(
            "{text:?}: logits max abs diff {logit_err:.1e}; LIG rel L2 vs Captum {err:.2e}; delta \
             {delta:.2e} (Captum {captum_delta:.2e})"
        );
        assert!(
            logit_err < 1e-4,
            "{text}: logits {logits:?} vs torch {torch:?}"
        );
        assert!(err < 1e-3, "{text}: LIG rel L2 {err}");
        assert!(
            delta.abs() < 1e-3 && (delta - captum_delta).abs() < 5e-4,
            "{text}: delta {delta}"
        );
    }
}

#[test]
fn feature_ablation_over_tokens_matches_captum() {
    // Each token a feature, replaced by [PAD] or [MASK], the mask carried; all four sentences
    // in one batch (the shorter ones padded), against Captum one sentence at a time.
    let c = classifier();
    let manifest = sentences();
    let cases = manifest["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let targets: Vec<usize> = cases
        .iter()
        .map(|c| c["target"].as_u64().unwrap() as usize)
        .collect();
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    for (name, replacement) in [
        ("pad", TokenReplacement::Pad),
        ("mask", TokenReplacement::Mask),
    ] {
        let result = c
            .attribute(
                &encoded,
                &Target::classes(targets.clone()),
                &ablation(32),
                &TextOptions {
                    replacement,
                    ..TextOptions::default()
                },
            )
            .unwrap();
        let scores =
            TokenScores::from_embedding(&encoded, &result.attributions, Reduction::Sum).unwrap();
        for (i, s) in scores.iter().enumerate() {
            let expected = fixture(&format!("feature_ablation_{name}_{i}.npy"));
            let err = rel_l2(&s.scores, &expected);
            println!(
                "feature ablation [{name}] {:?}: rel L2 vs Captum {err:.2e}",
                texts[i]
            );
            assert!(err < 1e-4, "{name} {}: {err}", texts[i]);
        }
        // Padding positions are features too; replacing them changes nothing.
        let padded = row_values(&result.attributions, 2, encoded.length);
        assert!(
            padded[encoded.sentences[2].ids.len()..]
                .iter()
                .all(|v| v.abs() < 1e-5)
        );
    }
}

#[test]
fn attention_probabilities_of_every_layer_match_torch() {
    let c = classifier();
    let text = sentences()["cases"][1]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let maps = attention_maps(&c, &text);
    assert_eq!(maps.len(), 6);
    let expected = fixture("attention_1.npy");
    let per_layer = expected.len() / 6;
    for (layer, got) in maps.iter().enumerate() {
        let diff = max_abs_diff(got, &expected[layer * per_layer..(layer + 1) * per_layer]);
        assert!(diff < 1e-5, "layer {layer}: attention max abs diff {diff}");
    }
}

/// Every layer's attention probabilities `[heads, t, t]` (flattened), first layer first.
fn attention_maps(c: &TextClassifier, text: &str) -> Vec<Vec<f32>> {
    let encoded = c.encode(&[text], Truncation::Error).unwrap();
    c.attention(&encoded).unwrap().swap_remove(0).maps
}

#[test]
fn attention_rollout_matches_the_papers_formula_in_numpy() {
    // tools/text/rollout_reference.py on torch's maps; here on firelight's own maps.
    use firelight::attention::{HeadFusion, rollout};
    let c = classifier();
    let text = sentences()["cases"][1]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let maps = attention_maps(&c, &text);
    for (fusion, name, ratio) in [
        (HeadFusion::Mean, "mean", 0.0f32),
        (HeadFusion::Max, "max", 0.9),
        (HeadFusion::Min, "min", 0.5),
    ] {
        let got = rollout(&maps, 12, fusion, ratio).unwrap();
        let expected = fixture(&format!("rollout_{name}_{ratio:?}.npy"));
        let diff = max_abs_diff(&got.values, &expected);
        println!("rollout {name} discard {ratio}: max abs diff vs NumPy {diff:.1e}");
        assert!(diff < 1e-5, "{name}/{ratio}: {diff}");
        for i in 0..got.n {
            let sum: f32 = got.row(i).iter().sum();
            assert!((sum - 1.0).abs() < 1e-4, "row {i} sums to {sum}");
        }
    }
    // vit-explain's column-wise division gives rows that do not sum to one.
    let bug = fixture("rollout_vit_explain_bug.npy");
    let good = rollout(&maps, 12, HeadFusion::Max, 0.9).unwrap();
    assert!(rel_l2(&good.values, &bug) > 0.1);
}

#[test]
fn chefer_relevance_matches_the_papers_formula_on_torch_gradients() {
    // tools/text/attention_reference.py: R = I; R += mean_h((dA * A)+) R per layer, from torch's
    // attention probabilities and their gradients, toward each case's target. Here all four
    // sentences go in one batch of different lengths, each cut back to its own tokens.
    let c = classifier();
    let cases = sentences()["cases"].as_array().unwrap().clone();
    let texts: Vec<String> = cases
        .iter()
        .map(|case| case["text"].as_str().unwrap().to_string())
        .collect();
    let targets = cases
        .iter()
        .map(|case| case["target"].as_u64().unwrap() as usize)
        .collect();
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let relevance = c
        .chefer_relevance(&encoded, &Target::classes(targets))
        .unwrap();
    for (i, r) in relevance.iter().enumerate() {
        let expected = fixture(&format!("chefer_{i}.npy"));
        assert_eq!(r.n * r.n, expected.len(), "case {i}: token count");
        let diff = max_abs_diff(&r.values, &expected);
        println!("Chefer relevance case {i}: max abs diff vs NumPy {diff:.1e}");
        assert!(diff < 1e-5, "case {i}: {diff}");
    }
}

#[test]
fn results_do_not_depend_on_internal_batch_size() {
    let c = classifier();
    let texts = [
        "Okay.",
        "The side effects were terrible and I stopped after a week.",
    ];
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let target = Target::classes(vec![2, 0]);
    let run = |rows: Option<usize>| {
        c.attribute(&encoded, &target, &lig(12, rows), &TextOptions::default())
            .unwrap()
    };
    let whole = run(None);
    for rows in [1, 5, 13] {
        let chunked = run(Some(rows));
        let err = rel_l2(&values(&chunked.attributions), &values(&whole.attributions));
        assert!(err < 1e-5, "internal_batch_size {rows}: rel L2 {err}");
    }
    let ablation = |rows| {
        values(
            &c.attribute(&encoded, &target, &ablation(rows), &TextOptions::default())
                .unwrap()
                .attributions,
        )
    };
    assert!(max_abs_diff(&ablation(1), &ablation(9)) < 1e-5);
}

#[test]
fn sentences_of_different_lengths_together_give_what_each_gives_alone() {
    // Padding rows to the longest sentence, masked out, changes nothing: the carried mask
    // follows every step of the path, and padded positions get exactly zero.
    let c = classifier();
    let texts = [
        "Okay.",
        "The side effects were terrible and I stopped after a week.",
    ];
    let together = c.encode(&texts, Truncation::Error).unwrap();
    let target = Target::classes(vec![2, 0]);
    let both = c
        .attribute(&together, &target, &lig(16, None), &TextOptions::default())
        .unwrap();
    let length = together.length;
    for (row, text) in texts.iter().enumerate() {
        let alone = c.encode(&[*text], Truncation::Error).unwrap();
        let class = [2, 0][row];
        let one = c
            .attribute(
                &alone,
                &Target::class(class),
                &lig(16, Some(7)),
                &TextOptions::default(),
            )
            .unwrap();
        let n = alone.length;
        let err = rel_l2(
            &row_values(&both.attributions, row, n),
            &values(&one.attributions),
        );
        assert!(err < 1e-4, "{text}: batched vs alone rel L2 {err}");
        let delta_gap = (both.delta.as_ref().unwrap()[row] - one.delta.as_ref().unwrap()[0]).abs();
        assert!(delta_gap < 1e-4, "{text}: deltas differ by {delta_gap}");
        let padded = row_values(&both.attributions, row, length);
        assert!(
            padded[n * 384..].iter().all(|v| *v == 0.0),
            "{text}: padding attributed"
        );
    }
}

#[test]
fn lexicon_words_carry_their_valence() {
    // Held-out VADER words (never in the head's training sentences) in a template the head never
    // saw. For every word that moves the prediction to its own side (positive words predicted
    // positive, negative ones negative), the word's summed attribution to "positive" must have
    // the word's sign, and on average it must outweigh each word of the template.
    let c = classifier();
    let held: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("vader_heldout.json")).unwrap(),
    )
    .unwrap();
    let template = held["template"].as_str().unwrap();
    // Every 16th word: ~120 of them, from both ends of the valence scale.
    let words: Vec<(String, f64)> = held["words"]
        .as_array()
        .unwrap()
        .iter()
        .step_by(16)
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_string(),
                w["valence"].as_f64().unwrap(),
            )
        })
        .collect();
    let texts: Vec<String> = words
        .iter()
        .map(|(w, _)| template.replace("{word}", w))
        .collect();
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let probabilities = c.probabilities(&encoded).unwrap();
    let positive = c.class("positive").unwrap();
    let negative = c.class("negative").unwrap();
    let result = c
        .attribute(
            &encoded,
            &Target::class(positive),
            &lig(20, Some(400)),
            &TextOptions::default(),
        )
        .unwrap();
    let scores =
        TokenScores::from_embedding(&encoded, &result.attributions, Reduction::Sum).unwrap();
    let (mut flips, mut signs_right, mut outweighs) = (0, 0, 0);
    // Mean |score| of the lexicon word and of each template word, over the words that flip.
    let mut lexicon_weight = 0.0f64;
    let mut template_weight: std::collections::BTreeMap<String, f64> = Default::default();
    for (i, (word, valence)) in words.iter().enumerate() {
        let p = &probabilities[i];
        let predicted = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        if predicted != if *valence > 0.0 { positive } else { negative } {
            continue;
        }
        flips += 1;
        let merged = scores[i].words(&encoded.sentences[i]);
        let at = merged
            .labels
            .iter()
            .position(|l| l == word)
            .unwrap_or_else(|| panic!("{word} not among {:?}", merged.labels));
        let score = merged.scores[at];
        if (score > 0.0) == (*valence > 0.0) {
            signs_right += 1;
        }
        lexicon_weight += f64::from(score.abs());
        let mut others = 0.0f32;
        for (j, (label, s)) in merged.labels.iter().zip(&merged.scores).enumerate() {
            if j != at && !label.starts_with('[') && label.chars().any(char::is_alphabetic) {
                *template_weight.entry(label.clone()).or_default() += f64::from(s.abs());
                others = others.max(s.abs());
            }
        }
        if score.abs() > others {
            outweighs += 1;
        }
    }
    let sign_rate = signs_right as f64 / flips as f64;
    let weight_rate = outweighs as f64 / flips as f64;
    let lexicon_mean = lexicon_weight / flips as f64;
    let heaviest = template_weight
        .iter()
        .map(|(w, total)| (w.clone(), total / flips as f64))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!(
        "{} words, {flips} move the prediction to their side; sign agrees for {:.1}%; mean \
         |attribution| of the lexicon word {lexicon_mean:.3}, of the heaviest template word \
         {:?} {:.3}; the word outweighs every template word in {:.1}% of sentences",
        words.len(),
        100.0 * sign_rate,
        heaviest.0,
        heaviest.1,
        100.0 * weight_rate
    );
    assert!(
        flips >= words.len() / 2,
        "only {flips} of {} words flip",
        words.len()
    );
    assert!(sign_rate >= 0.9, "sign agreement {sign_rate}");
    assert!(
        lexicon_mean > heaviest.1,
        "template word {:?} outweighs the lexicon words: {} vs {lexicon_mean}",
        heaviest.0,
        heaviest.1
    );
}

#[test]
fn pad_baselines_keep_the_special_tokens_and_words_merge_sub_tokens() {
    let c = classifier();
    let encoded = c
        .encode(&["Unbelievably good!", "Hi"], Truncation::Error)
        .unwrap();
    let [long, short] = [&encoded.sentences[0], &encoded.sentences[1]];
    let baseline = encoded.pad_baseline();
    let (cls, sep, pad) = (
        c.tokenizer.cls_id.unwrap(),
        c.tokenizer.sep_id.unwrap(),
        c.tokenizer.pad_id,
    );
    assert_eq!(baseline[0][0], cls);
    assert_eq!(baseline[0][long.ids.len() - 1], sep);
    assert!(baseline[0][1..long.ids.len() - 1].iter().all(|&t| t == pad));
    assert_eq!(&baseline[1][..3], &[cls, pad, sep]);
    assert!(baseline[1][3..].iter().all(|&t| t == pad));
    assert_eq!(
        encoded.mask()[1],
        [1, 1, 1]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, encoded.length - 3))
            .collect::<Vec<u32>>()
    );
    // "Unbelievably" is several word pieces; merged, it is one word with their summed score.
    let pieces = long.words.iter().filter(|w| **w == Some(0)).count();
    assert!(pieces > 1, "{:?}", long.tokens);
    let scores = TokenScores {
        labels: long.tokens.clone(),
        scores: (0..long.ids.len()).map(|i| i as f32).collect(),
        spans: long
            .words
            .iter()
            .zip(&long.offsets)
            .map(|(w, o)| w.map(|_| *o))
            .collect(),
    };
    let words = scores.words(long);
    assert_eq!(
        words.labels,
        ["[CLS]", "Unbelievably", "good", "!", "[SEP]"]
    );
    let summed: f32 = (1..=pieces).map(|i| i as f32).sum();
    assert_eq!(words.scores[1], summed);
    let _ = short;
}

#[test]
fn bad_text_input_gets_a_clear_error() {
    let c = classifier();
    let empty = c
        .encode(&["  "], Truncation::Error)
        .unwrap_err()
        .to_string();
    assert!(empty.contains("empty"), "{empty}");
    let long = "word ".repeat(600);
    let refused = c
        .encode(&[long.as_str()], Truncation::Error)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("longer than the model's 512 positions"),
        "{refused}"
    );
    let cut = c.encode(&[long.as_str()], Truncation::Warn).unwrap();
    assert_eq!(cut.length, 512);
    assert_eq!(cut.sentences[0].dropped, 602 - 512);
    assert_eq!(cut.sentences[0].ids.last().copied(), c.tokenizer.sep_id);
    // A missing tokenizer, and one whose vocabulary does not fit the model's table.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        firelight::text::default_text_model(),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let missing = TextClassifier::load(dir.path().join("model.onnx"), None, &device())
        .err()
        .unwrap()
        .to_string();
    assert!(missing.contains("tokenizer"), "{missing}");
    let tokens_model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_inputs/tokens.onnx");
    let tokenizer = firelight::text::default_text_model().with_file_name("tokenizer.json");
    let mismatch = TextClassifier::load(&tokens_model, Some(&tokenizer), &device())
        .err()
        .unwrap()
        .to_string();
    assert!(
        mismatch.contains("does not belong to this model"),
        "{mismatch}"
    );
    let unknown = c.class("ecstatic").unwrap_err().to_string();
    assert!(unknown.contains("negative, neutral, positive"), "{unknown}");
    let tok = TextTokenizer::from_file(dir.path().join("nope.json")).unwrap_err();
    assert!(tok.to_string().contains("nope.json"), "{tok}");
}

#[test]
fn the_html_view_escapes_text_and_needs_nothing_external() {
    let scores = TokenScores {
        labels: vec!["<script>".into(), "&".into(), "\"x\"".into()],
        scores: vec![1.0, -0.5, 0.0],
        spans: vec![None; 3],
    };
    let page = html::page(
        "<b>title</b>",
        "layer_integrated_gradients",
        &[html::Row {
            scores: &scores,
            prediction: "positive (0.90)".into(),
            delta: Some(1e-5),
        }],
    );
    assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    assert!(page.contains("&amp;") && page.contains("&quot;x&quot;"));
    assert!(!page.contains("<b>title"));
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="));
    let _ = Encoded::ids_tensor(&[vec![1, 2]], &device()).unwrap();
}

#[test]
fn text_concepts_of_praise_matter_to_positive_reviews_and_complaints_do_not() {
    // tools/text/make_text_concepts.py: praise and complaint are sentences around VADER words
    // the head never saw, the random pool is first sentences of training reviews, and the
    // targets are real positive-rated test reviews. TCAV at the mean-pooled output of a middle
    // and the last encoder layer.
    use firelight::concept::{Concept, ExperimentConfig, RandomConcepts, TargetInputs, Tcav};
    use firelight::text::concepts::{PooledText, read_sentences};
    let c = classifier();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/minilm_sentiment");
    let layers: Vec<String> = [2, 5]
        .iter()
        .map(|l| {
            format!("/bert/encoder/layer.{l}/output/LayerNorm/LayerNormalization_output_0@mean")
        })
        .collect();
    let pooled = PooledText::new(&c, &layers).unwrap();
    let read = |name: &str| read_sentences(dir.join(name)).unwrap();
    let sets = [
        read("concepts/praise.txt"),
        read("concepts/complaint.txt"),
        read("concepts/random.txt"),
        read("inputs/positive.txt"),
    ];
    let slices: Vec<&[String]> = sets.iter().map(Vec::as_slice).collect();
    let length = pooled.length(&slices).unwrap();
    let concept = |name: &str, texts: &[String]| {
        Concept::from_tensor(name, pooled.examples(texts, length).unwrap()).unwrap()
    };
    let concepts = [concept("praise", &sets[0]), concept("complaint", &sets[1])];
    let random = RandomConcepts::Pool(concept("random", &sets[2]));
    let targets = [TargetInputs {
        name: "positive".into(),
        class: 2,
        inputs: concept("positive", &sets[3]).examples().clone(),
    }];
    let config = ExperimentConfig {
        n_runs: 12,
        random_size: Some(30),
        ..ExperimentConfig::default()
    };
    let report = Tcav::new(&pooled, layers.clone())
        .unwrap()
        .batch_size(16)
        .experiment(&concepts, &random, &targets, &config, &mut |_| {})
        .unwrap();
    for r in &report.results {
        println!(
            "{} at {}: TCAV {:.3} (random {:.3}), p = {:.1e}",
            r.concept, r.layer, r.mean, r.random_mean, r.p_adjusted
        );
    }
    for layer in &layers {
        let at = |concept: &str| {
            report
                .results
                .iter()
                .find(|r| r.concept == concept && &r.layer == layer)
                .unwrap()
        };
        let (praise, complaint) = (at("praise"), at("complaint"));
        assert!(
            praise.significant && praise.mean > praise.random_mean && praise.mean > 0.7,
            "praise at {layer}: {} vs random {}, p {}",
            praise.mean,
            praise.random_mean,
            praise.p_adjusted
        );
        assert!(
            complaint.mean < 0.3,
            "complaint at {layer}: {}",
            complaint.mean
        );
    }
}

#[test]
fn pooled_text_layers_refuse_what_cannot_be_pooled() {
    use firelight::text::concepts::PooledText;
    let c = classifier();
    let err = PooledText::new(
        &c,
        &["/bert/encoder/layer.2/output/LayerNorm/LayerNormalization_output_0@max".into()],
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("@cls or @mean"), "{err}");
    let err = PooledText::new(&c, &["/bert/encoder/layer.9/output@mean".into()])
        .err()
        .unwrap();
    assert!(err.to_string().contains("layer"), "{err}");
}

#[test]
fn input_methods_on_the_fed_word_embeddings_agree_with_the_layer_methods() {
    // Captum's interpretable embedding: Saliency (signed) on the fed embeddings is the gradient
    // LayerGradientXActivation takes without multiplying, InputXGradient is LayerGradientXActivation,
    // and IG from the [PAD] sentence's embeddings is LayerIntegratedGradients from the [PAD]
    // ids. Two sentences of different lengths, so the carried mask is checked as well.
    let c = classifier();
    let texts = ["Okay.", "The side effects were terrible and I stopped."];
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let target = Target::classes(vec![2, 0]);
    let run = |method: MethodConfig| {
        c.attribute(&encoded, &target, &method, &TextOptions::default())
            .unwrap()
    };
    let gradient = run(MethodConfig::LayerGradientXActivation(
        LayerGradientXActivationConfig {
            multiply_by_inputs: false,
        },
    ));
    let saliency = run(MethodConfig::Saliency(SaliencyConfig { abs: false }));
    let err = rel_l2(
        &values(&saliency.attributions),
        &values(&gradient.attributions),
    );
    assert!(err < 1e-5, "saliency vs layer gradient: rel L2 {err}");
    let abs = run(MethodConfig::Saliency(SaliencyConfig::default()));
    let magnitudes: Vec<f32> = values(&gradient.attributions)
        .iter()
        .map(|v| v.abs())
        .collect();
    assert!(rel_l2(&values(&abs.attributions), &magnitudes) < 1e-5);

    let gxa = run(MethodConfig::LayerGradientXActivation(
        LayerGradientXActivationConfig::default(),
    ));
    let ixg = run(MethodConfig::InputXGradient);
    let err = rel_l2(&values(&ixg.attributions), &values(&gxa.attributions));
    assert!(
        err < 1e-5,
        "input x gradient vs layer gradient x activation: {err}"
    );

    let ig = run(MethodConfig::IntegratedGradients(
        IntegratedGradientsConfig {
            n_steps: 16,
            ..IntegratedGradientsConfig::default()
        },
    ));
    let lig = run(lig(16, None));
    let err = rel_l2(&values(&ig.attributions), &values(&lig.attributions));
    println!("IG on fed embeddings vs layer IG: rel L2 {err:.2e}");
    assert!(err < 1e-4, "IG on the embeddings vs layer IG: rel L2 {err}");
    for (a, b) in ig.delta.iter().flatten().zip(lig.delta.iter().flatten()) {
        assert!((a - b).abs() < 1e-4, "deltas {a} vs {b}");
    }
    // Masked-out padding gets exactly zero from every gradient method.
    let short = encoded.sentences[0].ids.len();
    let hidden = saliency.attributions.shape()[2];
    for result in [&saliency, &ig, &ixg] {
        let row = row_values(&result.attributions, 0, encoded.length);
        assert!(
            row[short * hidden..].iter().all(|v| *v == 0.0),
            "padding attributed"
        );
    }
    // Layer conductance moves the fed embeddings along the path. At the embeddings themselves it
    // is IG summed by Captum's rule (gradients times the steps between consecutive points), which
    // tends to IG as the steps grow, and is complete (its delta is reported).
    let conductance = |n_steps| {
        run(MethodConfig::LayerConductance(LayerConductanceConfig {
            n_steps,
            ..LayerConductanceConfig::default()
        }))
    };
    let ig_at = |n_steps| {
        run(MethodConfig::IntegratedGradients(
            IntegratedGradientsConfig {
                n_steps,
                ..IntegratedGradientsConfig::default()
            },
        ))
    };
    let gap = |n: usize| {
        let c = conductance(n);
        let err = rel_l2(&values(&c.attributions), &values(&ig_at(n).attributions));
        println!(
            "layer conductance vs IG at the embeddings, {n} steps: rel L2 {err:.2e}, deltas {:?}",
            c.delta
        );
        (err, c.delta.unwrap())
    };
    let largest = |d: &[f32]| d.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (coarse, coarse_deltas) = gap(16);
    let (fine, fine_deltas) = gap(64);
    assert!(
        fine < coarse / 2.0 && fine < 0.02,
        "conductance does not tend to IG: {coarse} -> {fine}"
    );
    assert!(
        largest(&fine_deltas) < largest(&coarse_deltas) / 2.0,
        "conductance deltas do not shrink: {coarse_deltas:?} -> {fine_deltas:?}"
    );
    // SmoothGrad and GradientSHAP run there too (seeded: the same numbers twice).
    for method in [
        MethodConfig::from_name("smoothgrad").unwrap(),
        MethodConfig::from_name("gradient_shap").unwrap(),
    ] {
        let (a, b) = (run(method.clone()), run(method));
        assert_eq!(values(&a.attributions), values(&b.attributions));
    }
}

#[test]
fn perturbation_methods_take_tokens_or_words_as_features() {
    let c = classifier();
    // "unbelievably" is three word pieces: un ##bel ##ie... so words and tokens differ.
    let texts = ["Unbelievably awful pills.", "Fine."];
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let target = Target::classes(vec![0, 2]);
    let words = TextOptions {
        words: true,
        ..TextOptions::default()
    };
    let run = |method: &MethodConfig, options: &TextOptions| {
        values(
            &c.attribute(&encoded, &target, method, options)
                .unwrap()
                .attributions,
        )
    };
    let length = encoded.length;
    let sentence = &encoded.sentences[0];
    let features = encoded.features(0, true);
    assert!(
        features.len() > *features.last().unwrap() as usize + 1,
        "the sentence has a word of several pieces: {:?}",
        sentence.tokens
    );

    // Shapley value sampling is efficient for every permutation: the scores of a sentence sum
    // to f(x) - f(every feature replaced), here every token [PAD] with the mask kept.
    let sampling = MethodConfig::ShapleyValueSampling(SamplingConfig {
        n_samples: 3,
        perturbations_per_eval: 8,
        seed: 7,
    });
    let shapley = run(&sampling, &words);
    let padded: Vec<Vec<u32>> = encoded
        .sentences
        .iter()
        .map(|s| {
            let mut row = vec![c.tokenizer.pad_id; s.ids.len()];
            row.resize(length, c.tokenizer.pad_id);
            row
        })
        .collect();
    let scores = |ids: Option<&[Vec<u32>]>| {
        let inputs = c.inputs(&encoded).unwrap();
        let inputs = match ids {
            Some(ids) => inputs.attributed_value(
                c.ids_input.clone(),
                Encoded::ids_value(ids, c.model.device()).unwrap(),
            ),
            None => inputs,
        };
        values(&DynTensor::new(c.model.predict(&inputs).unwrap()))
    };
    let (full, empty) = (scores(None), scores(Some(&padded)));
    for (row, class) in [0usize, 2].into_iter().enumerate() {
        let sum: f32 = shapley[row * length..(row + 1) * length].iter().sum();
        let gap = full[row * 3 + class] - empty[row * 3 + class];
        assert!(
            (sum - gap).abs() < 1e-3,
            "row {row}: sum {sum} vs f(x) - f(pad) {gap}"
        );
    }
    // A word's pieces share its score evenly; padding gets none.
    for (t, &f) in features.iter().enumerate() {
        for (u, &g) in features.iter().enumerate() {
            if f == g {
                assert!(
                    (shapley[t] - shapley[u]).abs() < 1e-6,
                    "pieces {t}, {u} differ"
                );
            }
        }
    }
    let short = encoded.sentences[1].ids.len();
    assert!(shapley[length + short..].iter().all(|v| *v == 0.0));

    // Occlusion with a one-token window is Feature Ablation over tokens.
    let occlusion = MethodConfig::Occlusion(OcclusionConfig {
        window: 1,
        stride: 1,
        perturbations_per_eval: 4,
    });
    let options = TextOptions::default();
    let err = max_abs_diff(&run(&occlusion, &options), &run(&ablation(4), &options));
    assert!(err < 1e-5, "occlusion(1) vs feature ablation: {err}");

    // KernelSHAP and LIME: seeded, so the same seed gives the same numbers; word features.
    for name in ["kernel_shap", "lime"] {
        let method = MethodConfig::from_name(name).unwrap();
        let (a, b) = (run(&method, &words), run(&method, &words));
        assert_eq!(a, b, "{name} is not deterministic");
        assert!(a.iter().any(|v| *v != 0.0), "{name} gave nothing");
    }
    // Methods that cannot run on text say so, and name those that can.
    for name in ["gradcam", "feature_permutation", "lrp"] {
        let err = c
            .attribute(
                &encoded,
                &target,
                &MethodConfig::from_name(name).unwrap(),
                &options,
            )
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("text takes: ") && err.contains("kernel_shap"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_native_burn_bert_with_the_same_weights_gives_the_same_logits_attention_and_attributions() {
    // The bundled model's own weights (read from its ONNX initializers) in firelight-models'
    // BertClassifier: the same logits, the same attention maps from its own taps, and the same
    // layer IG at its word embeddings, for sentences of different lengths in one batch.
    let c = classifier();
    let native = native_bert(&c).unwrap();
    assert_eq!(native.config(), BertConfig::minilm_l6(3));
    let texts = [
        "Okay.",
        "The side effects were terrible and I stopped after a week.",
    ];
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let inputs = c.inputs(&encoded).unwrap();
    let onnx_logits = values(&DynTensor::new(c.model.predict(&inputs).unwrap()));
    let native_logits = values(&DynTensor::new(native.predict(&inputs).unwrap()));
    let err = max_abs_diff(&native_logits, &onnx_logits);
    println!("native BERT logits vs ONNX: max abs diff {err:.1e}");
    assert!(err < 1e-4, "logits {native_logits:?} vs {onnx_logits:?}");

    let layers = attention_layers(&native);
    assert_eq!(layers.len(), 6, "{layers:?}");
    let lengths: Vec<usize> = encoded.sentences.iter().map(|s| s.ids.len()).collect();
    let native_maps =
        firelight::attention::attention_maps(&native, &inputs, &layers, Some(&lengths)).unwrap();
    let onnx_maps = c.attention(&encoded).unwrap();
    for (a, b) in native_maps.iter().zip(&onnx_maps) {
        assert_eq!(
            (a.layers.len(), a.heads, a.tokens),
            (b.layers.len(), b.heads, b.tokens)
        );
        let err = max_abs_diff(&a.maps.concat(), &b.maps.concat());
        assert!(err < 1e-5, "attention maps differ by {err}");
    }

    let target = Target::classes(vec![2, 0]);
    let onnx = c
        .attribute(&encoded, &target, &lig(16, None), &TextOptions::default())
        .unwrap();
    let context = RunContext {
        layer: Some(WORD_EMBEDDINGS.to_string()),
        baselines: Baseline::Tensor(
            Encoded::ids_tensor(&encoded.pad_baseline(), &device()).unwrap(),
        ),
        ..RunContext::default()
    };
    let mine = lig(16, None)
        .attribute(&native, &inputs, &target, &context)
        .unwrap()
        .into_single()
        .unwrap();
    let err = rel_l2(&values(&mine), &values(&onnx.attributions));
    println!("native BERT layer IG vs ONNX: rel L2 {err:.1e}");
    assert!(err < 1e-4, "layer IG rel L2 {err}");
    // Ids outside the table are refused, not looked up.
    let bad = Inputs::new()
        .attributed_value(
            "input_ids",
            Encoded::ids_value(&[vec![101, 40_000, 102]], &device()).unwrap(),
        )
        .carried(
            "attention_mask",
            Encoded::ids_value(&[vec![1, 1, 1]], &device()).unwrap(),
        );
    let err = native.predict(&bad).err().unwrap().to_string();
    assert!(err.contains("40000") && err.contains("30522"), "{err}");
}

/// A model that remembers the most rows one forward pass took.
struct RowCounter<'m> {
    inner: &'m dyn Model,
    most: std::cell::Cell<usize>,
}

impl Model for RowCounter<'_> {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> firelight::core::Result<Tensor<2>> {
        self.most.set(self.most.get().max(inputs.batch()?));
        self.inner.forward(inputs, taps)
    }
    fn layers(&self) -> Vec<LayerInfo> {
        self.inner.layers()
    }
}

#[test]
fn internal_batch_size_bounds_the_rows_of_every_pass_over_text() {
    // Three sentences x 20 steps are 60 rows of [tokens, 384] activations and their gradients;
    // with internal_batch_size 7 no pass takes more than 7, and the numbers do not change.
    let c = classifier();
    let texts = [
        "Okay.",
        "Awful.",
        "The staff were kind and the room was clean.",
    ];
    let encoded = c.encode(&texts, Truncation::Error).unwrap();
    let inputs = c.inputs(&encoded).unwrap();
    let target = Target::classes(vec![2, 0, 2]);
    let context = RunContext {
        layer: Some(c.embedding.clone()),
        baselines: Baseline::Tensor(
            Encoded::ids_tensor(&encoded.pad_baseline(), &device()).unwrap(),
        ),
        ..RunContext::default()
    };
    let run = |rows: Option<usize>| {
        let counter = RowCounter {
            inner: &c.model,
            most: Default::default(),
        };
        let a = lig(20, rows)
            .attribute(&counter, &inputs, &target, &context)
            .unwrap()
            .into_single()
            .unwrap();
        (values(&a), counter.most.get())
    };
    let (whole, most_whole) = run(None);
    let (chunked, most) = run(Some(7));
    assert_eq!(most_whole, 60);
    assert!(most <= 7, "a pass took {most} rows");
    assert!(rel_l2(&chunked, &whole) < 1e-5);
}
