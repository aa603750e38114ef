//! # firelight-viz
//!
//! Pictures a person would rather look at than read: colormaps ([`Colormap`]), attribution maps
//! reduced to one value per pixel ([`pixel_map`]), heatmap overlays ([`overlay`]), and PNG reading
//! and atomic writing ([`image`]).

#![warn(missing_docs)]

pub mod colormap;
pub mod image;

pub use colormap::Colormap;
pub use image::{RgbImage, attribution_overlay, overlay, pixel_map};
