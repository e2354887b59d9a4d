//! What a figure is made of: plain data, no drawing.
//!
//! Every struct has public fields and a [`Default`], so a caller can write
//! `Curve { label: "pdf".into(), points, color: Color::RED, ..Default::default() }`.

use crate::Color;

/// A polyline, drawn in data coordinates. Points with a non-finite coordinate
/// (or a coordinate ≤ 0 on a log axis) break the line; the line is clipped to the axes.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// Legend entry; empty for none.
    pub label: String,
    /// The vertices, in order.
    pub points: Vec<(f64, f64)>,
    /// Line colour.
    pub color: Color,
    /// Line width in pixels (at least 1 is drawn).
    pub width: u32,
    /// Dashed instead of solid.
    pub dashed: bool,
}

impl Default for Curve {
    fn default() -> Self {
        Self {
            label: String::new(),
            points: Vec::new(),
            color: Color::BLACK,
            width: 2,
            dashed: false,
        }
    }
}

impl Curve {
    /// A solid, 2-pixel curve.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: Color) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            ..Self::default()
        }
    }

    /// Samples `f` at `n` evenly spaced points of `[lo, hi]` (both ends included):
    /// the `plot!(x -> pdf(gmm, x), lo, hi)` of the notebook.
    pub fn from_fn(
        label: impl Into<String>,
        lo: f64,
        hi: f64,
        n: usize,
        color: Color,
        f: impl Fn(f64) -> f64,
    ) -> Self {
        let points = match n {
            0 => Vec::new(),
            1 => vec![(lo, f(lo))],
            _ => (0..n)
                .map(|i| {
                    let x = lo + (hi - lo) * i as f64 / (n - 1) as f64;
                    (x, f(x))
                })
                .collect(),
        };
        Self::new(label, points, color)
    }

    /// Sets the line width in pixels.
    pub fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }

    /// Makes the line dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    /// Arrows from each `tail` along its `vector` (data units) as one curve: a shaft and two
    /// barbs of `head` × the arrow's length at ±25° (a quiver plot's arrows), the arrows
    /// separated by breaks. Barbs are computed in data units, so they look right when
    /// the panel shows both axes at the same scale. Zero vectors draw nothing.
    pub fn arrows(label: impl Into<String>, arrows: &[Arrow], head: f64, color: Color) -> Self {
        let (cos, sin) = (25f64.to_radians().cos(), 25f64.to_radians().sin());
        let mut points = Vec::with_capacity(arrows.len() * 6);
        for &((x, y), (dx, dy)) in arrows {
            if dx == 0.0 && dy == 0.0 {
                continue;
            }
            let tip = (x + dx, y + dy);
            // The barbs: −head · vector, rotated by ±25°.
            let (bx, by) = (-head * dx, -head * dy);
            let left = (tip.0 + bx * cos - by * sin, tip.1 + bx * sin + by * cos);
            let right = (tip.0 + bx * cos + by * sin, tip.1 - bx * sin + by * cos);
            points.extend([(x, y), tip, left, (f64::NAN, f64::NAN), tip, right]);
            points.push((f64::NAN, f64::NAN));
        }
        Self::new(label, points, color)
    }
}

/// One arrow of [`Curve::arrows`]: its tail (x, y) and its vector (dx, dy), in data units.
pub type Arrow = ((f64, f64), (f64, f64));

/// A set of round markers of one colour.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSeries {
    /// Legend entry; empty for none.
    pub label: String,
    /// Marker centres in data coordinates; points outside the axes are not drawn.
    pub points: Vec<(f64, f64)>,
    /// Marker colour.
    pub color: Color,
    /// Marker radius in pixels (0 draws single pixels).
    pub radius: u32,
    /// Opacity in `[0, 1]` (Plots' `alpha`); overlapping markers darken.
    pub alpha: f64,
}

impl Default for PointSeries {
    fn default() -> Self {
        Self {
            label: String::new(),
            points: Vec::new(),
            color: Color::BLUE,
            radius: 2,
            alpha: 1.0,
        }
    }
}

impl PointSeries {
    /// Opaque markers of radius 2.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: Color) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            ..Self::default()
        }
    }

    /// Sets the marker radius in pixels.
    pub fn radius(mut self, radius: u32) -> Self {
        self.radius = radius;
        self
    }

    /// Sets the opacity.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
}

/// A histogram of `values`, optionally normalised to a density, with curves
/// (e.g. model densities) drawn over it.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Panel title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// The sample. Non-finite values are ignored; at least one finite value is needed.
    pub values: Vec<f64>,
    /// Number of equal-width bins (≥ 1).
    pub bins: usize,
    /// Scale bar heights so that their total area is 1 (Plots' `normalize=:pdf`);
    /// otherwise bars show counts.
    pub density: bool,
    /// Legend entry of the bars; empty for none.
    pub label: String,
    /// Bar colour.
    pub color: Color,
    /// Range binned and shown; values outside it are not counted. `None`: the
    /// data's range (widened to include the curves for display), padded by 5%.
    pub x_range: Option<(f64, f64)>,
    /// Curves drawn over the bars.
    pub curves: Vec<Curve>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            values: Vec::new(),
            bins: 50,
            density: true,
            label: String::new(),
            color: Color::CORNFLOWER,
            x_range: None,
            curves: Vec::new(),
        }
    }
}

/// A scatter plot on fixed axes (fixed so that animation frames line up).
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// Panel title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Shown x range, `lo < hi`.
    pub x_range: (f64, f64),
    /// Shown y range, `lo < hi`.
    pub y_range: (f64, f64),
    /// Drawn in order: later series on top.
    pub series: Vec<PointSeries>,
}

impl Default for Scatter {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (-1.0, 1.0),
            y_range: (-1.0, 1.0),
            series: Vec::new(),
        }
    }
}

/// Curves on linear or logarithmic y axes (loss curves, schedules, SNR…).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineChart {
    /// Panel title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Drawn in order: later curves on top.
    pub curves: Vec<Curve>,
    /// Markers drawn over all the curves, in order (e.g. where each path starts
    /// and ends); their legend entries follow the curves'. They do not widen the
    /// automatic ranges, and ones outside the axes are not drawn. Empty for none.
    pub markers: Vec<PointSeries>,
    /// Shown x range; `None`: the curves' range padded by 5%.
    pub x_range: Option<(f64, f64)>,
    /// Shown y range; `None`: the curves' range padded by 5% (multiplicatively
    /// on a log axis, where only y > 0 counts).
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Logarithmic x axis (points with x ≤ 0 break the line, as y ≤ 0 on a log y axis).
    pub log_x: bool,
}

/// A heat map: values on a regular grid over fixed axes, coloured with
/// [`viridis`](crate::viridis) on a fixed value range, with a colour bar on the right
/// (several panels with one `value_range` share one colour scale).
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// Panel title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Shown x range, `lo < hi`: the grid's outer edges.
    pub x_range: (f64, f64),
    /// Shown y range, `lo < hi`.
    pub y_range: (f64, f64),
    /// Cells along x (≥ 1).
    pub columns: usize,
    /// Cells along y (≥ 1).
    pub rows: usize,
    /// `rows × columns` values, row by row from the bottom (lowest y) up; cell (i, j)
    /// spans the i-th of `rows` equal slices of the y range and the j-th of x. Values
    /// outside `value_range` take its end colours; NaN is drawn white.
    pub values: Vec<f64>,
    /// The values at the colour map's two ends, `lo < hi`.
    pub value_range: (f64, f64),
    /// What the colour bar measures (drawn above it); empty for none.
    pub value_label: String,
}

impl Default for HeatMap {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            columns: 1,
            rows: 1,
            values: vec![0.0],
            value_range: (0.0, 1.0),
            value_label: String::new(),
        }
    }
}

/// One cell of a figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Panel {
    /// A histogram with density curves.
    Histogram(Histogram),
    /// A scatter plot.
    Scatter(Scatter),
    /// A line chart.
    Line(LineChart),
    /// A heat map with its colour bar.
    Heat(HeatMap),
}

impl From<HeatMap> for Panel {
    fn from(h: HeatMap) -> Self {
        Panel::Heat(h)
    }
}

impl From<Histogram> for Panel {
    fn from(h: Histogram) -> Self {
        Panel::Histogram(h)
    }
}

impl From<Scatter> for Panel {
    fn from(s: Scatter) -> Self {
        Panel::Scatter(s)
    }
}

impl From<LineChart> for Panel {
    fn from(l: LineChart) -> Self {
        Panel::Line(l)
    }
}
