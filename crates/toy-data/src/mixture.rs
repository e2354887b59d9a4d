//! Gaussian mixtures in any dimension: validated construction, sampling with the
//! latent component, densities (log-sum-exp), posteriors and the score.

use std::f64::consts::PI;
use std::fmt;

use ndarray::{Array2, ArrayView2};
use rand::distr::{Distribution, StandardUniform};
use rand_distr::StandardNormal;

use crate::DataError;

/// Weights may miss 1 by at most this much; the rest is renormalised away.
pub(crate) const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

/// Relative asymmetry allowed in a full covariance, against sqrt(Σ_ii Σ_jj).
const SYMMETRY_TOLERANCE: f64 = 1e-9;

/// Smallest Cholesky pivot accepted, relative to the diagonal entry.
const PIVOT_TOLERANCE: f64 = 1e-14;

/// The covariance of one component.
#[derive(Debug, Clone, PartialEq)]
pub enum Covariance {
    /// σ² I: one variance shared by every coordinate (1 free parameter).
    Isotropic(f64),
    /// diag(σ₁², …, σ_d²) (d free parameters).
    Diagonal(Vec<f64>),
    /// A symmetric positive-definite d×d matrix, row-major (d(d+1)/2 free parameters).
    Full(Vec<f64>),
}

impl Covariance {
    /// Free parameters of this parameterisation in dimension `d`: 1, d or d(d+1)/2.
    pub fn n_parameters(&self, d: usize) -> usize {
        match self {
            Covariance::Isotropic(_) => 1,
            Covariance::Diagonal(_) => d,
            Covariance::Full(_) => d * (d + 1) / 2,
        }
    }
}

/// A mixture of Gaussians p(x) = Σ_k π_k N(x; μ_k, Σ_k) in `dim()` dimensions.
///
/// Built validated ([`GaussianMixture::new`]); the Cholesky factor L_k (Σ_k = L_k L_kᵀ)
/// and log|Σ_k| of every component are computed once at construction.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    dim: usize,
    weights: Vec<f64>,
    log_weights: Vec<f64>,
    /// Running sums of the weights, for drawing the latent component.
    cumulative: Vec<f64>,
    /// Index of the last component with positive weight (fallback for rounding).
    last_positive: usize,
    means: Vec<Vec<f64>>,
    /// The parameterisation as given (kept for `n_parameters` and `Display`).
    covariances: Vec<Covariance>,
    /// Σ_k as a full row-major d×d matrix.
    matrices: Vec<Vec<f64>>,
    /// Lower Cholesky factor L_k, row-major d×d.
    cholesky: Vec<Vec<f64>>,
    /// log|Σ_k| = 2 Σ_i ln L_k,ii.
    log_dets: Vec<f64>,
}

impl GaussianMixture {
    /// Builds p(x) = Σ_k π_k N(x; μ_k, Σ_k), validating every parameter.
    ///
    /// Requires: at least one component; equal list lengths; every mean of the same
    /// dimension d ≥ 1 and finite; weights finite, ≥ 0 and summing to 1 within 1e-9
    /// (the rounding error is then renormalised away); variances > 0 and finite; full
    /// covariances d×d, symmetric (relative 1e-9) and positive definite. A full
    /// covariance is stored symmetrised: (Σ + Σᵀ)/2.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covariances: Vec<Covariance>,
    ) -> Result<Self, DataError> {
        let k = weights.len();
        if k == 0 && means.is_empty() && covariances.is_empty() {
            return Err(DataError::NoComponents);
        }
        if means.len() != k || covariances.len() != k {
            return Err(DataError::ComponentCountMismatch {
                weights: k,
                means: means.len(),
                covariances: covariances.len(),
            });
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err(DataError::ZeroDimension {
                what: "mean 0".into(),
            });
        }
        for (j, mean) in means.iter().enumerate() {
            if mean.len() != dim {
                return Err(DataError::DimensionMismatch {
                    what: format!("mean {j}"),
                    dim,
                    expected: dim,
                    found: mean.len(),
                });
            }
            if let Some((i, &v)) = mean.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(DataError::NonFiniteParameter {
                    what: format!("mean {j}[{i}]"),
                    value: v,
                });
            }
        }
        let mut weights = weights;
        for (index, &value) in weights.iter().enumerate() {
            if !value.is_finite() {
                return Err(DataError::NonFiniteParameter {
                    what: format!("weight {index}"),
                    value,
                });
            }
            if value < 0.0 {
                return Err(DataError::NegativeWeight { index, value });
            }
        }
        let sum: f64 = weights.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(DataError::WeightsSum { sum });
        }
        weights.iter_mut().for_each(|w| *w /= sum);

        let mut matrices = Vec::with_capacity(k);
        let mut cholesky = Vec::with_capacity(k);
        let mut log_dets = Vec::with_capacity(k);
        for (component, cov) in covariances.iter().enumerate() {
            let matrix = full_matrix(component, cov, dim)?;
            let l = cholesky_lower(&matrix, dim).map_err(|(row, pivot)| {
                DataError::NotPositiveDefinite {
                    component,
                    row,
                    pivot,
                }
            })?;
            log_dets.push(2.0 * (0..dim).map(|i| l[i * dim + i].ln()).sum::<f64>());
            matrices.push(matrix);
            cholesky.push(l);
        }

        let log_weights = weights.iter().map(|w| w.ln()).collect();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        let last_positive = weights.iter().rposition(|&w| w > 0.0).unwrap_or(k - 1);
        Ok(Self {
            dim,
            weights,
            log_weights,
            cumulative,
            last_positive,
            means,
            covariances,
            matrices,
            cholesky,
            log_dets,
        })
    }

    /// A 1-D mixture Σ_k π_k N(x; μ_k, σ_k²) from standard deviations σ_k > 0.
    pub fn univariate(weights: &[f64], means: &[f64], std_devs: &[f64]) -> Result<Self, DataError> {
        if weights.len() != means.len() || weights.len() != std_devs.len() {
            return Err(DataError::ComponentCountMismatch {
                weights: weights.len(),
                means: means.len(),
                covariances: std_devs.len(),
            });
        }
        let mut covariances = Vec::with_capacity(std_devs.len());
        for (component, &value) in std_devs.iter().enumerate() {
            if !(value > 0.0 && value.is_finite()) {
                return Err(DataError::NonPositiveStdDev { component, value });
            }
            covariances.push(Covariance::Isotropic(value * value));
        }
        Self::new(
            weights.to_vec(),
            means.iter().map(|&m| vec![m]).collect(),
            covariances,
        )
    }

    /// A single 1-D Normal N(x; μ, σ²) as a one-component mixture.
    pub fn normal(mean: f64, std_dev: f64) -> Result<Self, DataError> {
        Self::univariate(&[1.0], &[mean], &[std_dev])
    }

    /// The dimension d of x.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of components K.
    pub fn n_components(&self) -> usize {
        self.weights.len()
    }

    /// The mixing weights π_k (sum to 1).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The component means μ_k, each of length d.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// The covariances as parameterised at construction.
    pub fn covariances(&self) -> &[Covariance] {
        &self.covariances
    }

    /// Σ_k as a row-major d×d matrix. Panics if `k >= n_components()`.
    pub fn covariance_matrix(&self, k: usize) -> Vec<f64> {
        self.matrices[k].clone()
    }

    /// For a 1-D mixture, the variances σ_k²; `None` when d > 1.
    pub fn variances_1d(&self) -> Option<Vec<f64>> {
        (self.dim == 1).then(|| self.matrices.iter().map(|m| m[0]).collect())
    }

    /// Free parameters: (K − 1) weights + K·d means + Σ_k (covariance parameters of k).
    ///
    /// Covariance parameters count as given at construction: isotropic 1, diagonal d,
    /// full d(d+1)/2. Fitted mixtures ([`crate::fit_mixture`], [`crate::fit_normal`])
    /// use full covariances, so a fitted K-component mixture has
    /// (K − 1) + K·d + K·d(d+1)/2 parameters.
    pub fn n_parameters(&self) -> usize {
        let k = self.n_components();
        (k - 1)
            + k * self.dim
            + self
                .covariances
                .iter()
                .map(|c| c.n_parameters(self.dim))
                .sum::<usize>()
    }

    /// The mixture's mean `E[x] = Σ_k π_k μ_k`.
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.dim];
        for (w, mu) in self.weights.iter().zip(&self.means) {
            m.iter_mut().zip(mu).for_each(|(m, mu)| *m += w * mu);
        }
        m
    }

    /// The mixture's covariance `Cov[x] = Σ_k π_k (Σ_k + μ_k μ_kᵀ) − E[x] E[x]ᵀ`, row-major d×d.
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.dim;
        let m = self.mean();
        let mut c = vec![0.0; d * d];
        for ((w, mu), s) in self.weights.iter().zip(&self.means).zip(&self.matrices) {
            for i in 0..d {
                for j in 0..d {
                    c[i * d + j] += w * (s[i * d + j] + mu[i] * mu[j]);
                }
            }
        }
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] -= m[i] * m[j];
            }
        }
        c
    }

    /// Draws z ~ Categorical(π), then x ~ N(μ_z, Σ_z) as x = μ_z + L_z ε, ε ~ N(0, I).
    pub fn sample_one_with_latent<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> (Vec<f64>, usize) {
        let z = self.draw_component(rng);
        let mut x = vec![0.0; self.dim];
        self.draw_from_component(z, rng, &mut x);
        (x, z)
    }

    /// `n` draws of (x, z) as in the notebook's `generar_muestra_con_latente`:
    /// z ~ Categorical(π), x | z ~ N(μ_z, Σ_z). Returns x as an n × d array and the z's.
    pub fn sample_with_latent<R: rand::Rng + ?Sized>(
        &self,
        n: usize,
        rng: &mut R,
    ) -> (Array2<f64>, Vec<usize>) {
        let mut x = Array2::zeros((n, self.dim));
        let mut z = Vec::with_capacity(n);
        let mut buf = vec![0.0; self.dim];
        for mut row in x.rows_mut() {
            let k = self.draw_component(rng);
            self.draw_from_component(k, rng, &mut buf);
            row.iter_mut().zip(&buf).for_each(|(r, b)| *r = *b);
            z.push(k);
        }
        (x, z)
    }

    /// `n` draws x ~ p(x) as an n × d array (the same draws as [`Self::sample_with_latent`]).
    pub fn sample<R: rand::Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        self.sample_with_latent(n, rng).0
    }

    /// log N(x; μ_k, Σ_k) = −½ (d ln 2π + ln|Σ_k| + ‖L_k⁻¹(x − μ_k)‖²) (no weight).
    ///
    /// Panics if `k >= n_components()` or `x.len() != dim()`.
    pub fn component_log_pdf(&self, k: usize, x: &[f64]) -> f64 {
        self.check_len(x);
        let d = self.dim;
        let l = &self.cholesky[k];
        let mu = &self.means[k];
        // Forward substitution: y = L⁻¹ (x − μ), accumulating ‖y‖².
        let mut y = [0.0f64; 8];
        let mut heap;
        let y: &mut [f64] = if d <= 8 {
            &mut y[..d]
        } else {
            heap = vec![0.0; d];
            &mut heap
        };
        let mut maha = 0.0;
        for i in 0..d {
            let mut s = x[i] - mu[i];
            for j in 0..i {
                s -= l[i * d + j] * y[j];
            }
            y[i] = s / l[i * d + i];
            maha += y[i] * y[i];
        }
        -0.5 * (d as f64 * (2.0 * PI).ln() + self.log_dets[k] + maha)
    }

    /// log p(x) = log Σ_k π_k N(x; μ_k, Σ_k), computed by log-sum-exp.
    ///
    /// Panics if `x.len() != dim()`.
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        log_sum_exp(&self.weighted_log_pdfs(x))
    }

    /// p(x) = Σ_k π_k N(x; μ_k, Σ_k). Panics if `x.len() != dim()`.
    pub fn pdf(&self, x: &[f64]) -> f64 {
        self.log_pdf(x).exp()
    }

    /// p(z = k | x) = π_k N(x; μ_k, Σ_k) / Σ_j π_j N(x; μ_j, Σ_j), for every k.
    ///
    /// Panics if `x.len() != dim()`.
    pub fn posterior(&self, x: &[f64]) -> Vec<f64> {
        let mut a = self.weighted_log_pdfs(x);
        let lse = log_sum_exp(&a);
        a.iter_mut().for_each(|v| *v = (*v - lse).exp());
        a
    }

    /// ∇ₓ log p(x) = Σ_k p(z = k | x) Σ_k⁻¹ (μ_k − x).
    ///
    /// Panics if `x.len() != dim()`.
    pub fn score(&self, x: &[f64]) -> Vec<f64> {
        let r = self.posterior(x);
        let d = self.dim;
        let mut g = vec![0.0; d];
        let mut v = vec![0.0; d];
        for (k, rk) in r.iter().enumerate() {
            if *rk == 0.0 {
                continue;
            }
            let l = &self.cholesky[k];
            // v = Σ⁻¹ (μ − x) = L⁻ᵀ L⁻¹ (μ − x): forward then back substitution.
            for i in 0..d {
                let mut s = self.means[k][i] - x[i];
                for j in 0..i {
                    s -= l[i * d + j] * v[j];
                }
                v[i] = s / l[i * d + i];
            }
            for i in (0..d).rev() {
                let mut s = v[i];
                for j in i + 1..d {
                    s -= l[j * d + i] * v[j];
                }
                v[i] = s / l[i * d + i];
            }
            g.iter_mut().zip(&v).for_each(|(g, v)| *g += rk * v);
        }
        g
    }

    /// TOTAL log-likelihood of the rows of `data` (n × d): Σ_i log p(x_i).
    ///
    /// Panics if `data.ncols() != dim()`.
    pub fn log_likelihood(&self, data: ArrayView2<f64>) -> f64 {
        assert_eq!(
            data.ncols(),
            self.dim,
            "data has {} columns but the mixture has dimension {}",
            data.ncols(),
            self.dim
        );
        let mut buf = vec![0.0; self.dim];
        data.rows()
            .into_iter()
            .map(|row| {
                buf.iter_mut().zip(row).for_each(|(b, r)| *b = *r);
                self.log_pdf(&buf)
            })
            .sum()
    }

    /// MEAN log-likelihood per row: (1/n) Σ_i log p(x_i) (scikit-learn's `score`).
    /// NaN for no rows. Panics if `data.ncols() != dim()`.
    pub fn mean_log_likelihood(&self, data: ArrayView2<f64>) -> f64 {
        self.log_likelihood(data) / data.nrows() as f64
    }

    /// The law of a·x + √v·ε, x ~ p, ε ~ N(0, I): Σ_k π_k N(a μ_k, a² Σ_k + v I).
    ///
    /// With a = √ᾱ_t and v = 1 − ᾱ_t this is the diffusion's noised data q(x_t).
    /// The parameterisation (isotropic/diagonal/full) of each component is kept.
    pub fn scaled_with_noise(&self, scale: f64, noise_variance: f64) -> Result<Self, DataError> {
        if !scale.is_finite() {
            return Err(DataError::InvalidParameter {
                name: "scale",
                value: scale.to_string(),
                allowed: "finite",
            });
        }
        if !(noise_variance >= 0.0 && noise_variance.is_finite()) {
            return Err(DataError::InvalidParameter {
                name: "noise_variance",
                value: noise_variance.to_string(),
                allowed: "finite and >= 0",
            });
        }
        let a2 = scale * scale;
        let d = self.dim;
        let covariances = self
            .covariances
            .iter()
            .map(|c| match c {
                Covariance::Isotropic(v) => Covariance::Isotropic(a2 * v + noise_variance),
                Covariance::Diagonal(v) => {
                    Covariance::Diagonal(v.iter().map(|v| a2 * v + noise_variance).collect())
                }
                Covariance::Full(m) => {
                    let mut m: Vec<f64> = m.iter().map(|v| a2 * v).collect();
                    (0..d).for_each(|i| m[i * d + i] += noise_variance);
                    Covariance::Full(m)
                }
            })
            .collect();
        let means = self
            .means
            .iter()
            .map(|m| m.iter().map(|v| scale * v).collect())
            .collect();
        Self::new(self.weights.clone(), means, covariances)
    }

    /// ln π_k + log N(x; μ_k, Σ_k) for every k.
    fn weighted_log_pdfs(&self, x: &[f64]) -> Vec<f64> {
        self.check_len(x);
        (0..self.n_components())
            .map(|k| self.log_weights[k] + self.component_log_pdf(k, x))
            .collect()
    }

    fn check_len(&self, x: &[f64]) {
        assert_eq!(
            x.len(),
            self.dim,
            "point has {} coordinates but the mixture has dimension {}",
            x.len(),
            self.dim
        );
    }

    fn draw_component<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = StandardUniform.sample(rng);
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.last_positive)
    }

    fn draw_from_component<R: rand::Rng + ?Sized>(&self, k: usize, rng: &mut R, out: &mut [f64]) {
        let d = self.dim;
        let l = &self.cholesky[k];
        let eps: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
        for i in 0..d {
            out[i] = self.means[k][i] + (0..=i).map(|j| l[i * d + j] * eps[j]).sum::<f64>();
        }
    }
}

impl fmt::Display for GaussianMixture {
    /// e.g. `0.4000·N(μ=[-2.0000], Σ=[[0.2500]]) + 0.6000·N(μ=[3.0000], Σ=[[1.0000]])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dim;
        for k in 0..self.n_components() {
            if k > 0 {
                write!(f, " + ")?;
            }
            let mu: Vec<String> = self.means[k].iter().map(|v| format!("{v:.4}")).collect();
            let rows: Vec<String> = self.matrices[k]
                .chunks(d)
                .map(|r| {
                    let r: Vec<String> = r.iter().map(|v| format!("{v:.4}")).collect();
                    format!("[{}]", r.join(", "))
                })
                .collect();
            write!(
                f,
                "{:.4}·N(μ=[{}], Σ=[{}])",
                self.weights[k],
                mu.join(", "),
                rows.join(", ")
            )?;
        }
        Ok(())
    }
}

/// log Σ_i exp(a_i) = m + log Σ_i exp(a_i − m), m = max_i a_i (−∞ if all are −∞).
pub(crate) fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY || !m.is_finite() {
        return m;
    }
    m + a.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Σ as a validated, symmetrised row-major d×d matrix.
fn full_matrix(component: usize, cov: &Covariance, d: usize) -> Result<Vec<f64>, DataError> {
    let check_var = |value: f64| {
        if !value.is_finite() {
            Err(DataError::NonFiniteParameter {
                what: format!("variance in component {component}"),
                value,
            })
        } else if value <= 0.0 {
            Err(DataError::NonPositiveVariance { component, value })
        } else {
            Ok(value)
        }
    };
    let mut m = vec![0.0; d * d];
    match cov {
        Covariance::Isotropic(v) => {
            let v = check_var(*v)?;
            (0..d).for_each(|i| m[i * d + i] = v);
        }
        Covariance::Diagonal(vs) => {
            if vs.len() != d {
                return Err(DataError::DimensionMismatch {
                    what: format!("diagonal covariance of component {component}"),
                    dim: d,
                    expected: d,
                    found: vs.len(),
                });
            }
            for (i, v) in vs.iter().enumerate() {
                m[i * d + i] = check_var(*v)?;
            }
        }
        Covariance::Full(a) => {
            if a.len() != d * d {
                return Err(DataError::DimensionMismatch {
                    what: format!("full covariance of component {component}"),
                    dim: d,
                    expected: d * d,
                    found: a.len(),
                });
            }
            if let Some((i, &value)) = a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(DataError::NonFiniteParameter {
                    what: format!(
                        "covariance entry ({},{}) of component {component}",
                        i / d,
                        i % d
                    ),
                    value,
                });
            }
            for i in 0..d {
                check_var(a[i * d + i])?;
            }
            for i in 0..d {
                for j in i + 1..d {
                    let (upper, lower) = (a[i * d + j], a[j * d + i]);
                    let scale = (a[i * d + i] * a[j * d + j]).sqrt();
                    if (upper - lower).abs() > SYMMETRY_TOLERANCE * scale {
                        return Err(DataError::AsymmetricCovariance {
                            component,
                            row: i,
                            col: j,
                            upper,
                            lower,
                        });
                    }
                }
            }
            for i in 0..d {
                for j in 0..d {
                    m[i * d + j] = 0.5 * (a[i * d + j] + a[j * d + i]);
                }
            }
        }
    }
    Ok(m)
}

/// Lower Cholesky factor L (A = L Lᵀ) of a symmetric row-major d×d matrix.
/// Err((row, pivot)) when a pivot is ≤ 1e-14·A_ii: not numerically positive definite
/// (rounding alone leaves pivots of a few 1e-16·A_ii on exactly singular matrices).
fn cholesky_lower(a: &[f64], d: usize) -> Result<Vec<f64>, (usize, f64)> {
    let mut l = vec![0.0f64; d * d];
    for j in 0..d {
        let pivot = a[j * d + j] - (0..j).map(|p| l[j * d + p].powi(2)).sum::<f64>();
        if !pivot.is_finite() || pivot <= PIVOT_TOLERANCE * a[j * d + j] {
            return Err((j, pivot));
        }
        let ljj = pivot.sqrt();
        l[j * d + j] = ljj;
        for i in j + 1..d {
            let s = a[i * d + j] - (0..j).map(|p| l[i * d + p] * l[j * d + p]).sum::<f64>();
            l[i * d + j] = s / ljj;
        }
    }
    Ok(l)
}
