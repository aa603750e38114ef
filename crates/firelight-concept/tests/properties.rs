//! Properties of CAVs and scores on random data.

use burn::tensor::{Tensor, TensorData};
use firelight_concept::{Cav, CavTrainer, Classifier, score};
use firelight_core::{Device, DynTensor};
use proptest::prelude::*;

fn tensor(values: Vec<f32>, rows: usize, cols: usize) -> DynTensor {
    DynTensor::new(Tensor::<2>::from_data(
        TensorData::new(values, [rows, cols]),
        &Device::flex(),
    ))
}

fn cav(weights: Vec<Vec<f32>>) -> Cav {
    Cav {
        concepts: (0..weights.len()).map(|i| format!("c{i}")).collect(),
        layer: "l".into(),
        model: String::new(),
        classifier: Classifier::Sgd,
        bias: vec![0.0; weights.len()],
        weights,
        accuracy: None,
        test_examples: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn sign_count_is_a_share_and_two_concept_rows_are_opposite(
        grads in prop::collection::vec(-3.0f32..3.0, 5 * 4),
        w in prop::collection::vec(-1.0f32..1.0, 4),
    ) {
        let g = tensor(grads, 5, 4);
        let neg: Vec<f32> = w.iter().map(|v| -v).collect();
        let c = cav(vec![w, neg]);
        let s = score::scores(&g, &[&c]).unwrap();
        for t in &s[0] {
            prop_assert!((0.0..=1.0).contains(&t.sign_count));
        }
        prop_assert!((s[0][0].magnitude + s[0][1].magnitude).abs() < 1e-4);
        prop_assert!(s[0][0].sign_count + s[0][1].sign_count <= 1.0 + 1e-6);
    }

    #[test]
    fn fastcav_direction_ignores_scale_and_shift(
        a in prop::collection::vec(-2.0f32..2.0, 6 * 3),
        b in prop::collection::vec(-2.0f32..2.0, 6 * 3),
        scale in 0.1f32..10.0,
        shift in -5.0f32..5.0,
    ) {
        let trainer = CavTrainer { test_split_ratio: 0.0, ..CavTrainer::new(Classifier::FastCav) };
        let names = ["a".to_string(), "b".to_string()];
        let base = trainer.train(&names, &[&tensor(a.clone(), 6, 3), &tensor(b.clone(), 6, 3)], "l").unwrap();
        let t = |v: &[f32]| tensor(v.iter().map(|x| x * scale + shift).collect(), 6, 3);
        let moved = trainer.train(&names, &[&t(&a), &t(&b)], "l").unwrap();
        let dot: f32 = base.weights[0].iter().zip(&moved.weights[0]).map(|(x, y)| x * y).sum();
        let n1: f32 = base.weights[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        let n2: f32 = moved.weights[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        prop_assume!(n1 > 1e-3);
        prop_assert!((dot / (n1 * n2) - 1.0).abs() < 1e-3);
    }
}

#[test]
fn an_experimental_set_needs_two_concepts_of_one_width() {
    let t = CavTrainer::default();
    let a = tensor(vec![0.0; 6], 2, 3);
    let b = tensor(vec![0.0; 8], 2, 4);
    assert!(t.train(&["a".into()], &[&a], "l").is_err());
    assert!(t.train(&["a".into(), "b".into()], &[&a, &b], "l").is_err());
    let bad = CavTrainer {
        alpha: 0.0,
        ..CavTrainer::default()
    };
    assert!(
        bad.train(&["a".into(), "b".into()], &[&a, &a], "l")
            .is_err()
    );
}

#[test]
fn separable_concepts_give_perfect_held_out_accuracy_with_every_classifier() {
    let n = 30;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..n {
        let j = (i as f32 * 0.37).sin();
        a.extend([2.0 + j, 1.0 - j, 0.5]);
        b.extend([-2.0 + j, -1.0 - j, 0.5]);
    }
    let (a, b) = (tensor(a, n, 3), tensor(b, n, 3));
    for classifier in [Classifier::Sgd, Classifier::Logistic, Classifier::FastCav] {
        let cav = CavTrainer::new(classifier)
            .train(&["a".into(), "b".into()], &[&a, &b], "l")
            .unwrap();
        assert_eq!(cav.accuracy, Some(1.0), "{classifier:?}");
        assert!(
            cav.weights[0][0] > 0.0,
            "{classifier:?}: {:?}",
            cav.weights[0]
        );
        assert_eq!(cav.test_examples, 19);
    }
}
