//! `cargo xtask likelihood`: maps the flags to [`toydiff::LikelihoodSettings`] and runs the
//! library's likelihood stage on the checkpoint folder `train` wrote.

use toydiff::{LikelihoodReport, LikelihoodSettings, OutDir, Timings, CHECKPOINTS};

use crate::flags::{default_out, LikelihoodArgs};
use crate::progress::Console;

/// The likelihood settings the flags describe.
pub fn settings(args: &LikelihoodArgs) -> LikelihoodSettings {
    LikelihoodSettings {
        n: args.n,
        steps: args.steps,
        grid: args.grid,
        max_k: args.max_k,
        variance: args.variance.into(),
        seed: args.seed,
        ..LikelihoodSettings::default()
    }
}

pub fn run(args: &LikelihoodArgs) -> anyhow::Result<LikelihoodReport> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let dir = args
        .checkpoints
        .clone()
        .unwrap_or_else(|| out.path(CHECKPOINTS));
    let mut timings = Timings::default();
    let report = toydiff::likelihood(&settings(args), &dir, &out, &Console::new(), &mut timings)?;
    timings.write(&out)?;
    Ok(report)
}
