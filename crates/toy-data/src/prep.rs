//! Preparing data for training: a constant-column check, per-column standardisation
//! and a seeded held-out split.

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::DataError;

/// The name of column `j`: `column_names[j]`, or `column j` (0-based) when not given.
fn column_name<S: AsRef<str>>(column_names: &[S], j: usize) -> String {
    column_names
        .get(j)
        .map_or_else(|| format!("column {j}"), |s| s.as_ref().to_string())
}

/// Fails with [`DataError::ConstantColumn`] (naming the column and its value) on the
/// first column whose values are all equal: such a column cannot be standardised.
///
/// Columns are named by `column_names[j]`, or `column j` (0-based) past its end. A
/// matrix with no rows has no constant column.
pub fn check_not_constant<S: AsRef<str>>(
    points: ArrayView2<f64>,
    column_names: &[S],
) -> Result<(), DataError> {
    for (j, col) in points.columns().into_iter().enumerate() {
        if let Some(&first) = col.first() {
            if col.iter().all(|&v| v == first) {
                return Err(DataError::ConstantColumn {
                    column: column_name(column_names, j),
                    value: first,
                });
            }
        }
    }
    Ok(())
}

/// Per-column standardisation z = (x − mean) / std, with the **population** standard
/// deviation std = √(Σ (x − mean)² / n) (divisor n, as numpy's default and
/// scikit-learn's `StandardScaler`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    /// Mean of each column.
    pub mean: Vec<f64>,
    /// Population standard deviation of each column (> 0).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits the column means and population standard deviations, naming columns
    /// `column j` (0-based) in errors; see [`Standardizer::fit_named`].
    pub fn fit(points: ArrayView2<f64>) -> Result<Self, DataError> {
        Self::fit_named(points, &[] as &[&str])
    }

    /// Fits the column means and population standard deviations.
    ///
    /// Errors: no rows ([`DataError::InvalidParameter`]), no columns
    /// ([`DataError::ZeroDimension`]), a NaN or infinite value
    /// ([`DataError::NonFiniteData`]), a constant column ([`DataError::ConstantColumn`],
    /// named by `column_names[j]` or `column j`), which includes every column of a
    /// single row.
    pub fn fit_named<S: AsRef<str>>(
        points: ArrayView2<f64>,
        column_names: &[S],
    ) -> Result<Self, DataError> {
        let (n, d) = points.dim();
        if n == 0 {
            return Err(DataError::InvalidParameter {
                name: "points",
                value: format!("0 rows × {d} columns"),
                allowed: "at least one row",
            });
        }
        if d == 0 {
            return Err(DataError::ZeroDimension {
                what: "the data".into(),
            });
        }
        if let Some(((row, column), &value)) = points.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(DataError::NonFiniteData { row, column, value });
        }
        check_not_constant(points, column_names)?;
        let mut mean = Vec::with_capacity(d);
        let mut std = Vec::with_capacity(d);
        for col in points.columns() {
            let m = col.sum() / n as f64;
            let var = col.iter().map(|&v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            mean.push(m);
            std.push(var.sqrt());
        }
        Ok(Self { mean, std })
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// (x − mean) / std for every row.
    ///
    /// # Panics
    ///
    /// If `points` does not have [`Standardizer::dim`] columns.
    pub fn transform(&self, points: ArrayView2<f64>) -> Array2<f64> {
        let mut out = points.to_owned();
        self.check_columns(out.ncols());
        for mut row in out.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        out
    }

    /// z·std + mean for every row: the inverse of [`Standardizer::transform`].
    ///
    /// # Panics
    ///
    /// If `points` does not have [`Standardizer::dim`] columns.
    pub fn inverse(&self, points: ArrayView2<f64>) -> Array2<f64> {
        let mut out = points.to_owned();
        self.check_columns(out.ncols());
        for mut row in out.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
        out
    }

    /// [`Standardizer::transform`] in place on flat row-major f64 data.
    ///
    /// # Panics
    ///
    /// If `data.len()` is not a multiple of [`Standardizer::dim`].
    pub fn transform_slice(&self, data: &mut [f64]) {
        self.map_rows(data, |v, m, s| (v - m) / s);
    }

    /// [`Standardizer::inverse`] in place on flat row-major f64 data.
    ///
    /// # Panics
    ///
    /// If `data.len()` is not a multiple of [`Standardizer::dim`].
    pub fn inverse_slice(&self, data: &mut [f64]) {
        self.map_rows(data, |v, m, s| v * s + m);
    }

    /// [`Standardizer::transform`] in place on flat row-major f32 data (computed in
    /// f64, rounded to f32).
    ///
    /// # Panics
    ///
    /// If `data.len()` is not a multiple of [`Standardizer::dim`].
    pub fn transform_slice_f32(&self, data: &mut [f32]) {
        self.map_rows(data, |v, m, s| (v - m) / s);
    }

    /// [`Standardizer::inverse`] in place on flat row-major f32 data (computed in f64,
    /// rounded to f32).
    ///
    /// # Panics
    ///
    /// If `data.len()` is not a multiple of [`Standardizer::dim`].
    pub fn inverse_slice_f32(&self, data: &mut [f32]) {
        self.map_rows(data, |v, m, s| v * s + m);
    }

    fn map_rows<T: Copy + Into<f64> + FromF64>(
        &self,
        data: &mut [T],
        f: impl Fn(f64, f64, f64) -> f64,
    ) {
        let d = self.dim();
        assert!(
            d > 0 && data.len().is_multiple_of(d),
            "flat data of {} values is not a whole number of rows of {d} columns",
            data.len()
        );
        for row in data.chunks_exact_mut(d) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = T::from_f64(f((*v).into(), m, s));
            }
        }
    }

    fn check_columns(&self, ncols: usize) {
        assert_eq!(
            ncols,
            self.dim(),
            "points have {ncols} columns but the standardizer was fitted on {}",
            self.dim()
        );
    }
}

/// f64 → Self, rounding (private helper for the flat-slice methods).
trait FromF64 {
    fn from_f64(v: f64) -> Self;
}

impl FromF64 for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl FromF64 for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

/// Splits `0..n` into (train, held-out) index lists with a seeded shuffle
/// (`StdRng::seed_from_u64(seed)`): round(n·fraction) indices are held out, the rest
/// train. Both lists are returned sorted ascending; together they are `0..n`.
///
/// # Panics
///
/// If `fraction` is not in [0, 1] (NaN included).
pub fn split_holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    assert!(
        (0.0..=1.0).contains(&fraction),
        "held-out fraction {fraction} must be in [0, 1]"
    );
    let n_held = ((n as f64 * fraction).round() as usize).min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut held = idx.split_off(n - n_held);
    idx.sort_unstable();
    held.sort_unstable();
    (idx, held)
}
