//! Every `unsafe` block and every SIMD kernel of this crate, behind a plain-slice API.
//!
//! All matrices are row-major f32 slices. What is here:
//!
//! - [`mlp_forward`], [`mlp_backward`]: a whole net (every layer act(h Wᵀ + b), relu or
//!   silu between them) and its backward pass from the activations it kept ([`Trace`],
//!   buffers reused through a per-thread pool); [`layer_param_grads`] and
//!   [`first_input_grad`] for the first layer, whose input the caller owns;
//!   [`dense_forward`] for one layer (the classifier's folded embedding).
//! - [`log_prob_at`], [`log_prob_at_grad`]: Σ_i log softmax(z_i)\[y_i\] and its gradient;
//!   [`mean_squared_error`], [`mean_squared_error_grad`]; [`concat_rows`],
//!   [`concat_rows_grad`]: the classifier's input [x, emb(t)] (plain loops, no SIMD).
//! - [`adam_update`]: Adam's element-wise update of one parameter.
//!
//! Underneath: the products go through `gemm` (the crate candle's own matmul calls) or,
//! when a dimension is at most [`SKINNY`], through small kernels written for those shapes
//! (AVX / AVX-512 intrinsics, or loops compiled per ISA by `multiversion!` and picked at
//! run time). Threads: batches of [`PIECES_FROM`] rows or more are cut into pieces of
//! [`PIECE_ROWS`] rows handed out to threads ([`by_pieces`]); gemm itself uses threads
//! only for products of at least [`PARALLEL_MIN_FLOPS`] multiply-adds outside a piece.
//!
//! Every kernel is deterministic: the same inputs give the same bits whatever the thread
//! count (pieces start at fixed rows and gemm splits the output, never the k sum) and
//! whatever the ISA (each path does the same IEEE operations in the same order).
//!
//! The candle custom ops that call these are in `ops.rs`; their slow reference in plain
//! candle ops, with the tests comparing the two, is in `reference.rs`.

use std::cell::Cell;
use std::ops::Range;

use gemm::Parallelism;

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

/// Defines `fn $name(args)` whose body is compiled for AVX-512 (stable since Rust 1.89,
/// the workspace's `rust-version`), for AVX2 + FMA and for the baseline, picked at run time. The workspace
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

multiversion! {
    /// y = max(y, 0) in place (candle's relu: `f32::max`, NaN maps to 0).
    fn relu_in_place(y: &mut [f32]) {
        for v in y.iter_mut() {
            *v = v.max(0.0);
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
    #[cfg(target_arch = "x86_64")]
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
/// tail in order.
#[cfg(target_arch = "x86_64")]
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
#[cfg(test)]
fn product_new(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
    let mut c = Vec::new();
    product_to(m, n, k, &mut c, a, op_a, b, op_b);
    c
}

/// Rows per piece when a large batch is cut into pieces (see [`by_pieces`]): a piece of
/// one 128-wide layer is 512 · 128 · 4 B = 256 KiB of output, which stays in a core's L2.
pub(crate) const PIECE_ROWS: usize = 512;
/// Batches from this many rows on are cut into pieces.
pub(crate) const PIECES_FROM: usize = 2048;

thread_local! {
    /// Set while this thread works on one piece: its products stay on this thread.
    static IN_PIECE: Cell<bool> = const { Cell::new(false) };
}

/// Calls `f(rows, out_piece)` for a batch of n independent rows whose output has `out_w`
/// values a row: at once below [`PIECES_FROM`] rows, else piece by piece of [`PIECE_ROWS`]
/// rows (so that each piece's input and output stay in the core's cache), the pieces handed
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
    PIECE_THREADS
        .with(Cell::get)
        .unwrap_or_else(candle_core::utils::get_num_threads)
}

thread_local! {
    /// A thread count set by [`with_piece_threads`] (tests), instead of candle's rule.
    static PIECE_THREADS: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` with batches cut into pieces handed to `threads` threads (tests of the
/// thread-count invariance; the pieces themselves are the same).
#[cfg(test)]
pub(crate) fn with_piece_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let before = PIECE_THREADS.with(|p| p.replace(Some(threads)));
    let r = f();
    PIECE_THREADS.with(|p| p.set(before));
    r
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
            // The conditional denoiser's [x_t, t/T, onehot(y)] for 2 to 4 classes (and the
            // null class): 6 to 8 inputs.
            (5, true) => narrow_rows::<5, true>(x, wt, b, spare),
            (6, true) => narrow_rows::<6, true>(x, wt, b, spare),
            (7, true) => narrow_rows::<7, true>(x, wt, b, spare),
            (8, true) => narrow_rows::<8, true>(x, wt, b, spare),
            (1, false) => narrow_rows::<1, false>(x, wt, b, spare),
            (2, false) => narrow_rows::<2, false>(x, wt, b, spare),
            (3, false) => narrow_rows::<3, false>(x, wt, b, spare),
            (4, false) => narrow_rows::<4, false>(x, wt, b, spare),
            (5, false) => narrow_rows::<5, false>(x, wt, b, spare),
            (6, false) => narrow_rows::<6, false>(x, wt, b, spare),
            (7, false) => narrow_rows::<7, false>(x, wt, b, spare),
            (8, false) => narrow_rows::<8, false>(x, wt, b, spare),
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
    /// None: the last layer (logits, predicted noise) or a layer followed by candle's silu.
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

/// act(x Wᵀ + b) for the whole batch at once into `y` (cleared first; its allocation is reused).
fn dense_rows_into(
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

/// y (n × out) = act(x Wᵀ + b) for x (n × inp) and W (out × inp), row-major.
///
/// Below [`PIECES_FROM`] rows the whole batch at once; from there piece by piece
/// ([`by_pieces`]), each piece the same kernel, so the same bits as the whole batch.
pub(crate) fn dense_forward(
    x: &[f32],
    n: usize,
    inp: usize,
    w: &[f32],
    b: &[f32],
    act: Act,
) -> Vec<f32> {
    let out = b.len();
    assert!(x.len() >= n * inp && w.len() >= out * inp);
    if n < PIECES_FROM {
        let mut y = Vec::new();
        dense_rows_into(x, n, inp, w, b, act, &mut y);
        return y;
    }
    let mut y = vec![0f32; n * out];
    by_pieces(n, &mut y, out, |rows, o| {
        let mut piece = Vec::new();
        let xs = &x[rows.start * inp..rows.end * inp];
        dense_rows_into(xs, rows.len(), inp, w, b, act, &mut piece);
        o.copy_from_slice(&piece);
    });
    y
}

/// dx (n × inp) = dz W for dz (n × out) and W (out × inp); by pieces from [`PIECES_FROM`] rows.
#[cfg(test)]
fn input_grad(dz: &[f32], w: &[f32], n: usize, out: usize, inp: usize) -> Vec<f32> {
    let w = &w[..out * inp];
    if n < PIECES_FROM {
        return product_new(n, inp, out, &dz[..n * out], Op::N, w, Op::N);
    }
    let mut dx = vec![0f32; n * inp];
    by_pieces(n, &mut dx, inp, |rows, o| {
        let g = &dz[rows.start * out..rows.end * out];
        o.copy_from_slice(&product_new(rows.len(), inp, out, g, Op::N, w, Op::N));
    });
    dx
}

/// x, or 0 when |x| is subnormal (below f32::MIN_POSITIVE ≈ 1.2e-38).
///
/// The moments of a parameter whose gradient stays 0 (a dead relu unit) decay geometrically
/// (m by 0.9 a step) and pass through the subnormal range, where x86 arithmetic takes a slow
/// microcode path: this made the optimiser step 2–3× slower late in the denoiser's training.
/// Such a moment moves θ by less than 1e-30 · η, so flushing it to zero changes nothing.
#[inline]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// The f32 constants of one Adam step (computed in f64 by the optimiser, applied in f32).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamConstants {
    /// β1 and 1 − β1.
    pub(crate) b1: f32,
    pub(crate) one_minus_b1: f32,
    /// β2 and 1 − β2.
    pub(crate) b2: f32,
    pub(crate) one_minus_b2: f32,
    /// 1 / (1 − β1ᵗ) and 1 / (1 − β2ᵗ), the bias corrections of step t.
    pub(crate) scale_m: f32,
    pub(crate) scale_v: f32,
    /// ε and the learning rate η.
    pub(crate) eps: f32,
    pub(crate) lr: f32,
}

multiversion! {
    /// Adam's update of one parameter, element-wise, in candle `AdamW`'s f32 order (Kingma &
    /// Ba 2015, Algorithm 1): m ← β1 m + (1 − β1) g; v ← β2 v + (1 − β2) g²;
    /// θ ← θ − η (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε), moments flushed when subnormal.
    pub(crate) fn adam_update(theta: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32], s: AdamConstants) {
        for (((t, m), v), &g) in theta
            .iter_mut()
            .zip(m.iter_mut())
            .zip(v.iter_mut())
            .zip(grad.iter())
        {
            *m = flush_subnormal(*m * s.b1 + g * s.one_minus_b1);
            *v = flush_subnormal(*v * s.b2 + (g * g) * s.one_minus_b2);
            let m_hat = *m * s.scale_m;
            let v_hat = *v * s.scale_v;
            *t -= (m_hat / (v_hat.sqrt() + s.eps)) * s.lr;
        }
    }
}

/// mean((p − e)²) over all elements, the squares added in order (Flux's `mse`).
pub(crate) fn mean_squared_error(p: &[f32], e: &[f32]) -> f32 {
    assert_eq!(p.len(), e.len());
    let sum = p.iter().zip(e).fold(0f32, |s, (&p, &e)| {
        let d = p - e;
        s + d * d
    });
    sum / p.len() as f32
}

/// d/dp of g · mean((p − e)²) = g · 2 (p − e) / N.
pub(crate) fn mean_squared_error_grad(p: &[f32], e: &[f32], g: f32) -> Vec<f32> {
    assert_eq!(p.len(), e.len());
    let scale = 2.0 * g / p.len() as f32;
    p.iter().zip(e).map(|(&p, &e)| (p - e) * scale).collect()
}

/// Σ_i log softmax(z_i)[y_i] over the rows z_i (of `classes` logits) and their targets,
/// each term z_y − m − ln Σ_c exp(z_c − m) with m the row's max, added in row order; the
/// softmax of every row, exp(z_c − m) / Σ exp(z − m), goes to `softmax` (for the backward pass).
pub(crate) fn log_prob_at(
    z: &[f32],
    classes: usize,
    targets: &[u32],
    softmax: &mut Vec<f32>,
) -> f32 {
    softmax.clear();
    softmax.resize(z.len(), 0.0);
    let mut total = 0f32;
    for ((row, p), &y) in z
        .chunks_exact(classes)
        .zip(softmax.chunks_exact_mut(classes))
        .zip(targets)
    {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (p, &v) in p.iter_mut().zip(row) {
            *p = (v - max).exp();
            sum += *p;
        }
        total += row[y as usize] - max - sum.ln();
        let inv = 1.0 / sum;
        for p in p.iter_mut() {
            *p *= inv;
        }
    }
    total
}

/// d/dz of g · [`log_prob_at`] from its softmax: g (onehot(y_i) − softmax(z_i)) row by row.
pub(crate) fn log_prob_at_grad(
    softmax: &[f32],
    classes: usize,
    targets: &[u32],
    g: f32,
) -> Vec<f32> {
    let mut dz: Vec<f32> = softmax.iter().map(|&p| -g * p).collect();
    for (row, &y) in dz.chunks_exact_mut(classes).zip(targets) {
        row[y as usize] += g;
    }
    dz
}

/// The rows [x_i, table[t_i]] (n × (d + E)) for x (n × d), a table (T × E) and row
/// indices t_i, in a buffer from the pool.
pub(crate) fn concat_rows(x: &[f32], d: usize, table: &[f32], e: usize, index: &[u32]) -> Vec<f32> {
    let mut out = pooled();
    out.reserve(index.len() * (d + e));
    for (row, &t) in x.chunks_exact(d.max(1)).zip(index) {
        out.extend_from_slice(&row[..d]);
        out.extend_from_slice(&table[t as usize * e..(t as usize + 1) * e]);
    }
    out
}

/// The backward pass of [`concat_rows`] for g (n × (d + E)), each part only when asked:
/// x's part (n × d) returned, and the table's gradient added into `dtable` (rows × E): the
/// e part of each row of g added to row t_i, in row order.
pub(crate) fn concat_rows_grad(
    g: &[f32],
    (d, e): (usize, usize),
    index: &[u32],
    need_x: bool,
    dtable: Option<&mut [f32]>,
) -> Option<Vec<f32>> {
    if let Some(dtable) = dtable {
        for (row, &t) in g.chunks_exact(d + e).zip(index) {
            let dst = &mut dtable[t as usize * e..(t as usize + 1) * e];
            for (s, &v) in dst.iter_mut().zip(&row[d..]) {
                *s += v;
            }
        }
    }
    need_x.then(|| {
        g.chunks_exact(d + e)
            .flat_map(|row| &row[..d])
            .copied()
            .collect()
    })
}

/// The nonlinearity after every hidden layer of a whole net ([`mlp_forward`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hidden {
    /// max(z, 0), as candle's relu.
    Relu,
    /// silu(z) = z / (1 + e^(−z)), as candle's silu (the same f32 expression).
    Silu,
}

/// One dense layer of a whole net: W (out × inp, row-major) and b (out,), slices of the
/// net's packed parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layer<'a> {
    /// W, out × inp.
    pub(crate) w: &'a [f32],
    /// b, out values.
    pub(crate) b: &'a [f32],
    /// The layer's input width.
    pub(crate) inp: usize,
}

impl Layer<'_> {
    fn out(&self) -> usize {
        self.b.len()
    }
}

thread_local! {
    /// Buffers of finished passes, handed to the next one: a training step's activations
    /// land in memory the previous step just used (hot in cache, no page faults).
    static POOL: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most buffers the pool keeps per thread (a net's activations and gradients need ≤ 12).
const POOL_BUFFERS: usize = 16;

/// An empty buffer, from the pool when it has one.
pub(crate) fn pooled() -> Vec<f32> {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

/// Hands a buffer back to this thread's pool.
pub(crate) fn recycle(mut v: Vec<f32>) {
    v.clear();
    if v.capacity() > 0 {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_BUFFERS {
                p.push(v);
            }
        });
    }
}

/// What a whole net's forward pass keeps for its backward pass: per hidden layer its
/// output h (and, for silu, its pre-activation z). Dropping it hands the buffers back to
/// the pool.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    h: Vec<Vec<f32>>,
    z: Vec<Vec<f32>>,
}

impl Drop for Trace {
    fn drop(&mut self) {
        for v in self.h.drain(..).chain(self.z.drain(..)) {
            recycle(v);
        }
    }
}

impl Trace {
    /// The output of hidden layer l (the input of layer l + 1).
    fn hidden(&self, l: usize) -> &[f32] {
        &self.h[l]
    }
}

/// act(x Wᵀ + b) into `y` (cleared first, its allocation reused): the whole batch at once
/// below [`PIECES_FROM`] rows, else piece by piece ([`by_pieces`]), the same bits.
fn dense_into(x: &[f32], n: usize, layer: Layer<'_>, act: Act, y: &mut Vec<f32>) {
    let (inp, out) = (layer.inp, layer.out());
    assert!(x.len() >= n * inp && layer.w.len() >= out * inp);
    if n < PIECES_FROM {
        return dense_rows_into(x, n, inp, layer.w, layer.b, act, y);
    }
    y.clear();
    y.resize(n * out, 0.0);
    by_pieces(n, y, out, |rows, o| {
        let mut piece = pooled();
        let xs = &x[rows.start * inp..rows.end * inp];
        dense_rows_into(xs, rows.len(), inp, layer.w, layer.b, act, &mut piece);
        o.copy_from_slice(&piece);
        recycle(piece);
    });
}

/// h = silu(z) = z / (1 + e^(−z)) element-wise into `h` (cleared first), candle's expression.
fn silu_into(z: &[f32], h: &mut Vec<f32>) {
    h.clear();
    h.extend(z.iter().map(|&v| v / (1.0 + (-v).exp())));
}

/// The whole net's output (n × out of the last layer) for x (n × inp of the first):
/// every layer act(h Wᵀ + b), the hidden nonlinearity after all but the last.
///
/// With a `trace`, the hidden layers' outputs (and silu's pre-activations) are kept
/// there for [`mlp_backward`]; without, they go back to the pool at once.
pub(crate) fn mlp_forward(
    x: &[f32],
    n: usize,
    layers: &[Layer<'_>],
    hidden: Hidden,
    trace: Option<&mut Trace>,
) -> Vec<f32> {
    let mut local = Trace::default();
    let trace = trace.unwrap_or(&mut local);
    let last = layers.len() - 1;
    for (l, &layer) in layers[..last].iter().enumerate() {
        let input = if l == 0 { x } else { trace.hidden(l - 1) };
        let mut h = pooled();
        match hidden {
            Hidden::Relu => dense_into(input, n, layer, Act::Relu, &mut h),
            Hidden::Silu => {
                let mut z = pooled();
                dense_into(input, n, layer, Act::Identity, &mut z);
                silu_into(&z, &mut h);
                trace.z.push(z);
            }
        }
        trace.h.push(h);
    }
    let input = if last == 0 { x } else { trace.hidden(last - 1) };
    let mut y = Vec::new();
    dense_into(input, n, layers[last], Act::Identity, &mut y);
    y
}

/// dx (n × inp) = dz W into `dx` (cleared first), by pieces from [`PIECES_FROM`] rows.
fn input_grad_into(dz: &[f32], w: &[f32], n: usize, out: usize, inp: usize, dx: &mut Vec<f32>) {
    let w = &w[..out * inp];
    if n < PIECES_FROM {
        return product_to(n, inp, out, dx, &dz[..n * out], Op::N, w, Op::N);
    }
    dx.clear();
    dx.resize(n * inp, 0.0);
    by_pieces(n, dx, inp, |rows, o| {
        let g = &dz[rows.start * out..rows.end * out];
        let mut piece = pooled();
        product_to(rows.len(), inp, out, &mut piece, g, Op::N, w, Op::N);
        o.copy_from_slice(&piece);
        recycle(piece);
    });
}

/// dW = dzᵀ x into `dw` (out × inp) and db = Σ_rows dz into `db` (out,): the same
/// products and sums as the per-layer backward pass had (dzᵀ x summing over the rows
/// in gemm's k, never split across threads; the rows added in order).
pub(crate) fn layer_param_grads(
    dz: &[f32],
    x: &[f32],
    n: usize,
    inp: usize,
    (dw, db): (&mut [f32], &mut [f32]),
) {
    let out = db.len();
    product(
        out,
        inp,
        n,
        dw,
        false,
        &dz[..n * out],
        Op::T,
        &x[..n * inp],
        Op::N,
    );
    if out > 0 {
        column_sums(db, dz);
    }
}

/// The backward pass of [`mlp_forward`] down to the first layer's pre-activation: from
/// g = ∂L/∂y (n × out of the last layer), dz_l = (dz_{l+1} W_{l+1}) ⊙ act′(z_l) layer by
/// layer; for every layer l ≥ 1, dW_l = dz_lᵀ h_{l−1} and db_l = Σ_rows dz_l are written to
/// `grads[l − 1]` when given. Returns dz_0 (n × out of the first layer), from which the
/// caller computes the first layer's gradients (its input is the caller's).
pub(crate) fn mlp_backward(
    g: &[f32],
    n: usize,
    layers: &[Layer<'_>],
    hidden: Hidden,
    trace: &Trace,
    mut grads: Option<&mut [(&mut [f32], &mut [f32])]>,
) -> Vec<f32> {
    let last = layers.len() - 1;
    let mut dz = pooled();
    dz.extend_from_slice(&g[..n * layers[last].out()]);
    for l in (1..=last).rev() {
        let layer = layers[l];
        if let Some(grads) = grads.as_deref_mut() {
            let (dw, db) = &mut grads[l - 1];
            layer_param_grads(&dz, trace.hidden(l - 1), n, layer.inp, (dw, db));
        }
        let mut dh = pooled();
        input_grad_into(&dz, layer.w, n, layer.out(), layer.inp, &mut dh);
        recycle(std::mem::replace(&mut dz, dh));
        match hidden {
            Hidden::Relu => relu_mask_in_place(&mut dz, trace.hidden(l - 1)),
            Hidden::Silu => silu_grad_in_place(&mut dz, &trace.z[l - 1], trace.hidden(l - 1)),
        }
    }
    dz
}

multiversion! {
    /// g = 0 where a ≤ 0 (NaN too), in place: the relu mask of the layer whose output is a.
    fn relu_mask_in_place(g: &mut [f32], a: &[f32]) {
        for (g, &a) in g.iter_mut().zip(a) {
            // `a > 0.0` is false for NaN too, which is what masks it.
            *g = if a > 0.0 { *g } else { 0.0 };
        }
    }
}

/// g ⊙ silu′(z) in place, with silu′(z) = σ(z)(1 − h) + h for h = silu(z): candle's
/// backward expression for silu.
fn silu_grad_in_place(g: &mut [f32], z: &[f32], h: &[f32]) {
    for ((g, &z), &h) in g.iter_mut().zip(z).zip(h) {
        let s = 1.0 / ((-z).exp() + 1.0);
        *g *= s * (1.0 - h) + h;
    }
}

/// The first layer's input gradient dx = dz_0 W_0 (n × inp), in a buffer from the pool.
pub(crate) fn first_input_grad(dz: &[f32], layer: Layer<'_>, n: usize) -> Vec<f32> {
    let mut dx = pooled();
    input_grad_into(dz, layer.w, n, layer.out(), layer.inp, &mut dx);
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // K = 1..8 take the specialised path, 9 and 10 the general one; widths with and
        // without a 16-lane tail; relu on and off; rows appended after existing values.
        for inp in 1..=10 {
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
    fn large_batches_in_pieces_match_the_whole_batch_on_any_thread_count() {
        let n = PIECES_FROM + 300;
        let val = |i: usize, s: f32| ((i as f32 * 0.7311 + s).sin()) * 1.3;
        // (out, inp): the narrow kernel, gemm, and the skinny-output kernel.
        for (out, inp) in [(128usize, 3usize), (128, 128), (2, 128)] {
            let w: Vec<f32> = (0..out * inp).map(|j| val(j, 1.0) * 0.2).collect();
            let b: Vec<f32> = (0..out).map(|j| val(j, 9.0) * 0.1).collect();
            let x: Vec<f32> = (0..n * inp).map(|i| val(i, 0.5)).collect();
            let g: Vec<f32> = (0..n * out).map(|i| val(i, 2.5)).collect();
            let mut whole = Vec::new();
            dense_rows_into(&x, n, inp, &w, &b, Act::Relu, &mut whole);
            let whole_dx = product_new(n, inp, out, &g, Op::N, &w, Op::N);
            for threads in [1, 2, 3] {
                let (y, dx) = with_piece_threads(threads, || {
                    (
                        dense_forward(&x, n, inp, &w, &b, Act::Relu),
                        input_grad(&g, &w, n, out, inp),
                    )
                });
                // Pieces of 512 rows give exactly the rows of one whole-batch pass.
                assert_eq!(y, whole, "({out}, {inp}), {threads} threads");
                assert_eq!(dx, whole_dx, "({out}, {inp}), {threads} threads");
            }
        }
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
    fn gemm_on_one_and_two_threads_gives_the_same_bits() {
        // Above PARALLEL_MIN_FLOPS gemm splits the output among threads: the same bits.
        let (m, n, k) = (600, 128, 512);
        let val = |i: usize, s: f32| ((i as f32 * 0.7311 + s).sin()) * 1.3;
        let a: Vec<f32> = (0..m * k).map(|i| val(i, 0.1)).collect();
        let b: Vec<f32> = (0..n * k).map(|i| val(i, 0.2)).collect();
        assert!(m * n * k >= PARALLEL_MIN_FLOPS);
        let run = |threads: usize| {
            let mut c = vec![0.25f32; m * n];
            // SAFETY: c holds m·n values, a m·k and b n·k (read transposed); no overlap.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    true,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    k as isize,
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
    }
}
