//! `cargo xtask bench`: the speed of every stage of the pipeline, beside its arithmetic
//! floor and, with `--peers`, beside PyTorch and JAX running the same pipeline.
//!
//! Each stage runs once to warm up, then `--repeats` times; the table shows the median
//! and min–max (wall clock), and the median CPU time of the process (all threads), which
//! moves less than the wall clock when other work shares the machine. Training and
//! sampling run through the libraries' public APIs with the notebook's recipe as
//! `toydiff::RecipeParams::default()` resolves it (denoiser 2000 steps, classifier 1000
//! epochs = 8000 steps, both batch 128; 500 samples × 500 steps, guidance scale 30);
//! sampling uses the nets trained in the warm-up. Figures are the `toydiff` library's
//! own figure functions (the ones `cargo xtask all` writes), rendered and encoded in
//! memory (no file is written). `--only` picks stage groups.
//!
//! The floor of a step is its FLOPs, counted from the layer shapes (2·m·k·n per matmul
//! forward, backward 2× forward, Adam 12 flops per parameter; the guided step adds the
//! classifier's forward and its backward to x), divided by the matmul rate measured in the
//! same run: a candle 128×128×128 f32 matmul on one thread, best of 15 timings (the best,
//! because a floor is what the core does when nothing interferes).
//!
//! `--scaling` runs one child process per size (`--scaling-one N`) so that each reports
//! its own peak memory (VmHWM from /proc/self/status).
//!
//! Benchmarks are not tests: nothing here asserts a time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use models::{
    init_classifier, init_denoiser, train_classifier, train_denoiser, ClassifierConfig,
    ClassifierNet, DenoiserConfig, DenoiserNet,
};
use rand::{rngs::StdRng, SeedableRng};
use sampler::{sample, ClassifierGuidance, SampleRun, SamplerConfig};
use schedule::{NoiseSchedule, ScheduleKind};
use serde_json::{json, Value};

use crate::flags::BenchArgs;

/// The notebook's seed.
const SEED: u64 = 1234;
/// Adam's cost per parameter: two moment updates, two bias corrections, sqrt, divide, update.
const ADAM_FLOPS_PER_PARAM: f64 = 12.0;
/// Sizes of the scaling table (guided, 500 steps).
const SCALING_SIZES: [usize; 4] = [500, 5_000, 50_000, 100_000];
/// Samples and step counts of the memory-against-T table.
const MEMORY_SAMPLES: usize = 20_000;
const MEMORY_STEPS: [usize; 3] = [250, 500, 1000];
/// From this size on the scaling table also tries 2 threads.
const SCALING_THREADS_FROM: usize = 50_000;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(n) = args.scaling_one {
        if let Some(k) = args.scaling_heun_steps {
            return scaling_one_heun(n, k);
        }
        return scaling_one(n, args.scaling_steps, args.scaling_snapshot_every);
    }
    if args.commands {
        let report = json!({ "commands": commands(args.commands_max)? });
        return write_report(args, &report);
    }
    let repeats = args.repeats;
    let load_before = loadavg();
    eprintln!("bench: load average before {load_before}; {repeats} repeats after a warm-up");
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());

    let (gflops, gflops_median) = matmul_gflops()?;
    eprintln!(
        "bench: candle 128×128×128 f32 matmul, 1 thread: {gflops:.1} GFLOP/s best, {gflops_median:.1} median"
    );

    let mut table = Table::default();
    const GROUPS: [&str; 7] = [
        "denoiser",
        "classifier",
        "unguided",
        "guided",
        "figures",
        "kernels",
        "likelihood",
    ];
    if let Some(bad) = args.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
        bail!("--only {bad}: the groups are {}", GROUPS.join(", "));
    }
    let wanted = |group: &str| args.only.is_empty() || args.only.iter().any(|g| g == group);
    if GROUPS[..5].iter().any(|g| wanted(g)) {
        let pipeline = pipeline_stages(repeats, &wanted, &mut table)?;
        if wanted("figures") {
            figure_stages(repeats, &pipeline, &mut table)?;
        }
    }

    if wanted("likelihood") {
        likelihood_stage(repeats, &mut table)?;
    }

    // Floors.
    let den = DenoiserConfig::default();
    let clf = ClassifierConfig::default();
    let batch = 128;
    let n = 500;
    let den_fwd = mlp_flops(&den.layer_shapes(), batch);
    let clf_fwd = mlp_flops(&clf.layer_shapes(), batch);
    let den_params = params(&den.layer_shapes()) as f64;
    let clf_params = (params(&clf.layer_shapes()) + clf.num_steps * clf.embed_dim) as f64;
    let floors = [
        (
            "denoiser train",
            3.0 * den_fwd + ADAM_FLOPS_PER_PARAM * den_params,
        ),
        (
            "classifier train",
            3.0 * clf_fwd + ADAM_FLOPS_PER_PARAM * clf_params,
        ),
        ("unguided sampling", mlp_flops(&den.layer_shapes(), n)),
        (
            // ε forward and two backward passes to x (one matmul a layer each: a forward's FLOPs).
            "likelihood ODE",
            3.0 * mlp_flops(&den.layer_shapes(), LIKELIHOOD_POINTS),
        ),
        (
            // ε forward, classifier forward, and its backward to x (same FLOPs as forward).
            "guided sampling",
            mlp_flops(&den.layer_shapes(), n) + 2.0 * mlp_flops(&clf.layer_shapes(), n),
        ),
    ];
    for (name, flops) in floors {
        if let Some(row) = table.rows.iter_mut().find(|r| r.name.starts_with(name)) {
            row.floor_flops = Some(flops);
        }
    }

    let load_after = loadavg();
    println!(
        "\nbench: load average before {load_before}, after {load_after}; RAYON_NUM_THREADS={threads}; \
         matmul rate {gflops:.1} GFLOP/s best of 15, {gflops_median:.1} median (candle 128³ f32, 1 thread)\n"
    );
    table.print(gflops);
    let mut kernel_rows = Vec::new();
    if wanted("kernels") {
        kernels(&mut kernel_rows)?;
    }

    let mut report = json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "load_before": load_before,
            "load_after": load_after,
            "rayon_num_threads": threads,
        },
        "repeats": repeats,
        "matmul_gflops_1thread": {"best": gflops, "median": gflops_median},
        "rows": table.json(gflops),
        "kernels": kernel_rows,
    });

    if args.peers {
        report["peers"] = peers(&table, args.peer_runs)?;
    }
    if args.scaling {
        report["scaling"] = scaling(args.scaling_rounds)?;
        report["commands"] = commands(args.commands_max)?;
    }
    write_report(args, &report)
}

/// Writes the bench's JSON where `--json` says (default target/bench.json).
fn write_report(args: &BenchArgs, report: &Value) -> anyhow::Result<()> {
    let path = args.json.clone().unwrap_or_else(default_json);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    viz::write_atomic(&path, serde_json::to_string_pretty(report)?.as_bytes())?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// `target/bench.json` at the workspace root.
fn default_json() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("target").join("bench.json"))
        .unwrap_or_else(|| PathBuf::from("target/bench.json"))
}

/// The first three fields of /proc/loadavg ("0.52 0.80 1.10"), or "unknown".
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Forward FLOPs of an MLP with `(out, in)` layers on a batch of `n`: Σ 2·n·in·out.
fn mlp_flops(shapes: &[(usize, usize)], n: usize) -> f64 {
    shapes.iter().map(|&(o, i)| 2.0 * (n * i * o) as f64).sum()
}

fn params(shapes: &[(usize, usize)]) -> usize {
    shapes.iter().map(|&(o, i)| o * i + o).sum()
}

/// Seconds a call of `f`, best and median of 15 timings of `per` calls (after one warm-up
/// timing): the best is the machine's speed with the least interference from other load.
fn micro(per: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    let mut times = Vec::new();
    for k in 0..16 {
        let start = Instant::now();
        for _ in 0..per {
            f()?;
        }
        if k > 0 {
            times.push(start.elapsed().as_secs_f64() / per as f64);
        }
    }
    Ok(Stats::of(&times))
}

/// A seeded n × k standard-normal f32 tensor.
fn randn(n: usize, k: usize, seed: u64) -> anyhow::Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    Ok(Tensor::from_vec(
        models::standard_normal(n * k, &mut rng),
        (n, k),
        &Device::Cpu,
    )?)
}

/// Runs `f` with RAYON_NUM_THREADS=1, then restores the variable.
fn one_thread<R>(f: impl FnOnce() -> R) -> R {
    let saved = std::env::var_os("RAYON_NUM_THREADS");
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let r = f();
    match saved {
        Some(v) => std::env::set_var("RAYON_NUM_THREADS", v),
        None => std::env::remove_var("RAYON_NUM_THREADS"),
    }
    r
}

/// GFLOP/s of a candle 128×128×128 f32 matmul on one thread: (best, median) of 15 timings
/// of 200 products. The floors use the best: what this core does when nothing interferes.
fn matmul_gflops() -> anyhow::Result<(f64, f64)> {
    let (a, b) = (randn(128, 128, SEED)?, randn(128, 128, SEED + 1)?);
    let s = one_thread(|| {
        micro(200, || {
            std::hint::black_box(a.matmul(&b)?);
            Ok(())
        })
    })?;
    let flops = 2.0 * 128f64.powi(3);
    Ok((flops / s.min / 1e9, flops / s.median / 1e9))
}

/// The building blocks of a sampling step, 500 samples, one thread: per call, best and median.
fn kernels(table: &mut Vec<Value>) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let (den, _) = init_denoiser(&DenoiserConfig::default(), &mut rng)?;
    let (clf, _) = init_classifier(&ClassifierConfig::default(), &mut rng)?;
    let (den, clf) = (den.detached(), clf.detached());
    let x = randn(500, 2, SEED + 2)?;
    let h = randn(500, 128, SEED + 3)?;
    let w = randn(128, 128, SEED + 4)?;
    let targets = Tensor::from_vec(vec![1u32; 500], 500, &Device::Cpu)?;
    let rows: [(&str, f64, Stats); 3] = one_thread(|| -> anyhow::Result<_> {
        Ok([
            (
                "candle matmul 500×128 · 128×128",
                2.0 * 500.0 * 128.0 * 128.0,
                micro(50, || {
                    std::hint::black_box(h.matmul(&w)?);
                    Ok(())
                })?,
            ),
            (
                "denoiser predict_noise, 500 samples",
                mlp_flops(&DenoiserConfig::default().layer_shapes(), 500),
                micro(50, || {
                    std::hint::black_box(models::NoisePredictor::predict_noise(&den, &x, 250)?);
                    Ok(())
                })?,
            ),
            (
                "classifier grad_log_prob, 500 samples",
                2.0 * mlp_flops(&ClassifierConfig::default().layer_shapes(), 500),
                micro(50, || {
                    std::hint::black_box(models::NoisyClassifier::grad_log_prob(
                        &clf, &x, 250, &targets,
                    )?);
                    Ok(())
                })?,
            ),
        ])
    })?;
    println!("\n| kernel (1 thread) | µs a call, best | median | GFLOP/s at best |");
    println!("|---|---:|---:|---:|");
    for (name, flops, s) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            s.min * 1e6,
            s.median * 1e6,
            flops / s.min / 1e9
        );
        table.push(
            json!({"kernel": name, "flops": flops, "best_us": s.min * 1e6,
            "median_us": s.median * 1e6}),
        );
    }
    Ok(())
}

/// Median, min and max of a list of times.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[m]
        } else {
            0.5 * (v[m - 1] + v[m])
        };
        Self {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

/// One line of the table: a stage timed `repeats` times.
struct Row {
    name: String,
    /// Steps in one run of the stage (for µs a step), or None for a figure.
    steps: Option<usize>,
    seconds: Vec<f64>,
    /// CPU time of the whole process over the same runs (all threads), when the OS reports it.
    cpu: Vec<f64>,
    floor_flops: Option<f64>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(&mut self, name: &str, steps: Option<usize>, times: Vec<Timed>) {
        let seconds: Vec<f64> = times.iter().map(|t| t.wall).collect();
        let cpu: Vec<f64> = times.iter().filter_map(|t| t.cpu).collect();
        let s = Stats::of(&seconds);
        eprintln!(
            "bench: {name}: median {:.4} s (min {:.4}, max {:.4})",
            s.median, s.min, s.max
        );
        self.rows.push(Row {
            name: name.into(),
            steps,
            cpu: if cpu.len() == seconds.len() {
                cpu
            } else {
                Vec::new()
            },
            seconds,
            floor_flops: None,
        });
    }

    fn print(&self, gflops: f64) {
        println!("| stage | steps | µs a step, median (min–max) | floor µs a step | × floor | s a stage, median (min–max) | CPU s, median |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in &self.rows {
            let s = Stats::of(&r.seconds);
            let (per_step, floor, ratio) = match r.steps {
                Some(k) => {
                    let us = |v: f64| v / k as f64 * 1e6;
                    let per = format!("{:.1} ({:.1}–{:.1})", us(s.median), us(s.min), us(s.max));
                    match r.floor_flops {
                        Some(f) => {
                            let floor_us = f / (gflops * 1e9) * 1e6;
                            (
                                per,
                                format!("{floor_us:.1}"),
                                format!("{:.2}", us(s.median) / floor_us),
                            )
                        }
                        None => (per, "—".into(), "—".into()),
                    }
                }
                None => ("—".into(), "—".into(), "—".into()),
            };
            let cpu = if r.cpu.is_empty() {
                "—".to_string()
            } else {
                format!("{:.4}", Stats::of(&r.cpu).median)
            };
            println!(
                "| {} | {} | {per_step} | {floor} | {ratio} | {:.4} ({:.4}–{:.4}) | {cpu} |",
                r.name,
                r.steps.map_or("—".to_string(), |k| k.to_string()),
                s.median,
                s.min,
                s.max
            );
        }
    }

    fn json(&self, gflops: f64) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let s = Stats::of(&r.seconds);
                    let mut v = json!({
                        "stage": r.name,
                        "steps": r.steps,
                        "seconds": {"median": s.median, "min": s.min, "max": s.max, "all": r.seconds},
                    });
                    if !r.cpu.is_empty() {
                        let c = Stats::of(&r.cpu);
                        v["cpu_seconds"] = json!({"median": c.median, "min": c.min, "max": c.max});
                    }
                    if let Some(k) = r.steps {
                        let us = |x: f64| x / k as f64 * 1e6;
                        v["us_per_step"] =
                            json!({"median": us(s.median), "min": us(s.min), "max": us(s.max)});
                        if let Some(f) = r.floor_flops {
                            let floor_us = f / (gflops * 1e9) * 1e6;
                            v["flops_per_step"] = json!(f);
                            v["floor_us_per_step"] = json!(floor_us);
                            v["ratio_to_floor"] = json!(us(s.median) / floor_us);
                        }
                    }
                    v
                })
                .collect(),
        )
    }

    fn median(&self, prefix: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name.starts_with(prefix))
            .map(|r| Stats::of(&r.seconds).median)
    }
}

/// What the figures are drawn from: the pipeline's own outputs.
struct Pipeline {
    recipe: toydiff::Recipe,
    data: toydiff::Prepared,
    denoiser_losses: Vec<f32>,
    classifier_losses: Vec<f32>,
    runs: toydiff::Runs,
}

/// The notebook's recipe and its data, as `cargo xtask train` makes them.
fn notebook_recipe() -> anyhow::Result<(toydiff::Recipe, toydiff::Prepared)> {
    let recipe = toydiff::RecipeParams {
        seed: SEED,
        ..toydiff::RecipeParams::default()
    }
    .check()?;
    let data = toydiff::Prepared::from_recipe(&recipe, 1, &toydiff::Silent)?;
    Ok((recipe, data))
}

fn sampler_config(n: usize, seed: u64) -> SamplerConfig {
    SamplerConfig {
        num_samples: n,
        snapshot_every: 10,
        seed,
        ..SamplerConfig::default()
    }
}

/// The five timed stages of the notebook, interleaved: each repeat trains both nets and
/// samples unguided and guided to each class; the warm-up's nets are the ones sampled.
fn pipeline_stages(
    repeats: usize,
    wanted: &dyn Fn(&str) -> bool,
    table: &mut Table,
) -> anyhow::Result<Pipeline> {
    let (recipe, prepared) = notebook_recipe()?;
    let schedule = recipe.noise_schedule()?;
    let data = prepared.train_standardised();
    let labels = prepared
        .labels_of(false)
        .context("the notebook's data has labels")?;
    let den_cfg = recipe.denoiser_training();
    let clf_cfg = recipe.classifier_training(prepared.meta.n_train);
    let (den_config, clf_config) = (recipe.denoiser_config(), recipe.classifier_config(2));
    let clf_steps = clf_cfg.total_steps(labels.len());
    let train_den = || -> anyhow::Result<((DenoiserNet, Vec<f32>), Timed)> {
        timed(|| {
            Ok(train_denoiser(
                &data,
                2,
                &schedule,
                &den_config,
                &den_cfg,
                &mut |_, _| {},
            )?)
        })
    };
    let train_clf = || -> anyhow::Result<((ClassifierNet, Vec<f32>), Timed)> {
        timed(|| {
            Ok(train_classifier(
                &data,
                2,
                &labels,
                &schedule,
                &clf_config,
                &clf_cfg,
                &mut |_, _| {},
            )?)
        })
    };
    eprintln!("bench: warm-up (training both nets once)");
    let ((denoiser, denoiser_losses), _) = train_den()?;
    let ((classifier, classifier_losses), _) = train_clf()?;
    let sample_once = |guide: Option<u32>, seed: u64| -> anyhow::Result<(SampleRun, Timed)> {
        let config = sampler_config(500, seed);
        timed(|| {
            Ok(match guide {
                None => sample(&denoiser, &schedule, None, &config)?,
                Some(c) => {
                    let g = ClassifierGuidance::one_class(&classifier, c, 30.0, 500)?;
                    sample(&denoiser, &schedule, Some(&g), &config)?
                }
            })
        })
    };
    for guide in [None, Some(0), Some(1)] {
        sample_once(guide, SEED)?;
    }
    let (mut den_s, mut clf_s, mut ung_s, mut gui_s, mut total_s) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut runs = Vec::new();
    let all = ["denoiser", "classifier", "unguided", "guided"]
        .iter()
        .all(|g| wanted(g));
    for r in 0..repeats {
        eprintln!("bench: pipeline repeat {}/{repeats}", r + 1);
        let zero = Timed {
            wall: 0.0,
            cpu: Some(0.0),
        };
        let mut total = zero;
        if wanted("denoiser") {
            let (_, d) = train_den()?;
            den_s.push(d);
            total = total.plus(d);
        }
        if wanted("classifier") {
            let (_, c) = train_clf()?;
            clf_s.push(c);
            total = total.plus(c);
        }
        let (u_run, u) = if wanted("unguided") || wanted("figures") {
            sample_once(None, SEED + 10)?
        } else {
            (SampleRun::empty(2), zero)
        };
        if wanted("unguided") {
            ung_s.push(u);
            total = total.plus(u);
        }
        let mut guided = Vec::new();
        if wanted("guided") || wanted("figures") {
            for c in [0, 1] {
                let (run, g) = sample_once(Some(c), SEED + 11 + c as u64)?;
                if wanted("guided") {
                    gui_s.push(g);
                    total = total.plus(g);
                }
                guided.push(run);
            }
        }
        total_s.push(total);
        runs = std::iter::once(u_run).chain(guided).collect();
    }
    let rows: [(&str, &str, Option<usize>, Vec<Timed>); 4] = [
        (
            "denoiser",
            "denoiser train (batch 128)",
            Some(den_cfg.steps),
            den_s,
        ),
        (
            "classifier",
            "classifier train (batch 128)",
            Some(clf_steps),
            clf_s,
        ),
        (
            "unguided",
            "unguided sampling (500 samples)",
            Some(500),
            ung_s,
        ),
        (
            "guided",
            "guided sampling (500 samples, one class; both classes timed)",
            Some(500),
            gui_s,
        ),
    ];
    for (group, name, steps, times) in rows {
        if wanted(group) {
            table.add(name, steps, times);
        }
    }
    if all {
        table.add(
            "the five stages (denoiser, classifier, unguided, guided ×2)",
            None,
            total_s,
        );
    }
    let mut runs = runs.into_iter();
    let unguided = runs.next().unwrap_or(SampleRun::empty(2));
    let runs = toydiff::Runs {
        unguided,
        guided: runs.enumerate().collect(),
        free_weight: None,
    };
    Ok(Pipeline {
        recipe,
        data: prepared,
        denoiser_losses,
        classifier_losses,
        runs,
    })
}

/// Nanoseconds this process has run on a CPU, all its threads (live and exited) together
/// (`CLOCK_PROCESS_CPUTIME_ID` through the `cpu-time` crate; `None` where it is unavailable).
fn cpu_ns() -> Option<u64> {
    cpu_time::ProcessTime::try_now()
        .ok()
        .map(|t| t.as_duration().as_nanos() as u64)
}

/// Wall and CPU seconds of one run.
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall: f64,
    cpu: Option<f64>,
}

impl Timed {
    fn plus(self, o: Timed) -> Timed {
        Timed {
            wall: self.wall + o.wall,
            cpu: self.cpu.zip(o.cpu).map(|(a, b)| a + b),
        }
    }
}

/// Runs `f` and times it, wall clock and CPU.
fn timed<R>(f: impl FnOnce() -> anyhow::Result<R>) -> anyhow::Result<(R, Timed)> {
    let cpu0 = cpu_ns();
    let start = Instant::now();
    let r = f()?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu0
        .zip(cpu_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 * 1e-9);
    Ok((r, Timed { wall, cpu }))
}

/// Points of the likelihood row (the issue-14 target: 10,000 in under 5 s on two cores).
const LIKELIHOOD_POINTS: usize = 10_000;

/// The probability-flow ODE's log-likelihood of 10,000 fresh points of the notebook's
/// mixture at K = 50 (99 evaluations with their divergence), with the notebook's
/// denoiser trained once here.
fn likelihood_stage(repeats: usize, table: &mut Table) -> anyhow::Result<()> {
    use sampler::likelihood::{ode_log_likelihood, ode_model_evaluations};
    let (recipe, prepared) = notebook_recipe()?;
    let schedule = recipe.noise_schedule()?;
    let (denoiser, _) = train_denoiser(
        &prepared.train_standardised(),
        2,
        &schedule,
        &recipe.denoiser_config(),
        &recipe.denoiser_training(),
        &mut |_, _| {},
    )?;
    let points = toy_data::two_clusters_mixture()
        .sample(LIKELIHOOD_POINTS, &mut StdRng::seed_from_u64(SEED))
        .into_raw_vec_and_offset()
        .0;
    let k = 50;
    let s = time_repeats(repeats, || {
        ode_log_likelihood(&denoiser, &schedule, &points, k)?;
        Ok(())
    })?;
    table.add(
        "likelihood ODE (10,000 points, K = 50, per evaluation)",
        Some(ode_model_evaluations(k)),
        s,
    );
    Ok(())
}

/// Times `f` once to warm up, then `repeats` times.
fn time_repeats(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Timed>> {
    f()?;
    (0..repeats).map(|_| Ok(timed(&mut f)?.1)).collect()
}

/// The forward snapshots and each figure and GIF of the pipeline, rendered and encoded
/// in memory by the library's own figure functions (the ones `cargo xtask all` writes).
fn figure_stages(repeats: usize, p: &Pipeline, table: &mut Table) -> anyhow::Result<()> {
    use toydiff::{forward, gmm, sample, train};
    let schedule = p.recipe.noise_schedule()?;

    // Forward snapshots every 50 steps.
    let mut snapshots = Vec::new();
    let s = time_repeats(repeats, || {
        snapshots = forward::forward_snapshots(&p.data, &schedule, SEED, 50)?;
        Ok(())
    })?;
    table.add("forward snapshots (1000 points, 500 steps)", None, s);

    // Histogram PNG: 1,000 draws of the 1-D mixture with its density.
    let gmm_1d = toy_data::notebook_gmm_1d();
    let draws = gmm_1d
        .sample(1000, &mut StdRng::seed_from_u64(SEED))
        .column(0)
        .to_vec();
    let s = time_repeats(repeats, || {
        std::hint::black_box(gmm::samples_figure(&gmm_1d, draws.clone())?);
        Ok(())
    })?;
    table.add("histogram PNG (900×600)", None, s);

    // Schedule PNG: β, ᾱ, SNR of three schedules, 500 steps each.
    let s = time_repeats(repeats, || {
        std::hint::black_box(forward::schedule_figure(schedule.num_steps())?);
        Ok(())
    })?;
    table.add("schedule PNG (1500×500)", None, s);

    // Loss PNG: both training curves (2,000 and 8,000 points) with moving averages (the
    // exact floors, a Monte Carlo run of the evaluation, are left out).
    let s = time_repeats(repeats, || {
        std::hint::black_box(train::loss_figure(
            &p.denoiser_losses,
            Some(&p.classifier_losses),
            None,
            None,
        )?);
        Ok(())
    })?;
    table.add("loss PNG (1400×560)", None, s);

    // Forward GIF: 11 frames, 640×600.
    let s = time_repeats(repeats, || {
        std::hint::black_box(forward::forward_gif(&p.data, &snapshots)?);
        Ok(())
    })?;
    table.add(
        &format!("forward GIF ({} frames, 640×600)", snapshots.len()),
        None,
        s,
    );

    // Guided vs unguided GIF: 51 frames of two panels, 1050×600.
    let n_frames = p.runs.unguided.snapshots.len();
    // The runs above are DDPM's, over every step.
    let plan = toydiff::SamplerChoice::default().plan(p.recipe.num_steps)?;
    let s = time_repeats(repeats, || {
        let frames = sample::frames(&p.data, &p.runs, &plan);
        std::hint::black_box(sample::sampling_gif(&frames)?);
        Ok(())
    })?;
    table.add(
        &format!("guided/unguided GIF ({n_frames} frames, 1050×600)"),
        None,
        s,
    );
    Ok(())
}

/// `--peers`: the PyTorch and JAX references, run now, and their ratios to ours.
fn peers(table: &Table, runs: usize) -> anyhow::Result<Value> {
    // The project's own scripts, committed beside the workspace (bench/peers).
    let peers_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/peers");
    let venv = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/peers/bin/python"))
        .filter(|p| p.is_file());
    let candidates: Vec<PathBuf> = venv.into_iter().chain([PathBuf::from("python3")]).collect();
    let python = candidates.iter().find(|py| {
        Command::new(py)
            .args(["-c", "import torch, jax"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let why_not = if !peers_dir.join("torch_ref.py").is_file() {
        Some(format!(
            "{} has no torch_ref.py / jax_ref.py",
            peers_dir.display()
        ))
    } else if python.is_none() {
        Some(format!(
            "no Python with both torch and jax (tried {}); see bench/peers/README.md to install them",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        None
    };
    if let Some(why) = why_not {
        println!("\npeers: skipped: {why}");
        return Ok(json!({"skipped": why}));
    }
    let python = python.expect("checked above");
    let run_peer = |script: &str, extra: &[&str]| -> anyhow::Result<Value> {
        eprintln!("bench: running {script} {}", extra.join(" "));
        let out = Command::new(python)
            .arg(peers_dir.join(script))
            .args(extra)
            .output()
            .with_context(|| format!("running {script}"))?;
        if !out.status.success() {
            bail!(
                "{script} failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| format!("parsing the JSON of {script}"))
    };
    let timed = |f: &dyn Fn() -> anyhow::Result<Value>| -> anyhow::Result<(Value, f64)> {
        let start = Instant::now();
        let v = f()?;
        Ok((v, start.elapsed().as_secs_f64()))
    };
    // Each script `runs` times, alternating; every stage time and the wall is the median.
    let (mut torch_runs, mut jax_runs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        torch_runs.push(timed(&|| run_peer("torch_ref.py", &["--threads", "1"]))?);
        jax_runs.push(timed(&|| run_peer("jax_ref.py", &[]))?);
    }
    let (torch, torch_wall) = median_run(&torch_runs);
    let (jax, jax_wall) = median_run(&jax_runs);
    let ours_wall = all_wall(3)?;
    let get = |v: &Value, k: &str| v["timings_s"][k].as_f64();
    let avg = |v: &Value| Some(0.5 * (get(v, "sample_guided_0")? + get(v, "sample_guided_1")?));
    let five = |v: &Value| {
        Some(
            get(v, "denoiser_train")?
                + get(v, "classifier_train")?
                + get(v, "sample_unguided")?
                + get(v, "sample_guided_0")?
                + get(v, "sample_guided_1")?,
        )
    };
    let stages: [(&str, &str, Option<f64>, Option<f64>); 6] = [
        (
            "denoiser train",
            "denoiser train",
            get(&torch, "denoiser_train"),
            get(&jax, "denoiser_train"),
        ),
        (
            "classifier train",
            "classifier train",
            get(&torch, "classifier_train"),
            get(&jax, "classifier_train"),
        ),
        (
            "unguided sampling",
            "unguided sampling",
            get(&torch, "sample_unguided"),
            get(&jax, "sample_unguided"),
        ),
        (
            "guided sampling, one class",
            "guided sampling",
            avg(&torch),
            avg(&jax),
        ),
        (
            "the five stages",
            "the five stages",
            five(&torch),
            five(&jax),
        ),
        (
            "forward snapshots",
            "forward snapshots",
            get(&torch, "forward_snapshots"),
            None,
        ),
    ];
    println!("\n| stage | ours (s, median) | PyTorch 1 thread (s) | PyTorch / ours | JAX warm (s) | JAX / ours |");
    println!("|---|---:|---:|---:|---:|---:|");
    let f = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{x:.4}"));
    let mut rows = Vec::new();
    for (label, prefix, t, j) in stages {
        let ours = table.median(prefix);
        let ratio = |p: Option<f64>| match (p, ours) {
            (Some(p), Some(o)) if o > 0.0 => Some(p / o),
            _ => None,
        };
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            f(ours),
            f(t),
            ratio(t).map_or("—".into(), |r| format!("{r:.2}×")),
            f(j),
            ratio(j).map_or("—".into(), |r| format!("{r:.2}×"))
        );
        rows.push(json!({"stage": label, "ours": ours, "torch": t, "jax": j,
            "torch_over_ours": ratio(t), "jax_over_ours": ratio(j)}));
    }
    let ratio = |p: f64| p / ours_wall;
    println!(
        "| whole process wall: `cargo xtask all` (every figure and GIF) against each script | {ours_wall:.4} | {torch_wall:.4} | {:.2}× | {jax_wall:.4} | {:.2}× |",
        ratio(torch_wall),
        ratio(jax_wall)
    );
    println!(
        "\n(peers: medians of {runs} runs each; JAX's stage times are its warm second calls, its process runs each stage twice and compiles; ours: median of 3 child runs of `xtask all`)"
    );
    rows.push(
        json!({"stage": "whole process wall", "ours": ours_wall, "torch": torch_wall,
        "jax": jax_wall, "torch_over_ours": ratio(torch_wall), "jax_over_ours": ratio(jax_wall)}),
    );
    Ok(json!({"rows": rows, "torch": torch, "jax": jax}))
}

/// A peer's runs as one: its JSON with every `timings_s` entry replaced by the median
/// over the runs (and the runs kept under `runs`), and the median process wall.
fn median_run(runs: &[(Value, f64)]) -> (Value, f64) {
    let mut merged = runs[0].0.clone();
    if let Some(keys) = runs[0].0["timings_s"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
    {
        for key in keys {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|(v, _)| v["timings_s"][&key].as_f64())
                .collect();
            if !values.is_empty() {
                merged["timings_s"][&key] = json!(Stats::of(&values).median);
            }
        }
    }
    merged["runs"] = json!(runs
        .iter()
        .map(|(v, wall)| json!({"timings_s": v["timings_s"], "wall_s": wall}))
        .collect::<Vec<_>>());
    let walls: Vec<f64> = runs.iter().map(|(_, w)| *w).collect();
    (merged, Stats::of(&walls).median)
}

/// Median wall seconds of `runs` child runs of `xtask all` into a scratch folder (the
/// binary already built, as a user runs it the second time).
fn all_wall(runs: usize) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let out = std::env::temp_dir().join(format!("toydiff-bench-all-{}", std::process::id()));
    let mut walls = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new(&exe)
            .args(["all", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .context("running xtask all")?;
        if !status.success() {
            bail!("xtask all --out {} failed ({status})", out.display());
        }
        walls.push(start.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(Stats::of(&walls).median)
}

/// Peak resident memory of this process (VmHWM), in kB.
fn vm_hwm_kb() -> Option<u64> {
    vm_hwm_in_kb("/proc/self/status")
}

/// `--scaling-one N` (the child of `--scaling`): guided runs of N samples × 500 steps with
/// freshly initialised notebook-shaped nets (the median of 5 after a warm-up up to 5,000
/// samples, one run above); prints one JSON line.
fn scaling_one(n: usize, steps: usize, snapshot_every: usize) -> anyhow::Result<()> {
    let schedule = NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, steps)?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let den_config = DenoiserConfig {
        num_steps: steps,
        ..DenoiserConfig::default()
    };
    let clf_config = ClassifierConfig {
        num_steps: steps,
        ..ClassifierConfig::default()
    };
    let (den, _) = init_denoiser(&den_config, &mut rng)?;
    let (clf, _) = init_classifier(&clf_config, &mut rng)?;
    let (den, clf) = (den.detached(), clf.detached());
    let before = vm_hwm_kb();
    let config = SamplerConfig {
        snapshot_every,
        ..sampler_config(n, SEED)
    };
    let g = ClassifierGuidance::one_class(&clf, 1, 30.0, n)?;
    // 500 samples: a warm-up and the median of 15 runs (a run is 0.1 s, and this size is
    // the reference of the scaling target); up to 5,000: 5 runs; larger (seconds each): one.
    let repeats = match n {
        0..=500 => 15,
        501..=5_000 => 5,
        _ => 1,
    };
    if repeats > 1 {
        sample(&den, &schedule, Some(&g), &config)?;
    }
    let mut times = Vec::new();
    let mut run = None;
    for _ in 0..repeats {
        let start = Instant::now();
        run = Some(sample(&den, &schedule, Some(&g), &config)?);
        times.push(start.elapsed().as_secs_f64());
    }
    let run = run.expect("at least one run");
    let seconds = Stats::of(&times).median;
    let after = vm_hwm_kb();
    let snapshot_kb = run.snapshots.len() * n * 2 * 4 / 1024;
    println!(
        "{}",
        json!({
            "n": n,
            "steps": schedule.num_steps(),
            "seconds": seconds,
            "runs": repeats,
            "vm_hwm_before_kb": before,
            "vm_hwm_after_kb": after,
            "snapshots_kb": snapshot_kb,
            "snapshots": run.snapshots.len(),
        })
    );
    Ok(())
}

/// Sizes and step counts of the deterministic-sampler table (unguided Heun, one thread).
const HEUN_SIZES: [usize; 3] = [500, 5_000, 50_000];
const HEUN_STEPS: [usize; 2] = [10, 50];

/// `--scaling-one N --scaling-heun-steps K`: unguided Heun over K of the 500 steps with
/// freshly initialised notebook-shaped nets (median of 5 after a warm-up, one run from
/// 50,000 samples); prints one JSON line.
fn scaling_one_heun(n: usize, k: usize) -> anyhow::Result<()> {
    let schedule = NoiseSchedule::notebook();
    let mut rng = StdRng::seed_from_u64(SEED);
    let (den, _) = init_denoiser(&DenoiserConfig::default(), &mut rng)?;
    let den = den.detached();
    let config = SamplerConfig {
        snapshot_every: usize::MAX,
        ..sampler_config(n, SEED)
    };
    let steps = sampler::timesteps(schedule.num_steps(), k)?;
    let heun = sampler::Solver::Heun;
    let repeats = if n >= 50_000 { 1 } else { 5 };
    if repeats > 1 {
        sampler::sample_solver(&den, &schedule, None, heun, &steps, &config)?;
    }
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        sampler::sample_solver(&den, &schedule, None, heun, &steps, &config)?;
        times.push(start.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        json!({"n": n, "steps": k, "evaluations": heun.model_evaluations(k),
        "seconds": Stats::of(&times).median, "runs": repeats})
    );
    Ok(())
}

/// The deterministic-sampler rows of `--scaling`: unguided Heun at every size of
/// [`HEUN_SIZES`] and step count of [`HEUN_STEPS`] on one thread, µs a sample-evaluation
/// (constant when the cost is linear in samples × evaluations).
fn scaling_heun(exe: &Path) -> anyhow::Result<Vec<Value>> {
    println!(
        "\n| Heun, unguided: samples | K | evaluations | s | µs a sample-evaluation |\n|---:|---:|---:|---:|---:|"
    );
    let mut rows = Vec::new();
    for n in HEUN_SIZES {
        for k in HEUN_STEPS {
            eprintln!("bench: Heun scaling: {n} samples, K = {k}");
            let mut child = Command::new(exe);
            child
                .args(["bench", "--scaling-one", &n.to_string()])
                .args(["--scaling-heun-steps", &k.to_string()])
                .env("RAYON_NUM_THREADS", "1");
            let v = scaling_child(child)?;
            let evaluations = v["evaluations"].as_f64().unwrap_or(f64::NAN);
            let per = seconds(&v) / (n as f64 * evaluations) * 1e6;
            println!(
                "| {n} | {k} | {evaluations} | {:.3} | {per:.4} |",
                seconds(&v)
            );
            rows.push(json!({"n": n, "steps": k, "evaluations": evaluations,
                "seconds": v["seconds"], "us_per_sample_evaluation": per}));
        }
    }
    Ok(rows)
}

/// Runs one `xtask bench --scaling-one …` child and returns the JSON line it prints.
fn scaling_child(mut child: Command) -> anyhow::Result<Value> {
    let out = child.output().context("running the scaling child")?;
    if !out.status.success() {
        let args: Vec<String> = child
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        bail!(
            "scaling child ({}) failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .with_context(|| format!("parsing the scaling child's output '{line}'"))
}

/// A scaling child's sampling time in seconds (NaN if missing).
fn seconds(run: &Value) -> f64 {
    run["seconds"].as_f64().unwrap_or(f64::NAN)
}

/// How much a scaling child's peak resident memory grew while it sampled, in MB.
fn rss_growth_mb(run: &Value) -> f64 {
    match (
        run["vm_hwm_after_kb"].as_f64(),
        run["vm_hwm_before_kb"].as_f64(),
    ) {
        (Some(a), Some(b)) => (a - b) / 1024.0,
        _ => f64::NAN,
    }
}

/// `--scaling`: guided sampling at growing sizes, one child process per size and thread
/// count, `rounds` times over; the table holds the medians over rounds, and the target
/// (per sample-step, 500 samples on one thread against 100,000 on every core) is the
/// median of the ratios taken within each round. Then memory against T, and the cost of
/// a deterministic sampler (Heun) against samples × evaluations.
fn scaling(rounds: usize) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let configs: Vec<(usize, usize)> = SCALING_SIZES
        .iter()
        .flat_map(|&n| {
            let threads: &[usize] = if n >= SCALING_THREADS_FROM {
                &[1, 2]
            } else {
                &[1]
            };
            threads.iter().map(move |&t| (n, t))
        })
        .collect();
    // runs[config] = one JSON object per round.
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); configs.len()];
    for round in 1..=rounds {
        for (i, &(n, threads)) in configs.iter().enumerate() {
            eprintln!("bench: scaling round {round}/{rounds}: {n} samples, {threads} thread(s)");
            let mut child = Command::new(&exe);
            child
                .args(["bench", "--scaling-one", &n.to_string()])
                .env("RAYON_NUM_THREADS", threads.to_string());
            runs[i].push(scaling_child(child)?);
        }
    }
    // µs a sample-step of a run of n samples × 500 steps taking `seconds`.
    let per_step = |seconds: f64, n: usize| seconds / (n as f64 * 500.0) * 1e6;
    println!(
        "\n| samples | threads | s, median of {rounds} (min–max) | µs a sample-step | peak RSS growth (MB) | snapshots (MB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (&(n, threads), vs) in configs.iter().zip(&runs) {
        let secs: Vec<f64> = vs.iter().map(seconds).collect();
        let st = Stats::of(&secs);
        let growth: Vec<f64> = vs.iter().map(rss_growth_mb).collect();
        let growth = Stats::of(&growth).median;
        let snaps = vs[0]["snapshots_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0;
        let per = per_step(st.median, n);
        println!(
            "| {n} | {threads} | {:.3} ({:.3}–{:.3}) | {per:.4} | {growth:.1} | {snaps:.1} |",
            st.median, st.min, st.max
        );
        rows.push(
            json!({"n": n, "threads": threads, "seconds": secs, "seconds_median": st.median,
            "us_per_sample_step": per, "peak_rss_growth_mb": growth, "snapshots_mb": snaps}),
        );
    }
    // The target: 500 samples (one thread, as the default runs them) against 100,000
    // (two threads, as the default runs them on this two-core machine), round by round.
    let find = |n: usize, t: usize| configs.iter().position(|&c| c == (n, t));
    let mut target = json!(null);
    if let (Some(small), Some(large)) = (find(500, 1), find(100_000, 2)) {
        let ratios: Vec<f64> = runs[small]
            .iter()
            .zip(&runs[large])
            .map(|(a, b)| per_step(seconds(a), 500) / per_step(seconds(b), 100_000))
            .collect();
        let st = Stats::of(&ratios);
        println!(
            "\n100,000 samples (2 threads) against 500 (1 thread), per sample-step, round by round: \
             {} (median {:.2}×; target ≥ 2×)",
            ratios.iter().map(|r| format!("{r:.2}×")).collect::<Vec<_>>().join(", "),
            st.median
        );
        target = json!({"ratios": ratios, "median": st.median});
    }
    // Memory against T: the same samples, T = 250, 500, 1,000, keeping only x_T and x_0.
    println!(
        "\n| samples | T | snapshots kept | s | peak RSS growth (MB) |\n|---:|---:|---:|---:|---:|"
    );
    let mut by_t = Vec::new();
    for steps in MEMORY_STEPS {
        eprintln!("bench: memory against T: {MEMORY_SAMPLES} samples, T = {steps}");
        let mut child = Command::new(&exe);
        child
            .args(["bench", "--scaling-one", &MEMORY_SAMPLES.to_string()])
            .args(["--scaling-steps", &steps.to_string()])
            .args(["--scaling-snapshot-every", &steps.to_string()]);
        let v = scaling_child(child)?;
        let growth = rss_growth_mb(&v);
        println!(
            "| {MEMORY_SAMPLES} | {steps} | {} | {:.3} | {growth:.1} |",
            v["snapshots"],
            seconds(&v)
        );
        by_t.push(
            json!({"n": MEMORY_SAMPLES, "steps": steps, "seconds": v["seconds"],
            "snapshots": v["snapshots"], "peak_rss_growth_mb": growth}),
        );
    }
    let heun = scaling_heun(&exe)?;
    Ok(
        json!({"rows": rows, "rounds": rounds, "ratio_500_over_100000": target,
        "memory_against_steps": by_t, "heun_unguided": heun}),
    )
}

/// Sample counts of the whole-`sample` rows of `--commands`.
const COMMAND_SAMPLES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// CSV rows of the `train` + `sample` rows of `--commands` (1,000: the notebook's size, the reference of the target).
const COMMAND_ROWS: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// Peak resident memory (VmHWM) of process `pid` so far, in kB.
fn vm_hwm_of_kb(pid: u32) -> Option<u64> {
    vm_hwm_in_kb(&format!("/proc/{pid}/status"))
}

/// The VmHWM line of a `/proc/…/status` file, in kB.
fn vm_hwm_in_kb(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// One whole `xtask` command as a child process: its wall time and peak resident memory
/// (VmHWM, read every 10 ms while it runs: the last reading before it exits).
fn timed_command(exe: &Path, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting xtask {}", args.join(" ")))?;
    let pid = child.id();
    let mut peak_kb = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        peak_kb = peak_kb.max(vm_hwm_of_kb(pid).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            e.read_to_string(&mut err).ok();
        }
        bail!("xtask {} failed: {}", args.join(" "), err.trim());
    }
    Ok((wall, peak_kb as f64 / 1024.0))
}

/// The stage times a `sample` run wrote to `timings.json` in `out`: (sampling alone, the
/// sum of its runs; evaluation; outputs).
fn sample_timings(out: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let path = out.join("timings.json");
    let t: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let map = t.as_object().context("timings.json is not an object")?;
    let sampling = map
        .iter()
        .filter(|(k, _)| k.starts_with("sample_unguided") || k.starts_with("sample_guided"))
        .filter_map(|(_, v)| v.as_f64())
        .sum();
    let get = |k: &str| map.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Ok((sampling, get("evaluate"), get("sample_outputs")))
}

/// A labelled CSV of `rows` rows (`x,y,label`): the notebook's two clusters, class a
/// around (−2, −2), b around (2, 2), σ = 0.5, seeded.
fn write_rows_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    use rand::Rng;
    use rand_distr::StandardNormal;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut text = String::with_capacity(rows * 24 + 16);
    text.push_str("x,y,label\n");
    for _ in 0..rows {
        let b = rng.random_bool(0.5);
        let m = if b { 2.0 } else { -2.0 };
        let x: f64 = m + 0.5 * rng.sample::<f64, _>(StandardNormal);
        let y: f64 = m + 0.5 * rng.sample::<f64, _>(StandardNormal);
        text.push_str(&format!("{x:.5},{y:.5},{}\n", if b { "b" } else { "a" }));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `--commands`: the whole `xtask sample` on the notebook's checkpoints (trained here
/// first, with the defaults) at [`COMMAND_SAMPLES`] samples, and `train` + `sample` (every
/// default) on a CSV of [`COMMAND_ROWS`] rows, each a child process; sizes above `max`
/// are skipped. Prints two tables and returns their rows.
fn commands(max: usize) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let dir = std::env::temp_dir().join(format!("toydiff-bench-commands-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    eprintln!(
        "bench: commands: training the notebook's checkpoints in {}",
        dir.display()
    );
    let notebook = path("notebook");
    timed_command(&exe, &["train", "--out", &notebook])?;
    let checkpoints = path("notebook/checkpoints");
    println!(
        "\n| `xtask sample --n N` (notebook checkpoints, DDPM 500 steps, both classes) | wall s | sampling alone s | evaluate s | outputs s | wall / sampling | peak memory (MB) |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut samples = Vec::new();
    for n in COMMAND_SAMPLES.into_iter().filter(|&n| n <= max) {
        eprintln!("bench: commands: xtask sample --n {n}");
        let out = path(&format!("sample-{n}"));
        let (wall, peak) = timed_command(
            &exe,
            &[
                "sample",
                "--checkpoints",
                &checkpoints,
                "--n",
                &n.to_string(),
                "--out",
                &out,
            ],
        )?;
        let (sampling, evaluate, outputs) = sample_timings(Path::new(&out))?;
        println!(
            "| {n} | {wall:.1} | {sampling:.1} | {evaluate:.2} | {outputs:.2} | {:.3} | {peak:.0} |",
            wall / sampling
        );
        samples.push(
            json!({"n": n, "wall_s": wall, "sampling_s": sampling, "evaluate_s": evaluate,
            "outputs_s": outputs, "peak_rss_mb": peak}),
        );
        std::fs::remove_dir_all(&out).ok();
    }
    println!(
        "\n| CSV rows | `train` wall s | its peak memory (MB) | `sample` wall s (500 samples) | its sampling alone s | its evaluate s | its peak memory (MB) |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut rows = Vec::new();
    for r in COMMAND_ROWS.into_iter().filter(|&r| r <= max) {
        eprintln!("bench: commands: train + sample on {r} rows");
        let csv = path(&format!("rows-{r}.csv"));
        write_rows_csv(Path::new(&csv), r)?;
        let out = path(&format!("rows-{r}"));
        let (train_wall, train_peak) = timed_command(
            &exe,
            &[
                "train",
                "--data",
                &csv,
                "--columns",
                "x,y",
                "--label",
                "label",
                "--out",
                &out,
            ],
        )?;
        let ckpt = path(&format!("rows-{r}/checkpoints"));
        let (wall, peak) = timed_command(&exe, &["sample", "--checkpoints", &ckpt, "--out", &out])?;
        let (sampling, evaluate, _) = sample_timings(Path::new(&out))?;
        println!("| {r} | {train_wall:.1} | {train_peak:.0} | {wall:.2} | {sampling:.2} | {evaluate:.2} | {peak:.0} |");
        rows.push(json!({"rows": r, "train_wall_s": train_wall, "train_peak_rss_mb": train_peak,
            "sample_wall_s": wall, "sampling_s": sampling, "evaluate_s": evaluate, "sample_peak_rss_mb": peak}));
        std::fs::remove_dir_all(&out).ok();
        std::fs::remove_file(&csv).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(json!({"sample": samples, "train_and_sample": rows}))
}
