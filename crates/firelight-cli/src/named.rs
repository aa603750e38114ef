//! `firelight explain --input NAME=FILE.npy ...`: any ONNX model with named inputs (several
//! inputs, integer inputs), some attributed and the others carried (`--carry NAME`), explained
//! by any input method; one `.npy` per attributed input and method.

use std::path::{Path, PathBuf};

use firelight::core::npy::{read_npy_value, write_npy_tensor};
use firelight::methods::{Family, RunContext};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

use crate::explain::ExplainArgs;
use crate::session::{file_safe, method_bar};

/// One `--input NAME=FILE`.
#[derive(Clone, Debug)]
pub(crate) struct NamedFile {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// Parses `NAME=FILE` for `--input`.
pub(crate) fn parse_named_file(text: &str) -> std::result::Result<NamedFile, String> {
    let (name, path) = text
        .split_once('=')
        .filter(|(n, p)| !n.trim().is_empty() && !p.trim().is_empty())
        .ok_or_else(|| format!("`{text}` is not NAME=FILE.npy (e.g. --input image=photo.npy)"))?;
    Ok(NamedFile {
        name: name.trim().to_string(),
        path: PathBuf::from(path.trim()),
    })
}

pub(crate) fn explain(args: &ExplainArgs, methods: &[String]) -> Result<()> {
    let device = args.input.device.open()?;
    let path = Path::new(&args.input.model.model);
    if !path.is_file() {
        return Err(Error::parameter(
            "model",
            &args.input.model.model,
            "--input takes the path of an ONNX file as --model",
        ));
    }
    let model = OnnxModel::load(path, &device)?;
    let mut inputs = Inputs::new();
    for file in &args.inputs {
        let value = read_npy_value(&file.path, &device)?;
        inputs = if args.carry.contains(&file.name) {
            inputs.carried(&file.name, value)
        } else {
            inputs.attributed_value(&file.name, value)
        };
    }
    if let Some(unknown) = args
        .carry
        .iter()
        .find(|c| !args.inputs.iter().any(|i| &i.name == *c))
    {
        return Err(Error::parameter(
            "carry",
            unknown,
            "names no --input; give it as --input NAME=FILE too",
        ));
    }
    model.check_inputs(&inputs)?;
    let batch = inputs.batch()?;
    let outputs = DynTensor::new(model.predict(&inputs)?);
    let width = outputs.features();
    let values = outputs.to_vec()?;
    let top: Vec<usize> = values
        .chunks(width)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect();
    let target = match args.target.target.as_str() {
        "top" => Target::classes(top.clone()),
        index => match index.parse::<usize>() {
            Ok(class) if class < width => Target::class(class),
            Ok(class) => {
                return Err(Error::TargetOutOfRange {
                    index: class,
                    sample: 0,
                    outputs: width,
                });
            }
            Err(_) => {
                return Err(Error::parameter(
                    "target",
                    index,
                    "with --input, the target is `top` or an output index",
                ));
            }
        },
    };
    println!(
        "{}: inputs {} ({} carried), {batch} row(s), {width} outputs; top output per row: {top:?}",
        path.display(),
        inputs.names().join(", "),
        args.carry.len()
    );
    let configs = args.options.configs(methods)?;
    if let Some(m) = configs.iter().find(|m| m.info().family == Family::Cam) {
        return Err(Error::parameter(
            "method",
            m.info().name,
            "CAMs explain photos; with --input use gradient, layer or perturbation methods",
        ));
    }
    let context = RunContext {
        layer: args.options.layer.clone(),
        feature_mask: args.options.feature_mask(&configs, None)?,
        neuron: args.options.neuron.clone(),
        ..RunContext::default()
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    for config in &configs {
        let name = config.info().name;
        let (bar, progress) = method_bar(format!(
            "{name} of {}",
            inputs.attributed_names().join(", ")
        ));
        let context = RunContext {
            progress: Some(progress),
            ..context.clone()
        };
        let result = config.attribute(&model, &inputs, &target, &context);
        bar.finish_and_clear();
        for (input, attribution) in result?.into_vec() {
            let file = args
                .out
                .join(format!("{stem}_{name}_{}.npy", file_safe(&input)));
            write_npy_tensor(&file, &attribution)?;
            let sums: Vec<String> = attribution
                .flat()
                .clone()
                .sum_dim(1)
                .into_data()
                .convert::<f32>()
                .iter::<f32>()
                .map(|s| format!("{s:+.4}"))
                .collect();
            println!(
                "{name} -> `{input}` {:?}, sum per row [{}]: {}",
                attribution.shape(),
                sums.join(", "),
                file.display()
            );
        }
    }
    Ok(())
}
