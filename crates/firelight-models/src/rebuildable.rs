//! Native models whose learned weights a sanity check can redraw: a model built from a
//! [`WeightSource`] is rebuilt from the very same weights, with those of the chosen layers
//! redrawn ([`firelight_core::randomize`], as `OnnxModel::randomized` does for initialisers).
//! A parameter's layer is its `state_dict` name without the last part (`features.3.conv.1.0`
//! for `features.3.conv.1.0.weight`); batch norms redraw their scale and bias, not their
//! running statistics.

use std::collections::HashMap;

use burn::tensor::Tensor;
use firelight_core::randomize::{redraw_normal, tensor_seed};
use firelight_core::{Error, InputSpec, Inputs, LayerInfo, Model, Randomizable, Result, Taps};

use crate::WeightSource;

/// How a model is built from its weights.
pub type Build = dyn Fn(&mut dyn WeightSource) -> Result<Box<dyn Model>>;

/// A native model with the recipe that built it and the weights it read.
pub struct Rebuildable {
    model: Box<dyn Model>,
    weights: Vec<Weight>,
    build: Box<Build>,
}

struct Weight {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Running statistics are measured, not learned: a sanity check leaves them.
fn learned(name: &str) -> bool {
    !["running_mean", "running_var", "num_batches_tracked"]
        .iter()
        .any(|s| name.ends_with(s))
}

fn layer_of(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(layer, _)| layer)
}

/// Records every weight a build reads.
struct Recording<'a> {
    inner: &'a mut dyn WeightSource,
    seen: Vec<Weight>,
}

impl WeightSource for Recording<'_> {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let values = self.inner.values(name, shape)?;
        self.seen.push(Weight {
            name: name.to_string(),
            shape: shape.to_vec(),
            values: values.clone(),
        });
        Ok(values)
    }
}

/// The recorded weights again, those of `layers` redrawn.
struct Replay<'a> {
    weights: HashMap<&'a str, &'a Weight>,
    layers: &'a [String],
    seed: u64,
    /// How many tensors of each redrawn layer were drawn so far (the tensor's index in the seed).
    drawn: HashMap<String, usize>,
}

impl WeightSource for Replay<'_> {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let weight = self.weights.get(name).filter(|w| w.shape == shape).ok_or_else(|| {
            Error::Model(format!(
                "rebuilding the model: weight `{name}` {shape:?} was not read by the first build"
            ))
        })?;
        let layer = layer_of(name);
        if !learned(name) || !self.layers.iter().any(|l| l == layer) {
            return Ok(weight.values.clone());
        }
        let index = self.drawn.entry(layer.to_string()).or_default();
        let values: Vec<f64> = weight.values.iter().map(|&v| f64::from(v)).collect();
        let drawn = redraw_normal(&values, tensor_seed(self.seed, layer, *index))?;
        *index += 1;
        Ok(drawn)
    }
}

impl Rebuildable {
    /// Builds the model with `build` from `source`, keeping the weights it reads so that it can
    /// be rebuilt with some of them redrawn.
    pub fn new(
        source: &mut dyn WeightSource,
        build: impl Fn(&mut dyn WeightSource) -> Result<Box<dyn Model>> + 'static,
    ) -> Result<Self> {
        let mut recording = Recording {
            inner: source,
            seen: Vec::new(),
        };
        let model = build(&mut recording)?;
        Ok(Self {
            model,
            weights: recording.seen,
            build: Box::new(build),
        })
    }

    /// The model as built.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }
}

impl Model for Rebuildable {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        self.model.forward(inputs, taps)
    }
    fn layers(&self) -> Vec<LayerInfo> {
        self.model.layers()
    }
    fn input_shape(&self) -> Option<Vec<usize>> {
        self.model.input_shape()
    }
    fn input_specs(&self) -> Vec<InputSpec> {
        self.model.input_specs()
    }
    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        self.model.check_inputs(inputs)
    }
    fn supports_lrp(&self) -> bool {
        self.model.supports_lrp()
    }
}

impl Randomizable for Rebuildable {
    /// The layers with learned weights, in the order the build read them (input first).
    fn parameter_layers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in self.weights.iter().filter(|w| learned(&w.name)) {
            let layer = layer_of(&w.name);
            if !out.iter().any(|l| l == layer) {
                out.push(layer.to_string());
            }
        }
        out
    }

    fn randomized(&self, layers: &[String], seed: u64) -> Result<Box<dyn Model>> {
        let known = self.parameter_layers();
        if let Some(unknown) = layers.iter().find(|l| !known.contains(l)) {
            return Err(Error::UnknownLayer {
                name: unknown.clone(),
                available: known,
            });
        }
        let mut replay = Replay {
            weights: self.weights.iter().map(|w| (w.name.as_str(), w)).collect(),
            layers,
            seed,
            drawn: HashMap::new(),
        };
        (self.build)(&mut replay)
    }
}
