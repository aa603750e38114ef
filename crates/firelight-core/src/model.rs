//! [`Model`]: anything that maps a batch of inputs to a batch of outputs, with named tap points.

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::tensor::DynTensor;
use crate::value::Kind;

/// One input a model takes: its name, element kind and shape (batch first; `None` where the
/// model leaves a dimension to run time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// The input's name (the graph input's name for ONNX models).
    pub name: String,
    /// Its element kind.
    pub kind: Kind,
    /// Its shape, batch first, `None` per dimension fixed only at run time.
    pub shape: Vec<Option<usize>>,
}

/// One named point inside a model where [`Taps`] can see and change the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The name a user passes to layer methods.
    pub name: String,
    /// What produces the value (e.g. `"Conv2d"`, `"Relu"`, `"Add"`).
    pub kind: String,
    /// The value's shape where the model knows it (`None` for a dimension fixed only at run time,
    /// such as the batch).
    pub shape: Option<Vec<Option<usize>>>,
}

impl LayerInfo {
    /// A layer named `name` of kind `kind`.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            shape: None,
        }
    }

    /// The same layer with its shape known.
    pub fn with_shape(mut self, shape: Vec<Option<usize>>) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Whether this is a self-attention block's probabilities: a Softmax output shaped
    /// `[batch, heads, tokens, tokens]` (the last two dimensions equal where known).
    pub fn is_attention_map(&self) -> bool {
        self.kind == "Softmax"
            && match self.shape.as_deref() {
                Some([_, _, Some(q), Some(k)]) => q == k,
                Some([_, _, _, _]) => true,
                _ => false,
            }
    }
}

/// The attention probabilities of every self-attention block of `model`, first block first
/// (the layers for which [`LayerInfo::is_attention_map`] holds).
pub fn attention_layers(model: &dyn Model) -> Vec<String> {
    model
        .layers()
        .into_iter()
        .filter(LayerInfo::is_attention_map)
        .map(|l| l.name)
        .collect()
}

/// How ReLUs pass gradients back; models route their ReLUs through [`Taps::relu`] to honour it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReluPolicy {
    /// The ordinary ReLU: gradient passes where the input is positive.
    #[default]
    Standard,
    /// Guided Backpropagation: gradient passes where the input *and* the gradient are positive.
    Guided,
    /// Deconvolution: gradient passes where the gradient is positive, whatever the input.
    Deconvolution,
    /// DeepLift: every nonlinearity a model applies through [`Taps::relu`],
    /// [`Taps::nonlinear`] or [`Taps::max_pool2d`] passes back DeepLift's multipliers
    /// ([`crate::deeplift`]); the batch is the inputs followed by their references.
    DeepLift,
    /// Layer-wise Relevance Propagation with this composite's rules ([`crate::lrp`]): affine
    /// layers pass relevance by their rule, activations pass it unchanged.
    Lrp(crate::lrp::LrpComposite),
}

/// What a method does at a tap point: look at the value, replace it, or both.
pub trait TapHook {
    /// Called with the value a model produced at `layer`; returns the value the model continues with.
    ///
    /// The returned tensor must have the same shape as `value`.
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor>;
}

/// Passed to [`Model::forward`]: the model reports each named value through [`Taps::tap`] and
/// applies its ReLUs through [`Taps::relu`].
#[derive(Default)]
pub struct Taps<'a> {
    relu: ReluPolicy,
    hook: Option<&'a mut dyn TapHook>,
}

impl<'a> Taps<'a> {
    /// Taps that change nothing: a plain forward pass.
    pub fn none() -> Self {
        Self::default()
    }

    /// Taps that hand every named value to `hook`.
    pub fn with_hook(hook: &'a mut dyn TapHook) -> Self {
        Self {
            relu: ReluPolicy::Standard,
            hook: Some(hook),
        }
    }

    /// The same taps with a different ReLU policy.
    pub fn relu_policy(mut self, relu: ReluPolicy) -> Self {
        self.relu = relu;
        self
    }

    /// The ReLU policy this pass runs under.
    pub fn current_relu_policy(&self) -> ReluPolicy {
        self.relu
    }

    /// Whether a hook sees the values: models may skip preparing a value for [`Taps::tap`] when not.
    pub fn is_watching(&self) -> bool {
        self.hook.is_some()
    }

    /// Reports the value at the tap point `layer`; the model continues with what this returns.
    pub fn tap<const D: usize>(&mut self, layer: &str, value: Tensor<D>) -> Result<Tensor<D>> {
        let Some(hook) = self.hook.as_deref_mut() else {
            return Ok(value);
        };
        let shape = value.dims().to_vec();
        let out = hook.visit(layer, DynTensor::new(value))?;
        if out.shape() != shape.as_slice() {
            return Err(Error::ShapeMismatch {
                what: format!("value returned by a tap at layer `{layer}`"),
                expected: shape,
                got: out.shape().to_vec(),
            });
        }
        out.into_rank::<D>()
    }

    /// [`Taps::tap`] for a value of any rank.
    pub fn tap_dyn(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        let Some(hook) = self.hook.as_deref_mut() else {
            return Ok(value);
        };
        let shape = value.shape().to_vec();
        let out = hook.visit(layer, value)?;
        if out.shape() != shape.as_slice() {
            return Err(Error::ShapeMismatch {
                what: format!("value returned by a tap at layer `{layer}`"),
                expected: shape,
                got: out.shape().to_vec(),
            });
        }
        Ok(out)
    }

    /// Applies a ReLU under the current [`ReluPolicy`].
    pub fn relu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::relu::relu_with_policy(x, self.relu)
    }

    /// Applies the element-wise nonlinearity `f` (a sigmoid, tanh, ReLU6, GELU, ...): `f(x)`,
    /// whose backward pass is DeepLift's Rescale rule under [`ReluPolicy::DeepLift`]. Models
    /// route every nonlinearity through this (or [`Taps::relu`]) so DeepLift sees it.
    pub fn nonlinear<const D: usize>(
        &self,
        x: Tensor<D>,
        f: impl Fn(Tensor<D>) -> Tensor<D>,
    ) -> Tensor<D> {
        match self.relu {
            ReluPolicy::DeepLift => crate::deeplift::rescale(x, f),
            ReluPolicy::Lrp(_) => crate::lrp::pass(x, f),
            _ => f(x),
        }
    }

    /// 2-D max pooling, whose backward pass is DeepLift's max-pool rule under
    /// [`ReluPolicy::DeepLift`].
    pub fn max_pool2d(
        &self,
        x: Tensor<4>,
        options: burn::tensor::ops::MaxPoolOptions<2>,
    ) -> Tensor<4> {
        match self.relu {
            ReluPolicy::DeepLift => crate::deeplift::max_pool2d(x, options),
            _ => burn::tensor::module::max_pool2d(x, options),
        }
    }
}

/// A network that firelight can explain.
///
/// It maps a batch of named [`Inputs`] to a batch of outputs `[batch, outputs]`, and reports its named
/// intermediate values through the [`Taps`] it is given, so that layer methods can record,
/// replace or perturb them. A native Burn module implements it by calling `taps.tap(name, x)` at
/// each point it names; the ONNX interpreter does it for every node output.
pub trait Model {
    /// Runs the model on `inputs` (batch first), passing each named value through `taps`.
    ///
    /// A single-input model reads its tensor with [`Inputs::single_float`].
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>>;

    /// Every tap point, in the order the forward pass reaches them.
    fn layers(&self) -> Vec<LayerInfo>;

    /// The shape of one input sample (without the batch axis), when the model takes one float
    /// input of a fixed shape.
    fn input_shape(&self) -> Option<Vec<usize>> {
        None
    }

    /// The inputs the model takes, when it knows them (ONNX graphs do); empty otherwise.
    fn input_specs(&self) -> Vec<InputSpec> {
        Vec::new()
    }

    /// Whether the model applies LRP's rules under [`ReluPolicy::Lrp`]: its affine layers through
    /// [`crate::lrp::affine`], activations through [`Taps::relu`] / [`Taps::nonlinear`]. The
    /// ONNX interpreter does; a model that does not would return gradients, so LRP refuses it.
    fn supports_lrp(&self) -> bool {
        false
    }

    /// Runs the model with no taps.
    fn predict(&self, inputs: &Inputs) -> Result<Tensor<2>> {
        self.forward(inputs, &mut Taps::none())
    }

    /// Fails with [`Error::UnknownLayer`], listing the layers that exist, unless `name` is one.
    fn check_layer(&self, name: &str) -> Result<()> {
        let layers = self.layers();
        if layers.iter().any(|l| l.name == name) {
            Ok(())
        } else {
            Err(Error::UnknownLayer {
                name: name.to_string(),
                available: layers.into_iter().map(|l| l.name).collect(),
            })
        }
    }

    /// Fails for an empty list, or (as [`Model::check_layer`]) for a layer the model does not have.
    fn check_layers(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Err(Error::parameter("layers", "[]", "give at least one layer"));
        }
        names.iter().try_for_each(|name| self.check_layer(name))
    }

    /// Fails with a clear error unless `inputs` fit the model: every input shares one batch, and
    /// a lone float input fits [`Model::input_shape`].
    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        inputs.batch()?;
        if let (Some(expected), [name]) = (self.input_shape(), inputs.names().as_slice()) {
            let (_, shape) = inputs.describe(name).expect("listed name");
            if expected.as_slice() != &shape[1..] {
                return Err(Error::ShapeMismatch {
                    what: "input sample (batch axis excluded)".into(),
                    expected,
                    got: shape[1..].to_vec(),
                });
            }
        }
        Ok(())
    }
}

impl<M: Model + ?Sized> Model for &M {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        (**self).forward(inputs, taps)
    }
    fn layers(&self) -> Vec<LayerInfo> {
        (**self).layers()
    }
    fn input_shape(&self) -> Option<Vec<usize>> {
        (**self).input_shape()
    }
    fn input_specs(&self) -> Vec<InputSpec> {
        (**self).input_specs()
    }
    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        (**self).check_inputs(inputs)
    }
    fn supports_lrp(&self) -> bool {
        (**self).supports_lrp()
    }
}

/// A [`TapHook`] that records the values at the named layers and changes nothing.
#[derive(Debug, Default)]
pub struct Recorder {
    layers: Vec<String>,
    values: Vec<(String, DynTensor)>,
}

impl Recorder {
    /// Records the values of `layers`.
    pub fn new<S: Into<String>>(layers: impl IntoIterator<Item = S>) -> Self {
        Self {
            layers: layers.into_iter().map(Into::into).collect(),
            values: Vec::new(),
        }
    }

    /// The recorded value of `layer` (the last one, if the layer ran more than once).
    pub fn get(&self, layer: &str) -> Option<&DynTensor> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == layer)
            .map(|(_, v)| v)
    }

    /// The recorded value of `layer`, by value.
    pub fn take(&mut self, layer: &str) -> Option<DynTensor> {
        let index = self.values.iter().rposition(|(n, _)| n == layer)?;
        Some(self.values.swap_remove(index).1)
    }
}

impl TapHook for Recorder {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if self.layers.iter().any(|l| l == layer) {
            self.values.push((layer.to_string(), value.clone()));
        }
        Ok(value)
    }
}

/// A model whose learned weights can be redrawn, layer by layer: what Adebayo et al.'s sanity
/// checks randomise (`firelight_onnx::OnnxModel` redraws its initialisers).
pub trait Randomizable: Model {
    /// The layers holding learned weights, first first.
    fn parameter_layers(&self) -> Vec<String>;

    /// A copy with the weights of `layers` redrawn (seeded by `seed`); fails, naming the layers
    /// that have weights, for any other name.
    fn randomized(&self, layers: &[String], seed: u64) -> Result<Box<dyn Model>>;
}

/// A model cut at one of its layers: its output is that layer's value, flattened per sample
/// (`[batch, features]`). An ImageNet classifier cut at its pooled features is an embedding model,
/// as pytorch-grad-cam's concept-activation-maps tutorial uses one: pair it with
/// [`Target::CosineSimilarity`](crate::Target::CosineSimilarity) to explain how much an image
/// looks like a reference.
///
/// The whole model still runs (a graph interpreter cannot stop early); values after the cut do not
/// reach the output, so they get no gradient. Only layers up to the cut are listed.
pub struct Embedding<M> {
    model: M,
    layer: String,
}

impl<M: Model> Embedding<M> {
    /// `model` cut at `layer`; fails, listing the layers, if there is no such layer.
    pub fn new(model: M, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self { model, layer })
    }

    /// The layer the model is cut at.
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// The model before the cut.
    pub fn inner(&self) -> &M {
        &self.model
    }
}

/// Passes every value on to the outer taps and keeps the cut layer's value.
struct Cut<'t, 'h> {
    outer: &'t mut Taps<'h>,
    layer: &'t str,
    value: Option<DynTensor>,
}

impl TapHook for Cut<'_, '_> {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        let value = self.outer.tap_dyn(layer, value)?;
        if layer == self.layer {
            self.value = Some(value.clone());
        }
        Ok(value)
    }
}

impl<M: Model> Embedding<M> {
    /// The cut layer's value for `inputs`, in its own shape (batch first), every value passing
    /// through `taps` on the way.
    pub fn layer_value(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<DynTensor> {
        let relu = taps.current_relu_policy();
        let mut cut = Cut {
            outer: taps,
            layer: &self.layer,
            value: None,
        };
        self.model
            .forward(inputs, &mut Taps::with_hook(&mut cut).relu_policy(relu))?;
        cut.value.ok_or_else(|| {
            Error::Model(format!(
                "embedding layer `{}` did not run in the forward pass",
                self.layer
            ))
        })
    }
}

impl<M: Model> Model for Embedding<M> {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        Ok(self.layer_value(inputs, taps)?.into_flat())
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut layers = self.model.layers();
        if let Some(at) = layers.iter().position(|l| l.name == self.layer) {
            layers.truncate(at + 1);
        }
        layers
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
