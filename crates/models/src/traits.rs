//! The two interfaces a sampler needs: a noise predictor ε(x_t, t) and a noisy-time
//! classifier log p(y | x_t, t). Trained networks and exact references implement both.

use candle_core::{Tensor, Var};

/// A model of the noise in x_t: anything the reverse process can use as ε_θ.
pub trait NoisePredictor {
    /// T, the number of diffusion steps the model knows.
    fn num_steps(&self) -> usize;
    /// d, the data dimension.
    fn dim(&self) -> usize;
    /// ε(x_t, t) for a batch x_t (n × d, f32) all at the same 1-based step t.
    fn predict_noise(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor>;

    /// ε for the rows `rows` of a run's batch, `x_rows` holding those rows (samplers call
    /// a large batch chunk by chunk). The default is [`Self::predict_noise`] on `x_rows`,
    /// right for any model whose rows are independent and alike; one with per-sample
    /// state (a target class per sample) must use `rows`.
    fn predict_noise_rows(
        &self,
        x_rows: &Tensor,
        t: usize,
        rows: std::ops::Range<usize>,
    ) -> candle_core::Result<Tensor> {
        let _ = rows;
        self.predict_noise(x_rows, t)
    }
}

/// A classifier of noisy points, for classifier guidance.
pub trait NoisyClassifier {
    /// T, the number of diffusion steps the model knows.
    fn num_steps(&self) -> usize;
    /// C, the number of classes.
    fn num_classes(&self) -> usize;
    /// log p(y | x_t, t) for every class: n × C log-softmax, differentiable in x_t (built from candle ops).
    fn log_probs(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor>;

    /// ∇_x log p(y_i | x_t, t) for each row i and its target class, in ONE backward pass over the whole batch.
    ///
    /// x_t becomes a `Var`, the log-probabilities at the targets are summed over the batch
    /// and differentiated once: rows are independent, so row i of the gradient of the sum is
    /// the gradient of sample i alone. `targets` is a u32 tensor of length n. The result is
    /// n × d, same dtype as `x_t`. Weights that are `Var`s get no gradient here (only x's
    /// is read), though the backward pass computes theirs: [`crate::ClassifierNet::detached`]
    /// (what training and loading return) skips that work.
    fn grad_log_prob(
        &self,
        x_t: &Tensor,
        t: usize,
        targets: &Tensor,
    ) -> candle_core::Result<Tensor> {
        autograd_grad_log_prob(self, x_t, t, targets)
    }
}

/// [`NoisyClassifier::grad_log_prob`]: candle autograd over `log_probs`, one backward pass.
pub(crate) fn autograd_grad_log_prob<C: NoisyClassifier + ?Sized>(
    classifier: &C,
    x_t: &Tensor,
    t: usize,
    targets: &Tensor,
) -> candle_core::Result<Tensor> {
    let n = x_t.dim(0)?;
    let classes = targets.to_dtype(candle_core::DType::U32)?.flatten_all()?;
    if classes.dim(0)? != n {
        candle_core::bail!("{} targets for a batch of {n}", classes.dim(0)?);
    }
    let num_classes = classifier.num_classes();
    if let Some(&c) = classes
        .to_vec1::<u32>()?
        .iter()
        .find(|&&c| c as usize >= num_classes)
    {
        candle_core::bail!("target class {c} is outside 0..{num_classes}");
    }
    let x = Var::from_tensor(&x_t.detach())?;
    let log_probs = classifier.log_probs(x.as_tensor(), t)?;
    let targets = classes.unsqueeze(1)?;
    let selected = log_probs.gather(&targets, 1)?.sum_all()?;
    let grads = selected.backward()?;
    match grads.get(x.as_tensor()) {
        Some(g) => Ok(g.clone()),
        // log p does not depend on x at all: its gradient is zero.
        None => x.as_tensor().zeros_like(),
    }
}

/// A noise model conditioned on a class: ε(x_t, t, y) and the unconditional ε(x_t, t, ∅),
/// for classifier-free guidance (Ho & Salimans 2022). The trained
/// [`crate::ConditionalDenoiserNet`] and the exact [`crate::ExactConditionalDenoiser`]
/// implement it.
pub trait ConditionalNoisePredictor {
    /// T, the number of diffusion steps the model knows.
    fn num_steps(&self) -> usize;
    /// d, the data dimension.
    fn dim(&self) -> usize;
    /// C, the number of classes (the null class ∅ is not one of them).
    fn num_classes(&self) -> usize;
    /// For a batch x_t (n × d) all at the 1-based step t: with `Some(y)` (n classes in
    /// 0..C) row i is ε(x_i, t, y_i); with `None` every row is ε(x_i, t, ∅), the
    /// unconditional model.
    fn predict_noise_conditional(
        &self,
        x_t: &Tensor,
        t: usize,
        classes: Option<&[u32]>,
    ) -> candle_core::Result<Tensor>;

    /// (ε(x_t, t, y), ε(x_t, t, ∅)) for the same batch, what classifier-free guidance
    /// mixes: by default two calls of [`Self::predict_noise_conditional`]; a net may
    /// evaluate both halves as one batch of 2n rows (the same values).
    fn predict_noise_pair(
        &self,
        x_t: &Tensor,
        t: usize,
        classes: &[u32],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.predict_noise_conditional(x_t, t, Some(classes))?,
            self.predict_noise_conditional(x_t, t, None)?,
        ))
    }
}
