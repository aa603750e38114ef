//! TCAV on the bundled ground-truth model (models/texture_cnn): a tiny CNN whose "striped" class
//! is defined by a striped texture and whose "dotted" class by dots, so the truth TCAV must
//! recover is known (tools/models/train_texture_cnn.py).

use std::path::PathBuf;

use firelight::concept::{
    Concept, ExperimentConfig, ExperimentReport, ImageTransform, RandomConcepts, TargetInputs, Tcav,
};
use firelight::core::Device;
use firelight::onnx::OnnxModel;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/texture_cnn")
}

fn transform() -> ImageTransform {
    ImageTransform {
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
