//! What `explain` and `evaluate` share: the model and photo loaded, progress spinners, printing
//! predictions, drawing a method's result and naming output files.

use std::path::PathBuf;
use std::time::Duration;

use firelight::bundled::{ImageClassifier, Prediction, default_image};
use firelight::methods::{Family, MethodConfig, ProgressCallback};
use firelight::prelude::*;
use firelight::viz::{
    Colormap, RgbImage, Sign, VisualizeMethod, VisualizeOptions, attribution_overlay_with,
    default_explanation_map, default_explanation_picture, overlay, visualize_image_attr,
    visualize_map,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{InputArgs, MethodOptionArgs, classifier, load_input};

/// A layer name made safe for a file name (ONNX names hold slashes).
pub(crate) fn file_safe(layer: &str) -> String {
    firelight::dataset::file_stem_for(layer)
        .trim_matches('_')
        .to_string()
}

/// How a result is drawn over the photo.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Drawing {
    pub(crate) picture: Picture,
    pub(crate) sign: Sign,
    pub(crate) outlier_perc: f32,
    pub(crate) colormap: Colormap,
}

impl Default for Drawing {
    fn default() -> Self {
        Self {
            picture: Picture::Spotlight,
            sign: Sign::AbsoluteValue,
            outlier_perc: 2.0,
            colormap: Colormap::Jet,
        }
    }
}

/// The pictures `--picture` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Picture {
    /// The photo dimmed and greyed where the evidence is weak, the strongest evidence in warm
    /// colours (the default: the photo stays visible and the evidence stands out).
    Spotlight,
    /// Captum's `heat_map`: the normalised attribution alone.
    HeatMap,
    /// Captum's `blended_heat_map`: the heat map over the photo in grey.
    BlendedHeatMap,
    /// Captum's `masked_image`: the photo times the normalised attribution.
    MaskedImage,
    /// Captum's `alpha_scaling`: the photo with the attribution as its opacity.
    AlphaScaling,
    /// The whole photo under `--colormap` (jet by default), as pytorch-grad-cam shows its CAMs.
    Overlay,
}

/// A method's result drawn over the photo as `drawing` says (CAMs are already in [0, 1]).
pub(crate) fn draw(
    photo: &RgbImage,
    method: &MethodConfig,
    attribution: &DynTensor,
    drawing: &Drawing,
) -> Result<RgbImage> {
    let is_cam = method.info().family == Family::Cam;
    let (width, height) = (photo.width, photo.height);
    let captum = |method: VisualizeMethod| {
        let options =
            VisualizeOptions::new(method, drawing.sign).with_outlier_perc(drawing.outlier_perc);
        if is_cam {
            visualize_map(&attribution.to_vec()?, width, height, Some(photo), &options)
        } else {
            visualize_image_attr(attribution, Some(photo), &options)
        }
    };
    match drawing.picture {
        Picture::Spotlight if is_cam => {
            default_explanation_map(photo, &attribution.to_vec()?, width, height)
        }
        Picture::Spotlight => default_explanation_picture(photo, attribution),
        Picture::HeatMap => captum(VisualizeMethod::HeatMap),
        Picture::BlendedHeatMap => captum(VisualizeMethod::BlendedHeatMap),
        Picture::MaskedImage => captum(VisualizeMethod::MaskedImage),
        Picture::AlphaScaling => captum(VisualizeMethod::AlphaScaling),
        Picture::Overlay if is_cam => {
            let colormap = match drawing.colormap {
                Colormap::Diverging => Colormap::Jet,
                other => other,
            };
            overlay(photo, &attribution.to_vec()?, colormap, 0.5)
        }
        Picture::Overlay => attribution_overlay_with(photo, attribution, drawing.colormap),
    }
}

pub(crate) fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("a valid template"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A bar for one method's run: a spinner that becomes a bar with a count and an estimate of the
/// time left once the method reports its progress (the perturbation methods do).
pub(crate) fn method_bar(message: String) -> (ProgressBar, ProgressCallback) {
    let bar = spinner(message);
    let reporter = bar.clone();
    let callback = ProgressCallback::new(move |done, total| {
        if reporter.length() != Some(total as u64) {
            reporter.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}, ~{eta} left]")
                    .expect("a valid template"),
            );
            reporter.set_length(total as u64);
        }
        reporter.set_position(done as u64);
    });
    (bar, callback)
}

pub(crate) fn print_predictions(predictions: &[Prediction]) {
    for p in predictions {
        println!(
            "  {:>6.2}%  {:>4}  {}",
            100.0 * p.probability,
            p.class,
            p.label
        );
    }
}

/// What `explain` and `evaluate` share: the methods by name, and the photo loaded for the model.
pub(crate) struct Session {
    pub(crate) methods: Vec<MethodConfig>,
    pub(crate) device: Device,
    pub(crate) classifier: ImageClassifier,
    pub(crate) path: PathBuf,
    pub(crate) photo: Option<RgbImage>,
    pub(crate) input: DynTensor,
}

impl Session {
    /// Parses `methods`, loads the model and the photo, and checks `layer` before anything runs.
    pub(crate) fn open(
        methods: &[String],
        input: &InputArgs,
        options: &MethodOptionArgs,
    ) -> Result<Self> {
        let methods = options.configs(methods)?;
        let layer = options.layer.as_deref();
        let device = input.device.open()?;
        let classifier = classifier(&input.model, &device)?;
        let path = input.image.clone().unwrap_or_else(default_image);
        let (photo, tensor) = load_input(&classifier, &path, &device)?;
        if let Some(layer) = layer {
            classifier.model().check_layer(layer)?;
        }
        println!("{}: top-5 of {}", path.display(), classifier.name);
        Ok(Self {
            methods,
            device,
            classifier,
            path,
            photo,
            input: tensor,
        })
    }

    /// Fails for a layer method: commands that score or compare maps over the photo take CAMs
    /// and input attributions only.
    pub(crate) fn refuse_layer_methods(&self) -> Result<()> {
        match self
            .methods
            .iter()
            .find(|m| m.info().family == firelight::methods::Family::Layer)
        {
            Some(m) => Err(Error::parameter(
                "method",
                m.info().name,
                "layer attributions are not maps over the photo; use CAMs or input attributions",
            )),
            None => Ok(()),
        }
    }

    /// The photo's file name without its extension, for output names.
    pub(crate) fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into())
    }
}
