//! Helpers shared by the sampler's integration tests.

use models::ExactMixture;
use schedule::NoiseSchedule;

/// The notebook's 2-D training set (seed 1234, 500 points a class) as f32 rows and u32 labels.
pub fn notebook_data() -> (Vec<f32>, Vec<u32>) {
    let data = toy_data::two_clusters(500, 1234);
    (
        data.points.iter().map(|&v| v as f32).collect(),
        data.labels.iter().map(|&l| l as u32).collect(),
    )
}

/// The notebook's schedule and the exact model of its two clusters.
pub fn exact() -> (NoiseSchedule, ExactMixture) {
    let schedule = NoiseSchedule::notebook();
    let exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule).unwrap();
    (schedule, exact)
}
