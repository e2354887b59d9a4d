//! The `forward` stage: the noise schedules and the forward-diffusion animation (the
//! notebook's sections 2 and 3).

use rand::{rngs::StdRng, SeedableRng};
use schedule::{NoiseSchedule, ScheduleKind, Snapshot};
use viz::{Color, Curve, LineChart, Panel, PointSeries, Scatter};

use crate::data::Prepared;
use crate::error::Result;
use crate::observer::{say, Observer};
use crate::output::OutDir;
use crate::sample::{figure_rows, FIGURE_DATA_SEED};

/// The `forward` stage: `schedule.png` (every schedule, `schedule.num_steps()` steps) and
/// `forward_diffusion.gif` (the data diffused with `schedule`, a frame every `every` steps).
pub fn forward(
    data: &Prepared,
    schedule: &NoiseSchedule,
    seed: u64,
    every: usize,
    out: &OutDir,
    obs: &dyn Observer,
) -> Result<()> {
    let path = out.write("schedule.png", &schedule_figure(schedule.num_steps())?)?;
    say!(obs, "wrote {}", path.display());
    let snapshots = forward_snapshots(data, schedule, seed, every)?;
    let gif = forward_gif(data, &snapshots)?;
    let path = out.write("forward_diffusion.gif", &gif)?;
    say!(obs, "wrote {} ({} frames)", path.display(), snapshots.len());
    Ok(())
}

/// `schedule.png`: β_t, ᾱ_t and SNR_t = ᾱ_t/(1 − ᾱ_t) of every schedule, T steps.
pub fn schedule_figure(steps: usize) -> Result<Vec<u8>> {
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
    Ok(viz::render_png(&panels, 3, 1500, 500)?)
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

/// The training rows diffused with `schedule` in the networks' standardised units, a
/// snapshot every `every` steps (x_t = √α_t x_{t−1} + √β_t ε, Ho et al. 2020, eq. 2):
/// every row up to [`FIGURE_POINTS`](crate::sample::FIGURE_POINTS), else a seeded subset of that many (what the GIF
/// draws).
pub fn forward_snapshots(
    data: &Prepared,
    schedule: &NoiseSchedule,
    seed: u64,
    every: usize,
) -> Result<Vec<Snapshot>> {
    let train = data.train_standardised();
    let x0: Vec<f64> = match figure_rows(train.len() / 2, FIGURE_DATA_SEED) {
        None => train.iter().map(|&v| v as f64).collect(),
        Some(rows) => rows
            .iter()
            .flat_map(|&r| [train[2 * r] as f64, train[2 * r + 1] as f64])
            .collect(),
    };
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(100));
    Ok(schedule.forward_snapshots(&x0, every, &mut rng)?)
}

/// `forward_diffusion.gif`: the data (blue) and its diffused copy (red), shown in the
/// data's own units; the first snapshot is the data itself.
pub fn forward_gif(data: &Prepared, snapshots: &[Snapshot]) -> Result<Vec<u8>> {
    let (x_range, y_range) = data.axes();
    let shown = |points: &[f64]| {
        let mut p = points.to_vec();
        data.meta.standardizer.inverse_slice(&mut p);
        pairs(&p)
    };
    let original = shown(&snapshots[0].points);
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
    Ok(viz::render_gif(&frames, 1, 640, 600, 7)?)
}

/// Row-major 2-D points as (x, y) pairs.
pub fn pairs<T: Copy + Into<f64>>(flat: &[T]) -> Vec<(f64, f64)> {
    flat.chunks_exact(2)
        .map(|p| (p[0].into(), p[1].into()))
        .collect()
}
