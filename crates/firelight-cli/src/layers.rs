//! `firelight layers`: every tap point of a model, with its operator and shape.

use firelight::prelude::*;

use crate::args::{DeviceArgs, ModelArgs, classifier};

#[derive(clap::Args, Debug)]
pub(crate) struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

pub(crate) fn run(args: LayersArgs) -> Result<()> {
    let classifier = classifier(&args.model, &args.device.open()?)?;
    let layers = classifier.model().layers();
    let width = layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for layer in layers {
        let shape = layer.shape.map(|s| {
            let dims: Vec<String> = s
                .iter()
                .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                .collect();
            format!("[{}]", dims.join(", "))
        });
        println!(
            "{:<width$}  {:<20} {}",
            layer.name,
            layer.kind,
            shape.unwrap_or_default()
        );
    }
    Ok(())
}
