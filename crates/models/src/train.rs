//! The notebook's two training loops (sections 5 and 6), reproducible from one seed.
//!
//! Every random number (initial weights, batch indices, time steps, noise) comes from one
//! `StdRng` seeded with the configuration's `seed`, drawn on the host in a fixed order and
//! turned into one tensor per step. The same seed gives the same weights, bit for bit,
//! whatever the thread count. Each step is the loss as a candle tensor (the net as one fused
//! op, then the loss as one fused op: see `step.rs`), one `backward()` through
//! candle's autograd, and one Adam update. The optimiser is Adam with Flux's defaults β = (0.9, 0.999), ε = 1e-8: the same update,
//! to the bit, as candle's `AdamW` with weight decay 0 (its default decay is 0.01), computed
//! in one fused host loop, except that moments which become subnormal are set to 0 (see
//! `adam.rs`: it keeps x86 off its slow subnormal path). The library prints nothing: progress goes
//! through `on_step`.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use schedule::NoiseSchedule;

use candle_core::Tensor;

use crate::adam::Adam;
use crate::conditional::{
    init_conditional_denoiser, ConditionalDenoiserConfig, ConditionalDenoiserNet,
};
use crate::error::{ModelError, Result};
use crate::init::{init_classifier, init_denoiser};
use crate::nets::{ClassifierConfig, ClassifierNet, DenoiserConfig, DenoiserNet, TimeEncoding};
use crate::step::{classifier_loss, conditional_denoiser_loss, denoiser_loss};

/// Settings of the denoiser's training loop; `Default` is the notebook's (2000 steps, batch 128, lr 1e-3).
#[derive(Debug, Clone, PartialEq)]
pub struct DenoiserTraining {
    /// Number of optimisation steps (the notebook's `epochs = 2000`, one batch each).
    pub steps: usize,
    /// Points per batch, drawn with replacement (128).
    pub batch_size: usize,
    /// Adam's learning rate (1e-3).
    pub learning_rate: f64,
    /// Seed of the one RNG behind initialisation, batches, t and noise (1234).
    pub seed: u64,
    /// How the learning rate changes over the steps (constant, as the notebook).
    pub lr_schedule: LrSchedule,
}

/// The learning rate at each optimisation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LrSchedule {
    /// lr at every step (the notebook's).
    #[default]
    Constant,
    /// lr_k = lr · (0.01 + 0.99 · ½(1 + cos(π (k − 1)/K))) for steps k = 1..K: a cosine decay
    /// to 1% of lr, which lets the final weights settle instead of jittering at lr.
    Cosine,
}

impl LrSchedule {
    /// The learning rate of step `step` (1-based) of `steps`, from the base rate `lr`.
    pub fn rate(self, lr: f64, step: usize, steps: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let progress = (step.saturating_sub(1)) as f64 / steps.max(1) as f64;
                lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
            }
        }
    }
}

impl Default for DenoiserTraining {
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 1234,
            lr_schedule: LrSchedule::Constant,
        }
    }
}

impl DenoiserTraining {
    /// Checks steps ≥ 1, batch ≥ 1 and a finite learning rate > 0.
    pub fn validate(&self) -> Result<()> {
        validate_common(self.steps, "steps", self.batch_size, self.learning_rate)
    }
}

/// Settings of the classifier's training loop; `Default` is the notebook's (1000 epochs, batch 128, lr 1e-3).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierTraining {
    /// Number of passes over the shuffled data (1000).
    pub epochs: usize,
    /// Points per batch; the last batch of an epoch is smaller, like Flux's `DataLoader` (128).
    pub batch_size: usize,
    /// Adam's learning rate (1e-3).
    pub learning_rate: f64,
    /// Seed of the one RNG behind initialisation, shuffles, t and noise (1234).
    pub seed: u64,
}

impl Default for ClassifierTraining {
    fn default() -> Self {
        Self {
            epochs: 1000,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 1234,
        }
    }
}

impl ClassifierTraining {
    /// Checks epochs ≥ 1, batch ≥ 1 and a finite learning rate > 0.
    pub fn validate(&self) -> Result<()> {
        validate_common(self.epochs, "epochs", self.batch_size, self.learning_rate)
    }

    /// Optimisation steps per epoch for n points: ⌈n / batch_size⌉ (8 for the notebook's 1000 points).
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        n.div_ceil(self.batch_size.max(1))
    }

    /// Total optimisation steps for n points: epochs · ⌈n / batch_size⌉.
    pub fn total_steps(&self, n: usize) -> usize {
        self.epochs * self.steps_per_epoch(n)
    }
}

fn validate_common(count: usize, what: &'static str, batch: usize, lr: f64) -> Result<()> {
    if count == 0 {
        return Err(ModelError::ZeroSteps { what });
    }
    if batch == 0 {
        return Err(ModelError::ZeroBatchSize);
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(ModelError::InvalidLearningRate(lr));
    }
    Ok(())
}

/// Number of points in a flat row-major buffer, checking it is non-empty and whole rows.
pub(crate) fn count_points(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(ModelError::ZeroDim);
    }
    if data.is_empty() {
        return Err(ModelError::EmptyData);
    }
    if !data.len().is_multiple_of(dim) {
        return Err(ModelError::DataNotMultipleOfDim {
            len: data.len(),
            dim,
        });
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::NonFiniteData {
            point: i / dim,
            coordinate: i % dim,
            value: data[i],
        });
    }
    Ok(data.len() / dim)
}

fn check_dims(
    dim: usize,
    model_dim: usize,
    schedule: &NoiseSchedule,
    model_t: usize,
) -> Result<()> {
    if dim != model_dim {
        return Err(ModelError::DimMismatch {
            what: "data dimension",
            found: dim,
            expected: model_dim,
        });
    }
    if schedule.num_steps() != model_t {
        return Err(ModelError::NumStepsMismatch {
            schedule: schedule.num_steps(),
            model: model_t,
        });
    }
    Ok(())
}

/// √ᾱ_t and √(1 − ᾱ_t) for t = 1..=T as f32, index t − 1.
fn noising_coefficients(schedule: &NoiseSchedule) -> (Vec<f32>, Vec<f32>) {
    (1..=schedule.num_steps())
        .map(|t| {
            (
                schedule.sqrt_alpha_bar(t) as f32,
                schedule.sqrt_one_minus_alpha_bar(t) as f32,
            )
        })
        .unzip()
}

/// Trains ε_θ as in the notebook's section 5; returns the net (plain tensors) and the loss of every step.
///
/// Each step: `batch_size` indices with replacement, t ~ U{1..T} and ε ~ N(0, I) per point,
/// x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, loss = mean((ε_θ([x_t; t/T]) − ε)²), one Adam step.
/// `data` is n × `dim`, row-major. `on_step(step, loss)` is called after every step (1-based).
/// A NaN or infinite loss stops training with [`ModelError::Diverged`].
pub fn train_denoiser(
    data: &[f32],
    dim: usize,
    schedule: &NoiseSchedule,
    net_config: &DenoiserConfig,
    cfg: &DenoiserTraining,
    on_step: &mut dyn FnMut(usize, f32),
) -> Result<(DenoiserNet, Vec<f32>)> {
    cfg.validate()?;
    net_config.validate()?;
    let n = count_points(data, dim)?;
    check_dims(dim, net_config.dim, schedule, net_config.num_steps)?;

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (net, vars) = init_denoiser(net_config, &mut rng)?;
    let opt = Adam::new(vars, cfg.learning_rate)?;
    let setup = NoiseData {
        data,
        dim,
        n,
        schedule,
        encoding: net_config.time_encoding,
    };
    let losses = noise_prediction_loop(
        &setup,
        cfg,
        None,
        rng,
        opt,
        &|input, noise, b| denoiser_loss(&net, input, noise, b),
        on_step,
    )?;
    Ok((net.detached(), losses))
}

/// The default probability that a training point's label is replaced by the null class ∅.
///
/// 0.2 rather than 0.1 (Ho & Salimans 2022 found both best, 0.5 worse): on the notebook's
/// data the conditional net trains only 4,000 steps (toydiff's recipe), and the
/// unconditional branch's error enters the guided noise (1 + w) ε_c − w ε_u multiplied by
/// w, so it gets twice 0.1's share of the batches, at an 11% cut in the conditional
/// branch's.
pub const DEFAULT_LABEL_DROPOUT: f64 = 0.2;

/// Settings of the conditional denoiser's loop: the denoiser's, plus the label dropout.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalTraining {
    /// Steps, batch, learning rate (and its schedule) and seed, as the denoiser's loop.
    pub training: DenoiserTraining,
    /// Probability that a point's label is replaced by ∅ ([`DEFAULT_LABEL_DROPOUT`]).
    pub label_dropout: f64,
}

impl Default for ConditionalTraining {
    fn default() -> Self {
        Self {
            training: DenoiserTraining::default(),
            label_dropout: DEFAULT_LABEL_DROPOUT,
        }
    }
}

impl ConditionalTraining {
    /// Checks the loop's settings and 0 < dropout < 1 (at 0 the null class is never
    /// trained, at 1 no class is).
    pub fn validate(&self) -> Result<()> {
        self.training.validate()?;
        if !(self.label_dropout > 0.0 && self.label_dropout < 1.0) {
            return Err(ModelError::InvalidLabelDropout(self.label_dropout));
        }
        Ok(())
    }
}

/// Trains ε_θ(x_t, t, y) for classifier-free guidance (Ho & Salimans 2022, Algorithm 1);
/// returns the net (plain tensors) and the loss of every step.
///
/// The denoiser's loop ([`train_denoiser`]: the same draws of indices, t and ε in the
/// same order), then one uniform draw per point: below `label_dropout` its class input
/// is the null class ∅, else its label. loss = mean((ε_θ([x_t; t/T; onehot(y)]) − ε)²).
/// `labels[i] < net_config.num_classes`.
pub fn train_conditional_denoiser(
    data: &[f32],
    dim: usize,
    labels: &[u32],
    schedule: &NoiseSchedule,
    net_config: &ConditionalDenoiserConfig,
    cfg: &ConditionalTraining,
    on_step: &mut dyn FnMut(usize, f32),
) -> Result<(ConditionalDenoiserNet, Vec<f32>)> {
    cfg.validate()?;
    net_config.validate()?;
    let n = count_points(data, dim)?;
    let d = &net_config.denoiser;
    check_dims(dim, d.dim, schedule, d.num_steps)?;
    check_labels(labels, n, net_config.num_classes)?;

    let mut rng = StdRng::seed_from_u64(cfg.training.seed);
    let (net, vars) = init_conditional_denoiser(net_config, &mut rng)?;
    let opt = Adam::new(vars, cfg.training.learning_rate)?;
    let setup = NoiseData {
        data,
        dim,
        n,
        schedule,
        encoding: d.time_encoding,
    };
    let classes = ClassInput {
        labels,
        num_classes: net_config.num_classes,
        dropout: cfg.label_dropout,
    };
    let losses = noise_prediction_loop(
        &setup,
        &cfg.training,
        Some(classes),
        rng,
        opt,
        &|input, noise, b| conditional_denoiser_loss(&net, input, noise, b),
        on_step,
    )?;
    Ok((net.detached(), losses))
}

/// The training data of a noise predictor.
struct NoiseData<'a> {
    data: &'a [f32],
    dim: usize,
    n: usize,
    schedule: &'a NoiseSchedule,
    encoding: TimeEncoding,
}

/// The class input of a conditional noise predictor: labels, C, label dropout.
struct ClassInput<'a> {
    labels: &'a [u32],
    num_classes: usize,
    dropout: f64,
}

/// The loss of one batch: (input rows, noise, batch size) → the scalar loss tensor.
type BatchLoss<'a> = dyn Fn(&[f32], &[f32], usize) -> candle_core::Result<Tensor> + 'a;

/// The noise-prediction loop shared by [`train_denoiser`] and
/// [`train_conditional_denoiser`]: per step the random numbers (indices, steps, noise,
/// then with `classes` one dropout draw per point), the input rows [x_t, time features
/// (, onehot(y))] assembled on the host, `loss_of(input, noise, b)`, one Adam step.
fn noise_prediction_loop(
    setup: &NoiseData<'_>,
    cfg: &DenoiserTraining,
    classes: Option<ClassInput<'_>>,
    mut rng: StdRng,
    mut opt: Adam,
    loss_of: &BatchLoss<'_>,
    on_step: &mut dyn FnMut(usize, f32),
) -> Result<Vec<f32>> {
    let (data, dim, n) = (setup.data, setup.dim, setup.n);
    let t_max = setup.schedule.num_steps();
    let (sab, s1m) = noising_coefficients(setup.schedule);
    let b = cfg.batch_size;
    let encoding = setup.encoding;
    let features = encoding.num_features();
    let class_width = classes.as_ref().map_or(0, |c| c.num_classes + 1);
    let width = dim + features + class_width;
    let mut idx = vec![0usize; b];
    let mut ts = vec![0usize; b];
    let mut input = vec![0f32; b * width];
    let mut noise = vec![0f32; b * dim];
    let mut losses = Vec::with_capacity(cfg.steps);

    for step in 1..=cfg.steps {
        // 1. Random numbers, always in this order: indices, steps, noise (then dropout).
        for i in idx.iter_mut() {
            *i = rng.random_range(0..n);
        }
        for t in ts.iter_mut() {
            *t = rng.random_range(1..=t_max);
        }
        for e in noise.iter_mut() {
            *e = StandardNormal.sample(&mut rng);
        }
        // 2. Network input [x_t, time features (, onehot(y))] with x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, assembled on the host.
        for r in 0..b {
            let (x0, t) = (&data[idx[r] * dim..(idx[r] + 1) * dim], ts[r]);
            let row = &mut input[r * width..(r + 1) * width];
            for j in 0..dim {
                row[j] = sab[t - 1] * x0[j] + s1m[t - 1] * noise[r * dim + j];
            }
            encoding.write_features(t, t_max, &mut row[dim..dim + features]);
            if let Some(c) = &classes {
                // Label dropout: ∅ (class C) with probability p (Ho & Salimans 2022, Algorithm 1).
                let dropped = rng.random::<f64>() < c.dropout;
                let class = if dropped {
                    c.num_classes
                } else {
                    c.labels[idx[r]] as usize
                };
                let onehot = &mut row[dim + features..];
                onehot.fill(0.0);
                onehot[class] = 1.0;
            }
        }
        // 3. Loss = per-dimension MSE on the noise (Flux.mse), then backward and one Adam step.
        let loss = loss_of(&input, &noise, b)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(ModelError::Diverged {
                step,
                last_finite_loss: losses.last().copied(),
            });
        }
        opt.set_lr(cfg.lr_schedule.rate(cfg.learning_rate, step, cfg.steps));
        opt.backward_step(&loss)?;
        losses.push(value);
        on_step(step, value);
    }
    Ok(losses)
}

/// Checks one label per point, each in 0..C.
fn check_labels(labels: &[u32], n: usize, num_classes: usize) -> Result<()> {
    if labels.len() != n {
        return Err(ModelError::LabelCountMismatch {
            points: n,
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= num_classes)
    {
        return Err(ModelError::LabelOutOfRange {
            index,
            label,
            num_classes,
        });
    }
    Ok(())
}

/// Trains p_φ(y | x_t, t) as in the notebook's section 6; returns the net (plain tensors) and the loss of every step.
///
/// Each epoch shuffles the n points and walks them in batches of `batch_size` (the last one
/// smaller); per point t ~ U{1..T} and ε ~ N(0, I), x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε;
/// loss = cross-entropy of the logits against the labels; one Adam step per batch.
/// `labels[i] < net_config.num_classes`. `on_step(step, loss)` counts steps over all epochs (1-based).
pub fn train_classifier(
    data: &[f32],
    dim: usize,
    labels: &[u32],
    schedule: &NoiseSchedule,
    net_config: &ClassifierConfig,
    cfg: &ClassifierTraining,
    on_step: &mut dyn FnMut(usize, f32),
) -> Result<(ClassifierNet, Vec<f32>)> {
    cfg.validate()?;
    net_config.validate()?;
    let n = count_points(data, dim)?;
    check_dims(dim, net_config.dim, schedule, net_config.num_steps)?;
    check_labels(labels, n, net_config.num_classes)?;

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (net, vars) = init_classifier(net_config, &mut rng)?;
    let mut opt = Adam::new(vars, cfg.learning_rate)?;

    let t_max = schedule.num_steps();
    let (sab, s1m) = noising_coefficients(schedule);
    let mut order: Vec<usize> = (0..n).collect();
    let mut x_t = Vec::with_capacity(cfg.batch_size * dim);
    let mut t_index: Vec<u32> = Vec::with_capacity(cfg.batch_size);
    let mut batch_labels: Vec<u32> = Vec::with_capacity(cfg.batch_size);
    let mut losses = Vec::with_capacity(cfg.total_steps(n));
    let mut step = 0;

    for _epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch_size) {
            step += 1;
            let b = chunk.len();
            // 1. Random numbers, always in this order: steps, then noise.
            t_index.clear();
            t_index.extend((0..b).map(|_| (rng.random_range(1..=t_max) - 1) as u32));
            x_t.clear();
            for (r, &i) in chunk.iter().enumerate() {
                let k = t_index[r] as usize;
                for &x0 in &data[i * dim..(i + 1) * dim] {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    x_t.push(sab[k] * x0 + s1m[k] * e);
                }
            }
            batch_labels.clear();
            batch_labels.extend(chunk.iter().map(|&i| labels[i]));
            // 2. Logits from [x_t; emb(t)], cross-entropy, backward and one Adam step.
            let loss = classifier_loss(&net, &x_t, &t_index, &batch_labels)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(ModelError::Diverged {
                    step,
                    last_finite_loss: losses.last().copied(),
                });
            }
            opt.backward_step(&loss)?;
            losses.push(value);
            on_step(step, value);
        }
    }
    Ok((net.detached(), losses))
}

#[cfg(test)]
mod tests {

    #[test]
    fn cosine_schedule_decays_from_lr_to_one_percent() {
        let c = LrSchedule::Cosine;
        assert_eq!(c.rate(1e-3, 1, 100), 1e-3);
        // Halfway, cos(π/2) = 0: 0.01 + 0.99/2 of lr.
        assert!((c.rate(1e-3, 51, 100) - 1e-3 * 0.505).abs() < 1e-15);
        assert!(c.rate(1e-3, 100, 100) < 1.1e-5 && c.rate(1e-3, 100, 100) >= 1e-5);
        assert!((1..100).all(|k| c.rate(1.0, k + 1, 100) <= c.rate(1.0, k, 100)));
        assert_eq!(LrSchedule::Constant.rate(1e-3, 77, 100), 1e-3);
    }

    use super::*;
    use candle_core::Tensor;

    fn tiny_data() -> (Vec<f32>, Vec<u32>) {
        let lp = toy_data::two_clusters(150, 3);
        (
            lp.points.iter().map(|&v| v as f32).collect(),
            lp.labels.iter().map(|&l| l as u32).collect(),
        )
    }

    fn flat(net: Vec<(String, Tensor)>) -> Vec<(String, Vec<f32>)> {
        net.iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
            .collect()
    }

    fn short_denoiser(data: &[f32], seed: u64, lr: f64) -> Result<(DenoiserNet, Vec<f32>)> {
        let cfg = DenoiserTraining {
            steps: 25,
            learning_rate: lr,
            seed,
            ..Default::default()
        };
        train_denoiser(
            data,
            2,
            &NoiseSchedule::notebook(),
            &DenoiserConfig::default(),
            &cfg,
            &mut |_, _| {},
        )
    }

    fn short_classifier(
        data: &[f32],
        labels: &[u32],
        seed: u64,
    ) -> Result<(ClassifierNet, Vec<f32>)> {
        let cfg = ClassifierTraining {
            epochs: 4,
            seed,
            ..Default::default()
        };
        let schedule = NoiseSchedule::notebook();
        train_classifier(
            data,
            2,
            labels,
            &schedule,
            &ClassifierConfig::default(),
            &cfg,
            &mut |_, _| {},
        )
    }

    #[test]
    fn same_seed_same_weights_bit_for_bit() {
        let (data, labels) = tiny_data();
        let (a, la) = short_denoiser(&data, 11, 1e-3).unwrap();
        let (b, lb) = short_denoiser(&data, 11, 1e-3).unwrap();
        let (c, _) = short_denoiser(&data, 12, 1e-3).unwrap();
        assert_eq!(flat(a.named_tensors()), flat(b.named_tensors()));
        assert_eq!(la, lb);
        assert_ne!(flat(a.named_tensors()), flat(c.named_tensors()));

        let (a, la) = short_classifier(&data, &labels, 5).unwrap();
        let (b, lb) = short_classifier(&data, &labels, 5).unwrap();
        let (c, _) = short_classifier(&data, &labels, 6).unwrap();
        assert!(!a.has_variables());
        assert_eq!(flat(a.named_tensors()), flat(b.named_tensors()));
        assert_eq!(la, lb);
        assert_ne!(flat(a.named_tensors()), flat(c.named_tensors()));
    }

    #[test]
    fn the_conditional_loop_is_seeded_and_checks_its_dropout_and_labels() {
        let (data, labels) = tiny_data();
        let config = ConditionalDenoiserConfig {
            denoiser: DenoiserConfig::default(),
            num_classes: 2,
        };
        let run = |seed: u64, dropout: f64, labels: &[u32]| {
            let cfg = ConditionalTraining {
                training: DenoiserTraining {
                    steps: 25,
                    seed,
                    ..Default::default()
                },
                label_dropout: dropout,
            };
            let s = NoiseSchedule::notebook();
            train_conditional_denoiser(&data, 2, labels, &s, &config, &cfg, &mut |_, _| {})
        };
        let (a, la) = run(3, 0.2, &labels).unwrap();
        let (b, lb) = run(3, 0.2, &labels).unwrap();
        let (c, _) = run(4, 0.2, &labels).unwrap();
        let (e, _) = run(3, 0.5, &labels).unwrap();
        assert!(!a.has_variables());
        assert_eq!(flat(a.named_tensors()), flat(b.named_tensors()));
        assert_eq!(la, lb);
        assert_ne!(flat(a.named_tensors()), flat(c.named_tensors()));
        // The dropout draws come after the same noise: another p, other weights.
        assert_ne!(flat(a.named_tensors()), flat(e.named_tensors()));
        for p in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                run(3, p, &labels).map(|_| ()),
                Err(ModelError::InvalidLabelDropout(_))
            ));
        }
        let mut bad = labels.clone();
        bad[5] = 2;
        assert!(matches!(
            run(3, 0.2, &bad).map(|_| ()),
            Err(ModelError::LabelOutOfRange {
                index: 5,
                label: 2,
                ..
            })
        ));
        assert!(matches!(
            run(3, 0.2, &labels[1..]).map(|_| ()),
            Err(ModelError::LabelCountMismatch { .. })
        ));
    }

    #[test]
    fn callbacks_count_steps_and_epochs_end_with_a_short_batch() {
        let (data, labels) = tiny_data(); // 300 points: batches 128, 128, 44
        let cfg = ClassifierTraining {
            epochs: 3,
            ..Default::default()
        };
        assert_eq!(cfg.steps_per_epoch(300), 3);
        assert_eq!(ClassifierTraining::default().total_steps(1000), 8000);
        let mut seen = Vec::new();
        let (_, losses) = train_classifier(
            &data,
            2,
            &labels,
            &NoiseSchedule::notebook(),
            &ClassifierConfig::default(),
            &cfg,
            &mut |step, loss| seen.push((step, loss)),
        )
        .unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>()
        );
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), losses);

        let mut steps = 0;
        let dcfg = DenoiserTraining {
            steps: 7,
            ..Default::default()
        };
        let (net, losses) = train_denoiser(
            &data,
            2,
            &NoiseSchedule::notebook(),
            &DenoiserConfig::default(),
            &dcfg,
            &mut |s, _| steps = s,
        )
        .unwrap();
        assert_eq!((steps, losses.len()), (7, 7));
        // The returned net holds plain tensors: nothing to detach.
        assert!(!net.has_variables());
    }

    #[test]
    fn absurd_learning_rate_diverges_and_names_the_step() {
        let (data, _) = tiny_data();
        match short_denoiser(&data, 1, 1e6) {
            Err(
                e @ ModelError::Diverged {
                    step,
                    last_finite_loss,
                },
            ) => {
                assert!(step > 1, "the first loss is computed before any update");
                assert!(last_finite_loss.is_some_and(f32::is_finite));
                let msg = e.to_string();
                assert!(msg.contains(&format!("step {step}")), "{msg}");
                assert!(msg.contains("last finite loss"), "{msg}");
            }
            other => panic!("expected divergence, got {:?}", other.map(|r| r.1)),
        }
        // The classifier's log-softmax is stable: at lr 1e6 its loss reaches ~1e27 but stays
        // finite (measured); at lr 1e20 the logits overflow to ±inf and the loss is NaN.
        let (data, labels) = tiny_data();
        let cfg = ClassifierTraining {
            epochs: 4,
            learning_rate: 1e20,
            ..Default::default()
        };
        let schedule = NoiseSchedule::notebook();
        let err = train_classifier(
            &data,
            2,
            &labels,
            &schedule,
            &ClassifierConfig::default(),
            &cfg,
            &mut |_, _| {},
        )
        .map(|_| ())
        .unwrap_err();
        match err {
            ModelError::Diverged { step, .. } => {
                assert!(err.to_string().contains(&format!("step {step}")))
            }
            other => panic!("expected divergence, got {other}"),
        }
    }

    #[test]
    fn nan_in_data_is_rejected_before_training() {
        // candle's relu is f32::max(x, 0), which maps NaN to 0: with half the data NaN the
        // denoiser's loss stayed finite (≈ 1.0) for 25 steps. So the data is checked up front.
        let (mut data, labels) = tiny_data();
        data[2 * 41 + 1] = f32::NAN;
        let err = short_denoiser(&data, 1, 1e-3).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::NonFiniteData {
                    point: 41,
                    coordinate: 1,
                    ..
                }
            ),
            "{err}"
        );
        data[2 * 41 + 1] = f32::INFINITY;
        let err = short_classifier(&data, &labels, 1).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::NonFiniteData {
                    point: 41,
                    coordinate: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_settings_are_rejected_one_variant_each() {
        let (data, labels) = tiny_data();
        let s = NoiseSchedule::notebook();
        let net = DenoiserConfig::default();
        let run = |data: &[f32], dim, net: &DenoiserConfig, cfg: &DenoiserTraining| {
            train_denoiser(data, dim, &s, net, cfg, &mut |_, _| {})
                .map(|_| ())
                .unwrap_err()
        };
        let d = DenoiserTraining::default();
        assert!(matches!(
            run(
                &data,
                2,
                &net,
                &DenoiserTraining {
                    steps: 0,
                    ..d.clone()
                }
            ),
            ModelError::ZeroSteps { what: "steps" }
        ));
        assert!(matches!(
            run(
                &data,
                2,
                &net,
                &DenoiserTraining {
                    batch_size: 0,
                    ..d.clone()
                }
            ),
            ModelError::ZeroBatchSize
        ));
        for lr in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                run(
                    &data,
                    2,
                    &net,
                    &DenoiserTraining {
                        learning_rate: lr,
                        ..d.clone()
                    }
                ),
                ModelError::InvalidLearningRate(_)
            ));
        }
        assert!(matches!(run(&[], 2, &net, &d), ModelError::EmptyData));
        assert!(matches!(
            run(&data[..5], 2, &net, &d),
            ModelError::DataNotMultipleOfDim { len: 5, dim: 2 }
        ));
        assert!(matches!(
            run(&data, 3, &net, &d),
            ModelError::DimMismatch {
                found: 3,
                expected: 2,
                ..
            }
        ));
        let t400 = DenoiserConfig {
            num_steps: 400,
            ..net.clone()
        };
        assert!(matches!(
            run(&data, 2, &t400, &d),
            ModelError::NumStepsMismatch {
                schedule: 500,
                model: 400
            }
        ));

        let c = ClassifierTraining::default();
        let cnet = ClassifierConfig::default();
        let runc = |labels: &[u32], cfg: &ClassifierTraining, net: &ClassifierConfig| {
            train_classifier(&data, 2, labels, &s, net, cfg, &mut |_, _| {})
                .map(|_| ())
                .unwrap_err()
        };
        assert!(matches!(
            runc(
                &labels,
                &ClassifierTraining {
                    epochs: 0,
                    ..c.clone()
                },
                &cnet
            ),
            ModelError::ZeroSteps { what: "epochs" }
        ));
        assert!(matches!(
            runc(&labels[1..], &c, &cnet),
            ModelError::LabelCountMismatch {
                points: 300,
                labels: 299
            }
        ));
        let mut bad = labels.clone();
        bad[17] = 2;
        let err = runc(&bad, &c, &cnet);
        assert!(
            matches!(
                err,
                ModelError::LabelOutOfRange {
                    index: 17,
                    label: 2,
                    num_classes: 2
                }
            ),
            "{err}"
        );
        assert!(matches!(
            runc(
                &labels,
                &c,
                &ClassifierConfig {
                    num_classes: 1,
                    ..cnet.clone()
                }
            ),
            ModelError::TooFewClasses(1)
        ));
    }
}
