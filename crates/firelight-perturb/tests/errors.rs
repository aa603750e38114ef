//! Bad input gives a clear error, never a panic.

mod common;

use common::*;
use firelight_core::{Attribution, Baseline, Error, Inputs, Target};
use firelight_perturb::{
    FeatureAblation, FeatureMask, FeaturePermutation, KernelShap, LayerFeatureAblation, Lime,
    MaskIds, Occlusion, ShapleyValueSampling, ShapleyValues,
};

fn model() -> FnModel<impl Fn(&[&[f64]]) -> Vec<f64>> {
    linear(vec![1.0, 2.0, 3.0, 4.0])
}

fn x() -> firelight_core::DynTensor {
    tensor(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], vec![2, 4])
}

#[track_caller]
fn message(result: firelight_core::Result<firelight_core::DynTensor>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[test]
fn a_mask_that_does_not_broadcast_is_refused() {
    let m = model();
    let mask = FeatureMask::ids(vec![0, 1, 2], vec![1, 3]).unwrap();
    let msg = message(
        FeatureAblation::new(&m)
            .feature_mask(mask.clone())
            .attribute(&x(), &Target::class(0)),
    );
    contains(&msg, &["feature mask", "broadcast", "[2, 4]", "[1, 3]"]);
    // A per-sample mask needs one row per sample.
    let mask = FeatureMask::ids(vec![0; 12], vec![3, 4]).unwrap();
    let msg = message(
        ShapleyValues::new(&m)
            .feature_mask(mask)
            .attribute(&x(), &Target::class(0)),
    );
    contains(&msg, &["feature mask", "one row per sample"]);
}

#[test]
fn shapley_methods_need_contiguous_feature_ids() {
    let m = model();
    let mask = FeatureMask::ids(vec![0, 0, 2, 5], vec![1, 4]).unwrap();
    let t = Target::class(0);
    for msg in [
        message(
            ShapleyValues::new(&m)
                .feature_mask(mask.clone())
                .attribute(&x(), &t),
        ),
        message(
            ShapleyValueSampling::new(&m)
                .feature_mask(mask.clone())
                .attribute(&x(), &t),
        ),
        message(
            KernelShap::new(&m)
                .feature_mask(mask.clone())
                .attribute(&x(), &t),
        ),
    ] {
        contains(&msg, &["0..n", "missing: 1, 3, 4", "renumber"]);
    }
    // Ablation accepts any ids.
    assert!(
        FeatureAblation::new(&m)
            .feature_mask(mask)
            .attribute(&x(), &t)
            .is_ok()
    );
    assert!(
        MaskIds::new(vec![-1, 0], vec![2])
            .unwrap_err()
            .to_string()
            .contains("non-negative")
    );
}

#[test]
fn a_window_larger_than_the_input_is_refused() {
    let m = model();
    let t = Target::class(0);
    contains(
        &message(Occlusion::new(&m, [5]).attribute(&x(), &t)),
        &["larger than", "[4]"],
    );
    contains(
        &message(Occlusion::new(&m, [2, 2]).attribute(&x(), &t)),
        &["one window size"],
    );
    contains(
        &message(Occlusion::new(&m, [0]).attribute(&x(), &t)),
        &["at least 1"],
    );
    contains(
        &message(Occlusion::new(&m, [1]).strides([2]).attribute(&x(), &t)),
        &["stride 2 is larger than the window 1"],
    );
}

#[test]
fn a_carried_input_of_the_wrong_batch_is_refused() {
    let m = FnModel {
        f: |row: &[&[f64]]| vec![row[0][0] * row[1][0]],
    };
    let inputs = Inputs::new()
        .attributed("x", tensor(vec![1.0, 2.0], vec![2, 1]))
        .carried_float("m", tensor(vec![1.0, 2.0, 3.0], vec![3, 1]));
    let err = FeatureAblation::new(&m)
        .attribute_inputs(&inputs, &Target::class(0))
        .unwrap_err();
    contains(&err.to_string(), &["batch", "`m`", "`x`"]);
}

#[test]
fn zero_samples_and_zero_perturbations_per_eval_are_refused() {
    let m = model();
    let t = Target::class(0);
    for msg in [
        message(
            ShapleyValueSampling::new(&m)
                .n_samples(0)
                .attribute(&x(), &t),
        ),
        message(KernelShap::new(&m).n_samples(0).attribute(&x(), &t)),
        message(Lime::new(&m).n_samples(0).attribute(&x(), &t)),
    ] {
        contains(&msg, &["n_samples", "at least 1"]);
    }
    for msg in [
        message(
            FeatureAblation::new(&m)
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(
            FeaturePermutation::new(&m)
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(
            Occlusion::new(&m, [1])
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(
            ShapleyValues::new(&m)
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(
            ShapleyValueSampling::new(&m)
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(
            KernelShap::new(&m)
                .perturbations_per_eval(0)
                .attribute(&x(), &t),
        ),
        message(Lime::new(&m).perturbations_per_eval(0).attribute(&x(), &t)),
    ] {
        contains(&msg, &["perturbations_per_eval", "at least 1"]);
    }
}

#[test]
fn nan_inputs_and_baselines_are_refused() {
    let m = model();
    let bad = tensor(vec![1.0, f32::NAN, 3.0, 4.0], vec![1, 4]);
    let err = FeatureAblation::new(&m)
        .attribute(&bad, &Target::class(0))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let err = ShapleyValues::new(&m)
        .baselines(Baseline::Constant(f32::INFINITY))
        .attribute(&x(), &Target::class(0))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

#[test]
fn too_many_features_for_exact_shapley_values_is_refused() {
    let m = linear(vec![1.0; 20]);
    let x = tensor(vec![1.0; 20], vec![1, 20]);
    let msg = message(ShapleyValues::new(&m).attribute(&x, &Target::class(0)));
    contains(&msg, &["20 features", "2^n", "ShapleyValueSampling"]);
}

#[test]
fn bad_draws_and_other_parameters_are_refused() {
    let m = model();
    let t = Target::class(0);
    contains(
        &message(FeaturePermutation::new(&m).attribute(&tensor(vec![1.0; 4], vec![1, 4]), &t)),
        &["at least 2 samples"],
    );
    contains(
        &message(
            FeaturePermutation::new(&m)
                .permutations(vec![vec![0, 0]; 4])
                .attribute(&x(), &t),
        ),
        &["permutation of the 2 batch rows"],
    );
    contains(
        &message(
            ShapleyValueSampling::new(&m)
                .permutations(vec![vec![0, 1, 2]])
                .attribute(&x(), &t),
        ),
        &["permutation of the feature ids 0..4"],
    );
    contains(
        &message(
            KernelShap::new(&m)
                .interpretable_samples(vec![vec![vec![true; 3]]; 2])
                .attribute(&x(), &t),
        ),
        &["one value per interpretable feature (4)"],
    );
    contains(
        &message(
            Lime::new(&m)
                .interpretable_samples(vec![vec![vec![true; 4]]])
                .attribute(&x(), &t),
        ),
        &["every example (2)"],
    );
    contains(
        &message(FeatureAblation::new(&m).attribute(&x(), &Target::class(3))),
        &["target index 3"],
    );
    let two = TwoLayer {
        w1: vec![vec![1.0]],
        w2: vec![vec![1.0]],
    };
    let err = LayerFeatureAblation::new(&two, "hiden")
        .err()
        .expect("unknown layer");
    contains(&err.to_string(), &["unknown layer `hiden`", "`hidden`"]);
    contains(
        &message(
            FeatureAblation::new(&m)
                .feature_mask(FeatureMask::Grid(0))
                .attribute(&x(), &t),
        ),
        &["Grid(0)"],
    );
}
