//! Bad input gets a typed error that says what was wrong, never a panic.

mod common;

use common::*;
use firelight::core::npy::read_npy;
use firelight::models::{Mlp, RandomWeights, SmallCnn};
use firelight::prelude::*;

fn cnn() -> SmallCnn {
    SmallCnn::new(&mut RandomWeights::new(1), &device()).unwrap()
}

fn image(batch: usize) -> DynTensor {
    pseudo_random(&[batch, 3, 8, 8], 3, 1.0)
}

#[test]
fn baseline_shape_mismatch() {
    let model = cnn();
    let wrong = pseudo_random(&[2, 3, 4, 4], 1, 1.0);
    let err = IntegratedGradients::new(&model)
        .baselines(Baseline::Tensor(wrong))
        .attribute(&image(2), &Target::class(0))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("baselines"), "{err}");
    // A batch of baselines that is neither 1 nor the input batch.
    let err = IntegratedGradients::new(&model)
        .baselines(Baseline::Tensor(image(3)))
        .attribute(&image(2), &Target::class(0))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

#[test]
fn input_shape_mismatch() {
    let model = cnn();
    let err = Saliency::new(&model)
        .attribute(&pseudo_random(&[1, 4, 8, 8], 1, 1.0), &Target::class(0))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let mlp = Mlp::new(&[4, 3], &mut RandomWeights::new(0), &device()).unwrap();
    let err = Saliency::new(&mlp)
        .attribute(&pseudo_random(&[2, 5], 1, 1.0), &Target::class(0))
        .unwrap_err();
    assert!(err.to_string().contains("expected [4]"), "{err}");
}

#[test]
fn target_out_of_range() {
    let model = cnn();
    let err = IntegratedGradients::new(&model)
        .n_steps(2)
        .attribute(&image(2), &Target::classes(vec![1, 10]))
        .unwrap_err();
    match &err {
        Error::TargetOutOfRange {
            index,
            sample,
            outputs,
        } => assert_eq!((*index, *sample, *outputs), (10, 1, 10)),
        other => panic!("wrong error {other}"),
    }
    assert!(err.to_string().contains("0..10"), "{err}");
    let err = Saliency::new(&model)
        .attribute(&image(2), &Target::classes(vec![1, 2, 3]))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTarget(_)), "{err}");
    let err = Saliency::new(&model)
        .attribute(
            &image(1),
            &Target::CosineSimilarity(Tensor::<1>::zeros([3], &device())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("outputs 10"), "{err}");
}

#[test]
fn unknown_layer_names_the_closest_layers() {
    let model = cnn();
    let err = LayerConductance::new(&model, "layer9.conv1").err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownLayer { .. }));
    // The closest names (sharing the `layer` prefix) and where to find the rest.
    for part in ["layer9.conv1", "`layer1.conv1`", "firelight layers"] {
        assert!(text.contains(part), "{text}");
    }
    assert!(LayerIntegratedGradients::new(&model, "nope").is_err());
    assert!(LayerGradientXActivation::new(&model, "nope").is_err());
    assert!(LayerActivation::new(&model, "nope").is_err());
}

/// Fails unless `result` is an `InvalidParameter` error naming `parameter`.
fn assert_invalid(result: firelight::core::Result<DynTensor>, parameter: &str) {
    match result {
        Err(Error::InvalidParameter { name, .. }) if name == parameter => {}
        Err(other) => panic!("expected invalid `{parameter}`, got: {other}"),
        Ok(_) => panic!("expected invalid `{parameter}`, got a result"),
    }
}

#[test]
fn zero_steps_and_bad_parameters() {
    let model = cnn();
    let (x, t) = (image(1), Target::class(0));
    assert_invalid(
        IntegratedGradients::new(&model)
            .n_steps(0)
            .attribute(&x, &t),
        "n_steps",
    );
    let conductance = LayerConductance::new(&model, "conv2").unwrap();
    assert_invalid(conductance.n_steps(0).attribute(&x, &t), "n_steps");
    assert_invalid(
        IntegratedGradients::new(&model)
            .method(Approximation::RiemannTrapezoid)
            .n_steps(1)
            .attribute(&x, &t),
        "n_steps",
    );
    assert_invalid(
        IntegratedGradients::new(&model)
            .internal_batch_size(0)
            .attribute(&x, &t),
        "internal_batch_size",
    );
    let smoothgrad = || NoiseTunnel::new(Saliency::new(&model));
    assert_invalid(smoothgrad().stdevs(-1.0).attribute(&x, &t), "stdevs");
    assert_invalid(smoothgrad().nt_samples(0).attribute(&x, &t), "nt_samples");
    assert_invalid(
        GradientShap::new(&model).n_samples(0).attribute(&x, &t),
        "n_samples",
    );
    assert!(Approximation::from_captum_name("simpson").is_err());
}

#[test]
fn nan_in_the_input_or_baseline() {
    let model = cnn();
    let mut v = values(&image(1));
    v[17] = f32::NAN;
    v[20] = f32::INFINITY;
    let bad = DynTensor::from_vec(v, vec![1, 3, 8, 8], &device()).unwrap();
    let err = IntegratedGradients::new(&model)
        .attribute(&bad, &Target::class(0))
        .unwrap_err();
    match &err {
        Error::NonFinite {
            count, first_index, ..
        } => assert_eq!((*count, *first_index), (2, 17)),
        other => panic!("wrong error {other}"),
    }
    assert!(
        Saliency::new(&model)
            .attribute(&bad, &Target::class(0))
            .is_err()
    );
    let err = IntegratedGradients::new(&model)
        .baselines(Baseline::Tensor(bad))
        .attribute(&image(1), &Target::class(0))
        .unwrap_err();
    assert!(err.to_string().contains("baselines"), "{err}");
}

#[test]
fn empty_batch() {
    let model = cnn();
    let empty = DynTensor::from_vec(vec![], vec![0, 3, 8, 8], &device()).unwrap();
    assert!(
        Saliency::new(&model)
            .attribute(&empty, &Target::class(0))
            .is_err()
    );
}

#[test]
fn unreadable_npy() {
    let dir = std::env::temp_dir().join(format!("firelight-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = read_npy(dir.join("missing.npy")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not numpy at all").unwrap();
    let err = read_npy(&garbage).unwrap_err();
    assert!(err.to_string().contains("garbage.npy"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_safetensors_are_errors() {
    use firelight::models::{MobileNetV2, SafetensorsWeights, WeightSource};
    let dir = std::env::temp_dir().join(format!("firelight-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, header: &str, data: &[u8]| {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let ok = file(
        "ok.safetensors",
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let mut weights = SafetensorsWeights::open(&ok).unwrap();
    assert_eq!(weights.values("w", &[2]).unwrap(), vec![0.0, 0.0]);
    assert!(weights.values("w", &[3]).is_err(), "wrong shape");
    assert!(weights.values("missing", &[2]).is_err());
    // A real model asks for names this file lacks: an error naming the tensor, not a panic.
    let err = MobileNetV2::new(&mut weights, 1000, &device()).unwrap_err();
    assert!(err.to_string().contains("features.0.0.weight"), "{err}");

    let cases = [
        (
            "f16",
            r#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#,
            4,
        ),
        (
            "outside",
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}"#,
            8,
        ),
        (
            "size",
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
        ),
        (
            "absurd",
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
            8,
        ),
        ("json", r#"{"w":"#, 0),
    ];
    for (name, header, len) in cases {
        let path = file(&format!("{name}.safetensors"), header, &vec![0; len]);
        assert!(SafetensorsWeights::open(&path).is_err(), "{name}");
    }
    let short = dir.join("short.safetensors");
    std::fs::write(&short, [200, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
    assert!(SafetensorsWeights::open(&short).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
