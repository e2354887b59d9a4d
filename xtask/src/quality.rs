//! `cargo xtask quality`: trains and samples every built-in data set with its default
//! settings and checks the quality bar: the unguided samples' energy distance within
//! 3× its noise floor, and guided precision ≥ 95% on the labelled sets. Prints the table
//! (with the wall time of each set) and writes it to `quality.md` and `quality.json`.

use std::time::Instant;

use anyhow::bail;
use serde_json::{json, Value};
use toy_data::BuiltinSet;

use crate::flags::{defaults, DataArgs, QualityArgs, SampleArgs, TrainArgs};
use toydiff::OutDir;

/// Energy distance may be at most this many times its noise floor (95th percentile).
pub const MAX_FLOOR_RATIO: f64 = 3.0;
/// Guided precision must reach this on labelled sets.
pub const MIN_PRECISION: f64 = 0.95;

pub fn run(args: &QualityArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out)?;
    let sets: Vec<BuiltinSet> = if args.datasets.is_empty() {
        BuiltinSet::ALL.to_vec()
    } else {
        args.datasets.clone()
    };
    let mut rows = Vec::new();
    for set in sets {
        println!("\n== {set}");
        let folder = args.out.join(set.name());
        let data = DataArgs {
            dataset: Some(set),
            ..DataArgs::default()
        };
        let start = Instant::now();
        let trained = crate::train::run(&TrainArgs {
            out: Some(folder.clone()),
            seed: args.seed,
            data,
            ..defaults()
        })?;
        let train_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let s = crate::sample::run(&SampleArgs {
            out: Some(folder.clone()),
            seed: args.seed,
            ..defaults()
        })?;
        let sample_s = start.elapsed().as_secs_f64();
        let ed = s.unguided.energy_distance;
        let floor = s.unguided.energy_noise_floor.p95;
        let min_precision = s.min_guided_precision();
        let ratio = ed / floor;
        let pass = ratio <= MAX_FLOOR_RATIO && min_precision.is_none_or(|p| p >= MIN_PRECISION);
        rows.push(json!({
            "dataset": set.name(),
            "energy_distance": ed,
            "noise_floor_p95": floor,
            "ratio_to_floor": ratio,
            "reference": s.unguided.reference,
            "min_guided_precision": min_precision,
            "accuracy_t250": trained.accuracy_t250,
            "train_seconds": train_s,
            "sample_seconds": sample_s,
            "pass": pass,
        }));
    }
    let mut md = format!(
        "| data set | energy distance | noise floor (p95) | ratio (≤ {MAX_FLOOR_RATIO}) | reference | min guided precision (≥ {MIN_PRECISION}) | train s | sample s | pass |\n|---|---:|---:|---:|---|---:|---:|---:|---|\n",
    );
    for r in &rows {
        let f = |v: &Value, d: usize| v.as_f64().map_or("—".into(), |x| format!("{x:.d$}"));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["dataset"].as_str().unwrap_or(""),
            f(&r["energy_distance"], 4),
            f(&r["noise_floor_p95"], 4),
            f(&r["ratio_to_floor"], 2),
            r["reference"].as_str().unwrap_or(""),
            f(&r["min_guided_precision"], 3),
            f(&r["train_seconds"], 1),
            f(&r["sample_seconds"], 1),
            if r["pass"].as_bool() == Some(true) {
                "yes"
            } else {
                "**no**"
            },
        ));
    }
    println!("\n{md}");
    out.write("quality.md", md.as_bytes())?;
    out.write_json("quality.json", &rows)?;
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["pass"].as_bool() != Some(true))
        .filter_map(|r| r["dataset"].as_str())
        .collect();
    if !failed.is_empty() {
        bail!("quality bar not met for: {}", failed.join(", "));
    }
    Ok(())
}
