//! Sample-quality measures: energy distance (and its noise floor), mode balance,
//! per-mode moments and guided precision. Points are n × d row-major slices.

use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;
use toy_data::GaussianMixture;

/// Independent partial sums of [`mean_distance`]'s rows: the adds pipeline (and
/// vectorise) instead of each waiting for the one before.
const LANES: usize = 8;

/// Mean Euclidean distance between the rows of `a` and `b` (n × `dim`, row-major), a term
/// of the energy distance (Székely & Rizzo): Σ_{i,j} ‖a_i − b_j‖ / (n_a n_b), E‖X − Y‖; with
/// `same` (`b` is `a`) the pairs i = j are skipped, Σ_{i≠j} ‖a_i − a_j‖ / (n (n − 1)), the
/// unbiased E‖X − X′‖. 0 when there is no pair.
///
/// For each row x of a, the distances to the rows of b (with b's columns split out once)
/// are computed `LANES` = 8 at a time and distance j added to partial sum j mod `LANES`
/// (a loop the compiler vectorises, whose adds do not wait on one another); the partial
/// sums are added in order, then the distances past the last full group; then the rows'
/// sums in order. The pair i = j of `same` adds an exact 0 rather than being skipped. A
/// fixed order, so the same bits on every run and thread count; summed one pair at a
/// time in (i, j) order (the slow reference in the tests) the result differs only by
/// rounding.
///
/// # Panics
///
/// If `dim` is 0, a length is not a multiple of `dim`, or `same` is set and `a` and `b`
/// have different numbers of rows.
pub fn mean_distance(a: &[f64], b: &[f64], dim: usize, same: bool) -> f64 {
    assert!(dim > 0 && a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim));
    let (na, nb) = (a.len() / dim, b.len() / dim);
    assert!(!same || na == nb, "`same` needs as many rows in b as in a");
    // b column by column: cols[c][j] = b[j][c].
    let cols: Vec<Vec<f64>> = (0..dim)
        .map(|c| b.chunks_exact(dim).map(|row| row[c]).collect())
        .collect();
    let full = nb / LANES * LANES;
    // ‖x − b_j‖: Σ_c (x_c − b_jc)², in c order from −0.0 as `Iterator::sum` does.
    let distance = |x: &[f64], j: usize| -> f64 {
        let mut s = -0.0;
        for (c, col) in cols.iter().enumerate() {
            let t = x[c] - col[j];
            s += t * t;
        }
        s.sqrt()
    };
    let mut total = 0.0;
    for x in a.chunks_exact(dim) {
        let mut acc = [0f64; LANES];
        for j0 in (0..full).step_by(LANES) {
            let mut sq = [-0.0f64; LANES];
            for (c, col) in cols.iter().enumerate() {
                let p = x[c];
                for (s, &q) in sq.iter_mut().zip(&col[j0..j0 + LANES]) {
                    *s += (p - q) * (p - q);
                }
            }
            for (a, s) in acc.iter_mut().zip(sq) {
                *a += s.sqrt();
            }
        }
        let mut row = acc.iter().sum::<f64>();
        for j in full..nb {
            row += distance(x, j);
        }
        total += row;
    }
    let pairs = if same {
        na * nb.saturating_sub(1)
    } else {
        na * nb
    };
    total / pairs.max(1) as f64
}

/// Energy distance (Székely & Rizzo) between two samples, unbiased within-sample terms:
/// E = 2 E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖; 0 in expectation when X and Y share a law.
/// O(|a| · |b| + |a|² + |b|²): evaluate large samples on a [`subsample_rows`].
pub fn energy_distance(a: &[f64], b: &[f64], dim: usize) -> f64 {
    assert!(dim > 0 && a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim));
    2.0 * mean_distance(a, b, dim, false)
        - mean_distance(a, a, dim, true)
        - mean_distance(b, b, dim, true)
}

/// A reference sample with its within-sample term E‖Y − Y′‖ computed once, for many
/// energy distances against it (a noise floor's repeats against one held-out set).
pub struct EnergyReference<'a> {
    points: &'a [f64],
    dim: usize,
    within: f64,
}

impl<'a> EnergyReference<'a> {
    /// The reference `points` (n × `dim`, row-major).
    pub fn new(points: &'a [f64], dim: usize) -> Self {
        assert!(dim > 0 && points.len().is_multiple_of(dim));
        Self {
            points,
            dim,
            within: mean_distance(points, points, dim, true),
        }
    }

    /// Rows of the reference.
    pub fn rows(&self) -> usize {
        self.points.len() / self.dim
    }

    /// [`energy_distance`]`(a, reference)`, the same three terms in the same order, so
    /// the same bits, without recomputing the reference's own term.
    pub fn energy_distance(&self, a: &[f64]) -> f64 {
        assert!(a.len().is_multiple_of(self.dim));
        2.0 * mean_distance(a, self.points, self.dim, false)
            - mean_distance(a, a, self.dim, true)
            - self.within
    }
}

/// `m` rows of `points` (n × `dim`) drawn without replacement with a seeded RNG, in
/// increasing row order; every row, in order and borrowed, when n ≤ m. The rows of
/// independent samples are exchangeable, so the subsample is a sample of the same law.
pub fn subsample_rows(
    points: &[f64],
    dim: usize,
    m: usize,
    seed: u64,
) -> std::borrow::Cow<'_, [f64]> {
    let n = points.len() / dim;
    if n <= m {
        return std::borrow::Cow::Borrowed(points);
    }
    let mut rows = rand::seq::index::sample(&mut StdRng::seed_from_u64(seed), n, m).into_vec();
    rows.sort_unstable();
    std::borrow::Cow::Owned(
        rows.iter()
            .flat_map(|&r| &points[r * dim..(r + 1) * dim])
            .copied()
            .collect(),
    )
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
    /// The standard error of `mean`, s/√repeats (s the repeats' sample standard
    /// deviation; 0 for one repeat): the floor's own Monte Carlo error.
    pub std_error: f64,
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
        let r = values.len();
        let rank = ((0.95 * r as f64).ceil() as usize).clamp(1, r);
        let mean = values.iter().sum::<f64>() / r as f64;
        let std_error = if r < 2 {
            0.0
        } else {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (r - 1) as f64 / r as f64).sqrt()
        };
        NoiseFloor {
            mean,
            p95: values[rank - 1],
            n,
            repeats: r,
            std_error,
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

/// Calls `f` on every item on up to every core (contiguous chunks, one thread each) and
/// returns the results in order: each computed exactly as on one thread.
pub fn map_on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a metrics thread panicked"))
            .collect()
    })
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
    let values = map_on_cores(&pairs, |(a, b)| distance(a, b, dim));
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
