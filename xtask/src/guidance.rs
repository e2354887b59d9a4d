//! `cargo xtask guidance`: maps the flags to [`toydiff::GuidanceSettings`] and runs the
//! library's guidance stage on a checkpoint folder (the notebook's by default).

use toydiff::{GuidanceReport, GuidanceSettings, OutDir, Timings, CHECKPOINTS};

use crate::flags::{default_out, GuidanceArgs};
use crate::progress::Console;

/// The sweep's settings the flags describe.
pub fn settings(args: &GuidanceArgs) -> GuidanceSettings {
    GuidanceSettings {
        n: args.n,
        seed: args.seed,
        ..GuidanceSettings::default()
    }
}

pub fn run(args: &GuidanceArgs) -> anyhow::Result<GuidanceReport> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let dir = args
        .checkpoints
        .clone()
        .unwrap_or_else(|| out.path(CHECKPOINTS));
    let mut timings = Timings::default();
    let start = std::time::Instant::now();
    let report = toydiff::guidance(&settings(args), &dir, &out, &Console::new(), &mut timings)?;
    timings.write(&out)?;
    crate::console::say!("guidance: {:.1} s", start.elapsed().as_secs_f64());
    Ok(report)
}
