//! TCAV on the bundled ground-truth model (models/texture_cnn): a tiny CNN whose "striped" class
//! is defined by a striped texture and whose "dotted" class by dots, so the truth TCAV must
//! recover is known (tools/models/train_texture_cnn.py).

use std::path::PathBuf;

use firelight::concept::{
    Concept, ExperimentConfig, ExperimentReport, Preprocess, RandomConcepts, TargetInputs, Tcav,
};
use firelight::core::Device;
use firelight::onnx::OnnxModel;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/texture_cnn")
}

fn transform() -> Preprocess {
    Preprocess {
        resize: 32,
        crop: 32,
        mean: [0.5; 3],
        std: [0.5; 3],
    }
}

/// The two layers after which the network has texture-level features (relu1 holds edges).
const LAYERS: [&str; 2] = ["/relu2/Relu_output_0", "/relu3/Relu_output_0"];

fn concept(name: &str) -> Concept {
    let dir = dir().join("concepts").join(name);
    Concept::from_folder(name, dir, &transform(), &Device::flex()).unwrap()
}

fn striped_inputs() -> TargetInputs {
    let inputs = Concept::from_folder(
        "inputs",
        dir().join("inputs/striped"),
        &transform(),
        &Device::flex(),
    )
    .unwrap();
    TargetInputs {
        name: "striped".into(),
        class: 0,
        inputs: inputs.examples().clone(),
    }
}

fn run(concepts: &[Concept], seed: u64) -> ExperimentReport {
    let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
    let tcav = Tcav::new(&model, LAYERS).unwrap();
    // 30 runs: a random CAV's sign_count is nearly 0 or 1 (12 inputs of one class have similar
    // gradients), so the null scores spread widely and 10 runs are too few to pass Bonferroni.
    let config = ExperimentConfig {
        seed,
        n_runs: 30,
        ..Default::default()
    };
    tcav.experiment(
        concepts,
        &RandomConcepts::Pool(concept("random")),
        &[striped_inputs()],
        &config,
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn tcav_recovers_the_truth() {
    for seed in [0, 1] {
        let report = run(&[concept("striped"), concept("dotted")], seed);
        assert_eq!(report.tests, 4);
        for r in &report.results {
            match r.concept.as_str() {
                "striped" => {
                    assert!(r.significant, "seed {seed}: {}", r.verdict);
                    assert!(
                        r.mean > 0.8,
                        "seed {seed}: sign_count {} at {}",
                        r.mean,
                        r.layer
                    );
                    assert!(r.mean > r.random_mean);
                }
                _ => assert!(
                    !r.significant || r.mean < r.random_mean,
                    "seed {seed}: {}",
                    r.verdict
                ),
            }
        }
    }
}

/// The null hypothesis itself: a "concept" that is a fresh random subset of the pool in every run
/// (so it is exchangeable with the null concepts, as the t-test assumes) is never significant
/// after Bonferroni across the tests run.
///
/// A *fixed* random subset is another matter: the pool mixes striped, dotted and other images, so
/// one subset of 20 can hold more stripes than the average subset, and TCAV then rightly finds it
/// more "striped" than random.
#[test]
fn random_versus_random_is_never_significant() {
    use firelight::concept::score::{layer_gradients, scores};
    use firelight::concept::stats::{bonferroni, ttest_ind};
    use firelight::concept::{CacheStats, CavTrainer};
    use firelight::core::Target;
    use rand::SeedableRng;
    use rand::seq::index::sample;

    let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
    let tcav = Tcav::new(&model, LAYERS).unwrap();
    let pool = concept("random");
    let acts = tcav.activations(&pool, &mut CacheStats::default()).unwrap();
    let inputs = striped_inputs().inputs;
    let grads: Vec<_> = LAYERS
        .iter()
        .map(|l| layer_gradients(&model, &inputs, l, &Target::class(0), 32).unwrap())
        .collect();
    let n_runs = 10;
    const SEEDS: usize = 5;
    for seed in 0..SEEDS as u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Per run: the random "concept", the null concept and the shared counterpart.
        let draws: Vec<Vec<usize>> = (0..3 * n_runs)
            .map(|_| sample(&mut rng, pool.len(), 20).into_vec())
            .collect();
        for (l, layer) in LAYERS.iter().enumerate() {
            let pick = |rows: &Vec<usize>| {
                let t = acts[l].flat().clone().select(
                    0,
                    burn::tensor::Tensor::<1, burn::tensor::Int>::from_data(
                        burn::tensor::TensorData::new(
                            rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                            [rows.len()],
                        ),
                        &Device::flex(),
                    ),
                );
                acts[l].with_flat(t)
            };
            let subsets: Vec<_> = draws.iter().map(pick).collect();
            let sets: Vec<(Vec<String>, Vec<&firelight::core::DynTensor>)> = (0..2 * n_runs)
                .map(|k| {
                    let counterpart = &subsets[2 * n_runs + k % n_runs];
                    (vec!["a".into(), "b".into()], vec![&subsets[k], counterpart])
                })
                .collect();
            let cavs = CavTrainer::default().train_many(&sets, layer).unwrap();
            let s = scores(&grads[l], &cavs.iter().collect::<Vec<_>>()).unwrap();
            let concept: Vec<f64> = s[..n_runs].iter().map(|x| x[0].sign_count as f64).collect();
            let null: Vec<f64> = s[n_runs..].iter().map(|x| x[0].sign_count as f64).collect();
            // Bonferroni across every test this experiment runs (seeds x layers): each is a valid
            // test at level alpha, so without the correction 5 seeds x 2 layers would give a false
            // positive about one time in five.
            let p = bonferroni(
                ttest_ind(&concept, &null).unwrap().p_value,
                SEEDS * LAYERS.len(),
            );
            assert!(
                p >= 0.05,
                "seed {seed} at {layer}: p = {p} after Bonferroni"
            );
        }
    }
}

mod bad_input {
    use super::*;
    use firelight::concept::{ActivationCache, CacheStats, Cav, CavTrainer, Classifier, ModelKey};
    use firelight::core::Error;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firelight-tcav-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_empty_and_unreadable_concept_folders_are_clear_errors() {
        let device = Device::flex();
        let missing = Concept::from_folder("x", "/no/such/folder", &transform(), &device);
        let message = missing.unwrap_err().to_string();
        assert!(
            message.contains("/no/such/folder") && message.contains("does not exist"),
            "{message}"
        );

        let empty = temp("empty");
        let message = Concept::from_folder("x", &empty, &transform(), &device)
            .unwrap_err()
            .to_string();
        assert!(message.contains("no .png/.jpg/.jpeg images"), "{message}");

        let bad = temp("bad");
        std::fs::write(bad.join("broken.png"), b"not a png").unwrap();
        let err = Concept::from_folder("x", &bad, &transform(), &device).unwrap_err();
        assert!(matches!(err, Error::Image { .. }), "{err}");
        assert!(err.to_string().contains("broken.png"), "{err}");
    }

    #[test]
    fn unknown_layers_and_too_few_random_runs_are_clear_errors() {
        let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
        let err = Tcav::new(&model, ["/nope"]).err().unwrap();
        assert!(matches!(err, Error::UnknownLayer { .. }), "{err}");

        let tcav = Tcav::new(&model, LAYERS).unwrap();
        let pool = concept("random");
        let config = ExperimentConfig {
            n_runs: 1,
            ..Default::default()
        };
        let run = |random: &RandomConcepts, config: &ExperimentConfig| {
            tcav.experiment(
                &[concept("striped")],
                random,
                &[striped_inputs()],
                config,
                &mut |_| {},
            )
        };
        let err = run(&RandomConcepts::Pool(pool.clone()), &config).unwrap_err();
        assert!(err.to_string().contains("at least 2 random runs"), "{err}");
        let two = vec![
            pool.subset("r0", &[0, 1]).unwrap(),
            pool.subset("r1", &[2, 3]).unwrap(),
        ];
        let err = run(&RandomConcepts::Sets(two), &ExperimentConfig::default()).unwrap_err();
        assert!(
            err.to_string().contains("at least 3 random concepts"),
            "{err}"
        );
        let big = ExperimentConfig {
            random_size: Some(1000),
            ..Default::default()
        };
        assert!(run(&RandomConcepts::Pool(pool), &big).is_err());
    }

    #[test]
    fn the_cache_is_reused_and_survives_an_interrupted_run() {
        let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
        let dir_ = temp("cache");
        let key = ModelKey::of_file(dir().join("model.onnx")).unwrap();
        let cache = ActivationCache::new(&dir_, key);
        let tcav = Tcav::new(&model, LAYERS).unwrap().cache(cache.clone());
        let striped = concept("striped");

        let mut stats = CacheStats::default();
        let first = tcav.activations(&striped, &mut stats).unwrap();
        assert_eq!((stats.hits, stats.misses), (0, 2));
        let mut stats = CacheStats::default();
        let second = tcav.activations(&striped, &mut stats).unwrap();
        assert_eq!((stats.hits, stats.misses), (2, 0));
        assert_eq!(first[1].to_vec().unwrap(), second[1].to_vec().unwrap());

        // An interrupted run: a half-written entry (as a crash during a non-atomic write would
        // leave) and a stray temporary file. The entry is detected, recomputed and replaced.
        let entry = cache.entry_path(LAYERS[0], &striped);
        let bytes = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
        std::fs::write(dir_.join(".x.npy.tmp-1"), b"partial").unwrap();
        let mut stats = CacheStats::default();
        let third = tcav.activations(&striped, &mut stats).unwrap();
        assert_eq!((stats.hits, stats.misses), (1, 1));
        assert_eq!(first[0].to_vec().unwrap(), third[0].to_vec().unwrap());
        assert_eq!(std::fs::read(&entry).unwrap(), bytes);

        // Other examples, other entries: the key follows the content.
        let other = striped.subset("striped", &[0, 1, 2]).unwrap();
        assert_ne!(cache.entry_path(LAYERS[0], &other), entry);
    }

    #[test]
    fn cavs_round_trip_and_score_new_inputs() {
        let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
        let tcav = Tcav::new(&model, LAYERS)
            .unwrap()
            .trainer(CavTrainer::new(Classifier::FastCav));
        let (striped, random) = (concept("striped"), concept("random"));
        let cavs = tcav.compute_cavs(&[vec![&striped, &random]]).unwrap();
        let d = temp("cavs");
        let path = d.join("striped.json");
        cavs[0][1].save(&path).unwrap();
        let loaded = Cav::load(&path).unwrap();
        assert_eq!(loaded, cavs[0][1]);
        assert!(loaded.accuracy.unwrap() > 0.8);
        std::fs::write(&path, b"{\"concepts\": []}").unwrap();
        assert!(Cav::load(&path).is_err());

        // Saved CAVs score new inputs: per-input sensitivities of the striped class.
        let scores = tcav
            .interpret(
                &striped_inputs().inputs,
                &firelight::core::Target::class(0),
                &cavs,
            )
            .unwrap();
        assert!(scores[0][1][0].sign_count > 0.8);
        let rel = tcav
            .relative_cavs(&striped, &[&concept("dotted"), &random])
            .unwrap();
        assert_eq!(rel[0].concepts, ["striped", "dotted+random"]);
    }
}

#[test]
fn the_report_is_self_contained() {
    let (striped, dotted) = (concept("striped"), concept("dotted"));
    let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
    let report = Tcav::new(&model, LAYERS)
        .unwrap()
        .experiment(
            &[striped.clone(), dotted.clone()],
            &RandomConcepts::Pool(concept("random")),
            &[striped_inputs()],
            &ExperimentConfig::default(),
            &mut |_| {},
        )
        .unwrap();
    let out = std::env::temp_dir().join(format!("firelight-tcav-report-{}", std::process::id()));
    let files =
        firelight::concept::report::write_report(&out, &report, &[&striped, &dotted]).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    for external in [
        "http://",
        "https://",
        "src=\"//",
        "href=\"//",
        "url(",
        "@import",
        "<script",
        "<link",
    ] {
        assert!(!html.contains(external), "the report refers to {external}");
    }
    // Every image is inline: two plots and 12 examples of each concept.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2 + 24);
    assert_eq!(html.matches("<img").count(), 2 + 24);
    let back = ExperimentReport::load_json(&files.json).unwrap();
    assert_eq!(back.results.len(), report.results.len());
    for plot in &files.plots {
        let image = firelight::viz::RgbImage::read(plot).unwrap();
        assert!(image.width >= 560 && image.height == 400);
    }
}

/// One backward pass for every layer gives what one pass per layer gives.
#[test]
fn multi_layer_gradients_equal_per_layer_gradients() {
    use firelight::concept::score::{layer_gradients, multi_layer_gradients};
    let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
    let inputs = striped_inputs().inputs;
    let layers: Vec<String> = [
        "/relu1/Relu_output_0",
        "/relu2/Relu_output_0",
        "/relu3/Relu_output_0",
    ]
    .map(String::from)
    .to_vec();
    let target = firelight::core::Target::class(0);
    let all = multi_layer_gradients(&model, &inputs, &layers, &target, 5).unwrap();
    for (layer, g) in layers.iter().zip(&all) {
        let one = layer_gradients(&model, &inputs, layer, &target, 32).unwrap();
        let (a, b) = (g.to_vec().unwrap(), one.to_vec().unwrap());
        assert_eq!(a.len(), b.len());
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-5, "{layer}: {err}");
    }
}

/// Random concepts given as sets (folders) instead of a pool: one run per set.
#[test]
fn random_concepts_given_as_sets() {
    let pool = concept("random");
    let sets: Vec<Concept> = (0..6)
        .map(|k| {
            let rows: Vec<usize> = (0..10).map(|i| k * 10 + i).collect();
            pool.subset(format!("random_{k}"), &rows).unwrap()
        })
        .collect();
    let model = OnnxModel::load(dir().join("model.onnx"), &Device::flex()).unwrap();
    let report = Tcav::new(&model, ["/relu2/Relu_output_0"])
        .unwrap()
        .experiment(
            &[concept("striped")],
            &RandomConcepts::Sets(sets),
            &[striped_inputs()],
            &ExperimentConfig::default(),
            &mut |_| {},
        )
        .unwrap();
    let r = &report.results[0];
    assert_eq!(r.concept_scores.len(), 6);
    assert_eq!(r.random_scores.len(), 6);
    assert!(r.mean > 0.8, "{}", r.verdict);
}
