//! MobileNetV2 with torchvision's architecture and module names: firelight's bundled ImageNet
//! classifier (weights converted from torchvision's checkpoint by `tools/models/export_mobilenet_v2.py`).

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Device, Tensor};
use firelight_core::conv::conv2d_module;
use firelight_core::{Inputs, LayerInfo, Model, Result, Taps};

use crate::weights::{ConvSpec, WeightSource, batch_norm, grouped_conv2d, linear};

/// Conv + batch norm, optionally followed by ReLU6 (torchvision's `Conv2dNormActivation`).
#[derive(Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
    relu6: bool,
}

impl ConvBn {
    /// `name.0` is the conv and `name.1` the batch norm, as in torchvision's `Sequential`s.
    fn new(
        src: &mut dyn WeightSource,
        [conv_name, bn_name]: [String; 2],
        channels: [usize; 2],
        spec: ConvSpec,
        relu6: bool,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            conv: grouped_conv2d(src, &conv_name, channels, spec, device)?,
            bn: batch_norm(src, &bn_name, channels[1], device)?,
            relu6,
        })
    }

    fn forward(&self, x: Tensor<4>, taps: &Taps<'_>) -> Tensor<4> {
        let y = self.bn.forward(conv2d_module(&self.conv, x));
        if self.relu6 {
            taps.nonlinear(y, |t| t.clamp(0.0, 6.0))
        } else {
            y
        }
    }
}

fn spec(kernel: usize, stride: usize, groups: usize) -> ConvSpec {
    ConvSpec {
        kernel,
        stride,
        padding: (kernel - 1) / 2,
        groups,
        bias: false,
    }
}

/// One inverted residual block: expand (1x1), depthwise (3x3), project (1x1), with a skip when
/// shapes allow.
#[derive(Debug)]
struct InvertedResidual {
    layers: Vec<ConvBn>,
    residual: bool,
}

impl InvertedResidual {
    fn new(
        src: &mut dyn WeightSource,
        name: &str,
        [c_in, c_out]: [usize; 2],
        stride: usize,
        expand: usize,
        device: &Device,
    ) -> Result<Self> {
        let hidden = c_in * expand;
        let mut layers = Vec::new();
        let mut index = 0;
        let pair = |i: usize| [format!("{name}.conv.{i}.0"), format!("{name}.conv.{i}.1")];
        if expand != 1 {
            layers.push(ConvBn::new(
                src,
                pair(index),
                [c_in, hidden],
                spec(1, 1, 1),
                true,
                device,
            )?);
            index += 1;
        }
        layers.push(ConvBn::new(
            src,
            pair(index),
            [hidden, hidden],
            spec(3, stride, hidden),
            true,
            device,
        )?);
        index += 1;
        // The projection is a bare conv and a batch norm at consecutive indices.
        layers.push(ConvBn::new(
            src,
            [
                format!("{name}.conv.{index}"),
                format!("{name}.conv.{}", index + 1),
            ],
            [hidden, c_out],
            spec(1, 1, 1),
            false,
            device,
        )?);
        Ok(Self {
            layers,
            residual: stride == 1 && c_in == c_out,
        })
    }

    fn forward(&self, x: Tensor<4>, taps: &Taps<'_>) -> Tensor<4> {
        let y = self
            .layers
            .iter()
            .fold(x.clone(), |y, layer| layer.forward(y, taps));
        if self.residual { y + x } else { y }
    }
}

#[derive(Debug)]
enum Stage {
    Conv(Box<ConvBn>),
    Block(InvertedResidual),
}

/// torchvision's `mobilenet_v2()`: input `[batch, 3, H, W]` (224x224 for ImageNet, normalised
/// with ImageNet's mean and std), output 1000 logits.
///
/// Tap points: `features.0` ... `features.18` (each stage's output; `features.18` is the last
/// convolutional feature map, 1280 x 7 x 7), `avgpool` and `classifier`.
#[derive(Debug)]
pub struct MobileNetV2 {
    features: Vec<Stage>,
    avgpool: AdaptiveAvgPool2d,
    classifier: Linear,
}

/// torchvision's `inverted_residual_setting`: expansion, channels, repeats, first stride.
const SETTINGS: [[usize; 4]; 7] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
];

impl MobileNetV2 {
    /// MobileNetV2 with `classes` outputs and weights from `src` (torchvision's key names).
    pub fn new(src: &mut dyn WeightSource, classes: usize, device: &Device) -> Result<Self> {
        let pair = |i: usize| [format!("features.{i}.0"), format!("features.{i}.1")];
        let mut features = vec![Stage::Conv(Box::new(ConvBn::new(
            src,
            pair(0),
            [3, 32],
            spec(3, 2, 1),
            true,
            device,
        )?))];
        let mut c_in = 32;
        for [expand, c_out, repeats, first_stride] in SETTINGS {
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let name = format!("features.{}", features.len());
                features.push(Stage::Block(InvertedResidual::new(
                    src,
                    &name,
                    [c_in, c_out],
                    stride,
                    expand,
                    device,
                )?));
                c_in = c_out;
            }
        }
        let last = features.len();
        features.push(Stage::Conv(Box::new(ConvBn::new(
            src,
            pair(last),
            [c_in, 1280],
            spec(1, 1, 1),
            true,
            device,
        )?)));
        Ok(Self {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: linear(src, "classifier.1", [1280, classes], device)?,
        })
    }
}

impl Model for MobileNetV2 {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let input = inputs.single_float()?;
        let mut x = crate::check_image_input(input, 3, 32)?;
        for (i, stage) in self.features.iter().enumerate() {
            let y = match stage {
                Stage::Conv(c) => c.forward(x, taps),
                Stage::Block(b) => b.forward(x, taps),
            };
            x = taps.tap(&format!("features.{i}"), y)?;
        }
        let x = taps.tap("avgpool", self.avgpool.forward(x))?;
        let [batch, channels, _, _] = x.dims();
        taps.tap(
            "classifier",
            self.classifier.forward(x.reshape([batch, channels])),
        )
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out: Vec<LayerInfo> = self
            .features
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let kind = match stage {
                    Stage::Conv(_) => "Conv2dNormActivation",
                    Stage::Block(_) => "InvertedResidual",
                };
                LayerInfo::new(format!("features.{i}"), kind)
            })
            .collect();
        out.push(LayerInfo::new("avgpool", "AdaptiveAvgPool2d"));
        out.push(LayerInfo::new("classifier", "Linear"));
        out
    }
}
