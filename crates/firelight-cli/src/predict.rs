//! `firelight predict`: the most probable classes for an image.

use firelight::bundled::default_image;
use firelight::prelude::*;

use crate::args::{InputArgs, classifier, load_input};
use crate::session::print_predictions;

#[derive(clap::Args, Debug)]
pub(crate) struct PredictArgs {
    #[command(flatten)]
    input: InputArgs,
    /// How many classes to print.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

pub(crate) fn run(args: PredictArgs) -> Result<()> {
    let device = args.input.device.open()?;
    let classifier = classifier(&args.input.model, &device)?;
    let path = args.input.image.clone().unwrap_or_else(default_image);
    let (_, tensor) = load_input(&classifier, &path, &device)?;
    let predictions = classifier
        .top_k(classifier.model().predict(&tensor.into())?, args.top)?
        .remove(0);
    println!("{}:", path.display());
    print_predictions(&predictions);
    Ok(())
}
