//! Gradient and CAM methods chosen by name at run time (the command line, config files), with one set of
//! options that each method takes what it needs from.

use std::fmt;
use std::str::FromStr;

use firelight_cam::{
    AblationCam, Cam, CamWeighting, EigenCam, EigenGradCam, GradCam, GradCamElementWise,
    GradCamPlusPlus, HiResCam, LayerCam, ScoreCam, XGradCam,
};
use firelight_core::{Baseline, DynTensor, Error, Model, Result, Target};
use firelight_grad::{
    Attribution, Deconvolution, GradientShap, GuidedBackprop, InputXGradient, IntegratedGradients,
    LayerActivation, LayerConductance, LayerGradientXActivation, LayerIntegratedGradients,
    NoiseTunnel, Saliency,
};

/// A gradient method, by its Captum-style snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `integrated_gradients` (alias `ig`).
    IntegratedGradients,
    /// `saliency`.
    Saliency,
    /// `input_x_gradient`.
    InputXGradient,
    /// `smoothgrad`: NoiseTunnel over Saliency.
    SmoothGrad,
    /// `gradient_shap`.
    GradientShap,
    /// `guided_backprop`.
    GuidedBackprop,
    /// `deconvolution`.
    Deconvolution,
    /// `layer_activation` (needs a layer).
    LayerActivation,
    /// `layer_gradient_x_activation` (needs a layer).
    LayerGradientXActivation,
    /// `layer_integrated_gradients` (needs a layer).
    LayerIntegratedGradients,
    /// `layer_conductance` (needs a layer).
    LayerConductance,
    /// `gradcam`: Grad-CAM at a layer, upsampled to the input (needs a layer).
    GradCam,
    /// `hirescam` (needs a layer).
    HiResCam,
    /// `gradcamelementwise` (needs a layer).
    GradCamElementWise,
    /// `gradcam++` (needs a layer).
    GradCamPlusPlus,
    /// `xgradcam` (needs a layer).
    XGradCam,
    /// `layercam` (needs a layer).
    LayerCam,
    /// `eigencam`: the layer's first principal component (needs a layer).
    EigenCam,
    /// `eigengradcam` (needs a layer).
    EigenGradCam,
    /// `scorecam`: channels weighted by the score of the input masked with them (needs a layer).
    ScoreCam,
    /// `ablationcam`: channels weighted by the score lost when they are ablated (needs a layer).
    AblationCam,
}

impl Method {
    /// Every method, in the order `--help` lists them.
    pub const ALL: [Method; 21] = [
        Method::IntegratedGradients,
        Method::Saliency,
        Method::InputXGradient,
        Method::SmoothGrad,
        Method::GradientShap,
        Method::GuidedBackprop,
        Method::Deconvolution,
        Method::LayerActivation,
        Method::LayerGradientXActivation,
        Method::LayerIntegratedGradients,
        Method::LayerConductance,
        Method::GradCam,
        Method::HiResCam,
        Method::GradCamElementWise,
        Method::GradCamPlusPlus,
        Method::XGradCam,
        Method::LayerCam,
        Method::EigenCam,
        Method::EigenGradCam,
        Method::ScoreCam,
        Method::AblationCam,
    ];

    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            Method::IntegratedGradients => "integrated_gradients",
            Method::Saliency => "saliency",
            Method::InputXGradient => "input_x_gradient",
            Method::SmoothGrad => "smoothgrad",
            Method::GradientShap => "gradient_shap",
            Method::GuidedBackprop => "guided_backprop",
            Method::Deconvolution => "deconvolution",
            Method::LayerActivation => "layer_activation",
            Method::LayerGradientXActivation => "layer_gradient_x_activation",
            Method::LayerIntegratedGradients => "layer_integrated_gradients",
            Method::LayerConductance => "layer_conductance",
            Method::GradCam => "gradcam",
            Method::HiResCam => "hirescam",
            Method::GradCamElementWise => "gradcamelementwise",
            Method::GradCamPlusPlus => "gradcam++",
            Method::XGradCam => "xgradcam",
            Method::LayerCam => "layercam",
            Method::EigenCam => "eigencam",
            Method::EigenGradCam => "eigengradcam",
            Method::ScoreCam => "scorecam",
            Method::AblationCam => "ablationcam",
        }
    }

    /// Whether the method is a class activation map: it reads a layer (`--layer`) and returns one
    /// map per input at the input's size, `[batch, 1, height, width]`.
    pub fn is_cam(self) -> bool {
        matches!(
            self,
            Method::GradCam
                | Method::HiResCam
                | Method::GradCamElementWise
                | Method::GradCamPlusPlus
                | Method::XGradCam
                | Method::LayerCam
                | Method::EigenCam
                | Method::EigenGradCam
                | Method::ScoreCam
                | Method::AblationCam
        )
    }

    /// Whether the method attributes to a layer (and needs [`MethodOptions::layer`]).
    pub fn is_layer_method(self) -> bool {
        matches!(
            self,
            Method::LayerActivation
                | Method::LayerGradientXActivation
                | Method::LayerIntegratedGradients
                | Method::LayerConductance
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "ig" {
            return Ok(Method::IntegratedGradients);
        }
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::parameter(
                    "method",
                    s,
                    format!(
                        "known methods: {}",
                        Method::ALL.map(Method::name).join(", ")
                    ),
                )
            })
    }
}

/// Options shared by the methods; each takes what applies to it.
#[derive(Clone, Debug)]
pub struct MethodOptions {
    /// Path steps for the integrated methods (default 50).
    pub n_steps: usize,
    /// Baselines for IG, layer IG and conductance; the distribution for GradientSHAP.
    pub baselines: Baseline,
    /// Rows per forward/backward for the methods that expand a batch.
    pub internal_batch_size: Option<usize>,
    /// Seed of SmoothGrad's and GradientSHAP's draws.
    pub seed: u64,
    /// Noisy copies (SmoothGrad) or draws (GradientSHAP) per input.
    pub samples: usize,
    /// Noise standard deviation, in input units.
    pub stdevs: f32,
    /// The layer of a layer method or CAM.
    pub layer: Option<String>,
    /// CAMs: the first principal component of the weighted activations instead of their sum.
    pub eigen_smooth: bool,
    /// CAMs: the mean over six test-time augmentations (flip x brightness).
    pub aug_smooth: bool,
}

impl Default for MethodOptions {
    fn default() -> Self {
        Self {
            n_steps: 50,
            baselines: Baseline::Zeros,
            internal_batch_size: None,
            seed: 0,
            samples: 16,
            stdevs: 0.15,
            layer: None,
            eigen_smooth: false,
            aug_smooth: false,
        }
    }
}

/// Runs `method` on `model` for `inputs` and `target`.
pub fn attribute(
    method: Method,
    model: &dyn Model,
    inputs: &DynTensor,
    target: &Target,
    options: &MethodOptions,
) -> Result<DynTensor> {
    let o = options;
    let layer = || {
        o.layer.clone().ok_or_else(|| {
            Error::parameter(
                "layer",
                "none",
                format!("{method} needs a layer (--layer NAME)"),
            )
        })
    };
    macro_rules! batched {
        ($builder:expr) => {
            match o.internal_batch_size {
                Some(n) => $builder.internal_batch_size(n),
                None => $builder,
            }
        };
    }
    match method {
        Method::IntegratedGradients => batched!(
            IntegratedGradients::new(model)
                .n_steps(o.n_steps)
                .baselines(o.baselines.clone())
        )
        .attribute(inputs, target),
        Method::Saliency => Saliency::new(model).attribute(inputs, target),
        Method::InputXGradient => InputXGradient::new(model).attribute(inputs, target),
        Method::SmoothGrad => {
            let tunnel = NoiseTunnel::new(Saliency::new(model))
                .nt_samples(o.samples)
                .stdevs(o.stdevs)
                .seed(o.seed);
            match o.internal_batch_size {
                Some(n) => tunnel.nt_samples_batch_size((n / inputs.batch().max(1)).max(1)),
                None => tunnel,
            }
            .attribute(inputs, target)
        }
        Method::GradientShap => batched!(
            GradientShap::new(model)
                .n_samples(o.samples)
                .stdevs(o.stdevs)
                .baselines(o.baselines.clone())
                .seed(o.seed)
        )
        .attribute(inputs, target),
        Method::GuidedBackprop => GuidedBackprop::new(model).attribute(inputs, target),
        Method::Deconvolution => Deconvolution::new(model).attribute(inputs, target),
        Method::LayerActivation => LayerActivation::new(model, layer()?)?.attribute(inputs, target),
        Method::LayerGradientXActivation => {
            LayerGradientXActivation::new(model, layer()?)?.attribute(inputs, target)
        }
        Method::LayerIntegratedGradients => batched!(
            LayerIntegratedGradients::new(model, layer()?)?
                .n_steps(o.n_steps)
                .baselines(o.baselines.clone())
        )
        .attribute(inputs, target),
        Method::LayerConductance => batched!(
            LayerConductance::new(model, layer()?)?
                .n_steps(o.n_steps)
                .baselines(o.baselines.clone())
        )
        .attribute(inputs, target),
        Method::GradCam => cam(o, layer()?, GradCam, model, inputs, target),
        Method::HiResCam => cam(o, layer()?, HiResCam, model, inputs, target),
        Method::GradCamElementWise => cam(o, layer()?, GradCamElementWise, model, inputs, target),
        Method::GradCamPlusPlus => cam(o, layer()?, GradCamPlusPlus, model, inputs, target),
        Method::XGradCam => cam(o, layer()?, XGradCam, model, inputs, target),
        Method::LayerCam => cam(o, layer()?, LayerCam, model, inputs, target),
        Method::EigenCam => cam(o, layer()?, EigenCam, model, inputs, target),
        Method::EigenGradCam => cam(o, layer()?, EigenGradCam, model, inputs, target),
        Method::ScoreCam => {
            let weighting = o
                .internal_batch_size
                .map_or_else(ScoreCam::default, ScoreCam::with_batch_size);
            cam(o, layer()?, weighting, model, inputs, target)
        }
        Method::AblationCam => {
            let weighting = o
                .internal_batch_size
                .map_or_else(AblationCam::default, AblationCam::with_batch_size);
            cam(o, layer()?, weighting, model, inputs, target)
        }
    }
}

/// A CAM as an image attribution: `[batch, 1, height, width]`.
fn cam(
    options: &MethodOptions,
    layer: String,
    weighting: impl CamWeighting,
    model: &dyn Model,
    inputs: &DynTensor,
    target: &Target,
) -> Result<DynTensor> {
    let map = Cam::new(model, [layer], weighting)?
        .eigen_smooth(options.eigen_smooth)
        .aug_smooth(options.aug_smooth)
        .attribute(inputs, target)?;
    let [batch, height, width]: [usize; 3] =
        map.shape().try_into().expect("CAMs are [batch, h, w]");
    DynTensor::from_flat(map.into_flat(), vec![batch, 1, height, width])
}
