//! The bundled MobileNetV2 computes torchvision's logits and sees the cat; pictures round-trip.

mod common;

use std::path::Path;

use common::*;
use firelight::bundled::{ImageClassifier, default_image, models_dir};
use firelight::core::npy::read_npy_tensor;
use firelight::prelude::*;
use firelight::viz::{Colormap, RgbImage, overlay, pixel_map};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mobilenet_v2")
        .join(name)
}

#[test]
fn mobilenet_v2_logits_match_torch() {
    let classifier = ImageClassifier::mobilenet_v2(&device()).unwrap();
    let input = read_npy_tensor(fixture("input.npy"), &device()).unwrap();
    let expected = values(&read_npy_tensor(fixture("logits.npy"), &device()).unwrap());
    let logits = values(&DynTensor::new(
        classifier.model().predict(&input.into()).unwrap(),
    ));
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = max_abs_diff(&logits, &expected);
    eprintln!("MobileNetV2 logits: max abs diff {err:.2e} (logit scale {scale:.1})");
    assert!(
        err <= 1e-4 * scale,
        "max abs diff {err} at logit scale {scale}"
    );
}

#[test]
fn mobilenet_v2_sees_the_cat() {
    let classifier = ImageClassifier::mobilenet_v2(&device()).unwrap();
    let photo = classifier.crop(&RgbImage::read(default_image()).unwrap());
    assert_eq!((photo.width, photo.height), (224, 224));
    let input = classifier.input(&photo, &device()).unwrap();
    let top = classifier
        .top_k(classifier.model().predict(&input.into()).unwrap(), 3)
        .unwrap()
        .remove(0);
    let torch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("chelsea_top5.json")).unwrap())
            .unwrap();
    // torchvision resizes with antialiasing and firelight bilinearly, so only the ranking and
    // rough probabilities are compared.
    assert_eq!(top[0].label, "Egyptian cat");
    assert_eq!(top[0].class as u64, torch[0]["class"].as_u64().unwrap());
    assert!((top[0].probability - torch[0]["probability"].as_f64().unwrap() as f32).abs() < 0.05);
    let cats = ["Egyptian cat", "tiger cat", "tabby"];
    assert!(
        top.iter().all(|p| cats.contains(&p.label.as_str())),
        "{top:?}"
    );
}

#[test]
fn overlay_png_round_trips_and_bad_images_are_errors() {
    let photo = RgbImage::read(models_dir().join("images/coffee.png")).unwrap();
    assert_eq!((photo.width, photo.height), (600, 400));
    let small = photo.resize(60, 40);
    let attr = pseudo_random(&[1, 3, 40, 60], 1, 1.0);
    let (map, w, h) = pixel_map(&attr).unwrap();
    assert_eq!((w, h), (60, 40));
    assert!(map.iter().all(|v| (0.0..=1.0).contains(v)));
    let picture = overlay(&small, &map, Colormap::Jet, 0.5).unwrap();
    let dir = std::env::temp_dir().join(format!("firelight-viz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("overlay.png");
    picture.write_png(&path).unwrap();
    assert_eq!(RgbImage::read(&path).unwrap(), picture);

    let not_png = dir.join("not.png");
    std::fs::write(&not_png, b"GIF89a").unwrap();
    let err = RgbImage::read(&not_png).unwrap_err();
    assert!(matches!(err, Error::Image { .. }), "{err}");
    assert!(RgbImage::read(dir.join("missing.png")).is_err());
    // Writing into a folder that does not exist fails and leaves nothing behind.
    let nowhere = dir.join("no/such/dir/x.png");
    assert!(picture.write_png(&nowhere).is_err());
    assert!(!nowhere.exists());
    assert!(overlay(&small, &map[1..], Colormap::Jet, 0.5).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jpeg_photos_read_and_broken_ones_are_errors() {
    let rocket = models_dir().join("images/rocket.jpg");
    let photo = RgbImage::read(&rocket).unwrap();
    assert_eq!((photo.width, photo.height), (640, 427));
    assert_eq!(photo.data.len(), 640 * 427 * 3);
    // The same pixels whichever reader is asked: `read` goes by content, not by name.
    assert_eq!(RgbImage::read_jpeg(&rocket).unwrap(), photo);

    let dir = std::env::temp_dir().join(format!("firelight-jpeg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&rocket).unwrap();
    let truncated = dir.join("truncated.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let header_only = dir.join("header.jpg");
    std::fs::write(&header_only, &bytes[..3]).unwrap();
    for path in [&truncated, &header_only] {
        let err = RgbImage::read(path).unwrap_err().to_string();
        assert!(err.contains("JPEG"), "{}: {err}", path.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
