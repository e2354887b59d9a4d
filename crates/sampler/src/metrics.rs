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
    noise_floor(mixture, n, repeats, seed, energy_distance)
}

/// The 2-Wasserstein noise floor of `mixture` at sample size `n`, from `repeats` pairs
/// ([`wasserstein2`] between two independent samples of `n` points).
pub fn w2_noise_floor(
    mixture: &GaussianMixture,
    n: usize,
    repeats: usize,
    seed: u64,
) -> NoiseFloor {
    noise_floor(mixture, n, repeats, seed, wasserstein2)
}

/// `distance` between two independent samples of `n` points of `mixture`, over `repeats` pairs.
fn noise_floor(
    mixture: &GaussianMixture,
    n: usize,
    repeats: usize,
    seed: u64,
    distance: fn(&[f64], &[f64], usize) -> f64,
) -> NoiseFloor {
    let mut rng = StdRng::seed_from_u64(seed);
    // Every pair drawn first, in order, then the distances (the costly part) on all cores:
    // each value is computed exactly as on one thread.
    let mut draw = || -> Vec<f64> {
        let s = mixture.sample(n, &mut rng);
        s.as_slice().expect("standard layout").to_vec()
    };
    let pairs: Vec<(Vec<f64>, Vec<f64>)> = (0..repeats.max(1)).map(|_| (draw(), draw())).collect();
    let dim = mixture.dim();
    let distance = |(a, b): &(Vec<f64>, Vec<f64>)| distance(a, b, dim);
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

/// The minimum-cost perfect matching of an n × n cost matrix (row-major): `result[i]` is
/// the column of row i. The Hungarian algorithm with potentials and shortest augmenting
/// paths, O(n³) (Kuhn 1955; Jonker & Volgenant 1987, the dense form of section 3).
pub fn optimal_assignment(cost: &[f64], n: usize) -> Vec<usize> {
    assert_eq!(cost.len(), n * n, "an n × n cost matrix");
    // 1-based as in the classical statement: column 0 is the virtual start.
    let (mut u, mut v) = (vec![0f64; n + 1], vec![0f64; n + 1]);
    let mut row_of = vec![0usize; n + 1]; // row_of[j]: the row matched to column j (0: none)
    let mut way = vec![0usize; n + 1];
    let mut min_to = vec![0f64; n + 1];
    let mut used = vec![false; n + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0;
        min_to.fill(f64::INFINITY);
        used.fill(false);
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let row = &cost[(i0 - 1) * n..i0 * n];
            let (mut delta, mut j1) = (f64::INFINITY, 0);
            for j in 1..=n {
                if !used[j] {
                    let reduced = row[j - 1] - u[i0] - v[j];
                    if reduced < min_to[j] {
                        min_to[j] = reduced;
                        way[j] = j0;
                    }
                    if min_to[j] < delta {
                        delta = min_to[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_to[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the start.
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut column_of = vec![0usize; n];
    for j in 1..=n {
        column_of[row_of[j] - 1] = j - 1;
    }
    column_of
}

/// The 2-Wasserstein distance between two equal-size samples (uniform weights):
/// W2 = (min over permutations σ of (1/n) Σ_i ‖a_i − b_σ(i)‖²)^½, the optimal transport
/// being an assignment problem (Peyré & Cuturi 2019, Computational Optimal Transport,
/// proposition 2.1), solved exactly by [`optimal_assignment`]. O(n³): n = 1,000 takes about a second.
pub fn wasserstein2(a: &[f64], b: &[f64], dim: usize) -> f64 {
    assert!(dim > 0 && a.len() == b.len() && a.len().is_multiple_of(dim));
    let n = a.len() / dim;
    if n == 0 {
        return 0.0;
    }
    let squared = |i: usize, j: usize| -> f64 {
        (0..dim)
            .map(|c| (a[i * dim + c] - b[j * dim + c]).powi(2))
            .sum()
    };
    let cost: Vec<f64> = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| squared(i, j))
        .collect();
    let matching = optimal_assignment(&cost, n);
    let total: f64 = matching
        .iter()
        .enumerate()
        .map(|(i, &j)| squared(i, j))
        .sum();
    (total / n as f64).sqrt()
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

/// The total standard deviation √(tr Σ̂) of n × d points (Σ̂ the sample covariance,
/// divisor n − 1): the spread that guidance's diversity ratio compares, samples against
/// their class ([`std_ratio`]).
pub fn total_std(points: &[f64], dim: usize) -> f64 {
    let n = points.len() / dim;
    if n < 2 {
        return 0.0;
    }
    let mut total = 0.0;
    for j in 0..dim {
        let mean = points.iter().skip(j).step_by(dim).sum::<f64>() / n as f64;
        let ss: f64 = points
            .iter()
            .skip(j)
            .step_by(dim)
            .map(|v| (v - mean) * (v - mean))
            .sum();
        total += ss / (n - 1) as f64;
    }
    total.sqrt()
}

/// Diversity of guided samples: √(tr Σ̂_samples / tr Σ_class), their total standard
/// deviation over the class's (`class_std`, e.g. √(tr Σ) of its Gaussian): 1 for samples
/// as spread as the class, below 1 when guidance tightens them.
pub fn std_ratio(points: &[f64], dim: usize, class_std: f64) -> f64 {
    total_std(points, dim) / class_std
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_std_by_hand() {
        // x = {0, 2}, y = {0, 4}: variances 2 and 8 (divisor n − 1), √10.
        assert!((total_std(&[0.0, 0.0, 2.0, 4.0], 2) - 10f64.sqrt()).abs() < 1e-12);
        assert!((std_ratio(&[0.0, 0.0, 2.0, 4.0], 2, 10f64.sqrt()) - 1.0).abs() < 1e-12);
        assert_eq!(total_std(&[1.0, 2.0], 2), 0.0);
    }

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

    /// The smallest mean squared cost over every permutation (Heap's algorithm).
    fn brute_force_w2(a: &[f64], b: &[f64], dim: usize) -> f64 {
        let n = a.len() / dim;
        let cost = |p: &[usize]| -> f64 {
            p.iter()
                .enumerate()
                .map(|(i, &j)| {
                    (0..dim)
                        .map(|c| (a[i * dim + c] - b[j * dim + c]).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / n as f64
        };
        let mut p: Vec<usize> = (0..n).collect();
        let mut best = cost(&p);
        let mut c = vec![0usize; n];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    p.swap(0, i)
                } else {
                    p.swap(c[i], i)
                }
                best = best.min(cost(&p));
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        best.sqrt()
    }

    #[test]
    fn wasserstein2_matches_every_permutation_on_tiny_samples() {
        let mut rng = StdRng::seed_from_u64(5);
        use rand::Rng;
        for n in 1..=7 {
            for dim in [1, 2, 3] {
                let a: Vec<f64> = (0..n * dim).map(|_| rng.random_range(-3.0..3.0)).collect();
                let b: Vec<f64> = (0..n * dim).map(|_| rng.random_range(-3.0..3.0)).collect();
                let (fast, slow) = (wasserstein2(&a, &b, dim), brute_force_w2(&a, &b, dim));
                // Both sum the same n squared distances of the optimal matching, in
                // different orders: a few ulps of a value of order 10.
                assert!(
                    (fast - slow).abs() < 1e-12,
                    "n = {n}, d = {dim}: {fast} vs {slow}"
                );
            }
        }
    }

    #[test]
    fn wasserstein2_in_one_dimension_matches_sorted_samples() {
        // In 1-D the optimal coupling matches the order statistics (Villani 2003,
        // Topics in Optimal Transportation, remark 2.19).
        let mut rng = StdRng::seed_from_u64(8);
        use rand::Rng;
        let n = 300;
        let a: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
        let b: Vec<f64> = (0..n)
            .map(|_| rng.random_range(0.0..1.0f64).powi(2) + 0.5)
            .collect();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let sorted = (sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        let w2 = wasserstein2(&a, &b, 1);
        // The same optimum, its terms summed in another order: rounding of order 1e-16 × n.
        assert!((w2 - sorted).abs() < 1e-12, "{w2} vs {sorted}");
        // A shift by c moves every point by c: W2 = |c| exactly (up to rounding).
        let shifted: Vec<f64> = a.iter().map(|x| x + 0.25).collect();
        assert!((wasserstein2(&a, &shifted, 1) - 0.25).abs() < 1e-12);
        assert_eq!(wasserstein2(&a, &a, 1), 0.0);
    }

    #[test]
    fn w2_noise_floor_is_positive_and_shrinks_with_n() {
        let m = toy_data::two_clusters_mixture();
        let small = w2_noise_floor(&m, 50, 10, 3);
        let large = w2_noise_floor(&m, 400, 10, 3);
        // W2 between two samples of one law shrinks like n^(-1/2) in 2-D (up to a log;
        // Fournier & Guillin 2015): 8× the points, well under the small floor.
        assert!(
            small.mean > 0.0 && large.mean < small.mean,
            "{small:?} {large:?}"
        );
    }
}
