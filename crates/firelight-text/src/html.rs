//! A self-contained HTML view of token scores: each token's background shows its score (green
//! for the predicted class, red against it), a legend, the prediction and the convergence
//! delta. No scripts, styles inline, no external requests; every text is escaped.

use std::fmt::Write;

use crate::TokenScores;

/// One explained sentence in the view.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// The sentence's scores (tokens or words).
    pub scores: &'a TokenScores,
    /// The class explained and its probability, e.g. `positive (0.93)`.
    pub prediction: String,
    /// The convergence delta, where the method has one.
    pub delta: Option<f32>,
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The background of a score scaled to `[-1, 1]`: Captum's `visualize_text` colours.
pub fn color(scaled: f32) -> String {
    let s = scaled.clamp(-1.0, 1.0);
    if s >= 0.0 {
        let l = 100.0 - 50.0 * s;
        format!("hsl(120, 75%, {l:.0}%)")
    } else {
        let l = 100.0 + 50.0 * s;
        format!("hsl(0, 75%, {l:.0}%)")
    }
}

/// The whole page: a title, one line per row, a legend.
pub fn page(title: &str, method: &str, rows: &[Row]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family: sans-serif; margin: 2em; max-width: 60em\">\n<h1 style=\"font-size: 1.3em\">{}</h1>\n\
         <p>Method: {}. Each token's background is its attribution to the explained class, \
         scaled per sentence by its largest absolute value.</p>\n<table style=\"border-collapse: collapse\">\n\
         <tr><th style=\"text-align: left; padding: 4px\">prediction</th><th style=\"text-align: left; padding: 4px\">delta</th>\
         <th style=\"text-align: left; padding: 4px\">tokens</th></tr>\n",
        escape(title),
        escape(title),
        escape(method)
    );
    for row in rows {
        let peak = row
            .scores
            .scores
            .iter()
            .fold(0.0f32, |m, s| m.max(s.abs()))
            .max(1e-12);
        let _ = write!(
            html,
            "<tr><td style=\"padding: 4px; vertical-align: top\">{}</td><td style=\"padding: 4px; vertical-align: top\">{}</td><td style=\"padding: 4px; line-height: 2\">",
            escape(&row.prediction),
            row.delta
                .map_or_else(|| "-".to_string(), |d| format!("{d:.2e}"))
        );
        for (label, score) in row.scores.labels.iter().zip(&row.scores.scores) {
            let _ = write!(
                html,
                "<span title=\"{score:.4}\" style=\"background: {}; padding: 2px 3px; margin: 1px; border-radius: 3px\">{}</span> ",
                color(score / peak),
                escape(label)
            );
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</table>\n<p>Legend: ");
    for (label, s) in [
        ("against", -1.0),
        ("", -0.5),
        ("neutral", 0.0),
        ("", 0.5),
        ("for the class", 1.0),
    ] {
        let _ = write!(
            html,
            "<span style=\"background: {}; padding: 2px 8px; margin: 1px\">{}</span>",
            color(s),
            if label.is_empty() {
                "&nbsp;".to_string()
            } else {
                escape(label)
            }
        );
    }
    html.push_str("</p>\n</body></html>\n");
    html
}
