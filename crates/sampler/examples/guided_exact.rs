//! Classifier-guided DDPM sampling with sampler alone, from the exact model of the
//! notebook's two clusters (no training): prints the guided precision of each class.
//!
//! `cargo run -p toydiff-sampler --example guided_exact`

use models::ExactMixture;
use sampler::metrics::{guided_precision, widen};
use sampler::{sample, ClassifierGuidance, SamplerConfig};
use schedule::NoiseSchedule;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule = NoiseSchedule::notebook();
    let truth = toy_data::two_clusters_mixture();
    let exact = ExactMixture::new(&truth, &schedule)?;
    let (denoiser, classifier) = (exact.denoiser(), exact.classifier());
    for class in 0..2u32 {
        let config = SamplerConfig {
            num_samples: 500,
            seed: 10 + class as u64,
            ..SamplerConfig::default()
        };
        let guidance = ClassifierGuidance::one_class(&classifier, class, 30.0, config.num_samples)?;
        let run = sample(&denoiser, &schedule, Some(&guidance), &config)?;
        let precision = guided_precision(&widen(run.final_points()), &truth, class as usize);
        println!(
            "class {class}: {:.1}% of 500 guided samples land in their class ({} snapshots kept)",
            100.0 * precision,
            run.snapshots.len()
        );
    }
    Ok(())
}
