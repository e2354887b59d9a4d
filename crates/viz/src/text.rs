//! Text, drawn with the embedded font directly through ab_glyph.
//!
//! plotters' ab_glyph text path drops each glyph's left bearing and truncates
//! pen positions to whole pixels, which gives visibly uneven letter spacing
//! ("Orig inal") at label sizes. [`Canvas`] wraps the bitmap backend and
//! replaces only text drawing and measuring: glyphs are placed at their exact
//! (quarter-pixel) positions with kerning, and their coverage bitmaps are cached
//! per thread, since animations draw the same labels on every frame.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// DejaVu Sans, embedded so that text needs no system font library.
pub(crate) static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/fonts/DejaVuSans.ttf"
));

/// The parsed embedded font (`None` only if the embedded file were corrupt).
pub(crate) fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// Sub-pixel steps per pixel for glyph placement (and the cache key).
const SUBPIXEL: f32 = 4.0;
/// The glyph cache is dropped when it grows past this many bitmaps.
const CACHE_LIMIT: usize = 4096;

/// A glyph's coverage, placed relative to the pen position and the baseline.
struct GlyphBitmap {
    left: i32,
    top: i32,
    width: usize,
    coverage: Vec<f32>,
}

thread_local! {
    static GLYPHS: RefCell<HashMap<(GlyphId, u32, u8), Rc<GlyphBitmap>>> =
        RefCell::new(HashMap::new());
}

/// The bitmap of `id` at pixel size `size`, offset `step / SUBPIXEL` px to the right.
fn glyph(font: &FontRef<'static>, id: GlyphId, size: f32, step: u8) -> Rc<GlyphBitmap> {
    let key = (id, size.to_bits(), step);
    if let Some(g) = GLYPHS.with(|c| c.borrow().get(&key).cloned()) {
        return g;
    }
    let positioned = id.with_scale_and_position(
        PxScale::from(size),
        ab_glyph::point(f32::from(step) / SUBPIXEL, 0.0),
    );
    let bitmap = match font.outline_glyph(positioned) {
        Some(outline) => {
            let b = outline.px_bounds();
            let width = b.width() as usize;
            let mut coverage = vec![0f32; width * b.height() as usize];
            outline.draw(|x, y, c| {
                if let Some(slot) = coverage.get_mut(y as usize * width + x as usize) {
                    *slot = c;
                }
            });
            GlyphBitmap {
                left: b.min.x as i32,
                top: b.min.y as i32,
                width,
                coverage,
            }
        }
        None => GlyphBitmap {
            left: 0,
            top: 0,
            width: 0,
            coverage: Vec::new(),
        },
    };
    let bitmap = Rc::new(bitmap);
    GLYPHS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(key, bitmap.clone());
    });
    bitmap
}

/// A laid-out line of text: glyphs with their pen x positions, the advance
/// width, and the font's ascent and descent (descent < 0) at this size.
struct Layout {
    glyphs: Vec<(GlyphId, f32)>,
    width: f32,
    ascent: f32,
    descent: f32,
}

fn layout(font: &FontRef<'static>, text: &str, size: f32) -> Layout {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut glyphs = Vec::with_capacity(text.len());
    let mut x = 0.0;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push((id, x));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    Layout {
        glyphs,
        width: x,
        ascent: scaled.ascent(),
        descent: scaled.descent(),
    }
}

/// The size of `text` at pixel size `size`: advance width and ascent − descent.
pub(crate) fn text_size(text: &str, size: f64) -> (u32, u32) {
    match font() {
        Some(f) => {
            let l = layout(f, text, size as f32);
            (l.width.ceil() as u32, (l.ascent - l.descent).ceil() as u32)
        }
        None => (0, 0),
    }
}

/// The bitmap backend with our own text drawing (everything else delegates).
pub(crate) struct Canvas<'a> {
    inner: BitMapBackend<'a>,
}

impl<'a> Canvas<'a> {
    pub(crate) fn new(inner: BitMapBackend<'a>) -> Self {
        Self { inner }
    }
}

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), Error<'a>> {
        Ok(text_size(text, style.size()))
    }

    /// Same anchoring and rotation rules as plotters' default: the anchor is
    /// applied to the unrotated text box, which is then rotated about `pos`.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        let Some(font) = font() else {
            return Ok(());
        };
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let size = style.size() as f32;
        let l = layout(font, text, size);
        let height = l.ascent - l.descent;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -l.width / 2.0,
            HPos::Right => -l.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let baseline = (dy + l.ascent).round() as i32;
        let transform = style.transform();
        for &(id, x) in &l.glyphs {
            let pen = x + dx;
            let whole = pen.floor();
            let step = (((pen - whole) * SUBPIXEL).round() as u8).min(SUBPIXEL as u8 - 1);
            let g = glyph(font, id, size, step);
            if g.width == 0 {
                continue;
            }
            for (k, &c) in g.coverage.iter().enumerate() {
                if c <= 0.0 {
                    continue;
                }
                let lx = whole as i32 + g.left + (k % g.width) as i32;
                let ly = baseline + g.top + (k / g.width) as i32;
                let (tx, ty) = transform.transform(lx, ly);
                self.inner.draw_pixel(
                    (pos.0 + tx, pos.1 + ty),
                    BackendColor {
                        alpha: color.alpha * f64::from(c.min(1.0)),
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn font_loads_and_measures() {
        assert!(font().is_some());
        let (w1, h1) = text_size("Original", 20.0);
        let (w2, h2) = text_size("Original Original", 20.0);
        // Height is the font's ascent − descent: about the pixel size.
        assert!((18..=24).contains(&h1), "{h1}");
        assert_eq!(h1, h2);
        assert!(w2 > 2 * w1, "{w1} {w2}");
        assert_eq!(text_size("", 20.0).0, 0);
    }

    #[test]
    fn text_is_drawn_where_anchored() {
        use plotters::style::{IntoFont, TextStyle};
        let (w, h) = (200u32, 60u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let mut canvas = Canvas::new(BitMapBackend::with_buffer(&mut buf, (w, h)));
            let style: TextStyle = ("sans-serif", 20.0)
                .into_font()
                .color(&plotters::style::BLACK);
            canvas.draw_text("Hello", &style, (10, 10)).unwrap();
        }
        let dark: Vec<(u32, u32)> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[((y * w + x) * 3) as usize] < 128)
            .collect();
        assert!(dark.len() > 50, "{} dark pixels", dark.len());
        let (tw, th) = text_size("Hello", 20.0);
        // Ink stays inside the anchored box (top-left at (10, 10)), give or take
        // a pixel of antialiasing.
        for &(x, y) in &dark {
            assert!(x + 1 >= 10 && x <= 10 + tw + 1, "x {x}");
            assert!(y + 1 >= 10 && y <= 10 + th + 1, "y {y}");
        }
    }
}
