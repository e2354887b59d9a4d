use std::f64::consts::PI;

use rand::rngs::StdRng;
use rand::SeedableRng;
use toy_data::datasets::{notebook_gmm_1d, two_clusters_mixture};
use toy_data::*;

/// Fourth central moment of a 1-D mixture: Σ π_k (δ⁴ + 6δ²σ² + 3σ⁴), δ = μ_k − m.
fn fourth_central_moment_1d(g: &GaussianMixture) -> f64 {
    let m = g.mean()[0];
    let vars = g.variances_1d().unwrap();
    g.weights()
        .iter()
        .zip(g.means())
        .zip(vars)
        .map(|((w, mu), s2)| {
            let d = mu[0] - m;
            w * (d.powi(4) + 6.0 * d * d * s2 + 3.0 * s2 * s2)
        })
        .sum()
}

#[test]
fn mixture_moments_by_hand() {
    let g = notebook_gmm_1d();
    // E[x] = 0.4·(−2) + 0.6·3 = 1.0 (tolerance: rounding only).
    assert!((g.mean()[0] - 1.0).abs() < 1e-12);
    // Var = 0.4(0.25 + 4) + 0.6(1 + 9) − 1² = 6.7 (tolerance: rounding only).
    assert!((g.covariance()[0] - 6.7).abs() < 1e-12);
}

#[test]
fn sampling_1d_moments_within_clt_bounds() {
    let g = notebook_gmm_1d();
    let n = 100_000;
    let x = g.sample(n, &mut StdRng::seed_from_u64(1));
    let nf = n as f64;
    let mean = x.column(0).sum() / nf;
    let var = x.column(0).mapv(|v| (v - mean).powi(2)).sum() / nf;
    let (m, s2) = (1.0, 6.7);
    // 5 standard errors of the sample mean: √(6.7/1e5) ≈ 0.0082.
    let se_mean = (s2 / nf).sqrt();
    assert!((mean - m).abs() < 5.0 * se_mean, "mean {mean}");
    // 5 standard errors of the sample variance: √((μ₄ − σ⁴)/n) = √((63.675 − 44.89)/1e5) ≈ 0.0137.
    let mu4 = fourth_central_moment_1d(&g);
    assert!((mu4 - 63.675).abs() < 1e-9); // hand value, rounding only
    let se_var = ((mu4 - s2 * s2) / nf).sqrt();
    assert!((var - s2).abs() < 5.0 * se_var, "variance {var}");
}

#[test]
fn latent_proportions_within_binomial_bounds() {
    let g = notebook_gmm_1d();
    let n = 100_000;
    let (x, z) = g.sample_with_latent(n, &mut StdRng::seed_from_u64(2));
    let n0 = z.iter().filter(|&&k| k == 0).count();
    let p0 = n0 as f64 / n as f64;
    // 5 binomial standard errors: √(0.4·0.6/1e5) ≈ 0.00155.
    assert!(
        (p0 - 0.4).abs() < 5.0 * (0.4 * 0.6 / n as f64).sqrt(),
        "p0 {p0}"
    );
    // Each x comes from its z: the conditional means match μ_z within 5 σ_z/√n_z.
    for (k, (mu, sd)) in [(-2.0, 0.5), (3.0, 1.0)].into_iter().enumerate() {
        let xs: Vec<f64> = x
            .column(0)
            .iter()
            .zip(&z)
            .filter(|(_, &zk)| zk == k)
            .map(|(v, _)| *v)
            .collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!(
            (m - mu).abs() < 5.0 * sd / (xs.len() as f64).sqrt(),
            "k={k}: {m}"
        );
    }
}

#[test]
fn sampling_2d_moments_within_clt_bounds() {
    let g = two_clusters_mixture();
    let n = 50_000;
    let nf = n as f64;
    let x = g.sample(n, &mut StdRng::seed_from_u64(3));
    let mean: Vec<f64> = (0..2).map(|j| x.column(j).sum() / nf).collect();
    // True mean 0, variance per dimension 0.25 + 4 = 4.25: 5 SE = 5·√(4.25/5e4) ≈ 0.046.
    for m in &mean {
        assert!(m.abs() < 5.0 * (4.25 / nf).sqrt(), "mean {m}");
    }
    let cov = |a: usize, b: usize| {
        x.rows()
            .into_iter()
            .map(|r| (r[a] - mean[a]) * (r[b] - mean[b]))
            .sum::<f64>()
            / nf
    };
    let truth = g.covariance();
    assert!((truth[0] - 4.25).abs() < 1e-12 && (truth[1] - 4.0).abs() < 1e-12);
    // Variance: μ₄ − σ⁴ per dimension = (16 + 6·4·0.25 + 3·0.0625) − 4.25² = 4.125,
    // so 5 SE = 5·√(4.125/5e4) ≈ 0.045.
    for j in 0..2 {
        assert!((cov(j, j) - 4.25).abs() < 5.0 * (4.125 / nf).sqrt());
    }
    // Covariance: Var(xy) = E[x²]E[y²] within a component − 4² = 4.25² − 16 = 2.0625,
    // so 5 SE = 5·√(2.0625/5e4) ≈ 0.032.
    assert!((cov(0, 1) - 4.0).abs() < 5.0 * (2.0625 / nf).sqrt());
}

#[test]
fn full_covariance_sampling_matches_matrix() {
    // Σ = [[1, 0.8], [0.8, 2]], so the correlation structure exercises L.
    let g = GaussianMixture::new(
        vec![1.0],
        vec![vec![0.0, 0.0]],
        vec![Covariance::Full(vec![1.0, 0.8, 0.8, 2.0])],
    )
    .unwrap();
    let n = 50_000;
    let x = g.sample(n, &mut StdRng::seed_from_u64(4));
    let c01 = x.rows().into_iter().map(|r| r[0] * r[1]).sum::<f64>() / n as f64;
    // Var(xy) for a bivariate normal = σ₁²σ₂² + σ₁₂² = 2 + 0.64: 5 SE = 5√(2.64/5e4) ≈ 0.036.
    assert!((c01 - 0.8).abs() < 5.0 * (2.64 / n as f64).sqrt(), "{c01}");
}

#[test]
fn same_seed_same_samples() {
    let g = notebook_gmm_1d();
    let a = g.sample_with_latent(100, &mut StdRng::seed_from_u64(9));
    let b = g.sample_with_latent(100, &mut StdRng::seed_from_u64(9));
    assert_eq!(a, b);
    let c = g.sample(100, &mut StdRng::seed_from_u64(10));
    assert_ne!(a.0, c);
    // `sample` gives the same x as `sample_with_latent`.
    assert_eq!(g.sample(100, &mut StdRng::seed_from_u64(9)), a.0);
}

#[test]
fn pdf_integrates_to_one() {
    let g = notebook_gmm_1d();
    // Trapezoid on [−10, 12], h = 1e-3: the range is 16σ below −2 and 9σ above 3
    // (tails < 1e-18) and the trapezoid error h²/12·∫|f''| is below 1e-7.
    let (a, b, n) = (-10.0, 12.0, 22_000);
    let h = (b - a) / n as f64;
    let mut s = 0.5 * (g.pdf(&[a]) + g.pdf(&[b]));
    for i in 1..n {
        s += g.pdf(&[a + i as f64 * h]);
    }
    assert!((s * h - 1.0).abs() < 1e-6, "{}", s * h);
}

#[test]
fn pdf_matches_hand_values() {
    // Standard normal at 0: 1/√(2π) (tolerance: rounding only).
    let n = GaussianMixture::normal(0.0, 1.0).unwrap();
    assert!((n.pdf(&[0.0]) - 0.398_942_280_401_432_7).abs() < 1e-15);
    // 0.4·N(0; −2, 0.5²) + 0.6·N(0; 3, 1²)
    //  = 0.4·exp(−8)/(0.5√(2π)) + 0.6·exp(−4.5)/√(2π) ≈ 0.002766173.
    let g = notebook_gmm_1d();
    let s2pi = (2.0 * PI).sqrt();
    let want = 0.4 * (-8.0f64).exp() / (0.5 * s2pi) + 0.6 * (-4.5f64).exp() / s2pi;
    // Tolerances: rounding only, then the hand value's 9 printed digits.
    assert!((g.pdf(&[0.0]) - want).abs() < 1e-15);
    assert!((want - 0.002_766_173).abs() < 1e-9);
    // 2-D isotropic at x = (0,0), both components at squared distance 8:
    // 2·0.5·exp(−8/(2·0.25))/(2π·0.25) = exp(−16)/(0.5π).
    let c = two_clusters_mixture();
    let want2 = (-16.0f64).exp() / (0.5 * PI);
    assert!((c.pdf(&[0.0, 0.0]) / want2 - 1.0).abs() < 1e-12); // relative rounding
}

#[test]
fn log_pdf_is_ln_pdf_and_posterior_sums_to_one() {
    let g = notebook_gmm_1d();
    for x in [-4.0, -2.0, 0.0, 0.5, 3.0, 7.0] {
        // Relative rounding of exp/ln.
        assert!((g.log_pdf(&[x]) - g.pdf(&[x]).ln()).abs() < 1e-12);
        let r = g.posterior(&[x]);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12); // rounding only
    }
    // Far out, log_pdf stays finite where pdf underflows to 0.
    assert!(g.pdf(&[-1e3]) == 0.0 && g.log_pdf(&[-1e3]).is_finite());
    // There the wider component (σ = 1) dominates: log-densities −503004 vs −1992008.
    let r = g.posterior(&[-1e3]);
    assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12 && r[1] == 1.0);
}

#[test]
fn score_matches_finite_differences() {
    let g = two_clusters_mixture();
    let x = [0.3, -0.2];
    let s = g.score(&x);
    let h = 1e-5;
    for i in 0..2 {
        let (mut a, mut b) = (x, x);
        a[i] += h;
        b[i] -= h;
        let fd = (g.log_pdf(&a) - g.log_pdf(&b)) / (2.0 * h);
        // Central difference error O(h²·f''') ≈ 1e-9 here; 1e-6 leaves room for rounding.
        assert!((s[i] - fd).abs() < 1e-6, "{} vs {fd}", s[i]);
    }
}

#[test]
fn scaled_with_noise_is_the_affine_law() {
    let g = two_clusters_mixture();
    let ab: f64 = 0.2807;
    let q = g.scaled_with_noise(ab.sqrt(), 1.0 - ab).unwrap();
    // Component variance ᾱσ² + 1 − ᾱ.
    let want = ab * 0.25 + 1.0 - ab;
    assert!((q.covariance_matrix(0)[0] - want).abs() < 1e-15); // rounding only
    assert!((q.means()[1][0] - 2.0 * ab.sqrt()).abs() < 1e-15); // rounding only
    assert_eq!(q.n_parameters(), g.n_parameters());
}

#[test]
fn n_parameters_counts() {
    // 2 components in 1-D: 1 weight + 2 means + 2 variances.
    assert_eq!(notebook_gmm_1d().n_parameters(), 5);
    // Isotropic 2-D, 2 components: 1 + 4 + 2.
    assert_eq!(two_clusters_mixture().n_parameters(), 7);
    let full = GaussianMixture::new(
        vec![1.0],
        vec![vec![0.0; 3]],
        vec![Covariance::Full(vec![
            1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0,
        ])],
    )
    .unwrap();
    // 0 + 3 + 6.
    assert_eq!(full.n_parameters(), 9);
}

#[test]
fn display_is_one_line() {
    let s = notebook_gmm_1d().to_string();
    assert!(s.starts_with("0.4000·N(μ=[-2.0000], Σ=[[0.2500]])"), "{s}");
    assert!(!s.contains('\n'));
}

// ----- validation: each bad parameter gives its variant -----

fn iso(v: f64) -> Covariance {
    Covariance::Isotropic(v)
}

#[test]
fn rejects_no_components() {
    assert_eq!(
        GaussianMixture::new(vec![], vec![], vec![]),
        Err(DataError::NoComponents)
    );
}

#[test]
fn rejects_count_mismatch() {
    let e = GaussianMixture::new(vec![1.0], vec![vec![0.0], vec![1.0]], vec![iso(1.0)]);
    assert!(matches!(e, Err(DataError::ComponentCountMismatch { .. })));
    let e = GaussianMixture::univariate(&[1.0], &[0.0], &[]);
    assert!(matches!(e, Err(DataError::ComponentCountMismatch { .. })));
}

#[test]
fn rejects_bad_weights() {
    let e = GaussianMixture::univariate(&[0.5, 0.4], &[0.0, 1.0], &[1.0, 1.0]);
    assert!(matches!(e, Err(DataError::WeightsSum { sum }) if (sum - 0.9).abs() < 1e-12));
    let e = GaussianMixture::univariate(&[1.5, -0.5], &[0.0, 1.0], &[1.0, 1.0]);
    assert_eq!(
        e,
        Err(DataError::NegativeWeight {
            index: 1,
            value: -0.5
        })
    );
    let e = GaussianMixture::univariate(&[f64::NAN], &[0.0], &[1.0]);
    assert!(matches!(e, Err(DataError::NonFiniteParameter { .. })));
    // A rounding-sized miss is renormalised away.
    let g = GaussianMixture::univariate(&[0.1, 0.2, 0.7 + 1e-12], &[0.0; 3], &[1.0; 3]);
    assert!((g.unwrap().weights().iter().sum::<f64>() - 1.0).abs() < 1e-15);
    // A zero weight is allowed and never sampled.
    let g = GaussianMixture::univariate(&[1.0, 0.0], &[0.0, 100.0], &[1.0, 1.0]).unwrap();
    let (_, z) = g.sample_with_latent(1000, &mut StdRng::seed_from_u64(0));
    assert!(z.iter().all(|&k| k == 0));
}

#[test]
fn rejects_bad_variances() {
    let e = GaussianMixture::new(vec![1.0], vec![vec![0.0]], vec![iso(0.0)]);
    assert_eq!(
        e,
        Err(DataError::NonPositiveVariance {
            component: 0,
            value: 0.0
        })
    );
    let e = GaussianMixture::new(
        vec![1.0],
        vec![vec![0.0, 0.0]],
        vec![Covariance::Diagonal(vec![1.0, -2.0])],
    );
    assert!(matches!(
        e,
        Err(DataError::NonPositiveVariance { value, .. }) if value == -2.0
    ));
    let e = GaussianMixture::normal(0.0, -1.0);
    assert!(matches!(e, Err(DataError::NonPositiveStdDev { .. })));
}

#[test]
fn rejects_dimension_problems() {
    let e = GaussianMixture::new(
        vec![0.5, 0.5],
        vec![vec![0.0, 0.0], vec![0.0]],
        vec![iso(1.0), iso(1.0)],
    );
    assert!(matches!(
        e,
        Err(DataError::DimensionMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    let e = GaussianMixture::new(
        vec![1.0],
        vec![vec![0.0, 0.0]],
        vec![Covariance::Full(vec![1.0, 0.0, 1.0])],
    );
    assert!(matches!(
        e,
        Err(DataError::DimensionMismatch {
            expected: 4,
            found: 3,
            ..
        })
    ));
    let e = GaussianMixture::new(vec![1.0], vec![vec![]], vec![iso(1.0)]);
    assert!(matches!(e, Err(DataError::ZeroDimension { .. })));
    let e = GaussianMixture::new(vec![1.0], vec![vec![f64::INFINITY]], vec![iso(1.0)]);
    assert!(matches!(e, Err(DataError::NonFiniteParameter { .. })));
}

#[test]
fn rejects_bad_full_covariances() {
    let full = |m: Vec<f64>| {
        GaussianMixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![Covariance::Full(m)])
    };
    assert!(matches!(
        full(vec![1.0, 0.5, 0.4, 1.0]),
        Err(DataError::AsymmetricCovariance { row: 0, col: 1, .. })
    ));
    // Singular: [[1, 1], [1, 1]].
    assert!(matches!(
        full(vec![1.0, 1.0, 1.0, 1.0]),
        Err(DataError::NotPositiveDefinite { row: 1, .. })
    ));
    // Indefinite: [[1, 2], [2, 1]].
    assert!(matches!(
        full(vec![1.0, 2.0, 2.0, 1.0]),
        Err(DataError::NotPositiveDefinite { component: 0, .. })
    ));
    assert!(matches!(
        full(vec![1.0, f64::NAN, f64::NAN, 1.0]),
        Err(DataError::NonFiniteParameter { .. })
    ));
}

#[test]
fn error_messages_are_one_line_and_name_the_value() {
    let e = GaussianMixture::univariate(&[0.5, 0.4], &[0.0, 1.0], &[1.0, 1.0]).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("0.9") && s.contains("sum to 1") && !s.contains('\n'),
        "{s}"
    );
}
