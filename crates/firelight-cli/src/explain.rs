//! `firelight explain`: attribute a prediction to the input pixels (or a layer's units) and draw it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use firelight::core::npy::write_npy_tensor;
use firelight::methods::{Family, ReportCallback, RunContext};
use firelight::prelude::*;
use firelight::viz::{Colormap, RgbImage, Sign, titled_grid};

use crate::args::{InputArgs, MethodOptionArgs, TargetArgs, load_input, methods_help};
use crate::dataset::DatasetArgs;
use crate::named::{NamedFile, parse_named_file};
use crate::session::{Drawing, Picture, Session, draw, file_safe, method_bar};

#[derive(clap::Args, Debug)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// [default: integrated_gradients; for tabular rows integrated_gradients, feature_ablation,
    /// shapley_value_sampling, kernel_shap, lime]
    #[arg(long, value_delimiter = ',', long_help = methods_help())]
    pub(crate) method: Option<Vec<String>>,
    /// A named model input from a `.npy` file (float, int64 or bool), for ONNX models with several
    /// inputs or integer inputs: `--model net.onnx --input image=x.npy --input meta=m.npy`. Every
    /// input is attributed unless `--carry` names it.
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = parse_named_file)]
    pub(crate) inputs: Vec<NamedFile>,
    /// An `--input` passed along unchanged (an attention mask, a metadata vector), repeated row for
    /// row in every expansion (Captum's `additional_forward_args`).
    #[arg(long, value_name = "NAME")]
    pub(crate) carry: Vec<String>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) options: MethodOptionArgs,
    /// How the result is drawn over the photo (Captum's `visualize_image_attr` methods, the
    /// spotlight, or pytorch-grad-cam's colormap overlay).
    #[arg(long, value_enum, default_value_t = Picture::Spotlight)]
    pub(crate) picture: Picture,
    /// Which attributions Captum's pictures draw (their `sign`); `all` needs a diverging picture
    /// (heat-map or blended-heat-map).
    #[arg(long, value_enum, default_value_t = SignChoice::AbsoluteValue)]
    pub(crate) sign: SignChoice,
    /// Captum's `outlier_perc`: the share of the largest evidence that saturates the colours.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) outlier_perc: f32,
    /// The colormap of `--picture overlay`: jet or viridis (magnitudes), diverging (signed: blue
    /// negative, red positive).
    #[arg(long, value_enum, default_value_t = ColormapChoice::Jet)]
    pub(crate) colormap: ColormapChoice,
    /// Tabular rows to explain: a CSV whose header names the model's features (`--model
    /// diabetes_mlp`, or an ONNX file with a model.json of features beside it).
    #[arg(long)]
    pub(crate) rows: Option<PathBuf>,
    /// One tabular row as name=value pairs: `--row age=54,sex=2,bmi=36.1,...`.
    #[arg(long)]
    pub(crate) row: Option<String>,
    /// The reference input: `zeros` (the mean photo after normalisation), `black`, or a .npy tensor.
    #[arg(long, default_value = "zeros")]
    pub(crate) baseline: String,
    /// Folder for the outputs; a data-set job's may also be object storage, s3://BUCKET/PREFIX,
    /// gs://..., az://... or file://... (feature object-store, on by default; credentials from
    /// the AWS_*, GOOGLE_* or AZURE_* environment variables).
    #[arg(long, default_value = "firelight-out")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
}

/// Captum's `sign`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum SignChoice {
    All,
    Positive,
    Negative,
    AbsoluteValue,
}

impl From<SignChoice> for Sign {
    fn from(choice: SignChoice) -> Self {
        match choice {
            SignChoice::All => Sign::All,
            SignChoice::Positive => Sign::Positive,
            SignChoice::Negative => Sign::Negative,
            SignChoice::AbsoluteValue => Sign::AbsoluteValue,
        }
    }
}

impl ExplainArgs {
    /// How results are drawn.
    pub(crate) fn drawing(&self) -> Drawing {
        Drawing {
            picture: self.picture,
            sign: self.sign.into(),
            outlier_perc: self.outlier_perc,
            colormap: self.colormap.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ColormapChoice {
    Jet,
    Viridis,
    Diverging,
}

impl From<ColormapChoice> for Colormap {
    fn from(choice: ColormapChoice) -> Self {
        match choice {
            ColormapChoice::Jet => Colormap::Jet,
            ColormapChoice::Viridis => Colormap::Viridis,
            ColormapChoice::Diverging => Colormap::Diverging,
        }
    }
}

pub(crate) fn explain(args: ExplainArgs) -> Result<()> {
    if let Some(inputs) = &args.dataset.data_set {
        if crate::tabular::is_tabular(&args.input.model.model) {
            if args.rows.is_some() || args.row.is_some() {
                return Err(Error::parameter(
                    "inputs",
                    inputs.display(),
                    "--rows and --row are for rows explained at once; a data-set job reads its \
                     rows from --inputs",
                ));
            }
            let methods = args.method.clone().unwrap_or_else(|| {
                crate::tabular::DEFAULT_METHODS
                    .split(',')
                    .map(String::from)
                    .collect()
            });
            return crate::tabular_dataset::explain(&args, inputs, &methods);
        }
        let methods = args
            .method
            .clone()
            .unwrap_or_else(|| vec!["integrated_gradients".into()]);
        return crate::dataset::explain(&args, inputs, &methods);
    }
    if !args.inputs.is_empty() {
        let methods = args
            .method
            .clone()
            .unwrap_or_else(|| vec!["integrated_gradients".into()]);
        return crate::named::explain(&args, &methods);
    }
    if args.rows.is_some()
        || args.row.is_some()
        || crate::tabular::is_tabular(&args.input.model.model)
    {
        let methods = args.method.clone().unwrap_or_else(|| {
            crate::tabular::DEFAULT_METHODS
                .split(',')
                .map(String::from)
                .collect()
        });
        return crate::tabular::explain(&args, &methods);
    }
    if !args.carry.is_empty() {
        return Err(Error::parameter(
            "carry",
            args.carry.join(","),
            "--carry names inputs given with --input NAME=FILE",
        ));
    }
    let methods = args
        .method
        .clone()
        .unwrap_or_else(|| vec!["integrated_gradients".into()]);
    let session = Session::open(&methods, &args.input, &args.options)?;
    let Session {
        methods,
        device,
        classifier,
        photo,
        input,
        ..
    } = &session;
    let explained = args.target.resolve(classifier, input, device)?;
    let baselines = match args.baseline.as_str() {
        "zeros" => Baseline::Zeros,
        "black" => Baseline::Tensor(classifier.input(
            &RgbImage::filled(input.shape()[3], input.shape()[2], [0, 0, 0]),
            device,
        )?),
        npy => Baseline::Tensor(load_input(classifier, Path::new(npy), device)?.1),
    };
    let layer = args.options.layer.clone();
    let context = RunContext {
        layer: layer.clone(),
        baselines,
        feature_mask: args.options.feature_mask(methods, photo.as_ref())?,
        progress: None,
        neuron: args.options.neuron.clone(),
        report: Some(ReportCallback::new(|line| println!("{line}"))),
    };
    // Neuron attribution explains units of the layer, not the target.
    let (about, slug) = match (&args.options.neuron, &layer) {
        (Some(neuron), Some(layer)) => (
            format!("{neuron} of `{layer}`"),
            format!("_neuron_{}", file_safe(layer)),
        ),
        _ => (explained.description.clone(), explained.slug.clone()),
    };

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = session.stem();
    let mut tiles = Vec::new();
    if let Some(photo) = photo {
        tiles.push(("photo".to_string(), photo.clone()));
    }
    for method in methods {
        let info = method.info();
        let (bar, progress) = method_bar(format!("{} for the {about}", info.name));
        let context = RunContext {
            progress: Some(progress),
            ..context.clone()
        };
        let result =
            method.attribute_tensor(explained.model.as_ref(), input, &explained.target, &context);
        bar.finish_and_clear();
        let attribution = result?;
        let name = match &layer {
            Some(layer) if info.needs_layer() => {
                format!("{stem}_{}{slug}_{}", info.name, file_safe(layer))
            }
            _ => format!("{stem}_{}{slug}", info.name),
        };
        let npy = args.out.join(format!("{name}.npy"));
        write_npy_tensor(&npy, &attribution)?;
        println!("{} for the {about}: {}", info.name, npy.display());
        if let (Some(photo), false) = (photo, info.family == Family::Layer) {
            let png = args.out.join(format!("{name}.png"));
            let picture = draw(photo, method, &attribution, &args.drawing())?;
            picture.write_png(&png)?;
            println!("  heatmap over the photo: {}", png.display());
            tiles.push((info.name.to_string(), picture));
        }
    }
    if tiles.len() > 2 {
        let png = args.out.join(format!("{stem}{slug}_grid.png"));
        let columns = if tiles.len() <= 5 {
            tiles.len()
        } else {
            tiles.len().div_ceil(2)
        };
        titled_grid(&tiles, columns)?.write_png(&png)?;
        println!("all methods side by side: {}", png.display());
    }
    Ok(())
}
