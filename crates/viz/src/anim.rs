//! Animated GIFs with one fixed global palette.
//!
//! plotters' GIF backend quantises every frame with NeuQuant, which is ~97% of
//! the time of an animation. Our frames are plots: white background, grey text
//! and grid, a handful of known colours and their translucent blends. So every
//! frame is mapped through one fixed 256-colour palette ([`gif_palette`]) with a
//! precomputed lookup table, and frames are LZW-compressed independently, which
//! lets them be prepared on several threads with identical output. The LZW
//! compression is our own (`lzw.rs`), ~5× faster than the `gif` crate's on
//! such images.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::color::PALETTE;
use crate::error::invalid;
use crate::lzw::LzwEncoder;
use crate::render::{check_figure, render_into, AXIS_GREY, MESH_GREY};
use crate::{Color, Panel, VizError};

/// How many threads frame preparation uses by default: at most 2 (the
/// project's machines are small and shared).
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(2)
}

/// The fixed global palette of every GIF this crate writes: exact entries for
/// white, the [`Color`] constants, the [`palette`](crate::palette()) colours and the
/// renderer's grid/axis greys; a 6×6×6 colour cube; a grey ramp in steps of 17
/// (antialiased text); and translucent tints over white of the named colours
/// (scatter markers with alpha), up to 256 entries.
pub fn gif_palette() -> &'static [[u8; 3]] {
    static PAL: OnceLock<Vec<[u8; 3]>> = OnceLock::new();
    PAL.get_or_init(build_palette)
}

fn build_palette() -> Vec<[u8; 3]> {
    let mut pal: Vec<[u8; 3]> = Vec::with_capacity(256);
    let mut add = |c: Color| {
        let c = [c.r, c.g, c.b];
        if pal.len() < 256 && !pal.contains(&c) {
            pal.push(c);
        }
    };
    let named = [
        Color::BLUE,
        Color::RED,
        Color::GREEN,
        Color::ORANGE,
        Color::GRAY,
        Color::CORNFLOWER,
        Color::PURPLE,
    ];
    for c in [Color::WHITE, Color::BLACK, MESH_GREY, AXIS_GREY] {
        add(c);
    }
    for c in named.iter().chain(&PALETTE) {
        add(*c);
    }
    const LEVELS: [u8; 6] = [0, 51, 102, 153, 204, 255];
    for r in LEVELS {
        for g in LEVELS {
            for b in LEVELS {
                add(Color::rgb(r, g, b));
            }
        }
    }
    for k in 1..15u8 {
        add(Color::rgb(17 * k, 17 * k, 17 * k));
    }
    // Tints in the order the notebook's figures need them (originals at 0.25,
    // samples at 0.5-0.6), then the rest; the palette is full long before the end.
    let tints = [
        (Color::BLUE, 0.25),
        (Color::RED, 0.5),
        (Color::RED, 0.6),
        (Color::GREEN, 0.6),
        (Color::GRAY, 0.5),
        (Color::BLUE, 0.5),
        (Color::GREEN, 0.5),
        (Color::ORANGE, 0.5),
        (Color::PURPLE, 0.5),
        (Color::CORNFLOWER, 0.5),
    ];
    for (c, a) in tints {
        add(c.over(Color::WHITE, a));
    }
    for a in [0.5, 0.25] {
        for c in PALETTE.iter().chain(&named) {
            add(c.over(Color::WHITE, a));
        }
    }
    debug_assert_eq!(pal.len(), 256);
    pal
}

/// Squared Euclidean RGB distance.
fn dist2(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| {
            let d = i32::from(x) - i32::from(y);
            (d * d) as u32
        })
        .sum()
}

/// Exact nearest-palette-colour lookup, fast.
///
/// The RGB cube is cut into 32³ boxes (5 bits a channel). For each box we keep
/// the palette entries that can be nearest to some colour in it: those whose
/// distance to the box is at most the smallest farthest-corner distance of any
/// entry. A pixel then compares itself with its box's few candidates only, and
/// the result equals a brute-force search (ties go to the lowest index).
struct Lut {
    /// `offsets[k]..offsets[k+1]` indexes `cands` for box `k`.
    offsets: Vec<u32>,
    cands: Vec<u8>,
}

impl Lut {
    fn get() -> &'static Lut {
        static LUT: OnceLock<Lut> = OnceLock::new();
        LUT.get_or_init(|| Lut::build(gif_palette()))
    }

    fn build(pal: &[[u8; 3]]) -> Lut {
        // Per channel and 5-bit level: each entry's squared distance to the
        // nearest and to the farthest value of the level's interval, laid out
        // `[channel][level][entry]` so the sums below run over contiguous rows.
        let n = pal.len();
        let mut near = vec![0u32; 3 * 32 * n];
        let mut far = vec![0u32; 3 * 32 * n];
        for ch in 0..3 {
            for level in 0..32i32 {
                let (lo, hi) = (level * 8, level * 8 + 7);
                for (i, p) in pal.iter().enumerate() {
                    let v = i32::from(p[ch]);
                    let dn = (lo - v).max(v - hi).max(0);
                    let df = (v - lo).abs().max((v - hi).abs());
                    let k = (ch * 32 + level as usize) * n + i;
                    near[k] = (dn * dn) as u32;
                    far[k] = (df * df) as u32;
                }
            }
        }
        fn row(t: &[u32], n: usize, ch: usize, level: usize) -> &[u32] {
            &t[(ch * 32 + level) * n..][..n]
        }
        let mut offsets = Vec::with_capacity(32 * 32 * 32 + 1);
        let mut cands = Vec::new();
        let mut near_sum = vec![0u32; n];
        offsets.push(0);
        for r in 0..32 {
            for g in 0..32 {
                for b in 0..32 {
                    let (fr, fg, fb) = (row(&far, n, 0, r), row(&far, n, 1, g), row(&far, n, 2, b));
                    let bound = (0..n).map(|i| fr[i] + fg[i] + fb[i]).min().unwrap_or(0);
                    let (nr, ng, nb) = (
                        row(&near, n, 0, r),
                        row(&near, n, 1, g),
                        row(&near, n, 2, b),
                    );
                    for (i, s) in near_sum.iter_mut().enumerate() {
                        *s = nr[i] + ng[i] + nb[i];
                    }
                    cands.extend(
                        near_sum
                            .iter()
                            .enumerate()
                            .filter(|(_, &d)| d <= bound)
                            .map(|(i, _)| i as u8),
                    );
                    offsets.push(cands.len() as u32);
                }
            }
        }
        Lut { offsets, cands }
    }

    #[inline]
    fn index(&self, pal: &[[u8; 3]], c: [u8; 3]) -> u8 {
        let k =
            (usize::from(c[0] >> 3) << 10) | (usize::from(c[1] >> 3) << 5) | usize::from(c[2] >> 3);
        let cands = &self.cands[self.offsets[k] as usize..self.offsets[k + 1] as usize];
        if let [only] = cands {
            return *only;
        }
        let mut best = cands[0];
        let mut best_d = u32::MAX;
        for &i in cands {
            let d = dist2(pal[usize::from(i)], c);
            if d < best_d {
                best_d = d;
                best = i;
            }
        }
        best
    }
}

/// The index of the palette colour nearest to `c` (Euclidean RGB; ties go to
/// the lowest index): what every pixel of a GIF frame is mapped to.
pub fn gif_palette_index(c: Color) -> u8 {
    Lut::get().index(gif_palette(), [c.r, c.g, c.b])
}

/// Maps RGB8 pixels to palette indices into `out` (resized to the pixel count).
fn quantize(rgb: &[u8], out: &mut Vec<u8>) {
    /// Slots of the recent-colour cache (direct-mapped by a hash of the colour).
    const CACHE: usize = 1024;
    let pal = gif_palette();
    let lut = Lut::get();
    out.clear();
    out.resize(rgb.len() / 3, 0);
    // Plots are mostly long runs of one colour (remember the last pixel) and
    // reuse a few hundred antialiasing and blend colours (cache them).
    let mut keys = [u32::MAX; CACHE];
    let mut values = [0u8; CACHE];
    // The last colour (white to start), also repeated 4 times to skip runs
    // 4 pixels at a time.
    let mut last = 0x00ff_ffff_u32;
    let mut last_i = lut.index(pal, [255, 255, 255]);
    let mut run = [255u8; 12];
    for (px4, o4) in rgb.chunks_exact(12).zip(out.chunks_exact_mut(4)) {
        if *px4 == run {
            o4.fill(last_i);
            continue;
        }
        for (px, o) in px4.chunks_exact(3).zip(o4.iter_mut()) {
            let key = u32::from(px[0]) << 16 | u32::from(px[1]) << 8 | u32::from(px[2]);
            if key != last {
                last = key;
                let slot = (key.wrapping_mul(0x9E37_79B1) >> 22) as usize;
                if keys[slot] == key {
                    last_i = values[slot];
                } else {
                    last_i = lut.index(pal, [px[0], px[1], px[2]]);
                    keys[slot] = key;
                    values[slot] = last_i;
                }
                for k in 0..4 {
                    run[3 * k..3 * k + 3].copy_from_slice(px);
                }
            }
            *o = last_i;
        }
    }
    // The last 0-3 pixels.
    let done = rgb.len() / 12 * 4;
    for (px, o) in rgb[done * 3..].chunks_exact(3).zip(out[done..].iter_mut()) {
        *o = lut.index(pal, [px[0], px[1], px[2]]);
    }
}

/// Per-thread scratch space for [`encode_frame`].
struct FrameScratch {
    indices: Vec<u8>,
    lzw: LzwEncoder,
}

impl FrameScratch {
    fn new() -> Self {
        Self {
            indices: Vec::new(),
            lzw: LzwEncoder::new(),
        }
    }
}

/// Quantises and LZW-compresses one frame (the expensive, parallel part).
fn encode_frame(rgb: &[u8], scratch: &mut FrameScratch) -> Vec<u8> {
    quantize(rgb, &mut scratch.indices);
    scratch.lzw.encode(&scratch.indices)
}

/// Runs `f(state, i)` for `i in 0..n` on up to `threads` scoped threads (thread
/// `t` takes `t, t + threads, …`, each with its own `init()` state) and returns
/// the results in order, or the error of the lowest failing `i`. The results do
/// not depend on the number of threads.
fn parallel_map<S, R: Send>(
    n: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> Result<R, VizError> + Sync,
) -> Result<Vec<R>, VizError> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        let mut state = init();
        return (0..n).map(|i| f(&mut state, i)).collect();
    }
    let mut slots: Vec<Option<Result<R, VizError>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (init, f) = (&init, &f);
                scope.spawn(move || {
                    let mut state = init();
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, f(&mut state, i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(results) => {
                    for (i, r) in results {
                        slots[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every index is computed by one thread"))
        .collect()
}

/// Builds an animated GIF (infinite loop) from RGB8 frames of one size.
///
/// ```
/// let (w, h) = (4u16, 2u16);
/// let mut gif = viz::GifEncoder::new(w, h, 10);
/// gif.push_rgb(&[255u8; 4 * 2 * 3])?; // white
/// gif.push_rgb(&[0u8; 4 * 2 * 3])?; // black
/// let bytes = gif.finish()?;
/// assert_eq!(&bytes[..6], b"GIF89a");
/// # Ok::<(), viz::VizError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GifEncoder {
    width: u16,
    height: u16,
    /// Frame delay in hundredths of a second; `None` after `fps == 0`.
    delay_cs: Option<u16>,
    threads: usize,
    /// LZW-compressed frames (first byte: minimum code size).
    frames: Vec<Vec<u8>>,
}

impl GifEncoder {
    /// An encoder for `width`×`height` frames shown at `fps` frames per second
    /// (the delay is `100 / fps` hundredths of a second, rounded, at least 1:
    /// GIF has no finer unit, so 7 fps plays at 100/14 ≈ 7.1 fps). A zero size or
    /// `fps == 0` is reported by the first [`push_rgb`](Self::push_rgb) or by
    /// [`finish`](Self::finish).
    pub fn new(width: u16, height: u16, fps: u32) -> Self {
        let delay_cs = (fps > 0).then(|| ((100.0 / f64::from(fps)).round() as u16).max(1));
        Self {
            width,
            height,
            delay_cs,
            threads: default_threads(),
            frames: Vec::new(),
        }
    }

    /// Sets the frame delay directly, in hundredths of a second (0 is shown by
    /// most viewers as "as fast as allowed", often 0.1 s).
    pub fn with_delay_cs(mut self, delay_cs: u16) -> Self {
        self.delay_cs = Some(delay_cs);
        self
    }

    /// Sets how many threads [`push_rgb_frames`](Self::push_rgb_frames) and
    /// [`push_panels`](Self::push_panels) use (at least 1; default: up to 2).
    /// The output bytes do not depend on it.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The frame delay in hundredths of a second (`None` if `fps` was 0).
    pub fn delay_cs(&self) -> Option<u16> {
        self.delay_cs
    }

    /// Frames pushed so far.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn check(&self) -> Result<(), VizError> {
        if self.width == 0 || self.height == 0 {
            return invalid(format!(
                "GIF size {}x{} has a zero side",
                self.width, self.height
            ));
        }
        if self.delay_cs.is_none() {
            return invalid("GIF frame rate must be at least 1 fps");
        }
        Ok(())
    }

    fn check_frame(&self, rgb: &[u8]) -> Result<(), VizError> {
        let expected = usize::from(self.width) * usize::from(self.height) * 3;
        if rgb.len() != expected {
            return invalid(format!(
                "GIF frame has {} bytes, {}x{} RGB needs {expected}",
                rgb.len(),
                self.width,
                self.height
            ));
        }
        Ok(())
    }

    /// Adds one RGB8 frame (`width * height * 3` bytes, row-major).
    pub fn push_rgb(&mut self, rgb: &[u8]) -> Result<(), VizError> {
        self.check()?;
        self.check_frame(rgb)?;
        let frame = encode_frame(rgb, &mut FrameScratch::new());
        self.frames.push(frame);
        Ok(())
    }

    /// Adds several RGB8 frames, prepared in parallel. Nothing is added if any
    /// frame has the wrong size.
    pub fn push_rgb_frames<T: AsRef<[u8]> + Sync>(&mut self, frames: &[T]) -> Result<(), VizError> {
        self.check()?;
        for f in frames {
            self.check_frame(f.as_ref())?;
        }
        let encoded = parallel_map(frames.len(), self.threads, FrameScratch::new, |s, i| {
            Ok(encode_frame(frames[i].as_ref(), s))
        })?;
        self.frames.extend(encoded);
        Ok(())
    }

    /// Renders each element of `frames` as a figure (see
    /// [`render_rgb`](crate::render_rgb)) of this encoder's size and adds it,
    /// rendering and quantising in parallel. Nothing is added on error.
    pub fn push_panels(&mut self, frames: &[Vec<Panel>], columns: usize) -> Result<(), VizError> {
        self.check()?;
        let (w, h) = (self.width, self.height);
        for panels in frames {
            check_figure(panels, columns, u32::from(w), u32::from(h))?;
        }
        let len = usize::from(w) * usize::from(h) * 3;
        let encoded = parallel_map(
            frames.len(),
            self.threads,
            || (vec![255u8; len], FrameScratch::new()),
            |(rgb, scratch), i| {
                render_into(&frames[i], columns, u32::from(w), u32::from(h), rgb)?;
                Ok(encode_frame(rgb, scratch))
            },
        )?;
        self.frames.extend(encoded);
        Ok(())
    }

    /// The GIF file's bytes: global palette, no local palettes, loops forever.
    /// Errors if no frame was added.
    pub fn finish(self) -> Result<Vec<u8>, VizError> {
        self.check()?;
        if self.frames.is_empty() {
            return invalid("a GIF needs at least one frame");
        }
        let enc_err = |e: gif::EncodingError| VizError::Encode(e.to_string());
        let palette: Vec<u8> = gif_palette().iter().flatten().copied().collect();
        let mut enc =
            gif::Encoder::new(Vec::new(), self.width, self.height, &palette).map_err(enc_err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(enc_err)?;
        let delay = self.delay_cs.unwrap_or(0);
        for lzw in &self.frames {
            let frame = gif::Frame {
                width: self.width,
                height: self.height,
                delay,
                buffer: Cow::Borrowed(lzw.as_slice()),
                ..gif::Frame::default()
            };
            enc.write_lzw_pre_encoded_frame(&frame).map_err(enc_err)?;
        }
        enc.into_inner()
            .map_err(|e| VizError::Encode(e.to_string()))
    }
}

/// Renders every element of `frames` as a `width`×`height` figure of `columns`
/// columns (see [`render_rgb`](crate::render_rgb)) and encodes them as a looping
/// GIF at `fps` frames per second, on up to 2 threads.
pub fn render_gif(
    frames: &[Vec<Panel>],
    columns: usize,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<Vec<u8>, VizError> {
    let side = |v: u32| {
        u16::try_from(v)
            .map_err(|_| VizError::InvalidInput(format!("GIF side {v} exceeds {}", u16::MAX)))
    };
    let mut enc = GifEncoder::new(side(width)?, side(height)?, fps);
    enc.push_panels(frames, columns)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PointSeries, Scatter};

    fn brute_nearest(c: [u8; 3]) -> u8 {
        let pal = gif_palette();
        let mut best = 0;
        for (i, p) in pal.iter().enumerate() {
            if dist2(*p, c) < dist2(pal[best], c) {
                best = i;
            }
        }
        best as u8
    }

    /// A pseudo-random colour stream (xorshift), deterministic.
    fn colours(n: usize) -> Vec<[u8; 3]> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                [s as u8, (s >> 8) as u8, (s >> 16) as u8]
            })
            .collect()
    }

    #[test]
    fn palette_has_256_distinct_entries_with_exact_named_colours() {
        let pal = gif_palette();
        assert_eq!(pal.len(), 256);
        for (i, a) in pal.iter().enumerate() {
            assert!(!pal[..i].contains(a), "duplicate {a:?}");
        }
        let named = [
            Color::WHITE,
            Color::BLACK,
            Color::BLUE,
            Color::RED,
            Color::GREEN,
            Color::ORANGE,
            Color::GRAY,
            Color::CORNFLOWER,
            Color::PURPLE,
            MESH_GREY,
            AXIS_GREY,
        ];
        for c in named.iter().chain(&PALETTE) {
            let i = gif_palette_index(*c);
            assert_eq!(pal[usize::from(i)], [c.r, c.g, c.b], "{c:?}");
        }
    }

    #[test]
    fn lookup_equals_brute_force() {
        for c in colours(20_000) {
            assert_eq!(
                gif_palette_index(Color::rgb(c[0], c[1], c[2])),
                brute_nearest(c),
                "{c:?}"
            );
        }
        for p in gif_palette() {
            let i = gif_palette_index(Color::rgb(p[0], p[1], p[2]));
            assert_eq!(gif_palette()[usize::from(i)], *p);
        }
    }

    /// Decodes a GIF into (palette, frames of RGB), checking the structure.
    fn decode(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, (u16, u16)) {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::Indexed);
        let mut dec = opts.read_info(bytes).unwrap();
        let palette = dec.global_palette().expect("a global palette").to_vec();
        let size = (dec.width(), dec.height());
        let mut frames = Vec::new();
        while let Some(frame) = dec.read_next_frame().unwrap() {
            assert!(frame.palette.is_none(), "local palette present");
            assert_eq!((frame.width, frame.height), size);
            let rgb = frame
                .buffer
                .iter()
                .flat_map(|&i| palette[3 * usize::from(i)..3 * usize::from(i) + 3].to_vec())
                .collect();
            frames.push(rgb);
        }
        (palette, frames, size)
    }

    #[test]
    fn frames_round_trip_through_the_palette() {
        let (w, h) = (40u16, 30u16);
        let n = usize::from(w) * usize::from(h);
        let solid = |c: Color| [c.r, c.g, c.b].repeat(n);
        let noise: Vec<u8> = colours(n).concat();
        let frames = [
            solid(Color::RED),
            solid(Color::BLACK),
            solid(Color::rgb(10, 200, 99)),
            noise.clone(),
        ];
        let mut enc = GifEncoder::new(w, h, 7);
        for f in &frames {
            enc.push_rgb(f).unwrap();
        }
        assert_eq!(enc.len(), 4);
        let bytes = enc.finish().unwrap();
        let (palette, decoded, size) = decode(&bytes);
        assert_eq!(size, (w, h));
        assert_eq!(palette.len(), 256 * 3);
        assert_eq!(decoded.len(), 4);
        // Palette colours come back exactly.
        assert_eq!(decoded[0], frames[0]);
        assert_eq!(decoded[1], frames[1]);
        // Other colours come back as their nearest palette colour.
        for (f, d) in frames[2..].iter().zip(&decoded[2..]) {
            for (src, out) in f.chunks_exact(3).zip(d.chunks_exact(3)) {
                let i = usize::from(brute_nearest([src[0], src[1], src[2]]));
                assert_eq!(out, &palette[3 * i..3 * i + 3]);
            }
        }
        // 7 fps → 14 hundredths of a second; loops forever.
        let mut dec = gif::DecodeOptions::new().read_info(&bytes[..]).unwrap();
        assert_eq!(dec.read_next_frame().unwrap().unwrap().delay, 14);
        assert_eq!(dec.repeat(), gif::Repeat::Infinite);
    }

    #[test]
    fn quantize_matches_per_pixel_lookup_on_runs() {
        // Runs of random lengths (1-9 px) over a few colours, black first, and a
        // length that is not a multiple of 4: exercises the 4-pixel skip, the
        // colour cache and the tail.
        let palette_like = colours(12);
        let mut rgb = vec![0u8; 3 * 5];
        let mut s = 7u64;
        while rgb.len() < 3 * 10_003 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = palette_like[(s >> 33) as usize % palette_like.len()];
            for _ in 0..(s >> 60) % 9 + 1 {
                rgb.extend_from_slice(&c);
            }
        }
        rgb.truncate(3 * 10_003);
        let mut out = Vec::new();
        quantize(&rgb, &mut out);
        assert_eq!(out.len(), 10_003);
        for (px, &i) in rgb.chunks_exact(3).zip(&out) {
            assert_eq!(i, brute_nearest([px[0], px[1], px[2]]), "{px:?}");
        }
    }

    #[test]
    fn output_is_deterministic_across_threads() {
        let (w, h) = (64u16, 48u16);
        let frames: Vec<Vec<u8>> = (0..5)
            .map(|k| colours(usize::from(w) * usize::from(h) + k).concat()[3 * k..].to_vec())
            .collect();
        let encode = |threads| {
            let mut e = GifEncoder::new(w, h, 10).with_threads(threads);
            e.push_rgb_frames(&frames).unwrap();
            e.finish().unwrap()
        };
        let one = encode(1);
        assert_eq!(one, encode(1));
        assert_eq!(one, encode(2));
        assert_eq!(one, encode(3));
        // push_rgb one by one gives the same file.
        let mut e = GifEncoder::new(w, h, 10);
        for f in &frames {
            e.push_rgb(f).unwrap();
        }
        assert_eq!(one, e.finish().unwrap());
    }

    fn scatter_frame(k: usize) -> Vec<Panel> {
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let t = i as f64 * 0.1 + k as f64;
                (t.cos() * (1.0 + 0.01 * i as f64), t.sin())
            })
            .collect();
        vec![Panel::Scatter(Scatter {
            title: format!("frame {k}"),
            x_range: (-3.0, 3.0),
            y_range: (-2.0, 2.0),
            series: vec![PointSeries::new("p", pts, Color::RED).alpha(0.5)],
            ..Default::default()
        })]
    }

    #[test]
    fn rendered_gif_is_deterministic_and_well_formed() {
        let frames: Vec<Vec<Panel>> = (0..3).map(scatter_frame).collect();
        let bytes = render_gif(&frames, 1, 160, 120, 4).unwrap();
        let (_, decoded, size) = decode(&bytes);
        assert_eq!(size, (160, 120));
        assert_eq!(decoded.len(), 3);
        // Frames differ (the points move) and are not blank.
        assert_ne!(decoded[0], decoded[1]);
        assert!(decoded[0].chunks_exact(3).any(|p| p != [255, 255, 255]));
        let mut e = GifEncoder::new(160, 120, 4).with_threads(1);
        e.push_panels(&frames, 1).unwrap();
        assert_eq!(bytes, e.finish().unwrap());
    }

    #[test]
    fn invalid_gif_input_is_an_error() {
        let mut e = GifEncoder::new(4, 4, 10);
        assert!(matches!(
            e.push_rgb(&[0; 47]),
            Err(VizError::InvalidInput(_))
        ));
        assert!(matches!(
            e.push_rgb_frames(&[vec![0u8; 48], vec![0u8; 3]]),
            Err(VizError::InvalidInput(_))
        ));
        assert!(e.is_empty());
        assert!(matches!(e.finish(), Err(VizError::InvalidInput(_))));
        assert!(GifEncoder::new(0, 4, 10).push_rgb(&[]).is_err());
        assert!(GifEncoder::new(1, 1, 0).push_rgb(&[0; 3]).is_err());
        assert!(render_gif(&[], 1, 10, 10, 4).is_err());
        assert!(render_gif(&[vec![]], 1, 10, 10, 4).is_err());
        assert!(render_gif(&[scatter_frame(0)], 1, 70_000, 10, 4).is_err());
    }
}
