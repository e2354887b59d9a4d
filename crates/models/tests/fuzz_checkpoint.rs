//! The checkpoint loaders never panic on arbitrary bytes. Seeded random bytes, random
//! safetensors-shaped headers and valid checkpoints with byte flips, truncations,
//! header-length edits and header digit edits go through `DenoiserNet::from_safetensors`
//! and `ClassifierNet::from_safetensors`; a panic fails the test with the seed that
//! regenerates the input. A net that does load must also run a forward pass.

use std::panic::{catch_unwind, AssertUnwindSafe};

use candle_core::{Device, Tensor};
use models::{
    init_classifier, init_denoiser, ClassifierConfig, ClassifierNet, DenoiserConfig, DenoiserNet,
    NoisePredictor, NoisyClassifier,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Small nets keep thousands of cases fast; the format is the same at any size.
fn small_checkpoints() -> (Vec<u8>, Vec<u8>) {
    let dcfg = DenoiserConfig {
        hidden_width: 8,
        hidden_layers: 2,
        num_steps: 20,
        ..DenoiserConfig::default()
    };
    let ccfg = ClassifierConfig {
        num_steps: 20,
        embed_dim: 4,
        hidden: vec![8, 4],
        num_classes: 3,
        ..ClassifierConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(5);
    let d = init_denoiser(&dcfg, &mut rng).unwrap().0.detached();
    let c = init_classifier(&ccfg, &mut rng).unwrap().0.detached();
    (d.to_safetensors().unwrap(), c.to_safetensors().unwrap())
}

/// Tries both loaders (with and without the expected T); whatever loads must run.
/// Returns whether anything loaded.
fn load_all_ways(bytes: &[u8]) -> bool {
    let x = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25]], &Device::Cpu).unwrap();
    let mut loaded = false;
    for t in [None, Some(20)] {
        if let Ok(net) = DenoiserNet::from_safetensors(bytes, t) {
            loaded = true;
            let steps = net.num_steps();
            // The input must match the net's dimension; anything else is an error, not a panic.
            let x = Tensor::zeros((2, net.dim()), candle_core::DType::F32, &Device::Cpu).unwrap();
            let eps = net.predict_noise(&x, steps).unwrap();
            assert_eq!(eps.dims(), &[2, net.dim()]);
        }
        if let Ok(net) = ClassifierNet::from_safetensors(bytes, t) {
            loaded = true;
            if net.config().dim == 2 {
                let lp = net.log_probs(&x, net.num_steps()).unwrap();
                assert_eq!(lp.dims(), &[2, net.num_classes()]);
            }
        }
    }
    loaded
}

/// Runs `cases` inputs from seeds `base..`; returns how many loaded as some net.
fn fuzz(name: &str, base: u64, cases: u64, make: impl Fn(&mut StdRng) -> Vec<u8>) -> u64 {
    let mut loaded = 0;
    for seed in base..base + cases {
        let bytes = make(&mut StdRng::seed_from_u64(seed));
        match catch_unwind(AssertUnwindSafe(|| load_all_ways(&bytes))) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(_) => panic!(
                "{name}: a loader panicked on seed {seed} ({} bytes, header {:?})",
                bytes.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        }
    }
    loaded
}

/// The header's length field and JSON text of a checkpoint.
fn header_end(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn the_unmutated_checkpoints_load() {
    let (d, c) = small_checkpoints();
    assert!(DenoiserNet::from_safetensors(&d, Some(20)).is_ok());
    assert!(ClassifierNet::from_safetensors(&c, Some(20)).is_ok());
    assert!(load_all_ways(&d) && load_all_ways(&c));
}

#[test]
fn random_bytes_never_panic() {
    fuzz("random", 0, 2000, |rng| {
        let len = rng.random_range(0..300);
        (0..len).map(|_| rng.random()).collect()
    });
    // A plausible length prefix, then random text: reaches the JSON parser.
    fuzz("random-header", 10_000, 2000, |rng| {
        let len = rng.random_range(0..200u64);
        let mut b = len.to_le_bytes().to_vec();
        let alphabet = br#"{}[]:,"0123456789 __metadata__ F32 dtype shape data_offsets format"#;
        b.extend(
            (0..rng.random_range(0..250)).map(|_| alphabet[rng.random_range(0..alphabet.len())]),
        );
        b
    });
}

#[test]
fn mutated_checkpoints_never_panic() {
    let (d, c) = small_checkpoints();
    let originals = [d, c];
    // Byte flips anywhere (header flips reach every metadata and shape check).
    fuzz("flips", 20_000, 1500, |rng| {
        let mut b = originals[rng.random_range(0..2)].clone();
        let in_header = rng.random_bool(0.7);
        for _ in 0..rng.random_range(1..=4) {
            let end = header_end(&b);
            let i = if in_header {
                rng.random_range(8..end)
            } else {
                rng.random_range(0..b.len())
            };
            b[i] = rng.random();
        }
        b
    });
    // Truncations and extensions.
    fuzz("lengths", 30_000, 1000, |rng| {
        let mut b = originals[rng.random_range(0..2)].clone();
        if rng.random_bool(0.7) {
            b.truncate(rng.random_range(0..b.len()));
        } else {
            b.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
        }
        b
    });
    // The header-length field: off by a little, random, or absurd.
    fuzz("header-length", 40_000, 1000, |rng| {
        let mut b = originals[rng.random_range(0..2)].clone();
        let n = header_end(&b) as u64 - 8;
        let new = match rng.random_range(0..4) {
            0 => n.wrapping_add(rng.random_range(1..16)),
            1 => n.saturating_sub(rng.random_range(1..16)),
            2 => rng.random_range(0..b.len() as u64 * 2),
            _ => rng.random(),
        };
        b[..8].copy_from_slice(&new.to_le_bytes());
        b
    });
    // Digits in the header changed to other digits: the JSON stays valid, so shapes,
    // offsets and metadata numbers disagree with each other in every possible way.
    let digit_edits = fuzz("header-digits", 50_000, 1500, |rng| {
        let mut b = originals[rng.random_range(0..2)].clone();
        let end = header_end(&b);
        let digits: Vec<usize> = (8..end).filter(|&i| b[i].is_ascii_digit()).collect();
        for _ in 0..rng.random_range(1..=2) {
            let i = digits[rng.random_range(0..digits.len())];
            b[i] = b'0' + rng.random_range(0..10u8);
        }
        b
    });
    // Some edits leave a loadable net (a digit replaced by itself, a weight's low byte),
    // most do not: both paths were exercised.
    assert!(digit_edits > 0 && digit_edits < 1500, "{digit_edits}");
}

#[test]
fn data_flips_that_keep_weights_finite_still_load() {
    // The low byte of an f32 only nudges its mantissa: the file stays valid and loads.
    let (d, _) = small_checkpoints();
    let start = header_end(&d);
    let n = fuzz("low-bytes", 60_000, 200, |rng| {
        let mut b = d.clone();
        let k = rng.random_range(0..(b.len() - start) / 4);
        b[start + 4 * k] ^= rng.random_range(1..=255u8);
        b
    });
    assert_eq!(n, 200);
}

/// Every metadata key set to extreme or malformed values (beyond what digit edits reach:
/// zero, usize::MAX, overflowing, negative, empty, non-numeric), rebuilt with the
/// safetensors crate: always an error or a usable net, never a panic or an overflow.
#[test]
fn extreme_metadata_values_never_panic() {
    let (d, c) = small_checkpoints();
    let values = [
        "0",
        "1",
        "3",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "",
        "1e3",
        " 2",
        "relu",
        "sinusoidal",
        "8,4",
        ",",
        "18446744073709551615,1",
        "0,0",
    ];
    let mut cases = 0;
    for original in [d, c] {
        let meta = safetensors::SafeTensors::read_metadata(&original)
            .unwrap()
            .1
            .metadata()
            .clone()
            .unwrap();
        let tensors: Vec<(String, Tensor)> =
            candle_core::safetensors::load_buffer(&original, &Device::Cpu)
                .unwrap()
                .into_iter()
                .collect();
        for key in meta.keys() {
            for value in values {
                let mut m = meta.clone();
                m.insert(key.clone(), value.to_string());
                let bytes = safetensors::serialize(tensors.clone(), Some(m)).unwrap();
                if catch_unwind(AssertUnwindSafe(|| load_all_ways(&bytes))).is_err() {
                    panic!("a loader panicked with metadata {key:?} = {value:?}");
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 100, "{cases}");
}
