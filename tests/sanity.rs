//! Adebayo et al.'s model randomisation test on the bundled EfficientNet-Lite0: explanations that
//! depend on the model (Grad-CAM, integrated gradients) drift away from the original as the
//! cascade redraws more layers; an "explanation" that is an edge detector of the photo does not,
//! and the check says it fails.

mod common;

use common::*;
use firelight::bundled::{ImageClassifier, default_image, models_dir};
use firelight::methods::{IntegratedGradientsConfig, MethodConfig, RunContext};
use firelight::metrics::{Randomization, SanityCheck};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;
use firelight::viz::RgbImage;

const LAYER: &str = "/_conv_head/Conv_output_0";

/// The Sobel gradient magnitude of the photo, summed over its channels: it never looks at the
/// model.
fn edges(x: &DynTensor) -> Result<DynTensor> {
    let [b, c, h, w] = x.shape().try_into().expect("an image batch");
    let v = x.to_vec()?;
    let mut out = vec![0.0f32; b * h * w];
    for n in 0..b {
        for y in 1..h - 1 {
            for xx in 1..w - 1 {
                let mut total = 0.0f32;
                for ch in 0..c {
                    let p = |dy: i64, dx: i64| {
                        v[((n * c + ch) * h + (y as i64 + dy) as usize) * w
                            + (xx as i64 + dx) as usize]
                    };
                    let gx =
                        p(-1, 1) + 2.0 * p(0, 1) + p(1, 1) - p(-1, -1) - 2.0 * p(0, -1) - p(1, -1);
                    let gy =
                        p(1, -1) + 2.0 * p(1, 0) + p(1, 1) - p(-1, -1) - 2.0 * p(-1, 0) - p(-1, 1);
                    total += (gx * gx + gy * gy).sqrt();
                }
                out[(n * h + y) * w + xx] = total;
            }
        }
    }
    DynTensor::from_vec(out, vec![b, 1, h, w], &x.device())
}

#[test]
fn explanations_of_the_model_change_with_its_weights_and_an_edge_detector_fails() {
    let device = device();
    let classifier = ImageClassifier::efficientnet_lite0(&device).unwrap();
    let photo = RgbImage::read(default_image()).unwrap();
    let x = classifier.input(&classifier.crop(&photo), &device).unwrap();
    let model =
        OnnxModel::load(models_dir().join("efficientnet_lite0/model.onnx"), &device).unwrap();
    let layers = model.parameter_layers();
    assert!(layers.len() > 40, "{} layers with weights", layers.len());
    let target = Target::class(282);
    let check = SanityCheck::new(&model).groups(3).seed(1);
    let cascade = check.step_layers().unwrap();
    assert_eq!(cascade.len(), 3);
    assert!(
        cascade[0].contains(layers.last().unwrap()),
        "the top layer goes first"
    );
    assert_eq!(
        cascade[2].len(),
        layers.len(),
        "the cascade ends with every layer redrawn"
    );

    let method = |config: MethodConfig| {
        move |m: &dyn Model, x: &DynTensor, t: &Target| {
            let context = RunContext {
                layer: Some(LAYER.to_string()),
                ..RunContext::default()
            };
            config.attribute_tensor(m, x, t, &context)
        }
    };
    let gradcam = method(MethodConfig::from_name("gradcam").unwrap());
    let ig = method(MethodConfig::IntegratedGradients(
        IntegratedGradientsConfig {
            n_steps: 8,
            ..IntegratedGradientsConfig::default()
        },
    ));
    let edge = |_: &dyn Model, x: &DynTensor, _: &Target| edges(x);
    for (name, explain, model_dependent) in [
        (
            "gradcam",
            &gradcam as &dyn Fn(&dyn Model, &DynTensor, &Target) -> Result<DynTensor>,
            true,
        ),
        ("integrated_gradients", &ig, true),
        ("edge detector", &edge, false),
    ] {
        let report = check.run(explain, &x, &target).unwrap();
        let abs: Vec<f32> = report.steps.iter().map(|s| s.spearman_abs[0]).collect();
        let ssim: Vec<f32> = report.steps.iter().map(|s| s.ssim[0]).collect();
        let hog: Vec<f32> = report.steps.iter().map(|s| s.hog[0]).collect();
        println!("{name}: Spearman |map| by step {abs:?}, SSIM {ssim:?}, HOG {hog:?}");
        if model_dependent {
            assert!(
                abs[2] < abs[0] || abs[0] < 0.5,
                "{name} did not drift: {abs:?}"
            );
            assert!(report.passes(0.5), "{name} should pass: {abs:?}");
        } else {
            assert!(abs.iter().all(|s| (s - 1.0).abs() < 1e-6), "{abs:?}");
            assert!(hog.iter().all(|s| (s - 1.0).abs() < 1e-6), "{hog:?}");
            assert!(!report.passes(0.5), "the edge detector must fail the check");
        }
    }
    // Independent randomisation of one group, and a name that holds no weights.
    let independent = SanityCheck::new(&model)
        .randomization(Randomization::Independent)
        .groups(4)
        .step_layers()
        .unwrap();
    assert_eq!(
        independent.iter().map(Vec::len).sum::<usize>(),
        layers.len()
    );
    let err = model
        .randomized(&["/_blocks.0/Relu".to_string()], 0)
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown layer")
            && err.to_string().contains("_blocks.0/_project_conv"),
        "{err}"
    );
}
