//! `cargo xtask train`: maps the flags to a [`toydiff::Recipe`] and runs the library's
//! train stage (both networks, the checkpoint folder, the figures, `metrics.json`).

use toydiff::{CsvParams, OutDir, Recipe, RecipeParams, Timings, TrainMetrics};

use crate::flags::{default_out, ActivationArg, DataArgs, NetArgs, TimeInputArg, TrainArgs};
use crate::progress::Console;

/// The data flags as the recipe's data fields.
pub fn data_params(data: &DataArgs, params: RecipeParams) -> RecipeParams {
    RecipeParams {
        dataset: data.dataset,
        n_data: data.n_data,
        csv: data.data.as_ref().map(|path| CsvParams {
            path: path.clone(),
            columns: data.columns.clone(),
            label: data.label.clone(),
            drop_missing: data.drop_missing,
        }),
        ..params
    }
}

/// The network flags as the recipe's shape fields.
pub fn net_params(net: &NetArgs, params: RecipeParams) -> RecipeParams {
    RecipeParams {
        width: net.width,
        depth: net.depth,
        activation: net.activation.map(|a| match a {
            ActivationArg::Relu => toydiff::ActivationName::Relu,
            ActivationArg::Silu => toydiff::ActivationName::Silu,
        }),
        time_input: net.time_input.map(|t| match t {
            TimeInputArg::Scaled => toydiff::TimeInput::Scaled,
            TimeInputArg::Sinusoidal => toydiff::TimeInput::Sinusoidal,
        }),
        ..params
    }
}

/// The recipe the flags describe, checked.
pub fn recipe(args: &TrainArgs) -> anyhow::Result<Recipe> {
    let params = RecipeParams {
        schedule: args.schedule.map(|s| s.kind()),
        steps: args.steps,
        epochs: args.epochs,
        cond_steps: args.cond_steps,
        batch: args.batch,
        learning_rate: args.lr,
        cond_dropout: args.cond_dropout,
        seed: args.seed,
        ..RecipeParams::default()
    };
    let params = net_params(&args.net, data_params(&args.data, params));
    Ok(params.check()?)
}

pub fn run(args: &TrainArgs) -> anyhow::Result<TrainMetrics> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let recipe = recipe(args)?;
    let mut timings = Timings::default();
    let metrics = toydiff::train(&recipe, &out, &Console::new(), &mut timings)?;
    timings.write(&out)?;
    Ok(metrics)
}
