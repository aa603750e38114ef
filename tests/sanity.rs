//! Adebayo et al.'s model randomisation test on the bundled EfficientNet-Lite0: explanations that
//! depend on the model (Grad-CAM, integrated gradients) drift away from the original as the
//! cascade redraws more layers; an "explanation" that is an edge detector of the photo does not,
//! and the check says it fails. Native Burn networks are redrawn too: rebuilt from the weights
//! they were built from, with the chosen layers' redrawn (`firelight::models::Rebuildable`).

mod common;

use common::*;
use firelight::bundled::{ImageClassifier, default_image, models_dir};
use firelight::core::Randomizable;
use firelight::methods::{IntegratedGradientsConfig, MethodConfig, RunContext};
use firelight::metrics::{Randomization, SanityCheck};
use firelight::models::{RandomWeights, Rebuildable, SmallCnn};
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

/// The values at `layers` and the output of `model` for `x`.
fn record(model: &dyn Model, x: &DynTensor, layers: &[&str]) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut recorder = firelight::core::Recorder::new(layers.iter().copied());
    let out = model
        .forward(
            &Inputs::from(x.clone()),
            &mut Taps::with_hook(&mut recorder),
        )
        .unwrap();
    let at_layers = layers
        .iter()
        .map(|l| values(&recorder.take(l).unwrap()))
        .collect();
    (at_layers, values(&DynTensor::new(out)))
}

#[test]
fn a_native_network_rebuilt_with_redrawn_layers_changes_from_those_layers_on() {
    let device = device();
    let on = device.clone();
    let net = Rebuildable::new(&mut RandomWeights::new(3), move |source| {
        Ok(Box::new(SmallCnn::new(source, &on)?) as Box<dyn Model>)
    })
    .unwrap();
    let layers = net.parameter_layers();
    assert_eq!(
        layers,
        [
            "conv1",
            "bn1",
            "layer1.conv1",
            "layer1.bn1",
            "layer1.conv2",
            "layer1.bn2",
            "conv2",
            "fc"
        ]
    );
    let x = pseudo_random(&[2, 3, 12, 12], 5, 1.0);
    let taps = ["layer1.relu2", "conv2"];
    let (before, out) = record(&net, &x, &taps);
    // Nothing redrawn: the same network.
    let (same_values, same_out) = record(net.randomized(&[], 7).unwrap().as_ref(), &x, &taps);
    assert_eq!((same_values, same_out), (before.clone(), out.clone()));
    // conv2 redrawn: everything before it as it was, conv2 and the output not; the same seed
    // gives the same network, another seed another.
    let top = ["conv2".to_string()];
    let (after, redrawn_out) = record(net.randomized(&top, 7).unwrap().as_ref(), &x, &taps);
    assert_eq!(after[0], before[0], "the layers below conv2 are untouched");
    assert!(rel_l2(&after[1], &before[1]) > 0.1, "conv2 is redrawn");
    assert!(rel_l2(&redrawn_out, &out) > 0.1);
    let (_, again) = record(net.randomized(&top, 7).unwrap().as_ref(), &x, &taps);
    assert_eq!(again, redrawn_out, "a seed gives one network");
    let (_, other) = record(net.randomized(&top, 8).unwrap().as_ref(), &x, &taps);
    assert_ne!(other, redrawn_out);
    // A layer without weights is refused, naming those that have them.
    let err = net.randomized(&["relu1".to_string()], 0).err().unwrap();
    assert!(
        err.to_string().contains("unknown layer") && err.to_string().contains("`conv1`"),
        "{err}"
    );
}

#[test]
fn grad_cam_on_the_native_mobilenet_drifts_as_its_weights_are_redrawn() {
    let device = device();
    let classifier = ImageClassifier::mobilenet_v2(&device).unwrap();
    let photo = RgbImage::read(default_image()).unwrap();
    let x = classifier.input(&classifier.crop(&photo), &device).unwrap();
    let model = classifier.randomizable();
    let layers = model.parameter_layers();
    assert_eq!(layers.first().map(String::as_str), Some("features.0.0"));
    assert_eq!(layers.last().map(String::as_str), Some("classifier.1"));
    let check = SanityCheck::new(model).groups(3).seed(1);
    let gradcam = |m: &dyn Model, x: &DynTensor, t: &Target| {
        let context = RunContext {
            layer: Some("features.18".to_string()),
            ..RunContext::default()
        };
        MethodConfig::from_name("gradcam")
            .unwrap()
            .attribute_tensor(m, x, t, &context)
    };
    let report = check.run(&gradcam, &x, &Target::class(282)).unwrap();
    let abs: Vec<f32> = report.steps.iter().map(|s| s.spearman_abs[0]).collect();
    println!("MobileNetV2 Grad-CAM: Spearman |map| by step {abs:?}");
    assert!(report.passes(0.5), "{abs:?}");
    assert!(abs.iter().all(|s| *s < 0.9), "{abs:?}");
}
