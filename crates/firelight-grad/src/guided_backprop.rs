//! Guided Backpropagation and Deconvolution: gradients with ReLUs that pass only positive signal
//! backwards. Models honour this by applying their ReLUs through `Taps::relu`.

use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{Attribution, Attributions, Inputs, Model, ReluPolicy, Result, Target};

/// Captum's `GuidedBackprop` (Springenberg et al., 2014): at every ReLU the gradient passes only
/// where both the ReLU's input and the incoming gradient are positive.
pub struct GuidedBackprop<'m> {
    model: &'m dyn Model,
}

impl<'m> GuidedBackprop<'m> {
    /// Guided Backpropagation of `model`.
    pub fn new(model: &'m dyn Model) -> Self {
        Self { model }
    }
}

impl Attribution for GuidedBackprop<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(self.model, inputs, target, samples, ReluPolicy::Guided)?;
        Attributions::for_inputs(inputs, grads)
    }
}

/// Captum's `Deconvolution` (Zeiler & Fergus, 2014): at every ReLU the gradient passes where the
/// incoming gradient is positive, whatever the ReLU's input.
pub struct Deconvolution<'m> {
    model: &'m dyn Model,
}

impl<'m> Deconvolution<'m> {
    /// Deconvolution of `model`.
    pub fn new(model: &'m dyn Model) -> Self {
        Self { model }
    }
}

impl Attribution for Deconvolution<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(
            self.model,
            inputs,
            target,
            samples,
            ReluPolicy::Deconvolution,
        )?;
        Attributions::for_inputs(inputs, grads)
    }
}
