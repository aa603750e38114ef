//! Superpixels: a photo cut into about `n` compact regions of similar colour, the features that
//! Lime and KernelSHAP switch on and off for images (Captum's image tutorials use scikit-image's
//! SLIC for their `feature_mask`).
//!
//! [`slic`] follows Achanta et al. (2012), as scikit-image's `slic` does: k-means in CIELAB colour
//! plus position, seeded on a regular grid, each centre searching a `2S x 2S` window
//! (`S = sqrt(pixels / n)`), 10 iterations, distance `sqrt(d_lab^2 + (d_xy / S)^2 * m^2)` with
//! compactness `m`; then every label is made one connected region (pieces smaller than a quarter of
//! a segment join a neighbour) and the labels are renumbered `0..k` in raster order.

use firelight_core::{Error, Result};

use crate::image::RgbImage;

/// The options of [`slic`], with scikit-image's defaults where it has them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slic {
    /// About how many superpixels to make (scikit-image's `n_segments`, 100).
    pub n_segments: usize,
    /// Colour against space: higher is squarer (scikit-image's `compactness`, 10).
    pub compactness: f32,
    /// k-means iterations (10).
    pub iterations: usize,
}

impl Default for Slic {
    fn default() -> Self {
        Self {
            n_segments: 100,
            compactness: 10.0,
            iterations: 10,
        }
    }
}

/// One label per pixel (row-major), `0..k` for `k` superpixels, and `k`.
pub fn slic(image: &RgbImage, options: Slic) -> Result<(Vec<usize>, usize)> {
    let (w, h) = (image.width, image.height);
    if w == 0 || h == 0 {
        return Err(Error::parameter(
            "image",
            "empty",
            "needs at least one pixel",
        ));
    }
    if options.n_segments == 0 || !(options.compactness.is_finite() && options.compactness > 0.0) {
        return Err(Error::parameter(
            "superpixels",
            format!(
                "n_segments {} compactness {}",
                options.n_segments, options.compactness
            ),
            "needs at least one segment and a positive compactness",
        ));
    }
    let lab: Vec<[f32; 3]> = image
        .data
        .chunks_exact(3)
        .map(|p| rgb_to_lab([p[0], p[1], p[2]]))
        .collect();
    let step = ((w * h) as f32 / options.n_segments as f32).sqrt().max(1.0);
    // Centres on a regular grid, half a step in from the edges: [l, a, b, y, x].
    let mut centres: Vec<[f32; 5]> = Vec::new();
    let mut y = step / 2.0;
    while y < h as f32 {
        let mut x = step / 2.0;
        while x < w as f32 {
            let (yi, xi) = (y as usize, x as usize);
            let c = lab[yi * w + xi];
            centres.push([c[0], c[1], c[2], y, x]);
            x += step;
        }
        y += step;
    }
    let spatial = (options.compactness / step).powi(2);
    let mut labels = vec![0usize; w * h];
    let mut distances = vec![f32::INFINITY; w * h];
    let radius = step.ceil() as isize;
    for _ in 0..options.iterations.max(1) {
        distances.iter_mut().for_each(|d| *d = f32::INFINITY);
        for (k, c) in centres.iter().enumerate() {
            let (cy, cx) = (c[3] as isize, c[4] as isize);
            let y0 = (cy - radius).max(0) as usize;
            let y1 = ((cy + radius + 1).max(0) as usize).min(h);
            let x0 = (cx - radius).max(0) as usize;
            let x1 = ((cx + radius + 1).max(0) as usize).min(w);
            for py in y0..y1 {
                for px in x0..x1 {
                    let i = py * w + px;
                    let p = lab[i];
                    let colour =
                        (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2);
                    let space = (py as f32 - c[3]).powi(2) + (px as f32 - c[4]).powi(2);
                    let d = colour + space * spatial;
                    if d < distances[i] {
                        distances[i] = d;
                        labels[i] = k;
                    }
                }
            }
        }
        let mut sums = vec![[0f64; 6]; centres.len()];
        for (i, &k) in labels.iter().enumerate() {
            let p = lab[i];
            let s = &mut sums[k];
            s[0] += f64::from(p[0]);
            s[1] += f64::from(p[1]);
            s[2] += f64::from(p[2]);
            s[3] += (i / w) as f64;
            s[4] += (i % w) as f64;
            s[5] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[5] > 0.0 {
                for j in 0..5 {
                    c[j] = (s[j] / s[5]) as f32;
                }
            }
        }
    }
    let min_size = ((w * h) / centres.len().max(1) / 4).max(1);
    Ok(connected(&labels, w, h, min_size))
}

/// Relabels so every label is one 4-connected region: pieces smaller than `min_size` join the
/// region they touch first; labels are numbered in raster order of their first pixel.
fn connected(labels: &[usize], w: usize, h: usize, min_size: usize) -> (Vec<usize>, usize) {
    const UNSET: usize = usize::MAX;
    let mut out = vec![UNSET; w * h];
    let mut next = 0;
    let mut stack = Vec::new();
    let mut piece = Vec::new();
    for start in 0..w * h {
        if out[start] != UNSET {
            continue;
        }
        // Flood the piece of `labels[start]` that holds `start`.
        piece.clear();
        stack.push(start);
        out[start] = next;
        let mut adjacent = UNSET;
        while let Some(i) = stack.pop() {
            piece.push(i);
            let (y, x) = (i / w, i % w);
            let neighbours = [
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
            ];
            for j in neighbours.into_iter().flatten() {
                if out[j] == UNSET && labels[j] == labels[start] {
                    out[j] = next;
                    stack.push(j);
                } else if out[j] != UNSET && out[j] != next && adjacent == UNSET {
                    adjacent = out[j];
                }
            }
        }
        if piece.len() < min_size && adjacent != UNSET {
            for &i in &piece {
                out[i] = adjacent;
            }
        } else {
            next += 1;
        }
    }
    (out, next)
}

/// sRGB (D65) to CIELAB, as scikit-image's `rgb2lab`.
fn rgb_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c > 0.04045 {
            ((c + 0.055) / 1.055).powf(2.4)
        } else {
            c / 12.92
        }
    };
    let [r, g, b] = rgb.map(linear);
    let x = (0.412_453 * r + 0.357_580 * g + 0.180_423 * b) / 0.950_456;
    let y = 0.212_671 * r + 0.715_160 * g + 0.072_169 * b;
    let z = (0.019_334 * r + 0.119_193 * g + 0.950_227 * b) / 1.088_754;
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four flat quadrants of different colours.
    fn quadrants(size: usize) -> RgbImage {
        let mut image = RgbImage::filled(size, size, [0, 0, 0]);
        let colours = [[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]];
        for y in 0..size {
            for x in 0..size {
                let q = (y >= size / 2) as usize * 2 + (x >= size / 2) as usize;
                image.data[(y * size + x) * 3..][..3].copy_from_slice(&colours[q]);
            }
        }
        image
    }

    #[test]
    fn superpixels_follow_colour_edges_and_are_connected() {
        let image = quadrants(32);
        let (labels, k) = slic(
            &image,
            Slic {
                n_segments: 4,
                ..Slic::default()
            },
        )
        .unwrap();
        assert_eq!(k, 4, "one superpixel per flat quadrant");
        // No superpixel crosses a colour edge.
        for (i, &label) in labels.iter().enumerate() {
            let q = |i: usize| ((i / 32) >= 16) as usize * 2 + ((i % 32) >= 16) as usize;
            let first = labels.iter().position(|&l| l == label).unwrap();
            assert_eq!(q(i), q(first));
        }
    }

    #[test]
    fn about_n_segments_labelled_densely_from_zero() {
        let mut image = quadrants(64);
        // Some texture, so k-means has something to do.
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = v.wrapping_add((i * 7 % 13) as u8);
        }
        let (labels, k) = slic(
            &image,
            Slic {
                n_segments: 50,
                ..Slic::default()
            },
        )
        .unwrap();
        assert!((25..=80).contains(&k), "{k} superpixels for 50 asked");
        let mut seen = vec![false; k];
        labels.iter().for_each(|&l| seen[l] = true);
        assert!(seen.iter().all(|s| *s), "labels are 0..k with none missing");
    }

    #[test]
    fn bad_options_are_errors() {
        let image = quadrants(8);
        assert!(
            slic(
                &image,
                Slic {
                    n_segments: 0,
                    ..Slic::default()
                }
            )
            .is_err()
        );
        assert!(
            slic(
                &image,
                Slic {
                    compactness: f32::NAN,
                    ..Slic::default()
                }
            )
            .is_err()
        );
        assert!(slic(&RgbImage::filled(0, 0, [0; 3]), Slic::default()).is_err());
    }
}
