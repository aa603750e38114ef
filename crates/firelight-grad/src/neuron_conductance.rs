//! Neuron Conductance (Dhamdhere et al., 2018): how much of the target's Integrated Gradients
//! flows through one unit of a layer, per input element.

use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::gradients::{input_gradients, layer_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, Error, Inputs, Model, Neuron, NeuronSelector, ReluPolicy,
    Result, Target,
};

use crate::approximation::Approximation;
use crate::base::{check_steps, resolve_baselines};
use crate::path::path_integral;

/// Captum's `NeuronConductance`: `(x - b) * sum_i w_i dF/dn(p_i) dn/dx(p_i)` along the path
/// `p_i` from the baseline to the input, for the unit `n` of `layer`. Defaults as Captum: 50
/// steps of the Riemann trapezoid rule (Captum's default here, unlike Integrated Gradients),
/// zero baselines, `multiply_by_inputs = true`. One unit only (an index), as Captum.
pub struct NeuronConductance<'m> {
    model: &'m dyn Model,
    layer: String,
    neuron: Vec<usize>,
    n_steps: usize,
    method: Approximation,
    baselines: Baseline,
    internal_batch_size: Option<usize>,
    multiply_by_inputs: bool,
}

impl<'m> NeuronConductance<'m> {
    /// Neuron Conductance through unit `neuron` (an index per axis of a sample) of `layer`.
    pub fn new(
        model: &'m dyn Model,
        layer: impl Into<String>,
        neuron: NeuronSelector,
    ) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        let NeuronSelector::Index(neuron) = neuron else {
            return Err(Error::parameter(
                "neuron",
                neuron.to_string(),
                "Neuron Conductance goes through one unit: give an index per axis, not a range",
            ));
        };
        Ok(Self {
            model,
            layer,
            neuron,
            n_steps: 50,
            method: Approximation::RiemannTrapezoid,
            baselines: Baseline::Zeros,
            internal_batch_size: None,
            multiply_by_inputs: true,
        })
    }

    /// Points on the path (Captum's `n_steps`, 50).
    pub fn n_steps(mut self, n_steps: usize) -> Self {
        self.n_steps = n_steps;
        self
    }

    /// The quadrature (Captum's `method`, `riemann_trapezoid` here).
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

    /// Multiply by `inputs - baselines` (default true).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }
}

impl Attribution for NeuronConductance<'_> {
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
        let selector = NeuronSelector::Index(self.neuron.clone());
        let neuron = Neuron::new(self.model, self.layer.clone(), selector.clone())?;
        let totals = path_integral(
            &starts,
            &ends,
            &alphas,
            &weights,
            samples,
            self.internal_batch_size,
            |scaled, row_map, row_samples, _| {
                let points = inputs.with_attributed(scaled, row_map)?;
                // dF/dn at every point: the target's gradient at the layer, at the unit.
                let (_, layer_grad) =
                    layer_gradients(self.model, &points, &self.layer, target, row_samples, None)?;
                let index = selector.flat_indices(layer_grad.sample_shape(), &self.layer)?[0];
                let index = Tensor::<1, Int>::from_data(
                    TensorData::new(vec![index as i64], [1]),
                    &layer_grad.device(),
                );
                let through = layer_grad.into_flat().select(1, index);
                // dn/dx at every point, times dF/dn.
                let grads = input_gradients(
                    &neuron,
                    &points,
                    &Target::class(0),
                    row_samples,
                    ReluPolicy::Standard,
                )?;
                Ok(grads
                    .into_iter()
                    .map(|g| g.map(|g| g * through.clone()))
                    .collect())
            },
        )?;
        let totals = if self.multiply_by_inputs {
            totals
                .into_iter()
                .zip(ends)
                .zip(starts)
                .map(|((total, end), start)| {
                    let diff = end.into_flat() - start.into_flat();
                    total.map(|t| t * diff)
                })
                .collect()
        } else {
            totals
        };
        Attributions::for_inputs(&inputs, totals)
    }
}
