//! The tabular charts: their layout follows the data (one row per feature, largest on top, signs on
//! their side of the zero line), and empty, ragged or non-finite input is an error, not a panic.

use firelight_core::Error;
use firelight_viz::charts::{METHOD_COLORS, NEGATIVE, POSITIVE};
use firelight_viz::{
    RgbImage, feature_bar_chart, grouped_bar_chart, summary_bar_chart, summary_dot_plot,
};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("feature{i}")).collect()
}

/// The x range of the pixels of `color`, if any.
fn columns_of(image: &RgbImage, color: [u8; 3]) -> Option<(usize, usize)> {
    let xs = (0..image.height)
        .flat_map(|y| (0..image.width).map(move |x| (x, y)))
        .filter(|&(x, y)| image.pixel(x, y) == color)
        .map(|(x, _)| x);
    xs.fold(None, |range, x| match range {
        None => Some((x, x)),
        Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
    })
}

/// The first row (top to bottom) holding a pixel of `color`.
fn first_row_of(image: &RgbImage, color: [u8; 3]) -> Option<usize> {
    (0..image.height).find(|&y| (0..image.width).any(|x| image.pixel(x, y) == color))
}

#[test]
fn one_row_per_feature_and_the_largest_on_top() {
    let chart = feature_bar_chart(&names(3), &[0.1, -2.0, 0.5], "three").unwrap();
    let five = feature_bar_chart(&names(5), &[0.1, -2.0, 0.5, 0.2, 0.3], "five").unwrap();
    assert_eq!(five.height - chart.height, 2 * 32, "32 pixels a row");
    // The largest magnitude is negative: its blue bar comes before any red one.
    let blue = first_row_of(&chart, NEGATIVE).unwrap();
    let red = first_row_of(&chart, POSITIVE).unwrap();
    assert!(blue < red, "blue row {blue}, red row {red}");
    // Negative bars end where positive ones begin: at the zero line.
    let (_, blue_right) = columns_of(&chart, NEGATIVE).unwrap();
    let (red_left, _) = columns_of(&chart, POSITIVE).unwrap();
    assert!(blue_right <= red_left + 1, "{blue_right} vs {red_left}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let err = feature_bar_chart(&[], &[], "none").unwrap_err();
    assert!(err.to_string().contains("at least one feature"), "{err}");
    let err = feature_bar_chart(&names(2), &[1.0, f32::NAN], "nan").unwrap_err();
    assert!(matches!(err, Error::NonFinite { count: 1, .. }), "{err}");
    assert!(feature_bar_chart(&names(2), &[1.0, f32::INFINITY], "inf").is_err());
    assert!(feature_bar_chart(&names(2), &[1.0], "short").is_err());
    assert!(grouped_bar_chart(&names(2), &[], &[], "no methods").is_err());
    let methods: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    let values = vec![vec![1.0, 2.0]; 11];
    assert!(grouped_bar_chart(&names(2), &methods, &values, "too many").is_err());
    assert!(grouped_bar_chart(&names(2), &methods[..1], &[vec![1.0]], "ragged").is_err());
    assert!(summary_bar_chart(&names(2), &[], "no rows").is_err());
    assert!(summary_bar_chart(&names(2), &[vec![1.0, 2.0], vec![1.0]], "ragged").is_err());
    let nan_rows = [vec![1.0, f32::NAN]];
    assert!(summary_bar_chart(&names(2), &nan_rows, "nan").is_err());
    let rows = [vec![1.0, 2.0]];
    assert!(summary_dot_plot(&names(2), &rows, &nan_rows, "nan values").is_err());
    assert!(summary_dot_plot(&names(2), &rows, &[], "no values").is_err());
    let two_rows = [vec![1.0, 2.0], vec![3.0, 4.0]];
    assert!(summary_dot_plot(&names(2), &rows, &two_rows, "mismatch").is_err());
}

#[test]
fn degenerate_but_valid_input_draws() {
    let zeros = feature_bar_chart(&names(2), &[0.0, 0.0], "zeros").unwrap();
    assert!(columns_of(&zeros, POSITIVE).is_some(), "a one-pixel mark");
    let long = vec!["a feature name far longer than any label column should be".to_string()];
    let chart = feature_bar_chart(&long, &[-1e-9], &"a long title ".repeat(20)).unwrap();
    assert!(chart.width > 20 * 13 * 16, "the title widens the chart");
    let same = [vec![1.0], vec![1.0], vec![1.0]];
    summary_dot_plot(&names(1), &same, &same, "constant").unwrap();
    summary_dot_plot(&names(1), &[vec![0.0]], &[vec![5.0]], "one dot").unwrap();
}

#[test]
fn every_method_gets_its_colour() {
    let methods: Vec<String> = ["IG", "FeatureAblation", "Shapley", "KernelShap", "Lime"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let values: Vec<Vec<f32>> = (0..5)
        .map(|m| (0..4).map(|f| (f as f32 - 1.5) * (m + 1) as f32).collect())
        .collect();
    let chart = grouped_bar_chart(&names(4), &methods, &values, "methods").unwrap();
    for color in &METHOD_COLORS[..5] {
        assert!(columns_of(&chart, *color).is_some(), "{color:?}");
    }
    assert!(columns_of(&chart, METHOD_COLORS[5]).is_none());
}

#[test]
fn summary_bars_sort_by_mean_magnitude() {
    // Feature 1 swings both ways (mean |a| = 2), feature 0 is steady at 1.
    let rows = [vec![1.0, 2.0], vec![1.0, -2.0]];
    let chart = summary_bar_chart(&names(2), &rows, "summary").unwrap();
    let (left, right) = columns_of(&chart, NEGATIVE).unwrap();
    assert!(right > left, "bars drawn");
    let two = feature_bar_chart(&names(2), &[1.0, 2.0], "same layout").unwrap();
    assert_eq!(chart.height, two.height);
}

#[test]
fn dots_are_coloured_from_low_blue_to_high_red() {
    // Attribution rises with the feature value: the leftmost dot is the bluest, the rightmost the
    // reddest.
    let attributions: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32 / 10.0 - 2.0]).collect();
    let values: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32]).collect();
    let plot = summary_dot_plot(&names(1), &attributions, &values, "dots").unwrap();
    assert!(columns_of(&plot, NEGATIVE).is_some() && columns_of(&plot, POSITIVE).is_some());
    let (blue_left, _) = columns_of(&plot, NEGATIVE).unwrap();
    let (red_left, _) = columns_of(&plot, POSITIVE).unwrap();
    assert!(blue_left < red_left);
}
