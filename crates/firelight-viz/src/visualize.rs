//! Captum's `visualize_image_attr`, as pixels: the same normalisation (`_normalize_attr`), the same
//! default colormaps and the same five methods, drawn at the photo's size with no axes, title or
//! colorbar (matplotlib's figure around the picture is left out).

use firelight_core::{DynTensor, Error, Result};

use crate::colormap::Colormap;
use crate::image::RgbImage;

/// How the attribution is drawn (Captum's `ImageVisualizationMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VisualizeMethod {
    /// The normalised attribution through a colormap, nothing of the photo (Captum's default).
    #[default]
    HeatMap,
    /// The heat map at `alpha_overlay` over the photo in grey.
    BlendedHeatMap,
    /// The photo as it is.
    OriginalImage,
    /// The photo multiplied by the normalised attribution: dark where there is no evidence.
    MaskedImage,
    /// The photo with opacity equal to the normalised attribution, over white.
    AlphaScaling,
}

impl VisualizeMethod {
    /// Every method, in Captum's order.
    pub const ALL: [VisualizeMethod; 5] = [
        VisualizeMethod::HeatMap,
        VisualizeMethod::BlendedHeatMap,
        VisualizeMethod::OriginalImage,
        VisualizeMethod::MaskedImage,
        VisualizeMethod::AlphaScaling,
    ];

    /// Captum's name for the method (`"heat_map"`, `"blended_heat_map"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            VisualizeMethod::HeatMap => "heat_map",
            VisualizeMethod::BlendedHeatMap => "blended_heat_map",
            VisualizeMethod::OriginalImage => "original_image",
            VisualizeMethod::MaskedImage => "masked_image",
            VisualizeMethod::AlphaScaling => "alpha_scaling",
        }
    }

    /// Whether the method cannot show both signs at once (Captum asserts `sign != "all"`).
    fn needs_one_sign(self) -> bool {
        matches!(
            self,
            VisualizeMethod::MaskedImage | VisualizeMethod::AlphaScaling
        )
    }
}

/// Which attributions are drawn (Captum's `VisualizeSign`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Sign {
    /// Positive and negative, scaled to `[-1, 1]`.
    All,
    /// Positive attributions only (negative ones become 0), scaled to `[0, 1]`.
    Positive,
    /// Negative attributions only, as magnitudes in `[0, 1]`.
    Negative,
    /// Magnitudes, scaled to `[0, 1]` (Captum's default).
    #[default]
    AbsoluteValue,
}

impl Sign {
    /// Every sign, in the order Captum's docs list them.
    pub const ALL: [Sign; 4] = [
        Sign::Positive,
        Sign::AbsoluteValue,
        Sign::Negative,
        Sign::All,
    ];

    /// Captum's name for the sign (`"all"`, `"positive"`, `"negative"`, `"absolute_value"`).
    pub fn name(self) -> &'static str {
        match self {
            Sign::All => "all",
            Sign::Positive => "positive",
            Sign::Negative => "negative",
            Sign::AbsoluteValue => "absolute_value",
        }
    }

    /// Captum's colormap for this sign: red-white-green for all, greens for positive, reds for
    /// negative, blues for absolute values.
    pub fn default_colormap(self) -> Colormap {
        match self {
            Sign::All => Colormap::RedWhiteGreen,
            Sign::Positive => Colormap::Greens,
            Sign::Negative => Colormap::Reds,
            Sign::AbsoluteValue => Colormap::Blues,
        }
    }

    /// The `(vmin, vmax)` the normalised map is drawn between: `(-1, 1)` for all, `(0, 1)` else.
    pub fn value_range(self) -> (f32, f32) {
        match self {
            Sign::All => (-1.0, 1.0),
            _ => (0.0, 1.0),
        }
    }
}

/// The choices of Captum's `visualize_image_attr`, with its defaults ([`Default`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisualizeOptions {
    /// How the attribution is drawn (default [`VisualizeMethod::HeatMap`]).
    pub method: VisualizeMethod,
    /// Which attributions are drawn (default [`Sign::AbsoluteValue`]).
    pub sign: Sign,
    /// The share (in percent, `0..=100`) of the total attribution, taken from the largest values,
    /// that is drawn at full strength; the scale is the smallest of those values (default 2).
    pub outlier_perc: f32,
    /// The heat map's opacity in [`VisualizeMethod::BlendedHeatMap`], `0..=1` (default 0.5).
    pub alpha_overlay: f32,
    /// The colormap of the heat maps; `None` for the sign's ([`Sign::default_colormap`]).
    pub colormap: Option<Colormap>,
}

impl Default for VisualizeOptions {
    fn default() -> Self {
        Self {
            method: VisualizeMethod::HeatMap,
            sign: Sign::AbsoluteValue,
            outlier_perc: 2.0,
            alpha_overlay: 0.5,
            colormap: None,
        }
    }
}

impl VisualizeOptions {
    /// `method` and `sign` with Captum's defaults for the rest.
    pub fn new(method: VisualizeMethod, sign: Sign) -> Self {
        Self {
            method,
            sign,
            ..Self::default()
        }
    }

    /// With `outlier_perc` (percent of the total attribution drawn at full strength).
    pub fn with_outlier_perc(mut self, outlier_perc: f32) -> Self {
        self.outlier_perc = outlier_perc;
        self
    }

    /// With the heat map's opacity in blended heat maps.
    pub fn with_alpha_overlay(mut self, alpha_overlay: f32) -> Self {
        self.alpha_overlay = alpha_overlay;
        self
    }

    /// With a colormap other than the sign's default.
    pub fn with_colormap(mut self, colormap: Colormap) -> Self {
        self.colormap = Some(colormap);
        self
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..=100.0).contains(&self.outlier_perc) {
            return Err(Error::parameter(
                "outlier_perc",
                self.outlier_perc,
                "must be a percentage in 0..=100",
            ));
        }
        if !(0.0..=1.0).contains(&self.alpha_overlay) {
            return Err(Error::parameter(
                "alpha_overlay",
                self.alpha_overlay,
                "must be an opacity in 0..=1",
            ));
        }
        if self.method.needs_one_sign() && self.sign == Sign::All {
            return Err(Error::parameter(
                "sign",
                "all",
                format!(
                    "{} cannot show positive and negative attributions at once (as in Captum); \
                     choose positive, negative or absolute_value",
                    self.method.name()
                ),
            ));
        }
        Ok(())
    }
}

/// The attribution `[1, channels, height, width]` summed over channels (as Captum sums an
/// `(H, W, C)` attribution over its last axis): one value per pixel, row-major, with the width and
/// height. Non-finite values are refused.
pub fn sum_channels(attribution: &DynTensor) -> Result<(Vec<f32>, usize, usize)> {
    let shape = attribution.shape();
    if shape.len() != 4 || shape[0] != 1 {
        return Err(Error::RankMismatch {
            what: "attribution to draw (one image, [1, channels, height, width])".into(),
            expected: 4,
            got: shape.to_vec(),
        });
    }
    let (channels, height, width) = (shape[1], shape[2], shape[3]);
    let values = attribution.to_vec()?;
    check_finite("attribution to draw", &values)?;
    let plane = height * width;
    // Channel by channel from 0, as NumPy's sum adds three or so values.
    let map = (0..plane)
        .map(|i| (0..channels).fold(0.0f32, |sum, c| sum + values[c * plane + i]))
        .collect();
    Ok((map, width, height))
}

/// Captum's `_cumulative_sum_threshold`: the smallest of the sorted non-negative `values` at which
/// their running sum reaches `percentile` percent of the total. Accumulated in `f32` in sorted
/// order, as NumPy's `cumsum` of a float32 array does, so that the same value is chosen.
///
/// Where rounding leaves the running sum short of the target (Captum fails with an index error
/// there), the largest value is the threshold. An empty slice gives 0.
pub fn cumulative_sum_threshold(values: &[f32], percentile: f32) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let total = sorted.iter().fold(0.0f32, |sum, v| sum + v);
    // NumPy 2 keeps `float32 * 0.01 * percentile` in float32, left to right.
    let target = total * 0.01f32 * percentile;
    let mut running = 0.0f32;
    for &v in &sorted {
        running += v;
        if running >= target {
            return v;
        }
    }
    sorted.last().copied().unwrap_or(0.0)
}

/// Captum's `_normalize_attr` of a map with one value per pixel: keep the values of `sign`, divide
/// by the [`cumulative_sum_threshold`] of their magnitudes at `100 - outlier_perc` (its negative
/// for [`Sign::Negative`], so that negative evidence comes out positive) and clip to `[-1, 1]`.
///
/// Where nothing of the sign is left (a zero threshold, where Captum's assertion fails) the map is
/// all zeros: nothing to show. Non-finite values and `outlier_perc` outside `0..=100` are refused.
pub fn normalize_attr(map: &[f32], sign: Sign, outlier_perc: f32) -> Result<Vec<f32>> {
    if !(0.0..=100.0).contains(&outlier_perc) {
        return Err(Error::parameter(
            "outlier_perc",
            outlier_perc,
            "must be a percentage in 0..=100",
        ));
    }
    check_finite("attribution map", map)?;
    let kept: Vec<f32> = match sign {
        Sign::All => map.to_vec(),
        Sign::Positive => map.iter().map(|v| v.max(0.0)).collect(),
        Sign::Negative => map.iter().map(|v| v.min(0.0)).collect(),
        Sign::AbsoluteValue => map.iter().map(|v| v.abs()).collect(),
    };
    let magnitudes: Vec<f32> = kept.iter().map(|v| v.abs()).collect();
    // Python computes `100.0 - outlier_perc` in double precision before NumPy narrows it.
    let percentile = (100.0 - f64::from(outlier_perc)) as f32;
    let mut threshold = cumulative_sum_threshold(&magnitudes, percentile);
    if threshold == 0.0 {
        return Ok(vec![0.0; map.len()]);
    }
    if sign == Sign::Negative {
        threshold = -threshold;
    }
    Ok(kept
        .iter()
        .map(|v| (v / threshold).clamp(-1.0, 1.0))
        .collect())
}

/// Captum's `visualize_image_attr(attr, photo, method, sign, outlier_perc=..., cmap=...,
/// alpha_overlay=...)` for an attribution `[1, channels, height, width]`, as an image of the
/// attribution's size (the photo's, which must match where the method draws it).
///
/// Channels are summed ([`sum_channels`]), the map normalised ([`normalize_attr`]) and drawn:
/// * [`VisualizeMethod::HeatMap`]: the colormap between the sign's `vmin` and `vmax`;
/// * [`VisualizeMethod::BlendedHeatMap`]: the photo's channel mean, stretched from its darkest to
///   its brightest pixel as `imshow(cmap="gray")` does, under the heat map at `alpha_overlay`;
/// * [`VisualizeMethod::OriginalImage`]: the photo;
/// * [`VisualizeMethod::MaskedImage`]: each pixel times the map, truncated as Captum's
///   `astype(int)`;
/// * [`VisualizeMethod::AlphaScaling`]: the photo with opacity `floor(255 * map)`, composited over
///   white (matplotlib's figure background, which Captum's RGBA picture is drawn on).
///
/// Errors: a method other than the heat map without a photo, a photo of another size, `sign` all
/// with the masked image or alpha scaling (as Captum raises), options out of range, non-finite
/// attributions.
pub fn visualize_image_attr(
    attribution: &DynTensor,
    photo: Option<&RgbImage>,
    options: &VisualizeOptions,
) -> Result<RgbImage> {
    let (map, width, height) = sum_channels(attribution)?;
    visualize_map(&map, width, height, photo, options)
}

/// [`visualize_image_attr`] for a map that already has one value per pixel (row-major, `width` x
/// `height`), such as a CAM.
pub fn visualize_map(
    map: &[f32],
    width: usize,
    height: usize,
    photo: Option<&RgbImage>,
    options: &VisualizeOptions,
) -> Result<RgbImage> {
    options.validate()?;
    if map.len() != width * height {
        return Err(Error::ShapeMismatch {
            what: "attribution map vs its width and height".into(),
            expected: vec![height, width],
            got: vec![map.len()],
        });
    }
    let norm = normalize_attr(map, options.sign, options.outlier_perc)?;
    let colormap = options
        .colormap
        .unwrap_or_else(|| options.sign.default_colormap());
    let (vmin, vmax) = options.sign.value_range();
    let heat = |v: f32| colormap.sample((v - vmin) / (vmax - vmin));
    if options.method == VisualizeMethod::HeatMap {
        let data = norm.iter().flat_map(|&v| heat(v)).collect();
        return Ok(RgbImage {
            width,
            height,
            data,
        });
    }
    let photo = photo.ok_or_else(|| {
        Error::parameter(
            "photo",
            "none",
            format!(
                "{} draws over the photo; only heat_map needs none",
                options.method.name()
            ),
        )
    })?;
    if (photo.width, photo.height) != (width, height) {
        return Err(Error::ShapeMismatch {
            what: "photo vs attribution (height, width)".into(),
            expected: vec![height, width],
            got: vec![photo.height, photo.width],
        });
    }
    let pixels = photo.data.chunks_exact(3).zip(&norm);
    let data: Vec<u8> = match options.method {
        VisualizeMethod::HeatMap | VisualizeMethod::OriginalImage => photo.data.clone(),
        VisualizeMethod::BlendedHeatMap => {
            let grey = stretched_grey(photo);
            let alpha = options.alpha_overlay;
            grey.iter()
                .zip(&norm)
                .flat_map(|(&g, &v)| {
                    let under = Colormap::Gray.sample(g);
                    let over = heat(v);
                    (0..3).map(move |c| blend(over[c], under[c], alpha))
                })
                .collect()
        }
        VisualizeMethod::MaskedImage => pixels
            .flat_map(|(px, &v)| {
                px.iter()
                    .map(move |&p| (p as f32 * v).clamp(0.0, 255.0) as u8)
            })
            .collect(),
        VisualizeMethod::AlphaScaling => pixels
            .flat_map(|(px, &v)| {
                // Captum's alpha channel, `clip(int(v * 255), 0, 255)`, over white.
                let alpha = (v * 255.0).clamp(0.0, 255.0).trunc() / 255.0;
                px.iter().map(move |&p| blend(p, 255, alpha))
            })
            .collect(),
    };
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// `over` at opacity `alpha` on `under`.
fn blend(over: u8, under: u8, alpha: f32) -> u8 {
    (over as f32 * alpha + under as f32 * (1.0 - alpha))
        .round()
        .clamp(0.0, 255.0) as u8
}

/// The photo's channel mean per pixel, scaled from its minimum to its maximum as `imshow` scales
/// data it is given no `vmin`/`vmax` for (all 0 for a flat photo, as matplotlib draws it).
fn stretched_grey(photo: &RgbImage) -> Vec<f32> {
    let mean: Vec<f64> = photo
        .data
        .chunks_exact(3)
        .map(|px| px.iter().map(|&p| f64::from(p)).sum::<f64>() / 3.0)
        .collect();
    let (lo, hi) = mean
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
            (lo.min(m), hi.max(m))
        });
    mean.iter()
        .map(|&m| {
            if hi > lo {
                ((m - lo) / (hi - lo)) as f32
            } else {
                0.0
            }
        })
        .collect()
}

pub(crate) fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    let count = values.iter().filter(|v| !v.is_finite()).count();
    match values.iter().position(|v| !v.is_finite()) {
        Some(first_index) => Err(Error::NonFinite {
            what: what.into(),
            count,
            first_index,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_threshold_is_not_a_percentile() {
        // 98% of the total (100) is reached only once the largest value is added: the threshold is
        // 91, where a 98th percentile of ten values would be 1.
        let values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 91.0];
        assert_eq!(cumulative_sum_threshold(&values, 98.0), 91.0);
        assert_eq!(cumulative_sum_threshold(&values, 5.0), 1.0);
        assert_eq!(cumulative_sum_threshold(&[], 98.0), 0.0);
    }

    #[test]
    fn negative_evidence_comes_out_positive_and_clipped() {
        let map = [-4.0, -2.0, 0.0, 3.0];
        let norm = normalize_attr(&map, Sign::Negative, 0.0).unwrap();
        assert_eq!(norm, vec![1.0, 0.5, 0.0, 0.0]);
        let all = normalize_attr(&map, Sign::All, 50.0).unwrap();
        assert!(all.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(all[0], -1.0);
    }

    #[test]
    fn nothing_of_the_sign_gives_an_empty_map_not_a_division_by_zero() {
        let norm = normalize_attr(&[-1.0, -2.0], Sign::Positive, 2.0).unwrap();
        assert_eq!(norm, vec![0.0, 0.0]);
    }

    #[test]
    fn refuses_nan_and_bad_options() {
        assert!(normalize_attr(&[f32::NAN], Sign::All, 2.0).is_err());
        assert!(normalize_attr(&[1.0], Sign::All, 101.0).is_err());
        let photo = RgbImage::filled(2, 1, [10, 20, 30]);
        let masked_all = VisualizeOptions::new(VisualizeMethod::MaskedImage, Sign::All);
        let err = visualize_map(&[1.0, 2.0], 2, 1, Some(&photo), &masked_all).unwrap_err();
        assert!(err.to_string().contains("masked_image"), "{err}");
        let blended = VisualizeOptions::new(VisualizeMethod::BlendedHeatMap, Sign::Positive);
        assert!(visualize_map(&[1.0, 2.0], 2, 1, None, &blended).is_err());
        assert!(visualize_map(&[1.0, 2.0, 3.0], 3, 1, Some(&photo), &blended).is_err());
        let alpha = blended.with_alpha_overlay(1.5);
        assert!(visualize_map(&[1.0, 2.0], 2, 1, Some(&photo), &alpha).is_err());
    }

    #[test]
    fn masked_and_alpha_scaled_photos_fade_where_the_map_is_weak() {
        let photo = RgbImage::filled(2, 1, [200, 100, 50]);
        let masked = VisualizeOptions::new(VisualizeMethod::MaskedImage, Sign::Positive)
            .with_outlier_perc(0.0);
        let out = visualize_map(&[2.0, 1.0], 2, 1, Some(&photo), &masked).unwrap();
        assert_eq!(out.data, vec![200, 100, 50, 100, 50, 25]);
        let faded = VisualizeOptions::new(VisualizeMethod::AlphaScaling, Sign::Positive)
            .with_outlier_perc(0.0);
        let out = visualize_map(&[2.0, 0.0], 2, 1, Some(&photo), &faded).unwrap();
        assert_eq!(out.data, vec![200, 100, 50, 255, 255, 255]);
    }
}
