//! Typed errors: every one says what was wrong and what was expected.

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
    #[error("unknown layer `{name}`; the model's layers are: {}", available.join(", "))]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// Every layer the model offers.
        available: Vec<String>,
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
