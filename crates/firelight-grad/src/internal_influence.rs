//! Internal Influence (Leino et al., 2018): the target's gradient with respect to a layer,
//! integrated along the straight path from the baseline to the input.

use firelight_core::gradients::{layer_gradients, validate};
use firelight_core::{Attribution, Attributions, Baseline, Inputs, Model, Result, Target};

use crate::approximation::Approximation;
use crate::base::{check_steps, resolve_baselines};
use crate::path::path_integral;

/// Captum's `InternalInfluence`: `sum_i w_i * dF/da(b + alpha_i (x - b))` at `layer`'s value
/// `a`, the quadrature of Integrated Gradients without the final multiplication. Defaults as
/// Captum: 50 Gauss-Legendre steps, zero baselines, all rows at once.
pub struct InternalInfluence<'m> {
    model: &'m dyn Model,
    layer: String,
    n_steps: usize,
    method: Approximation,
    baselines: Baseline,
    internal_batch_size: Option<usize>,
}

impl<'m> InternalInfluence<'m> {
    /// Internal Influence of `model` at `layer`; fails, naming the closest layers, if there is none.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self {
            model,
            layer,
            n_steps: 50,
            method: Approximation::GaussLegendre,
            baselines: Baseline::Zeros,
            internal_batch_size: None,
        })
    }

    /// Points on the path (Captum's `n_steps`, 50).
    pub fn n_steps(mut self, n_steps: usize) -> Self {
        self.n_steps = n_steps;
        self
    }

    /// The quadrature (Captum's `method`).
    pub fn method(mut self, method: Approximation) -> Self {
        self.method = method;
        self
    }

    /// Where the path starts (default zeros).
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// At most this many rows per forward/backward pass (whole steps).
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
        self
    }
}

impl Attribution for InternalInfluence<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        check_steps(self.n_steps)?;
        let (alphas, weights) = self.method.steps(self.n_steps)?;
        let inputs = inputs.detached();
        let ends = inputs.attributed_floats()?;
        let starts = resolve_baselines(&self.baselines, &ends, samples)?;
        let totals = path_integral(
            &starts,
            &ends,
            &alphas,
            &weights,
            samples,
            self.internal_batch_size,
            |scaled, row_map, row_samples, _| {
                let points = inputs.with_attributed(scaled, row_map)?;
                let (_, grad) =
                    layer_gradients(self.model, &points, &self.layer, target, row_samples, None)?;
                // One total, the layer's, whatever the number of attributed inputs.
                Ok(vec![grad])
            },
        )?;
        let total = totals.into_iter().next().expect("one layer");
        Ok(Attributions::single(&self.layer, total))
    }
}
