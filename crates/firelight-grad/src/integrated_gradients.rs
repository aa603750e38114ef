//! Integrated Gradients (Sundararajan et al., 2017): gradients averaged along the straight path
//! from a baseline to the input, times the input's difference from the baseline.

use burn::tensor::Tensor;
use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Inputs, Model, ReluPolicy, Result, Target,
};

use crate::approximation::Approximation;
use crate::base::{attribute_with_delta, check_steps, resolve_baselines};
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
        let totals = path_integral(
            baselines,
            &ends,
            &alphas,
            &weights,
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
        )?;
        let totals = if self.multiply_by_inputs {
            totals
                .into_iter()
                .zip(ends)
                .zip(baselines)
                .map(|((total, end), base)| {
                    let diff = end.into_flat() - base.flat().clone();
                    total.map(|t| t * diff)
                })
                .collect()
        } else {
            totals
        };
        Attributions::for_inputs(&inputs, totals)
    }
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
