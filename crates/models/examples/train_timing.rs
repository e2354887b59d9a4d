//! Times the notebook's two training runs and reports their quality.
//!
//! Run in release on one thread, as the binary will:
//! `RAYON_NUM_THREADS=1 cargo run -p toydiff-models --example train_timing`

use std::time::Instant;

use models::{
    accuracy_curve, denoiser_loss, denoiser_loss_floor, train_classifier, train_denoiser,
    ClassifierConfig, ClassifierTraining, DenoiserConfig, DenoiserTraining, NoisePredictor,
    NoisyClassifier,
};
use schedule::NoiseSchedule;

// The binary uses mimalloc: glibc malloc page-faults on candle's per-op buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `train_timing denoiser` or `train_timing classifier` runs one loop only (for profilers).
    let only = std::env::args().nth(1);
    let run = |what: &str| only.as_deref().is_none_or(|o| o == what);
    let schedule = NoiseSchedule::notebook();
    let mixture = toy_data::two_clusters_mixture();
    let data = toy_data::two_clusters(500, 1234);
    let flat: Vec<f32> = data.points.iter().map(|&v| v as f32).collect();
    let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();

    let mut den: Option<models::DenoiserNet> = None;
    if run("denoiser") {
        let cfg = DenoiserTraining::default();
        let start = Instant::now();
        let (net, losses) = train_denoiser(
            &flat,
            2,
            &schedule,
            &DenoiserConfig::default(),
            &cfg,
            &mut |_, _| {},
        )?;
        let den_time = start.elapsed();
        let tail = &losses[losses.len() - 200..];
        println!(
            "denoiser: {} steps in {:.3} s ({:.0} µs/step); mean loss of the last 200 steps {:.4}",
            cfg.steps,
            den_time.as_secs_f64(),
            den_time.as_secs_f64() * 1e6 / cfg.steps as f64,
            tail.iter().sum::<f32>() / 200.0
        );
        let held_out = denoiser_loss(&net, &flat, &schedule, 100_000, 11)?;
        let floor = denoiser_loss_floor(&mixture, &schedule, 200_000, 5)?;
        println!(
            "denoiser loss on 100,000 draws {:.4} ± {:.4}; floor {:.4} ± {:.4}",
            held_out.mean, held_out.std_error, floor.mean, floor.std_error
        );
        den = Some(net);
    }
    if !run("classifier") {
        return Ok(());
    }

    let cfg = ClassifierTraining::default();
    let start = Instant::now();
    let (clf, losses) = train_classifier(
        &flat,
        2,
        &labels,
        &schedule,
        &ClassifierConfig::default(),
        &cfg,
        &mut |_, _| {},
    )?;
    let clf_time = start.elapsed();
    println!(
        "classifier: {} steps in {:.3} s ({:.0} µs/step); last loss {:.4}",
        losses.len(),
        clf_time.as_secs_f64(),
        clf_time.as_secs_f64() * 1e6 / losses.len() as f64,
        losses[losses.len() - 1]
    );
    // What one guided sampling step asks of the models: ε_θ and ∇ log p(y | x_t) for 500 points.
    let clf = clf.detached();
    let x = candle_core::Tensor::randn(0f32, 1.0, (500, 2), &candle_core::Device::Cpu)?;
    let y = candle_core::Tensor::from_vec(vec![1u32; 500], 500, &candle_core::Device::Cpu)?;
    let start = Instant::now();
    for t in (1..=500).rev() {
        clf.grad_log_prob(&x, t, &y)?;
    }
    println!(
        "guidance gradient, 500 points: {:.0} µs a step",
        start.elapsed().as_secs_f64() * 1e6 / 500.0
    );
    if let Some(den) = &den {
        let start = Instant::now();
        for t in (1..=500).rev() {
            den.predict_noise(&x, t)?;
        }
        println!(
            "noise prediction, 500 points: {:.0} µs a step",
            start.elapsed().as_secs_f64() * 1e6 / 500.0
        );
    }
    for p in accuracy_curve(
        &clf,
        &mixture,
        &schedule,
        &[100, 200, 250, 300, 400, 500],
        10_000,
        2024,
    )? {
        println!(
            "t = {:3}: accuracy {:.4} ± {:.4}, Bayes on the same points {:.4}",
            p.t, p.accuracy, p.std_error, p.bayes_accuracy
        );
    }
    Ok(())
}
