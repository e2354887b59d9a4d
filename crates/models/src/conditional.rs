//! The conditional noise predictor ε_θ(x_t, t, y) of classifier-free guidance (Ho &
//! Salimans 2022): the denoiser's MLP with the class as a one-hot input.
//!
//! The input is [x_t, time features, onehot(y)] with C + 1 class columns, the last one
//! the null class ∅ (the unconditional model). One-hot × the first layer's weights is a
//! learned class embedding added to the first layer's pre-activation: column d + F + c of
//! `conditional_denoiser.layers.0.weight` is class c's embedding (F time features). So
//! the net is the denoiser's fused op on a wider first layer, with the same fast path,
//! autograd and packed parameters, and ∅ is just one more class trained by label dropout.

use candle_core::{Tensor, Var};

use crate::error::{ModelError, Result};
use crate::nets::{
    check_batch, check_layers, check_step, named_layers, pack, unpack_layers, DenoiserConfig, Dense,
};
use crate::ops::Packing;
use crate::traits::ConditionalNoisePredictor;

/// Shape of the conditional denoiser: the denoiser's shape, and C classes (plus ∅).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalDenoiserConfig {
    /// The MLP's shape (width, depth, activation, time input, d, T), as the denoiser's.
    pub denoiser: DenoiserConfig,
    /// C, the number of classes (at least 2); the null class ∅ is class C.
    pub num_classes: usize,
}

impl ConditionalDenoiserConfig {
    /// Checks the denoiser's shape and C ≥ 2.
    pub fn validate(&self) -> Result<()> {
        self.denoiser.validate()?;
        if self.num_classes < 2 {
            return Err(ModelError::TooFewClasses(self.num_classes));
        }
        Ok(())
    }

    /// The index of the null class ∅ in the one-hot input: C.
    pub fn null_class(&self) -> usize {
        self.num_classes
    }

    /// Width of the network's input: d, the time features, C + 1 class columns.
    pub fn input_width(&self) -> usize {
        self.denoiser.input_width() + self.num_classes + 1
    }

    /// `(out, in)` of every dense layer: the denoiser's, the first one C + 1 inputs wider.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = self.denoiser.layer_shapes();
        shapes[0].1 += self.num_classes + 1;
        shapes
    }
}

/// ε_θ(x_t, t, y): an MLP on [x_t; time features; onehot(y)] (checkpoint names
/// `conditional_denoiser.layers.{i}.weight|bias`), y a class or the null class ∅.
#[derive(Debug, Clone)]
pub struct ConditionalDenoiserNet {
    config: ConditionalDenoiserConfig,
    params: Tensor,
    packing: Packing,
    layers: Vec<Dense>,
}

/// The checkpoint prefix of the conditional denoiser's tensors.
pub(crate) const PREFIX: &str = "conditional_denoiser";

impl ConditionalDenoiserNet {
    /// Builds the net from its layers' tensors, checked against the configuration's shapes.
    pub(crate) fn from_layers(
        config: ConditionalDenoiserConfig,
        layers: Vec<Dense>,
    ) -> Result<Self> {
        config.validate()?;
        check_layers(PREFIX, &config.layer_shapes(), &layers)?;
        let params = pack(None, &layers)?;
        Self::from_params(config, params)
    }

    /// The packing of this configuration's parameters.
    pub(crate) fn packing(config: &ConditionalDenoiserConfig) -> Packing {
        Packing {
            shapes: config.layer_shapes(),
            start: 0,
        }
    }

    /// Builds the net on packed parameters ([`ConditionalDenoiserNet::packing`]), a `Var` or not.
    pub(crate) fn from_params(config: ConditionalDenoiserConfig, params: Tensor) -> Result<Self> {
        config.validate()?;
        let packing = Self::packing(&config);
        if params.dims() != [packing.len()] {
            return Err(ModelError::TensorShape {
                name: "conditional denoiser parameters".into(),
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
    pub fn config(&self) -> &ConditionalDenoiserConfig {
        &self.config
    }

    /// Forward on an assembled input [x_t, time features, onehot(y)] of shape (n, input width).
    pub(crate) fn forward_input(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        crate::ops::mlp(
            input,
            &self.params,
            &self.packing,
            self.config.denoiser.activation.hidden(),
        )
    }

    /// Writes one input row [x, time features, onehot(class)] into `row` (the input width).
    pub(crate) fn write_row(&self, x: &[f32], features: &[f32], class: usize, row: &mut [f32]) {
        let (d, f) = (x.len(), features.len());
        row[..d].copy_from_slice(x);
        row[d..d + f].copy_from_slice(features);
        let onehot = &mut row[d + f..];
        onehot.fill(0.0);
        onehot[class] = 1.0;
    }

    /// A copy whose weights are plain tensors (no `Var`): the same function, to the bit.
    pub fn detached(&self) -> Self {
        Self {
            params: self.params.detach(),
            ..self.clone()
        }
    }

    /// True when the weights are a trainable `Var`.
    pub fn has_variables(&self) -> bool {
        self.params.is_variable()
    }

    /// Every parameter with its checkpoint name, input layer first, weight before bias.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        named_layers(PREFIX, &self.layers)
    }

    /// Total number of scalar parameters (17,666 for the notebook's shape and 2 classes).
    pub fn num_parameters(&self) -> usize {
        self.params.elem_count()
    }
}

impl ConditionalNoisePredictor for ConditionalDenoiserNet {
    fn num_steps(&self) -> usize {
        self.config.denoiser.num_steps
    }

    fn dim(&self) -> usize {
        self.config.denoiser.dim
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    /// The input rows assembled on the host in one pass (the training loop's layout), then
    /// the fused net op.
    fn predict_noise_conditional(
        &self,
        x_t: &Tensor,
        t: usize,
        classes: Option<&[u32]>,
    ) -> candle_core::Result<Tensor> {
        let n = check_batch(x_t, self.config.denoiser.dim)?;
        let classes = check_classes(classes, n, self.config.num_classes)?;
        let null = self.config.null_class();
        let rows: Vec<usize> = (0..n)
            .map(|i| classes.map_or(null, |y| y[i] as usize))
            .collect();
        self.predict_rows(x_t, t, &rows, 1)
    }

    /// Both halves in one batch of 2n rows: [x_t; y] then [x_t; ∅], one op, split.
    fn predict_noise_pair(
        &self,
        x_t: &Tensor,
        t: usize,
        classes: &[u32],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let n = check_batch(x_t, self.config.denoiser.dim)?;
        check_classes(Some(classes), n, self.config.num_classes)?;
        let null = self.config.null_class();
        let rows: Vec<usize> = classes
            .iter()
            .map(|&c| c as usize)
            .chain(std::iter::repeat_n(null, n))
            .collect();
        let both = self.predict_rows(x_t, t, &rows, 2)?;
        Ok((both.narrow(0, 0, n)?, both.narrow(0, n, n)?))
    }
}

impl ConditionalDenoiserNet {
    /// ε for the input rows [x_{i mod n}, time features, onehot(rows[i])], i < `repeats` · n.
    fn predict_rows(
        &self,
        x_t: &Tensor,
        t: usize,
        rows: &[usize],
        repeats: usize,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        check_step(t, c.denoiser.num_steps)?;
        let encoding = c.denoiser.time_encoding;
        let mut features = vec![0f32; encoding.num_features()];
        encoding.write_features(t, c.denoiser.num_steps, &mut features);
        let d = c.denoiser.dim;
        let width = c.input_width();
        let x = x_t.to_dtype(candle_core::DType::F32)?;
        let input = crate::ops::with_f32(&x, |x| {
            let mut input = vec![0f32; rows.len() * width];
            let xs = x.chunks_exact(d).cycle().take(repeats * x.len() / d.max(1));
            for ((row, xi), &class) in input.chunks_exact_mut(width).zip(xs).zip(rows) {
                self.write_row(xi, &features, class, row);
            }
            Ok(input)
        })?;
        let input = Tensor::from_vec(input, (rows.len(), width), x_t.device())?;
        self.forward_input(&input)?.to_dtype(x_t.dtype())
    }
}

/// `classes`, checked: n values, each in 0..C.
pub(crate) fn check_classes(
    classes: Option<&[u32]>,
    n: usize,
    num_classes: usize,
) -> candle_core::Result<Option<&[u32]>> {
    if let Some(y) = classes {
        if y.len() != n {
            candle_core::bail!("{} classes for a batch of {n}", y.len());
        }
        if let Some(&bad) = y.iter().find(|&&c| c as usize >= num_classes) {
            candle_core::bail!("class {bad} is outside 0..{num_classes}");
        }
    }
    Ok(classes)
}

/// A freshly initialised trainable conditional denoiser (Glorot layers, zero biases, as
/// [`crate::init_denoiser`]) and its one packed `Var`, drawn from `rng`.
pub fn init_conditional_denoiser<R: rand::Rng + ?Sized>(
    config: &ConditionalDenoiserConfig,
    rng: &mut R,
) -> Result<(ConditionalDenoiserNet, Vec<Var>)> {
    config.validate()?;
    let mut values = Vec::with_capacity(ConditionalDenoiserNet::packing(config).len());
    crate::init::init_layers(&config.layer_shapes(), rng, &mut values);
    let n = values.len();
    let params = Var::from_tensor(&Tensor::from_vec(values, n, &crate::nets::DEVICE)?)?;
    let net = ConditionalDenoiserNet::from_params(config.clone(), params.as_tensor().clone())?;
    Ok((net, vec![params]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::DEVICE;
    use rand::{rngs::StdRng, SeedableRng};

    fn config() -> ConditionalDenoiserConfig {
        ConditionalDenoiserConfig {
            denoiser: DenoiserConfig::default(),
            num_classes: 2,
        }
    }

    #[test]
    fn shapes_and_validation() {
        let c = config();
        assert_eq!(c.layer_shapes(), vec![(128, 6), (128, 128), (2, 128)]);
        assert_eq!((c.input_width(), c.null_class()), (6, 2));
        let one = ConditionalDenoiserConfig {
            num_classes: 1,
            ..c.clone()
        };
        assert!(matches!(one.validate(), Err(ModelError::TooFewClasses(1))));
        let (net, vars) = init_conditional_denoiser(&c, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(net.num_parameters(), 17_666);
        assert!(vars.len() == 1 && net.has_variables() && !net.detached().has_variables());
    }

    /// The fast path (host-assembled input, the fused op) against plain candle ops on the
    /// documented input [x, t/T, onehot(y)]: the same function.
    #[test]
    fn conditional_prediction_matches_plain_candle_ops() {
        let c = config();
        let net = init_conditional_denoiser(&c, &mut StdRng::seed_from_u64(5))
            .unwrap()
            .0
            .detached();
        let x = Tensor::new(&[[-1.0f32, 2.0], [0.5, 0.25], [3.0, -0.5]], &DEVICE).unwrap();
        for (classes, onehot) in [
            (
                Some(vec![0u32, 1, 1]),
                [[1f32, 0., 0.], [0., 1., 0.], [0., 1., 0.]],
            ),
            (None, [[0f32, 0., 1.], [0., 0., 1.], [0., 0., 1.]]),
        ] {
            let fast = net
                .predict_noise_conditional(&x, 200, classes.as_deref())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let t = Tensor::full(0.4f32, (3, 1), &DEVICE).unwrap();
            let y = Tensor::new(&onehot, &DEVICE).unwrap();
            let mut h = Tensor::cat(&[&x, &t, &y], 1).unwrap();
            for (i, (name, _)) in net.named_tensors().iter().enumerate().step_by(2) {
                let w = &net.named_tensors()[i].1;
                let b = &net.named_tensors()[i + 1].1;
                assert!(name.ends_with("weight"));
                h = h.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap();
                if i + 2 < net.named_tensors().len() {
                    h = h.relu().unwrap();
                }
            }
            for (a, b) in fast
                .iter()
                .flatten()
                .zip(h.to_vec2::<f32>().unwrap().iter().flatten())
            {
                // The same sums of ≤ 128 f32 products in another order: ~128 · 6e-8 relative.
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
        // The pair in one batch of 2n rows is the two calls' values (the same rows of the
        // same op: a row's result does not depend on the others).
        let (c, u) = net.predict_noise_pair(&x, 200, &[0, 1, 1]).unwrap();
        let c2 = net
            .predict_noise_conditional(&x, 200, Some(&[0, 1, 1]))
            .unwrap();
        let u2 = net.predict_noise_conditional(&x, 200, None).unwrap();
        assert_eq!(c.to_vec2::<f32>().unwrap(), c2.to_vec2::<f32>().unwrap());
        assert_eq!(u.to_vec2::<f32>().unwrap(), u2.to_vec2::<f32>().unwrap());
        assert!(net.predict_noise_pair(&x, 200, &[0, 1]).is_err());
        assert!(net
            .predict_noise_conditional(&x, 200, Some(&[0, 2, 0]))
            .is_err());
        assert!(net
            .predict_noise_conditional(&x, 200, Some(&[0, 1]))
            .is_err());
        assert!(net.predict_noise_conditional(&x, 0, None).is_err());
    }
}
