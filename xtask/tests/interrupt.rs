//! Outputs are never half-written: a run killed mid-stage leaves every file either as
//! it was or as the complete new version (never truncated), and a clean exit leaves no
//! temporary file behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{files, is_temp_file, run, snapshot, xtask, Scratch};

/// A complete small run: the "previous version" of every output.
fn complete_run(out: &Path, seed: &str) {
    let o = out.to_str().unwrap();
    for args in [
        vec!["forward", "--every", "100"],
        vec!["train", "--steps", "200", "--epochs", "20"],
        vec!["sample", "--n", "100", "--snapshot-every", "50"],
    ] {
        let mut args: Vec<&str> = args;
        args.extend(["--out", o, "--seed", seed]);
        run(&args).expect_success(&args.join(" "));
    }
}

/// File bytes by relative path (folders left out).
fn file_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    xtask(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the xtask binary starts")
}

/// Kills the child and reaps it.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A long training run killed while it trains: nothing may have changed, because the
/// outputs are only written once the stage has its results.
#[test]
fn killed_mid_training_leaves_the_previous_outputs() {
    let scratch = Scratch::new("interrupt-train");
    let out = scratch.join("out");
    complete_run(&out, "3");
    let before = file_bytes(&out);
    assert!(before.len() >= 14, "{:?}", before.keys());

    // 20,000 steps take about 25 s in the test build: at 1.5 s it is still training.
    let mut child = spawn(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "4",
        "--steps",
        "20000",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let still_running = child.try_wait().expect("poll child").is_none();
    kill(child);
    assert!(
        still_running,
        "train --steps 20000 finished within 1.5 s: raise --steps so the kill lands mid-stage"
    );
    let after = file_bytes(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "files appeared or vanished"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{name} changed");
    }
}

/// Kills runs while they write (as soon as a temporary file or a changed output shows
/// up), several times: each file must be the previous complete version or the new
/// complete one, never a prefix of either. A temporary file may remain after SIGKILL.
#[test]
fn killed_while_writing_leaves_old_or_new_complete_files() {
    let scratch = Scratch::new("interrupt-write");
    let out = scratch.join("out");
    let o = out.to_str().unwrap();
    complete_run(&out, "3");
    let old = file_bytes(&out);
    let stages: [&[&str]; 2] = [
        &["train", "--steps", "200", "--epochs", "20"],
        &["sample", "--n", "100", "--snapshot-every", "50"],
    ];
    let args_of = |stage: &[&str], dir: &str| -> Vec<String> {
        let mut v: Vec<String> = stage.iter().map(|s| s.to_string()).collect();
        v.extend(["--out", dir, "--seed", "5"].map(String::from));
        v
    };
    // What each stage writes when it runs to completion over the previous outputs.
    let new: Vec<BTreeMap<String, Vec<u8>>> = stages
        .iter()
        .map(|stage| {
            let dir = scratch.join("reference");
            restore(&old, &dir);
            run(&args_of(stage, dir.to_str().unwrap())).expect_success("reference run");
            file_bytes(&dir)
        })
        .collect();
    let mut kills_while_writing = 0;
    for round in 0..6 {
        // Every round starts from the previous complete outputs.
        restore(&old, &out);
        let stamps = stamps(&out);
        let which = round % 2;
        let mut child = spawn(&args_of(stages[which], o));
        let start = Instant::now();
        // Poll until the stage starts writing (a temp file, or a file with a new
        // length or time stamp) or ends.
        let writing = loop {
            if child.try_wait().expect("poll child").is_some() {
                break false;
            }
            if stamps_now_differ(&out, &stamps) {
                break true;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the stage neither wrote nor ended in 120 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        // Later rounds let the writes go on a little longer before the kill.
        if writing {
            std::thread::sleep(Duration::from_millis(10 * (round as u64 / 2)));
            kills_while_writing += 1;
        }
        kill(child);
        check_old_or_new(
            &out,
            &old,
            &new[which],
            &format!("round {round} ({})", stages[which][0]),
        );
    }
    // The polling caught the writes at least once (each stage writes for tens of ms).
    assert!(kills_while_writing >= 1, "no kill landed while writing");

    // A clean run over the last round's debris completes every file.
    run(&args_of(stages[1], o)).expect_success("clean run");
    for (name, bytes) in &new[1] {
        if name != "timings.json" {
            assert!(
                std::fs::read(out.join(name)).ok().as_ref() == Some(bytes),
                "{name} after a clean run"
            );
        }
    }
}

/// Every file in `out` is its `old` or its `new` version (temporary files aside), and
/// no previous output vanished. `timings.json` holds wall times, so it is only parsed.
fn check_old_or_new(
    out: &Path,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let (mut n_old, mut n_new, mut n_temp) = (0, 0, 0);
    for (name, bytes) in file_bytes(out) {
        if is_temp_file(&name) {
            n_temp += 1;
            continue; // SIGKILL may land between write_atomic's write and rename
        }
        if name == "timings.json" {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                "{what}: timings.json is not complete JSON"
            );
            continue;
        }
        let is_old = old.get(&name) == Some(&bytes);
        let is_new = new.get(&name) == Some(&bytes);
        assert!(
            is_old || is_new,
            "{what}: {name} ({} bytes) is neither the previous nor the new complete version",
            bytes.len()
        );
        n_old += usize::from(is_old && !is_new);
        n_new += usize::from(is_new && !is_old);
    }
    for name in old.keys() {
        assert!(out.join(name).exists(), "{what}: {name} disappeared");
    }
    // Shown with --nocapture: where the kill landed.
    eprintln!("{what}: {n_old} previous, {n_new} new, {n_temp} temporary file(s)");
}

/// Replaces the folder's contents with `files`.
fn restore(files: &BTreeMap<String, Vec<u8>>, out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

type Stamps = BTreeMap<String, (u64, Option<std::time::SystemTime>)>;

/// Length and modification time of every entry (a rename in progress is skipped).
fn stamps(dir: &Path) -> Stamps {
    fn walk(root: &Path, dir: &Path, out: &mut Stamps) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(rel, (meta.len(), meta.modified().ok()));
            }
        }
    }
    let mut map = Stamps::new();
    walk(dir, dir, &mut map);
    map
}

fn stamps_now_differ(dir: &Path, before: &Stamps) -> bool {
    let now = stamps(dir);
    now.iter()
        .any(|(name, stamp)| is_temp_file(name) || before.get(name) != Some(stamp))
}

/// A clean exit of every stage leaves no temporary file anywhere in the output folder.
#[test]
fn clean_runs_leave_no_temporary_files() {
    let scratch = Scratch::new("interrupt-clean");
    let out = scratch.join("out");
    let o = out.to_str().unwrap();
    run(&["gmm", "--out", o]).expect_success("gmm");
    complete_run(&out, "3");
    let all = files(&out);
    assert!(all.len() >= 18, "{all:?}");
    let temps: Vec<&String> = all.iter().filter(|n| is_temp_file(n)).collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
