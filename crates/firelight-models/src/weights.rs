//! Where a model's weights come from: a seeded random draw or a folder of `.npy` files.

use std::path::PathBuf;

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use firelight_core::npy::read_npy;
use firelight_core::{Error, Result};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Supplies each named parameter of a model, in PyTorch's layout and `state_dict` names
/// (`conv1.weight` is `[out, in, kh, kw]`, `fc.weight` is `[out, in]`).
pub trait WeightSource {
    /// The values of parameter `name` with `shape`, row-major.
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

/// Seeded random weights: uniform in `±1/sqrt(fan_in)` (PyTorch's default range) for weights and
/// biases, and non-trivial batch-norm statistics so that no layer is an identity.
#[derive(Debug)]
pub struct RandomWeights {
    rng: StdRng,
}

impl RandomWeights {
    /// Random weights drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl WeightSource for RandomWeights {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let count: usize = shape.iter().product();
        let fan_in = shape.iter().skip(1).product::<usize>().max(1) as f32;
        let (low, high) = if name.ends_with("running_var") || is_bn_gamma(name) {
            (0.5, 1.5)
        } else if name.ends_with("running_mean") || is_bn_beta(name) {
            (-0.2, 0.2)
        } else {
            let bound = 1.0 / fan_in.sqrt();
            (-bound, bound)
        };
        Ok((0..count)
            .map(|_| self.rng.random_range(low..high))
            .collect())
    }
}

fn is_bn_gamma(name: &str) -> bool {
    name.ends_with(".weight") && name.rsplit('.').nth(1).is_some_and(|m| m.starts_with("bn"))
}

fn is_bn_beta(name: &str) -> bool {
    name.ends_with(".bias") && name.rsplit('.').nth(1).is_some_and(|m| m.starts_with("bn"))
}

/// Weights read from `<dir>/<name>.npy`, one file per `state_dict` entry.
#[derive(Debug)]
pub struct NpyWeights {
    dir: PathBuf,
}

impl NpyWeights {
    /// Weights from the folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl WeightSource for NpyWeights {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let array = read_npy(self.dir.join(format!("{name}.npy")))?;
        if array.shape != shape {
            return Err(Error::ShapeMismatch {
                what: format!("weight `{name}`"),
                expected: shape.to_vec(),
                got: array.shape,
            });
        }
        Ok(array.data)
    }
}

pub(crate) fn tensor<const D: usize>(
    src: &mut dyn WeightSource,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    let values = src.values(name, &shape)?;
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// A 2-D convolution with PyTorch's `[out, in/groups, k, k]` weight, square kernel and padding.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    src: &mut dyn WeightSource,
    name: &str,
    [c_in, c_out]: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
    device: &Device,
) -> Result<Conv2d> {
    let weight = tensor(
        src,
        &format!("{name}.weight"),
        [c_out, c_in, kernel, kernel],
        device,
    )?;
    let bias = if bias {
        Some(Param::from_tensor(tensor(
            src,
            &format!("{name}.bias"),
            [c_out],
            device,
        )?))
    } else {
        None
    };
    Ok(Conv2d {
        weight: Param::from_tensor(weight),
        bias,
        stride: [stride, stride],
        kernel_size: [kernel, kernel],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(padding, padding, padding, padding),
    })
}

/// Batch normalisation in inference mode (running statistics), as `model.eval()` in PyTorch.
pub(crate) fn batch_norm(
    src: &mut dyn WeightSource,
    name: &str,
    channels: usize,
    device: &Device,
) -> Result<BatchNorm> {
    let mut bn = burn::nn::BatchNormConfig::new(channels).init(device);
    bn.gamma = Param::from_tensor(tensor(src, &format!("{name}.weight"), [channels], device)?);
    bn.beta = Param::from_tensor(tensor(src, &format!("{name}.bias"), [channels], device)?);
    bn.running_mean = RunningState::new(tensor(
        src,
        &format!("{name}.running_mean"),
        [channels],
        device,
    )?);
    bn.running_var = RunningState::new(tensor(
        src,
        &format!("{name}.running_var"),
        [channels],
        device,
    )?);
    // Explaining a model means explaining its inference behaviour, even on an autodiff device.
    bn.training = Param::from_bool(false);
    Ok(bn)
}

/// A linear layer from PyTorch's `[out, in]` weight (Burn stores `[in, out]`).
pub(crate) fn linear(
    src: &mut dyn WeightSource,
    name: &str,
    [d_in, d_out]: [usize; 2],
    device: &Device,
) -> Result<Linear> {
    let weight = tensor(src, &format!("{name}.weight"), [d_out, d_in], device)?.transpose();
    let bias = tensor(src, &format!("{name}.bias"), [d_out], device)?;
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    })
}
