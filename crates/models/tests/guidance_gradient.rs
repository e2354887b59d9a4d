//! The guidance gradient ∇_x log p(y | x_t, t): one backward pass for the whole batch equals
//! one pass per sample, and central finite differences of the documented forward pass.

use crate::common;

use candle_core::{Device, Tensor};
use models::{init_classifier, ClassifierConfig, ClassifierNet, NoisyClassifier};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// An untrained classifier with 3 classes (random weights give non-trivial gradients).
fn classifier() -> ClassifierNet {
    let cfg = ClassifierConfig {
        num_classes: 3,
        ..ClassifierConfig::default()
    };
    init_classifier(&cfg, &mut StdRng::seed_from_u64(42))
        .unwrap()
        .0
        .detached()
}

fn batch(n: usize) -> (Tensor, Vec<f32>, Tensor, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(9);
    let x: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-3.0f32..3.0)).collect();
    let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    (
        Tensor::from_slice(&x, (n, 2), &Device::Cpu).unwrap(),
        x,
        Tensor::from_slice(&y, n, &Device::Cpu).unwrap(),
        y,
    )
}

#[test]
fn batched_gradient_equals_one_sample_at_a_time() {
    let clf = classifier();
    let n = 64;
    let (x, _, y, _) = batch(n);
    for t in [1, 250, 500] {
        let batched = clf
            .grad_log_prob(&x, t, &y)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (i, row) in batched.iter().enumerate() {
            let xi = x.narrow(0, i, 1).unwrap();
            let yi = y.narrow(0, i, 1).unwrap();
            let single = clf
                .grad_log_prob(&xi, t, &yi)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for j in 0..2 {
                let (a, b) = (row[j], single[0][j]);
                // Different batch sizes may take different matmul blockings: f32 rounding only.
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "t={t} i={i}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn gradient_equals_finite_differences_of_the_documented_forward_pass() {
    let clf = classifier();
    let named = clf.named_tensors();
    let layers = common::host_layers(&named, "classifier");
    let table = common::to_f64(clf.embedding());
    let n = 32;
    let (x, xs, y, ys) = batch(n);
    for t in [1, 100, 250, 500] {
        let emb = &table[(t - 1) * 32..t * 32];
        let log_p = |p: &[f64], c: usize| {
            let input: Vec<f64> = p.iter().chain(emb).copied().collect();
            common::log_softmax(&common::host_mlp(&layers, &input))[c]
        };
        let grad = clf
            .grad_log_prob(&x, t, &y)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let lp = clf.log_probs(&x, t).unwrap().to_vec2::<f32>().unwrap();
        for i in 0..n {
            let p = [xs[2 * i] as f64, xs[2 * i + 1] as f64];
            let c = ys[i] as usize;
            // The candle forward pass is the documented one (f32 vs f64 rounding).
            assert!((lp[i][c] as f64 - log_p(&p, c)).abs() < 1e-4, "t={t} i={i}");
            for j in 0..2 {
                // f64 central differences, h = 1e-6: the net is piecewise linear, so the error
                // is rounding (~1e-16/1e-6) unless a relu kink lies within h (not at these points).
                let h = 1e-6;
                let (mut up, mut down) = (p, p);
                up[j] += h;
                down[j] -= h;
                let fd = (log_p(&up, c) - log_p(&down, c)) / (2.0 * h);
                // candle computes in f32: relative 1e-4 covers its accumulated rounding.
                let g = grad[i][j] as f64;
                assert!(
                    (g - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "t={t} i={i} j={j}: {g} vs {fd}"
                );
            }
        }
    }
}

#[test]
fn gradient_of_the_exact_classifier_is_batched_too() {
    let schedule = schedule::NoiseSchedule::notebook();
    let exact = models::ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule).unwrap();
    let clf = exact.classifier();
    let (x, xs, _, _) = batch(16);
    let ys: Vec<u32> = (0..16).map(|i| (i % 2) as u32).collect();
    let y = Tensor::from_slice(&ys, 16, &Device::Cpu).unwrap();
    let auto = clf
        .grad_log_prob(&x, 300, &y)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let host: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
    let targets: Vec<usize> = ys.iter().map(|&c| c as usize).collect();
    let analytic = clf.grad_log_prob_analytic(&host, 300, &targets).unwrap();
    for i in 0..16 {
        for j in 0..2 {
            let a = analytic[2 * i + j];
            // f64 autograd, rounded to f32 on output.
            assert!((auto[i][j] as f64 - a).abs() < 1e-6 * (1.0 + a.abs()));
        }
    }
}
