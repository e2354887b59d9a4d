//! `cargo xtask all`: every stage of the notebook in order, then a summary table of the
//! stages' typed results.

use std::time::Instant;

use toydiff::{OutDir, SamplingMetrics, Timings, TrainMetrics};

use crate::console::{self, say};
use crate::flags::{
    default_out, defaults, AllArgs, ForwardArgs, GmmArgs, GuidanceArgs, LikelihoodArgs, SampleArgs,
    TrainArgs,
};

/// Guided precision the notebook's trained networks are held to
/// (crates/sampler/tests/trained_guidance.rs).
const NOTEBOOK_MIN_PRECISION: f64 = 0.99;
/// Samples a run of the guidance stage in `all` (48 runs on the notebook's data; `cargo
/// xtask guidance` runs 500), so that `all` stays within twice its time before the stage.
pub const ALL_GUIDANCE_N: usize = 100;

pub fn run(args: &AllArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let out_path = args.out.clone().unwrap_or_else(default_out);
    let out = OutDir::new(&out_path)?;
    let mut timings = Timings::default();
    let out_arg = Some(out_path.clone());
    // The 1-D Gaussian-mixture stage belongs to the notebook's own run.
    let notebook = args.data.data.is_none()
        && matches!(
            args.data.dataset,
            None | Some(toy_data::BuiltinSet::TwoClusters)
        );
    let gmm_args = GmmArgs {
        out: out_arg.clone(),
        seed: args.seed,
        ..defaults()
    };
    let forward_args = ForwardArgs {
        out: out_arg.clone(),
        seed: args.seed,
        data: args.data.clone(),
        schedule: args.schedule,
        ..defaults()
    };
    let train_args = TrainArgs {
        out: out_arg.clone(),
        seed: args.seed,
        steps: args.steps,
        epochs: args.epochs,
        cond_steps: args.cond_steps,
        data: args.data.clone(),
        net: args.net.clone(),
        schedule: args.schedule,
        ..defaults()
    };
    let sample_args = SampleArgs {
        out: out_arg.clone(),
        seed: args.seed,
        ..defaults()
    };
    // Training does not need the first two stages' files: with a second core it starts
    // at once, its report kept until the first two stages have printed theirs. Every
    // stage writes its own files (and merges into the shared timings one at a time), so
    // the files are the same bytes as when the stages run one after another.
    let trained = std::thread::scope(|scope| -> anyhow::Result<TrainMetrics> {
        let train_thread = toydiff::train::two_cores().then(|| {
            scope.spawn(|| {
                let t = Instant::now();
                let (result, text) = console::captured(|| crate::train::run(&train_args));
                (result, text, t.elapsed().as_secs_f64())
            })
        });
        if notebook {
            stage(&mut timings, "gmm", || crate::gmm::run(&gmm_args))?;
        }
        stage(&mut timings, "forward", || {
            crate::forward::run(&forward_args)
        })?;
        match train_thread {
            Some(thread) => {
                say!("\n== train");
                let (result, text, seconds) = thread.join().expect("the training thread panicked");
                console::print(&text);
                let metrics = result?;
                timings.record("stage_train", seconds);
                Ok(metrics)
            }
            None => stage(&mut timings, "train", || crate::train::run(&train_args)),
        }
    })?;
    // The likelihood stage, cheap: 500 points, a 40 × 40 density grid, k ≤ 4. It reads
    // only the checkpoints and runs on this thread right after `sample`, while guidance
    // (the longer of the two) runs beside them on the second core.
    let quick = toydiff::LikelihoodSettings::quick();
    let likelihood_args = LikelihoodArgs {
        out: out_arg.clone(),
        seed: args.seed,
        n: quick.n,
        grid: quick.grid,
        max_k: quick.max_k,
        ..defaults()
    };
    // Classifier vs classifier-free guidance over their scales (labelled data only). It
    // reads the checkpoints as `sample` does and writes other files: with a second core
    // it runs beside `sample`, its report kept until `sample` has printed its own.
    let guidance_args = GuidanceArgs {
        out: out_arg.clone(),
        seed: args.seed,
        n: ALL_GUIDANCE_N,
        ..defaults()
    };
    let labelled = !trained.classes.is_empty();
    type Reports = (
        SamplingMetrics,
        toydiff::LikelihoodReport,
        Option<toydiff::GuidanceReport>,
    );
    let (sampling, likelihood, guidance) =
        std::thread::scope(|scope| -> anyhow::Result<Reports> {
            let guidance_thread = (labelled && toydiff::train::two_cores()).then(|| {
                scope.spawn(|| {
                    let t = Instant::now();
                    let (result, text) = console::captured(|| crate::guidance::run(&guidance_args));
                    (result, text, t.elapsed().as_secs_f64())
                })
            });
            let sampling = stage(&mut timings, "sample+evaluate", || {
                crate::sample::run(&sample_args)
            })?;
            let likelihood = stage(&mut timings, "likelihood", || {
                crate::likelihood::run(&likelihood_args)
            })?;
            let guidance = match guidance_thread {
                Some(thread) => {
                    say!("\n== guidance");
                    let (result, text, seconds) =
                        thread.join().expect("the guidance thread panicked");
                    console::print(&text);
                    timings.record("stage_guidance", seconds);
                    Some(result?)
                }
                None if labelled => Some(stage(&mut timings, "guidance", || {
                    crate::guidance::run(&guidance_args)
                })?),
                None => None,
            };
            Ok((sampling, likelihood, guidance))
        })?;
    let wall = start.elapsed().as_secs_f64();
    timings.record("all", wall);
    timings.write(&out)?;
    summary(&out, &trained, &sampling, &likelihood, wall, notebook);
    if let Some(report) = guidance {
        guidance_summary(&report);
    }
    Ok(())
}

/// Runs one stage under its heading and records its wall time.
fn stage<T>(
    timings: &mut Timings,
    name: &str,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    say!("\n== {name}");
    let t = Instant::now();
    let value = f()?;
    timings.record(&format!("stage_{name}"), t.elapsed().as_secs_f64());
    Ok(value)
}

/// A short table of the headline numbers, from the stages' results.
fn summary(
    out: &OutDir,
    m: &TrainMetrics,
    s: &SamplingMetrics,
    likelihood: &toydiff::LikelihoodReport,
    wall: f64,
    notebook: bool,
) {
    let f = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{x:.4}"));
    say!("\n== summary ({})", out.path("").display());
    say!("| quantity | value | reference |");
    say!("|---|---:|---:|");
    say!(
        "| classifier accuracy at t=250 | {} | Bayes {} |",
        f(m.accuracy_t250),
        f(m.bayes_accuracy_t250)
    );
    say!(
        "| denoiser final loss | {} | floor {} |",
        f(Some(m.denoiser_final_loss)),
        f(m.denoiser_loss_floor)
    );
    say!(
        "| unguided mode balance (class 0) | {} | 0.5 |",
        f(s.unguided.mode_balance)
    );
    say!(
        "| unguided energy distance | {} | noise floor p95 {} |",
        f(Some(s.unguided.energy_distance)),
        f(Some(s.unguided.energy_noise_floor.p95))
    );
    // What each kind of data is checked against: the notebook's trained nets by the
    // sampler's regression test, every other set by `cargo xtask quality`.
    let bar = if notebook {
        NOTEBOOK_MIN_PRECISION
    } else {
        crate::quality::MIN_PRECISION
    };
    for (key, run) in &s.guided {
        say!("| {key} precision | {} | ≥ {bar} |", f(Some(run.precision)));
    }
    likelihood_summary(likelihood);
    say!("| wall time of `all` (s) | {} | |", f(Some(wall)));
}

/// The likelihood stage's headline rows of the summary table.
fn likelihood_summary(report: &toydiff::LikelihoodReport) {
    let f = |name: &str| {
        report.model(name).map_or("—".to_string(), |m| {
            format!("{:.4}", m.mean_log_likelihood)
        })
    };
    for (row, name) in [
        ("mean log-likelihood, diffusion ODE", "diffusion-ode"),
        ("mean log-likelihood, GMM", "gmm"),
    ] {
        say!("| {row} (nats) | {} | true {} |", f(name), f("true"));
    }
    say!(
        "| mean ELBO, diffusion (nats) | {} | below the ODE's |",
        f("diffusion-elbo")
    );
}

/// The guidance stage's headline: each method's lowest precision and std ratio over the
/// classes at the notebook's s = 30 and at w = 1, learned nets.
fn guidance_summary(report: &toydiff::GuidanceReport) {
    for (method, scale, name) in [
        ("classifier", 30.0, "classifier guidance s = 30"),
        ("free", toydiff::DEFAULT_CFG_WEIGHT, "free guidance w = 1"),
    ] {
        let rows: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.method == method && r.scale == scale && r.model == "learned")
            .collect();
        if rows.is_empty() {
            continue;
        }
        let min = |f: fn(&toydiff::GuidanceRow) -> f64| {
            rows.iter().map(|r| f(r)).fold(f64::INFINITY, f64::min)
        };
        say!(
            "| {name} (n = {}): min precision, min std ratio | {:.4}, {:.3} | |",
            report.n,
            min(|r| r.precision),
            min(|r| r.std_ratio)
        );
    }
}
