//! pytorch-grad-cam's "concept activation maps" tutorial with the bundled EfficientNet-Lite0 as
//! the embedding model: a photo with two things in it (a cat and an espresso), a reference photo of
//! each, and Grad-CAM of the cosine similarity between the photo's embedding and each reference's.
//!
//! ```text
//! cargo run --release --example concept_cam            # writes docs/images/concept_cam.png
//! ```
//!
//! The two-thing photo is made from the bundled chelsea.png and coffee.png (each centre-cropped,
//! shrunk to 112x112, side by side on grey) and written to `models/images/cat_and_coffee.png`;
//! the references are the full photos. The embedding is the model's pooled features
//! (`/_avg_pooling/GlobalAveragePool_output_0`, 1280 values), the map is at the head convolution.

use std::path::Path;

use firelight::bundled::{ImageClassifier, models_dir};
use firelight::cam::{Cam, GradCam};
use firelight::core::Embedding;
use firelight::prelude::*;
use firelight::viz::{Colormap, RgbImage, overlay, titled_grid};

const EMBEDDING: &str = "/_avg_pooling/GlobalAveragePool_output_0";
const LAYER: &str = "/_conv_head/Conv_output_0";

fn main() -> Result<()> {
    let device = Device::flex();
    let classifier = ImageClassifier::efficientnet_lite0(&device)?;
    let images = models_dir().join("images");
    let cat = RgbImage::read(images.join("chelsea.png"))?;
    let coffee = RgbImage::read(images.join("coffee.png"))?;

    let mut photo = RgbImage::filled(224, 224, [128, 128, 128]);
    photo.paste(&cat.resize_and_center_crop(112, 112), 0, 56);
    photo.paste(&coffee.resize_and_center_crop(112, 112), 112, 56);
    photo.write_png(images.join("cat_and_coffee.png"))?;

    let embedder = Embedding::new(classifier.model(), EMBEDDING)?;
    let embed = |image: &RgbImage| -> Result<Tensor<1>> {
        let input = classifier.input(&classifier.crop(image), &device)?;
        Ok(embedder.predict(&input.into())?.reshape([1280]))
    };
    let input = classifier.input(&photo, &device)?;
    let mut tiles = vec![("photo".to_string(), photo.clone())];
    for (title, target) in [
        ("like the cat", Target::CosineSimilarity(embed(&cat)?)),
        ("like the coffee", Target::CosineSimilarity(embed(&coffee)?)),
        ("unlike the cat", Target::CosineDifference(embed(&cat)?)),
    ] {
        let map = Cam::new(&embedder, [LAYER], GradCam)?.attribute(&input, &target)?;
        let map = map.to_vec()?;
        let half = |range: std::ops::Range<usize>| -> f32 {
            let values: Vec<f32> = (56..168)
                .flat_map(|y| range.clone().map(move |x| y * 224 + x))
                .map(|i| map[i])
                .collect();
            values.iter().sum::<f32>() / values.len() as f32
        };
        println!(
            "{title:<16} mean map over the cat {:.3}, over the coffee {:.3}",
            half(0..112),
            half(112..224)
        );
        tiles.push((
            title.to_string(),
            overlay(&photo, &map, Colormap::Jet, 0.5)?,
        ));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images/concept_cam.png");
    titled_grid(&tiles, 4)?.write_png(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}
