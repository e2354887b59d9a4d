//! DDPM sampling from the crate root: seeded bits and snapshot times, the snapshot rows,
//! the noise thread and the models' chunks changing no bit (for the solvers and
//! classifier-free guidance too), bad configurations, and `sampler::ddpm_step` against its
//! formula and the tensor posterior mean.

use candle_core::{Device, Tensor};
use models::{init_classifier, init_denoiser, ClassifierConfig, DenoiserConfig, ExactMixture};
use rand::{rngs::StdRng, SeedableRng};
use sampler::solvers::solve_with;
use sampler::{
    ddpm_step, posterior_mean, sample, sample_observed, sample_solver, sample_with, timesteps,
    ClassifierFreeGuidance, ClassifierGuidance, GuidanceGradient, GuidanceTerm, ReverseVariance,
    SamplerConfig, SamplerError, Solver, CHUNK_ROWS,
};
use schedule::NoiseSchedule;

use crate::common::{exact, BrokenAt};

#[test]
fn same_seed_same_bits_and_snapshot_times() {
    let (schedule, exact) = exact();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let config = SamplerConfig {
        num_samples: 20,
        ..SamplerConfig::default()
    };
    let g = ClassifierGuidance::one_class(&clf, 0, 30.0, 20).unwrap();
    let a = sample(&den, &schedule, Some(&g), &config).unwrap();
    let b = sample(&den, &schedule, Some(&g), &config).unwrap();
    assert_eq!(a, b);
    let ts: Vec<usize> = a.snapshots.iter().map(|s| s.t).collect();
    // x_500, then the states after t = 500, 490, …, 10 (x_499 … x_9), then x_0.
    let mut expected = vec![500];
    expected.extend((1..=50).rev().map(|k| 10 * k - 1));
    expected.push(0);
    assert_eq!(ts, expected);
    let other = sample(
        &den,
        &schedule,
        Some(&g),
        &SamplerConfig {
            seed: 99,
            ..config.clone()
        },
    )
    .unwrap();
    assert_ne!(a.final_points(), other.final_points());
}

#[test]
fn observed_sampling_reports_every_step_and_changes_nothing() {
    let (schedule, exact) = exact();
    let den = exact.denoiser();
    let config = SamplerConfig {
        num_samples: 12,
        ..SamplerConfig::default()
    };
    let mut seen = Vec::new();
    let observed = sample_observed(&den, &schedule, None, &config, &mut |t| seen.push(t)).unwrap();
    assert_eq!(seen, (1..=schedule.num_steps()).rev().collect::<Vec<_>>());
    assert_eq!(observed, sample(&den, &schedule, None, &config).unwrap());
}

#[test]
fn snapshot_rows_cut_the_snapshots_and_keep_every_sample() {
    let (schedule, exact) = exact();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let config = SamplerConfig {
        num_samples: 12,
        ..SamplerConfig::default()
    };
    let rows = vec![1, 4, 11];
    let cut_config = SamplerConfig {
        snapshot_rows: Some(rows.clone()),
        ..config.clone()
    };
    let g = ClassifierGuidance::one_class(&clf, 1, 30.0, 12).unwrap();
    let steps = timesteps(schedule.num_steps(), 10).unwrap();
    let runs = |c: &SamplerConfig| {
        [
            sample(&den, &schedule, Some(&g), c).unwrap(),
            sample_solver(&den, &schedule, None, Solver::Heun, &steps, c).unwrap(),
        ]
    };
    for (all, cut) in runs(&config).iter().zip(&runs(&cut_config)) {
        // The samples are every row, whatever the snapshots keep, with the same bits.
        assert_eq!(cut.final_points(), all.final_points());
        assert_eq!(all.final_points().len(), 24);
        assert_eq!(all.snapshots.last().unwrap().points, all.final_points());
        assert_eq!(cut.snapshots.len(), all.snapshots.len());
        for (a, c) in all.snapshots.iter().zip(&cut.snapshots) {
            assert_eq!(a.t, c.t);
            let expected: Vec<f32> = rows
                .iter()
                .flat_map(|&r| a.points[2 * r..2 * r + 2].to_vec())
                .collect();
            assert_eq!(c.points, expected, "t = {}", a.t);
        }
    }
    let bad = SamplerConfig {
        snapshot_rows: Some(vec![3, 12]),
        ..config
    };
    assert!(matches!(
        sample(&den, &schedule, None, &bad),
        Err(SamplerError::InvalidSnapshotRow {
            row: 12,
            samples: 12
        })
    ));
}

#[test]
fn chunked_model_calls_give_the_bits_of_the_whole_batch() {
    // The notebook-shaped nets (random weights) on 2,600 rows, T = 12: chunks of 1,024
    // rows (two pieces of 512 each, and a last chunk of 552 that takes the nets'
    // small-batch path) against one call, with per-sample targets.
    let schedule = NoiseSchedule::new(schedule::ScheduleKind::NOTEBOOK_LINEAR, 12).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let den_config = DenoiserConfig {
        num_steps: 12,
        ..DenoiserConfig::default()
    };
    let clf_config = ClassifierConfig {
        num_steps: 12,
        ..ClassifierConfig::default()
    };
    let (den, _) = init_denoiser(&den_config, &mut rng).unwrap();
    let (clf, _) = init_classifier(&clf_config, &mut rng).unwrap();
    let (den, clf) = (den.detached(), clf.detached());
    let n = 2600;
    let config = SamplerConfig {
        num_samples: n,
        snapshot_every: 4,
        ..SamplerConfig::default()
    };
    let targets: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let g = ClassifierGuidance::new(&clf, targets, 30.0).unwrap();
    for guidance in [None, Some(&g as &dyn GuidanceGradient)] {
        let run = |chunk| {
            sample_with(
                &den,
                &schedule,
                guidance,
                &config,
                Some(false),
                chunk,
                &mut |_| {},
            )
            .unwrap()
        };
        assert_eq!(run(1024), run(usize::MAX));
    }
    // The solvers' evaluations too (Heun calls the models twice a step).
    let steps = timesteps(12, 4).unwrap();
    let solve = |chunk| {
        solve_with(
            &den,
            &schedule,
            Some(&g),
            Solver::Heun,
            &steps,
            &config,
            Some(false),
            chunk,
            &mut |_| {},
        )
        .unwrap()
    };
    assert_eq!(solve(1024), solve(usize::MAX));
    // Classifier-free guidance is a noise predictor with a target a sample: each chunk
    // is guided towards its own samples' targets (exact conditional model, T = 500).
    let (schedule, exact) = exact();
    let cond = exact.conditional_denoiser();
    let targets: Vec<u32> = (0..n as u32).map(|i| u32::from(i % 3 == 0)).collect();
    let free = ClassifierFreeGuidance::new(&cond, targets, 2.0).unwrap();
    let steps = timesteps(500, 3).unwrap();
    let solve = |chunk| {
        solve_with(
            &free,
            &schedule,
            None,
            Solver::Heun,
            &steps,
            &config,
            Some(false),
            chunk,
            &mut |_| {},
        )
        .unwrap()
    };
    assert_eq!(solve(1024), solve(usize::MAX));
}

#[test]
fn noise_on_a_second_thread_gives_the_same_bits() {
    let (schedule, exact) = exact();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let config = SamplerConfig {
        num_samples: 16,
        ..SamplerConfig::default()
    };
    let g = ClassifierGuidance::one_class(&clf, 1, 30.0, 16).unwrap();
    let a = sample_with(
        &den,
        &schedule,
        Some(&g),
        &config,
        Some(true),
        CHUNK_ROWS,
        &mut |_| {},
    )
    .unwrap();
    let b = sample_with(
        &den,
        &schedule,
        Some(&g),
        &config,
        Some(false),
        CHUNK_ROWS,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(a, b);
    // An error part-way stops the noise thread too (no hang).
    let err = sample_with(
        &BrokenAt(300),
        &schedule,
        None,
        &config,
        Some(true),
        CHUNK_ROWS,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, SamplerError::NonFinite { t: 300 }));
}

#[test]
fn bad_configurations_are_errors() {
    let (schedule, exact) = exact();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let ok = SamplerConfig {
        num_samples: 4,
        ..SamplerConfig::default()
    };
    let run = |g: Option<&dyn GuidanceGradient>, c: &SamplerConfig| sample(&den, &schedule, g, c);
    assert!(matches!(
        run(
            None,
            &SamplerConfig {
                num_samples: 0,
                ..ok.clone()
            }
        ),
        Err(SamplerError::InvalidNumSamples(0))
    ));
    assert!(matches!(
        run(
            None,
            &SamplerConfig {
                snapshot_every: 0,
                ..ok.clone()
            }
        ),
        Err(SamplerError::InvalidSnapshotInterval(0))
    ));
    // A target the classifier lacks, or a bad scale: refused when the guidance is built.
    assert!(matches!(
        ClassifierGuidance::one_class(&clf, 2, 30.0, 4),
        Err(SamplerError::InvalidTarget {
            class: 2,
            num_classes: 2
        })
    ));
    for scale in [f64::NAN, f64::INFINITY, -1.0] {
        assert!(matches!(
            ClassifierGuidance::one_class(&clf, 0, scale, 4),
            Err(SamplerError::InvalidScale(_))
        ));
    }
    // Any gradient provider's scale is checked by the sampler too.
    assert!(matches!(
        run(Some(&FixedScale(f64::NAN)), &ok),
        Err(SamplerError::InvalidScale(_))
    ));
    let g = ClassifierGuidance::one_class(&clf, 0, 1.0, 3).unwrap();
    assert!(matches!(
        run(Some(&g), &ok),
        Err(SamplerError::TargetCount {
            targets: 3,
            samples: 4
        })
    ));
    let short = NoiseSchedule::new(schedule::ScheduleKind::NOTEBOOK_LINEAR, 100).unwrap();
    assert!(matches!(
        sample(&den, &short, None, &ok),
        Err(SamplerError::StepMismatch {
            what: "denoiser",
            model: 500,
            schedule: 100,
        })
    ));
    let short_exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &short).unwrap();
    let short_clf = short_exact.classifier();
    let g = ClassifierGuidance::one_class(&short_clf, 0, 1.0, 4).unwrap();
    assert!(matches!(
        run(Some(&g), &ok),
        Err(SamplerError::StepMismatch {
            what: "classifier",
            model: 100,
            schedule: 500,
        })
    ));
}

/// A gradient provider with a given scale and a zero gradient.
struct FixedScale(f64);

impl GuidanceGradient for FixedScale {
    fn scale(&self) -> f64 {
        self.0
    }
    fn gradient(&self, x_t: &Tensor, _t: usize) -> candle_core::Result<Tensor> {
        x_t.zeros_like()
    }
}

#[test]
fn a_non_finite_sample_is_an_error_naming_t() {
    let schedule = NoiseSchedule::notebook();
    let config = SamplerConfig {
        num_samples: 8,
        ..SamplerConfig::default()
    };
    let err = sample(&BrokenAt(123), &schedule, None, &config).unwrap_err();
    assert!(matches!(err, SamplerError::NonFinite { t: 123 }), "{err}");
    assert!(err.to_string().contains("t = 123"));
}

#[test]
fn posterior_variance_option_changes_the_noise_only() {
    let (schedule, exact) = exact();
    let den = exact.denoiser();
    let base = SamplerConfig {
        num_samples: 16,
        ..SamplerConfig::default()
    };
    let a = sample(&den, &schedule, None, &base).unwrap();
    let b = sample(
        &den,
        &schedule,
        None,
        &SamplerConfig {
            variance: ReverseVariance::Posterior,
            ..base
        },
    )
    .unwrap();
    // Same x_T (same seed), different paths afterwards.
    assert_eq!(a.snapshots[0], b.snapshots[0]);
    assert_ne!(a.final_points(), b.final_points());
}

#[test]
fn the_step_mean_is_the_tensor_posterior_mean_bit_for_bit() {
    let schedule = NoiseSchedule::notebook();
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) * 0.137).collect();
    let eps: Vec<f32> = (0..64)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.31)
        .collect();
    for t in [1, 2, 250, 500] {
        let mean = ddpm_step(&schedule, ReverseVariance::Beta, t, &x, &eps, None, None).unwrap();
        let xt = Tensor::from_slice(&x, (32, 2), &Device::Cpu).unwrap();
        let et = Tensor::from_slice(&eps, (32, 2), &Device::Cpu).unwrap();
        let reference = posterior_mean(&schedule, &xt, &et, t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(mean, reference, "t = {t}");
    }
}

#[test]
fn the_step_adds_the_guidance_shift_and_the_scaled_noise() {
    let schedule = NoiseSchedule::notebook();
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let eps = [0.1f32, 0.2, -0.3, 0.4];
    let grad = [1.0f32, -2.0, 0.5, 0.0];
    let z = [0.3f64, -1.2, 0.0, 2.0];
    let t = 300;
    for variance in [ReverseVariance::Beta, ReverseVariance::Posterior] {
        let mean = ddpm_step(&schedule, variance, t, &x, &eps, None, None).unwrap();
        let term = GuidanceTerm {
            scale: 30.0,
            gradient: &grad,
        };
        let next = ddpm_step(&schedule, variance, t, &x, &eps, Some(term), Some(&z)).unwrap();
        let s2 = variance.variance(&schedule, t);
        for i in 0..4 {
            let expected = mean[i] as f64 + 30.0 * s2 * grad[i] as f64 + s2.sqrt() * z[i];
            // The mean's bits are shared; the five f32 roundings after it (k, g·k, +, σz,
            // +) are each at most half an ulp of a value below 4 (1.2e-7): ≤ 6e-7.
            assert!(
                (next[i] as f64 - expected).abs() < 1e-6,
                "{variance:?} {i}: {} vs {expected}",
                next[i]
            );
        }
    }
}

#[test]
fn a_step_with_bad_lengths_or_t_is_an_error() {
    let schedule = NoiseSchedule::notebook();
    let x = [0.0f32; 4];
    let v = ReverseVariance::Beta;
    assert!(matches!(
        ddpm_step(&schedule, v, 10, &x, &[0.0; 3], None, None),
        Err(SamplerError::LengthMismatch {
            len: 3,
            expected: 4,
            ..
        })
    ));
    let term = GuidanceTerm {
        scale: 1.0,
        gradient: &[0.0; 2],
    };
    assert!(matches!(
        ddpm_step(&schedule, v, 10, &x, &x, Some(term), None),
        Err(SamplerError::LengthMismatch { len: 2, .. })
    ));
    assert!(matches!(
        ddpm_step(&schedule, v, 10, &x, &x, None, Some(&[0.0; 5])),
        Err(SamplerError::LengthMismatch { len: 5, .. })
    ));
    for t in [0, 501] {
        let err = ddpm_step(&schedule, v, t, &x, &x, None, None).unwrap_err();
        assert!(matches!(
            err,
            SamplerError::InvalidStep { num_steps: 500, .. }
        ));
        assert!(err.to_string().contains(&format!("t = {t}")), "{err}");
    }
}

#[test]
fn zero_scale_guidance_is_unguided_sampling() {
    let (schedule, exact) = exact();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let config = SamplerConfig {
        num_samples: 16,
        ..SamplerConfig::default()
    };
    let g = ClassifierGuidance::one_class(&clf, 1, 0.0, 16).unwrap();
    let guided = sample(&den, &schedule, Some(&g), &config).unwrap();
    assert_eq!(guided, sample(&den, &schedule, None, &config).unwrap());
}
