//! Remote = local: methods of every family computed on a device served over WebSocket (a flex
//! server on loopback, in this process) give the numbers they give on local flex, gradients and
//! Guided Backprop's backend extension included.
#![cfg(feature = "remote")]

mod common;

use common::*;
use firelight::bundled::{ImageClassifier, default_image};
use firelight::methods::{MethodConfig, Overrides, RunContext};
use firelight::prelude::*;
use firelight::viz::RgbImage;

/// The bundled classifier on `device` and two photos (the cat and the cat mirrored) as one batch.
fn setup(device: &Device) -> (ImageClassifier, DynTensor) {
    let classifier = ImageClassifier::bundled(device).unwrap();
    let photo = classifier.crop(&RgbImage::read(default_image()).unwrap());
    let mut mirrored = photo.clone();
    let width = photo.width;
    for (row_in, row_out) in photo
        .data
        .chunks(width * 3)
        .zip(mirrored.data.chunks_mut(width * 3))
    {
        for x in 0..width {
            row_out[3 * x..3 * x + 3]
                .copy_from_slice(&row_in[3 * (width - 1 - x)..3 * (width - x)]);
        }
    }
    let batch = DynTensor::cat(vec![
        classifier.input(&photo, device).unwrap(),
        classifier.input(&mirrored, device).unwrap(),
    ])
    .unwrap();
    (classifier, batch)
}

/// The largest difference relative to `want`'s largest magnitude.
fn relative(got: &[f32], want: &[f32]) -> f32 {
    let scale = want
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    max_abs_diff(got, want) / scale
}

#[test]
fn methods_on_a_served_device_give_the_local_numbers() {
    let local = Device::flex();
    let remote = remote_device();
    let (local_model, local_batch) = setup(&local);
    let (remote_model, remote_batch) = setup(&remote);

    let logits = |model: &ImageClassifier, batch: &DynTensor| {
        DynTensor::new(model.model().predict(&batch.clone().into()).unwrap())
            .to_vec()
            .unwrap()
    };
    let want = logits(&local_model, &local_batch);
    let got = logits(&remote_model, &remote_batch);
    assert!(
        relative(&got, &want) <= 1e-6,
        "logits: {}",
        relative(&got, &want)
    );

    let layer = "/_conv_head/Conv_output_0";
    let target = Target::classes(vec![282, 285]);
    for (name, overrides) in [
        ("saliency", Overrides::default()),
        (
            "integrated_gradients",
            Overrides {
                n_steps: Some(8),
                internal_batch_size: Some(8),
                ..Overrides::default()
            },
        ),
        ("guided_backprop", Overrides::default()),
        ("gradcam", Overrides::default()),
        (
            "occlusion",
            Overrides {
                window: Some(56),
                stride: Some(56),
                ..Overrides::default()
            },
        ),
    ] {
        let mut method = MethodConfig::from_name(name).unwrap();
        method.apply(&overrides);
        let context = RunContext {
            layer: method.info().needs_layer().then(|| layer.to_string()),
            ..RunContext::default()
        };
        let run = |model: &ImageClassifier, batch: &DynTensor| {
            method
                .attribute_tensor(model.model(), batch, &target, &context)
                .unwrap()
        };
        let want = run(&local_model, &local_batch);
        let got = run(&remote_model, &remote_batch);
        assert_eq!(got.shape(), want.shape(), "{name}");
        let error = relative(&got.to_vec().unwrap(), &want.to_vec().unwrap());
        eprintln!("{name}: remote vs local {error:.1e}");
        assert!(error <= 1e-6, "{name}: {error}");
    }
}
