//! `firelight`: explain the predictions of an image classifier from the shell.
//!
//! The model is the bundled EfficientNet-Lite0 (an ONNX file run through Burn), the bundled native
//! MobileNetV2, or any ONNX image classifier given by path.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use firelight::prelude::*;

/// mimalloc, not glibc's malloc: glibc returns every large buffer (a batch of activations is
/// hundreds of MB) to the kernel on free and maps fresh zeroed pages for the next one, so page
/// clearing, faults and TLB-shootdown interrupts were 40% of an Integrated Gradients run on
/// EfficientNet-B0; mimalloc reuses the memory and the run is 2.1x faster (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the 16th entry of `mi_option_e` in mimalloc.h, v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for reuse instead of mimalloc's default, returning it to the kernel a
/// second after it is freed: the chunks of an attribution run free and allocate the same few hundred MB
/// over and over, so the default still faulted in and cleared fresh pages for most of them (97K
/// page faults and `clear_page` at 46% of an IG run on EfficientNet-B0; 3K and 1.3x faster
/// without purging). The process keeps its peak memory until it exits.
fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's options, which it reads when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

mod args;
mod attention;
mod dataset;
mod evaluate;
mod explain;
mod explain_text;
mod explain_text_dataset;
mod layers;
mod merge;
mod named;
mod predict;
mod sanity;
mod serve;
mod session;
mod tabular;
mod tabular_dataset;
mod tcav;
mod visualize;
mod web;

/// Explain the predictions of an image classifier: which pixels made it say what it said.
///
/// With no arguments, `firelight explain` runs the bundled ImageNet EfficientNet-Lite0 (an ONNX
/// file) on the bundled photo of a cat, prints the top-5 classes, and writes the Integrated
/// Gradients of the top class as a heatmap over the photo (PNG) and as raw numbers (.npy) into
/// ./firelight-out. `--model` takes any ONNX image classifier; every tensor in its graph is a layer
/// (`firelight layers --model net.onnx` lists them).
#[derive(Parser, Debug)]
#[command(name = "firelight", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most memory a model may ask for (e.g. 512M, 8G): every allocation an ONNX graph asks
    /// for is checked against it before it is made. Default: half the machine's memory.
    #[arg(long, global = true, value_parser = firelight::core::budget::parse_size)]
    max_memory: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Attribute a prediction to the input pixels (or to a layer's units) and draw it.
    ///
    /// Examples:
    ///   firelight explain
    ///   firelight explain --image coffee.png --method smoothgrad --target espresso
    ///   firelight explain --model resnet.onnx --preprocess resnet.json --image dog.jpg
    ///   firelight explain --method layer_conductance --layer /_blocks.14/Add_output_0 --steps 32
    ///   firelight explain --method gradcam++ --layer /_conv_head/Conv_output_0
    ///   firelight explain --method gradcam,scorecam,eigencam --layer /_conv_head/Conv_output_0
    ///   firelight explain --method occlusion --window 16 --stride 8
    ///   firelight explain --method kernel_shap,lime --superpixels 50 --samples 200
    ///   firelight explain --method deeplift,lrp --lrp-composite epsilon-plus-flat
    ///   firelight explain --method saliency --signed --layer /_blocks.6/Add_output_0 --neuron 3,4,10
    ///   firelight explain --model diabetes_mlp --row age=54,sex=2,bmi=36.1,...
    ///   firelight explain --image two_things.png --concept-image cat.png \
    ///       --method gradcam --layer /_conv_head/Conv_output_0
    #[command(verbatim_doc_comment)]
    Explain(explain::ExplainArgs),
    /// Gather the chunks of a data-set job's shards (`explain --inputs ... --shard I/N`) into one
    /// index, in sample order.
    ///
    /// The shards may share one folder (a shared volume: `firelight merge OUT`) or write a folder
    /// each (`firelight merge shard0 shard1 shard2 --out merged`). Fails, naming them, while
    /// chunks are missing; the folders must hold the same job.
    ///
    /// Examples:
    ///   firelight merge firelight-out
    ///   firelight merge /scratch/job-a /scratch/job-b --out /scratch/job
    #[command(verbatim_doc_comment)]
    Merge(merge::MergeArgs),
    /// Attribute a text classifier's prediction to the words of each sentence.
    ///
    /// Layer Integrated Gradients at the word embeddings by default (Captum's text tutorial:
    /// baseline [CLS] [PAD] ... [PAD] [SEP], the attention mask carried along every step); any
    /// registry method that fits text with --method (input methods on the fed embeddings,
    /// perturbation methods over tokens or, with --words, words). One score per token (the
    /// signed sum over the embedding axis), printed coloured and written as a self-contained
    /// HTML view, a PNG and JSON. The default model is the bundled all-MiniLM-L6-v2 sentiment
    /// classifier (negative, neutral, positive).
    ///
    /// Examples:
    ///   firelight explain-text "It was a fantastic performance!"
    ///   firelight explain-text "Terrible side effects." "Okay." --words --target positive
    ///   firelight explain-text --text-file reviews.txt --internal-batch-size 100
    ///   firelight explain-text --model bert.onnx --tokenizer tokenizer.json "Some text"
    ///   firelight explain-text "Unbelievably awful pills." --method kernel_shap --words
    #[command(verbatim_doc_comment)]
    ExplainText(explain_text::ExplainTextArgs),
    /// Show what a transformer attends to: every layer and head, attention rollout and the
    /// gradient-weighted relevance of Chefer et al. (2021).
    ///
    /// For text (the default: the bundled all-MiniLM-L6-v2 sentiment model) writes a head view
    /// per sentence (a grid of layers x heads, each a token-to-token map labelled with the
    /// tokens), the tokens coloured by rollout and by relevance to the target (PNG) and
    /// attention.json. With --image and a vision transformer, draws rollout and relevance from
    /// the class token to the patches over the photo. Attention layers are found by themselves:
    /// each Softmax shaped [batch, heads, tokens, tokens], fused Attention nodes included.
    ///
    /// Examples:
    ///   firelight attention "It was a fantastic performance!"
    ///   firelight attention "Terrible side effects." --target positive --fusion max --discard-ratio 0.9
    ///   firelight attention --model vit.onnx --image dog.jpg --preprocess vit.json
    #[command(verbatim_doc_comment)]
    Attention(attention::AttentionArgs),
    /// Score how faithful, robust and concentrated maps are, method by method (--metric).
    ///
    /// ROAD imputes the pixels a map ranks most relevant (MoRF) or least relevant (LeRF) with noisy
    /// linear imputation and reports the change of the target's score, averaged over percentiles
    /// 10..90; `combined` = (LeRF - MoRF) / 2, higher is better. `confidence` is the change when the
    /// photo is multiplied by the map. Deletion and insertion (RISE) follow the target's
    /// probability as pixels go or come back, most salient first, and draw the curves; infidelity
    /// and sensitivity are Captum's, faithfulness correlation, sparseness and complexity
    /// Quantus's. Writes a JSON table and a grid of the maps.
    ///
    /// Examples:
    ///   firelight evaluate --layer /_conv_head/Conv_output_0
    ///   firelight evaluate --method gradcam,gradcam++,scorecam,saliency --layer /_blocks.14/Add_output_0
    ///   firelight evaluate --method gradcam,integrated_gradients --layer /_conv_head/Conv_output_0 \
    ///       --metric deletion,insertion,infidelity,sensitivity,faithfulness --steps 16
    #[command(verbatim_doc_comment)]
    Evaluate(evaluate::EvaluateArgs),
    /// Sanity-check methods (Adebayo et al. 2018): redraw the model's weights from the top layer
    /// down and see whether each method's map changes with them.
    ///
    /// A map that stays alike (Spearman rank correlation of absolute values at or above
    /// --threshold once every layer is redrawn) does not depend on what the model learnt: it
    /// fails. Writes the figure (rows: methods; columns: the original, then more layers redrawn)
    /// and the numbers (Spearman signed and absolute, SSIM) as JSON.
    ///
    /// Examples:
    ///   firelight sanity
    ///   firelight sanity --method gradcam,saliency,integrated_gradients \
    ///       --layer /_conv_head/Conv_output_0 --steps 16 --groups 4
    ///   firelight sanity --independent --groups 8
    #[command(verbatim_doc_comment)]
    Sanity(sanity::SanityArgs),
    /// Draw what a layer responds to: the picture that maximises each channel (Lucid's
    /// activation maximisation: Adam on a Fourier-parameterised, colour-decorrelated picture
    /// seen through random pad, jitter, scale and rotation), the whole layer's mean square, or
    /// a concept's direction (its CAV); or DeepDream a photo (4 octaves of scale 1.4).
    ///
    /// Examples:
    ///   firelight visualize --layer /_blocks.14/Add_output_0 --channel 3,17,40
    ///   firelight visualize --layer /_conv_head/Conv_output_0 --channel 100 --steps 256 --size 96
    ///   firelight visualize --layer /_blocks.10/Add_output_0 --dream models/images/chelsea.png
    ///   firelight visualize --model models/texture_cnn/model.onnx --layer /relu3/Relu_output_0 \
    ///       --concept striped=models/texture_cnn/concepts/striped \
    ///       --random models/texture_cnn/concepts/random
    #[command(verbatim_doc_comment)]
    Visualize(visualize::VisualizeArgs),
    /// Print the most probable classes for an image.
    Predict(predict::PredictArgs),
    /// Test a model with concept activation vectors (TCAV): does a concept (a folder of images)
    /// matter to a class? Significance against random concepts, written as JSON, PNG and HTML.
    ///
    /// Example (the bundled ground-truth model):
    ///   firelight tcav --model models/texture_cnn/model.onnx \
    ///     --concept striped=models/texture_cnn/concepts/striped \
    ///     --concept dotted=models/texture_cnn/concepts/dotted \
    ///     --random-pool models/texture_cnn/concepts/random \
    ///     --target striped=models/texture_cnn/inputs/striped \
    ///     --layer /relu2/Relu_output_0 --layer /relu3/Relu_output_0
    #[command(verbatim_doc_comment)]
    Tcav(tcav::TcavArgs),
    /// List the layers (tap points) that layer methods can use, with their operator and shape.
    Layers(layers::LayersArgs),
    /// Host this machine's device (a GPU, or flex on a big CPU) for firelight on other machines:
    /// they pass `--device ws://HOST:PORT` and every method runs here, gradients included. Only
    /// inputs and what the client reads cross the wire. Needs a build with --features remote.
    ///
    /// Examples:
    ///   firelight serve --device cuda --host 0.0.0.0 --port 3000 --token s3cret
    ///   firelight explain --device ws://gpu-box:3000 --token s3cret --method integrated_gradients
    ///   firelight explain --inputs photos/ --device ws://gpu-a:3000 --device ws://gpu-b:3000
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
    /// Serve the browser page: the same methods in WebAssembly, computed in the visitor's
    /// browser, nothing uploaded. Build the page once with `web/build.sh`.
    ///
    /// Examples:
    ///   firelight web                  # http://127.0.0.1:8080/
    ///   firelight web --port 0         # any free port (printed)
    ///   firelight web --dir my/dist    # a page built elsewhere (any static host serves it too)
    #[command(verbatim_doc_comment)]
    Web(web::WebArgs),
}

fn run(cli: Cli) -> Result<()> {
    if let Some(bytes) = cli.max_memory {
        firelight::core::budget::set_max_bytes(bytes);
    }
    match cli.command {
        Command::Explain(args) => explain::explain(args),
        Command::Merge(args) => merge::run(args),
        Command::ExplainText(args) => explain_text::run(args),
        Command::Attention(args) => attention::run(args),
        Command::Evaluate(args) => evaluate::evaluate(args),
        Command::Sanity(args) => sanity::run(args),
        Command::Visualize(args) => visualize::run(args),
        Command::Tcav(args) => tcav::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Layers(args) => layers::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Web(args) => web::run(args),
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MI_OPTION_PURGE_DELAY;

    /// The option number names the purge delay: its value is mimalloc v3's default of 1000 ms
    /// (src/options.c) until `keep_freed_memory` sets it (the tests do not run `main`).
    #[test]
    fn purge_delay_option_number_reads_mimallocs_default() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // set from outside: the default is not what it reads
        }
        // SAFETY: reads one of mimalloc's options.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
