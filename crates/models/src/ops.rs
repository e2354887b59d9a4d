//! A relu whose backward pass is one fused loop.
//!
//! candle's built-in relu differentiates as `grad * (x >= 0).to_dtype()`: a zeros tensor,
//! a byte-wise compare, a cast and a multiply, which made up about 15% of a training step
//! of these small MLPs. This op computes relu(x) = max(x, 0) exactly as candle does
//! (`f32::max`, so NaN maps to 0), and its gradient g · 1[x > 0] in one pass (NNlib's
//! convention at x = 0; candle's built-in passes the gradient there).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

/// relu(x) = max(x, 0) with a fused backward pass; f32 and f64 on the CPU.
pub(crate) fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.apply_op1(Relu)
}

/// The elements of a storage in logical (row-major) order, copied only when not contiguous.
pub(crate) fn elements<'a, T: Copy>(data: &'a [T], layout: &Layout) -> std::borrow::Cow<'a, [T]> {
    if let Some((start, end)) = layout.contiguous_offsets() {
        return std::borrow::Cow::Borrowed(&data[start..end]);
    }
    let (dims, stride) = (layout.dims(), layout.stride());
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
    std::borrow::Cow::Owned(out)
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "fused-relu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match storage {
            CpuStorage::F32(d) => {
                CpuStorage::F32(elements(d, layout).iter().map(|v| v.max(0.0)).collect())
            }
            CpuStorage::F64(d) => {
                CpuStorage::F64(elements(d, layout).iter().map(|v| v.max(0.0)).collect())
            }
            other => candle_core::bail!("fused-relu: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(grad_res, &ReluGrad)?))
    }
}

/// (x, g) ↦ g · 1[x > 0].
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "fused-relu-grad"
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
                "fused-relu-grad: shapes {:?} and {:?} differ",
                l1.shape(),
                l2.shape()
            );
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => CpuStorage::F32(
                elements(x, l1)
                    .iter()
                    .zip(elements(g, l2).iter())
                    .map(|(&x, &g)| if x > 0.0 { g } else { 0.0 })
                    .collect(),
            ),
            (CpuStorage::F64(x), CpuStorage::F64(g)) => CpuStorage::F64(
                elements(x, l1)
                    .iter()
                    .zip(elements(g, l2).iter())
                    .map(|(&x, &g)| if x > 0.0 { g } else { 0.0 })
                    .collect(),
            ),
            (a, b) => candle_core::bail!(
                "fused-relu-grad: unsupported dtypes {:?}, {:?}",
                a.dtype(),
                b.dtype()
            ),
        };
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_relu_forward_and_backward() {
        let v: Vec<f32> = (0..60).map(|i| ((i * 37) % 23) as f32 - 11.5).collect();
        let x = Var::from_tensor(&Tensor::from_vec(v, (6, 10), &Device::Cpu).unwrap()).unwrap();
        let w = Tensor::arange(0f32, 60.0, &Device::Cpu)
            .unwrap()
            .reshape((6, 10))
            .unwrap();
        let ours = relu(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().relu().unwrap();
        assert_eq!(
            ours.to_vec2::<f32>().unwrap(),
            theirs.to_vec2::<f32>().unwrap()
        );
        let g_ours = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        // No element is exactly 0, where the two conventions differ.
        assert_eq!(
            g_ours.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
            g_theirs
                .get(x.as_tensor())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        );
        // Non-contiguous input: a transposed view.
        let t = x.as_tensor().t().unwrap();
        assert_eq!(
            relu(&t).unwrap().to_vec2::<f32>().unwrap(),
            t.relu().unwrap().to_vec2::<f32>().unwrap()
        );
    }
}
