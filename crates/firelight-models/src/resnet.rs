//! ResNet-18 with torchvision's architecture and module names: the benchmark network.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use firelight_core::conv::conv2d_module;
use firelight_core::{Inputs, LayerInfo, Model, Result, Taps};

use crate::weights::{WeightSource, batch_norm, conv2d, linear};

#[derive(Debug)]
struct BasicBlock {
    name: String,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(
        src: &mut dyn WeightSource,
        name: String,
        [c_in, c_out]: [usize; 2],
        stride: usize,
        device: &Device,
    ) -> Result<Self> {
        let downsample = if stride != 1 || c_in != c_out {
            Some((
                conv2d(
                    src,
                    &format!("{name}.downsample.0"),
                    [c_in, c_out],
                    1,
                    stride,
                    0,
                    false,
                    device,
                )?,
                batch_norm(src, &format!("{name}.downsample.1"), c_out, device)?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv2d(
                src,
                &format!("{name}.conv1"),
                [c_in, c_out],
                3,
                stride,
                1,
                false,
                device,
            )?,
            bn1: batch_norm(src, &format!("{name}.bn1"), c_out, device)?,
            conv2: conv2d(
                src,
                &format!("{name}.conv2"),
                [c_out, c_out],
                3,
                1,
                1,
                false,
                device,
            )?,
            bn2: batch_norm(src, &format!("{name}.bn2"), c_out, device)?,
            downsample,
            name,
        })
    }

    fn forward(&self, x: Tensor<4>, taps: &mut Taps<'_>) -> Result<Tensor<4>> {
        let n = &self.name;
        let skip = match &self.downsample {
            Some((conv, bn)) => taps.tap(
                &format!("{n}.downsample"),
                bn.forward(conv2d_module(conv, x.clone())),
            )?,
            None => x.clone(),
        };
        let y = taps.tap(&format!("{n}.conv1"), conv2d_module(&self.conv1, x))?;
        let y = taps.tap(&format!("{n}.bn1"), self.bn1.forward(y))?;
        let y = taps.tap(&format!("{n}.relu1"), taps.relu(y))?;
        let y = taps.tap(&format!("{n}.conv2"), conv2d_module(&self.conv2, y))?;
        let y = taps.tap(&format!("{n}.bn2"), self.bn2.forward(y))?;
        let y = taps.tap(&format!("{n}.add"), y + skip)?;
        taps.tap(n, taps.relu(y))
    }

    fn layers(&self, out: &mut Vec<LayerInfo>) {
        let n = &self.name;
        if self.downsample.is_some() {
            out.push(LayerInfo::new(format!("{n}.downsample"), "Sequential"));
        }
        for (suffix, kind) in [
            ("conv1", "Conv2d"),
            ("bn1", "BatchNorm2d"),
            ("relu1", "Relu"),
            ("conv2", "Conv2d"),
            ("bn2", "BatchNorm2d"),
            ("add", "Add"),
        ] {
            out.push(LayerInfo::new(format!("{n}.{suffix}"), kind));
        }
        out.push(LayerInfo::new(n.clone(), "BasicBlock"));
    }
}

/// ResNet-18 (torchvision's architecture), input `[batch, 3, H, W]` with `H, W >= 32`,
/// output `[batch, classes]`.
///
/// Tap points: `conv1`, `bn1`, `relu`, `maxpool`, each block's `layerX.Y.{conv1,bn1,relu1,conv2,bn2,add}`
/// and output `layerX.Y`, `layerX` (the stage output, same value as its last block), `avgpool`, `fc`.
/// Weight names are torchvision's `state_dict` keys.
#[derive(Debug)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: MaxPoolOptions<2>,
    stages: Vec<Vec<BasicBlock>>,
    avgpool: AdaptiveAvgPool2d,
    fc: Linear,
}

impl ResNet18 {
    /// ResNet-18 with `classes` outputs and weights from `src`.
    pub fn new(src: &mut dyn WeightSource, classes: usize, device: &Device) -> Result<Self> {
        let widths = [64, 128, 256, 512];
        let mut c_in = 64;
        let mut stages = Vec::new();
        for (i, &width) in widths.iter().enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            stages.push(vec![
                BasicBlock::new(
                    src,
                    format!("layer{}.0", i + 1),
                    [c_in, width],
                    stride,
                    device,
                )?,
                BasicBlock::new(src, format!("layer{}.1", i + 1), [width, width], 1, device)?,
            ]);
            c_in = width;
        }
        Ok(Self {
            conv1: conv2d(src, "conv1", [3, 64], 7, 2, 3, false, device)?,
            bn1: batch_norm(src, "bn1", 64, device)?,
            maxpool: MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
            stages,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: linear(src, "fc", [512, classes], device)?,
        })
    }
}

impl Model for ResNet18 {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let input = inputs.single_float()?;
        let x = crate::check_image_input(input, 3, 32)?;
        let x = taps.tap("conv1", conv2d_module(&self.conv1, x))?;
        let x = taps.tap("bn1", self.bn1.forward(x))?;
        let x = taps.tap("relu", taps.relu(x))?;
        let mut x = taps.tap("maxpool", taps.max_pool2d(x, self.maxpool.clone()))?;
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                x = block.forward(x, taps)?;
            }
            x = taps.tap(&format!("layer{}", i + 1), x)?;
        }
        let x = taps.tap("avgpool", self.avgpool.forward(x))?;
        let [batch, channels, _, _] = x.dims();
        taps.tap("fc", self.fc.forward(x.reshape([batch, channels])))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = vec![
            LayerInfo::new("conv1", "Conv2d"),
            LayerInfo::new("bn1", "BatchNorm2d"),
            LayerInfo::new("relu", "Relu"),
            LayerInfo::new("maxpool", "MaxPool2d"),
        ];
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                block.layers(&mut out);
            }
            out.push(LayerInfo::new(format!("layer{}", i + 1), "Sequential"));
        }
        out.push(LayerInfo::new("avgpool", "AdaptiveAvgPool2d"));
        out.push(LayerInfo::new("fc", "Linear"));
        out
    }
}
