//! Occlusion (Zeiler & Fergus 2014): a window slides over the input; every element's attribution
//! is the mean drop of the target's score over the windows that covered it.

use firelight_core::{Attribution, Attributions, Baseline, Error, Inputs, Model, Result, Target};

use crate::base::{Copy, Explained, Fill, Progress, check_per_eval, scores};

/// Captum's `Occlusion`: a window of `sliding_window_shapes` (one size per axis of a sample,
/// channels included) moves over each attributed input in steps of `strides`; each position is
/// set to the baseline and scored. Along an axis of size `D`, a window `W` with stride `s` takes
/// `ceil((D - W) / s) + 1` positions starting at `0, s, 2s, ...`; a window that runs past the end
/// is cut at the edge. An element's attribution is the mean of `f(x) - f(x occluded)` over the
/// windows that cover it.
///
/// Defaults as Captum: strides 1, zero baselines, `perturbations_per_eval = 1`. A window larger
/// than the input, a zero size, or a stride larger than its window (on an axis the window does
/// not span) is an error.
pub struct Occlusion<'m> {
    model: &'m dyn Model,
    windows: Vec<Vec<usize>>,
    strides: Vec<Vec<usize>>,
    baselines: Baseline,
    perturbations_per_eval: usize,
    progress: Progress<'m>,
}

/// The window positions over one input.
struct Windows {
    shape: Vec<usize>,
    window: Vec<usize>,
    stride: Vec<usize>,
    counts: Vec<usize>,
}

impl Windows {
    fn new(input: usize, sample: &[usize], window: &[usize], stride: &[usize]) -> Result<Self> {
        let axes = sample.len();
        let stride: Vec<usize> = match stride {
            [] => vec![1; axes],
            [s] => vec![*s; axes],
            s => s.to_vec(),
        };
        if window.len() != axes || stride.len() != axes {
            return Err(Error::parameter(
                "sliding_window_shapes",
                format!("window {window:?}, strides {stride:?}"),
                format!(
                    "attributed input {input} has samples of shape {sample:?}: give one window \
                     size and one stride per axis ({axes}), channels included"
                ),
            ));
        }
        let mut counts = Vec::with_capacity(axes);
        for d in 0..axes {
            let (size, w, s) = (sample[d], window[d], stride[d]);
            if w == 0 || s == 0 {
                return Err(Error::parameter(
                    "sliding_window_shapes",
                    format!("window {window:?}, strides {stride:?}"),
                    "window sizes and strides must be at least 1",
                ));
            }
            if w > size {
                return Err(Error::parameter(
                    "sliding_window_shapes",
                    format!("{window:?}"),
                    format!(
                        "the window is larger than attributed input {input}'s samples \
                         {sample:?} on axis {}",
                        d + 1
                    ),
                ));
            }
            if s > w && size != w {
                return Err(Error::parameter(
                    "strides",
                    format!("{stride:?}"),
                    format!(
                        "stride {s} is larger than the window {w} on axis {}: elements \
                         between windows would never be occluded",
                        d + 1
                    ),
                ));
            }
            counts.push((size - w).div_ceil(s) + 1);
        }
        Ok(Self {
            shape: sample.to_vec(),
            window: window.to_vec(),
            stride,
            counts,
        })
    }

    fn len(&self) -> usize {
        self.counts.iter().product()
    }

    /// Which elements window `k` covers (the first axis varies fastest over `k`, as Captum).
    fn covers(&self, k: usize) -> Vec<bool> {
        let axes = self.shape.len();
        let mut rest = k;
        let mut lo = vec![0; axes];
        let mut hi = vec![0; axes];
        for d in 0..axes {
            lo[d] = (rest % self.counts[d]) * self.stride[d];
            hi[d] = (lo[d] + self.window[d]).min(self.shape[d]);
            rest /= self.counts[d];
        }
        let features: usize = self.shape.iter().product();
        (0..features)
            .map(|e| {
                let mut rest = e;
                (0..axes).rev().all(|d| {
                    let at = rest % self.shape[d];
                    rest /= self.shape[d];
                    (lo[d]..hi[d]).contains(&at)
                })
            })
            .collect()
    }
}

impl<'m> Occlusion<'m> {
    /// Occlusion of `model` with windows of `sliding_window_shapes` (one size per axis of a
    /// sample, e.g. `[3, 8, 8]` for images) over every attributed input, Captum's defaults.
    pub fn new(model: &'m dyn Model, sliding_window_shapes: impl Into<Vec<usize>>) -> Self {
        Self {
            model,
            windows: vec![sliding_window_shapes.into()],
            strides: vec![Vec::new()],
            baselines: Baseline::Zeros,
            perturbations_per_eval: 1,
            progress: Progress::default(),
        }
    }

    /// One window shape per attributed input, in order.
    pub fn sliding_window_shapes_per_input(mut self, windows: Vec<Vec<usize>>) -> Self {
        self.windows = windows;
        self
    }

    /// The step between window positions: one per axis, or a single value for every axis
    /// (default 1), for every attributed input.
    pub fn strides(mut self, strides: impl Into<Vec<usize>>) -> Self {
        self.strides = vec![strides.into()];
        self
    }

    /// Strides per attributed input, in order (each one per axis, or a single value).
    pub fn strides_per_input(mut self, strides: Vec<Vec<usize>>) -> Self {
        self.strides = strides;
        self
    }

    /// The values occluded elements take (default zeros).
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Occluded copies of the batch per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// Called with `(done, total)` window positions after each forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }

    fn per_input<'a>(
        what: &'static str,
        given: &'a [Vec<usize>],
        inputs: usize,
    ) -> Result<Vec<&'a [usize]>> {
        match given.len() {
            1 => Ok(vec![given[0].as_slice(); inputs]),
            n if n == inputs => Ok(given.iter().map(Vec::as_slice).collect()),
            n => Err(Error::parameter(
                what,
                format!("{n} given"),
                format!("give one, or one per attributed input ({inputs})"),
            )),
        }
    }
}

impl Attribution for Occlusion<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        check_per_eval(self.perturbations_per_eval)?;
        let explained =
            Explained::new(self.model, inputs, samples)?.with_baselines(&self.baselines)?;
        let count = explained.values.len();
        let windows = Self::per_input("sliding_window_shapes", &self.windows, count)?;
        let strides = Self::per_input("strides", &self.strides, count)?;
        let grids = explained
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| Windows::new(i, &v.shape[1..], windows[i], strides[i]))
            .collect::<Result<Vec<_>>>()?;
        // Perturbation p is window `p - starts[i]` of input i.
        let mut starts = Vec::with_capacity(count);
        let mut total = 0;
        for g in &grids {
            starts.push(total);
            total += g.len();
        }
        let locate = |p: usize| {
            let i = starts.iter().rposition(|&s| s <= p).expect("p >= 0");
            (i, p - starts[i])
        };
        let rows = explained.rows;
        let f0 = explained.scores(self.model, target)?;
        let scores = scores(
            self.model,
            target,
            total,
            self.perturbations_per_eval,
            &self.progress,
            |range| {
                let covers: Vec<(usize, Vec<bool>)> = range
                    .clone()
                    .map(|p| {
                        let (i, k) = locate(p);
                        (i, grids[i].covers(k))
                    })
                    .collect();
                let copies: Vec<Copy> = range
                    .clone()
                    .flat_map(|_| {
                        (0..rows).map(|r| Copy {
                            row: r,
                            fill: Fill::Baseline,
                        })
                    })
                    .collect();
                explained.perturbed(&copies, |c, i, e| {
                    let (input, covered) = &covers[c / rows];
                    *input == i && covered[e]
                })
            },
        )?;
        let mut sums: Vec<Vec<f64>> = explained
            .values
            .iter()
            .map(|v| vec![0.0; rows * v.features])
            .collect();
        let mut counts: Vec<Vec<u32>> = explained
            .values
            .iter()
            .map(|v| vec![0; v.features])
            .collect();
        for p in 0..total {
            let (i, k) = locate(p);
            let features = explained.values[i].features;
            for (e, _) in grids[i].covers(k).iter().enumerate().filter(|(_, c)| **c) {
                counts[i][e] += 1;
                for r in 0..rows {
                    sums[i][r * features + e] += f0[r] - scores[p * rows + r];
                }
            }
        }
        for (i, sum) in sums.iter_mut().enumerate() {
            let features = explained.values[i].features;
            for (at, v) in sum.iter_mut().enumerate() {
                *v /= f64::from(counts[i][at % features]);
            }
        }
        explained.attributions(sums)
    }
}
