//! How faithful a map is to the model, as pytorch-grad-cam's `metrics` measure it: ROAD
//! (RemOve And Debias, Rong et al. 2022) with its noisy linear imputation, and the confidence change
//! when the image is multiplied by the map. Maps are `[batch, height, width]`, inputs
//! `[batch, channels, height, width]`; every score is the target's change, after minus before.

use burn::tensor::Tensor;
use firelight_core::{DynTensor, Error, Inputs, Model, Result, Taps, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Which pixels ROAD removes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoadOrder {
    /// MoRF: the most relevant pixels are imputed; a faithful map makes the score drop.
    MostRelevantFirst,
    /// LeRF: the least relevant pixels are imputed; a faithful map keeps the score.
    LeastRelevantFirst,
}

/// ROAD: impute a share of the pixels, ranked by the map, with noisy linear imputation, and see
/// how the target's score changes. pytorch-grad-cam's `ROADMostRelevantFirstAverage`,
/// `ROADLeastRelevantFirstAverage` and `ROADCombined`.
#[derive(Clone, Debug)]
pub struct Road {
    percentiles: Vec<f32>,
    noise: f32,
    seed: u64,
}

impl Default for Road {
    fn default() -> Self {
        Self {
            percentiles: vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
            noise: 0.01,
            seed: 0,
        }
    }
}

/// The eight neighbours and their weights in the imputation (pytorch-grad-cam's
/// `neighbors_weights`: 1/6 across edges, 1/12 across corners).
const NEIGHBOURS: [((isize, isize), f64); 8] = [
    ((1, 1), 1.0 / 12.0),
    ((0, 1), 1.0 / 6.0),
    ((-1, 1), 1.0 / 12.0),
    ((1, -1), 1.0 / 12.0),
    ((0, -1), 1.0 / 6.0),
    ((-1, -1), 1.0 / 12.0),
    ((1, 0), 1.0 / 6.0),
    ((-1, 0), 1.0 / 6.0),
];

impl Road {
    /// ROAD at percentiles 10, 20, ..., 90, imputation noise 0.01, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The percentiles of the map that split kept from imputed pixels; scores are averaged over
    /// them. As in pytorch-grad-cam, `p` keeps the `p` percent of pixels ranked last by the order
    /// and imputes the rest: MoRF at 10 imputes the 90% most relevant pixels.
    pub fn percentiles(mut self, percentiles: Vec<f32>) -> Self {
        self.percentiles = percentiles;
        self
    }

    /// Standard deviation of the noise added to imputed values (0 for none).
    pub fn noise(mut self, noise: f32) -> Self {
        self.noise = noise;
        self
    }

    /// Seed of the imputation noise.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<()> {
        if self.percentiles.is_empty()
            || self.percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
        {
            return Err(Error::parameter(
                "percentiles",
                format!("{:?}", self.percentiles),
                "give one or more values in [0, 100]",
            ));
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return Err(Error::parameter("noise", self.noise, "must be >= 0"));
        }
        Ok(())
    }

    /// The inputs with `percentile` percent of their pixels imputed, ranked by `maps` in `order`.
    pub fn perturb(
        &self,
        inputs: &DynTensor,
        maps: &DynTensor,
        order: RoadOrder,
        percentile: f32,
    ) -> Result<DynTensor> {
        self.check()?;
        let (n, c, h, w) = check_maps(inputs, maps)?;
        let images = inputs.to_vec()?;
        let maps = maps.to_vec()?;
        let mut rng = StdRng::seed_from_u64(self.seed ^ (percentile.to_bits() as u64));
        let mut out = Vec::with_capacity(images.len());
        for i in 0..n {
            let map = &maps[i * h * w..(i + 1) * h * w];
            let ranked: Vec<f32> = match order {
                RoadOrder::MostRelevantFirst => map.to_vec(),
                RoadOrder::LeastRelevantFirst => map.iter().map(|v| 1.0 - v).collect(),
            };
            let threshold = percentile_linear(&ranked, percentile);
            let keep: Vec<bool> = ranked.iter().map(|v| *v < threshold).collect();
            let image = &images[i * c * h * w..(i + 1) * c * h * w];
            out.extend(impute(image, &keep, c, h, w, self.noise, &mut rng));
        }
        DynTensor::from_vec(out, inputs.shape().to_vec(), &inputs.device())
    }

    /// The score change per input for one order, averaged over the percentiles.
    pub fn score(
        &self,
        model: &dyn Model,
        inputs: &DynTensor,
        maps: &DynTensor,
        target: &Target,
        order: RoadOrder,
    ) -> Result<Vec<f32>> {
        self.check()?;
        let before = scores(model, inputs, target)?;
        let mut sum = vec![0f32; inputs.batch()];
        for &percentile in &self.percentiles {
            let perturbed = self.perturb(inputs, maps, order, percentile)?;
            let after = scores(model, &perturbed, target)?;
            for ((s, a), b) in sum.iter_mut().zip(after).zip(&before) {
                *s += a - b;
            }
        }
        let count = self.percentiles.len() as f32;
        Ok(sum.into_iter().map(|s| s / count).collect())
    }

    /// pytorch-grad-cam's `ROADCombined`: `(LeRF - MoRF) / 2` per input; higher is more faithful.
    pub fn combined(
        &self,
        model: &dyn Model,
        inputs: &DynTensor,
        maps: &DynTensor,
        target: &Target,
    ) -> Result<Vec<f32>> {
        let lerf = self.score(model, inputs, maps, target, RoadOrder::LeastRelevantFirst)?;
        let morf = self.score(model, inputs, maps, target, RoadOrder::MostRelevantFirst)?;
        Ok(lerf.iter().zip(&morf).map(|(l, m)| (l - m) / 2.0).collect())
    }
}

/// pytorch-grad-cam's `CamMultImageConfidenceChange`: the target's change when each input is
/// multiplied by its map (broadcast over channels), per input.
pub fn cam_mult_image_confidence_change(
    model: &dyn Model,
    inputs: &DynTensor,
    maps: &DynTensor,
    target: &Target,
) -> Result<Vec<f32>> {
    let (n, c, h, w) = check_maps(inputs, maps)?;
    let before = scores(model, inputs, target)?;
    let images = inputs.clone().into_rank::<4>()?;
    let maps = maps.clone().into_rank::<3>()?.reshape([n, 1, h, w]);
    let multiplied = DynTensor::new(images * maps.expand([n, c, h, w]));
    let after = scores(model, &multiplied, target)?;
    Ok(after.iter().zip(&before).map(|(a, b)| a - b).collect())
}

fn scores(model: &dyn Model, inputs: &DynTensor, target: &Target) -> Result<Vec<f32>> {
    target.check_batch(inputs.batch())?;
    let outputs: Tensor<2> = model.forward(&Inputs::from(inputs), &mut Taps::none())?;
    let samples: Vec<usize> = (0..inputs.batch()).collect();
    DynTensor::new(target.scores(outputs, &samples)?).to_vec()
}

fn check_maps(inputs: &DynTensor, maps: &DynTensor) -> Result<(usize, usize, usize, usize)> {
    let shape = inputs.shape();
    if shape.len() != 4 {
        return Err(Error::RankMismatch {
            what: "inputs of a faithfulness metric ([batch, channels, height, width])".into(),
            expected: 4,
            got: shape.to_vec(),
        });
    }
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    if maps.shape() != [n, h, w] {
        return Err(Error::ShapeMismatch {
            what: "maps of a faithfulness metric (one [height, width] map per input)".into(),
            expected: vec![n, h, w],
            got: maps.shape().to_vec(),
        });
    }
    maps.check_finite("maps")?;
    Ok((n, c, h, w))
}

/// numpy's default `np.percentile` (linear interpolation between order statistics).
fn percentile_linear(values: &[f32], percentile: f32) -> f32 {
    let mut sorted: Vec<f32> = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let pos = percentile as f64 / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    (sorted[lo] as f64 + (sorted[hi] as f64 - sorted[lo] as f64) * frac) as f32
}

/// Noisy linear imputation of one image `[channels, h, w]`: each pixel not kept becomes the
/// weighted mean of its neighbours (solving the sparse system pytorch-grad-cam hands to scipy's
/// `spsolve`, here by conjugate gradients), plus `noise` times a standard normal draw.
fn impute(
    image: &[f32],
    keep: &[bool],
    channels: usize,
    h: usize,
    w: usize,
    noise: f32,
    rng: &mut StdRng,
) -> Vec<f32> {
    let unknown: Vec<usize> = (0..h * w).filter(|&p| !keep[p]).collect();
    let mut index = vec![usize::MAX; h * w];
    for (i, &p) in unknown.iter().enumerate() {
        index[p] = i;
    }
    let neighbours = |p: usize| {
        let (y, x) = ((p / w) as isize, (p % w) as isize);
        NEIGHBOURS.iter().filter_map(move |&((dy, dx), weight)| {
            let (ny, nx) = (y + dy, x + dx);
            (ny >= 0 && nx >= 0 && ny < h as isize && nx < w as isize)
                .then(|| (ny as usize * w + nx as usize, weight))
        })
    };
    // (D - W_uu) x = W_uk x_k: D is the weight of the pixel's in-image neighbours.
    let diagonal: Vec<f64> = unknown
        .iter()
        .map(|&p| neighbours(p).map(|(_, wt)| wt).sum())
        .collect();
    let links: Vec<Vec<(usize, f64)>> = unknown
        .iter()
        .map(|&p| {
            neighbours(p)
                .filter(|(q, _)| !keep[*q])
                .map(|(q, wt)| (index[q], wt))
                .collect()
        })
        .collect();
    let solve_channel = |plane: &[f32]| -> Vec<f64> {
        let rhs: Vec<f64> = unknown
            .iter()
            .map(|&p| {
                neighbours(p)
                    .filter(|(q, _)| keep[*q])
                    .map(|(q, wt)| wt * plane[q] as f64)
                    .sum()
            })
            .collect();
        if unknown.len() == h * w {
            // Nothing known to interpolate from: the system is singular; impute zeros.
            return vec![0.0; unknown.len()];
        }
        conjugate_gradients(&diagonal, &links, &rhs)
    };
    let plane = h * w;
    let solved: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..channels)
            .map(|c| {
                let plane_values = &image[c * plane..(c + 1) * plane];
                let solve = &solve_channel;
                scope.spawn(move || solve(plane_values))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = image.to_vec();
    // pytorch-grad-cam draws the noise as one [channels, unknown] array.
    for (c, values) in solved.iter().enumerate() {
        for (i, &p) in unknown.iter().enumerate() {
            let draw: f32 = if noise > 0.0 {
                StandardNormal.sample(rng)
            } else {
                0.0
            };
            out[c * plane + p] = values.get(i).copied().unwrap_or(0.0) as f32 + noise * draw;
        }
    }
    out
}

/// Solves `(D - L) x = b` (symmetric positive definite: diagonally dominant, with every component
/// of unknown pixels touching a known one) by conjugate gradients, to a relative residual of 1e-10.
fn conjugate_gradients(diagonal: &[f64], links: &[Vec<(usize, f64)>], b: &[f64]) -> Vec<f64> {
    let apply = |x: &[f64]| -> Vec<f64> {
        diagonal
            .iter()
            .zip(links)
            .enumerate()
            .map(|(i, (d, row))| d * x[i] - row.iter().map(|(j, wt)| wt * x[*j]).sum::<f64>())
            .collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    // Jacobi-preconditioned: the diagonal varies at the image's edges.
    let mut x: Vec<f64> = b.iter().zip(diagonal).map(|(v, d)| v / d).collect();
    let ax = apply(&x);
    let mut r: Vec<f64> = b.iter().zip(&ax).map(|(b, a)| b - a).collect();
    let mut z: Vec<f64> = r.iter().zip(diagonal).map(|(r, d)| r / d).collect();
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let tolerance = 1e-20 * dot(b, b).max(f64::MIN_POSITIVE);
    for _ in 0..20 * b.len().max(10) {
        if dot(&r, &r) <= tolerance {
            break;
        }
        let ap = apply(&p);
        let alpha = rz / dot(&p, &ap);
        x.iter_mut().zip(&p).for_each(|(x, p)| *x += alpha * p);
        r.iter_mut().zip(&ap).for_each(|(r, a)| *r -= alpha * a);
        z = r.iter().zip(diagonal).map(|(r, d)| r / d).collect();
        let rz_next = dot(&r, &z);
        let beta = rz_next / rz;
        rz = rz_next;
        p.iter_mut().zip(&z).for_each(|(p, z)| *p = z + beta * *p);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_percentiles() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile_linear(&v, 50.0), 2.5);
        assert_eq!(percentile_linear(&v, 0.0), 1.0);
        assert_eq!(percentile_linear(&v, 100.0), 4.0);
    }

    #[test]
    fn imputation_reproduces_a_linear_ramp() {
        // A plane a*x + b*y is harmonic under the symmetric stencil, so imputing the interior
        // from the border gives it back.
        let (h, w) = (6, 7);
        let image: Vec<f32> = (0..h * w)
            .map(|p| 0.5 * (p % w) as f32 - 0.25 * (p / w) as f32)
            .collect();
        let keep: Vec<bool> = (0..h * w)
            .map(|p| p % w == 0 || p % w == w - 1 || p / w == 0 || p / w == h - 1)
            .collect();
        let mut rng = StdRng::seed_from_u64(0);
        let out = impute(&image, &keep, 1, h, w, 0.0, &mut rng);
        for (a, b) in out.iter().zip(&image) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
