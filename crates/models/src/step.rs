//! One training step of each net, fused: forward, loss, backward and the gradients handed
//! to Adam, on the host, reading the parameters in place from their `Var`s.
//!
//! Through candle's autograd a step of these small nets was mostly per-op traffic: every
//! op allocates its output, and the backward pass accumulates each gradient into a fresh
//! zero tensor (`GradStore::or_insert`, then `add`). Here a step allocates nothing: the
//! kernels of `fused.rs` write into buffers kept from step to step ([`MlpPass`]), and
//! Adam updates each `Var`'s storage in place. The arithmetic is the same as the autograd
//! path's (same products, same loss); only the order of some sums differs, so losses and
//! weights match it to f32 rounding, and a seed still fixes every bit.
//!
//! Relu nets (the notebook's) take this path; silu nets keep candle's autograd (through
//! the fused dense op), the same step as before.

use candle_core::{Tensor, Var};

use crate::adam::Adam;
use crate::fused::{HostLayer, MlpPass};
use crate::nets::{Activation, ClassifierNet, DenoiserNet, DEVICE};

/// Reads every parameter in place and calls `f` with the dense layers (the `Var`s from
/// `first_layer` on, weight then bias) and all the parameters' data.
fn with_layers<R>(
    vars: &[Var],
    first_layer: usize,
    shapes: &[(usize, usize)],
    f: impl FnOnce(&[HostLayer], &[std::borrow::Cow<[f32]>]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let tensors: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    crate::fused::with_host_layers(&tensors, first_layer, shapes, f)
}

/// The denoiser's step: loss = mean((ε_θ(input) − ε)²) over every coordinate.
pub(crate) struct DenoiserStep {
    fused: bool,
    shapes: Vec<(usize, usize)>,
    pass: MlpPass,
    /// The loss tensor of the autograd path, kept for its backward pass.
    loss: Option<Tensor>,
}

impl DenoiserStep {
    pub(crate) fn new(net: &DenoiserNet) -> Self {
        Self {
            fused: net.config().activation == Activation::Relu,
            shapes: net.config().layer_shapes(),
            pass: MlpPass::default(),
            loss: None,
        }
    }

    /// The forward pass and the loss of a batch: `input` is b × (d + time features),
    /// `noise` b × d, both row-major.
    pub(crate) fn loss(
        &mut self,
        net: &DenoiserNet,
        opt: &Adam,
        input: &[f32],
        noise: &[f32],
        b: usize,
    ) -> candle_core::Result<f32> {
        let width = input.len() / b.max(1);
        if !self.fused {
            let input_t = Tensor::from_slice(input, (b, width), &DEVICE)?;
            let noise_t = Tensor::from_slice(noise, (b, noise.len() / b.max(1)), &DEVICE)?;
            let pred = net.forward_input(&input_t)?;
            let loss = (pred - noise_t)?.sqr()?.mean_all()?;
            let value = loss.to_scalar::<f32>()?;
            self.loss = Some(loss);
            return Ok(value);
        }
        let pass = &mut self.pass;
        with_layers(opt.vars(), 0, &self.shapes, |layers, _| {
            pass.forward(layers, input, b);
            Ok(())
        })?;
        // d/dp mean((p − ε)²) = 2 (p − ε) / N.
        let count = noise.len() as f32;
        let scale = 2.0 / count;
        let mut diff: Vec<f32> = pass.output().to_vec();
        let mut sum = 0f32;
        for (p, &e) in diff.iter_mut().zip(noise) {
            *p -= e;
            sum += *p * *p;
        }
        let grad = pass.output_grad();
        grad.clear();
        grad.extend(diff.iter().map(|&d| d * scale));
        Ok(sum / count)
    }

    /// The backward pass of the last [`DenoiserStep::loss`] and one Adam step.
    pub(crate) fn update(
        &mut self,
        opt: &mut Adam,
        input: &[f32],
        b: usize,
    ) -> candle_core::Result<()> {
        if !self.fused {
            let loss = self.loss.take().expect("loss() comes first");
            return opt.backward_step(&loss);
        }
        let pass = &mut self.pass;
        with_layers(opt.vars(), 0, &self.shapes, |layers, _| {
            pass.backward(layers, input, b, false);
            Ok(())
        })?;
        let grads: Vec<&[f32]> = pass
            .dw
            .iter()
            .zip(&pass.db)
            .flat_map(|(w, b)| [w.as_slice(), b.as_slice()])
            .collect();
        opt.step_host(&grads)
    }
}

/// The classifier's step: loss = mean cross-entropy of the logits of [x_t; emb(t)].
pub(crate) struct ClassifierStep {
    fused: bool,
    shapes: Vec<(usize, usize)>,
    dim: usize,
    embed: usize,
    pass: MlpPass,
    /// The gathered input rows [x_t; emb(t)], b × (d + E).
    input: Vec<f32>,
    /// The embedding table's gradient (T × E).
    d_table: Vec<f32>,
    loss: Option<Tensor>,
}

impl ClassifierStep {
    pub(crate) fn new(net: &ClassifierNet) -> Self {
        let c = net.config();
        Self {
            fused: c.activation == Activation::Relu,
            shapes: c.layer_shapes(),
            dim: c.dim,
            embed: c.embed_dim,
            pass: MlpPass::default(),
            input: Vec::new(),
            d_table: vec![0.0; c.num_steps * c.embed_dim],
            loss: None,
        }
    }

    /// The forward pass and the loss of a batch: `x_t` b × d, `t_index` the steps t − 1,
    /// `labels` the classes.
    pub(crate) fn loss(
        &mut self,
        net: &ClassifierNet,
        opt: &Adam,
        x_t: &[f32],
        t_index: &[u32],
        labels: &[u32],
    ) -> candle_core::Result<f32> {
        let b = labels.len();
        if !self.fused {
            let x_tensor = Tensor::from_slice(x_t, (b, self.dim), &DEVICE)?;
            let t_tensor = Tensor::from_slice(t_index, b, &DEVICE)?;
            let y_tensor = Tensor::from_slice(labels, b, &DEVICE)?;
            let logits = net.forward(&x_tensor, &t_tensor)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y_tensor)?;
            let value = loss.to_scalar::<f32>()?;
            self.loss = Some(loss);
            return Ok(value);
        }
        let (d, e) = (self.dim, self.embed);
        let (input, pass) = (&mut self.input, &mut self.pass);
        with_layers(opt.vars(), 1, &self.shapes, |layers, data| {
            // [x_t; emb(t)] row by row, the embedding read in place.
            let table = &data[0];
            input.clear();
            for (x, &k) in x_t.chunks_exact(d).zip(t_index) {
                input.extend_from_slice(x);
                input.extend_from_slice(&table[k as usize * e..(k as usize + 1) * e]);
            }
            pass.forward(layers, input, b);
            Ok(())
        })?;
        // Cross-entropy: −mean log softmax(l)[y]; its gradient (softmax − onehot(y)) / b.
        let logits = pass.output().to_vec();
        let classes = logits.len() / b.max(1);
        let grad = pass.output_grad();
        grad.clear();
        let mut total = 0f32;
        for (row, &y) in logits.chunks_exact(classes).zip(labels) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&l| (l - max).exp()).sum();
            let log_sum = sum.ln();
            total += -(row[y as usize] - max - log_sum);
            for (c, &l) in row.iter().enumerate() {
                let p = (l - max).exp() / sum;
                let onehot = if c == y as usize { 1.0 } else { 0.0 };
                grad.push((p - onehot) / b as f32);
            }
        }
        Ok(total / b as f32)
    }

    /// The backward pass of the last [`ClassifierStep::loss`] and one Adam step.
    pub(crate) fn update(&mut self, opt: &mut Adam, t_index: &[u32]) -> candle_core::Result<()> {
        if !self.fused {
            let loss = self.loss.take().expect("loss() comes first");
            return opt.backward_step(&loss);
        }
        let b = t_index.len();
        let (d, e) = (self.dim, self.embed);
        let (input, pass) = (&self.input, &mut self.pass);
        with_layers(opt.vars(), 1, &self.shapes, |layers, _| {
            pass.backward(layers, input, b, true);
            Ok(())
        })?;
        // The embedding rows' gradients: the e columns of d input, added row by row.
        self.d_table.fill(0.0);
        let width = d + e;
        for (row, &k) in pass.d_input.chunks_exact(width).zip(t_index) {
            let dst = &mut self.d_table[k as usize * e..(k as usize + 1) * e];
            for (s, &v) in dst.iter_mut().zip(&row[d..]) {
                *s += v;
            }
        }
        let mut grads: Vec<&[f32]> = vec![&self.d_table];
        grads.extend(
            pass.dw
                .iter()
                .zip(&pass.db)
                .flat_map(|(w, b)| [w.as_slice(), b.as_slice()]),
        );
        opt.step_host(&grads)
    }
}
