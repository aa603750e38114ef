//! A small CNN with batch norm, pooling and a residual add: the parity model for Captum fixtures.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use firelight_core::conv::conv2d_module;
use firelight_core::{Inputs, LayerInfo, Model, Result, Taps};

use crate::weights::{WeightSource, batch_norm, conv2d, linear};

/// Input `[batch, 3, 16, 16]` (any size divisible by 2 works), output `[batch, 10]`:
///
/// ```text
/// conv1(3->8) bn1 relu1
/// layer1: conv1(8->8) bn1 relu1 conv2(8->8) bn2 (+ skip) add relu2
/// maxpool(2) conv2(8->16) relu2 avgpool fc(16->10)
/// ```
///
/// Tap points and weights carry the PyTorch module names of `tools/parity/models.py`.
#[derive(Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    block_conv1: Conv2d,
    block_bn1: BatchNorm,
    block_conv2: Conv2d,
    block_bn2: BatchNorm,
    maxpool: MaxPoolOptions<2>,
    conv2: Conv2d,
    avgpool: AdaptiveAvgPool2d,
    fc: Linear,
}

/// Number of classes of [`SmallCnn`].
pub const SMALL_CNN_CLASSES: usize = 10;

const LAYERS: &[(&str, &str)] = &[
    ("conv1", "Conv2d"),
    ("bn1", "BatchNorm2d"),
    ("relu1", "Relu"),
    ("layer1.conv1", "Conv2d"),
    ("layer1.bn1", "BatchNorm2d"),
    ("layer1.relu1", "Relu"),
    ("layer1.conv2", "Conv2d"),
    ("layer1.bn2", "BatchNorm2d"),
    ("layer1.add", "Add"),
    ("layer1.relu2", "Relu"),
    ("maxpool", "MaxPool2d"),
    ("conv2", "Conv2d"),
    ("relu2", "Relu"),
    ("avgpool", "AdaptiveAvgPool2d"),
    ("fc", "Linear"),
];

impl SmallCnn {
    /// The network with weights from `src`.
    pub fn new(src: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        Ok(Self {
            conv1: conv2d(src, "conv1", [3, 8], 3, 1, 1, true, device)?,
            bn1: batch_norm(src, "bn1", 8, device)?,
            block_conv1: conv2d(src, "layer1.conv1", [8, 8], 3, 1, 1, false, device)?,
            block_bn1: batch_norm(src, "layer1.bn1", 8, device)?,
            block_conv2: conv2d(src, "layer1.conv2", [8, 8], 3, 1, 1, false, device)?,
            block_bn2: batch_norm(src, "layer1.bn2", 8, device)?,
            maxpool: MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
            conv2: conv2d(src, "conv2", [8, 16], 3, 1, 1, true, device)?,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: linear(src, "fc", [16, SMALL_CNN_CLASSES], device)?,
        })
    }
}

impl Model for SmallCnn {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let input = inputs.single_float()?;
        let x = crate::check_image_input(input, 3, 2)?;
        let x = taps.tap("conv1", conv2d_module(&self.conv1, x))?;
        let x = taps.tap("bn1", self.bn1.forward(x))?;
        let x = taps.tap("relu1", taps.relu(x))?;

        let skip = x.clone();
        let y = taps.tap("layer1.conv1", conv2d_module(&self.block_conv1, x))?;
        let y = taps.tap("layer1.bn1", self.block_bn1.forward(y))?;
        let y = taps.tap("layer1.relu1", taps.relu(y))?;
        let y = taps.tap("layer1.conv2", conv2d_module(&self.block_conv2, y))?;
        let y = taps.tap("layer1.bn2", self.block_bn2.forward(y))?;
        let y = taps.tap("layer1.add", y + skip)?;
        let x = taps.tap("layer1.relu2", taps.relu(y))?;

        let x = taps.tap("maxpool", taps.max_pool2d(x, self.maxpool.clone()))?;
        let x = taps.tap("conv2", conv2d_module(&self.conv2, x))?;
        let x = taps.tap("relu2", taps.relu(x))?;
        let x = taps.tap("avgpool", self.avgpool.forward(x))?;
        let [batch, channels, _, _] = x.dims();
        let x = x.reshape([batch, channels]);
        taps.tap("fc", self.fc.forward(x))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        LAYERS.iter().map(|(n, k)| LayerInfo::new(*n, *k)).collect()
    }
}
