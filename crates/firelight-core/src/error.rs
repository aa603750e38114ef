//! Typed errors: every one says what was wrong and what was expected.

use std::cmp::Reverse;
use std::path::PathBuf;

/// A `Result` whose error is firelight's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two tensors that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was being checked (e.g. "baselines vs inputs").
        what: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A tensor has the wrong rank for where it is used.
    #[error("rank mismatch for {what}: expected rank {expected}, got shape {got:?}")]
    RankMismatch {
        /// What was being checked.
        what: String,
        /// The rank that was expected.
        expected: usize,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A class index is not one of the model's outputs.
    #[error(
        "target index {index} for sample {sample} is out of range: the model has {outputs} outputs (valid: 0..{outputs})"
    )]
    TargetOutOfRange {
        /// The index asked for.
        index: usize,
        /// The sample it was asked for.
        sample: usize,
        /// How many outputs the model has.
        outputs: usize,
    },
    /// A target does not fit the model's output (wrong count or embedding size).
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// A layer name that the model does not have.
    #[error("{}", unknown_layer_message(name, available))]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// Every layer the model offers (the message names only the closest few).
        available: Vec<String>,
    },
    /// A gradient method asked to attribute to an integer or bool input, which has no gradient.
    #[error(
        "input `{input}` holds {kind} values, which have no gradient: attribute at a layer instead \
         (e.g. LayerIntegratedGradients at the embedding output), use a perturbation method, or \
         pass it as a carried input"
    )]
    NotDifferentiable {
        /// The input's name.
        input: String,
        /// Its element kind.
        kind: String,
    },
    /// A model would allocate more memory than the budget allows.
    #[error(
        "{what} needs {} but the memory budget is {} (raise it with --max-memory, or \
         firelight_core::budget::set_max_bytes)",
        human_bytes(*bytes),
        human_bytes(*budget)
    )]
    MemoryBudget {
        /// What asked for the memory (an ONNX node, a tensor).
        what: String,
        /// How many bytes it asked for.
        bytes: u64,
        /// The budget in bytes.
        budget: u64,
    },
    /// A method parameter outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name, as in the builder.
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// What values are accepted.
        reason: String,
    },
    /// NaN or infinity where finite numbers are needed.
    #[error(
        "{what} contains {count} non-finite value(s) (NaN or infinity); first at flat index {first_index}"
    )]
    NonFinite {
        /// Which tensor.
        what: String,
        /// How many values are not finite.
        count: usize,
        /// Flat index of the first one.
        first_index: usize,
    },
    /// A `.npy` file that cannot be read or written as float32.
    #[error("npy {path}: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image that cannot be read or written.
    #[error("image {path}: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O failure, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The model could not run the given input.
    #[error("model error: {0}")]
    Model(String),
    /// A device that cannot be reached or that went away (a remote server).
    #[error("device {device}: {reason}")]
    Device {
        /// The device as the user named it (`ws://host:port`).
        device: String,
        /// What happened, and what to do about it.
        reason: String,
    },
    /// An ONNX file that cannot be read, parsed or prepared.
    #[error("ONNX model {source_name}: {reason}")]
    Onnx {
        /// The file (or `<bytes>` for a model given in memory).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// ONNX operators the interpreter cannot run, every one found at load, before anything runs.
    #[error(
        "ONNX model {source_name} uses unsupported operators (firelight cannot run them): {}; the supported operators are listed in docs/onnx-ops.md",
        nodes.join(", ")
    )]
    UnsupportedOnnx {
        /// The file (or `<bytes>`).
        source_name: String,
        /// Each unsupported node as `OpType (node `name`)`.
        nodes: Vec<String>,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::InvalidParameter`].
    pub fn parameter(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// A byte count in binary units, for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The names in `candidates` closest to `name`, at most `n`: those holding most of the name's words
/// (`pool` finds `/_avg_pooling/GlobalAveragePool_output_0`), then the longest shared prefix (layer
/// names are paths, `/layer4/...`), then the fewest edits, then the model's order.
pub fn closest_names<'a>(name: &str, candidates: &'a [String], n: usize) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .collect();
    // (words shared, prefix shared, edits, position, name): sorted ascending.
    type Score<'c> = (Reverse<usize>, Reverse<usize>, usize, usize, &'c str);
    let mut scored: Vec<Score<'a>> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let candidate = c.to_lowercase();
            let shared = words.iter().filter(|w| candidate.contains(*w)).count();
            let prefix = lower
                .chars()
                .zip(candidate.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (
                Reverse(shared),
                Reverse(prefix),
                edit_distance(&lower, &candidate),
                i,
                c.as_str(),
            )
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(.., c)| c).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn unknown_layer_message(name: &str, available: &[String]) -> String {
    if available.is_empty() {
        return format!("unknown layer `{name}`: the model has no layers");
    }
    let closest = closest_names(name, available, 5);
    format!(
        "unknown layer `{name}`; the closest of the model's {} layers: {} (`firelight layers` \
         lists them all)",
        available.len(),
        closest
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_layer_names_the_closest_few_not_all() {
        let layers: Vec<String> = (0..40)
            .map(|i| format!("/layer{i}/Relu_output_0"))
            .collect();
        let message = Error::UnknownLayer {
            name: "/layer7/relu_output_0".into(),
            available: layers,
        }
        .to_string();
        assert!(message.contains("`/layer7/Relu_output_0`"), "{message}");
        assert!(message.contains("40 layers"), "{message}");
        assert!(!message.contains("/layer39/"), "{message}");
        assert!(message.contains("firelight layers"), "{message}");
    }

    #[test]
    fn byte_counts_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
