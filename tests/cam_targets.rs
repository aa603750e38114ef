//! CAM targets beyond class logits match pytorch-grad-cam: similarity to and difference from a
//! concept embedding (its concept-activation-maps tutorial, on ResNet-18 cut at its pooled
//! features) and a semantic-segmentation target; bad embedding layers give clear errors.
//!
//! Fixtures: `tools/parity/cam_fixtures_more.py` (grad-cam 1.5.7).

mod common;

use std::path::{Path, PathBuf};

use common::onnx_weights::materialize;
use common::*;
use firelight::cam::{Cam, GradCam};
use firelight::core::Embedding;
use firelight::core::npy::{read_npy, read_npy_tensor};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

const POOLED: &str = "/avgpool/GlobalAveragePool_output_0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn concept_similarity_and_difference_match_the_tutorial() {
    let fixtures = root().join("tests/fixtures/cam_resnet18");
    let (_weights, path) = materialize(&root().join("tests/fixtures/onnx_resnet18"));
    let model = OnnxModel::load(path, &device()).unwrap();
    let input = read_npy_tensor(fixtures.join("input.npy"), &device()).unwrap();
    let embedder = Embedding::new(&model, POOLED).unwrap();
    assert_eq!(embedder.layers().last().unwrap().name, POOLED);

    let embeddings = embedder.predict(&input.clone().into()).unwrap();
    let expected = read_npy(fixtures.join("embeddings.npy")).unwrap();
    assert_eq!(embeddings.dims().to_vec(), expected.shape);
    let embeddings = values(&DynTensor::new(embeddings));
    let error = max_abs_diff(&embeddings, &expected.data);
    assert!(error < 1e-4, "embeddings: {error}");

    // The embedding of image 1 mirrored, as the concept.
    let mirrored = input.rows(1, 2).map(|flat| {
        flat.reshape([1, 3, 112, 112])
            .flip([3])
            .reshape([1, 3 * 112 * 112])
    });
    let concept = embedder.predict(&mirrored.into()).unwrap().reshape([512]);
    let expected = read_npy(fixtures.join("concept.npy")).unwrap();
    assert!(max_abs_diff(&values1(&concept), &expected.data) < 1e-4);
    for (file, target) in [
        (
            "gradcam_similarity_layer4.npy",
            Target::CosineSimilarity(concept.clone()),
        ),
        (
            "gradcam_difference_layer4.npy",
            Target::CosineDifference(concept.clone()),
        ),
    ] {
        let map = Cam::new(
            &embedder,
            ["/layer4/layer4.1/relu_1/Relu_output_0"],
            GradCam,
        )
        .unwrap()
        .attribute(&input, &target)
        .unwrap();
        let expected = read_npy(fixtures.join(file)).unwrap();
        let error = max_abs_diff(&values(&map), &expected.data);
        eprintln!("{file}: max abs {error:.2e}");
        assert!(error <= 1e-3, "{file}: {error}");
    }
}

#[test]
fn segmentation_target_matches_pytorch_grad_cam() {
    let dir = root().join("tests/fixtures/cam_segmentation");
    let model = OnnxModel::load(dir.join("model.onnx"), &device()).unwrap();
    let input = read_npy_tensor(dir.join("input.npy"), &device()).unwrap();
    let output = values(&DynTensor::new(
        model.predict(&input.clone().into()).unwrap(),
    ));
    let expected = read_npy(dir.join("output.npy")).unwrap();
    assert!(max_abs_diff(&output, &expected.data) < 1e-4);
    let regions = read_npy(dir.join("regions.npy")).unwrap();
    let masks: Vec<Vec<f32>> = regions.data.chunks(16 * 16).map(<[f32]>::to_vec).collect();
    let target = Target::segmentation(1, 3, masks).unwrap();
    let map = Cam::new(&model, ["/5/Relu_output_0"], GradCam)
        .unwrap()
        .attribute(&input, &target)
        .unwrap();
    let expected = read_npy(dir.join("gradcam_class1.npy")).unwrap();
    let error = max_abs_diff(&values(&map), &expected.data);
    eprintln!("segmentation Grad-CAM: max abs {error:.2e}");
    assert!(error <= 1e-3, "{error}");

    let err = Target::segmentation(3, 3, vec![vec![1.0; 4]])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("class 3 of 3"), "{err}");
    let wrong_size = Target::segmentation(1, 3, vec![vec![1.0; 10]]).unwrap();
    let err = Cam::new(&model, ["/5/Relu_output_0"], GradCam)
        .unwrap()
        .attribute(&input, &wrong_size)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outputs 768 values per sample"), "{err}");
}

#[test]
fn an_embedding_layer_that_does_not_exist_is_named_with_the_ones_that_do() {
    let model = OnnxModel::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cam_segmentation/model.onnx"),
        &device(),
    )
    .unwrap();
    let err = Embedding::new(&model, "/pool/nothing")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/pool/nothing") && err.contains("firelight layers"),
        "{err}"
    );
}

/// The concept tutorial, reproduced: on a photo of a cat beside an espresso
/// (`models/images/cat_and_coffee.png`, made by `examples/concept_cam.rs`), Grad-CAM of the
/// similarity to each full reference photo lights the matching half.
#[test]
fn concept_similarity_lights_the_matching_object() {
    use firelight::bundled::ImageClassifier;
    use firelight::viz::RgbImage;
    let d = device();
    let classifier = ImageClassifier::efficientnet_lite0(&d).unwrap();
    let images = root().join("models/images");
    let photo = RgbImage::read(images.join("cat_and_coffee.png")).unwrap();
    let input = classifier.input(&photo, &d).unwrap();
    let embedder = Embedding::new(
        classifier.model(),
        "/_avg_pooling/GlobalAveragePool_output_0",
    )
    .unwrap();
    for (reference, matching_half) in [("chelsea.png", 0..112), ("coffee.png", 112..224)] {
        let image = RgbImage::read(images.join(reference)).unwrap();
        let concept = embedder
            .predict(&(classifier.input(&classifier.crop(&image), &d).unwrap()).into())
            .unwrap()
            .reshape([1280]);
        let map = Cam::new(&embedder, ["/_conv_head/Conv_output_0"], GradCam)
            .unwrap()
            .attribute(&input, &Target::CosineSimilarity(concept))
            .unwrap();
        let map = values(&map);
        let mean = |cols: std::ops::Range<usize>| -> f32 {
            let cells: Vec<f32> = (56..168)
                .flat_map(|y| cols.clone().map(move |x| y * 224 + x))
                .map(|i| map[i])
                .collect();
            cells.iter().sum::<f32>() / cells.len() as f32
        };
        let other = if matching_half.start == 0 {
            112..224
        } else {
            0..112
        };
        let (hot, cold) = (mean(matching_half), mean(other));
        eprintln!("{reference}: matching half {hot:.3}, other half {cold:.3}");
        assert!(
            hot > 0.3 && hot > 10.0 * cold,
            "{reference}: {hot} vs {cold}"
        );
    }
}
