//! Concept activation vectors: linear classifiers between concepts' activations, trained on the
//! backend.
//!
//! [`Classifier::Sgd`] (the default) minimises the objective of Captum's default classifier,
//! scikit-learn's `SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3)`: the hinge loss plus
//! `alpha / 2 * |w|^2`, one-vs-rest when an experimental set has more than two concepts. Captum's
//! SGD stops after a few dozen epochs, far from the minimum, so its CAV depends on its shuffle
//! (two seeds agree to a cosine of 0.6-0.9 on the fixtures); firelight solves the same objective
//! exactly by dual coordinate descent, with the work that grows with the layer's width (Gram
//! matrices and `w = x^T (a y)`) done as batched products on the device.
//! [`Classifier::Logistic`] swaps the hinge for the logistic loss, minimised by full-batch
//! gradient steps on the device; [`Classifier::FastCav`] is the difference of class means
//! (FastCAV), with no iterations at all.
//!
//! Each CAV has one row per concept of its experimental set, in the set's order; for two concepts
//! the rows are `w` and `-w` (Captum's convention). With more than two concepts, row `i` separates
//! concept `i` from the union of the others: the TCAV paper's relative CAV.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::{Device, DynTensor, Error, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use serde::{Deserialize, Serialize};

/// How a CAV is found from concept activations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classifier {
    /// L2-regularised hinge loss: the objective of Captum's default `SGDClassifier`, solved exactly.
    Sgd,
    /// L2-regularised logistic loss.
    Logistic,
    /// Difference of means (FastCAV): concept mean minus the mean of the other concepts.
    FastCav,
}

impl Classifier {
    /// The classifier named `name` (`sgd`, `logistic`, `fastcav`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "sgd" | "default" | "hinge" | "svm" => Ok(Self::Sgd),
            "logistic" => Ok(Self::Logistic),
            "fastcav" | "meandifference" => Ok(Self::FastCav),
            _ => Err(Error::parameter(
                "classifier",
                name,
                "expected one of: sgd, logistic, fastcav",
            )),
        }
    }
}

/// Settings for training CAVs; the defaults are Captum's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CavTrainer {
    /// The classifier.
    pub classifier: Classifier,
    /// L2 regularisation strength (scikit-learn's `alpha`; Captum: 0.01).
    pub alpha: f32,
    /// Iterations: full-batch steps of the logistic classifier; the hinge classifier's dual solver
    /// stops at convergence (Captum's `max_iter`: 1000).
    pub max_iter: usize,
    /// Share of each concept's examples held out to measure accuracy (Captum: 0.33).
    pub test_split_ratio: f32,
    /// Seed of the train/test shuffle.
    pub seed: u64,
}

impl Default for CavTrainer {
    fn default() -> Self {
        Self {
            classifier: Classifier::Sgd,
            alpha: 0.01,
            max_iter: 1000,
            test_split_ratio: 0.33,
            seed: 0,
        }
    }
}

/// A concept activation vector with what it was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cav {
    /// The concepts of the experimental set, in order; row `i` of `weights` is concept `i`'s.
    pub concepts: Vec<String>,
    /// The layer the activations came from.
    pub layer: String,
    /// The model key (see [`ModelKey`](crate::ModelKey)), or empty when unknown.
    pub model: String,
    /// The classifier that made it.
    pub classifier: Classifier,
    /// One row per concept, `features` values each (the layer's values flattened).
    pub weights: Vec<Vec<f32>>,
    /// One intercept per row.
    pub bias: Vec<f32>,
    /// Accuracy on the held-out examples (`None` when too few examples to hold any out).
    pub accuracy: Option<f32>,
    /// Held-out examples the accuracy was measured on.
    pub test_examples: usize,
}

impl Cav {
    /// The number of features per row.
    pub fn features(&self) -> usize {
        self.weights.first().map_or(0, Vec::len)
    }

    /// Writes the CAV as JSON (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Model(format!("serialising CAV: {e}")))?;
        firelight_core::npy::write_atomic(path, &json)
    }

    /// Reads a CAV written by [`Cav::save`], checking that its rows agree.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cav: Cav = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: not a CAV file ({e})", path.display())))?;
        let f = cav.features();
        if cav.weights.len() != cav.concepts.len()
            || cav.bias.len() != cav.concepts.len()
            || f == 0
            || cav
                .weights
                .iter()
                .any(|r| r.len() != f || r.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Model(format!(
                "{}: CAV rows do not match its concepts or hold non-finite values",
                path.display()
            )));
        }
        Ok(cav)
    }
}

/// One problem: each concept's activations (flat `[examples, features]`) at one layer.
fn check_set(set: &[&DynTensor]) -> Result<usize> {
    if set.len() < 2 {
        return Err(Error::parameter(
            "experimental_set",
            format!("{} concept(s)", set.len()),
            "an experimental set needs at least two concepts",
        ));
    }
    let f = set[0].features();
    for acts in set {
        if acts.features() != f {
            return Err(Error::ShapeMismatch {
                what: "activations of the concepts of one experimental set".into(),
                expected: vec![f],
                got: vec![acts.features()],
            });
        }
    }
    Ok(f)
}

/// The rows and labels of one problem, shuffled with `seed` and split per Captum's
/// `_train_test_split` (the first `floor(ratio * n)` shuffled examples are held out).
struct Split {
    train_rows: Vec<usize>,
    test_rows: Vec<usize>,
    labels: Vec<usize>,
}

fn split(sizes: &[usize], ratio: f32, seed: u64) -> Split {
    let labels: Vec<usize> = sizes
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
        .collect();
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let test = ((ratio as f64) * labels.len() as f64).floor() as usize;
    let test = test.min(labels.len().saturating_sub(2));
    Split {
        test_rows: order[..test].to_vec(),
        train_rows: order[test..].to_vec(),
        labels,
    }
}

fn take_rows(x: &Tensor<2>, rows: &[usize]) -> Tensor<2> {
    let device = x.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]),
        &device,
    );
    x.clone().select(0, idx)
}

/// Targets `[rows, columns]` in {-1, +1}: one column for two concepts (concept 0 positive), one
/// per concept (one-vs-rest) otherwise.
fn signs(labels: &[usize], concepts: usize, device: &Device) -> Tensor<2> {
    let cols = if concepts == 2 { 1 } else { concepts };
    let mut y = vec![-1f32; labels.len() * cols];
    for (r, &l) in labels.iter().enumerate() {
        if cols == 1 {
            y[r] = if l == 0 { 1.0 } else { -1.0 };
        } else {
            y[r * cols + l] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(y, [labels.len(), cols]), device)
}

impl CavTrainer {
    /// The default trainer with `classifier`.
    pub fn new(classifier: Classifier) -> Self {
        Self {
            classifier,
            ..Self::default()
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::parameter("alpha", self.alpha, "must be positive"));
        }
        if self.max_iter == 0 {
            return Err(Error::parameter("max_iter", 0, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.test_split_ratio) {
            return Err(Error::parameter(
                "test_split_ratio",
                self.test_split_ratio,
                "must be in [0, 1)",
            ));
        }
        Ok(())
    }

    /// Trains one CAV on the activations of the concepts of one experimental set (flat
    /// `[examples, features]` each, same features) at `layer`.
    pub fn train(&self, names: &[String], acts: &[&DynTensor], layer: &str) -> Result<Cav> {
        let mut out = self.train_many(&[(names.to_vec(), acts.to_vec())], layer)?;
        Ok(out.remove(0))
    }

    /// Trains several CAVs at `layer`. Sets with the same number of concepts and examples per
    /// concept are trained together, as one batch of problems.
    pub fn train_many(
        &self,
        sets: &[(Vec<String>, Vec<&DynTensor>)],
        layer: &str,
    ) -> Result<Vec<Cav>> {
        self.check()?;
        let mut out: Vec<Option<Cav>> = vec![None; sets.len()];
        let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for (i, (names, acts)) in sets.iter().enumerate() {
            check_set(acts)?;
            if names.len() != acts.len() {
                return Err(Error::parameter(
                    "experimental_set",
                    format!("{} names for {} concepts", names.len(), acts.len()),
                    "give one name per concept",
                ));
            }
            let key: Vec<usize> = acts
                .iter()
                .map(|a| a.batch())
                .chain([acts[0].features()])
                .collect();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        for (_, members) in groups {
            let group: Vec<&(Vec<String>, Vec<&DynTensor>)> =
                members.iter().map(|&i| &sets[i]).collect();
            for (slot, cav) in members.iter().zip(self.train_group(&group, layer)?) {
                out[*slot] = Some(cav);
            }
        }
        Ok(out
            .into_iter()
            .map(|c| c.expect("every set trained"))
            .collect())
    }

    /// Problems of identical shape: stacked to `[problems, rows, features]`.
    fn train_group(
        &self,
        group: &[&(Vec<String>, Vec<&DynTensor>)],
        layer: &str,
    ) -> Result<Vec<Cav>> {
        let sizes: Vec<usize> = group[0].1.iter().map(|a| a.batch()).collect();
        let concepts = sizes.len();
        let device = group[0].1[0].device();
        // Every problem gets its own shuffle, as Captum's would, but from one seeded stream.
        let splits: Vec<Split> = (0..group.len())
            .map(|p| {
                split(
                    &sizes,
                    self.test_split_ratio,
                    self.seed.wrapping_add(p as u64),
                )
            })
            .collect();
        let mut xs_train = Vec::new();
        let mut ys_train = Vec::new();
        let mut xs_test = Vec::new();
        for ((_, acts), s) in group.iter().zip(&splits) {
            let x = Tensor::cat(acts.iter().map(|a| a.flat().clone()).collect(), 0);
            let train_labels: Vec<usize> = s.train_rows.iter().map(|&r| s.labels[r]).collect();
            xs_train.push(take_rows(&x, &s.train_rows).unsqueeze_dim::<3>(0));
            ys_train.push(signs(&train_labels, concepts, &device).unsqueeze_dim::<3>(0));
            if !s.test_rows.is_empty() {
                xs_test.push(take_rows(&x, &s.test_rows).unsqueeze_dim::<3>(0));
            }
        }
        let x = Tensor::cat(xs_train, 0);
        let y = Tensor::cat(ys_train, 0);
        let (w, b) = match self.classifier {
            Classifier::FastCav => fast_cav(&x, &y),
            Classifier::Sgd => self.hinge_dual(&x, &y)?,
            Classifier::Logistic => self.descend(&x, &y),
        };
        let accuracies = if xs_test.is_empty() {
            vec![None; group.len()]
        } else {
            let scores = Tensor::cat(xs_test, 0).matmul(w.clone()) + b.clone();
            let [p, rows, cols] = scores.dims();
            let values = host(scores)?;
            (0..p)
                .map(|pi| {
                    let s = &splits[pi];
                    let correct = s
                        .test_rows
                        .iter()
                        .enumerate()
                        .filter(|(r, row)| {
                            let v = &values[(pi * rows + r) * cols..(pi * rows + r + 1) * cols];
                            let predicted = if cols == 1 {
                                if v[0] > 0.0 { 0 } else { 1 }
                            } else {
                                argmax(v)
                            };
                            predicted == s.labels[**row]
                        })
                        .count();
                    Some(correct as f32 / rows as f32)
                })
                .collect()
        };
        let [p, f, cols] = w.dims();
        let wv = host(w)?;
        let bv = host(b)?;
        Ok((0..p)
            .map(|pi| {
                let col = |c: usize| -> Vec<f32> {
                    (0..f).map(|j| wv[(pi * f + j) * cols + c]).collect()
                };
                let (weights, bias) = if cols == 1 {
                    let w0 = col(0);
                    let neg = w0.iter().map(|v| -v).collect();
                    (vec![w0, neg], vec![bv[pi], -bv[pi]])
                } else {
                    (
                        (0..cols).map(col).collect(),
                        (0..cols).map(|c| bv[pi * cols + c]).collect(),
                    )
                };
                Cav {
                    concepts: group[pi].0.clone(),
                    layer: layer.to_string(),
                    model: String::new(),
                    classifier: self.classifier,
                    weights,
                    bias,
                    accuracy: accuracies[pi],
                    test_examples: splits[pi].test_rows.len(),
                }
            })
            .collect())
    }

    /// The exact minimiser of `alpha/2 |w|^2 + mean(hinge(y (x w + b)))` with an unregularised
    /// intercept, by SMO on the dual (libsvm's solver, second-order working-set selection): the
    /// Gram matrices `x x^T` of every problem are one batched product on the device, the
    /// `n`-dimensional dual is solved on the host, and `w = x^T (a y)` is again a product on the
    /// device.
    fn hinge_dual(&self, x: &Tensor<3>, y: &Tensor<3>) -> Result<(Tensor<3>, Tensor<3>)> {
        let [p, n, _] = x.dims();
        let c = y.dims()[2];
        let device = x.device();
        let xt = x.clone().swap_dims(1, 2);
        let gram = host(x.clone().matmul(xt.clone()))?;
        let labels = host(y.clone())?;
        // Scaled objective: 1/2 |w|^2 + C sum(hinge) with C = 1 / (alpha n).
        let cap = 1.0 / (self.alpha as f64 * n as f64);
        let mut coef = vec![0f32; p * n * c];
        let mut bias = vec![0f32; p * c];
        for pi in 0..p {
            let k: Vec<f64> = gram[pi * n * n..(pi + 1) * n * n]
                .iter()
                .map(|v| *v as f64)
                .collect();
            for ci in 0..c {
                let yv: Vec<f64> = (0..n)
                    .map(|i| labels[(pi * n + i) * c + ci] as f64)
                    .collect();
                let (a, b) = smo(&k, &yv, cap, self.max_iter.max(1) * n.max(100) * 100);
                for i in 0..n {
                    coef[(pi * n + i) * c + ci] = (a[i] * yv[i]) as f32;
                }
                bias[pi * c + ci] = b as f32;
            }
        }
        let coef = Tensor::<3>::from_data(TensorData::new(coef, [p, n, c]), &device);
        let w = xt.matmul(coef);
        let b = Tensor::<3>::from_data(TensorData::new(bias, [p, 1, c]), &device);
        Ok((w, b))
    }

    /// Full-batch subgradient descent on `alpha/2 |w|^2 + mean(loss(y * (x w + b)))`, with
    /// scikit-learn's optimal step `1 / (alpha (t + t0))` and the second half of the iterates
    /// averaged. `x`: `[p, n, f]`, `y`: `[p, n, c]`; returns `w` `[p, f, c]` and `b` `[p, 1, c]`.
    fn descend(&self, x: &Tensor<3>, y: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [p, n, f] = x.dims();
        let c = y.dims()[2];
        let device = x.device();
        let alpha = self.alpha as f64;
        // scikit-learn's heuristic for the "optimal" schedule's offset (sgd_fast.pyx).
        let typw = (1.0 / alpha.sqrt()).sqrt();
        let t0 = 1.0 / (typw * alpha);
        let xt = x.clone().swap_dims(1, 2);
        let mut w = Tensor::<3>::zeros([p, f, c], &device);
        let mut b = Tensor::<3>::zeros([p, 1, c], &device);
        let mut w_sum = Tensor::<3>::zeros([p, f, c], &device);
        let mut b_sum = Tensor::<3>::zeros([p, 1, c], &device);
        let average_from = self.max_iter / 2;
        for t in 0..self.max_iter {
            let eta = 1.0 / (alpha * (t as f64 + t0));
            let margin = (x.clone().matmul(w.clone()) + b.clone()) * y.clone();
            // -d loss / d margin, times y: the direction each example pulls the hyperplane.
            let pull = match self.classifier {
                Classifier::Logistic => sigmoid(margin.neg()) * y.clone(),
                _ => margin.lower_elem(1.0).float() * y.clone(),
            };
            let step = (eta / n as f64) as f32;
            w = w.mul_scalar((1.0 - eta * alpha) as f32)
                + xt.clone().matmul(pull.clone()).mul_scalar(step);
            b = b + pull.sum_dim(1).mul_scalar(step);
            if t >= average_from {
                w_sum = w_sum + w.clone();
                b_sum = b_sum + b.clone();
            }
        }
        let count = (self.max_iter - average_from) as f32;
        (w_sum.div_scalar(count), b_sum.div_scalar(count))
    }
}

/// SMO for `min 1/2 a^T Q a - sum(a)`, `0 <= a <= cap`, `y^T a = 0`, `Q = (y y^T) * k`
/// (Fan, Chen and Lin 2005; libsvm's `Solver` with WSS 2). Returns the dual `a` and the intercept.
fn smo(k: &[f64], y: &[f64], cap: f64, max_steps: usize) -> (Vec<f64>, f64) {
    const EPS: f64 = 1e-6;
    const TAU: f64 = 1e-12;
    let n = y.len();
    let q = |i: usize, j: usize| y[i] * y[j] * k[i * n + j];
    let mut a = vec![0f64; n];
    let mut g = vec![-1f64; n];
    let up = |a: &[f64], t: usize| (y[t] > 0.0 && a[t] < cap) || (y[t] < 0.0 && a[t] > 0.0);
    let low = |a: &[f64], t: usize| (y[t] > 0.0 && a[t] > 0.0) || (y[t] < 0.0 && a[t] < cap);
    for _ in 0..max_steps {
        let (mut gmax, mut i) = (f64::NEG_INFINITY, usize::MAX);
        for t in 0..n {
            if up(&a, t) && -y[t] * g[t] >= gmax {
                gmax = -y[t] * g[t];
                i = t;
            }
        }
        if i == usize::MAX {
            break;
        }
        let (mut gmin, mut j, mut best) = (f64::INFINITY, usize::MAX, f64::INFINITY);
        for t in 0..n {
            if !low(&a, t) {
                continue;
            }
            let v = -y[t] * g[t];
            gmin = gmin.min(v);
            let diff = gmax - v;
            if diff > 0.0 {
                let quad = (k[i * n + i] + k[t * n + t] - 2.0 * k[i * n + t]).max(TAU);
                let obj = -diff * diff / quad;
                if obj <= best {
                    best = obj;
                    j = t;
                }
            }
        }
        if gmax - gmin < EPS || j == usize::MAX {
            break;
        }
        let (old_i, old_j) = (a[i], a[j]);
        if y[i] != y[j] {
            let quad = (q(i, i) + q(j, j) + 2.0 * q(i, j)).max(TAU);
            let delta = (-g[i] - g[j]) / quad;
            let diff = a[i] - a[j];
            a[i] += delta;
            a[j] += delta;
            if diff > 0.0 {
                if a[j] < 0.0 {
                    a[j] = 0.0;
                    a[i] = diff;
                }
            } else if a[i] < 0.0 {
                a[i] = 0.0;
                a[j] = -diff;
            }
            if diff > 0.0 {
                if a[i] > cap {
                    a[i] = cap;
                    a[j] = cap - diff;
                }
            } else if a[j] > cap {
                a[j] = cap;
                a[i] = cap + diff;
            }
        } else {
            let quad = (q(i, i) + q(j, j) - 2.0 * q(i, j)).max(TAU);
            let delta = (g[i] - g[j]) / quad;
            let sum = a[i] + a[j];
            a[i] -= delta;
            a[j] += delta;
            if sum > cap {
                if a[i] > cap {
                    a[i] = cap;
                    a[j] = sum - cap;
                }
            } else if a[j] < 0.0 {
                a[j] = 0.0;
                a[i] = sum;
            }
            if sum > cap {
                if a[j] > cap {
                    a[j] = cap;
                    a[i] = sum - cap;
                }
            } else if a[i] < 0.0 {
                a[i] = 0.0;
                a[j] = sum;
            }
        }
        let (di, dj) = (a[i] - old_i, a[j] - old_j);
        for (t, gt) in g.iter_mut().enumerate() {
            *gt += q(t, i) * di + q(t, j) * dj;
        }
    }
    // rho: the mean of y g over free vectors, else the middle of the feasible interval.
    let (mut sum, mut free, mut ub, mut lb) = (0.0, 0usize, f64::INFINITY, f64::NEG_INFINITY);
    for t in 0..n {
        let yg = y[t] * g[t];
        if a[t] >= cap {
            if y[t] < 0.0 {
                ub = ub.min(yg)
            } else {
                lb = lb.max(yg)
            }
        } else if a[t] <= 0.0 {
            if y[t] > 0.0 {
                ub = ub.min(yg)
            } else {
                lb = lb.max(yg)
            }
        } else {
            sum += yg;
            free += 1;
        }
    }
    let rho = if free > 0 {
        sum / free as f64
    } else {
        (ub + lb) / 2.0
    };
    (a, -rho)
}

/// FastCAV: `w` = mean of the positive examples minus mean of the negative ones, `b` places the
/// boundary half-way between the two means.
fn fast_cav(x: &Tensor<3>, y: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let pos = y.clone().greater_elem(0.0).float(); // [p, n, c]
    let neg = pos.clone().neg().add_scalar(1.0);
    let xt = x.clone().swap_dims(1, 2); // [p, f, n]
    let mean_pos = xt.clone().matmul(pos.clone()) / pos.sum_dim(1).clamp_min(1.0);
    let mean_neg = xt.matmul(neg.clone()) / neg.sum_dim(1).clamp_min(1.0);
    let w = mean_pos.clone() - mean_neg.clone(); // [p, f, c]
    let mid = (mean_pos + mean_neg).mul_scalar(0.5);
    let b = (w.clone() * mid).sum_dim(1).neg(); // [p, 1, c]
    (w, b)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Model(format!("reading tensor values: {e:?}")))
}
