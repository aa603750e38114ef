//! The f32 buffers of flex tensors, as firelight's CPU kernels ([`crate::conv`],
//! [`crate::norm`], [`crate::scale`]) read and reuse them.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, TensorData};
use std::borrow::Cow;

/// `tensor`'s values in row-major order, borrowed when they already are.
pub(crate) fn values(tensor: &FloatTensor<Flex>) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(tensor.to_contiguous().storage::<f32>().to_vec()),
    }
}

/// A flex tensor of `values` in row-major order.
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape.into()))
}

/// `tensor` itself when it owns a contiguous buffer starting at its first element (a gradient
/// just computed usually does), so a kernel may overwrite it; a contiguous copy otherwise.
pub(crate) fn writable(tensor: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if tensor.is_unique() && tensor.is_contiguous() && tensor.layout().start_offset() == 0 {
        return tensor;
    }
    // A copy, or a second handle on a contiguous buffer that `storage_mut` then copies on
    // write once `tensor` has let go of it.
    let contiguous = tensor.to_contiguous();
    drop(tensor);
    contiguous
}

/// `tensor`'s number of elements.
pub(crate) fn len(tensor: &FloatTensor<Flex>) -> usize {
    tensor.shape().num_elements()
}
