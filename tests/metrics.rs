//! Metrics against their references on a small CNN (ONNX; `tools/metrics/metrics_fixtures.py`):
//! Captum 0.9's `infidelity` (Gaussian noise, normalized, square removal) and `sensitivity_max`
//! (Saliency), replaying the recorded perturbations; NumPy references of RISE's deletion and
//! insertion curves, Quantus's faithfulness correlation, sparseness and complexity.

mod common;

use std::path::PathBuf;

use common::*;
use firelight::core::npy::read_npy_tensor;
use firelight::grad::Saliency;
use firelight::metrics::{
    CausalMetric, FaithfulnessCorrelation, Fgsm, Infidelity, InfidelityPerturbation, Norm, Pgd,
    RegionOrder, RegionPerturbation, SensitivityMax, complexity, sparseness,
};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn tensor(name: &str) -> DynTensor {
    read_npy_tensor(dir().join(name), &device()).unwrap()
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn setup() -> (OnnxModel, DynTensor, Target, Value) {
    let model = OnnxModel::load(dir().join("model.onnx"), &device()).unwrap();
    let m = manifest();
    let targets: Vec<usize> = m["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    (model, tensor("input.npy"), Target::classes(targets), m)
}

/// `|a - b|` and `|a - b| / |b|`, the larger over the pairs.
fn errors(got: &[f32], want: &[f32]) -> (f32, f32) {
    got.iter()
        .zip(want)
        .fold((0.0f32, 0.0f32), |(abs, rel), (g, w)| {
            let d = (g - w).abs();
            (abs.max(d), rel.max(d / w.abs().max(1e-30)))
        })
}

#[test]
fn infidelity_and_sensitivity_max_match_captum_on_the_same_perturbations() {
    let (model, x, target, m) = setup();
    let saliency = tensor("saliency.npy");
    for (name, perturbations, normalize) in [
        ("noise", "noise.npy", false),
        ("noise_normalized", "noise.npy", true),
        ("square", "square.npy", false),
    ] {
        let got = Infidelity::new(&model)
            .perturbation(InfidelityPerturbation::Given(Box::new(tensor(
                perturbations,
            ))))
            .normalize(normalize)
            .max_examples_per_batch(7)
            .score(&x, &saliency, &target)
            .unwrap();
        let want = floats(&m["infidelity"][name]);
        let (abs, rel) = errors(&got, &want);
        println!("infidelity {name}: {got:?} vs Captum {want:?}: abs {abs:.1e}, rel {rel:.1e}");
        assert!(
            abs < 1e-5 && rel < 1e-2,
            "infidelity {name}: abs {abs}, rel {rel}"
        );
    }

    let explain = |inputs: &DynTensor, target: &Target| {
        Saliency::new(&model).abs(false).attribute(inputs, target)
    };
    let got = SensitivityMax::new(&explain)
        .perturbed_inputs(tensor("sens_perturbed.npy"))
        .max_examples_per_batch(6)
        .score(&x, &target)
        .unwrap();
    let want = floats(&m["sensitivity_max"]);
    let (abs, rel) = errors(&got, &want);
    println!("sensitivity_max: {got:?} vs Captum {want:?}: abs {abs:.1e}, rel {rel:.1e}");
    assert!(abs < 1e-5, "sensitivity_max: {abs}");
}

#[test]
fn region_perturbation_matches_quantus() {
    // tools/metrics/region_fixture.py: Quantus 0.6's RegionPerturbation on the Saliency maps,
    // 6 x 6 regions (a padded grid) most and least relevant first, and 8 x 8 regions.
    let (model, x, target, _) = setup();
    let saliency = tensor("saliency.npy");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("region.json")).unwrap()).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let order = match case["order"].as_str().unwrap() {
            "morf" => RegionOrder::MostRelevantFirst,
            _ => RegionOrder::LeastRelevantFirst,
        };
        let patch = case["patch_size"].as_u64().unwrap() as usize;
        let curves = RegionPerturbation::new(&model)
            .patch_size(patch)
            .regions_evaluation(case["regions_evaluation"].as_u64().unwrap() as usize)
            .order(order)
            .max_examples_per_batch(3)
            .curves(&x, &saliency, &target)
            .unwrap();
        for (curve, want) in curves.iter().zip(case["drops"].as_array().unwrap()) {
            let want = floats(want);
            let (abs, _) = errors(&curve.drops, &want);
            println!(
                "region perturbation {patch}x{patch} {order:?}: {:?} vs Quantus {want:?}: abs {abs:.1e}, AOPC {:.4}",
                curve.drops,
                curve.aopc()
            );
            assert_eq!(curve.drops.len(), want.len());
            assert!(abs < 1e-5, "{abs}");
        }
    }
    // A flat input is refused with the shape it needs.
    let flat = DynTensor::from_vec(vec![0.0; 8], vec![2, 4], &device()).unwrap();
    let err = RegionPerturbation::new(&model)
        .curves(&flat, &flat, &target)
        .unwrap_err();
    assert!(err.to_string().contains("height, width"), "{err}");
}

#[test]
fn deletion_insertion_faithfulness_sparseness_and_complexity_match_their_references() {
    let (model, x, target, m) = setup();
    let map = tensor("map.npy");
    let targets = Target::Probability(match &target {
        Target::Class(c) => c.clone(),
        _ => unreachable!(),
    });
    for (name, metric) in [
        ("deletion", CausalMetric::deletion(&model)),
        ("insertion", CausalMetric::insertion(&model)),
    ] {
        let curves = metric
            .step(16)
            .max_examples_per_batch(5)
            .curves(&x, &map, &targets)
            .unwrap();
        let want = values(&tensor(&format!("{name}.npy")));
        let got: Vec<f32> = curves.iter().flat_map(|c| c.scores.clone()).collect();
        let err = max_abs_diff(&got, &want);
        let aucs: Vec<f32> = curves.iter().map(|c| c.auc).collect();
        let auc_err = max_abs_diff(&aucs, &floats(&m["causal"][format!("{name}_auc")]));
        println!("{name}: curve max abs diff {err:.1e}, AUC {aucs:?} ({auc_err:.1e})");
        assert!(err < 1e-5 && auc_err < 1e-5, "{name}: {err}, {auc_err}");
    }
    // The same metric through an input-shaped map: |saliency| summed over the channels is map.npy.
    let abs_saliency = DynTensor::from_vec(
        values(&tensor("saliency.npy"))
            .iter()
            .map(|v| v.abs())
            .collect(),
        vec![2, 3, 16, 16],
        &device(),
    )
    .unwrap();
    let via_input_shape = CausalMetric::deletion(&model)
        .step(16)
        .curves(&x, &abs_saliency, &targets)
        .unwrap();
    let err = max_abs_diff(
        &via_input_shape[0].scores,
        &values(&tensor("deletion.npy"))[..17],
    );
    assert!(err < 1e-5, "input-shaped map: {err}");

    let subsets: Vec<Vec<Vec<usize>>> =
        serde_json::from_value(m["faithfulness"]["subsets"].clone()).unwrap();
    let got = FaithfulnessCorrelation::new(&model)
        .subsets(subsets.clone())
        .nr_runs(subsets[0].len())
        .subset_size(subsets[0][0].len())
        .score(&x, &map, &target)
        .unwrap();
    let want = floats(&m["faithfulness"]["correlation"]);
    let err = max_abs_diff(&got, &want);
    println!("faithfulness correlation {got:?} vs NumPy {want:?}: {err:.1e}");
    assert!(err < 1e-5, "faithfulness: {err}");

    let saliency = tensor("saliency.npy");
    let err = max_abs_diff(&sparseness(&saliency).unwrap(), &floats(&m["sparseness"]));
    assert!(err < 1e-5, "sparseness: {err}");
    let err = max_abs_diff(&complexity(&saliency).unwrap(), &floats(&m["complexity"]));
    assert!(err < 1e-5, "complexity: {err}");
}

#[test]
fn metrics_refuse_maps_of_the_wrong_shape_and_empty_parameters() {
    let (model, x, target, _) = setup();
    let wrong = DynTensor::from_vec(vec![0.0; 2 * 8 * 8], vec![2, 8, 8], &device()).unwrap();
    let err = Infidelity::new(&model)
        .score(&x, &wrong, &target)
        .unwrap_err();
    assert!(
        err.to_string().contains("attributions vs the input"),
        "{err}"
    );
    let err = CausalMetric::deletion(&model)
        .curves(&x, &wrong, &target)
        .unwrap_err();
    assert!(err.to_string().contains("positions"), "{err}");
    let err = Infidelity::new(&model)
        .perturbation(InfidelityPerturbation::Given(Box::new(tensor("input.npy"))))
        .score(&x, &tensor("saliency.npy"), &target)
        .unwrap_err();
    assert!(err.to_string().contains("n_perturb_samples"), "{err}");
    let err = Infidelity::new(&model)
        .n_perturb_samples(0)
        .score(&x, &tensor("saliency.npy"), &target)
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    let err = FaithfulnessCorrelation::new(&model)
        .subset_size(1000)
        .score(&x, &tensor("map.npy"), &target)
        .unwrap_err();
    assert!(err.to_string().contains("256 positions"), "{err}");
    let err = Infidelity::new(&model)
        .perturbation(InfidelityPerturbation::SquareRemoval { side: 40 })
        .score(&x, &tensor("saliency.npy"), &target)
        .unwrap_err();
    assert!(err.to_string().contains("fit"), "{err}");
}

#[test]
fn seeded_metrics_repeat_and_chunking_never_changes_them() {
    let (model, x, target, _) = setup();
    let saliency = tensor("saliency.npy");
    let run = |chunk: usize, seed: u64| {
        Infidelity::new(&model)
            .perturbation(InfidelityPerturbation::SquareRemoval { side: 4 })
            .seed(seed)
            .max_examples_per_batch(chunk)
            .score(&x, &saliency, &target)
            .unwrap()
    };
    let whole = run(100, 3);
    assert_eq!(whole, run(100, 3));
    assert!(max_abs_diff(&whole, &run(3, 3)) < 1e-9);
    assert_ne!(whole, run(100, 4));
    // The exact attribution of a (locally) linear change has no infidelity: the gradient of this
    // ReLU network, under perturbations too small to cross a ReLU's kink.
    let tiny = Infidelity::new(&model)
        .perturbation(InfidelityPerturbation::Noise { stdev: 1e-4 })
        .score(&x, &saliency, &target)
        .unwrap();
    let square = run(100, 3);
    assert!(
        tiny.iter().zip(&square).all(|(t, s)| t < &(s * 1e-3)),
        "{tiny:?} vs {square:?}"
    );
}

#[test]
fn fgsm_and_pgd_equal_captums_without_a_random_start() {
    let (model, x, _, m) = setup();
    let classes: Vec<usize> = m["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let toward = [0, 0];
    let cases = [
        ("fgsm", Fgsm::new(&model).perturb(&x, 0.05, &classes, false)),
        (
            "fgsm_targeted",
            Fgsm::new(&model).perturb(&x, 0.05, &toward, true),
        ),
        (
            "pgd_linf",
            Pgd::new(&model)
                .bounds(-2.0, 2.0)
                .perturb(&x, 0.1, 0.02, 7, &classes, false),
        ),
        (
            "pgd_l2",
            Pgd::new(&model)
                .norm(Norm::L2)
                .perturb(&x, 1.0, 0.1, 5, &toward, true),
        ),
    ];
    for (name, got) in cases {
        let got = values(&got.unwrap());
        let want = values(&tensor(&format!("{name}.npy")));
        let err = max_abs_diff(&got, &want);
        // A sign flips only where a gradient is near zero; count the elements that differ.
        let differing = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| (*a - *b).abs() > 1e-5)
            .count();
        println!(
            "{name}: max abs diff vs Captum {err:.1e}, {differing} of {} elements differ",
            got.len()
        );
        assert!(
            differing == 0,
            "{name}: {differing} elements differ (max {err})"
        );
    }
    // PGD stays in its bounds, and in its ball wherever the bounds allow.
    let adversarial = Pgd::new(&model)
        .bounds(-2.0, 2.0)
        .perturb(&x, 0.1, 0.02, 7, &classes, false)
        .unwrap();
    let (a, b) = (values(&adversarial), values(&x));
    assert!(a.iter().zip(&b).all(|(a, b)| {
        (-2.0..=2.0).contains(a) && ((a - b).abs() <= 0.1 + 1e-6 || a.abs() == 2.0)
    }));
    // The smallest FGSM epsilon that flips each prediction, if one of these does.
    let epsilons = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];
    let fgsm = Fgsm::new(&model);
    let flips =
        firelight::metrics::minimal_perturbation(&model, &x, &classes, &epsilons, &|x, e| {
            fgsm.perturb(x, e, &classes, false)
        })
        .unwrap();
    println!("smallest flipping FGSM epsilon: {flips:?}");
    assert!(
        flips.iter().any(Option::is_some),
        "no epsilon flips anything: {flips:?}"
    );
    // Accuracy as it is and under attacks of growing strength: it never rises here.
    let weak = |x: &DynTensor| fgsm.perturb(x, 0.01, &classes, false);
    let strong = |x: &DynTensor| fgsm.perturb(x, 0.5, &classes, false);
    let table = firelight::metrics::compare_attacks(
        &model,
        &x,
        &classes,
        &[("fgsm 0.01", &weak), ("fgsm 0.5", &strong)],
    )
    .unwrap();
    println!("{table:?}");
    assert_eq!(table[0].accuracy, 1.0, "the targets are the predictions");
    assert!(table[2].accuracy < 1.0 && table[2].probability < table[1].probability);
    assert!(table[1].probability < table[0].probability);
    // A seeded random start stays in the ball too, and repeats.
    let random = |seed| {
        values(
            &Pgd::new(&model)
                .random_start(seed)
                .perturb(&x, 0.1, 0.02, 2, &classes, false)
                .unwrap(),
        )
    };
    assert_eq!(random(1), random(1));
    assert_ne!(random(1), random(2));
}

#[test]
fn metrics_of_a_batch_give_what_each_sample_gives_alone() {
    // Per-sample targets follow their samples through every chunk of perturbed copies, also
    // when there are more samples than copies of each (3 samples, 2 copies each).
    let (model, x, target, _) = setup();
    let Target::Class(firelight::core::Classes::PerSample(classes)) = &target else {
        unreachable!()
    };
    let x = DynTensor::cat(vec![x.clone(), x.rows(0, 1)]).unwrap();
    let map = tensor("map.npy");
    let map = DynTensor::cat(vec![map.clone(), map.rows(0, 1)]).unwrap();
    let classes = vec![classes[0], classes[1], classes[0]];
    let target = Target::classes(classes.clone());
    let together = CausalMetric::deletion(&model)
        .step(256)
        .curves(&x, &map, &target)
        .unwrap();
    let faithfulness = |x: &DynTensor, map: &DynTensor, t: &Target| {
        FaithfulnessCorrelation::new(&model)
            .nr_runs(2)
            .subset_size(8)
            .seed(5)
            .score(x, map, t)
            .unwrap()
    };
    let both = faithfulness(&x, &map, &target);
    for b in 0..3 {
        let (alone_x, alone_map) = (x.rows(b, b + 1), map.rows(b, b + 1));
        let one = Target::class(classes[b]);
        let curve = CausalMetric::deletion(&model)
            .step(256)
            .curves(&alone_x, &alone_map, &one)
            .unwrap();
        assert_eq!(together[b].scores.len(), 2);
        assert!(
            max_abs_diff(&curve[0].scores, &together[b].scores) < 1e-6,
            "sample {b}"
        );
    }
    assert_eq!(both.len(), 3);
}

#[test]
fn hog_features_match_scikit_image() {
    // scikit-image's defaults on a seeded 40 x 48 map (tools/metrics/hog_fixture.py).
    let map = values(&tensor("hog_map.npy"));
    let want = values(&tensor("hog.npy"));
    let got: Vec<f32> = firelight::metrics::hog(&map, 40, 48)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    assert_eq!(got.len(), want.len());
    let err = max_abs_diff(&got, &want);
    println!(
        "HOG vs scikit-image: max abs diff {err:.1e} over {} features",
        got.len()
    );
    assert!(err < 1e-4, "HOG {err}");
    let same = firelight::metrics::hog_similarity(&map, &map, 40, 48);
    assert!((same - 1.0).abs() < 1e-9);
}
