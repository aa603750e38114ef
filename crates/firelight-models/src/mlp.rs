//! A multi-layer perceptron; with two sizes it is a plain linear model.

use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use firelight_core::{Inputs, LayerInfo, Model, Result, Taps};

use crate::weights::{WeightSource, linear};

/// `fc1 -> relu1 -> fc2 -> relu2 -> ... -> fcN`, input `[batch, sizes[0]]`, output `[batch, sizes[N]]`.
///
/// Tap points: `fc{i}` and `relu{i}`. Weights are named as PyTorch names `nn.Linear` layers
/// `fc1`, `fc2`, ... (`fc1.weight` is `[out, in]`).
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    sizes: Vec<usize>,
}

impl Mlp {
    /// An MLP with layer widths `sizes` (at least two), weights from `src`.
    pub fn new(sizes: &[usize], src: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(firelight_core::Error::parameter(
                "sizes",
                format!("{sizes:?}"),
                "an MLP needs at least an input and an output width, all non-zero",
            ));
        }
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(src, &format!("fc{}", i + 1), [w[0], w[1]], device))
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            sizes: sizes.to_vec(),
        })
    }

    /// The weight of a linear model (`sizes.len() == 2`) as `[out, in]`, PyTorch's layout.
    pub fn first_weight(&self) -> Tensor<2> {
        self.layers[0].weight.val().transpose()
    }
}

impl Model for Mlp {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let input = inputs.single_float()?;
        self.check_inputs(inputs)?;
        let mut x = input.into_rank::<2>()?;
        let last = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            x = taps.tap(&format!("fc{}", i + 1), layer.forward(x))?;
            if i + 1 < last {
                x = taps.tap(&format!("relu{}", i + 1), taps.relu(x))?;
            }
        }
        Ok(x)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let last = self.layers.len();
        (1..=last)
            .flat_map(|i| {
                let mut v = vec![LayerInfo::new(format!("fc{i}"), "Linear")];
                if i < last {
                    v.push(LayerInfo::new(format!("relu{i}"), "Relu"));
                }
                v
            })
            .collect()
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        Some(vec![self.sizes[0]])
    }
}
