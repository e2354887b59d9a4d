//! Helpers shared by the integration tests.
#![allow(dead_code)]

use candle_core::Tensor;

/// The notebook's 2-D training set (seed 1234, 500 points a class) as f32 rows and u32 labels.
pub fn notebook_data() -> (Vec<f32>, Vec<u32>) {
    let lp = toy_data::two_clusters(500, 1234);
    (
        lp.points.iter().map(|&v| v as f32).collect(),
        lp.labels.iter().map(|&l| l as u32).collect(),
    )
}

/// A tensor as a flat f64 vector.
pub fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Dense layers `(W (out × in) row-major, b, out, in)` read by name, as a reader of the file format would.
pub fn host_layers(
    named: &[(String, Tensor)],
    prefix: &str,
) -> Vec<(Vec<f64>, Vec<f64>, usize, usize)> {
    let get = |name: String| {
        named
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
    };
    let mut layers = Vec::new();
    for i in 0.. {
        let Some(w) = get(format!("{prefix}.layers.{i}.weight")) else {
            break;
        };
        let b = get(format!("{prefix}.layers.{i}.bias")).unwrap();
        let (out, inp) = w.dims2().unwrap();
        layers.push((to_f64(&w), to_f64(&b), out, inp));
    }
    layers
}

/// The documented forward pass in f64: h ← relu(h Wᵀ + b) for all layers but the last.
pub fn host_mlp(layers: &[(Vec<f64>, Vec<f64>, usize, usize)], input: &[f64]) -> Vec<f64> {
    let mut h = input.to_vec();
    for (l, (w, b, out, inp)) in layers.iter().enumerate() {
        assert_eq!(h.len(), *inp);
        let mut next: Vec<f64> = (0..*out)
            .map(|o| b[o] + (0..*inp).map(|i| w[o * inp + i] * h[i]).sum::<f64>())
            .collect();
        if l + 1 < layers.len() {
            next.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        h = next;
    }
    h
}

/// log-softmax of a vector, in f64.
pub fn log_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}
