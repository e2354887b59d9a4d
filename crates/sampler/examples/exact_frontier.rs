//! The discretisation error of each sampler alone: unguided samples from the exact score
//! of the notebook's two clusters (no network), 5,000 of them, at K = 5 … 500 steps, and
//! their energy distance to the true mixture beside its noise floor at the same size.
//!
//! `cargo run -p toydiff-sampler --example exact_frontier`

use models::ExactMixture;
use rand::{rngs::StdRng, SeedableRng};
use sampler::metrics::{energy_distance, energy_noise_floor, widen};
use sampler::{sample, sample_solver, timesteps, ReverseVariance, SamplerConfig, Solver};
use schedule::NoiseSchedule;

const N: usize = 5000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule)?;
    let den = exact.denoiser();
    let fresh = truth.sample(N, &mut StdRng::seed_from_u64(1));
    let floor = energy_noise_floor(&truth, N, 20, 2);
    println!("noise floor at n = {N}: p95 {:.5} (20 pairs)", floor.p95);
    let config = SamplerConfig {
        num_samples: N,
        seed: 3,
        snapshot_every: 1000,
        ..SamplerConfig::default()
    };
    let distance = |points: &[f32]| energy_distance(&widen(points), fresh.as_slice().unwrap(), 2);
    for variance in [ReverseVariance::Beta, ReverseVariance::Posterior] {
        let config = SamplerConfig {
            variance,
            ..config.clone()
        };
        let run = sample(&den, &schedule, None, &config)?;
        println!(
            "DDPM {variance:?}, 500 evaluations: {:.5}",
            distance(run.final_points())
        );
    }
    let solvers = [
        ("DDIM η=0", Solver::Ddim { eta: 0.0 }),
        ("DDIM η=1", Solver::Ddim { eta: 1.0 }),
        ("Heun", Solver::Heun),
        ("DPM-Solver++(2M)", Solver::DpmSolver2M),
    ];
    for (name, solver) in solvers {
        for k in [5, 10, 20, 50, 100, 250, 500] {
            let run = sample_solver(&den, &schedule, None, solver, &timesteps(500, k)?, &config)?;
            let ed = distance(run.final_points());
            let mark = if ed <= floor.p95 {
                "  at the floor"
            } else {
                ""
            };
            println!(
                "{name}, K = {k} ({} evaluations): {ed:.5}{mark}",
                solver.model_evaluations(k)
            );
        }
    }
    Ok(())
}
