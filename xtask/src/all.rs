//! `cargo xtask all`: every stage of the notebook in order, then a summary table.

use std::time::Instant;

use crate::flags::{
    default_out, AllArgs, ForwardArgs, GmmArgs, KChoice, SampleArgs, TrainArgs, VarianceArg,
};
use crate::output::{OutDir, Timings};

pub fn run(args: &AllArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let out_path = args.out.clone().unwrap_or_else(default_out);
    let out = OutDir::new(&out_path)?;
    let mut timings = Timings::default();
    let mut stage = |name: &str, f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<()> {
        println!("\n== {name}");
        let t = Instant::now();
        f()?;
        timings.record(&format!("stage_{name}"), t.elapsed().as_secs_f64());
        Ok(())
    };
    let out_arg = Some(out_path.clone());
    // The 1-D Gaussian-mixture stage belongs to the notebook's own run.
    let notebook = args.data.data.is_none()
        && matches!(
            args.data.dataset,
            None | Some(toy_data::BuiltinSet::TwoClusters)
        );
    if notebook {
        stage("gmm", &|| {
            crate::gmm::run(&GmmArgs {
                out: out_arg.clone(),
                seed: args.seed,
                data: None,
                column: None,
                k: KChoice::Fixed(2),
            })
        })?;
    }
    stage("forward", &|| {
        crate::forward::run(&ForwardArgs {
            out: out_arg.clone(),
            seed: args.seed,
            every: 50,
            steps: 500,
            data: args.data.clone(),
        })
    })?;
    stage("train", &|| {
        crate::train::run(&TrainArgs {
            out: out_arg.clone(),
            seed: args.seed,
            steps: args.steps,
            epochs: args.epochs,
            batch: 128,
            lr: 1e-3,
            data: args.data.clone(),
            net: args.net.clone(),
        })
    })?;
    stage("sample+evaluate", &|| {
        crate::sample::run(&SampleArgs {
            out: out_arg.clone(),
            checkpoints: None,
            n: 500,
            scale: None,
            classes: vec![],
            snapshot_every: 10,
            variance: VarianceArg::Beta,
            seed: args.seed,
        })
    })?;
    timings.record("all", start.elapsed().as_secs_f64());
    timings.write(&out)?;
    summary(&out)
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
    println!("\n== summary ({})", out.path("").display());
    println!("| quantity | value | reference |");
    println!("|---|---:|---:|");
    println!(
        "| classifier accuracy at t=250 | {} | Bayes {} |",
        f(&m["accuracy_t250"]),
        f(&m["bayes_accuracy_t250"])
    );
    println!(
        "| denoiser final loss | {} | floor {} |",
        f(&m["denoiser_final_loss"]),
        f(&m["denoiser_loss_floor"])
    );
    println!(
        "| unguided mode balance (class 0) | {} | 0.5 |",
        f(&s["unguided"]["mode_balance"])
    );
    println!(
        "| unguided energy distance | {} | noise floor p95 {} |",
        f(&s["unguided"]["energy_distance"]),
        f(&s["unguided"]["energy_noise_floor"]["p95"])
    );
    if let Some(map) = s.as_object() {
        for (key, run) in map.iter().filter(|(k, _)| k.starts_with("guided_")) {
            println!("| {key} precision | {} | ≥ 0.99 |", f(&run["precision"]));
        }
    }
    println!("| wall time of `all` (s) | {} | |", f(&t["all"]));
    Ok(())
}
