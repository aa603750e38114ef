//! [`LayerAsInput`]: a model whose layer is fed from outside, so that input methods (Saliency,
//! Integrated Gradients, SmoothGrad, ...) explain that layer's value as if it were the input.
//!
//! Captum's `configure_interpretable_embedding_layer` does this for text: token ids cannot be
//! differentiated, so the word embeddings become the input. The wrapped model still receives its
//! own inputs (the ids, the attention mask), runs up to the layer, and continues with the value
//! given instead of the one it computed.

use crate::model::{LayerInfo, Model, Recorder, TapHook, Taps};
use crate::{DynTensor, Error, Inputs, Result, Tensor};

/// `model` with the value of `layer` taken from an attributed float input of the same name; the
/// model's own inputs are carried along (each copy of a row keeps its row's ids and mask).
///
/// ```
/// use firelight_core::layer_input::LayerAsInput;
/// use firelight_core::{Device, DynTensor, Inputs, LayerInfo, Model, Result, Taps, Tensor};
///
/// /// out = 3 * tap("h", 2 x).
/// struct Twice;
/// impl Model for Twice {
///     fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
///         let x = inputs.single_float()?.into_rank::<2>()?;
///         Ok(taps.tap("h", x * 2.0)? * 3.0)
///     }
///     fn layers(&self) -> Vec<LayerInfo> { vec![LayerInfo::new("h", "Mul")] }
/// }
///
/// let device = Device::flex();
/// let x = DynTensor::from_vec(vec![1.0], vec![1, 1], &device)?;
/// let cut = LayerAsInput::new(&Twice, "h")?;
/// let inputs = cut.inputs(&Inputs::from(x))?;
/// assert_eq!(cut.input_name(), "h");
/// assert_eq!(inputs.float("h")?.to_vec()?, vec![2.0]);
/// let fed = Inputs::new()
///     .attributed("h", DynTensor::from_vec(vec![5.0], vec![1, 1], &device)?)
///     .carried_float("input", DynTensor::from_vec(vec![1.0], vec![1, 1], &device)?);
/// assert_eq!(cut.predict(&fed)?.into_data().to_vec::<f32>().unwrap(), vec![15.0]);
/// # Ok::<(), firelight_core::Error>(())
/// ```
pub struct LayerAsInput<M> {
    model: M,
    layer: String,
}

impl<M: Model> LayerAsInput<M> {
    /// `model` fed at `layer`; fails, naming the closest layers, if there is no such layer.
    pub fn new(model: M, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self { model, layer })
    }

    /// The name of the input that holds the layer's value (the layer's own name).
    pub fn input_name(&self) -> &str {
        &self.layer
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.model
    }

    /// The layer's value for `inputs` (the wrapped model's inputs), off the autodiff graph.
    pub fn layer_value(&self, inputs: &Inputs) -> Result<DynTensor> {
        let mut recorder = Recorder::new([self.layer.as_str()]);
        self.model
            .forward(&inputs.detached(), &mut Taps::with_hook(&mut recorder))?;
        recorder
            .take(&self.layer)
            .map(|v| v.detached())
            .ok_or_else(|| {
                Error::Model(format!(
                    "layer `{}` did not run in the forward pass",
                    self.layer
                ))
            })
    }

    /// This model's inputs for the wrapped model's `inputs`: the layer's value attributed, and
    /// every one of `inputs` carried.
    pub fn inputs(&self, inputs: &Inputs) -> Result<Inputs> {
        let value = self.layer_value(inputs)?;
        self.inputs_with(inputs, value)
    }

    /// This model's inputs with the layer's value given: `value` attributed, every one of
    /// `inputs` carried. Fails if `value` is not one row per row of `inputs`.
    pub fn inputs_with(&self, inputs: &Inputs, value: DynTensor) -> Result<Inputs> {
        let rows = inputs.batch()?;
        if value.batch() != rows {
            return Err(Error::ShapeMismatch {
                what: format!("value of layer `{}` (one row per input row)", self.layer),
                expected: vec![rows],
                got: value.shape().to_vec(),
            });
        }
        let mut out = Inputs::new().attributed(self.layer.clone(), value);
        for (name, v, _) in inputs.iter() {
            if name == self.layer {
                return Err(Error::Model(format!(
                    "the model has an input named like the layer `{name}`"
                )));
            }
            out = out.carried(name, v?);
        }
        Ok(out)
    }

    /// The wrapped model's inputs within `inputs`: all but the layer's value.
    fn inner_inputs(&self, inputs: &Inputs) -> Result<Inputs> {
        let mut inner = Inputs::new();
        for (name, v, _) in inputs.iter() {
            if name != self.layer {
                inner = inner.carried(name, v?);
            }
        }
        Ok(inner)
    }
}

/// Hands every value on to the outer taps, the fed layer's replaced by the given value.
struct Feed<'t, 'h> {
    outer: &'t mut Taps<'h>,
    layer: &'t str,
    value: Option<DynTensor>,
}

impl TapHook for Feed<'_, '_> {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if layer != self.layer {
            return self.outer.tap_dyn(layer, value);
        }
        let fed = self.value.take().ok_or_else(|| {
            Error::Model(format!("layer `{layer}` ran twice in one forward pass"))
        })?;
        if fed.shape() != value.shape() {
            return Err(Error::ShapeMismatch {
                what: format!("value fed at layer `{layer}`"),
                expected: value.shape().to_vec(),
                got: fed.shape().to_vec(),
            });
        }
        self.outer.tap_dyn(layer, fed)
    }
}

impl<M: Model> Model for LayerAsInput<M> {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let value = inputs.float(&self.layer)?;
        let inner = self.inner_inputs(inputs)?;
        let relu = taps.current_relu_policy();
        let mut feed = Feed {
            outer: taps,
            layer: &self.layer,
            value: Some(value),
        };
        let out = self
            .model
            .forward(&inner, &mut Taps::with_hook(&mut feed).relu_policy(relu))?;
        if feed.value.is_some() {
            return Err(Error::Model(format!(
                "layer `{}` did not run in the forward pass",
                self.layer
            )));
        }
        Ok(out)
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.model.layers()
    }

    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        inputs.float(&self.layer)?;
        self.model.check_inputs(&self.inner_inputs(inputs)?)
    }

    fn supports_lrp(&self) -> bool {
        false
    }
}
