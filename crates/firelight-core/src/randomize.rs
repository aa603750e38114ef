//! How sanity checks redraw learned weights (Adebayo et al. 2018), shared by every kind of model
//! that implements [`Randomizable`](crate::Randomizable): each tensor from a normal distribution
//! of its own mean and standard deviation (which keeps every layer's scale), seeded by the
//! check's seed, the layer's name and the tensor's place in the layer.

use crate::{Error, Result};

/// A seed from a layer's name (FNV-1a): the same layer gets the same draw whatever else is
/// redrawn with it.
pub fn layer_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The seed of the `index`-th learned tensor of `layer` under the check's `seed`.
pub fn tensor_seed(seed: u64, layer: &str, index: usize) -> u64 {
    seed ^ layer_seed(layer) ^ (index as u64 + 1)
}

/// `values` redrawn from a normal distribution of their own mean and standard deviation.
pub fn redraw_normal(values: &[f64], seed: u64) -> Result<Vec<f32>> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let normal = Normal::new(mean, std.max(1e-12))
        .map_err(|e| Error::Model(format!("redrawing weights: {e}")))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Ok((0..values.len())
        .map(|_| normal.sample(&mut rng) as f32)
        .collect())
}
