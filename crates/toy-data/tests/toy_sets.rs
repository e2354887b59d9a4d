use std::f64::consts::PI;

use ndarray::s;
use toy_data::toy_sets::*;
use toy_data::*;

fn radius(p: ndarray::ArrayView1<f64>) -> f64 {
    p[0].hypot(p[1])
}

fn class_mean(d: &Dataset2d, k: usize) -> [f64; 2] {
    let labels = d.labels.as_ref().unwrap();
    let mut sum = [0.0; 2];
    let mut count = 0;
    for (row, &l) in d.points.rows().into_iter().zip(labels) {
        if l == k {
            sum[0] += row[0];
            sum[1] += row[1];
            count += 1;
        }
    }
    [sum[0] / count as f64, sum[1] / count as f64]
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn every_set_shape_determinism_and_labels() {
    for set in BuiltinSet::ALL {
        for n in [0, 1, 7, 1001, set.default_size()] {
            let d = builtin(set, n, 42);
            assert_eq!(d.points.dim(), (n, 2), "{set} n={n}");
            assert_eq!(d.len(), n);
            assert!(d.points.iter().all(|v| v.is_finite()), "{set}");
            assert_eq!(d.name, set.name());
            assert_eq!(d.column_names, ["x", "y"]);
            assert_eq!(d, set.generate(n, 42), "{set}: same seed, same data");
            if n > 0 {
                assert_ne!(d.points, builtin(set, n, 43).points, "{set}: seeds differ");
            }
            assert_eq!(d.n_classes(), set.n_classes());
            assert_eq!(d.class_names, set.class_names());
            match &d.labels {
                None => {
                    assert!(!set.is_labelled() && d.class_names.is_empty(), "{set}");
                    assert_eq!(d.class_counts(), None);
                }
                Some(labels) => {
                    assert!(set.is_labelled());
                    assert_eq!(labels.len(), n);
                    // Blocked: non-decreasing labels.
                    assert!(labels.windows(2).all(|w| w[0] <= w[1]), "{set}");
                    let counts = d.class_counts().unwrap();
                    let k = set.n_classes();
                    assert_eq!(counts.len(), k);
                    assert_eq!(counts.iter().sum::<usize>(), n);
                    let (lo, hi) = (counts.iter().min(), counts.iter().max());
                    assert!(hi.unwrap() - lo.unwrap() <= 1, "{set}: {counts:?}");
                    if n % k == 0 {
                        assert!(counts.iter().all(|&c| c == n / k), "{set}");
                    }
                }
            }
        }
    }
    assert_eq!(BuiltinSet::TwoClusters.class_names(), ["0", "1"]);
    assert_eq!(BuiltinSet::EightGaussians.class_names().len(), 8);
}

#[test]
fn default_sizes() {
    let sizes: Vec<usize> = BuiltinSet::ALL.iter().map(|s| s.default_size()).collect();
    assert_eq!(sizes, [1000, 2000, 2000, 4000, 4000, 4000, 2000]);
}

#[test]
fn names_round_trip() {
    for (set, name) in BuiltinSet::ALL.into_iter().zip(BuiltinSet::NAMES) {
        assert_eq!(set.name(), name);
        assert_eq!(set.to_string(), name);
        assert_eq!(name.parse::<BuiltinSet>().unwrap(), set);
    }
    assert_eq!(
        " Swiss_Roll ".parse::<BuiltinSet>().unwrap(),
        BuiltinSet::SwissRoll
    );
    let e = "pinwheel".parse::<BuiltinSet>().unwrap_err();
    assert!(matches!(&e, DataError::UnknownDataset { name, .. } if name == "pinwheel"));
    let msg = e.to_string();
    assert!(msg.contains("\"pinwheel\""), "{msg}");
    for name in BuiltinSet::NAMES {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn serde_traits() {
    fn assert_serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    assert_serde::<BuiltinSet>();
}

#[test]
fn two_clusters_matches_notebook_helper() {
    let d = two_clusters_set(1000, 1234);
    let lp = two_clusters(500, 1234);
    assert_eq!(d.points, lp.points);
    assert_eq!(d.labels.as_ref(), Some(&lp.labels));
    // Odd n: class 0 keeps its ⌈n/2⌉ rows, class 1 loses the last.
    let odd = two_clusters_set(7, 5);
    assert_eq!(odd.labels.unwrap(), [0, 0, 0, 0, 1, 1, 1]);
    assert_eq!(
        odd.points,
        two_clusters(4, 5).points.slice(s![..7, ..]).to_owned()
    );
    let m = BuiltinSet::TwoClusters.true_mixture().unwrap();
    assert_eq!(m, toy_data::two_clusters_mixture());
}

#[test]
fn moons_centroids() {
    let n = 4000;
    let d = moons(n, 1);
    // Noise-free centroids: upper (mean cos t, mean sin t) over linspace(0, π, m)
    // and lower (1 − that, 0.5 − that). mean sin t over m points of linspace(0, π)
    // is (Σ sin)/m; with m = 2000 it is within 1e-3 of 2/π.
    let m = n / 2;
    // numpy's linspace(0, π, m), as the generator spaces the upper arc.
    let mean_sin = (0..m)
        .map(|i| (PI * i as f64 / (m - 1) as f64).sin())
        .sum::<f64>()
        / m as f64;
    assert!((mean_sin - 2.0 / PI).abs() < 1e-3);
    let want = [[0.0, mean_sin], [1.0, 0.5 - mean_sin]];
    for (k, w) in want.iter().enumerate() {
        let c = class_mean(&d, k);
        // 5 standard errors of a mean of 2000 N(0, 0.1²) noises: 5·0.1/√2000 ≈ 0.011;
        // mean cos t is exactly 0 up to rounding.
        for j in 0..2 {
            assert!((c[j] - w[j]).abs() < 0.012, "class {k}: {c:?} vs {w:?}");
        }
    }
    // The halves interleave: upper is left of (by 1) and above (by 4/π − 0.5 ≈ 0.77)
    // lower.
    let (u, l) = (class_mean(&d, 0), class_mean(&d, 1));
    assert!(u[0] < l[0] - 0.9 && u[1] > l[1] + 0.7, "{u:?} {l:?}");
}

#[test]
fn circles_radii() {
    let d = circles(4000, 2);
    let labels = d.labels.as_ref().unwrap();
    for (k, r0) in [1.0, CIRCLES_FACTOR].into_iter().enumerate() {
        let radii: Vec<f64> = d
            .points
            .rows()
            .into_iter()
            .zip(labels)
            .filter(|(_, &l)| l == k)
            .map(|(p, _)| radius(p))
            .collect();
        // |r − r0| ≤ |noise|, and P(|noise| > 6σ) = e^{−18} ≈ 1.5e-8 per point.
        for r in &radii {
            assert!((r - r0).abs() < 6.0 * CIRCLES_NOISE, "class {k}: {r}");
        }
        // E r ≈ r0 + σ²/(2 r0) (≤ 0.0025); SE of the mean ≈ σ/√2000 ≈ 0.0011.
        let mean = radii.iter().sum::<f64>() / radii.len() as f64;
        assert!((mean - r0).abs() < 0.01, "class {k}: mean radius {mean}");
    }
}

#[test]
fn eight_gaussians_means_and_mixture() {
    let n = 8000;
    let d = eight_gaussians(n, 3);
    let centres = eight_gaussians_centres();
    for (k, c) in centres.iter().enumerate() {
        let m = class_mean(&d, k);
        // 4 standard errors: σ/√(n/8) = 0.4/√1000 ≈ 0.0126.
        let se = EIGHT_GAUSSIANS_STD / ((n / 8) as f64).sqrt();
        for j in 0..2 {
            assert!((m[j] - c[j]).abs() < 4.0 * se, "class {k}: {m:?} vs {c:?}");
        }
    }
    // Class names follow the compass: N is straight up.
    assert_eq!(d.class_names[2], "N");
    assert!(centres[2][0].abs() < 1e-12 && (centres[2][1] - 4.0).abs() < 1e-12);

    let mix = BuiltinSet::EightGaussians.true_mixture().unwrap();
    assert_eq!(mix.n_components(), 8);
    assert_eq!(mix.dim(), 2);
    for (k, c) in centres.iter().enumerate() {
        assert_eq!(mix.means()[k], c.to_vec());
        assert_eq!(mix.weights()[k], 0.125);
        assert_eq!(
            mix.covariances()[k],
            Covariance::Isotropic(EIGHT_GAUSSIANS_STD * EIGHT_GAUSSIANS_STD)
        );
        // 0.4² up to rounding.
        assert!((mix.covariance_matrix(k)[0] - 0.16).abs() < 1e-15);
    }
    for set in BuiltinSet::ALL {
        let exact = matches!(set, BuiltinSet::TwoClusters | BuiltinSet::EightGaussians);
        assert_eq!(set.true_mixture().is_some(), exact, "{set}");
    }
}

#[test]
fn checkerboard_points_in_black_squares() {
    let d = checkerboard(4000, 4);
    let mut per_square = std::collections::HashMap::new();
    for p in d.points.rows() {
        assert!(p.iter().all(|v| (-4.0..4.0).contains(v)), "{p}");
        let (i, j) = ((p[0] / 2.0).floor() as i64, (p[1] / 2.0).floor() as i64);
        assert_eq!((i + j).rem_euclid(2), 0, "{p} is in a white square");
        *per_square.entry((i, j)).or_insert(0usize) += 1;
    }
    // All 8 black squares are used, about equally: 500 expected each, sd ≈ 21.
    assert_eq!(per_square.len(), 8);
    assert!(per_square.values().all(|&c| (400..600).contains(&c)));
}

#[test]
fn swiss_roll_radius_grows_with_t() {
    let (points, ts) = swiss_roll_with_t(4000, 5);
    assert_eq!(points, swiss_roll(4000, 5).points);
    let radii: Vec<f64> = points.rows().into_iter().map(radius).collect();
    for (r, t) in radii.iter().zip(&ts) {
        assert!((1.5 * PI..=4.5 * PI).contains(t));
        // |r − t/3| ≤ |noise| < 6σ (P ≈ 1.5e-8 per point).
        assert!((r - t / 3.0).abs() < 6.0 * SWISS_ROLL_NOISE, "{r} vs {t}");
    }
    assert!(pearson(&radii, &ts) > 0.99);
}

#[test]
fn spiral_radius_grows_with_angle() {
    let (points, angles) = spiral_with_angle(2000, 6);
    assert_eq!(points, spiral(2000, 6).points);
    let radii: Vec<f64> = points.rows().into_iter().map(radius).collect();
    for (r, a) in radii.iter().zip(&angles) {
        assert!((0.0..=SPIRAL_MAX_ANGLE).contains(a));
        // |r − θ/π| ≤ |noise| < 6σ (P ≈ 1.5e-8 per point).
        assert!((r - a / PI).abs() < 6.0 * SPIRAL_NOISE, "{r} vs {a}");
    }
    assert!(pearson(&radii, &angles) > 0.99);
    // θ = 4π√U: half the points have θ below 4π/√2, i.e. radius below 2√2.
    let inner = radii.iter().filter(|&&r| r < 2.0 * 2f64.sqrt()).count();
    assert!((900..1100).contains(&inner), "{inner}");
}
