//! The `gmm` stage: the notebook's first half ("Conceptos básicos", "Variable
//! latente", "Tratabilidad y flexibilidad") on its data or on a user's CSV column.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array2;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::json;
use toy_data::{
    choose_k_by_bic, column_matrix, compare_models, fit_mixture, fit_normal, require_rows,
    Comparison, EmConfig, FittedMixture, GaussianMixture,
};
use viz::{Color, Curve, Histogram, Panel};

use crate::error::{PipelineError, Result};
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};

/// Fits per model in the comparison; the median of their wall times is reported.
const COMPARISON_REPEATS: usize = 5;
/// Figures of this stage are 900 × 600.
const SIZE: (u32, u32) = (900, 600);

/// How many mixture components to fit: `Some(k)`, or `None` to choose k by BIC.
pub type KChoice = Option<usize>;

/// The largest k a fit accepts, and the largest the BIC choice tries.
pub const MAX_K: usize = 10;

/// The `gmm` stage on a CSV column: the same fit, figure (`gmm_fit.png`) and comparison
/// as the notebook's, and `gmm_fit.json`. Everything is read and checked before anything
/// is written.
pub fn gmm_column(
    path: &Path,
    column: &str,
    k: KChoice,
    seed: u64,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<()> {
    let values = toy_data::load_column(path, column)?;
    let k_check = k.unwrap_or(1);
    require_rows(values.len(), k_check)?;
    let distinct = distinct_values(&values);
    if distinct < 2 {
        return Err(PipelineError::BadColumns(format!(
            "column \"{column}\" of {} is constant (every value is {}): a fit needs at least two distinct values",
            path.display(),
            values[0]
        )));
    }
    if k_check > distinct {
        return Err(PipelineError::BadColumns(format!(
            "column \"{column}\" has only {distinct} distinct values: --k {k_check} needs at least {k_check}; use a smaller --k or auto"
        )));
    }
    user_data(out, &values, column, k, seed, obs, timings)
}

/// The notebook's three cells.
pub fn gmm_notebook(
    k: KChoice,
    seed: u64,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);

    // 1. A generative model: 0.4·N(−2, 0.5²) + 0.6·N(3, 1²), 1,000 draws.
    let gmm = toy_data::notebook_gmm_1d();
    let draws = gmm.sample(1000, &mut rng).column(0).to_vec();
    let path = out.write("gmm_samples.png", &samples_figure(&gmm, draws)?)?;
    say!(obs, "wrote {}", path.display());

    // 2. The latent variable: which component each draw came from.
    let (x, z) = gmm.sample_one_with_latent(&mut rng);
    say!(
        obs,
        "Generated value: {:.2}, origin (latent variable z): component {}",
        x[0],
        z + 1
    );

    // 3. Tractability and flexibility: one Normal against a 2-component GMM.
    let values = toy_data::flexibility_data(seed.wrapping_add(1));
    fit_and_report(
        out,
        &values,
        "x",
        k.unwrap_or(0),
        seed,
        "flexibility.png",
        obs,
        timings,
    )?;
    Ok(())
}

/// `--data FILE --column NAME`: the same fit, figure and comparison on a user's column.
fn user_data(
    out: &OutDir,
    values: &[f64],
    column: &str,
    k: KChoice,
    seed: u64,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<()> {
    let k = k.unwrap_or(0);
    let fit = fit_and_report(out, values, column, k, seed, "gmm_fit.png", obs, timings)?;
    let m = &fit.mixture;
    let report = json!({
        "column": column,
        "n": values.len(),
        "k": m.n_components(),
        "k_chosen_by": if k == 0 { "bic" } else { "user" },
        "weights": m.weights(),
        "means": m.means().iter().map(|mu| mu[0]).collect::<Vec<_>>(),
        "variances": m.variances_1d(),
        "log_likelihood": fit.log_likelihood,
        "aic": fit.aic,
        "bic": fit.bic,
        "n_parameters": fit.n_parameters,
    });
    let path = out.write_json("gmm_fit.json", &report)?;
    say!(obs, "wrote {}", path.display());
    Ok(())
}

/// Fits a Normal and a k-component GMM (k = 0: chosen by BIC), draws both over the
/// histogram, and writes the Normal-vs-GMM comparison table.
#[allow(clippy::too_many_arguments)] // the stage's inputs, each used once
fn fit_and_report(
    out: &OutDir,
    values: &[f64],
    column: &str,
    k: usize,
    seed: u64,
    figure_name: &str,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<FittedMixture> {
    let data: Array2<f64> = column_matrix(values);
    let normal = fit_normal(data.view())?;
    let fit = if k == 0 {
        choose_k_by_bic(data.view(), MAX_K.min(distinct_values(values)), seed)?
    } else {
        fit_mixture(data.view(), &EmConfig::new(k).with_seed(seed))?
    };
    let k = fit.mixture.n_components();
    say!(obs, "Normal fit: {normal}");
    say!(obs, "GMM fit:    {fit}");

    // The notebook's open TODO: the cost and the fit of a Normal against GMMs. (Computed
    // before any file is written: no more components than distinct values.)
    let max_k = 4.max(k).min(distinct_values(values));
    let comparison = compare_models(data.view(), max_k, COMPARISON_REPEATS, seed)
        .map_err(|e| PipelineError::from(e).context("comparing the Normal with mixtures"))?;

    let (lo, hi) = padded_range(values);
    let figure = Histogram {
        title: "Comparing model flexibility".into(),
        x_label: column.into(),
        y_label: "density".into(),
        values: values.to_vec(),
        bins: 60,
        label: format!("Data ({} points)", values.len()),
        color: Color::GRAY,
        curves: vec![
            density_curve(
                "Low flexibility: one Normal (max. likelihood)",
                &normal,
                (lo, hi),
                Color::ORANGE,
            ),
            density_curve(
                &format!("Flexible: GMM k={k} (EM, k-means init)"),
                &fit.mixture,
                (lo, hi),
                Color::GREEN,
            ),
        ],
        ..Histogram::default()
    };
    let path = out.write(figure_name, &png(figure)?)?;
    say!(obs, "wrote {}", path.display());

    say!(
        obs,
        "\nNormal vs GMM (fit time: median of {COMPARISON_REPEATS} fits):"
    );
    obs.line(comparison.to_markdown(true).trim_end_matches('\n'));
    write_comparison(out, &comparison, obs, timings)?;
    Ok(fit)
}

/// `gmm_comparison.md` and `.json` without the wall times (they are not
/// reproducible); the times go to `timings.json`.
fn write_comparison(
    out: &OutDir,
    c: &Comparison,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<()> {
    let mut md = String::from("# Normal vs Gaussian mixtures on the same data\n\n");
    md.push_str(&c.to_markdown(false));
    md.push_str("\nTotal log-likelihood over the data; AIC = 2p − 2 log L; BIC = p ln n − 2 log L (lower is better). Fit times are in `timings.json`.\n");
    out.write("gmm_comparison.md", md.as_bytes())?;
    let rows: Vec<_> = c
        .rows
        .iter()
        .map(|r| {
            json!({
                "model": r.model,
                "k": r.k,
                "n_parameters": r.n_parameters,
                "log_likelihood": r.log_likelihood,
                "mean_log_likelihood": r.mean_log_likelihood,
                "aic": r.aic,
                "bic": r.bic,
            })
        })
        .collect();
    let path = out.write_json(
        "gmm_comparison.json",
        &json!({ "rows": rows, "best_k_bic": c.best_k_bic }),
    )?;
    say!(obs, "wrote {} (and .md)", path.display());
    let mut fit_times = BTreeMap::new();
    for r in &c.rows {
        fit_times.insert(r.model.clone(), r.fit_seconds_median);
    }
    timings.record_value("gmm_fit_seconds_median", json!(fit_times));
    Ok(())
}

fn density_curve(label: &str, m: &GaussianMixture, (lo, hi): (f64, f64), color: Color) -> Curve {
    Curve::from_fn(label, lo, hi, 400, color, |x| m.pdf(&[x])).width(3)
}

/// How many different values a column holds (a mixture cannot have more components).
fn distinct_values(values: &[f64]) -> usize {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

fn padded_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.1 * (hi - lo).max(1e-9);
    (lo - pad, hi + pad)
}

fn png(h: Histogram) -> Result<Vec<u8>> {
    Ok(viz::render_png(&[Panel::Histogram(h)], 1, SIZE.0, SIZE.1)?)
}

/// `gmm_samples.png`: a histogram of `draws` of the notebook's 1-D mixture with its density.
pub fn samples_figure(gmm: &GaussianMixture, draws: Vec<f64>) -> Result<Vec<u8>> {
    let figure = Histogram {
        title: "Samples drawn from a GMM".into(),
        x_label: "x".into(),
        y_label: "density".into(),
        values: draws,
        bins: 50,
        label: "Generated data (1,000 draws)".into(),
        color: Color::CORNFLOWER,
        curves: vec![density_curve(
            "True density 0.4·N(−2, 0.5²) + 0.6·N(3, 1²)",
            gmm,
            (-5.0, 6.0),
            Color::RED,
        )],
        ..Histogram::default()
    };
    png(figure)
}
