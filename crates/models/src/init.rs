//! Seeded weight initialisation, with Flux's defaults.
//!
//! candle's CPU random generator cannot be seeded, so every initial value is drawn on the
//! host from the caller's `rand` RNG and only then turned into a `Var`. Values are drawn
//! layer by layer, input to output, weight (row-major, `(out, in)`) before bias; for the
//! classifier the embedding table comes first. Same RNG state → same weights, bit for bit.

use candle_core::{Tensor, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::error::Result;
use crate::nets::{ClassifierConfig, ClassifierNet, DenoiserConfig, DenoiserNet, DEVICE};

/// Glorot (Xavier) uniform values for an (out, in) weight: U(−√(6/(in+out)), √(6/(in+out))), Flux's `glorot_uniform`.
pub fn glorot_uniform<R: Rng + ?Sized>(out: usize, inp: usize, rng: &mut R) -> Vec<f32> {
    let limit = (6.0 / (inp + out) as f64).sqrt() as f32;
    let dist = Uniform::new_inclusive(-limit, limit).expect("the Glorot limit is finite and > 0");
    (0..out * inp).map(|_| dist.sample(rng)).collect()
}

/// N(0, 1) values, Flux's default for `Embedding`.
pub fn standard_normal<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// Glorot-uniform weights and zero biases for the given `(out, in)` shapes, appended to
/// `values` in packing order (layer by layer, W then b).
pub(crate) fn init_layers<R: Rng + ?Sized>(
    shapes: &[(usize, usize)],
    rng: &mut R,
    values: &mut Vec<f32>,
) {
    for &(out, inp) in shapes {
        values.extend(glorot_uniform(out, inp, rng));
        values.extend(std::iter::repeat_n(0.0, out));
    }
}

/// A freshly initialised trainable denoiser and its parameters as `Var`s (for an optimiser), drawn from `rng`.
///
/// The parameters are one packed `Var` (every layer's W then b) and the net computes on
/// it, so optimiser updates show through it; [`DenoiserNet::detached`] gives the same net
/// without `Var`s.
pub fn init_denoiser<R: Rng + ?Sized>(
    config: &DenoiserConfig,
    rng: &mut R,
) -> Result<(DenoiserNet, Vec<Var>)> {
    config.validate()?;
    let mut values = Vec::with_capacity(DenoiserNet::packing(config).len());
    init_layers(&config.layer_shapes(), rng, &mut values);
    let n = values.len();
    let params = Var::from_tensor(&Tensor::from_vec(values, n, &DEVICE)?)?;
    let net = DenoiserNet::from_params(config.clone(), params.as_tensor().clone())?;
    Ok((net, vec![params]))
}

/// A freshly initialised trainable classifier (embedding N(0,1), Glorot layers, zero biases) and its `Var`s.
///
/// The parameters are one packed `Var`: the embedding table first, then the layers input
/// to output (drawn in that order).
pub fn init_classifier<R: Rng + ?Sized>(
    config: &ClassifierConfig,
    rng: &mut R,
) -> Result<(ClassifierNet, Vec<Var>)> {
    config.validate()?;
    let (t, e) = (config.num_steps, config.embed_dim);
    let mut values = Vec::with_capacity(ClassifierNet::packing(config).len());
    values.extend(standard_normal(t * e, rng));
    init_layers(&config.layer_shapes(), rng, &mut values);
    let n = values.len();
    let params = Var::from_tensor(&Tensor::from_vec(values, n, &DEVICE)?)?;
    let net = ClassifierNet::from_params(config.clone(), params.as_tensor().clone())?;
    Ok((net, vec![params]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn glorot_limits_and_shapes() {
        let mut rng = StdRng::seed_from_u64(0);
        let w = glorot_uniform(128, 3, &mut rng);
        let limit = (6.0f32 / 131.0).sqrt();
        assert_eq!(w.len(), 384);
        assert!(w.iter().all(|v| v.abs() <= limit));
        // 384 draws of U(−l, l): the largest |v| is above 0.9 l with probability 1 − 0.9^384.
        assert!(w.iter().any(|v| v.abs() > 0.9 * limit));
    }

    #[test]
    fn notebook_parameter_counts() {
        let mut rng = StdRng::seed_from_u64(0);
        let (d, dv) = init_denoiser(&DenoiserConfig::default(), &mut rng).unwrap();
        assert_eq!(d.num_parameters(), 17_282);
        assert_eq!(dv.len(), 1);
        let (c, cv) = init_classifier(&ClassifierConfig::default(), &mut rng).unwrap();
        assert_eq!(c.num_parameters(), 20_386);
        assert_eq!(cv.len(), 1);
        // Biases start at zero (Flux's `zeros32`).
        for (name, t) in d.named_tensors() {
            if name.ends_with("bias") {
                assert_eq!(
                    t.abs()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap(),
                    0.0
                );
            }
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let cfg = ClassifierConfig::default();
        let (a, _) = init_classifier(&cfg, &mut StdRng::seed_from_u64(7)).unwrap();
        let (b, _) = init_classifier(&cfg, &mut StdRng::seed_from_u64(7)).unwrap();
        let (c, _) = init_classifier(&cfg, &mut StdRng::seed_from_u64(8)).unwrap();
        for ((_, x), ((_, y), (_, z))) in a
            .named_tensors()
            .iter()
            .zip(b.named_tensors().iter().zip(c.named_tensors().iter()))
        {
            let (x, y, z) = (
                x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                z.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert_eq!(x, y);
            if x.iter().any(|v| *v != 0.0) {
                assert_ne!(x, z);
            }
        }
    }
}
