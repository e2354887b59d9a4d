//! A fast GIF LZW encoder for 8-bit indices.
//!
//! The `gif` crate's encoder (weezl) runs at ~110 MB/s, which made LZW the
//! largest cost of a 51-frame 1050×600 animation. Plots are long runs of a few
//! colours, which a direct-indexed dictionary handles with one memory access per
//! pixel. The bit stream follows giflib's `compress` (code-width growth and the
//! clear at 4096 entries), the variant every decoder reads.

/// GIF's largest code width.
const MAX_BITS: u32 = 12;
/// Number of codes at [`MAX_BITS`].
const MAX_CODES: u32 = 1 << MAX_BITS;
/// Minimum code size for 8-bit indices.
const MIN_CODE_SIZE: u8 = 8;
/// Generations fit in the 20 high bits of a dictionary slot.
const MAX_GENERATION: u32 = (1 << 20) - 1;

/// Reusable encoder state: the dictionary is 4 MiB, so keep one per thread.
pub(crate) struct LzwEncoder {
    /// Slot `byte << 12 | prefix` holds `generation << 12 | code`; slots of older
    /// generations are empty, so a reset is one increment, not a 4 MiB clear.
    /// Byte-major order keeps the entries of one colour in 16 KiB: a plot's
    /// few colours stay in cache (prefix-major was 2× slower).
    dict: Vec<u32>,
    generation: u32,
}

/// Packs codes LSB-first into bytes.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    #[inline]
    fn put(&mut self, code: u32, width: u32) {
        self.acc |= u64::from(code) << self.bits;
        self.bits += width;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// giflib's `output()`: writes `code`, then widens the codes once `next`
/// outgrows the current width.
#[inline]
fn emit(w: &mut BitWriter, code: u32, next: u32, width: &mut u32, max_code: &mut u32) {
    w.put(code, *width);
    if next > *max_code {
        *width += 1;
        *max_code = if *width == MAX_BITS {
            MAX_CODES
        } else {
            (1 << *width) - 1
        };
    }
}

impl LzwEncoder {
    pub(crate) fn new() -> Self {
        Self {
            dict: vec![0; (MAX_CODES as usize) << 8],
            generation: 0,
        }
    }

    fn reset_dict(&mut self) {
        self.generation += 1;
        if self.generation > MAX_GENERATION {
            self.dict.fill(0);
            self.generation = 1;
        }
    }

    /// Encodes `data` as a GIF image's LZW stream, prefixed with its minimum code
    /// size: the buffer format of `gif::Encoder::write_lzw_pre_encoded_frame`.
    pub(crate) fn encode(&mut self, data: &[u8]) -> Vec<u8> {
        let clear = 1u32 << MIN_CODE_SIZE;
        let eoi = clear + 1;
        let init_bits = u32::from(MIN_CODE_SIZE) + 1;
        let mut w = BitWriter {
            out: Vec::with_capacity(data.len() / 8 + 16),
            acc: 0,
            bits: 0,
        };
        w.out.push(MIN_CODE_SIZE);

        self.reset_dict();
        let mut width = init_bits;
        let mut max_code = (1u32 << width) - 1;
        let mut next = clear + 2;
        emit(&mut w, clear, next, &mut width, &mut max_code);

        let Some((&first, rest)) = data.split_first() else {
            emit(&mut w, eoi, next, &mut width, &mut max_code);
            return w.finish();
        };
        let mut gen = self.generation << MAX_BITS;
        let mut prefix = u32::from(first);
        for &byte in rest {
            let slot = (usize::from(byte) << MAX_BITS) | prefix as usize;
            let entry = self.dict[slot];
            if entry >> MAX_BITS == gen >> MAX_BITS {
                prefix = entry & (MAX_CODES - 1);
                continue;
            }
            emit(&mut w, prefix, next, &mut width, &mut max_code);
            if next < MAX_CODES {
                self.dict[slot] = gen | next;
                next += 1;
            } else {
                // Dictionary full: clear (written at the current width), restart.
                self.reset_dict();
                gen = self.generation << MAX_BITS;
                next = clear + 2;
                w.put(clear, width);
                width = init_bits;
                max_code = (1 << width) - 1;
            }
            prefix = u32::from(byte);
        }
        emit(&mut w, prefix, next, &mut width, &mut max_code);
        emit(&mut w, eoi, next, &mut width, &mut max_code);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps `data` in a one-frame GIF with our encoder and decodes it back.
    fn round_trip(enc: &mut LzwEncoder, data: &[u8], w: u16, h: u16) -> Vec<u8> {
        let lzw = enc.encode(data);
        let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, i, i]).collect();
        let mut e = gif::Encoder::new(Vec::new(), w, h, &palette).unwrap();
        let frame = gif::Frame {
            width: w,
            height: h,
            buffer: std::borrow::Cow::Borrowed(&lzw),
            ..gif::Frame::default()
        };
        e.write_lzw_pre_encoded_frame(&frame).unwrap();
        let bytes = e.into_inner().unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::Indexed);
        let mut d = opts.read_info(&bytes[..]).unwrap();
        d.read_next_frame().unwrap().unwrap().buffer.to_vec()
    }

    #[test]
    fn decodes_back_exactly() {
        let mut enc = LzwEncoder::new();
        let mut s = 88172645463325252u64;
        let mut rand = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let cases: Vec<(Vec<u8>, u16, u16)> = vec![
            (vec![7], 1, 1),
            (vec![0, 255], 2, 1),
            // One long run: codes get long; few dictionary entries.
            (vec![200; 300 * 200], 300, 200),
            // Noise: the dictionary fills and clears many times.
            ((0..256 * 300).map(|_| rand() as u8).collect(), 256, 300),
            // Runs of random lengths over few colours, like a plot.
            (
                (0..400 * 300)
                    .scan((0u8, 0u32), |st, _| {
                        if st.1 == 0 {
                            let r = rand();
                            *st = ((r % 5) as u8 * 50, (r >> 8) as u32 % 40 + 1);
                        }
                        st.1 -= 1;
                        Some(st.0)
                    })
                    .collect(),
                400,
                300,
            ),
        ];
        for (data, w, h) in &cases {
            assert_eq!(&round_trip(&mut enc, data, *w, *h), data, "{w}x{h}");
        }
        // The encoder's state carries over correctly between frames.
        let (data, w, h) = &cases[3];
        let again = round_trip(&mut enc, data, *w, *h);
        assert_eq!(&again, data);
    }

    #[test]
    fn same_input_same_output_after_many_generations() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = LzwEncoder::new();
        let first = enc.encode(&data);
        enc.generation = MAX_GENERATION - 1; // force the wrap-around clear
        assert_eq!(enc.encode(&data), first);
        assert_eq!(enc.encode(&data), first);
        assert_eq!(LzwEncoder::new().encode(&data), first);
    }
}
