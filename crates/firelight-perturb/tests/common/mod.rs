//! Tiny models for the perturbation tests: closures over host values, so every axiom has a
//! closed form to check against.
#![allow(dead_code)]

use burn::tensor::{Tensor, TensorData};
use firelight_core::{Device, DynTensor, Inputs, LayerInfo, Model, Result, Taps};

pub fn device() -> Device {
    Device::flex()
}

/// A model computing each row's outputs on the host: `f(row)` gets the row's values of every
/// input (attributed and carried, in order) and returns the row's outputs.
pub struct FnModel<F> {
    pub f: F,
}

impl<F: Fn(&[&[f64]]) -> Vec<f64>> Model for FnModel<F> {
    fn forward(&self, inputs: &Inputs, _taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let rows = inputs.batch()?;
        let values: Vec<(Vec<f64>, usize)> = inputs
            .iter()
            .map(|(_, v, _)| {
                let v = v?;
                let per_row = v.shape()[1..].iter().product::<usize>();
                Ok((v.to_f64s(), per_row))
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::new();
        let mut width = 0;
        for r in 0..rows {
            let row: Vec<&[f64]> = values.iter().map(|(v, n)| &v[r * n..(r + 1) * n]).collect();
            let y = (self.f)(&row);
            width = y.len();
            out.extend(y.into_iter().map(|v| v as f32));
        }
        Ok(Tensor::from_data(
            TensorData::new(out, [rows, width]),
            &device(),
        ))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        Vec::new()
    }
}

/// `out = w . x` (one output).
pub fn linear(w: Vec<f64>) -> FnModel<impl Fn(&[&[f64]]) -> Vec<f64>> {
    FnModel {
        f: move |row: &[&[f64]]| vec![row[0].iter().zip(&w).map(|(x, w)| x * w).sum()],
    }
}

/// A two-layer network with a tap: `hidden = W1 x` (tap "hidden"), `out = W2 hidden`.
pub struct TwoLayer {
    pub w1: Vec<Vec<f32>>,
    pub w2: Vec<Vec<f32>>,
}

impl Model for TwoLayer {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let x = inputs.single_float()?.into_rank::<2>()?;
        let dev = x.device();
        let to = |w: &Vec<Vec<f32>>| {
            let (r, c) = (w.len(), w[0].len());
            Tensor::<2>::from_data(
                TensorData::new(w.iter().flatten().copied().collect::<Vec<_>>(), [r, c]),
                &dev,
            )
        };
        let hidden = taps.tap("hidden", x.matmul(to(&self.w1)))?;
        Ok(hidden.matmul(to(&self.w2)))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::new("hidden", "Linear")]
    }
}

pub fn tensor(values: Vec<f32>, shape: Vec<usize>) -> DynTensor {
    DynTensor::from_vec(values, shape, &device()).unwrap()
}

pub fn values(t: &DynTensor) -> Vec<f64> {
    t.to_vec().unwrap().into_iter().map(f64::from).collect()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[track_caller]
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    let d = max_abs_diff(a, b);
    assert!(
        d <= tol,
        "max abs diff {d} > {tol}\n left: {a:?}\nright: {b:?}"
    );
}

/// All `2^m` coalitions of `m` features, each size-`k` one repeated so that its count is
/// proportional to the Shapley kernel `(m - 1) / (C(m, k) k (m - k))` (m = 3 or 4): KernelSHAP
/// fitted to them is exact.
pub fn kernel_coalitions(m: usize) -> Vec<Vec<bool>> {
    let repeats = |k: usize| match (m, k) {
        (3, _) => 1,
        (4, 2) => 1,
        (4, _) => 2,
        _ => panic!("only m = 3 or 4"),
    };
    let mut out = vec![vec![true; m], vec![false; m]];
    for c in 1..(1usize << m) - 1 {
        let z: Vec<bool> = (0..m).map(|j| c >> j & 1 == 1).collect();
        let k = z.iter().filter(|v| **v).count();
        for _ in 0..repeats(k) {
            out.push(z.clone());
        }
    }
    out
}
