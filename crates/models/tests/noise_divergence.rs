//! The divergence ∇_x · ε_θ(x_t, t) that the likelihood needs: candle autograd (two
//! backward passes over the whole batch) against central finite differences of the
//! network's own forward pass, and against a one-row-at-a-time run.

use candle_core::{Device, Tensor};
use models::{
    init_denoiser, Activation, DenoiserConfig, DenoiserNet, NoisePredictor, TimeEncoding,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// An untrained 128 × 3 SiLU net with sinusoidal time (smooth, so finite differences
/// have a truncation error to reason about) and the notebook's ReLU net.
fn nets() -> Vec<DenoiserNet> {
    let silu = DenoiserConfig {
        hidden_layers: 3,
        activation: Activation::Silu,
        time_encoding: TimeEncoding::Sinusoidal,
        ..DenoiserConfig::default()
    };
    [silu, DenoiserConfig::default()]
        .iter()
        .map(|c| {
            init_denoiser(c, &mut StdRng::seed_from_u64(5))
                .unwrap()
                .0
                .detached()
        })
        .collect()
}

fn points(n: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(3);
    (0..2 * n).map(|_| rng.random_range(-3.0f32..3.0)).collect()
}

fn eps_of(net: &DenoiserNet, x: &[f32], t: usize) -> Vec<f64> {
    let n = x.len() / 2;
    let x = Tensor::from_slice(x, (n, 2), &Device::Cpu).unwrap();
    net.predict_noise(&x, t)
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn autograd_divergence_equals_central_differences() {
    let n = 32;
    let x = points(n);
    let xt = Tensor::from_slice(&x, (n, 2), &Device::Cpu).unwrap();
    // The smooth SiLU net only: a ReLU net's kinks within ±h make finite differences
    // wrong by an amount nothing bounds (the ReLU net's autograd is checked against
    // one-row runs below, and its op's backward against plain candle in the ops tests).
    for (which, net) in nets().iter().take(1).enumerate() {
        for t in [1, 137, 500] {
            let (eps, div) = net.noise_and_divergence(&xt, t).unwrap();
            assert_eq!(
                eps.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                eps_of(net, &x, t)
                    .iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<_>>(),
                "the ε it returns is predict_noise's"
            );
            // Central differences of the f32 forward pass with h = 1e-2: truncation
            // h²/6·|∂³ε| ≈ 2e-5 for these O(1) smooth nets (zero for ReLU away from a kink),
            // rounding ≈ 2 · 6e-8 · |ε| · √width / (2h) ≈ 1e-4 (f32 sums over 128 units):
            // 1e-3 covers both with margin.
            let h = 1e-2f32;
            for i in 0..n {
                let mut fd = 0.0;
                for j in 0..2 {
                    let shifted = |delta: f32| {
                        let mut p = x[2 * i..2 * i + 2].to_vec();
                        p[j] += delta;
                        eps_of(net, &p, t)[j]
                    };
                    fd += (shifted(h) - shifted(-h)) / (2.0 * h as f64);
                }
                assert!(
                    (div[i] - fd).abs() < 1e-3 * (1.0 + fd.abs()),
                    "net {which}, t = {t}, row {i}: autograd {} vs differences {fd}",
                    div[i]
                );
            }
        }
    }
}

#[test]
fn batched_divergence_equals_one_row_at_a_time() {
    let n = 16;
    let x = points(n);
    let xt = Tensor::from_slice(&x, (n, 2), &Device::Cpu).unwrap();
    for net in nets() {
        let (_, batched) = net.noise_and_divergence(&xt, 250).unwrap();
        for (i, &b) in batched.iter().enumerate() {
            let row = xt.narrow(0, i, 1).unwrap();
            let (_, single) = net.noise_and_divergence(&row, 250).unwrap();
            // Rows are independent; only the matmul blocking may differ: f32 rounding.
            assert!((b - single[0]).abs() < 1e-5 * (1.0 + b.abs()), "row {i}");
        }
    }
}
