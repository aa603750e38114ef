//! Properties every perturbation method must have, on tiny models with closed forms: Shapley
//! efficiency, symmetry and the null player; sampling estimators converging to the exact values;
//! agreement on linear models; independence from `perturbations_per_eval`; determinism by seed.

mod common;

use common::*;
use firelight_core::{Attribution, Baseline, Target};
use firelight_perturb::{
    FeatureAblation, FeatureMask, FeaturePermutation, InterpretableModel, KernelShap, Lime,
    Occlusion, ShapleyValueSampling, ShapleyValues,
};
use proptest::prelude::*;

/// A nonlinear game on 4 inputs: interactions, a product and a max.
fn nonlinear() -> FnModel<impl Fn(&[&[f64]]) -> Vec<f64>> {
    FnModel {
        f: |row: &[&[f64]]| {
            let x = row[0];
            vec![x[0] * x[1] + 2.0 * x[2] - x[3] * x[3] + x[0].max(x[3]) + 0.5 * x[1] * x[2] * x[3]]
        },
    }
}

fn vec4() -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-2.0f32..2.0, 4)
}

fn target() -> Target {
    Target::class(0)
}

fn scores(model: &dyn firelight_core::Model, x: &[f32], rows: usize) -> Vec<f64> {
    let out = model
        .predict(&tensor(x.to_vec(), vec![rows, 4]).into())
        .unwrap();
    out.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Efficiency: the exact Shapley values of a sample sum to f(x) - f(baseline).
    #[test]
    fn shapley_values_sum_to_the_output_difference(x in vec4(), b in vec4()) {
        let model = nonlinear();
        let phi = ShapleyValues::new(&model)
            .baselines(Baseline::Tensor(tensor(b.clone(), vec![1, 4])))
            .attribute(&tensor(x.clone(), vec![1, 4]), &target())
            .unwrap();
        let expected = scores(&model, &x, 1)[0] - scores(&model, &b, 1)[0];
        prop_assert!((values(&phi).iter().sum::<f64>() - expected).abs() < 1e-4);
    }

    /// Symmetry: features the game treats alike, at equal values, get equal Shapley values;
    /// null player: a feature the game ignores gets zero.
    #[test]
    fn symmetric_features_share_and_null_players_get_nothing(a in -2.0f32..2.0, c in -2.0f32..2.0, d in -2.0f32..2.0) {
        // Symmetric in x0 and x1; ignores x3.
        let model = FnModel { f: |row: &[&[f64]]| {
            let x = row[0];
            vec![x[0] * x[1] + (x[0] + x[1]) * x[2] + x[2].powi(3)]
        }};
        let x = tensor(vec![a, a, c, d], vec![1, 4]);
        let exact = values(&ShapleyValues::new(&model).attribute(&x, &target()).unwrap());
        prop_assert!((exact[0] - exact[1]).abs() < 1e-4, "{exact:?}");
        prop_assert!(exact[3].abs() < 1e-6, "{exact:?}");
        // Sampled orderings are symmetric only on average, but never credit a null player.
        let sampled = values(&ShapleyValueSampling::new(&model).n_samples(5).attribute(&x, &target()).unwrap());
        prop_assert!(sampled[3].abs() < 1e-6, "{sampled:?}");
    }

    /// Shapley Value Sampling is efficient for any number of orderings, and its per-feature
    /// estimates approach the exact values.
    #[test]
    fn sampling_is_efficient_and_converges_to_exact(x in vec4(), seed in 0u64..1000) {
        let model = nonlinear();
        let input = tensor(x.clone(), vec![1, 4]);
        let exact = values(&ShapleyValues::new(&model).attribute(&input, &target()).unwrap());
        let few = values(&ShapleyValueSampling::new(&model).n_samples(3).seed(seed).attribute(&input, &target()).unwrap());
        prop_assert!((few.iter().sum::<f64>() - exact.iter().sum::<f64>()).abs() < 1e-4);
        let many = values(&ShapleyValueSampling::new(&model).n_samples(600).seed(seed).attribute(&input, &target()).unwrap());
        let scale = exact.iter().map(|v| v.abs()).fold(1.0, f64::max);
        prop_assert!(max_abs_diff(&many, &exact) < 0.15 * scale, "{many:?} vs {exact:?}");
    }

    /// KernelSHAP fitted to every coalition, counted by the Shapley kernel, is exact.
    #[test]
    fn kernel_shap_with_every_coalition_is_exact(x in vec4(), b in vec4()) {
        let model = nonlinear();
        let input = tensor(x, vec![1, 4]);
        let base = Baseline::Tensor(tensor(b, vec![1, 4]));
        let exact = values(&ShapleyValues::new(&model).baselines(base.clone()).attribute(&input, &target()).unwrap());
        let kernel = values(&KernelShap::new(&model)
            .baselines(base)
            .interpretable_samples(vec![kernel_coalitions(4)])
            .attribute(&input, &target())
            .unwrap());
        let scale = exact.iter().map(|v| v.abs()).fold(1.0, f64::max);
        prop_assert!(max_abs_diff(&kernel, &exact) < 1e-4 * scale, "{kernel:?} vs {exact:?}");
    }

    /// On a linear model every method that switches features to the baseline gives
    /// w (x - b): Feature Ablation, Occlusion with 1-element windows, exact and sampled
    /// Shapley values, KernelSHAP and LIME with least squares.
    #[test]
    fn linear_models_get_weight_times_difference_from_every_method(
        w in vec4(), x in proptest::collection::vec(-2.0f32..2.0, 8), b in vec4(),
    ) {
        let model = linear(w.iter().map(|&v| f64::from(v)).collect());
        let input = tensor(x.clone(), vec![2, 4]);
        let base = Baseline::Tensor(tensor(b.clone(), vec![1, 4]));
        let expected: Vec<f64> = (0..8).map(|i| f64::from(w[i % 4]) * f64::from(x[i] - b[i % 4])).collect();
        let t = target();
        let methods: Vec<(&str, Vec<f64>)> = vec![
            ("FeatureAblation", values(&FeatureAblation::new(&model).baselines(base.clone()).attribute(&input, &t).unwrap())),
            ("Occlusion", values(&Occlusion::new(&model, [1]).baselines(base.clone()).attribute(&input, &t).unwrap())),
            ("ShapleyValues", values(&ShapleyValues::new(&model).baselines(base.clone()).attribute(&input, &t).unwrap())),
            ("ShapleyValueSampling", values(&ShapleyValueSampling::new(&model).n_samples(2).baselines(base.clone()).attribute(&input, &t).unwrap())),
            ("KernelShap", values(&KernelShap::new(&model).n_samples(40).baselines(base.clone()).attribute(&input, &t).unwrap())),
            ("Lime", values(&Lime::new(&model).n_samples(40).interpretable_model(InterpretableModel::LinearRegression).baselines(base.clone()).attribute(&input, &t).unwrap())),
        ];
        for (name, got) in methods {
            prop_assert!(max_abs_diff(&got, &expected) < 1e-4, "{name}: {got:?} vs {expected:?}");
        }
    }
}

#[test]
fn lime_default_lasso_is_close_to_weight_times_input_on_a_linear_model() {
    let model = linear(vec![2.0, -1.0, 0.5, 3.0]);
    let x = tensor(vec![1.0, 2.0, -1.0, 0.5], vec![1, 4]);
    let got = values(
        &Lime::new(&model)
            .n_samples(200)
            .attribute(&x, &target())
            .unwrap(),
    );
    // The L1 penalty shrinks each coefficient a little towards zero.
    assert_close(&got, &[2.0, -2.0, -0.5, 1.5], 0.1);
}

#[test]
fn kernel_shap_with_many_seeded_samples_approaches_exact_shapley_values() {
    let model = nonlinear();
    let x = tensor(vec![1.0, -0.5, 1.5, 0.7], vec![1, 4]);
    let exact = values(&ShapleyValues::new(&model).attribute(&x, &target()).unwrap());
    let kernel = values(
        &KernelShap::new(&model)
            .n_samples(4000)
            .seed(3)
            .attribute(&x, &target())
            .unwrap(),
    );
    assert_close(&kernel, &exact, 0.05);
}

#[test]
fn results_do_not_depend_on_perturbations_per_eval() {
    let model = nonlinear();
    let x = tensor(
        vec![
            1.0, -0.5, 1.5, 0.7, 0.3, 0.2, -1.0, 1.1, -0.4, 0.9, 0.0, 2.0,
        ],
        vec![3, 4],
    );
    let t = target();
    let mask = FeatureMask::ids(vec![0, 1, 1, 2], vec![1, 4]).unwrap();
    let runs = |n: usize| -> Vec<Vec<f64>> {
        vec![
            values(
                &FeatureAblation::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &FeaturePermutation::new(&model)
                    .feature_mask(mask.clone())
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &Occlusion::new(&model, [2])
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &ShapleyValues::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &ShapleyValueSampling::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &KernelShap::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &Lime::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
        ]
    };
    let one = runs(1);
    for n in [2, 3, 7, 64] {
        for (a, b) in runs(n).iter().zip(&one) {
            assert_close(a, b, 1e-6);
        }
    }
}

#[test]
fn same_seed_same_numbers_other_seed_other_numbers() {
    let model = nonlinear();
    let x = tensor(
        vec![
            1.0, -0.5, 1.5, 0.7, 0.3, 0.2, -1.0, 1.1, -0.4, 0.9, 0.0, 2.0,
        ],
        vec![3, 4],
    );
    let t = target();
    let run = |seed: u64| -> Vec<Vec<f64>> {
        vec![
            values(
                &FeaturePermutation::new(&model)
                    .seed(seed)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &ShapleyValueSampling::new(&model)
                    .n_samples(3)
                    .seed(seed)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(
                &KernelShap::new(&model)
                    .seed(seed)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            values(&Lime::new(&model).seed(seed).attribute(&x, &t).unwrap()),
        ]
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a, b);
    for (i, (a, c)) in a.iter().zip(&c).enumerate() {
        assert_ne!(a, c, "method {i} ignores its seed");
    }
}

#[test]
fn per_sample_targets_follow_their_rows() {
    // Two outputs: out0 = x0 + 2 x1, out1 = 3 x0 - x1; sample 0 explains out0, sample 1 out1.
    let model = FnModel {
        f: |row: &[&[f64]]| {
            let x = row[0];
            vec![x[0] + 2.0 * x[1], 3.0 * x[0] - x[1]]
        },
    };
    let x = tensor(vec![1.0, 1.0, 2.0, 1.0], vec![2, 2]);
    let t = Target::classes(vec![0, 1]);
    let expected = [1.0, 2.0, 6.0, -1.0];
    for n in [1, 2, 3] {
        assert_close(
            &values(
                &FeatureAblation::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            &expected,
            1e-6,
        );
        assert_close(
            &values(
                &ShapleyValueSampling::new(&model)
                    .perturbations_per_eval(n)
                    .attribute(&x, &t)
                    .unwrap(),
            ),
            &expected,
            1e-6,
        );
    }
}

#[test]
fn occlusion_averages_overlapping_windows_and_cuts_them_at_the_edge() {
    // Axis of 5, window 2, stride 2: windows [0,2), [2,4), [4,5) (cut); window 3, stride 2:
    // [0,3), [2,5) overlapping on element 2.
    let w = [1.0, 2.0, 3.0, 4.0, 5.0];
    let model = linear(w.to_vec());
    let x = tensor(vec![1.0; 5], vec![1, 5]);
    let got = values(
        &Occlusion::new(&model, [2])
            .strides([2])
            .attribute(&x, &target())
            .unwrap(),
    );
    assert_close(&got, &[3.0, 3.0, 7.0, 7.0, 5.0], 1e-6);
    let got = values(
        &Occlusion::new(&model, [3])
            .strides([2])
            .attribute(&x, &target())
            .unwrap(),
    );
    assert_close(&got, &[6.0, 6.0, 9.0, 12.0, 12.0], 1e-6);
}

#[test]
fn feature_permutation_takes_each_feature_from_the_permuted_row() {
    let model = linear(vec![1.0, 10.0]);
    let x = tensor(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![3, 2]);
    let got = values(
        &FeaturePermutation::new(&model)
            .permutations(vec![vec![1, 2, 0], vec![2, 0, 1]])
            .attribute(&x, &target())
            .unwrap(),
    );
    // Feature 0: row r takes x[perm[r]][0]; feature 1 likewise with the second permutation.
    let expected = [
        1.0 - 3.0,
        10.0 * (2.0 - 6.0),
        3.0 - 5.0,
        10.0 * (4.0 - 2.0),
        5.0 - 1.0,
        10.0 * (6.0 - 4.0),
    ];
    assert_close(&got, &expected, 1e-5);
}

#[test]
fn grid_masks_group_pixels_across_channels() {
    // A 2-channel 4x4 image, 2x2 cells: 4 features, each 8 elements.
    let model = FnModel {
        f: |row: &[&[f64]]| vec![row[0].iter().sum::<f64>()],
    };
    let x = tensor((0..32).map(|v| v as f32).collect(), vec![1, 2, 4, 4]);
    let got = values(
        &FeatureAblation::new(&model)
            .feature_mask(FeatureMask::Grid(2))
            .attribute(&x, &target())
            .unwrap(),
    );
    // Cell (0, 0) holds pixels 0, 1, 4, 5 of both channels.
    let cell00 = [0.0, 1.0, 4.0, 5.0, 16.0, 17.0, 20.0, 21.0]
        .iter()
        .sum::<f64>();
    assert_eq!(got[0], cell00);
    assert_eq!(got[5], cell00);
    assert_eq!(got[16], cell00);
    let exact = values(
        &ShapleyValues::new(&model)
            .feature_mask(FeatureMask::Grid(2))
            .attribute(&x, &target())
            .unwrap(),
    );
    assert_close(&exact, &got, 1e-4);
}

#[test]
fn progress_reports_every_perturbation() {
    let model = nonlinear();
    let x = tensor(vec![1.0, -0.5, 1.5, 0.7], vec![1, 4]);
    let mut seen = Vec::new();
    FeatureAblation::new(&model)
        .perturbations_per_eval(3)
        .progress(|done, total| seen.push((done, total)))
        .attribute(&x, &target())
        .unwrap();
    assert_eq!(seen, vec![(3, 4), (4, 4)]);
}
