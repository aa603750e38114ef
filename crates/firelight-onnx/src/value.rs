//! [`Value`]: a tensor of any rank and element kind flowing between ONNX nodes.
//!
//! Burn fixes a tensor's rank in its type, ONNX decides it at run time. Every value is kept as a
//! rank-[`MAX_RANK`] Burn tensor whose leading axes are padded with ones, next to its logical
//! shape. Leading ones are exactly NumPy's broadcasting rule, so elementwise ops broadcast with no
//! extra work, and reshaping between the padded and the logical form never copies.

use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};
use firelight_core::{Error, Result};

/// The highest tensor rank the interpreter runs.
pub const MAX_RANK: usize = 6;

/// The element kind of a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Floating point (computed in the backend's float type; gradients flow through these).
    Float,
    /// Integers (indices, shapes).
    Int,
    /// Booleans (masks, comparisons).
    Bool,
}

#[derive(Clone, Debug)]
enum Data {
    Float(Tensor<MAX_RANK>),
    Int(Tensor<MAX_RANK, Int>),
    Bool(Tensor<MAX_RANK, Bool>),
}

/// A tensor of any rank up to [`MAX_RANK`] and any [`Kind`], on one device.
#[derive(Clone, Debug)]
pub struct Value {
    data: Data,
    shape: Vec<usize>,
}

/// `shape` padded with leading ones to [`MAX_RANK`] axes.
pub(crate) fn padded(shape: &[usize]) -> [usize; MAX_RANK] {
    let mut out = [1; MAX_RANK];
    out[MAX_RANK - shape.len()..].copy_from_slice(shape);
    out
}

/// The same elements under another shape of the same size.
fn with_shape(data: TensorData, shape: Vec<usize>) -> TensorData {
    let (bytes, _, dtype) = data.into_parts();
    TensorData::from_bytes(bytes, shape, dtype)
}

fn check_rank(shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_RANK {
        return Err(Error::Model(format!(
            "tensor of shape {shape:?} has rank {}; the interpreter runs ranks up to {MAX_RANK}",
            shape.len()
        )));
    }
    Ok(())
}

impl Value {
    /// A float value from a tensor of any rank.
    pub fn from_float<const D: usize>(tensor: Tensor<D>) -> Result<Self> {
        let shape = tensor.dims().to_vec();
        check_rank(&shape)?;
        Ok(Self {
            data: Data::Float(tensor.reshape(padded(&shape))),
            shape,
        })
    }

    /// An integer value from a tensor of any rank.
    pub fn from_int<const D: usize>(tensor: Tensor<D, Int>) -> Result<Self> {
        let shape = tensor.dims().to_vec();
        check_rank(&shape)?;
        Ok(Self {
            data: Data::Int(tensor.reshape(padded(&shape))),
            shape,
        })
    }

    pub(crate) fn float6(tensor: Tensor<MAX_RANK>, shape: Vec<usize>) -> Self {
        Self {
            data: Data::Float(tensor),
            shape,
        }
    }

    pub(crate) fn int6(tensor: Tensor<MAX_RANK, Int>, shape: Vec<usize>) -> Self {
        Self {
            data: Data::Int(tensor),
            shape,
        }
    }

    pub(crate) fn bool6(tensor: Tensor<MAX_RANK, Bool>, shape: Vec<usize>) -> Self {
        Self {
            data: Data::Bool(tensor),
            shape,
        }
    }

    /// A value holding `data` (any float, integer or bool element type), on `device`.
    pub fn from_data(data: TensorData, device: &Device) -> Result<Self> {
        let shape = data.shape().to_vec();
        check_rank(&shape)?;
        let dims = padded(&shape);
        let reshape = |d: TensorData| with_shape(d, dims.to_vec());
        let value = match data.dtype() {
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::Flex32 => {
                let data = reshape(data.convert::<f32>());
                Data::Float(Tensor::from_data(data, device))
            }
            DType::I64
            | DType::I32
            | DType::I16
            | DType::I8
            | DType::U64
            | DType::U32
            | DType::U16
            | DType::U8 => {
                let data = reshape(data.convert::<i64>());
                Data::Int(Tensor::from_data(data, device))
            }
            DType::Bool(_) => {
                let values: Vec<bool> = data.iter::<bool>().collect::<Vec<_>>();
                let data = TensorData::new(values, dims.to_vec());
                Data::Bool(Tensor::from_data(data, device))
            }
            other => {
                return Err(Error::Model(format!(
                    "tensors of element type {other:?} are not supported"
                )));
            }
        };
        Ok(Self { data: value, shape })
    }

    /// The values on the host, in the logical shape.
    pub fn into_data(self) -> Result<TensorData> {
        let shape = self.shape.clone();
        let data = match self.data {
            Data::Float(t) => t.into_data(),
            Data::Int(t) => t.into_data(),
            Data::Bool(t) => t.into_data(),
        };
        Ok(with_shape(data, shape))
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The logical rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// How many elements the value holds.
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element kind.
    pub fn kind(&self) -> Kind {
        match self.data {
            Data::Float(_) => Kind::Float,
            Data::Int(_) => Kind::Int,
            Data::Bool(_) => Kind::Bool,
        }
    }

    /// The float tensor in the padded rank, or an error naming `what` when it is not float.
    pub(crate) fn float(&self, what: &str) -> Result<Tensor<MAX_RANK>> {
        match &self.data {
            Data::Float(t) => Ok(t.clone()),
            _ => Err(Error::Model(format!(
                "{what} must be a float tensor, got {:?}",
                self.kind()
            ))),
        }
    }

    /// The value as a float tensor in the padded rank, converting integers and bools.
    pub(crate) fn as_float(&self) -> Tensor<MAX_RANK> {
        match &self.data {
            Data::Float(t) => t.clone(),
            Data::Int(t) => t.clone().float(),
            Data::Bool(t) => t.clone().float(),
        }
    }

    /// The value as an integer tensor in the padded rank, truncating floats.
    pub(crate) fn as_int(&self) -> Tensor<MAX_RANK, Int> {
        match &self.data {
            Data::Float(t) => t.clone().int(),
            Data::Int(t) => t.clone(),
            Data::Bool(t) => t.clone().int(),
        }
    }

    /// The value as a bool tensor in the padded rank (non-zero is true).
    pub(crate) fn as_bool(&self) -> Tensor<MAX_RANK, Bool> {
        match &self.data {
            Data::Float(t) => t.clone().not_equal_elem(0.0),
            Data::Int(t) => t.clone().not_equal_elem(0),
            Data::Bool(t) => t.clone(),
        }
    }

    /// The float tensor at its logical rank `D`.
    pub fn float_at<const D: usize>(&self) -> Result<Tensor<D>> {
        if self.shape.len() != D {
            return Err(Error::RankMismatch {
                what: "ONNX value".into(),
                expected: D,
                got: self.shape.clone(),
            });
        }
        let dims: [usize; D] = self.shape.clone().try_into().expect("rank checked above");
        Ok(self.float("value")?.reshape(dims))
    }

    /// The values copied to the host as integers (shapes, axes, indices read by the interpreter).
    pub(crate) fn to_i64s(&self) -> Vec<i64> {
        let data = self.as_int().into_data().convert::<i64>();
        data.try_into_vec::<i64>().unwrap_or_default()
    }

    /// The values copied to the host as `f64`.
    pub(crate) fn to_f64s(&self) -> Vec<f64> {
        let data = self.as_float().into_data().convert::<f64>();
        data.try_into_vec::<f64>().unwrap_or_default()
    }

    /// The same data with another logical shape of the same size (no copy).
    pub(crate) fn reshaped(&self, shape: Vec<usize>) -> Result<Self> {
        check_rank(&shape)?;
        let count: usize = shape.iter().product();
        if count != self.num_elements() {
            return Err(Error::Model(format!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({count} elements)",
                self.shape,
                self.num_elements()
            )));
        }
        let dims = padded(&shape);
        let data = match &self.data {
            Data::Float(t) => Data::Float(t.clone().reshape(dims)),
            Data::Int(t) => Data::Int(t.clone().reshape(dims)),
            Data::Bool(t) => Data::Bool(t.clone().reshape(dims)),
        };
        Ok(Self { data, shape })
    }

    /// Applies the same shape-only operation to whichever tensor kind this is.
    pub(crate) fn map_any(
        &self,
        shape: Vec<usize>,
        f_float: impl FnOnce(Tensor<MAX_RANK>) -> Tensor<MAX_RANK>,
        f_int: impl FnOnce(Tensor<MAX_RANK, Int>) -> Tensor<MAX_RANK, Int>,
        f_bool: impl FnOnce(Tensor<MAX_RANK, Bool>) -> Tensor<MAX_RANK, Bool>,
    ) -> Self {
        let data = match &self.data {
            Data::Float(t) => Data::Float(f_float(t.clone())),
            Data::Int(t) => Data::Int(f_int(t.clone())),
            Data::Bool(t) => Data::Bool(f_bool(t.clone())),
        };
        Self { data, shape }
    }

    /// The device the value lives on.
    pub(crate) fn device(&self) -> Device {
        match &self.data {
            Data::Float(t) => t.device(),
            Data::Int(t) => t.device(),
            Data::Bool(t) => t.device(),
        }
    }
}

/// Applies `$body` to any [`Value`]'s tensor whatever its kind: `$t` is bound to the padded tensor.
macro_rules! any_kind {
    ($value:expr, $shape:expr, |$t:ident| $body:expr) => {
        $value.map_any($shape, |$t| $body, |$t| $body, |$t| $body)
    };
}
pub(crate) use any_kind;
