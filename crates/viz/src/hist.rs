//! Binning for histograms.

use crate::error::invalid;
use crate::VizError;

/// A sample sorted into equal-width bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Bins {
    /// `n + 1` increasing bin edges; bin `i` is `[edges[i], edges[i+1])`, the last
    /// one closed on the right too (as numpy and StatsBase do).
    pub edges: Vec<f64>,
    /// `n` bar heights: counts, or densities (count / (counted · width)).
    pub heights: Vec<f64>,
    /// How many values fell inside the range (non-finite and outside values are not).
    pub counted: usize,
}

/// Sorts `values` into `bins` equal-width bins over `range` (default: the finite
/// values' min..max, widened by ±0.5 if they are all equal).
///
/// With `density`, heights are scaled so that the bars' total area is 1 over the
/// values counted (Plots' `normalize=:pdf`); if nothing was counted they stay 0.
/// Errors: `bins == 0`, a non-finite or empty range, or (without a range) no
/// finite value at all.
pub fn bin_values(
    values: &[f64],
    bins: usize,
    range: Option<(f64, f64)>,
    density: bool,
) -> Result<Bins, VizError> {
    if bins == 0 {
        return invalid("histogram needs at least one bin");
    }
    let (lo, hi) = match range {
        Some((lo, hi)) => {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return invalid(format!(
                    "histogram range ({lo}, {hi}) must be finite with lo < hi"
                ));
            }
            (lo, hi)
        }
        None => {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &v in values.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if lo > hi {
                return invalid("histogram has no finite values");
            }
            if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        }
    };
    let span = hi - lo;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| lo + span * i as f64 / bins as f64)
        .collect();
    edges[bins] = hi;

    let mut counts = vec![0usize; bins];
    let mut counted = 0;
    for &v in values {
        if !(v >= lo && v <= hi) {
            continue; // also skips NaN
        }
        let i = (((v - lo) / span) * bins as f64).floor() as usize;
        counts[i.min(bins - 1)] += 1;
        counted += 1;
    }
    let heights = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if density && counted > 0 {
                c as f64 / (counted as f64 * (edges[i + 1] - edges[i]))
            } else if density {
                0.0
            } else {
                c as f64
            }
        })
        .collect();
    Ok(Bins {
        edges,
        heights,
        counted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ height·width over the bins.
    fn area(b: &Bins) -> f64 {
        b.heights
            .iter()
            .zip(b.edges.windows(2))
            .map(|(h, e)| h * (e[1] - e[0]))
            .sum()
    }

    #[test]
    fn density_integrates_to_one() {
        // A deterministic, skewed sample.
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 37 % 1000) as f64 / 100.0).powi(2))
            .collect();
        let b = bin_values(&values, 60, None, true).unwrap();
        assert_eq!(b.edges.len(), 61);
        assert_eq!(b.counted, 1000);
        // Only float rounding separates the sum from 1: 60 terms of ~1e-16 relative error.
        assert!((area(&b) - 1.0).abs() < 1e-12, "area {}", area(&b));
    }

    #[test]
    fn density_with_range_counts_only_inside() {
        let values = [-10.0, 0.1, 0.2, 0.6, 0.9, 1.0, 5.0, f64::NAN, f64::INFINITY];
        let b = bin_values(&values, 2, Some((0.0, 1.0)), true).unwrap();
        assert_eq!(b.counted, 5); // 1.0 is in the last (closed) bin
                                  // 0.1, 0.2 in [0, 0.5); 0.6, 0.9, 1.0 in [0.5, 1]: densities 2/(5·0.5), 3/(5·0.5).
        assert!((b.heights[0] - 0.8).abs() < 1e-12);
        assert!((b.heights[1] - 1.2).abs() < 1e-12);
        assert!((area(&b) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn counts_without_density() {
        let values = [0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 3.0];
        let b = bin_values(&values, 3, None, false).unwrap();
        assert_eq!(b.edges, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(b.heights, vec![2.0, 1.0, 4.0]);
        assert_eq!(b.heights.iter().sum::<f64>(), values.len() as f64);
    }

    #[test]
    fn constant_sample_gets_a_unit_range() {
        let b = bin_values(&[2.0; 5], 4, None, true).unwrap();
        assert_eq!((b.edges[0], b.edges[4]), (1.5, 2.5));
        assert!((area(&b) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(bin_values(&[1.0], 0, None, true).is_err());
        assert!(bin_values(&[], 10, None, true).is_err());
        assert!(bin_values(&[f64::NAN], 10, None, true).is_err());
        assert!(bin_values(&[1.0], 10, Some((1.0, 1.0)), true).is_err());
        assert!(bin_values(&[1.0], 10, Some((0.0, f64::INFINITY)), true).is_err());
    }
}
