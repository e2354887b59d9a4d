//! Sample-quality measures: energy distance (and its noise floor), mode balance,
//! per-mode moments and guided precision. Points are n × d row-major slices.

use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;
use toy_data::GaussianMixture;

/// Mean Euclidean distance between the rows of `a` and `b` (`same`: skip i = j).
///
/// Summed in (i, j) order, one pair at a time. The distances of one row i to every row of
/// b are computed first into a buffer (a loop the compiler vectorises, with b's columns
/// split out once), then added in order; the pair i = j of `same` adds an exact 0 rather
/// than being skipped. Both give the same bits as the plain double loop.
fn mean_distance(a: &[f64], b: &[f64], dim: usize, same: bool) -> f64 {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    // b column by column: cols[c][j] = b[j][c].
    let cols: Vec<Vec<f64>> = (0..dim)
        .map(|c| b.chunks_exact(dim).map(|row| row[c]).collect())
        .collect();
    let mut sq = vec![0f64; nb];
    let mut total = 0.0;
    for x in a.chunks_exact(dim) {
        // Σ_c (x_c − y_c)², in c order from −0.0 as `Iterator::sum` does.
        sq.fill(-0.0);
        for (c, col) in cols.iter().enumerate() {
            let p = x[c];
            for (s, &q) in sq.iter_mut().zip(col) {
                *s += (p - q) * (p - q);
            }
        }
        for s in sq.iter_mut() {
            *s = s.sqrt();
        }
        for &d in &sq {
            total += d;
        }
    }
    debug_assert!(!same || na == nb);
    let pairs = if same { na * (nb - 1) } else { na * nb };
    total / pairs.max(1) as f64
}

/// Energy distance (Székely & Rizzo) between two samples, unbiased within-sample terms:
/// E = 2 E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖; 0 in expectation when X and Y share a law.
pub fn energy_distance(a: &[f64], b: &[f64], dim: usize) -> f64 {
    assert!(dim > 0 && a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim));
    2.0 * mean_distance(a, b, dim, false)
        - mean_distance(a, a, dim, true)
        - mean_distance(b, b, dim, true)
}

/// f32 points as f64.
pub fn widen(points: &[f32]) -> Vec<f64> {
    points.iter().map(|&v| v as f64).collect()
}

/// The spread of the energy distance between two independent samples of `n` points each
/// from the same law: how small a distance can be told from sampling noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseFloor {
    /// Mean over the repeats.
    pub mean: f64,
    /// 95th percentile over the repeats (nearest rank): the floor a sampler is held to.
    pub p95: f64,
    /// Sample size of each side.
    pub n: usize,
    /// Independent pairs drawn.
    pub repeats: usize,
}

impl NoiseFloor {
    /// The mean and nearest-rank 95th percentile of energy distances measured at sample
    /// size `n` (at least one value).
    pub fn from_values(mut values: Vec<f64>, n: usize) -> Self {
        assert!(
            !values.is_empty(),
            "a noise floor needs at least one distance"
        );
        values.sort_by(f64::total_cmp);
        let rank = ((0.95 * values.len() as f64).ceil() as usize).clamp(1, values.len());
        NoiseFloor {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p95: values[rank - 1],
            n,
            repeats: values.len(),
        }
    }
}

/// The energy-distance noise floor of `mixture` at sample size `n`, from `repeats` pairs.
pub fn energy_noise_floor(
    mixture: &GaussianMixture,
    n: usize,
    repeats: usize,
    seed: u64,
) -> NoiseFloor {
    let mut rng = StdRng::seed_from_u64(seed);
    // Every pair drawn first, in order, then the distances (the O(n²) part) on all cores:
    // each value is computed exactly as on one thread.
    let mut draw = || -> Vec<f64> {
        let s = mixture.sample(n, &mut rng);
        s.as_slice().expect("standard layout").to_vec()
    };
    let pairs: Vec<(Vec<f64>, Vec<f64>)> = (0..repeats.max(1)).map(|_| (draw(), draw())).collect();
    let dim = mixture.dim();
    let distance = |(a, b): &(Vec<f64>, Vec<f64>)| energy_distance(a, b, dim);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = pairs.len().div_ceil(threads.max(1));
    let values: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk.max(1))
            .map(|part| scope.spawn(move || part.iter().map(distance).collect::<Vec<f64>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a noise-floor thread panicked"))
            .collect()
    });
    NoiseFloor::from_values(values, n)
}

/// The most probable component of each point under `mixture` (argmax of p(z = k | x)).
pub fn assign_modes(points: &[f64], mixture: &GaussianMixture) -> Vec<usize> {
    points
        .chunks(mixture.dim())
        .map(|x| {
            mixture
                .posterior(x)
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(k, _)| k)
        })
        .collect()
}

/// What landed in one mode of the mixture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeStats {
    /// The component index.
    pub mode: usize,
    /// Points assigned to it.
    pub count: usize,
    /// count / n.
    pub fraction: f64,
    /// Per-dimension mean of its points (empty if none).
    pub mean: Vec<f64>,
    /// Per-dimension standard deviation of its points (n − 1 denominator).
    pub std: Vec<f64>,
}

/// Count, fraction, mean and standard deviation of the points in each mode.
pub fn mode_stats(points: &[f64], mixture: &GaussianMixture) -> Vec<ModeStats> {
    let d = mixture.dim();
    let modes = assign_modes(points, mixture);
    let n = modes.len();
    (0..mixture.n_components())
        .map(|k| {
            let rows: Vec<&[f64]> = points
                .chunks(d)
                .zip(&modes)
                .filter(|(_, &m)| m == k)
                .map(|(x, _)| x)
                .collect();
            let c = rows.len();
            let mean: Vec<f64> = if c == 0 {
                vec![]
            } else {
                (0..d)
                    .map(|j| rows.iter().map(|x| x[j]).sum::<f64>() / c as f64)
                    .collect()
            };
            let std = if c < 2 {
                vec![]
            } else {
                (0..d)
                    .map(|j| {
                        let ss: f64 = rows.iter().map(|x| (x[j] - mean[j]).powi(2)).sum();
                        (ss / (c - 1) as f64).sqrt()
                    })
                    .collect()
            };
            ModeStats {
                mode: k,
                count: c,
                fraction: c as f64 / n.max(1) as f64,
                mean,
                std,
            }
        })
        .collect()
}

/// The fraction of points whose exact posterior p(z = target | x) under `mixture` exceeds 0.5.
pub fn guided_precision(points: &[f64], mixture: &GaussianMixture, target: usize) -> f64 {
    let d = mixture.dim();
    let n = points.len() / d;
    let hits = points
        .chunks(d)
        .filter(|x| mixture.posterior(x)[target] > 0.5)
        .count();
    hits as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_distance_by_hand() {
        // 1-D: a = {0, 1}, b = {3}. E|X−Y| = (3 + 2)/2 = 2.5, E|X−X'| = 1, E|Y−Y'| has no
        // pairs (0). E = 5 − 1 − 0 = 4.
        assert!((energy_distance(&[0.0, 1.0], &[3.0], 1) - 4.0).abs() < 1e-12);
        // Shifting one sample far away increases it.
        let a = [0.0, 0.0, 1.0, 1.0];
        assert!(energy_distance(&a, &[5.0, 5.0, 6.0, 6.0], 2) > energy_distance(&a, &a, 2));
    }

    #[test]
    fn modes_and_precision_on_known_points() {
        let m = toy_data::two_clusters_mixture();
        let pts = [-2.0, -2.0, -1.5, -2.5, 2.0, 2.0, 0.1, 0.2];
        assert_eq!(assign_modes(&pts, &m), vec![0, 0, 1, 1]);
        assert_eq!(guided_precision(&pts, &m, 0), 0.5);
        let stats = mode_stats(&pts, &m);
        assert_eq!(stats[0].count, 2);
        assert_eq!(stats[0].mean, vec![-1.75, -2.25]);
        assert!((stats[0].std[0] - (0.125f64).sqrt()).abs() < 1e-12);
        assert_eq!(stats[1].fraction, 0.5);
    }

    #[test]
    fn noise_floor_is_small_and_positive() {
        let m = toy_data::two_clusters_mixture();
        let f = energy_noise_floor(&m, 200, 10, 3);
        assert!(f.p95 >= f.mean && f.mean > -0.01 && f.p95 < 0.2, "{f:?}");
    }
}
