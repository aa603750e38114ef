//! [`Tcav`]: CAVs and TCAV scores for a model at named layers, and [`Tcav::experiment`], the full
//! TCAV protocol with random concepts and significance tests.

use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::{DynTensor, Error, Model, Result, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::cache::{ActivationCache, CacheStats, layer_activations};
use crate::cav::{Cav, CavTrainer};
use crate::concept::Concept;
use crate::score::{ScoreKind, TcavScore, multi_layer_gradients, scores};
use crate::stats::{bonferroni, mean_std, ttest_ind};

/// Testing with Concept Activation Vectors on one model at a list of layers.
pub struct Tcav<'a> {
    model: &'a dyn Model,
    model_key: String,
    layers: Vec<String>,
    trainer: CavTrainer,
    cache: Option<ActivationCache>,
    batch_size: usize,
}

/// What happened so far, for progress bars.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Activations of a concept (or random pool) at every layer are ready.
    Activations {
        /// The concept.
        concept: String,
    },
    /// The CAVs at one layer are trained.
    Cavs {
        /// The layer.
        layer: String,
        /// How many CAVs.
        count: usize,
    },
    /// Gradients of one target at one layer are computed and every CAV scored.
    Scored {
        /// The layer.
        layer: String,
        /// The target's name.
        target: String,
    },
}

/// Where random concepts come from.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built once per experiment
pub enum RandomConcepts {
    /// Random subsets of a pool of random examples, drawn with the experiment's seed.
    Pool(Concept),
    /// Random concepts given one by one (folders of random images): one run per set, set `k` the
    /// counterpart of run `k` and set `k + 1` (cyclically) its null concept.
    Sets(Vec<Concept>),
}

/// A class to explain and the inputs whose gradients are taken.
#[derive(Clone, Debug)]
pub struct TargetInputs {
    /// A name for reports (the class label).
    pub name: String,
    /// The class index (its logit is the target).
    pub class: usize,
    /// The inputs, batch first.
    pub inputs: DynTensor,
}

/// Settings of the TCAV significance protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Random runs with a pool: each concept is compared with this many random concepts, drawn
    /// with as many random null concepts (default 10). With given random sets, one run per set.
    pub n_runs: usize,
    /// Examples per random concept drawn from a pool; `None`: as many as the largest concept.
    pub random_size: Option<usize>,
    /// Seed of the random subsets.
    pub seed: u64,
    /// Significance level after Bonferroni correction (default 0.05).
    pub alpha: f64,
    /// The score compared by the t-test (default `sign_count`).
    pub score: ScoreKind,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            n_runs: 10,
            random_size: None,
            seed: 0,
            alpha: 0.05,
            score: ScoreKind::SignCount,
        }
    }
}

/// The verdict on one (concept, layer, target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptResult {
    /// The concept.
    pub concept: String,
    /// The layer.
    pub layer: String,
    /// The target's name.
    pub target: String,
    /// The target's class index.
    pub class: usize,
    /// The concept's scores against each random counterpart.
    pub concept_scores: Vec<TcavScore>,
    /// Each run's random null concept's scores against the same counterpart.
    pub random_scores: Vec<TcavScore>,
    /// Held-out accuracy of each concept-vs-random CAV.
    pub cav_accuracies: Vec<Option<f32>>,
    /// Mean of the compared score over the concept's runs.
    pub mean: f64,
    /// Its standard deviation.
    pub std: f64,
    /// Mean of the compared score over the random runs.
    pub random_mean: f64,
    /// Its standard deviation.
    pub random_std: f64,
    /// The t statistic (concept minus random).
    pub t_statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// p-value after Bonferroni correction across every test of the experiment.
    pub p_adjusted: f64,
    /// `p_adjusted < alpha`.
    pub significant: bool,
    /// In words.
    pub verdict: String,
}

/// Everything an experiment found, ready to be written as JSON or a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    /// The model key.
    pub model: String,
    /// The layers.
    pub layers: Vec<String>,
    /// Concept names and example counts.
    pub concepts: Vec<(String, usize)>,
    /// Target names, classes and input counts.
    pub targets: Vec<(String, usize, usize)>,
    /// The protocol's settings.
    pub config: ExperimentConfig,
    /// The CAV trainer's settings.
    pub trainer: CavTrainer,
    /// Number of tests the Bonferroni correction divides by.
    pub tests: usize,
    /// One result per (concept, layer, target).
    pub results: Vec<ConceptResult>,
    /// Held-out accuracies of the random-vs-random CAVs, per layer.
    pub random_cav_accuracies: Vec<(String, Vec<Option<f32>>)>,
    /// Cache hits and misses of this run.
    pub cache: (usize, usize),
}

fn select_rows(t: &DynTensor, rows: &[usize]) -> DynTensor {
    let device = t.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]),
        &device,
    );
    t.with_flat(t.flat().clone().select(0, idx))
}

impl<'a> Tcav<'a> {
    /// TCAV for `model` at `layers` (names as [`Model::layers`] lists them), with Captum's default
    /// classifier and no cache.
    pub fn new<S: Into<String>>(
        model: &'a dyn Model,
        layers: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let layers: Vec<String> = layers.into_iter().map(Into::into).collect();
        model.check_layers(&layers)?;
        Ok(Self {
            model,
            model_key: String::new(),
            layers,
            trainer: CavTrainer::default(),
            cache: None,
            batch_size: 32,
        })
    }

    /// Trains CAVs with `trainer`.
    pub fn trainer(mut self, trainer: CavTrainer) -> Self {
        self.trainer = trainer;
        self
    }

    /// Keeps concept activations in `cache` (its model key is recorded in every CAV).
    pub fn cache(mut self, cache: ActivationCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Records `key` as the model in CAVs and reports (set by [`Tcav::cache`] otherwise).
    pub fn model_key(mut self, key: impl Into<String>) -> Self {
        self.model_key = key.into();
        self
    }

    /// Inputs per forward/backward pass (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The layers.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    fn key(&self) -> String {
        if !self.model_key.is_empty() {
            return self.model_key.clone();
        }
        self.cache
            .as_ref()
            .map(|c| c.model_key().as_str().to_string())
            .unwrap_or_default()
    }

    /// `concept`'s activations at every layer, flat `[examples, features]`, from the cache when
    /// there is one.
    pub fn activations(&self, concept: &Concept, stats: &mut CacheStats) -> Result<Vec<DynTensor>> {
        let acts = match &self.cache {
            Some(cache) => {
                cache.activations(self.model, concept, &self.layers, self.batch_size, stats)?
            }
            None => {
                stats.misses += self.layers.len();
                layer_activations(
                    self.model,
                    concept.examples(),
                    &self.layers,
                    self.batch_size,
                )?
            }
        };
        Ok(acts
            .into_iter()
            .map(|a| {
                let [n, f] = a.flat().dims();
                DynTensor::from_flat(a.into_flat(), vec![n, f]).expect("flat shape")
            })
            .collect())
    }

    /// One CAV per experimental set (two or more concepts each) per layer: `[set][layer]`.
    pub fn compute_cavs(&self, experimental_sets: &[Vec<&Concept>]) -> Result<Vec<Vec<Cav>>> {
        let mut stats = CacheStats::default();
        let mut acts: Vec<(String, Vec<DynTensor>)> = Vec::new();
        for set in experimental_sets {
            for c in set {
                if !acts.iter().any(|(f, _)| f == c.fingerprint()) {
                    acts.push((
                        c.fingerprint().to_string(),
                        self.activations(c, &mut stats)?,
                    ));
                }
            }
        }
        let find = |c: &Concept| &acts.iter().find(|(f, _)| f == c.fingerprint()).unwrap().1;
        let mut out: Vec<Vec<Cav>> = vec![Vec::new(); experimental_sets.len()];
        for (l, layer) in self.layers.iter().enumerate() {
            let sets: Vec<(Vec<String>, Vec<&DynTensor>)> = experimental_sets
                .iter()
                .map(|set| {
                    (
                        set.iter().map(|c| c.name().to_string()).collect(),
                        set.iter().map(|c| &find(c)[l]).collect(),
                    )
                })
                .collect();
            for (slot, mut cav) in out.iter_mut().zip(self.trainer.train_many(&sets, layer)?) {
                cav.model = self.key();
                slot.push(cav);
            }
        }
        Ok(out)
    }

    /// A relative CAV per layer: `concept` against the union of `others`' examples (TCAV paper,
    /// relative TCAV). Row 0 is `concept`'s direction.
    pub fn relative_cavs(&self, concept: &Concept, others: &[&Concept]) -> Result<Vec<Cav>> {
        if others.is_empty() {
            return Err(Error::parameter(
                "others",
                "[]",
                "a relative CAV needs at least one other concept",
            ));
        }
        let union = DynTensor::cat(others.iter().map(|c| c.examples().clone()).collect())?;
        let name = others
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join("+");
        let union = Concept::from_tensor(name, union)?;
        Ok(self.compute_cavs(&[vec![concept, &union]])?.remove(0))
    }

    /// The gradient of `target` at every layer for `inputs`, flat `[inputs, features]` per layer,
    /// from one forward and backward pass per batch for all layers.
    pub fn gradients(&self, inputs: &DynTensor, target: &Target) -> Result<Vec<DynTensor>> {
        multi_layer_gradients(self.model, inputs, &self.layers, target, self.batch_size)
    }

    /// TCAV scores of every concept of every CAV for `inputs` and `target`: `[set][layer][concept]`.
    /// `cavs` is `[set][layer]` as [`Tcav::compute_cavs`] returns it (or loaded from disk).
    pub fn interpret(
        &self,
        inputs: &DynTensor,
        target: &Target,
        cavs: &[Vec<Cav>],
    ) -> Result<Vec<Vec<Vec<TcavScore>>>> {
        let grads = self.gradients(inputs, target)?;
        let mut out: Vec<Vec<Vec<TcavScore>>> = vec![Vec::new(); cavs.len()];
        for (l, g) in grads.iter().enumerate() {
            let layer_cavs: Vec<&Cav> = cavs
                .iter()
                .map(|per_layer| {
                    per_layer.get(l).ok_or_else(|| {
                        Error::parameter("cavs", per_layer.len(), "give one CAV per layer")
                    })
                })
                .collect::<Result<_>>()?;
            for (slot, s) in out.iter_mut().zip(scores(g, &layer_cavs)?) {
                slot.push(s);
            }
        }
        Ok(out)
    }

    /// The TCAV protocol: each concept against `n_runs` random concepts, a random null concept
    /// per run against the same counterparts, at every layer and for every target; two-sided t-tests of
    /// the concept's scores against the null's, Bonferroni-corrected across all of them.
    pub fn experiment(
        &self,
        concepts: &[Concept],
        random: &RandomConcepts,
        targets: &[TargetInputs],
        config: &ExperimentConfig,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ExperimentReport> {
        if concepts.is_empty() {
            return Err(Error::parameter(
                "concepts",
                "[]",
                "give at least one concept",
            ));
        }
        if targets.is_empty() {
            return Err(Error::parameter(
                "targets",
                "[]",
                "give at least one target",
            ));
        }
        if !(config.alpha > 0.0 && config.alpha < 1.0) {
            return Err(Error::parameter("alpha", config.alpha, "must be in (0, 1)"));
        }
        let mut stats = CacheStats::default();
        // Random concepts' activations. Run k compares the concept with random counterpart k and,
        // for the null hypothesis, another random concept (`null_of[k]`) with the same counterpart.
        // Each run has its own null concept so that the random scores are independent samples,
        // as the t-test assumes (one shared null concept would bias every null score alike).
        let (random_acts, n_runs, null_of): (Vec<Vec<DynTensor>>, usize, Vec<usize>) = match random
        {
            RandomConcepts::Pool(pool) => {
                if config.n_runs < 2 {
                    return Err(Error::parameter(
                        "n_runs",
                        config.n_runs,
                        "a t-test needs at least 2 random runs",
                    ));
                }
                let largest = concepts.iter().map(Concept::len).max().unwrap_or(1);
                let size = config.random_size.unwrap_or(largest);
                if size == 0 || size > pool.len() {
                    return Err(Error::parameter(
                        "random_size",
                        size,
                        format!("must be in 1..={} (the random pool's size)", pool.len()),
                    ));
                }
                let acts = self.activations(pool, &mut stats)?;
                progress(Progress::Activations {
                    concept: pool.name().to_string(),
                });
                let mut rng = StdRng::seed_from_u64(config.seed);
                // A run's null concept and counterpart are disjoint when the pool allows: an image
                // in both, with opposite labels, would only blur their CAV.
                let n = config.n_runs;
                let mut counterparts = Vec::with_capacity(n);
                let mut nulls = Vec::with_capacity(n);
                for _ in 0..n {
                    let (mut a, mut b) = if 2 * size <= pool.len() {
                        let rows = sample(&mut rng, pool.len(), 2 * size).into_vec();
                        (rows[..size].to_vec(), rows[size..].to_vec())
                    } else {
                        (
                            sample(&mut rng, pool.len(), size).into_vec(),
                            sample(&mut rng, pool.len(), size).into_vec(),
                        )
                    };
                    a.sort_unstable();
                    b.sort_unstable();
                    counterparts.push(acts.iter().map(|t| select_rows(t, &a)).collect());
                    nulls.push(acts.iter().map(|t| select_rows(t, &b)).collect());
                }
                counterparts.extend(nulls);
                (counterparts, n, (n..2 * n).collect())
            }
            RandomConcepts::Sets(sets) => {
                if sets.len() < 3 {
                    return Err(Error::parameter(
                        "random",
                        format!("{} random concept(s)", sets.len()),
                        "a t-test needs at least 3 random concepts (each run's null concept is the next run's counterpart)",
                    ));
                }
                let mut all = Vec::new();
                for set in sets {
                    all.push(self.activations(set, &mut stats)?);
                    progress(Progress::Activations {
                        concept: set.name().to_string(),
                    });
                }
                let n = sets.len();
                (all, n, (0..n).map(|k| (k + 1) % n).collect())
            }
        };
        let mut concept_acts = Vec::new();
        for c in concepts {
            concept_acts.push(self.activations(c, &mut stats)?);
            progress(Progress::Activations {
                concept: c.name().to_string(),
            });
        }
        // Gradients do not depend on the concept: one pass per target for every layer.
        let target_grads = targets
            .iter()
            .map(|t| self.gradients(&t.inputs, &Target::class(t.class)))
            .collect::<Result<Vec<_>>>()?;
        let random_name = |k: usize| format!("random_{k}");
        let mut results = Vec::new();
        let mut random_cav_accuracies = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            // Experimental sets: (concept c, random k) for every c and k, then each run's
            // (null random, random k).
            let mut sets: Vec<(Vec<String>, Vec<&DynTensor>)> = Vec::new();
            for (c, acts) in concepts.iter().zip(&concept_acts) {
                for (k, counterpart) in random_acts.iter().take(n_runs).enumerate() {
                    sets.push((
                        vec![c.name().to_string(), random_name(k)],
                        vec![&acts[l], &counterpart[l]],
                    ));
                }
            }
            for k in 0..n_runs {
                sets.push((
                    vec![random_name(null_of[k]), random_name(k)],
                    vec![&random_acts[null_of[k]][l], &random_acts[k][l]],
                ));
            }
            let cavs = self.trainer.train_many(&sets, layer)?;
            progress(Progress::Cavs {
                layer: layer.clone(),
                count: cavs.len(),
            });
            let null_start = concepts.len() * n_runs;
            random_cav_accuracies.push((
                layer.clone(),
                cavs[null_start..].iter().map(|c| c.accuracy).collect(),
            ));
            let cav_refs: Vec<&Cav> = cavs.iter().collect();
            for (t, grads) in targets.iter().zip(&target_grads) {
                // Only row 0 of each CAV (the concept's, or the null random's) is tested.
                let all = scores(&grads[l], &cav_refs)?;
                progress(Progress::Scored {
                    layer: layer.clone(),
                    target: t.name.clone(),
                });
                let random_scores: Vec<TcavScore> =
                    all[null_start..].iter().map(|s| s[0]).collect();
                for (ci, c) in concepts.iter().enumerate() {
                    let range = ci * n_runs..(ci + 1) * n_runs;
                    let concept_scores: Vec<TcavScore> =
                        all[range.clone()].iter().map(|s| s[0]).collect();
                    results.push(ConceptResult {
                        concept: c.name().to_string(),
                        layer: layer.clone(),
                        target: t.name.clone(),
                        class: t.class,
                        cav_accuracies: cavs[range].iter().map(|c| c.accuracy).collect(),
                        concept_scores,
                        random_scores: random_scores.clone(),
                        mean: 0.0,
                        std: 0.0,
                        random_mean: 0.0,
                        random_std: 0.0,
                        t_statistic: f64::NAN,
                        p_value: 1.0,
                        p_adjusted: 1.0,
                        significant: false,
                        verdict: String::new(),
                    });
                }
            }
        }
        let tests = results.len();
        for r in &mut results {
            let a: Vec<f64> = r
                .concept_scores
                .iter()
                .map(|s| config.score.of(s) as f64)
                .collect();
            let b: Vec<f64> = r
                .random_scores
                .iter()
                .map(|s| config.score.of(s) as f64)
                .collect();
            let test = ttest_ind(&a, &b)?;
            (r.mean, r.std) = mean_std(&a);
            (r.random_mean, r.random_std) = mean_std(&b);
            r.t_statistic = test.statistic;
            r.p_value = test.p_value;
            r.p_adjusted = bonferroni(test.p_value, tests);
            r.significant = r.p_adjusted < config.alpha;
            r.verdict = if r.significant {
                let direction = if r.mean > r.random_mean {
                    "more"
                } else {
                    "less"
                };
                format!(
                    "significant: `{}` matters to `{}` at {} ({direction} than random, p = {:.2e} after Bonferroni)",
                    r.concept, r.target, r.layer, r.p_adjusted
                )
            } else {
                format!(
                    "not significant: `{}` is indistinguishable from random for `{}` at {} (p = {:.2e} after Bonferroni)",
                    r.concept, r.target, r.layer, r.p_adjusted
                )
            };
        }
        Ok(ExperimentReport {
            model: self.key(),
            layers: self.layers.clone(),
            concepts: concepts
                .iter()
                .map(|c| (c.name().to_string(), c.len()))
                .collect(),
            targets: targets
                .iter()
                .map(|t| (t.name.clone(), t.class, t.inputs.batch()))
                .collect(),
            config: config.clone(),
            trainer: self.trainer.clone(),
            tests,
            results,
            random_cav_accuracies,
            cache: (stats.hits, stats.misses),
        })
    }
}
