//! firelight's convolution (`firelight::core::conv::conv2d`: Winograd F(2x2, 3x3) on flex for
//! 3x3 stride-1 layers, direct depthwise kernels) next to Burn's own `conv2d`, on the depthwise
//! layers of EfficientNet-B0 (`dw_` cases) and the 3x3 layers of ResNet-18 at 224x224: the
//! forward pass alone, and forward plus the input gradient (what Saliency and IG run).
//!
//! `cargo bench --bench conv [FILTER]` prints one line per case. Results: BENCHMARKS.md.

mod common;

use common::{case_filter, reps, time};

use firelight::core::burn::tensor::module::conv2d as burn_conv2d;
use firelight::core::burn::tensor::ops::ConvOptions;
use firelight::core::burn::tensor::{Tensor, TensorData};
use firelight::core::conv::conv2d;
use firelight::prelude::*;

type Conv = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;

fn filled<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn main() {
    let reps = reps();
    let filter = case_filter();
    // `FIRELIGHT_BENCH_ONLY=firelight|burn` times one side only (for a profile).
    let only = std::env::var("FIRELIGHT_BENCH_ONLY").unwrap_or_default();
    let device = Device::flex();
    println!("case                         batch  burn (s)  firelight (s)  speed-up");
    let run_case = |name: String,
                    batch: usize,
                    x: &Tensor<4>,
                    w: &Tensor<4>,
                    options: &dyn Fn() -> ConvOptions<2>,
                    backward: bool| {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            return;
        }
        let run = |conv: Conv| {
            time(reps, || {
                if backward {
                    let leaf = x.clone().autodiff().require_grad();
                    let grads = conv(leaf.clone(), w.clone(), None, options())
                        .sum()
                        .backward();
                    let _ = leaf.grad(&grads).expect("gradient").into_data();
                } else {
                    let _ = conv(x.clone(), w.clone(), None, options()).into_data();
                }
            })
            .as_secs_f64()
        };
        let theirs = if only == "firelight" {
            f64::NAN
        } else {
            run(burn_conv2d)
        };
        let ours = if only == "burn" {
            f64::NAN
        } else {
            run(conv2d)
        };
        println!(
            "{name:<28} {batch:>5}  {theirs:>8.4}  {ours:>13.4}  {:>8.2}",
            theirs / ours
        );
    };
    // EfficientNet-B0's depthwise layers (channels, input size, kernel, stride) at 224x224.
    for batch in [1usize, 8, 25] {
        for (channels, size, k, stride) in [
            (32usize, 112usize, 3usize, 1usize),
            (96, 112, 3, 2),
            (144, 56, 3, 1),
            (144, 56, 5, 2),
            (240, 28, 5, 1),
            (672, 14, 5, 1),
            (1152, 7, 5, 1),
        ] {
            let x = filled([batch, channels, size, size], &device);
            let w = filled([channels, 1, k, k], &device);
            let pad = (k - 1) / 2;
            let options = || ConvOptions::new([stride, stride], [pad, pad], [1, 1], channels);
            for backward in [false, true] {
                let name = format!(
                    "dw_{}_{channels}x{size}_k{k}s{stride}",
                    if backward { "fwd+grad" } else { "forward" }
                );
                run_case(name, batch, &x, &w, &options, backward);
            }
        }
    }
    for batch in [1usize, 8, 25] {
        for (channels, size) in [(64usize, 56usize), (128, 28), (256, 14), (512, 7)] {
            let x = filled([batch, channels, size, size], &device);
            let w = filled([channels, channels, 3, 3], &device);
            let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            for backward in [false, true] {
                let name = format!(
                    "{}_{channels}x{size}",
                    if backward { "fwd+grad" } else { "forward" }
                );
                run_case(name, batch, &x, &w, &options, backward);
            }
        }
    }
}
