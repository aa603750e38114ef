//! What the native and the wasm tests share: the bundled model and photo compiled in (a wasm test
//! has no file system), the cases both run, and how their results are summarised and compared.

#![allow(dead_code)] // each test binary uses its own part

use firelight_web::{ExplainOptions, WebSession};
use serde::{Deserialize, Serialize};

pub const MODEL: &[u8] = include_bytes!("../../../../models/efficientnet_lite0/model.onnx");
pub const LABELS: &str = include_str!("../../../../models/efficientnet_lite0/labels.json");
pub const PREPROCESS: &str = include_str!("../../../../models/efficientnet_lite0/preprocess.json");
pub const PHOTO: &[u8] = include_bytes!("../../../../models/images/chelsea.png");

/// The native results, written by `FIRELIGHT_REGENERATE=1 cargo test --test native` and read by
/// both test binaries: the native test proves they are today's native numbers, the wasm test that
/// wasm gives the same.
pub const FIXTURE: &str = include_str!("../fixtures/chelsea_native.json");

/// The methods compared, with the page's options for them.
pub const CASES: [(&str, &str); 4] = [
    ("saliency", "{}"),
    ("integrated_gradients", r#"{"n_steps": 16}"#),
    ("gradcam", "{}"),
    ("occlusion", r#"{"window": 56, "stride": 56}"#),
];

/// Every value of a 150,528-element map would make a 3 MB fixture; every 61st (a stride prime to
/// the rows, channels and windows) with the sums and extremes pins it down as well.
const STRIDE: usize = 61;

/// The largest difference allowed, relative to the reference's largest magnitude.
pub const TOLERANCE: f32 = 1e-5;

/// Integrated Gradients' elements are compared at this (its sums at [`TOLERANCE`]): see the
/// native test `integrated_gradients_moves_more_under_a_one_ulp_nudge_than_the_wasm_tolerance`.
pub const IG_TOLERANCE: f32 = 1e-3;

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct Summary {
    pub shape: Vec<usize>,
    pub target: usize,
    pub sum: f64,
    pub abs_sum: f64,
    pub max_abs: f32,
    pub samples: Vec<f32>,
}

impl Summary {
    pub fn of(shape: Vec<usize>, target: usize, values: &[f32]) -> Self {
        Self {
            shape,
            target,
            sum: values.iter().map(|&v| f64::from(v)).sum(),
            abs_sum: values.iter().map(|&v| f64::from(v.abs())).sum(),
            max_abs: values.iter().fold(0.0f32, |m, v| m.max(v.abs())),
            samples: values.iter().step_by(STRIDE).copied().collect(),
        }
    }

    /// The largest difference of the sampled elements from `want`'s, relative to `want`'s
    /// largest magnitude, and of the sums, relative to the sum of magnitudes; an error for
    /// another shape or target.
    pub fn difference(&self, want: &Summary) -> Result<(f32, f32), String> {
        if (&self.shape, self.target) != (&want.shape, want.target) {
            return Err(format!(
                "shape {:?} target {} vs {:?} target {}",
                self.shape, self.target, want.shape, want.target
            ));
        }
        let scale = want.max_abs.max(f32::MIN_POSITIVE);
        let samples = self
            .samples
            .iter()
            .zip(&want.samples)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs() / scale));
        let sums = ((self.sum - want.sum).abs() / want.abs_sum.max(f64::MIN_POSITIVE)) as f32;
        let abs_sums =
            ((self.abs_sum - want.abs_sum).abs() / want.abs_sum.max(f64::MIN_POSITIVE)) as f32;
        Ok((samples, sums.max(abs_sums)))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct Fixture {
    pub top5: Vec<(usize, f32)>,
    pub methods: Vec<(String, Summary)>,
}

pub fn session() -> WebSession {
    WebSession::load("EfficientNet-Lite0", MODEL, Some(LABELS), Some(PREPROCESS))
        .expect("the bundled model loads")
}

/// The predictions and every case's summary, computed by `session`.
pub fn compute(session: &WebSession) -> Fixture {
    let top5 = session
        .predict(PHOTO, "chelsea.png", 5)
        .expect("predicts")
        .into_iter()
        .map(|c| (c.class, c.probability))
        .collect();
    let methods = CASES
        .iter()
        .map(|(method, options)| {
            let options = ExplainOptions::from_json(options).expect("valid options");
            let e = session
                .explain(PHOTO, "chelsea.png", method, &options, None)
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let summary = Summary::of(e.shape.clone(), e.target.class, &e.values);
            (method.to_string(), summary)
        })
        .collect();
    Fixture { top5, methods }
}

/// Checks `got` against the committed native fixture; returns each case's differences (of its
/// elements, of its sums).
pub fn check(got: &Fixture) -> Vec<(String, f32, f32)> {
    let want: Fixture = serde_json::from_str(FIXTURE).expect("the fixture parses");
    let classes = |f: &Fixture| f.top5.iter().map(|(c, _)| *c).collect::<Vec<_>>();
    assert_eq!(classes(got), classes(&want), "top-5 classes");
    for ((_, p), (_, q)) in got.top5.iter().zip(&want.top5) {
        assert!((p - q).abs() <= TOLERANCE, "top-5 probability {p} vs {q}");
    }
    assert_eq!(got.methods.len(), want.methods.len(), "cases");
    let mut found = Vec::new();
    for ((name, summary), (want_name, want)) in got.methods.iter().zip(&want.methods) {
        assert_eq!(name, want_name);
        let (elements, sums) = summary
            .difference(want)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        found.push((name.clone(), elements, sums));
    }
    let within = |(name, elements, sums): &(String, f32, f32)| {
        let bound = match name.as_str() {
            "integrated_gradients" => IG_TOLERANCE,
            _ => TOLERANCE,
        };
        *elements <= bound && *sums <= TOLERANCE
    };
    assert!(
        found.iter().all(within),
        "differences from native (elements relative to each map's largest magnitude, sums to \
         its sum of magnitudes): {found:?}"
    );
    found
}
