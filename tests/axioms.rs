//! Axioms of the gradient methods as property tests on tiny random models (flex).

mod common;

use common::*;
use firelight::core::{Recorder, TapHook};
use firelight::models::{Mlp, RandomWeights, SmallCnn};
use firelight::prelude::*;
use proptest::prelude::*;

fn mlp(seed: u64, sizes: &[usize]) -> Mlp {
    Mlp::new(sizes, &mut RandomWeights::new(seed), &device()).unwrap()
}

fn cnn(seed: u64) -> SmallCnn {
    SmallCnn::new(&mut RandomWeights::new(seed), &device()).unwrap()
}

fn output_scale(model: &dyn Model, x: &DynTensor, target: &Target) -> f32 {
    let out = model.predict(&x.clone().into()).unwrap();
    let samples: Vec<usize> = (0..x.batch()).collect();
    values1(&target.scores(out, &samples).unwrap())
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

proptest! {
    // A fixed seed: CI runs the same cases every time.
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Completeness: attributions sum to f(x) - f(baseline), and the error shrinks with n_steps.
    #[test]
    fn integrated_gradients_is_complete(seed in 0u64..1000, class in 0usize..3) {
        let model = mlp(seed, &[6, 16, 3]);
        let x = pseudo_random(&[3, 6], seed + 1, 2.0);
        let target = Target::class(class);
        let scale = output_scale(&model, &x, &target).max(1e-3);
        let ig = |n| IntegratedGradients::new(&model)
            .n_steps(n)
            .method(Approximation::RiemannMiddle)
            .baselines(Baseline::Constant(0.1))
            .attribute_with_convergence_delta(&x, &target)
            .unwrap();
        let coarse = max_abs(&values1(&ig(4).1));
        let (attr, delta) = ig(400);
        let fine = max_abs(&values1(&delta));
        // The midpoint rule's error at a ReLU kink scales with the gradient jump, which the
        // attributions' magnitude bounds, times the step 1/n.
        let l1: f32 = values(&attr).iter().map(|v| v.abs()).sum();
        prop_assert!(fine <= 2e-3 * (scale + l1) + 1e-5, "delta {fine} at 400 steps, scale {scale}, l1 {l1}");
        prop_assert!(fine <= coarse + 1e-5, "delta grew from {coarse} to {fine}");
    }

    /// The same on a CNN with batch norm, pooling and a residual add (Gauss-Legendre default).
    #[test]
    fn integrated_gradients_is_complete_on_cnn(seed in 0u64..1000) {
        let model = cnn(seed);
        let x = pseudo_random(&[2, 3, 8, 8], seed + 7, 1.0);
        let target = Target::classes(vec![1, 4]);
        let scale = output_scale(&model, &x, &target).max(1e-3);
        let (_, delta) = IntegratedGradients::new(&model)
            .n_steps(300)
            .attribute_with_convergence_delta(&x, &target)
            .unwrap();
        let delta = max_abs(&values1(&delta));
        prop_assert!(delta <= 2e-2 * scale + 1e-4, "delta {delta}, scale {scale}");
    }

    /// On a linear model: IG = InputXGradient = (x - b) * w, and Saliency = |w|.
    #[test]
    fn linear_model_identities(seed in 0u64..1000, class in 0usize..4) {
        let model = mlp(seed, &[5, 4]);
        let x = pseudo_random(&[2, 5], seed + 3, 3.0);
        let target = Target::class(class);
        let w = model.first_weight().to_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let w_row = &w[class * 5..class * 5 + 5];
        let xs = values(&x);
        let b = 0.5f32;
        let expected_ig: Vec<f32> = xs.iter().enumerate().map(|(i, v)| (v - b) * w_row[i % 5]).collect();
        let expected_ixg: Vec<f32> = xs.iter().enumerate().map(|(i, v)| v * w_row[i % 5]).collect();
        let expected_sal: Vec<f32> = (0..10).map(|i| w_row[i % 5].abs()).collect();

        let ig = IntegratedGradients::new(&model).baselines(Baseline::Constant(b)).n_steps(7)
            .attribute(&x, &target).unwrap();
        prop_assert!(max_abs_diff(&values(&ig), &expected_ig) < 1e-5);
        let ixg = InputXGradient::new(&model).attribute(&x, &target).unwrap();
        prop_assert!(max_abs_diff(&values(&ixg), &expected_ixg) < 1e-5);
        // With a zero baseline the two coincide exactly.
        let ig0 = IntegratedGradients::new(&model).attribute(&x, &target).unwrap();
        prop_assert!(max_abs_diff(&values(&ig0), &values(&ixg)) < 1e-5);
        let sal = Saliency::new(&model).attribute(&x, &target).unwrap();
        prop_assert!(max_abs_diff(&values(&sal), &expected_sal) < 1e-6);
    }

    /// NoiseTunnel with zero noise is its base method.
    #[test]
    fn noise_tunnel_with_zero_stdev_is_the_base_method(seed in 0u64..1000) {
        let model = mlp(seed, &[6, 10, 3]);
        let x = pseudo_random(&[2, 6], seed, 1.0);
        let target = Target::class(2);
        let base = values(&Saliency::new(&model).abs(false).attribute(&x, &target).unwrap());
        for kind in [NoiseType::SmoothGrad, NoiseType::SmoothGradSq, NoiseType::VarGrad] {
            let nt = NoiseTunnel::new(Saliency::new(&model).abs(false))
                .nt_type(kind).nt_samples(3).stdevs(0.0).seed(seed)
                .attribute(&x, &target).unwrap();
            let expected: Vec<f32> = match kind {
                NoiseType::SmoothGrad => base.clone(),
                NoiseType::SmoothGradSq => base.iter().map(|v| v * v).collect(),
                NoiseType::VarGrad => vec![0.0; base.len()],
            };
            prop_assert!(max_abs_diff(&values(&nt), &expected) < 1e-5, "{kind:?}");
        }
        // Per-sample baselines follow their sample through NoiseTunnel's expansion.
        let ig = IntegratedGradients::new(&model)
            .n_steps(8)
            .baselines(Baseline::Tensor(pseudo_random(&[2, 6], seed + 5, 0.5)));
        let direct = values(&ig.attribute(&x, &target).unwrap());
        let tunneled = NoiseTunnel::new(ig).stdevs(0.0).nt_samples(3).nt_samples_batch_size(2)
            .attribute(&x, &target).unwrap();
        prop_assert!(max_abs_diff(&values(&tunneled), &direct) < 1e-5);
    }

    /// Taps that only record leave every output unchanged.
    #[test]
    fn recording_taps_change_nothing(seed in 0u64..1000) {
        let model = cnn(seed);
        let x = pseudo_random(&[2, 3, 8, 8], seed, 1.0);
        let plain = model.predict(&x.clone().into()).unwrap();
        let names: Vec<String> = model.layers().into_iter().map(|l| l.name).collect();
        let mut recorder = Recorder::new(names.clone());
        let tapped = model.forward(&x.clone().into(), &mut Taps::with_hook(&mut recorder)).unwrap();
        let a = plain.to_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let b = tapped.to_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        // Bit-identical on flex; on fusing GPU backends a tap moves a kernel boundary, which may
        // change the last bit of a sum.
        prop_assert!(max_abs_diff(&a, &b) <= 1e-6 * (1.0 + max_abs(&b)), "{a:?} vs {b:?}");
        for name in &names {
            prop_assert!(recorder.get(name).is_some(), "layer {name} was not recorded");
        }
        let fc = values(recorder.get("fc").unwrap());
        prop_assert_eq!(fc, b);
    }

    /// internal_batch_size changes memory, not results.
    #[test]
    fn internal_batch_size_does_not_change_results(seed in 0u64..1000, ibs in 1usize..9) {
        let model = cnn(seed);
        let x = pseudo_random(&[3, 3, 8, 8], seed + 11, 1.0);
        let target = Target::classes(vec![0, 5, 9]);
        let close = |a: &DynTensor, b: &DynTensor| max_abs_diff(&values(a), &values(b)) <= 1e-5 * (1.0 + max_abs(&values(b)));

        let ig = IntegratedGradients::new(&model).n_steps(6);
        let full = ig.attribute(&x, &target).unwrap();
        let chunked = IntegratedGradients::new(&model).n_steps(6).internal_batch_size(ibs).attribute(&x, &target).unwrap();
        prop_assert!(close(&chunked, &full));

        let shap = |ibs: Option<usize>| {
            let s = GradientShap::new(&model).n_samples(4).stdevs(0.1).seed(seed)
                .baselines(Baseline::Distribution(pseudo_random(&[3, 3, 8, 8], 5, 0.2)));
            match ibs { Some(n) => s.internal_batch_size(n), None => s }.attribute(&x, &target).unwrap()
        };
        prop_assert!(close(&shap(Some(ibs)), &shap(None)));

        let cond = |ibs: Option<usize>| {
            let c = LayerConductance::new(&model, "layer1.relu1").unwrap().n_steps(5);
            match ibs { Some(n) => c.internal_batch_size(n), None => c }.attribute(&x, &target).unwrap()
        };
        prop_assert!(close(&cond(Some(ibs)), &cond(None)));

        let lig = |ibs: Option<usize>| {
            let c = LayerIntegratedGradients::new(&model, "conv2").unwrap().n_steps(5);
            match ibs { Some(n) => c.internal_batch_size(n), None => c }.attribute(&x, &target).unwrap()
        };
        prop_assert!(close(&lig(Some(ibs)), &lig(None)));

        let layer_shap = |ibs: Option<usize>| {
            let s = GradientShap::new(&model).layer("conv2").unwrap().n_samples(4).stdevs(0.1).seed(seed)
                .baselines(Baseline::Distribution(pseudo_random(&[3, 3, 8, 8], 5, 0.2)));
            match ibs { Some(n) => s.internal_batch_size(n), None => s }.attribute(&x, &target).unwrap()
        };
        prop_assert!(close(&layer_shap(Some(ibs)), &layer_shap(None)));

        let nt = |group: Option<usize>| {
            let n = NoiseTunnel::new(Saliency::new(&model)).nt_samples(4).stdevs(0.3).seed(seed);
            match group { Some(g) => n.nt_samples_batch_size(g), None => n }.attribute(&x, &target).unwrap()
        };
        prop_assert!(close(&nt(Some(1 + ibs % 4)), &nt(None)));
    }

    /// Same seed, same numbers; another seed, other numbers.
    #[test]
    fn stochastic_methods_are_deterministic_given_a_seed(seed in 0u64..1000) {
        let model = mlp(seed, &[6, 12, 3]);
        let x = pseudo_random(&[2, 6], seed, 1.0);
        let target = Target::class(0);
        let nt = |s| values(&NoiseTunnel::new(Saliency::new(&model)).stdevs(0.5).seed(s).attribute(&x, &target).unwrap());
        prop_assert_eq!(nt(seed), nt(seed));
        prop_assert_ne!(nt(seed), nt(seed + 1));
        let dist = Baseline::Distribution(pseudo_random(&[4, 6], seed, 1.0));
        let shap = |s| values(&GradientShap::new(&model).baselines(dist.clone()).seed(s).attribute(&x, &target).unwrap());
        prop_assert_eq!(shap(seed), shap(seed));
        prop_assert_ne!(shap(seed), shap(seed + 1));
    }

    /// Conductance and Layer IG through a layer every path crosses are complete too. Conductance
    /// uses the trapezoid points: Gauss-Legendre points (Captum's default) never reach 0 or 1, so
    /// its path stops just short of both ends.
    #[test]
    fn layer_methods_are_complete(seed in 0u64..1000) {
        let model = mlp(seed, &[5, 12, 8, 3]);
        let x = pseudo_random(&[2, 5], seed + 2, 2.0);
        let target = Target::class(1);
        let scale = output_scale(&model, &x, &target).max(1e-3);
        let (_, d1) = LayerConductance::new(&model, "relu1").unwrap().n_steps(300)
            .method(Approximation::RiemannTrapezoid)
            .attribute_with_convergence_delta(&x, &target).unwrap();
        prop_assert!(max_abs(&values1(&d1)) <= 1e-2 * scale + 1e-4, "conductance delta {:?}", values1(&d1));
        let (_, d2) = LayerIntegratedGradients::new(&model, "fc2").unwrap().n_steps(300)
            .attribute_with_convergence_delta(&x, &target).unwrap();
        prop_assert!(max_abs(&values1(&d2)) <= 1e-2 * scale + 1e-4, "layer IG delta {:?}", values1(&d2));
    }
}

/// Layer Gradient X Activation on the last linear layer of an MLP is the class logit per unit.
#[test]
fn layer_gradient_x_activation_at_logits_is_the_logit() {
    let model = mlp(3, &[4, 6, 5]);
    let x = pseudo_random(&[2, 4], 9, 1.0);
    let attr = LayerGradientXActivation::new(&model, "fc2")
        .unwrap()
        .attribute(&x, &Target::class(3))
        .unwrap();
    let logits = values(&DynTensor::new(model.predict(&x.clone().into()).unwrap()));
    let a = values(&attr);
    for sample in 0..2 {
        for j in 0..5 {
            let expected = if j == 3 { logits[sample * 5 + 3] } else { 0.0 };
            assert!((a[sample * 5 + j] - expected).abs() < 1e-6);
        }
    }
    let act = LayerActivation::new(&model, "fc2")
        .unwrap()
        .attribute(&x, &Target::class(0))
        .unwrap();
    assert_eq!(values(&act), logits);
}

/// Guided Backprop and Deconvolution pass only positive gradients through ReLUs.
#[test]
fn guided_relu_policies_follow_their_rules() {
    // A 1-hidden-layer MLP: d out / d x = W2 diag(relu'(h)) W1 with the rule applied at relu1.
    let model = mlp(21, &[3, 4, 2]);
    let x = pseudo_random(&[1, 3], 4, 1.0);
    let target = Target::class(1);
    struct Hidden(Option<Vec<f32>>);
    impl TapHook for Hidden {
        fn visit(&mut self, layer: &str, value: DynTensor) -> firelight::core::Result<DynTensor> {
            if layer == "fc1" {
                self.0 = Some(value.to_vec()?);
            }
            Ok(value)
        }
    }
    let mut hidden = Hidden(None);
    model
        .forward(&x.clone().into(), &mut Taps::with_hook(&mut hidden))
        .unwrap();
    let h = hidden.0.unwrap();
    // Weights from the same seed, in PyTorch layout.
    let mut src = RandomWeights::new(21);
    use firelight::models::WeightSource;
    let w1 = src.values("fc1.weight", &[4, 3]).unwrap();
    let _b1 = src.values("fc1.bias", &[4]).unwrap();
    let w2 = src.values("fc2.weight", &[2, 4]).unwrap();
    let upstream: Vec<f32> = (0..4).map(|j| w2[4 + j]).collect();
    let rule = |guided: bool, deconv: bool| -> Vec<f32> {
        (0..3)
            .map(|i| {
                (0..4)
                    .map(|j| {
                        let g = upstream[j];
                        let pass = if deconv {
                            g.max(0.0)
                        } else if guided {
                            if h[j] > 0.0 { g.max(0.0) } else { 0.0 }
                        } else if h[j] > 0.0 {
                            g
                        } else {
                            0.0
                        };
                        pass * w1[j * 3 + i]
                    })
                    .sum()
            })
            .collect()
    };
    let gbp = values(&GuidedBackprop::new(&model).attribute(&x, &target).unwrap());
    let dec = values(&Deconvolution::new(&model).attribute(&x, &target).unwrap());
    let sal = values(
        &Saliency::new(&model)
            .abs(false)
            .attribute(&x, &target)
            .unwrap(),
    );
    assert!(max_abs_diff(&sal, &rule(false, false)) < 1e-6, "{sal:?}");
    assert!(max_abs_diff(&gbp, &rule(true, false)) < 1e-6, "{gbp:?}");
    assert!(max_abs_diff(&dec, &rule(false, true)) < 1e-6, "{dec:?}");
}

/// GradientSHAP's expectation over its random path points is Integrated Gradients: with a single
/// baseline and no noise, many draws approach IG against that baseline.
#[test]
fn gradient_shap_converges_to_integrated_gradients() {
    let model = mlp(5, &[6, 16, 3]);
    let x = pseudo_random(&[2, 6], 8, 1.5);
    let baseline = pseudo_random(&[1, 6], 9, 0.3);
    let target = Target::classes(vec![0, 2]);
    let ig = IntegratedGradients::new(&model)
        .n_steps(400)
        .baselines(Baseline::Tensor(baseline.clone()))
        .attribute(&x, &target)
        .unwrap();
    let shap = GradientShap::new(&model)
        .n_samples(4000)
        .baselines(Baseline::Distribution(baseline))
        .seed(3)
        .attribute(&x, &target)
        .unwrap();
    let err = rel_l2(&values(&shap), &values(&ig));
    assert!(err < 0.05, "GradientSHAP vs IG: rel L2 {err}");
}

/// Layer GradientSHAP at a layer that is a linear function of the input (an MLP's first affine
/// layer) draws its points on the straight layer path too, so with a single baseline and no noise
/// its expectation is Layer Integrated Gradients there.
#[test]
fn layer_gradient_shap_converges_to_layer_integrated_gradients() {
    let model = mlp(6, &[6, 16, 3]);
    let x = pseudo_random(&[2, 6], 10, 1.5);
    let baseline = pseudo_random(&[1, 6], 11, 0.3);
    let target = Target::classes(vec![1, 2]);
    let lig = LayerIntegratedGradients::new(&model, "fc1")
        .unwrap()
        .n_steps(400)
        .baselines(Baseline::Tensor(baseline.clone()))
        .attribute(&x, &target)
        .unwrap();
    let shap = GradientShap::new(&model)
        .layer("fc1")
        .unwrap()
        .n_samples(4000)
        .baselines(Baseline::Distribution(baseline))
        .seed(4)
        .attribute(&x, &target)
        .unwrap();
    assert_eq!(shap.shape(), lig.shape());
    let err = rel_l2(&values(&shap), &values(&lig));
    assert!(
        err < 0.05,
        "LayerGradientShap vs LayerIntegratedGradients: rel L2 {err}"
    );
}

/// IG to a target delta: steps doubled until every sample's completeness error is within the
/// bound. Nesting rules reuse their points (the trapezoid evaluates exactly its final size),
/// Gauss-Legendre starts over; either way the result is plain IG at the size reported.
#[test]
fn integrated_gradients_to_a_target_delta_equals_plain_ig_at_the_steps_it_reports() {
    let model = cnn(11);
    let x = pseudo_random(&[2, 3, 12, 12], 4, 1.0);
    let target = Target::classes(vec![1, 3]);
    let bound = 1e-3 * output_scale(&model, &x, &target).max(1.0);
    for method in [
        firelight::grad::Approximation::RiemannTrapezoid,
        firelight::grad::Approximation::RiemannLeft,
        firelight::grad::Approximation::GaussLegendre,
    ] {
        // Gauss-Legendre is already within 1e-3 at 4 steps: it is held to a tighter bound.
        let bound = if method == firelight::grad::Approximation::GaussLegendre {
            bound / 10.0
        } else {
            bound
        };
        let ig = IntegratedGradients::new(&model).n_steps(4).method(method);
        let found = ig
            .attribute_to_delta(&x.clone().into(), &target, bound, 4096)
            .unwrap();
        let plain = IntegratedGradients::new(&model)
            .n_steps(found.n_steps)
            .method(method)
            .attribute(&x, &target)
            .unwrap();
        let got = values(&found.attributions.clone().into_single().unwrap());
        let err = rel_l2(&got, &values(&plain));
        println!(
            "{method:?}: {} steps, {} points evaluated, delta {:?} (bound {bound:.1e}), rel L2 to plain IG {err:.1e}",
            found.n_steps, found.evaluated_points, found.delta
        );
        assert!(found.converged, "{method:?}: {:?}", found.delta);
        assert!(found.delta.iter().all(|d| d.abs() <= bound));
        assert!(err < 1e-5, "{method:?}: {err}");
        assert!(
            found.n_steps > 4,
            "the start was not accurate enough: {:?}",
            found.delta
        );
        match method {
            firelight::grad::Approximation::GaussLegendre => {
                assert!(found.evaluated_points > found.n_steps)
            }
            _ => assert_eq!(found.evaluated_points, found.n_steps, "points reused"),
        }
    }
    // A bound that is not positive, and a ceiling below the start, are refused.
    let ig = IntegratedGradients::new(&model).n_steps(4);
    assert!(
        ig.attribute_to_delta(&x.clone().into(), &target, 0.0, 64)
            .is_err()
    );
    assert!(
        ig.attribute_to_delta(&x.clone().into(), &target, 1e-3, 2)
            .is_err()
    );
    // A ceiling that stops it early says it did not converge.
    let capped = ig
        .attribute_to_delta(&x.clone().into(), &target, 1e-12, 8)
        .unwrap();
    assert!(!capped.converged && capped.n_steps == 8);
}
