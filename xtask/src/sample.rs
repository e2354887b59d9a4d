//! `cargo xtask sample`: maps the flags to [`toydiff::SampleSettings`] and runs the
//! library's sample stage on the checkpoint folder `train` wrote.

use std::path::PathBuf;

use toydiff::{
    OutDir, SampleSettings, SamplerChoice, SamplerKind, SamplingMetrics, Timings, CHECKPOINTS,
};

use crate::flags::{default_out, SampleArgs};
use crate::progress::Console;

/// The sampling settings the flags describe.
pub fn settings(args: &SampleArgs) -> SampleSettings {
    let kind = args.sampler.kind();
    SampleSettings {
        n: args.n,
        scale: args.scale,
        classes: args.classes.clone(),
        snapshot_every: args.snapshot_every.unwrap_or(if kind == SamplerKind::Ddpm {
            10
        } else {
            1
        }),
        variance: args.variance.into(),
        seed: args.seed,
        sampler: SamplerChoice {
            kind,
            steps: args.steps,
            eta: args.eta,
        },
        guidance: args.guidance.kind(),
        cfg_weight: args.cfg_weight,
    }
}

/// The checkpoint folder a run reads.
pub fn checkpoint_dir(args: &SampleArgs, out: &OutDir) -> PathBuf {
    args.checkpoints
        .clone()
        .unwrap_or_else(|| out.path(CHECKPOINTS))
}

pub fn run(args: &SampleArgs) -> anyhow::Result<SamplingMetrics> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let dir = checkpoint_dir(args, &out);
    let metrics = toydiff::sample(&settings(args), &dir, &out, &Console::new(), &mut timings)?;
    timings.write(&out)?;
    let s = &metrics.settings;
    println!(
        "{} over {} steps: {} model evaluations a run",
        s.sampler, s.steps, s.model_evaluations
    );
    Ok(metrics)
}
