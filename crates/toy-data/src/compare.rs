//! The notebook's open TODO, "compare the cost of a GMM vs a Normal": fit time,
//! parameter count, likelihood, AIC and BIC of a Normal and of GMMs with K = 1..max_k.

use std::time::Instant;

use ndarray::ArrayView2;
use serde::Serialize;

use crate::fit::{aic, bic, check_data};
use crate::{fit_mixture, fit_normal, DataError, EmConfig, FittedMixture, GaussianMixture};

/// One fitted model of a [`Comparison`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// "Normal" or "GMM k=K".
    pub model: String,
    /// Components K (1 for the Normal).
    pub k: usize,
    /// Free parameters p (full covariances).
    pub n_parameters: usize,
    /// TOTAL log-likelihood Σ_i log p(x_i).
    pub log_likelihood: f64,
    /// MEAN log-likelihood per sample (scikit-learn's `score`).
    pub mean_log_likelihood: f64,
    /// 2p − 2 log L.
    pub aic: f64,
    /// p ln n − 2 log L.
    pub bic: f64,
    /// Median wall time of one fit in seconds, over `repeats` fits. The only
    /// non-reproducible field: leave it out of files that must be reproducible.
    pub fit_seconds_median: f64,
}

/// A Normal and GMMs with K = 1..max_k fitted to the same data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// "Normal" first, then "GMM k=1" … "GMM k=max_k".
    pub rows: Vec<ComparisonRow>,
    /// The K of the GMM row with the lowest BIC.
    pub best_k_bic: usize,
}

impl Comparison {
    /// A Markdown table of the rows (timing column only if `include_timing`), followed
    /// by a line naming the K chosen by BIC.
    pub fn to_markdown(&self, include_timing: bool) -> String {
        let mut s = String::from(
            "| model | parameters | log-likelihood (total) | mean log-likelihood | AIC | BIC |",
        );
        s.push_str(if include_timing {
            " fit time (median, ms) |\n|---|---:|---:|---:|---:|---:|---:|\n"
        } else {
            "\n|---|---:|---:|---:|---:|---:|\n"
        });
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {:.3} | {:.4} | {:.3} | {:.3} |",
                r.model, r.n_parameters, r.log_likelihood, r.mean_log_likelihood, r.aic, r.bic
            ));
            if include_timing {
                s.push_str(&format!(" {:.3} |", r.fit_seconds_median * 1e3));
            }
            s.push('\n');
        }
        s.push_str(&format!("\nBIC chooses k = {}.\n", self.best_k_bic));
        s
    }
}

/// Fits a Normal ([`fit_normal`]) and GMMs with K = 1..=max_k ([`fit_mixture`],
/// `EmConfig::new(K).with_seed(seed)`), timing each fit `repeats` times (median).
///
/// Errors: `max_k` or `repeats` of 0 (`InvalidParameter`), bad data (as the fits),
/// any failed fit (its error).
pub fn compare_models(
    data: ArrayView2<f64>,
    max_k: usize,
    repeats: usize,
    seed: u64,
) -> Result<Comparison, DataError> {
    check_k_and_data(data, max_k)?;
    if repeats == 0 {
        return Err(DataError::InvalidParameter {
            name: "repeats",
            value: "0".into(),
            allowed: ">= 1",
        });
    }
    let n = data.nrows();
    let (normal, secs) = timed(repeats, || fit_normal(data))?;
    let mut rows = vec![row("Normal".into(), 1, &normal, data, secs)];
    let mut best: Option<(usize, f64)> = None;
    for k in 1..=max_k {
        let config = EmConfig::new(k).with_seed(seed);
        let (fit, secs) = timed(repeats, || fit_mixture(data, &config))?;
        debug_assert_eq!(fit.bic, bic(fit.log_likelihood, fit.n_parameters, n));
        if best.is_none_or(|(_, b)| fit.bic < b) {
            best = Some((k, fit.bic));
        }
        rows.push(row(format!("GMM k={k}"), k, &fit.mixture, data, secs));
    }
    Ok(Comparison {
        rows,
        best_k_bic: best.map_or(1, |(k, _)| k),
    })
}

/// The GMM with the lowest BIC among K = 1..=max_k (`EmConfig::new(K).with_seed(seed)`).
/// Any failed fit is returned as the error.
pub fn choose_k_by_bic(
    data: ArrayView2<f64>,
    max_k: usize,
    seed: u64,
) -> Result<FittedMixture, DataError> {
    check_k_and_data(data, max_k)?;
    let mut best: Option<FittedMixture> = None;
    for k in 1..=max_k {
        let fit = fit_mixture(data, &EmConfig::new(k).with_seed(seed))?;
        if best.as_ref().is_none_or(|b| fit.bic < b.bic) {
            best = Some(fit);
        }
    }
    // max_k ≥ 1 was checked, so at least one fit ran.
    best.ok_or(DataError::InvalidParameter {
        name: "max_k",
        value: max_k.to_string(),
        allowed: ">= 1",
    })
}

fn check_k_and_data(data: ArrayView2<f64>, max_k: usize) -> Result<(), DataError> {
    if max_k == 0 {
        return Err(DataError::InvalidParameter {
            name: "max_k",
            value: "0".into(),
            allowed: ">= 1",
        });
    }
    check_data(data, max_k)
}

/// Runs `f` `repeats` times; its last result and the median seconds of one run.
fn timed<T>(
    repeats: usize,
    mut f: impl FnMut() -> Result<T, DataError>,
) -> Result<(T, f64), DataError> {
    let mut times = Vec::with_capacity(repeats);
    let mut out = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        out = Some(f()?);
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let m = times.len() / 2;
    let median = if times.len() % 2 == 1 {
        times[m]
    } else {
        0.5 * (times[m - 1] + times[m])
    };
    // repeats ≥ 1 was checked by the caller, so `out` is set.
    out.map(|o| (o, median)).ok_or(DataError::InvalidParameter {
        name: "repeats",
        value: "0".into(),
        allowed: ">= 1",
    })
}

fn row(
    model: String,
    k: usize,
    g: &GaussianMixture,
    data: ArrayView2<f64>,
    fit_seconds_median: f64,
) -> ComparisonRow {
    let log_likelihood = g.log_likelihood(data);
    let p = g.n_parameters();
    ComparisonRow {
        model,
        k,
        n_parameters: p,
        log_likelihood,
        mean_log_likelihood: log_likelihood / data.nrows() as f64,
        aic: aic(log_likelihood, p),
        bic: bic(log_likelihood, p, data.nrows()),
        fit_seconds_median,
    }
}
