//! Pictures of tabular attributions, as Captum's tabular tutorial and shap draw them: one bar per
//! feature ([`feature_bar_chart`]), several methods side by side ([`grouped_bar_chart`]), mean
//! magnitudes over many rows ([`summary_bar_chart`]) and shap's beeswarm ([`summary_dot_plot`]).
//!
//! Every chart puts one feature per row, the most important on top, on a shared value axis with a
//! zero line, and draws its text in the bitmap font of [`crate::text`].

use firelight_core::{Error, Result};

use crate::image::RgbImage;
use crate::text::{GLYPH_SIZE, draw_text, draw_text_centered, fill_rect, text_width};
use crate::visualize::check_finite;

/// shap's red, for positive attributions and high feature values.
pub const POSITIVE: [u8; 3] = [0xff, 0x00, 0x51];
/// shap's blue, for negative attributions and low feature values.
pub const NEGATIVE: [u8; 3] = [0x00, 0x8b, 0xfb];
/// One colour per method in [`grouped_bar_chart`]: matplotlib's `tab10`, as Captum's tutorial
/// draws its methods.
pub const METHOD_COLORS: [[u8; 3]; 10] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0x7f, 0x7f, 0x7f],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
];

const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [30, 30, 30];
const MUTED: [u8; 3] = [110, 110, 110];
const GRID: [u8; 3] = [232, 232, 232];
const ZERO_LINE: [u8; 3] = [90, 90, 90];
const MARGIN: usize = 16;
/// Titles and feature names at twice the font size: readable at a glance.
const BIG: usize = 2;
/// Values, ticks and legends at the font size.
const SMALL: usize = 1;
const PLOT_WIDTH: usize = 480;
/// Feature names longer than this are shortened with `..`.
const MAX_NAME_CHARS: usize = 24;

/// Horizontal bars of one attribution per feature, largest magnitude on top: positive values in
/// shap's red to the right of the zero line, negative ones in its blue to the left, each value
/// printed at the end of its bar.
///
/// Errors: no features, `names` and `values` of different lengths, a NaN or infinite value.
pub fn feature_bar_chart(names: &[String], values: &[f32], title: &str) -> Result<RgbImage> {
    check_features(names, values.len(), "values")?;
    check_finite("attributions to chart", values)?;
    let order = by_magnitude(values);
    let bars = order
        .iter()
        .map(|&i| {
            let color = if values[i] < 0.0 { NEGATIVE } else { POSITIVE };
            vec![(values[i], color)]
        })
        .collect();
    let labels = order.iter().map(|&i| names[i].as_str()).collect();
    draw_bars(title, labels, bars, &[], "attribution", true)
}

/// Several methods' attributions side by side per feature (`values[method][feature]`), one colour
/// per method ([`METHOD_COLORS`]) with a legend; features ordered by their mean magnitude over the
/// methods, largest on top. Values are drawn as given: methods on different scales can be brought
/// to one with [`l1_normalized`] first, as Captum's tabular tutorial does.
///
/// Errors: no features or methods, more methods than colours, lengths that do not match,
/// non-finite values.
pub fn grouped_bar_chart(
    names: &[String],
    methods: &[String],
    values: &[Vec<f32>],
    title: &str,
) -> Result<RgbImage> {
    if methods.is_empty() || methods.len() != values.len() {
        return Err(Error::parameter(
            "methods",
            format!("{} names for {} value lists", methods.len(), values.len()),
            "give one name per method and at least one method",
        ));
    }
    if methods.len() > METHOD_COLORS.len() {
        return Err(Error::parameter(
            "methods",
            methods.len(),
            format!("at most {} methods fit one chart", METHOD_COLORS.len()),
        ));
    }
    for row in values {
        check_features(names, row.len(), "values per method")?;
        check_finite("attributions to chart", row)?;
    }
    let mean_abs: Vec<f32> = (0..names.len())
        .map(|f| values.iter().map(|row| row[f].abs()).sum::<f32>() / values.len() as f32)
        .collect();
    let order = by_magnitude(&mean_abs);
    let bars = order
        .iter()
        .map(|&f| {
            values
                .iter()
                .zip(METHOD_COLORS)
                .map(|(row, color)| (row[f], color))
                .collect()
        })
        .collect();
    let labels = order.iter().map(|&i| names[i].as_str()).collect();
    let legend: Vec<(&str, [u8; 3])> = methods
        .iter()
        .map(String::as_str)
        .zip(METHOD_COLORS)
        .collect();
    draw_bars(title, labels, bars, &legend, "attribution", true)
}

/// The mean magnitude of each feature's attribution over many rows (`attributions[row][feature]`),
/// as shap's summary bar plot: one bar per feature, largest on top.
///
/// Errors: no rows or features, rows of another length than `names`, non-finite values.
pub fn summary_bar_chart(
    names: &[String],
    attributions: &[Vec<f32>],
    title: &str,
) -> Result<RgbImage> {
    check_rows(names, attributions, "attributions")?;
    let means = mean_abs(names.len(), attributions);
    let order = by_magnitude(&means);
    let bars = order.iter().map(|&i| vec![(means[i], NEGATIVE)]).collect();
    let labels = order.iter().map(|&i| names[i].as_str()).collect();
    draw_bars(title, labels, bars, &[], "mean |attribution|", false)
}

/// shap's beeswarm summary: one row per feature, ordered by mean magnitude (largest on top); each
/// row of the data is a dot at its attribution, coloured from blue (the feature's low values) to
/// red (high), stacked vertically where dots pile up. Feature values are scaled per feature between
/// their 5th and 95th percentiles, as shap does, so that a few outliers do not wash out the colours.
///
/// Errors: no rows or features, `attributions` and `feature_values` of different shapes or rows of
/// another length than `names`, non-finite values.
pub fn summary_dot_plot(
    names: &[String],
    attributions: &[Vec<f32>],
    feature_values: &[Vec<f32>],
    title: &str,
) -> Result<RgbImage> {
    check_rows(names, attributions, "attributions")?;
    check_rows(names, feature_values, "feature_values")?;
    if attributions.len() != feature_values.len() {
        return Err(Error::ShapeMismatch {
            what: "feature values vs attributions (rows, features)".into(),
            expected: vec![attributions.len(), names.len()],
            got: vec![feature_values.len(), names.len()],
        });
    }
    let means = mean_abs(names.len(), attributions);
    let order = by_magnitude(&means);
    let labels: Vec<&str> = order.iter().map(|&i| names[i].as_str()).collect();
    let all = attributions.iter().flatten().copied();
    let (lo, hi) = all.fold((0.0f32, 0.0f32), |(lo, hi), v| (lo.min(v), hi.max(v)));
    const ROW: usize = 40;
    const RADIUS: usize = 3;
    const LEGEND_WIDTH: usize = 120;
    let frame = Frame::new(title, &labels, lo, hi, 0, 0, ROW, 0, LEGEND_WIDTH);
    let mut canvas = frame.canvas(title, "attribution (impact on model output)");
    frame.draw_labels(&mut canvas, &labels);
    for (row, &feature) in order.iter().enumerate() {
        let xs: Vec<f32> = attributions.iter().map(|r| r[feature]).collect();
        let colors = feature_colors(feature_values.iter().map(|r| r[feature]));
        let offsets = beeswarm(&xs, lo, hi);
        let max_layer = offsets.iter().fold(1.0f32, |m, o| m.max(o.abs()));
        // Pile the dots up to just inside the row, no closer than a dot's width apart.
        let spacing = ((ROW / 2 - RADIUS - 1) as f32 / max_layer).min(RADIUS as f32 + 1.0);
        let center = frame.row_top(row) + ROW / 2;
        for ((&x, &offset), color) in xs.iter().zip(&offsets).zip(&colors) {
            let px = frame.x(x).round() as i64;
            let py = center as i64 + (offset * spacing).round() as i64;
            fill_circle(&mut canvas, px, py, RADIUS as i64, *color);
        }
    }
    draw_value_legend(&mut canvas, &frame);
    Ok(canvas)
}

/// `values` divided by the sum of their magnitudes (Captum's tutorial divides each method's
/// attributions by their L1 norm before comparing methods); all zeros stay zeros.
pub fn l1_normalized(values: &[f32]) -> Vec<f32> {
    let norm: f32 = values.iter().map(|v| v.abs()).sum();
    if norm > 0.0 && norm.is_finite() {
        values.iter().map(|v| v / norm).collect()
    } else {
        values.to_vec()
    }
}

fn check_features(names: &[String], len: usize, what: &'static str) -> Result<()> {
    if names.is_empty() {
        return Err(Error::parameter(
            "names",
            "0 features",
            "a chart needs at least one feature",
        ));
    }
    if len != names.len() {
        return Err(Error::ShapeMismatch {
            what: format!("{what} vs feature names"),
            expected: vec![names.len()],
            got: vec![len],
        });
    }
    Ok(())
}

fn check_rows(names: &[String], rows: &[Vec<f32>], what: &'static str) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::parameter(
            what,
            "0 rows",
            "a summary needs at least one row",
        ));
    }
    for row in rows {
        check_features(names, row.len(), what)?;
        check_finite(what, row)?;
    }
    Ok(())
}

fn mean_abs(features: usize, rows: &[Vec<f32>]) -> Vec<f32> {
    (0..features)
        .map(|f| rows.iter().map(|r| f64::from(r[f].abs())).sum::<f64>() / rows.len() as f64)
        .map(|m| m as f32)
        .collect()
}

/// Indices by decreasing magnitude; ties keep the given order.
fn by_magnitude(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    order
}

/// Where a chart's parts go: the title, an optional legend, the name column, the rows and the
/// value axis under them.
struct Frame {
    width: usize,
    height: usize,
    legend_top: usize,
    rows_top: usize,
    row_height: usize,
    rows: usize,
    label_right: usize,
    plot_left: usize,
    plot_width: usize,
    lo: f32,
    hi: f32,
    ticks: Vec<f32>,
}

impl Frame {
    /// A frame for `labels` over values in `lo..=hi` (widened to include 0), with `left_pad` and
    /// `right_pad` pixels beside the plot for printed values, `legend_height` pixels of legend
    /// under the title and `right_extra` pixels right of the plot (the beeswarm's colour bar).
    #[allow(clippy::too_many_arguments)]
    fn new(
        title: &str,
        labels: &[&str],
        lo: f32,
        hi: f32,
        left_pad: usize,
        right_pad: usize,
        row_height: usize,
        legend_height: usize,
        right_extra: usize,
    ) -> Self {
        let (mut lo, mut hi) = (lo.min(0.0), hi.max(0.0));
        if hi - lo <= f32::MIN_POSITIVE {
            // Nothing but zeros: any scale draws them as no bars at all.
            (lo, hi) = (0.0, 1.0);
        }
        let ticks = nice_ticks(lo, hi);
        let label_width = labels
            .iter()
            .map(|l| text_width(&shorten(l), BIG))
            .max()
            .unwrap_or(0);
        let label_right = MARGIN + label_width;
        let plot_left = label_right + 12 + left_pad;
        let plot_width = PLOT_WIDTH;
        let content_width = plot_left + plot_width + right_pad + right_extra + MARGIN;
        let width = content_width.max(text_width(title, BIG) + 2 * MARGIN);
        let legend_top = MARGIN + GLYPH_SIZE * BIG + 12;
        let rows_top = legend_top + legend_height;
        let rows = labels.len();
        // The axis: tick marks, their labels, then the axis title.
        let height = rows_top + rows * row_height + 8 + 4 + GLYPH_SIZE + 8 + GLYPH_SIZE + MARGIN;
        Self {
            width,
            height,
            legend_top,
            rows_top,
            row_height,
            rows,
            label_right,
            plot_left,
            plot_width,
            lo,
            hi,
            ticks,
        }
    }

    /// The x pixel (fractional) of value `v`.
    fn x(&self, v: f32) -> f32 {
        self.plot_left as f32 + (v - self.lo) / (self.hi - self.lo) * self.plot_width as f32
    }

    fn row_top(&self, row: usize) -> usize {
        self.rows_top + row * self.row_height
    }

    fn rows_bottom(&self) -> usize {
        self.row_top(self.rows)
    }

    /// A white canvas with the title, the grid, the zero line and the value axis drawn.
    fn canvas(&self, title: &str, axis_title: &str) -> RgbImage {
        let mut canvas = RgbImage::filled(self.width, self.height, BACKGROUND);
        draw_text_centered(&mut canvas, self.width / 2, MARGIN, title, BIG, INK);
        let (top, bottom) = (self.rows_top, self.rows_bottom());
        for &tick in &self.ticks {
            let x = self.x(tick).round() as usize;
            fill_rect(&mut canvas, x, top, 1, bottom - top, GRID);
            fill_rect(&mut canvas, x, bottom + 8, 1, 4, MUTED);
            let label = format_tick(tick, &self.ticks);
            draw_text_centered(&mut canvas, x, bottom + 14, &label, SMALL, MUTED);
        }
        let axis_y = bottom + 8;
        fill_rect(
            &mut canvas,
            self.plot_left,
            axis_y,
            self.plot_width + 1,
            1,
            MUTED,
        );
        let zero = self.x(0.0).round() as usize;
        fill_rect(&mut canvas, zero, top, 1, bottom - top + 8, ZERO_LINE);
        let axis_title_y = axis_y + 4 + GLYPH_SIZE + 8;
        draw_text_centered(
            &mut canvas,
            self.plot_left + self.plot_width / 2,
            axis_title_y,
            axis_title,
            SMALL,
            INK,
        );
        canvas
    }

    /// The feature names, right-aligned against the plot, centred on their rows.
    fn draw_labels(&self, canvas: &mut RgbImage, labels: &[&str]) {
        for (row, label) in labels.iter().enumerate() {
            let label = shorten(label);
            let x = self.label_right - text_width(&label, BIG);
            let y = self.row_top(row) + (self.row_height - GLYPH_SIZE * BIG) / 2;
            draw_text(canvas, x, y, &label, BIG, INK);
        }
    }
}

/// Rows of bars (one or more `(value, colour)` per row, stacked in the row), each value printed at
/// the end of its bar (with its sign where `signed`), with a legend of `(name, colour)` under the
/// title when given.
fn draw_bars(
    title: &str,
    labels: Vec<&str>,
    bars: Vec<Vec<(f32, [u8; 3])>>,
    legend: &[(&str, [u8; 3])],
    axis_title: &str,
    signed: bool,
) -> Result<RgbImage> {
    let per_row = bars.iter().map(Vec::len).max().unwrap_or(1).max(1);
    // One bar fills most of a name's height; several share a taller row.
    let (bar_height, bar_gap) = if per_row == 1 { (20, 0) } else { (12, 2) };
    let row_height = per_row * (bar_height + bar_gap) + 12;
    let values = bars.iter().flatten().map(|(v, _)| *v);
    let (lo, hi) = values.fold((0.0f32, 0.0f32), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let printed: Vec<Vec<String>> = bars
        .iter()
        .map(|row| row.iter().map(|(v, _)| format_value(*v, signed)).collect())
        .collect();
    let text_room = printed
        .iter()
        .flatten()
        .map(|t| text_width(t, SMALL) + 6)
        .max()
        .unwrap_or(0);
    let left_pad = if lo < 0.0 { text_room } else { 0 };
    let right_pad = if hi > 0.0 { text_room } else { 0 };
    let legend_height = legend_layout(legend, usize::MAX).1;
    let mut frame = Frame::new(
        title,
        &labels,
        lo,
        hi,
        left_pad,
        right_pad,
        row_height,
        legend_height,
        0,
    );
    // The legend wraps at the chart's width; recompute the frame if that takes more lines.
    let wrapped = legend_layout(legend, frame.width - 2 * MARGIN).1;
    if wrapped != legend_height {
        frame = Frame::new(
            title, &labels, lo, hi, left_pad, right_pad, row_height, wrapped, 0,
        );
    }
    let mut canvas = frame.canvas(title, axis_title);
    frame.draw_labels(&mut canvas, &labels);
    let zero = frame.x(0.0);
    for (row, (bars, printed)) in bars.iter().zip(&printed).enumerate() {
        let stack = bars.len() * (bar_height + bar_gap) - bar_gap;
        let mut y = frame.row_top(row) + (row_height - stack) / 2;
        for ((value, color), text) in bars.iter().zip(printed) {
            let end = frame.x(*value);
            let (left, right) = (zero.min(end).round(), zero.max(end).round());
            // At least a pixel, so that a tiny value still shows which side it is on.
            let width = ((right - left) as usize).max(1);
            fill_rect(&mut canvas, left as usize, y, width, bar_height, *color);
            let text_y = y + (bar_height - GLYPH_SIZE * SMALL) / 2;
            if *value < 0.0 {
                let x = (left as usize).saturating_sub(text_width(text, SMALL) + 4);
                draw_text(&mut canvas, x, text_y, text, SMALL, INK);
            } else {
                draw_text(&mut canvas, right as usize + 4, text_y, text, SMALL, INK);
            }
            y += bar_height + bar_gap;
        }
    }
    draw_legend(&mut canvas, legend, frame.legend_top, frame.width);
    Ok(canvas)
}

const SWATCH: usize = 10;
const LEGEND_LINE: usize = 16;

/// Where each legend entry goes on lines no wider than `max_width`: the entries' x offsets and
/// line numbers, and the legend's total height.
fn legend_layout(legend: &[(&str, [u8; 3])], max_width: usize) -> (Vec<(usize, usize)>, usize) {
    if legend.is_empty() {
        return (Vec::new(), 0);
    }
    let mut places = Vec::with_capacity(legend.len());
    let (mut x, mut line) = (0, 0);
    for (name, _) in legend {
        let entry = SWATCH + 4 + text_width(name, SMALL) + 16;
        if x > 0 && x + entry > max_width {
            (x, line) = (0, line + 1);
        }
        places.push((x, line));
        x += entry;
    }
    (places, (line + 1) * LEGEND_LINE + 8)
}

fn draw_legend(canvas: &mut RgbImage, legend: &[(&str, [u8; 3])], top: usize, width: usize) {
    let (places, _) = legend_layout(legend, width - 2 * MARGIN);
    for ((name, color), (x, line)) in legend.iter().zip(places) {
        let (x, y) = (MARGIN + x, top + line * LEGEND_LINE);
        fill_rect(canvas, x, y, SWATCH, SWATCH, *color);
        draw_text(canvas, x + SWATCH + 4, y + 1, name, SMALL, INK);
    }
}

/// The beeswarm's colour bar right of the plot: red "high" at the top, blue "low" at the bottom.
fn draw_value_legend(canvas: &mut RgbImage, frame: &Frame) {
    let x = frame.plot_left + frame.plot_width + 24;
    let top = frame.rows_top + 4;
    let height = (frame.rows_bottom() - top).clamp(40, 240);
    draw_text(canvas, x, top, "feature value", SMALL, INK);
    let bar_top = top + GLYPH_SIZE + 6;
    let bar_height = height.saturating_sub(2 * (GLYPH_SIZE + 6)).max(20);
    for i in 0..bar_height {
        let t = 1.0 - i as f32 / (bar_height - 1) as f32;
        fill_rect(canvas, x, bar_top + i, 10, 1, value_color(t));
    }
    draw_text(canvas, x + 16, bar_top, "high", SMALL, INK);
    draw_text(
        canvas,
        x + 16,
        bar_top + bar_height - GLYPH_SIZE,
        "low",
        SMALL,
        INK,
    );
}

/// shap's blue-to-red for a feature value scaled to `0..=1` (through purple).
fn value_color(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|c| (NEGATIVE[c] as f32 * (1.0 - t) + POSITIVE[c] as f32 * t).round() as u8)
}

/// Each value's colour, scaled between the 5th and 95th percentiles (the 1st and 99th, then the
/// extremes, where those coincide, as shap falls back); a constant feature is drawn in the middle.
fn feature_colors(values: impl Iterator<Item = f32>) -> Vec<[u8; 3]> {
    let values: Vec<f32> = values.collect();
    let mut sorted = values.clone();
    sorted.sort_by(f32::total_cmp);
    let bounds = [(5.0, 95.0), (1.0, 99.0), (0.0, 100.0)]
        .iter()
        .map(|&(a, b)| (percentile(&sorted, a), percentile(&sorted, b)))
        .find(|(lo, hi)| hi > lo);
    values
        .iter()
        .map(|&v| match bounds {
            Some((lo, hi)) => value_color((v - lo) / (hi - lo)),
            None => value_color(0.5),
        })
        .collect()
}

/// NumPy's default (linear) percentile of sorted values.
fn percentile(sorted: &[f32], q: f32) -> f32 {
    let pos = q / 100.0 * (sorted.len() - 1) as f32;
    let (i, t) = (pos.floor() as usize, pos - pos.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + (next - sorted[i]) * t
}

/// shap's beeswarm stacking: values binned into 100 bins over `lo..=hi`; within a bin, dots go
/// alternately above and below the row's centre, one layer further out each time. Returns each
/// dot's offset in layers. Ties are broken by a fixed scramble (shap uses random noise) so that
/// the data's order does not paint one colour over another.
fn beeswarm(xs: &[f32], lo: f32, hi: f32) -> Vec<f32> {
    const BINS: f32 = 100.0;
    let quantised: Vec<i64> = xs
        .iter()
        .map(|&x| (BINS * (x - lo) / (hi - lo + 1e-8)).round() as i64)
        .collect();
    let scramble = |i: usize| {
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
    };
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by_key(|&i| (quantised[i], scramble(i)));
    let mut offsets = vec![0.0f32; xs.len()];
    let (mut layer, mut last_bin) = (0usize, None);
    for i in order {
        if last_bin != Some(quantised[i]) {
            layer = 0;
        }
        let side = if layer % 2 == 1 { 1.0 } else { -1.0 };
        offsets[i] = layer.div_ceil(2) as f32 * side;
        layer += 1;
        last_bin = Some(quantised[i]);
    }
    offsets
}

fn fill_circle(canvas: &mut RgbImage, cx: i64, cy: i64, radius: i64, color: [u8; 3]) {
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            let (x, y) = (cx + dx, cy + dy);
            // `r + 0.5` rounds the disc's edge the way a small dot looks round.
            let inside = (dx * dx + dy * dy) as f32 <= (radius as f32 + 0.5).powi(2);
            if inside && x >= 0 && y >= 0 {
                fill_rect(canvas, x as usize, y as usize, 1, 1, color);
            }
        }
    }
}

/// Round ticks inside `lo..=hi`, 1, 2 or 5 times a power of ten apart, at most six intervals
/// across the range.
fn nice_ticks(lo: f32, hi: f32) -> Vec<f32> {
    let span = f64::from(hi - lo);
    if !(span > 0.0 && span.is_finite()) {
        return vec![0.0];
    }
    let raw = span / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let first = (f64::from(lo) / step).ceil() as i64;
    let last = (f64::from(hi) / step).floor() as i64;
    (first..=last).map(|k| (k as f64 * step) as f32).collect()
}

/// A tick label with as many decimals as the ticks' spacing needs.
fn format_tick(value: f32, ticks: &[f32]) -> String {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => 1.0,
    };
    let decimals = (-(f64::from(step).log10()).floor()).clamp(0.0, 6.0) as usize;
    let text = format!("{value:.decimals$}");
    // `-0.00` reads as a different tick from `0.00`.
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

/// A value with three significant digits (and a `+` on positive values where `signed`), switching
/// to scientific notation for very small or large magnitudes.
fn format_value(value: f32, signed: bool) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return "0".into();
    }
    let text = if !(1e-3..1e5).contains(&magnitude) {
        format!("{value:.2e}")
    } else {
        let decimals = (2 - magnitude.log10().floor() as i32).max(0) as usize;
        format!("{value:.decimals$}")
    };
    if signed && value > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_string();
    }
    let kept: String = name.chars().take(MAX_NAME_CHARS - 2).collect();
    format!("{kept}..")
}

/// Curves over an axis from 0 to 1 (each series' points evenly spaced along it), one colour per
/// series with a legend: RISE's deletion and insertion curves. The value axis spans the series
/// (and 0).
pub fn line_chart(title: &str, x_label: &str, series: &[(String, Vec<f32>)]) -> Result<RgbImage> {
    if series.is_empty() || series.iter().any(|(_, v)| v.len() < 2) {
        return Err(Error::parameter(
            "series",
            series.len(),
            "a line chart needs at least one series of two or more points",
        ));
    }
    for (name, values) in series {
        check_finite(&format!("line chart series `{name}`"), values)?;
    }
    let (mut low, mut high) = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold((0.0f32, f32::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if high <= low {
        high = low + 1.0;
    }
    let pad = (high - low) * 0.05;
    (low, high) = (low - pad.min(low.abs()), high + pad);
    let glyph = GLYPH_SIZE;
    let legend_width = series
        .iter()
        .map(|(n, _)| text_width(n, SMALL))
        .max()
        .unwrap_or(0)
        + 3 * glyph;
    let (plot_w, plot_h) = (PLOT_WIDTH, 260);
    let left = MARGIN + text_width("-0.000", SMALL) + glyph;
    let top = MARGIN + glyph * BIG + MARGIN;
    let width = left + plot_w + MARGIN + legend_width + MARGIN;
    let height = top + plot_h + glyph * 4 + MARGIN;
    let mut image = RgbImage::filled(width, height, BACKGROUND);
    draw_text(&mut image, MARGIN, MARGIN, title, BIG, INK);
    let y_of = |v: f32| top + ((high - v) / (high - low) * (plot_h - 1) as f32).round() as usize;
    for i in 0..=4 {
        let v = low + (high - low) * i as f32 / 4.0;
        let y = y_of(v);
        fill_rect(&mut image, left, y, plot_w, 1, GRID);
        let label = format!("{v:.3}");
        draw_text(
            &mut image,
            left - glyph - text_width(&label, SMALL),
            y.saturating_sub(glyph / 2),
            &label,
            SMALL,
            MUTED,
        );
    }
    fill_rect(&mut image, left, top, 1, plot_h, ZERO_LINE);
    fill_rect(&mut image, left, top + plot_h - 1, plot_w, 1, ZERO_LINE);
    for (i, tick) in ["0", "0.5", "1"].iter().enumerate() {
        let x = left + i * (plot_w - 1) / 2;
        draw_text_centered(&mut image, x, top + plot_h + glyph / 2, tick, SMALL, MUTED);
    }
    draw_text_centered(
        &mut image,
        left + plot_w / 2,
        top + plot_h + glyph * 2,
        x_label,
        SMALL,
        INK,
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let color = METHOD_COLORS[k % METHOD_COLORS.len()];
        let points: Vec<(f32, f32)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let x = left as f32 + i as f32 / (values.len() - 1) as f32 * (plot_w - 1) as f32;
                (x, y_of(v) as f32)
            })
            .collect();
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
                fill_rect(
                    &mut image,
                    x as usize,
                    (y as usize).saturating_sub(1),
                    2,
                    2,
                    color,
                );
            }
        }
        let ly = top + k * glyph * 2;
        let lx = left + plot_w + MARGIN;
        fill_rect(&mut image, lx, ly + glyph / 2 - 1, glyph * 2, 3, color);
        draw_text(&mut image, lx + glyph * 3, ly, name, SMALL, INK);
    }
    Ok(image)
}

/// A labelled heat map of a square matrix (rows and columns named by `labels`), each cell
/// coloured from `low` (blue) through white to `high` (red) and printed with its value: a method
/// agreement matrix.
pub fn matrix_heatmap(
    title: &str,
    labels: &[String],
    values: &[Vec<f32>],
    (low, high): (f32, f32),
) -> Result<RgbImage> {
    let n = labels.len();
    if n == 0 || values.len() != n || values.iter().any(|r| r.len() != n) {
        return Err(Error::parameter(
            "values",
            format!("{} rows", values.len()),
            format!("a heat map needs a {n} x {n} matrix, one row and column per label"),
        ));
    }
    let cell = 64;
    let glyph = GLYPH_SIZE;
    let label_width = labels
        .iter()
        .map(|l| text_width(&format!("{n} {}", shorten(l)), SMALL))
        .max()
        .unwrap_or(0)
        + glyph;
    let left = MARGIN + label_width;
    let top = MARGIN + glyph * BIG + MARGIN + glyph * 2;
    let width = (left + n * cell + MARGIN).max(MARGIN * 2 + text_width(title, BIG));
    let height = top + n * cell + MARGIN;
    let mut image = RgbImage::filled(width, height, BACKGROUND);
    draw_text(&mut image, MARGIN, MARGIN, title, BIG, INK);
    let mid = (low + high) / 2.0;
    let half = ((high - low) / 2.0).max(1e-12);
    for (i, label) in labels.iter().enumerate() {
        // Rows carry the names, columns their numbers: names side by side would overlap.
        let name = format!("{} {}", i + 1, shorten(label));
        draw_text(
            &mut image,
            MARGIN,
            top + i * cell + cell / 2 - glyph / 2,
            &name,
            SMALL,
            INK,
        );
        let number = (i + 1).to_string();
        draw_text_centered(
            &mut image,
            left + i * cell + cell / 2,
            top - glyph * 2,
            &number,
            SMALL,
            INK,
        );
        for (j, &v) in values[i].iter().enumerate() {
            let t = if v.is_finite() {
                ((v - mid) / half).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            let toward = if t >= 0.0 { POSITIVE } else { NEGATIVE };
            let color =
                [0, 1, 2].map(|c| (255.0 + (f32::from(toward[c]) - 255.0) * t.abs()).round() as u8);
            fill_rect(
                &mut image,
                left + j * cell,
                top + i * cell,
                cell - 2,
                cell - 2,
                color,
            );
            let text = if v.is_finite() {
                format!("{v:.2}")
            } else {
                "nan".into()
            };
            let ink = if t.abs() > 0.6 { BACKGROUND } else { INK };
            draw_text_centered(
                &mut image,
                left + j * cell + cell / 2,
                top + i * cell + cell / 2 - glyph / 2,
                &text,
                SMALL,
                ink,
            );
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn values_print_with_three_significant_digits_and_their_sign() {
        assert_eq!(format_value(0.12345, true), "+0.123");
        assert_eq!(format_value(-12.345, true), "-12.3");
        assert_eq!(format_value(1234.4, true), "+1234");
        assert_eq!(format_value(0.0, true), "0");
        assert_eq!(format_value(2e-5, true), "+2.00e-5");
        assert_eq!(format_value(0.449, false), "0.449");
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let close = |a: Vec<f32>, b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
        };
        assert!(close(nice_ticks(-0.3, 1.0), &[0.0, 0.5, 1.0]));
        assert!(close(
            nice_ticks(-0.8, 0.3),
            &[-0.8, -0.6, -0.4, -0.2, 0.0, 0.2]
        ));
        assert!(close(nice_ticks(0.0, 37.0), &[0.0, 10.0, 20.0, 30.0]));
        assert_eq!(format_tick(-0.0, &[-0.5, 0.0, 0.5]), "0.0");
    }

    #[test]
    fn beeswarm_stacks_ties_alternately_and_leaves_lone_dots_centred() {
        let offsets = beeswarm(&[0.5, 0.5, 0.5, 0.0, 1.0], 0.0, 1.0);
        let mut tied: Vec<f32> = offsets[..3].to_vec();
        tied.sort_by(f32::total_cmp);
        assert_eq!(tied, vec![-1.0, 0.0, 1.0]);
        assert_eq!(offsets[3], 0.0);
        assert_eq!(offsets[4], 0.0);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&sorted, 50.0), 3.0);
        assert!((percentile(&sorted, 5.0) - 1.2).abs() < 1e-6);
    }

    #[test]
    fn the_largest_magnitude_comes_first() {
        assert_eq!(by_magnitude(&[0.1, -3.0, 2.0, 0.0]), vec![1, 2, 0, 3]);
    }

    #[test]
    fn l1_normalisation_sums_magnitudes_to_one() {
        let n = l1_normalized(&[1.0, -3.0]);
        assert_eq!(n, vec![0.25, -0.75]);
        assert_eq!(l1_normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn all_zero_values_draw_without_dividing_by_zero() {
        let chart = feature_bar_chart(&names(2), &[0.0, 0.0], "zeros").unwrap();
        assert!(chart.width > 0 && chart.height > 0);
    }

    #[test]
    fn line_charts_draw_every_series_and_refuse_empty_ones() {
        let series = vec![
            ("a".to_string(), vec![1.0, 0.5, 0.0]),
            ("b".to_string(), vec![0.0, 0.2, 0.9]),
        ];
        let chart = line_chart("curves", "fraction", &series).unwrap();
        let colors: std::collections::HashSet<[u8; 3]> = (0..chart.height)
            .flat_map(|y| (0..chart.width).map(move |x| (x, y)))
            .map(|(x, y)| chart.pixel(x, y))
            .collect();
        assert!(colors.contains(&METHOD_COLORS[0]) && colors.contains(&METHOD_COLORS[1]));
        assert!(line_chart("x", "y", &[]).is_err());
        assert!(line_chart("x", "y", &[("one".to_string(), vec![1.0])]).is_err());
        assert!(line_chart("x", "y", &[("nan".to_string(), vec![1.0, f32::NAN])]).is_err());
    }
}
