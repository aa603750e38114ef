//! DeepLift (Shrikumar et al., 2017) with the Rescale rule, and DeepLiftShap: attributions that
//! explain the change of the target from a reference to the input exactly (completeness), in one
//! forward and one backward pass of the inputs and their references together.
//!
//! The rules live in firelight-core ([`firelight_core::deeplift`]); models apply them through
//! their taps, so a method file only builds the paired batch `[x; x0]` and reads the gradients
//! of its first half.

use burn::tensor::Tensor;
use firelight_core::batch::repeat_samples;
use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Inputs, Model, ReluPolicy, Result, Target,
};

use crate::base::{
    attribute_with_delta, baseline_distributions, paired_with_references, resolve_baselines,
};

/// Captum's `DeepLift` (Rescale rule): every nonlinearity passes back
/// `(f(x) - f(x0)) / (x - x0)` instead of its gradient, and max pooling Captum's max-pool rule,
/// so the attributions sum to `f(x) - f(x0)` (Captum's `return_convergence_delta` measures the
/// gap). Defaults as Captum: zero baselines, `multiply_by_inputs = true` (`eps = 1e-10`).
///
/// The model must route its nonlinearities through its taps: the native models and the ONNX
/// interpreter do, and the interpreter refuses an operator it has no rule for, naming the node.
/// Unlike Captum, the rule is applied at each call of a nonlinearity, so a reused or functional
/// activation is handled (captum#1082), and overlapping max-pool windows add up.
pub struct DeepLift<'m> {
    model: &'m dyn Model,
    baselines: Baseline,
    multiply_by_inputs: bool,
}

impl<'m> DeepLift<'m> {
    /// DeepLift of `model` with Captum's defaults.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            baselines: Baseline::Zeros,
            multiply_by_inputs: true,
        }
    }

    /// The references (default zeros): a constant, one tensor per sample or one shared, or one
    /// per attributed input.
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Multiply the multipliers by `inputs - baselines` (default true); `false` returns the
    /// multipliers themselves (Captum's "local" attributions).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }

    /// Attributions and Captum's convergence delta,
    /// `sum(attributions) - (f(inputs) - f(baselines))` per sample.
    pub fn attribute_with_convergence_delta(
        &self,
        inputs: &DynTensor,
        target: &Target,
    ) -> Result<(DynTensor, Tensor<1>)> {
        let (attributions, delta) =
            self.attribute_inputs_with_convergence_delta(&Inputs::from(inputs), target)?;
        Ok((attributions.into_single()?, delta))
    }

    /// [`DeepLift::attribute_with_convergence_delta`] for named inputs (the delta sums over
    /// every attributed input).
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
            |references, samples| {
                deep_lift(
                    self.model,
                    inputs,
                    references,
                    target,
                    samples,
                    self.multiply_by_inputs,
                )
            },
        )
    }
}

impl Attribution for DeepLift<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let references = resolve_baselines(&self.baselines, &inputs.attributed_floats()?, samples)?;
        deep_lift(
            self.model,
            inputs,
            &references,
            target,
            samples,
            self.multiply_by_inputs,
        )
    }
}

/// DeepLift of each row of `inputs` against the same row of `references` (one tensor per
/// attributed input): one pass of the batch `[inputs; references]` under the DeepLift rules.
fn deep_lift(
    model: &dyn Model,
    inputs: &Inputs,
    references: &[DynTensor],
    target: &Target,
    samples: &[usize],
    multiply_by_inputs: bool,
) -> Result<Attributions> {
    validate(model, inputs, samples)?;
    let n = inputs.batch()?;
    let attributed = inputs.attributed_floats()?;
    let (paired, paired_samples) = paired_with_references(inputs, references, samples)?;
    let gradients = input_gradients(
        model,
        &paired,
        target,
        &paired_samples,
        ReluPolicy::DeepLift,
    )?;
    let attributions = gradients
        .into_iter()
        .zip(attributed.iter().zip(references))
        .map(|(g, (x, r))| {
            let multipliers = g.rows(0, n);
            if multiply_by_inputs {
                let delta = x.flat().clone().detach() - r.flat().clone();
                multipliers.map(|m| m * delta)
            } else {
                multipliers
            }
        })
        .collect();
    Attributions::for_inputs(inputs, attributions)
}

/// Captum's `DeepLiftShap`: DeepLift of each input against every baseline of a distribution
/// (`Baseline::Distribution` or a tensor of `k` rows), averaged over the baselines; SHAP values
/// under the assumption that the features are independent and the model linear in the deltas.
/// `multiply_by_inputs = true` by default, as Captum.
pub struct DeepLiftShap<'m> {
    model: &'m dyn Model,
    baselines: Baseline,
    multiply_by_inputs: bool,
}

impl<'m> DeepLiftShap<'m> {
    /// DeepLiftShap of `model` against the distribution `baselines`.
    pub fn new(model: &'m dyn Model, baselines: Baseline) -> Self {
        Self {
            model,
            baselines,
            multiply_by_inputs: true,
        }
    }

    /// Multiply by `inputs - baselines` (default true).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }
}

impl Attribution for DeepLiftShap<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let attributed = inputs.attributed_floats()?;
        let (distributions, k) = baseline_distributions(&self.baselines, &attributed)?;
        let n = inputs.batch()?;
        // Row i * k + j pairs input i with baseline j (Captum's expansion).
        let rows = repeat_samples(&(0..n).collect::<Vec<_>>(), k);
        let expanded = inputs.select_rows(&rows)?;
        let tiled: Vec<usize> = (0..n).flat_map(|_| 0..k).collect();
        let references = distributions
            .iter()
            .map(|d| d.select_rows(&tiled))
            .collect::<Result<Vec<_>>>()?;
        let per_baseline = deep_lift(
            self.model,
            &expanded,
            &references,
            target,
            &repeat_samples(samples, k),
            self.multiply_by_inputs,
        )?;
        per_baseline.map(|a| {
            let features = a.features();
            let mut shape = a.shape().to_vec();
            shape[0] = n;
            let mean = a
                .into_flat()
                .reshape([n, k, features])
                .mean_dim(1)
                .reshape([n, features]);
            DynTensor::from_flat(mean, shape)
        })
    }
}
