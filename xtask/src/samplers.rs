//! `cargo xtask samplers`: maps the flags to [`toydiff::SamplersSettings`] and runs the
//! library's samplers stage on a checkpoint folder (the notebook's by default).

use toydiff::{OutDir, SamplersSettings, Timings, CHECKPOINTS};

use crate::flags::{default_out, SamplersArgs};
use crate::progress::Console;

pub fn run(args: &SamplersArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let dir = args
        .checkpoints
        .clone()
        .unwrap_or_else(|| default_out().join(CHECKPOINTS));
    let settings = SamplersSettings {
        n: args.n,
        w2_n: args.w2_n,
        seed: args.seed,
        ..SamplersSettings::default()
    };
    let mut timings = Timings::default();
    let start = std::time::Instant::now();
    toydiff::samplers(&settings, &dir, &out, &Console::new(), &mut timings)?;
    println!("samplers: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
