//! Carried inputs follow their rows: every perturbed copy of a sample sees that sample's carried
//! values, whatever `perturbations_per_eval` packs into one forward pass. Also: integer inputs
//! are perturbed like float ones, and layer ablation replaces the layer's value.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use firelight_core::{Attribution, Inputs, Target};
use firelight_perturb::{
    FeatureAblation, FeatureMask, FeaturePermutation, KernelShap, LayerFeatureAblation, Occlusion,
    ShapleyValueSampling, ShapleyValues,
};

const W: [f64; 3] = [1.0, -2.0, 0.5];

/// `out = (w . x) * m`, `x` attributed, `m` a carried per-sample scale.
fn scaled() -> FnModel<impl Fn(&[&[f64]]) -> Vec<f64>> {
    FnModel {
        f: |row: &[&[f64]]| {
            let dot: f64 = row[0].iter().zip(W).map(|(x, w)| x * w).sum();
            vec![dot * row[1][0]]
        },
    }
}

fn batch() -> (Inputs, Vec<f64>, Vec<f64>) {
    let x = vec![
        1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0, 0.0, 1.0, -3.0, 2.0, 2.0, 2.0,
    ];
    let m = vec![1.0f32, -3.0, 10.0, 0.5];
    let inputs = Inputs::new()
        .attributed("x", tensor(x.clone(), vec![4, 3]))
        .carried_float("m", tensor(m.clone(), vec![4, 1]));
    (
        inputs,
        x.into_iter().map(f64::from).collect(),
        m.into_iter().map(f64::from).collect(),
    )
}

/// w_e x_e m_r: what every baseline method gives on this model (zero baselines).
fn expected(x: &[f64], m: &[f64]) -> Vec<f64> {
    (0..12).map(|i| W[i % 3] * x[i] * m[i / 3]).collect()
}

fn get(a: firelight_core::Attributions) -> Vec<f64> {
    values(a.get("x").expect("attribution of x"))
}

#[test]
fn carried_inputs_follow_their_rows_in_every_method() {
    let model = scaled();
    let (inputs, x, m) = batch();
    let t = Target::class(0);
    let want = expected(&x, &m);
    for n in [1, 2, 3, 5] {
        let runs = [
            (
                "FeatureAblation",
                get(FeatureAblation::new(&model)
                    .perturbations_per_eval(n)
                    .attribute_inputs(&inputs, &t)
                    .unwrap()),
            ),
            (
                "Occlusion",
                get(Occlusion::new(&model, [1])
                    .perturbations_per_eval(n)
                    .attribute_inputs(&inputs, &t)
                    .unwrap()),
            ),
            (
                "ShapleyValues",
                get(ShapleyValues::new(&model)
                    .perturbations_per_eval(n)
                    .attribute_inputs(&inputs, &t)
                    .unwrap()),
            ),
            (
                "ShapleyValueSampling",
                get(ShapleyValueSampling::new(&model)
                    .n_samples(3)
                    .perturbations_per_eval(n)
                    .attribute_inputs(&inputs, &t)
                    .unwrap()),
            ),
            (
                "KernelShap",
                get(KernelShap::new(&model)
                    .interpretable_samples(vec![kernel_coalitions(3); 4])
                    .perturbations_per_eval(n)
                    .attribute_inputs(&inputs, &t)
                    .unwrap()),
            ),
        ];
        for (name, got) in runs {
            let d = max_abs_diff(&got, &want);
            assert!(d < 1e-4, "{name}, per_eval {n}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn permuted_features_keep_the_row_s_carried_input() {
    let model = scaled();
    let (inputs, x, m) = batch();
    let perms = vec![vec![1, 2, 3, 0], vec![3, 2, 1, 0], vec![2, 3, 0, 1]];
    for n in [1, 2, 4] {
        let got = get(FeaturePermutation::new(&model)
            .permutations(perms.clone())
            .perturbations_per_eval(n)
            .attribute_inputs(&inputs, &Target::class(0))
            .unwrap());
        // Row r's feature j comes from row perms[j][r]; the scale stays row r's.
        let want: Vec<f64> = (0..12)
            .map(|i| {
                let (r, j) = (i / 3, i % 3);
                W[j] * (x[i] - x[perms[j][r] * 3 + j]) * m[r]
            })
            .collect();
        assert_close(&got, &want, 1e-4);
    }
}

#[test]
fn integer_inputs_are_ablated_to_their_baseline() {
    // out = sum of table[token] over two token positions; ablation sets a token to id 0.
    let table = [0.0, 1.5, -2.0, 4.0];
    let model = FnModel {
        f: move |row: &[&[f64]]| vec![row[0].iter().map(|&t| table[t as usize]).sum()],
    };
    let tokens =
        Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 3, 2, 2], [2, 2]), &device());
    let inputs = Inputs::new().attributed_value("tokens", tokens);
    let got = values(
        FeatureAblation::new(&model)
            .attribute_inputs(&inputs, &Target::class(0))
            .unwrap()
            .get("tokens")
            .unwrap(),
    );
    assert_close(&got, &[1.5, 4.0, -2.0, -2.0], 1e-6);
}

#[test]
fn layer_feature_ablation_replaces_the_layer_value() {
    // hidden = x W1 (3 units), out = hidden W2: ablating unit j removes w2_j * hidden_j.
    let model = TwoLayer {
        w1: vec![vec![1.0, 0.0, 2.0], vec![0.5, -1.0, 1.0]],
        w2: vec![vec![3.0], vec![-1.0], vec![0.5]],
    };
    let x = tensor(vec![1.0, 2.0, -1.0, 0.5], vec![2, 2]);
    let hidden = [2.0, -2.0, 4.0, -0.75, -0.5, -1.5];
    let want: Vec<f64> = (0..6)
        .map(|i| hidden[i] * [3.0, -1.0, 0.5][i % 3])
        .collect();
    for n in [1, 2, 4] {
        let got = values(
            &LayerFeatureAblation::new(&model, "hidden")
                .unwrap()
                .perturbations_per_eval(n)
                .attribute(&x, &Target::class(0))
                .unwrap(),
        );
        assert_close(&got, &want, 1e-5);
    }
    // Units 0 and 2 as one feature: both get the sum of their contributions.
    let got = values(
        &LayerFeatureAblation::new(&model, "hidden")
            .unwrap()
            .layer_mask(FeatureMask::ids(vec![0, 1, 0], vec![1, 3]).unwrap())
            .attribute(&x, &Target::class(0))
            .unwrap(),
    );
    let (s0, s1) = (want[0] + want[2], want[3] + want[5]);
    assert_close(&got, &[s0, want[1], s0, s1, want[4], s1], 1e-5);
}
