//! Classifier-free guidance with the exact scores of the notebook's two clusters (no
//! training: guidance error without learning error). Each class is one Gaussian, so the
//! exact conditional model (w = 0) and exact classifier guidance at s = 1 both sample
//! that Gaussian, and stronger guidance trades diversity for precision. The mix itself is
//! checked against its formula, (1 + w) ε(x_t, t, y) − w ε(x_t, t, ∅).

use candle_core::{Device, Tensor};
use models::{ConditionalNoisePredictor, ExactMixture, NoisePredictor};
use rand::{rngs::StdRng, SeedableRng};
use sampler::metrics::{energy_distance, energy_noise_floor, guided_precision, std_ratio, widen};
use sampler::{sample, ClassifierFreeGuidance, ClassifierGuidance, SamplerConfig, SamplerError};
use schedule::NoiseSchedule;
use toy_data::GaussianMixture;

use crate::common::exact;

const N: usize = 500;

/// Class c of the notebook's mixture: its one Gaussian.
fn class_gaussian(truth: &GaussianMixture, c: usize) -> GaussianMixture {
    GaussianMixture::new(
        vec![1.0],
        vec![truth.means()[c].clone()],
        vec![truth.covariances()[c].clone()],
    )
    .unwrap()
}

/// √(tr Σ) of class c: the notebook's clusters are 0.5² I in 2-D.
const CLASS_STD: f64 = 0.5 * std::f64::consts::SQRT_2;

fn config(seed: u64) -> SamplerConfig {
    SamplerConfig {
        num_samples: N,
        snapshot_every: usize::MAX,
        seed,
        ..SamplerConfig::default()
    }
}

#[test]
fn w0_and_classifier_scale_1_sample_the_class_gaussian() {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule).unwrap();
    let (den, clf, cond) = (
        exact.denoiser(),
        exact.classifier(),
        exact.conditional_denoiser(),
    );
    for class in [0u32, 1] {
        let gaussian = class_gaussian(&truth, class as usize);
        // The energy distance of two true samples of N, its p95 over 40 pairs: what
        // sampling noise alone gives.
        let floor = energy_noise_floor(&gaussian, N, 40, 50 + class as u64);
        let reference = gaussian.sample(N, &mut StdRng::seed_from_u64(60 + class as u64));
        let reference = reference.as_slice().unwrap();

        let free = ClassifierFreeGuidance::one_class(&cond, class, 0.0, N).unwrap();
        let run = sample(&free, &schedule, None, &config(70 + class as u64)).unwrap();
        let ed = energy_distance(&widen(run.final_points()), reference, 2);
        assert!(ed <= floor.p95, "w = 0, class {class}: {ed} vs {floor:?}");

        // Classifier guidance at s = 1 adds ∇ log p(y | x_t): score of p(x_t | y).
        let g = ClassifierGuidance::one_class(&clf, class, 1.0, N).unwrap();
        let run = sample(&den, &schedule, Some(&g), &config(80 + class as u64)).unwrap();
        let ed = energy_distance(&widen(run.final_points()), reference, 2);
        assert!(ed <= floor.p95, "s = 1, class {class}: {ed} vs {floor:?}");
    }
}

#[test]
fn stronger_guidance_is_more_precise_and_less_diverse() {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule).unwrap();
    let (den, clf, cond) = (
        exact.denoiser(),
        exact.classifier(),
        exact.conditional_denoiser(),
    );
    let class = 1u32;
    let measure = |points: &[f32]| {
        let p = widen(points);
        (
            guided_precision(&p, &truth, class as usize),
            std_ratio(&p, 2, CLASS_STD),
        )
    };
    let free: Vec<(f64, f64)> = [0.0, 2.0, 8.0]
        .iter()
        .map(|&w| {
            let g = ClassifierFreeGuidance::one_class(&cond, class, w, N).unwrap();
            measure(
                sample(&g, &schedule, None, &config(90))
                    .unwrap()
                    .final_points(),
            )
        })
        .collect();
    let classifier: Vec<(f64, f64)> = [0.0, 1.0, 30.0]
        .iter()
        .map(|&s| {
            let g = ClassifierGuidance::one_class(&clf, class, s, N).unwrap();
            measure(
                sample(&den, &schedule, Some(&g), &config(91))
                    .unwrap()
                    .final_points(),
            )
        })
        .collect();
    for (name, rows) in [("free", &free), ("classifier", &classifier)] {
        for pair in rows.windows(2) {
            let ((p0, r0), (p1, r1)) = (pair[0], pair[1]);
            // The same x_T and noise for every setting, so the differences are guidance's,
            // not sampling noise: precision never falls, the spread always shrinks. With
            // exact scores it shrinks little (measured: free 0.986, 0.978, 0.977 for
            // w = 0, 2, 8; classifier 0.997, 0.988 for s = 1, 30): near its cluster
            // p(y | x_t) is ≈ 1 and its gradient ≈ 0, so guidance acts only at large t.
            assert!(p1 >= p0, "{name}: precision {p0} then {p1}");
            assert!(r1 < r0, "{name}: std ratio {r0} then {r1}");
        }
    }
    // Unguided (s = 0) covers both clusters: about half the samples, and a std ratio
    // far above 1 (the clusters are 4√2 apart); w = 0 is the class alone.
    assert!((classifier[0].0 - 0.5).abs() < 0.1, "{classifier:?}");
    assert!(
        classifier[0].1 > 3.0 && (free[0].1 - 1.0).abs() < 0.1,
        "{free:?}"
    );
    assert!(free[2].0 == 1.0 && classifier[2].0 == 1.0);
}

#[test]
fn the_mix_is_one_plus_w_conditional_minus_w_unconditional() {
    let (_, exact) = exact();
    let model = exact.conditional_denoiser();
    let x = Tensor::new(&[[-1.0f32, -0.5], [0.3, 0.2], [2.0, 1.0]], &Device::Cpu).unwrap();
    let targets = vec![0u32, 1, 1];
    let eps = |w: f64| {
        ClassifierFreeGuidance::new(&model, targets.clone(), w)
            .unwrap()
            .predict_noise(&x, 300)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    let c = model
        .predict_noise_conditional(&x, 300, Some(&targets))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let u = model
        .predict_noise_conditional(&x, 300, None)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(eps(0.0), c, "w = 0 is the conditional model, bit for bit");
    for w in [0.5, 4.0] {
        for ((g, ci), ui) in eps(w)
            .iter()
            .flatten()
            .zip(c.iter().flatten())
            .zip(u.iter().flatten())
        {
            let want = (1.0 + w) * *ci as f64 - w * *ui as f64;
            // Three f32 roundings of values below (1 + w)·3: ≤ 3 · 6e-8 · 15.
            assert!((*g as f64 - want).abs() < 1e-5, "w = {w}: {g} vs {want}");
        }
    }
    assert!(matches!(
        ClassifierFreeGuidance::new(&model, vec![0, 2], 1.0),
        Err(SamplerError::InvalidTarget { class: 2, .. })
    ));
    for w in [-0.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            ClassifierFreeGuidance::new(&model, vec![0], w),
            Err(SamplerError::InvalidScale(_))
        ));
    }
}
