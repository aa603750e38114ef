//! Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"):
//! how much each token's final representation draws on each input token, through every layer.
//!
//! Per layer, the heads' attention probabilities `[heads, t, t]` are fused (mean, max or min
//! over heads), the lowest `discard_ratio` of the fused map's weights are zeroed (all but the
//! class token's attention to itself, flat index 0, as the popular vit-explain code does), the
//! residual connection
//! is added as `0.5 A + 0.5 I`, and each row is renormalised to sum to one. The rollout is the
//! product `A_L ... A_1`. Rows are normalised by their own sums: vit-explain divides by
//! `a.sum(dim=-1)` without `keepdim`, which broadcasts the row sums along the columns (a
//! column-wise division) unless the matrix is symmetric.
//!
//! [`relevance`] is Chefer, Gur & Wolf 2021 ("Generic Attention-model Explainability for
//! Interpreting Bi-Modal and Encoder-Decoder Transformers", rules 5 and 6 for self-attention):
//! starting from `R = I`, each layer adds `Ā R` with `Ā = mean_h((∇A ⊙ A)⁺)`, the heads'
//! attention weighted by the target's gradient with respect to it, negatives dropped.

use firelight_core::{Error, Result};

/// How the heads of a layer are fused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeadFusion {
    /// The mean over heads (Abnar & Zuidema).
    #[default]
    Mean,
    /// The maximum over heads.
    Max,
    /// The minimum over heads.
    Min,
}

/// A square matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Square {
    /// Side length.
    pub n: usize,
    /// `n * n` values, row-major.
    pub values: Vec<f32>,
}

impl Square {
    /// The identity matrix of side `n`.
    pub fn identity(n: usize) -> Self {
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        Self { n, values }
    }

    fn matmul(&self, other: &Square) -> Square {
        let n = self.n;
        let mut values = vec![0.0f32; n * n];
        for i in 0..n {
            for k in 0..n {
                let a = self.values[i * n + k];
                if a == 0.0 {
                    continue;
                }
                for j in 0..n {
                    values[i * n + j] += a * other.values[k * n + j];
                }
            }
        }
        Square { n, values }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.n..(i + 1) * self.n]
    }

    /// The mean of the rows: what a mean-pooled output draws on each token.
    pub fn mean_row(&self) -> Vec<f32> {
        let mut mean = vec![0.0f32; self.n];
        for i in 0..self.n {
            for (m, v) in mean.iter_mut().zip(self.row(i)) {
                *m += v / self.n as f32;
            }
        }
        mean
    }

    /// The top-left `k x k` block (the first `k` tokens).
    pub fn leading(&self, k: usize) -> Square {
        let k = k.min(self.n);
        let values = (0..k)
            .flat_map(|i| self.row(i)[..k].iter().copied())
            .collect();
        Square { n: k, values }
    }
}

/// What a model's output reads from its last layer's tokens, to turn a token-to-token matrix
/// into one score per input token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Readout {
    /// The first token's row (BERT's `[CLS]`, a ViT's class token).
    #[default]
    ClassToken,
    /// The mean of the rows (a mean-pooled output such as sentence-transformers').
    MeanPooled,
}

impl Readout {
    /// The per-token scores `matrix` gives under this readout.
    pub fn read(self, matrix: &Square) -> Vec<f32> {
        match self {
            Readout::ClassToken => matrix.row(0).to_vec(),
            Readout::MeanPooled => matrix.mean_row(),
        }
    }
}

/// Fuses one layer's heads, `attention` `[heads, t, t]` flattened.
pub fn fuse_heads(attention: &[f32], heads: usize, fusion: HeadFusion) -> Result<Square> {
    if heads == 0 || !attention.len().is_multiple_of(heads) {
        return Err(Error::Model(format!(
            "attention of {} values does not split into {heads} heads",
            attention.len()
        )));
    }
    let per = attention.len() / heads;
    let n = (per as f64).sqrt().round() as usize;
    if n * n != per {
        return Err(Error::Model(format!(
            "a head's attention has {per} values: not a square token-to-token map"
        )));
    }
    let values = (0..per)
        .map(|e| {
            let head = |h: usize| attention[h * per + e];
            match fusion {
                HeadFusion::Mean => (0..heads).map(head).sum::<f32>() / heads as f32,
                HeadFusion::Max => (0..heads).map(head).fold(f32::NEG_INFINITY, f32::max),
                HeadFusion::Min => (0..heads).map(head).fold(f32::INFINITY, f32::min),
            }
        })
        .collect();
    Ok(Square { n, values })
}

/// The rollout of `layers` (each `[heads, t, t]` flattened, first layer first).
pub fn rollout(
    layers: &[Vec<f32>],
    heads: usize,
    fusion: HeadFusion,
    discard_ratio: f32,
) -> Result<Square> {
    if !(0.0..1.0).contains(&discard_ratio) {
        return Err(Error::parameter(
            "discard_ratio",
            discard_ratio,
            "must be in [0, 1)",
        ));
    }
    let mut result: Option<Square> = None;
    for attention in layers {
        let mut a = fuse_heads(attention, heads, fusion)?;
        let n = a.n;
        if let Some(r) = &result
            && r.n != n
        {
            return Err(Error::Model(format!(
                "layers attend over {} and {n} tokens",
                r.n
            )));
        }
        // Zero the lowest `discard_ratio` of the flattened map's weights, flat index 0 kept.
        let drop = ((n * n) as f32 * discard_ratio) as usize;
        if drop > 0 {
            let mut order: Vec<usize> = (0..n * n).collect();
            order.sort_by(|&x, &y| a.values[x].total_cmp(&a.values[y]).then(x.cmp(&y)));
            for &e in order.iter().take(drop) {
                if e != 0 {
                    a.values[e] = 0.0;
                }
            }
        }
        for i in 0..n {
            for j in 0..n {
                let v = 0.5 * a.values[i * n + j] + if i == j { 0.5 } else { 0.0 };
                a.values[i * n + j] = v;
            }
            let sum: f32 = a.row(i).iter().sum();
            for j in 0..n {
                a.values[i * n + j] /= sum;
            }
        }
        result = Some(match result {
            None => a,
            Some(r) => a.matmul(&r),
        });
    }
    result.ok_or_else(|| Error::Model("no attention layers to roll out".into()))
}

/// Chefer et al.'s relevance from every layer's attention probabilities and the target's
/// gradients with respect to them (each `[heads, t, t]` flattened, first layer first):
/// `R = I`, then per layer `R += mean_h((∇A ⊙ A)⁺) R`.
pub fn relevance(attention: &[Vec<f32>], gradients: &[Vec<f32>], heads: usize) -> Result<Square> {
    if attention.is_empty() {
        return Err(Error::Model(
            "no attention layers to take relevance from".into(),
        ));
    }
    if attention.len() != gradients.len() {
        return Err(Error::Model(format!(
            "{} attention layers but {} gradients",
            attention.len(),
            gradients.len()
        )));
    }
    let mut r: Option<Square> = None;
    for (a, g) in attention.iter().zip(gradients) {
        if a.len() != g.len() {
            return Err(Error::Model(format!(
                "attention of {} values with a gradient of {}",
                a.len(),
                g.len()
            )));
        }
        let weighted: Vec<f32> = a.iter().zip(g).map(|(a, g)| (a * g).max(0.0)).collect();
        let fused = fuse_heads(&weighted, heads, HeadFusion::Mean)?;
        let current = match r {
            Some(current) if current.n == fused.n => current,
            Some(current) => {
                return Err(Error::Model(format!(
                    "layers attend over {} and {} tokens",
                    current.n, fused.n
                )));
            }
            None => Square::identity(fused.n),
        };
        let added = fused.matmul(&current);
        let values = current
            .values
            .iter()
            .zip(&added.values)
            .map(|(r, a)| r + a)
            .collect();
        r = Some(Square {
            n: current.n,
            values,
        });
    }
    Ok(r.expect("at least one layer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_attention_rolls_out_to_a_stochastic_matrix() {
        let n = 4;
        let layer = vec![1.0 / n as f32; 2 * n * n];
        let r = rollout(&[layer.clone(), layer], 2, HeadFusion::Mean, 0.0).unwrap();
        for i in 0..n {
            let sum: f32 = r.row(i).iter().sum();
            assert!((sum - 1.0).abs() < 1e-6);
        }
        assert_eq!(
            Square::identity(2).matmul(&Square::identity(2)),
            Square::identity(2)
        );
    }

    #[test]
    fn relevance_without_positive_gradient_is_the_identity() {
        // (∇A ⊙ A)⁺ = 0 everywhere: nothing is added to R = I, and every token explains itself.
        let n = 3;
        let layer = vec![1.0 / n as f32; n * n];
        let gradient = vec![-1.0; n * n];
        let r = relevance(&[layer.clone(), layer], &[gradient.clone(), gradient], 1).unwrap();
        assert_eq!(r, Square::identity(n));
        assert_eq!(Readout::MeanPooled.read(&r), vec![1.0 / 3.0; 3]);
        assert_eq!(r.leading(2), Square::identity(2));
    }
}
