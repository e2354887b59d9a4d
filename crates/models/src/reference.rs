//! The slow reference of every fast path: the nets, their losses and the guidance gradient
//! written in plain candle ops (`matmul`, `broadcast_add`, `relu`/`silu`, `cat`,
//! `index_select`, `candle_nn`'s `log_softmax` and `cross_entropy`), differentiated by
//! candle's own autograd; and the tests that compare the fused ops (`ops.rs` over
//! `kernels.rs`) with it on every branch they take.
//!
//! Tolerances: the fused kernels add the same products in other orders than candle's
//! matmul (FMAs in k order, 16-lane dot products, gemm's blocking), so results agree to
//! f32 rounding, not to the bit. A sum of K terms in two orders differs by at most about
//! K · ε · Σ|terms| (ε = 2⁻²⁴ ≈ 6e-8) and typically √K · ε · Σ|terms|; with K ≤ 2,100
//! and the values of these tests that is below 1e-5 of the largest magnitude, and
//! [`assert_close`] allows 1e-4 of it. A wrong formula (a missing mask, a transposed
//! weight, a dropped term) is off by O(1) of it.

use candle_core::{Tensor, D};

use crate::nets::Activation;

/// y = x Wᵀ + b in candle ops.
pub(crate) fn dense(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

/// The MLP on `input`: the activation after every layer but the last.
pub(crate) fn mlp(
    layers: &[(Tensor, Tensor)],
    activation: Activation,
    input: &Tensor,
) -> candle_core::Result<Tensor> {
    let mut h = input.clone();
    for (i, (w, b)) in layers.iter().enumerate() {
        h = dense(&h, w, b)?;
        if i + 1 < layers.len() {
            h = match activation {
                Activation::Relu => h.relu()?,
                Activation::Silu => h.silu()?,
            };
        }
    }
    Ok(h)
}

/// The classifier's logits on [x_t; emb(t_i)] (per-sample steps, indices t − 1).
pub(crate) fn classifier_logits(
    embedding: &Tensor,
    layers: &[(Tensor, Tensor)],
    activation: Activation,
    x_t: &Tensor,
    t_index: &Tensor,
) -> candle_core::Result<Tensor> {
    let emb = embedding.index_select(t_index, 0)?;
    mlp(layers, activation, &Tensor::cat(&[x_t, &emb], 1)?)
}

/// Σ_i log softmax(z_i)[y_i]: candle_nn's log_softmax, a gather and a sum.
pub(crate) fn log_prob_at(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::log_softmax(logits, D::Minus1)?
        .gather(&targets.unsqueeze(1)?, 1)?
        .sum_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adam::Adam;
    use crate::init::{init_classifier, init_denoiser};
    use crate::kernels::{with_piece_threads, PIECES_FROM};
    use crate::nets::{ClassifierConfig, DenoiserConfig, DEVICE};
    use crate::traits::{NoisePredictor, NoisyClassifier};
    use candle_core::backprop::GradStore;
    use candle_core::{DType, Var};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Batch sizes: one row, a few rows (tails of every 4- and 16-wide loop), the training
    /// batch, the sampling batch, and the threaded path (≥ PIECES_FROM rows, a short last piece).
    const BATCHES: [usize; 5] = [1, 7, 128, 500, PIECES_FROM + 52];

    fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    fn tensor(rows: usize, cols: usize, seed: u64, scale: f32) -> Tensor {
        Tensor::from_vec(values(rows * cols, seed, scale), (rows, cols), &DEVICE).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        flat(t).iter().map(|v| v.to_bits()).collect()
    }

    /// max |a − b| ≤ 1e-4 · max(1, max |b|): f32 rounding of sums in another order (see the
    /// module docs).
    #[track_caller]
    fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let (a, b) = (flat(a), flat(b));
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{what}: max difference {worst} at scale {scale}"
        );
    }

    fn grad<'a>(g: &'a GradStore, v: &Var) -> &'a Tensor {
        g.get(v.as_tensor())
            .expect("a gradient for every tracked argument")
    }

    fn denoiser(activation: Activation, seed: u64) -> (crate::nets::DenoiserNet, Vec<Var>) {
        let cfg = DenoiserConfig {
            activation,
            ..DenoiserConfig::default()
        };
        init_denoiser(&cfg, &mut StdRng::seed_from_u64(seed)).unwrap()
    }

    fn classifier(activation: Activation, seed: u64) -> (crate::nets::ClassifierNet, Vec<Var>) {
        let cfg = ClassifierConfig {
            activation,
            num_classes: 3,
            ..ClassifierConfig::default()
        };
        init_classifier(&cfg, &mut StdRng::seed_from_u64(seed)).unwrap()
    }

    /// Copies of a net's named tensors as `Var`s, for the reference graph.
    fn reference_vars(named: &[(String, Tensor)]) -> Vec<Var> {
        named
            .iter()
            .map(|(_, t)| Var::from_tensor(&t.copy().unwrap()).unwrap())
            .collect()
    }

    /// The reference layers (W, b) over `vars` laid out weight, bias per layer.
    fn var_pairs(vars: &[Var]) -> Vec<(Tensor, Tensor)> {
        vars.chunks_exact(2)
            .map(|p| (p[0].as_tensor().clone(), p[1].as_tensor().clone()))
            .collect()
    }

    /// A packed gradient (or parameter) cut into the named tensors' shapes, in order (the
    /// packing order is the order of `named_tensors`).
    fn unpack(flat: &Tensor, named: &[(String, Tensor)]) -> Vec<Tensor> {
        let mut at = 0;
        named
            .iter()
            .map(|(_, t)| {
                let part = flat
                    .narrow(0, at, t.elem_count())
                    .unwrap()
                    .reshape(t.shape())
                    .unwrap();
                at += t.elem_count();
                part
            })
            .collect()
    }

    /// Non-zero biases, so that db and the bias paths are exercised: the bias ranges of the
    /// packed `Var` set to random values.
    fn perturb_biases(var: &Var, named: &[(String, Tensor)], seed: u64) {
        let mut packed = flat(var.as_tensor());
        let mut at = 0;
        for (i, (name, t)) in named.iter().enumerate() {
            if name.ends_with("bias") {
                let fresh = values(t.elem_count(), seed + i as u64, 0.3);
                packed[at..at + t.elem_count()].copy_from_slice(&fresh);
            }
            at += t.elem_count();
        }
        let n = packed.len();
        var.set(&Tensor::from_vec(packed, n, &DEVICE).unwrap())
            .unwrap();
    }

    fn targets(n: usize, classes: u32) -> Tensor {
        Tensor::from_vec(
            (0..n as u32).map(|i| (i * 7 + 1) % classes).collect(),
            n,
            &DEVICE,
        )
        .unwrap()
    }

    fn t_index(n: usize) -> Tensor {
        Tensor::from_vec((0..n as u32).map(|i| (i * 37) % 500).collect(), n, &DEVICE).unwrap()
    }

    /// Σ (y ⊙ probe) with a fixed random probe: its gradient in y is the probe, so every
    /// entry of dx, dW and db is checked, not only their sums.
    fn probed(y: &Tensor, seed: u64) -> Tensor {
        let (n, c) = y.dims2().unwrap();
        (y * tensor(n, c, seed, 1.0)).unwrap().sum_all().unwrap()
    }

    #[test]
    fn denoiser_forward_and_training_gradients_match_the_reference() {
        for activation in [Activation::Relu, Activation::Silu] {
            let (net, vars) = denoiser(activation, 5);
            perturb_biases(&vars[0], &net.named_tensors(), 50);
            let named = net.named_tensors();
            let theirs = reference_vars(&named);
            let layers = var_pairs(&theirs);
            for &n in &BATCHES {
                let what = format!("{activation:?}, n = {n}");
                let x = tensor(n, 2, 6, 2.0);
                let t = Tensor::full(0.274f32, (n, 1), &DEVICE).unwrap();
                let input = Tensor::cat(&[&x, &t], 1).unwrap();
                let slow = mlp(&layers, activation, &input).unwrap();
                assert_close(
                    &net.forward(&x, &t).unwrap(),
                    &slow,
                    &format!("forward {what}"),
                );
                // predict_noise (the untracked inference path) on the detached net.
                let eps = net.detached().predict_noise(&x, 137).unwrap();
                assert_close(&eps, &slow, &format!("predict_noise {what}"));
                // dx, dW, db of a probe of the output, x and the weights tracked.
                let xv = Var::from_tensor(&x).unwrap();
                let fast = net.forward(xv.as_tensor(), &t).unwrap();
                let gf = probed(&fast, 30).backward().unwrap();
                let slow_x = mlp(
                    &layers,
                    activation,
                    &Tensor::cat(&[xv.as_tensor(), &t], 1).unwrap(),
                )
                .unwrap();
                let gs = probed(&slow_x, 30).backward().unwrap();
                assert_close(grad(&gf, &xv), grad(&gs, &xv), &format!("dx {what}"));
                for ((name, _), (f, v)) in named
                    .iter()
                    .zip(unpack(grad(&gf, &vars[0]), &named).iter().zip(&theirs))
                {
                    assert_close(f, grad(&gs, v), &format!("probe {name} {what}"));
                }
                // Only x tracked (the detached net): dx alone, the same bits.
                let gd = probed(&net.detached().forward(xv.as_tensor(), &t).unwrap(), 30)
                    .backward()
                    .unwrap();
                assert_eq!(
                    bits(grad(&gd, &xv)),
                    bits(grad(&gf, &xv)),
                    "dx detached {what}"
                );
                assert!(gd.get(vars[0].as_tensor()).is_none(), "{what}");
                // The training loss and every parameter's gradient.
                let noise = values(n * 2, 7, 1.5);
                let fast_loss = crate::step::denoiser_loss(&net, &flat(&input), &noise, n).unwrap();
                let noise = Tensor::from_vec(noise, (n, 2), &DEVICE).unwrap();
                let slow_loss = (slow - noise).unwrap().sqr().unwrap().mean_all().unwrap();
                assert_close(&fast_loss, &slow_loss, &format!("loss {what}"));
                let (gf, gs) = (fast_loss.backward().unwrap(), slow_loss.backward().unwrap());
                for ((name, _), (f, v)) in named
                    .iter()
                    .zip(unpack(grad(&gf, &vars[0]), &named).iter().zip(&theirs))
                {
                    assert_close(f, grad(&gs, v), &format!("{name} {what}"));
                }
            }
        }
    }

    #[test]
    fn nothing_tracked_records_no_graph() {
        let (den, _) = denoiser(Activation::Relu, 1);
        let (clf, _) = classifier(Activation::Relu, 2);
        let x = tensor(9, 2, 1, 1.0);
        assert!(den
            .forward(&x, &Tensor::ones((9, 1), DType::F32, &DEVICE).unwrap())
            .unwrap()
            .track_op());
        assert!(!den.detached().predict_noise(&x, 3).unwrap().track_op());
        assert!(!clf.detached().logits(&x, 3).unwrap().track_op());
        assert!(!clf.detached().forward(&x, &t_index(9)).unwrap().track_op());
    }

    #[test]
    fn classifier_forward_loss_gradients_and_guidance_match_the_reference() {
        for activation in [Activation::Relu, Activation::Silu] {
            let (net, vars) = classifier(activation, 8);
            perturb_biases(&vars[0], &net.named_tensors(), 80);
            let named = net.named_tensors();
            let theirs = reference_vars(&named);
            let (embedding, layers) = (theirs[0].as_tensor().clone(), var_pairs(&theirs[1..]));
            let detached = net.detached();
            for &n in &BATCHES {
                let what = format!("{activation:?}, n = {n}");
                let x = tensor(n, 2, 9, 3.0);
                let (ti, y) = (t_index(n), targets(n, 3));
                // The per-sample forward and the training loss with every gradient.
                let slow = classifier_logits(&embedding, &layers, activation, &x, &ti).unwrap();
                assert_close(
                    &net.forward(&x, &ti).unwrap(),
                    &slow,
                    &format!("forward {what}"),
                );
                let fast_loss = crate::step::classifier_loss(
                    &net,
                    &flat(&x),
                    &ti.to_vec1::<u32>().unwrap(),
                    &y.to_vec1::<u32>().unwrap(),
                )
                .unwrap();
                let slow_loss = candle_nn::loss::cross_entropy(&slow, &y).unwrap();
                assert_close(&fast_loss, &slow_loss, &format!("loss {what}"));
                let (gf, gs) = (fast_loss.backward().unwrap(), slow_loss.backward().unwrap());
                for ((name, _), (f, v)) in named
                    .iter()
                    .zip(unpack(grad(&gf, &vars[0]), &named).iter().zip(&theirs))
                {
                    assert_close(f, grad(&gs, v), &format!("{name} {what}"));
                }
                // The per-sample forward's dx and every parameter's gradient under a probe.
                let xv = Var::from_tensor(&x).unwrap();
                let gf = probed(&net.forward(xv.as_tensor(), &ti).unwrap(), 31)
                    .backward()
                    .unwrap();
                let gs = probed(
                    &classifier_logits(&embedding, &layers, activation, xv.as_tensor(), &ti)
                        .unwrap(),
                    31,
                )
                .backward()
                .unwrap();
                assert_close(grad(&gf, &xv), grad(&gs, &xv), &format!("dx {what}"));
                for ((name, _), (f, v)) in named
                    .iter()
                    .zip(unpack(grad(&gf, &vars[0]), &named).iter().zip(&theirs))
                {
                    assert_close(f, grad(&gs, v), &format!("probe {name} {what}"));
                }
                // The shared-step logits (embedding folded into the first layer's bias).
                for t in [1, 250, 500] {
                    let at_t = Tensor::full((t - 1) as u32, n, &DEVICE).unwrap();
                    let slow =
                        classifier_logits(&embedding, &layers, activation, &x, &at_t).unwrap();
                    assert_close(
                        &net.logits(&x, t).unwrap(),
                        &slow,
                        &format!("logits {what}"),
                    );
                    // Every parameter's gradient through the folded first layer.
                    let gf = probed(&net.logits(&x, t).unwrap(), 32).backward().unwrap();
                    let gs = probed(&slow, 32).backward().unwrap();
                    for ((name, _), (f, v)) in named
                        .iter()
                        .zip(unpack(grad(&gf, &vars[0]), &named).iter().zip(&theirs))
                    {
                        assert_close(
                            f,
                            grad(&gs, v),
                            &format!("shared-step {name} t = {t}, {what}"),
                        );
                    }
                    // The guidance gradient: x a Var, Σ log p(y | x), one backward pass.
                    let xv = Var::from_tensor(&x).unwrap();
                    let slow_logits = classifier_logits(
                        &embedding.detach(),
                        &layers
                            .iter()
                            .map(|(w, b)| (w.detach(), b.detach()))
                            .collect::<Vec<_>>(),
                        activation,
                        xv.as_tensor(),
                        &at_t,
                    )
                    .unwrap();
                    let gs = log_prob_at(&slow_logits, &y).unwrap().backward().unwrap();
                    let fast = detached.grad_log_prob(&x, t, &y).unwrap();
                    assert_close(&fast, grad(&gs, &xv), &format!("guidance t = {t}, {what}"));
                    // The trainable net gives the same gradient in x.
                    let through_vars = net.grad_log_prob(&x, t, &y).unwrap();
                    assert_eq!(bits(&through_vars), bits(&fast), "{what}");
                }
            }
        }
    }

    #[test]
    fn the_threaded_path_gives_the_same_bits_on_every_thread_count() {
        let n = PIECES_FROM + 300;
        let x = tensor(n, 2, 11, 3.0);
        let y = targets(n, 3);
        for activation in [Activation::Relu, Activation::Silu] {
            let (den, dvars) = denoiser(activation, 12);
            let (clf, cvars) = classifier(activation, 13);
            let run = |threads: usize| {
                with_piece_threads(threads, || {
                    let eps = den.detached().predict_noise(&x, 300).unwrap();
                    let g = clf.detached().grad_log_prob(&x, 300, &y).unwrap();
                    let input = Tensor::cat(
                        &[&x, &Tensor::ones((n, 1), DType::F32, &DEVICE).unwrap()],
                        1,
                    )
                    .unwrap();
                    let noise = values(n * 2, 3, 1.0);
                    let loss = crate::step::denoiser_loss(&den, &flat(&input), &noise, n).unwrap();
                    let grads = loss.backward().unwrap();
                    let mut out = vec![bits(&eps), bits(&g), bits(&loss)];
                    out.extend(dvars.iter().map(|v| bits(grad(&grads, v))));
                    let closs = crate::step::classifier_loss(
                        &clf,
                        &flat(&x),
                        &t_index(n).to_vec1::<u32>().unwrap(),
                        &y.to_vec1::<u32>().unwrap(),
                    )
                    .unwrap();
                    let grads = closs.backward().unwrap();
                    out.extend(cvars.iter().map(|v| bits(grad(&grads, v))));
                    out
                })
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                assert!(
                    run(threads) == one,
                    "{activation:?}: {threads} threads differ from one"
                );
            }
        }
    }

    #[test]
    fn a_few_adam_steps_give_the_reference_weights() {
        // Our Adam (kernels::adam_update) on the fused step against candle's AdamW (weight
        // decay 0) on the reference step, from the same initial weights and batches.
        for activation in [Activation::Relu, Activation::Silu] {
            let (net, ours) = denoiser(activation, 21);
            let named = net.named_tensors();
            let theirs = reference_vars(&named);
            let layers = var_pairs(&theirs);
            let mut opt = Adam::new(ours.clone(), 1e-3).unwrap();
            let params = ParamsAdamW {
                lr: 1e-3,
                weight_decay: 0.0,
                ..Default::default()
            };
            let mut reference = AdamW::new(theirs.clone(), params).unwrap();
            let n = 128;
            for step in 0..5u64 {
                let input = tensor(n, 3, 100 + step, 2.0);
                let noise = values(n * 2, 200 + step, 1.5);
                let loss = crate::step::denoiser_loss(&net, &flat(&input), &noise, n).unwrap();
                opt.backward_step(&loss).unwrap();
                let noise = Tensor::from_vec(noise, (n, 2), &DEVICE).unwrap();
                let slow = mlp(&layers, activation, &input).unwrap();
                let loss = (slow - noise).unwrap().sqr().unwrap().mean_all().unwrap();
                reference.backward_step(&loss).unwrap();
            }
            for ((name, a), b) in net.named_tensors().iter().zip(&theirs) {
                // Five steps move each weight by at most about 5 · lr = 5e-3. The gradients
                // agree to f32 rounding (about 1e-6 of their scale), which moves Adam's
                // normalised step m̂ / √v̂ by about as much, so the weights agree to about
                // 5 · lr · 1e-6; 1e-6 absolute leaves margin, while one wrong gradient
                // would be off by up to lr = 1e-3.
                let worst = flat(a)
                    .iter()
                    .zip(flat(b.as_tensor()))
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= 1e-6,
                    "{activation:?} {name}: max difference {worst}"
                );
            }
        }
    }
}
