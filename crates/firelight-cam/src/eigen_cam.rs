//! Eigen-CAM (Muhammad & Yeasin 2020) and EigenGrad-CAM: the activations' (or gradient x
//! activations') first principal component, projected back onto the spatial grid.

use burn::tensor::{Tensor, TensorData};

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues};

/// Eigen-CAM: per image, the centred `[h*w, channels]` activation matrix projected on its first
/// right singular vector. Gradients are not used.
#[derive(Clone, Copy, Debug, Default)]
pub struct EigenCam;

/// EigenGrad-CAM: Eigen-CAM of `gradients * activations`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EigenGradCam;

impl CamWeighting for EigenCam {
    fn name(&self) -> &'static str {
        "EigenCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        Ok(layer.activations.clone())
    }

    /// Always the first principal component (`eigen_smooth` changes nothing).
    fn cam_image(&self, layer: &LayerValues, _eigen_smooth: bool) -> Result<Tensor<3>> {
        Ok(first_component(self.weighted_activations(layer)?))
    }
}

impl CamWeighting for EigenGradCam {
    fn name(&self) -> &'static str {
        "EigenGradCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        Ok(layer.gradients()? * layer.activations.clone())
    }

    /// Always the first principal component (`eigen_smooth` changes nothing).
    fn cam_image(&self, layer: &LayerValues, _eigen_smooth: bool) -> Result<Tensor<3>> {
        Ok(first_component(self.weighted_activations(layer)?))
    }
}

/// pytorch-grad-cam's `get_2d_projection`, per image. A singular vector's sign is arbitrary (numpy
/// takes whatever LAPACK returns); here it is fixed so that the projection agrees with the summed
/// activations, so that the map marks where the layer responds.
pub fn first_component(values: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = values.dims();
    let device = values.device();
    let data: Vec<f32> = values
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let pixels = h * w;
    let mut out = Vec::with_capacity(n * pixels);
    for image in data.chunks(c * pixels) {
        // r[p][k]: pixel p, channel k, NaN as 0, each channel centred over the pixels.
        let mut r = vec![0f64; pixels * c];
        for k in 0..c {
            let column: Vec<f64> = (0..pixels)
                .map(|p| image[k * pixels + p] as f64)
                .map(|v| if v.is_nan() { 0.0 } else { v })
                .collect();
            let mean = column.iter().sum::<f64>() / pixels.max(1) as f64;
            for (p, v) in column.into_iter().enumerate() {
                r[p * c + k] = v - mean;
            }
        }
        // The projection r v1 equals sqrt(lambda1) u1, with u1 the top eigenvector of r r^T
        // (pixels x pixels, small for CAM layers); power iteration finds it.
        let gram: Vec<f64> = (0..pixels * pixels)
            .map(|ij| {
                let (i, j) = (ij / pixels, ij % pixels);
                (0..c).map(|k| r[i * c + k] * r[j * c + k]).sum()
            })
            .collect();
        let mut u: Vec<f64> = (0..pixels)
            .map(|p| 1.0 + (p as f64 * 0.618).fract())
            .collect();
        let mut lambda = 0.0;
        for _ in 0..1000 {
            let next: Vec<f64> = (0..pixels)
                .map(|i| (0..pixels).map(|j| gram[i * pixels + j] * u[j]).sum())
                .collect();
            let norm = next.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            let next: Vec<f64> = next.into_iter().map(|v| v / norm).collect();
            let change: f64 = next.iter().zip(&u).map(|(a, b)| (a - b).abs()).sum();
            u = next;
            lambda = norm;
            if change < 1e-12 {
                break;
            }
        }
        let sum_map: Vec<f64> = (0..pixels)
            .map(|p| (0..c).map(|k| image[k * pixels + p] as f64).sum())
            .collect();
        let agreement: f64 = u.iter().zip(&sum_map).map(|(a, b)| a * b).sum();
        let sign = if agreement < 0.0 { -1.0 } else { 1.0 };
        out.extend(u.iter().map(|v| (sign * lambda.sqrt() * v) as f32));
    }
    Tensor::<1>::from_data(TensorData::new(out, [n * pixels]), &device).reshape([n, h, w])
}
