//! Layer Conductance (Dhamdhere et al., 2018): how much of the input's Integrated Gradients flows
//! through each unit of a layer.

use burn::tensor::Tensor;
use firelight_core::batch::tile_samples;
use firelight_core::gradients::{layer_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Inputs, Model, Result, Target,
};

use crate::approximation::Approximation;
use crate::base::{attribute_with_delta, check_steps, resolve_baselines};
use crate::path::{interpolate, step_chunks};

/// Captum's `LayerConductance`: along the input-space path from baselines to inputs, sampled at
/// `n_steps + 1` points of `method`, sums the layer gradient at each point times the change of the
/// layer's activation to the next point. Defaults: `n_steps = 50`, Gauss-Legendre points, zero
/// baselines.
pub struct LayerConductance<'m> {
    model: &'m dyn Model,
    layer: String,
    n_steps: usize,
    method: Approximation,
    baselines: Baseline,
    internal_batch_size: Option<usize>,
}

impl<'m> LayerConductance<'m> {
    /// Conductance of `layer` in `model`.
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

    /// Number of intervals on the path (default 50; the path has `n_steps + 1` points).
    pub fn n_steps(mut self, n_steps: usize) -> Self {
        self.n_steps = n_steps;
        self
    }

    /// Where the path points lie (default Gauss-Legendre, as Captum).
    pub fn method(mut self, method: Approximation) -> Self {
        self.method = method;
        self
    }

    /// Input baselines (default zeros).
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// At most this many rows (points x inputs) per forward/backward.
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
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

    /// [`LayerConductance::attribute_with_convergence_delta`] for named inputs.
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
            |baselines, samples| self.conduct(inputs, baselines, target, samples),
        )
    }

    fn conduct(
        &self,
        inputs: &Inputs,
        baselines: &[DynTensor],
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        check_steps(self.n_steps)?;
        let (alphas, _) = self.method.steps(self.n_steps + 1)?;
        let inputs = inputs.detached();
        let ends = inputs.attributed_floats()?;
        let batch = inputs.batch()?;
        let rows: Vec<usize> = (0..batch).collect();
        // The last point of the previous chunk, to pair with the first point of the next.
        let mut previous: Option<(Tensor<3>, Tensor<3>)> = None;
        let mut total: Option<Tensor<2>> = None;
        let mut layer_shape = Vec::new();
        for steps in step_chunks(alphas.len(), batch, self.internal_batch_size)? {
            let k = steps.len();
            let scaled = baselines
                .iter()
                .zip(&ends)
                .map(|(b, e)| interpolate(b, e, &alphas[steps.clone()]))
                .collect();
            let scaled = inputs.with_attributed(scaled, &tile_samples(&rows, k))?;
            let (activation, grad) = layer_gradients(
                self.model,
                &scaled,
                &self.layer,
                target,
                &tile_samples(samples, k),
                None,
            )?;
            let features = activation.features();
            layer_shape = activation.shape().to_vec();
            let mut acts = activation.into_flat().reshape([k, batch, features]);
            let mut grads = grad.into_flat().reshape([k, batch, features]);
            let mut points = k;
            if let Some((a, g)) = previous.take() {
                acts = Tensor::cat(vec![a, acts], 0);
                grads = Tensor::cat(vec![g, grads], 0);
                points += 1;
            }
            previous = Some((
                acts.clone().narrow(0, points - 1, 1),
                grads.clone().narrow(0, points - 1, 1),
            ));
            if points >= 2 {
                let steps_diff =
                    acts.clone().narrow(0, 1, points - 1) - acts.narrow(0, 0, points - 1);
                let part = (grads.narrow(0, 0, points - 1) * steps_diff)
                    .sum_dim(0)
                    .reshape([batch, features]);
                total = Some(match total {
                    Some(t) => t + part,
                    None => part,
                });
            }
        }
        layer_shape[0] = batch;
        let total = total.expect("n_steps >= 1 gives at least two points");
        Ok(Attributions::single(
            &self.layer,
            DynTensor::from_flat(total, layer_shape)?,
        ))
    }
}

impl Attribution for LayerConductance<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        let baselines = resolve_baselines(&self.baselines, &inputs.attributed_floats()?, samples)?;
        self.conduct(inputs, &baselines, target, samples)
    }
}
