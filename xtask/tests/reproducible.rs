//! Same command, same bytes: every stage run twice with one seed writes byte-identical
//! CSV, JSON, PNG, GIF and safetensors files; `timings.json` (wall times) is the only
//! file allowed to differ, and in `likelihood.json` only each model's `seconds`. A small configuration of each stage keeps this fast (`all`
//! itself runs the same stage functions with the notebook's longer settings).

use std::path::Path;

use crate::common::{names, run_env, snapshot, Scratch};

/// One command line: `args`, then `--out OUT --seed SEED`.
fn stage(args: &[&str], out: &Path, seed: &str) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--out", out.to_str().expect("utf-8 path"), "--seed", seed].map(String::from));
    v
}

/// The stages of `all` on the notebook's data, training and sampling shortened.
fn notebook_stages(out: &Path, seed: &str) -> Vec<Vec<String>> {
    let stage = |args: &[&str]| stage(args, out, seed);
    vec![
        stage(&["gmm"]),
        stage(&["forward"]),
        stage(&["train", "--steps", "200", "--epochs", "20"]),
        stage(&["sample", "--n", "100"]),
        stage(&["likelihood", "--n", "200", "--grid", "8", "--max-k", "2"]),
        stage(&["guidance", "--n", "10"]),
    ]
}

/// A built-in set other than the notebook's: standardised data, a held-out split, a
/// sinusoidal time input and nearest-neighbour class votes take other code paths.
fn moons_stages(out: &Path, seed: &str) -> Vec<Vec<String>> {
    let stage = |args: &[&str]| stage(args, out, seed);
    vec![
        stage(&["forward", "--dataset", "moons", "--every", "100"]),
        stage(&[
            "train",
            "--dataset",
            "moons",
            "--steps",
            "100",
            "--epochs",
            "5",
        ]),
        stage(&["sample", "--n", "50", "--snapshot-every", "50"]),
    ]
}

fn run_all(stages: &[Vec<String>], env: &[(&str, &str)]) {
    for args in stages {
        run_env(args, env).expect_success(&args.join(" "));
    }
}

/// Asserts that two output folders hold the same files with the same bytes, except
/// `timings.json`; returns how many files were compared.
fn assert_same_bytes(a: &Path, b: &Path, what: &str) -> usize {
    let (ta, tb) = (snapshot(a), snapshot(b));
    assert_eq!(names(&ta), names(&tb), "{what}: different files");
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    let differing: Vec<&String> = ta
        .iter()
        .filter(|(name, bytes)| match name.as_str() {
            "timings.json" => false,
            "likelihood.json" => without_seconds(&tb[*name]) != without_seconds(bytes),
            _ => tb[*name] != **bytes,
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: these files differ between two runs with one seed: {differing:?}"
    );
    ta.values().filter(|v| v.is_some()).count()
}

/// `likelihood.json` with every model's wall `seconds` set to 0.
fn without_seconds(bytes: &Option<Vec<u8>>) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes.as_ref()?).ok()?;
    for m in v["models"].as_array_mut()? {
        m["seconds"] = serde_json::Value::from(0.0);
    }
    Some(v)
}

/// The files the comparison must cover, so that it cannot pass on an empty folder.
fn assert_has_every_kind(dir: &Path, expected: &[&str]) {
    for name in expected {
        let path = dir.join(name);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|_| panic!("{} missing", path.display()))
            .len();
        assert!(len > 0, "{} is empty", path.display());
    }
}

#[test]
fn notebook_stages_give_identical_bytes_across_runs_and_thread_counts() {
    let scratch = Scratch::new("repro-notebook");
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    // Two runs, one on one thread (the tests' default for the binary) and one on two: the
    // same bytes (gemm splits its output between threads, never a sum). Two runs on one
    // thread are compared too, by `all_side_by_side_writes_what_the_stages_write_in_turn`
    // (two processes, one seed).
    run_all(&notebook_stages(&a, "7"), &[]);
    run_all(&notebook_stages(&b, "7"), &[("RAYON_NUM_THREADS", "2")]);
    assert_has_every_kind(
        &a,
        &[
            "gmm_samples.png",
            "flexibility.png",
            "gmm_comparison.json",
            "gmm_comparison.md",
            "schedule.png",
            "forward_diffusion.gif",
            "checkpoints/denoiser.safetensors",
            "checkpoints/classifier.safetensors",
            "checkpoints/data.json",
            "checkpoints/data.csv",
            "training_loss.png",
            "classifier_accuracy.png",
            "metrics.json",
            "guided_vs_unguided_generation.gif",
            "samples_final.png",
            "samples/unguided.csv",
            "samples/guided_0.csv",
            "samples/guided_1.csv",
            "likelihood.json",
            "likelihood.md",
            "density.png",
            "score_field.png",
            "timings.json",
            "checkpoints/conditional_denoiser.safetensors",
            "guidance.json",
            "guidance.png",
            "guided_free_vs_classifier.png",
        ],
    );
    let n = assert_same_bytes(&a, &b, "RAYON_NUM_THREADS=1 against 2");
    assert!(n >= 23, "only {n} files compared");
}

#[test]
fn builtin_set_stages_give_identical_bytes() {
    let scratch = Scratch::new("repro-moons");
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    run_all(&moons_stages(&a, "11"), &[]);
    run_all(&moons_stages(&b, "11"), &[]);
    assert_has_every_kind(
        &a,
        &[
            "forward_diffusion.gif",
            "checkpoints/denoiser.safetensors",
            "checkpoints/classifier.safetensors",
            "checkpoints/data.csv",
            "metrics.json",
            "samples/unguided.csv",
            "guided_vs_unguided_generation.gif",
        ],
    );
    assert_same_bytes(&a, &b, "two moons runs");
}

/// The deterministic samplers (and DDIM with noise) write the same bytes whatever the
/// thread count, on the threaded path of the networks (2,048 rows, where it starts).
#[test]
fn solvers_give_identical_bytes_across_thread_counts() {
    let scratch = Scratch::new("repro-solvers");
    let ckpt = scratch.join("train");
    let c = ckpt.to_str().unwrap();
    run_env(
        &["train", "--out", c, "--steps", "50", "--epochs", "2"],
        &[],
    )
    .expect_success("train");
    let ckpt = ckpt.join("checkpoints");
    for (sampler, extra) in [
        ("heun", &[][..]),
        ("dpm-solver", &[][..]),
        ("ddim", &["--eta", "0.5"][..]),
    ] {
        let run = |dir: &Path, threads: &str| {
            let mut args = vec![
                "sample",
                "--checkpoints",
                ckpt.to_str().unwrap(),
                "--out",
                dir.to_str().unwrap(),
                "--sampler",
                sampler,
                "--steps",
                "8",
                // 2,048 rows: the smallest batch that takes the threaded path (pieces
                // shared among the cores); one guided class keeps the metrics' O(n²)
                // noise floors to two runs.
                "--n",
                "2048",
                "--classes",
                "0",
                "--snapshot-every",
                "4",
            ];
            args.extend_from_slice(extra);
            run_env(&args, &[("RAYON_NUM_THREADS", threads)]).expect_success(sampler)
        };
        let (a, b) = (
            scratch.join(&format!("{sampler}-1")),
            scratch.join(&format!("{sampler}-2")),
        );
        let printed = run(&a, "1");
        run(&b, "2");
        assert_has_every_kind(
            &a,
            &[
                "metrics.json",
                "samples/unguided.csv",
                "samples/guided_0.csv",
                "guided_vs_unguided_generation.gif",
            ],
        );
        let n = assert_same_bytes(&a, &b, &format!("{sampler}: RAYON_NUM_THREADS=1 against 2"));
        assert!(n >= 6, "only {n} files compared");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.join("metrics.json")).unwrap()).unwrap();
        let settings = &metrics["sampling"]["settings"];
        assert_eq!(settings["sampler"], sampler, "{settings}");
        // 2,048 samples are under the evaluation's 5,000: every sample and as many fresh
        // reference points behind the energy distance, its floor at 2,048 from 10 pairs
        // (the pair budget), the precision over every sample.
        let unguided = &metrics["sampling"]["unguided"];
        assert_eq!(unguided["energy_distance_sample_size"], 2048, "{unguided}");
        assert_eq!(
            unguided["energy_distance_reference_size"], 2048,
            "{unguided}"
        );
        let floor = &unguided["energy_noise_floor"];
        assert_eq!(
            (&floor["n"], &floor["repeats"]),
            (&2048.into(), &10.into()),
            "{floor}"
        );
        assert!(floor["std_error"].as_f64().unwrap() > 0.0, "{floor}");
        let guided = &metrics["sampling"]["guided_0"];
        assert_eq!(guided["precision_sample_size"], 2048, "{guided}");
        assert_eq!(settings["steps"], 8, "{settings}");
        // Heun evaluates twice a step but once on the last: 2K − 1.
        let evaluations = if sampler == "heun" { 15 } else { 8 };
        assert_eq!(settings["model_evaluations"], evaluations, "{settings}");
        assert!(
            printed
                .stdout
                .contains(&format!("{evaluations} model evaluations")),
            "{}",
            printed.stdout
        );
    }
}

/// The comparisons above are only meaningful if the bytes do depend on the seed.
#[test]
fn another_seed_gives_other_bytes() {
    let scratch = Scratch::new("repro-seed");
    let train = |dir: &Path, seed: &str| {
        let d = dir.to_str().unwrap();
        run_env(
            &[
                "train", "--out", d, "--seed", seed, "--steps", "50", "--epochs", "2",
            ],
            &[],
        )
        .expect_success("train");
    };
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    train(&a, "7");
    train(&b, "8");
    for name in [
        "checkpoints/denoiser.safetensors",
        "checkpoints/classifier.safetensors",
        "metrics.json",
        "training_loss.png",
    ] {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x != y, "{name} is the same for seeds 7 and 8");
    }
}

/// `all` trains on a second thread beside the `gmm` and `forward` stages (and the
/// classifier beside the denoiser): it must write the bytes the stages write one after
/// another, and print their reports in the notebook's order.
#[test]
fn all_side_by_side_writes_what_the_stages_write_in_turn() {
    let scratch = Scratch::new("repro-all");
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    let short = ["--steps", "200", "--epochs", "20"];
    let all = run_env(&stage(&[&["all"][..], &short].concat(), &a, "3"), &[]).expect_success("all");
    run_all(
        &[
            stage(&["gmm"], &b, "3"),
            stage(&["forward"], &b, "3"),
            stage(&[&["train"][..], &short].concat(), &b, "3"),
            stage(&["sample"], &b, "3"),
            stage(
                &["likelihood", "--n", "500", "--grid", "40", "--max-k", "4"],
                &b,
                "3",
            ),
            stage(&["guidance", "--n", "100"], &b, "3"),
        ],
        &[],
    );
    let n = assert_same_bytes(&a, &b, "all against its stages in turn");
    assert!(n >= 23, "only {n} files compared");
    // Each heading once, in order, and train's own lines under its heading.
    let at = |text: &str| {
        all.stdout
            .find(text)
            .unwrap_or_else(|| panic!("'{text}' missing from:\n{}", all.stdout))
    };
    let order = [
        "== gmm",
        "wrote",
        "== forward",
        "== train",
        "data: two-clusters",
        "trained: denoiser 200 steps",
        "== sample+evaluate",
        "== likelihood",
        "== guidance",
        "== summary",
    ];
    let positions: Vec<usize> = order.iter().map(|t| at(t)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order ({order:?} at {positions:?}):\n{}",
        all.stdout
    );
}
