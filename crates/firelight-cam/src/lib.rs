//! Class activation maps on any firelight [`Model`](firelight_core::Model), computed as
//! [pytorch-grad-cam](https://github.com/jacobgil/pytorch-grad-cam) computes them.
//!
//! [`Cam`] does the plumbing once (activations and gradients at named layers through taps, the
//! ReLU, per-image min-max scaling, bilinear upsampling to the input, averaging over layers); a
//! method is only its [`CamWeighting`], one small file each.
//!
//! ```no_run
//! # use firelight_core::{Device, DynTensor, Model, Target};
//! # fn demo(model: &dyn Model, photo: &DynTensor) -> firelight_core::Result<()> {
//! use firelight_cam::{Cam, GradCam};
//! let heatmap = Cam::new(model, ["/layer4/layer4.1/relu_1/Relu_output_0"], GradCam)?
//!     .attribute(photo, &Target::class(207))?; // [batch, height, width], each in [0, 1]
//! # Ok(()) }
//! ```

mod ablation_cam;
mod base;
mod eigen_cam;
mod grad_cam;
mod grad_cam_element_wise;
mod grad_cam_plus_plus;
mod hires_cam;
mod layer_cam;
mod score_cam;
mod x_grad_cam;

pub use ablation_cam::AblationCam;
pub use base::{Cam, CamWeighting, LayerValues, TokenReshape, resize_bilinear, scale_per_image};
pub use eigen_cam::{EigenCam, EigenGradCam, first_component};
pub use grad_cam::GradCam;
pub use grad_cam_element_wise::GradCamElementWise;
pub use grad_cam_plus_plus::GradCamPlusPlus;
pub use hires_cam::HiResCam;
pub use layer_cam::LayerCam;
pub use score_cam::ScoreCam;
pub use x_grad_cam::XGradCam;
