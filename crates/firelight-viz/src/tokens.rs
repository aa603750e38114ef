//! Pictures of token sequences: tokens coloured by their scores (the PNG twin of the HTML view),
//! and a head view, every layer and head of a transformer's attention as a grid of
//! token-to-token maps labelled with the tokens.

use firelight_core::{Error, Result};

use crate::colormap::Colormap;
use crate::image::RgbImage;
use crate::text::{GLYPH_SIZE, draw_text, fill_rect, text_width};

const INK: [u8; 3] = [20, 20, 20];
const MUTED: [u8; 3] = [110, 110, 110];
const PAPER: [u8; 3] = [255, 255, 255];
/// Token labels are cut to this many characters in the head view.
const LABEL_CHARS: usize = 10;

/// One line of a token strip: a heading (the sentence's prediction, say) and its scored tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLine {
    /// Drawn above the tokens.
    pub heading: String,
    /// The tokens (or words).
    pub tokens: Vec<String>,
    /// One signed score per token.
    pub scores: Vec<f32>,
}

/// Tokens on a white page, each on a background coloured by its score under
/// [`Colormap::RedWhiteGreen`] (green positive, red negative, as the HTML view), scaled by each
/// line's largest magnitude; lines wrap at `width` pixels. A legend closes the picture, its ends
/// labelled `legend` (negative, positive), e.g. `("against", "for the class")`.
pub fn token_strip(
    title: &str,
    lines: &[TokenLine],
    width: usize,
    legend: (&str, &str),
) -> Result<RgbImage> {
    let scale = 2;
    let glyph = GLYPH_SIZE * scale;
    let width = width.max(20 * glyph);
    let (pad, gap, line_height) = (12, 6, glyph + 10);
    // Lay out first, to know the height.
    let mut placed: Vec<(usize, usize, String, Option<[u8; 3]>)> = Vec::new();
    let mut y = pad;
    placed.push((pad, y, title.to_string(), None));
    y += line_height + 6;
    for line in lines {
        if line.tokens.len() != line.scores.len() {
            return Err(Error::Model(format!(
                "{} tokens with {} scores",
                line.tokens.len(),
                line.scores.len()
            )));
        }
        placed.push((pad, y, line.heading.clone(), None));
        y += line_height;
        let peak = line
            .scores
            .iter()
            .filter(|s| s.is_finite())
            .fold(0.0f32, |m, s| m.max(s.abs()))
            .max(1e-12);
        let mut x = pad;
        for (token, score) in line.tokens.iter().zip(&line.scores) {
            let w = text_width(token, scale) + 8;
            if x + w > width - pad && x > pad {
                x = pad;
                y += line_height;
            }
            let color = Colormap::RedWhiteGreen.rgb(score / peak);
            placed.push((x, y, token.clone(), Some(color)));
            x += w + gap;
        }
        y += line_height + 10;
    }
    let legend_y = y;
    let height = legend_y + line_height + pad;
    let mut image = RgbImage::filled(width, height, PAPER);
    for (x, y, text, background) in placed {
        match background {
            Some(color) => {
                fill_rect(
                    &mut image,
                    x,
                    y,
                    text_width(&text, scale) + 8,
                    glyph + 6,
                    color,
                );
                draw_text(&mut image, x + 4, y + 3, &text, scale, INK);
            }
            None => draw_text(&mut image, x, y, &text, scale, INK),
        }
    }
    draw_legend(&mut image, pad, legend_y, scale, legend);
    Ok(image)
}

fn draw_legend(image: &mut RgbImage, x: usize, y: usize, scale: usize, legend: (&str, &str)) {
    let (negative, positive) = legend;
    draw_text(image, x, y + 2, negative, scale, MUTED);
    let bar_x = x + text_width(negative, scale) + 8;
    let steps = 160;
    for i in 0..steps {
        let v = 2.0 * i as f32 / (steps - 1) as f32 - 1.0;
        fill_rect(
            image,
            bar_x + i,
            y,
            1,
            GLYPH_SIZE * scale + 4,
            Colormap::RedWhiteGreen.rgb(v),
        );
    }
    draw_text(image, bar_x + steps + 8, y + 2, positive, scale, MUTED);
}

/// The head view: `maps` holds every layer's attention `[heads, t, t]` (row-major, first layer
/// first); the picture is a grid with a row per layer and a column per head, each cell the
/// token-to-token map (row `i`: how token `i` attends to every token) under
/// [`Colormap::Viridis`] scaled to `[0, 1]`, the tokens labelled down the left of each row of
/// maps and across the bottom, vertically.
pub fn head_view(maps: &[Vec<f32>], heads: usize, tokens: &[String]) -> Result<RgbImage> {
    let t = tokens.len();
    if maps.is_empty() || heads == 0 || t == 0 {
        return Err(Error::Model(
            "a head view needs at least one layer, one head and one token".into(),
        ));
    }
    if let Some((layer, m)) = maps
        .iter()
        .enumerate()
        .find(|(_, m)| m.len() != heads * t * t)
    {
        return Err(Error::Model(format!(
            "layer {layer} has {} attention values, not {heads} heads of {t} x {t}",
            m.len()
        )));
    }
    let cell = (144 / t).clamp(2, 14);
    let map_size = cell * t;
    let labels: Vec<String> = tokens
        .iter()
        .map(|s| s.chars().take(LABEL_CHARS).collect())
        .collect();
    let label_width = labels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0);
    // Row labels only where a cell is tall enough to read one.
    let row_labels = cell >= GLYPH_SIZE;
    let left = 16 + 8 * 8 + if row_labels { label_width + 4 } else { 0 };
    let (top, gap) = (28, 6);
    let bottom = if row_labels { label_width + 8 } else { 8 };
    let width = left + heads * (map_size + gap) + 8;
    let height = top + maps.len() * (map_size + gap) + bottom;
    let mut image = RgbImage::filled(width, height, PAPER);
    draw_text(
        &mut image,
        8,
        6,
        "attention: rows attend to columns",
        1,
        INK,
    );
    for h in 0..heads {
        let x = left + h * (map_size + gap);
        draw_text(&mut image, x, 18, &format!("head {h}"), 1, MUTED);
    }
    for (l, layer) in maps.iter().enumerate() {
        let y = top + l * (map_size + gap);
        draw_text(
            &mut image,
            8,
            y + map_size / 2 - 4,
            &format!("layer {l}"),
            1,
            MUTED,
        );
        if row_labels {
            for (i, label) in labels.iter().enumerate() {
                let lx = left - 4 - text_width(label, 1);
                draw_text(&mut image, lx, y + i * cell + (cell - 8) / 2, label, 1, INK);
            }
        }
        for h in 0..heads {
            let x = left + h * (map_size + gap);
            let head = &layer[h * t * t..(h + 1) * t * t];
            for i in 0..t {
                for j in 0..t {
                    let color = Colormap::Viridis.rgb(head[i * t + j]);
                    fill_rect(&mut image, x + j * cell, y + i * cell, cell, cell, color);
                }
            }
        }
    }
    if row_labels {
        let y = top + maps.len() * (map_size + gap);
        for h in 0..heads {
            let x = left + h * (map_size + gap);
            for (j, label) in labels.iter().enumerate() {
                draw_text_vertical(&mut image, x + j * cell + (cell - 8) / 2, y, label, INK);
            }
        }
    }
    Ok(image)
}

/// Draws `text` top to bottom, each glyph turned a quarter clockwise, so that the first
/// character sits at the top.
fn draw_text_vertical(image: &mut RgbImage, x: usize, y: usize, text: &str, color: [u8; 3]) {
    for (k, ch) in text.chars().enumerate() {
        let mut glyph = RgbImage::filled(GLYPH_SIZE, GLYPH_SIZE, PAPER);
        draw_text(&mut glyph, 0, 0, &ch.to_string(), 1, color);
        for gy in 0..GLYPH_SIZE {
            for gx in 0..GLYPH_SIZE {
                if glyph.pixel(gx, gy) == color {
                    // (gx, gy) -> (GLYPH_SIZE - 1 - gy, gx): a quarter turn clockwise.
                    let px = x + GLYPH_SIZE - 1 - gy;
                    let py = y + k * GLYPH_SIZE + gx;
                    fill_rect(image, px, py, 1, 1, color);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_view_has_a_cell_per_layer_and_head_and_refuses_wrong_sizes() {
        let tokens: Vec<String> = ["[CLS]", "good", "[SEP]"].map(String::from).to_vec();
        let layer = vec![1.0 / 3.0; 2 * 9];
        let image = head_view(&[layer.clone(), layer.clone()], 2, &tokens).unwrap();
        assert!(image.width > 2 * 3 * 14 && image.height > 2 * 3 * 14);
        assert!(head_view(&[vec![0.0; 5]], 2, &tokens).is_err());
        let strip = token_strip(
            "t",
            &[TokenLine {
                heading: "positive".into(),
                tokens: tokens.clone(),
                scores: vec![0.0, 1.0, -0.5],
            }],
            600,
            ("against", "for"),
        )
        .unwrap();
        // The positive token's background is green.
        assert!(strip.data.chunks_exact(3).any(|p| p[1] > 100 && p[0] < 60));
    }
}
