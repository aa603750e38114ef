//! Several pictures side by side, each under its title: one method per tile, to compare them at a
//! glance.

use firelight_core::{Error, Result};

use crate::image::RgbImage;
use crate::text::{GLYPH_SIZE, draw_text_centered};

const MARGIN: usize = 8;
const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [20, 20, 20];

/// Lays out `tiles` (title, picture) in rows of `columns`, each picture under its title on a white
/// background. Tiles may differ in size; each cell is as large as the largest tile. Titles wider
/// than a cell are shortened with `..`.
pub fn titled_grid(tiles: &[(String, RgbImage)], columns: usize) -> Result<RgbImage> {
    if tiles.is_empty() {
        return Err(Error::InvalidParameter {
            name: "tiles",
            value: "0 pictures".into(),
            reason: "a grid needs at least one picture".into(),
        });
    }
    let columns = columns.clamp(1, tiles.len());
    let rows = tiles.len().div_ceil(columns);
    let cell_w = tiles.iter().map(|(_, t)| t.width).max().unwrap_or(0);
    let cell_h = tiles.iter().map(|(_, t)| t.height).max().unwrap_or(0);
    // Twice the font size where every title fits at it.
    let longest = tiles
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    let scale = if longest * GLYPH_SIZE * 2 <= cell_w {
        2
    } else {
        1
    };
    let title_h = GLYPH_SIZE * scale + MARGIN;
    let width = columns * (cell_w + MARGIN) + MARGIN;
    let height = rows * (cell_h + title_h + MARGIN) + MARGIN;
    let mut canvas = RgbImage::filled(width, height, BACKGROUND);
    let max_chars = (cell_w / (GLYPH_SIZE * scale)).max(3);
    for (i, (title, tile)) in tiles.iter().enumerate() {
        let (row, col) = (i / columns, i % columns);
        let x = MARGIN + col * (cell_w + MARGIN);
        let y = MARGIN + row * (cell_h + title_h + MARGIN);
        let title = shorten(title, max_chars);
        draw_text_centered(&mut canvas, x + cell_w / 2, y, &title, scale, INK);
        canvas.paste(
            tile,
            x + (cell_w - tile.width) / 2,
            y + title_h + (cell_h - tile.height) / 2,
        );
    }
    Ok(canvas)
}

fn shorten(title: &str, max_chars: usize) -> String {
    if title.chars().count() <= max_chars {
        return title.to_string();
    }
    let kept: String = title.chars().take(max_chars.saturating_sub(2)).collect();
    format!("{kept}..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_rows_and_columns() {
        let tile = RgbImage::filled(30, 20, [255, 0, 0]);
        let tiles: Vec<_> = (0..5).map(|i| (format!("m{i}"), tile.clone())).collect();
        let grid = titled_grid(&tiles, 3).unwrap();
        assert_eq!(grid.width, 3 * (30 + MARGIN) + MARGIN);
        assert_eq!(grid.height, 2 * (20 + 16 + MARGIN) + MARGIN);
        let red = grid
            .data
            .chunks_exact(3)
            .filter(|p| *p == [255, 0, 0])
            .count();
        assert_eq!(red, 5 * 30 * 20);
        assert!(titled_grid(&[], 2).is_err());
        assert_eq!(shorten("gradcam++ at layer4", 8), "gradca..");
    }
}
