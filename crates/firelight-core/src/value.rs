//! [`Value`]: a tensor of any rank and element kind: a model input (float pixels, integer token
//! ids, a bool mask) or a value flowing between the nodes of an ONNX graph.
//!
//! Burn fixes a tensor's rank in its type, ONNX decides it at run time. Every value is kept as a
//! rank-[`MAX_RANK`] Burn tensor whose leading axes are padded with ones, next to its logical
//! shape. Leading ones are exactly NumPy's broadcasting rule, so elementwise ops broadcast with no
//! extra work, and reshaping between the padded and the logical form never copies.

use crate::error::{Error, Result};
use crate::tensor::DynTensor;
use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};

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
pub fn padded(shape: &[usize]) -> [usize; MAX_RANK] {
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

    /// A float value from its padded rank-[`MAX_RANK`] tensor and logical shape.
    pub fn float6(tensor: Tensor<MAX_RANK>, shape: Vec<usize>) -> Self {
        Self {
            data: Data::Float(tensor),
            shape,
        }
    }

    /// An integer value from its padded rank-[`MAX_RANK`] tensor and logical shape.
    pub fn int6(tensor: Tensor<MAX_RANK, Int>, shape: Vec<usize>) -> Self {
        Self {
            data: Data::Int(tensor),
            shape,
        }
    }

    /// A bool value from its padded rank-[`MAX_RANK`] tensor and logical shape.
    pub fn bool6(tensor: Tensor<MAX_RANK, Bool>, shape: Vec<usize>) -> Self {
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
                // Backends may keep integers in 32 bits. Values beyond that range are the
                // sentinels of exported graphs (a Slice `end` of i64::MAX: "to the end"), so they
                // saturate rather than fail; every such use means the same after saturating.
                let values: Vec<i64> = data
                    .convert::<i64>()
                    .iter::<i64>()
                    .map(|v| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)))
                    .collect();
                let data = TensorData::new(values, dims.to_vec());
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
    pub fn float(&self, what: &str) -> Result<Tensor<MAX_RANK>> {
        match &self.data {
            Data::Float(t) => Ok(t.clone()),
            _ => Err(Error::Model(format!(
                "{what} must be a float tensor, got {:?}",
                self.kind()
            ))),
        }
    }

    /// The value as a float tensor in the padded rank, converting integers and bools.
    pub fn as_float(&self) -> Tensor<MAX_RANK> {
        match &self.data {
            Data::Float(t) => t.clone(),
            Data::Int(t) => t.clone().float(),
            Data::Bool(t) => t.clone().float(),
        }
    }

    /// The value as an integer tensor in the padded rank, truncating floats.
    pub fn as_int(&self) -> Tensor<MAX_RANK, Int> {
        match &self.data {
            Data::Float(t) => t.clone().int(),
            Data::Int(t) => t.clone(),
            Data::Bool(t) => t.clone().int(),
        }
    }

    /// The value as a bool tensor in the padded rank (non-zero is true).
    pub fn as_bool(&self) -> Tensor<MAX_RANK, Bool> {
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
    pub fn to_i64s(&self) -> Vec<i64> {
        let data = self.as_int().into_data().convert::<i64>();
        data.try_into_vec::<i64>().unwrap_or_default()
    }

    /// The values copied to the host as `f64`.
    pub fn to_f64s(&self) -> Vec<f64> {
        let data = self.as_float().into_data().convert::<f64>();
        data.try_into_vec::<f64>().unwrap_or_default()
    }

    /// The same data with another logical shape of the same size (no copy).
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Self> {
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
    pub fn map_any(
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
    pub fn device(&self) -> Device {
        match &self.data {
            Data::Float(t) => t.device(),
            Data::Int(t) => t.device(),
            Data::Bool(t) => t.device(),
        }
    }
}

/// Batch-axis operations: inputs are batch first, and every method that expands a batch (IG
/// steps, noise samples, perturbations) moves whole rows.
impl Value {
    /// A float value holding `tensor` (any rank, batch first).
    pub fn from_dyn(tensor: &DynTensor) -> Result<Self> {
        let shape = tensor.shape().to_vec();
        check_rank(&shape)?;
        Ok(Self {
            data: Data::Float(tensor.flat().clone().reshape(padded(&shape))),
            shape,
        })
    }

    /// The float value as a [`DynTensor`], or an error naming `what` when it is not float.
    pub fn to_dyn(&self, what: &str) -> Result<DynTensor> {
        let t = self.float(what)?;
        if self.shape.is_empty() {
            return Err(Error::RankMismatch {
                what: format!("{what} (a scalar has no batch axis)"),
                expected: 1,
                got: Vec::new(),
            });
        }
        let batch = self.shape[0];
        let features = self.shape[1..].iter().product::<usize>();
        DynTensor::from_flat(t.reshape([batch, features]), self.shape.clone())
    }

    /// The size of the first (batch) axis; 1 for a scalar.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// The padded axis that holds the logical batch axis.
    fn batch_axis(&self) -> usize {
        MAX_RANK - self.shape.len().max(1)
    }

    /// The rows `rows` of the batch, in that order (rows may repeat).
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if self.shape.is_empty() {
            return Err(Error::Model("a scalar value has no rows to select".into()));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch()) {
            return Err(Error::ShapeMismatch {
                what: format!("row {bad} of a value with {} rows", self.batch()),
                expected: vec![self.batch()],
                got: vec![bad + 1],
            });
        }
        let axis = self.batch_axis();
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let indices: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let indices =
            Tensor::<1, Int>::from_data(TensorData::new(indices, [rows.len()]), &self.device());
        Ok(match &self.data {
            Data::Float(t) => Self::float6(t.clone().select(axis, indices), shape),
            Data::Int(t) => Self::int6(t.clone().select(axis, indices), shape),
            // Bool tensors are selected through integers, which every backend selects.
            Data::Bool(t) => {
                Self::bool6(t.clone().int().select(axis, indices).equal_elem(1), shape)
            }
        })
    }

    /// Rows `start..end` of the batch.
    pub fn rows(&self, start: usize, end: usize) -> Result<Self> {
        if self.shape.is_empty() || start > end || end > self.batch() {
            return Err(Error::Model(format!(
                "rows {start}..{end} of a value of shape {:?}",
                self.shape
            )));
        }
        let axis = self.batch_axis();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        let n = end - start;
        Ok(self.map_any(
            shape,
            |t| t.narrow(axis, start, n),
            |t| t.narrow(axis, start, n),
            |t| t.narrow(axis, start, n),
        ))
    }

    /// Values of one kind and sample shape joined along the batch axis.
    pub fn cat_rows(parts: Vec<Value>) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Model("cannot join an empty list of values".into()))?;
        let (kind, sample) = (first.kind(), first.shape.get(1..).unwrap_or(&[]).to_vec());
        if first.shape.is_empty()
            || parts
                .iter()
                .any(|p| p.kind() != kind || p.shape.get(1..) != Some(sample.as_slice()))
        {
            return Err(Error::Model(format!(
                "values joined along the batch must share kind and sample shape: {:?}",
                parts
                    .iter()
                    .map(|p| (p.kind(), p.shape.clone()))
                    .collect::<Vec<_>>()
            )));
        }
        let axis = first.batch_axis();
        let mut shape = first.shape.clone();
        shape[0] = parts.iter().map(|p| p.shape[0]).sum();
        Ok(match kind {
            Kind::Float => Self::float6(
                Tensor::cat(parts.iter().map(|p| p.as_float()).collect(), axis),
                shape,
            ),
            Kind::Int => Self::int6(
                Tensor::cat(parts.iter().map(|p| p.as_int()).collect(), axis),
                shape,
            ),
            Kind::Bool => Self::bool6(
                Tensor::cat(parts.iter().map(|p| p.as_bool()).collect(), axis),
                shape,
            ),
        })
    }

    /// The same value moved to `device`.
    pub fn to_device(&self, device: &Device) -> Self {
        let shape = self.shape.clone();
        self.map_any(
            shape,
            |t| t.to_device(device),
            |t| t.to_device(device),
            |t| t.to_device(device),
        )
    }
}

/// Tensors of rank up to [`MAX_RANK`] convert into values (a higher rank does not compile).
impl<const D: usize> From<Tensor<D>> for Value {
    fn from(tensor: Tensor<D>) -> Self {
        const { assert!(D <= MAX_RANK, "values hold tensors of rank up to MAX_RANK") };
        let shape = tensor.dims().to_vec();
        Self::float6(tensor.reshape(padded(&shape)), shape)
    }
}

impl<const D: usize> From<Tensor<D, Int>> for Value {
    fn from(tensor: Tensor<D, Int>) -> Self {
        const { assert!(D <= MAX_RANK, "values hold tensors of rank up to MAX_RANK") };
        let shape = tensor.dims().to_vec();
        Self::int6(tensor.reshape(padded(&shape)), shape)
    }
}

impl<const D: usize> From<Tensor<D, Bool>> for Value {
    fn from(tensor: Tensor<D, Bool>) -> Self {
        const { assert!(D <= MAX_RANK, "values hold tensors of rank up to MAX_RANK") };
        let shape = tensor.dims().to_vec();
        Self::bool6(tensor.reshape(padded(&shape)), shape)
    }
}
