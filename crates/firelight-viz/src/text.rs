//! Text drawn into images with an 8x8 bitmap font (titles, axis labels, legends), so that pictures
//! need no font files or system libraries.

use font8x8::{BASIC_FONTS, UnicodeFonts};

use crate::image::RgbImage;

/// Width and height in pixels of one character at scale 1.
pub const GLYPH_SIZE: usize = 8;

/// The width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * GLYPH_SIZE * scale.max(1)
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale` x `scale` square.
/// Characters outside printable ASCII are drawn as `?`; anything past the image's edges is clipped.
pub fn draw_text(
    image: &mut RgbImage,
    x: usize,
    y: usize,
    text: &str,
    scale: usize,
    color: [u8; 3],
) {
    let scale = scale.max(1);
    for (i, ch) in text.chars().enumerate() {
        let glyph = BASIC_FONTS
            .get(ch)
            .or_else(|| BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        let left = x + i * GLYPH_SIZE * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_SIZE {
                if bits >> col & 1 == 1 {
                    fill_rect(
                        image,
                        left + col * scale,
                        y + row * scale,
                        scale,
                        scale,
                        color,
                    );
                }
            }
        }
    }
}

/// Draws `text` centred horizontally on `center_x`, top at `y`.
pub fn draw_text_centered(
    image: &mut RgbImage,
    center_x: usize,
    y: usize,
    text: &str,
    scale: usize,
    color: [u8; 3],
) {
    let x = center_x.saturating_sub(text_width(text, scale) / 2);
    draw_text(image, x, y, text, scale, color);
}

/// Fills the rectangle at `(x, y)` of size `width` x `height`, clipped to the image.
pub fn fill_rect(
    image: &mut RgbImage,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    color: [u8; 3],
) {
    let (x_end, y_end) = ((x + width).min(image.width), (y + height).min(image.height));
    for row in y.min(y_end)..y_end {
        for col in x.min(x_end)..x_end {
            let at = (row * image.width + col) * 3;
            image.data[at..at + 3].copy_from_slice(&color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_inside_and_clips_outside() {
        let mut image = RgbImage::filled(20, 10, [255, 255, 255]);
        draw_text(&mut image, 0, 0, "A?", 1, [0, 0, 0]);
        draw_text(&mut image, 15, 5, "clipped", 2, [0, 0, 0]);
        let dark = image.data.chunks_exact(3).filter(|p| p[0] == 0).count();
        assert!(dark > 10, "some pixels of the text are drawn");
        assert_eq!(text_width("abc", 2), 48);
    }
}
