//! ReLU under a [`ReluPolicy`]: Guided Backpropagation and Deconvolution change only the backward
//! pass of ReLUs, which no composition of ordinary ops can express (their backward is non-linear
//! in the incoming gradient), so they are a backend extension with a hand-written autodiff rule.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::model::ReluPolicy;

/// ReLU forwards whose backward pass follows Guided Backpropagation or Deconvolution.
///
/// Forward, both are the ordinary ReLU; backends without autodiff use that default body.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Remote: cfg(feature = "remote"),
    Autodiff,
)]
pub trait ReluPolicyOps: Backend {
    /// ReLU whose gradient is `relu(grad) * [x > 0]`.
    fn guided_relu(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(tensor)
    }
    /// ReLU whose gradient is `relu(grad)`.
    fn deconvolution_relu(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(tensor)
    }
}

#[cfg(feature = "flex")]
impl ReluPolicyOps for burn::backend::Flex {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ReluPolicyOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so the server only ever sees ordinary ReLUs: the default
// bodies are all a remote device needs, and no custom op has to be registered on the server.
#[cfg(feature = "remote")]
impl ReluPolicyOps for burn::backend::Remote {}

mod autodiff {
    use super::ReluPolicyOps;
    use burn::backend::Backend;
    use burn::backend::tensor::FloatTensor;
    use burn_autodiff::Autodiff;
    use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
    use burn_autodiff::grads::Gradients;
    use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};

    #[derive(Debug)]
    struct PolicyRelu {
        guided: bool,
    }

    impl<B: Backend> Backward<B, 1> for PolicyRelu {
        /// The forward output, whose sign is the input's for a ReLU.
        type State = Option<FloatTensor<B>>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let output = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                let grad = B::relu(grad);
                match output {
                    Some(output) if self.guided => B::relu_backward(output, grad),
                    _ => grad,
                }
            });
        }
    }

    fn policy_relu<B: Backend, C: CheckpointStrategy>(
        tensor: FloatTensor<Autodiff<B, C>>,
        guided: bool,
    ) -> FloatTensor<Autodiff<B, C>> {
        let op = PolicyRelu { guided };
        match op.prepare::<C>([tensor.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::relu(tensor.into_primitive());
                let state = guided.then(|| output.clone());
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::relu(tensor.into_primitive())),
        }
    }

    impl<B: Backend, C: CheckpointStrategy> ReluPolicyOps for Autodiff<B, C> {
        fn guided_relu(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
            policy_relu::<B, C>(tensor, true)
        }
        fn deconvolution_relu(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
            policy_relu::<B, C>(tensor, false)
        }
    }
}

/// Applies a ReLU whose backward pass follows `policy`.
pub fn relu_with_policy<const D: usize>(x: Tensor<D>, policy: ReluPolicy) -> Tensor<D> {
    use burn::backend::Dispatch;
    match policy {
        ReluPolicy::Standard => relu(x),
        ReluPolicy::DeepLift => crate::deeplift::rescale(x, relu),
        ReluPolicy::Lrp(_) => crate::lrp::pass(x, relu),
        ReluPolicy::Guided => {
            Tensor::from_dispatch(<Dispatch as ReluPolicyOps>::guided_relu(x.into_dispatch()))
        }
        ReluPolicy::Deconvolution => Tensor::from_dispatch(
            <Dispatch as ReluPolicyOps>::deconvolution_relu(x.into_dispatch()),
        ),
    }
}
