use toy_data::datasets::flexibility_data;
use toy_data::*;

#[test]
fn bic_picks_two_on_flexibility_data() {
    let data = column_matrix(&flexibility_data(0));
    let c = compare_models(data.view(), 3, 1, 0).unwrap();
    assert_eq!(c.best_k_bic, 2, "{}", c.to_markdown(false));
    let names: Vec<&str> = c.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["Normal", "GMM k=1", "GMM k=2", "GMM k=3"]);
    let (normal, k1, k2) = (&c.rows[0], &c.rows[1], &c.rows[2]);
    assert!(normal.log_likelihood <= k2.log_likelihood);
    // GMM k=1 is the Normal plus reg 1e-6 on σ² ≈ 13: log L moves by ≈ n·1e-6/(2σ²) ≈ 2e-5.
    assert!((normal.log_likelihood - k1.log_likelihood).abs() < 1e-3);
    assert_eq!((normal.n_parameters, k2.n_parameters), (2, 5));
    assert!(c.rows.iter().all(|r| r.fit_seconds_median >= 0.0));
    // mean = total / n, with n = 500.
    assert!((k2.mean_log_likelihood * 500.0 - k2.log_likelihood).abs() < 1e-9);
}

#[test]
fn markdown_with_and_without_timing() {
    let data = column_matrix(&flexibility_data(0));
    let c = compare_models(data.view(), 2, 3, 0).unwrap();
    let without = c.to_markdown(false);
    assert!(!without.contains("fit time"));
    assert!(without.contains("| GMM k=2 | 5 |"), "{without}");
    assert!(without.contains("BIC chooses k = 2."));
    assert_eq!(without.lines().filter(|l| l.starts_with("| ")).count(), 4);
    assert!(c.to_markdown(true).contains("fit time (median, ms)"));
    // The reproducible part is identical across runs.
    let again = compare_models(data.view(), 2, 1, 0).unwrap();
    assert_eq!(again.to_markdown(false), without);
}

#[test]
fn choose_k_by_bic_is_two() {
    let data = column_matrix(&flexibility_data(3));
    let fit = choose_k_by_bic(data.view(), 3, 0).unwrap();
    assert_eq!(fit.mixture.n_components(), 2);
}

#[test]
fn compare_validation() {
    let data = column_matrix(&flexibility_data(0));
    assert!(matches!(
        compare_models(data.view(), 0, 1, 0),
        Err(DataError::InvalidParameter { name: "max_k", .. })
    ));
    assert!(matches!(
        compare_models(data.view(), 2, 0, 0),
        Err(DataError::InvalidParameter {
            name: "repeats",
            ..
        })
    ));
    let tiny = column_matrix(&[1.0, 2.0]);
    assert!(matches!(
        choose_k_by_bic(tiny.view(), 3, 0),
        Err(DataError::TooFewRows { k: 3, .. })
    ));
}
