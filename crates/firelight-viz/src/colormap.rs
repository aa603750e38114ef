//! Colormaps from a value in `[0, 1]` (or `[-1, 1]` for the signed maps) to RGB, including the
//! ones Captum's `visualize_image_attr` draws with, sampled as matplotlib samples them.

/// A mapping from normalised values to colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colormap {
    /// OpenCV's `COLORMAP_JET`, as pytorch-grad-cam draws its heatmaps.
    #[default]
    Jet,
    /// Matplotlib's perceptually uniform `viridis`.
    Viridis,
    /// Blue (negative) - white (zero) - red (positive), for signed attributions in `[-1, 1]`.
    Diverging,
    /// Red (negative) - white (zero) - green (positive), for signed attributions in `[-1, 1]`:
    /// Captum's `sign="all"` default, `LinearSegmentedColormap.from_list("RdWhGn", ["red",
    /// "white", "green"])`.
    RedWhiteGreen,
    /// Matplotlib's `Greens` (white to dark green): Captum's `sign="positive"` default.
    Greens,
    /// Matplotlib's `Reds` (white to dark red): Captum's `sign="negative"` default.
    Reds,
    /// Matplotlib's `Blues` (white to dark blue): Captum's `sign="absolute_value"` default.
    Blues,
    /// Matplotlib's `gray` (black to white), under Captum's blended heat maps.
    Gray,
}

impl Colormap {
    /// The colour of `v` (clamped to the map's range: `[-1, 1]` for the signed maps
    /// ([`Colormap::is_signed`]), `[0, 1]` for the others; NaN is drawn as the lowest value).
    pub fn rgb(self, v: f32) -> [u8; 3] {
        let v = if v.is_nan() { 0.0 } else { v };
        if self.is_signed() {
            self.sample((v.clamp(-1.0, 1.0) + 1.0) / 2.0)
        } else {
            self.sample(v)
        }
    }

    /// The colour at `t` along the map, `0` its first colour and `1` its last, whatever range
    /// [`Colormap::rgb`] takes (clamped; NaN is drawn as `0`). This is matplotlib's
    /// `cmap(t)` once `imshow` has scaled a value from `[vmin, vmax]` to `t`.
    pub fn sample(self, t: f32) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        match self {
            Colormap::Jet => jet(t),
            Colormap::Viridis => interpolate(&VIRIDIS, t),
            Colormap::Diverging => interpolate(&DIVERGING, t),
            Colormap::RedWhiteGreen => lookup(&RED_WHITE_GREEN, t),
            Colormap::Greens => lookup(&GREENS, t),
            Colormap::Reds => lookup(&REDS, t),
            Colormap::Blues => lookup(&BLUES, t),
            Colormap::Gray => lookup(&GRAY, t),
        }
    }

    /// Whether [`Colormap::rgb`] takes signed values in `[-1, 1]` (zero in the middle of the map)
    /// rather than magnitudes in `[0, 1]`.
    pub fn is_signed(self) -> bool {
        matches!(self, Colormap::Diverging | Colormap::RedWhiteGreen)
    }
}

/// The colour at `t` in `0..=1` along evenly spaced `stops`, linearly interpolated.
pub(crate) fn interpolate_stops(stops: &[[u8; 3]], t: f32) -> [u8; 3] {
    let pos = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let i = (pos.floor() as usize).min(stops.len().saturating_sub(2));
    let f = pos - i as f32;
    let next = stops[(i + 1).min(stops.len() - 1)];
    [0, 1, 2]
        .map(|c| (stops[i][c] as f32 + (next[c] as f32 - stops[i][c] as f32) * f).round() as u8)
}

/// Entries in matplotlib's lookup tables (`rcParams["image.lut"]`).
const LUT_SIZE: usize = 256;

/// Matplotlib's `Colormap.__call__` for a float: entry `floor(t * N)` of an `N`-entry table whose
/// entry `i` is the colour list interpolated at `i / (N - 1)`. Sampling the table rather than the
/// continuous ramp is what keeps us within rounding of matplotlib's colours.
fn lookup(stops: &[[u8; 3]], t: f32) -> [u8; 3] {
    let index = ((t as f64 * LUT_SIZE as f64) as usize).min(LUT_SIZE - 1);
    let x = index as f64 / (LUT_SIZE - 1) as f64;
    let pos = x * (stops.len() - 1) as f64;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f64;
    let mut out = [0u8; 3];
    for c in 0..3 {
        let (a, b) = (stops[i][c] as f64, stops[i + 1][c] as f64);
        out[c] = (a + (b - a) * f).round().clamp(0.0, 255.0) as u8;
    }
    out
}

fn jet(v: f32) -> [u8; 3] {
    // Piecewise-linear channels of OpenCV's jet.
    let channel = |center: f32| (1.5 - (4.0 * v - center).abs()).clamp(0.0, 1.0);
    let to_u8 = |c: f32| (c * 255.0).round() as u8;
    [
        to_u8(channel(3.0)),
        to_u8(channel(2.0)),
        to_u8(channel(1.0)),
    ]
}

fn interpolate(stops: &[[f32; 3]], v: f32) -> [u8; 3] {
    let pos = v * (stops.len() - 1) as f32;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let t = pos - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        let x = stops[i][c] + (stops[i + 1][c] - stops[i][c]) * t;
        out[c] = (x * 255.0).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Matplotlib's viridis at nine evenly spaced points.
const VIRIDIS: [[f32; 3]; 9] = [
    [0.267, 0.005, 0.329],
    [0.283, 0.141, 0.458],
    [0.254, 0.265, 0.530],
    [0.207, 0.372, 0.553],
    [0.164, 0.471, 0.558],
    [0.128, 0.567, 0.551],
    [0.135, 0.659, 0.518],
    [0.267, 0.749, 0.441],
    [0.993, 0.906, 0.144],
];

/// Blue - white - red (matplotlib's `bwr`).
const DIVERGING: [[f32; 3]; 3] = [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]];

/// Matplotlib's named colours `red`, `white` and `green` (`#008000`), evenly spaced.
const RED_WHITE_GREEN: [[u8; 3]; 3] = [[255, 0, 0], [255, 255, 255], [0, 128, 0]];

/// ColorBrewer's 9-class sequential schemes, as matplotlib's `_cm.py` lists them.
const GREENS: [[u8; 3]; 9] = [
    [0xf7, 0xfc, 0xf5],
    [0xe5, 0xf5, 0xe0],
    [0xc7, 0xe9, 0xc0],
    [0xa1, 0xd9, 0x9b],
    [0x74, 0xc4, 0x76],
    [0x41, 0xab, 0x5d],
    [0x23, 0x8b, 0x45],
    [0x00, 0x6d, 0x2c],
    [0x00, 0x44, 0x1b],
];
const REDS: [[u8; 3]; 9] = [
    [0xff, 0xf5, 0xf0],
    [0xfe, 0xe0, 0xd2],
    [0xfc, 0xbb, 0xa1],
    [0xfc, 0x92, 0x72],
    [0xfb, 0x6a, 0x4a],
    [0xef, 0x3b, 0x2c],
    [0xcb, 0x18, 0x1d],
    [0xa5, 0x0f, 0x15],
    [0x67, 0x00, 0x0d],
];
const BLUES: [[u8; 3]; 9] = [
    [0xf7, 0xfb, 0xff],
    [0xde, 0xeb, 0xf7],
    [0xc6, 0xdb, 0xef],
    [0x9e, 0xca, 0xe1],
    [0x6b, 0xae, 0xd6],
    [0x42, 0x92, 0xc6],
    [0x21, 0x71, 0xb5],
    [0x08, 0x51, 0x9c],
    [0x08, 0x30, 0x6b],
];
const GRAY: [[u8; 3]; 2] = [[0, 0, 0], [255, 255, 255]];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle() {
        assert_eq!(Colormap::Jet.rgb(0.0), [0, 0, 128]);
        assert_eq!(Colormap::Jet.rgb(1.0), [128, 0, 0]);
        assert_eq!(Colormap::Jet.rgb(0.5), [128, 255, 128]);
        assert_eq!(Colormap::Diverging.rgb(0.0), [255, 255, 255]);
        assert_eq!(Colormap::Diverging.rgb(-1.0), [0, 0, 255]);
        assert_eq!(Colormap::Viridis.rgb(f32::NAN), Colormap::Viridis.rgb(0.0));
    }

    #[test]
    fn signed_maps_take_minus_one_to_one_and_sample_takes_zero_to_one() {
        assert_eq!(Colormap::RedWhiteGreen.rgb(-1.0), [255, 0, 0]);
        assert_eq!(Colormap::RedWhiteGreen.rgb(1.0), [0, 128, 0]);
        assert_eq!(Colormap::RedWhiteGreen.sample(0.0), [255, 0, 0]);
        assert_eq!(
            Colormap::Diverging.sample(0.5),
            Colormap::Diverging.rgb(0.0)
        );
        assert_eq!(Colormap::Blues.rgb(0.3), Colormap::Blues.sample(0.3));
        assert_eq!(Colormap::Gray.sample(1.0), [255, 255, 255]);
        // Matplotlib's table: entry floor(t * 256), so 0.5 lands on entry 128 = 128/255.
        assert_eq!(Colormap::Gray.sample(0.5), [128, 128, 128]);
    }
}
