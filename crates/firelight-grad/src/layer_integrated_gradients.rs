//! Layer Integrated Gradients: Integrated Gradients in the space of a layer's activations.

use burn::tensor::Tensor;
use firelight_core::batch::tile_samples;
use firelight_core::gradients::{layer_activations, layer_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Inputs, Model, Result, Target,
};

use crate::approximation::Approximation;
use crate::base::{
    at_baselines, attribute_with_delta, attributed_as_floats, check_steps, resolve_baselines,
};
use crate::path::path_integral;

/// Captum's `LayerIntegratedGradients`: the layer's activations for the baselines and for the
/// inputs are the ends of the path; along it the layer's output is replaced by the interpolated
/// activation, and the integrated gradient is multiplied by the activation difference.
/// Defaults as [`IntegratedGradients`](crate::IntegratedGradients).
pub struct LayerIntegratedGradients<'m> {
    model: &'m dyn Model,
    layer: String,
    n_steps: usize,
    method: Approximation,
    baselines: Baseline,
    internal_batch_size: Option<usize>,
    multiply_by_inputs: bool,
}

impl<'m> LayerIntegratedGradients<'m> {
    /// Layer Integrated Gradients at `layer` of `model`.
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
            multiply_by_inputs: true,
        })
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

    /// Input baselines (default zeros); their activations start the path.
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// At most this many rows (steps x inputs) per forward/backward.
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
        self
    }

    /// Whether to multiply by the activation difference (default `true`).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }

    /// Attributions and the convergence delta per sample:
    /// `sum(attributions) - (f(inputs) - f(baselines))`.
    pub fn attribute_with_convergence_delta(
        &self,
        inputs: &DynTensor,
        target: &Target,
    ) -> Result<(DynTensor, Tensor<1>)> {
        let (attributions, delta) =
            self.attribute_inputs_with_convergence_delta(&Inputs::from(inputs), target)?;
        Ok((attributions.into_single()?, delta))
    }

    /// [`LayerIntegratedGradients::attribute_with_convergence_delta`] for named inputs; the
    /// baselines replace the attributed inputs (token ids too: a `[PAD]` baseline sentence).
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
        let end = layer_activations(self.model, inputs, &self.layer)?;
        let start = layer_activations(
            self.model,
            &at_baselines(inputs, baselines.to_vec())?,
            &self.layer,
        )?;
        let rows: Vec<usize> = (0..inputs.batch()?).collect();
        let totals = path_integral(
            std::slice::from_ref(&start),
            std::slice::from_ref(&end),
            &alphas,
            &weights,
            samples,
            self.internal_batch_size,
            |mut scaled, _, row_samples, k| {
                let (_, grad) = layer_gradients(
                    self.model,
                    &inputs.select_rows(&tile_samples(&rows, k))?,
                    &self.layer,
                    target,
                    row_samples,
                    scaled.pop(),
                )?;
                Ok(vec![grad])
            },
        )?;
        let total = totals.into_iter().next().expect("one layer");
        let result = if self.multiply_by_inputs {
            let diff = end.into_flat() - start.into_flat();
            total.map(|t| t * diff)
        } else {
            total
        };
        Ok(Attributions::single(&self.layer, result))
    }
}

impl Attribution for LayerIntegratedGradients<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        let baselines =
            resolve_baselines(&self.baselines, &attributed_as_floats(inputs)?, samples)?;
        self.integrate(inputs, &baselines, target, samples)
    }
}
