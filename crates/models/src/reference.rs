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
    use crate::ops::{self, Act};
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

    #[test]
    fn dense_op_matches_candle_ops_forward_dx_dw_db_on_every_kernel_branch() {
        // (out, in): the narrow-input kernel (in ≤ 8), gemm, the skinny-output kernel.
        for (out, inp) in [(128, 3), (64, 2), (128, 128), (64, 34), (2, 128), (2, 32)] {
            for &n in &BATCHES {
                for act in [Act::Identity, Act::Relu] {
                    let x = Var::from_tensor(&tensor(n, inp, 1, 2.0)).unwrap();
                    let w = Var::from_tensor(&tensor(out, inp, 2, 0.5)).unwrap();
                    let b =
                        Var::from_tensor(&tensor(1, out, 3, 0.5).flatten_all().unwrap()).unwrap();
                    let probe = tensor(n, out, 4, 1.0);
                    let what = format!("({out}, {inp}), n = {n}, {act:?}");
                    let fast =
                        ops::dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
                    let mut slow = dense(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
                    if act == Act::Relu {
                        slow = slow.relu().unwrap();
                    }
                    assert_close(&fast, &slow, &format!("forward {what}"));
                    let gf = (&fast * &probe)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    let gs = (&slow * &probe)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    for (v, name) in [(&x, "dx"), (&w, "dW"), (&b, "db")] {
                        assert_close(grad(&gf, v), grad(&gs, v), &format!("{name} {what}"));
                    }
                }
            }
        }
    }

    #[test]
    fn dense_op_computes_only_the_gradients_of_tracked_arguments() {
        let x = tensor(9, 5, 1, 1.0);
        let w = tensor(4, 5, 2, 1.0);
        let b = tensor(1, 4, 3, 1.0).flatten_all().unwrap();
        let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        // Only x tracked (guidance): no weight gradient.
        let g = ops::dense(xv.as_tensor(), &w, &b, Act::Relu)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(g.get(xv.as_tensor()).is_some() && g.get(&w).is_none() && g.get(&b).is_none());
        // Only W tracked (a first layer on data): no input gradient.
        let g = ops::dense(&x, wv.as_tensor(), &b, Act::Relu)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(g.get(wv.as_tensor()).is_some() && g.get(&x).is_none() && g.get(&b).is_none());
        // Nothing tracked: no graph at all.
        assert!(!ops::dense(&x, &w, &b, Act::Relu).unwrap().track_op());
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

    /// The layers' (W, b) of a parameter list laid out weight, bias per layer.
    fn pairs(vars: &[Var]) -> Vec<(Tensor, Tensor)> {
        vars.chunks_exact(2)
            .map(|p| (p[0].as_tensor().clone(), p[1].as_tensor().clone()))
            .collect()
    }

    /// Non-zero biases, so that db and the bias paths are exercised.
    fn perturb_biases(vars: &[Var], seed: u64) {
        for (i, v) in vars.iter().enumerate().filter(|(_, v)| v.rank() == 1) {
            let b = Tensor::from_vec(
                values(v.elem_count(), seed + i as u64, 0.3),
                v.dims(),
                &DEVICE,
            )
            .unwrap();
            v.set(&b).unwrap();
        }
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

    #[test]
    fn denoiser_forward_and_training_gradients_match_the_reference() {
        for activation in [Activation::Relu, Activation::Silu] {
            let (net, vars) = denoiser(activation, 5);
            perturb_biases(&vars, 50);
            let layers = pairs(&vars);
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
                // The training loss and every parameter's gradient.
                let noise = values(n * 2, 7, 1.5);
                let fast_loss = crate::step::denoiser_loss(&net, &flat(&input), &noise, n).unwrap();
                let noise = Tensor::from_vec(noise, (n, 2), &DEVICE).unwrap();
                let slow_loss = (slow - noise).unwrap().sqr().unwrap().mean_all().unwrap();
                assert_close(&fast_loss, &slow_loss, &format!("loss {what}"));
                let (gf, gs) = (fast_loss.backward().unwrap(), slow_loss.backward().unwrap());
                for (i, v) in vars.iter().enumerate() {
                    assert_close(grad(&gf, v), grad(&gs, v), &format!("param {i} {what}"));
                }
            }
        }
    }

    #[test]
    fn classifier_forward_loss_gradients_and_guidance_match_the_reference() {
        for activation in [Activation::Relu, Activation::Silu] {
            let (net, vars) = classifier(activation, 8);
            perturb_biases(&vars, 80);
            let (embedding, layers) = (vars[0].as_tensor().clone(), pairs(&vars[1..]));
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
                for (i, v) in vars.iter().enumerate() {
                    assert_close(grad(&gf, v), grad(&gs, v), &format!("param {i} {what}"));
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
            let theirs: Vec<Var> = ours
                .iter()
                .map(|v| Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap())
                .collect();
            let layers = pairs(&theirs);
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
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                // Five steps move each weight by at most about 5 · lr = 5e-3. The gradients
                // agree to f32 rounding (about 1e-6 of their scale), which moves Adam's
                // normalised step m̂ / √v̂ by about as much, so the weights agree to about
                // 5 · lr · 1e-6; 1e-6 absolute leaves margin, while one wrong gradient
                // would be off by up to lr = 1e-3.
                let worst = flat(a.as_tensor())
                    .iter()
                    .zip(flat(b.as_tensor()))
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= 1e-6,
                    "{activation:?} param {i}: max difference {worst}"
                );
            }
        }
    }
}
