//! Feature masks across several inputs, per-sample masks, and the shapes methods return.

mod common;

use common::*;
use firelight_core::{Attribution, Inputs, Target};
use firelight_perturb::{
    FeatureAblation, FeatureMask, INTERPRETABLE_FEATURES, InterpretableModel, KernelShap, Lime,
    ShapleyValues,
};

/// `out = 2 a0 + a1 + 10 b0 - b1` over two attributed inputs `a` and `b`.
fn two_inputs() -> FnModel<impl Fn(&[&[f64]]) -> Vec<f64>> {
    FnModel {
        f: |row: &[&[f64]]| vec![2.0 * row[0][0] + row[0][1] + 10.0 * row[1][0] - row[1][1]],
    }
}

fn inputs() -> Inputs {
    Inputs::new()
        .attributed("a", tensor(vec![1.0, 2.0], vec![1, 2]))
        .attributed("b", tensor(vec![3.0, 4.0], vec![1, 2]))
}

#[test]
fn one_attribution_per_input_with_default_ids_running_on() {
    let m = two_inputs();
    let a = ShapleyValues::new(&m)
        .attribute_inputs(&inputs(), &Target::class(0))
        .unwrap();
    assert_eq!(a.names(), vec!["a", "b"]);
    assert_close(&values(a.get("a").unwrap()), &[2.0, 2.0], 1e-5);
    assert_close(&values(a.get("b").unwrap()), &[30.0, -4.0], 1e-5);
}

#[test]
fn an_id_shared_by_two_inputs_is_one_feature() {
    let m = two_inputs();
    // a1 and b0 are feature 1, switched together.
    let mask = FeatureMask::PerInput(vec![
        FeatureMask::ids(vec![0, 1], vec![1, 2]).unwrap(),
        FeatureMask::ids(vec![1, 2], vec![1, 2]).unwrap(),
    ]);
    let a = FeatureAblation::new(&m)
        .feature_mask(mask)
        .attribute_inputs(&inputs(), &Target::class(0))
        .unwrap();
    assert_close(&values(a.get("a").unwrap()), &[2.0, 32.0], 1e-5);
    assert_close(&values(a.get("b").unwrap()), &[32.0, -4.0], 1e-5);
}

#[test]
fn per_sample_masks_group_each_sample_s_own_elements() {
    let m = linear(vec![1.0, 2.0, 3.0]);
    let x = tensor(vec![1.0; 6], vec![2, 3]);
    // Sample 0: {x0, x1} {x2}; sample 1: {x0} {x1, x2}.
    let mask = FeatureMask::ids(vec![0, 0, 1, 0, 1, 1], vec![2, 3]).unwrap();
    let got = values(
        &ShapleyValues::new(&m)
            .feature_mask(mask)
            .attribute(&x, &Target::class(0))
            .unwrap(),
    );
    assert_close(&got, &[3.0, 3.0, 3.0, 1.0, 5.0, 5.0], 1e-5);
}

#[test]
fn lime_and_kernel_shap_can_return_one_coefficient_per_interpretable_feature() {
    let m = linear(vec![1.0, -2.0, 3.0, 0.5]);
    let x = tensor(vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0], vec![2, 4]);
    let mask = FeatureMask::ids(vec![0, 0, 1, 1], vec![1, 4]).unwrap();
    let ks = KernelShap::new(&m)
        .feature_mask(mask.clone())
        .return_input_shape(false)
        .attribute_inputs(&x.clone().into(), &Target::class(0))
        .unwrap();
    assert_eq!(ks.names(), vec![INTERPRETABLE_FEATURES]);
    let coefs = ks.into_single().unwrap();
    assert_eq!(coefs.shape(), &[2, 2]);
    assert_close(&values(&coefs), &[-1.0, 3.5, -2.0, 7.0], 1e-4);
    let lime = Lime::new(&m)
        .feature_mask(mask)
        .interpretable_model(InterpretableModel::Ridge { alpha: 1e-9 })
        .n_samples(30);
    let surrogates = lime
        .surrogates(&x.clone().into(), &Target::class(0))
        .unwrap();
    assert_eq!(surrogates.len(), 2);
    assert_eq!(surrogates[0].samples.len(), 30);
    assert_close(&surrogates[1].fit.coef, &[-2.0, 7.0], 1e-4);
    // The intercept is the all-absent score (zero baselines: 0).
    assert!(surrogates[1].fit.intercept.abs() < 1e-4);
}

#[test]
fn a_mask_of_fewer_axes_broadcasts_from_the_right() {
    let m = FnModel {
        f: |row: &[&[f64]]| vec![row[0].iter().sum::<f64>()],
    };
    // [2, 2, 3] input, a [3] mask: the same 3 column features in every row and channel.
    let x = tensor((1..=12).map(|v| v as f32).collect(), vec![2, 2, 3]);
    let got = values(
        &FeatureAblation::new(&m)
            .feature_mask(FeatureMask::ids(vec![0, 1, 2], vec![3]).unwrap())
            .attribute(&x, &Target::class(0))
            .unwrap(),
    );
    // Sample 0: columns sum to 1+4, 2+5, 3+6.
    assert_close(&got[..6], &[5.0, 7.0, 9.0, 5.0, 7.0, 9.0], 1e-5);
}
