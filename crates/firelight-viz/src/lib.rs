//! # firelight-viz
//!
//! Pictures a person would rather look at than read: colormaps ([`Colormap`]), attribution maps
//! reduced to one value per pixel ([`pixel_map`]), heatmap overlays ([`overlay`]), and PNG reading
//! and atomic writing ([`image`]), model input preprocessing ([`Preprocess`]), text in a bitmap font ([`text`]) and a grid of titled pictures
//! ([`titled_grid`]).

#![warn(missing_docs)]

pub mod colormap;
pub mod grid;
pub mod image;
pub mod preprocess;
pub mod superpixels;
pub mod text;

pub use colormap::Colormap;
pub use grid::titled_grid;
pub use image::{
    RgbImage, attribution_overlay, attribution_overlay_with, overlay, pixel_map, signed_pixel_map,
};
pub use preprocess::Preprocess;
pub use superpixels::{Slic, slic};
