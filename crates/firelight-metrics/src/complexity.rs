//! How concentrated an attribution is, as Quantus measures it: sparseness (Chalasani et al.
//! 2020, the Gini index of the absolute attributions: 1 for one feature, 0 for all alike) and
//! complexity (Bhatt et al. 2020, the entropy of each feature's share of the absolute total).

use firelight_core::{DynTensor, Result};

/// Quantus's `Sparseness` of each sample: the Gini index of `|a| + 1e-7`, sorted.
pub fn sparseness(attributions: &DynTensor) -> Result<Vec<f32>> {
    per_sample(attributions, |row| {
        let mut a: Vec<f64> = row.iter().map(|v| f64::from(v.abs())).collect();
        a.sort_by(f64::total_cmp);
        let n = a.len() as f64;
        let (mut weighted, mut total) = (0.0, 0.0);
        for (i, v) in a.iter().enumerate() {
            let v = v + 1e-7;
            weighted += (2.0 * (i as f64 + 1.0) - n - 1.0) * v;
            total += v;
        }
        weighted / (n * total)
    })
}

/// Quantus's `Complexity` of each sample: the entropy (natural log) of `|a| / sum |a|`.
pub fn complexity(attributions: &DynTensor) -> Result<Vec<f32>> {
    per_sample(attributions, |row| {
        let total: f64 = row.iter().map(|v| f64::from(v.abs())).sum();
        if total == 0.0 {
            return f64::NAN;
        }
        row.iter()
            .map(|v| f64::from(v.abs()) / total)
            .filter(|&p| p > 0.0)
            .map(|p| -p * p.ln())
            .sum()
    })
}

fn per_sample(t: &DynTensor, f: impl Fn(&[f32]) -> f64) -> Result<Vec<f32>> {
    let width = t.features();
    let values = t.to_vec()?;
    Ok(values
        .chunks(width.max(1))
        .take(t.batch())
        .map(|row| f(row) as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use firelight_core::Device;

    #[test]
    fn one_feature_is_sparse_and_simple_and_all_alike_is_neither() {
        let device = Device::flex();
        let t = DynTensor::from_vec(
            vec![0.0, 0.0, 0.0, 5.0, 1.0, 1.0, 1.0, 1.0],
            vec![2, 4],
            &device,
        )
        .unwrap();
        let s = sparseness(&t).unwrap();
        assert!(s[0] > 0.74 && s[1].abs() < 1e-6, "{s:?}");
        let c = complexity(&t).unwrap();
        assert!(
            c[0].abs() < 1e-9 && (c[1] - 4f32.ln()).abs() < 1e-6,
            "{c:?}"
        );
    }
}
