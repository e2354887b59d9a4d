//! The checkpoint format as documented in the crate docs, read the way a Python user would
//! (`safetensors.numpy.load_file`): by name, then the documented forward pass rebuilt by hand.

use crate::common;

use candle_core::{Device, Tensor};
use models::{
    init_classifier, init_conditional_denoiser, init_denoiser, ClassifierConfig, ClassifierNet,
    ConditionalDenoiserConfig, ConditionalDenoiserNet, ConditionalNoisePredictor, DenoiserConfig,
    DenoiserNet, NoisePredictor, NoisyClassifier,
};
use rand::{rngs::StdRng, SeedableRng};
use safetensors::SafeTensors;

/// The tensors of a checkpoint by name, as candle tensors, plus its metadata.
fn load(
    bytes: &[u8],
) -> (
    Vec<(String, Tensor)>,
    std::collections::HashMap<String, String>,
) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (
                name,
                Tensor::from_vec(values, view.shape(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let meta = SafeTensors::read_metadata(bytes)
        .unwrap()
        .1
        .metadata()
        .clone()
        .unwrap();
    (tensors, meta)
}

const POINTS: [[f32; 2]; 4] = [[-2.0, -1.5], [0.1, 0.3], [1.9, 2.2], [3.0, -3.0]];

#[test]
fn denoiser_file_rebuilds_the_documented_forward_pass() {
    let net = init_denoiser(&DenoiserConfig::default(), &mut StdRng::seed_from_u64(17))
        .unwrap()
        .0;
    let bytes = net.to_safetensors().unwrap();
    let (tensors, meta) = load(&bytes);
    assert_eq!(meta["format"], "toydiff-denoiser-v1");
    let big_t: usize = meta["num_steps"].parse().unwrap();
    let layers = common::host_layers(&tensors, "denoiser");
    assert_eq!(
        layers.len(),
        meta["hidden_layers"].parse::<usize>().unwrap() + 1
    );

    let x = Tensor::new(&POINTS, &Device::Cpu).unwrap();
    let loaded = DenoiserNet::from_safetensors(&bytes, Some(500)).unwrap();
    for t in [1, 137, 500] {
        let eps = loaded
            .predict_noise(&x, t)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (p, e) in POINTS.iter().zip(&eps) {
            // h = [x, t/T] with t/T rounded to f32, as `astype(np.float32)` does.
            let t_feature = (t as f64 / big_t as f64) as f32 as f64;
            let want = common::host_mlp(&layers, &[p[0] as f64, p[1] as f64, t_feature]);
            for j in 0..2 {
                // candle in f32 against f64: relative 1e-5 covers the f32 accumulation.
                assert!(
                    (e[j] as f64 - want[j]).abs() < 1e-5 * (1.0 + want[j].abs()),
                    "t={t}"
                );
            }
        }
    }
}

#[test]
fn classifier_file_rebuilds_the_documented_forward_pass() {
    let cfg = ClassifierConfig {
        num_classes: 3,
        hidden: vec![16, 8, 8],
        ..ClassifierConfig::default()
    };
    let net = init_classifier(&cfg, &mut StdRng::seed_from_u64(18))
        .unwrap()
        .0;
    let bytes = net.to_safetensors().unwrap();
    let (tensors, meta) = load(&bytes);
    assert_eq!(meta["format"], "toydiff-classifier-v1");
    assert_eq!(meta["hidden"], "16,8,8");
    let table = tensors
        .iter()
        .find(|(n, _)| n == "classifier.embedding.weight")
        .unwrap();
    assert_eq!(table.1.dims(), &[500, 32]);
    let table = common::to_f64(&table.1);
    let layers = common::host_layers(&tensors, "classifier");
    assert_eq!(layers.len(), 4);

    let x = Tensor::new(&POINTS, &Device::Cpu).unwrap();
    let loaded = ClassifierNet::from_safetensors(&bytes, Some(500)).unwrap();
    for t in [1, 250, 500] {
        let lp = loaded.log_probs(&x, t).unwrap().to_vec2::<f32>().unwrap();
        for (p, got) in POINTS.iter().zip(&lp) {
            let input: Vec<f64> = [p[0] as f64, p[1] as f64]
                .into_iter()
                .chain(table[(t - 1) * 32..t * 32].iter().copied())
                .collect();
            let want = common::log_softmax(&common::host_mlp(&layers, &input));
            for c in 0..3 {
                assert!(
                    (got[c] as f64 - want[c]).abs() < 1e-5 * (1.0 + want[c].abs()),
                    "t={t}"
                );
            }
        }
    }
}

#[test]
fn conditional_denoiser_file_rebuilds_the_documented_forward_pass() {
    let config = ConditionalDenoiserConfig {
        denoiser: DenoiserConfig::default(),
        num_classes: 3,
    };
    let net = init_conditional_denoiser(&config, &mut StdRng::seed_from_u64(19))
        .unwrap()
        .0;
    let bytes = net.to_safetensors().unwrap();
    let (tensors, meta) = load(&bytes);
    assert_eq!(meta["format"], "toydiff-conditional-denoiser-v1");
    assert_eq!(meta["num_classes"], "3");
    let big_t: usize = meta["num_steps"].parse().unwrap();
    let layers = common::host_layers(&tensors, "conditional_denoiser");
    assert_eq!(layers.len(), 3);
    // The first layer reads [x, t/T, onehot(y)]: d + 1 + C + 1 columns, the last one ∅.
    assert_eq!((layers[0].2, layers[0].3), (128, 2 + 1 + 4));

    let x = Tensor::new(&POINTS, &Device::Cpu).unwrap();
    let loaded = ConditionalDenoiserNet::from_safetensors(&bytes, Some(500)).unwrap();
    let classes = [0u32, 2, 1, 1];
    for t in [1, 137, 500] {
        for given in [Some(&classes[..]), None] {
            let eps = loaded
                .predict_noise_conditional(&x, t, given)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (i, (p, e)) in POINTS.iter().zip(&eps).enumerate() {
                let t_feature = (t as f64 / big_t as f64) as f32 as f64;
                let mut input = vec![p[0] as f64, p[1] as f64, t_feature, 0.0, 0.0, 0.0, 0.0];
                input[3 + given.map_or(3, |y| y[i] as usize)] = 1.0;
                let want = common::host_mlp(&layers, &input);
                for j in 0..2 {
                    // candle in f32 against f64: relative 1e-5 covers the f32 accumulation.
                    assert!(
                        (e[j] as f64 - want[j]).abs() < 1e-5 * (1.0 + want[j].abs()),
                        "t={t}"
                    );
                }
            }
        }
    }
}
