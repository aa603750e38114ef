//! Activation maximisation with a known answer: a network whose one convolution holds one
//! oriented filter (diagonal stripes of +1 and -1); the picture that maximises the unit at the
//! centre shows that filter under the unit's receptive field.

mod common;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use common::*;
use firelight::grad::{ActivationMaximization, Objective};
use firelight::prelude::*;

const K: usize = 9;

/// Diagonal stripes, three pixels wide, the same in every colour channel.
fn stripes() -> Vec<f32> {
    (0..3 * K * K)
        .map(|i| {
            let (y, x) = ((i % (K * K)) / K, i % K);
            if (x + K - y) % 6 < 3 { 1.0 } else { -1.0 }
        })
        .collect()
}

struct OneFilter {
    weight: Tensor<4>,
}

impl Model for OneFilter {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> firelight::core::Result<Tensor<2>> {
        let x = inputs.single_float()?.into_rank::<4>()?;
        let y = conv2d(
            x,
            self.weight.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        let y = taps.tap("conv", y)?;
        let [b, _, h, w] = y.dims();
        Ok(y.reshape([b, h * w]).mean_dim(1))
    }
    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::new("conv", "Conv")]
    }
}

#[test]
fn the_picture_that_excites_an_oriented_filter_shows_that_filter() {
    let device = device();
    let weight = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(stripes(), [1, 3, K, K]),
        &device,
    );
    let model = OneFilter { weight };
    // A 33-pixel picture gives a 25 x 25 map; its centre unit sees pixels 12..21.
    let found = ActivationMaximization::new(
        &model,
        "conv",
        Objective::Neuron {
            channel: 0,
            y: 12,
            x: 12,
        },
    )
    .size(33)
    .steps(100)
    .jitter(0)
    .device(&device)
    .run()
    .unwrap();
    let image = values(&found.image);
    let patch: Vec<f32> = (0..K * K)
        .map(|i| {
            let (y, x) = (12 + i / K, 12 + i % K);
            (0..3).map(|c| image[(c * 33 + y) * 33 + x]).sum::<f32>() / 3.0
        })
        .collect();
    let filter = &stripes()[..K * K];
    let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let r = firelight::metrics::pearson(&to64(&patch), &to64(filter)) as f32;
    println!(
        "correlation of the picture with the filter: {r:.3}; objective {:.2} -> {:.2}",
        found.objective[0],
        found.objective.last().unwrap()
    );
    assert!(r > 0.8, "correlation {r}");
    assert!(found.objective.last().unwrap() > &found.objective[0]);
    // A channel the layer does not have is refused.
    let err = ActivationMaximization::new(&model, "conv", Objective::Channel(3))
        .size(33)
        .steps(1)
        .device(&device)
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("1 channels"), "{err}");
}
