//! Parity with Captum 0.9 for the perturbation methods, on the small CNN (native) and the
//! diabetes MLP (ONNX): fixtures written by `tools/parity/perturb_fixtures.py` (see
//! `tests/fixtures/perturb/README.md`).
//!
//! - Deterministic methods (FeatureAblation, Occlusion, LayerFeatureAblation) and
//!   FeaturePermutation fed Captum's permutations: relative L2 error <= 1e-5.
//! - ShapleyValues: <= 1e-5 against the float64 exact values (`exact.npy`); Captum's own float32
//!   running sum over `n!` orderings drifts by the recorded `captum_vs_exact_max_abs`.
//! - ShapleyValueSampling, KernelShap and Lime fed Captum's recorded draws: <= 1e-4 (and the
//!   scores, weights and fitted models of every sample checked against Captum's).
//! - The same methods with firelight's own seeded draws: statistically, the distance to
//!   Captum's attributions is compared with Captum's own seed-to-seed spread.
//!
//! Run with `--nocapture` to see every measured error.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::core::npy::{read_npy, read_npy_tensor};
use firelight::models::{NpyWeights, SmallCnn};
use firelight::onnx::OnnxModel;
use firelight::perturb::{
    FeatureAblation, FeatureMask, FeaturePermutation, InterpretableModel, KernelShap,
    LayerFeatureAblation, Lime, MaskIds, Occlusion, ShapleyValueSampling, ShapleyValues,
};
use firelight::prelude::*;
use serde_json::Value as Json;

struct Fixture {
    dir: PathBuf,
    manifest: Json,
    model: Box<dyn Model>,
    inputs: DynTensor,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Fixture {
    let dir = root().join("tests/fixtures/perturb").join(name);
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let model: Box<dyn Model> = match name {
        "small_cnn" => Box::new(
            SmallCnn::new(
                &mut NpyWeights::new(root().join("tests/fixtures/small_cnn/weights")),
                &device(),
            )
            .unwrap(),
        ),
        "diabetes_mlp" => Box::new(
            OnnxModel::load(root().join("models/diabetes_mlp/model.onnx"), &device()).unwrap(),
        ),
        other => panic!("no model {other}"),
    };
    let inputs = read_npy_tensor(dir.join("inputs.npy"), &device()).unwrap();
    Fixture {
        dir,
        manifest,
        model,
        inputs,
    }
}

impl Fixture {
    /// The largest output of the model on the inputs (torch's).
    fn output_scale(&self) -> f32 {
        max_abs(&self.floats("outputs.npy"))
    }

    fn floats(&self, file: &str) -> Vec<f32> {
        read_npy(self.dir.join(file)).unwrap().data
    }

    fn tensor(&self, file: &str) -> DynTensor {
        read_npy_tensor(self.dir.join(file), &device()).unwrap()
    }

    /// An int64 array: its shape and values.
    fn ints(&self, file: &str) -> (Vec<usize>, Vec<usize>) {
        let ids = MaskIds::from_npy(self.dir.join(file)).unwrap();
        (ids.shape().to_vec(), ids.ids().to_vec())
    }

    fn case(&self, name: &str) -> &Json {
        self.manifest["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"))
    }

    fn cases(&self, method: &str) -> Vec<&Json> {
        self.manifest["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["method"] == method)
            .collect()
    }

    fn target(&self, case: &Json) -> Target {
        match &case["target"] {
            Json::Array(v) => {
                Target::classes(v.iter().map(|c| c.as_u64().unwrap() as usize).collect())
            }
            v => Target::class(v.as_u64().unwrap() as usize),
        }
    }

    fn baselines(&self, spec: &Json) -> Baseline {
        match spec["kind"].as_str() {
            None | Some("zero") => Baseline::Zeros,
            Some("scalar") => Baseline::Constant(spec["value"].as_f64().unwrap() as f32),
            Some("tensor") => Baseline::Tensor(self.tensor(spec["file"].as_str().unwrap())),
            Some(other) => panic!("unknown baseline kind {other}"),
        }
    }

    fn mask(&self, spec: &Json) -> FeatureMask {
        match spec.as_str() {
            None => FeatureMask::Elements,
            Some(file) => FeatureMask::from_npy(self.dir.join(file)).unwrap(),
        }
    }

    fn expected(&self, case: &Json) -> Vec<f32> {
        self.floats(case["expected"].as_str().unwrap())
    }

    /// The case holding the draws of `case` (itself, or the case it repeats with another
    /// `perturbations_per_eval` or interpretable model).
    fn draws_case<'a>(&'a self, case: &'a Json) -> Option<&'a Json> {
        if case.get("draws").is_some() {
            return Some(case);
        }
        let (name, _) = case.get("max_abs_diff_vs")?.as_object()?.iter().next()?;
        Some(self.case(name)).filter(|c| c.get("draws").is_some())
    }

    /// `[rows][cols]` from a 2-D int array.
    fn table(&self, file: &str) -> Vec<Vec<usize>> {
        let (shape, v) = self.ints(file);
        v.chunks(shape[1]).map(<[usize]>::to_vec).collect()
    }

    /// `[batch][n_samples][M]` interpretable samples.
    fn samples(&self, file: &str) -> Vec<Vec<Vec<bool>>> {
        let (shape, v) = self.ints(file);
        let (n, m) = (shape[1], shape[2]);
        v.chunks(n * m)
            .map(|e| {
                e.chunks(m)
                    .map(|s| s.iter().map(|&b| b == 1).collect())
                    .collect()
            })
            .collect()
    }
}

fn usize_param(p: &Json, key: &str) -> usize {
    p[key].as_u64().unwrap_or_else(|| panic!("param {key}")) as usize
}

fn interpretable_model(p: &Json) -> InterpretableModel {
    let text = p["interpretable_model"].as_str().unwrap();
    let alpha = |t: &str| -> f64 {
        let start = t.find("alpha=").unwrap() + 6;
        let end = t[start..].find(')').unwrap() + start;
        t[start..end].parse().unwrap()
    };
    if text.starts_with("SkLearnLasso") {
        InterpretableModel::Lasso { alpha: alpha(text) }
    } else if text.starts_with("SkLearnRidge") {
        InterpretableModel::Ridge { alpha: alpha(text) }
    } else {
        InterpretableModel::LinearRegression
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Collects failures so that one test reports every case.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, line: String, ok: bool) {
        eprintln!("{}{line}", if ok { "  " } else { "! " });
        if !ok {
            self.failures.push(line);
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "parity failures:\n{}",
            self.failures.join("\n")
        );
    }
}

const MODELS: [&str; 2] = ["small_cnn", "diabetes_mlp"];

#[test]
fn model_outputs_match_torch() {
    for name in MODELS {
        let f = fixture(name);
        let out = DynTensor::new(f.model.predict(&f.inputs.clone().into()).unwrap());
        let err = rel_l2(&values(&out), &f.floats("outputs.npy"));
        eprintln!("{name}: outputs rel L2 {err:.2e}");
        assert!(err < 1e-5, "{name}: outputs differ from torch: {err}");
    }
}

#[test]
fn deterministic_methods_match_captum() {
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        let m = &*f.model;
        for case in f
            .cases("FeatureAblation")
            .into_iter()
            .chain(f.cases("Occlusion"))
            .chain(f.cases("LayerFeatureAblation"))
        {
            let p = &case["params"];
            let t = f.target(case);
            let per_eval = usize_param(p, "perturbations_per_eval");
            let got = match case["method"].as_str().unwrap() {
                "FeatureAblation" => FeatureAblation::new(m)
                    .baselines(f.baselines(&p["baselines"]))
                    .feature_mask(f.mask(&p["feature_mask"]))
                    .perturbations_per_eval(per_eval)
                    .attribute(&f.inputs, &t),
                "Occlusion" => {
                    let window: Vec<usize> = p["sliding_window_shapes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect();
                    let strides: Vec<usize> = match &p["strides"] {
                        Json::Array(v) => v.iter().map(|s| s.as_u64().unwrap() as usize).collect(),
                        s => vec![s.as_u64().unwrap() as usize],
                    };
                    Occlusion::new(m, window)
                        .strides(strides)
                        .baselines(f.baselines(&p["baselines"]))
                        .perturbations_per_eval(per_eval)
                        .attribute(&f.inputs, &t)
                }
                _ => {
                    let layer = p
                        .get("onnx_tensor")
                        .and_then(Json::as_str)
                        .unwrap_or_else(|| p["layer"].as_str().unwrap());
                    LayerFeatureAblation::new(m, layer)
                        .unwrap()
                        .layer_baselines(f.baselines(&p["layer_baselines"]))
                        .layer_mask(f.mask(&p["layer_mask"]))
                        .perturbations_per_eval(per_eval)
                        .attribute(&f.inputs, &t)
                }
            }
            .unwrap();
            let expected = f.expected(case);
            let err = rel_l2(&values(&got), &expected);
            let diff = max_abs_diff(&values(&got), &expected);
            // An attribution is a difference of two float32 outputs: where the attributions
            // are tiny next to the outputs (one pixel of the CNN), their relative error is that
            // of the outputs' last bits, whichever framework computes them.
            let floor = 8.0 * f32::EPSILON * f.output_scale();
            report.check(
                format!(
                    "{name}/{:<44} rel L2 {err:.2e}, max abs {diff:.1e} (float32 floor {floor:.1e})",
                    case["name"].as_str().unwrap()
                ),
                (err <= 1e-5 || diff <= floor) && got.shape().iter().product::<usize>() == expected.len(),
            );
        }
    }
    report.finish();
}

#[test]
fn feature_permutation_matches_captum() {
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        let m = &*f.model;
        for case in f.cases("FeaturePermutation") {
            let p = &case["params"];
            let t = f.target(case);
            let method = || {
                FeaturePermutation::new(m)
                    .feature_mask(f.mask(&p["feature_mask"]))
                    .perturbations_per_eval(usize_param(p, "perturbations_per_eval"))
            };
            let expected = f.expected(case);
            let perms = f.table(case["draws"]["perms"].as_str().unwrap());
            let replay = method()
                .permutations(perms)
                .attribute(&f.inputs, &t)
                .unwrap();
            let err = rel_l2(&values(&replay), &expected);
            report.check(
                format!(
                    "{name}/{:<44} replay rel L2 {err:.2e}",
                    case["name"].as_str().unwrap()
                ),
                err <= 1e-5,
            );
            if let Some(spread) = case.get("seed_spread") {
                statistical(
                    &mut report,
                    name,
                    case,
                    spread,
                    &values(&method().attribute(&f.inputs, &t).unwrap()),
                    &expected,
                );
            }
        }
    }
    report.finish();
}

/// firelight's own draws against Captum's: the largest difference, as a multiple of Captum's
/// seed-to-seed spread (two independent draws of the same estimator), must stay under 4.
fn statistical(
    report: &mut Report,
    model: &str,
    case: &Json,
    spread: &Json,
    ours: &[f32],
    captum: &[f32],
) {
    let diff = max_abs_diff(ours, captum) as f64;
    let seed = spread["max_abs_diff"].as_f64().unwrap();
    let ratio = diff / seed.max(1e-12);
    report.check(
        format!(
            "{model}/{:<44} own draws: max abs diff {diff:.2e} = {ratio:.2} x Captum's seed spread {seed:.2e}",
            case["name"].as_str().unwrap()
        ),
        ratio < 4.0 || diff < 1e-4 * f64::from(max_abs(captum)),
    );
}

#[test]
fn shapley_values_match_captum() {
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        for case in f.cases("ShapleyValues") {
            let p = &case["params"];
            let got = ShapleyValues::new(&*f.model)
                .baselines(f.baselines(&p["baselines"]))
                .feature_mask(f.mask(&p["feature_mask"]))
                .perturbations_per_eval(usize_param(p, "perturbations_per_eval"))
                .attribute(&f.inputs, &f.target(case))
                .unwrap();
            let got = values(&got);
            let exact = f.floats(case["exact"].as_str().unwrap());
            let err = rel_l2(&got, &exact);
            let captum = f.expected(case);
            let vs_captum = max_abs_diff(&got, &captum) as f64;
            let drift = case["captum_vs_exact_max_abs"].as_f64().unwrap();
            report.check(
                format!(
                    "{name}/{:<44} rel L2 {err:.2e} vs exact; max abs {vs_captum:.2e} vs Captum (Captum's float32 drift {drift:.2e})",
                    case["name"].as_str().unwrap()
                ),
                err <= 1e-5 && vs_captum <= 1.5 * drift + 1e-5 * f64::from(max_abs(&captum)),
            );
        }
    }
    report.finish();
}

#[test]
fn shapley_value_sampling_matches_captum() {
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        for case in f.cases("ShapleyValueSampling") {
            let p = &case["params"];
            let method = || {
                ShapleyValueSampling::new(&*f.model)
                    .baselines(f.baselines(&p["baselines"]))
                    .feature_mask(f.mask(&p["feature_mask"]))
                    .n_samples(usize_param(p, "n_samples"))
                    .perturbations_per_eval(usize_param(p, "perturbations_per_eval"))
            };
            let t = f.target(case);
            let expected = f.expected(case);
            let perms = f.table(case["draws"]["perms"].as_str().unwrap());
            let replay = method()
                .permutations(perms)
                .attribute(&f.inputs, &t)
                .unwrap();
            let err = rel_l2(&values(&replay), &expected);
            report.check(
                format!(
                    "{name}/{:<44} replay rel L2 {err:.2e}",
                    case["name"].as_str().unwrap()
                ),
                err <= 1e-4,
            );
            if let Some(spread) = case.get("seed_spread") {
                let ours = values(&method().attribute(&f.inputs, &t).unwrap());
                statistical(&mut report, name, case, spread, &ours, &expected);
            }
        }
    }
    report.finish();
}

#[test]
fn kernel_shap_and_lime_match_captum() {
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        let m = &*f.model;
        for case in f.cases("KernelShap").into_iter().chain(f.cases("Lime")) {
            let p = &case["params"];
            let case_name = case["name"].as_str().unwrap();
            let t = f.target(case);
            let expected = f.expected(case);
            let is_lime = case["method"] == "Lime";
            // Both builders, configured alike.
            let run = |samples: Option<Vec<Vec<Vec<bool>>>>, surrogates: bool| {
                let n = usize_param(p, "n_samples");
                let per_eval = usize_param(p, "perturbations_per_eval");
                let (baselines, mask) = (f.baselines(&p["baselines"]), f.mask(&p["feature_mask"]));
                if is_lime {
                    let mut lime = Lime::new(m)
                        .interpretable_model(interpretable_model(p))
                        .baselines(baselines)
                        .feature_mask(mask)
                        .n_samples(n)
                        .perturbations_per_eval(per_eval);
                    if let Some(s) = samples {
                        lime = lime.interpretable_samples(s);
                    }
                    let attr = lime.attribute(&f.inputs, &t).unwrap();
                    (
                        attr,
                        surrogates.then(|| lime.surrogates(&f.inputs.clone().into(), &t).unwrap()),
                    )
                } else {
                    let mut ks = KernelShap::new(m)
                        .baselines(baselines)
                        .feature_mask(mask)
                        .n_samples(n)
                        .perturbations_per_eval(per_eval);
                    if let Some(s) = samples {
                        ks = ks.interpretable_samples(s);
                    }
                    let attr = ks.attribute(&f.inputs, &t).unwrap();
                    (
                        attr,
                        surrogates.then(|| ks.surrogates(&f.inputs.clone().into(), &t).unwrap()),
                    )
                }
            };
            if let Some(draws) = f.draws_case(case) {
                let d = &draws["draws"];
                let samples = f.samples(d["samples"].as_str().unwrap());
                let (attr, surrogates) = run(Some(samples), true);
                let err = rel_l2(&values(&attr), &expected);
                let surrogates = surrogates.unwrap();
                // What the fit saw: the scores and weights of every sample, against Captum's.
                let outputs: Vec<f32> = surrogates
                    .iter()
                    .flat_map(|s| s.outputs.iter().map(|&v| v as f32))
                    .collect();
                let weights: Vec<f32> = surrogates
                    .iter()
                    .flat_map(|s| s.weights.iter().map(|&v| v as f32))
                    .collect();
                let out_err = rel_l2(&outputs, &f.floats(d["model_outputs"].as_str().unwrap()));
                let w_err = rel_l2(&weights, &f.floats(d["similarities"].as_str().unwrap()));
                let mut line = format!(
                    "{name}/{case_name:<44} replay rel L2 {err:.2e} (sample scores {out_err:.1e}, weights {w_err:.1e}"
                );
                let mut ok = err <= 1e-4 && out_err <= 1e-5 && w_err <= 1e-5;
                if let Some(fit) = case.get("fit") {
                    let coefs: Vec<f32> = surrogates
                        .iter()
                        .flat_map(|s| s.fit.coef.iter().map(|&v| v as f32))
                        .collect();
                    let (what, reference) = reference_fit(&f, case, fit);
                    let c_err = max_abs_diff(&coefs, &reference);
                    line.push_str(&format!(", coefs max abs {c_err:.1e} vs {what}"));
                    ok &= f64::from(c_err) <= 1e-5 * (1.0 + f64::from(max_abs(&reference)));
                }
                line.push(')');
                report.check(line, ok);
            }
            if let Some(spread) = case.get("seed_spread") {
                let (ours, _) = run(None, false);
                statistical(&mut report, name, case, spread, &values(&ours), &expected);
            }
        }
    }
    report.finish();
}

/// What a fit must reproduce: the exact optimum for least squares and ridge; scikit-learn's own
/// coefficients for the Lasso, whose coordinate descent stops at its tolerance short of the
/// optimum (firelight's runs the same sweeps and stops at the same point).
fn reference_fit(f: &Fixture, case: &Json, fit: &Json) -> (&'static str, Vec<f32>) {
    match interpretable_model(&case["params"]) {
        InterpretableModel::Lasso { .. } => (
            "scikit-learn's (stopped at tol)",
            f.floats(fit["coefs"].as_str().unwrap()),
        ),
        _ => (
            "the exact optimum",
            f.floats(fit["coefs_exact"].as_str().unwrap()),
        ),
    }
}

#[test]
fn the_interpretable_models_fit_captum_s_training_sets() {
    // Captum's recorded samples, scores and weights straight into the solver, no model: the
    // coefficients against the float64 optimum, and against scikit-learn's own (float32, stopped
    // at its tolerance).
    let mut report = Report::default();
    for name in MODELS {
        let f = fixture(name);
        for case in f.cases("KernelShap").into_iter().chain(f.cases("Lime")) {
            let (Some(fit), Some(draws)) = (case.get("fit"), f.draws_case(case)) else {
                continue;
            };
            let d = &draws["draws"];
            let samples = f.samples(d["samples"].as_str().unwrap());
            let outputs = f64s(&f.floats(d["model_outputs"].as_str().unwrap()));
            let weights = f64s(&f.floats(d["similarities"].as_str().unwrap()));
            let model = interpretable_model(&case["params"]);
            let exact = f.floats(fit["coefs_exact"].as_str().unwrap());
            let sklearn = f.floats(fit["coefs"].as_str().unwrap());
            let exact_b = f.floats(fit["intercepts_exact"].as_str().unwrap());
            let (mut coefs, mut intercepts) = (Vec::new(), Vec::new());
            let mut at = 0;
            for z in &samples {
                let (n, m) = (z.len(), z[0].len());
                let x: Vec<f64> = z
                    .iter()
                    .flatten()
                    .map(|&b| f64::from(u8::from(b)))
                    .collect();
                let fitted = model
                    .fit(&x, n, m, &outputs[at..at + n], &weights[at..at + n])
                    .unwrap();
                at += n;
                coefs.extend(fitted.coef.iter().map(|&c| c as f32));
                intercepts.push(fitted.intercept as f32);
            }
            let vs_exact = f64::from(max_abs_diff(&coefs, &exact));
            let vs_b = f64::from(max_abs_diff(&intercepts, &exact_b));
            let vs_sklearn = f64::from(max_abs_diff(&coefs, &sklearn));
            let (what, reference) = reference_fit(&f, case, fit);
            let vs_reference = f64::from(max_abs_diff(&coefs, &reference));
            let lasso = what.starts_with("scikit");
            report.check(
                format!(
                    "{name}/{:<44} coefs max abs {vs_exact:.1e} vs exact, {vs_sklearn:.1e} vs sklearn; intercepts {vs_b:.1e} vs exact",
                    case["name"].as_str().unwrap()
                ),
                vs_reference <= 1e-5 * (1.0 + f64::from(max_abs(&reference)))
                    && (lasso || vs_b <= 1e-5 * (1.0 + f64::from(max_abs(&exact_b)))),
            );
        }
    }
    report.finish();
}
