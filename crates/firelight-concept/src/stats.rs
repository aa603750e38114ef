//! The significance test of TCAV: a two-sided t-test of concept scores against random scores,
//! and the Bonferroni correction.

use firelight_core::{Error, Result};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The result of a two-sample t-test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    /// The t statistic (`NaN` when both samples are constant and equal).
    pub statistic: f64,
    /// The two-sided p-value.
    pub p_value: f64,
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Student's two-sample t-test with pooled variance, two-sided: `scipy.stats.ttest_ind(a, b)`
/// (what Captum's TCAV tutorial uses).
///
/// Needs at least two values in each sample. When both samples are constant, scipy answers NaN;
/// here the p-value is then 1 when the means are equal and 0 when they differ, so that a concept
/// that always scores 1 against random sets that always score 0 is significant.
pub fn ttest_ind(a: &[f64], b: &[f64]) -> Result<TTest> {
    if a.len() < 2 || b.len() < 2 {
        return Err(Error::parameter(
            "n_runs",
            a.len().min(b.len()),
            "a t-test needs at least 2 scores on each side (2 random runs or more)",
        ));
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let df = na + nb - 2.0;
    let pooled = ((na - 1.0) * va + (nb - 1.0) * vb) / df;
    let se = (pooled * (1.0 / na + 1.0 / nb)).sqrt();
    if se == 0.0 || !se.is_finite() {
        let p_value = if ma == mb { 1.0 } else { 0.0 };
        let statistic = if ma == mb {
            f64::NAN
        } else {
            (ma - mb).signum() * f64::INFINITY
        };
        return Ok(TTest { statistic, p_value });
    }
    let statistic = (ma - mb) / se;
    let t = StudentsT::new(0.0, 1.0, df)
        .map_err(|e| Error::Model(format!("Student t distribution with {df} dof: {e}")))?;
    let p_value = (2.0 * t.sf(statistic.abs())).min(1.0);
    Ok(TTest { statistic, p_value })
}

/// Bonferroni correction: `p * tests`, capped at 1.
pub fn bonferroni(p_value: f64, tests: usize) -> f64 {
    (p_value * tests.max(1) as f64).min(1.0)
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    if x.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    if x.len() == 1 {
        return (x[0], 0.0);
    }
    let (m, v) = mean_var(x);
    (m, v.sqrt())
}
