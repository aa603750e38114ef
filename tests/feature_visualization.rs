//! Feature visualisation: Lucent's picture parameterisation matched (Fourier spectrum, colour
//! decorrelation, sigmoid, and the gradient through them), NumPy's `irfft2` matched, and
//! activation maximisation with a known answer: a network whose one convolution holds one
//! oriented filter (diagonal stripes of +1 and -1); the picture that maximises the unit at the
//! centre shows that filter under the unit's receptive field, through Lucid's transforms too.
//! DeepDream raises its objective octave by octave and refuses what it cannot dream on.

mod common;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use common::*;
use firelight::core::npy::read_npy_tensor;
use firelight::grad::visualization::fourier::irfft2;
use firelight::grad::{
    ActivationMaximization, DeepDream, Objective, Parameterization, Picture, Transforms,
};
use firelight::prelude::*;

const K: usize = 9;

/// Diagonal stripes, three pixels wide, the same in every colour channel.
fn stripes() -> Vec<f32> {
    (0..3 * K * K)
        .map(|i| {
            let (y, x) = ((i % (K * K)) / K, i % K);
            if (x + K - y) % 6 < 3 { 1.0 } else { -1.0 }
        })
        .collect()
}

struct OneFilter {
    weight: Tensor<4>,
}

impl Model for OneFilter {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> firelight::core::Result<Tensor<2>> {
        let x = inputs.single_float()?.into_rank::<4>()?;
        let y = conv2d(
            x,
            self.weight.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        let y = taps.tap("conv", y)?;
        // A bias that keeps the grey start active (a dead ReLU has no gradient to climb).
        let y = taps.tap(
            "relu",
            burn::tensor::activation::relu(y.clone().add_scalar(5.0)),
        )?;
        let [b, _, h, w] = y.dims();
        Ok(y.reshape([b, h * w]).mean_dim(1))
    }
    fn layers(&self) -> Vec<LayerInfo> {
        vec![
            LayerInfo::new("conv", "Conv"),
            LayerInfo::new("relu", "Relu"),
        ]
    }
}

#[test]
fn the_picture_that_excites_an_oriented_filter_shows_that_filter() {
    let device = device();
    let weight = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(stripes(), [1, 3, K, K]),
        &device,
    );
    let model = OneFilter { weight };
    // A 33-pixel picture gives a 25 x 25 map; its centre unit sees pixels 12..21.
    let found = ActivationMaximization::new(
        &model,
        "conv",
        Objective::Neuron {
            channel: 0,
            y: 12,
            x: 12,
        },
    )
    .size(33)
    .steps(100)
    .jitter(0)
    .device(&device)
    .run()
    .unwrap();
    let image = values(&found.image);
    let patch: Vec<f32> = (0..K * K)
        .map(|i| {
            let (y, x) = (12 + i / K, 12 + i % K);
            (0..3).map(|c| image[(c * 33 + y) * 33 + x]).sum::<f32>() / 3.0
        })
        .collect();
    let filter = &stripes()[..K * K];
    let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let r = firelight::metrics::pearson(&to64(&patch), &to64(filter)) as f32;
    println!(
        "correlation of the picture with the filter: {r:.3}; objective {:.2} -> {:.2}",
        found.objective[0],
        found.objective.last().unwrap()
    );
    assert!(r > 0.8, "correlation {r}");
    assert!(found.objective.last().unwrap() > &found.objective[0]);
    // A channel the layer does not have is refused.
    let err = ActivationMaximization::new(&model, "conv", Objective::Channel(3))
        .size(33)
        .steps(1)
        .device(&device)
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("1 channels"), "{err}");
}

fn fixture(name: &str) -> Vec<f32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/visualization")
        .join(name);
    values(&read_npy_tensor(path, &device()).unwrap())
}

#[test]
fn the_inverse_real_fft_matches_numpy() {
    // tools/visualization/lucent_fixtures.py: numpy.fft.irfft2(re + i im, s=(h, w)).
    for (h, w) in [(6, 8), (5, 7)] {
        let spectrum = fixture(&format!("irfft2_in_{h}x{w}.npy"));
        let (re, im) = spectrum.split_at(spectrum.len() / 2);
        let want = fixture(&format!("irfft2_out_{h}x{w}.npy"));
        let got = irfft2(re, im, h, w);
        let diff = max_abs_diff(&got, &want);
        println!("irfft2 {h}x{w}: max |diff| {diff:.2e}");
        assert!(diff < 1e-5, "{h}x{w}: {diff}");
    }
}

#[test]
fn the_fourier_picture_and_its_gradient_match_lucent() {
    // Lucent 0.1.8's fft_image + to_valid_rgb(decorrelate=True), and the autograd gradient of
    // sum(picture * weights) with respect to the spectrum.
    for side in [8, 7] {
        let picture = Picture::new(&Parameterization::Fft { decay_power: 1.0 }, true, 3, side);
        let params = fixture(&format!("fft_params_{side}.npy"));
        assert_eq!(params.len(), picture.parameters());
        let image = picture.image(&params);
        let want = fixture(&format!("fft_image_{side}.npy"));
        let image_diff = max_abs_diff(&image, &want);
        let grad = picture.adjoint(&image, fixture(&format!("fft_weights_{side}.npy")));
        let want_grad = fixture(&format!("fft_grad_{side}.npy"));
        let grad_diff = rel_l2(&grad, &want_grad);
        println!(
            "side {side}: picture max |diff| {image_diff:.2e}, gradient rel L2 {grad_diff:.2e}"
        );
        assert!(image_diff < 1e-5, "side {side}: picture {image_diff}");
        assert!(grad_diff < 1e-5, "side {side}: gradient {grad_diff}");
    }
}

#[test]
fn lucids_transforms_and_fourier_pictures_still_find_the_filter() {
    let device = device();
    let weight = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(stripes(), [1, 3, K, K]),
        &device,
    );
    let model = OneFilter { weight };
    // The mean of the rectified channel over all positions: every position wants the stripes
    // under it, in its own phase, which random shifts, scales and turns leave a striped
    // picture.
    let found = ActivationMaximization::new(&model, "relu", Objective::Channel(0))
        .size(33)
        .steps(200)
        .transforms(Transforms::lucid())
        .device(&device)
        .run()
        .unwrap();
    let image = values(&found.image);
    if let Ok(path) = std::env::var("FIRELIGHT_DUMP") {
        firelight::core::npy::write_npy(path, &[3, 33, 33], &image).unwrap();
    }
    let grey: Vec<f32> = (0..33 * 33)
        .map(|i| (0..3).map(|c| image[c * 33 * 33 + i]).sum::<f32>() / 3.0)
        .collect();
    // Random shifts leave the stripes' phase free and scales bend their period a little, so
    // the test reads the picture's strongest spatial frequency: the filter's stripes repeat
    // every 6 pixels along x - y, a frequency of (1/6, -1/6) cycles per pixel, (5.5, -5.5)
    // cycles over 33 pixels.
    let mean = grey.iter().sum::<f32>() / grey.len() as f32;
    let mut peak = (0.0f64, 0i32, 0i32);
    for ky in -16i32..=16 {
        for kx in 0i32..=16 {
            if ky == 0 && kx == 0 {
                continue;
            }
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (i, v) in grey.iter().enumerate() {
                let (y, x) = ((i / 33) as f64, (i % 33) as f64);
                let a =
                    -2.0 * std::f64::consts::PI * (f64::from(ky) * y + f64::from(kx) * x) / 33.0;
                re += f64::from(v - mean) * a.cos();
                im += f64::from(v - mean) * a.sin();
            }
            let power = re * re + im * im;
            if power > peak.0 {
                peak = (power, ky, kx);
            }
        }
    }
    let (_, ky, kx) = peak;
    let cycles = f64::from(ky * ky + kx * kx).sqrt();
    let angle = f64::from(ky).atan2(f64::from(kx)).to_degrees();
    println!(
        "strongest frequency ({ky}, {kx}) cycles: {cycles:.2} (filter 7.78) at {angle:.0} degrees \
         (filter -45); objective {:.2} -> {:.2}",
        found.objective[0],
        found.objective.last().unwrap()
    );
    assert!(
        (cycles - 7.78).abs() < 1.5,
        "period: {cycles} cycles over 33 pixels"
    );
    assert!((angle + 45.0).abs() < 12.0, "orientation {angle} degrees");
    assert!(found.objective.last().unwrap() > &(10.0 * found.objective[0]));
}

#[test]
fn deep_dream_raises_its_objective_and_refuses_bad_photos() {
    let device = device();
    let weight = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(stripes(), [1, 3, K, K]),
        &device,
    );
    let model = OneFilter { weight };
    let photo = DynTensor::from_vec(
        (0..3 * 40 * 40)
            .map(|i| 0.5 + 0.3 * ((i % 40) as f32 / 6.0).sin())
            .collect(),
        vec![1, 3, 40, 40],
        &device,
    )
    .unwrap();
    // Without the random roll, every step of an octave is scored on the same view: the
    // objective climbs within each octave.
    let dream = DeepDream::new(&model, "relu")
        .octaves(3)
        .steps(6)
        .jitter(0)
        .device(&device);
    let found = dream.run(&photo).unwrap();
    assert_eq!(found.image.shape(), &[1, 3, 40, 40]);
    assert_eq!(found.objective.len(), 18);
    for (octave, scores) in found.objective.chunks(6).enumerate() {
        println!("DeepDream octave {octave}: {scores:?}");
        assert!(
            scores.windows(2).all(|w| w[1] > w[0]),
            "octave {octave}: {scores:?}"
        );
    }
    // With the roll (the default), it runs and stays a picture.
    DeepDream::new(&model, "relu")
        .octaves(2)
        .steps(3)
        .device(&device)
        .run(&photo)
        .unwrap();
    let out = values(&found.image);
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    // A model with a fixed input: every octave is resampled to it.
    let fixed = DeepDream::new(&model, "conv")
        .octaves(2)
        .steps(2)
        .input_size(32)
        .device(&device)
        .run(&photo)
        .unwrap();
    assert_eq!(fixed.image.shape(), &[1, 3, 40, 40]);
    // A photo that is not [1, 3, h, w], or holds NaN, is refused.
    let flat = DynTensor::from_vec(vec![0.5; 12], vec![12], &device).unwrap();
    assert!(dream.run(&flat).is_err());
    let mut nan = values(&photo);
    nan[7] = f32::NAN;
    let nan = DynTensor::from_vec(nan, vec![1, 3, 40, 40], &device).unwrap();
    let err = dream.run(&nan).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}
