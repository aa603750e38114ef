//! What an experiment found, for people: results as JSON, PNG plots (bars with error bars per
//! layer, box plots of concept against random scores) and a self-contained HTML page that
//! inlines every picture, so it opens anywhere and makes no request.

use std::path::{Path, PathBuf};

use base64::Engine;
use firelight_core::npy::write_atomic;
use firelight_core::{Error, Result};
use firelight_viz::RgbImage;
use firelight_viz::text::{draw_text, draw_text_centered, fill_rect, text_width};

use crate::concept::Concept;
use crate::score::ScoreKind;
use crate::tcav::{ConceptResult, ExperimentReport};

const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];
const RANDOM: [u8; 3] = [150, 150, 150];
const INK: [u8; 3] = [30, 30, 30];
const GRID: [u8; 3] = [225, 225, 225];
const WHITE: [u8; 3] = [255, 255, 255];

impl ExperimentReport {
    /// Writes the report as pretty JSON (atomically).
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Model(format!("serialising the TCAV report: {e}")))?;
        write_atomic(path.as_ref(), &json)
    }

    /// Reads a report written by [`ExperimentReport::save_json`].
    pub fn load_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: not a TCAV report ({e})", path.display())))
    }

    fn score_name(&self) -> &'static str {
        match self.config.score {
            ScoreKind::SignCount => "sign_count",
            ScoreKind::Magnitude => "magnitude",
        }
    }

    fn of_target<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a ConceptResult> {
        self.results.iter().filter(move |r| r.target == target)
    }

    /// The value range of the plotted score: [0, 1] for sign_count, the data's (with 0) otherwise.
    fn range(&self, target: &str) -> (f64, f64) {
        if self.config.score == ScoreKind::SignCount {
            return (0.0, 1.0);
        }
        let mut lo: f64 = 0.0;
        let mut hi: f64 = 0.0;
        for r in self.of_target(target) {
            for s in r.concept_scores.iter().chain(&r.random_scores) {
                let v = self.config.score.of(s) as f64;
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if hi - lo < 1e-9 {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        }
    }
}

/// A chart: a white canvas with a title, a y axis over `range` and groups along x, one per layer.
struct Chart {
    image: RgbImage,
    top: usize,
    bottom: usize,
    range: (f64, f64),
}

const LEFT: usize = 70;
const GROUP_GAP: usize = 30;
/// Room for a layer's name (24 characters at most) under its group.
const LABEL_SPACE: usize = 24 * 8 + 16;

/// Wide enough for the groups and for the title (scale 2) and subtitle (scale 1) to fit.
fn chart_width(groups: usize, title: &str, subtitle: &str) -> usize {
    (LEFT + 20 + groups)
        .max(text_width(title, 2) + 40)
        .max(text_width(subtitle, 1) + 40)
        .max(560)
}

impl Chart {
    fn new(width: usize, title: &str, subtitle: &str, range: (f64, f64)) -> Self {
        let mut image = RgbImage::filled(width, 400, WHITE);
        draw_text_centered(&mut image, width / 2, 10, title, 2, INK);
        draw_text_centered(&mut image, width / 2, 32, subtitle, 1, INK);
        let mut chart = Self {
            image,
            top: 80,
            bottom: 330,
            range,
        };
        chart.axis(width);
        chart
    }

    fn y(&self, v: f64) -> usize {
        let (lo, hi) = self.range;
        let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        self.bottom - (t * (self.bottom - self.top) as f64).round() as usize
    }

    fn axis(&mut self, width: usize) {
        let (lo, hi) = self.range;
        for k in 0..=4 {
            let v = lo + (hi - lo) * k as f64 / 4.0;
            let y = self.y(v);
            fill_rect(&mut self.image, LEFT, y, width - LEFT - 10, 1, GRID);
            let label = format!("{v:.2}");
            let x = LEFT.saturating_sub(6 + text_width(&label, 1));
            draw_text(&mut self.image, x, y.saturating_sub(4), &label, 1, INK);
        }
        fill_rect(
            &mut self.image,
            LEFT,
            self.top,
            1,
            self.bottom - self.top + 1,
            INK,
        );
        fill_rect(
            &mut self.image,
            LEFT,
            self.bottom,
            width - LEFT - 10,
            1,
            INK,
        );
    }

    /// A vertical bar from the axis' zero (or bottom) to `v`.
    fn bar(&mut self, x: usize, width: usize, v: f64, color: [u8; 3]) {
        let base = self.y(self.range.0.max(0.0).min(self.range.1));
        let y = self.y(v);
        let (top, h) = if y <= base {
            (y, base - y)
        } else {
            (base, y - base)
        };
        fill_rect(&mut self.image, x, top, width, h.max(1), color);
    }

    /// An error bar (or whisker) from `lo` to `hi` centred on `x`, with caps.
    fn whisker(&mut self, x: usize, lo: f64, hi: f64, color: [u8; 3]) {
        let (y0, y1) = (self.y(hi), self.y(lo));
        fill_rect(&mut self.image, x, y0, 2, y1 - y0 + 1, color);
        fill_rect(&mut self.image, x.saturating_sub(5), y0, 12, 2, color);
        fill_rect(&mut self.image, x.saturating_sub(5), y1, 12, 2, color);
    }

    fn group_label(&mut self, centre: usize, text: &str) {
        let short: String = if text.chars().count() > 24 {
            let tail: String = text
                .chars()
                .rev()
                .take(23)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("~{tail}")
        } else {
            text.to_string()
        };
        draw_text_centered(&mut self.image, centre, self.bottom + 10, &short, 1, INK);
    }

    /// One swatch per concept in the palette's colours, then the random null's.
    fn concept_legend(&mut self, concepts: &[&str]) {
        let entries = concepts
            .iter()
            .enumerate()
            .map(|(c, name)| (*name, PALETTE[c % PALETTE.len()]))
            .chain([("random", RANDOM)]);
        let mut x = LEFT;
        for (name, color) in entries {
            fill_rect(&mut self.image, x, 52, 12, 12, color);
            draw_text(&mut self.image, x + 16, 54, name, 1, INK);
            x += 16 + text_width(name, 1) + 20;
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] * (1.0 - f) + next * f
}

/// Bars of each concept's mean score per layer with ± one standard deviation, next to the random
/// null's; a `*` marks significant results.
pub fn bar_plot(report: &ExperimentReport, target: &str) -> RgbImage {
    let concepts: Vec<&str> = report.concepts.iter().map(|(n, _)| n.as_str()).collect();
    let per_group = ((concepts.len() + 1) * 34 + GROUP_GAP).max(LABEL_SPACE);
    let title = format!("TCAV {} for `{target}`", report.score_name());
    let subtitle = format!(
        "mean +/- std over {} random runs; * significant after Bonferroni (alpha {})",
        report.results.first().map_or(0, |r| r.concept_scores.len()),
        report.config.alpha
    );
    let width = chart_width(report.layers.len() * per_group, &title, &subtitle);
    let mut chart = Chart::new(width, &title, &subtitle, report.range(target));
    for (g, layer) in report.layers.iter().enumerate() {
        let x0 = LEFT + 20 + g * per_group;
        let mut x = x0;
        let results: Vec<&ConceptResult> = report
            .of_target(target)
            .filter(|r| &r.layer == layer)
            .collect();
        for (c, name) in concepts.iter().enumerate() {
            if let Some(r) = results.iter().find(|r| r.concept == *name) {
                chart.bar(x, 28, r.mean, PALETTE[c % PALETTE.len()]);
                chart.whisker(x + 13, r.mean - r.std, r.mean + r.std, INK);
                if r.significant {
                    let y = chart.y(r.mean + r.std).saturating_sub(20);
                    draw_text_centered(&mut chart.image, x + 14, y, "*", 2, INK);
                }
            }
            x += 34;
        }
        if let Some(r) = results.first() {
            chart.bar(x, 28, r.random_mean, RANDOM);
            chart.whisker(
                x + 13,
                r.random_mean - r.random_std,
                r.random_mean + r.random_std,
                INK,
            );
        }
        chart.group_label(x0 + (per_group - GROUP_GAP) / 2, layer);
    }
    chart.concept_legend(&concepts);
    chart.image
}

/// Box plots (min, quartiles, median, max) of each concept's scores and the random null's, per
/// layer.
pub fn box_plot(report: &ExperimentReport, target: &str) -> RgbImage {
    let concepts: Vec<&str> = report.concepts.iter().map(|(n, _)| n.as_str()).collect();
    let per_group = (concepts.len() * 70 + GROUP_GAP).max(LABEL_SPACE);
    let title = format!(
        "TCAV {} for `{target}`: concept vs random",
        report.score_name()
    );
    let subtitle = "boxes: quartiles and median; whiskers: min and max over the runs";
    let width = chart_width(report.layers.len() * per_group, &title, subtitle);
    let mut chart = Chart::new(width, &title, subtitle, report.range(target));
    let score = report.config.score;
    for (g, layer) in report.layers.iter().enumerate() {
        let x0 = LEFT + 20 + g * per_group;
        for (c, name) in concepts.iter().enumerate() {
            let Some(r) = report
                .of_target(target)
                .find(|r| &r.layer == layer && r.concept == *name)
            else {
                continue;
            };
            let pairs = [
                (&r.concept_scores, PALETTE[c % PALETTE.len()]),
                (&r.random_scores, RANDOM),
            ];
            for (k, (values, color)) in pairs.into_iter().enumerate() {
                let mut v: Vec<f64> = values.iter().map(|s| score.of(s) as f64).collect();
                if v.is_empty() {
                    continue;
                }
                v.sort_by(f64::total_cmp);
                let x = x0 + c * 70 + k * 32;
                let (q1, med, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
                chart.whisker(x + 13, v[0], v[v.len() - 1], INK);
                let (top, bottom) = (chart.y(q3), chart.y(q1));
                fill_rect(&mut chart.image, x, top, 28, (bottom - top).max(2), color);
                let y_med = chart.y(med);
                fill_rect(&mut chart.image, x, y_med, 28, 2, INK);
            }
        }
        chart.group_label(x0 + (per_group - GROUP_GAP) / 2, layer);
    }
    chart.concept_legend(&concepts);
    chart.image
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn data_uri(bytes: &[u8], mime: &str) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The files written by [`write_report`].
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `results.json`.
    pub json: PathBuf,
    /// `report.html`, self-contained.
    pub html: PathBuf,
    /// The PNG plots.
    pub plots: Vec<PathBuf>,
}

/// How many example images of each concept the HTML shows.
const EXAMPLES: usize = 12;

/// Writes `results.json`, a bar plot and a box plot per target (`bars_<k>.png`,
/// `boxes_<k>.png`) and `report.html` into `dir`. The HTML inlines the plots and up to 12 example
/// images of each concept in `concepts` (those read from files) as data URIs: it loads nothing.
pub fn write_report(
    dir: impl AsRef<Path>,
    report: &ExperimentReport,
    concepts: &[&Concept],
) -> Result<ReportFiles> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let json = dir.join("results.json");
    report.save_json(&json)?;
    let mut plots = Vec::new();
    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>TCAV report</title>\n<style>\n\
         body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}\n\
         table{border-collapse:collapse;margin:8px 0 20px}\n\
         td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}\n\
         th{background:#f2f2f2}.yes{color:#0a0;font-weight:bold}.no{color:#888}\n\
         .examples img{width:64px;height:64px;image-rendering:pixelated;margin:2px;border:1px solid #ddd}\n\
         img.plot{max-width:100%;border:1px solid #eee;margin:4px 0}\ncode{font-size:12px}\n\
         </style></head><body>\n<h1>TCAV report</h1>\n",
    );
    html.push_str(&format!(
        "<p>Model <code>{}</code>; layers {}; {} random runs; score <b>{}</b>; \
         classifier <b>{:?}</b> (alpha {}); two-sided t-test, Bonferroni over {} tests, \
         significance level {}.</p>\n",
        escape(&report.model),
        report
            .layers
            .iter()
            .map(|l| format!("<code>{}</code>", escape(l)))
            .collect::<Vec<_>>()
            .join(", "),
        report.results.first().map_or(0, |r| r.concept_scores.len()),
        report.score_name(),
        report.trainer.classifier,
        report.trainer.alpha,
        report.tests,
        report.config.alpha,
    ));
    html.push_str("<h2>Verdicts</h2>\n<table><tr><th>concept</th><th>layer</th><th>target</th>\
                   <th>score (mean &plusmn; std)</th><th>random (mean &plusmn; std)</th>\
                   <th>p</th><th>p (Bonferroni)</th><th>CAV accuracy (mean, min)</th><th>verdict</th></tr>\n");
    for r in &report.results {
        let accs: Vec<f32> = r.cav_accuracies.iter().flatten().copied().collect();
        let acc = if accs.is_empty() {
            "n/a".to_string()
        } else {
            let mean = accs.iter().sum::<f32>() / accs.len() as f32;
            let min = accs.iter().copied().fold(f32::INFINITY, f32::min);
            format!("{mean:.2}, {min:.2}")
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{:.3} &plusmn; {:.3}</td>\
             <td>{:.3} &plusmn; {:.3}</td><td>{:.2e}</td><td>{:.2e}</td><td>{}</td>\
             <td class=\"{}\">{}</td></tr>\n",
            escape(&r.concept),
            escape(&r.layer),
            escape(&r.target),
            r.mean,
            r.std,
            r.random_mean,
            r.random_std,
            r.p_value,
            r.p_adjusted,
            acc,
            if r.significant { "yes" } else { "no" },
            match (r.significant, r.mean > r.random_mean) {
                (true, true) => "significant (above random)",
                (true, false) => "significant (below random)",
                _ => "not significant",
            },
        ));
    }
    html.push_str("</table>\n");
    for (k, (target, class, inputs)) in report.targets.iter().enumerate() {
        html.push_str(&format!(
            "<h2>Target <code>{}</code> (class {class}, {inputs} inputs)</h2>\n",
            escape(target)
        ));
        for (name, image) in [
            (format!("bars_{k}.png"), bar_plot(report, target)),
            (format!("boxes_{k}.png"), box_plot(report, target)),
        ] {
            let path = dir.join(&name);
            image.write_png(&path)?;
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            html.push_str(&format!(
                "<img class=\"plot\" alt=\"{name}\" src=\"{}\"><br>\n",
                data_uri(&bytes, "image/png")
            ));
            plots.push(path);
        }
    }
    html.push_str("<h2>Random CAVs</h2>\n<p>Held-out accuracy of the random-vs-random CAVs (a CAV \
                   near 0.5 is a coin toss: its TCAV scores mean little).</p>\n<table><tr><th>layer</th><th>mean</th><th>min</th></tr>\n");
    for (layer, accs) in &report.random_cav_accuracies {
        let accs: Vec<f32> = accs.iter().flatten().copied().collect();
        if let Some(min) = accs.iter().copied().reduce(f32::min) {
            let mean = accs.iter().sum::<f32>() / accs.len() as f32;
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{mean:.2}</td><td>{min:.2}</td></tr>\n",
                escape(layer)
            ));
        }
    }
    html.push_str("</table>\n<h2>Concepts</h2>\n");
    for concept in concepts {
        html.push_str(&format!(
            "<h3>{} ({} examples)</h3>\n<div class=\"examples\">",
            escape(concept.name()),
            concept.len()
        ));
        for file in concept.files().iter().take(EXAMPLES) {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            let mime = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
                "image/png"
            } else {
                "image/jpeg"
            };
            html.push_str(&format!(
                "<img alt=\"{}\" src=\"{}\">",
                escape(&file.file_name().unwrap_or_default().to_string_lossy()),
                data_uri(&bytes, mime)
            ));
        }
        if !concept.texts().is_empty() {
            html.push_str("<ul>");
            for text in concept.texts().iter().take(EXAMPLES) {
                html.push_str(&format!("<li>{}</li>", escape(text)));
            }
            html.push_str("</ul>");
        }
        html.push_str("</div>\n");
    }
    html.push_str("</body></html>\n");
    let html_path = dir.join("report.html");
    write_atomic(&html_path, html.as_bytes())?;
    Ok(ReportFiles {
        json,
        html: html_path,
        plots,
    })
}
