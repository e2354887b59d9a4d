use ndarray::{array, Array2};
use toy_data::datasets::{flexibility_data, flexibility_truth};
use toy_data::*;

#[test]
fn em_recovers_flexibility_parameters() {
    let data = column_matrix(&flexibility_data(0));
    let fit = fit_mixture(data.view(), &EmConfig::new(2)).unwrap();
    let g = &fit.mixture;
    let truth = flexibility_truth();
    for k in 0..2 {
        // Means within 0.2: the standard errors of the component means are
        // 1/√200 ≈ 0.071 and 1.5/√300 ≈ 0.087, so 0.2 is 2.3–2.8 SE. The data seed
        // is fixed; over seeds 0..100 the worst error was 0.27 (a miss beyond 2.3 SE
        // is expected in a few percent of seeds), the worst weight error 0.006.
        let (m, t) = (g.means()[k][0], truth.means()[k][0]);
        assert!((m - t).abs() < 0.2, "mean {k}: {m} vs {t}");
        // Weights within 0.05: the data holds exactly 200/300 points, so the weight
        // error comes only from overlap between components (they are 4.7σ apart).
        let (w, tw) = (g.weights()[k], truth.weights()[k]);
        assert!((w - tw).abs() < 0.05, "weight {k}: {w} vs {tw}");
        // Standard deviations within 0.2: SE of σ̂ is σ/√(2n) ≈ 0.05 and 0.061.
        let (s, ts) = (
            g.variances_1d().unwrap()[k].sqrt(),
            truth.variances_1d().unwrap()[k].sqrt(),
        );
        assert!((s - ts).abs() < 0.2, "sd {k}: {s} vs {ts}");
    }
    assert_eq!(fit.n_parameters, 5);
    // Deterministic for a given config.
    assert_eq!(fit_mixture(data.view(), &EmConfig::new(2)).unwrap(), fit);
}

#[test]
fn em_recovers_two_clusters_2d() {
    let pts = toy_data::datasets::two_clusters(200, 5).points;
    let fit = fit_mixture(pts.view(), &EmConfig::new(2)).unwrap();
    let means = fit.mixture.means();
    // Means within 0.2 of (∓2, ∓2): SE per coordinate 0.5/√200 ≈ 0.035.
    for (m, t) in means.iter().zip([-2.0, 2.0]) {
        assert!(m.iter().all(|v| (v - t).abs() < 0.2), "{m:?}");
    }
    // 1 weight + 4 means + 2·3 covariance entries.
    assert_eq!(fit.n_parameters, 11);
}

#[test]
fn normal_fit_log_likelihood_aic_bic_by_hand() {
    // One Normal on [1, 2, 3]: μ = 2, σ² = (1 + 0 + 1)/3 = 2/3 (ML, 1/n).
    // log L = −(n/2) ln(2πσ²) − Σ(x−μ)²/(2σ²) = −1.5 ln(4π/3) − 1.5
    //       = −1.5·1.432411824 − 1.5 = −3.648617937.
    // p = 2 (μ, σ²): AIC = 2·2 + 7.297235875 = 11.297235875;
    //                BIC = 2 ln 3 + 7.297235875 = 2.197224577 + 7.297235875 = 9.494460452.
    let data = column_matrix(&[1.0, 2.0, 3.0]);
    let g = fit_normal(data.view()).unwrap();
    assert!((g.means()[0][0] - 2.0).abs() < 1e-15); // rounding only
    assert!((g.variances_1d().unwrap()[0] - 2.0 / 3.0).abs() < 1e-15); // rounding only
    let ll = g.log_likelihood(data.view());
    let want = -1.5 * (4.0 * std::f64::consts::PI / 3.0).ln() - 1.5;
    assert!((ll - want).abs() < 1e-12, "{ll} vs {want}"); // rounding only
    assert!((want - (-3.648_617_937)).abs() < 1e-9); // the hand value to 9 decimals
    assert!((g.mean_log_likelihood(data.view()) - want / 3.0).abs() < 1e-12);
    let p = g.n_parameters();
    assert_eq!(p, 2);
    assert!((aic(ll, p) - 11.297_235_875).abs() < 1e-9); // 9 decimals by hand
    assert!((bic(ll, p, 3) - 9.494_460_452).abs() < 1e-9); // 9 decimals by hand
}

#[test]
fn gmm_k1_equals_normal_fit() {
    let data = column_matrix(&[1.0, 2.0, 3.0, 4.5]);
    let normal = fit_normal(data.view()).unwrap();
    let fit = fit_mixture(data.view(), &EmConfig::new(1)).unwrap();
    // EM with K = 1 is the ML Normal plus reg_covariance = 1e-6 on σ² ≈ 1.8:
    // the log-likelihood moves by about n·1e-6/(2σ²) ≈ 1e-6.
    assert!((fit.log_likelihood - normal.log_likelihood(data.view())).abs() < 1e-5);
    assert_eq!(fit.n_parameters, normal.n_parameters());
}

#[test]
fn two_d_normal_fit_full_covariance() {
    // Rows (0,0), (2,0), (0,2), (2,2) and (1,1): mean (1,1), Σ = diag(0.8, 0.8).
    let data = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]];
    let g = fit_normal(data.view()).unwrap();
    let c = g.covariance_matrix(0);
    for (got, want) in c.iter().zip([0.8, 0.0, 0.0, 0.8]) {
        assert!((got - want).abs() < 1e-15); // rounding only
    }
    assert_eq!(g.n_parameters(), 5); // 2 means + 3 covariance entries
}

#[test]
fn fit_validation_errors() {
    let data = column_matrix(&[1.0, 2.0, 3.0]);
    let bad = |c: EmConfig| fit_mixture(data.view(), &c).unwrap_err();
    assert!(matches!(
        bad(EmConfig::new(0)),
        DataError::InvalidParameter { name: "k", .. }
    ));
    for (c, name) in [
        (
            EmConfig {
                restarts: 0,
                ..EmConfig::new(1)
            },
            "restarts",
        ),
        (
            EmConfig {
                max_iterations: 0,
                ..EmConfig::new(1)
            },
            "max_iterations",
        ),
        (
            EmConfig {
                tolerance: 0.0,
                ..EmConfig::new(1)
            },
            "tolerance",
        ),
        (
            EmConfig {
                reg_covariance: -1.0,
                ..EmConfig::new(1)
            },
            "reg_covariance",
        ),
    ] {
        assert!(matches!(bad(c), DataError::InvalidParameter { name: n, .. } if n == name));
    }
    assert_eq!(
        bad(EmConfig::new(4)),
        DataError::TooFewRows {
            rows: 3,
            k: 4,
            needed: 4
        }
    );
    assert!(matches!(
        fit_normal(column_matrix(&[1.0]).view()),
        Err(DataError::TooFewRows {
            rows: 1,
            needed: 2,
            ..
        })
    ));
    assert!(matches!(
        fit_normal(column_matrix(&[1.0, f64::NAN]).view()),
        Err(DataError::NonFiniteData {
            row: 1,
            column: 0,
            ..
        })
    ));
    assert!(matches!(
        fit_normal(Array2::zeros((3, 0)).view()),
        Err(DataError::ZeroDimension { .. })
    ));
    // Constant data: σ² = 0.
    assert!(matches!(
        fit_normal(column_matrix(&[5.0, 5.0, 5.0]).view()),
        Err(DataError::NonPositiveVariance { .. })
    ));
    // Collinear 2-D data (y = 2x): Σ = [[2/3, 4/3], [4/3, 8/3]] is singular.
    assert!(matches!(
        fit_normal(array![[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]].view()),
        Err(DataError::NotPositiveDefinite { row: 1, .. })
    ));
    assert!(matches!(
        fit_mixture(
            column_matrix(&[1e200, -1e200, 0.0]).view(),
            &EmConfig::new(2)
        ),
        Err(DataError::DataRangeTooLarge { column: 0, .. })
    ));
    assert_eq!(require_rows(10, 3), Ok(()));
}

#[test]
fn all_restarts_failing_is_not_converged() {
    // Three identical points cannot fill two clusters: every restart empties one.
    let data = column_matrix(&[5.0, 5.0, 5.0]);
    let e = fit_mixture(data.view(), &EmConfig::new(2)).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::NotConverged {
                k: 2,
                restarts: 5,
                ..
            }
        ),
        "{e}"
    );
    // A single iteration with a tiny tolerance never converges.
    let data = column_matrix(&flexibility_data(1));
    let c = EmConfig {
        max_iterations: 1,
        tolerance: 1e-300,
        restarts: 2,
        ..EmConfig::new(2)
    };
    let e = fit_mixture(data.view(), &c).unwrap_err();
    assert!(
        matches!(e, DataError::NotConverged { restarts: 2, .. }),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn a_fit_is_the_same_on_one_thread_and_on_two() {
    // On both sides of PARALLEL_FIT_ROWS: from it on, the restarts run on the caller's
    // pool, where linfa's k-means splits its rows over the threads; below it, on a pool
    // of one thread of their own. Either way a two-thread pool gives the one-thread fit,
    // bit for bit.
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (one, two) = (pool(1), pool(2));
    let config = EmConfig::new(2);
    for rows in [500, PARALLEL_FIT_ROWS] {
        let data = toy_data::two_clusters(rows / 2, 5).points;
        assert_eq!(data.nrows(), rows);
        let split = two.install(|| fit_mixture(data.view(), &config).unwrap());
        let single = one.install(|| fit_mixture(data.view(), &config).unwrap());
        assert_eq!(split, single, "{rows} rows");
    }
}

#[test]
fn restart_seeds_differ() {
    assert_ne!(restart_seed(0, 0), restart_seed(0, 1));
    assert_ne!(restart_seed(1, 0), restart_seed(0, 1));
}
