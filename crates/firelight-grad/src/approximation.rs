//! Where a path integral is sampled and how each sample is weighted: Captum's
//! `approximation_methods`, with the same names and numbers.

use firelight_core::{Error, Result};

/// How to approximate the path integral of Integrated Gradients (Captum's `method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approximation {
    /// Left Riemann sum: alphas `0, 1/n, ..., (n-1)/n` (`"riemann_left"`).
    RiemannLeft,
    /// Right Riemann sum: alphas `1/n, ..., 1` (`"riemann_right"`).
    RiemannRight,
    /// Midpoint Riemann sum (`"riemann_middle"`).
    RiemannMiddle,
    /// Captum's `"riemann_trapezoid"` (`n >= 2`): `n` equally spaced alphas from 0 to 1, each
    /// weighted `1/n` and the two ends `1/(2n)`. The weights sum to `1 - 1/n`, not 1 (the textbook
    /// rule uses `1/(n-1)`); firelight keeps Captum's numbers so results agree, which makes this
    /// method's convergence delta shrink only as `1/n`.
    RiemannTrapezoid,
    /// Gauss-Legendre quadrature on `[0, 1]` (`"gausslegendre"`, Captum's default).
    #[default]
    GaussLegendre,
}

impl Approximation {
    /// Captum's name for the method.
    pub fn captum_name(self) -> &'static str {
        match self {
            Approximation::RiemannLeft => "riemann_left",
            Approximation::RiemannRight => "riemann_right",
            Approximation::RiemannMiddle => "riemann_middle",
            Approximation::RiemannTrapezoid => "riemann_trapezoid",
            Approximation::GaussLegendre => "gausslegendre",
        }
    }

    /// The method with Captum's name `name`.
    pub fn from_captum_name(name: &str) -> Result<Self> {
        [
            Approximation::RiemannLeft,
            Approximation::RiemannRight,
            Approximation::RiemannMiddle,
            Approximation::RiemannTrapezoid,
            Approximation::GaussLegendre,
        ]
        .into_iter()
        .find(|m| m.captum_name() == name)
        .ok_or_else(|| {
            Error::parameter(
                "method",
                name,
                "expected riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre",
            )
        })
    }

    /// The `n` points in `[0, 1]` where the integrand is evaluated, and their weights.
    pub fn steps(self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if n == 0 {
            return Err(Error::parameter("n_steps", 0, "must be at least 1"));
        }
        let nf = n as f64;
        let linspace = |start: f64, end: f64| -> Vec<f64> {
            if n == 1 {
                return vec![start];
            }
            (0..n)
                .map(|i| start + (end - start) * i as f64 / (nf - 1.0))
                .collect()
        };
        Ok(match self {
            Approximation::RiemannLeft => (linspace(0.0, 1.0 - 1.0 / nf), vec![1.0 / nf; n]),
            Approximation::RiemannRight => (linspace(1.0 / nf, 1.0), vec![1.0 / nf; n]),
            Approximation::RiemannMiddle => (
                linspace(1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf)),
                vec![1.0 / nf; n],
            ),
            Approximation::RiemannTrapezoid => {
                if n < 2 {
                    return Err(Error::parameter(
                        "n_steps",
                        n,
                        "the trapezoid rule needs at least 2 steps",
                    ));
                }
                let mut weights = vec![1.0 / nf; n];
                weights[0] /= 2.0;
                weights[n - 1] /= 2.0;
                (linspace(0.0, 1.0), weights)
            }
            Approximation::GaussLegendre => {
                let (nodes, weights) = gauss_legendre(n);
                (
                    nodes.iter().map(|x| 0.5 * (1.0 + x)).collect(),
                    weights.iter().map(|w| 0.5 * w).collect(),
                )
            }
        })
    }
}

/// Gauss-Legendre nodes (ascending, on `[-1, 1]`) and weights, as `numpy.polynomial.legendre.leggauss`.
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        // Tricomi's initial guess for the i-th largest root, refined by Newton's method.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            let (p, dp) = legendre(n, x);
            derivative = dp;
            let dx = p / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let (_, dp) = legendre(n, x);
        derivative = if dp != 0.0 { dp } else { derivative };
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes[n - 1 - i] = x;
        nodes[i] = -x;
        weights[n - 1 - i] = w;
        weights[i] = w;
    }
    (nodes, weights)
}

/// `P_n(x)` and `P_n'(x)` by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let kf = k as f64;
        let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
        p0 = p1;
        p1 = p2;
    }
    let dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, dp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_points_lie_in_unit_interval() {
        for method in [
            Approximation::RiemannLeft,
            Approximation::RiemannRight,
            Approximation::RiemannMiddle,
            Approximation::RiemannTrapezoid,
            Approximation::GaussLegendre,
        ] {
            for n in [2, 3, 7, 50] {
                let (alphas, weights) = method.steps(n).unwrap();
                assert_eq!(alphas.len(), n);
                let expected = if method == Approximation::RiemannTrapezoid {
                    1.0 - 1.0 / n as f64
                } else {
                    1.0
                };
                assert!(
                    (weights.iter().sum::<f64>() - expected).abs() < 1e-12,
                    "{method:?} {n}"
                );
                assert!(alphas.iter().all(|a| (0.0..=1.0).contains(a)));
            }
        }
    }

    #[test]
    fn gauss_legendre_matches_numpy() {
        // numpy.polynomial.legendre.leggauss(3)
        let (x, w) = gauss_legendre(3);
        let r = (3.0f64 / 5.0).sqrt();
        assert!((x[0] + r).abs() < 1e-15 && x[1].abs() < 1e-15 && (x[2] - r).abs() < 1e-15);
        assert!((w[0] - 5.0 / 9.0).abs() < 1e-15 && (w[1] - 8.0 / 9.0).abs() < 1e-15);
        // Exact for polynomials of degree 2n-1: integral of t^9 over [0, 1] with n = 5.
        let (a, w) = Approximation::GaussLegendre.steps(5).unwrap();
        let integral: f64 = a.iter().zip(&w).map(|(a, w)| w * a.powi(9)).sum();
        assert!((integral - 0.1).abs() < 1e-14);
    }
}
