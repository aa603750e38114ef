//! Targets other than a class logit: probabilities, similarity to an embedding, closures.

mod common;

use common::*;
use firelight::models::{Mlp, RandomWeights};
use firelight::prelude::*;

fn model() -> Mlp {
    Mlp::new(&[4, 8, 5], &mut RandomWeights::new(11), &device()).unwrap()
}

fn scores(model: &Mlp, x: &DynTensor, target: &Target) -> Vec<f32> {
    let samples: Vec<usize> = (0..x.batch()).collect();
    values1(
        &target
            .scores(model.predict(&x.clone().into()).unwrap(), &samples)
            .unwrap(),
    )
}

#[test]
fn probability_target_is_the_softmax() {
    let model = model();
    let x = pseudo_random(&[3, 4], 1, 1.0);
    let logits = values(&DynTensor::new(model.predict(&x.clone().into()).unwrap()));
    let p = scores(&model, &x, &Target::probability(2));
    for (s, prob) in p.iter().enumerate() {
        let row = &logits[s * 5..s * 5 + 5];
        let z: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((prob - row[2].exp() / z).abs() < 1e-6);
    }
    // Completeness holds for any differentiable target.
    let (_, delta) = IntegratedGradients::new(&model)
        .n_steps(200)
        .attribute_with_convergence_delta(&x, &Target::probability(2))
        .unwrap();
    assert!(values1(&delta).iter().all(|d| d.abs() < 1e-3), "{delta}");
}

#[test]
fn cosine_targets_against_a_reference_embedding() {
    let model = model();
    let x = pseudo_random(&[2, 4], 2, 1.0);
    let reference = model
        .predict(&(pseudo_random(&[1, 4], 9, 1.0)).into())
        .unwrap()
        .reshape([5]);
    let r = values1(&reference);
    let out = values(&DynTensor::new(model.predict(&x.clone().into()).unwrap()));
    let sim = scores(&model, &x, &Target::CosineSimilarity(reference.clone()));
    let diff = scores(&model, &x, &Target::CosineDifference(reference.clone()));
    for s in 0..2 {
        let o = &out[s * 5..s * 5 + 5];
        let dot: f32 = o.iter().zip(&r).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        let cos = dot / (norm(o) * norm(&r));
        assert!((sim[s] - cos).abs() < 1e-5);
        assert!((diff[s] - (1.0 - cos)).abs() < 1e-5);
    }
    // The similarity of the reference input to itself is 1 and its gradient vanishes there.
    let own = pseudo_random(&[1, 4], 9, 1.0);
    let grads = Saliency::new(&model)
        .abs(false)
        .attribute(&own, &Target::CosineSimilarity(reference))
        .unwrap();
    assert!(
        values(&grads).iter().all(|g| g.abs() < 1e-4),
        "{:?}",
        values(&grads)
    );
}

#[test]
fn custom_target_closure_sees_each_rows_sample() {
    let model = model();
    let x = pseudo_random(&[2, 4], 3, 1.0);
    // Class 1 for sample 0 and class 4 for sample 1, written as a closure.
    let custom = Target::custom(|out: Tensor<2>, samples: &[usize]| {
        let [rows, width] = out.dims();
        let mask: Vec<f32> = samples
            .iter()
            .flat_map(|&s| (0..width).map(move |c| f32::from(c == [1, 4][s])))
            .collect();
        let mask = Tensor::<2>::from_data(
            firelight::core::burn::tensor::TensorData::new(mask, [rows, width]),
            &out.device(),
        );
        Ok((out * mask).sum_dim(1).reshape([rows]))
    });
    let builtin = Target::classes(vec![1, 4]);
    // IG expands the batch to steps x samples: the closure must keep each row with its sample.
    let ig = |t: &Target| {
        values(
            &IntegratedGradients::new(&model)
                .n_steps(8)
                .internal_batch_size(5)
                .attribute(&x, t)
                .unwrap(),
        )
    };
    assert!(max_abs_diff(&ig(&custom), &ig(&builtin)) < 1e-6);
}
