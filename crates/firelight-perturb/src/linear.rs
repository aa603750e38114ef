//! The interpretable models LIME and KernelSHAP fit: weighted linear regressions with an
//! intercept, solved as scikit-learn solves them (Captum fits them with scikit-learn).
//!
//! Every fit centres the data with the sample-weighted means, scales each row by the square root
//! of its weight, solves without intercept, and sets `intercept = ybar - xbar . coef`:
//!
//! - [`InterpretableModel::LinearRegression`] (`sklearn.linear_model.LinearRegression`):
//!   least squares, the minimum-norm solution when the data are rank-deficient (singular values
//!   under `1e-6` times the largest count as zero, as `scipy.linalg.lstsq(cond=1e-6)`);
//! - [`InterpretableModel::Ridge`] (`Ridge`): `sum_i w_i (y_i - b - x_i . c)^2 + alpha |c|^2`;
//! - [`InterpretableModel::Lasso`] (`Lasso`):
//!   `1 / (2 sum(w)) sum_i w_i (y_i - b - x_i . c)^2 + alpha |c|_1`, by cyclic coordinate
//!   descent with scikit-learn's stopping rule (duality gap under `tol * |y|^2`, `tol = 1e-4`,
//!   at most 1000 sweeps) and gap-safe screening, so it stops where scikit-learn stops.
//!
//! Everything is computed in `f64`.

use firelight_core::{Error, Result};

/// A fitted linear model `y = intercept + coef . x`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearFit {
    /// One coefficient per interpretable feature.
    pub coef: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

/// A weighted linear model with intercept, fitted to interpretable samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InterpretableModel {
    /// L1-penalised least squares (LIME's default, `alpha = 0.01`), scikit-learn's `Lasso`.
    Lasso {
        /// The L1 penalty.
        alpha: f64,
    },
    /// L2-penalised least squares, scikit-learn's `Ridge` (its default `alpha` is 1.0).
    Ridge {
        /// The L2 penalty.
        alpha: f64,
    },
    /// Ordinary (weighted) least squares, scikit-learn's `LinearRegression` (KernelSHAP's).
    LinearRegression,
}

impl Default for InterpretableModel {
    /// Captum's LIME default, `SkLearnLasso(alpha=0.01)`.
    fn default() -> Self {
        InterpretableModel::Lasso { alpha: 0.01 }
    }
}

impl InterpretableModel {
    /// Fits `y ~ x` with sample weights `w`: `x` holds `n` rows of `m` features, row-major.
    pub fn fit(&self, x: &[f64], n: usize, m: usize, y: &[f64], w: &[f64]) -> Result<LinearFit> {
        if x.len() != n * m || y.len() != n || w.len() != n {
            return Err(Error::ShapeMismatch {
                what: "interpretable samples, outputs and weights".into(),
                expected: vec![n * m, n, n],
                got: vec![x.len(), y.len(), w.len()],
            });
        }
        if n == 0 {
            return Err(Error::parameter("n_samples", 0, "must be at least 1"));
        }
        if let Some(bad) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::parameter(
                "similarity",
                bad,
                "sample weights must be finite and non-negative",
            ));
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(Error::parameter(
                "similarity",
                "all zero",
                "at least one sample needs a positive weight",
            ));
        }
        if let Some(bad) = x.iter().chain(y).find(|v| !v.is_finite()) {
            return Err(Error::parameter(
                "interpretable samples",
                bad,
                "samples and outputs must be finite",
            ));
        }
        match *self {
            InterpretableModel::Lasso { alpha } => {
                check_alpha(alpha)?;
                // Lasso rescales the weights to sum to n first.
                let total: f64 = w.iter().sum();
                let w: Vec<f64> = w.iter().map(|v| v * n as f64 / total).collect();
                let c = Centred::new(x, n, m, y, &w);
                let coef = lasso_cd(&c, alpha * n as f64, 1e-4, 1000);
                Ok(c.fit(coef))
            }
            InterpretableModel::Ridge { alpha } => {
                check_alpha(alpha)?;
                let c = Centred::new(x, n, m, y, w);
                let coef = ridge(&c, alpha)?;
                Ok(c.fit(coef))
            }
            InterpretableModel::LinearRegression => {
                let c = Centred::new(x, n, m, y, w);
                let coef = min_norm_lstsq(&c.x, n, m, &c.y, 1e-6);
                Ok(c.fit(coef))
            }
        }
    }
}

fn check_alpha(alpha: f64) -> Result<()> {
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(Error::parameter(
            "alpha",
            alpha,
            "must be finite and non-negative",
        ));
    }
    Ok(())
}

/// Data centred with the weighted means and scaled by the square roots of the weights.
struct Centred {
    /// Column-major, `n` rows by `m` columns.
    x: Vec<f64>,
    y: Vec<f64>,
    n: usize,
    m: usize,
    x_mean: Vec<f64>,
    y_mean: f64,
}

impl Centred {
    fn new(x: &[f64], n: usize, m: usize, y: &[f64], w: &[f64]) -> Self {
        let total: f64 = w.iter().sum();
        let x_mean: Vec<f64> = (0..m)
            .map(|j| (0..n).map(|i| w[i] * x[i * m + j]).sum::<f64>() / total)
            .collect();
        let y_mean = (0..n).map(|i| w[i] * y[i]).sum::<f64>() / total;
        let root: Vec<f64> = w.iter().map(|v| v.sqrt()).collect();
        let mut xc = vec![0.0; n * m];
        for j in 0..m {
            for i in 0..n {
                xc[j * n + i] = (x[i * m + j] - x_mean[j]) * root[i];
            }
        }
        let yc = (0..n).map(|i| (y[i] - y_mean) * root[i]).collect();
        Self {
            x: xc,
            y: yc,
            n,
            m,
            x_mean,
            y_mean,
        }
    }

    fn column(&self, j: usize) -> &[f64] {
        &self.x[j * self.n..(j + 1) * self.n]
    }

    fn fit(&self, coef: Vec<f64>) -> LinearFit {
        let intercept = self.y_mean - dot(&self.x_mean, &coef);
        LinearFit { coef, intercept }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// scikit-learn's `enet_coordinate_descent` for `beta = 0`: minimises
/// `0.5 |y - X w|^2 + alpha |w|_1` by cyclic coordinate descent, checking the duality gap when a
/// sweep changes the coefficients by at most `tol` relative, with gap-safe screening.
fn lasso_cd(c: &Centred, alpha: f64, tol: f64, max_iter: usize) -> Vec<f64> {
    let (n, m) = (c.n, c.m);
    let y = &c.y;
    let norm2: Vec<f64> = (0..m).map(|j| dot(c.column(j), c.column(j))).collect();
    let mut w = vec![0.0; m];
    let mut r = y.clone();
    let mut xta = vec![0.0; m];
    let tol_gap = tol * dot(y, y);
    let screening = alpha > 0.0;

    let gap = |w: &[f64], r: &[f64], xta: &mut [f64]| -> (f64, f64) {
        let r_norm2 = dot(r, r);
        for (j, v) in xta.iter_mut().enumerate() {
            *v = dot(c.column(j), r);
        }
        if alpha == 0.0 {
            let g = dot(xta, xta);
            return (g, g);
        }
        let ry = dot(r, y);
        let dual_norm = xta.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let l1: f64 = w.iter().map(|v| v.abs()).sum();
        let primal = 0.5 * r_norm2 + alpha * l1;
        let scale = if dual_norm > alpha {
            alpha / dual_norm
        } else {
            1.0
        };
        let dual = -0.5 * scale * scale * r_norm2 + scale * ry;
        (primal - dual, dual_norm)
    };

    let (mut g, mut dual_norm) = gap(&w, &r, &mut xta);
    if g <= tol_gap {
        return w;
    }
    let mut active: Vec<usize> = (0..m).collect();
    let mut excluded = vec![false; m];
    // Gap Safe screening (Ndiaye et al. 2017): drop features that cannot be active at the optimum.
    let screen = |w: &mut [f64],
                  r: &mut [f64],
                  excluded: &mut [bool],
                  xta: &[f64],
                  g: f64,
                  dual_norm: f64,
                  first: bool|
     -> Vec<usize> {
        let mut active = Vec::with_capacity(m);
        for j in 0..m {
            if !first && excluded[j] {
                continue;
            }
            if first && norm2[j] == 0.0 {
                w[j] = 0.0;
                excluded[j] = true;
                continue;
            }
            let xj_theta = xta[j] / alpha.max(dual_norm);
            let d_j = (1.0 - xj_theta.abs()) / norm2[j].sqrt();
            if d_j <= (2.0 * g).sqrt() / alpha {
                active.push(j);
                excluded[j] = false;
            } else {
                if w[j] != 0.0 {
                    let col = c.column(j);
                    for i in 0..n {
                        r[i] += w[j] * col[i];
                    }
                    w[j] = 0.0;
                }
                excluded[j] = true;
            }
        }
        active
    };
    if screening {
        active = screen(&mut w, &mut r, &mut excluded, &xta, g, dual_norm, true);
    }
    for iter in 0..max_iter {
        let mut w_max = 0.0f64;
        let mut d_w_max = 0.0f64;
        for &j in &active {
            if norm2[j] == 0.0 {
                continue;
            }
            let col = c.column(j);
            let w_j = w[j];
            let tmp = dot(col, &r) + w_j * norm2[j];
            w[j] = tmp.signum() * (tmp.abs() - alpha).max(0.0) / norm2[j];
            if w[j] != w_j {
                let d = w_j - w[j];
                for i in 0..n {
                    r[i] += d * col[i];
                }
            }
            d_w_max = d_w_max.max((w[j] - w_j).abs());
            w_max = w_max.max(w[j].abs());
        }
        if w_max == 0.0 || d_w_max / w_max <= tol || iter == max_iter - 1 {
            (g, dual_norm) = gap(&w, &r, &mut xta);
            if g <= tol_gap {
                break;
            }
            if screening {
                active = screen(&mut w, &mut r, &mut excluded, &xta, g, dual_norm, false);
            }
        }
    }
    w
}

/// Ridge regression on centred, scaled data: `(X'X + alpha I) c = X'y`, or the dual
/// `c = X' (X X' + alpha I)^-1 y` when there are more features than samples.
fn ridge(c: &Centred, alpha: f64) -> Result<Vec<f64>> {
    let (n, m) = (c.n, c.m);
    if m <= n {
        let mut a = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                let v = dot(c.column(i), c.column(j));
                a[i * m + j] = v;
                a[j * m + i] = v;
            }
            a[i * m + i] += alpha;
        }
        let b: Vec<f64> = (0..m).map(|j| dot(c.column(j), &c.y)).collect();
        solve_spd(a, b, m)
    } else {
        let row = |i: usize| (0..m).map(move |j| c.x[j * n + i]);
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = row(i).zip(row(j)).map(|(a, b)| a * b).sum();
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += alpha;
        }
        let dual = solve_spd(k, c.y.clone(), n)?;
        Ok((0..m).map(|j| dot(c.column(j), &dual)).collect())
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (`k x k`, row-major) by Cholesky.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, k: usize) -> Result<Vec<f64>> {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::parameter(
                "alpha",
                "0",
                "the ridge system is singular: use a positive alpha",
            ));
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = v / d;
        }
    }
    for i in 0..k {
        let mut v = b[i];
        for p in 0..i {
            v -= a[i * k + p] * b[p];
        }
        b[i] = v / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut v = b[i];
        for p in i + 1..k {
            v -= a[p * k + i] * b[p];
        }
        b[i] = v / a[i * k + i];
    }
    Ok(b)
}

/// The minimum-norm least-squares solution of `X c = y` (`X` column-major, `n x m`), singular
/// values under `cond` times the largest counting as zero: `scipy.linalg.lstsq(cond=cond)`.
fn min_norm_lstsq(x: &[f64], n: usize, m: usize, y: &[f64], cond: f64) -> Vec<f64> {
    if m <= n {
        // X = U S V': c = V S+ U' y.
        let svd = jacobi_svd(x.to_vec(), n, m);
        let cut = cond * svd.sigma.iter().fold(0.0f64, |a, &s| a.max(s));
        let mut c = vec![0.0; m];
        for k in 0..m {
            let s = svd.sigma[k];
            if s > cut && s > 0.0 {
                let coef = dot(&svd.u[k * n..(k + 1) * n], y) / s;
                for (cj, vj) in c.iter_mut().zip(&svd.v[k * m..(k + 1) * m]) {
                    *cj += coef * vj;
                }
            }
        }
        c
    } else {
        // X' = U S V' (U: m x n, V: n x n), so X = V S U' and c = U S+ V' y.
        let mut xt = vec![0.0; m * n];
        for j in 0..m {
            for i in 0..n {
                xt[i * m + j] = x[j * n + i];
            }
        }
        let svd = jacobi_svd(xt, m, n);
        let cut = cond * svd.sigma.iter().fold(0.0f64, |a, &s| a.max(s));
        let mut c = vec![0.0; m];
        for k in 0..n {
            let s = svd.sigma[k];
            if s > cut && s > 0.0 {
                let coef = dot(&svd.v[k * n..(k + 1) * n], y) / s;
                for (cj, uj) in c.iter_mut().zip(&svd.u[k * m..(k + 1) * m]) {
                    *cj += coef * uj;
                }
            }
        }
        c
    }
}

/// A thin SVD `A = U S V'` of a `rows x cols` matrix (`rows >= cols`): column `k` of `U` is
/// `u[k * rows..]`, of `V` `v[k * cols..]`.
struct Svd {
    u: Vec<f64>,
    sigma: Vec<f64>,
    v: Vec<f64>,
}

/// One-sided Jacobi (Hestenes) SVD of a column-major `rows x cols` matrix: rotates pairs of
/// columns until all are orthogonal; accurate to working precision for small singular values.
fn jacobi_svd(mut a: Vec<f64>, rows: usize, cols: usize) -> Svd {
    let mut v = vec![0.0; cols * cols];
    for k in 0..cols {
        v[k * cols + k] = 1.0;
    }
    for _sweep in 0..80 {
        let mut rotated = false;
        for p in 0..cols {
            for q in p + 1..cols {
                let (cp, cq) = (p * rows, q * rows);
                let mut alpha = 0.0;
                let mut beta = 0.0;
                let mut gamma = 0.0;
                for i in 0..rows {
                    let (x, y) = (a[cp + i], a[cq + i]);
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let cos = 1.0 / (1.0 + t * t).sqrt();
                let sin = cos * t;
                for i in 0..rows {
                    let (x, y) = (a[cp + i], a[cq + i]);
                    a[cp + i] = cos * x - sin * y;
                    a[cq + i] = sin * x + cos * y;
                }
                let (vp, vq) = (p * cols, q * cols);
                for i in 0..cols {
                    let (x, y) = (v[vp + i], v[vq + i]);
                    v[vp + i] = cos * x - sin * y;
                    v[vq + i] = sin * x + cos * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut sigma = vec![0.0; cols];
    for k in 0..cols {
        let col = &mut a[k * rows..(k + 1) * rows];
        let s = dot(col, col).sqrt();
        sigma[k] = s;
        if s > 0.0 {
            col.iter_mut().for_each(|x| *x /= s);
        }
    }
    Svd { u: a, sigma, v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        // 6 samples, 3 features, y = 1 + 2 x0 - x1 + noise-free, weights uneven.
        let x = vec![
            1., 0., 1., 0., 1., 1., 1., 1., 0., 0., 0., 1., 1., 1., 1., 0., 1., 0.,
        ];
        let y: Vec<f64> = x
            .chunks(3)
            .map(|r| 1.0 + 2.0 * r[0] - r[1] + 0.5 * r[2])
            .collect();
        let w = vec![1.0, 2.0, 0.5, 1.0, 3.0, 1.0];
        (x, y, w)
    }

    #[test]
    fn least_squares_recovers_an_exact_linear_model() {
        let (x, y, w) = data();
        let fit = InterpretableModel::LinearRegression
            .fit(&x, 6, 3, &y, &w)
            .unwrap();
        for (c, e) in fit.coef.iter().zip([2.0, -1.0, 0.5]) {
            assert!((c - e).abs() < 1e-12, "{:?}", fit.coef);
        }
        assert!((fit.intercept - 1.0).abs() < 1e-12);
    }

    #[test]
    fn least_squares_is_minimum_norm_when_underdetermined() {
        // Two samples, three features: columns 1 and 2 identical, so their coefficients split.
        let x = vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let y = vec![3.0, 0.0];
        let fit = InterpretableModel::LinearRegression
            .fit(&x, 2, 3, &y, &[1.0, 1.0])
            .unwrap();
        for c in &fit.coef {
            assert!((c - 1.0).abs() < 1e-12, "{:?}", fit.coef);
        }
    }

    #[test]
    fn ridge_dual_form_matches_the_normal_equations() {
        // Two samples, three features: ridge() takes the dual form.
        let x = vec![1.0, 0.0, 2.0, 0.5, 1.0, -1.0];
        let y = vec![1.0, -2.0];
        let c = Centred::new(&x, 2, 3, &y, &[1.0, 3.0]);
        let dual = ridge(&c, 0.7).unwrap();
        let mut a = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                a[i * 3 + j] = dot(c.column(i), c.column(j)) + if i == j { 0.7 } else { 0.0 };
            }
        }
        let b: Vec<f64> = (0..3).map(|j| dot(c.column(j), &c.y)).collect();
        let primal = solve_spd(a, b, 3).unwrap();
        for (p, d) in primal.iter().zip(dual) {
            assert!((p - d).abs() < 1e-12);
        }
    }

    #[test]
    fn lasso_with_tiny_alpha_is_least_squares_and_large_alpha_is_zero() {
        let (x, y, w) = data();
        let fit = InterpretableModel::Lasso { alpha: 1e-9 }
            .fit(&x, 6, 3, &y, &w)
            .unwrap();
        for (c, e) in fit.coef.iter().zip([2.0, -1.0, 0.5]) {
            assert!((c - e).abs() < 1e-4, "{:?}", fit.coef);
        }
        let fit = InterpretableModel::Lasso { alpha: 100.0 }
            .fit(&x, 6, 3, &y, &w)
            .unwrap();
        assert_eq!(fit.coef, vec![0.0; 3]);
    }
}
