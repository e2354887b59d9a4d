//! The batched guidance gradient, computed by the classifier's `grad_log_prob` (candle
//! autograd, one backward pass over the whole batch), against the notebook's
//! one-sample-at-a-time method and against central finite differences.

use candle_core::{Device, Tensor};
use models::{init_classifier, ClassifierConfig, NoisyClassifier};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::common::exact;

const N: usize = 64;

fn random_points(seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..N * 2).map(|_| rng.random_range(-4.0f32..4.0)).collect()
}

fn batch(points: &[f32]) -> Tensor {
    Tensor::from_slice(points, (points.len() / 2, 2), &Device::Cpu).unwrap()
}

fn targets(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| i % 2).collect()
}

fn check(classifier: &dyn NoisyClassifier, t: usize, seed: u64) {
    let points = random_points(seed);
    let ys = targets(N);
    let y = Tensor::from_slice(&ys, N, &Device::Cpu).unwrap();
    let batched = classifier
        .grad_log_prob(&batch(&points), t, &y)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for i in 0..N {
        let row = &points[2 * i..2 * i + 2];
        // The notebook's way: one sample at a time.
        let yi = Tensor::from_slice(&ys[i..i + 1], 1, &Device::Cpu).unwrap();
        let single = classifier
            .grad_log_prob(&batch(row), t, &yi)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for j in 0..2 {
            let (b, s) = (batched[2 * i + j], single[j]);
            // f32 rounding: the same ops on a different batch layout may round differently
            // in matmul accumulation; 1e-5 relative to the gradient's size (≥ 1) is far
            // below any real difference.
            assert!(
                (b - s).abs() <= 1e-5 * (1.0 + s.abs()),
                "t={t} row {i} dim {j}: batched {b} vs single {s}"
            );
        }
        // Finite differences of log p(y_i | x, t) with h = 3e-3. A ReLU network is only
        // piecewise smooth: where a kink lies within h, the gradient takes one side, so the
        // gradient must match the central, forward or backward difference. Truncation
        // error O(h·f'') and f32 rounding O(1e-7·|log p|/h) are both ≲ 5e-4 here, so 3e-3
        // (relative) separates a correct gradient from a wrong one.
        let log_p = |x: &[f32]| -> f64 {
            let lp = classifier
                .log_probs(&batch(x), t)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            lp[0][ys[i] as usize] as f64
        };
        let at = log_p(row);
        for j in 0..2 {
            let h = 3e-3f32;
            let mut plus = row.to_vec();
            let mut minus = row.to_vec();
            plus[j] += h;
            minus[j] -= h;
            let (up, down) = (log_p(&plus), log_p(&minus));
            let h = h as f64;
            let candidates = [(up - down) / (2.0 * h), (up - at) / h, (at - down) / h];
            let g = batched[2 * i + j] as f64;
            assert!(
                candidates
                    .iter()
                    .any(|fd| (g - fd).abs() <= 3e-3 * (1.0 + fd.abs())),
                "t={t} row {i} dim {j}: grad_log_prob {g} vs finite differences {candidates:?}"
            );
        }
    }
}

#[test]
fn batched_gradient_of_a_network_matches_loop_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(11);
    let (net, _vars) = init_classifier(&ClassifierConfig::default(), &mut rng).unwrap();
    let net = net.detached();
    for (k, t) in [1, 100, 250, 400, 500].into_iter().enumerate() {
        check(&net, t, k as u64);
    }
}

#[test]
fn batched_gradient_of_the_exact_classifier_matches_loop_and_finite_differences() {
    let (_, exact) = exact();
    let classifier = exact.classifier();
    for (k, t) in [50, 250, 500].into_iter().enumerate() {
        check(&classifier, t, 10 + k as u64);
    }
}
