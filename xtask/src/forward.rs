//! `cargo xtask forward`: the noise schedules and the forward-diffusion animation
//! (the notebook's sections 2 and 3).

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};
use schedule::{NoiseSchedule, ScheduleKind};
use viz::{Color, Curve, LineChart, Panel, PointSeries, Scatter};

use crate::console::say;
use crate::data::Prepared;
use crate::flags::{default_out, ForwardArgs};
use crate::output::{OutDir, Timings};

pub fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    let out = OutDir::new(&args.out.clone().unwrap_or_else(default_out))?;
    let mut timings = Timings::default();
    let start = Instant::now();
    // Everything is read and checked before any file is written.
    let data = Prepared::from_args(&args.data, args.seed, 1)?;
    let schedule = NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, args.steps)?;
    schedule_figure(&out, args.steps)?;
    forward_gif(&out, &data, &schedule, args.seed, args.every)?;
    timings.record("forward", start.elapsed().as_secs_f64());
    timings.write(&out)
}

/// `schedule.png`: β_t, ᾱ_t and SNR_t = ᾱ_t/(1 − ᾱ_t) of every schedule, T steps.
fn schedule_figure(out: &OutDir, steps: usize) -> anyhow::Result<()> {
    let kinds: Vec<(ScheduleKind, Color)> = ScheduleKind::NAMES
        .iter()
        .zip([Color::BLUE, Color::ORANGE, Color::GREEN])
        .map(|(name, color)| (name.parse().expect("a known name"), color))
        .collect();
    let mut panels = vec![
        chart(
            "β_t: noise variance added at step t",
            "β_t (log scale)",
            true,
        ),
        chart("ᾱ_t: signal variance left after t steps", "ᾱ_t", false),
        chart("SNR_t = ᾱ_t / (1 − ᾱ_t)", "SNR (log scale)", true),
    ];
    for (kind, color) in kinds {
        let s = NoiseSchedule::new(kind, steps)?;
        let curve = |f: &dyn Fn(usize) -> f64| -> Curve {
            let points = (1..=steps).map(|t| (t as f64, f(t))).collect();
            Curve::new(kind.name(), points, color)
        };
        let label = match kind {
            ScheduleKind::Linear { .. } => "linear (the notebook's)",
            ScheduleKind::Quadratic { .. } => "quadratic",
            ScheduleKind::Cosine { .. } => "cosine (Nichol & Dhariwal)",
        };
        let mut c = [
            curve(&|t| s.beta(t)),
            curve(&|t| s.alpha_bar(t)),
            curve(&|t| s.snr(t)),
        ];
        for (panel, curve) in panels.iter_mut().zip(c.iter_mut()) {
            curve.label = label.to_string();
            panel.curves.push(curve.clone());
        }
    }
    let panels: Vec<Panel> = panels.into_iter().map(Panel::Line).collect();
    let png = viz::render_png(&panels, 3, 1500, 500)?;
    let path = out.write("schedule.png", &png)?;
    say!("wrote {}", path.display());
    Ok(())
}

fn chart(title: &str, y_label: &str, log_y: bool) -> LineChart {
    LineChart {
        title: title.into(),
        x_label: "step t".into(),
        y_label: y_label.into(),
        log_y,
        ..LineChart::default()
    }
}

/// `forward_diffusion.gif`: the data (blue) and its diffused copy (red). The data is
/// diffused in the networks' standardised units and shown in its own.
fn forward_gif(
    out: &OutDir,
    data: &Prepared,
    schedule: &NoiseSchedule,
    seed: u64,
    every: usize,
) -> anyhow::Result<()> {
    let x0: Vec<f64> = data
        .train_standardised()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(100));
    let snapshots = schedule.forward_snapshots(&x0, every, &mut rng)?;
    let (x_range, y_range) = data.axes();
    let shown = |points: &[f64]| {
        let mut p = points.to_vec();
        data.meta.standardizer.inverse_slice(&mut p);
        pairs(&p)
    };
    let original = shown(&x0);
    let names = &data.meta.column_names;
    let frames: Vec<Vec<Panel>> = snapshots
        .iter()
        .map(|s| {
            vec![Panel::Scatter(Scatter {
                title: format!("Forward diffusion, t = {}", s.t),
                x_label: names[0].clone(),
                y_label: names[1].clone(),
                x_range,
                y_range,
                series: vec![
                    PointSeries::new("Original", original.clone(), Color::BLUE),
                    PointSeries::new("Diffused", shown(&s.points), Color::RED).alpha(0.5),
                ],
            })]
        })
        .collect();
    let gif = viz::render_gif(&frames, 1, 640, 600, 7)?;
    let path = out.write("forward_diffusion.gif", &gif)?;
    say!("wrote {} ({} frames)", path.display(), frames.len());
    Ok(())
}

/// Row-major 2-D points as (x, y) pairs.
pub fn pairs<T: Copy + Into<f64>>(flat: &[T]) -> Vec<(f64, f64)> {
    flat.chunks_exact(2)
        .map(|p| (p[0].into(), p[1].into()))
        .collect()
}
