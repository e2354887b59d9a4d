//! One training step of each net through candle's autograd: the loss as a candle tensor,
//! one `backward()`, one Adam update.
//!
//! Each net's forward pass is one fused op on its packed parameters (`ops.rs`) and each
//! loss is one fused op, so a step is a graph of three nodes (the net, the loss, and the
//! packed parameters' `Var`) and candle accumulates one gradient a node; each op's
//! backward pass computes only the gradients a tracked argument needs.

use candle_core::Tensor;

use crate::conditional::ConditionalDenoiserNet;
use crate::nets::{ClassifierNet, DenoiserNet, DEVICE};

/// The denoiser's loss on one batch: mean((ε_θ(input) − ε)²) over every coordinate (Flux's
/// `mse`, the notebook's loss). `input` is b × (d + time features), `noise` b × d, row-major.
pub(crate) fn denoiser_loss(
    net: &DenoiserNet,
    input: &[f32],
    noise: &[f32],
    b: usize,
) -> candle_core::Result<Tensor> {
    let input = Tensor::from_slice(input, (b, input.len() / b.max(1)), &DEVICE)?;
    let noise = Tensor::from_slice(noise, (b, noise.len() / b.max(1)), &DEVICE)?;
    let pred = net.forward_input(&input)?;
    crate::ops::mean_squared_error(&pred, &noise)
}

/// The conditional denoiser's loss on one batch: mean((ε_θ(input) − ε)²) as
/// [`denoiser_loss`], `input` b × (d + time features + C + 1) with the one-hot class.
pub(crate) fn conditional_denoiser_loss(
    net: &ConditionalDenoiserNet,
    input: &[f32],
    noise: &[f32],
    b: usize,
) -> candle_core::Result<Tensor> {
    let input = Tensor::from_slice(input, (b, input.len() / b.max(1)), &DEVICE)?;
    let noise = Tensor::from_slice(noise, (b, noise.len() / b.max(1)), &DEVICE)?;
    let pred = net.forward_input(&input)?;
    crate::ops::mean_squared_error(&pred, &noise)
}

/// The classifier's loss on one batch: mean cross-entropy of the logits of [x_t; emb(t)]
/// against the labels, −(1/b) Σ_i log softmax(z_i)[y_i] (candle_nn's `cross_entropy`). `x_t` is b × d, `t_index` the steps t − 1.
pub(crate) fn classifier_loss(
    net: &ClassifierNet,
    x_t: &[f32],
    t_index: &[u32],
    labels: &[u32],
) -> candle_core::Result<Tensor> {
    let b = labels.len();
    let x = Tensor::from_slice(x_t, (b, x_t.len() / b.max(1)), &DEVICE)?;
    let t = Tensor::from_slice(t_index, b, &DEVICE)?;
    let y = Tensor::from_slice(labels, b, &DEVICE)?;
    // −mean_i log p(y_i | x_i, t_i), as candle_nn's `cross_entropy`.
    crate::ops::log_prob_at(&net.forward(&x, &t)?, &y, -1.0 / b as f32)
}
