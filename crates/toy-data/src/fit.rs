//! Maximum-likelihood fits: one Normal in closed form, and K-component mixtures by EM
//! (linfa-clustering, k-means initialisation) with real restarts.

use std::fmt;

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{GaussianMixtureModel, GmmInitMethod};
use ndarray::{Array2, ArrayView2};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use crate::{Covariance, DataError, GaussianMixture};

/// Settings of an EM fit ([`fit_mixture`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EmConfig {
    /// Number of components K (≥ 1).
    pub k: usize,
    /// Independent EM runs, each from its own k-means initialisation (≥ 1); the one
    /// with the highest total log-likelihood is kept.
    pub restarts: usize,
    /// EM iterations allowed per run (≥ 1); a run that has not converged by then fails.
    pub max_iterations: u64,
    /// Convergence threshold (> 0) on the change of the MEAN log-likelihood per sample
    /// between EM iterations (linfa's lower bound).
    pub tolerance: f64,
    /// Seed of the run seeds: restart r uses `restart_seed(seed, r)`.
    pub seed: u64,
    /// Added to every covariance diagonal in the M-step (≥ 0), as scikit-learn's `reg_covar`.
    pub reg_covariance: f64,
}

impl Default for EmConfig {
    /// K = 2 (the notebook's), 5 restarts, 1000 iterations, tolerance 1e-5, seed 0, reg 1e-6.
    ///
    /// Tolerance 1e-5 on the mean log-likelihood moves the total of 500 points by
    /// < 0.005 per iteration; on the flexibility data, over-complete fits (K = 3..5) at
    /// 1e-6 needed more than 500 iterations and failed to converge.
    fn default() -> Self {
        Self {
            k: 2,
            restarts: 5,
            max_iterations: 1000,
            tolerance: 1e-5,
            seed: 0,
            reg_covariance: 1e-6,
        }
    }
}

impl EmConfig {
    /// The defaults with `k` components.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            ..Self::default()
        }
    }

    /// The same settings with another seed.
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }

    /// Checks every field's range (also done by [`fit_mixture`]).
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |name, value: String, allowed| {
            Err(DataError::InvalidParameter {
                name,
                value,
                allowed,
            })
        };
        if self.k == 0 {
            return bad("k", "0".into(), ">= 1");
        }
        if self.restarts == 0 {
            return bad("restarts", "0".into(), ">= 1");
        }
        if self.max_iterations == 0 {
            return bad("max_iterations", "0".into(), ">= 1");
        }
        if !(self.tolerance > 0.0 && self.tolerance.is_finite()) {
            return bad("tolerance", self.tolerance.to_string(), "finite and > 0");
        }
        if !(self.reg_covariance >= 0.0 && self.reg_covariance.is_finite()) {
            return bad(
                "reg_covariance",
                self.reg_covariance.to_string(),
                "finite and >= 0",
            );
        }
        Ok(())
    }
}

/// The seed of EM restart `r`: `seed + r·0x9E3779B97F4A7C15` (wrapping; the golden-ratio
/// step keeps the seeds of neighbouring `seed`s apart). Xoshiro's `seed_from_u64` then
/// expands it with SplitMix64.
pub fn restart_seed(seed: u64, r: usize) -> u64 {
    seed.wrapping_add((r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A fitted mixture with its fit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedMixture {
    /// The mixture, full covariances, components sorted by the first coordinate of the mean.
    pub mixture: GaussianMixture,
    /// TOTAL log-likelihood of the data: Σ_i log p(x_i).
    pub log_likelihood: f64,
    /// Akaike: 2p − 2 log L.
    pub aic: f64,
    /// Bayes (Schwarz): p ln n − 2 log L.
    pub bic: f64,
    /// Free parameters p = (K − 1) + K·d + K·d(d+1)/2.
    pub n_parameters: usize,
}

impl FittedMixture {
    /// Wraps `mixture` with its statistics on `data`.
    pub fn evaluate(mixture: GaussianMixture, data: ArrayView2<f64>) -> Self {
        let log_likelihood = mixture.log_likelihood(data);
        let p = mixture.n_parameters();
        Self {
            aic: aic(log_likelihood, p),
            bic: bic(log_likelihood, p, data.nrows()),
            n_parameters: p,
            log_likelihood,
            mixture,
        }
    }
}

impl fmt::Display for FittedMixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} | log L = {:.3}, p = {}, AIC = {:.3}, BIC = {:.3}",
            self.mixture, self.log_likelihood, self.n_parameters, self.aic, self.bic
        )
    }
}

/// AIC = 2p − 2 log L (log L the TOTAL log-likelihood).
pub fn aic(log_likelihood: f64, n_parameters: usize) -> f64 {
    2.0 * n_parameters as f64 - 2.0 * log_likelihood
}

/// BIC = p ln n − 2 log L (log L the TOTAL log-likelihood, n the number of rows).
pub fn bic(log_likelihood: f64, n_parameters: usize, n: usize) -> f64 {
    n_parameters as f64 * (n as f64).ln() - 2.0 * log_likelihood
}

/// Ok when `n_rows` rows suffice for `k` components: at least max(k, 2).
pub fn require_rows(n_rows: usize, k: usize) -> Result<(), DataError> {
    let needed = k.max(2);
    if n_rows < needed {
        Err(DataError::TooFewRows {
            rows: n_rows,
            k,
            needed,
        })
    } else {
        Ok(())
    }
}

/// 1-D values as an n × 1 data matrix, the shape the fits take.
pub fn column_matrix(values: &[f64]) -> Array2<f64> {
    Array2::from_shape_fn((values.len(), 1), |(i, _)| values[i])
}

/// Data checks shared by the fits: d ≥ 1, rows ≥ max(k, 2), every value finite, and
/// each column's span (max − min) below √(1e300 / (n·d)), so that a sum of n squared
/// distances stays finite (linfa's k-means++ panics on an infinite one).
pub(crate) fn check_data(data: ArrayView2<f64>, k: usize) -> Result<(), DataError> {
    if data.ncols() == 0 {
        return Err(DataError::ZeroDimension {
            what: "data".into(),
        });
    }
    require_rows(data.nrows(), k)?;
    if let Some(((row, column), &value)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(DataError::NonFiniteData { row, column, value });
    }
    let limit = (1e300 / (data.nrows() as f64 * data.ncols() as f64)).sqrt();
    for (column, col) in data.columns().into_iter().enumerate() {
        let (lo, hi) = col
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let range = hi - lo;
        if range >= limit {
            return Err(DataError::DataRangeTooLarge {
                column,
                range,
                limit,
            });
        }
    }
    Ok(())
}

/// Maximum-likelihood Normal: μ = (1/n) Σ x_i, Σ = (1/n) Σ (x_i − μ)(x_i − μ)ᵀ (full).
///
/// Needs ≥ 2 finite rows; a constant column gives `NonPositiveVariance`, and otherwise
/// singular Σ (collinear columns) `NotPositiveDefinite`.
pub fn fit_normal(data: ArrayView2<f64>) -> Result<GaussianMixture, DataError> {
    check_data(data, 1)?;
    let (n, d) = data.dim();
    let nf = n as f64;
    let mean: Vec<f64> = (0..d).map(|j| data.column(j).sum() / nf).collect();
    let mut cov = vec![0.0; d * d];
    for row in data.rows() {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += (row[i] - mean[i]) * (row[j] - mean[j]);
            }
        }
    }
    cov.iter_mut().for_each(|c| *c /= nf);
    GaussianMixture::new(vec![1.0], vec![mean], vec![Covariance::Full(cov)])
}

/// EM fit of a K-component full-covariance mixture (linfa-clustering, k-means init).
///
/// Runs `config.restarts` independent fits, restart r seeded with
/// [`restart_seed`]`(config.seed, r)`, each with linfa's `n_runs(1)` (linfa's own
/// `n_runs` does not re-initialise), and keeps the highest TOTAL log-likelihood (our
/// log-sum-exp computation). Restarts that fail (no convergence within
/// `max_iterations`, an emptied cluster, a singular covariance) are skipped; if all
/// fail the error is `NotConverged`. Components are sorted by the first coordinate of
/// their means. Deterministic for a given config.
pub fn fit_mixture(data: ArrayView2<f64>, config: &EmConfig) -> Result<FittedMixture, DataError> {
    config.validate()?;
    check_data(data, config.k)?;
    on_one_thread_below(PARALLEL_FIT_ROWS, data.nrows(), || {
        fit_restarts(data, config)
    })
}

/// From this many rows on, a fit uses rayon's pool, which linfa's k-means splits its
/// assignment step over; below it the fit runs on one thread. Measured on two cores, one
/// 3-component fit (BENCHMARKS.md, change 17): at 500 rows a second thread made it slower
/// (0.030 → 0.035 s) for twice the CPU time, its idle workers spinning between the
/// hundreds of small parallel steps; from 5,000 rows it pays (−18% wall at 5,000, −30%
/// at 20,000). The fit is the same bits on any number of threads: each row is assigned on
/// its own.
pub const PARALLEL_FIT_ROWS: usize = 5_000;

/// Runs `f` on a one-thread rayon pool when `rows < threshold`, else on the current pool.
fn on_one_thread_below<T: Send>(threshold: usize, rows: usize, f: impl FnOnce() -> T + Send) -> T {
    if rows >= threshold {
        return f();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        // No thread to be had: the current pool gives the same result.
        Err(_) => f(),
    }
}

/// [`fit_mixture`]'s restarts, on checked input.
fn fit_restarts(data: ArrayView2<f64>, config: &EmConfig) -> Result<FittedMixture, DataError> {
    let dataset = DatasetBase::from(data);
    let mut best: Option<FittedMixture> = None;
    let mut last_error = String::new();
    for r in 0..config.restarts {
        let rng = Xoshiro256Plus::seed_from_u64(restart_seed(config.seed, r));
        let params = GaussianMixtureModel::params_with_rng(config.k, rng)
            .init_method(GmmInitMethod::KMeans)
            .n_runs(1)
            .max_n_iterations(config.max_iterations)
            .tolerance(config.tolerance)
            .reg_covariance(config.reg_covariance);
        let candidate = params
            .fit(&dataset)
            .map_err(|e| e.to_string())
            .and_then(|model| to_mixture(&model).map_err(|e| e.to_string()))
            .map(|mixture| FittedMixture::evaluate(mixture, data));
        match candidate {
            Ok(fit) if fit.log_likelihood.is_finite() => {
                if best
                    .as_ref()
                    .is_none_or(|b| fit.log_likelihood > b.log_likelihood)
                {
                    best = Some(fit);
                }
            }
            Ok(fit) => last_error = format!("log-likelihood {}", fit.log_likelihood),
            Err(e) => last_error = e,
        }
    }
    best.ok_or_else(|| DataError::NotConverged {
        k: config.k,
        restarts: config.restarts,
        last_error: last_error.replace('\n', " "),
    })
}

/// linfa's model as our mixture, components sorted by the first mean coordinate.
fn to_mixture(model: &GaussianMixtureModel<f64>) -> Result<GaussianMixture, DataError> {
    let (w, mu, cov) = (model.weights(), model.means(), model.covariances());
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| mu[[a, 0]].total_cmp(&mu[[b, 0]]));
    GaussianMixture::new(
        order.iter().map(|&k| w[k]).collect(),
        order.iter().map(|&k| mu.row(k).to_vec()).collect(),
        order
            .iter()
            .map(|&k| {
                Covariance::Full(
                    cov.index_axis(ndarray::Axis(0), k)
                        .iter()
                        .copied()
                        .collect(),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{flexibility_data, flexibility_truth};
    use ndarray::array;

    #[test]
    fn em_recovers_flexibility_parameters() {
        let data = column_matrix(&flexibility_data(0));
        let fit = fit_mixture(data.view(), &EmConfig::new(2)).unwrap();
        let g = &fit.mixture;
        let truth = flexibility_truth();
        for k in 0..2 {
            // Means within 0.2: the standard errors of the component means are
            // 1/√200 ≈ 0.071 and 1.5/√300 ≈ 0.087, so 0.2 is 2.3–2.8 SE. The data seed
            // is fixed; over seeds 0..100 the worst error was 0.27 (a miss beyond 2.3 SE
            // is expected in a few percent of seeds), the worst weight error 0.006.
            let (m, t) = (g.means()[k][0], truth.means()[k][0]);
            assert!((m - t).abs() < 0.2, "mean {k}: {m} vs {t}");
            // Weights within 0.05: the data holds exactly 200/300 points, so the weight
            // error comes only from overlap between components (they are 4.7σ apart).
            let (w, tw) = (g.weights()[k], truth.weights()[k]);
            assert!((w - tw).abs() < 0.05, "weight {k}: {w} vs {tw}");
            // Standard deviations within 0.2: SE of σ̂ is σ/√(2n) ≈ 0.05 and 0.061.
            let (s, ts) = (
                g.variances_1d().unwrap()[k].sqrt(),
                truth.variances_1d().unwrap()[k].sqrt(),
            );
            assert!((s - ts).abs() < 0.2, "sd {k}: {s} vs {ts}");
        }
        assert_eq!(fit.n_parameters, 5);
        // Deterministic for a given config.
        assert_eq!(fit_mixture(data.view(), &EmConfig::new(2)).unwrap(), fit);
    }

    #[test]
    fn em_recovers_two_clusters_2d() {
        let pts = crate::datasets::two_clusters(200, 5).points;
        let fit = fit_mixture(pts.view(), &EmConfig::new(2)).unwrap();
        let means = fit.mixture.means();
        // Means within 0.2 of (∓2, ∓2): SE per coordinate 0.5/√200 ≈ 0.035.
        for (m, t) in means.iter().zip([-2.0, 2.0]) {
            assert!(m.iter().all(|v| (v - t).abs() < 0.2), "{m:?}");
        }
        // 1 weight + 4 means + 2·3 covariance entries.
        assert_eq!(fit.n_parameters, 11);
    }

    #[test]
    fn normal_fit_log_likelihood_aic_bic_by_hand() {
        // One Normal on [1, 2, 3]: μ = 2, σ² = (1 + 0 + 1)/3 = 2/3 (ML, 1/n).
        // log L = −(n/2) ln(2πσ²) − Σ(x−μ)²/(2σ²) = −1.5 ln(4π/3) − 1.5
        //       = −1.5·1.432411824 − 1.5 = −3.648617937.
        // p = 2 (μ, σ²): AIC = 2·2 + 7.297235875 = 11.297235875;
        //                BIC = 2 ln 3 + 7.297235875 = 2.197224577 + 7.297235875 = 9.494460452.
        let data = column_matrix(&[1.0, 2.0, 3.0]);
        let g = fit_normal(data.view()).unwrap();
        assert!((g.means()[0][0] - 2.0).abs() < 1e-15); // rounding only
        assert!((g.variances_1d().unwrap()[0] - 2.0 / 3.0).abs() < 1e-15); // rounding only
        let ll = g.log_likelihood(data.view());
        let want = -1.5 * (4.0 * std::f64::consts::PI / 3.0).ln() - 1.5;
        assert!((ll - want).abs() < 1e-12, "{ll} vs {want}"); // rounding only
        assert!((want - (-3.648_617_937)).abs() < 1e-9); // the hand value to 9 decimals
        assert!((g.mean_log_likelihood(data.view()) - want / 3.0).abs() < 1e-12);
        let p = g.n_parameters();
        assert_eq!(p, 2);
        assert!((aic(ll, p) - 11.297_235_875).abs() < 1e-9); // 9 decimals by hand
        assert!((bic(ll, p, 3) - 9.494_460_452).abs() < 1e-9); // 9 decimals by hand
    }

    #[test]
    fn gmm_k1_equals_normal_fit() {
        let data = column_matrix(&[1.0, 2.0, 3.0, 4.5]);
        let normal = fit_normal(data.view()).unwrap();
        let fit = fit_mixture(data.view(), &EmConfig::new(1)).unwrap();
        // EM with K = 1 is the ML Normal plus reg_covariance = 1e-6 on σ² ≈ 1.8:
        // the log-likelihood moves by about n·1e-6/(2σ²) ≈ 1e-6.
        assert!((fit.log_likelihood - normal.log_likelihood(data.view())).abs() < 1e-5);
        assert_eq!(fit.n_parameters, normal.n_parameters());
    }

    #[test]
    fn two_d_normal_fit_full_covariance() {
        // Rows (0,0), (2,0), (0,2), (2,2) and (1,1): mean (1,1), Σ = diag(0.8, 0.8).
        let data = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]];
        let g = fit_normal(data.view()).unwrap();
        let c = g.covariance_matrix(0);
        for (got, want) in c.iter().zip([0.8, 0.0, 0.0, 0.8]) {
            assert!((got - want).abs() < 1e-15); // rounding only
        }
        assert_eq!(g.n_parameters(), 5); // 2 means + 3 covariance entries
    }

    #[test]
    fn fit_validation_errors() {
        let data = column_matrix(&[1.0, 2.0, 3.0]);
        let bad = |c: EmConfig| fit_mixture(data.view(), &c).unwrap_err();
        assert!(matches!(
            bad(EmConfig::new(0)),
            DataError::InvalidParameter { name: "k", .. }
        ));
        for (c, name) in [
            (
                EmConfig {
                    restarts: 0,
                    ..EmConfig::new(1)
                },
                "restarts",
            ),
            (
                EmConfig {
                    max_iterations: 0,
                    ..EmConfig::new(1)
                },
                "max_iterations",
            ),
            (
                EmConfig {
                    tolerance: 0.0,
                    ..EmConfig::new(1)
                },
                "tolerance",
            ),
            (
                EmConfig {
                    reg_covariance: -1.0,
                    ..EmConfig::new(1)
                },
                "reg_covariance",
            ),
        ] {
            assert!(matches!(bad(c), DataError::InvalidParameter { name: n, .. } if n == name));
        }
        assert_eq!(
            bad(EmConfig::new(4)),
            DataError::TooFewRows {
                rows: 3,
                k: 4,
                needed: 4
            }
        );
        assert!(matches!(
            fit_normal(column_matrix(&[1.0]).view()),
            Err(DataError::TooFewRows {
                rows: 1,
                needed: 2,
                ..
            })
        ));
        assert!(matches!(
            fit_normal(column_matrix(&[1.0, f64::NAN]).view()),
            Err(DataError::NonFiniteData {
                row: 1,
                column: 0,
                ..
            })
        ));
        assert!(matches!(
            fit_normal(Array2::zeros((3, 0)).view()),
            Err(DataError::ZeroDimension { .. })
        ));
        // Constant data: σ² = 0.
        assert!(matches!(
            fit_normal(column_matrix(&[5.0, 5.0, 5.0]).view()),
            Err(DataError::NonPositiveVariance { .. })
        ));
        // Collinear 2-D data (y = 2x): Σ = [[2/3, 4/3], [4/3, 8/3]] is singular.
        assert!(matches!(
            fit_normal(array![[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]].view()),
            Err(DataError::NotPositiveDefinite { row: 1, .. })
        ));
        assert!(matches!(
            fit_mixture(
                column_matrix(&[1e200, -1e200, 0.0]).view(),
                &EmConfig::new(2)
            ),
            Err(DataError::DataRangeTooLarge { column: 0, .. })
        ));
        assert_eq!(require_rows(10, 3), Ok(()));
    }

    #[test]
    fn all_restarts_failing_is_not_converged() {
        // Three identical points cannot fill two clusters: every restart empties one.
        let data = column_matrix(&[5.0, 5.0, 5.0]);
        let e = fit_mixture(data.view(), &EmConfig::new(2)).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::NotConverged {
                    k: 2,
                    restarts: 5,
                    ..
                }
            ),
            "{e}"
        );
        // A single iteration with a tiny tolerance never converges.
        let data = column_matrix(&flexibility_data(1));
        let c = EmConfig {
            max_iterations: 1,
            tolerance: 1e-300,
            restarts: 2,
            ..EmConfig::new(2)
        };
        let e = fit_mixture(data.view(), &c).unwrap_err();
        assert!(
            matches!(e, DataError::NotConverged { restarts: 2, .. }),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn a_fit_is_the_same_on_one_thread_and_on_two() {
        // The restarts on a two-thread pool (linfa's k-means splitting its rows, as above
        // PARALLEL_FIT_ROWS) and on one thread: the same mixture, bit for bit; and
        // fit_mixture below the threshold on a two-thread pool gives it too.
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let data = crate::two_clusters(500, 5).points;
        let config = EmConfig::new(2);
        let split = two.install(|| fit_restarts(data.view(), &config).unwrap());
        let single = one.install(|| fit_restarts(data.view(), &config).unwrap());
        assert_eq!(split, single);
        assert_eq!(
            two.install(|| fit_mixture(data.view(), &config).unwrap()),
            single
        );
        // The threshold's two branches: below it the work runs on a pool of its own.
        let below = two.install(|| on_one_thread_below(10, 9, rayon::current_num_threads));
        let above = two.install(|| on_one_thread_below(10, 10, rayon::current_num_threads));
        assert_eq!((below, above), (1, 2));
    }

    #[test]
    fn restart_seeds_differ() {
        assert_ne!(restart_seed(0, 0), restart_seed(0, 1));
        assert_ne!(restart_seed(1, 0), restart_seed(0, 1));
    }
}
