//! The notebook's schedule with the schedule crate alone: a few coefficients, and forward
//! diffusion of a point cloud step by step against the closed form q(x_t | x_0).
//!
//! `cargo run -p toydiff-schedule --example forward`

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use schedule::{NoiseSchedule, ScheduleKind};

fn main() -> Result<(), schedule::ScheduleError> {
    let s = NoiseSchedule::notebook();
    println!("  t      β_t      ᾱ_t     SNR_t    β̃_t");
    for t in [1, 100, 250, 400, 500] {
        println!(
            "{t:>3}  {:.5}  {:.5}  {:>8.4}  {:.5}",
            s.beta(t),
            s.alpha_bar(t),
            s.snr(t),
            s.posterior_variance(t)
        );
    }
    // 5,000 copies of x_0 = 2, diffused step by step and in closed form to t = 250.
    let mut rng = StdRng::seed_from_u64(1);
    let x0 = vec![2.0; 5000];
    let snaps = s.forward_snapshots(&x0, 250, &mut rng)?;
    let noise: Vec<f64> = (0..x0.len()).map(|_| rng.sample(StandardNormal)).collect();
    let closed = s.q_sample(&x0, 250, &noise);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "t = 250: step-by-step mean {:.3}, closed-form mean {:.3}, exact 2√ᾱ = {:.3}",
        mean(&snaps[1].points),
        mean(&closed),
        2.0 * s.sqrt_alpha_bar(250)
    );
    let cosine = NoiseSchedule::new("cosine".parse::<ScheduleKind>()?, 500)?;
    println!("cosine schedule: ᾱ_250 = {:.4}", cosine.alpha_bar(250));
    Ok(())
}
