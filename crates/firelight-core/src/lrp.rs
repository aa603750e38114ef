//! Layer-wise Relevance Propagation (Bach et al., 2015; Montavon et al., 2019) as zennit applies
//! it: the target's output is seeded with one and every layer passes relevance, not gradient,
//! backwards, by a rule chosen per layer by a [`LrpComposite`].
//!
//! Like DeepLift's ([`crate::deeplift`]), each rule is written as a forward function whose
//! backward pass is the rule: `detach(z) + M(x - detach(x))`, `M` linear. The forward value is
//! the layer's own output `z`; autodiff passes back `M`'s transpose, which maps the relevance at
//! the output to the relevance at the input. A model opts in by routing its affine layers
//! through [`affine`], its activations through [`pass`] and its average pooling through
//! [`norm`] under [`ReluPolicy::Lrp`](crate::ReluPolicy); the ONNX interpreter does it per node.

use burn::tensor::Tensor;

/// zennit's default stabiliser of the rules other than Epsilon.
pub const STABILIZER: f64 = 1e-6;

/// One LRP rule for an affine layer (a convolution or a fully connected layer), zennit's names
/// and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrpRule {
    /// `R_in = x * W^T (R / (z + eps sign z))` (zennit `Epsilon`, `epsilon = 1e-6`).
    Epsilon(f64),
    /// Positive contributions only (zennit `ZPlus`, AlphaBeta with alpha 1, beta 0).
    ZPlus,
    /// `alpha` times the positive contributions minus `beta` times the negative ones (zennit
    /// `AlphaBeta`; `alpha - beta = 1`).
    AlphaBeta {
        /// The weight of the positive part.
        alpha: f64,
        /// The weight of the negative part.
        beta: f64,
    },
    /// Positive weights boosted by `gamma` (zennit's generalised `Gamma`, 0.25).
    Gamma(f64),
    /// Relevance spread uniformly over the layer's receptive field (zennit `Flat`).
    Flat,
    /// Relevance spread by the squared weights (zennit `WSquare`).
    WSquare,
    /// For inputs bounded by `low <= x <= high` (zennit `ZBox`, Montavon et al. 2017): the
    /// contributions measured from the box's corner that minimises the output,
    /// `z = Wx + b - (W+ low + b+) - (W- high + b-)`.
    ZBox {
        /// The lowest possible input value.
        low: f64,
        /// The highest possible input value.
        high: f64,
    },
}

/// Which affine layer a rule is chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineKind {
    /// A convolution.
    Convolution,
    /// A fully connected layer (ONNX `Gemm`).
    FullyConnected,
}

/// A rule per layer type and position, as zennit's composites map them. Activations pass
/// relevance unchanged (`Pass`), average pooling normalises (`Norm`), max pooling passes it to
/// the arg-max (its gradient).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum LrpComposite {
    /// zennit `EpsilonPlusFlat`: Flat at the first affine layer, ZPlus at convolutions, Epsilon
    /// at fully connected layers.
    #[default]
    EpsilonPlusFlat,
    /// zennit `EpsilonAlpha2Beta1Flat`: as EpsilonPlusFlat with AlphaBeta(2, 1) at convolutions.
    EpsilonAlpha2Beta1Flat,
    /// WSquare at the first affine layer, Gamma(0.25) at convolutions, Epsilon(0.25) at fully
    /// connected layers.
    EpsilonGammaWSquare,
    /// Epsilon(1e-6) at every affine layer (LRP-0 up to the stabiliser).
    Epsilon,
    /// zennit `EpsilonGammaBox`: ZBox at the first convolution (inputs bounded by `low` and
    /// `high`), Gamma(0.25) at the other convolutions, Epsilon at fully connected layers.
    EpsilonGammaBox {
        /// The lowest possible input value (zennit's examples: -3 for normalised images).
        low: f64,
        /// The highest possible input value (3).
        high: f64,
    },
    /// Captum's `LRP` with its default rules: Epsilon(1e-9) at every affine layer, and max and
    /// average pooling by the epsilon rule too (`R_in = x * J^T (R / z)`, `J` the pool's
    /// Jacobian), so a max pool whose winner is zero passes no relevance. Captum seeds the
    /// target with its own output value, firelight with one: multiply by the target's output to
    /// get Captum's numbers.
    Captum,
}

impl LrpComposite {
    /// Every composite, in the order `--help` lists them.
    pub const ALL: [LrpComposite; 6] = [
        LrpComposite::EpsilonPlusFlat,
        LrpComposite::EpsilonAlpha2Beta1Flat,
        LrpComposite::EpsilonGammaWSquare,
        LrpComposite::Epsilon,
        LrpComposite::EPSILON_GAMMA_BOX,
        LrpComposite::Captum,
    ];

    /// EpsilonGammaBox with the bounds of zennit's examples, -3 and 3 (inputs normalised to
    /// zero mean and unit variance).
    pub const EPSILON_GAMMA_BOX: LrpComposite = LrpComposite::EpsilonGammaBox {
        low: -3.0,
        high: 3.0,
    };

    /// Whether pooling takes the epsilon rule (Captum) instead of passing relevance to the
    /// max pool's winner (zennit's gradient) and normalising average pools.
    pub fn pools_by_epsilon(self) -> bool {
        self == LrpComposite::Captum
    }

    /// The composite's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LrpComposite::EpsilonPlusFlat => "epsilon_plus_flat",
            LrpComposite::EpsilonAlpha2Beta1Flat => "epsilon_alpha2_beta1_flat",
            LrpComposite::EpsilonGammaWSquare => "epsilon_gamma_wsquare",
            LrpComposite::Epsilon => "epsilon",
            LrpComposite::EpsilonGammaBox { .. } => "epsilon_gamma_box",
            LrpComposite::Captum => "captum",
        }
    }

    /// The rule for an affine layer of `kind`; `first` is the model's first affine layer.
    pub fn rule(self, kind: AffineKind, first: bool) -> LrpRule {
        use AffineKind::*;
        match (self, kind, first) {
            (LrpComposite::Epsilon, _, _) => LrpRule::Epsilon(1e-6),
            (LrpComposite::Captum, _, _) => LrpRule::Epsilon(1e-9),
            (LrpComposite::EpsilonGammaBox { low, high }, Convolution, true) => {
                LrpRule::ZBox { low, high }
            }
            (LrpComposite::EpsilonGammaBox { .. }, Convolution, _) => LrpRule::Gamma(0.25),
            (LrpComposite::EpsilonGammaBox { .. }, FullyConnected, _) => LrpRule::Epsilon(1e-6),
            (LrpComposite::EpsilonGammaWSquare, _, true) => LrpRule::WSquare,
            (_, _, true) => LrpRule::Flat,
            (LrpComposite::EpsilonPlusFlat, Convolution, _) => LrpRule::ZPlus,
            (LrpComposite::EpsilonAlpha2Beta1Flat, Convolution, _) => LrpRule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
            (LrpComposite::EpsilonGammaWSquare, Convolution, _) => LrpRule::Gamma(0.25),
            (LrpComposite::EpsilonGammaWSquare, FullyConnected, _) => LrpRule::Epsilon(0.25),
            (_, FullyConnected, _) => LrpRule::Epsilon(1e-6),
        }
    }
}

/// zennit's `stabilize`: `t + eps * sign(t)`, with `sign(0) = 1`.
fn stabilize<const D: usize>(t: Tensor<D>, eps: f64) -> Tensor<D> {
    let sign = t.clone().sign() + t.clone().equal_elem(0.0).float();
    t + sign * eps
}

/// An affine layer `layer(x, w, b)` under `rule`. `layer` must be affine in `x` for fixed
/// weights (a convolution or a matrix product, plus the bias when given).
pub fn affine<const D: usize, const K: usize, const O: usize>(
    rule: LrpRule,
    x: Tensor<D>,
    w: Tensor<K>,
    b: Option<Tensor<1>>,
    layer: impl Fn(Tensor<D>, Tensor<K>, Option<Tensor<1>>) -> Tensor<O>,
) -> Tensor<O> {
    let z = layer(x.clone(), w.clone(), b.clone());
    if !x.is_tracked() {
        return z;
    }
    let xd = x.clone().detach();
    let v = x - xd.clone();
    let zd = z.detach();
    let (w, b) = (w.detach(), b.map(Tensor::detach));
    let lin = |input: Tensor<D>, w: Tensor<K>| layer(input, w, None);
    let (xp, xn) = (xd.clone().clamp_min(0.0), xd.clone().clamp_max(0.0));
    let (wp, wn) = (w.clone().clamp_min(0.0), w.clone().clamp_max(0.0));
    let (bp, bn) = (
        b.clone().map(|b| b.clamp_min(0.0)),
        b.clone().map(|b| b.clamp_max(0.0)),
    );
    let m = match rule {
        LrpRule::Epsilon(eps) => lin(xd * v, w) / stabilize(zd.clone(), eps),
        LrpRule::ZPlus => {
            let s = stabilize(
                layer(xp.clone(), wp.clone(), bp) + lin(xn.clone(), wn.clone()),
                STABILIZER,
            );
            (lin(xp * v.clone(), wp) + lin(xn * v, wn)) / s
        }
        LrpRule::AlphaBeta { alpha, beta } => {
            let s_pos = stabilize(
                layer(xp.clone(), wp.clone(), bp) + lin(xn.clone(), wn.clone()),
                STABILIZER,
            );
            let s_neg = stabilize(
                layer(xp.clone(), wn.clone(), bn) + lin(xn.clone(), wp.clone()),
                STABILIZER,
            );
            let positive =
                lin(xp.clone() * v.clone(), wp.clone()) + lin(xn.clone() * v.clone(), wn.clone());
            let negative = lin(xp * v.clone(), wn) + lin(xn * v, wp);
            positive * alpha / s_pos - negative * beta / s_neg
        }
        LrpRule::Gamma(gamma) => {
            let up = w.clone() + wp.clone() * gamma;
            let down = w.clone() + wn.clone() * gamma;
            let b_up = b.clone().zip(bp).map(|(b, bp)| b + bp * gamma);
            let b_down = b.clone().zip(bn).map(|(b, bn)| b + bn * gamma);
            let positive_out = zd.clone().greater_elem(0.0).float();
            let negative_out = zd.clone().lower_elem(0.0).float();
            let s_pos = stabilize(
                layer(xp.clone(), up.clone(), b_up) + lin(xn.clone(), down.clone()),
                STABILIZER,
            );
            let s_neg = stabilize(
                layer(xp.clone(), down.clone(), b_down) + lin(xn.clone(), up.clone()),
                STABILIZER,
            );
            let pos =
                lin(xp.clone() * v.clone(), up.clone()) + lin(xn.clone() * v.clone(), down.clone());
            let neg = lin(xp * v.clone(), down) + lin(xn * v, up);
            positive_out * pos / s_pos + negative_out * neg / s_neg
        }
        LrpRule::Flat => {
            let ones = w.ones_like();
            let s = stabilize(lin(xd.ones_like(), ones.clone()), STABILIZER);
            lin(v, ones) / s
        }
        LrpRule::ZBox { low, high } => {
            let (low, high) = (xd.ones_like() * low, xd.ones_like() * high);
            let s = stabilize(
                zd.clone()
                    - layer(low.clone(), wp.clone(), bp)
                    - layer(high.clone(), wn.clone(), bn),
                STABILIZER,
            );
            (lin(xd * v.clone(), w) - lin(low * v.clone(), wp) - lin(high * v, wn)) / s
        }
        LrpRule::WSquare => {
            let squared = w.clone() * w;
            let s = stabilize(
                layer(xd.ones_like(), squared.clone(), b.map(|b| b.clone() * b)),
                STABILIZER,
            );
            lin(v, squared) / s
        }
    };
    zd + m
}

/// An activation `f` that passes relevance unchanged (zennit `Pass`): forward `f(x)`, backward
/// the identity.
pub fn pass<const D: usize>(x: Tensor<D>, f: impl Fn(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    let y = f(x.clone());
    if !x.is_tracked() {
        return y;
    }
    let v = x.clone() - x.detach();
    y.detach() + v
}

/// A linear layer without weights (average pooling, a sum) under zennit's `Norm` rule: the
/// relevance at each output goes to the inputs in proportion to their contribution.
pub fn norm<const D: usize, const O: usize>(
    x: Tensor<D>,
    layer: impl Fn(Tensor<D>) -> Tensor<O>,
) -> Tensor<O> {
    norm_with(x, STABILIZER, layer)
}

/// [`norm`] with the stabiliser `eps`: for a linear pool this is also Captum's epsilon rule
/// (`R_in = x * J^T (R / (z + eps sign z))` with `J` the pool itself).
pub fn norm_with<const D: usize, const O: usize>(
    x: Tensor<D>,
    eps: f64,
    layer: impl Fn(Tensor<D>) -> Tensor<O>,
) -> Tensor<O> {
    let z = layer(x.clone());
    if !x.is_tracked() {
        return z;
    }
    let xd = x.clone().detach();
    let v = x - xd.clone();
    let zd = z.detach();
    zd.clone() + layer(xd * v) / stabilize(zd, eps)
}

/// A max pool `pool` under Captum's epsilon rule: `R_in = x * J^T (R / (z + eps sign z))`, `J`
/// the pool's Jacobian at `x` (fixed: the selection of each window's winner), which
/// `at_winners(x, u)` applies to `u`. Linear pools take [`norm_with`].
pub fn max_pool_epsilon<const D: usize>(
    x: Tensor<D>,
    eps: f64,
    pool: impl Fn(Tensor<D>) -> Tensor<D>,
    at_winners: impl Fn(Tensor<D>, Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let z = pool(x.clone());
    if !x.is_tracked() {
        return z;
    }
    let xd = x.clone().detach();
    let v = x - xd.clone();
    let zd = z.detach();
    zd.clone() + at_winners(xd.clone(), xd * v) / stabilize(zd, eps)
}

/// The sum `a + b` of two values that both depend on the input (a residual connection) under
/// zennit's `Norm` rule for sums: each output's relevance goes to the two terms in proportion to
/// their share of the sum (zennit's ResNet canonizer puts this rule on every block's addition).
pub fn sum_norm<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let z = a.clone() + b.clone();
    if !(a.is_tracked() && b.is_tracked()) {
        return z;
    }
    let (ad, bd) = (a.clone().detach(), b.clone().detach());
    let (va, vb) = (a - ad.clone(), b - bd.clone());
    let zd = z.detach();
    zd.clone() + (ad * va + bd * vb) / stabilize(zd, STABILIZER)
}
