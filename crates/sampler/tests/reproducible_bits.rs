//! The sampler's output bits, pinned: hashes of every snapshot of a few runs (unguided and
//! guided, σ² = β and σ² = β̃, n = 2,048), recorded from the sampler before its step was
//! rewritten as a pure function, so that rewrite (and any later one) provably changes no
//! bit for the same seed.
//!
//! The models here are defined in this file from plain candle ops and host arithmetic,
//! so the hashes depend on the sampler alone, not on the internals of the `models`
//! crate's networks.

use candle_core::{Device, Tensor};
use models::{NoisePredictor, NoisyClassifier};
use sampler::{
    sample, ClassifierGuidance, GuidanceGradient, ReverseVariance, SampleRun, SamplerConfig,
};
use schedule::NoiseSchedule;

const N: usize = 2048;

/// ε(x, t) = tanh((t/T) · x + 0.1), in candle ops.
struct TanhNoise;

impl NoisePredictor for TanhNoise {
    fn num_steps(&self) -> usize {
        500
    }
    fn dim(&self) -> usize {
        2
    }
    fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        x_t.affine(t as f64 / 500.0, 0.1)?.tanh()
    }
}

/// Two classes with logits x · W (W's columns: class 0 = (−1, −0.5), class 1 = (1, 0.5));
/// the gradient of log p(y | x) = W_y − Σ_c p_c W_c is computed on the host, so it does
/// not depend on how autograd is implemented.
struct LinearClassifier;

const W: [[f32; 2]; 2] = [[-1.0, -0.5], [1.0, 0.5]];

impl NoisyClassifier for LinearClassifier {
    fn num_steps(&self) -> usize {
        500
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn log_probs(&self, x_t: &Tensor, _t: usize) -> candle_core::Result<Tensor> {
        let w = Tensor::new(&[[W[0][0], W[1][0]], [W[0][1], W[1][1]]], &Device::Cpu)?;
        candle_core::Tensor::log_sum_exp(&x_t.matmul(&w)?, 1)
            .and_then(|lse| x_t.matmul(&w)?.broadcast_sub(&lse.unsqueeze(1)?))
    }
    fn grad_log_prob(
        &self,
        x_t: &Tensor,
        _t: usize,
        targets: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let x = x_t.flatten_all()?.to_vec1::<f32>()?;
        let y = targets.to_vec1::<u32>()?;
        let mut out = Vec::with_capacity(x.len());
        for (row, &c) in x.chunks_exact(2).zip(&y) {
            let l: Vec<f32> = W.iter().map(|w| row[0] * w[0] + row[1] * w[1]).collect();
            let p1 = 1.0 / (1.0 + (l[0] - l[1]).exp());
            let p = [1.0 - p1, p1];
            let w_y = W[c as usize];
            out.extend((0..2).map(|j| w_y[j] - (p[0] * W[0][j] + p[1] * W[1][j])));
        }
        Tensor::from_vec(out, (y.len(), 2), &Device::Cpu)
    }
}

/// FNV-1a (64-bit) over every snapshot's t and f32 bits: stable across Rust versions,
/// unlike `DefaultHasher`.
fn fnv1a(run: &SampleRun) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for s in &run.snapshots {
        eat(&(s.t as u64).to_le_bytes());
        for v in &s.points {
            eat(&v.to_bits().to_le_bytes());
        }
    }
    h
}

fn run(variance: ReverseVariance, guided: bool, seed: u64) -> SampleRun {
    let schedule = NoiseSchedule::notebook();
    let config = SamplerConfig {
        num_samples: N,
        variance,
        seed,
        ..SamplerConfig::default()
    };
    // Per-sample targets: every third sample towards class 0, the others class 1.
    let targets: Vec<u32> = (0..N).map(|i| u32::from(i % 3 != 0)).collect();
    let guidance = ClassifierGuidance::new(&LinearClassifier, targets, 30.0).unwrap();
    let run = sample(
        &TanhNoise,
        &schedule,
        guided.then_some(&guidance as &dyn GuidanceGradient),
        &config,
    )
    .unwrap();
    assert!(run.final_points().iter().all(|v| v.is_finite()));
    run
}

#[test]
fn the_same_seed_gives_the_recorded_bits() {
    // Recorded from the sampler as it was before the pure-step rewrite (commit 8f70bcf).
    let cases = [
        (
            ReverseVariance::Beta,
            false,
            1234,
            0x5ad3_a808_4864_8fa1_u64,
        ),
        (
            ReverseVariance::Posterior,
            false,
            1234,
            0x7221_5cd8_28b8_abce,
        ),
        (ReverseVariance::Beta, true, 7, 0x915b_1a26_d96d_5320),
        (ReverseVariance::Posterior, true, 8, 0xf601_74b9_e115_c97f),
    ];
    for (variance, guided, seed, expected) in cases {
        let h = fnv1a(&run(variance, guided, seed));
        assert_eq!(
            h, expected,
            "{variance:?}, guided = {guided}, seed {seed}: hash {h:#018x}, recorded {expected:#018x}"
        );
    }
}
