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
use std::cell::{Cell, RefCell};
use std::ops::Range;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Storage, Tensor};
use gemm::Parallelism;

use crate::ops::elements;

/// Products below this many multiply-adds (m·n·k) run on one thread: at batch 128 the
/// second thread's start-up cost more than it saved, and so it did for the 500-sample
/// sampling products (500·128·128 = 8.2 M; measured, see BENCHMARKS.md). Batches of
/// [`PIECES_FROM`] rows or more use the threads through [`by_pieces`] instead.
pub(crate) const PARALLEL_MIN_FLOPS: usize = 1 << 25;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    if m * n * k < PARALLEL_MIN_FLOPS || IN_PIECE.with(Cell::get) {
        return Parallelism::None;
    }
    match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    }
}

/// Defines `fn $name(args)` whose body is compiled for AVX-512 (with Rust ≥ 1.89, see
/// build.rs), for AVX2 + FMA and for the baseline, picked at run time. The workspace
/// builds for baseline x86-64 (SSE2), where these loops run 4 lanes wide; AVX2 runs 8 and
/// AVX-512 16.
///
/// Only for element-wise loops (and sums whose order does not depend on the vector width):
/// every lane computes the same IEEE operations in the same order whatever the width, and
/// Rust never contracts a multiply and an add into an FMA on its own (`mul_add` is one
/// rounding on every path), so every version gives the same bits.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[cfg(toydiff_avx512)]
                {
                    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                    unsafe fn v4($($arg: $ty),*) {
                        body($($arg),*)
                    }
                    if std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512vl")
                    {
                        // SAFETY: the CPU has the features v4 was compiled for.
                        return unsafe { v4($($arg),*) };
                    }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) {
                    body($($arg),*)
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

/// c = [c +] op(a) · op(b) on slices through gemm (see [`gemm_raw`]); checks the lengths.
#[allow(clippy::too_many_arguments)]
fn gemm_slices(
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

/// Widths up to this take the skinny kernels below rather than gemm (whose packing and
/// tiling cost more than the arithmetic for a 3-wide input or a 2-wide output).
const SKINNY: usize = 8;

/// Whether [`product`] takes a skinny kernel for these shapes.
fn is_skinny(m: usize, n: usize, k: usize, op_a: Op) -> bool {
    match op_a {
        Op::N => k <= SKINNY || n <= SKINNY,
        Op::T => m <= SKINNY || n <= SKINNY,
    }
}

multiversion! {
    /// c (m × n) += a (m × k) · b (k × n), all row-major, for small k: one FMA per
    /// element and k, in k order.
    fn skinny_k(c: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize) {
        for (crow, arow) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (kk, &av) in arow.iter().enumerate() {
                for (cv, &bv) in crow.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                    *cv = av.mul_add(bv, *cv);
                }
            }
        }
    }
}

/// The 16 lane sums acc[l] = Σ_i x[16i + l] · y[16i + l] over the whole 16-chunks of x
/// (multiply, then add: no FMA), the same bits on every path below.
fn lane_sums(x: &[f32], y: &[f32]) -> [f32; 16] {
    let chunks = x.len() / 16;
    assert!(y.len() >= chunks * 16);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX; every load reads 8 floats of a whole chunk.
            return unsafe { lane_sums_avx(x.as_ptr(), y.as_ptr(), chunks) };
        }
    }
    let mut acc = [0f32; 16];
    for (xs, ys) in x.chunks_exact(16).zip(y.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] += xs[l] * ys[l];
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn lane_sums_avx(x: *const f32, y: *const f32, chunks: usize) -> [f32; 16] {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for i in 0..chunks {
        let (p, q) = (x.add(16 * i), y.add(16 * i));
        lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(q)));
        hi = _mm256_add_ps(
            hi,
            _mm256_mul_ps(_mm256_loadu_ps(p.add(8)), _mm256_loadu_ps(q.add(8))),
        );
    }
    let mut out = [0f32; 16];
    _mm256_storeu_ps(out.as_mut_ptr(), lo);
    _mm256_storeu_ps(out.as_mut_ptr().add(8), hi);
    out
}

/// Σ x_i y_i: 16 lane sums ([`lane_sums`]), a fixed pairwise tree, then the tail in order.
///
/// Written with intrinsics because LLVM vectorised the portable 16-lane loop as 2-lane
/// pieces; every path gives the same bits.
#[inline]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = lane_sums(x, y);
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    let whole = x.len() / 16 * 16;
    x[whole..]
        .iter()
        .zip(&y[whole..])
        .fold(acc[0], |s, (&a, &b)| s + a * b)
}

/// c (m × n) += a (m × k) · bᵀ for b stored n × k, small n: one [`dot`] per element.
fn skinny_n(c: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize) {
    assert!(
        c.len().is_multiple_of(n.max(1)) && a.len() >= c.len() / n.max(1) * k && b.len() >= n * k
    );
    #[cfg(all(target_arch = "x86_64", toydiff_avx512))]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the lengths are checked above.
        return unsafe { skinny_n_avx512(c, a, b, n, k) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the lengths are checked above.
        return unsafe { skinny_n_avx(c, a, b, n, k) };
    }
    for (crow, arow) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
        for (j, cv) in crow.iter_mut().enumerate() {
            *cv += dot(arow, &b[j * k..(j + 1) * k]);
        }
    }
}

/// [`skinny_n`] in AVX-512 registers, the same bits as [`dot`] and [`skinny_n_avx`]: lane
/// sums (multiply, then add), the tree acc[l] += acc[l + w] for w = 8, 4, 2, 1, then the
/// tail in order. Compiled with Rust ≥ 1.89 only (`toydiff_avx512`, see build.rs).
#[cfg(all(target_arch = "x86_64", toydiff_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f")]
unsafe fn skinny_n_avx512(c: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize) {
    use std::arch::x86_64::*;
    if n == 0 {
        return;
    }
    let a = &a[..c.len() / n * k];
    /// The lane tree of one accumulator, then the tail in order.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn finish(acc: __m512, arow: &[f32], brow: &[f32], whole: usize) -> f32 {
        // w = 8: lanes l and l + 8; then w = 4, 2, 1 and the tail.
        let lo = _mm512_castps512_ps256(acc);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        lane_tree_and_tail(_mm256_add_ps(lo, hi), arow, brow, whole)
    }
    /// c (R rows × n) += a (R rows × k) · bᵀ, the R rows' sums as R independent chains
    /// of adds (each element still sums its own lanes in the same order: the same bits).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rows<const R: usize>(c: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize) {
        let (chunks, whole) = (k / 16, k / 16 * 16);
        for j in 0..n {
            let brow = &b[j * k..(j + 1) * k];
            let mut acc = [_mm512_setzero_ps(); R];
            for i in 0..chunks {
                // SAFETY: 16 i + 16 ≤ whole ≤ k, within brow and within each row of a.
                let y = unsafe { _mm512_loadu_ps(brow.as_ptr().add(16 * i)) };
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = unsafe { _mm512_loadu_ps(a[r * k..].as_ptr().add(16 * i)) };
                    *acc = _mm512_add_ps(*acc, _mm512_mul_ps(x, y));
                }
            }
            for (r, acc) in acc.into_iter().enumerate() {
                c[r * n + j] += finish(acc, &a[r * k..(r + 1) * k], brow, whole);
            }
        }
    }
    // Four rows at a time (four chains instead of one), then the last rows one by one.
    const R: usize = 4;
    let mut c_groups = c.chunks_exact_mut(n * R);
    let mut a_groups = a.chunks_exact(k * R);
    for (cg, ag) in (&mut c_groups).zip(&mut a_groups) {
        rows::<R>(cg, ag, b, n, k);
    }
    let rest_a = a_groups.remainder();
    for (crow, arow) in c_groups
        .into_remainder()
        .chunks_exact_mut(n)
        .zip(rest_a.chunks_exact(k))
    {
        rows::<1>(crow, arow, b, n, k);
    }
}

/// The end of a 16-lane dot product: the 8 sums s8[l] = acc[l] + acc[l + 8] folded as
/// acc[l] += acc[l + w] for w = 4, 2, 1, then the products past the last whole 16 added
/// in order.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
fn lane_tree_and_tail(
    s8: std::arch::x86_64::__m256,
    arow: &[f32],
    brow: &[f32],
    whole: usize,
) -> f32 {
    use std::arch::x86_64::*;
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 0b01));
    let mut sum = _mm_cvtss_f32(s1);
    for (&x, &y) in arow[whole..].iter().zip(&brow[whole..]) {
        sum += x * y;
    }
    sum
}

/// [`skinny_n`] in AVX registers, the same bits as [`dot`]: the 16 lane sums as two
/// 8-lane halves (multiply, then add), the tree acc[l] += acc[l + w] for w = 8, 4, 2, 1,
/// then the tail in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn skinny_n_avx(c: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize) {
    use std::arch::x86_64::*;
    let chunks = k / 16;
    let whole = chunks * 16;
    for (crow, arow) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
        for (j, cv) in crow.iter_mut().enumerate() {
            let brow = &b[j * k..(j + 1) * k];
            let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for i in 0..chunks {
                let (p, q) = (arow.as_ptr().add(16 * i), brow.as_ptr().add(16 * i));
                lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(q)));
                hi = _mm256_add_ps(
                    hi,
                    _mm256_mul_ps(_mm256_loadu_ps(p.add(8)), _mm256_loadu_ps(q.add(8))),
                );
            }
            // w = 8: lanes l and l + 8; then w = 4, 2, 1 and the tail.
            *cv += lane_tree_and_tail(_mm256_add_ps(lo, hi), arow, brow, whole);
        }
    }
}

multiversion! {
    /// c (m × n) += aᵀ · b for a stored k × m and b k × n (row-major), small m: row by row
    /// of a and b, one FMA per element, in k order.
    fn skinny_tn(c: &mut [f32], a: &[f32], b: &[f32], m: usize, n: usize) {
        for (arow, brow) in a.chunks_exact(m).zip(b.chunks_exact(n)) {
            for (crow, &av) in c.chunks_exact_mut(n).zip(arow) {
                for (cv, &bv) in crow.iter_mut().zip(brow) {
                    *cv = av.mul_add(bv, *cv);
                }
            }
        }
    }
}

/// The (cols × rows) transpose of a row-major (rows × cols) matrix.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

/// c (m × n, row-major) = [c +] op(a) · op(b), with op(a) m × k and op(b) k × n: gemm,
/// or a skinny kernel when a dimension is at most [`SKINNY`]. The same shapes always take
/// the same kernel, so the same inputs give the same bits.
#[allow(clippy::too_many_arguments)]
fn product(
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
    if !is_skinny(m, n, k, op_a) {
        return gemm_slices(m, n, k, c, accumulate, a, op_a, b, op_b);
    }
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    let c = &mut c[..m * n];
    if !accumulate {
        c.fill(0.0);
    }
    match (op_a, op_b) {
        (Op::N, Op::N) if k <= SKINNY => skinny_k(c, &a[..m * k], &b[..k * n], n, k),
        (Op::N, Op::T) if k <= SKINNY => {
            skinny_k(c, &a[..m * k], &transpose(&b[..n * k], n, k), n, k)
        }
        (Op::N, Op::T) => skinny_n(c, &a[..m * k], &b[..n * k], n, k),
        (Op::N, Op::N) => skinny_n(c, &a[..m * k], &transpose(&b[..k * n], k, n), n, k),
        (Op::T, Op::N) if m <= SKINNY => skinny_tn(c, &a[..k * m], &b[..k * n], m, n),
        (Op::T, Op::N) => {
            // Small n: accumulate cᵀ (n × m) with the roles swapped, then add it back.
            let mut ct = vec![0f32; n * m];
            skinny_tn(&mut ct, &b[..k * n], &a[..k * m], n, m);
            for (j, row) in ct.chunks_exact(m).enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    c[i * n + j] += v;
                }
            }
        }
        (Op::T, Op::T) => unreachable!("no caller multiplies two transposed operands"),
    }
}

/// `c` (cleared, its allocation reused) = op(a) · op(b), m × n.
#[allow(clippy::too_many_arguments)]
fn product_to(
    m: usize,
    n: usize,
    k: usize,
    c: &mut Vec<f32>,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
) {
    c.clear();
    if is_skinny(m, n, k, op_a) {
        c.resize(m * n, 0.0);
        product(m, n, k, c, true, a, op_a, b, op_b);
        return;
    }
    assert!(a.len() >= m * k && b.len() >= k * n);
    c.reserve(m * n);
    // SAFETY: gemm_raw writes all m·n elements when not accumulating; lengths checked above,
    // and the fresh capacity of c cannot overlap a or b.
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
}

/// A new m × n vector holding op(a) · op(b).
fn product_new(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
    let mut c = Vec::new();
    product_to(m, n, k, &mut c, a, op_a, b, op_b);
    c
}

thread_local! {
    /// Buffers kept from call to call by the inference kernels, per thread.
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from this thread's pool (empty, with its old capacity), or a new one.
fn take_buf() -> Vec<f32> {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

/// Returns a buffer to this thread's pool (which keeps at most 16).
fn give_buf(mut v: Vec<f32>) {
    v.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 16 {
            p.push(v);
        }
    });
}

/// Rows per piece when a large batch is cut into pieces (see [`by_pieces`]).
const PIECE_ROWS: usize = 512;
/// Batches from this many rows on are cut into pieces.
const PIECES_FROM: usize = 2048;

thread_local! {
    /// Set while this thread works on one piece: its products stay on this thread.
    static IN_PIECE: Cell<bool> = const { Cell::new(false) };
}

/// Calls `f(rows, out_piece)` for a batch of n independent rows whose output has `out_w`
/// values a row: at once below [`PIECES_FROM`] rows, else piece by piece of [`PIECE_ROWS`]
/// rows (so that each piece's activations stay in the core's cache), the pieces handed
/// out one at a time to [`piece_threads`] threads: a thread that shares its core with
/// other work simply takes fewer pieces. Pieces start at fixed rows and each is computed
/// the same way whichever thread takes it, so the same inputs give the same bits.
fn by_pieces(n: usize, out: &mut [f32], out_w: usize, f: impl Fn(Range<usize>, &mut [f32]) + Sync) {
    by_pieces_on(piece_threads(), n, out, out_w, f)
}

/// [`by_pieces`] on at most `threads` threads.
fn by_pieces_on(
    threads: usize,
    n: usize,
    out: &mut [f32],
    out_w: usize,
    f: impl Fn(Range<usize>, &mut [f32]) + Sync,
) {
    if n < PIECES_FROM || out_w == 0 {
        return f(0..n, out);
    }
    let pieces: Vec<std::sync::Mutex<(Range<usize>, &mut [f32])>> = out
        .chunks_mut(PIECE_ROWS * out_w)
        .enumerate()
        .map(|(i, o)| {
            let rows = i * PIECE_ROWS..i * PIECE_ROWS + o.len() / out_w;
            std::sync::Mutex::new((rows, o))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        IN_PIECE.with(|p| p.set(true));
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(piece) = pieces.get(i) else { break };
            // Each index is taken by exactly one thread: the lock is never contended.
            let mut piece = piece.lock().unwrap_or_else(|e| e.into_inner());
            let (rows, o) = &mut *piece;
            f(rows.clone(), o);
        }
        IN_PIECE.with(|p| p.set(false));
    };
    let threads = threads.clamp(1, pieces.len());
    if threads == 1 {
        return work();
    }
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
}

/// Threads for a batch cut into pieces: `RAYON_NUM_THREADS` when it is set (candle's
/// rule), else every core. Large batches are where threads pay (see BENCHMARKS.md).
fn piece_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// The relu MLP's output for a batch of n rows (nothing kept for a backward pass): the
/// same kernel, so the same bits, as the layer-by-layer [`dense`] ops; the hidden
/// activations live in pooled buffers, and large batches go piece by piece ([`by_pieces`]).
pub(crate) fn mlp_infer(x: &[f32], n: usize, layers: &[HostLayer]) -> Vec<f32> {
    let (inp, out_w) = (layers[0].inp, layers[layers.len() - 1].out);
    if n < PIECES_FROM {
        return mlp_infer_rows(x, n, layers);
    }
    let mut out = vec![0f32; n * out_w];
    by_pieces(n, &mut out, out_w, |rows, o| {
        let y = mlp_infer_rows(&x[rows.start * inp..rows.end * inp], rows.len(), layers);
        o.copy_from_slice(&y);
    });
    out
}

fn mlp_infer_rows(x: &[f32], n: usize, layers: &[HostLayer]) -> Vec<f32> {
    let last = layers.len() - 1;
    let (mut cur, mut next) = (take_buf(), take_buf());
    let mut out = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let src: &[f32] = if i == 0 { x } else { &cur };
        if i == last {
            dense_forward_into(src, n, l.inp, l.w, l.b, Act::Identity, &mut out);
        } else {
            dense_forward_into(src, n, l.inp, l.w, l.b, Act::Relu, &mut next);
            std::mem::swap(&mut cur, &mut next);
        }
    }
    give_buf(cur);
    give_buf(next);
    out
}

multiversion! {
    /// Appends act(b + Σ_k x[r, k] wt[k, :]) for every row r of x (rows of width `inp`) to
    /// y, the sum as FMAs in k order starting from b.
    fn narrow_dense(x: &[f32], wt: &[f32], b: &[f32], inp: usize, relu: bool, y: &mut Vec<f32>) {
        let rows = x.len() / inp.max(1);
        let out = b.len();
        y.reserve(rows * out);
        let start = y.len();
        let spare = &mut y.spare_capacity_mut()[..rows * out];
        match (inp, relu) {
            (1, true) => narrow_rows::<1, true>(x, wt, b, spare),
            (2, true) => narrow_rows::<2, true>(x, wt, b, spare),
            (3, true) => narrow_rows::<3, true>(x, wt, b, spare),
            (4, true) => narrow_rows::<4, true>(x, wt, b, spare),
            (1, false) => narrow_rows::<1, false>(x, wt, b, spare),
            (2, false) => narrow_rows::<2, false>(x, wt, b, spare),
            (3, false) => narrow_rows::<3, false>(x, wt, b, spare),
            (4, false) => narrow_rows::<4, false>(x, wt, b, spare),
            _ => {
                for (xrow, yrow) in x.chunks_exact(inp).zip(spare.chunks_exact_mut(out)) {
                    for (j, yv) in yrow.iter_mut().enumerate() {
                        let mut acc = b[j];
                        for (kk, &xv) in xrow.iter().enumerate() {
                            acc = xv.mul_add(wt[kk * out + j], acc);
                        }
                        yv.write(if relu { acc.max(0.0) } else { acc });
                    }
                }
            }
        }
        // SAFETY: every one of the rows · out values after `start` was written above.
        unsafe { y.set_len(start + rows * out) };
    }
}

/// [`narrow_dense`] for K inputs: sixteen outputs at a time held in one accumulator (one
/// AVX-512 register) through the K FMAs, the activation, one store. The same operations
/// in the same order as the general loop, so the same bits.
#[inline(always)]
fn narrow_rows<const K: usize, const RELU: bool>(
    x: &[f32],
    wt: &[f32],
    b: &[f32],
    y: &mut [std::mem::MaybeUninit<f32>],
) {
    const LANES: usize = 16;
    let out = b.len();
    let full = out - out % LANES;
    let wt = &wt[..K * out];
    for (xrow, yrow) in x.chunks_exact(K).zip(y.chunks_exact_mut(out)) {
        let xr: &[f32; K] = xrow.try_into().expect("K inputs");
        for j in (0..full).step_by(LANES) {
            let mut acc: [f32; LANES] = b[j..j + LANES].try_into().expect("16 lanes");
            for (kk, &xv) in xr.iter().enumerate() {
                let w: &[f32; LANES] = wt[kk * out + j..kk * out + j + LANES]
                    .try_into()
                    .expect("16 lanes");
                for l in 0..LANES {
                    acc[l] = xv.mul_add(w[l], acc[l]);
                }
            }
            for (dst, v) in yrow[j..j + LANES].iter_mut().zip(acc) {
                dst.write(if RELU { v.max(0.0) } else { v });
            }
        }
        for j in full..out {
            let mut acc = b[j];
            for (kk, &xv) in xr.iter().enumerate() {
                acc = xv.mul_add(wt[kk * out + j], acc);
            }
            yrow[j].write(if RELU { acc.max(0.0) } else { acc });
        }
    }
}

multiversion! {
    /// y = act(y + b) row by row (b has one value per column).
    fn bias_act(y: &mut [f32], b: &[f32], relu: bool) {
        for row in y.chunks_exact_mut(b.len()) {
            for (v, &bv) in row.iter_mut().zip(b) {
                let z = *v + bv;
                *v = if relu { z.max(0.0) } else { z };
            }
        }
    }
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
    if inp <= SKINNY {
        // A narrow input (the denoiser's [x_t, t/T]): row by row, b, then one FMA per
        // input, then the activation, while the row is in L1. The same operations in the
        // same order as the branch below.
        narrow_dense(
            x,
            &transpose(&w[..out * inp], out, inp),
            b,
            inp,
            act == Act::Relu,
            y,
        );
    } else if is_skinny(n, out, inp, Op::N) {
        // b, then each term added with an FMA.
        y.reserve(n * out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        product(n, out, inp, y, true, x, Op::N, w, Op::T);
        act.apply(y);
    } else {
        // The product, then bias and activation in one pass (the same bits as b + product).
        assert!(x.len() >= n * inp && w.len() >= out * inp);
        y.reserve(n * out);
        // SAFETY: gemm_raw writes all n·out elements when not accumulating; x and w are
        // long enough (checked above) and cannot overlap the fresh capacity of y.
        unsafe {
            gemm_raw(
                n,
                out,
                inp,
                y.as_mut_ptr(),
                false,
                x.as_ptr(),
                Op::N,
                w.as_ptr(),
                Op::T,
            );
            y.set_len(n * out);
        }
        bias_act(y, b, act == Act::Relu);
    }
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
            product(l.out, l.inp, n, dw, false, &self.dz, Op::T, x, Op::N);
            if i > 0 || need_input_grad {
                let next = if i > 0 {
                    &mut self.dz_next
                } else {
                    &mut self.d_input
                };
                next.resize(n * l.inp, 0.0);
                product(n, l.inp, l.out, next, false, &self.dz, Op::N, l.w, Op::N);
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

/// Reads every tensor in place (no copies; the storages stay locked for reading while
/// `f` runs) and calls `f` with the dense layers — the tensors from `first_layer` on,
/// weight then bias, of the given (out, in) shapes — and all the tensors' data.
pub(crate) fn with_host_layers<R>(
    tensors: &[&Tensor],
    first_layer: usize,
    shapes: &[(usize, usize)],
    f: impl FnOnce(&[HostLayer], &[Cow<[f32]>]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let data = guards
        .iter()
        .map(|(s, l)| f32_elements(s, l))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let layers: Vec<HostLayer> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(out, inp))| HostLayer {
            w: &data[first_layer + 2 * i],
            b: &data[first_layer + 2 * i + 1],
            out,
            inp,
        })
        .collect();
    f(&layers, &data)
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
            let dw = with_f32(x, |x| Ok(product_new(out, inp, n, &dz, Op::T, x, Op::N)))?;
            Some(Tensor::from_vec(dw, (out, inp), &dev)?)
        } else {
            None
        };
        let dx = if need_x {
            let dx = with_f32(w, |w| Ok(product_new(n, inp, out, &dz, Op::N, w, Op::N)))?;
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
///
/// The first layer (forward and backward) and the last (logits, softmax and the step back
/// to the last hidden layer) are single passes; the layers between (one, in the notebook's
/// net) are gemm products. Large batches go piece by piece ([`by_pieces`]).
pub(crate) fn classifier_input_grad(
    x: &[f32],
    n: usize,
    d: usize,
    e: &[f32],
    layers: &[HostLayer],
    targets: &[u32],
) -> Vec<f32> {
    if n < PIECES_FROM {
        return classifier_input_grad_rows(x, n, d, e, layers, targets);
    }
    let mut dx = vec![0f32; n * d];
    by_pieces(n, &mut dx, d, |rows, o| {
        let g = classifier_input_grad_rows(
            &x[rows.start * d..rows.end * d],
            rows.len(),
            d,
            e,
            layers,
            &targets[rows.clone()],
        );
        o.copy_from_slice(&g);
    });
    dx
}

fn classifier_input_grad_rows(
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
    let w0x = transpose_cols(first.w, h0, inp, d);
    // Forward through the hidden layers, keeping each activation for the relu masks.
    let mut z = take_buf();
    narrow_dense(&x[..n * d], &w0x, &c, d, true, &mut z);
    let mut hidden = vec![z];
    let last = layers.len() - 1;
    for l in &layers[1..last] {
        let mut h = take_buf();
        dense_forward_into(
            hidden.last().expect("z"),
            n,
            l.inp,
            l.w,
            l.b,
            Act::Relu,
            &mut h,
        );
        hidden.push(h);
    }
    // The last layer: logits, d/d logits = onehot(y) − softmax, and back to the last
    // hidden layer (masked by its relu).
    let top = hidden.pop().expect("z");
    let mut g = take_buf();
    head_grad(&top, layers[last].w, layers[last].b, targets, &mut g);
    let mut dh = take_buf();
    let mut below = top;
    // The layers between, top down.
    for i in (1..last).rev() {
        let l = &layers[i];
        give_buf(below);
        below = hidden.pop().expect("one activation per hidden layer");
        product_to(n, l.inp, l.out, &mut dh, &g, Op::N, l.w, Op::N);
        mask_where_off(&mut dh, &below);
        std::mem::swap(&mut g, &mut dh);
    }
    give_buf(dh);
    // Through the x columns of the first layer (g is already masked by its relu).
    let mut dx = vec![0f32; n * d];
    skinny_n(&mut dx, &g, &w0x, d, h0);
    give_buf(below);
    give_buf(g);
    dx
}

/// The first `cols` columns of a row-major (rows × width) matrix, transposed: cols × rows.
fn transpose_cols(w: &[f32], rows: usize, width: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; cols * rows];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * width + c];
        }
    }
    t
}

/// For each row h of `hidden` (width = W's in) and its target y: l = W h + b, p =
/// softmax(l), g_l = onehot(y) − p, and the row of `dh` = Σ_c g_c W[c, :], zero where
/// h ≤ 0.
fn head_grad(hidden: &[f32], w: &[f32], b: &[f32], targets: &[u32], dh: &mut Vec<f32>) {
    let classes = b.len();
    let width = w.len() / classes.max(1);
    let n = hidden.len() / width.max(1);
    let mut g = take_buf();
    dense_forward_into(hidden, n, width, w, b, Act::Identity, &mut g);
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
    dh.clear();
    dh.resize(n * width, 0.0);
    back_rows(dh, &g, w, hidden, classes);
    give_buf(g);
}

multiversion! {
    /// Each row of dh (zeroed, width = W's in) = Σ_c g[r, c] W[c, :] (FMAs in c order),
    /// then 0 where the row of h ≤ 0.
    fn back_rows(dh: &mut [f32], g: &[f32], w: &[f32], h: &[f32], classes: usize) {
        let width = w.len() / classes.max(1);
        for ((row, gr), hr) in dh
            .chunks_exact_mut(width)
            .zip(g.chunks_exact(classes))
            .zip(h.chunks_exact(width))
        {
            for (c, &gc) in gr.iter().enumerate() {
                for (r, &wv) in row.iter_mut().zip(&w[c * width..(c + 1) * width]) {
                    *r = gc.mul_add(wv, *r);
                }
            }
            for (r, &hv) in row.iter_mut().zip(hr) {
                if hv <= 0.0 || hv.is_nan() {
                    *r = 0.0;
                }
            }
        }
    }
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
    fn every_product_kernel_matches_a_naive_product() {
        let val = |i: usize, s: f32| ((i as f32 * 0.377 + s).sin()) * 1.7;
        // (m, n, k): skinny k, skinny n, skinny m (transposed a), and gemm.
        for &(m, n, k) in &[
            (37, 19, 3),
            (37, 2, 40),
            (5, 33, 50),
            (40, 6, 33),
            (33, 40, 50),
        ] {
            for (op_a, op_b) in [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N)] {
                let a: Vec<f32> = (0..m * k).map(|i| val(i, 0.1)).collect();
                let b: Vec<f32> = (0..k * n).map(|i| val(i, 2.3)).collect();
                let at = |i: usize, kk: usize| match op_a {
                    Op::N => a[i * k + kk],
                    Op::T => a[kk * m + i],
                } as f64;
                let bt = |kk: usize, j: usize| match op_b {
                    Op::N => b[kk * n + j],
                    Op::T => b[j * k + kk],
                } as f64;
                let init: Vec<f32> = (0..m * n).map(|i| val(i, 5.0)).collect();
                for accumulate in [false, true] {
                    let mut c = init.clone();
                    product(m, n, k, &mut c, accumulate, &a, op_a, &b, op_b);
                    let fresh = product_new(m, n, k, &a, op_a, &b, op_b);
                    for i in 0..m {
                        for j in 0..n {
                            let exact: f64 = (0..k).map(|kk| at(i, kk) * bt(kk, j)).sum();
                            let base = if accumulate {
                                init[i * n + j] as f64
                            } else {
                                0.0
                            };
                            let got = c[i * n + j] as f64;
                            assert!((got - base - exact).abs() < 1e-4 * (1.0 + exact.abs()));
                            assert!(
                                (fresh[i * n + j] as f64 - exact).abs()
                                    < 1e-4 * (1.0 + exact.abs())
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn narrow_dense_matches_the_scalar_loop_bit_for_bit() {
        // K = 1..4 take the specialised path, 5 and 6 the general one; widths with and
        // without a 16-lane tail; relu on and off; rows appended after existing values.
        for inp in 1..=6 {
            for out in [5, 16, 37, 128] {
                for relu in [false, true] {
                    let rows = 7;
                    let x: Vec<f32> = (0..rows * inp).map(|i| ((i as f32) * 0.77).sin()).collect();
                    let wt: Vec<f32> = (0..inp * out).map(|i| ((i as f32) * 0.31).cos()).collect();
                    let b: Vec<f32> = (0..out).map(|i| (i as f32) * 0.01 - 0.2).collect();
                    let mut fast = vec![9.0f32];
                    narrow_dense(&x, &wt, &b, inp, relu, &mut fast);
                    let mut slow = vec![9.0f32];
                    for xrow in x.chunks_exact(inp) {
                        for j in 0..out {
                            let mut acc = b[j];
                            for (kk, &xv) in xrow.iter().enumerate() {
                                acc = xv.mul_add(wt[kk * out + j], acc);
                            }
                            slow.push(if relu { acc.max(0.0) } else { acc });
                        }
                    }
                    assert_eq!(fast, slow, "inp {inp}, out {out}, relu {relu}");
                }
            }
        }
    }

    #[test]
    fn skinny_n_kernels_agree_bit_for_bit() {
        for k in [5, 16, 37, 64, 128] {
            let (m, n) = (23, 3);
            let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.91).cos()).collect();
            let b: Vec<f32> = (0..n * k).map(|i| ((i as f32) * 0.37).sin()).collect();
            let mut fast = vec![0.5f32; m * n];
            skinny_n(&mut fast, &a, &b, n, k);
            let mut generic = vec![0.5f32; m * n];
            for (crow, arow) in generic.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
                for (j, cv) in crow.iter_mut().enumerate() {
                    *cv += dot(arow, &b[j * k..(j + 1) * k]);
                }
            }
            assert_eq!(fast, generic, "k = {k}");
        }
    }

    #[test]
    fn large_batches_in_pieces_match_the_whole_batch() {
        let n = PIECES_FROM + 300;
        let val = |i: usize, s: f32| ((i as f32 * 0.7311 + s).sin()) * 1.3;
        let shapes = [(128usize, 3usize), (128, 128), (2, 128)];
        let params: Vec<(Vec<f32>, Vec<f32>)> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(o, k))| {
                let w = (0..o * k).map(|j| val(j, i as f32) * 0.2).collect();
                let b = (0..o).map(|j| val(j, 9.0 + i as f32) * 0.1).collect();
                (w, b)
            })
            .collect();
        let layers: Vec<HostLayer> = shapes
            .iter()
            .zip(&params)
            .map(|(&(out, inp), (w, b))| HostLayer { w, b, out, inp })
            .collect();
        let x: Vec<f32> = (0..n * 3).map(|i| val(i, 0.5)).collect();
        // Pieces of 256 rows give exactly the rows of one whole-batch pass.
        assert_eq!(mlp_infer(&x, n, &layers), mlp_infer_rows(&x, n, &layers));
    }

    #[test]
    fn pieces_handed_out_to_threads_give_the_same_bits() {
        // A batch of 5 pieces and a bit (the last one short), three output values a row
        // that depend on the row, the thread and nothing else: every row must be written
        // exactly once, by the piece that owns it, whatever the thread count.
        let n = 5 * PIECE_ROWS + 37;
        let run = |threads: usize| {
            let mut out = vec![f32::NAN; n * 3];
            let calls = std::sync::atomic::AtomicUsize::new(0);
            by_pieces_on(threads, n, &mut out, 3, |rows, o| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert_eq!(o.len(), rows.len() * 3);
                for (r, row) in rows.zip(o.chunks_exact_mut(3)) {
                    let x = r as f32;
                    row.copy_from_slice(&[x, x.sqrt(), (x * 0.37).sin()]);
                }
            });
            (out, calls.into_inner())
        };
        let (one, one_calls) = run(1);
        assert_eq!(one_calls, 6);
        assert!(one.iter().all(|v| v.is_finite()));
        for threads in [2, 3, 8] {
            let (many, calls) = run(threads);
            assert_eq!(calls, 6, "{threads} threads");
            assert_eq!(
                many.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{threads} threads"
            );
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
        // gemm on 1 and 2 threads (what products above PARALLEL_MIN_FLOPS get): the same bits.
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
