//! [`DynTensor`]: a float tensor of any rank, so one method serves 2-D, 3-D and 4-D data.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// A float tensor of any rank (at least 1), whose first axis is the batch.
///
/// It is stored flattened as `[batch, features]` with its full shape beside it: attribution
/// arithmetic (interpolation, products, sums per sample) is element-wise or per sample, so it never
/// needs the rank, and a model gets its own rank back with [`DynTensor::into_rank`].
#[derive(Clone, Debug)]
pub struct DynTensor {
    flat: Tensor<2>,
    shape: Vec<usize>,
}

impl DynTensor {
    /// Wraps a tensor of rank `D` (`D >= 1`, first axis the batch).
    pub fn new<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let batch = shape.first().copied().unwrap_or(1);
        let features = shape.iter().skip(1).product::<usize>();
        let flat = tensor.reshape([batch, features]);
        Self { flat, shape }
    }

    /// Rebuilds from a flat `[batch, features]` tensor and the full shape it stands for.
    pub fn from_flat(flat: Tensor<2>, shape: Vec<usize>) -> Result<Self> {
        let [batch, features] = flat.dims();
        let expected_features: usize = shape.iter().skip(1).product();
        if shape.first() != Some(&batch) || features != expected_features {
            return Err(Error::ShapeMismatch {
                what: "flat tensor vs declared shape".into(),
                expected: shape,
                got: vec![batch, features],
            });
        }
        Ok(Self { flat, shape })
    }

    /// A tensor from host data in row-major order.
    pub fn from_vec(values: Vec<f32>, shape: Vec<usize>, device: &Device) -> Result<Self> {
        let count: usize = shape.iter().product();
        if values.len() != count || shape.is_empty() {
            return Err(Error::ShapeMismatch {
                what: "data length vs shape".into(),
                expected: shape,
                got: vec![values.len()],
            });
        }
        let batch = shape[0];
        let features = shape[1..].iter().product();
        let flat = Tensor::<2>::from_data(TensorData::new(values, [batch, features]), device);
        Ok(Self { flat, shape })
    }

    /// The tensor at rank `D`, or an error naming the shape when the rank differs.
    pub fn into_rank<const D: usize>(self) -> Result<Tensor<D>> {
        if self.shape.len() != D {
            return Err(Error::RankMismatch {
                what: "tensor".into(),
                expected: D,
                got: self.shape,
            });
        }
        let mut dims = [0usize; D];
        dims.copy_from_slice(&self.shape);
        Ok(self.flat.reshape(dims))
    }

    /// The full shape, batch first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The shape of one sample (the shape without its batch axis).
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape[1..]
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.shape[0]
    }

    /// Number of values in one sample.
    pub fn features(&self) -> usize {
        self.flat.dims()[1]
    }

    /// The flat `[batch, features]` view.
    pub fn flat(&self) -> &Tensor<2> {
        &self.flat
    }

    /// The flat `[batch, features]` view, by value.
    pub fn into_flat(self) -> Tensor<2> {
        self.flat
    }

    /// The device the tensor lives on.
    pub fn device(&self) -> Device {
        self.flat.device()
    }

    /// Applies `f` to the flat view and keeps the shape (`f` must keep `[batch, features]`).
    pub fn map(self, f: impl FnOnce(Tensor<2>) -> Tensor<2>) -> Self {
        let shape = self.shape;
        let flat = f(self.flat);
        debug_assert_eq!(flat.dims()[0], shape[0]);
        Self { flat, shape }
    }

    /// Same tensor with a different batch: `flat` is `[new_batch, features]`.
    pub fn with_flat(&self, flat: Tensor<2>) -> Self {
        let mut shape = self.shape.clone();
        shape[0] = flat.dims()[0];
        Self { flat, shape }
    }

    /// Rows `start..end` of the batch.
    pub fn rows(&self, start: usize, end: usize) -> Self {
        self.with_flat(self.flat.clone().narrow(0, start, end - start))
    }

    /// Rows `rows` of the batch, in that order (rows may repeat): how expansions repeat a row.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch()) {
            return Err(Error::ShapeMismatch {
                what: format!("row {bad} of a tensor with {} rows", self.batch()),
                expected: vec![self.batch()],
                got: vec![bad + 1],
            });
        }
        let device = self.device();
        let indices: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let indices = Tensor::<1, burn::tensor::Int>::from_data(
            TensorData::new(indices, [rows.len()]),
            &device,
        );
        Ok(self.with_flat(self.flat.clone().select(0, indices)))
    }

    /// Joins tensors of one sample shape along the batch axis.
    pub fn cat(parts: Vec<DynTensor>) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Model("cannot concatenate an empty list of tensors".into()))?;
        let sample = first.sample_shape().to_vec();
        for part in &parts {
            if part.sample_shape() != sample.as_slice() {
                return Err(Error::ShapeMismatch {
                    what: "tensors joined along the batch".into(),
                    expected: sample,
                    got: part.sample_shape().to_vec(),
                });
            }
        }
        let template = first.clone();
        let flat = Tensor::cat(parts.into_iter().map(|p| p.flat).collect(), 0);
        Ok(template.with_flat(flat))
    }

    /// The values on the host, row-major.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        // A failed read (a remote device that went away) is an error, not a panic.
        self.flat
            .clone()
            .try_into_data()
            .map_err(|e| Error::Model(format!("reading tensor values: {e}")))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Model(format!("reading tensor values: {e:?}")))
    }

    /// The same values, off the autodiff graph (a plain tensor on the inner device).
    pub fn detached(&self) -> Self {
        self.with_flat(self.flat.clone().detach().inner())
    }

    /// Fails with [`Error::NonFinite`] if any value is NaN or infinite.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        // The check runs on the device and one value crosses to the host: on a GPU, reading
        // the whole tensor back for every chunk would cost a transfer as large as the input.
        // Only a failure reads it all, to say where.
        let all_finite = self
            .flat
            .clone()
            .detach()
            .is_finite()
            .all()
            .try_into_scalar::<bool>()
            .unwrap_or(false);
        if all_finite {
            return Ok(());
        }
        let values = self.to_vec()?;
        let mut bad = values.iter().enumerate().filter(|(_, v)| !v.is_finite());
        if let Some((first_index, _)) = bad.next() {
            return Err(Error::NonFinite {
                what: what.into(),
                count: 1 + bad.count(),
                first_index,
            });
        }
        Ok(())
    }

    /// Fails with [`Error::ShapeMismatch`] unless `other` has the same sample shape.
    pub fn check_same_sample_shape(&self, other: &DynTensor, what: &str) -> Result<()> {
        if self.sample_shape() != other.sample_shape() {
            return Err(Error::ShapeMismatch {
                what: what.into(),
                expected: self.sample_shape().to_vec(),
                got: other.sample_shape().to_vec(),
            });
        }
        Ok(())
    }
}

impl<const D: usize> From<Tensor<D>> for DynTensor {
    fn from(tensor: Tensor<D>) -> Self {
        DynTensor::new(tensor)
    }
}
