//! The β schedule travels with the checkpoints: a network trained with the cosine
//! schedule is sampled with the cosine schedule, read back from `recipe.json`.

use sampler::{sample, SamplerConfig};
use schedule::{NoiseSchedule, ScheduleKind};
use toydiff::{Checkpoint, OutDir, RecipeParams, SampleSettings, Silent, Timings};

use crate::common::scratch;

#[test]
fn a_cosine_trained_checkpoint_samples_with_the_cosine_schedule() {
    let dir = scratch("cosine");
    let out = OutDir::new(&dir).unwrap();
    let cosine = ScheduleKind::Cosine { offset: 0.008 };
    let recipe = RecipeParams {
        schedule: Some(cosine),
        num_steps: 60,
        steps: Some(30),
        epochs: Some(1),
        seed: 5,
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    let metrics = toydiff::train(&recipe, &out, &Silent, &mut Timings::default()).unwrap();
    assert_eq!(metrics.beta_schedule, "cosine");

    let checkpoint = Checkpoint::load(&out.path("checkpoints")).unwrap();
    assert_eq!(checkpoint.recipe, recipe, "recipe.json holds the recipe");
    assert_eq!(checkpoint.run_id, metrics.run_id);
    let schedule = checkpoint.recipe.noise_schedule().unwrap();
    assert_eq!(schedule.kind(), cosine);
    assert_eq!(schedule.num_steps(), 60);

    // The library's sampling stage draws exactly what the sampler draws with the cosine
    // schedule (same seed: the same bits), and not what it draws with the linear one.
    let settings = SampleSettings {
        n: 40,
        snapshot_every: 60,
        ..SampleSettings::default()
    };
    let runs = toydiff::sample::generate(&settings, &checkpoint, &Silent, &mut Timings::default())
        .unwrap();
    let config = SamplerConfig {
        num_samples: 40,
        snapshot_every: 60,
        // The unguided run's seed: the settings' seed + 10.
        seed: settings.seed + 10,
        ..SamplerConfig::default()
    };
    let with = |s: &NoiseSchedule| {
        sample(&checkpoint.denoiser, s, None, &config)
            .unwrap()
            .final_points()
            .to_vec()
    };
    assert_eq!(runs.unguided.final_points(), with(&schedule).as_slice());
    let linear = NoiseSchedule::new(ScheduleKind::NOTEBOOK_LINEAR, 60).unwrap();
    assert_ne!(runs.unguided.final_points(), with(&linear).as_slice());
    std::fs::remove_dir_all(&dir).unwrap();
}
