//! safetensors checkpoints of the two networks, as bytes (the caller writes the file).
//!
//! The tensor names, shapes and metadata keys are the file format; they are documented in
//! the crate docs (section "Checkpoint format") for readers in other languages. Loading
//! checks the format tag, T, every name, shape and dtype, and says exactly what differs.

use std::collections::{BTreeMap, HashMap, HashSet};

use candle_core::Tensor;
use safetensors::{Dtype, SafeTensors};

use crate::conditional::{
    ConditionalDenoiserConfig, ConditionalDenoiserNet, PREFIX as CONDITIONAL_PREFIX,
};
use crate::error::{ModelError, Result};
use crate::nets::{
    layer_name, Activation, ClassifierConfig, ClassifierNet, DenoiserConfig, DenoiserNet, Dense,
    TimeEncoding, DEVICE,
};

/// Value of the `format` metadata key in denoiser checkpoints.
pub const DENOISER_FORMAT: &str = "toydiff-denoiser-v1";
/// Value of the `format` metadata key in conditional-denoiser checkpoints.
pub const CONDITIONAL_DENOISER_FORMAT: &str = "toydiff-conditional-denoiser-v1";
/// Value of the `format` metadata key in classifier checkpoints.
pub const CLASSIFIER_FORMAT: &str = "toydiff-classifier-v1";

/// The parsed file: its tensors and metadata, before any architecture is known.
struct Reader<'a> {
    st: SafeTensors<'a>,
    meta: HashMap<String, String>,
    used: HashSet<String>,
}

impl<'a> Reader<'a> {
    /// Parses the header, checks the format tag and (if asked) T.
    fn open(
        bytes: &'a [u8],
        format: &'static str,
        expected_num_steps: Option<usize>,
    ) -> Result<(Self, usize)> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::CheckpointUnreadable(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelError::CheckpointUnreadable(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format") {
            Some(f) if f == format => {}
            found => {
                return Err(ModelError::CheckpointFormat {
                    found: found.cloned(),
                    expected: format,
                })
            }
        }
        let reader = Self {
            st,
            meta,
            used: HashSet::new(),
        };
        let num_steps = reader.usize_key("num_steps")?;
        if let Some(expected) = expected_num_steps {
            if num_steps != expected {
                return Err(ModelError::CheckpointNumSteps {
                    found: num_steps,
                    expected,
                });
            }
        }
        Ok((reader, num_steps))
    }

    fn key(&self, key: &'static str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or(ModelError::MissingMetadata(key))
    }

    fn usize_key(&self, key: &'static str) -> Result<usize> {
        let value = self.key(key)?;
        parse_size(value).map_err(|reason| ModelError::BadMetadata {
            key,
            value: value.to_string(),
            reason,
        })
    }

    fn activation(&self) -> Result<Activation> {
        let value = self.key("activation")?;
        Activation::from_name(value).ok_or_else(|| ModelError::BadMetadata {
            key: "activation",
            value: value.to_string(),
            reason: "unknown activation (known: relu, silu)".into(),
        })
    }

    /// The tensor `name`, checked to be F32 of exactly `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| ModelError::MissingTensor(name.to_string()))?;
        if view.dtype() != Dtype::F32 {
            return Err(ModelError::TensorDtype {
                name: name.to_string(),
                found: view.dtype().to_string(),
            });
        }
        if view.shape() != shape {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                found: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        let data = view.data();
        // safetensors validated offsets against the shape; check again rather than panic.
        if data.len() != 4 * shape.iter().product::<usize>() {
            return Err(ModelError::CheckpointUnreadable(format!(
                "{name} holds {} bytes, expected {}",
                data.len(),
                4 * shape.iter().product::<usize>()
            )));
        }
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // A NaN or infinite weight (a corrupted file) would only show up later as a
        // misleading "sampling diverged"; relu even hides some of them (NaN maps to 0).
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::CheckpointUnreadable(format!(
                "{name} holds the non-finite value {v} at index {i}: weights must be finite"
            )));
        }
        self.used.insert(name.to_string());
        Ok(Tensor::from_vec(values, shape, &DEVICE)?)
    }

    /// Dense layers `{prefix}.layers.{i}` of the given `(out, in)` shapes.
    fn layers(&mut self, prefix: &str, shapes: &[(usize, usize)]) -> Result<Vec<Dense>> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, &(out, inp))| {
                Ok(Dense {
                    weight: self.tensor(&layer_name(prefix, i, "weight"), &[out, inp])?,
                    bias: self.tensor(&layer_name(prefix, i, "bias"), &[out])?,
                })
            })
            .collect()
    }

    /// Fails on any tensor that was not read (sorted, so the error is deterministic).
    fn finish(self) -> Result<()> {
        let mut extra: Vec<&str> = self
            .st
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n))
            .collect();
        extra.sort_unstable();
        match extra.first() {
            Some(name) => Err(ModelError::UnexpectedTensor(name.to_string())),
            None => Ok(()),
        }
    }

    /// Guards against absurd layer counts in the metadata before allocating anything.
    fn check_layer_count(&self, prefix: &str, layers: usize) -> Result<()> {
        if 2 * layers > self.st.len() {
            return Err(ModelError::MissingTensor(layer_name(
                prefix,
                layers - 1,
                "weight",
            )));
        }
        Ok(())
    }
}

/// The largest size (width, layer count, T, …) a checkpoint's metadata may state: far
/// above any real net, and small enough that sums and products of a few sizes cannot
/// overflow `usize` (a file stating `hidden_layers = 18446744073709551615` once made the
/// loader overflow, or loop building layer shapes in release builds).
const MAX_SIZE: usize = 1 << 30;

/// A size from the metadata: a whole number from 0 to [`MAX_SIZE`].
fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let value: usize = text
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    if value > MAX_SIZE {
        return Err(format!(
            "larger than {MAX_SIZE}, the most a checkpoint may state"
        ));
    }
    Ok(value)
}

/// The safetensors bytes of `tensors` (all F32) and `meta`, identical for identical
/// inputs: `safetensors::serialize` takes the metadata as a `HashMap`, whose key order
/// (and so the header's bytes) changes from run to run, so the header is written here.
///
/// The layout is the standard one: an 8-byte little-endian header length N, N bytes of
/// JSON (`__metadata__` first, its keys sorted, then the tensors sorted by name, each
/// `{"dtype":"F32","shape":[..],"data_offsets":[begin,end]}`) padded with spaces to a
/// multiple of 8, then each tensor's little-endian data in the same order.
fn serialize(
    mut tensors: Vec<(String, Tensor)>,
    meta: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = String::from("{\"__metadata__\":{");
    for (i, (k, v)) in meta.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!("{}:{}", json_string(k), json_string(v)));
    }
    header.push('}');
    let mut data: Vec<u8> = Vec::new();
    for (name, tensor) in &tensors {
        let values = tensor
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let begin = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let shape: Vec<String> = tensor.dims().iter().map(usize::to_string).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{begin},{}]}}",
            json_string(name),
            shape.join(","),
            data.len()
        ));
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + data.len());
    bytes.extend((header.len() as u64).to_le_bytes());
    bytes.extend(header);
    bytes.extend(data);
    Ok(bytes)
}

/// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The denoiser shape's metadata, under `format`.
fn denoiser_metadata(format: &str, c: &DenoiserConfig) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("format".to_string(), format.to_string()),
        ("num_steps".to_string(), c.num_steps.to_string()),
        ("dim".to_string(), c.dim.to_string()),
        ("hidden_width".to_string(), c.hidden_width.to_string()),
        ("hidden_layers".to_string(), c.hidden_layers.to_string()),
        ("activation".to_string(), c.activation.name().to_string()),
        (
            "time_encoding".to_string(),
            c.time_encoding.name().to_string(),
        ),
    ])
}

impl Reader<'_> {
    /// The denoiser shape stated by the metadata (T already read), validated.
    fn denoiser_config(&self, num_steps: usize) -> Result<DenoiserConfig> {
        let encoding = self.key("time_encoding")?;
        let time_encoding =
            TimeEncoding::from_name(encoding).ok_or_else(|| ModelError::BadMetadata {
                key: "time_encoding",
                value: encoding.to_string(),
                reason: "unknown time encoding (known: scaled, sinusoidal)".into(),
            })?;
        let config = DenoiserConfig {
            dim: self.usize_key("dim")?,
            hidden_width: self.usize_key("hidden_width")?,
            hidden_layers: self.usize_key("hidden_layers")?,
            num_steps,
            activation: self.activation()?,
            time_encoding,
        };
        config.validate()?;
        Ok(config)
    }
}

impl DenoiserNet {
    /// The net as safetensors bytes: tensors `denoiser.layers.{i}.weight|bias` (F32) and its configuration as metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        serialize(
            self.named_tensors(),
            denoiser_metadata(DENOISER_FORMAT, self.config()),
        )
    }

    /// Reads a net written by [`DenoiserNet::to_safetensors`]; with `Some(T)`, also checks it was trained with T steps.
    pub fn from_safetensors(bytes: &[u8], expected_num_steps: Option<usize>) -> Result<Self> {
        let (mut r, num_steps) = Reader::open(bytes, DENOISER_FORMAT, expected_num_steps)?;
        let config = r.denoiser_config(num_steps)?;
        r.check_layer_count("denoiser", config.hidden_layers + 1)?;
        let layers = r.layers("denoiser", &config.layer_shapes())?;
        r.finish()?;
        DenoiserNet::from_layers(config, layers)
    }
}

impl ConditionalDenoiserNet {
    /// The net as safetensors bytes: tensors `conditional_denoiser.layers.{i}.weight|bias`
    /// (F32), the denoiser's metadata keys and `num_classes`.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let c = self.config();
        let mut meta = denoiser_metadata(CONDITIONAL_DENOISER_FORMAT, &c.denoiser);
        meta.insert("num_classes".to_string(), c.num_classes.to_string());
        serialize(self.named_tensors(), meta)
    }

    /// Reads a net written by [`ConditionalDenoiserNet::to_safetensors`]; with `Some(T)`,
    /// also checks it was trained with T steps.
    pub fn from_safetensors(bytes: &[u8], expected_num_steps: Option<usize>) -> Result<Self> {
        let (mut r, num_steps) =
            Reader::open(bytes, CONDITIONAL_DENOISER_FORMAT, expected_num_steps)?;
        let config = ConditionalDenoiserConfig {
            denoiser: r.denoiser_config(num_steps)?,
            num_classes: r.usize_key("num_classes")?,
        };
        config.validate()?;
        r.check_layer_count(CONDITIONAL_PREFIX, config.denoiser.hidden_layers + 1)?;
        let layers = r.layers(CONDITIONAL_PREFIX, &config.layer_shapes())?;
        r.finish()?;
        ConditionalDenoiserNet::from_layers(config, layers)
    }
}

impl ClassifierNet {
    /// The net as safetensors bytes: `classifier.embedding.weight`, `classifier.layers.{i}.weight|bias` (F32) and its configuration as metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let c = self.config();
        let hidden: Vec<String> = c.hidden.iter().map(|w| w.to_string()).collect();
        let meta = BTreeMap::from([
            ("format".to_string(), CLASSIFIER_FORMAT.to_string()),
            ("num_steps".to_string(), c.num_steps.to_string()),
            ("dim".to_string(), c.dim.to_string()),
            ("num_classes".to_string(), c.num_classes.to_string()),
            ("embed_dim".to_string(), c.embed_dim.to_string()),
            ("hidden".to_string(), hidden.join(",")),
            ("activation".to_string(), c.activation.name().to_string()),
        ]);
        serialize(self.named_tensors(), meta)
    }

    /// Reads a net written by [`ClassifierNet::to_safetensors`]; with `Some(T)`, also checks it was trained with T steps.
    pub fn from_safetensors(bytes: &[u8], expected_num_steps: Option<usize>) -> Result<Self> {
        let (mut r, num_steps) = Reader::open(bytes, CLASSIFIER_FORMAT, expected_num_steps)?;
        let hidden_text = r.key("hidden")?;
        let hidden = if hidden_text.is_empty() {
            Vec::new()
        } else {
            hidden_text
                .split(',')
                .map(|w| parse_size(w.trim()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ModelError::BadMetadata {
                    key: "hidden",
                    value: hidden_text.to_string(),
                    reason: format!("expected comma-separated widths: {e}"),
                })?
        };
        let config = ClassifierConfig {
            dim: r.usize_key("dim")?,
            num_classes: r.usize_key("num_classes")?,
            num_steps,
            embed_dim: r.usize_key("embed_dim")?,
            hidden,
            activation: r.activation()?,
        };
        config.validate()?;
        r.check_layer_count("classifier", config.hidden.len() + 1)?;
        let embedding = r.tensor(
            "classifier.embedding.weight",
            &[config.num_steps, config.embed_dim],
        )?;
        let layers = r.layers("classifier", &config.layer_shapes())?;
        r.finish()?;
        ClassifierNet::from_parts(config, embedding, layers)
    }
}

/// `bytes` (a checkpoint of either net) with `extra` string entries added to its
/// `__metadata__`, written with the same fixed header as [`DenoiserNet::to_safetensors`];
/// an entry whose key the file already holds replaces it. The tensors are copied bit for bit.
pub fn with_checkpoint_metadata(bytes: &[u8], extra: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::CheckpointUnreadable(e.to_string()))?;
    let mut meta: BTreeMap<String, String> = checkpoint_metadata(bytes)?;
    meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(ModelError::TensorDtype {
                name,
                found: format!("{:?}", view.dtype()),
            });
        }
        let tensor =
            Tensor::from_raw_buffer(view.data(), candle_core::DType::F32, view.shape(), &DEVICE)?;
        tensors.push((name, tensor));
    }
    serialize(tensors, meta)
}

/// The `__metadata__` map of a safetensors checkpoint (empty when it has none).
pub fn checkpoint_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ModelError::CheckpointUnreadable(e.to_string()))?;
    Ok(header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{init_classifier, init_denoiser};
    use crate::traits::{NoisePredictor, NoisyClassifier};
    use rand::{rngs::StdRng, SeedableRng};

    fn denoiser() -> DenoiserNet {
        init_denoiser(&DenoiserConfig::default(), &mut StdRng::seed_from_u64(1))
            .unwrap()
            .0
            .detached()
    }

    fn classifier(num_steps: usize) -> ClassifierNet {
        let cfg = ClassifierConfig {
            num_steps,
            num_classes: 3,
            ..Default::default()
        };
        init_classifier(&cfg, &mut StdRng::seed_from_u64(2))
            .unwrap()
            .0
            .detached()
    }

    fn x() -> Tensor {
        Tensor::new(&[[-1.0f32, -2.0], [0.5, 0.25], [3.0, -0.5]], &DEVICE).unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The metadata and tensors of a checkpoint, to rebuild a doctored copy.
    fn parts(bytes: &[u8]) -> (HashMap<String, String>, Vec<(String, Tensor)>) {
        let meta = SafeTensors::read_metadata(bytes)
            .unwrap()
            .1
            .metadata()
            .clone()
            .unwrap();
        let tensors = candle_core::safetensors::load_buffer(bytes, &DEVICE)
            .unwrap()
            .into_iter()
            .collect();
        (meta, tensors)
    }

    fn rebuild(meta: HashMap<String, String>, tensors: Vec<(String, Tensor)>) -> Vec<u8> {
        safetensors::serialize(tensors, Some(meta)).unwrap()
    }

    #[test]
    fn round_trips_are_bit_exact() {
        let net = denoiser();
        let bytes = net.to_safetensors().unwrap();
        let back = DenoiserNet::from_safetensors(&bytes, Some(500)).unwrap();
        assert_eq!(back.config(), net.config());
        for t in [1, 250, 500] {
            assert_eq!(
                bits(&back.predict_noise(&x(), t).unwrap()),
                bits(&net.predict_noise(&x(), t).unwrap())
            );
        }
        same_contents(&back.to_safetensors().unwrap(), &bytes);

        let net = classifier(500);
        let bytes = net.to_safetensors().unwrap();
        let back = ClassifierNet::from_safetensors(&bytes, None).unwrap();
        assert_eq!(back.config(), net.config());
        assert_eq!(
            bits(&back.log_probs(&x(), 77).unwrap()),
            bits(&net.log_probs(&x(), 77).unwrap())
        );
        same_contents(&back.to_safetensors().unwrap(), &bytes);
    }

    #[test]
    fn the_conditional_denoiser_round_trips_bit_exact() {
        let config = crate::ConditionalDenoiserConfig {
            denoiser: DenoiserConfig::default(),
            num_classes: 3,
        };
        let net = crate::init_conditional_denoiser(&config, &mut StdRng::seed_from_u64(4))
            .unwrap()
            .0
            .detached();
        let bytes = net.to_safetensors().unwrap();
        assert_eq!(
            checkpoint_metadata(&bytes).unwrap()["format"],
            CONDITIONAL_DENOISER_FORMAT
        );
        let back = ConditionalDenoiserNet::from_safetensors(&bytes, Some(500)).unwrap();
        assert_eq!(back.config(), net.config());
        use crate::traits::ConditionalNoisePredictor;
        for classes in [Some(&[0u32, 2, 1][..]), None] {
            assert_eq!(
                bits(&back.predict_noise_conditional(&x(), 77, classes).unwrap()),
                bits(&net.predict_noise_conditional(&x(), 77, classes).unwrap())
            );
        }
        same_contents(&back.to_safetensors().unwrap(), &bytes);
        // Neither of the other loaders takes it, and it takes neither of theirs.
        assert!(DenoiserNet::from_safetensors(&bytes, None).is_err());
        assert!(matches!(
            ConditionalDenoiserNet::from_safetensors(&denoiser().to_safetensors().unwrap(), None),
            Err(ModelError::CheckpointFormat { .. })
        ));
        assert!(matches!(
            ConditionalDenoiserNet::from_safetensors(&bytes, Some(400)),
            Err(ModelError::CheckpointNumSteps { .. })
        ));
    }

    /// Same metadata and tensors, bit for bit, and the same bytes.
    fn same_contents(a: &[u8], b: &[u8]) {
        assert!(a == b, "two serialisations of one net differ");
        let ((ma, ta), (mb, tb)) = (parts(a), parts(b));
        assert_eq!(ma, mb);
        let sorted = |t: Vec<(String, Tensor)>| {
            let mut v: Vec<(String, Vec<u32>)> =
                t.iter().map(|(n, t)| (n.clone(), bits(t))).collect();
            v.sort();
            v
        };
        assert!(sorted(ta) == sorted(tb));
    }

    #[test]
    fn extra_metadata_round_trips_and_keeps_the_tensors() {
        let bytes = denoiser().to_safetensors().unwrap();
        let extra = BTreeMap::from([("run_id".to_string(), "0123abcd".to_string())]);
        let tagged = with_checkpoint_metadata(&bytes, &extra).unwrap();
        let meta = checkpoint_metadata(&tagged).unwrap();
        assert_eq!(meta["run_id"], "0123abcd");
        assert_eq!(meta["format"], DENOISER_FORMAT);
        // The net reads back with the same weights, bit for bit: it writes the original bytes.
        let back = DenoiserNet::from_safetensors(&tagged, None).unwrap();
        assert_eq!(back.to_safetensors().unwrap(), bytes);
        // Adding nothing gives back the same bytes (the header is the fixed one).
        assert_eq!(
            with_checkpoint_metadata(&bytes, &BTreeMap::new()).unwrap(),
            bytes
        );
        assert!(checkpoint_metadata(b"garbage").is_err());
    }

    #[test]
    fn serialisation_is_deterministic_and_standard() {
        // A `HashMap` of the 7 metadata keys iterates in a different order in most maps:
        // 20 serialisations of each net would almost surely differ if the order leaked.
        let nets = [
            denoiser().to_safetensors().unwrap(),
            classifier(500).to_safetensors().unwrap(),
        ];
        for (k, first) in nets.iter().enumerate() {
            for _ in 0..20 {
                let again = if k == 0 {
                    denoiser().to_safetensors().unwrap()
                } else {
                    classifier(500).to_safetensors().unwrap()
                };
                assert!(&again == first, "net {k}: serialisations differ");
            }
            // The safetensors crate parses it, and writes the same layout (its header
            // differs from ours only in the order of the metadata keys).
            let st = SafeTensors::deserialize(first).unwrap();
            let (meta, tensors) = parts(first);
            assert_eq!(st.len(), tensors.len());
            let reference = rebuild(meta, tensors);
            assert_eq!(reference.len(), first.len());
            assert_eq!(reference[..8], first[..8], "header length");
            let n = 8 + u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
            assert!(reference[n..] == first[n..], "data section");
            assert_eq!(n % 8, 0);
            let header = std::str::from_utf8(&first[8..n]).unwrap();
            assert!(header.starts_with("{\"__metadata__\":{\""), "{header}");
        }
    }

    #[test]
    fn non_finite_weights_are_named() {
        let (meta, tensors) = parts(&denoiser().to_safetensors().unwrap());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let doctored: Vec<_> = tensors
                .iter()
                .map(|(n, t)| {
                    if n == "denoiser.layers.1.bias" {
                        let mut v = t.to_vec1::<f32>().unwrap();
                        v[5] = bad;
                        (n.clone(), Tensor::new(v, &DEVICE).unwrap())
                    } else {
                        (n.clone(), t.clone())
                    }
                })
                .collect();
            let err =
                DenoiserNet::from_safetensors(&rebuild(meta.clone(), doctored), None).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "not a readable safetensors checkpoint: denoiser.layers.1.bias holds the \
                     non-finite value {bad} at index 5: weights must be finite"
                )
            );
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
        assert_eq!(json_string("ᾱ_t"), "\"ᾱ_t\"");
        // And the safetensors parser reads such metadata back unchanged.
        let odd = BTreeMap::from([
            (
                "format".to_string(),
                "q\"uote\\back\tslash\u{1}".to_string(),
            ),
            ("ünï".to_string(), String::new()),
        ]);
        let bytes = serialize(denoiser().named_tensors(), odd.clone()).unwrap();
        let (meta, _) = parts(&bytes);
        assert_eq!(meta.into_iter().collect::<BTreeMap<_, _>>(), odd);
    }

    #[test]
    fn documented_names_and_metadata() {
        let (meta, tensors) = parts(&classifier(500).to_safetensors().unwrap());
        assert_eq!(meta["format"], "toydiff-classifier-v1");
        assert_eq!(meta["num_steps"], "500");
        assert_eq!(meta["hidden"], "64,32");
        let mut names: Vec<(String, Vec<usize>)> = tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.dims().to_vec()))
            .collect();
        names.sort();
        let want = [
            ("classifier.embedding.weight", vec![500, 32]),
            ("classifier.layers.0.bias", vec![64]),
            ("classifier.layers.0.weight", vec![64, 34]),
            ("classifier.layers.1.bias", vec![32]),
            ("classifier.layers.1.weight", vec![32, 64]),
            ("classifier.layers.2.bias", vec![3]),
            ("classifier.layers.2.weight", vec![3, 32]),
        ];
        assert_eq!(names, want.map(|(n, s)| (n.to_string(), s)).to_vec());
        let (meta, tensors) = parts(&denoiser().to_safetensors().unwrap());
        assert_eq!(meta["format"], "toydiff-denoiser-v1");
        assert_eq!(
            (
                meta["hidden_width"].as_str(),
                meta["hidden_layers"].as_str()
            ),
            ("128", "2")
        );
        assert_eq!(tensors.len(), 6);
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors() {
        let bytes = denoiser().to_safetensors().unwrap();
        for cut in [0, 5, 8, 100, bytes.len() / 2, bytes.len() - 1] {
            let err = DenoiserNet::from_safetensors(&bytes[..cut], None).unwrap_err();
            assert!(
                matches!(err, ModelError::CheckpointUnreadable(_)),
                "cut {cut}: {err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            DenoiserNet::from_safetensors(&longer, None),
            Err(ModelError::CheckpointUnreadable(_))
        ));
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(matches!(
            ClassifierNet::from_safetensors(&garbage, None),
            Err(ModelError::CheckpointUnreadable(_))
        ));
        assert!(DenoiserNet::from_safetensors(b"{}", None).is_err());
    }

    #[test]
    fn wrong_format_is_named() {
        let err = ClassifierNet::from_safetensors(&denoiser().to_safetensors().unwrap(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint format is \"toydiff-denoiser-v1\", expected \"toydiff-classifier-v1\""
        );
        let (_, tensors) = parts(&denoiser().to_safetensors().unwrap());
        let err =
            DenoiserNet::from_safetensors(&rebuild(HashMap::new(), tensors), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint format is missing, expected \"toydiff-denoiser-v1\""
        );
    }

    #[test]
    fn different_t_is_named() {
        let bytes = classifier(400).to_safetensors().unwrap();
        let err = ClassifierNet::from_safetensors(&bytes, Some(500)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint was trained with T = 400, expected 500"
        );
        assert_eq!(
            ClassifierNet::from_safetensors(&bytes, Some(400))
                .unwrap()
                .num_steps(),
            400
        );
        let err = DenoiserNet::from_safetensors(&denoiser().to_safetensors().unwrap(), Some(1000))
            .unwrap_err();
        assert!(matches!(
            err,
            ModelError::CheckpointNumSteps {
                found: 500,
                expected: 1000
            }
        ));
    }

    #[test]
    fn wrong_shapes_dtypes_and_names_are_named() {
        // The embedding of a T = 400 model in a file whose metadata says T = 500.
        let (meta, mut tensors) = parts(&classifier(500).to_safetensors().unwrap());
        let small = classifier(400).embedding().clone();
        for (n, t) in tensors.iter_mut() {
            if n == "classifier.embedding.weight" {
                *t = small.clone();
            }
        }
        let err = ClassifierNet::from_safetensors(&rebuild(meta.clone(), tensors.clone()), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "classifier.embedding.weight has shape [400, 32], expected [500, 32]"
        );

        let (meta, tensors) = parts(&denoiser().to_safetensors().unwrap());
        let f64_tensors: Vec<_> = tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    if n.ends_with("1.bias") {
                        t.to_dtype(candle_core::DType::F64).unwrap()
                    } else {
                        t.clone()
                    },
                )
            })
            .collect();
        let err =
            DenoiserNet::from_safetensors(&rebuild(meta.clone(), f64_tensors), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "denoiser.layers.1.bias has dtype F64, expected F32"
        );

        let missing: Vec<_> = tensors
            .iter()
            .filter(|(n, _)| n != "denoiser.layers.2.weight")
            .cloned()
            .collect();
        let err = DenoiserNet::from_safetensors(&rebuild(meta.clone(), missing), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint lacks the tensor denoiser.layers.2.weight"
        );

        let mut extra = tensors.clone();
        extra.push((
            "denoiser.layers.3.weight".into(),
            Tensor::zeros((2, 2), candle_core::DType::F32, &DEVICE).unwrap(),
        ));
        let err = DenoiserNet::from_safetensors(&rebuild(meta.clone(), extra), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint has an unexpected tensor denoiser.layers.3.weight"
        );

        // Metadata that disagrees with the tensors, or cannot be parsed.
        let mut wide = meta.clone();
        wide.insert("hidden_width".into(), "64".into());
        let err = DenoiserNet::from_safetensors(&rebuild(wide, tensors.clone()), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "denoiser.layers.0.weight has shape [128, 3], expected [64, 3]"
        );
        // More layers than the file holds: caught before any allocation.
        let mut deep = meta.clone();
        deep.insert("hidden_layers".into(), "1000000".into());
        let err = DenoiserNet::from_safetensors(&rebuild(deep, tensors.clone()), None).unwrap_err();
        assert!(matches!(err, ModelError::MissingTensor(_)), "{err}");
        // Sizes beyond any real net (sums of them would overflow): refused as metadata.
        for huge in ["1000000000000", "18446744073709551615"] {
            for key in ["hidden_layers", "dim", "hidden_width", "num_steps"] {
                let mut m = meta.clone();
                m.insert(key.into(), huge.into());
                let err =
                    DenoiserNet::from_safetensors(&rebuild(m, tensors.clone()), None).unwrap_err();
                assert!(
                    err.to_string()
                        .starts_with(&format!("checkpoint metadata \"{key}\" = \"{huge}\"")),
                    "{err}"
                );
            }
        }
        let mut bad = meta.clone();
        bad.insert("dim".into(), "two".into());
        let err = DenoiserNet::from_safetensors(&rebuild(bad, tensors.clone()), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("checkpoint metadata \"dim\" = \"two\" is invalid"),
            "{err}"
        );
        let mut no_act = meta.clone();
        no_act.remove("activation");
        let err =
            DenoiserNet::from_safetensors(&rebuild(no_act, tensors.clone()), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint metadata lacks the key \"activation\""
        );
        let mut gelu = meta;
        gelu.insert("activation".into(), "gelu".into());
        assert!(matches!(
            DenoiserNet::from_safetensors(&rebuild(gelu, tensors), None),
            Err(ModelError::BadMetadata {
                key: "activation",
                ..
            })
        ));
    }
}
