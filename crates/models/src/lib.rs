//! The learned parts of the toy diffusion model and their exact references.
//!
//! - [`DenoiserNet`]: the noise predictor ε_θ(x_t, t), the notebook's
//!   `Chain(Dense(3,128,relu), Dense(128,128,relu), Dense(128,2))` on `[x_t; t/T]`.
//! - [`ClassifierNet`]: p_φ(y | x_t, t), `Embedding(T,32)` + `Chain(Dense(34,64,relu),
//!   Dense(64,32,relu), Dense(32,C))` on `[x_t; emb(t)]`, for classifier guidance.
//! - [`ConditionalDenoiserNet`]: ε_θ(x_t, t, y) for classifier-free guidance (Ho &
//!   Salimans 2022), the denoiser's MLP on `[x_t; t/T; onehot(y)]` with C + 1 class
//!   columns, the last one the null class ∅; [`train_conditional_denoiser`] trains it with
//!   label dropout ([`DEFAULT_LABEL_DROPOUT`] = 0.2).
//! - [`train_denoiser`], [`train_classifier`]: the notebook's loops (Adam, batch 128),
//!   reproducible bit for bit from one seed.
//! - [`ExactMixture`] → [`ExactDenoiser`], [`ExactClassifier`], [`ExactConditionalDenoiser`]:
//!   for Gaussian-mixture data the noised data is still a mixture, so ε*, the Bayes
//!   classifier and each class's ε*(x_t, t, y) are known exactly.
//! - [`classifier_accuracy`], [`accuracy_curve`], [`denoiser_loss`],
//!   [`denoiser_loss_floor`], [`bayes_accuracy_closed_form`]: evaluation on seeded data.
//! - Checkpoints as safetensors bytes ([`DenoiserNet::to_safetensors`],
//!   [`ClassifierNet::from_safetensors`], …), format below.
//!
//! The sampler only needs the traits [`NoisePredictor`], [`NoisyClassifier`] and
//! [`ConditionalNoisePredictor`], which both the trained nets and the exact references
//! implement. Everything runs in f32 on
//! candle's CPU device; time steps are 1-based (`t` in `1..=T`).
//!
//! # How the nets are computed
//!
//! Each net has one forward pass, and candle's autograd differentiates it everywhere:
//!
//! - Forward: one candle custom op per net (every layer y = act(x Wᵀ + b), relu or silu
//!   inside the op), on the net's parameters packed into one tensor (one `Var` when
//!   trainable; the checkpoint's named tensors are views into it). Inference ([`NoisePredictor::predict_noise`],
//!   [`ClassifierNet::logits`]) runs the same ops on plain tensors, so no graph is kept.
//! - Training: the loss is a candle tensor (the mean squared error, or the cross-entropy
//!   −(1/b) Σ log softmax(z)\[y\], each one fused op), `loss.backward()` runs each op's
//!   backward pass (the net's from the activations its forward pass kept), and Adam
//!   updates the packed `Var` from the resulting gradient.
//! - Guidance ([`NoisyClassifier::grad_log_prob`]): x_t becomes a `Var`, Σ_i log p(y_i |
//!   x_i, t) is one scalar, and one `backward()` gives every row's gradient. The
//!   shared-step logits fold the embedding of t into the first layer's bias (the same
//!   function; see [`ClassifierNet::logits`]).
//! - Divergence ([`NoisePredictor::noise_and_divergence`], for the likelihood): x_t becomes
//!   a `Var`, and one `backward()` of Σ_i ε_j(x_i) per coordinate j gives column j of each
//!   row's Jacobian diagonal (d passes for the batch); [`ExactDenoiser`] has it in closed form.
//! - A backward pass computes only what some tracked argument needs: through nets without
//!   `Var`s (what training and loading return) it computes no weight gradients.
//!
//! The arithmetic (gemm calls, AVX / AVX-512 kernels for the narrow shapes, the threads of
//! large batches, Adam's update) is one small module of plain-slice kernels, the only place
//! with `unsafe`. Batches of 2,048 rows or more are cut into pieces of 512 rows shared by
//! `RAYON_NUM_THREADS` threads (else every core). Same inputs, same bits, whatever the
//! thread count. A reference in plain candle ops and tests comparing every op with it sit
//! beside the kernels.
//!
//! # Example
//!
//! The exact optimal noise prediction and Bayes classifier for the notebook's data:
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use models::{ExactMixture, NoisePredictor, NoisyClassifier};
//! use schedule::NoiseSchedule;
//!
//! let schedule = NoiseSchedule::notebook();
//! let exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule)?;
//! let x_t = Tensor::new(&[[-1.0f32, -1.0], [0.0, 0.0], [1.5, 1.0]], &Device::Cpu)?;
//!
//! let eps = exact.denoiser().predict_noise(&x_t, 250)?; // 3 × 2
//! assert_eq!(eps.dims(), &[3, 2]);
//! // The origin lies between the clusters: by symmetry ε* = 0 there.
//! let e0 = eps.get(1)?.to_vec1::<f32>()?;
//! assert!(e0[0].abs() < 1e-6 && e0[1].abs() < 1e-6);
//!
//! let p = exact.classifier().log_probs(&x_t, 250)?.exp()?.to_vec2::<f32>()?;
//! assert!(p[2][1] > 0.9); // (1.5, 1) belongs to the cluster at (2, 2)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Checkpoint format
//!
//! A checkpoint is a [safetensors](https://github.com/huggingface/safetensors) file. All
//! tensors are `F32`, little-endian, row-major (C order). Dense weights have shape
//! `(out, in)` and a layer computes `y = x @ W.T + b` on a batch `x` of shape `(n, in)`.
//! Layers are numbered from 0 at the input. The `__metadata__` map holds strings:
//!
//! | key | denoiser (`"format": "toydiff-denoiser-v1"`) | classifier (`"format": "toydiff-classifier-v1"`) |
//! |---|---|---|
//! | `num_steps` | T (`"500"`) | T (`"500"`) |
//! | `dim` | d (`"2"`) | d (`"2"`) |
//! | architecture | `hidden_width` (`"128"`), `hidden_layers` (`"2"`), `time_encoding` (`"scaled"`) | `num_classes` (`"2"`), `embed_dim` (`"32"`), `hidden` (`"64,32"`) |
//! | `activation` | `"relu"` | `"relu"` |
//!
//! The conditional denoiser (`"format": "toydiff-conditional-denoiser-v1"`) has the
//! denoiser's keys plus `num_classes` (C, `"2"`).
//!
//! Denoiser tensors, L = `hidden_layers`, H = `hidden_width`:
//!
//! | name | shape |
//! |---|---|
//! | `denoiser.layers.0.weight` | (H, d + 1) — input `[x_t, t/T]` |
//! | `denoiser.layers.{i}.weight`, 0 < i < L | (H, H) |
//! | `denoiser.layers.{L}.weight` | (d, H) |
//! | `denoiser.layers.{i}.bias` | (out,) of the same layer |
//!
//! Conditional-denoiser tensors: the denoiser's table under the prefix
//! `conditional_denoiser`, with a first layer C + 1 inputs wider:
//!
//! | name | shape |
//! |---|---|
//! | `conditional_denoiser.layers.0.weight` | (H, d + F + C + 1) — input `[x_t, time features, onehot(y)]`; column d + F + c is class c's learned embedding, the last (c = C) the null class ∅ |
//! | `conditional_denoiser.layers.{i}.weight`, `.bias` | as the denoiser's |
//!
//! (F = 1 for `time_encoding = "scaled"`, 16 for `"sinusoidal"`.)
//!
//! Classifier tensors, widths `hidden = [h_0, …]`, E = `embed_dim`, C = `num_classes`:
//!
//! | name | shape |
//! |---|---|
//! | `classifier.embedding.weight` | (T, E) — row t − 1 embeds step t |
//! | `classifier.layers.0.weight` | (h_0, d + E) — input `[x_t, emb(t)]` |
//! | `classifier.layers.{i}.weight` | (h_i, h_{i−1}) |
//! | last `classifier.layers.{len(hidden)}.weight` | (C, h_last) — logits |
//! | `classifier.layers.{i}.bias` | (out,) of the same layer |
//!
//! The forward passes in numpy (`p = safetensors.numpy.load_file(path)`, `x` of shape
//! `(n, d)`, `t` an int array of 1-based steps):
//!
//! ```text
//! def dense(p, name, h):  return h @ p[name + ".weight"].T + p[name + ".bias"]
//! relu = lambda h: np.maximum(h, 0)
//!
//! def denoiser(p, x, t, T, L=2):            # predicted noise eps, shape (n, d)
//!     h = np.concatenate([x, (t / T)[:, None]], axis=1).astype(np.float32)
//!     for i in range(L):
//!         h = relu(dense(p, f"denoiser.layers.{i}", h))
//!     return dense(p, f"denoiser.layers.{L}", h)
//!
//! def conditional_denoiser(p, x, t, y, T, C, L=2):   # y: class per row, C for ∅
//!     onehot = np.eye(C + 1, dtype=np.float32)[y]
//!     h = np.concatenate([x, (t / T)[:, None], onehot], axis=1).astype(np.float32)
//!     for i in range(L):
//!         h = relu(dense(p, f"conditional_denoiser.layers.{i}", h))
//!     return dense(p, f"conditional_denoiser.layers.{L}", h)
//! # classifier-free guidance: (1 + w) * eps(x, t, y) - w * eps(x, t, C)
//!
//! def classifier(p, x, t, n_hidden=2):       # logits, shape (n, C)
//!     e = p["classifier.embedding.weight"][t - 1]
//!     h = np.concatenate([x, e], axis=1)
//!     for i in range(n_hidden):
//!         h = relu(dense(p, f"classifier.layers.{i}", h))
//!     return dense(p, f"classifier.layers.{n_hidden}", h)   # log_softmax -> log p(y | x_t, t)
//! ```

#![warn(missing_docs)]

mod adam;
mod checkpoint;
mod conditional;
mod error;
mod eval;
mod exact;
mod init;
mod kernels;
mod nets;
mod ops;
#[cfg(test)]
mod reference;
mod step;
mod train;
mod traits;

pub use checkpoint::{
    checkpoint_metadata, with_checkpoint_metadata, CLASSIFIER_FORMAT, CONDITIONAL_DENOISER_FORMAT,
    DENOISER_FORMAT,
};
pub use conditional::{
    init_conditional_denoiser, ConditionalDenoiserConfig, ConditionalDenoiserNet,
};
pub use error::{ModelError, Result};
pub use eval::{
    accuracy_curve, accuracy_on, binomial_std_error, classifier_accuracy, denoiser_loss,
    AccuracyPoint, NoisyTestSet, DEFAULT_TEST_POINTS,
};
pub use exact::{
    bayes_accuracy_closed_form, denoiser_loss_floor, erf, normal_cdf, ExactClassifier,
    ExactConditionalDenoiser, ExactDenoiser, ExactMixture, MonteCarlo,
};
pub use init::{glorot_uniform, init_classifier, init_denoiser, standard_normal};
pub use nets::{
    Activation, ClassifierConfig, ClassifierNet, DenoiserConfig, DenoiserNet, TimeEncoding,
};
pub use train::{
    train_classifier, train_conditional_denoiser, train_denoiser, ClassifierTraining,
    ConditionalTraining, DenoiserTraining, LrSchedule, DEFAULT_LABEL_DROPOUT,
};
pub use traits::{
    autograd_noise_divergence, ConditionalNoisePredictor, NoisePredictor, NoisyClassifier,
};

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
