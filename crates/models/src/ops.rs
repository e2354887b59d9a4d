//! The candle glue of the fused kernels: the dense layer y = act(x Wᵀ + b) ([`dense`]),
//! the targets' summed log-probabilities ([`log_prob_at`]) and the mean squared error
//! ([`mean_squared_error`]), each one candle custom op whose backward pass candle's
//! autograd calls.
//!
//! A dense layer through candle's generic ops is a transpose, a matmul, a bias add and an
//! activation forward, and about twice as many ops backward, each allocating (and often
//! zero-filling) its output; for these sizes (batch 128–500, width ≤ 128) that per-op
//! traffic cost as much as the arithmetic. One op per layer keeps a training step at a
//! handful of graph nodes. The arithmetic is in `kernels.rs` (plain slices); this module
//! only reads candle's storages and builds tensors. Its slow reference in plain candle ops
//! is `reference.rs`.

use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor,
};

use crate::kernels;
pub(crate) use crate::kernels::Act;

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

/// y = act(x Wᵀ + b) for an f32 CPU batch x (n × in), W (out × in), b (out,), as one op.
///
/// Forward: [`kernels::dense_forward`]. Backward (candle's autograd calls
/// [`CustomOp3::bwd`]): dz = g ⊙ act′(z), then only what a tracked argument needs:
/// db = Σ_rows dz when b is tracked, dW = dzᵀ x when W is, dx = dz W when x is.
pub(crate) fn dense(x: &Tensor, w: &Tensor, b: &Tensor, act: Act) -> candle_core::Result<Tensor> {
    if x.track_op() || w.track_op() || b.track_op() {
        x.apply_op3(w, b, FusedDense(act))
    } else {
        x.apply_op3_no_bwd(w, b, &FusedDense(act))
    }
}

/// The op of [`dense`]: act(x Wᵀ + b) with its analytic backward pass.
#[derive(Debug, Clone, Copy)]
struct FusedDense(Act);

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
        let y = kernels::dense_forward(&x, n, inp, &w, &b, self.0);
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
        let dev = Device::Cpu;
        // The layer's storages stay locked for reading while the gradients are computed.
        with_f32(grad_res, |g| {
            with_f32(res, |y| {
                let dz = kernels::act_grad(g, y, self.0);
                let db = if need_b {
                    Some(Tensor::from_vec(kernels::bias_grad(&dz, out), out, &dev)?)
                } else {
                    None
                };
                let dw = if need_w {
                    let dw = with_f32(x, |x| Ok(kernels::weight_grad(&dz, x, n, out, inp)))?;
                    Some(Tensor::from_vec(dw, (out, inp), &dev)?)
                } else {
                    None
                };
                let dx = if need_x {
                    let dx = with_f32(w, |w| Ok(kernels::input_grad(&dz, w, n, out, inp)))?;
                    Some(Tensor::from_vec(dx, (n, inp), &dev)?)
                } else {
                    None
                };
                Ok((dx, dw, db))
            })
        })
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

/// The classifier's input [x_i, table[t_i]] (n × (d + E)) for f32 CPU x (n × d), an
/// embedding table (T × E) and u32 row indices t (n,), as one op: what `index_select`
/// and `cat` compute. Backward: x's part of the gradient when x is tracked, and the table's
/// gradient (each row's E columns added to row t_i) when the table is.
pub(crate) fn embed_concat(x: &Tensor, table: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
    if x.track_op() || table.track_op() {
        x.apply_op3(table, t, EmbedConcat)
    } else {
        x.apply_op3_no_bwd(table, t, &EmbedConcat)
    }
}

struct EmbedConcat;

impl CustomOp3 for EmbedConcat {
    fn name(&self) -> &'static str {
        "embed-concat"
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
        let (n, d) = match l1.dims() {
            &[n, d] => (n, d),
            dims => candle_core::bail!("embed-concat: x must be (n, d), got {dims:?}"),
        };
        let (rows, e) = match l2.dims() {
            &[r, e] => (r, e),
            dims => candle_core::bail!("embed-concat: the table must be (T, E), got {dims:?}"),
        };
        let index = match s3 {
            CpuStorage::U32(t) => elements(t, l3),
            other => {
                candle_core::bail!("embed-concat: indices must be u32, got {:?}", other.dtype())
            }
        };
        if index.len() != n {
            candle_core::bail!("embed-concat: {} indices for {n} rows", index.len());
        }
        if let Some(&t) = index.iter().find(|&&t| t as usize >= rows) {
            candle_core::bail!("embed-concat: index {t} is outside 0..{rows}");
        }
        let (x, table) = (cpu_f32(s1, l1, "x")?, cpu_f32(s2, l2, "the table")?);
        let out = kernels::concat_rows(&x, d, &table, e, &index);
        Ok((CpuStorage::F32(out), Shape::from((n, d + e))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        table: &Tensor,
        t: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = x.dims2()?;
        let (rows, e) = table.dims2()?;
        let index = t.to_vec1::<u32>()?;
        let needed = (x.track_op(), table.track_op());
        let (dx, dtable) = with_f32(grad_res, |g| {
            Ok(kernels::concat_rows_grad(g, (d, e), &index, rows, needed))
        })?;
        let dev = Device::Cpu;
        let dx = dx
            .map(|dx| Tensor::from_vec(dx, (n, d), &dev))
            .transpose()?;
        let dtable = dtable
            .map(|dt| Tensor::from_vec(dt, (rows, e), &dev))
            .transpose()?;
        Ok((dx, dtable, None))
    }
}
