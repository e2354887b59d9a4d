//! Built-in seeded 2-D toy data sets: the notebook's two clusters and the usual
//! density-estimation toys (scikit-learn's moons and circles, FFJORD's eight Gaussians
//! and checkerboard, a 2-D Swiss roll, an Archimedean spiral).
//!
//! Every set is drawn with `rand::rngs::StdRng::seed_from_u64(seed)`: the same
//! `(n, seed)` gives the same points. Labelled sets are balanced and *blocked*: class 0's
//! rows come first, then class 1's, and so on; with `K` classes, class `k` has
//! `n / K` rows plus one more when `k < n % K`, so counts differ by at most one.
//! Columns are named `"x"` and `"y"`.
//!
//! | name | labels | default n |
//! |---|---|---|
//! | `two-clusters` | `"0"`, `"1"` | 1000 (500 a class, as the notebook) |
//! | `moons` | `"upper"`, `"lower"` | 2000 |
//! | `circles` | `"outer"`, `"inner"` | 2000 |
//! | `eight-gaussians` | `"E"`, `"NE"`, `"N"`, `"NW"`, `"W"`, `"SW"`, `"S"`, `"SE"` | 4000 |
//! | `checkerboard` | — | 4000 |
//! | `swiss-roll` | — | 4000 |
//! | `spiral` | — | 2000 |

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use ndarray::{s, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::datasets::two_clusters;
use crate::{Covariance, DataError, GaussianMixture};

/// Noise standard deviation of [`moons`] (scikit-learn's `noise=0.1`).
pub const MOONS_NOISE: f64 = 0.1;
/// Radius of the inner circle of [`circles`] (scikit-learn's `factor=0.5`).
pub const CIRCLES_FACTOR: f64 = 0.5;
/// Noise standard deviation of [`circles`] (scikit-learn's `noise=0.05`).
pub const CIRCLES_NOISE: f64 = 0.05;
/// Radius of the circle carrying the centres of [`eight_gaussians`].
pub const EIGHT_GAUSSIANS_RADIUS: f64 = 4.0;
/// Standard deviation of each coordinate of each [`eight_gaussians`] component.
pub const EIGHT_GAUSSIANS_STD: f64 = 0.4;
/// Compass names of the [`eight_gaussians`] classes, centre k at angle k·π/4.
pub const EIGHT_GAUSSIANS_NAMES: [&str; 8] = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"];
/// Noise standard deviation of [`swiss_roll`] (per coordinate, after scaling).
pub const SWISS_ROLL_NOISE: f64 = 0.1;
/// Noise standard deviation of [`spiral`] (per coordinate).
pub const SPIRAL_NOISE: f64 = 0.1;
/// Largest angle of [`spiral`]: two full turns.
pub const SPIRAL_MAX_ANGLE: f64 = 4.0 * PI;

/// A 2-D data set: points, optional class labels and names.
///
/// Generalises [`LabelledPoints`](crate::LabelledPoints) with class and column names
/// and a set name.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset2d {
    /// n × 2 points.
    pub points: Array2<f64>,
    /// The class of each row (an index into `class_names`), or `None` when unlabelled.
    pub labels: Option<Vec<usize>>,
    /// Name of each class; empty when unlabelled.
    pub class_names: Vec<String>,
    /// Names of the two columns (`"x"`, `"y"` for the built-in sets).
    pub column_names: [String; 2],
    /// Name of the set (a [`BuiltinSet::name`] for the built-in sets).
    pub name: String,
}

impl Dataset2d {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.nrows()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.nrows() == 0
    }

    /// Number of classes (0 when unlabelled).
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Points per class, indexed like `class_names`; `None` when unlabelled.
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let mut counts = vec![0; self.class_names.len()];
        for &l in labels {
            counts[l] += 1;
        }
        Some(counts)
    }
}

/// The built-in 2-D toy data sets, named in kebab-case (see [`BuiltinSet::NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinSet {
    /// The notebook's two clusters ([`two_clusters`]).
    TwoClusters,
    /// scikit-learn's two interleaved half circles ([`moons`]).
    Moons,
    /// scikit-learn's two concentric circles ([`circles`]).
    Circles,
    /// FFJORD's eight Gaussians on a circle ([`eight_gaussians`]).
    EightGaussians,
    /// FFJORD's checkerboard ([`checkerboard`]).
    Checkerboard,
    /// A 2-D Swiss roll ([`swiss_roll`]).
    SwissRoll,
    /// A one-armed Archimedean spiral ([`spiral`]).
    Spiral,
}

impl BuiltinSet {
    /// Every set, in the order of [`BuiltinSet::NAMES`].
    pub const ALL: [BuiltinSet; 7] = [
        BuiltinSet::TwoClusters,
        BuiltinSet::Moons,
        BuiltinSet::Circles,
        BuiltinSet::EightGaussians,
        BuiltinSet::Checkerboard,
        BuiltinSet::SwissRoll,
        BuiltinSet::Spiral,
    ];

    /// The names accepted by [`FromStr`], in the order of [`BuiltinSet::ALL`].
    pub const NAMES: [&'static str; 7] = [
        "two-clusters",
        "moons",
        "circles",
        "eight-gaussians",
        "checkerboard",
        "swiss-roll",
        "spiral",
    ];

    /// The kebab-case name, e.g. `"eight-gaussians"`.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The default number of points: 1000 for two-clusters (500 a class, as the
    /// notebook), 2000 for moons, circles and spiral, 4000 for eight-gaussians (500 a
    /// class), checkerboard and swiss-roll.
    pub fn default_size(self) -> usize {
        match self {
            BuiltinSet::TwoClusters => 1000,
            BuiltinSet::Moons | BuiltinSet::Circles | BuiltinSet::Spiral => 2000,
            BuiltinSet::EightGaussians | BuiltinSet::Checkerboard | BuiltinSet::SwissRoll => 4000,
        }
    }

    /// Whether the set has class labels.
    pub fn is_labelled(self) -> bool {
        self.n_classes() > 0
    }

    /// Number of classes: 2 for two-clusters, moons and circles, 8 for
    /// eight-gaussians, 0 (unlabelled) for the rest.
    pub fn n_classes(self) -> usize {
        match self {
            BuiltinSet::TwoClusters | BuiltinSet::Moons | BuiltinSet::Circles => 2,
            BuiltinSet::EightGaussians => 8,
            BuiltinSet::Checkerboard | BuiltinSet::SwissRoll | BuiltinSet::Spiral => 0,
        }
    }

    /// The class names (empty when unlabelled).
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            BuiltinSet::TwoClusters => &["0", "1"],
            BuiltinSet::Moons => &["upper", "lower"],
            BuiltinSet::Circles => &["outer", "inner"],
            BuiltinSet::EightGaussians => &EIGHT_GAUSSIANS_NAMES,
            BuiltinSet::Checkerboard | BuiltinSet::SwissRoll | BuiltinSet::Spiral => &[],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Draws `n` points with `StdRng::seed_from_u64(seed)`; same as [`builtin`].
    pub fn generate(self, n: usize, seed: u64) -> Dataset2d {
        match self {
            BuiltinSet::TwoClusters => two_clusters_set(n, seed),
            BuiltinSet::Moons => moons(n, seed),
            BuiltinSet::Circles => circles(n, seed),
            BuiltinSet::EightGaussians => eight_gaussians(n, seed),
            BuiltinSet::Checkerboard => checkerboard(n, seed),
            BuiltinSet::SwissRoll => swiss_roll(n, seed),
            BuiltinSet::Spiral => spiral(n, seed),
        }
    }

    /// The exact distribution for the sets that are Gaussian mixtures, component k
    /// being class k: two-clusters ([`two_clusters_mixture`](crate::two_clusters_mixture))
    /// and eight-gaussians (weights 1/8, means 4·(cos kπ/4, sin kπ/4), covariance
    /// 0.4² I). `None` for the others.
    ///
    /// The generators draw balanced, blocked classes rather than i.i.d. component
    /// labels, so a drawn set is a stratified sample of this mixture.
    pub fn true_mixture(self) -> Option<GaussianMixture> {
        match self {
            BuiltinSet::TwoClusters => Some(crate::two_clusters_mixture()),
            BuiltinSet::EightGaussians => Some(
                GaussianMixture::new(
                    vec![1.0 / 8.0; 8],
                    eight_gaussians_centres()
                        .iter()
                        .map(|c| c.to_vec())
                        .collect(),
                    vec![Covariance::Isotropic(EIGHT_GAUSSIANS_STD * EIGHT_GAUSSIANS_STD); 8],
                )
                .expect("constant parameters are valid"),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for BuiltinSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BuiltinSet {
    type Err = DataError;

    /// Parses a kebab-case name; surrounding spaces, ASCII case and `_` for `-` are
    /// forgiven. An unknown name is [`DataError::UnknownDataset`], listing the names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::NAMES
            .iter()
            .position(|&n| n == wanted)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| DataError::UnknownDataset {
                name: s.to_string(),
                allowed: Self::NAMES.iter().map(|n| n.to_string()).collect(),
            })
    }
}

/// Draws `n` points of `set` with `StdRng::seed_from_u64(seed)`.
pub fn builtin(set: BuiltinSet, n: usize, seed: u64) -> Dataset2d {
    set.generate(n, seed)
}

/// Rows of class `k` of `n_classes` in the blocked balanced layout.
fn class_size(n: usize, n_classes: usize, k: usize) -> usize {
    n / n_classes + usize::from(k < n % n_classes)
}

/// The labels of the blocked balanced layout: `class_size(n, K, 0)` zeros, then ones, ….
fn blocked_labels(n: usize, n_classes: usize) -> Vec<usize> {
    (0..n_classes)
        .flat_map(|k| std::iter::repeat_n(k, class_size(n, n_classes, k)))
        .collect()
}

/// numpy's `linspace(start, stop, m, endpoint)`.
fn linspace(start: f64, stop: f64, m: usize, endpoint: bool) -> impl Iterator<Item = f64> {
    let steps = if endpoint { m.saturating_sub(1) } else { m };
    let step = if steps == 0 {
        0.0
    } else {
        (stop - start) / steps as f64
    };
    (0..m).map(move |i| start + step * i as f64)
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Wraps generated points as the built-in set `which`.
fn set(which: BuiltinSet, points: Array2<f64>, labels: Option<Vec<usize>>) -> Dataset2d {
    Dataset2d {
        points,
        labels,
        class_names: which.class_names(),
        column_names: ["x".to_string(), "y".to_string()],
        name: which.name().to_string(),
    }
}

fn from_rows(rows: Vec<[f64; 2]>) -> Array2<f64> {
    let n = rows.len();
    Array2::from_shape_vec((n, 2), rows.into_iter().flatten().collect())
        .expect("n rows of 2 values")
}

/// The notebook's two clusters as a [`Dataset2d`]: class 0 ~ N((−2,−2), 0.5² I), class 1
/// ~ N((2,2), 0.5² I), classes `"0"`, `"1"`; the first `n` rows of
/// [`two_clusters`]`(⌈n/2⌉, seed)`, so an even `n` gives exactly
/// that function's points.
pub fn two_clusters_set(n: usize, seed: u64) -> Dataset2d {
    let lp = two_clusters(n.div_ceil(2), seed);
    let points = lp.points.slice(s![..n, ..]).to_owned();
    let mut labels = lp.labels;
    labels.truncate(n);
    set(BuiltinSet::TwoClusters, points, Some(labels))
}

/// scikit-learn's `make_moons(n, noise=0.1, shuffle=False)`: upper (class 0)
/// (cos t, sin t) and lower (class 1) (1 − cos t, 0.5 − sin t), t = linspace(0, π) in
/// each, plus N(0, 0.1²) per coordinate.
pub fn moons(n: usize, seed: u64) -> Dataset2d {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = Vec::with_capacity(n);
    for k in 0..2 {
        for t in linspace(0.0, PI, class_size(n, 2, k), true) {
            let (x, y) = if k == 0 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            rows.push([
                x + MOONS_NOISE * normal(&mut rng),
                y + MOONS_NOISE * normal(&mut rng),
            ]);
        }
    }
    set(
        BuiltinSet::Moons,
        from_rows(rows),
        Some(blocked_labels(n, 2)),
    )
}

/// scikit-learn's `make_circles(n, factor=0.5, noise=0.05, shuffle=False)`: outer
/// (class 0) (cos t, sin t) and inner (class 1) 0.5·(cos t, sin t), t = linspace(0, 2π,
/// endpoint=False) in each, plus N(0, 0.05²) per coordinate.
pub fn circles(n: usize, seed: u64) -> Dataset2d {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = Vec::with_capacity(n);
    for (k, radius) in [1.0, CIRCLES_FACTOR].into_iter().enumerate() {
        for t in linspace(0.0, 2.0 * PI, class_size(n, 2, k), false) {
            rows.push([
                radius * t.cos() + CIRCLES_NOISE * normal(&mut rng),
                radius * t.sin() + CIRCLES_NOISE * normal(&mut rng),
            ]);
        }
    }
    set(
        BuiltinSet::Circles,
        from_rows(rows),
        Some(blocked_labels(n, 2)),
    )
}

/// The centres of [`eight_gaussians`]: 4·(cos kπ/4, sin kπ/4), k = 0..8 (E, NE, …, SE).
pub fn eight_gaussians_centres() -> [[f64; 2]; 8] {
    std::array::from_fn(|k| {
        let a = k as f64 * PI / 4.0;
        [
            EIGHT_GAUSSIANS_RADIUS * a.cos(),
            EIGHT_GAUSSIANS_RADIUS * a.sin(),
        ]
    })
}

/// FFJORD's eight Gaussians, rescaled: class k ~ N(4·(cos kπ/4, sin kπ/4), 0.4² I),
/// k = 0..8 named E, NE, N, NW, W, SW, S, SE (neighbouring centres 3.06 = 7.7σ apart).
pub fn eight_gaussians(n: usize, seed: u64) -> Dataset2d {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels = blocked_labels(n, 8);
    let centres = eight_gaussians_centres();
    let rows = labels
        .iter()
        .map(|&k| {
            [
                centres[k][0] + EIGHT_GAUSSIANS_STD * normal(&mut rng),
                centres[k][1] + EIGHT_GAUSSIANS_STD * normal(&mut rng),
            ]
        })
        .collect();
    set(BuiltinSet::EightGaussians, from_rows(rows), Some(labels))
}

/// FFJORD's checkerboard: x₁ ~ U[−2, 2), x₂ = U[0, 1) − 2·B + (⌊x₁⌋ mod 2) with
/// B ~ Bernoulli(½), point 2·(x₁, x₂): uniform on the 8 squares (i, j) of side 2 in
/// [−4, 4]² with ⌊x/2⌋ + ⌊y/2⌋ even. Unlabelled.
pub fn checkerboard(n: usize, seed: u64) -> Dataset2d {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = (0..n)
        .map(|_| {
            let x1 = rng.random::<f64>() * 4.0 - 2.0;
            let b = f64::from(u8::from(rng.random::<bool>()));
            let x2 = rng.random::<f64>() - 2.0 * b + x1.floor().rem_euclid(2.0);
            [2.0 * x1, 2.0 * x2]
        })
        .collect();
    set(BuiltinSet::Checkerboard, from_rows(rows), None)
}

/// The points of [`swiss_roll`] with each point's parameter t (as scikit-learn's
/// `make_swiss_roll` returns it): the same points, bit for bit, for the same `n` and `seed`.
pub fn swiss_roll_with_t(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ts = Vec::with_capacity(n);
    let rows = (0..n)
        .map(|_| {
            let t = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
            ts.push(t);
            [
                t * t.cos() / 3.0 + SWISS_ROLL_NOISE * normal(&mut rng),
                t * t.sin() / 3.0 + SWISS_ROLL_NOISE * normal(&mut rng),
            ]
        })
        .collect();
    (from_rows(rows), ts)
}

/// A 2-D Swiss roll (scikit-learn's `make_swiss_roll` in the (x, z) plane):
/// t ~ U[1.5π, 4.5π], point (t cos t, t sin t)/3 + N(0, 0.1²) per coordinate, so the
/// radius grows from π/2 to 3π/2 over 1.5 turns. Unlabelled.
pub fn swiss_roll(n: usize, seed: u64) -> Dataset2d {
    let (points, _) = swiss_roll_with_t(n, seed);
    set(BuiltinSet::SwissRoll, points, None)
}

/// The points of [`spiral`] with each point's angle θ: the same points, bit for bit, for
/// the same `n` and `seed`.
pub fn spiral_with_angle(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut angles = Vec::with_capacity(n);
    let rows = (0..n)
        .map(|_| {
            let theta = SPIRAL_MAX_ANGLE * rng.random::<f64>().sqrt();
            angles.push(theta);
            let r = theta / PI;
            [
                r * theta.cos() + SPIRAL_NOISE * normal(&mut rng),
                r * theta.sin() + SPIRAL_NOISE * normal(&mut rng),
            ]
        })
        .collect();
    (from_rows(rows), angles)
}

/// A one-armed Archimedean spiral: θ = 4π·√U, U ~ U[0, 1) (about uniform along the
/// arm), point (θ/π)·(cos θ, sin θ) + N(0, 0.1²) per coordinate: radius 0 to 4 over two
/// turns, arms 2 apart. Unlabelled.
pub fn spiral(n: usize, seed: u64) -> Dataset2d {
    let (points, _) = spiral_with_angle(n, seed);
    set(BuiltinSet::Spiral, points, None)
}
