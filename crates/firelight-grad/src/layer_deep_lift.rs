//! Layer DeepLift: DeepLift's multipliers at a layer, times the layer's change from the
//! references to the inputs; the attributions sum to `f(x) - f(x0)` over the layer's units.

use firelight_core::gradients::{layer_gradients_with_policy, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, Inputs, Model, ReluPolicy, Result, Target,
};

use crate::base::{paired_with_references, resolve_baselines};

/// Captum's `LayerDeepLift` (Rescale rule) at a layer's output: `(a(x) - a(x0)) * m`, `m` the
/// multipliers of the target with respect to the layer's value `a`. Defaults as Captum: zero
/// baselines, `multiply_by_inputs = true`.
pub struct LayerDeepLift<'m> {
    model: &'m dyn Model,
    layer: String,
    baselines: Baseline,
    multiply_by_inputs: bool,
}

impl<'m> LayerDeepLift<'m> {
    /// Layer DeepLift of `model` at `layer`; fails, naming the closest layers, if there is none.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self {
            model,
            layer,
            baselines: Baseline::Zeros,
            multiply_by_inputs: true,
        })
    }

    /// The references of the inputs (default zeros).
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Multiply the multipliers by the layer's change (default true).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }
}

impl Attribution for LayerDeepLift<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let n = inputs.batch()?;
        let references = resolve_baselines(&self.baselines, &inputs.attributed_floats()?, samples)?;
        let (paired, paired_samples) = paired_with_references(inputs, &references, samples)?;
        let (activation, grad) = layer_gradients_with_policy(
            self.model,
            &paired,
            &self.layer,
            target,
            &paired_samples,
            None,
            ReluPolicy::DeepLift,
        )?;
        let multipliers = grad.rows(0, n);
        let result = if self.multiply_by_inputs {
            let delta = activation.rows(0, n).into_flat() - activation.rows(n, 2 * n).into_flat();
            multipliers.map(|m| m * delta)
        } else {
            multipliers
        };
        Ok(Attributions::single(&self.layer, result))
    }
}
