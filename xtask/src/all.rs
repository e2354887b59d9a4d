//! `cargo xtask all`: every stage of the notebook in order, then a summary table.

use std::time::Instant;

use crate::console::{self, say};
use crate::flags::{default_out, defaults, AllArgs, ForwardArgs, GmmArgs, SampleArgs, TrainArgs};
use crate::output::{OutDir, Timings};

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
        ..defaults()
    };
    let train_args = TrainArgs {
        out: out_arg.clone(),
        seed: args.seed,
        steps: args.steps,
        epochs: args.epochs,
        data: args.data.clone(),
        net: args.net.clone(),
        ..defaults()
    };
    let sample_args = SampleArgs {
        out: out_arg.clone(),
        seed: args.seed,
        ..defaults()
    };
    // Training does not need the first two stages' files: with a second core it starts
    // at once, its report kept until the first two stages have printed theirs. Every
    // stage writes its own files (and merges into the shared JSON one at a time), so the
    // files are the same bytes as when the stages run one after another.
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let train_thread = console::two_cores().then(|| {
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
                result?;
                timings.record("stage_train", seconds);
                Ok(())
            }
            None => stage(&mut timings, "train", || crate::train::run(&train_args)),
        }
    })?;
    stage(&mut timings, "sample+evaluate", || {
        crate::sample::run(&sample_args)
    })?;
    timings.record("all", start.elapsed().as_secs_f64());
    timings.write(&out)?;
    summary(&out)
}

/// Runs one stage under its heading and records its wall time.
fn stage(
    timings: &mut Timings,
    name: &str,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    say!("\n== {name}");
    let t = Instant::now();
    f()?;
    timings.record(&format!("stage_{name}"), t.elapsed().as_secs_f64());
    Ok(())
}

/// A short table of the headline numbers, read back from metrics.json and timings.json.
fn summary(out: &OutDir) -> anyhow::Result<()> {
    let read = |name: &str| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&std::fs::read(out.path(name))?)?)
    };
    let m = read("metrics.json")?;
    let t = read("timings.json")?;
    let f = |v: &serde_json::Value| v.as_f64().map_or("—".to_string(), |x| format!("{x:.4}"));
    let s = &m["sampling"];
    say!("\n== summary ({})", out.path("").display());
    say!("| quantity | value | reference |");
    say!("|---|---:|---:|");
    say!(
        "| classifier accuracy at t=250 | {} | Bayes {} |",
        f(&m["accuracy_t250"]),
        f(&m["bayes_accuracy_t250"])
    );
    say!(
        "| denoiser final loss | {} | floor {} |",
        f(&m["denoiser_final_loss"]),
        f(&m["denoiser_loss_floor"])
    );
    say!(
        "| unguided mode balance (class 0) | {} | 0.5 |",
        f(&s["unguided"]["mode_balance"])
    );
    say!(
        "| unguided energy distance | {} | noise floor p95 {} |",
        f(&s["unguided"]["energy_distance"]),
        f(&s["unguided"]["energy_noise_floor"]["p95"])
    );
    if let Some(map) = s.as_object() {
        for (key, run) in map.iter().filter(|(k, _)| k.starts_with("guided_")) {
            say!("| {key} precision | {} | ≥ 0.99 |", f(&run["precision"]));
        }
    }
    say!("| wall time of `all` (s) | {} | |", f(&t["all"]));
    Ok(())
}
