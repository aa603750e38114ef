//! The picture firelight shows by default, a "spotlight": the photo stays recognisable, dimmed and
//! faded towards grey where the attribution is weak, at full colour where it is strong, and the
//! strongest evidence is painted over in warm colours (yellow-orange to red).
//!
//! Why not the others: the jet wash ([`crate::attribution_overlay`]) paints the whole frame, weak
//! evidence included, blue, and its speckles hide the photo; Captum's blended heat map turns the
//! photo into a bright grey on which the pale end of `Blues` leaves only dark specks. Gradient
//! attributions are speckled pixel by pixel, so the map is smoothed a little (a Gaussian of 1.5% of
//! the shorter side) before it decides what is lit: regions, not single pixels, are what a reader
//! relates to the object. Warm colours read as "more" and are rarely the colour of the photo.

use firelight_core::{DynTensor, Error, Result};

use crate::colormap::interpolate_stops;
use crate::image::RgbImage;
use crate::visualize::{cumulative_sum_threshold, sum_channels};

/// How the spotlight is drawn; [`DEFAULT_SPOTLIGHT`] holds the values chosen by looking at
/// Integrated Gradients and saliency maps of the bundled photos.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spotlight {
    /// Brightness kept where there is no evidence at all (1 keeps the photo as it is).
    pub dim: f32,
    /// Smoothing of the map: Gaussian sigma as a fraction of the photo's shorter side.
    pub sigma: f32,
    /// The share of the total (smoothed) evidence, from the largest values, drawn at full strength.
    pub outlier_perc: f32,
    /// Evidence below this (normalised) level gets no heat colour, only brightness.
    pub heat_from: f32,
    /// The heat colour's opacity at full evidence.
    pub heat_alpha: f32,
    /// Saturation kept where there is no evidence (1 keeps the colours, 0 turns them grey).
    pub saturation: f32,
    /// The heat colours, evenly spaced from `heat_from` (first colour) to 1 (last).
    pub heat: &'static [[u8; 3]],
}

/// ColorBrewer's YlOrRd from its yellow-orange to its dark red (its palest entries left out, as
/// they would read as a haze).
pub(crate) const WARM: [[u8; 3]; 6] = [
    [0xfe, 0xd9, 0x76],
    [0xfe, 0xb2, 0x4c],
    [0xfd, 0x8d, 0x3c],
    [0xfc, 0x4e, 0x2a],
    [0xe3, 0x1a, 0x1c],
    [0xbd, 0x00, 0x26],
];

/// The default picture's look.
pub(crate) const DEFAULT_SPOTLIGHT: Spotlight = Spotlight {
    dim: 0.45,
    sigma: 0.015,
    outlier_perc: 5.0,
    heat_from: 0.4,
    heat_alpha: 0.6,
    saturation: 0.4,
    heat: &WARM,
};

/// The default picture of an image attribution `[1, channels, height, width]` over `photo` (the
/// same size). The magnitude of the channel sum is smoothed and scaled by Captum's cumulative-sum
/// threshold with 5% outliers; each pixel then keeps 45% of its brightness and 40% of its
/// saturation where that is 0, rising to all of both at 1, and above 0.4 a warm heat colour
/// fades in, up to 60% opaque. Magnitudes are drawn, so evidence for and against the class both
/// light up; [`crate::visualize_image_attr`] with [`crate::Sign::All`] tells them apart.
///
/// Errors: an attribution of another shape than `[1, C, photo height, photo width]`, non-finite
/// values.
pub fn default_explanation_picture(photo: &RgbImage, attribution: &DynTensor) -> Result<RgbImage> {
    let (map, width, height) = sum_channels(attribution)?;
    spotlight(photo, &map, width, height, &DEFAULT_SPOTLIGHT)
}

/// [`default_explanation_picture`] for a map with one value per pixel (row-major, `width` x
/// `height`), such as a CAM.
pub fn default_explanation_map(
    photo: &RgbImage,
    map: &[f32],
    width: usize,
    height: usize,
) -> Result<RgbImage> {
    crate::visualize::check_finite("attribution map", map)?;
    spotlight(photo, map, width, height, &DEFAULT_SPOTLIGHT)
}

pub(crate) fn spotlight(
    photo: &RgbImage,
    map: &[f32],
    width: usize,
    height: usize,
    style: &Spotlight,
) -> Result<RgbImage> {
    if map.len() != width * height {
        return Err(Error::ShapeMismatch {
            what: "attribution map vs its width and height".into(),
            expected: vec![height, width],
            got: vec![map.len()],
        });
    }
    if (photo.width, photo.height) != (width, height) {
        return Err(Error::ShapeMismatch {
            what: "photo vs attribution (height, width)".into(),
            expected: vec![height, width],
            got: vec![photo.height, photo.width],
        });
    }
    let magnitude: Vec<f32> = map.iter().map(|v| v.abs()).collect();
    let sigma = style.sigma * width.min(height) as f32;
    let smooth = gaussian_blur(&magnitude, width, height, sigma);
    let threshold = cumulative_sum_threshold(&smooth, 100.0 - style.outlier_perc);
    let strength: Vec<f32> = if threshold > 0.0 {
        smooth.iter().map(|v| (v / threshold).min(1.0)).collect()
    } else {
        vec![0.0; smooth.len()]
    };
    let data = photo
        .data
        .chunks_exact(3)
        .zip(&strength)
        .flat_map(|(px, &s)| {
            let brightness = style.dim + (1.0 - style.dim) * s;
            let saturation = style.saturation + (1.0 - style.saturation) * s;
            let grey = 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
            let heat_share = ((s - style.heat_from) / (1.0 - style.heat_from)).clamp(0.0, 1.0);
            let heat = interpolate_stops(style.heat, heat_share);
            let alpha = style.heat_alpha * smoothstep(heat_share);
            (0..3).map(move |c| {
                let lit = (grey + (px[c] as f32 - grey) * saturation) * brightness;
                (lit * (1.0 - alpha) + heat[c] as f32 * alpha)
                    .round()
                    .clamp(0.0, 255.0) as u8
            })
        })
        .collect();
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// 0 at 0, 1 at 1, flat at both ends: the heat fades in rather than starting at an edge.
fn smoothstep(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// A separable Gaussian blur with edges clamped; `sigma < 0.5` leaves the map as it is.
pub(crate) fn gaussian_blur(map: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    if sigma < 0.5 || map.is_empty() {
        return map.to_vec();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let pass = |src: &[f32], along_rows: bool| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for y in 0..height {
            for x in 0..width {
                let mut sum = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) = if along_rows {
                        ((x as isize + d).clamp(0, width as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + d).clamp(0, height as isize - 1) as usize)
                    };
                    sum += weight * src[sy * width + sx];
                }
                out[y * width + x] = sum;
            }
        }
        out
    };
    pass(&pass(map, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_total_and_spreads_a_spike() {
        let mut map = vec![0.0; 81];
        map[40] = 1.0;
        let blurred = gaussian_blur(&map, 9, 9, 1.0);
        let total: f32 = blurred.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(blurred[40] < 0.5 && blurred[41] > 0.0);
        assert_eq!(gaussian_blur(&map, 9, 9, 0.1), map);
    }

    #[test]
    fn weak_evidence_is_dimmed_and_strong_evidence_is_lit() {
        let photo = RgbImage::filled(20, 20, [200, 200, 200]);
        let mut map = vec![0.0; 400];
        map[10 * 20 + 10] = 5.0;
        let style = Spotlight {
            sigma: 0.0,
            ..DEFAULT_SPOTLIGHT
        };
        let out = spotlight(&photo, &map, 20, 20, &style).unwrap();
        assert_eq!(out.pixel(0, 0), [90, 90, 90], "no evidence: 45% brightness");
        let lit = out.pixel(10, 10);
        assert!(lit[0] > lit[1] + 80, "full evidence: red heat, {lit:?}");
        assert!(spotlight(&photo, &map, 10, 40, &style).is_err());
    }
}
