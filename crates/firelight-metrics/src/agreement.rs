//! Do methods agree? For maps of the same input by several methods, the rank correlation of every
//! pair and the overlap of their `k` most salient positions.

use firelight_core::{Error, Result};

use crate::similarity::spearman;

/// Pairwise agreement of several methods' maps of one input.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// The methods, in the order of the rows and columns.
    pub names: Vec<String>,
    /// Spearman's rank correlation of each pair (1 on the diagonal).
    pub spearman: Vec<Vec<f32>>,
    /// The share of each pair's `k` most salient positions they have in common.
    pub top_k: Vec<Vec<f32>>,
    /// The `k` of `top_k`.
    pub k: usize,
}

/// The agreement of `maps` (name, one value per position; all of one length), the top `k`
/// positions by value (ties in position order).
pub fn agreement(maps: &[(String, Vec<f32>)], k: usize) -> Result<Agreement> {
    let positions = maps.first().map_or(0, |(_, m)| m.len());
    if maps.iter().any(|(_, m)| m.len() != positions) || positions == 0 {
        return Err(Error::ShapeMismatch {
            what: "maps compared for agreement (one value per position, all alike)".into(),
            expected: vec![positions],
            got: maps.iter().map(|(_, m)| m.len()).collect(),
        });
    }
    if k == 0 || k > positions {
        return Err(Error::parameter(
            "k",
            k,
            format!("must be between 1 and the {positions} positions"),
        ));
    }
    let top = |m: &[f32]| {
        let mut order: Vec<usize> = (0..m.len()).collect();
        order.sort_by(|&a, &b| m[b].total_cmp(&m[a]));
        let mut chosen = vec![false; m.len()];
        for &i in &order[..k] {
            chosen[i] = true;
        }
        chosen
    };
    let tops: Vec<Vec<bool>> = maps.iter().map(|(_, m)| top(m)).collect();
    let n = maps.len();
    let mut rho = vec![vec![1.0f32; n]; n];
    let mut shared = vec![vec![1.0f32; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let r = spearman(&maps[i].1, &maps[j].1) as f32;
            let common = tops[i]
                .iter()
                .zip(&tops[j])
                .filter(|(a, b)| **a && **b)
                .count();
            let o = common as f32 / k as f32;
            (rho[i][j], rho[j][i]) = (r, r);
            (shared[i][j], shared[j][i]) = (o, o);
        }
    }
    Ok(Agreement {
        names: maps.iter().map(|(n, _)| n.clone()).collect(),
        spearman: rho,
        top_k: shared,
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_maps_agree_and_reversed_ones_do_not() {
        let a: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let b: Vec<f32> = a.iter().map(|v| v * v).collect();
        let c: Vec<f32> = a.iter().rev().copied().collect();
        let maps = vec![("a".into(), a), ("b".into(), b), ("c".into(), c)];
        let m = agreement(&maps, 3).unwrap();
        assert!((m.spearman[0][1] - 1.0).abs() < 1e-6 && (m.spearman[0][2] + 1.0).abs() < 1e-6);
        assert_eq!((m.top_k[0][1], m.top_k[0][2]), (1.0, 0.0));
        assert!(agreement(&maps, 11).is_err());
    }
}
