//! The typed method registry: one enum variant per method, each holding its typed options with
//! Captum's defaults (as Burn's `ActivationConfig` holds activations). The command line's names,
//! its `--help`, the README's method table and run-time choice by name all derive from
//! [`MethodConfig::all`]; there is no second list.

use std::fmt::Write as _;
use std::sync::Arc;

use firelight_cam::{
    AblationCam, Cam, CamWeighting, EigenCam, EigenGradCam, GradCam, GradCamElementWise,
    GradCamPlusPlus, HiResCam, LayerCam, ScoreCam, XGradCam,
};
use firelight_core::error::closest_names;
use firelight_core::lrp::LrpComposite;
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Error, Inputs, Model, Neuron, NeuronSelector,
    Result, Target,
};
use firelight_grad::{
    Approximation, Deconvolution, DeepLift, DeepLiftShap, GradientShap, GuidedBackprop,
    GuidedGradCam, InputXGradient, IntegratedGradients, InternalInfluence, LayerActivation,
    LayerConductance, LayerDeepLift, LayerGradCam, LayerGradientXActivation,
    LayerIntegratedGradients, Lrp, NeuronConductance, NoiseTunnel, NoiseType, Saliency,
};
use firelight_perturb::{
    FeatureAblation, FeatureMask, FeaturePermutation, InterpretableModel, KernelShap,
    LayerFeatureAblation, Lime, Occlusion, ShapleyValueSampling, ShapleyValues, SimilarityKernel,
};

/// Which family a method belongs to (and so what it needs and returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Gradients at the input: one attribution per attributed input, shaped like it.
    Gradient,
    /// Attribution to a layer's units (needs a layer), shaped like the layer.
    Layer,
    /// A class activation map at a layer (needs a layer), `[batch, 1, height, width]`.
    Cam,
    /// Model-agnostic: features switched off and the score read again.
    Perturbation,
}

impl Family {
    /// The family's name in tables and help.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gradient => "gradient",
            Family::Layer => "layer",
            Family::Cam => "CAM",
            Family::Perturbation => "perturbation",
        }
    }
}

/// What the registry says of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodInfo {
    /// The name on the command line and in files.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Its family.
    pub family: Family,
    /// The reference implementation it matches (`Captum: IntegratedGradients`, ...).
    pub reference: &'static str,
    /// One line on what it computes.
    pub about: &'static str,
}

impl MethodInfo {
    /// Whether the method needs a layer: layer methods, CAMs, Guided Grad-CAM (an input
    /// attribution weighted by a layer's map) and Neuron Conductance (through a layer's unit).
    pub fn needs_layer(&self) -> bool {
        matches!(self.family, Family::Layer | Family::Cam)
            || matches!(self.name, "guided_grad_cam" | "neuron_conductance")
    }
}

/// Options of Integrated Gradients and Layer Integrated Gradients (Captum's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntegratedGradientsConfig {
    /// Points on the path (`n_steps`, 50).
    pub n_steps: usize,
    /// The quadrature (`method`, Gauss-Legendre).
    pub method: Approximation,
    /// Rows per forward/backward (`internal_batch_size`, all at once).
    pub internal_batch_size: Option<usize>,
    /// Multiply by `inputs - baselines` (`multiply_by_inputs`, true).
    pub multiply_by_inputs: bool,
    /// Integrated Gradients only: double `n_steps` until every sample's convergence delta is
    /// within this bound (`IntegratedGradients::attribute_to_delta`), up to `max_steps`.
    pub target_delta: Option<f32>,
    /// The most steps a `target_delta` run may take (1024).
    pub max_steps: usize,
}

impl Default for IntegratedGradientsConfig {
    fn default() -> Self {
        Self {
            n_steps: 50,
            method: Approximation::GaussLegendre,
            internal_batch_size: None,
            multiply_by_inputs: true,
            target_delta: None,
            max_steps: 1024,
        }
    }
}

/// Options of Saliency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SaliencyConfig {
    /// Absolute gradients (`abs`, true); `false` keeps their sign.
    pub abs: bool,
}

impl Default for SaliencyConfig {
    fn default() -> Self {
        Self { abs: true }
    }
}

/// Options of NoiseTunnel over Saliency (SmoothGrad and its variants), Captum's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseTunnelConfig {
    /// How the noisy attributions combine (`nt_type`, smoothgrad).
    pub nt_type: NoiseType,
    /// Noisy copies per input (`nt_samples`, 5).
    pub nt_samples: usize,
    /// Copies per pass (`nt_samples_batch_size`, all at once).
    pub nt_samples_batch_size: Option<usize>,
    /// Noise standard deviation in input units (`stdevs`, 1.0).
    pub stdevs: f32,
    /// Seed of the noise.
    pub seed: u64,
    /// Saliency's `abs` for the wrapped method (true).
    pub abs: bool,
}

impl Default for NoiseTunnelConfig {
    fn default() -> Self {
        Self {
            nt_type: NoiseType::SmoothGrad,
            nt_samples: 5,
            nt_samples_batch_size: None,
            stdevs: 1.0,
            seed: 0,
            abs: true,
        }
    }
}

/// Options of GradientSHAP, Captum's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientShapConfig {
    /// Draws per input (`n_samples`, 5).
    pub n_samples: usize,
    /// Noise standard deviation (`stdevs`, 0.0).
    pub stdevs: f32,
    /// Seed of the draws.
    pub seed: u64,
    /// Rows per forward/backward (all at once).
    pub internal_batch_size: Option<usize>,
    /// Multiply by `inputs - baselines` (true).
    pub multiply_by_inputs: bool,
}

impl Default for GradientShapConfig {
    fn default() -> Self {
        Self {
            n_samples: 5,
            stdevs: 0.0,
            seed: 0,
            internal_batch_size: None,
            multiply_by_inputs: true,
        }
    }
}

/// Options of DeepLift and DeepLiftShap, Captum's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeepLiftConfig {
    /// Multiply the multipliers by `inputs - baselines` (`multiply_by_inputs`, true).
    pub multiply_by_inputs: bool,
}

impl Default for DeepLiftConfig {
    fn default() -> Self {
        Self {
            multiply_by_inputs: true,
        }
    }
}

/// Options of Internal Influence: those of Layer Conductance (`n_steps` 50, Gauss-Legendre, all
/// rows at once).
pub type InternalInfluenceConfig = LayerConductanceConfig;

/// Options of LRP.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LrpConfig {
    /// The rules per layer (zennit's EpsilonPlusFlat by default).
    pub composite: LrpComposite,
}

/// Options of Captum's Layer Grad-CAM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerGradCamConfig {
    /// Pass the map through a ReLU (`relu_attributions`, false).
    pub relu_attributions: bool,
    /// Sum the weighted channels (`attr_dim_summation`, true).
    pub attr_dim_summation: bool,
}

impl Default for LayerGradCamConfig {
    fn default() -> Self {
        Self {
            relu_attributions: false,
            attr_dim_summation: true,
        }
    }
}

/// Options of Layer Conductance, Captum's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerConductanceConfig {
    /// Points on the path (`n_steps`, 50).
    pub n_steps: usize,
    /// The quadrature (Gauss-Legendre).
    pub method: Approximation,
    /// Rows per forward/backward (all at once).
    pub internal_batch_size: Option<usize>,
}

impl Default for LayerConductanceConfig {
    fn default() -> Self {
        Self {
            n_steps: 50,
            method: Approximation::GaussLegendre,
            internal_batch_size: None,
        }
    }
}

/// Options of Layer Gradient X Activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerGradientXActivationConfig {
    /// Multiply the gradient by the activation (true).
    pub multiply_by_inputs: bool,
}

impl Default for LayerGradientXActivationConfig {
    fn default() -> Self {
        Self {
            multiply_by_inputs: true,
        }
    }
}

/// Options of Feature Ablation, exact Shapley values and Layer Feature Ablation (Captum's
/// defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AblationConfig {
    /// Perturbed copies of the batch per forward pass (`perturbations_per_eval`, 1); the
    /// results do not depend on it.
    pub perturbations_per_eval: usize,
}

impl Default for AblationConfig {
    fn default() -> Self {
        Self {
            perturbations_per_eval: 1,
        }
    }
}

/// Options of Feature Permutation (Captum's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeaturePermutationConfig {
    /// Permuted copies of the batch per forward pass (`perturbations_per_eval`, 1).
    pub perturbations_per_eval: usize,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for FeaturePermutationConfig {
    fn default() -> Self {
        Self {
            perturbations_per_eval: 1,
            seed: 0,
        }
    }
}

/// Options of Occlusion. Captum has no default window; the registry's square window slides over
/// the last two axes of each sample (the pixels; the last axis of a one-axis sample) and covers
/// the other axes (the channels) whole: `window = 16, stride = 8` is Captum's
/// `sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8)` on an RGB photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OcclusionConfig {
    /// The side of the square window (16).
    pub window: usize,
    /// The step between window positions (8; Captum's default stride is 1).
    pub stride: usize,
    /// Occluded copies of the batch per forward pass (`perturbations_per_eval`, 1).
    pub perturbations_per_eval: usize,
}

impl Default for OcclusionConfig {
    fn default() -> Self {
        Self {
            window: 16,
            stride: 8,
            perturbations_per_eval: 1,
        }
    }
}

impl OcclusionConfig {
    /// Captum's `sliding_window_shapes` and `strides` for a sample of shape `sample` (no batch
    /// axis).
    pub fn window_and_strides(&self, sample: &[usize]) -> (Vec<usize>, Vec<usize>) {
        let spatial = sample.len().min(2);
        let whole = sample.len() - spatial;
        let window = sample[..whole]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(self.window, spatial))
            .collect();
        let strides = std::iter::repeat_n(1, whole)
            .chain(std::iter::repeat_n(self.stride, spatial))
            .collect();
        (window, strides)
    }
}

/// Options of Shapley Value Sampling and KernelSHAP (Captum's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Permutations (Shapley sampling) or coalitions (KernelSHAP) drawn (`n_samples`, 25).
    pub n_samples: usize,
    /// Perturbed copies of the batch per forward pass (`perturbations_per_eval`, 1).
    pub perturbations_per_eval: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            n_samples: 25,
            perturbations_per_eval: 1,
            seed: 0,
        }
    }
}

/// Options of LIME (Captum's defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LimeConfig {
    /// Samples, their batching and seed (`n_samples` 25, as Captum's code says).
    pub sampling: SamplingConfig,
    /// The interpretable model (`SkLearnLasso(alpha=0.01)`).
    pub interpretable_model: InterpretableModel,
    /// The similarity kernel (exponential of the cosine distance, width 1).
    pub similarity: SimilarityKernel,
}

/// The class activation maps, as pytorch-grad-cam names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CamKind {
    /// Grad-CAM.
    GradCam,
    /// HiResCAM.
    HiResCam,
    /// Grad-CAM element-wise.
    GradCamElementWise,
    /// Grad-CAM++.
    GradCamPlusPlus,
    /// XGrad-CAM.
    XGradCam,
    /// LayerCAM.
    LayerCam,
    /// Eigen-CAM.
    EigenCam,
    /// EigenGrad-CAM.
    EigenGradCam,
    /// Score-CAM.
    ScoreCam,
    /// Ablation-CAM.
    AblationCam,
}

impl CamKind {
    /// Every CAM, in the order `--help` lists them.
    pub const ALL: [CamKind; 10] = [
        CamKind::GradCam,
        CamKind::HiResCam,
        CamKind::GradCamElementWise,
        CamKind::GradCamPlusPlus,
        CamKind::XGradCam,
        CamKind::LayerCam,
        CamKind::EigenCam,
        CamKind::EigenGradCam,
        CamKind::ScoreCam,
        CamKind::AblationCam,
    ];

    fn info(self) -> MethodInfo {
        let (name, reference, about) = match self {
            CamKind::GradCam => (
                "gradcam",
                "pytorch-grad-cam: GradCAM",
                "channels weighted by their mean gradient",
            ),
            CamKind::HiResCam => (
                "hirescam",
                "pytorch-grad-cam: HiResCAM",
                "activations times gradients, summed over channels",
            ),
            CamKind::GradCamElementWise => (
                "gradcamelementwise",
                "pytorch-grad-cam: GradCAMElementWise",
                "ReLU of activations times gradients, summed",
            ),
            CamKind::GradCamPlusPlus => (
                "gradcam++",
                "pytorch-grad-cam: GradCAMPlusPlus",
                "second-order channel weights",
            ),
            CamKind::XGradCam => (
                "xgradcam",
                "pytorch-grad-cam: XGradCAM",
                "gradients weighted by normalised activations",
            ),
            CamKind::LayerCam => (
                "layercam",
                "pytorch-grad-cam: LayerCAM",
                "activations times positive gradients",
            ),
            CamKind::EigenCam => (
                "eigencam",
                "pytorch-grad-cam: EigenCAM",
                "the activations' first principal component",
            ),
            CamKind::EigenGradCam => (
                "eigengradcam",
                "pytorch-grad-cam: EigenGradCAM",
                "first principal component of activations times gradients",
            ),
            CamKind::ScoreCam => (
                "scorecam",
                "pytorch-grad-cam: ScoreCAM",
                "channels weighted by the score of the photo masked with them",
            ),
            CamKind::AblationCam => (
                "ablationcam",
                "pytorch-grad-cam: AblationCAM",
                "channels weighted by the score lost when they are ablated",
            ),
        };
        MethodInfo {
            name,
            aliases: &[],
            family: Family::Cam,
            reference,
            about,
        }
    }
}

/// Options of the CAMs (pytorch-grad-cam's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CamConfig {
    /// Which CAM.
    pub kind: CamKind,
    /// The first principal component of the weighted activations instead of their sum (false).
    pub eigen_smooth: bool,
    /// The mean over six test-time augmentations (false).
    pub aug_smooth: bool,
    /// Score-CAM's and Ablation-CAM's copies per forward pass (16 and 32).
    pub batch_size: Option<usize>,
}

impl CamConfig {
    fn new(kind: CamKind) -> Self {
        Self {
            kind,
            eigen_smooth: false,
            aug_smooth: false,
            batch_size: None,
        }
    }
}

/// One method and its typed options. [`MethodConfig::all`] lists every method with Captum's
/// (or pytorch-grad-cam's) defaults; [`MethodConfig::from_name`] picks one by name.
#[derive(Clone, Debug, PartialEq)]
pub enum MethodConfig {
    /// Integrated Gradients.
    IntegratedGradients(IntegratedGradientsConfig),
    /// Saliency.
    Saliency(SaliencyConfig),
    /// Input X Gradient.
    InputXGradient,
    /// NoiseTunnel over Saliency (SmoothGrad).
    SmoothGrad(NoiseTunnelConfig),
    /// GradientSHAP.
    GradientShap(GradientShapConfig),
    /// Guided Backpropagation.
    GuidedBackprop,
    /// Deconvolution.
    Deconvolution,
    /// DeepLift (Rescale rule).
    DeepLift(DeepLiftConfig),
    /// DeepLiftShap.
    DeepLiftShap(DeepLiftConfig),
    /// Guided Grad-CAM.
    GuidedGradCam,
    /// Layer-wise Relevance Propagation.
    Lrp(LrpConfig),
    /// Neuron Conductance (needs a layer and a neuron): Integrated Gradients' options, with
    /// Captum's Riemann trapezoid as its default quadrature.
    NeuronConductance(IntegratedGradientsConfig),
    /// A layer's activation.
    LayerActivation,
    /// Layer Gradient X Activation.
    LayerGradientXActivation(LayerGradientXActivationConfig),
    /// Layer Integrated Gradients.
    LayerIntegratedGradients(IntegratedGradientsConfig),
    /// Layer Conductance.
    LayerConductance(LayerConductanceConfig),
    /// Internal Influence.
    InternalInfluence(InternalInfluenceConfig),
    /// Layer DeepLift.
    LayerDeepLift(DeepLiftConfig),
    /// Layer GradientSHAP.
    LayerGradientShap(GradientShapConfig),
    /// Captum's Layer Grad-CAM (at the layer's resolution).
    LayerGradCam(LayerGradCamConfig),
    /// A class activation map.
    Cam(CamConfig),
    /// Feature Ablation.
    FeatureAblation(AblationConfig),
    /// Feature Permutation.
    FeaturePermutation(FeaturePermutationConfig),
    /// Occlusion.
    Occlusion(OcclusionConfig),
    /// Shapley Value Sampling.
    ShapleyValueSampling(SamplingConfig),
    /// Exact Shapley values.
    ShapleyValues(AblationConfig),
    /// KernelSHAP.
    KernelShap(SamplingConfig),
    /// LIME.
    Lime(LimeConfig),
    /// Layer Feature Ablation.
    LayerFeatureAblation(AblationConfig),
}

/// Options given on the command line (or in a config file) that apply to every chosen method
/// that has them; [`MethodConfig::apply`] reports which it took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `n_steps` of the path methods.
    pub n_steps: Option<usize>,
    /// The quadrature of the path methods.
    pub ig_method: Option<Approximation>,
    /// `nt_samples` (NoiseTunnel) and `n_samples` (GradientSHAP, sampling methods).
    pub n_samples: Option<usize>,
    /// NoiseTunnel's combination.
    pub nt_type: Option<NoiseType>,
    /// Noise standard deviation.
    pub stdevs: Option<f32>,
    /// Seed of stochastic methods.
    pub seed: Option<u64>,
    /// Rows per forward/backward.
    pub internal_batch_size: Option<usize>,
    /// Signed attributions (Saliency and SmoothGrad without `abs`).
    pub signed: bool,
    /// `multiply_by_inputs` of the methods that have it.
    pub multiply_by_inputs: Option<bool>,
    /// CAMs' `eigen_smooth`.
    pub eigen_smooth: bool,
    /// CAMs' `aug_smooth`.
    pub aug_smooth: bool,
    /// Perturbed copies per forward pass of the perturbation methods.
    pub perturbations_per_eval: Option<usize>,
    /// Occlusion's window side.
    pub window: Option<usize>,
    /// Occlusion's stride.
    pub stride: Option<usize>,
    /// LRP's composite.
    pub lrp_composite: Option<LrpComposite>,
    /// Integrated Gradients' bound on the convergence delta (steps doubled until within it).
    pub target_delta: Option<f32>,
    /// The most steps a `target_delta` run may take.
    pub max_steps: Option<usize>,
}

/// What a run needs besides the method: the layer of layer methods and CAMs, the baselines, the
/// perturbation methods' feature mask, and where progress goes.
#[derive(Clone, Debug, Default)]
pub struct RunContext {
    /// The layer (layer methods and CAMs).
    pub layer: Option<String>,
    /// The baselines of path, Shapley and perturbation methods (zeros by default).
    pub baselines: Baseline,
    /// Which elements form one feature for the perturbation methods (Captum's `feature_mask`;
    /// every element its own by default). Occlusion and Layer Feature Ablation do not use it.
    pub feature_mask: FeatureMask,
    /// Told `(done, total)` perturbations as the perturbation methods run (a progress bar).
    pub progress: Option<ProgressCallback>,
    /// Explain these units of [`RunContext::layer`] instead of the target (Captum's `Neuron*`
    /// methods): an input method then runs on [`Neuron`] with `Target::class(0)`.
    pub neuron: Option<NeuronSelector>,
    /// Told what a run found that its result does not carry (the steps Integrated Gradients
    /// took to reach its `target_delta`).
    pub report: Option<ReportCallback>,
}

/// A shared callback for one line about a run: what [`RunContext::report`] holds.
#[derive(Clone)]
pub struct ReportCallback(pub Arc<dyn Fn(&str) + Send + Sync>);

impl ReportCallback {
    /// A callback from a closure.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ReportCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportCallback")
    }
}

/// A shared progress callback, `(done, total)`: what [`RunContext::progress`] holds.
#[derive(Clone)]
pub struct ProgressCallback(pub Arc<dyn Fn(usize, usize) + Send + Sync>);

impl ProgressCallback {
    /// A callback from a closure.
    pub fn new(f: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ProgressCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressCallback")
    }
}

impl MethodConfig {
    /// Every method with its defaults, in the order `--help` and the README list them.
    pub fn all() -> Vec<MethodConfig> {
        let mut all = vec![
            MethodConfig::IntegratedGradients(IntegratedGradientsConfig::default()),
            MethodConfig::Saliency(SaliencyConfig::default()),
            MethodConfig::InputXGradient,
            MethodConfig::SmoothGrad(NoiseTunnelConfig::default()),
            MethodConfig::GradientShap(GradientShapConfig::default()),
            MethodConfig::GuidedBackprop,
            MethodConfig::Deconvolution,
            MethodConfig::DeepLift(DeepLiftConfig::default()),
            MethodConfig::DeepLiftShap(DeepLiftConfig::default()),
            MethodConfig::GuidedGradCam,
            MethodConfig::Lrp(LrpConfig::default()),
            MethodConfig::NeuronConductance(IntegratedGradientsConfig {
                method: Approximation::RiemannTrapezoid,
                ..IntegratedGradientsConfig::default()
            }),
            MethodConfig::LayerActivation,
            MethodConfig::LayerGradientXActivation(LayerGradientXActivationConfig::default()),
            MethodConfig::LayerIntegratedGradients(IntegratedGradientsConfig::default()),
            MethodConfig::LayerConductance(LayerConductanceConfig::default()),
            MethodConfig::InternalInfluence(InternalInfluenceConfig::default()),
            MethodConfig::LayerDeepLift(DeepLiftConfig::default()),
            MethodConfig::LayerGradientShap(GradientShapConfig::default()),
            MethodConfig::LayerGradCam(LayerGradCamConfig::default()),
        ];
        all.extend(CamKind::ALL.map(|k| MethodConfig::Cam(CamConfig::new(k))));
        all.extend([
            MethodConfig::FeatureAblation(AblationConfig::default()),
            MethodConfig::FeaturePermutation(FeaturePermutationConfig::default()),
            MethodConfig::Occlusion(OcclusionConfig::default()),
            MethodConfig::ShapleyValueSampling(SamplingConfig::default()),
            MethodConfig::ShapleyValues(AblationConfig::default()),
            MethodConfig::KernelShap(SamplingConfig::default()),
            MethodConfig::Lime(LimeConfig::default()),
            MethodConfig::LayerFeatureAblation(AblationConfig::default()),
        ]);
        all
    }

    /// Whether the method draws random numbers (it has a seed).
    pub fn is_stochastic(&self) -> bool {
        self.clone()
            .apply(&Overrides {
                seed: Some(0),
                ..Overrides::default()
            })
            .contains(&"seed")
    }

    /// This method with its seed set to `seed` (unchanged when it has none).
    pub fn seeded(&self, seed: u64) -> MethodConfig {
        let mut own = self.clone();
        own.apply(&Overrides {
            seed: Some(seed),
            ..Overrides::default()
        });
        own
    }

    /// Whether the method takes [`RunContext::feature_mask`] (the perturbation methods but
    /// Occlusion, which slides its window, and Layer Feature Ablation, which masks the layer).
    pub fn uses_feature_mask(&self) -> bool {
        matches!(
            self,
            MethodConfig::FeatureAblation(_)
                | MethodConfig::FeaturePermutation(_)
                | MethodConfig::ShapleyValueSampling(_)
                | MethodConfig::ShapleyValues(_)
                | MethodConfig::KernelShap(_)
                | MethodConfig::Lime(_)
        )
    }

    /// The method named `name` (or one of its aliases; `-` reads as `_`) with its defaults; an
    /// unknown name fails with the closest names.
    pub fn from_name(name: &str) -> Result<MethodConfig> {
        // `feature-ablation` is `feature_ablation`, as clap spells value names.
        let spelled = name.trim().replace('-', "_");
        let name = spelled.as_str();
        let all = MethodConfig::all();
        if let Some(found) = all.iter().find(|m| {
            let info = m.info();
            info.name == name || info.aliases.contains(&name)
        }) {
            return Ok(found.clone());
        }
        let names: Vec<String> = all.iter().map(|m| m.info().name.to_string()).collect();
        Err(Error::parameter(
            "method",
            name,
            format!(
                "unknown method; closest: {} (all: {})",
                closest_names(name, &names, 3).join(", "),
                names.join(", ")
            ),
        ))
    }

    /// What the registry says of this method.
    pub fn info(&self) -> MethodInfo {
        let info = |name, aliases, family, reference, about| MethodInfo {
            name,
            aliases,
            family,
            reference,
            about,
        };
        match self {
            MethodConfig::IntegratedGradients(_) => info(
                "integrated_gradients",
                &["ig"],
                Family::Gradient,
                "Captum: IntegratedGradients",
                "gradients averaged from a baseline to the input, times their difference",
            ),
            MethodConfig::Saliency(_) => info(
                "saliency",
                &[],
                Family::Gradient,
                "Captum: Saliency",
                "the gradient (absolute by default)",
            ),
            MethodConfig::InputXGradient => info(
                "input_x_gradient",
                &[],
                Family::Gradient,
                "Captum: InputXGradient",
                "the gradient times the input",
            ),
            MethodConfig::SmoothGrad(_) => info(
                "smoothgrad",
                &["noise_tunnel"],
                Family::Gradient,
                "Captum: NoiseTunnel(Saliency)",
                "Saliency averaged over noisy copies (smoothgrad, smoothgrad_sq, vargrad)",
            ),
            MethodConfig::GradientShap(_) => info(
                "gradient_shap",
                &[],
                Family::Gradient,
                "Captum: GradientShap",
                "expected gradients between random baselines and noisy inputs",
            ),
            MethodConfig::GuidedBackprop => info(
                "guided_backprop",
                &[],
                Family::Gradient,
                "Captum: GuidedBackprop",
                "gradients through ReLUs that pass only positive signal back",
            ),
            MethodConfig::Deconvolution => info(
                "deconvolution",
                &[],
                Family::Gradient,
                "Captum: Deconvolution",
                "gradients through ReLUs applied to the gradient",
            ),
            MethodConfig::DeepLift(_) => info(
                "deeplift",
                &["deep_lift"],
                Family::Gradient,
                "Captum: DeepLift",
                "nonlinearities pass back (f(x) - f(x0)) / (x - x0): sums to f(x) - f(x0)",
            ),
            MethodConfig::DeepLiftShap(_) => info(
                "deeplift_shap",
                &["deep_lift_shap"],
                Family::Gradient,
                "Captum: DeepLiftShap",
                "DeepLift averaged over a distribution of baselines",
            ),
            MethodConfig::GuidedGradCam => info(
                "guided_grad_cam",
                &[],
                Family::Gradient,
                "Captum: GuidedGradCam",
                "Guided Backprop times the layer's Grad-CAM map (needs --layer)",
            ),
            MethodConfig::InternalInfluence(_) => info(
                "internal_influence",
                &[],
                Family::Layer,
                "Captum: InternalInfluence",
                "the layer's gradient integrated along the path from the baseline",
            ),
            MethodConfig::Lrp(_) => info(
                "lrp",
                &[],
                Family::Gradient,
                "zennit: composites (Captum: LRP)",
                "relevance passed down layer by layer by each layer's rule (ONNX models)",
            ),
            MethodConfig::NeuronConductance(_) => info(
                "neuron_conductance",
                &[],
                Family::Gradient,
                "Captum: NeuronConductance",
                "the target's IG flowing through one unit (needs --layer and --neuron)",
            ),
            MethodConfig::LayerDeepLift(_) => info(
                "layer_deeplift",
                &["layer_deep_lift"],
                Family::Layer,
                "Captum: LayerDeepLift",
                "DeepLift's multipliers at the layer times its change",
            ),
            MethodConfig::LayerGradientShap(_) => info(
                "layer_gradient_shap",
                &[],
                Family::Layer,
                "Captum: LayerGradientShap",
                "GradientSHAP's expected gradients at the layer times its change",
            ),
            MethodConfig::LayerGradCam(_) => info(
                "layer_grad_cam",
                &[],
                Family::Layer,
                "Captum: LayerGradCam",
                "Grad-CAM at the layer's own resolution, unnormalised",
            ),
            MethodConfig::LayerActivation => info(
                "layer_activation",
                &[],
                Family::Layer,
                "Captum: LayerActivation",
                "the layer's value",
            ),
            MethodConfig::LayerGradientXActivation(_) => info(
                "layer_gradient_x_activation",
                &[],
                Family::Layer,
                "Captum: LayerGradientXActivation",
                "the layer's gradient times its value",
            ),
            MethodConfig::LayerIntegratedGradients(_) => info(
                "layer_integrated_gradients",
                &["layer_ig"],
                Family::Layer,
                "Captum: LayerIntegratedGradients",
                "Integrated Gradients in the layer's space",
            ),
            MethodConfig::LayerConductance(_) => info(
                "layer_conductance",
                &[],
                Family::Layer,
                "Captum: LayerConductance",
                "how much of the input's IG flows through each unit",
            ),
            MethodConfig::Cam(c) => c.kind.info(),
            MethodConfig::FeatureAblation(_) => info(
                "feature_ablation",
                &["ablation"],
                Family::Perturbation,
                "Captum: FeatureAblation",
                "the score lost when a feature alone is set to its baseline",
            ),
            MethodConfig::FeaturePermutation(_) => info(
                "feature_permutation",
                &["permutation"],
                Family::Perturbation,
                "Captum: FeaturePermutation",
                "the score lost when a feature is shuffled across the batch's rows",
            ),
            MethodConfig::Occlusion(_) => info(
                "occlusion",
                &[],
                Family::Perturbation,
                "Captum: Occlusion",
                "the score lost under a sliding window at the baseline, overlaps averaged",
            ),
            MethodConfig::ShapleyValueSampling(_) => info(
                "shapley_value_sampling",
                &["shapley_sampling"],
                Family::Perturbation,
                "Captum: ShapleyValueSampling",
                "Shapley values estimated over random feature orders",
            ),
            MethodConfig::ShapleyValues(_) => info(
                "shapley_values",
                &["shapley"],
                Family::Perturbation,
                "Captum: ShapleyValues",
                "exact Shapley values over every feature order (few features)",
            ),
            MethodConfig::KernelShap(_) => info(
                "kernel_shap",
                &[],
                Family::Perturbation,
                "Captum: KernelShap",
                "a linear model fitted to coalitions under the Shapley kernel",
            ),
            MethodConfig::Lime(_) => info(
                "lime",
                &[],
                Family::Perturbation,
                "Captum: Lime",
                "a sparse linear model fitted to random coalitions near the input",
            ),
            MethodConfig::LayerFeatureAblation(_) => info(
                "layer_feature_ablation",
                &[],
                Family::Layer,
                "Captum: LayerFeatureAblation",
                "the score lost when a layer's unit is set to zero",
            ),
        }
    }

    /// The options this method takes, with their current values (the defaults in
    /// [`MethodConfig::all`]), Captum's names.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        let batch = |b: Option<usize>| b.map_or_else(|| "all".to_string(), |b| b.to_string());
        match self {
            MethodConfig::IntegratedGradients(c) => vec![
                ("n_steps", c.n_steps.to_string()),
                ("method", c.method.captum_name().to_string()),
                ("internal_batch_size", batch(c.internal_batch_size)),
                ("multiply_by_inputs", c.multiply_by_inputs.to_string()),
                (
                    "target_delta",
                    c.target_delta
                        .map_or_else(|| "none".to_string(), |d| d.to_string()),
                ),
                ("max_steps", c.max_steps.to_string()),
            ],
            MethodConfig::LayerIntegratedGradients(c) | MethodConfig::NeuronConductance(c) => {
                vec![
                    ("n_steps", c.n_steps.to_string()),
                    ("method", c.method.captum_name().to_string()),
                    ("internal_batch_size", batch(c.internal_batch_size)),
                    ("multiply_by_inputs", c.multiply_by_inputs.to_string()),
                ]
            }
            MethodConfig::Saliency(c) => vec![("abs", c.abs.to_string())],
            MethodConfig::SmoothGrad(c) => vec![
                ("nt_type", nt_type_name(c.nt_type).to_string()),
                ("nt_samples", c.nt_samples.to_string()),
                ("stdevs", c.stdevs.to_string()),
                ("abs", c.abs.to_string()),
            ],
            MethodConfig::GradientShap(c) | MethodConfig::LayerGradientShap(c) => vec![
                ("n_samples", c.n_samples.to_string()),
                ("stdevs", c.stdevs.to_string()),
                ("internal_batch_size", batch(c.internal_batch_size)),
                ("multiply_by_inputs", c.multiply_by_inputs.to_string()),
            ],
            MethodConfig::LayerGradientXActivation(c) => {
                vec![("multiply_by_inputs", c.multiply_by_inputs.to_string())]
            }
            MethodConfig::DeepLift(c)
            | MethodConfig::DeepLiftShap(c)
            | MethodConfig::LayerDeepLift(c) => {
                vec![("multiply_by_inputs", c.multiply_by_inputs.to_string())]
            }
            MethodConfig::Lrp(c) => vec![("composite", c.composite.name().to_string())],
            MethodConfig::LayerGradCam(c) => vec![
                ("relu_attributions", c.relu_attributions.to_string()),
                ("attr_dim_summation", c.attr_dim_summation.to_string()),
            ],
            MethodConfig::LayerConductance(c) | MethodConfig::InternalInfluence(c) => vec![
                ("n_steps", c.n_steps.to_string()),
                ("method", c.method.captum_name().to_string()),
                ("internal_batch_size", batch(c.internal_batch_size)),
            ],
            MethodConfig::Cam(c) => {
                let mut options = vec![
                    ("eigen_smooth", c.eigen_smooth.to_string()),
                    ("aug_smooth", c.aug_smooth.to_string()),
                ];
                match c.kind {
                    CamKind::ScoreCam => options.push((
                        "batch_size",
                        c.batch_size
                            .unwrap_or(ScoreCam::default().batch_size)
                            .to_string(),
                    )),
                    CamKind::AblationCam => options.push((
                        "batch_size",
                        c.batch_size
                            .unwrap_or(AblationCam::default().batch_size)
                            .to_string(),
                    )),
                    _ => {}
                }
                options
            }
            MethodConfig::FeatureAblation(c)
            | MethodConfig::ShapleyValues(c)
            | MethodConfig::LayerFeatureAblation(c) => vec![(
                "perturbations_per_eval",
                c.perturbations_per_eval.to_string(),
            )],
            MethodConfig::FeaturePermutation(c) => vec![(
                "perturbations_per_eval",
                c.perturbations_per_eval.to_string(),
            )],
            MethodConfig::Occlusion(c) => vec![
                ("window", c.window.to_string()),
                ("stride", c.stride.to_string()),
                (
                    "perturbations_per_eval",
                    c.perturbations_per_eval.to_string(),
                ),
            ],
            MethodConfig::ShapleyValueSampling(c) | MethodConfig::KernelShap(c) => {
                sampling_options(c)
            }
            MethodConfig::Lime(c) => {
                let mut options = sampling_options(&c.sampling);
                options.push((
                    "interpretable_model",
                    interpretable_model_name(&c.interpretable_model),
                ));
                options.push(("similarity", similarity_name(&c.similarity)));
                options
            }
            MethodConfig::InputXGradient
            | MethodConfig::GuidedBackprop
            | MethodConfig::Deconvolution
            | MethodConfig::GuidedGradCam
            | MethodConfig::LayerActivation => Vec::new(),
        }
    }

    /// Sets every override this method has; returns the names of those it took.
    pub fn apply(&mut self, o: &Overrides) -> Vec<&'static str> {
        let mut took = Vec::new();
        macro_rules! set {
            ($field:expr, $value:expr, $name:literal) => {
                if let Some(v) = $value {
                    $field = v;
                    took.push($name);
                }
            };
        }
        if let MethodConfig::IntegratedGradients(c) = self {
            set!(c.target_delta, o.target_delta.map(Some), "target_delta");
            set!(c.max_steps, o.max_steps, "max_steps");
        }
        match self {
            MethodConfig::IntegratedGradients(c)
            | MethodConfig::LayerIntegratedGradients(c)
            | MethodConfig::NeuronConductance(c) => {
                set!(c.n_steps, o.n_steps, "n_steps");
                set!(c.method, o.ig_method, "ig_method");
                set!(
                    c.internal_batch_size,
                    o.internal_batch_size.map(Some),
                    "internal_batch_size"
                );
                set!(
                    c.multiply_by_inputs,
                    o.multiply_by_inputs,
                    "multiply_by_inputs"
                );
            }
            MethodConfig::Saliency(c) => {
                set!(c.abs, o.signed.then_some(false), "signed");
            }
            MethodConfig::Lrp(c) => {
                set!(c.composite, o.lrp_composite, "lrp_composite");
            }
            MethodConfig::SmoothGrad(c) => {
                set!(c.nt_samples, o.n_samples, "n_samples");
                set!(c.nt_type, o.nt_type, "nt_type");
                set!(c.stdevs, o.stdevs, "stdevs");
                set!(c.seed, o.seed, "seed");
                set!(c.abs, o.signed.then_some(false), "signed");
                set!(
                    c.nt_samples_batch_size,
                    o.internal_batch_size.map(Some),
                    "internal_batch_size"
                );
            }
            MethodConfig::GradientShap(c) | MethodConfig::LayerGradientShap(c) => {
                set!(c.n_samples, o.n_samples, "n_samples");
                set!(c.stdevs, o.stdevs, "stdevs");
                set!(c.seed, o.seed, "seed");
                set!(
                    c.internal_batch_size,
                    o.internal_batch_size.map(Some),
                    "internal_batch_size"
                );
                set!(
                    c.multiply_by_inputs,
                    o.multiply_by_inputs,
                    "multiply_by_inputs"
                );
            }
            MethodConfig::LayerGradientXActivation(c) => {
                set!(
                    c.multiply_by_inputs,
                    o.multiply_by_inputs,
                    "multiply_by_inputs"
                );
            }
            MethodConfig::DeepLift(c)
            | MethodConfig::DeepLiftShap(c)
            | MethodConfig::LayerDeepLift(c) => {
                set!(
                    c.multiply_by_inputs,
                    o.multiply_by_inputs,
                    "multiply_by_inputs"
                );
            }
            MethodConfig::LayerConductance(c) | MethodConfig::InternalInfluence(c) => {
                set!(c.n_steps, o.n_steps, "n_steps");
                set!(c.method, o.ig_method, "ig_method");
                set!(
                    c.internal_batch_size,
                    o.internal_batch_size.map(Some),
                    "internal_batch_size"
                );
            }
            MethodConfig::Cam(c) => {
                set!(
                    c.eigen_smooth,
                    o.eigen_smooth.then_some(true),
                    "eigen_smooth"
                );
                set!(c.aug_smooth, o.aug_smooth.then_some(true), "aug_smooth");
                if matches!(c.kind, CamKind::ScoreCam | CamKind::AblationCam) {
                    set!(
                        c.batch_size,
                        o.internal_batch_size.map(Some),
                        "internal_batch_size"
                    );
                }
            }
            MethodConfig::FeatureAblation(c)
            | MethodConfig::ShapleyValues(c)
            | MethodConfig::LayerFeatureAblation(c) => {
                set!(
                    c.perturbations_per_eval,
                    o.perturbations_per_eval,
                    "perturbations_per_eval"
                );
            }
            MethodConfig::FeaturePermutation(c) => {
                set!(
                    c.perturbations_per_eval,
                    o.perturbations_per_eval,
                    "perturbations_per_eval"
                );
                set!(c.seed, o.seed, "seed");
            }
            MethodConfig::Occlusion(c) => {
                set!(c.window, o.window, "window");
                set!(c.stride, o.stride, "stride");
                set!(
                    c.perturbations_per_eval,
                    o.perturbations_per_eval,
                    "perturbations_per_eval"
                );
            }
            MethodConfig::ShapleyValueSampling(c) | MethodConfig::KernelShap(c) => {
                set!(c.n_samples, o.n_samples, "n_samples");
                set!(
                    c.perturbations_per_eval,
                    o.perturbations_per_eval,
                    "perturbations_per_eval"
                );
                set!(c.seed, o.seed, "seed");
            }
            MethodConfig::Lime(c) => {
                set!(c.sampling.n_samples, o.n_samples, "n_samples");
                set!(
                    c.sampling.perturbations_per_eval,
                    o.perturbations_per_eval,
                    "perturbations_per_eval"
                );
                set!(c.sampling.seed, o.seed, "seed");
            }
            MethodConfig::InputXGradient
            | MethodConfig::GuidedBackprop
            | MethodConfig::Deconvolution
            | MethodConfig::GuidedGradCam
            | MethodConfig::LayerGradCam(_)
            | MethodConfig::LayerActivation => {}
        }
        took
    }

    /// Runs the method on `model` for `inputs` and `target`.
    pub fn attribute(
        &self,
        model: &dyn Model,
        inputs: &Inputs,
        target: &Target,
        context: &RunContext,
    ) -> Result<Attributions> {
        let name = self.info().name;
        let layer = || {
            context.layer.clone().ok_or_else(|| {
                Error::parameter(
                    "layer",
                    "none",
                    format!("{name} needs a layer (--layer NAME; `firelight layers` lists them)"),
                )
            })
        };
        // Neuron mode runs input methods on the unit (Neuron Conductance takes the unit itself).
        if let (Some(selector), false) = (
            &context.neuron,
            matches!(self, MethodConfig::NeuronConductance(_)),
        ) {
            let info = self.info();
            if !matches!(info.family, Family::Gradient | Family::Perturbation) {
                return Err(Error::parameter(
                    "neuron",
                    selector.to_string(),
                    format!(
                        "neuron attribution runs input methods (gradient or perturbation); {name} \
                         is a {} method",
                        info.family.name()
                    ),
                ));
            }
            let neuron = Neuron::new(model, layer()?, selector.clone())?;
            let inner = RunContext {
                layer: None,
                neuron: None,
                ..context.clone()
            };
            return self.attribute(&neuron, inputs, &Target::class(0), &inner);
        }
        let baselines = context.baselines.clone();
        let mask = || context.feature_mask.clone();
        // Every perturbation method reports to the run's progress callback, if any.
        macro_rules! reporting {
            ($builder:expr) => {
                match context.progress.clone() {
                    Some(p) => $builder.progress(move |done, total| (p.0)(done, total)),
                    None => $builder,
                }
            };
        }
        macro_rules! batched {
            ($builder:expr, $rows:expr) => {
                match $rows {
                    Some(n) => $builder.internal_batch_size(n),
                    None => $builder,
                }
            };
        }
        match self {
            MethodConfig::IntegratedGradients(c) => {
                let ig = batched!(
                    IntegratedGradients::new(model)
                        .n_steps(c.n_steps)
                        .method(c.method)
                        .multiply_by_inputs(c.multiply_by_inputs)
                        .baselines(baselines),
                    c.internal_batch_size
                );
                match c.target_delta {
                    None => ig.attribute_inputs(inputs, target),
                    Some(bound) => {
                        let found = ig.attribute_to_delta(inputs, target, bound, c.max_steps)?;
                        if let Some(report) = &context.report {
                            let worst = found.delta.iter().fold(0.0f32, |m, d| m.max(d.abs()));
                            (report.0)(&format!(
                                "integrated_gradients: {} steps ({} points evaluated), largest \
                                 |convergence delta| {worst:.2e} {} the bound {bound:.2e}",
                                found.n_steps,
                                found.evaluated_points,
                                if found.converged {
                                    "within"
                                } else {
                                    "still above (max_steps reached)"
                                }
                            ));
                        }
                        Ok(found.attributions)
                    }
                }
            }
            MethodConfig::Saliency(c) => Saliency::new(model)
                .abs(c.abs)
                .attribute_inputs(inputs, target),
            MethodConfig::InputXGradient => {
                InputXGradient::new(model).attribute_inputs(inputs, target)
            }
            MethodConfig::SmoothGrad(c) => {
                let tunnel = NoiseTunnel::new(Saliency::new(model).abs(c.abs))
                    .nt_type(c.nt_type)
                    .nt_samples(c.nt_samples)
                    .stdevs(c.stdevs)
                    .seed(c.seed);
                // `internal_batch_size` counts rows; NoiseTunnel groups whole copies of the batch.
                match c.nt_samples_batch_size {
                    Some(rows) => {
                        tunnel.nt_samples_batch_size((rows / inputs.batch()?.max(1)).max(1))
                    }
                    None => tunnel,
                }
                .attribute_inputs(inputs, target)
            }
            MethodConfig::GradientShap(c) | MethodConfig::LayerGradientShap(c) => {
                let shap = GradientShap::new(model)
                    .n_samples(c.n_samples)
                    .stdevs(c.stdevs)
                    .seed(c.seed)
                    .multiply_by_inputs(c.multiply_by_inputs)
                    .baselines(baselines);
                let shap = match self {
                    MethodConfig::LayerGradientShap(_) => shap.layer(layer()?)?,
                    _ => shap,
                };
                batched!(shap, c.internal_batch_size).attribute_inputs(inputs, target)
            }
            MethodConfig::GuidedBackprop => {
                GuidedBackprop::new(model).attribute_inputs(inputs, target)
            }
            MethodConfig::Deconvolution => {
                Deconvolution::new(model).attribute_inputs(inputs, target)
            }
            MethodConfig::DeepLift(c) => DeepLift::new(model)
                .baselines(baselines)
                .multiply_by_inputs(c.multiply_by_inputs)
                .attribute_inputs(inputs, target),
            MethodConfig::DeepLiftShap(c) => DeepLiftShap::new(model, baselines)
                .multiply_by_inputs(c.multiply_by_inputs)
                .attribute_inputs(inputs, target),
            MethodConfig::GuidedGradCam => {
                GuidedGradCam::new(model, layer()?)?.attribute_inputs(inputs, target)
            }
            MethodConfig::Lrp(c) => Lrp::new(model)
                .composite(c.composite)
                .attribute_inputs(inputs, target),
            MethodConfig::NeuronConductance(c) => {
                let selector = context.neuron.clone().ok_or_else(|| {
                    Error::parameter(
                        "neuron",
                        "none",
                        "neuron_conductance goes through one unit: give --layer and --neuron I,J,K",
                    )
                })?;
                batched!(
                    NeuronConductance::new(model, layer()?, selector)?
                        .n_steps(c.n_steps)
                        .method(c.method)
                        .multiply_by_inputs(c.multiply_by_inputs)
                        .baselines(baselines),
                    c.internal_batch_size
                )
                .attribute_inputs(inputs, target)
            }
            MethodConfig::InternalInfluence(c) => batched!(
                InternalInfluence::new(model, layer()?)?
                    .n_steps(c.n_steps)
                    .method(c.method)
                    .baselines(baselines),
                c.internal_batch_size
            )
            .attribute_inputs(inputs, target),
            MethodConfig::LayerDeepLift(c) => LayerDeepLift::new(model, layer()?)?
                .baselines(baselines)
                .multiply_by_inputs(c.multiply_by_inputs)
                .attribute_inputs(inputs, target),
            MethodConfig::LayerGradCam(c) => LayerGradCam::new(model, layer()?)?
                .relu_attributions(c.relu_attributions)
                .attr_dim_summation(c.attr_dim_summation)
                .attribute_inputs(inputs, target),
            MethodConfig::LayerActivation => {
                LayerActivation::new(model, layer()?)?.attribute_inputs(inputs, target)
            }
            MethodConfig::LayerGradientXActivation(c) => {
                LayerGradientXActivation::new(model, layer()?)?
                    .multiply_by_inputs(c.multiply_by_inputs)
                    .attribute_inputs(inputs, target)
            }
            MethodConfig::LayerIntegratedGradients(c) => batched!(
                LayerIntegratedGradients::new(model, layer()?)?
                    .n_steps(c.n_steps)
                    .method(c.method)
                    .multiply_by_inputs(c.multiply_by_inputs)
                    .baselines(baselines),
                c.internal_batch_size
            )
            .attribute_inputs(inputs, target),
            MethodConfig::LayerConductance(c) => batched!(
                LayerConductance::new(model, layer()?)?
                    .n_steps(c.n_steps)
                    .method(c.method)
                    .baselines(baselines),
                c.internal_batch_size
            )
            .attribute_inputs(inputs, target),
            MethodConfig::Cam(c) => {
                let image = inputs.single_float()?;
                let map = run_cam(c, layer()?, model, &image, target)?;
                Ok(Attributions::for_inputs(inputs, vec![map])?)
            }
            MethodConfig::FeatureAblation(c) => reporting!(
                FeatureAblation::new(model)
                    .baselines(baselines)
                    .feature_mask(mask())
                    .perturbations_per_eval(c.perturbations_per_eval)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::FeaturePermutation(c) => reporting!(
                FeaturePermutation::new(model)
                    .feature_mask(mask())
                    .perturbations_per_eval(c.perturbations_per_eval)
                    .seed(c.seed)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::Occlusion(c) => {
                let (windows, strides): (Vec<_>, Vec<_>) = inputs
                    .attributed_names()
                    .into_iter()
                    .map(|name| {
                        let shape = inputs.describe(name).map(|(_, s)| s).unwrap_or_default();
                        c.window_and_strides(shape.get(1..).unwrap_or_default())
                    })
                    .unzip();
                reporting!(
                    Occlusion::new(model, Vec::new())
                        .sliding_window_shapes_per_input(windows)
                        .strides_per_input(strides)
                        .baselines(baselines)
                        .perturbations_per_eval(c.perturbations_per_eval)
                )
                .attribute_inputs(inputs, target)
            }
            MethodConfig::ShapleyValueSampling(c) => reporting!(
                ShapleyValueSampling::new(model)
                    .baselines(baselines)
                    .feature_mask(mask())
                    .n_samples(c.n_samples)
                    .perturbations_per_eval(c.perturbations_per_eval)
                    .seed(c.seed)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::ShapleyValues(c) => reporting!(
                ShapleyValues::new(model)
                    .baselines(baselines)
                    .feature_mask(mask())
                    .perturbations_per_eval(c.perturbations_per_eval)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::KernelShap(c) => reporting!(
                KernelShap::new(model)
                    .baselines(baselines)
                    .feature_mask(mask())
                    .n_samples(c.n_samples)
                    .perturbations_per_eval(c.perturbations_per_eval)
                    .seed(c.seed)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::Lime(c) => reporting!(
                Lime::new(model)
                    .interpretable_model(c.interpretable_model)
                    .similarity(c.similarity)
                    .baselines(baselines)
                    .feature_mask(mask())
                    .n_samples(c.sampling.n_samples)
                    .perturbations_per_eval(c.sampling.perturbations_per_eval)
                    .seed(c.sampling.seed)
            )
            .attribute_inputs(inputs, target),
            MethodConfig::LayerFeatureAblation(c) => reporting!(
                LayerFeatureAblation::new(model, layer()?)?
                    .perturbations_per_eval(c.perturbations_per_eval)
            )
            .attribute_inputs(inputs, target),
        }
    }

    /// [`MethodConfig::attribute`] for one float input: its one attribution.
    pub fn attribute_tensor(
        &self,
        model: &dyn Model,
        inputs: &DynTensor,
        target: &Target,
        context: &RunContext,
    ) -> Result<DynTensor> {
        self.attribute(model, &Inputs::from(inputs), target, context)?
            .into_single()
    }
}

fn sampling_options(c: &SamplingConfig) -> Vec<(&'static str, String)> {
    vec![
        ("n_samples", c.n_samples.to_string()),
        (
            "perturbations_per_eval",
            c.perturbations_per_eval.to_string(),
        ),
    ]
}

fn interpretable_model_name(model: &InterpretableModel) -> String {
    match model {
        InterpretableModel::Lasso { alpha } => format!("lasso(alpha={alpha})"),
        InterpretableModel::Ridge { alpha } => format!("ridge(alpha={alpha})"),
        InterpretableModel::LinearRegression => "linear_regression".into(),
    }
}

fn similarity_name(kernel: &SimilarityKernel) -> String {
    match kernel {
        SimilarityKernel::Cosine { kernel_width } => format!("exp_cosine(width={kernel_width})"),
        SimilarityKernel::Euclidean { kernel_width } => {
            format!("exp_euclidean(width={kernel_width})")
        }
    }
}

fn nt_type_name(t: NoiseType) -> &'static str {
    match t {
        NoiseType::SmoothGrad => "smoothgrad",
        NoiseType::SmoothGradSq => "smoothgrad_sq",
        NoiseType::VarGrad => "vargrad",
    }
}

/// A CAM as an image attribution: `[batch, 1, height, width]`.
fn run_cam(
    config: &CamConfig,
    layer: String,
    model: &dyn Model,
    inputs: &DynTensor,
    target: &Target,
) -> Result<DynTensor> {
    fn with<W: CamWeighting>(
        config: &CamConfig,
        layer: String,
        weighting: W,
        model: &dyn Model,
        inputs: &DynTensor,
        target: &Target,
    ) -> Result<DynTensor> {
        Cam::new(model, [layer], weighting)?
            .eigen_smooth(config.eigen_smooth)
            .aug_smooth(config.aug_smooth)
            .attribute(inputs, target)
    }
    let map = match config.kind {
        CamKind::GradCam => with(config, layer, GradCam, model, inputs, target),
        CamKind::HiResCam => with(config, layer, HiResCam, model, inputs, target),
        CamKind::GradCamElementWise => {
            with(config, layer, GradCamElementWise, model, inputs, target)
        }
        CamKind::GradCamPlusPlus => with(config, layer, GradCamPlusPlus, model, inputs, target),
        CamKind::XGradCam => with(config, layer, XGradCam, model, inputs, target),
        CamKind::LayerCam => with(config, layer, LayerCam, model, inputs, target),
        CamKind::EigenCam => with(config, layer, EigenCam, model, inputs, target),
        CamKind::EigenGradCam => with(config, layer, EigenGradCam, model, inputs, target),
        CamKind::ScoreCam => {
            let w = config
                .batch_size
                .map_or_else(ScoreCam::default, ScoreCam::with_batch_size);
            with(config, layer, w, model, inputs, target)
        }
        CamKind::AblationCam => {
            let w = config
                .batch_size
                .map_or_else(AblationCam::default, AblationCam::with_batch_size);
            with(config, layer, w, model, inputs, target)
        }
    }?;
    let [batch, height, width]: [usize; 3] = map
        .shape()
        .try_into()
        .map_err(|_| Error::Model(format!("a CAM of shape {:?}", map.shape())))?;
    DynTensor::from_flat(map.into_flat(), vec![batch, 1, height, width])
}

/// The `--method` help: every method by family, derived from the registry.
pub fn method_help() -> String {
    let mut help = String::from(
        "One method or several, comma-separated (several are also drawn side by side).",
    );
    for family in [
        Family::Gradient,
        Family::Layer,
        Family::Cam,
        Family::Perturbation,
    ] {
        let names: Vec<String> = MethodConfig::all()
            .iter()
            .map(MethodConfig::info)
            .filter(|i| i.family == family)
            .map(|i| match i.aliases {
                [] => i.name.to_string(),
                aliases => format!("{} ({})", i.name, aliases.join(", ")),
            })
            .collect();
        if !names.is_empty() {
            let needs = match family {
                Family::Layer | Family::Cam => " (need --layer)",
                _ => "",
            };
            let _ = write!(help, "\n{}{needs}: {}.", family.name(), names.join(", "));
        }
    }
    help
}

/// The README's method table (markdown), derived from the registry.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| method | family | matches | what it computes | options (defaults) |\n|---|---|---|---|---|\n",
    );
    for method in MethodConfig::all() {
        let info = method.info();
        let name = match info.aliases {
            [] => format!("`{}`", info.name),
            aliases => format!(
                "`{}` ({})",
                info.name,
                aliases
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let options: Vec<String> = method
            .options()
            .into_iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(
            table,
            "| {name} | {} | {} | {} | {} |",
            info.family.name(),
            info.reference,
            info.about,
            if options.is_empty() {
                "-".to_string()
            } else {
                options.join(" ")
            }
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let all = MethodConfig::all();
        let mut names: Vec<&str> = all
            .iter()
            .flat_map(|m| {
                let info = m.info();
                std::iter::once(info.name).chain(info.aliases.iter().copied())
            })
            .collect();
        for m in &all {
            assert_eq!(&MethodConfig::from_name(m.info().name).unwrap(), m);
        }
        names.sort();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a name is used twice");
    }

    #[test]
    fn defaults_are_captums() {
        let MethodConfig::SmoothGrad(nt) = MethodConfig::from_name("smoothgrad").unwrap() else {
            panic!("smoothgrad is a NoiseTunnel");
        };
        assert_eq!((nt.nt_samples, nt.stdevs), (5, 1.0));
        let MethodConfig::IntegratedGradients(ig) = MethodConfig::from_name("ig").unwrap() else {
            panic!("ig is IntegratedGradients");
        };
        assert_eq!(ig.n_steps, 50);
        assert_eq!(ig.method, Approximation::GaussLegendre);
        let MethodConfig::GradientShap(gs) = MethodConfig::from_name("gradient_shap").unwrap()
        else {
            panic!("gradient_shap");
        };
        assert_eq!((gs.n_samples, gs.stdevs), (5, 0.0));
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let message = MethodConfig::from_name("gradcam+").unwrap_err().to_string();
        assert!(message.contains("closest: gradcam"), "{message}");
    }

    #[test]
    fn overrides_reach_only_the_methods_that_have_them() {
        let mut saliency = MethodConfig::from_name("saliency").unwrap();
        let took = saliency.apply(&Overrides {
            n_steps: Some(8),
            signed: true,
            ..Overrides::default()
        });
        assert_eq!(took, vec!["signed"]);
        assert_eq!(
            saliency,
            MethodConfig::Saliency(SaliencyConfig { abs: false })
        );
    }

    /// out = x . w over the last axis (any sample shape flattened).
    struct Linear(Vec<f32>);

    impl Model for Linear {
        fn forward(
            &self,
            inputs: &Inputs,
            _: &mut firelight_core::Taps<'_>,
        ) -> Result<firelight_core::Tensor<2>> {
            let x = inputs.single_float()?.flat().clone();
            let w = firelight_core::Tensor::<1>::from_floats(self.0.as_slice(), &x.device())
                .reshape([self.0.len(), 1]);
            Ok(x.matmul(w))
        }
        fn layers(&self) -> Vec<firelight_core::LayerInfo> {
            Vec::new()
        }
    }

    #[test]
    fn perturbation_defaults_are_captums() {
        let MethodConfig::Lime(lime) = MethodConfig::from_name("lime").unwrap() else {
            panic!("lime");
        };
        assert_eq!(lime.sampling.n_samples, 25);
        assert_eq!(lime.sampling.perturbations_per_eval, 1);
        assert_eq!(
            lime.interpretable_model,
            InterpretableModel::Lasso { alpha: 0.01 }
        );
        let MethodConfig::KernelShap(ks) = MethodConfig::from_name("kernel_shap").unwrap() else {
            panic!("kernel_shap");
        };
        assert_eq!(ks.n_samples, 25);
        assert_eq!(
            MethodConfig::from_name("shapley_sampling")
                .unwrap()
                .info()
                .name,
            "shapley_value_sampling"
        );
        assert!(
            MethodConfig::from_name("layer_feature_ablation")
                .unwrap()
                .info()
                .needs_layer()
        );
    }

    #[test]
    fn occlusion_windows_cover_the_channels_and_slide_over_the_last_two_axes() {
        let c = OcclusionConfig {
            window: 16,
            stride: 8,
            perturbations_per_eval: 1,
        };
        assert_eq!(
            c.window_and_strides(&[3, 224, 224]),
            (vec![3, 16, 16], vec![1, 8, 8])
        );
        assert_eq!(c.window_and_strides(&[10]), (vec![16], vec![8]));
    }

    #[test]
    fn on_a_linear_model_the_registry_s_ablation_shapley_and_occlusion_agree_with_w_times_x() {
        let device = firelight_core::Device::flex();
        let w = vec![2.0, -1.0, 0.5, 3.0];
        let model = Linear(w.clone());
        let x = DynTensor::from_vec(
            vec![1.0, 2.0, -4.0, 0.5, 3.0, 1.0, 1.0, -2.0],
            vec![2, 4],
            &device,
        )
        .unwrap();
        let expected: Vec<f32> = (0..8).map(|i| w[i % 4] * x.to_vec().unwrap()[i]).collect();
        let overrides = Overrides {
            perturbations_per_eval: Some(3),
            window: Some(1),
            stride: Some(1),
            n_samples: Some(200),
            ..Overrides::default()
        };
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let context = RunContext {
            progress: Some(ProgressCallback::new(move |done, total| {
                seen.lock().unwrap().push((done, total));
            })),
            ..RunContext::default()
        };
        for name in [
            "feature_ablation",
            "shapley_values",
            "shapley_value_sampling",
            "kernel_shap",
            "occlusion",
        ] {
            let mut method = MethodConfig::from_name(name).unwrap();
            assert!(method.apply(&overrides).contains(&"perturbations_per_eval"));
            let got = method
                .attribute_tensor(&model, &x, &Target::class(0), &context)
                .unwrap()
                .to_vec()
                .unwrap();
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-4, "{name}: {got:?} vs {expected:?}");
            }
            let calls = std::mem::take(&mut *calls.lock().unwrap());
            let &(done, total) = calls.last().expect("progress is reported");
            assert_eq!(done, total, "{name}: the last report is the whole run");
        }
    }
}
