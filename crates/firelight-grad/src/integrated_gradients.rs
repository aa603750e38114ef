//! Integrated Gradients (Sundararajan et al., 2017): gradients averaged along the straight path
//! from a baseline to the input, times the input's difference from the baseline.

use burn::tensor::Tensor;
use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Error, Inputs, Model, ReluPolicy, Result,
    Target,
};

use crate::approximation::Approximation;
use crate::base::{
    attribute_with_delta, attribution_sums, check_steps, resolve_baselines, score_change,
};
use crate::path::path_integral;

/// Captum's `IntegratedGradients`, with its defaults: `n_steps = 50`, `method = "gausslegendre"`,
/// zero baselines, `multiply_by_inputs = True`, everything in one batch unless
/// `internal_batch_size` is set.
pub struct IntegratedGradients<'m> {
    model: &'m dyn Model,
    n_steps: usize,
    method: Approximation,
    baselines: Baseline,
    internal_batch_size: Option<usize>,
    multiply_by_inputs: bool,
}

impl<'m> IntegratedGradients<'m> {
    /// Integrated Gradients of `model` with Captum's defaults.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            n_steps: 50,
            method: Approximation::GaussLegendre,
            baselines: Baseline::Zeros,
            internal_batch_size: None,
            multiply_by_inputs: true,
        }
    }

    /// Number of points on the path (default 50).
    pub fn n_steps(mut self, n_steps: usize) -> Self {
        self.n_steps = n_steps;
        self
    }

    /// How the path integral is approximated (default Gauss-Legendre).
    pub fn method(mut self, method: Approximation) -> Self {
        self.method = method;
        self
    }

    /// The baselines (default zeros): one per input, or one shared by all.
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// At most this many rows (steps x inputs) per forward/backward; at least one step of all inputs.
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
        self
    }

    /// Whether to multiply the integrated gradients by `inputs - baselines` (default `true`).
    /// Without it the result is the path-averaged gradient ("local" attribution).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }

    /// Attributions and the convergence delta per sample: `sum(attributions) - (f(inputs) - f(baselines))`,
    /// which goes to zero as `n_steps` grows (completeness).
    pub fn attribute_with_convergence_delta(
        &self,
        inputs: &DynTensor,
        target: &Target,
    ) -> Result<(DynTensor, Tensor<1>)> {
        let (attributions, delta) =
            self.attribute_inputs_with_convergence_delta(&Inputs::from(inputs), target)?;
        Ok((attributions.into_single()?, delta))
    }

    /// [`IntegratedGradients::attribute_with_convergence_delta`] for named inputs (the delta
    /// sums over every attributed input).
    pub fn attribute_inputs_with_convergence_delta(
        &self,
        inputs: &Inputs,
        target: &Target,
    ) -> Result<(Attributions, Tensor<1>)> {
        attribute_with_delta(
            self.model,
            &self.baselines,
            inputs,
            target,
            |baselines, samples| self.integrate(inputs, baselines, target, samples),
        )
    }

    /// Integrated Gradients that doubles `n_steps` (from the configured number) until every
    /// sample's convergence delta is at most `target_delta` in absolute value, or the next
    /// doubling would pass `max_steps`. Where the rule's points nest (Riemann left, right and
    /// trapezoid: the doubled grid holds the old one), the gradients already taken are reused and
    /// only the new points are evaluated; Gauss-Legendre and Riemann middle start over at each
    /// size. The result says how many steps it took and how many points were evaluated.
    pub fn attribute_to_delta(
        &self,
        inputs: &Inputs,
        target: &Target,
        target_delta: f32,
        max_steps: usize,
    ) -> Result<ConvergedAttributions> {
        if !(target_delta.is_finite() && target_delta > 0.0) {
            return Err(Error::parameter(
                "target_delta",
                target_delta,
                "a positive bound on the convergence delta",
            ));
        }
        if max_steps < self.n_steps {
            return Err(Error::parameter(
                "max_steps",
                max_steps,
                format!("must be at least n_steps ({})", self.n_steps),
            ));
        }
        check_steps(self.n_steps)?;
        let batch = inputs.batch()?;
        target.check_batch(batch)?;
        let samples: Vec<usize> = (0..batch).collect();
        validate(self.model, inputs, &samples)?;
        let baselines = resolve_baselines(&self.baselines, &inputs.attributed_floats()?, &samples)?;
        let change = to_f32s(score_change(
            self.model,
            inputs,
            baselines.clone(),
            target,
            &samples,
        )?)?;
        let detached = inputs.detached();
        let ends = detached.attributed_floats()?;
        let nested = matches!(
            self.method,
            Approximation::RiemannLeft
                | Approximation::RiemannRight
                | Approximation::RiemannTrapezoid
        );
        // Nested rules: the raw sum of c_i g(alpha_i), the integral being raw / n.
        let mut raw: Option<Vec<DynTensor>> = None;
        let mut n = self.n_steps;
        let mut evaluated = 0;
        loop {
            let averaged = if nested {
                let (alphas, coefficients) = match &raw {
                    None => {
                        let (alphas, weights) = self.method.steps(n)?;
                        let c = weights.iter().map(|w| w * n as f64).collect();
                        (alphas, c)
                    }
                    Some(_) => {
                        let old = previous_steps(self.method, n);
                        let denominator = if self.method == Approximation::RiemannTrapezoid {
                            2.0 * (old - 1) as f64
                        } else {
                            2.0 * old as f64
                        };
                        let new_points = n - old;
                        let alphas = (0..new_points)
                            .map(|i| (2 * i + 1) as f64 / denominator)
                            .collect();
                        (alphas, vec![1.0; new_points])
                    }
                };
                evaluated += alphas.len();
                let part = self.path_sum(
                    &detached,
                    &baselines,
                    &ends,
                    &alphas,
                    &coefficients,
                    target,
                    &samples,
                )?;
                let sum = match raw.take() {
                    None => part,
                    Some(previous) => previous
                        .into_iter()
                        .zip(part)
                        .map(|(a, b)| a.with_flat(a.flat().clone() + b.into_flat()))
                        .collect(),
                };
                let out = sum
                    .iter()
                    .map(|t| t.clone().map(|v| v / n as f32))
                    .collect();
                raw = Some(sum);
                out
            } else {
                let (alphas, weights) = self.method.steps(n)?;
                evaluated += alphas.len();
                self.path_sum(
                    &detached, &baselines, &ends, &alphas, &weights, target, &samples,
                )?
            };
            let attributions = self.finish(&detached, averaged, &ends, &baselines)?;
            let total = attribution_sums(&attributions)?;
            let delta: Vec<f32> = to_f32s(total)?
                .iter()
                .zip(&change)
                .map(|(t, c)| t - c)
                .collect();
            let next = next_steps(self.method, n);
            let converged = delta.iter().all(|d| d.abs() <= target_delta);
            if converged || next > max_steps {
                return Ok(ConvergedAttributions {
                    attributions,
                    delta,
                    n_steps: n,
                    evaluated_points: evaluated,
                    converged,
                });
            }
            n = next;
        }
    }

    /// The weighted sum of the gradients at `alphas` along the paths from `baselines` to `ends`,
    /// one tensor per attributed input.
    #[allow(clippy::too_many_arguments)]
    fn path_sum(
        &self,
        inputs: &Inputs,
        baselines: &[DynTensor],
        ends: &[DynTensor],
        alphas: &[f64],
        weights: &[f64],
        target: &Target,
        samples: &[usize],
    ) -> Result<Vec<DynTensor>> {
        path_integral(
            baselines,
            ends,
            alphas,
            weights,
            samples,
            self.internal_batch_size,
            |scaled, rows, row_samples, _| {
                let points = inputs.with_attributed(scaled, rows)?;
                input_gradients(
                    self.model,
                    &points,
                    target,
                    row_samples,
                    ReluPolicy::Standard,
                )
            },
        )
    }

    /// The path-averaged gradients as attributions: times `ends - baselines` unless
    /// `multiply_by_inputs` is off.
    fn finish(
        &self,
        inputs: &Inputs,
        averaged: Vec<DynTensor>,
        ends: &[DynTensor],
        baselines: &[DynTensor],
    ) -> Result<Attributions> {
        let totals = if self.multiply_by_inputs {
            averaged
                .into_iter()
                .zip(ends)
                .zip(baselines)
                .map(|((total, end), base)| {
                    let diff = end.flat().clone() - base.flat().clone();
                    total.map(|t| t * diff)
                })
                .collect()
        } else {
            averaged
        };
        Attributions::for_inputs(inputs, totals)
    }

    fn integrate(
        &self,
        inputs: &Inputs,
        baselines: &[DynTensor],
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        check_steps(self.n_steps)?;
        let (alphas, weights) = self.method.steps(self.n_steps)?;
        let inputs = inputs.detached();
        let ends = inputs.attributed_floats()?;
        let averaged = self.path_sum(
            &inputs, baselines, &ends, &alphas, &weights, target, samples,
        )?;
        self.finish(&inputs, averaged, &ends, baselines)
    }
}

/// What [`IntegratedGradients::attribute_to_delta`] found.
#[derive(Debug)]
pub struct ConvergedAttributions {
    /// The attributions at the last size tried.
    pub attributions: Attributions,
    /// Each sample's convergence delta there.
    pub delta: Vec<f32>,
    /// The steps of the last size tried.
    pub n_steps: usize,
    /// Points evaluated in all (each a forward and backward per sample).
    pub evaluated_points: usize,
    /// Whether every delta is within the bound (otherwise `max_steps` stopped it).
    pub converged: bool,
}

/// The next size: doubled, so that nesting rules keep their points (the trapezoid's `n` points
/// span `n - 1` intervals, so it goes to `2n - 1`).
fn next_steps(method: Approximation, n: usize) -> usize {
    match method {
        Approximation::RiemannTrapezoid => 2 * n - 1,
        _ => 2 * n,
    }
}

/// The size before `n` in [`next_steps`]'s sequence.
fn previous_steps(method: Approximation, n: usize) -> usize {
    match method {
        Approximation::RiemannTrapezoid => n.div_ceil(2),
        _ => n / 2,
    }
}

fn to_f32s(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Model(format!("convergence delta: {e:?}")))
}

impl Attribution for IntegratedGradients<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        let baselines = resolve_baselines(&self.baselines, &inputs.attributed_floats()?, samples)?;
        self.integrate(inputs, &baselines, target, samples)
    }
}
