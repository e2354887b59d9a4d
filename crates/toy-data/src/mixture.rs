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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{notebook_gmm_1d, two_clusters_mixture};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Fourth central moment of a 1-D mixture: Σ π_k (δ⁴ + 6δ²σ² + 3σ⁴), δ = μ_k − m.
    fn fourth_central_moment_1d(g: &GaussianMixture) -> f64 {
        let m = g.mean()[0];
        let vars = g.variances_1d().unwrap();
        g.weights()
            .iter()
            .zip(g.means())
            .zip(vars)
            .map(|((w, mu), s2)| {
                let d = mu[0] - m;
                w * (d.powi(4) + 6.0 * d * d * s2 + 3.0 * s2 * s2)
            })
            .sum()
    }

    #[test]
    fn mixture_moments_by_hand() {
        let g = notebook_gmm_1d();
        // E[x] = 0.4·(−2) + 0.6·3 = 1.0 (tolerance: rounding only).
        assert!((g.mean()[0] - 1.0).abs() < 1e-12);
        // Var = 0.4(0.25 + 4) + 0.6(1 + 9) − 1² = 6.7 (tolerance: rounding only).
        assert!((g.covariance()[0] - 6.7).abs() < 1e-12);
    }

    #[test]
    fn sampling_1d_moments_within_clt_bounds() {
        let g = notebook_gmm_1d();
        let n = 100_000;
        let x = g.sample(n, &mut StdRng::seed_from_u64(1));
        let nf = n as f64;
        let mean = x.column(0).sum() / nf;
        let var = x.column(0).mapv(|v| (v - mean).powi(2)).sum() / nf;
        let (m, s2) = (1.0, 6.7);
        // 5 standard errors of the sample mean: √(6.7/1e5) ≈ 0.0082.
        let se_mean = (s2 / nf).sqrt();
        assert!((mean - m).abs() < 5.0 * se_mean, "mean {mean}");
        // 5 standard errors of the sample variance: √((μ₄ − σ⁴)/n) = √((63.675 − 44.89)/1e5) ≈ 0.0137.
        let mu4 = fourth_central_moment_1d(&g);
        assert!((mu4 - 63.675).abs() < 1e-9); // hand value, rounding only
        let se_var = ((mu4 - s2 * s2) / nf).sqrt();
        assert!((var - s2).abs() < 5.0 * se_var, "variance {var}");
    }

    #[test]
    fn latent_proportions_within_binomial_bounds() {
        let g = notebook_gmm_1d();
        let n = 100_000;
        let (x, z) = g.sample_with_latent(n, &mut StdRng::seed_from_u64(2));
        let n0 = z.iter().filter(|&&k| k == 0).count();
        let p0 = n0 as f64 / n as f64;
        // 5 binomial standard errors: √(0.4·0.6/1e5) ≈ 0.00155.
        assert!(
            (p0 - 0.4).abs() < 5.0 * (0.4 * 0.6 / n as f64).sqrt(),
            "p0 {p0}"
        );
        // Each x comes from its z: the conditional means match μ_z within 5 σ_z/√n_z.
        for (k, (mu, sd)) in [(-2.0, 0.5), (3.0, 1.0)].into_iter().enumerate() {
            let xs: Vec<f64> = x
                .column(0)
                .iter()
                .zip(&z)
                .filter(|(_, &zk)| zk == k)
                .map(|(v, _)| *v)
                .collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            assert!(
                (m - mu).abs() < 5.0 * sd / (xs.len() as f64).sqrt(),
                "k={k}: {m}"
            );
        }
    }

    #[test]
    fn sampling_2d_moments_within_clt_bounds() {
        let g = two_clusters_mixture();
        let n = 50_000;
        let nf = n as f64;
        let x = g.sample(n, &mut StdRng::seed_from_u64(3));
        let mean: Vec<f64> = (0..2).map(|j| x.column(j).sum() / nf).collect();
        // True mean 0, variance per dimension 0.25 + 4 = 4.25: 5 SE = 5·√(4.25/5e4) ≈ 0.046.
        for m in &mean {
            assert!(m.abs() < 5.0 * (4.25 / nf).sqrt(), "mean {m}");
        }
        let cov = |a: usize, b: usize| {
            x.rows()
                .into_iter()
                .map(|r| (r[a] - mean[a]) * (r[b] - mean[b]))
                .sum::<f64>()
                / nf
        };
        let truth = g.covariance();
        assert!((truth[0] - 4.25).abs() < 1e-12 && (truth[1] - 4.0).abs() < 1e-12);
        // Variance: μ₄ − σ⁴ per dimension = (16 + 6·4·0.25 + 3·0.0625) − 4.25² = 4.125,
        // so 5 SE = 5·√(4.125/5e4) ≈ 0.045.
        for j in 0..2 {
            assert!((cov(j, j) - 4.25).abs() < 5.0 * (4.125 / nf).sqrt());
        }
        // Covariance: Var(xy) = E[x²]E[y²] within a component − 4² = 4.25² − 16 = 2.0625,
        // so 5 SE = 5·√(2.0625/5e4) ≈ 0.032.
        assert!((cov(0, 1) - 4.0).abs() < 5.0 * (2.0625 / nf).sqrt());
    }

    #[test]
    fn full_covariance_sampling_matches_matrix() {
        // Σ = [[1, 0.8], [0.8, 2]], so the correlation structure exercises L.
        let g = GaussianMixture::new(
            vec![1.0],
            vec![vec![0.0, 0.0]],
            vec![Covariance::Full(vec![1.0, 0.8, 0.8, 2.0])],
        )
        .unwrap();
        let n = 50_000;
        let x = g.sample(n, &mut StdRng::seed_from_u64(4));
        let c01 = x.rows().into_iter().map(|r| r[0] * r[1]).sum::<f64>() / n as f64;
        // Var(xy) for a bivariate normal = σ₁²σ₂² + σ₁₂² = 2 + 0.64: 5 SE = 5√(2.64/5e4) ≈ 0.036.
        assert!((c01 - 0.8).abs() < 5.0 * (2.64 / n as f64).sqrt(), "{c01}");
    }

    #[test]
    fn same_seed_same_samples() {
        let g = notebook_gmm_1d();
        let a = g.sample_with_latent(100, &mut StdRng::seed_from_u64(9));
        let b = g.sample_with_latent(100, &mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
        let c = g.sample(100, &mut StdRng::seed_from_u64(10));
        assert_ne!(a.0, c);
        // `sample` gives the same x as `sample_with_latent`.
        assert_eq!(g.sample(100, &mut StdRng::seed_from_u64(9)), a.0);
    }

    #[test]
    fn pdf_integrates_to_one() {
        let g = notebook_gmm_1d();
        // Trapezoid on [−10, 12], h = 1e-3: the range is 16σ below −2 and 9σ above 3
        // (tails < 1e-18) and the trapezoid error h²/12·∫|f''| is below 1e-7.
        let (a, b, n) = (-10.0, 12.0, 22_000);
        let h = (b - a) / n as f64;
        let mut s = 0.5 * (g.pdf(&[a]) + g.pdf(&[b]));
        for i in 1..n {
            s += g.pdf(&[a + i as f64 * h]);
        }
        assert!((s * h - 1.0).abs() < 1e-6, "{}", s * h);
    }

    #[test]
    fn pdf_matches_hand_values() {
        // Standard normal at 0: 1/√(2π) (tolerance: rounding only).
        let n = GaussianMixture::normal(0.0, 1.0).unwrap();
        assert!((n.pdf(&[0.0]) - 0.398_942_280_401_432_7).abs() < 1e-15);
        // 0.4·N(0; −2, 0.5²) + 0.6·N(0; 3, 1²)
        //  = 0.4·exp(−8)/(0.5√(2π)) + 0.6·exp(−4.5)/√(2π) ≈ 0.002766173.
        let g = notebook_gmm_1d();
        let s2pi = (2.0 * PI).sqrt();
        let want = 0.4 * (-8.0f64).exp() / (0.5 * s2pi) + 0.6 * (-4.5f64).exp() / s2pi;
        // Tolerances: rounding only, then the hand value's 9 printed digits.
        assert!((g.pdf(&[0.0]) - want).abs() < 1e-15);
        assert!((want - 0.002_766_173).abs() < 1e-9);
        // 2-D isotropic at x = (0,0), both components at squared distance 8:
        // 2·0.5·exp(−8/(2·0.25))/(2π·0.25) = exp(−16)/(0.5π).
        let c = two_clusters_mixture();
        let want2 = (-16.0f64).exp() / (0.5 * PI);
        assert!((c.pdf(&[0.0, 0.0]) / want2 - 1.0).abs() < 1e-12); // relative rounding
    }

    #[test]
    fn log_pdf_is_ln_pdf_and_posterior_sums_to_one() {
        let g = notebook_gmm_1d();
        for x in [-4.0, -2.0, 0.0, 0.5, 3.0, 7.0] {
            // Relative rounding of exp/ln.
            assert!((g.log_pdf(&[x]) - g.pdf(&[x]).ln()).abs() < 1e-12);
            let r = g.posterior(&[x]);
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12); // rounding only
        }
        // Far out, log_pdf stays finite where pdf underflows to 0.
        assert!(g.pdf(&[-1e3]) == 0.0 && g.log_pdf(&[-1e3]).is_finite());
        // There the wider component (σ = 1) dominates: log-densities −503004 vs −1992008.
        let r = g.posterior(&[-1e3]);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12 && r[1] == 1.0);
    }

    #[test]
    fn score_matches_finite_differences() {
        let g = two_clusters_mixture();
        let x = [0.3, -0.2];
        let s = g.score(&x);
        let h = 1e-5;
        for i in 0..2 {
            let (mut a, mut b) = (x, x);
            a[i] += h;
            b[i] -= h;
            let fd = (g.log_pdf(&a) - g.log_pdf(&b)) / (2.0 * h);
            // Central difference error O(h²·f''') ≈ 1e-9 here; 1e-6 leaves room for rounding.
            assert!((s[i] - fd).abs() < 1e-6, "{} vs {fd}", s[i]);
        }
    }

    #[test]
    fn scaled_with_noise_is_the_affine_law() {
        let g = two_clusters_mixture();
        let ab: f64 = 0.2807;
        let q = g.scaled_with_noise(ab.sqrt(), 1.0 - ab).unwrap();
        // Component variance ᾱσ² + 1 − ᾱ.
        let want = ab * 0.25 + 1.0 - ab;
        assert!((q.covariance_matrix(0)[0] - want).abs() < 1e-15); // rounding only
        assert!((q.means()[1][0] - 2.0 * ab.sqrt()).abs() < 1e-15); // rounding only
        assert_eq!(q.n_parameters(), g.n_parameters());
    }

    #[test]
    fn n_parameters_counts() {
        // 2 components in 1-D: 1 weight + 2 means + 2 variances.
        assert_eq!(notebook_gmm_1d().n_parameters(), 5);
        // Isotropic 2-D, 2 components: 1 + 4 + 2.
        assert_eq!(two_clusters_mixture().n_parameters(), 7);
        let full = GaussianMixture::new(
            vec![1.0],
            vec![vec![0.0; 3]],
            vec![Covariance::Full(vec![
                1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0,
            ])],
        )
        .unwrap();
        // 0 + 3 + 6.
        assert_eq!(full.n_parameters(), 9);
    }

    #[test]
    fn display_is_one_line() {
        let s = notebook_gmm_1d().to_string();
        assert!(s.starts_with("0.4000·N(μ=[-2.0000], Σ=[[0.2500]])"), "{s}");
        assert!(!s.contains('\n'));
    }

    // ----- validation: each bad parameter gives its variant -----

    fn iso(v: f64) -> Covariance {
        Covariance::Isotropic(v)
    }

    #[test]
    fn rejects_no_components() {
        assert_eq!(
            GaussianMixture::new(vec![], vec![], vec![]),
            Err(DataError::NoComponents)
        );
    }

    #[test]
    fn rejects_count_mismatch() {
        let e = GaussianMixture::new(vec![1.0], vec![vec![0.0], vec![1.0]], vec![iso(1.0)]);
        assert!(matches!(e, Err(DataError::ComponentCountMismatch { .. })));
        let e = GaussianMixture::univariate(&[1.0], &[0.0], &[]);
        assert!(matches!(e, Err(DataError::ComponentCountMismatch { .. })));
    }

    #[test]
    fn rejects_bad_weights() {
        let e = GaussianMixture::univariate(&[0.5, 0.4], &[0.0, 1.0], &[1.0, 1.0]);
        assert!(matches!(e, Err(DataError::WeightsSum { sum }) if (sum - 0.9).abs() < 1e-12));
        let e = GaussianMixture::univariate(&[1.5, -0.5], &[0.0, 1.0], &[1.0, 1.0]);
        assert_eq!(
            e,
            Err(DataError::NegativeWeight {
                index: 1,
                value: -0.5
            })
        );
        let e = GaussianMixture::univariate(&[f64::NAN], &[0.0], &[1.0]);
        assert!(matches!(e, Err(DataError::NonFiniteParameter { .. })));
        // A rounding-sized miss is renormalised away.
        let g = GaussianMixture::univariate(&[0.1, 0.2, 0.7 + 1e-12], &[0.0; 3], &[1.0; 3]);
        assert!((g.unwrap().weights().iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // A zero weight is allowed and never sampled.
        let g = GaussianMixture::univariate(&[1.0, 0.0], &[0.0, 100.0], &[1.0, 1.0]).unwrap();
        let (_, z) = g.sample_with_latent(1000, &mut StdRng::seed_from_u64(0));
        assert!(z.iter().all(|&k| k == 0));
    }

    #[test]
    fn rejects_bad_variances() {
        let e = GaussianMixture::new(vec![1.0], vec![vec![0.0]], vec![iso(0.0)]);
        assert_eq!(
            e,
            Err(DataError::NonPositiveVariance {
                component: 0,
                value: 0.0
            })
        );
        let e = GaussianMixture::new(
            vec![1.0],
            vec![vec![0.0, 0.0]],
            vec![Covariance::Diagonal(vec![1.0, -2.0])],
        );
        assert!(matches!(
            e,
            Err(DataError::NonPositiveVariance { value, .. }) if value == -2.0
        ));
        let e = GaussianMixture::normal(0.0, -1.0);
        assert!(matches!(e, Err(DataError::NonPositiveStdDev { .. })));
    }

    #[test]
    fn rejects_dimension_problems() {
        let e = GaussianMixture::new(
            vec![0.5, 0.5],
            vec![vec![0.0, 0.0], vec![0.0]],
            vec![iso(1.0), iso(1.0)],
        );
        assert!(matches!(
            e,
            Err(DataError::DimensionMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        let e = GaussianMixture::new(
            vec![1.0],
            vec![vec![0.0, 0.0]],
            vec![Covariance::Full(vec![1.0, 0.0, 1.0])],
        );
        assert!(matches!(
            e,
            Err(DataError::DimensionMismatch {
                expected: 4,
                found: 3,
                ..
            })
        ));
        let e = GaussianMixture::new(vec![1.0], vec![vec![]], vec![iso(1.0)]);
        assert!(matches!(e, Err(DataError::ZeroDimension { .. })));
        let e = GaussianMixture::new(vec![1.0], vec![vec![f64::INFINITY]], vec![iso(1.0)]);
        assert!(matches!(e, Err(DataError::NonFiniteParameter { .. })));
    }

    #[test]
    fn rejects_bad_full_covariances() {
        let full = |m: Vec<f64>| {
            GaussianMixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![Covariance::Full(m)])
        };
        assert!(matches!(
            full(vec![1.0, 0.5, 0.4, 1.0]),
            Err(DataError::AsymmetricCovariance { row: 0, col: 1, .. })
        ));
        // Singular: [[1, 1], [1, 1]].
        assert!(matches!(
            full(vec![1.0, 1.0, 1.0, 1.0]),
            Err(DataError::NotPositiveDefinite { row: 1, .. })
        ));
        // Indefinite: [[1, 2], [2, 1]].
        assert!(matches!(
            full(vec![1.0, 2.0, 2.0, 1.0]),
            Err(DataError::NotPositiveDefinite { component: 0, .. })
        ));
        assert!(matches!(
            full(vec![1.0, f64::NAN, f64::NAN, 1.0]),
            Err(DataError::NonFiniteParameter { .. })
        ));
    }

    #[test]
    fn error_messages_are_one_line_and_name_the_value() {
        let e = GaussianMixture::univariate(&[0.5, 0.4], &[0.0, 1.0], &[1.0, 1.0]).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("0.9") && s.contains("sum to 1") && !s.contains('\n'),
            "{s}"
        );
    }
}
