//! Runs any ONNX model on `.npy` inputs and writes its outputs as `.npy`: a quick way to compare
//! firelight-onnx with another runtime on the same file.
//!
//! ```bash
//! cargo run --release --example onnx_run -- model.onnx input0.npy [input1.npy ...] --out outputs/
//! ```
//!
//! Inputs are float32 `.npy` files in graph input order; a graph input declared as an integer or
//! bool tensor (token ids, attention masks) gets the values converted. Outputs are written as
//! float32 `output_<k>.npy`, with the graph's output names printed.

use std::path::PathBuf;

use burn::tensor::{DType, TensorData};
use firelight::core::npy::{read_npy, write_npy};
use firelight::onnx::{OnnxModel, Value};
use firelight::prelude::*;

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => {
            let dir = PathBuf::from(args.get(i + 1).cloned().unwrap_or_else(|| ".".into()));
            args.drain(i..(i + 2).min(args.len()));
            dir
        }
        None => PathBuf::from("onnx-out"),
    };
    let Some((model_path, inputs)) = args.split_first() else {
        eprintln!("usage: onnx_run model.onnx input0.npy [input1.npy ...] [--out DIR]");
        std::process::exit(2);
    };
    let device = Device::flex();
    let model = OnnxModel::load(model_path, &device)?;
    let values = model
        .inputs()
        .iter()
        .zip(inputs)
        .map(|(info, path)| {
            let array = read_npy(path)?;
            let data = match info.dtype {
                Some(
                    DType::I64
                    | DType::I32
                    | DType::I16
                    | DType::I8
                    | DType::U8
                    | DType::U16
                    | DType::U32
                    | DType::U64,
                ) => TensorData::new(
                    array.data.iter().map(|v| *v as i64).collect(),
                    array.shape.clone(),
                ),
                Some(DType::Bool(_)) => TensorData::new(
                    array.data.iter().map(|v| *v != 0.0).collect(),
                    array.shape.clone(),
                ),
                _ => TensorData::new(array.data.clone(), array.shape.clone()),
            };
            Value::from_data(data, &device)
        })
        .collect::<Result<Vec<_>>>()?;
    let start = std::time::Instant::now();
    let outputs = model.run(values)?;
    println!(
        "ran {} nodes in {:.3} s",
        model.node_count(),
        start.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    for (k, (info, value)) in model.outputs().iter().zip(outputs).enumerate() {
        let data = value.into_data()?.convert::<f32>();
        let shape = data.shape().to_vec();
        let values: Vec<f32> = data
            .try_to_vec::<f32>()
            .map_err(|e| Error::Model(format!("{e:?}")))?;
        let path = out.join(format!("output_{k}.npy"));
        write_npy(&path, &shape, &values)?;
        println!("{} {:?} -> {}", info.name, shape, path.display());
    }
    Ok(())
}
