//! firelight's pictures against Captum's and matplotlib's own numbers, from the fixtures that
//! tools/viz/captum_visualize_fixtures.py writes: the normalised maps (`_normalize_attr`), the
//! colormaps, and whole `visualize_image_attr` pictures drawn by matplotlib at the photo's size.

use std::path::{Path, PathBuf};

use firelight_core::npy::{NpyArray, read_npy};
use firelight_core::{Device, DynTensor};
use firelight_viz::visualize::sum_channels;
use firelight_viz::{
    Colormap, RgbImage, Sign, VisualizeMethod, VisualizeOptions, normalize_attr,
    visualize_image_attr,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captum_visualize")
}

fn npy(name: &str) -> NpyArray {
    read_npy(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sign(name: &str) -> Sign {
    *Sign::ALL.iter().find(|s| s.name() == name).unwrap()
}

fn method(name: &str) -> VisualizeMethod {
    *VisualizeMethod::ALL
        .iter()
        .find(|m| m.name() == name)
        .unwrap()
}

fn tensor(array: NpyArray) -> DynTensor {
    DynTensor::from_vec(array.data, array.shape, &Device::flex()).unwrap()
}

#[test]
fn normalised_maps_match_captums_normalize_attr() {
    let manifest = manifest();
    let mut worst = 0.0f32;
    let mut compared = 0;
    for case in manifest["cases"].as_object().unwrap().keys() {
        let attribution = tensor(npy(&format!("attr_{case}.npy")));
        let (map, _, _) = sum_channels(&attribution).unwrap();
        for name in manifest["signs"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            for perc in manifest["outlier_percs"].as_array().unwrap() {
                let perc = perc.as_f64().unwrap() as f32;
                let expected = npy(&format!("norm_{case}_{name}_{perc}.npy"));
                let ours = normalize_attr(&map, sign(name), perc).unwrap();
                assert_eq!(ours.len(), expected.data.len());
                let err = ours
                    .iter()
                    .zip(&expected.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(err <= 1e-6, "{case} {name} {perc}: max error {err}");
                worst = worst.max(err);
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 4 * 4 * 2);
    println!("normalize_attr: {compared} maps, max abs error {worst:e}");
}

#[test]
fn colormaps_match_matplotlib_on_a_ramp() {
    let manifest = manifest();
    let table = npy("colormaps.npy");
    let maps = manifest["colormaps"].as_array().unwrap();
    assert_eq!(table.shape, vec![maps.len(), 11, 3]);
    let mut worst = 0.0f32;
    for (m, name) in maps.iter().enumerate() {
        let colormap = match name.as_str().unwrap() {
            "RedWhiteGreen" => Colormap::RedWhiteGreen,
            "Greens" => Colormap::Greens,
            "Reds" => Colormap::Reds,
            "Blues" => Colormap::Blues,
            "Gray" => Colormap::Gray,
            other => panic!("no colormap {other}"),
        };
        for i in 0..11 {
            // `np.linspace(0, 1, 11)` in double precision, as matplotlib is given it.
            let t = (i as f64 / 10.0) as f32;
            let ours = colormap.sample(t);
            for c in 0..3 {
                let expected = table.data[(m * 11 + i) * 3 + c];
                let err = (ours[c] as f32 / 255.0 - expected).abs();
                assert!(
                    err <= 1.0 / 255.0,
                    "{name} at {t}: ours {ours:?}, matplotlib {expected} (channel {c})"
                );
                worst = worst.max(err);
            }
        }
    }
    println!(
        "colormaps: max abs error {worst:.5} ({:.2}/255)",
        worst * 255.0
    );
}

#[test]
fn whole_pictures_match_captum_drawn_by_matplotlib() {
    let manifest = manifest();
    let renders = &manifest["renders"];
    let photo = npy(renders["photo"].as_str().unwrap());
    let (height, width) = (photo.shape[0], photo.shape[1]);
    let photo = RgbImage {
        width,
        height,
        data: photo.data.iter().map(|&v| v as u8).collect(),
    };
    let attribution = tensor(npy(renders["attribution"].as_str().unwrap()));
    for case in renders["cases"].as_array().unwrap() {
        let (m, s) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        let options = VisualizeOptions::new(method(m), sign(s));
        let ours = visualize_image_attr(&attribution, Some(&photo), &options).unwrap();
        let expected = npy(&format!("render_{m}_{s}.npy"));
        assert_eq!(expected.shape, vec![height, width, 3]);
        let diffs: Vec<f32> = ours
            .data
            .iter()
            .zip(&expected.data)
            .map(|(&a, &b)| (a as f32 - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        // Matplotlib truncates colormap entries to bytes and blends in 8 bits; we round once.
        assert!(max <= 3.0, "{m} {s}: max difference {max}/255");
        println!("{m:>16} {s:<14}: max {max}/255, mean {mean:.3}/255");
    }
}

#[test]
fn the_heat_map_needs_no_photo_but_the_others_do() {
    let attribution = tensor(npy("attr_gauss.npy"));
    let heat = visualize_image_attr(&attribution, None, &VisualizeOptions::default()).unwrap();
    assert_eq!((heat.width, heat.height), (16, 12));
    let blended = VisualizeOptions::new(VisualizeMethod::BlendedHeatMap, Sign::All);
    let err = visualize_image_attr(&attribution, None, &blended)
        .err()
        .unwrap();
    assert!(err.to_string().contains("blended_heat_map"), "{err}");
}
