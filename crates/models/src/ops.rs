//! The candle glue of the fused kernels: a whole net ([`mlp`], the classifier's
//! [`classifier_mlp`] with its embedding input), the targets' summed log-probabilities
//! ([`log_prob_at`]) and the mean squared error ([`mean_squared_error`]), each one candle
//! custom op whose backward pass candle's autograd calls.
//!
//! A dense layer through candle's generic ops is a transpose, a matmul, a bias add and an
//! activation forward, and about twice as many ops backward, each allocating (and often
//! zero-filling) its output; for these sizes (batch 128–500, width ≤ 128) that per-op
//! traffic cost as much as the arithmetic. One op per layer still paid, per layer, a
//! fresh buffer for every activation and candle's gradient accumulation (a zero tensor
//! plus an add) for every activation and parameter; one op per net, on its parameters
//! packed into one tensor, keeps its activations in reused buffers (`kernels::Trace`)
//! and leaves candle one gradient to accumulate for the whole net. The arithmetic is in
//! `kernels.rs` (plain slices); this module
//! only reads candle's storages and builds tensors. Its slow reference in plain candle ops
//! is `reference.rs`.

use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor,
};

use crate::kernels;
pub(crate) use crate::kernels::{Act, Hidden};

/// The elements of a storage in logical (row-major) order, copied only when not contiguous.
pub(crate) fn elements<'a, T: Copy>(data: &'a [T], layout: &Layout) -> Cow<'a, [T]> {
    if let Some((start, end)) = layout.contiguous_offsets() {
        return Cow::Borrowed(&data[start..end]);
    }
    let (dims, stride) = (layout.dims(), layout.stride());
    if let (&[rows, cols], &[row_stride, 1]) = (dims, stride) {
        // A matrix whose rows are contiguous (a column range, as `narrow(1, ..)` gives):
        // row by row.
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let start = layout.start_offset() + r * row_stride;
            out.extend_from_slice(&data[start..start + cols]);
        }
        return Cow::Owned(out);
    }
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; dims.len()];
    for _ in 0..n {
        let offset: usize = index.iter().zip(stride).map(|(i, s)| i * s).sum();
        out.push(data[layout.start_offset() + offset]);
        // Odometer increment, last dimension fastest.
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Cow::Owned(out)
}

/// The contiguous f32 elements of a tensor's storage, borrowed when possible.
fn f32_elements<'a>(storage: &'a Storage, layout: &Layout) -> candle_core::Result<Cow<'a, [f32]>> {
    match storage {
        Storage::Cpu(CpuStorage::F32(d)) => Ok(elements(d, layout)),
        Storage::Cpu(other) => {
            candle_core::bail!(
                "the fused kernels need f32 tensors, got {:?}",
                other.dtype()
            )
        }
        _ => candle_core::bail!("the fused kernels run on the CPU only"),
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

/// True for an f32 tensor on the CPU (what every net of this crate computes on).
pub(crate) fn is_f32_cpu(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && x.device().is_cpu()
}

fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<Cow<'a, [f32]>> {
    match s {
        CpuStorage::F32(d) => Ok(elements(d, l)),
        other => candle_core::bail!("fused-dense: {what} must be f32, got {:?}", other.dtype()),
    }
}

/// Where a net's dense layers lie in its packed parameters: from `start` on, layer by
/// layer input to output, W (out × in, row-major) then b (out,).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Packing {
    /// `(out, in)` of every layer.
    pub(crate) shapes: Vec<(usize, usize)>,
    /// Where the first layer's W begins (after the classifier's embedding table).
    pub(crate) start: usize,
}

impl Packing {
    /// The total number of packed values (what comes before `start` included).
    pub(crate) fn len(&self) -> usize {
        self.start + self.shapes.iter().map(|&(o, i)| o * i + o).sum::<usize>()
    }

    /// The offsets of every layer's W and b.
    pub(crate) fn offsets(&self) -> Vec<(usize, usize)> {
        let mut at = self.start;
        self.shapes
            .iter()
            .map(|&(o, i)| {
                let w = at;
                at += o * i + o;
                (w, w + o * i)
            })
            .collect()
    }

    fn layers<'a>(&self, p: &'a [f32]) -> Vec<kernels::Layer<'a>> {
        self.shapes
            .iter()
            .zip(self.offsets())
            .map(|(&(o, i), (w, b))| kernels::Layer {
                w: &p[w..w + o * i],
                b: &p[b..b + o],
                inp: i,
            })
            .collect()
    }

    /// Every layer's (dW, db) as disjoint slices of `dp`, the packed gradient from `start` on.
    fn grads<'a>(&self, dp: &'a mut [f32]) -> Vec<(&'a mut [f32], &'a mut [f32])> {
        let mut rest = dp;
        let mut out = Vec::with_capacity(self.shapes.len());
        for &(o, i) in &self.shapes {
            let (layer, tail) = std::mem::take(&mut rest).split_at_mut(o * i + o);
            out.push(layer.split_at_mut(o * i));
            rest = tail;
        }
        out
    }

    fn check(&self, l: &Layout, what: &str) -> candle_core::Result<()> {
        if l.dims() != [self.len()] {
            candle_core::bail!(
                "{what}: the packed parameters must be ({},), got {:?}",
                self.len(),
                l.dims()
            );
        }
        Ok(())
    }
}

/// The denoiser's MLP on an f32 CPU batch x (n × in of the first layer) with its packed
/// parameters `params` ([`Packing`]), as one op: every layer act(h Wᵀ + b), `hidden` after
/// all but the last ([`kernels::mlp_forward`]).
///
/// Backward (candle's autograd calls [`CustomOp2::bwd`]): [`kernels::mlp_backward`] from
/// the activations the forward pass kept, then only what a tracked argument needs: the
/// packed parameters' gradient (every dW, db) when `params` is tracked, dx when x is.
pub(crate) fn mlp(
    x: &Tensor,
    params: &Tensor,
    packing: &Packing,
    hidden: Hidden,
) -> candle_core::Result<Tensor> {
    let track = x.track_op() || params.track_op();
    let op = NetOp::new(packing, hidden, None, track);
    if track {
        x.apply_op2(params, op)
    } else {
        x.apply_op2_no_bwd(params, &op)
    }
}

/// The classifier's logits for f32 CPU x (n × d) with its packed parameters `params`
/// (the embedding table T × E first, then the layers: [`Packing`]) and u32 step indices,
/// as one op.
///
/// Per row (`shared == false`, `index` n values t_i): the MLP on [x_i, table[t_i]]. Shared
/// step (`shared == true`, `index` one value t): the embedding folded into the first layer,
/// [x, e] W₀ᵀ + b₀ = x W₀[:, :d]ᵀ + c with c = e W₀[:, d:]ᵀ + b₀ computed once, so the
/// first layer costs d rather than d + E multiply-adds a unit and row. Backward: as [`mlp`],
/// the table's rows (and in the shared case W₀[:, d:], from c) included in the packed
/// gradient.
pub(crate) fn classifier_mlp(
    x: &Tensor,
    params: &Tensor,
    index: &Tensor,
    packing: &Packing,
    hidden: Hidden,
    embedding: Embedding,
) -> candle_core::Result<Tensor> {
    let track = x.track_op() || params.track_op();
    let op = NetOp::new(packing, hidden, Some(embedding), track);
    if track {
        x.apply_op3(params, index, op)
    } else {
        x.apply_op3_no_bwd(params, index, &op)
    }
}

/// The classifier's embedding input: the table (`rows` × `width`) at the start of the
/// packed parameters, the data width `dim`, and whether one step is shared by the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedding {
    /// d, the width of x.
    pub(crate) dim: usize,
    /// T, the table's rows (one a step).
    pub(crate) rows: usize,
    /// E, the table's width.
    pub(crate) width: usize,
    /// One step for the whole batch (the index tensor holds one value) instead of one a row.
    pub(crate) shared: bool,
}

/// The op of [`mlp`] and [`classifier_mlp`]; its forward pass keeps what backward needs.
struct NetOp {
    packing: Packing,
    hidden: Hidden,
    embedding: Option<Embedding>,
    /// Whether backward may follow (else nothing is kept).
    keep: bool,
    trace: Mutex<kernels::Trace>,
    /// The classifier's per-row input [x_i, table[t_i]], kept for the first layer's dW.
    input: Mutex<Vec<f32>>,
}

impl Drop for NetOp {
    fn drop(&mut self) {
        let input = self.input.get_mut().unwrap_or_else(|e| e.into_inner());
        kernels::recycle(std::mem::take(input));
    }
}

/// The rows of x (n × d), checked.
fn rows_of(l: &Layout, width: usize, what: &str) -> candle_core::Result<usize> {
    match l.dims() {
        &[n, w] if w == width => Ok(n),
        d => candle_core::bail!("{what}: x must be (n, {width}), got {d:?}"),
    }
}

/// The shared-step first layer: W₀[:, :d] (out × d, copied) and c = e W₀[:, d:]ᵀ + b₀.
fn folded_first_layer(
    first: kernels::Layer<'_>,
    e: Embedding,
    row: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (d, w) = (e.dim, e.width);
    let out = first.b.len();
    let mut w_x = Vec::with_capacity(out * d);
    let mut w_e = Vec::with_capacity(out * w);
    for r in first.w.chunks_exact(d + w) {
        w_x.extend_from_slice(&r[..d]);
        w_e.extend_from_slice(&r[d..]);
    }
    let c = kernels::dense_forward(row, 1, w, &w_e, first.b, Act::Identity);
    (w_x, c)
}

impl NetOp {
    fn new(packing: &Packing, hidden: Hidden, embedding: Option<Embedding>, keep: bool) -> Self {
        Self {
            packing: packing.clone(),
            hidden,
            embedding,
            keep,
            trace: Mutex::new(kernels::Trace::default()),
            input: Mutex::new(Vec::new()),
        }
    }

    fn forward(
        &self,
        x: &[f32],
        n: usize,
        p: &[f32],
        index: Option<&[u32]>,
    ) -> candle_core::Result<Vec<f32>> {
        let mut layers = self.packing.layers(p);
        let mut trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        let trace = self.keep.then_some(&mut *trace);
        let (Some(e), Some(index)) = (self.embedding, index) else {
            return Ok(kernels::mlp_forward(x, n, &layers, self.hidden, trace));
        };
        let table = &p[..e.rows * e.width];
        if e.shared {
            let t = index[0] as usize;
            let (w_x, c) = folded_first_layer(layers[0], e, &table[t * e.width..(t + 1) * e.width]);
            layers[0] = kernels::Layer {
                w: &w_x,
                b: &c,
                inp: e.dim,
            };
            return Ok(kernels::mlp_forward(x, n, &layers, self.hidden, trace));
        }
        let input = kernels::concat_rows(x, e.dim, table, e.width, index);
        let y = kernels::mlp_forward(&input, n, &layers, self.hidden, trace);
        if self.keep {
            *self.input.lock().unwrap_or_else(|e| e.into_inner()) = input;
        } else {
            kernels::recycle(input);
        }
        Ok(y)
    }

    /// (dx, dparams), each when asked.
    fn backward(
        &self,
        x: &Tensor,
        params: &Tensor,
        index: Option<&[u32]>,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (need_x, need_p) = (x.track_op(), params.track_op());
        if !(need_x || need_p) {
            return Ok((None, None));
        }
        let (n, width) = x.dims2()?;
        let trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        let mut dp = if need_p {
            vec![0f32; self.packing.len()]
        } else {
            Vec::new()
        };
        let dx = with_f32(params, |p| {
            with_f32(x, |xs| {
                with_f32(grad_res, |g| {
                    Ok(self.backward_slices(xs, n, p, index, g, &trace, need_x, &mut dp))
                })
            })
        })?;
        let dev = Device::Cpu;
        let dx = dx
            .map(|dx| Tensor::from_vec(dx, (n, width), &dev))
            .transpose()?;
        let dp = need_p
            .then(|| Tensor::from_vec(dp, self.packing.len(), &dev))
            .transpose()?;
        Ok((dx, dp))
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_slices(
        &self,
        x: &[f32],
        n: usize,
        p: &[f32],
        index: Option<&[u32]>,
        g: &[f32],
        trace: &kernels::Trace,
        need_x: bool,
        dp: &mut [f32],
    ) -> Option<Vec<f32>> {
        let need_p = !dp.is_empty();
        let mut layers = self.packing.layers(p);
        let first = layers[0];
        let folded = match (self.embedding, index) {
            (Some(e), Some(index)) if e.shared => {
                let t = index[0] as usize;
                let row = &p[t * e.width..(t + 1) * e.width];
                Some((e, t, row, folded_first_layer(first, e, row)))
            }
            _ => None,
        };
        if let Some((e, _, _, (w_x, c))) = &folded {
            layers[0] = kernels::Layer {
                w: w_x,
                b: c,
                inp: e.dim,
            };
        }
        let (table_grad, mut grads) = if need_p {
            let (table, layer_grads) = dp.split_at_mut(self.packing.start);
            (table, self.packing.grads(layer_grads))
        } else {
            (&mut [][..], Vec::new())
        };
        let rest = if need_p { Some(&mut grads[1..]) } else { None };
        let dz = kernels::mlp_backward(g, n, &layers, self.hidden, trace, rest);
        let out0 = first.b.len();
        let dx = match (self.embedding, &folded) {
            (None, _) => {
                if need_p {
                    let (dw, db) = &mut grads[0];
                    kernels::layer_param_grads(&dz, x, n, first.inp, (dw, db));
                }
                need_x.then(|| kernels::first_input_grad(&dz, first, n))
            }
            (Some(_), Some((e, t, row, (w_x, _)))) => {
                let (e, t) = (*e, *t);
                if need_p {
                    let (d, w) = (e.dim, e.width);
                    let (dw, db) = &mut grads[0];
                    // dW₀[:, :d] = dz₀ᵀ x and db₀ = s = Σ_rows dz₀; through c:
                    // dW₀[j, d + k] = s_j e_k and d table[t][k] = Σ_j s_j W₀[j, d + k].
                    let mut dw_x = vec![0f32; out0 * d];
                    kernels::layer_param_grads(&dz, x, n, d, (&mut dw_x, db));
                    for (j, (dst, src)) in dw
                        .chunks_exact_mut(d + w)
                        .zip(dw_x.chunks_exact(d))
                        .enumerate()
                    {
                        dst[..d].copy_from_slice(src);
                        for (v, &ek) in dst[d..].iter_mut().zip(row.iter()) {
                            *v = db[j] * ek;
                        }
                    }
                    let dt = &mut table_grad[t * w..(t + 1) * w];
                    for (j, r) in first.w.chunks_exact(d + w).enumerate() {
                        for (v, &wk) in dt.iter_mut().zip(&r[d..]) {
                            *v += db[j] * wk;
                        }
                    }
                }
                need_x.then(|| {
                    kernels::first_input_grad(
                        &dz,
                        kernels::Layer {
                            w: w_x,
                            b: first.b,
                            inp: e.dim,
                        },
                        n,
                    )
                })
            }
            (Some(e), None) => {
                let input = self.input.lock().unwrap_or_else(|e| e.into_inner());
                if need_p {
                    let (dw, db) = &mut grads[0];
                    kernels::layer_param_grads(&dz, &input, n, first.inp, (dw, db));
                }
                let dinput = kernels::first_input_grad(&dz, first, n);
                let dx = kernels::concat_rows_grad(
                    &dinput,
                    (e.dim, e.width),
                    index.unwrap_or(&[]),
                    need_x,
                    need_p.then_some(table_grad),
                );
                kernels::recycle(dinput);
                dx
            }
        };
        kernels::recycle(dz);
        dx
    }
}

impl CustomOp2 for NetOp {
    fn name(&self) -> &'static str {
        "net"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let n = rows_of(l1, self.packing.shapes[0].1, "net")?;
        self.packing.check(l2, "net")?;
        let (x, p) = (cpu_f32(s1, l1, "x")?, cpu_f32(s2, l2, "the parameters")?);
        let y = self.forward(&x, n, &p, None)?;
        let out = self.packing.shapes.last().map_or(0, |s| s.0);
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.backward(x, params, None, grad_res)
    }
}

impl CustomOp3 for NetOp {
    fn name(&self) -> &'static str {
        "classifier-net"
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
        let Some(e) = self.embedding else {
            candle_core::bail!("classifier-net: no embedding");
        };
        let n = rows_of(l1, e.dim, "classifier-net")?;
        self.packing.check(l2, "classifier-net")?;
        let index = match s3 {
            CpuStorage::U32(t) => elements(t, l3),
            other => {
                candle_core::bail!(
                    "classifier-net: indices must be u32, got {:?}",
                    other.dtype()
                )
            }
        };
        let expected = if e.shared { 1 } else { n };
        if index.len() != expected {
            candle_core::bail!("classifier-net: {} indices for {n} rows", index.len());
        }
        if let Some(&t) = index.iter().find(|&&t| t as usize >= e.rows) {
            candle_core::bail!("classifier-net: index {t} is outside 0..{}", e.rows);
        }
        let (x, p) = (cpu_f32(s1, l1, "x")?, cpu_f32(s2, l2, "the parameters")?);
        let y = self.forward(&x, n, &p, Some(&index))?;
        let out = self.packing.shapes.last().map_or(0, |s| s.0);
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        index: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let index = index.to_vec1::<u32>()?;
        let (dx, dp) = self.backward(x, params, Some(&index), grad_res)?;
        Ok((dx, dp, None))
    }
}

/// Σ_i log softmax(z_i)[y_i] for f32 CPU logits z (n × C) and u32 targets y (n,), as one
/// op (a scalar): the log-likelihood of the targets, whose gradient in x is the guidance
/// gradient and whose negative mean is the cross-entropy.
///
/// The same value as `log_softmax`, `gather` and `sum_all` in candle ops, to f32
/// rounding; backward dz_i = g (onehot(y_i) − softmax(z_i)) in one pass.
///
/// `scale` multiplies the sum (−1/b gives the mean cross-entropy) inside the same op.
pub(crate) fn log_prob_at(z: &Tensor, targets: &Tensor, scale: f32) -> candle_core::Result<Tensor> {
    let op = LogProbAt {
        scale,
        softmax: Mutex::new(Vec::new()),
    };
    if z.track_op() {
        z.apply_op2(targets, op)
    } else {
        z.apply_op2_no_bwd(targets, &op)
    }
}

/// The op of [`log_prob_at`]; its forward pass keeps the softmax for the backward pass.
struct LogProbAt {
    /// The factor applied to the sum.
    scale: f32,
    softmax: Mutex<Vec<f32>>,
}

/// The logits' class count and the targets, checked against each other.
fn logits_and_targets<'a>(
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> candle_core::Result<(usize, Cow<'a, [u32]>)> {
    let (n, classes) = match l1.dims() {
        &[n, c] if c > 0 => (n, c),
        d => candle_core::bail!("log-prob-at: logits must be (n, C ≥ 1), got {d:?}"),
    };
    let targets = match s2 {
        CpuStorage::U32(t) => elements(t, l2),
        other => candle_core::bail!("log-prob-at: targets must be u32, got {:?}", other.dtype()),
    };
    if targets.len() != n {
        candle_core::bail!("log-prob-at: {} targets for {n} rows", targets.len());
    }
    if let Some(&c) = targets.iter().find(|&&c| c as usize >= classes) {
        candle_core::bail!("target class {c} is outside 0..{classes}");
    }
    Ok((classes, targets))
}

impl CustomOp2 for LogProbAt {
    fn name(&self) -> &'static str {
        "log-prob-at"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (classes, targets) = logits_and_targets(l1, s2, l2)?;
        let z = cpu_f32(s1, l1, "logits")?;
        let mut softmax = self.softmax.lock().unwrap_or_else(|e| e.into_inner());
        let total = kernels::log_prob_at(&z, classes, &targets, &mut softmax);
        Ok((CpuStorage::F32(vec![self.scale * total]), Shape::from(())))
    }

    fn bwd(
        &self,
        z: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if !z.track_op() {
            return Ok((None, None));
        }
        let g = self.scale * grad_res.to_scalar::<f32>()?;
        let classes = z.dim(1)?;
        let targets = targets.to_vec1::<u32>()?;
        let softmax = self.softmax.lock().unwrap_or_else(|e| e.into_inner());
        if softmax.len() != z.elem_count() {
            candle_core::bail!("log-prob-at: backward pass before the forward pass");
        }
        let dz = kernels::log_prob_at_grad(&softmax, classes, &targets, g);
        Ok((Some(Tensor::from_vec(dz, z.shape(), &Device::Cpu)?), None))
    }
}

/// mean((p − e)²) over every element of two f32 CPU tensors of one shape, as one op
/// (a scalar); backward 2 (p − e) / N · g, to p only (the noise e is data).
pub(crate) fn mean_squared_error(p: &Tensor, e: &Tensor) -> candle_core::Result<Tensor> {
    if p.track_op() {
        p.apply_op2(e, MeanSquaredError)
    } else {
        p.apply_op2_no_bwd(e, &MeanSquaredError)
    }
}

struct MeanSquaredError;

impl CustomOp2 for MeanSquaredError {
    fn name(&self) -> &'static str {
        "fused-mse"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "fused-mse: shapes {:?} and {:?} differ",
                l1.shape(),
                l2.shape()
            );
        }
        let (p, e) = (cpu_f32(s1, l1, "p")?, cpu_f32(s2, l2, "e")?);
        let loss = kernels::mean_squared_error(&p, &e);
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        p: &Tensor,
        e: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if !p.track_op() {
            return Ok((None, None));
        }
        let g = grad_res.to_scalar::<f32>()?;
        let dp = with_f32(p, |p| {
            with_f32(e, |e| Ok(kernels::mean_squared_error_grad(p, e, g)))
        })?;
        Ok((Some(Tensor::from_vec(dp, p.shape(), &Device::Cpu)?), None))
    }
}
