//! Gaussian mixtures for the toydiff notebook port: 1-D and n-D mixtures with the latent
//! component, exact densities, EM fits (via linfa-clustering) with AIC/BIC, the
//! notebook's "GMM vs Normal" comparison, its toy data sets and CSV loading.
//!
//! - [`GaussianMixture`]: p(x) = Σ_k π_k N(x; μ_k, Σ_k), validated on construction;
//!   sampling (with z), `pdf`, `log_pdf`, `posterior`, `score`, log-likelihoods.
//! - [`fit_normal`], [`fit_mixture`] ([`EmConfig`], [`FittedMixture`],
//!   [`PARALLEL_FIT_ROWS`]), [`aic`], [`bic`].
//! - [`compare_models`] / [`choose_k_by_bic`]: the notebook's open TODO.
//! - [`datasets`]: the notebook's data and true distributions.
//! - [`toy_sets`]: built-in seeded 2-D toy sets ([`BuiltinSet`], [`builtin`],
//!   [`Dataset2d`]): two-clusters, moons, circles, eight-gaussians, checkerboard,
//!   swiss-roll, spiral.
//! - [`load_column`], [`load_columns`]: numeric CSV columns; [`load_labelled`]
//!   ([`CsvData`]): numeric columns plus a class label column, optionally dropping
//!   rows with missing values.
//! - [`Standardizer`], [`check_not_constant`], [`split_holdout`]: preparing data.
//!
//! Randomness comes from a caller-supplied `rand` 0.9 RNG; EM restarts are seeded from
//! [`EmConfig::seed`], so every result is reproducible.
//!
//! # Example
//!
//! Sample the notebook's mixture 0.4·N(−2, 0.5²) + 0.6·N(3, 1²), fit K = 2 by EM and
//! print the fit:
//!
//! ```
//! use rand::SeedableRng;
//! use toy_data::{fit_mixture, EmConfig, GaussianMixture};
//!
//! let truth = GaussianMixture::univariate(&[0.4, 0.6], &[-2.0, 3.0], &[0.5, 1.0])?;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let (data, z) = truth.sample_with_latent(1000, &mut rng);
//! println!("first draw {:.2} came from component {}", data[[0, 0]], z[0]);
//!
//! let fit = fit_mixture(data.view(), &EmConfig::new(2))?;
//! println!("{fit}");
//! assert!((fit.mixture.means()[0][0] - -2.0).abs() < 0.2);
//! assert!((fit.mixture.weights()[1] - 0.6).abs() < 0.05);
//! # Ok::<(), toy_data::DataError>(())
//! ```

mod compare;
mod csv_data;
pub mod datasets;
mod error;
mod fit;
mod mixture;
mod prep;
pub mod toy_sets;

pub use compare::{choose_k_by_bic, compare_models, Comparison, ComparisonRow};
pub use csv_data::{load_column, load_columns, load_labelled, CsvData, MISSING_TOKENS};
pub use datasets::{
    flexibility_data, flexibility_truth, notebook_gmm_1d, two_clusters, two_clusters_mixture,
    LabelledPoints,
};
pub use error::{DataError, MAX_CLASSES, MIN_CLASSES};
pub use fit::{
    aic, bic, column_matrix, fit_mixture, fit_normal, require_rows, restart_seed, EmConfig,
    FittedMixture, PARALLEL_FIT_ROWS,
};
pub use mixture::{Covariance, GaussianMixture};
pub use prep::{check_not_constant, split_holdout, Standardizer};
pub use toy_sets::{builtin, BuiltinSet, Dataset2d};

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
