//! Adversarial perturbations, as Captum's `robust` module makes them: FGSM (Goodfellow et al.
//! 2015) steps by `epsilon` along the sign of the loss's gradient; PGD (Madry et al. 2018) takes
//! `step_num` such steps of `step_size`, each projected back into the `radius` ball (L-infinity
//! or L2) around the input and into the bounds. Targeted attacks descend the loss of the target
//! class instead of ascending it. [`minimal_perturbation`] finds the smallest of a family of
//! perturbations that flips the prediction (Captum's `MinParamPerturbation`).

use burn::tensor::activation::log_softmax;
use firelight_core::gradients::input_gradients;
use firelight_core::{DynTensor, Error, Inputs, Model, ReluPolicy, Result, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal, Uniform};

/// The loss an attack follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttackLoss {
    /// `-log softmax(output)[target]`, for a model that outputs logits (Captum with
    /// `loss_func=nn.CrossEntropyLoss(reduction="none")`).
    #[default]
    CrossEntropy,
    /// `-log output[target]`, for a model that outputs probabilities (Captum's default).
    NegativeLog,
}

/// The norm of PGD's ball.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Norm {
    /// Every element within `radius` (`"Linf"`).
    #[default]
    Linf,
    /// The whole sample within `radius` (`"L2"`, `torch.renorm`).
    L2,
}

/// Fails unless there is one class per sample.
fn check_classes(classes: &[usize], batch: usize) -> Result<()> {
    if classes.len() != batch {
        return Err(Error::InvalidTarget(format!(
            "{} classes for {batch} samples",
            classes.len()
        )));
    }
    Ok(())
}

/// The model's softmax probabilities for each row of `x`, on the host.
fn probability_rows(model: &dyn Model, x: &DynTensor) -> Result<Vec<Vec<f32>>> {
    let probabilities = burn::tensor::activation::softmax(model.predict(&x.clone().into())?, 1);
    let [_, width] = probabilities.dims();
    let p: Vec<f32> = probabilities
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Model(format!("probabilities: {e:?}")))?;
    Ok(p.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
}

/// The most probable class of a row.
fn top_class(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&i, &j| row[i].total_cmp(&row[j]))
        .unwrap_or(0)
}

/// Captum's gradient threshold: elements whose gradient is at most this in magnitude stay put.
const ZERO_THRESHOLD: f32 = 1e-6;

/// The loss of `target` for each row of `inputs`, as a target whose gradient an attack follows.
fn loss_target(loss: AttackLoss, classes: Vec<usize>) -> Target {
    Target::custom(move |outputs, samples| {
        let [rows, width] = outputs.dims();
        let class = |s: usize| classes.get(s).copied().unwrap_or(usize::MAX);
        if let Some(&s) = samples.iter().find(|&&s| class(s) >= width) {
            return Err(Error::InvalidTarget(format!(
                "class {} for sample {s} of a model with {width} outputs",
                class(s)
            )));
        }
        let logs = match loss {
            AttackLoss::CrossEntropy => log_softmax(outputs, 1),
            AttackLoss::NegativeLog => outputs.log(),
        };
        let picks: Vec<i64> = samples.iter().map(|&s| class(s) as i64).collect();
        let index = burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(picks, [rows, 1]),
            &logs.device(),
        );
        Ok(logs.gather(1, index).reshape([rows]).neg())
    })
}

/// Captum's `FGSM`.
pub struct Fgsm<'m> {
    model: &'m dyn Model,
    loss: AttackLoss,
    bounds: (f32, f32),
}

impl<'m> Fgsm<'m> {
    /// FGSM on `model`: cross-entropy on its logits, no bounds.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            loss: AttackLoss::CrossEntropy,
            bounds: (f32::NEG_INFINITY, f32::INFINITY),
        }
    }

    /// The loss followed.
    pub fn loss(mut self, loss: AttackLoss) -> Self {
        self.loss = loss;
        self
    }

    /// `lower_bound` and `upper_bound`: the perturbed input is clamped into them.
    pub fn bounds(mut self, lower: f32, upper: f32) -> Self {
        self.bounds = (lower, upper);
        self
    }

    /// `inputs` moved by `epsilon` along the sign of the gradient of the loss of `classes` (one
    /// per sample): up it (untargeted, away from the true class) or, `targeted`, down it
    /// (toward the class).
    pub fn perturb(
        &self,
        inputs: &DynTensor,
        epsilon: f32,
        classes: &[usize],
        targeted: bool,
    ) -> Result<DynTensor> {
        let stepped = step(self.model, self.loss, inputs, epsilon, classes, targeted)?;
        clamp(&stepped, self.bounds)
    }
}

/// One FGSM step without bounds.
fn step(
    model: &dyn Model,
    loss: AttackLoss,
    inputs: &DynTensor,
    epsilon: f32,
    classes: &[usize],
    targeted: bool,
) -> Result<DynTensor> {
    let batch = inputs.batch();
    check_classes(classes, batch)?;
    if !epsilon.is_finite() {
        return Err(Error::parameter("epsilon", epsilon, "must be finite"));
    }
    let samples: Vec<usize> = (0..batch).collect();
    let target = loss_target(loss, classes.to_vec());
    let grads = input_gradients(
        model,
        &Inputs::from(inputs.detached()),
        &target,
        &samples,
        ReluPolicy::Standard,
    )?
    .into_iter()
    .next()
    .ok_or_else(|| Error::Model("no gradient for the input".into()))?;
    let (x, g) = (inputs.to_vec()?, grads.to_vec()?);
    let sign = if targeted { -1.0 } else { 1.0 };
    let moved = x
        .iter()
        .zip(&g)
        .map(|(&x, &g)| {
            if g.abs() > ZERO_THRESHOLD {
                x + sign * epsilon * g.signum()
            } else {
                x
            }
        })
        .collect();
    DynTensor::from_vec(moved, inputs.shape().to_vec(), &inputs.device())
}

fn clamp(t: &DynTensor, (lower, upper): (f32, f32)) -> Result<DynTensor> {
    if lower == f32::NEG_INFINITY && upper == f32::INFINITY {
        return Ok(t.clone());
    }
    let v = t.to_vec()?.iter().map(|v| v.clamp(lower, upper)).collect();
    DynTensor::from_vec(v, t.shape().to_vec(), &t.device())
}

/// Captum's `PGD`.
pub struct Pgd<'m> {
    model: &'m dyn Model,
    loss: AttackLoss,
    bounds: (f32, f32),
    norm: Norm,
    random_start: Option<u64>,
}

impl<'m> Pgd<'m> {
    /// PGD on `model`: cross-entropy on its logits, L-infinity, no bounds, no random start.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            loss: AttackLoss::CrossEntropy,
            bounds: (f32::NEG_INFINITY, f32::INFINITY),
            norm: Norm::Linf,
            random_start: None,
        }
    }

    /// The loss followed.
    pub fn loss(mut self, loss: AttackLoss) -> Self {
        self.loss = loss;
        self
    }

    /// `lower_bound` and `upper_bound`.
    pub fn bounds(mut self, lower: f32, upper: f32) -> Self {
        self.bounds = (lower, upper);
        self
    }

    /// The ball's norm (`norm`).
    pub fn norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }

    /// Start from a random point of the ball (`random_start`), drawn with `seed`.
    pub fn random_start(mut self, seed: u64) -> Self {
        self.random_start = Some(seed);
        self
    }

    /// `step_num` FGSM steps of `step_size` from `inputs` (or a random point of the ball), each
    /// projected into the `radius` ball around `inputs` and into the bounds.
    pub fn perturb(
        &self,
        inputs: &DynTensor,
        radius: f32,
        step_size: f32,
        step_num: usize,
        classes: &[usize],
        targeted: bool,
    ) -> Result<DynTensor> {
        if !(radius.is_finite() && radius >= 0.0) {
            return Err(Error::parameter(
                "radius",
                radius,
                "must be a finite value >= 0",
            ));
        }
        let mut current = match self.random_start {
            Some(seed) => clamp(&self.random_point(inputs, radius, seed)?, self.bounds)?,
            None => inputs.clone(),
        };
        for _ in 0..step_num {
            let stepped = step(
                self.model, self.loss, &current, step_size, classes, targeted,
            )?;
            current = clamp(&self.project(inputs, &stepped, radius)?, self.bounds)?;
        }
        Ok(current)
    }

    /// `outputs` brought back into the ball around `inputs`.
    fn project(&self, inputs: &DynTensor, outputs: &DynTensor, radius: f32) -> Result<DynTensor> {
        let (x, y) = (inputs.to_vec()?, outputs.to_vec()?);
        let features = inputs.features();
        let mut out = Vec::with_capacity(x.len());
        for (xs, ys) in x.chunks(features.max(1)).zip(y.chunks(features.max(1))) {
            match self.norm {
                Norm::Linf => out.extend(
                    xs.iter()
                        .zip(ys)
                        .map(|(a, b)| a + (b - a).clamp(-radius, radius)),
                ),
                Norm::L2 => {
                    let norm = xs
                        .iter()
                        .zip(ys)
                        .map(|(a, b)| f64::from(b - a).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    // torch.renorm: rows above the norm are scaled to it (with its 1e-7).
                    let scale = if norm > f64::from(radius) {
                        f64::from(radius) / (norm + 1e-7)
                    } else {
                        1.0
                    };
                    out.extend(
                        xs.iter()
                            .zip(ys)
                            .map(|(a, b)| a + (f64::from(b - a) * scale) as f32),
                    );
                }
            }
        }
        DynTensor::from_vec(out, inputs.shape().to_vec(), &inputs.device())
    }

    /// A random point of the ball around `inputs` (Captum's `_random_point`).
    fn random_point(&self, inputs: &DynTensor, radius: f32, seed: u64) -> Result<DynTensor> {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = inputs.to_vec()?;
        let features = inputs.features().max(1);
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(features) {
            match self.norm {
                Norm::Linf => {
                    let u = Uniform::new(-radius, radius.max(f32::MIN_POSITIVE))
                        .map_err(|e| Error::parameter("radius", radius, e.to_string()))?;
                    out.extend(row.iter().map(|v| v + u.sample(&mut rng)));
                }
                Norm::L2 => {
                    let d: Vec<f64> = (0..features)
                        .map(|_| StandardNormal.sample(&mut rng))
                        .collect();
                    let n = d.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                    let r: f64 = rand::Rng::random::<f64>(&mut rng).powf(1.0 / features as f64)
                        * f64::from(radius);
                    out.extend(row.iter().zip(&d).map(|(v, u)| v + (u / n * r) as f32));
                }
            }
        }
        DynTensor::from_vec(out, inputs.shape().to_vec(), &inputs.device())
    }
}

/// The smallest of `parameters` (tried in order) whose perturbation makes the model's top class
/// differ from `classes[sample]`, per sample (`None` where none does): Captum's
/// `MinParamPerturbation` with a linear search. `perturb(inputs, parameter)` makes the
/// perturbed batch.
pub fn minimal_perturbation(
    model: &dyn Model,
    inputs: &DynTensor,
    classes: &[usize],
    parameters: &[f32],
    perturb: &dyn Fn(&DynTensor, f32) -> Result<DynTensor>,
) -> Result<Vec<Option<f32>>> {
    let batch = inputs.batch();
    check_classes(classes, batch)?;
    let mut found = vec![None; batch];
    for &p in parameters {
        if found.iter().all(Option::is_some) {
            break;
        }
        let rows = probability_rows(model, &perturb(inputs, p)?)?;
        for (b, row) in rows.iter().enumerate().take(batch) {
            if found[b].is_none() && top_class(row) != classes[b] {
                found[b] = Some(p);
            }
        }
    }
    Ok(found)
}

/// How a model fares under one perturbation ([`compare_attacks`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AttackResult {
    /// The perturbation's name (`"original"` for the inputs as they are).
    pub name: String,
    /// The share of samples whose top class is still their class.
    pub accuracy: f32,
    /// The mean softmax probability of each sample's class.
    pub probability: f32,
}

/// A named perturbation of a batch, for [`compare_attacks`].
pub type Attack<'a> = (&'a str, &'a dyn Fn(&DynTensor) -> Result<DynTensor>);

/// Captum's `AttackComparator` idea: the model's accuracy and its probability of the true
/// `classes` on `inputs` as they are and under each of `attacks`.
pub fn compare_attacks(
    model: &dyn Model,
    inputs: &DynTensor,
    classes: &[usize],
    attacks: &[Attack<'_>],
) -> Result<Vec<AttackResult>> {
    let batch = inputs.batch();
    check_classes(classes, batch)?;
    let judge = |name: &str, x: &DynTensor| -> Result<AttackResult> {
        if x.shape() != inputs.shape() {
            return Err(Error::ShapeMismatch {
                what: format!("inputs perturbed by `{name}`"),
                expected: inputs.shape().to_vec(),
                got: x.shape().to_vec(),
            });
        }
        let rows = probability_rows(model, x)?;
        let (mut correct, mut mass) = (0usize, 0.0f64);
        for (row, &class) in rows.iter().zip(classes) {
            correct += usize::from(top_class(row) == class);
            mass += f64::from(row.get(class).copied().unwrap_or(0.0));
        }
        Ok(AttackResult {
            name: name.to_string(),
            accuracy: correct as f32 / batch.max(1) as f32,
            probability: (mass / batch.max(1) as f64) as f32,
        })
    };
    let mut out = vec![judge("original", inputs)?];
    for (name, attack) in attacks {
        out.push(judge(name, &attack(inputs)?)?);
    }
    Ok(out)
}
