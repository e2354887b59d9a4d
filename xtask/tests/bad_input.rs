//! The bad-input battery: the real binary on bad numbers, unknown names, malformed CSV
//! files, unwritable output paths and broken checkpoints, for every sub-command. Each
//! must exit with code 2 and exactly one line on stderr that names the bad value, with
//! no panic or backtrace, and must leave every watched path (the output folder, the
//! checkpoints, the input) exactly as it was: no file written, changed or created, and
//! a missing output folder still missing.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{run, snapshot, Scratch};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Runs `args` and checks everything a rejected input must satisfy. `mentions` are
/// pieces of text the one line must contain (the bad value, what is allowed).
#[track_caller]
fn rejected<S: AsRef<str>>(args: &[S], mentions: &[&str], watch: &[&Path]) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let shown = args.join(" ");
    let before: Vec<_> = watch.iter().map(|p| snapshot(p)).collect();
    let r = run(&args);
    assert_eq!(
        r.code,
        Some(2),
        "`{shown}`: exit code\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`{shown}`: stderr must be one line:\n{}",
        r.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("error"), "`{shown}`: {line}");
    for m in mentions {
        assert!(
            line.contains(m),
            "`{shown}`: {line:?} does not mention {m:?}"
        );
    }
    for text in [&r.stdout, &r.stderr] {
        let lower = text.to_lowercase();
        assert!(
            !lower.contains("panicked") && !lower.contains("backtrace"),
            "`{shown}`: {text}"
        );
    }
    for (path, old) in watch.iter().zip(before) {
        let new = snapshot(path);
        assert!(
            new == old,
            "`{shown}` changed {}: before {:?}, after {:?}",
            path.display(),
            common::names(&old),
            common::names(&new)
        );
    }
}

/// Runs `args` expecting success with nothing on stderr.
fn accepted(args: &[&str]) -> common::Run {
    let r = run(args).expect_success(&args.join(" "));
    assert!(r.stderr.is_empty(), "`{}`: {}", args.join(" "), r.stderr);
    r
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ----- fixtures -----

/// Rows of a labelled 2-D CSV: two (or more) well-separated classes, seeded.
fn labelled_rows(n: usize, classes: usize, seed: u64) -> Vec<(f64, f64, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let c = i % classes;
            let x = 3.0 * c as f64 + rng.random::<f64>();
            let y = -2.0 * c as f64 + rng.random::<f64>();
            (x, y, format!("c{c}"))
        })
        .collect()
}

fn csv_text(rows: &[(f64, f64, String)], eol: &str) -> String {
    let mut t = format!("a,b,l{eol}");
    for (x, y, l) in rows {
        t.push_str(&format!("{x},{y},{l}{eol}"));
    }
    t
}

/// A valid CSV with 300 rows, with line `line` (1-based, the header is line 1) replaced.
fn with_line(line: usize, replacement: &str) -> String {
    let text = csv_text(&labelled_rows(300, 2, 1), "\n");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = replacement;
    lines.join("\n") + "\n"
}

/// Checkpoints from tiny runs, made once per test binary and shared by the tests that
/// only read them (each test copies what it changes).
struct Fixtures {
    /// `train --steps 5 --epochs 1` on the notebook's data: `checkpoints/` with a
    /// two-class classifier.
    two: PathBuf,
    /// The same on a three-class CSV.
    three: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        // A static is never dropped: fixtures of earlier runs (over ten minutes old) go here.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 600);
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale && name.starts_with("xtask-bad-input-fixtures-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let root = tmp.join(format!("xtask-bad-input-fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let two = root.join("two");
        accepted(&["train", "--out", s(&two), "--steps", "5", "--epochs", "1"]);
        let csv = root.join("three.csv");
        std::fs::write(&csv, csv_text(&labelled_rows(300, 3, 2), "\n")).unwrap();
        let three = root.join("three");
        accepted(&[
            "train",
            "--out",
            s(&three),
            "--data",
            s(&csv),
            "--columns",
            "a,b",
            "--label",
            "l",
            "--steps",
            "5",
            "--epochs",
            "1",
        ]);
        Fixtures {
            two: two.join("checkpoints"),
            three: three.join("checkpoints"),
        }
    })
}

// ----- numbers out of range, unknown names -----

#[test]
fn bench_sizes_out_of_range_are_rejected() {
    let scratch = Scratch::new("bad-bench");
    let json = scratch.join("bench.json"); // never written
    rejected(
        &[
            "bench",
            "--commands",
            "--commands-max",
            "0",
            "--json",
            s(&json),
        ],
        &["'0'", "--commands-max", "1 to 1000000"],
        &[&json],
    );
}

#[test]
fn numbers_out_of_range_are_rejected_for_every_sub_command() {
    let scratch = Scratch::new("bad-numbers");
    let out = scratch.join("out"); // never created
    let o = s(&out);
    let cases: &[(&[&str], &[&str])] = &[
        (&["forward", "--T", "0"], &["'0'", "--T", "1 to 100000"]),
        (&["forward", "--T", "100001"], &["'100001'", "1 to 100000"]),
        (&["forward", "--every", "0"], &["'0'", "--every"]),
        (&["train", "--steps", "0"], &["'0'", "--steps", "1 to"]),
        (&["train", "--steps", "-5"], &["'-5'", "--steps"]),
        (&["train", "--steps", "2.5"], &["'2.5'", "whole number"]),
        (&["train", "--epochs", "0"], &["'0'", "--epochs"]),
        (&["train", "--batch", "0"], &["'0'", "--batch"]),
        (&["train", "--lr", "0"], &["'0'", "--lr", "(0, 10]"]),
        (&["train", "--lr", "11"], &["'11'", "(0, 10]"]),
        (&["train", "--lr", "nan"], &["'nan'", "(0, 10]"]),
        (&["train", "--width", "0"], &["'0'", "--width"]),
        (&["train", "--depth", "17"], &["'17'", "1 to 16"]),
        (&["train", "--n-data", "1"], &["'1'", "2 to"]),
        (&["sample", "--n", "0"], &["'0'", "--n"]),
        (&["sample", "--scale", "-1"], &["'-1'", "0 to 1e6"]),
        (&["sample", "--scale", "nan"], &["'nan'", "0 to 1e6"]),
        (&["sample", "--scale", "inf"], &["'inf'", "0 to 1e6"]),
        (
            &["sample", "--snapshot-every", "0"],
            &["'0'", "--snapshot-every"],
        ),
        (&["gmm", "--k", "0"], &["'0'", "1 to 10, or auto"]),
        (&["gmm", "--k", "11"], &["'11'", "1 to 10"]),
        (&["gmm", "--k", "abc"], &["'abc'", "auto"]),
        (&["gmm", "--seed", "-1"], &["'-1'", "--seed"]),
        (&["all", "--seed", "x"], &["'x'", "--seed"]),
        (&["all", "--width", "5000"], &["'5000'", "1 to 4096"]),
    ];
    for (args, mentions) in cases {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--out", o]);
        rejected(&a, mentions, &[&out]);
    }
}

#[test]
fn unknown_names_are_rejected_with_the_allowed_ones() {
    let scratch = Scratch::new("bad-names");
    let out = scratch.join("out");
    let o = s(&out);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["train", "--dataset", "mooons"],
            &["mooons", "moons", "spiral"],
        ),
        (&["forward", "--dataset", "x"], &["'x'", "two-clusters"]),
        (&["all", "--dataset", "nope"], &["nope", "checkerboard"]),
        (&["train", "--activation", "gelu"], &["gelu", "relu, silu"]),
        (
            &["train", "--time-input", "fourier"],
            &["fourier", "scaled, sinusoidal"],
        ),
        (
            &["sample", "--variance", "wide"],
            &["wide", "beta, posterior"],
        ),
        (
            &["train", "--schedule", "sigmoid"],
            &["sigmoid", "linear, cosine, quadratic"],
        ),
        (
            &["forward", "--schedule", "sigmoid"],
            &["sigmoid", "linear, cosine, quadratic"],
        ),
        (&["gmm", "--colour", "red"], &["--colour"]),
        (
            &["trian"],
            &[
                "trian",
                "gmm, forward, train, sample, samplers, guidance, all",
                "train",
            ],
        ),
    ];
    for (args, mentions) in cases {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--out", o]);
        rejected(&a, mentions, &[&out]);
    }
    // No sub-command at all.
    rejected(&[] as &[&str], &["sub-command", "gmm"], &[]);
}

// ----- malformed CSV files -----

/// Bad CSV files and the text their error must show.
fn bad_csv_files(scratch: &Scratch) -> Vec<(PathBuf, Vec<&'static str>)> {
    let constant_b: Vec<(f64, f64, String)> = labelled_rows(300, 2, 3)
        .into_iter()
        .map(|(x, _, l)| (x, 3.0, l))
        .collect();
    vec![
        (scratch.file("empty.csv", ""), vec!["empty.csv", "empty"]),
        (
            scratch.file("header.csv", "a,b,l\n"),
            vec!["header.csv", "no data rows"],
        ),
        (
            scratch.file("ragged.csv", with_line(4, "1.0,2.0")),
            vec!["line 4", "expected 3 fields", "found 2"],
        ),
        (
            scratch.file("na.csv", with_line(5, "NA,1.0,c0")),
            vec!["line 5", "\"NA\""],
        ),
        (
            scratch.file("text.csv", with_line(6, "1.0,abc,c1")),
            vec!["line 6", "\"abc\"", "column \"b\""],
        ),
        (
            scratch.file("inf.csv", with_line(7, "inf,1.0,c0")),
            vec!["line 7", "\"inf\"", "finite"],
        ),
        (
            scratch.file("overflow.csv", with_line(8, "-1e999,1.0,c0")),
            vec!["line 8", "\"-1e999\"", "finite"],
        ),
        (
            scratch.file("blank.csv", with_line(9, ",1.0,c0")),
            vec!["line 9", "empty"],
        ),
        (
            scratch.file("utf8.csv", {
                // "1.\xff" in column a of line 10: not UTF-8.
                let mut b = with_line(10, "1.0,2.0,c0").into_bytes();
                let at = find(&b, b"\n1.0,2.0,c0").unwrap() + 3;
                b[at] = 0xff;
                b
            }),
            vec!["utf8.csv", "line 10", "UTF-8"],
        ),
        (
            scratch.file("constant.csv", csv_text(&constant_b, "\n")),
            vec!["\"b\"", "constant"],
        ),
    ]
}

#[test]
fn malformed_csv_is_rejected_by_gmm() {
    let scratch = Scratch::new("bad-csv-gmm");
    let out = scratch.join("out");
    for (file, mentions) in bad_csv_files(&scratch) {
        // `gmm` reads one column: the problems above sit in column a or b.
        let column = if mentions.contains(&"column \"b\"") || mentions.contains(&"\"b\"") {
            "b"
        } else {
            "a"
        };
        rejected(
            &[
                "gmm",
                "--data",
                s(&file),
                "--column",
                column,
                "--out",
                s(&out),
            ],
            &mentions,
            &[&out, &file],
        );
    }
    let good = scratch.file("good.csv", csv_text(&labelled_rows(300, 2, 4), "\n"));
    let g = s(&good);
    let o = s(&out);
    rejected(
        &["gmm", "--data", g, "--column", "zz", "--out", o],
        &["\"zz\"", "a, b, l"],
        &[&out],
    );
    let missing = scratch.join("missing.csv");
    rejected(
        &["gmm", "--data", s(&missing), "--column", "a", "--out", o],
        &["missing.csv"],
        &[&out, &missing],
    );
    rejected(
        &[
            "gmm",
            "--data",
            s(scratch.path()),
            "--column",
            "a",
            "--out",
            o,
        ],
        &["cannot read"],
        &[&out],
    );
    // A column of two distinct values cannot hold three components.
    let binary = scratch.file(
        "binary.csv",
        (0..100).fold(String::from("v\n"), |t, i| t + &format!("{}\n", i % 2)),
    );
    rejected(
        &[
            "gmm",
            "--data",
            s(&binary),
            "--column",
            "v",
            "--k",
            "3",
            "--out",
            o,
        ],
        &["2 distinct values", "--k 3"],
        &[&out],
    );
    // --data without --column (and the reverse) is a usage error.
    rejected(&["gmm", "--data", g, "--out", o], &["--column"], &[&out]);
}

#[test]
fn malformed_csv_is_rejected_by_train_forward_and_all() {
    let scratch = Scratch::new("bad-csv-train");
    let out = scratch.join("out");
    let o = s(&out);
    for (file, mentions) in bad_csv_files(&scratch) {
        let f = s(&file);
        rejected(
            &[
                "train",
                "--data",
                f,
                "--columns",
                "a,b",
                "--label",
                "l",
                "--out",
                o,
            ],
            &mentions,
            &[&out, &file],
        );
    }
    // The same column twice, or the class column among the coordinates.
    let good = scratch.file("good.csv", csv_text(&labelled_rows(300, 2, 9), "\n"));
    rejected(
        &["train", "--data", s(&good), "--columns", "a,a", "--out", o],
        &["a,a", "same column twice"],
        &[&out],
    );
    rejected(
        &[
            "train",
            "--data",
            s(&good),
            "--columns",
            "a,l",
            "--label",
            "l",
            "--out",
            o,
        ],
        &["--label l", "another column"],
        &[&out],
    );
    // forward and all read the same data first.
    let na = scratch.file("na2.csv", with_line(3, "NA,1.0,c0"));
    for cmd in ["forward", "all"] {
        rejected(
            &[cmd, "--data", s(&na), "--columns", "a,b", "--out", o],
            &["line 3", "\"NA\""],
            &[&out],
        );
    }
    let one_class: Vec<(f64, f64, String)> = labelled_rows(300, 2, 5)
        .into_iter()
        .map(|(x, y, _)| (x, y, "only".to_string()))
        .collect();
    let cases: Vec<(PathBuf, &[&str], Vec<&str>)> = vec![
        (
            scratch.file("one_class.csv", csv_text(&one_class, "\n")),
            &["--label", "l"],
            vec!["1 distinct class", "\"only\"", "2..=16"],
        ),
        (
            scratch.file("classes17.csv", csv_text(&labelled_rows(340, 17, 6), "\n")),
            &["--label", "l"],
            vec!["17 distinct class", "2..=16"],
        ),
        (
            scratch.file("few.csv", csv_text(&labelled_rows(50, 2, 7), "\n")),
            &["--label", "l"],
            vec!["50 row(s)", "at least 128", "--batch"],
        ),
        (
            scratch.file("nolabel.csv", csv_text(&labelled_rows(300, 2, 8), "\n")),
            &["--label", "class"],
            vec!["\"class\"", "a, b, l"],
        ),
        (
            scratch.file("missing_label.csv", with_line(12, "1.0,2.0,NA")),
            &["--label", "l"],
            vec!["line 12", "NA"],
        ),
    ];
    for (file, extra, mentions) in &cases {
        let mut a = vec!["train", "--data", s(file), "--columns", "a,b", "--out", o];
        a.extend(extra.iter());
        rejected(&a, mentions, &[&out, file]);
    }
    let good = scratch.file("good.csv", csv_text(&labelled_rows(300, 2, 9), "\n"));
    let g = s(&good);
    rejected(
        &["train", "--data", g, "--columns", "a", "--out", o],
        &["--columns a", "exactly two"],
        &[&out],
    );
    rejected(
        &["train", "--data", g, "--columns", "a,zz", "--out", o],
        &["\"zz\""],
        &[&out],
    );
    rejected(&["train", "--data", g, "--out", o], &["--columns"], &[&out]);
    rejected(
        &[
            "train",
            "--data",
            g,
            "--columns",
            "a,b",
            "--dataset",
            "moons",
            "--out",
            o,
        ],
        &["--dataset"],
        &[&out],
    );
}

/// A byte-order mark and Windows line ends are ordinary input.
#[test]
fn bom_and_crlf_simply_work() {
    let scratch = Scratch::new("bom-crlf");
    let rows = labelled_rows(300, 2, 10);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(csv_text(&rows, "\r\n").into_bytes());
    let bom = scratch.file("bom_crlf.csv", &bytes);
    let plain = scratch.file("plain.csv", csv_text(&rows, "\n"));
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    for (file, out) in [(&bom, &a), (&plain, &b)] {
        accepted(&["gmm", "--data", s(file), "--column", "a", "--out", s(out)]);
        accepted(&[
            "train",
            "--data",
            s(file),
            "--columns",
            "a,b",
            "--label",
            "l",
            "--steps",
            "5",
            "--epochs",
            "1",
            "--out",
            s(out),
        ]);
    }
    // The same numbers, classes and column names: the fit and the data saved with the
    // checkpoints are identical.
    for name in ["gmm_fit.json", "checkpoints/data.csv"] {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(
            x == y,
            "{name} differs between the BOM/CRLF file and the plain one"
        );
    }
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("checkpoints/data.json")).unwrap()).unwrap();
    assert_eq!(data["column_names"], serde_json::json!(["a", "b"]));
    assert_eq!(data["class_names"], serde_json::json!(["c0", "c1"]));
}

/// A column with only two distinct values fits with k = 2 (the comparison stops at
/// two components instead of failing after the figure was written).
#[test]
fn two_distinct_values_fit_with_two_components() {
    let scratch = Scratch::new("two-values");
    let file = scratch.file(
        "binary.csv",
        (0..100).fold(String::from("v\n"), |t, i| t + &format!("{}\n", i % 2)),
    );
    let out = scratch.join("out");
    for k in ["2", "auto"] {
        accepted(&[
            "gmm",
            "--data",
            s(&file),
            "--column",
            "v",
            "--k",
            k,
            "--out",
            s(&out),
        ]);
        let fit: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("gmm_fit.json")).unwrap()).unwrap();
        assert!(fit["k"].as_u64().unwrap() <= 2, "{fit}");
    }
}

#[test]
fn sampler_choices_that_cannot_run_are_rejected() {
    let scratch = Scratch::new("bad-sampler");
    let out = scratch.join("out"); // never created
    let ckpt = &fixtures().two; // T = 500
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--sampler", "heun", "--steps", "0"],
            &["'0'", "--steps", "1 to"],
        ),
        (
            &["--sampler", "ddim", "--steps", "501"],
            &["--steps 501", "1 to T = 500"],
        ),
        (
            &["--sampler", "euler", "--steps", "-3"],
            &["'-3'", "--steps"],
        ),
        (
            &["--sampler", "ddpm", "--steps", "50"],
            &["--steps 50", "ddpm", "T = 500", "--sampler ddim --eta 1"],
        ),
        (&["--steps", "499"], &["--steps 499", "ddpm"]),
        (
            &["--sampler", "ddim", "--eta", "1.5"],
            &["'1.5'", "--eta", "0 to 1"],
        ),
        (
            &["--sampler", "ddim", "--eta", "-0.1"],
            &["'-0.1'", "0 to 1"],
        ),
        (&["--sampler", "ddim", "--eta", "nan"], &["'nan'", "0 to 1"]),
        (
            &["--sampler", "heun", "--eta", "0.5"],
            &["--eta 0.5", "heun", "only ddim"],
        ),
        (&["--eta", "0"], &["--eta 0", "ddpm", "only ddim"]),
        (
            &["--sampler", "dpm-solver", "--eta", "1"],
            &["--eta 1", "dpm-solver"],
        ),
        (
            &["--sampler", "rk4"],
            &["rk4", "ddpm, ddim, euler, heun, dpm-solver"],
        ),
    ];
    for (extra, mentions) in cases {
        let mut a = sample_args(ckpt, &out);
        a.extend_from_slice(extra);
        rejected(&a, mentions, &[&out, ckpt]);
    }
}

#[test]
fn samplers_settings_that_cannot_run_are_rejected() {
    let scratch = Scratch::new("bad-samplers");
    let out = scratch.join("out"); // never created
    let o = s(&out);
    let (two, three) = (s(&fixtures().two), s(&fixtures().three));
    let cases: &[(&[&str], &[&str])] = &[
        (&["--n", "1"], &["'1'", "--n", "2 to"]),
        (&["--w2-n", "0"], &["'0'", "--w2-n"]),
        (
            &["--n", "100", "--w2-n", "200"],
            &["W2 on 200 points", "1 to n = 100"],
        ),
        (&["--checkpoints", three], &["known true distribution"]),
        (&["--checkpoints", o], &["out"]),
    ];
    for (extra, mentions) in cases {
        let mut a = vec!["samplers", "--out", o];
        if !extra.contains(&"--checkpoints") {
            a.extend(["--checkpoints", two]);
        }
        a.extend_from_slice(extra);
        rejected(&a, mentions, &[&out, &fixtures().two, &fixtures().three]);
    }
}

#[test]
fn guidance_settings_that_cannot_run_are_rejected() {
    let scratch = Scratch::new("bad-guidance");
    let out = scratch.join("out"); // never created
    let o = s(&out);
    let two = &fixtures().two;
    // A folder trained before classifier-free guidance: no conditional denoiser.
    let old = checkpoint_copy(&scratch, "old");
    std::fs::remove_file(old.join("conditional_denoiser.safetensors")).unwrap();
    let sample_cases: &[(&[&str], &[&str])] = &[
        (
            &["--guidance", "free", "--scale", "3"],
            &["--scale 3", "--guidance free", "--cfg-weight"],
        ),
        (
            &["--cfg-weight", "2"],
            &["--cfg-weight 2", "--guidance classifier", "--scale"],
        ),
        (
            &["--guidance", "free", "--cfg-weight", "-1"],
            &["'-1'", "--cfg-weight", "0 to 1e6"],
        ),
        (
            &["--guidance", "free", "--cfg-weight", "nan"],
            &["'nan'", "0 to 1e6"],
        ),
        (&["--guidance", "fancy"], &["fancy", "classifier, free"]),
    ];
    for (extra, mentions) in sample_cases {
        let mut a = sample_args(two, &out);
        a.extend_from_slice(extra);
        rejected(&a, mentions, &[&out, two]);
    }
    let mut a = sample_args(&old, &out);
    a.extend(["--guidance", "free"]);
    rejected(
        &a,
        &[
            "no conditional denoiser",
            "conditional_denoiser.safetensors",
            "retrain",
        ],
        &[&out, &old],
    );
    // The same folder still samples with the classifier.
    accepted(&sample_args(&old, &scratch.join("old-out")));
    for p in ["0", "1", "1.5", "nan"] {
        rejected(
            &["train", "--out", o, "--cond-dropout", p],
            &[&format!("'{p}'"), "--cond-dropout", "between 0 and 1"],
            &[&out],
        );
    }
    let guidance_cases: &[(&[&str], &[&str])] = &[
        (&["--n", "1"], &["'1'", "--n", "2 to"]),
        (
            &["--checkpoints", s(&old)],
            &["no conditional denoiser", "retrain"],
        ),
        (&["--checkpoints", o], &["out"]),
    ];
    for (extra, mentions) in guidance_cases {
        let mut a = vec!["guidance", "--out", o];
        if !extra.contains(&"--checkpoints") {
            a.extend(["--checkpoints", s(two)]);
        }
        a.extend_from_slice(extra);
        rejected(&a, mentions, &[&out, two, &old]);
    }
}

// ----- output paths -----

#[test]
fn an_output_folder_that_cannot_be_created_is_rejected_before_any_work() {
    let scratch = Scratch::new("bad-out");
    let file = scratch.file("regular-file", "not a folder");
    let under = file.join("sub");
    let deeper = file.join("a/b");
    let ckpt = &fixtures().two;
    let cases: Vec<Vec<&str>> = vec![
        vec!["gmm", "--out", s(&under)],
        vec!["forward", "--out", s(&deeper)],
        // Rejected before training: 20,000 steps would take long.
        vec!["train", "--steps", "20000", "--out", s(&under)],
        vec!["sample", "--checkpoints", s(ckpt), "--out", s(&under)],
        vec!["all", "--out", s(&deeper)],
    ];
    for args in &cases {
        rejected(
            args,
            &["regular-file", "is a file"],
            &[scratch.path(), ckpt],
        );
    }
    // --out naming the file itself.
    rejected(
        &["gmm", "--out", s(&file)],
        &["regular-file", "is a file"],
        &[scratch.path()],
    );
}

// ----- checkpoints -----

/// A copy of the two-class checkpoints to break.
fn checkpoint_copy(scratch: &Scratch, name: &str) -> PathBuf {
    let dir = scratch.join(name);
    common::copy_dir(&fixtures().two, &dir);
    dir
}

fn sample_args<'a>(ckpt: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "sample",
        "--checkpoints",
        s(ckpt),
        "--out",
        s(out),
        "--n",
        "10",
    ]
}

#[test]
fn broken_or_mismatched_checkpoints_are_rejected() {
    let scratch = Scratch::new("bad-ckpt");
    let out = scratch.join("out");
    // The untouched fixture samples fine (so each failure below is the breakage's).
    let ok_out = scratch.join("ok");
    accepted(&sample_args(&fixtures().two, &ok_out));

    let check = |dir: &Path, mentions: &[&str]| {
        rejected(&sample_args(dir, &out), mentions, &[&out, dir]);
    };

    let d = checkpoint_copy(&scratch, "truncated");
    let bytes = std::fs::read(d.join("denoiser.safetensors")).unwrap();
    std::fs::write(d.join("denoiser.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    check(&d, &["denoiser.safetensors"]);

    let d = checkpoint_copy(&scratch, "header-cut");
    std::fs::write(d.join("denoiser.safetensors"), &bytes[..20]).unwrap();
    check(&d, &["denoiser.safetensors"]);

    let d = checkpoint_copy(&scratch, "empty");
    std::fs::write(d.join("classifier.safetensors"), b"").unwrap();
    check(&d, &["classifier.safetensors"]);

    let d = checkpoint_copy(&scratch, "swapped");
    std::fs::copy(
        fixtures().two.join("classifier.safetensors"),
        d.join("denoiser.safetensors"),
    )
    .unwrap();
    check(&d, &["toydiff-classifier-v1", "toydiff-denoiser-v1"]);

    // A three-class classifier beside two-class data.
    let d = checkpoint_copy(&scratch, "three-classes");
    std::fs::copy(
        fixtures().three.join("classifier.safetensors"),
        d.join("classifier.safetensors"),
    )
    .unwrap();
    check(&d, &["3 classes", "the data has 2"]);

    // data.json of the three-class data beside the two-class checkpoints.
    let d = checkpoint_copy(&scratch, "other-data");
    for f in ["data.json", "data.csv"] {
        std::fs::copy(fixtures().three.join(f), d.join(f)).unwrap();
    }
    check(&d, &["2 classes", "the data has 3"]);

    // T edited in place ("500" -> "400"): the header stays valid JSON of the same length.
    let d = checkpoint_copy(&scratch, "other-t");
    let mut b = bytes.clone();
    let at = find(&b, b"\"num_steps\":\"500\"").expect("num_steps in the header");
    b[at + 13] = b'4';
    std::fs::write(d.join("denoiser.safetensors"), &b).unwrap();
    check(&d, &["T = 400", "expected 500"]);

    // A NaN weight (the last bias of the classifier): refused when loading.
    let d = checkpoint_copy(&scratch, "nan-weight");
    let mut b = std::fs::read(d.join("classifier.safetensors")).unwrap();
    let end = b.len();
    b[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(d.join("classifier.safetensors"), &b).unwrap();
    check(&d, &["classifier.safetensors", "non-finite value NaN"]);

    let d = checkpoint_copy(&scratch, "no-classifier");
    std::fs::remove_file(d.join("classifier.safetensors")).unwrap();
    check(&d, &["classifier.safetensors", "not found"]);

    let d = checkpoint_copy(&scratch, "bad-json");
    std::fs::write(d.join("data.json"), b"{\"format\": ").unwrap();
    check(&d, &["data.json", "not a toydiff data description"]);

    let d = checkpoint_copy(&scratch, "other-format");
    let text = std::fs::read_to_string(d.join("data.json")).unwrap();
    std::fs::write(
        d.join("data.json"),
        text.replace("toydiff-data-v1", "toydiff-data-v9"),
    )
    .unwrap();
    check(&d, &["data.json", "toydiff-data-v9"]);

    let d = checkpoint_copy(&scratch, "bad-csv");
    let text = std::fs::read_to_string(d.join("data.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[3] = "1.0,oops,0,train";
    std::fs::write(d.join("data.csv"), lines.join("\n")).unwrap();
    check(&d, &["data.csv", "line 4", "oops"]);

    // Every file of a folder carries the run id of its recipe: a moons run's denoiser
    // dropped into the two-clusters folder loads (same T, its own shape) but is refused.
    let moons = scratch.join("moons-run");
    accepted(&[
        "train",
        "--dataset",
        "moons",
        "--steps",
        "5",
        "--epochs",
        "1",
        "--out",
        s(&moons),
    ]);
    let d = checkpoint_copy(&scratch, "other-run");
    std::fs::copy(
        moons.join("checkpoints/denoiser.safetensors"),
        d.join("denoiser.safetensors"),
    )
    .unwrap();
    check(
        &d,
        &["mixes two runs", "recipe.json", "denoiser.safetensors"],
    );
    // ... and the same for the forward animation of that folder.
    rejected(
        &["forward", "--checkpoints", s(&d), "--out", s(&out)],
        &["mixes two runs", "denoiser.safetensors"],
        &[&out, &d],
    );

    // data.csv of another run (its run line changed).
    let d = checkpoint_copy(&scratch, "other-run-data");
    let text = std::fs::read_to_string(d.join("data.csv")).unwrap();
    let (_, rest) = text.split_once('\n').unwrap();
    std::fs::write(
        d.join("data.csv"),
        format!("# toydiff run 0123456789abcdef\n{rest}"),
    )
    .unwrap();
    check(&d, &["mixes two runs", "data.csv", "0123456789abcdef"]);

    // A folder written before run ids (no recipe.json, no run id): refused, retrain.
    let d = checkpoint_copy(&scratch, "no-recipe");
    std::fs::remove_file(d.join("recipe.json")).unwrap();
    check(&d, &["recipe.json", "before run ids", "cargo xtask train"]);

    let d = checkpoint_copy(&scratch, "bad-recipe");
    std::fs::write(d.join("recipe.json"), b"{\"format\": ").unwrap();
    check(&d, &["recipe.json", "not a toydiff recipe"]);

    let missing = scratch.join("no-such-folder");
    rejected(
        &sample_args(&missing, &out),
        &["no-such-folder", "cargo xtask train"],
        &[&out, &missing],
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
