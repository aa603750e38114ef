//! What `explain` and `evaluate` share: the model and photo loaded, progress spinners, printing
//! predictions, drawing a method's result and naming output files.

use std::path::PathBuf;
use std::time::Duration;

use firelight::bundled::{ImageClassifier, Prediction, default_image};
use firelight::methods::{Family, MethodConfig};
use firelight::prelude::*;
use firelight::viz::{Colormap, RgbImage, attribution_overlay_with, overlay};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{InputArgs, MethodOptionArgs, classifier, device, load_input};

/// A layer name made safe for a file name (ONNX names hold slashes).
pub(crate) fn file_safe(layer: &str) -> String {
    let safe: String = layer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.trim_matches('_').to_string()
}

/// A method's result drawn over the photo: CAMs as they are, gradient maps through `colormap`.
pub(crate) fn draw(
    photo: &RgbImage,
    method: &MethodConfig,
    attribution: &DynTensor,
    colormap: Colormap,
) -> Result<RgbImage> {
    if method.info().family == Family::Cam {
        let map = attribution.to_vec()?;
        let colormap = match colormap {
            Colormap::Diverging => Colormap::Jet,
            other => other,
        };
        return overlay(photo, &map, colormap, 0.5);
    }
    attribution_overlay_with(photo, attribution, colormap)
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
        let device = device(input.device.device)?;
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

    /// The photo's file name without its extension, for output names.
    pub(crate) fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into())
    }
}
