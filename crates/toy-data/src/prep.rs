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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn standardizer_round_trip() {
        let x = array![[1.0, -200.0, 0.5], [2.0, 350.0, 0.25], [4.5, 10.0, 0.125]];
        let s = Standardizer::fit(x.view()).unwrap();
        assert_eq!(s.dim(), 3);
        let z = s.transform(x.view());
        for col in z.columns() {
            // Mean 0 and population variance 1, up to rounding (values of order 1).
            assert!(col.mean().unwrap().abs() < 1e-12);
            let var = col.iter().map(|v| v * v).sum::<f64>() / 3.0;
            assert!((var - 1.0).abs() < 1e-12, "{var}");
        }
        let back = s.inverse(z.view());
        // A few roundings of values up to 350 in magnitude: relative 1e-12 is ample.
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        // Population std: column 0 = [1, 2, 4.5], mean 2.5, var (2.25+0.25+4)/3.
        assert!((s.std[0] - (6.5f64 / 3.0).sqrt()).abs() < 1e-15);

        // Flat slices agree with the array methods.
        let mut flat: Vec<f64> = x.iter().copied().collect();
        s.transform_slice(&mut flat);
        assert_eq!(flat, z.iter().copied().collect::<Vec<_>>());
        s.inverse_slice(&mut flat);
        assert_eq!(flat, back.iter().copied().collect::<Vec<_>>());
        let mut flat32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        s.transform_slice_f32(&mut flat32);
        for (a, b) in flat32.iter().zip(z.iter()) {
            // f32 rounding of values of order 1 (plus of the inputs): 1e-5 is generous.
            assert!((f64::from(*a) - b).abs() < 1e-5);
        }
        s.inverse_slice_f32(&mut flat32);
        for (a, b) in flat32.iter().zip(x.iter()) {
            assert!((f64::from(*a) - b).abs() < 1e-5 * b.abs().max(1.0));
        }
    }

    #[test]
    fn standardizer_errors() {
        let x = array![[1.0, 3.0], [2.0, 3.0]];
        let e = Standardizer::fit(x.view()).unwrap_err();
        assert_eq!(
            e,
            DataError::ConstantColumn {
                column: "column 1".into(),
                value: 3.0
            }
        );
        let e = Standardizer::fit_named(x.view(), &["sepal", "petal"]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"petal\"") && msg.contains('3'), "{msg}");
        assert!(check_not_constant(x.view(), &["a".to_string(), "b".to_string()]).is_err());
        assert!(check_not_constant(array![[1.0, 3.0], [2.0, 4.0]].view(), &["a"]).is_ok());
        assert!(matches!(
            Standardizer::fit(Array2::<f64>::zeros((0, 2)).view()),
            Err(DataError::InvalidParameter { .. })
        ));
        assert!(matches!(
            Standardizer::fit(Array2::<f64>::zeros((3, 0)).view()),
            Err(DataError::ZeroDimension { .. })
        ));
        assert!(matches!(
            Standardizer::fit(array![[1.0], [f64::NAN]].view()),
            Err(DataError::NonFiniteData {
                row: 1,
                column: 0,
                ..
            })
        ));
        // One row: every column is constant.
        assert!(matches!(
            Standardizer::fit(array![[1.0, 2.0]].view()),
            Err(DataError::ConstantColumn { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "columns")]
    fn transform_checks_columns() {
        let s = Standardizer::fit(array![[1.0, 2.0], [3.0, 5.0]].view()).unwrap();
        let _ = s.transform(array![[1.0, 2.0, 3.0]].view());
    }

    #[test]
    fn standardizer_is_serde() {
        fn assert_serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
        assert_serde::<Standardizer>();
    }

    #[test]
    fn holdout_split() {
        let (train, held) = split_holdout(100, 0.2, 9);
        assert_eq!((train.len(), held.len()), (80, 20));
        let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(held.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split_holdout(100, 0.2, 9), (train, held.clone()));
        assert_ne!(split_holdout(100, 0.2, 10).1, held);
        // A seeded shuffle, not a prefix or suffix.
        assert_ne!(held, (80..100).collect::<Vec<_>>());
        assert_eq!(split_holdout(10, 0.0, 1), ((0..10).collect(), vec![]));
        assert_eq!(split_holdout(10, 1.0, 1), (vec![], (0..10).collect()));
        assert_eq!(split_holdout(0, 0.5, 1), (vec![], vec![]));
        assert_eq!(split_holdout(7, 0.5, 1).1.len(), 4); // round(3.5) = 4
    }

    #[test]
    #[should_panic(expected = "fraction")]
    fn holdout_rejects_bad_fraction() {
        let _ = split_holdout(10, 1.5, 0);
    }
}
