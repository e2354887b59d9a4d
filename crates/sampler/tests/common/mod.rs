//! Helpers shared by the sampler's integration tests.

use candle_core::Tensor;
use models::{ExactMixture, NoisePredictor};
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

/// A 2-D denoiser for T = 500 that returns NaN at step `.0` and 0 elsewhere, as a
/// diverged network would.
pub struct BrokenAt(pub usize);

impl NoisePredictor for BrokenAt {
    fn num_steps(&self) -> usize {
        500
    }
    fn dim(&self) -> usize {
        2
    }
    fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        let v = if t == self.0 { f64::NAN } else { 0.0 };
        x_t.ones_like()?.affine(v, 0.0)
    }
}
