//! The sampler with the exact mixture models (no training): unguided samples follow the
//! true mixture, guided ones land in their class.

use models::ExactMixture;
use rand::{rngs::StdRng, SeedableRng};
use sampler::metrics::{energy_distance, energy_noise_floor, guided_precision, mode_stats, widen};
use sampler::{sample, ClassifierGuidance, SamplerConfig};
use schedule::NoiseSchedule;

const N: usize = 500;

#[test]
fn unguided_samples_follow_the_true_mixture() {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule).unwrap();
    let config = SamplerConfig {
        num_samples: N,
        seed: 2024,
        ..SamplerConfig::default()
    };
    let run = sample(&exact.denoiser(), &schedule, None, &config).unwrap();
    let points = widen(run.final_points());

    // Energy distance to a fresh true sample of the same size, against the spread of the
    // same statistic between two true samples (its 95th percentile over 40 pairs).
    let mut rng = StdRng::seed_from_u64(77);
    let fresh = truth.sample(N, &mut rng);
    let ed = energy_distance(&points, fresh.as_slice().unwrap(), 2);
    let floor = energy_noise_floor(&truth, N, 40, 78);
    assert!(
        ed <= floor.p95,
        "energy distance {ed} above the noise floor {floor:?}"
    );

    let stats = mode_stats(&points, &truth);
    // Mode balance: binomial, p = 0.5, SE = √(0.25/500) = 0.022; 4 SE = 0.089.
    assert!(
        (stats[0].fraction - 0.5).abs() < 4.0 * (0.25 / N as f64).sqrt(),
        "{stats:?}"
    );
    for s in &stats {
        let n_k = s.count as f64;
        for j in 0..2 {
            let mu = truth.means()[s.mode][j];
            // Mean: SE = σ/√n_k = 0.5/√250 ≈ 0.032; 4 SE.
            assert!((s.mean[j] - mu).abs() < 4.0 * 0.5 / n_k.sqrt(), "{s:?}");
            // Std: SE ≈ σ/√(2(n_k − 1)) ≈ 0.022; 4 SE.
            assert!(
                (s.std[j] - 0.5).abs() < 4.0 * 0.5 / (2.0 * (n_k - 1.0)).sqrt(),
                "{s:?}"
            );
        }
    }
}

#[test]
fn guided_samples_land_in_their_class() {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule).unwrap();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    for class in [0u32, 1] {
        let config = SamplerConfig {
            num_samples: N,
            seed: 7 + class as u64,
            ..SamplerConfig::default()
        };
        let g = ClassifierGuidance::one_class(&clf, class, 30.0, N).unwrap();
        let run = sample(&den, &schedule, Some(&g), &config).unwrap();
        let precision = guided_precision(&widen(run.final_points()), &truth, class as usize);
        assert!(precision >= 0.99, "class {class}: precision {precision}");
    }
}

#[test]
fn each_sample_may_have_its_own_target() {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule).unwrap();
    let (den, clf) = (exact.denoiser(), exact.classifier());
    let targets: Vec<u32> = (0..200).map(|i| (i % 2) as u32).collect();
    let g = ClassifierGuidance::new(&clf, targets.clone(), 30.0).unwrap();
    let config = SamplerConfig {
        num_samples: 200,
        seed: 5,
        ..SamplerConfig::default()
    };
    let run = sample(&den, &schedule, Some(&g), &config).unwrap();
    let points = widen(run.final_points());
    let hits = points
        .chunks(2)
        .zip(&targets)
        .filter(|(x, &y)| truth.posterior(x)[y as usize] > 0.5)
        .count();
    assert!(hits >= 198, "{hits}/200 samples in their own target class");
}
