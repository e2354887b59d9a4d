//! `cargo xtask forward`: the noise schedules and the forward-diffusion animation
//! (the notebook's sections 2 and 3), with the schedule of a checkpoint folder
//! (`--checkpoints DIR`: its data, T and β schedule) or of the flags.

use std::time::Instant;

use toydiff::{Checkpoint, OutDir, Prepared, RecipeParams, Timings};

use crate::flags::{default_out, ForwardArgs};
use crate::progress::Console;

pub fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let start = Instant::now();
    let console = Console::new();
    // Everything is read and checked before any file is written.
    let (data, schedule) = match &args.checkpoints {
        Some(dir) => {
            let checkpoint = Checkpoint::load(dir)?;
            let schedule = checkpoint.recipe.noise_schedule()?;
            (checkpoint.data, schedule)
        }
        None => {
            let params = RecipeParams {
                schedule: args.schedule.map(|s| s.kind()),
                num_steps: args.steps,
                seed: args.seed,
                ..RecipeParams::default()
            };
            let recipe = crate::train::data_params(&args.data, params).check()?;
            let data = Prepared::from_recipe(&recipe, 1, &console)?;
            (data, recipe.noise_schedule()?)
        }
    };
    toydiff::forward::forward(&data, &schedule, args.seed, args.every, &out, &console)?;
    timings.record("forward", start.elapsed().as_secs_f64());
    timings.write(&out)?;
    Ok(())
}
