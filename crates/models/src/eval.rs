//! Evaluation on fresh, seeded data: classifier accuracy at a step t (and the empirical
//! Bayes accuracy on the same points), and the denoiser's noise MSE.

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use schedule::NoiseSchedule;
use toy_data::GaussianMixture;

use crate::error::{ModelError, Result};
use crate::exact::{ExactMixture, MonteCarlo};
use crate::nets::DEVICE;
use crate::train::count_points;
use crate::traits::{NoisePredictor, NoisyClassifier};

/// The number of test points the notebook's evaluation should use (its 200 give a standard error of 1.5 points).
pub const DEFAULT_TEST_POINTS: usize = 10_000;

/// Points drawn from a mixture and noised to step t, with their latent component as label.
#[derive(Debug, Clone)]
pub struct NoisyTestSet {
    /// The 1-based step the points were noised to.
    pub t: usize,
    /// d, the data dimension.
    pub dim: usize,
    /// x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, n × d row-major (computed in f64, stored as f32).
    pub points: Vec<f32>,
    /// The class of each point: its mixture component (see [`NoisyTestSet::relabel`]).
    pub labels: Vec<u32>,
}

impl NoisyTestSet {
    /// n points: x_0 and its component from the mixture, then ε ~ N(0, I), all from `StdRng::seed_from_u64(seed)`.
    ///
    /// The draws do not depend on t: the same seed gives the same x_0 and ε at every t
    /// (common random numbers), so an accuracy curve over t is smooth.
    pub fn new(
        mixture: &GaussianMixture,
        schedule: &NoiseSchedule,
        t: usize,
        n: usize,
        seed: u64,
    ) -> Result<Self> {
        if n == 0 {
            return Err(ModelError::ZeroDraws);
        }
        if t == 0 || t > schedule.num_steps() {
            return Err(ModelError::StepOutOfRange {
                t,
                num_steps: schedule.num_steps(),
            });
        }
        let d = mixture.dim();
        let mut rng = StdRng::seed_from_u64(seed);
        let (x0, latent) = mixture.sample_with_latent(n, &mut rng);
        let (a, b) = (
            schedule.sqrt_alpha_bar(t),
            schedule.sqrt_one_minus_alpha_bar(t),
        );
        let mut points = Vec::with_capacity(n * d);
        for row in x0.rows() {
            for x in row.iter() {
                let e: f64 = StandardNormal.sample(&mut rng);
                points.push((a * x + b * e) as f32);
            }
        }
        Ok(Self {
            t,
            dim: d,
            points,
            labels: latent.iter().map(|&k| k as u32).collect(),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Replaces each component label k by `class_of[k]` (for classes made of several components).
    pub fn relabel(&mut self, class_of: &[usize]) -> Result<()> {
        if let Some(&k) = self.labels.iter().find(|&&k| k as usize >= class_of.len()) {
            return Err(ModelError::InvalidClassMap(format!(
                "component {k} has no class ({} entries)",
                class_of.len()
            )));
        }
        for l in &mut self.labels {
            *l = class_of[*l as usize] as u32;
        }
        Ok(())
    }

    /// The points as an n × d f32 tensor.
    pub fn x_t(&self) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.points,
            (self.len(), self.dim),
            &DEVICE,
        )?)
    }
}

/// Fraction of points whose most probable class, argmax_c log p(c | x_t, t), is their label.
pub fn accuracy_on(classifier: &dyn NoisyClassifier, set: &NoisyTestSet) -> Result<f64> {
    if set.is_empty() {
        return Err(ModelError::EmptyData);
    }
    if let Some((index, &label)) = set
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classifier.num_classes())
    {
        return Err(ModelError::LabelOutOfRange {
            index,
            label,
            num_classes: classifier.num_classes(),
        });
    }
    let predicted = classifier
        .log_probs(&set.x_t()?, set.t)?
        .argmax(1)?
        .to_vec1::<u32>()?;
    let correct = predicted
        .iter()
        .zip(&set.labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(correct as f64 / set.len() as f64)
}

fn check_classifier(classifier: &dyn NoisyClassifier, schedule: &NoiseSchedule) -> Result<()> {
    if classifier.num_steps() != schedule.num_steps() {
        return Err(ModelError::NumStepsMismatch {
            schedule: schedule.num_steps(),
            model: classifier.num_steps(),
        });
    }
    Ok(())
}

/// Accuracy at step t on `n_test` fresh points from the mixture (classes = components), seeded.
pub fn classifier_accuracy(
    classifier: &dyn NoisyClassifier,
    mixture: &GaussianMixture,
    schedule: &NoiseSchedule,
    t: usize,
    n_test: usize,
    seed: u64,
) -> Result<f64> {
    check_classifier(classifier, schedule)?;
    accuracy_on(
        classifier,
        &NoisyTestSet::new(mixture, schedule, t, n_test, seed)?,
    )
}

/// Standard error of an accuracy p measured on n points: √(p (1 − p) / n).
pub fn binomial_std_error(p: f64, n: usize) -> f64 {
    (p * (1.0 - p) / n as f64).sqrt()
}

/// One point of an accuracy curve: the model and the Bayes classifier on the same test points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyPoint {
    /// The step.
    pub t: usize,
    /// Number of test points.
    pub n_test: usize,
    /// The model's accuracy.
    pub accuracy: f64,
    /// The exact (Bayes) classifier's accuracy on the same points: the empirical ceiling.
    pub bayes_accuracy: f64,
    /// Binomial standard error of `accuracy`: √(p (1 − p) / n).
    pub std_error: f64,
}

/// Accuracy of the model and of the exact Bayes classifier at each t, on the same `n_test` seeded points.
pub fn accuracy_curve(
    classifier: &dyn NoisyClassifier,
    mixture: &GaussianMixture,
    schedule: &NoiseSchedule,
    ts: &[usize],
    n_test: usize,
    seed: u64,
) -> Result<Vec<AccuracyPoint>> {
    check_classifier(classifier, schedule)?;
    let bayes = ExactMixture::new(mixture, schedule)?.classifier();
    ts.iter()
        .map(|&t| {
            let set = NoisyTestSet::new(mixture, schedule, t, n_test, seed)?;
            let accuracy = accuracy_on(classifier, &set)?;
            Ok(AccuracyPoint {
                t,
                n_test,
                accuracy,
                bayes_accuracy: accuracy_on(&bayes, &set)?,
                std_error: binomial_std_error(accuracy, n_test),
            })
        })
        .collect()
}

/// E ‖ε_θ(x_t, t) − ε‖² / d by Monte Carlo over n draws of (point of `data`, t ~ U{1..T}, ε), seeded.
///
/// `data` is n_points × `pred.dim()` row-major. Draws are grouped by t, one
/// `predict_noise` call per distinct t. Compare with [`crate::denoiser_loss_floor`].
pub fn denoiser_loss(
    pred: &dyn NoisePredictor,
    data: &[f32],
    schedule: &NoiseSchedule,
    n: usize,
    seed: u64,
) -> Result<MonteCarlo> {
    if n == 0 {
        return Err(ModelError::ZeroDraws);
    }
    let d = pred.dim();
    let n_points = count_points(data, d)?;
    let t_max = schedule.num_steps();
    if pred.num_steps() != t_max {
        return Err(ModelError::NumStepsMismatch {
            schedule: t_max,
            model: pred.num_steps(),
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    // Draws grouped by t: (x_t, ε) rows per step.
    let mut by_t: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); t_max];
    for _ in 0..n {
        let i = rng.random_range(0..n_points);
        let t = rng.random_range(1..=t_max);
        let (a, b) = (
            schedule.sqrt_alpha_bar(t),
            schedule.sqrt_one_minus_alpha_bar(t),
        );
        let (xs, es) = &mut by_t[t - 1];
        for &x0 in &data[i * d..(i + 1) * d] {
            let e: f64 = StandardNormal.sample(&mut rng);
            xs.push((a * x0 as f64 + b * e) as f32);
            es.push(e as f32);
        }
    }
    let mut losses = Vec::with_capacity(n);
    for (k, (xs, es)) in by_t.iter().enumerate() {
        if xs.is_empty() {
            continue;
        }
        let m = xs.len() / d;
        let x = Tensor::from_slice(xs, (m, d), &DEVICE)?;
        let eps_hat = pred
            .predict_noise(&x, k + 1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (p, e) in eps_hat.chunks_exact(d).zip(es.chunks_exact(d)) {
            let se: f64 = p
                .iter()
                .zip(e)
                .map(|(p, e)| (*p as f64 - *e as f64).powi(2))
                .sum();
            losses.push(se / d as f64);
        }
    }
    Ok(MonteCarlo::from_values(&losses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use toy_data::two_clusters_mixture;

    /// ε_θ ≡ 0: its loss is E ε² = 1 exactly in expectation.
    struct Zero;

    impl NoisePredictor for Zero {
        fn num_steps(&self) -> usize {
            500
        }
        fn dim(&self) -> usize {
            2
        }
        fn predict_noise(&self, x_t: &Tensor, _t: usize) -> candle_core::Result<Tensor> {
            x_t.zeros_like()
        }
    }

    fn data() -> Vec<f32> {
        toy_data::two_clusters(500, 1234)
            .points
            .iter()
            .map(|&v| v as f32)
            .collect()
    }

    #[test]
    fn denoiser_loss_of_known_predictors() {
        let s = NoiseSchedule::notebook();
        let zero = denoiser_loss(&Zero, &data(), &s, 20_000, 3).unwrap();
        // E ε² = 1; the MC standard error is ≈ 0.01 (ε² has variance 2, halved by averaging 2 dims).
        assert!((zero.mean - 1.0).abs() < 4.0 * zero.std_error, "{zero:?}");

        let exact = ExactMixture::new(&two_clusters_mixture(), &s)
            .unwrap()
            .denoiser();
        let on_data = denoiser_loss(&exact, &data(), &s, 50_000, 4).unwrap();
        let floor = crate::denoiser_loss_floor(&two_clusters_mixture(), &s, 50_000, 5).unwrap();
        // ε* on the 1000 training points versus fresh mixture draws: the same within MC error.
        let se = (on_data.std_error.powi(2) + floor.std_error.powi(2)).sqrt();
        assert!(
            (on_data.mean - floor.mean).abs() < 4.0 * se,
            "{on_data:?} vs {floor:?}"
        );

        assert!(matches!(
            denoiser_loss(&Zero, &data(), &s, 0, 1),
            Err(ModelError::ZeroDraws)
        ));
        assert!(matches!(
            denoiser_loss(&Zero, &[], &s, 10, 1),
            Err(ModelError::EmptyData)
        ));
        let short = NoiseSchedule::new(schedule::ScheduleKind::NOTEBOOK_LINEAR, 400).unwrap();
        assert!(matches!(
            denoiser_loss(&Zero, &data(), &short, 10, 1),
            Err(ModelError::NumStepsMismatch {
                schedule: 400,
                model: 500
            })
        ));
    }

    #[test]
    fn accuracy_curve_of_the_exact_classifier_is_its_own_ceiling() {
        let (m, s) = (two_clusters_mixture(), NoiseSchedule::notebook());
        let exact = ExactMixture::new(&m, &s).unwrap().classifier();
        let curve = accuracy_curve(&exact, &m, &s, &[100, 250, 400], 2_000, 8).unwrap();
        assert_eq!(
            curve.iter().map(|p| p.t).collect::<Vec<_>>(),
            vec![100, 250, 400]
        );
        for p in &curve {
            assert_eq!(p.accuracy, p.bayes_accuracy);
            assert_eq!(p.n_test, 2_000);
            assert!((p.std_error - binomial_std_error(p.accuracy, 2_000)).abs() < 1e-15);
        }
        // The same seed and t give the same points, however they are reached.
        let single = classifier_accuracy(&exact, &m, &s, 250, 2_000, 8).unwrap();
        assert_eq!(single, curve[1].accuracy);
    }

    #[test]
    fn test_sets_are_seeded_and_checked() {
        let (m, s) = (two_clusters_mixture(), NoiseSchedule::notebook());
        let a = NoisyTestSet::new(&m, &s, 250, 100, 1).unwrap();
        let b = NoisyTestSet::new(&m, &s, 250, 100, 1).unwrap();
        let c = NoisyTestSet::new(&m, &s, 250, 100, 2).unwrap();
        assert_eq!((a.points.clone(), a.labels.clone()), (b.points, b.labels));
        assert_ne!(a.points, c.points);
        assert_eq!(a.len(), 100);
        assert!(a.labels.iter().all(|&l| l < 2));
        assert!(matches!(
            NoisyTestSet::new(&m, &s, 0, 10, 1),
            Err(ModelError::StepOutOfRange { t: 0, .. })
        ));
        assert!(matches!(
            NoisyTestSet::new(&m, &s, 10, 0, 1),
            Err(ModelError::ZeroDraws)
        ));

        let mut swapped = a.clone();
        swapped.relabel(&[1, 0]).unwrap();
        assert!(swapped
            .labels
            .iter()
            .zip(&a.labels)
            .all(|(x, y)| x + y == 1));
        assert!(swapped.clone().relabel(&[0]).is_err());

        // A classifier that knows another T is rejected.
        let cfg = crate::ClassifierConfig {
            num_steps: 400,
            ..Default::default()
        };
        let (clf, _) = crate::init_classifier(
            &cfg,
            &mut <rand::rngs::StdRng as SeedableRng>::seed_from_u64(0),
        )
        .unwrap();
        assert!(matches!(
            classifier_accuracy(&clf, &m, &s, 250, 10, 1),
            Err(ModelError::NumStepsMismatch {
                schedule: 500,
                model: 400
            })
        ));
    }
}
