//! # firelight-viz
//!
//! Pictures a person would rather look at than read: photos read in any common format
//! ([`RgbImage::read`]: PNG, JPEG, WebP, BMP, TIFF, GIF) and written as PNG, colormaps
//! ([`Colormap`]), Captum's `visualize_image_attr` as pixels ([`visualize_image_attr`]), attribution
//! maps reduced to one value per pixel ([`pixel_map`]), heatmap overlays ([`overlay`]), model input
//! preprocessing ([`Preprocess`]), superpixels ([`slic`], Lime's and KernelSHAP's features for
//! photos), text in a bitmap font ([`text`]) and a grid of titled pictures
//! ([`titled_grid`]).

#![warn(missing_docs)]

pub mod charts;
pub mod colormap;
mod decode;
pub mod explain;
pub mod grid;
pub mod image;
pub mod preprocess;
pub mod superpixels;
pub mod text;
pub mod tokens;
pub mod visualize;

pub use crate::image::{
    RgbImage, attribution_overlay, attribution_overlay_with, overlay, pixel_map, signed_pixel_map,
};
pub use charts::{
    feature_bar_chart, grouped_bar_chart, l1_normalized, line_chart, matrix_heatmap,
    summary_bar_chart, summary_dot_plot,
};
pub use colormap::Colormap;
pub use explain::{default_explanation_map, default_explanation_picture};
pub use grid::titled_grid;
pub use preprocess::Preprocess;
pub use superpixels::{Slic, slic};
pub use tokens::{TokenLine, head_view, token_strip};
pub use visualize::{
    Sign, VisualizeMethod, VisualizeOptions, normalize_attr, visualize_image_attr, visualize_map,
};
