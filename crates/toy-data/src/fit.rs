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
