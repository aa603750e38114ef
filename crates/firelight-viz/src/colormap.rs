//! Colormaps from a value in `[0, 1]` (or `[-1, 1]` for the diverging map) to RGB.

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
}

impl Colormap {
    /// The colour of `v` (clamped to the map's range; NaN is drawn as the lowest value).
    pub fn rgb(self, v: f32) -> [u8; 3] {
        let v = if v.is_nan() { 0.0 } else { v };
        match self {
            Colormap::Jet => jet(v.clamp(0.0, 1.0)),
            Colormap::Viridis => interpolate(&VIRIDIS, v.clamp(0.0, 1.0)),
            Colormap::Diverging => interpolate(&DIVERGING, (v.clamp(-1.0, 1.0) + 1.0) / 2.0),
        }
    }
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
}
