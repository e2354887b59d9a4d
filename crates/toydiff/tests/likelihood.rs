use toydiff::likelihood::grid_points;
use toydiff::{
    likelihood, Checkpoint, LikelihoodReport, LikelihoodSettings, ModelLikelihood, OutDir,
    RecipeParams, Silent, Timings,
};

use crate::common::scratch;

#[test]
fn standardised_data_gets_its_log_jacobian_back() {
    // Eight Gaussians, standardised for the nets: with the exact score in the
    // standardised units, the ODE's density in the data's units (log p(z) − Σ log s_j)
    // is the raw mixture's own; without the log-Jacobian it would be off by
    // Σ log s_j (2.10 nats here). The stage evaluates the exact-score ODE on the same
    // points as the true density; a short training run is enough for its checkpoint.
    let dir = scratch("likelihood");
    let out = OutDir::new(&dir).unwrap();
    let recipe = RecipeParams {
        dataset: Some(toy_data::BuiltinSet::EightGaussians),
        steps: Some(20),
        epochs: Some(1),
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    toydiff::train(&recipe, &out, &Silent, &mut Timings::default()).unwrap();
    let checkpoints = out.path("checkpoints");
    let data = Checkpoint::load(&checkpoints).unwrap().data;
    let sum_log_s: f64 = data.meta.standardizer.std.iter().map(|s| s.ln()).sum();
    assert!(sum_log_s > 1.0, "Σ log s = {sum_log_s}");
    let settings = LikelihoodSettings {
        n: 200,
        steps: 100,
        grid: 8,
        arrows: 4,
        max_k: 1,
        seed: 3,
        ..LikelihoodSettings::default()
    };
    let report = likelihood(
        &settings,
        &checkpoints,
        &out,
        &Silent,
        &mut Timings::default(),
    )
    .unwrap();
    let mean = |name| report.model(name).unwrap().mean_log_likelihood;
    let (ode_mean, true_mean) = (mean("exact-score-ode"), mean("true"));
    // Heun at K = 100 on eight narrow components: measured 0.002 nats; 0.05 is well
    // below the 2.1-nat log-Jacobian the test is about.
    assert!(
        (ode_mean - true_mean).abs() < 0.05,
        "ODE {ode_mean} vs true {true_mean}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_table_leaves_the_seconds_out_of_the_file() {
    let report = LikelihoodReport {
        points: 3,
        units: "nats".into(),
        models: vec![ModelLikelihood {
            name: "gmm".into(),
            mean_log_likelihood: -2.5,
            seconds: 0.25,
            std_error: 0.1,
        }],
        dataset: "d".into(),
        evaluation_points: "held-out rows".into(),
        gmm_components: 2,
        ode_steps: 50,
        ode_model_evaluations: 99,
        elbo_variance: "beta".into(),
        run_id: "0".into(),
    };
    assert!(report
        .to_markdown(true)
        .contains("| gmm | -2.5000 | 0.1000 | 0.250 |"));
    assert!(report
        .to_markdown(false)
        .contains("| gmm | -2.5000 | 0.1000 |\n"));
    assert_eq!(
        grid_points(((0.0, 2.0), (0.0, 4.0)), 2),
        [0.5, 1.0, 1.5, 1.0, 0.5, 3.0, 1.5, 3.0]
    );
}
