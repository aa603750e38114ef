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

/// Weights from a `.safetensors` file (float32 tensors named by `state_dict` keys).
#[derive(Debug)]
pub struct SafetensorsWeights {
    path: PathBuf,
    bytes: Vec<u8>,
    entries: std::collections::HashMap<String, (Vec<usize>, std::ops::Range<usize>)>,
}

impl SafetensorsWeights {
    /// Reads and indexes `path`; every tensor is checked to lie inside the file.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |reason: String| Error::Model(format!("{}: {reason}", path.display()));
        if bytes.len() < 8 {
            return Err(bad("too short to be a safetensors file".into()));
        }
        let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| bad("header runs past the end of the file".into()))?;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not JSON ({e})")))?;
        let header = header
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let mut entries = std::collections::HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype = info["dtype"].as_str().unwrap_or("?");
            if dtype != "F32" {
                return Err(bad(format!(
                    "tensor `{name}` is {dtype}; only F32 is supported"
                )));
            }
            let shape: Vec<usize> = info["shape"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_u64().map(|d| d as usize))
                        .collect()
                })
                .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?;
            let offsets = info["data_offsets"]
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_u64()? as usize, a[1].as_u64()? as usize)))
                .ok_or_else(|| bad(format!("tensor `{name}` has no data_offsets")))?;
            let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let range = data_start + offsets.0..data_start.saturating_add(offsets.1);
            if offsets.0 > offsets.1
                || range.end > bytes.len()
                || count.and_then(|c| c.checked_mul(4)) != Some(range.len())
            {
                return Err(bad(format!(
                    "tensor `{name}` does not fit its shape or the file"
                )));
            }
            entries.insert(name.clone(), (shape, range));
        }
        Ok(Self {
            path,
            bytes,
            entries,
        })
    }
}

impl WeightSource for SafetensorsWeights {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (found, range) = self
            .entries
            .get(name)
            .ok_or_else(|| Error::Model(format!("{}: no tensor `{name}`", self.path.display())))?;
        if found != shape {
            return Err(Error::ShapeMismatch {
                what: format!("weight `{name}`"),
                expected: shape.to_vec(),
                got: found.clone(),
            });
        }
        Ok(self.bytes[range.clone()]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
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

/// A 2-D convolution with PyTorch's `[out, in, k, k]` weight, square kernel and padding.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    src: &mut dyn WeightSource,
    name: &str,
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
    device: &Device,
) -> Result<Conv2d> {
    let spec = ConvSpec {
        kernel,
        stride,
        padding,
        groups: 1,
        bias,
    };
    grouped_conv2d(src, name, channels, spec, device)
}

/// Shape of a convolution beyond its channels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

/// A 2-D convolution with PyTorch's `[out, in/groups, k, k]` weight.
pub(crate) fn grouped_conv2d(
    src: &mut dyn WeightSource,
    name: &str,
    [c_in, c_out]: [usize; 2],
    ConvSpec {
        kernel,
        stride,
        padding,
        groups,
        bias,
    }: ConvSpec,
    device: &Device,
) -> Result<Conv2d> {
    let weight = tensor(
        src,
        &format!("{name}.weight"),
        [c_out, c_in / groups, kernel, kernel],
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
        groups,
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
