//! `cargo xtask gmm`: the notebook's first half on its data or on a user's CSV column,
//! through the library's gmm stage.

use std::time::Instant;

use toydiff::{OutDir, Timings};

use crate::flags::{default_out, GmmArgs, KChoice};
use crate::progress::Console;

pub fn run(args: &GmmArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let k = match args.k {
        KChoice::Fixed(k) => Some(k),
        KChoice::Auto => None,
    };
    let console = Console::new();
    match (&args.data, &args.column) {
        (Some(path), Some(column)) => {
            toydiff::gmm::gmm_column(path, column, k, args.seed, &out, &console, &mut timings)?
        }
        _ => toydiff::gmm::gmm_notebook(k, args.seed, &out, &console, &mut timings)?,
    }
    timings.record("gmm", start.elapsed().as_secs_f64());
    timings.write(&out)?;
    Ok(())
}
