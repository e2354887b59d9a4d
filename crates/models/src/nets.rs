//! The notebook's two networks in candle: the noise predictor ε_θ(x_t, t) and the
//! noisy-time classifier p_φ(y | x_t, t).
//!
//! Both are plain multilayer perceptrons. Weights are stored as `(out, in)` matrices and
//! biases as `(out,)` vectors (PyTorch's and candle's `Linear` convention), so a dense layer
//! computes `y = x Wᵀ + b` on a row-major batch `x` of shape `(n, in)`.

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{ModelError, Result};
use crate::ops::{Embedding, Hidden, Packing};
use crate::traits::{NoisePredictor, NoisyClassifier};

/// The nonlinearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Activation {
    /// relu(x) = max(x, 0), the notebook's (Flux `relu`).
    #[default]
    Relu,
    /// silu(x) = x · σ(x) (a.k.a. swish): smooth, better for curved shapes.
    Silu,
}

impl Activation {
    /// The name written to checkpoints ("relu").
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Silu => "silu",
        }
    }

    /// Parses a name written by [`Activation::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Activation::Relu),
            "silu" => Some(Activation::Silu),
            _ => None,
        }
    }
}

/// How the denoiser sees the time step t.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimeEncoding {
    /// One extra input feature t/T, appended after x_t (the notebook's `vcat(xt, t_norm)`).
    #[default]
    Scaled,
    /// 16 features sin(t ω_k), cos(t ω_k) with ω_k = 10000^(−k/8), k = 0..8 (Vaswani et al.,
    /// as in DDPM's time embedding), appended after x_t.
    Sinusoidal,
}

impl TimeEncoding {
    /// The name written to checkpoints ("scaled").
    pub fn name(&self) -> &'static str {
        match self {
            TimeEncoding::Scaled => "scaled",
            TimeEncoding::Sinusoidal => "sinusoidal",
        }
    }

    /// Parses a name written by [`TimeEncoding::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "scaled" => Some(TimeEncoding::Scaled),
            "sinusoidal" => Some(TimeEncoding::Sinusoidal),
            _ => None,
        }
    }

    /// Number of input features the encoding adds to the d coordinates.
    pub fn num_features(&self) -> usize {
        match self {
            TimeEncoding::Scaled => 1,
            TimeEncoding::Sinusoidal => 2 * SINUSOIDAL_FREQUENCIES,
        }
    }

    /// The scaled step t/T, computed in f64 and rounded to f32 like the notebook's `Float32.(t/T)`.
    pub fn scaled(t: usize, num_steps: usize) -> f32 {
        (t as f64 / num_steps as f64) as f32
    }

    /// Writes the time features of step t into `out` (length [`TimeEncoding::num_features`]).
    pub fn write_features(&self, t: usize, num_steps: usize, out: &mut [f32]) {
        match self {
            TimeEncoding::Scaled => out[0] = Self::scaled(t, num_steps),
            TimeEncoding::Sinusoidal => {
                for k in 0..SINUSOIDAL_FREQUENCIES {
                    let omega = 10_000f64.powf(-(k as f64) / SINUSOIDAL_FREQUENCIES as f64);
                    let angle = t as f64 * omega;
                    out[2 * k] = angle.sin() as f32;
                    out[2 * k + 1] = angle.cos() as f32;
                }
            }
        }
    }
}

/// Frequencies of [`TimeEncoding::Sinusoidal`] (it adds twice as many features).
pub const SINUSOIDAL_FREQUENCIES: usize = 8;

/// Shape of the denoiser ε_θ: an MLP on [x_t; t/T] with `hidden_layers` layers of `hidden_width` units.
#[derive(Debug, Clone, PartialEq)]
pub struct DenoiserConfig {
    /// d, the data dimension (2 in the notebook).
    pub dim: usize,
    /// Units per hidden layer (128).
    pub hidden_width: usize,
    /// Number of hidden layers (2); 0 gives a single linear map.
    pub hidden_layers: usize,
    /// T, the number of diffusion steps (500).
    pub num_steps: usize,
    /// Nonlinearity after each hidden layer (relu).
    pub activation: Activation,
    /// How t enters the network (t/T as one extra input).
    pub time_encoding: TimeEncoding,
}

impl Default for DenoiserConfig {
    /// The notebook's `Chain(Dense(3,128,relu), Dense(128,128,relu), Dense(128,2))`, T = 500.
    fn default() -> Self {
        Self {
            dim: 2,
            hidden_width: 128,
            hidden_layers: 2,
            num_steps: 500,
            activation: Activation::Relu,
            time_encoding: TimeEncoding::Scaled,
        }
    }
}

impl DenoiserConfig {
    /// Checks every field: d ≥ 1, T ≥ 1, width ≥ 1 when there are hidden layers.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(ModelError::ZeroDim);
        }
        if self.num_steps == 0 {
            return Err(ModelError::ZeroNumSteps);
        }
        if self.hidden_layers > 0 && self.hidden_width == 0 {
            return Err(ModelError::ZeroHiddenWidth { layer: 0 });
        }
        Ok(())
    }

    /// Width of the network's input: d plus the time features.
    pub fn input_width(&self) -> usize {
        self.dim + self.time_encoding.num_features()
    }

    /// `(out, in)` of every dense layer, input to output.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::with_capacity(self.hidden_layers + 1);
        let mut fan_in = self.input_width();
        for _ in 0..self.hidden_layers {
            shapes.push((self.hidden_width, fan_in));
            fan_in = self.hidden_width;
        }
        shapes.push((self.dim, fan_in));
        shapes
    }
}

/// Shape of the classifier p_φ(y | x_t, t): Embedding(T, E) for t, then an MLP on [x_t; emb(t)].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    /// d, the data dimension (2).
    pub dim: usize,
    /// C, the number of classes (2); at least 2.
    pub num_classes: usize,
    /// T, the number of diffusion steps (500).
    pub num_steps: usize,
    /// E, the width of the learned time embedding (32).
    pub embed_dim: usize,
    /// Widths of the hidden layers ([64, 32]).
    pub hidden: Vec<usize>,
    /// Nonlinearity after each hidden layer (relu).
    pub activation: Activation,
}

impl Default for ClassifierConfig {
    /// The notebook's `Embedding(500, 32)` + `Chain(Dense(34,64,relu), Dense(64,32,relu), Dense(32,2))`.
    fn default() -> Self {
        Self {
            dim: 2,
            num_classes: 2,
            num_steps: 500,
            embed_dim: 32,
            hidden: vec![64, 32],
            activation: Activation::Relu,
        }
    }
}

impl ClassifierConfig {
    /// Checks every field: d ≥ 1, C ≥ 2, T ≥ 1, E ≥ 1, hidden widths ≥ 1.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(ModelError::ZeroDim);
        }
        if self.num_classes < 2 {
            return Err(ModelError::TooFewClasses(self.num_classes));
        }
        if self.num_steps == 0 {
            return Err(ModelError::ZeroNumSteps);
        }
        if self.embed_dim == 0 {
            return Err(ModelError::ZeroEmbedDim);
        }
        if let Some(layer) = self.hidden.iter().position(|&w| w == 0) {
            return Err(ModelError::ZeroHiddenWidth { layer });
        }
        Ok(())
    }

    /// Width of the MLP's input: d + E.
    pub fn input_width(&self) -> usize {
        self.dim + self.embed_dim
    }

    /// `(out, in)` of every dense layer, input to output.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::with_capacity(self.hidden.len() + 1);
        let mut fan_in = self.input_width();
        for &w in &self.hidden {
            shapes.push((w, fan_in));
            fan_in = w;
        }
        shapes.push((self.num_classes, fan_in));
        shapes
    }
}

/// One dense layer: y = x Wᵀ + b, W of shape (out, in), b of shape (out,).
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    /// W, shape (out, in).
    pub(crate) weight: Tensor,
    /// b, shape (out,).
    pub(crate) bias: Tensor,
}

impl Activation {
    /// The kernels' name of the nonlinearity.
    pub(crate) fn hidden(self) -> Hidden {
        match self {
            Activation::Relu => Hidden::Relu,
            Activation::Silu => Hidden::Silu,
        }
    }
}

/// The values of `layers` (after `prefix`, the embedding table) in packing order: layer
/// by layer, W (row-major) then b.
pub(crate) fn pack(prefix: Option<&Tensor>, layers: &[Dense]) -> candle_core::Result<Tensor> {
    let mut parts: Vec<Tensor> = prefix
        .map(|t| t.flatten_all())
        .into_iter()
        .collect::<candle_core::Result<_>>()?;
    for l in layers {
        parts.push(l.weight.flatten_all()?);
        parts.push(l.bias.flatten_all()?);
    }
    Tensor::cat(&parts, 0)?.contiguous()
}

/// Views (no copy, not tracked) of the layers inside the packed parameters.
pub(crate) fn unpack_layers(params: &Tensor, packing: &Packing) -> candle_core::Result<Vec<Dense>> {
    let plain = params.detach();
    packing
        .shapes
        .iter()
        .zip(packing.offsets())
        .map(|(&(o, i), (w, b))| {
            Ok(Dense {
                weight: plain.narrow(0, w, o * i)?.reshape((o, i))?,
                bias: plain.narrow(0, b, o)?,
            })
        })
        .collect()
}

pub(crate) fn check_step(t: usize, num_steps: usize) -> candle_core::Result<()> {
    if t == 0 || t > num_steps {
        candle_core::bail!("time step t = {t} is outside 1..={num_steps}");
    }
    Ok(())
}

pub(crate) fn check_batch(x_t: &Tensor, dim: usize) -> candle_core::Result<usize> {
    match x_t.dims() {
        &[n, d] if d == dim => Ok(n),
        dims => candle_core::bail!("expected a batch of shape (n, {dim}), got {dims:?}"),
    }
}

/// The noise predictor ε_θ(x_t, t): an MLP on [x_t; t/T] (checkpoint names `denoiser.layers.{i}.weight|bias`).
///
/// Its parameters live in one packed tensor (every layer's W then b, input to output: one
/// `Var` when trainable); the layers' tensors are views into it.
#[derive(Debug, Clone)]
pub struct DenoiserNet {
    config: DenoiserConfig,
    params: Tensor,
    packing: Packing,
    layers: Vec<Dense>,
}

impl DenoiserNet {
    /// Builds the net from its layers' tensors, checked against the configuration's shapes
    /// (copied into one packed tensor).
    pub(crate) fn from_layers(config: DenoiserConfig, layers: Vec<Dense>) -> Result<Self> {
        config.validate()?;
        check_layers("denoiser", &config.layer_shapes(), &layers)?;
        let params = pack(None, &layers)?;
        Self::from_params(config, params)
    }

    /// The packing of this configuration's parameters.
    pub(crate) fn packing(config: &DenoiserConfig) -> Packing {
        Packing {
            shapes: config.layer_shapes(),
            start: 0,
        }
    }

    /// Builds the net on packed parameters ([`DenoiserNet::packing`]), a `Var` or not.
    pub(crate) fn from_params(config: DenoiserConfig, params: Tensor) -> Result<Self> {
        config.validate()?;
        let packing = Self::packing(&config);
        if params.dims() != [packing.len()] {
            return Err(ModelError::TensorShape {
                name: "denoiser parameters".into(),
                found: params.dims().to_vec(),
                expected: vec![packing.len()],
            });
        }
        let layers = unpack_layers(&params, &packing)?;
        Ok(Self {
            config,
            params,
            packing,
            layers,
        })
    }

    /// The configuration the net was built from.
    pub fn config(&self) -> &DenoiserConfig {
        &self.config
    }

    /// Training forward with a per-sample step: x_t (n × d, f32) and the time features, (n × 1) of t/T.
    pub fn forward(&self, x_t: &Tensor, t_features: &Tensor) -> candle_core::Result<Tensor> {
        let n = check_batch(x_t, self.config.dim)?;
        let t_features = t_features.reshape((n, self.config.time_encoding.num_features()))?;
        let input = Tensor::cat(&[x_t, &t_features], 1)?;
        self.forward_input(&input)
    }

    /// Forward on an already assembled input [x_t, t/T] of shape (n, d + 1).
    pub(crate) fn forward_input(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        crate::ops::mlp(
            input,
            &self.params,
            &self.packing,
            self.config.activation.hidden(),
        )
    }

    /// A copy whose weights are plain tensors (no `Var`): backward through it reaches only its inputs.
    ///
    /// The same function, to the bit. The weights share storage with `self` (no copy), so
    /// later optimiser steps on the `Var` show through. Through a detached net the fused
    /// ops record no graph when the input is untracked, and a backward pass computes no
    /// weight gradients. Nets returned by training and loading already hold plain tensors;
    /// this matters for nets built by [`crate::init_denoiser`].
    pub fn detached(&self) -> Self {
        Self {
            params: self.params.detach(),
            ..self.clone()
        }
    }

    /// True when the weights are a trainable `Var` (as built by [`crate::init_denoiser`]).
    pub fn has_variables(&self) -> bool {
        self.params.is_variable()
    }

    /// Every parameter with its checkpoint name, input layer first, weight before bias (detached: for reading or saving).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        named_layers("denoiser", &self.layers)
    }

    /// Total number of scalar parameters (17,282 for the notebook's net).
    pub fn num_parameters(&self) -> usize {
        self.params.elem_count()
    }
}

impl NoisePredictor for DenoiserNet {
    fn num_steps(&self) -> usize {
        self.config.num_steps
    }

    fn dim(&self) -> usize {
        self.config.dim
    }

    fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        check_step(t, self.config.num_steps)?;
        let n = check_batch(x_t, self.config.dim)?;
        let encoding = self.config.time_encoding;
        let mut features = vec![0f32; encoding.num_features()];
        encoding.write_features(t, self.config.num_steps, &mut features);
        if crate::ops::is_f32_cpu(x_t) && !x_t.track_op() {
            // The input [x_t, features] assembled on the host in one pass: the same values
            // `forward` builds with `Tensor::cat`, so the same result to the bit.
            let d = self.config.dim;
            let width = d + features.len();
            let input = crate::ops::with_f32(x_t, |x| {
                let mut input = Vec::with_capacity(n * width);
                for row in x.chunks_exact(d) {
                    input.extend_from_slice(row);
                    input.extend_from_slice(&features);
                }
                Ok(input)
            })?;
            let input = Tensor::from_vec(input, (n, width), x_t.device())?;
            return self.forward_input(&input);
        }
        let row = Tensor::from_vec(features, (1, encoding.num_features()), x_t.device())?;
        let t_rows = row
            .broadcast_as((n, encoding.num_features()))?
            .contiguous()?;
        self.forward(x_t, &t_rows.to_dtype(x_t.dtype())?)
    }
}

/// The classifier p_φ(y | x_t, t): Embedding(T, E) looked up at t − 1, then an MLP on [x_t; emb(t)] giving logits.
///
/// Its parameters live in one packed tensor (the embedding table, then every layer's W then
/// b: one `Var` when trainable); the named tensors are views into it.
#[derive(Debug, Clone)]
pub struct ClassifierNet {
    config: ClassifierConfig,
    params: Tensor,
    packing: Packing,
    embedding: Tensor,
    layers: Vec<Dense>,
}

impl ClassifierNet {
    /// Builds the net from its tensors, checked against the configuration's shapes.
    pub(crate) fn from_parts(
        config: ClassifierConfig,
        embedding: Tensor,
        layers: Vec<Dense>,
    ) -> Result<Self> {
        config.validate()?;
        let expected = vec![config.num_steps, config.embed_dim];
        if embedding.dims() != expected.as_slice() {
            return Err(ModelError::TensorShape {
                name: "classifier.embedding.weight".into(),
                found: embedding.dims().to_vec(),
                expected,
            });
        }
        check_layers("classifier", &config.layer_shapes(), &layers)?;
        let params = pack(Some(&embedding), &layers)?;
        Self::from_params(config, params)
    }

    /// The packing of this configuration's parameters (the embedding table first).
    pub(crate) fn packing(config: &ClassifierConfig) -> Packing {
        Packing {
            shapes: config.layer_shapes(),
            start: config.num_steps * config.embed_dim,
        }
    }

    /// Builds the net on packed parameters ([`ClassifierNet::packing`]), a `Var` or not.
    pub(crate) fn from_params(config: ClassifierConfig, params: Tensor) -> Result<Self> {
        config.validate()?;
        let packing = Self::packing(&config);
        if params.dims() != [packing.len()] {
            return Err(ModelError::TensorShape {
                name: "classifier parameters".into(),
                found: params.dims().to_vec(),
                expected: vec![packing.len()],
            });
        }
        let embedding = params
            .detach()
            .narrow(0, 0, packing.start)?
            .reshape((config.num_steps, config.embed_dim))?;
        let layers = unpack_layers(&params, &packing)?;
        Ok(Self {
            config,
            params,
            packing,
            embedding,
            layers,
        })
    }

    fn embedding_input(&self, shared: bool) -> Embedding {
        Embedding {
            dim: self.config.dim,
            rows: self.config.num_steps,
            width: self.config.embed_dim,
            shared,
        }
    }

    /// The configuration the net was built from.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Training forward with a per-sample step: x_t (n × d, f32), t as n u32 indices t − 1; returns n × C logits.
    pub fn forward(&self, x_t: &Tensor, t_index: &Tensor) -> candle_core::Result<Tensor> {
        check_batch(x_t, self.config.dim)?;
        let t_index = t_index.to_dtype(DType::U32)?.flatten_all()?;
        crate::ops::classifier_mlp(
            x_t,
            &self.params,
            &t_index,
            &self.packing,
            self.config.activation.hidden(),
            self.embedding_input(false),
        )
    }

    /// Logits (n × C) for a batch all at the same 1-based step t.
    ///
    /// The same function as [`ClassifierNet::forward`] at t − 1 for every row, computed
    /// with the embedding folded into the first layer: [x, e] W₀ᵀ + b₀ = x W₀[:, :d]ᵀ + c
    /// with c = e W₀[:, d:]ᵀ + b₀ computed once for the batch, so the first layer costs d
    /// rather than d + E multiply-adds a unit and row, forward and backward (the guidance
    /// gradient). It is the same net op as `forward`, in its shared-step form, so autograd
    /// reaches x, the layers and the embedding. The sums run in another order than `forward`'s: f32 rounding.
    pub fn logits(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        check_step(t, self.config.num_steps)?;
        check_batch(x_t, self.config.dim)?;
        let index = Tensor::new(&[(t - 1) as u32], &DEVICE)?;
        crate::ops::classifier_mlp(
            x_t,
            &self.params,
            &index,
            &self.packing,
            self.config.activation.hidden(),
            self.embedding_input(true),
        )
    }

    /// The time embedding table, shape (T, E); row t − 1 encodes step t.
    pub fn embedding(&self) -> &Tensor {
        &self.embedding
    }

    /// A copy whose weights are plain tensors (no `Var`): the guidance gradient then reaches only x.
    ///
    /// The same function and the same gradient in x, to the bit. The weights share storage
    /// with `self` (no copy). Through a trainable net the guidance gradient's backward pass
    /// also computes every weight's gradient (and throws it away); through a detached one it
    /// computes only x's. Nets returned by training and loading already hold plain tensors;
    /// this matters for nets built by [`crate::init_classifier`].
    pub fn detached(&self) -> Self {
        Self {
            params: self.params.detach(),
            ..self.clone()
        }
    }

    /// True when the weights are a trainable `Var` (as built by [`crate::init_classifier`]).
    pub fn has_variables(&self) -> bool {
        self.params.is_variable()
    }

    /// Every parameter with its checkpoint name: the embedding, then the layers input to output (detached: for reading or saving).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "classifier.embedding.weight".to_string(),
            self.embedding.detach(),
        )];
        out.extend(named_layers("classifier", &self.layers));
        out
    }

    /// Total number of scalar parameters (20,386 for the notebook's net).
    pub fn num_parameters(&self) -> usize {
        self.params.elem_count()
    }
}

impl NoisyClassifier for ClassifierNet {
    fn num_steps(&self) -> usize {
        self.config.num_steps
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn log_probs(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        candle_nn::ops::log_softmax(&self.logits(x_t, t)?, candle_core::D::Minus1)
    }

    /// ∇_x Σ_i log p(y_i | x_i, t) through candle's autograd: x_t becomes a `Var`, the
    /// logits ([`ClassifierNet::logits`]) go through the one fused op that computes
    /// Σ_i log softmax(z_i)\[y_i\] (the same as `log_softmax`, `gather`, `sum_all`), and one
    /// `backward()` gives the n × d gradient (rows are independent: row i is sample i's).
    fn grad_log_prob(
        &self,
        x_t: &Tensor,
        t: usize,
        targets: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let x = Var::from_tensor(&x_t.detach())?;
        let targets = targets.to_dtype(DType::U32)?.flatten_all()?;
        let total = crate::ops::log_prob_at(&self.logits(x.as_tensor(), t)?, &targets, 1.0)?;
        let grads = total.backward()?;
        match grads.get(x.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => candle_core::bail!("the classifier's logits do not depend on x_t"),
        }
    }
}

/// Name of a layer tensor in checkpoints: `{prefix}.layers.{i}.{weight|bias}`.
pub(crate) fn layer_name(prefix: &str, i: usize, what: &str) -> String {
    format!("{prefix}.layers.{i}.{what}")
}

pub(crate) fn named_layers(prefix: &str, layers: &[Dense]) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(2 * layers.len());
    for (i, l) in layers.iter().enumerate() {
        out.push((layer_name(prefix, i, "weight"), l.weight.detach()));
        out.push((layer_name(prefix, i, "bias"), l.bias.detach()));
    }
    out
}

pub(crate) fn check_layers(
    prefix: &str,
    shapes: &[(usize, usize)],
    layers: &[Dense],
) -> Result<()> {
    if shapes.len() != layers.len() {
        return Err(ModelError::DimMismatch {
            what: "number of layers",
            found: layers.len(),
            expected: shapes.len(),
        });
    }
    for (i, (&(out, inp), l)) in shapes.iter().zip(layers).enumerate() {
        for (what, t, expected) in [
            ("weight", &l.weight, vec![out, inp]),
            ("bias", &l.bias, vec![out]),
        ] {
            if t.dims() != expected.as_slice() {
                return Err(ModelError::TensorShape {
                    name: layer_name(prefix, i, what),
                    found: t.dims().to_vec(),
                    expected,
                });
            }
            if t.dtype() != DType::F32 {
                return Err(ModelError::TensorDtype {
                    name: layer_name(prefix, i, what),
                    found: format!("{:?}", t.dtype()),
                });
            }
        }
    }
    Ok(())
}

/// The device every model of this crate lives on.
pub(crate) const DEVICE: Device = Device::Cpu;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{init_classifier, init_denoiser};
    use candle_core::Var;
    use rand::{rngs::StdRng, SeedableRng};

    fn batch() -> Tensor {
        Tensor::new(
            &[[-1.0f32, -2.0], [0.5, 0.25], [3.0, -0.5], [0.0, 0.0]],
            &DEVICE,
        )
        .unwrap()
    }

    #[test]
    fn configs_are_validated() {
        let ok = DenoiserConfig::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.layer_shapes(), vec![(128, 3), (128, 128), (2, 128)]);
        assert!(matches!(
            DenoiserConfig {
                dim: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroDim)
        ));
        assert!(matches!(
            DenoiserConfig {
                num_steps: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroNumSteps)
        ));
        assert!(matches!(
            DenoiserConfig {
                hidden_width: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroHiddenWidth { layer: 0 })
        ));
        let linear = DenoiserConfig {
            hidden_layers: 0,
            ..ok
        };
        assert_eq!(linear.layer_shapes(), vec![(2, 3)]);

        let ok = ClassifierConfig::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.layer_shapes(), vec![(64, 34), (32, 64), (2, 32)]);
        assert!(matches!(
            ClassifierConfig {
                num_classes: 1,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::TooFewClasses(1))
        ));
        assert!(matches!(
            ClassifierConfig {
                embed_dim: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroEmbedDim)
        ));
        assert!(matches!(
            ClassifierConfig {
                num_steps: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroNumSteps)
        ));
        assert!(matches!(
            ClassifierConfig {
                dim: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ModelError::ZeroDim)
        ));
        assert!(matches!(
            ClassifierConfig {
                hidden: vec![64, 0],
                ..ok
            }
            .validate(),
            Err(ModelError::ZeroHiddenWidth { layer: 1 })
        ));
    }

    #[test]
    fn predict_noise_is_forward_with_a_constant_time_column() {
        let (net, _) =
            init_denoiser(&DenoiserConfig::default(), &mut StdRng::seed_from_u64(1)).unwrap();
        let x = batch();
        let a = net.predict_noise(&x, 137).unwrap();
        assert_eq!(a.dims(), &[4, 2]);
        let t_col = Tensor::full(137.0f32 / 500.0, (4, 1), &DEVICE).unwrap();
        let b = net.forward(&x, &t_col).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        assert!(net.predict_noise(&x, 0).is_err());
        assert!(net.predict_noise(&x, 501).is_err());
        let wrong = Tensor::zeros((4, 3), DType::F32, &DEVICE).unwrap();
        assert!(net.predict_noise(&wrong, 1).is_err());
    }

    #[test]
    fn classifier_logits_match_the_per_sample_forward() {
        let (net, _) =
            init_classifier(&ClassifierConfig::default(), &mut StdRng::seed_from_u64(2)).unwrap();
        let x = batch();
        let fixed = net.logits(&x, 250).unwrap().to_vec2::<f32>().unwrap();
        let idx = Tensor::new(&[249u32; 4], &DEVICE).unwrap();
        let per_sample = net.forward(&x, &idx).unwrap().to_vec2::<f32>().unwrap();
        for (a, b) in fixed.iter().flatten().zip(per_sample.iter().flatten()) {
            // `logits` folds the embedding into the first layer's bias: the same sums in
            // another order, 34 terms of size ≲ 3, so f32 rounding ≲ 34 · 6e-8 · 3 ≈ 6e-6.
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
        // log_softmax rows are normalised: Σ_c p = 1 to f32 rounding.
        let p = net
            .log_probs(&x, 250)
            .unwrap()
            .exp()
            .unwrap()
            .sum(1)
            .unwrap();
        for s in p.to_vec1::<f32>().unwrap() {
            assert!((s - 1.0).abs() < 1e-6);
        }
        assert!(net.log_probs(&x, 0).is_err());
        assert!(net.log_probs(&x, 501).is_err());
    }

    #[test]
    fn detached_nets_compute_the_same_function_without_vars() {
        let (net, vars) =
            init_classifier(&ClassifierConfig::default(), &mut StdRng::seed_from_u64(3)).unwrap();
        let x_grad = |n: &ClassifierNet| {
            let x = Var::from_tensor(&batch()).unwrap();
            let g = n
                .log_probs(x.as_tensor(), 10)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap()
        };
        let det = net.detached();
        assert!(net.has_variables() && !det.has_variables());
        // The same gradient with respect to x, and the same outputs.
        assert_eq!(x_grad(&net), x_grad(&det));
        assert_eq!(
            net.logits(&batch(), 10).unwrap().to_vec2::<f32>().unwrap(),
            det.logits(&batch(), 10).unwrap().to_vec2::<f32>().unwrap()
        );
        // Backward through the trainable net reaches its Vars; the detached one has none to reach.
        let x = Var::from_tensor(&batch()).unwrap();
        let g = net
            .log_probs(x.as_tensor(), 10)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(vars.iter().all(|v| g.get(v.as_tensor()).is_some()));
        let (dnet, _) =
            init_denoiser(&DenoiserConfig::default(), &mut StdRng::seed_from_u64(3)).unwrap();
        assert!(dnet.has_variables() && !dnet.detached().has_variables());
    }
}
