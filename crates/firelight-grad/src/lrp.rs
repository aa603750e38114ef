//! Layer-wise Relevance Propagation (Bach et al., 2015) with zennit's rules and composites: the
//! target's output is seeded with one and passed down as relevance by each layer's rule.

use firelight_core::gradients::{input_gradients, validate};
use firelight_core::lrp::LrpComposite;
use firelight_core::{Attribution, Attributions, Error, Inputs, Model, ReluPolicy, Result, Target};

/// zennit's `Gradient` attributor under a composite (Captum's `LRP` takes rules per module the
/// same way): the relevance of each input element for the target, from one forward and one
/// backward pass. Default composite: EpsilonPlusFlat. The model must apply the rules (the ONNX
/// interpreter does, per node, with a model's batch-norms folded into their convolutions at
/// load, as zennit's canonizer merges them); one that does not is refused rather than answered
/// with plain gradients.
pub struct Lrp<'m> {
    model: &'m dyn Model,
    composite: LrpComposite,
}

impl<'m> Lrp<'m> {
    /// LRP of `model` with the EpsilonPlusFlat composite.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            composite: LrpComposite::default(),
        }
    }

    /// The rules per layer.
    pub fn composite(mut self, composite: LrpComposite) -> Self {
        self.composite = composite;
        self
    }
}

impl Attribution for Lrp<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        if !self.model.supports_lrp() {
            return Err(Error::parameter(
                "method",
                "lrp",
                "this model does not apply LRP's rules to its layers (ONNX models do; the native \
                 Burn models do not yet): export it to ONNX, or use deeplift",
            ));
        }
        let relevance = input_gradients(
            self.model,
            inputs,
            target,
            samples,
            ReluPolicy::Lrp(self.composite),
        )?;
        Attributions::for_inputs(inputs, relevance)
    }
}
