//! Which channels inside MobileNetV2 carry its "Egyptian cat" decision? Layer methods on the
//! bundled model and photo.
//!
//! ```text
//! cargo run --release --example layer_attribution [-- LAYER]      # default layer: features.17
//! ```
//!
//! Prints, for the top class, the channels of the layer with the largest Layer Conductance and
//! Layer Integrated Gradients (summed over space), and checks completeness: conductance summed
//! over the whole layer is the change of the logit from a black image to the photo.

use firelight::bundled::{ImageClassifier, default_image};
use firelight::prelude::*;
use firelight::viz::RgbImage;

fn per_channel(attr: &DynTensor) -> firelight::core::Result<Vec<f32>> {
    let shape = attr.shape().to_vec();
    let channels = shape[1];
    let plane: usize = shape[2..].iter().product();
    let v = attr.to_vec()?;
    Ok((0..channels)
        .map(|c| v[c * plane..(c + 1) * plane].iter().sum())
        .collect())
}

fn print_top(name: &str, scores: &[f32]) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].abs().total_cmp(&scores[a].abs()));
    let total: f32 = scores.iter().sum();
    println!("{name}: sum over channels {total:+.3}; largest channels:");
    for &c in order.iter().take(5) {
        println!("  channel {c:>4}  {:+.4}", scores[c]);
    }
}

fn main() -> firelight::core::Result<()> {
    let layer = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "features.17".into());
    let device = Device::flex();
    let classifier = ImageClassifier::mobilenet_v2(&device)?;
    let photo = classifier.crop(&RgbImage::read(default_image())?);
    let input = classifier.input(&photo, &device)?;
    let model = classifier.model();
    let top = classifier
        .top_k(model.predict(&input.clone().into())?, 1)?
        .remove(0)
        .remove(0);
    let target = Target::class(top.class);
    // A black photo, normalised like the input, is the baseline.
    let black = classifier.input(
        &RgbImage {
            width: photo.width,
            height: photo.height,
            data: vec![0; photo.data.len()],
        },
        &device,
    )?;
    println!(
        "explaining `{}` ({:.1}%) at layer {layer}",
        top.label,
        100.0 * top.probability
    );

    // Conductance is a first-order sum along the path: it needs more points than Layer IG's
    // quadrature to come as close to completeness.
    let (conductance, delta) = LayerConductance::new(model, &layer)?
        .n_steps(128)
        .method(Approximation::RiemannTrapezoid)
        .baselines(Baseline::Tensor(black.clone()))
        .internal_batch_size(16)
        .attribute_with_convergence_delta(&input, &target)?;
    print_top("Layer Conductance", &per_channel(&conductance)?);
    println!(
        "  convergence delta {:+.4}",
        DynTensor::new(delta).to_vec()?[0]
    );

    let (lig, delta) = LayerIntegratedGradients::new(model, &layer)?
        .n_steps(32)
        .baselines(Baseline::Tensor(black))
        .internal_batch_size(16)
        .attribute_with_convergence_delta(&input, &target)?;
    print_top("Layer Integrated Gradients", &per_channel(&lig)?);
    println!(
        "  convergence delta {:+.4}",
        DynTensor::new(delta).to_vec()?[0]
    );
    Ok(())
}
