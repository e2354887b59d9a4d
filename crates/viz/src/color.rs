//! Colours: named constants (the notebook's Plots.jl colour names) and a
//! qualitative palette for per-class colours.

/// An opaque 8-bit sRGB colour. Transparency is a property of what is drawn
/// ([`PointSeries::alpha`](crate::PointSeries::alpha)), not of the colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Color {
    /// A colour from its three channels.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }

    /// `:blue` in Plots.jl (CSS blue).
    pub const BLUE: Color = Color::rgb(0, 0, 255);
    /// `:red` (CSS red).
    pub const RED: Color = Color::rgb(255, 0, 0);
    /// `:green` (CSS green, a dark green).
    pub const GREEN: Color = Color::rgb(0, 128, 0);
    /// `:orange` (CSS orange).
    pub const ORANGE: Color = Color::rgb(255, 165, 0);
    /// `:gray` (CSS gray).
    pub const GRAY: Color = Color::rgb(128, 128, 128);
    /// Black.
    pub const BLACK: Color = Color::rgb(0, 0, 0);
    /// White (the background of every figure).
    pub const WHITE: Color = Color::rgb(255, 255, 255);
    /// `:cornflowerblue` (CSS cornflowerblue).
    pub const CORNFLOWER: Color = Color::rgb(100, 149, 237);
    /// `:purple` (CSS purple).
    pub const PURPLE: Color = Color::rgb(128, 0, 128);

    /// The colour seen when this colour is painted with opacity `alpha` over `under`.
    pub fn over(self, under: Color, alpha: f64) -> Color {
        let a = alpha.clamp(0.0, 1.0);
        let mix = |f: u8, b: u8| (f64::from(f) * a + f64::from(b) * (1.0 - a)).round() as u8;
        Color::rgb(
            mix(self.r, under.r),
            mix(self.g, under.g),
            mix(self.b, under.b),
        )
    }

    pub(crate) fn to_plotters(self) -> plotters::style::RGBColor {
        plotters::style::RGBColor(self.r, self.g, self.b)
    }
}

/// The ten colours of matplotlib's `tab10` (the Vega/D3 category10 palette).
pub const PALETTE: [Color; 10] = [
    Color::rgb(0x1f, 0x77, 0xb4), // blue
    Color::rgb(0xff, 0x7f, 0x0e), // orange
    Color::rgb(0x2c, 0xa0, 0x2c), // green
    Color::rgb(0xd6, 0x27, 0x28), // red
    Color::rgb(0x94, 0x67, 0xbd), // purple
    Color::rgb(0x8c, 0x56, 0x4b), // brown
    Color::rgb(0xe3, 0x77, 0xc2), // pink
    Color::rgb(0x7f, 0x7f, 0x7f), // gray
    Color::rgb(0xbc, 0xbd, 0x22), // olive
    Color::rgb(0x17, 0xbe, 0xcf), // cyan
];

/// The `i`-th colour of the qualitative [`PALETTE`] (tab10), cycling after ten:
/// use it for per-class or per-component colours.
pub fn palette(i: usize) -> Color {
    PALETTE[i % PALETTE.len()]
}

/// matplotlib's viridis colour map (perceptually uniform, readable in grey and by
/// colour-blind readers) at t ∈ [0, 1] (clamped; NaN gives the low end): linear
/// interpolation between nine of its samples (matplotlib `_cm_listed.py`, every 32nd).
pub fn viridis(t: f64) -> Color {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |u: u8, v: u8| (f64::from(u) + (f64::from(v) - f64::from(u)) * f).round() as u8;
    Color::rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_cycles() {
        assert_eq!(palette(0), PALETTE[0]);
        assert_eq!(palette(13), PALETTE[3]);
        assert_ne!(palette(0), palette(1));
    }

    #[test]
    fn over_blends() {
        assert_eq!(
            Color::RED.over(Color::WHITE, 0.5),
            Color::rgb(255, 128, 128)
        );
        assert_eq!(Color::RED.over(Color::WHITE, 1.0), Color::RED);
        assert_eq!(Color::RED.over(Color::BLUE, 0.0), Color::BLUE);
    }
}
