//! The sample-quality measures of `sampler::metrics` by hand, and each fast path against
//! its slow definition: the lane sums of the mean distance against the pairwise sum, exact
//! 2-Wasserstein against every permutation.

use rand::{rngs::StdRng, Rng, SeedableRng};
use sampler::metrics::{
    assign_modes, energy_distance, energy_noise_floor, guided_precision, mean_distance, mode_stats,
    std_ratio, subsample_rows, total_std, w2_noise_floor, wasserstein2, EnergyReference,
    NoiseFloor,
};

/// [`mean_distance`] one pair at a time in (i, j) order: the slow reference.
fn mean_distance_pairwise(a: &[f64], b: &[f64], dim: usize, same: bool) -> f64 {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    let mut total = 0.0;
    for x in a.chunks_exact(dim) {
        for y in b.chunks_exact(dim) {
            total += x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f64>()
                .sqrt();
        }
    }
    let pairs = if same { na * (nb - 1) } else { na * nb };
    total / pairs.max(1) as f64
}

#[test]
fn the_lane_sums_match_the_pairwise_reference() {
    let mut rng = StdRng::seed_from_u64(21);
    for (na, nb, dim) in [(1, 1, 2), (7, 9, 2), (301, 203, 2), (50, 61, 3), (5, 3, 1)] {
        let a: Vec<f64> = (0..na * dim).map(|_| rng.random_range(-4.0..4.0)).collect();
        let b: Vec<f64> = (0..nb * dim).map(|_| rng.random_range(-4.0..4.0)).collect();
        for (x, y, same) in [(&a, &b, false), (&a, &a, true)] {
            let (fast, slow) = (
                mean_distance(x, y, dim, same),
                mean_distance_pairwise(x, y, dim, same),
            );
            // Sums of N ≤ 10⁵ positive terms in two orders: each within N·ε (ε = 1.1e-16)
            // of the exact sum, relative, so within 2·10⁵·ε ≈ 2.2e-11 of each other.
            assert!(
                (fast - slow).abs() <= 2.5e-11 * slow.abs(),
                "{na} × {nb}, d = {dim}: {fast} vs {slow}"
            );
        }
    }
    // Under LANES points on a line, the plain sum: 3 + 1 + 0.5 over 3 pairs, exactly.
    let (x, few) = ([0.0], [3.0, -1.0, 0.5]);
    assert_eq!(mean_distance(&x, &few, 1, false), 1.5);
}

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
fn a_cached_reference_gives_the_same_bits_and_subsamples_are_rows() {
    let mut rng = StdRng::seed_from_u64(11);
    let a: Vec<f64> = (0..2 * 37).map(|_| rng.random_range(-3.0..3.0)).collect();
    let b: Vec<f64> = (0..2 * 53).map(|_| rng.random_range(-3.0..3.0)).collect();
    let reference = EnergyReference::new(&b, 2);
    assert_eq!(reference.rows(), 53);
    assert_eq!(
        reference.energy_distance(&a).to_bits(),
        energy_distance(&a, &b, 2).to_bits()
    );
    // At most m rows: every row, borrowed.
    assert!(matches!(
        subsample_rows(&a, 2, 37, 1),
        std::borrow::Cow::Borrowed(_)
    ));
    let sub = subsample_rows(&a, 2, 10, 1);
    assert_eq!(sub.len(), 20);
    assert_eq!(sub, subsample_rows(&a, 2, 10, 1), "seeded");
    assert_ne!(sub, subsample_rows(&a, 2, 10, 2));
    // Whole rows of a, distinct, in increasing row order.
    let rows: Vec<usize> = sub
        .chunks(2)
        .map(|p| a.chunks(2).position(|q| q == p).unwrap())
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
}

#[test]
fn the_floor_reports_its_standard_error() {
    let f = NoiseFloor::from_values(vec![1.0, 2.0, 3.0, 4.0], 7);
    // s² = 5/3 over 4 repeats: SE = √(5/12).
    assert!((f.std_error - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
    assert_eq!((f.mean, f.p95, f.n, f.repeats), (2.5, 4.0, 7, 4));
    assert_eq!(NoiseFloor::from_values(vec![3.0], 7).std_error, 0.0);
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
