//! The exact references with models alone (no training): for the notebook's two clusters,
//! the Bayes-optimal accuracy of a noisy classifier at several t and the denoiser-loss floor.
//!
//! `cargo run -p toydiff-models --example exact_references`

use models::{accuracy_curve, bayes_accuracy_closed_form, denoiser_loss_floor, ExactMixture};
use schedule::NoiseSchedule;

fn main() -> Result<(), models::ModelError> {
    let schedule = NoiseSchedule::notebook();
    let mixture = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&mixture, &schedule)?;
    let ts = [100, 200, 250, 300, 400, 500];
    let curve = accuracy_curve(&exact.classifier(), &mixture, &schedule, &ts, 10_000, 3)?;
    println!("  t   exact classifier (10,000 points)   closed form Φ");
    for p in &curve {
        let closed = bayes_accuracy_closed_form(&mixture, &schedule, p.t)?;
        println!(
            "{:>3}   {:.4} ± {:.4}                    {:.4}",
            p.t, p.accuracy, p.std_error, closed
        );
    }
    let floor = denoiser_loss_floor(&mixture, &schedule, 100_000, 4)?;
    println!(
        "denoiser loss floor: {:.4} ± {:.4} (the notebook's data: about 0.335)",
        floor.mean, floor.std_error
    );
    Ok(())
}
