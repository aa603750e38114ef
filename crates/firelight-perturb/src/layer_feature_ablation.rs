//! Layer Feature Ablation: Feature Ablation of the units of a layer, each unit (or group of
//! units) set to its baseline while the rest of the network runs on.

use firelight_core::batch::Perturbed;
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Error, Inputs, Model, Recorder, Result,
    TapHook, Taps, Target,
};

use crate::base::{Explained, Fill, HostValue, Progress, ablate, check_per_eval, host_scores};
use crate::mask::FeatureMask;

/// Captum's `LayerFeatureAblation`: the attribution of a layer feature is
/// `f(x) - f(x with the feature set to its baseline at the layer)`, the layer's other values as
/// the input makes them and everything after the layer recomputed. Shaped like the layer.
///
/// Defaults as Captum: `layer_baselines` zero, every unit of the layer its own feature
/// (`layer_mask`, broadcast to the layer's shape as a feature mask is to an input),
/// `perturbations_per_eval = 1`.
pub struct LayerFeatureAblation<'m> {
    model: &'m dyn Model,
    layer: String,
    layer_baselines: Baseline,
    layer_mask: FeatureMask,
    perturbations_per_eval: usize,
    progress: Progress<'m>,
}

/// Replaces a layer's value with prepared rows.
struct Replace {
    layer: String,
    value: DynTensor,
}

impl TapHook for Replace {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if layer != self.layer {
            return Ok(value);
        }
        if value.shape() != self.value.shape() {
            return Err(Error::ShapeMismatch {
                what: format!("value of layer `{layer}` in a perturbed forward pass"),
                expected: self.value.shape().to_vec(),
                got: value.shape().to_vec(),
            });
        }
        Ok(self.value.clone().map(|t| t.to_device(&value.device())))
    }
}

impl<'m> LayerFeatureAblation<'m> {
    /// Layer Feature Ablation of `model` at `layer`; fails, naming the closest layers, if the
    /// model has no such layer.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self {
            model,
            layer,
            layer_baselines: Baseline::Zeros,
            layer_mask: FeatureMask::Elements,
            perturbations_per_eval: 1,
            progress: Progress::default(),
        })
    }

    /// The values ablated layer features take (default zeros): a constant, or a tensor shaped
    /// like the layer (one per sample or one shared).
    pub fn layer_baselines(mut self, baselines: Baseline) -> Self {
        self.layer_baselines = baselines;
        self
    }

    /// Which units of the layer form one feature (default: every unit its own), e.g. one id per
    /// channel `[1, channels, 1, 1]`.
    pub fn layer_mask(mut self, mask: FeatureMask) -> Self {
        self.layer_mask = mask;
        self
    }

    /// Ablated copies of the batch per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// Called with `(done, total)` layer features after each forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }
}

impl Attribution for LayerFeatureAblation<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        check_per_eval(self.perturbations_per_eval)?;
        // Checks the inputs as the input methods do; the attributed values are then the layer's.
        let mut explained = Explained::new(self.model, inputs, samples)?;
        let mut recorder = Recorder::new([self.layer.as_str()]);
        let outputs = self
            .model
            .forward(inputs, &mut Taps::with_hook(&mut recorder))?;
        let f0 = host_scores(target.scores(outputs, samples)?)?;
        let layer = recorder.take(&self.layer).ok_or_else(|| {
            Error::Model(format!(
                "layer `{}` did not run in the forward pass",
                self.layer
            ))
        })?;
        if layer.batch() != explained.rows {
            return Err(Error::ShapeMismatch {
                what: format!("batch of layer `{}` vs the inputs", self.layer),
                expected: vec![explained.rows],
                got: vec![layer.batch()],
            });
        }
        let mut value = HostValue::from_dyn(&layer.detached())?;
        value.set_baseline(&self.layer_baselines, samples)?;
        explained.values = vec![value];
        let masks = self.layer_mask.resolve(&explained.shapes(), samples)?;
        let attributions = ablate(
            &explained,
            &masks,
            &f0,
            self.model,
            target,
            self.perturbations_per_eval,
            &self.progress,
            |_, _| Fill::Baseline,
            |copies, replace| {
                let layer = &explained.values[0];
                let data = layer.perturb(copies, |c, e| replace(c, 0, e));
                let value = layer.to_value(data, copies.len())?.to_dyn("layer value")?;
                let rows: Vec<usize> = copies.iter().map(|c| c.row).collect();
                Ok(Perturbed {
                    inputs: inputs.select_rows(&rows)?,
                    samples: rows.iter().map(|&r| samples[r]).collect(),
                    hook: Some(Box::new(Replace {
                        layer: self.layer.clone(),
                        value,
                    })),
                })
            },
        )?;
        let tensor = explained.values[0].attribution(&attributions[0])?;
        Ok(Attributions::single(self.layer.clone(), tensor))
    }
}
