//! Fused CPU kernels for the small MLPs of this crate, as candle custom ops.
//!
//! A dense layer through candle's generic ops is a transpose, a matmul, a bias add and an
//! activation forward, and about twice as many ops backward, each allocating (and often
//! zero-filling) its output. For these sizes (batch 128–500, width ≤ 128) that per-op
//! traffic cost as much as the arithmetic. Here:
//!
//! - [`dense`]: y = act(x Wᵀ + b) as one [`CustomOp3`]: one `gemm` call into a buffer
//!   pre-filled with the bias, then the activation in place. Its backward computes
//!   dz = g ⊙ act′, db = Σ_rows dz, dW = dzᵀ x and (only when x is tracked) dx = dz W,
//!   two `gemm` calls and one pass, returning only the gradients some `Var` needs.
//! - [`classifier_input_grad`]: ∇_x Σ_i log p(y_i | x_i, t) of the classifier MLP, forward
//!   and analytic backward in one pass of host code (the guidance gradient).
//!
//! The products go through `gemm`, the crate candle's own matmul calls, with the same
//! threading rule as candle (`RAYON_NUM_THREADS`), but on one thread below
//! [`PARALLEL_MIN_FLOPS`]. Every kernel is deterministic: the same inputs give the same
//! bits, whatever the thread count (gemm splits the output, never the k sum).

use std::borrow::Cow;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor};
use gemm::Parallelism;

use crate::ops::elements;

/// Products below this many multiply-adds (m·n·k) run on one thread: at batch 128 the
/// second thread's start-up cost more than it saved (measured, see BENCHMARKS.md).
pub(crate) const PARALLEL_MIN_FLOPS: usize = 1 << 22;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    if m * n * k < PARALLEL_MIN_FLOPS {
        return Parallelism::None;
    }
    match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    }
}

/// Defines `fn $name(args)` whose body is compiled three times: for AVX-512, for AVX2 + FMA
/// and for the baseline, picked at run time. The workspace builds for baseline x86-64
/// (SSE2), where these loops run 4 lanes wide; AVX-512 runs 16.
///
/// Only for element-wise loops (and sums whose order does not depend on the vector width):
/// every lane computes the same IEEE operations in the same order whatever the width, and
/// Rust never contracts a multiply and an add into an FMA on its own, so all three
/// versions give the same bits.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features v4 was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features v3 was compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

multiversion! {
    /// y = max(y, 0) in place (candle's relu: `f32::max`, NaN maps to 0).
    fn relu_in_place(y: &mut [f32]) {
        for v in y.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

multiversion! {
    /// g = 0 where a ≤ 0 (or NaN): the relu mask of the layer whose output is a.
    fn mask_where_off(g: &mut [f32], a: &[f32]) {
        for (g, &a) in g.iter_mut().zip(a) {
            // `a > 0.0` is false for NaN too, which is what masks it.
            if a.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                *g = 0.0;
            }
        }
    }
}

multiversion! {
    /// s[j] = Σ_r m[r][j] over the rows of the row-major m (columns `s.len()`), row by row.
    fn column_sums(s: &mut [f32], m: &[f32]) {
        let cols = s.len();
        s.fill(0.0);
        for row in m.chunks_exact(cols) {
            for (s, &v) in s.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
}

/// How an operand of a row-major product is read.
#[derive(Clone, Copy)]
enum Op {
    /// As stored: an (rows × cols) row-major matrix.
    N,
    /// Transposed: the stored (cols × rows) matrix read as its transpose.
    T,
}

/// c (m × n, row-major) = [c +] op(a) · op(b), with op(a) m × k and op(b) k × n.
///
/// When `accumulate` is false `c` need not be initialised: every element is written.
///
/// # Safety
/// `c` must be valid for m·n writes (and reads when `accumulate`), `a` and `b` for their
/// m·k and k·n reads; `c` must not overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    c: *mut f32,
    accumulate: bool,
    a: *const f32,
    op_a: Op,
    b: *const f32,
    op_b: Op,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            std::ptr::write_bytes(c, 0, m * n);
        }
        return;
    }
    // (column stride, row stride) of each operand as gemm reads it.
    let (a_cs, a_rs) = match op_a {
        Op::N => (1, k as isize),
        Op::T => (m as isize, 1),
    };
    let (b_cs, b_rs) = match op_b {
        Op::N => (1, n as isize),
        Op::T => (k as isize, 1),
    };
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        n as isize,
        accumulate,
        a,
        a_cs,
        a_rs,
        b,
        b_cs,
        b_rs,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism(m, n, k),
    );
}

/// c = [c +] op(a) · op(b) on slices (see [`gemm_raw`]); checks the lengths.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the lengths are checked above and the borrows cannot overlap.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            c.as_mut_ptr(),
            accumulate,
            a.as_ptr(),
            op_a,
            b.as_ptr(),
            op_b,
        )
    }
}

/// A new m × n vector holding op(a) · op(b), written once (no zero fill).
fn gemm_new(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
    assert!(a.len() >= m * k && b.len() >= k * n);
    let mut c = Vec::with_capacity(m * n);
    // SAFETY: gemm_raw writes all m·n elements when not accumulating; lengths checked above.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            c.as_mut_ptr(),
            false,
            a.as_ptr(),
            op_a,
            b.as_ptr(),
            op_b,
        );
        c.set_len(m * n);
    }
    c
}

/// The nonlinearity a fused layer applies to its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// None: the last layer (logits, predicted noise) or a layer followed by a candle op.
    Identity,
    /// max(z, 0), as candle's relu (`f32::max`: NaN maps to 0); gradient g · 1[z > 0].
    Relu,
}

impl Act {
    #[inline]
    fn apply(self, y: &mut [f32]) {
        if self == Act::Relu {
            relu_in_place(y);
        }
    }
}

/// y (n × out) = act(x Wᵀ + b) for x (n × inp) and W (out × inp), row-major.
pub(crate) fn dense_forward(
    x: &[f32],
    n: usize,
    inp: usize,
    w: &[f32],
    b: &[f32],
    act: Act,
) -> Vec<f32> {
    let mut y = Vec::new();
    dense_forward_into(x, n, inp, w, b, act, &mut y);
    y
}

/// [`dense_forward`] into `y` (cleared first; its allocation is reused).
pub(crate) fn dense_forward_into(
    x: &[f32],
    n: usize,
    inp: usize,
    w: &[f32],
    b: &[f32],
    act: Act,
    y: &mut Vec<f32>,
) {
    let out = b.len();
    y.clear();
    y.reserve(n * out);
    for _ in 0..n {
        y.extend_from_slice(b);
    }
    gemm_into(n, out, inp, y, true, x, Op::N, w, Op::T);
    act.apply(y);
}

/// A relu MLP's training pass on the host: forward keeping every activation, then the
/// backward pass from d loss / d output, into reused buffers.
///
/// Hidden layers apply relu, the last none. `layers` are read in place from the
/// parameters' storages; the gradients land in `dw[i]`, `db[i]` (row-major, shaped like
/// W_i and b_i), and, when asked, d loss / d input in `d_input`.
#[derive(Default)]
pub(crate) struct MlpPass {
    /// The output of each layer (the last: the net's output).
    pub(crate) acts: Vec<Vec<f32>>,
    pub(crate) dw: Vec<Vec<f32>>,
    pub(crate) db: Vec<Vec<f32>>,
    pub(crate) d_input: Vec<f32>,
    /// d loss / d pre-activation of the layer being differentiated, and the next one down.
    dz: Vec<f32>,
    dz_next: Vec<f32>,
}

impl MlpPass {
    /// The forward pass of a batch of n rows; the output is `self.output()`.
    pub(crate) fn forward(&mut self, layers: &[HostLayer], input: &[f32], n: usize) {
        self.acts.resize_with(layers.len(), Vec::new);
        let last = layers.len() - 1;
        for (i, l) in layers.iter().enumerate() {
            let act = if i < last { Act::Relu } else { Act::Identity };
            let (below, rest) = self.acts.split_at_mut(i);
            let x: &[f32] = if i == 0 { input } else { &below[i - 1] };
            dense_forward_into(x, n, l.inp, l.w, l.b, act, &mut rest[0]);
        }
    }

    /// The net's output after [`MlpPass::forward`], n × out row-major.
    pub(crate) fn output(&self) -> &[f32] {
        self.acts.last().map_or(&[], |v| v.as_slice())
    }

    /// The output's gradient buffer, to be filled with d loss / d output (n × out) before
    /// [`MlpPass::backward`].
    pub(crate) fn output_grad(&mut self) -> &mut Vec<f32> {
        &mut self.dz
    }

    /// The backward pass after [`MlpPass::forward`] and [`MlpPass::output_grad`].
    pub(crate) fn backward(
        &mut self,
        layers: &[HostLayer],
        input: &[f32],
        n: usize,
        need_input_grad: bool,
    ) {
        self.dw.resize_with(layers.len(), Vec::new);
        self.db.resize_with(layers.len(), Vec::new);
        for i in (0..layers.len()).rev() {
            let l = &layers[i];
            let x: &[f32] = if i == 0 { input } else { &self.acts[i - 1] };
            let db = &mut self.db[i];
            db.resize(l.out, 0.0);
            column_sums(db, &self.dz);
            let dw = &mut self.dw[i];
            dw.resize(l.out * l.inp, 0.0);
            gemm_into(l.out, l.inp, n, dw, false, &self.dz, Op::T, x, Op::N);
            if i > 0 || need_input_grad {
                let next = if i > 0 {
                    &mut self.dz_next
                } else {
                    &mut self.d_input
                };
                next.resize(n * l.inp, 0.0);
                gemm_into(n, l.inp, l.out, next, false, &self.dz, Op::N, l.w, Op::N);
                if i > 0 {
                    mask_where_off(&mut self.dz_next, x);
                    std::mem::swap(&mut self.dz, &mut self.dz_next);
                }
            }
        }
    }
}

/// The contiguous f32 elements of a tensor, borrowed from its storage when possible.
pub(crate) fn f32_elements<'a>(
    storage: &'a Storage,
    layout: &Layout,
) -> candle_core::Result<Cow<'a, [f32]>> {
    match storage {
        Storage::Cpu(CpuStorage::F32(d)) => Ok(elements(d, layout)),
        Storage::Cpu(other) => {
            candle_core::bail!("fused kernels need f32 tensors, got {:?}", other.dtype())
        }
        _ => candle_core::bail!("fused kernels run on the CPU only"),
    }
}

/// Calls `f` with the f32 elements of `t` (row-major), without copying a contiguous tensor.
pub(crate) fn with_f32<R>(
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let data = f32_elements(&storage, layout)?;
    f(&data)
}

fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<Cow<'a, [f32]>> {
    match s {
        CpuStorage::F32(d) => Ok(elements(d, l)),
        other => candle_core::bail!("fused-dense: {what} must be f32, got {:?}", other.dtype()),
    }
}

/// act(x Wᵀ + b) with an analytic backward pass (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FusedDense(pub(crate) Act);

/// y = act(x Wᵀ + b) for an f32 CPU batch x (n × in), W (out × in), b (out,).
pub(crate) fn dense(x: &Tensor, w: &Tensor, b: &Tensor, act: Act) -> candle_core::Result<Tensor> {
    if x.track_op() || w.track_op() || b.track_op() {
        x.apply_op3(w, b, FusedDense(act))
    } else {
        x.apply_op3_no_bwd(w, b, &FusedDense(act))
    }
}

impl CustomOp3 for FusedDense {
    fn name(&self) -> &'static str {
        "fused-dense"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, inp) = match l1.dims() {
            &[n, i] => (n, i),
            d => candle_core::bail!("fused-dense: x must be (n, in), got {d:?}"),
        };
        let out = match l2.dims() {
            &[o, i] if i == inp => o,
            d => candle_core::bail!("fused-dense: W must be (out, {inp}), got {d:?}"),
        };
        if l3.dims() != [out] {
            candle_core::bail!("fused-dense: b must be ({out},), got {:?}", l3.dims());
        }
        let x = cpu_f32(s1, l1, "x")?;
        let w = cpu_f32(s2, l2, "W")?;
        let b = cpu_f32(s3, l3, "b")?;
        let y = dense_forward(&x, n, inp, &w, &b, self.0);
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (need_x, need_w, need_b) = (x.track_op(), w.track_op(), b.track_op());
        if !(need_x || need_w || need_b) {
            return Ok((None, None, None));
        }
        let (n, inp) = x.dims2()?;
        let out = w.dim(0)?;
        // dz = g ⊙ act′(z); for relu, z > 0 exactly where y = relu(z) > 0.
        let mut dz: Vec<f32> = with_f32(grad_res, |g| Ok(g.to_vec()))?;
        if self.0 == Act::Relu {
            with_f32(res, |y| {
                mask_where_off(&mut dz, y);
                Ok(())
            })?;
        }
        let dev = Device::Cpu;
        let db = if need_b {
            let mut db = vec![0f32; out];
            column_sums(&mut db, &dz);
            Some(Tensor::from_vec(db, out, &dev)?)
        } else {
            None
        };
        let dw = if need_w {
            let dw = with_f32(x, |x| Ok(gemm_new(out, inp, n, &dz, Op::T, x, Op::N)))?;
            Some(Tensor::from_vec(dw, (out, inp), &dev)?)
        } else {
            None
        };
        let dx = if need_x {
            let dx = with_f32(w, |w| Ok(gemm_new(n, inp, out, &dz, Op::N, w, Op::N)))?;
            Some(Tensor::from_vec(dx, (n, inp), &dev)?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// One dense layer of a host MLP: W (out × inp, row-major) and b (out).
pub(crate) struct HostLayer<'a> {
    pub(crate) w: &'a [f32],
    pub(crate) b: &'a [f32],
    pub(crate) out: usize,
    pub(crate) inp: usize,
}

/// ∇_x Σ_i log softmax(f([x_i; e]))[y_i] for the relu MLP `layers` whose first layer takes
/// [x; e] (x: n × d, e: the embedding row of step t, shared by the batch): n × d.
///
/// Forward, then the analytic backward: d logits = onehot(y) − softmax, back through each
/// layer (dh = dz W, masked where the relu was off), and through the x columns of the
/// first layer. Since e is the same for every row, the first layer's e columns fold into
/// a constant c = b₀ + W₀[:, d:] e, computed once: the first layer costs 2·d per unit and
/// sample instead of 2·(d + E). Rows are independent, so row i is ∇ log p(y_i | x_i).
pub(crate) fn classifier_input_grad(
    x: &[f32],
    n: usize,
    d: usize,
    e: &[f32],
    layers: &[HostLayer],
    targets: &[u32],
) -> Vec<f32> {
    let first = &layers[0];
    let (h0, inp) = (first.out, first.inp);
    debug_assert_eq!(inp, d + e.len());
    // c = b0 + W0[:, d:] e, and W0[:, :d] transposed (d × h0) for the products with x.
    let c: Vec<f32> = (0..h0)
        .map(|j| {
            let row = &first.w[j * inp + d..(j + 1) * inp];
            let dot = row.iter().zip(e).fold(0f32, |acc, (w, e)| acc + w * e);
            first.b[j] + dot
        })
        .collect();
    let mut w0x = vec![0f32; d * h0];
    for j in 0..h0 {
        for k in 0..d {
            w0x[k * h0 + j] = first.w[j * inp + k];
        }
    }
    // Forward, keeping each hidden activation for the relu masks.
    let mut z = Vec::with_capacity(n * h0);
    for _ in 0..n {
        z.extend_from_slice(&c);
    }
    gemm_into(n, h0, d, &mut z, true, x, Op::N, &w0x, Op::N);
    Act::Relu.apply(&mut z);
    let mut hidden = vec![z];
    let last = layers.len() - 1;
    for (i, l) in layers.iter().enumerate().skip(1) {
        let act = if i < last { Act::Relu } else { Act::Identity };
        let h = dense_forward(&hidden[i - 1], n, l.inp, l.w, l.b, act);
        hidden.push(h);
    }
    // d log softmax(l)[y] / d l = onehot(y) − softmax(l), in place on the logits.
    let classes = layers[last].out;
    let mut g = hidden.pop().expect("at least one layer");
    for (row, &y) in g.chunks_exact_mut(classes).zip(targets) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for (c, v) in row.iter_mut().enumerate() {
            let p = *v / sum;
            *v = if c == y as usize { 1.0 - p } else { -p };
        }
    }
    // Backward: through layer i to the activation below it, masked by its relu.
    for i in (1..=last).rev() {
        let l = &layers[i];
        let mut dh = gemm_new(n, l.inp, l.out, &g, Op::N, l.w, Op::N);
        mask_where_off(&mut dh, &hidden[i - 1]);
        g = dh;
    }
    // Through the x columns of the first layer: dx = dz0 W0[:, :d].
    gemm_new(n, d, h0, &g, Op::N, &w0x, Op::T)
}

/// True when the fused kernels can take `x`: f32 on the CPU.
pub(crate) fn fusable(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && x.device().is_cpu()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn tensor(rows: usize, cols: usize, seed: f32) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| (i as f32 * 0.7311 + seed).sin() * 1.3)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn dense_matches_candle_ops_forward_and_backward() {
        for act in [Act::Identity, Act::Relu] {
            let x = Var::from_tensor(&tensor(37, 5, 0.3)).unwrap();
            let w = Var::from_tensor(&tensor(11, 5, 1.1)).unwrap();
            let b = Var::from_tensor(&tensor(1, 11, 2.0).flatten_all().unwrap()).unwrap();
            let probe = tensor(37, 11, 4.0);
            let ours = dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
            let mut theirs = x
                .as_tensor()
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap();
            if act == Act::Relu {
                theirs = theirs.relu().unwrap();
            }
            close(&ours, &theirs);
            let g1 = (ours * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (theirs * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &w, &b] {
                close(
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
            }
        }
    }

    #[test]
    fn untracked_input_gets_no_gradient_and_threads_do_not_change_bits() {
        let x = tensor(600, 128, 0.1);
        let w = Var::from_tensor(&tensor(128, 128, 0.2)).unwrap();
        let b = Var::from_tensor(&tensor(1, 128, 0.5).flatten_all().unwrap()).unwrap();
        let y = dense(&x, w.as_tensor(), b.as_tensor(), Act::Relu).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert!(g.get(&x).is_none());
        assert!(g.get(w.as_tensor()).is_some() && g.get(b.as_tensor()).is_some());
        // 600·128·128 is above PARALLEL_MIN_FLOPS: compare 1 and 2 threads bit for bit.
        let (xs, ws) = (
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            w.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
        );
        let bs = vec![0.25f32; 128];
        let run = |threads: usize| {
            let mut c = vec![0f32; 600 * 128];
            c.iter_mut()
                .zip(bs.iter().cycle())
                .for_each(|(c, b)| *c = *b);
            unsafe {
                gemm::gemm(
                    600,
                    128,
                    128,
                    c.as_mut_ptr(),
                    1,
                    128,
                    true,
                    xs.as_ptr(),
                    1,
                    128,
                    ws.as_ptr(),
                    128,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    if threads > 1 {
                        Parallelism::Rayon(threads)
                    } else {
                        Parallelism::None
                    },
                )
            };
            c
        };
        assert_eq!(run(1), run(2));
        let fused = dense_forward(&xs, 600, 128, &ws, &bs, Act::Identity);
        assert_eq!(fused, run(1));
    }
}
