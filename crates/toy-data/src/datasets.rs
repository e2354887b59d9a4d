//! The notebook's data sets and the true distributions behind them.
//!
//! The notebook draws with Julia's RNG (`Random.seed!(1234)`); its exact draws cannot be
//! reproduced here, so each function takes its own seed and draws with
//! `rand::rngs::StdRng::seed_from_u64(seed)`.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Covariance, GaussianMixture};

/// Class means of the 2-D set: class 0 at (−2, −2), class 1 at (2, 2).
pub const TWO_CLUSTERS_MEANS: [[f64; 2]; 2] = [[-2.0, -2.0], [2.0, 2.0]];
/// Standard deviation of each coordinate in the 2-D set.
pub const TWO_CLUSTERS_STD: f64 = 0.5;

/// Points with their class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPoints {
    /// n × d points.
    pub points: Array2<f64>,
    /// The class of each row.
    pub labels: Vec<usize>,
}

/// The notebook's 2-D set: `n_per_class` points of class 0 ~ N((−2,−2), 0.5² I), then
/// `n_per_class` of class 1 ~ N((2,2), 0.5² I); labels 0 then 1.
pub fn two_clusters(n_per_class: usize, seed: u64) -> LabelledPoints {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = 2 * n_per_class;
    let mut points = Array2::zeros((n, 2));
    let mut labels = Vec::with_capacity(n);
    for (i, mut row) in points.rows_mut().into_iter().enumerate() {
        let class = i / n_per_class.max(1);
        for (j, v) in row.iter_mut().enumerate() {
            let e: f64 = StandardNormal.sample(&mut rng);
            *v = TWO_CLUSTERS_MEANS[class][j] + TWO_CLUSTERS_STD * e;
        }
        labels.push(class);
    }
    LabelledPoints { points, labels }
}

/// The distribution behind [`two_clusters`]: ½ N((−2,−2), 0.25 I) + ½ N((2,2), 0.25 I);
/// component k is class k.
pub fn two_clusters_mixture() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.5, 0.5],
        TWO_CLUSTERS_MEANS.iter().map(|m| m.to_vec()).collect(),
        vec![Covariance::Isotropic(TWO_CLUSTERS_STD * TWO_CLUSTERS_STD); 2],
    )
    .expect("constant parameters are valid")
}

/// The notebook's first mixture: 0.4·N(−2, 0.5²) + 0.6·N(3, 1²).
pub fn notebook_gmm_1d() -> GaussianMixture {
    GaussianMixture::univariate(&[0.4, 0.6], &[-2.0, 3.0], &[0.5, 1.0])
        .expect("constant parameters are valid")
}

/// The flexibility demo's data: 200 draws of N(−3, 1²), then 300 of N(4, 1.5²).
pub fn flexibility_data(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |mean: f64, sd: f64| {
        let e: f64 = StandardNormal.sample(&mut rng);
        mean + sd * e
    };
    let mut v: Vec<f64> = (0..200).map(|_| draw(-3.0, 1.0)).collect();
    v.extend((0..300).map(|_| draw(4.0, 1.5)));
    v
}

/// The distribution behind [`flexibility_data`]: 0.4·N(−3, 1²) + 0.6·N(4, 1.5²).
pub fn flexibility_truth() -> GaussianMixture {
    GaussianMixture::univariate(&[0.4, 0.6], &[-3.0, 4.0], &[1.0, 1.5])
        .expect("constant parameters are valid")
}
