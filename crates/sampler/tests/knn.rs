//! The grid search of `sampler::knn` against the plain scan it must agree with, bit for
//! bit: ties, duplicates, tight clusters, queries far outside the points, degenerate sets.

use rand::{rngs::StdRng, Rng, SeedableRng};
use sampler::knn::{nearest_scan, Grid2};

fn check(points: &[f64], queries: &[[f64; 2]], ks: &[usize]) {
    let grid = Grid2::new(points);
    assert_eq!(grid.len(), points.len() / 2);
    for &q in queries {
        for &k in ks {
            // Exact: the same pairs (distance bits and rows) in the same order.
            assert_eq!(
                grid.nearest(q, k),
                nearest_scan(points, q, k),
                "query {q:?}, k = {k}"
            );
        }
    }
}

#[test]
fn the_grid_finds_the_scans_neighbours_on_ties_duplicates_and_small_clusters() {
    let mut rng = StdRng::seed_from_u64(3);
    // Integer lattice points: many equal distances, and each point three times over.
    let mut lattice = Vec::new();
    for _ in 0..3 {
        for x in -4..=4 {
            for y in -2..=2 {
                lattice.extend([x as f64, y as f64]);
            }
        }
    }
    let mut queries: Vec<[f64; 2]> = (0..200)
        .map(|_| {
            [
                rng.random_range(-7..=7) as f64 * 0.5,
                rng.random_range(-5..=5) as f64 * 0.5,
            ]
        })
        .collect();
    // Far outside the box on every side, and at its corners.
    queries.extend([
        [-100.0, 0.0],
        [100.0, 3.0],
        [0.0, -50.0],
        [2.0, 70.0],
        [-4.0, -2.0],
        [4.0, 2.0],
    ]);
    check(&lattice, &queries, &[1, 2, 5, 13, 40, 135, 200]);

    // Two tight clusters of 3 and 4 points, far apart, k above either's size.
    let clusters = [
        0.0, 0.0, 0.01, 0.0, 0.0, 0.01, 10.0, 10.0, 10.01, 10.0, 10.0, 10.02, 10.01, 10.01,
    ];
    let q: Vec<[f64; 2]> = (0..50)
        .map(|_| [rng.random_range(-2.0..12.0), rng.random_range(-2.0..12.0)])
        .collect();
    check(&clusters, &q, &[1, 3, 4, 5, 7, 9]);

    // Random points, a line (zero height), one point, no point.
    let random: Vec<f64> = (0..2 * 3000).map(|_| rng.random_range(-3.0..3.0)).collect();
    let q: Vec<[f64; 2]> = (0..300)
        .map(|_| [rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0)])
        .collect();
    check(&random, &q, &[1, 5, 20]);
    let line: Vec<f64> = (0..100).flat_map(|i| [i as f64 * 0.1, 1.0]).collect();
    check(&line, &q, &[1, 5]);
    check(&[0.5, 0.5], &q, &[1, 5]);
    check(&[], &q, &[1, 5]);
}
