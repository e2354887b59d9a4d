//! Drawing panels into an RGB buffer with plotters, and PNG encoding.

use std::sync::OnceLock;

use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::{
    Circle, DashedPathElement, Drawable, PathElement, PointCollection, Rectangle,
};
use plotters::prelude::BitMapBackend;
use plotters::style::{
    register_font, Color as _, FontDesc, FontFamily, FontStyle, RGBColor, ShapeStyle, TextStyle,
    TRANSPARENT, WHITE,
};
use plotters_backend::{BackendColor, BackendCoord, DrawingBackend, DrawingErrorKind};

use crate::axis::{auto_range, check_range, clip_polyline, Axis};
use crate::error::invalid;
use crate::hist::{bin_values, Bins};
use crate::text::{text_size, Canvas, FONT_BYTES};
use crate::{viridis, Color, Curve, HeatMap, Panel, PointSeries, VizError};

/// The family every text of the crate uses; the embedded font is registered under it.
const FAMILY: &str = "sans-serif";

/// Largest accepted figure side, in pixels (plotters works in `i32` coordinates,
/// and a bigger figure is surely a mistake).
const MAX_SIDE: u32 = 16_384;

/// Grid lines.
pub(crate) const MESH_GREY: Color = Color::rgb(226, 226, 226);
/// Axis lines.
pub(crate) const AXIS_GREY: Color = Color::rgb(90, 90, 90);

/// Padding of automatic ranges, as a fraction of the data's extent on each side.
const PAD: f64 = 0.05;

/// Registers the embedded font with plotters, once per process. Our
/// [`Canvas`] draws all text itself, but plotters resolves font names when
/// styles are built, so the family must exist.
fn ensure_font() -> Result<(), VizError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let ok = register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
                && crate::text::font().is_some();
            ok.then_some(())
                .ok_or_else(|| "the embedded DejaVu Sans font could not be loaded".to_string())
        })
        .clone()
        .map_err(VizError::Render)
}

fn render_err(e: impl std::fmt::Display) -> VizError {
    VizError::Render(e.to_string())
}

/// Checks a figure's shape; returns the RGB buffer length.
pub(crate) fn check_figure(
    panels: &[Panel],
    columns: usize,
    width: u32,
    height: u32,
) -> Result<usize, VizError> {
    if panels.is_empty() {
        return invalid("a figure needs at least one panel");
    }
    if columns == 0 {
        return invalid("a figure needs at least one column");
    }
    if width == 0 || height == 0 {
        return invalid(format!("figure size {width}x{height} has a zero side"));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return invalid(format!(
            "figure size {width}x{height} exceeds {MAX_SIDE} pixels on a side"
        ));
    }
    Ok(width as usize * height as usize * 3)
}

/// Draws `panels` on a white `width`×`height` canvas, in a grid of `columns`
/// columns (fewer if there are fewer panels), row by row, each cell the same
/// size. Returns the pixels as RGB8, row-major, `width * height * 3` bytes.
///
/// Errors: no panel, zero columns, a zero or huge side, or a panel that cannot be
/// drawn (empty histogram, empty or reversed range, a line chart without data…).
pub fn render_rgb(
    panels: &[Panel],
    columns: usize,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, VizError> {
    let len = check_figure(panels, columns, width, height)?;
    let mut buf = vec![255u8; len];
    render_into(panels, columns, width, height, &mut buf)?;
    Ok(buf)
}

/// [`render_rgb`], encoded as PNG.
pub fn render_png(
    panels: &[Panel],
    columns: usize,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, VizError> {
    let rgb = render_rgb(panels, columns, width, height)?;
    encode_png(&rgb, width, height)
}

/// Encodes an RGB8 buffer (`width * height * 3` bytes, row-major) as PNG bytes.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, VizError> {
    use image::ImageEncoder;
    if width == 0 || height == 0 {
        return invalid(format!("image size {width}x{height} has a zero side"));
    }
    let expected = width as usize * height as usize * 3;
    if rgb.len() != expected {
        return invalid(format!(
            "RGB buffer has {} bytes, {width}x{height} needs {expected}",
            rgb.len()
        ));
    }
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| VizError::Encode(e.to_string()))?;
    Ok(out)
}

/// Draws into a caller-provided buffer of the right size (checked by the caller
/// with [`check_figure`]), so animation workers can reuse one buffer.
pub(crate) fn render_into(
    panels: &[Panel],
    columns: usize,
    width: u32,
    height: u32,
    buf: &mut [u8],
) -> Result<(), VizError> {
    ensure_font()?;
    // Validate and prepare every panel before touching the canvas.
    let plans = panels
        .iter()
        .map(Plan::new)
        .collect::<Result<Vec<_>, _>>()?;
    buf.fill(255);
    let root = Canvas::new(BitMapBackend::with_buffer(buf, (width, height))).into_drawing_area();
    let cols = columns.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let cells = root.split_evenly((rows, cols));
    for (cell, plan) in cells.iter().zip(&plans) {
        plan.draw(cell)?;
    }
    root.present().map_err(render_err)?;
    Ok(())
}

/// Text sizes and spacing of one panel, in pixels.
struct Sizes {
    title: f64,
    desc: f64,
    tick: f64,
    legend: f64,
    margin: i32,
}

impl Sizes {
    /// Sizes for a 900×600 panel, scaled gently (square root) with the panel's
    /// smaller relative side, so narrow animation panels keep readable text.
    fn for_panel(w: u32, h: u32) -> Self {
        let f = (f64::from(w) / 600.0)
            .min(f64::from(h) / 600.0)
            .sqrt()
            .clamp(0.55, 3.0);
        Self {
            title: 26.0 * f,
            desc: 20.0 * f,
            tick: 17.0 * f,
            legend: 17.0 * f,
            margin: (12.0 * f).round() as i32,
        }
    }
}

fn font(size: f64) -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal).into()
}

/// What a panel draws inside its axes.
enum Content<'p> {
    Bars {
        bins: Bins,
        color: Color,
        label: &'p str,
        curves: &'p [Curve],
    },
    Points(&'p [PointSeries]),
    Curves {
        curves: &'p [Curve],
        markers: &'p [PointSeries],
    },
    Heat(&'p HeatMap),
}

/// A validated panel with its data ranges resolved.
struct Plan<'p> {
    title: &'p str,
    x_label: &'p str,
    y_label: &'p str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    log_x: bool,
    log_y: bool,
    content: Content<'p>,
}

fn curve_points(curves: &[Curve]) -> impl Iterator<Item = (f64, f64)> + '_ {
    curves.iter().flat_map(|c| c.points.iter().copied())
}

impl<'p> Plan<'p> {
    fn new(panel: &'p Panel) -> Result<Self, VizError> {
        match panel {
            Panel::Histogram(h) => {
                let bins = bin_values(&h.values, h.bins, h.x_range, h.density)?;
                let x_range = match h.x_range {
                    Some(r) => r,
                    None => {
                        let lo = bins.edges[0];
                        let hi = bins.edges[bins.edges.len() - 1];
                        let xs = curve_points(&h.curves).map(|p| p.0);
                        auto_range(xs.chain([lo, hi]), false, PAD).unwrap_or((lo, hi))
                    }
                };
                let (x0, x1) = x_range;
                let top = bins
                    .heights
                    .iter()
                    .copied()
                    .chain(
                        curve_points(&h.curves)
                            .filter(|p| p.0 >= x0 && p.0 <= x1)
                            .map(|p| p.1),
                    )
                    .filter(|v| v.is_finite())
                    .fold(0.0f64, f64::max);
                let top = if top > 0.0 {
                    top * (1.0 + 2.0 * PAD)
                } else {
                    1.0
                };
                Ok(Self {
                    title: &h.title,
                    x_label: &h.x_label,
                    y_label: &h.y_label,
                    x_range,
                    y_range: (0.0, top),
                    log_x: false,
                    log_y: false,
                    content: Content::Bars {
                        bins,
                        color: h.color,
                        label: &h.label,
                        curves: &h.curves,
                    },
                })
            }
            Panel::Scatter(s) => {
                check_range(s.x_range.0, s.x_range.1, false, "scatter x")?;
                check_range(s.y_range.0, s.y_range.1, false, "scatter y")?;
                check_alphas(&s.series)?;
                Ok(Self {
                    title: &s.title,
                    x_label: &s.x_label,
                    y_label: &s.y_label,
                    x_range: s.x_range,
                    y_range: s.y_range,
                    log_x: false,
                    log_y: false,
                    content: Content::Points(&s.series),
                })
            }
            Panel::Line(l) => {
                let x_range = match l.x_range {
                    Some(r) => r,
                    None => auto_range(curve_points(&l.curves).map(|p| p.0), l.log_x, PAD)
                        .ok_or_else(|| {
                            VizError::InvalidInput(format!(
                                "line chart {:?} has no {} x value and no x range",
                                l.title,
                                if l.log_x { "positive" } else { "finite" }
                            ))
                        })?,
                };
                let y_range = match l.y_range {
                    Some(r) => r,
                    None => {
                        let (x0, x1) = x_range;
                        let ys = curve_points(&l.curves)
                            .filter(|p| p.0 >= x0 && p.0 <= x1)
                            .map(|p| p.1);
                        auto_range(ys, l.log_y, PAD).ok_or_else(|| {
                            VizError::InvalidInput(format!(
                                "line chart {:?} has no {} y value and no y range",
                                l.title,
                                if l.log_y { "positive" } else { "finite" }
                            ))
                        })?
                    }
                };
                check_range(x_range.0, x_range.1, l.log_x, "line chart x")?;
                check_range(y_range.0, y_range.1, l.log_y, "line chart y")?;
                check_alphas(&l.markers)?;
                Ok(Self {
                    title: &l.title,
                    x_label: &l.x_label,
                    y_label: &l.y_label,
                    x_range,
                    y_range,
                    log_x: l.log_x,
                    log_y: l.log_y,
                    content: Content::Curves {
                        curves: &l.curves,
                        markers: &l.markers,
                    },
                })
            }
            Panel::Heat(m) => {
                check_range(m.x_range.0, m.x_range.1, false, "heat map x")?;
                check_range(m.y_range.0, m.y_range.1, false, "heat map y")?;
                check_range(m.value_range.0, m.value_range.1, false, "heat map value")?;
                if m.columns == 0 || m.rows == 0 || m.values.len() != m.columns * m.rows {
                    return invalid(format!(
                        "heat map {:?} has {} values for {} × {} cells (both at least 1)",
                        m.title,
                        m.values.len(),
                        m.rows,
                        m.columns
                    ));
                }
                Ok(Self {
                    title: &m.title,
                    x_label: &m.x_label,
                    y_label: &m.y_label,
                    x_range: m.x_range,
                    y_range: m.y_range,
                    log_x: false,
                    log_y: false,
                    content: Content::Heat(m),
                })
            }
        }
    }

    /// The legend's entries, in drawing order.
    fn legend_labels(&self) -> Vec<&str> {
        let curves = |c: &'p [Curve]| c.iter().map(|c| c.label.as_str()).collect::<Vec<_>>();
        let mut v = match &self.content {
            Content::Bars {
                label, curves: c, ..
            } => {
                let mut v = vec![*label];
                v.extend(curves(c));
                v
            }
            Content::Points(series) => series.iter().map(|s| s.label.as_str()).collect(),
            Content::Curves { curves: c, markers } => {
                let mut v = curves(c);
                v.extend(markers.iter().map(|m| m.label.as_str()));
                v
            }
            Content::Heat(_) => Vec::new(),
        };
        v.retain(|l| !l.is_empty());
        v
    }

    /// Whether any element will get a legend entry.
    fn has_legend(&self) -> bool {
        !self.legend_labels().is_empty()
    }

    fn draw(&self, area: &DrawingArea<Canvas<'_>, Shift>) -> Result<(), VizError> {
        let (w, h) = area.dim_in_pixel();
        let s = Sizes::for_panel(w, h);
        let text_w = |text: &str, size: f64| text_size(text, size).0 as i32;
        let tick_font = font(s.tick);

        // Title: shrink until it fits the panel's width.
        let mut title_size = s.title;
        while title_size > 10.0 && text_w(self.title, title_size) > w as i32 - 2 * s.margin {
            title_size *= 0.92;
        }
        let title_h = if self.title.is_empty() {
            0
        } else {
            (title_size * 1.25) as i32 + s.margin / 2
        };

        // Axis areas: tick labels plus the axis description.
        let x_area = (s.tick * 1.2) as i32
            + 10
            + if self.x_label.is_empty() {
                0
            } else {
                (s.desc * 1.2) as i32 + 6
            };
        let plot_h = (h as i32 - title_h - x_area - 2 * s.margin).max(20);
        let y_ticks = ((f64::from(plot_h) / (s.tick * 3.2)) as usize).clamp(3, 9);
        let y_axis = Axis::new(self.y_range.0, self.y_range.1, self.log_y, y_ticks)?;
        let widest_y = y_axis
            .ticks()
            .iter()
            .map(|&t| text_w(&y_axis.format(t), s.tick))
            .max()
            .unwrap_or(0);
        let y_area = widest_y
            + 12
            + if self.y_label.is_empty() {
                0
            } else {
                (s.desc * 1.2) as i32 + 8
            };
        // A heat map's colour bar: a strip, a gap and its tick labels, right of the axes.
        let colorbar = match &self.content {
            Content::Heat(m) => Some(ColorBar::new(m, &s, plot_h)?),
            _ => None,
        };
        let bar_w = colorbar.as_ref().map_or(0, |c| c.width);
        let plot_w = (w as i32 - y_area - 3 * s.margin - bar_w).max(20);
        // As many x ticks as fit with 1.5 label-heights between labels.
        let mut x_ticks = ((f64::from(plot_w) / (s.tick * 4.0)) as usize).clamp(3, 11);
        let x_axis = loop {
            let axis = Axis::new(self.x_range.0, self.x_range.1, self.log_x, x_ticks)?;
            let widest = axis
                .ticks()
                .iter()
                .map(|&t| text_w(&axis.format(t), s.tick))
                .max()
                .unwrap_or(0);
            let needed = axis.ticks().len() as i32 * (widest + (s.tick * 1.5) as i32);
            if needed <= plot_w || x_ticks <= 3 {
                break axis;
            }
            x_ticks -= 1;
        };

        let mut builder = ChartBuilder::on(area);
        builder
            .margin(s.margin)
            .margin_right(2 * s.margin + bar_w)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area);
        if !self.title.is_empty() {
            builder.caption(self.title, font(title_size));
        }
        let mut chart = builder
            .build_cartesian_2d(x_axis.clone(), y_axis.clone())
            .map_err(render_err)?;

        let fx = |v: &f64| x_axis.format(*v);
        let fy = |v: &f64| y_axis.format(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(x_axis.ticks().len().max(1))
            .y_labels(y_axis.ticks().len().max(1))
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .label_style(tick_font.clone())
            .axis_desc_style(font(s.desc))
            .bold_line_style(MESH_GREY.to_plotters())
            .light_line_style(TRANSPARENT)
            .max_light_lines(0)
            .axis_style(AXIS_GREY.to_plotters());
        if !self.x_label.is_empty() {
            mesh.x_desc(self.x_label);
        }
        if !self.y_label.is_empty() {
            mesh.y_desc(self.y_label);
        }
        mesh.draw().map_err(render_err)?;

        let swatch = (24.0 * s.legend / 17.0).round() as i32;
        // Where the data is, in pixels, to keep the legend off it.
        let mut ink: Vec<(f64, f64)> = Vec::new();
        let corners: &[SeriesLabelPosition] = match &self.content {
            Content::Bars {
                bins,
                color,
                label,
                curves,
            } => {
                draw_bars(&mut chart, bins, *color, label, swatch, &mut ink)?;
                for c in curves.iter() {
                    draw_curve(&mut chart, c, &x_axis, &y_axis, swatch, &mut ink)?;
                }
                // Bars fill the bottom: only the upper corners are candidates.
                &[
                    SeriesLabelPosition::UpperRight,
                    SeriesLabelPosition::UpperLeft,
                ]
            }
            Content::Points(series) => {
                for p in series.iter() {
                    draw_points(&mut chart, p, &x_axis, &y_axis, swatch)?;
                }
                // Fixed, so that animation frames do not make the legend jump.
                &[SeriesLabelPosition::UpperRight]
            }
            Content::Curves { curves, markers } => {
                for c in curves.iter() {
                    draw_curve(&mut chart, c, &x_axis, &y_axis, swatch, &mut ink)?;
                }
                for m in markers.iter() {
                    for &(a, b) in &m.points {
                        if x_axis.contains(a) && y_axis.contains(b) {
                            let (px, py) = chart.backend_coord(&(a, b));
                            ink.push((f64::from(px), f64::from(py)));
                        }
                    }
                    draw_points(&mut chart, m, &x_axis, &y_axis, swatch)?;
                }
                &[
                    SeriesLabelPosition::UpperRight,
                    SeriesLabelPosition::UpperLeft,
                    SeriesLabelPosition::LowerRight,
                    SeriesLabelPosition::LowerLeft,
                ]
            }
            Content::Heat(m) => {
                draw_cells(&mut chart, m)?;
                if let Some(bar) = &colorbar {
                    let (px, py) = chart.plotting_area().get_pixel_range();
                    bar.draw(area, m, (px.end, py), &s)?;
                }
                &[SeriesLabelPosition::UpperRight]
            }
        };

        if self.has_legend() {
            let margin = (8.0 * s.legend / 17.0) as i32;
            let labels = self.legend_labels();
            let widest = labels
                .iter()
                .map(|l| text_w(l, s.legend))
                .max()
                .unwrap_or(0);
            // plotters' legend box: lines 1.25 font-heights apart (its font height
            // is size / 1.24), plus the swatch column and margins.
            let legend_size = (
                widest + swatch + 10 + 2 * margin,
                (labels.len() as f64 * 1.25 * s.legend / 1.24) as i32 + 2 * margin,
            );
            let (px, py) = chart.plotting_area().get_pixel_range();
            let position = legend_corner(corners, &ink, legend_size, (px, py));
            chart
                .configure_series_labels()
                .position(position)
                .margin(margin)
                .legend_area_size(swatch + 10)
                .label_font(font(s.legend))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(170, 170, 170))
                .draw()
                .map_err(render_err)?;
        }
        Ok(())
    }
}

/// The first of `corners` (in order of preference) whose legend box of `size`
/// covers the fewest `ink` samples; box placement as in plotters (5 px inset).
fn legend_corner(
    corners: &[SeriesLabelPosition],
    ink: &[(f64, f64)],
    size: (i32, i32),
    (px, py): (std::ops::Range<i32>, std::ops::Range<i32>),
) -> SeriesLabelPosition {
    let covered = |corner: &SeriesLabelPosition| {
        let left = matches!(
            corner,
            SeriesLabelPosition::UpperLeft | SeriesLabelPosition::LowerLeft
        );
        let top = matches!(
            corner,
            SeriesLabelPosition::UpperLeft | SeriesLabelPosition::UpperRight
        );
        let x0 = if left {
            px.start + 5
        } else {
            px.end - size.0 - 5
        };
        let y0 = if top {
            py.start + 5
        } else {
            py.end - size.1 - 5
        };
        let (x0, y0) = (f64::from(x0 - 3), f64::from(y0 - 3));
        let (x1, y1) = (x0 + f64::from(size.0 + 6), y0 + f64::from(size.1 + 6));
        ink.iter()
            .filter(|&&(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
            .count()
    };
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for corner in corners {
        let n = covered(corner);
        if n < best.0 {
            best = (n, corner.clone());
        }
        if n == 0 {
            break;
        }
    }
    best.1
}

/// Every series' alpha lies in `[0, 1]`.
fn check_alphas(series: &[PointSeries]) -> Result<(), VizError> {
    for s in series {
        if !(0.0..=1.0).contains(&s.alpha) {
            return invalid(format!(
                "point series {:?} has alpha {} outside [0, 1]",
                s.label, s.alpha
            ));
        }
    }
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, Canvas<'b>, Cartesian2d<Axis, Axis>>;

/// A heat map's colour at value v: viridis over the value range, white for NaN.
fn heat_color(m: &HeatMap, v: f64) -> Color {
    if v.is_nan() {
        return Color::WHITE;
    }
    let (lo, hi) = m.value_range;
    viridis((v - lo) / (hi - lo))
}

/// The cells of a heat map, each a filled rectangle in data coordinates.
fn draw_cells(chart: &mut Chart<'_, '_>, m: &HeatMap) -> Result<(), VizError> {
    let (x0, x1) = m.x_range;
    let (y0, y1) = m.y_range;
    // Neighbouring cells share their edge values exactly, so no pixel falls between them.
    let x_edge = |j: usize| x0 + (x1 - x0) * j as f64 / m.columns as f64;
    let y_edge = |i: usize| y0 + (y1 - y0) * i as f64 / m.rows as f64;
    let cells = m.values.iter().enumerate().map(|(k, &v)| {
        let (i, j) = (k / m.columns, k % m.columns);
        Rectangle::new(
            [(x_edge(j), y_edge(i)), (x_edge(j + 1), y_edge(i + 1))],
            heat_color(m, v).to_plotters().filled(),
        )
    });
    chart.draw_series(cells).map_err(render_err)?;
    Ok(())
}

/// The colour bar of a heat map: its width in pixels (strip, gap, tick labels) and ticks.
struct ColorBar {
    width: i32,
    strip: i32,
    axis: Axis,
}

impl ColorBar {
    fn new(m: &HeatMap, s: &Sizes, plot_h: i32) -> Result<Self, VizError> {
        let ticks = ((f64::from(plot_h) / (s.tick * 3.2)) as usize).clamp(3, 7);
        let axis = Axis::new(m.value_range.0, m.value_range.1, false, ticks)?;
        let widest = axis
            .ticks()
            .iter()
            .map(|&t| text_size(&axis.format(t), s.tick).0 as i32)
            .max()
            .unwrap_or(0);
        let strip = (s.tick * 1.1) as i32;
        let label = text_size(&m.value_label, s.tick).0 as i32;
        let width = (s.margin + strip + 6 + widest).max(label / 2 + strip) + s.margin;
        Ok(Self { width, strip, axis })
    }

    /// Draws the strip right of the plotting area (which ends at pixel `right`, rows
    /// `py`), its ticks and labels, and the value label above it.
    fn draw(
        &self,
        area: &DrawingArea<Canvas<'_>, Shift>,
        m: &HeatMap,
        (right, py): (i32, std::ops::Range<i32>),
        s: &Sizes,
    ) -> Result<(), VizError> {
        let (bx, by) = area.get_base_pixel();
        let x0 = right - bx + s.margin;
        let (top, bottom) = (py.start - by, py.end - 1 - by);
        let (lo, hi) = m.value_range;
        for y in top..=bottom {
            let f = f64::from(bottom - y) / f64::from((bottom - top).max(1));
            let color = heat_color(m, lo + f * (hi - lo)).to_plotters().filled();
            area.draw(&Rectangle::new([(x0, y), (x0 + self.strip, y + 1)], color))
                .map_err(render_err)?;
        }
        let edge = AXIS_GREY.to_plotters().stroke_width(1);
        area.draw(&Rectangle::new(
            [(x0, top), (x0 + self.strip, bottom + 1)],
            edge,
        ))
        .map_err(render_err)?;
        let grey = AXIS_GREY.to_plotters();
        let style = font(s.tick).color(&grey);
        for &t in self.axis.ticks() {
            let f = (t - lo) / (hi - lo);
            let y = bottom - (f * f64::from(bottom - top)).round() as i32;
            area.draw(&PathElement::new(
                vec![(x0 + self.strip, y), (x0 + self.strip + 4, y)],
                edge,
            ))
            .map_err(render_err)?;
            let text = self.axis.format(t);
            let (_, th) = text_size(&text, s.tick);
            area.draw(&plotters::element::Text::new(
                text,
                (x0 + self.strip + 6, y - th as i32 / 2),
                style.clone(),
            ))
            .map_err(render_err)?;
        }
        if !m.value_label.is_empty() {
            let (tw, th) = text_size(&m.value_label, s.tick);
            let x = (x0 + self.strip / 2 - tw as i32 / 2).max(0);
            area.draw(&plotters::element::Text::new(
                m.value_label.clone(),
                (x, top - th as i32 - 6),
                style,
            ))
            .map_err(render_err)?;
        }
        Ok(())
    }
}

fn draw_bars(
    chart: &mut Chart<'_, '_>,
    bins: &Bins,
    color: Color,
    label: &str,
    swatch: i32,
    ink: &mut Vec<(f64, f64)>,
) -> Result<(), VizError> {
    let fill = color.to_plotters().mix(0.6).filled();
    for (&h, e) in bins.heights.iter().zip(bins.edges.windows(2)) {
        if h > 0.0 {
            let (x0, y0) = chart.backend_coord(&(e[0], h));
            let (x1, y1) = chart.backend_coord(&(e[1], 0.0));
            for x in (x0..=x1).step_by(3) {
                for y in (y0..=y1).step_by(3) {
                    ink.push((f64::from(x), f64::from(y)));
                }
            }
        }
    }
    // An outline only where bars are wide enough for it not to hide the fill.
    let (px, _) = chart.plotting_area().get_pixel_range();
    let bar_px = f64::from(px.end - px.start) * (bins.edges[bins.edges.len() - 1] - bins.edges[0])
        / (chart.x_range().end - chart.x_range().start)
        / bins.heights.len() as f64;
    let edge = Color::BLACK.over(color, 0.35).to_plotters();
    let bars = bins
        .heights
        .iter()
        .zip(bins.edges.windows(2))
        .filter(|(h, _)| **h > 0.0)
        .map(|(&h, e)| Rectangle::new([(e[0], 0.0), (e[1], h)], fill));
    let anno = chart.draw_series(bars).map_err(render_err)?;
    if !label.is_empty() {
        anno.label(label).legend(move |(x, y)| {
            Rectangle::new([(x, y - swatch / 4), (x + swatch, y + swatch / 4)], fill)
        });
    }
    if bar_px >= 4.0 {
        let outlines = bins
            .heights
            .iter()
            .zip(bins.edges.windows(2))
            .filter(|(h, _)| **h > 0.0)
            .map(|(&h, e)| Rectangle::new([(e[0], 0.0), (e[1], h)], edge.stroke_width(1)));
        chart.draw_series(outlines).map_err(render_err)?;
    }
    Ok(())
}

fn draw_curve(
    chart: &mut Chart<'_, '_>,
    c: &Curve,
    x: &Axis,
    y: &Axis,
    swatch: i32,
    ink: &mut Vec<(f64, f64)>,
) -> Result<(), VizError> {
    let width = c.width.max(1);
    let style: ShapeStyle = c.color.to_plotters().stroke_width(width);
    let (px, py) = chart.plotting_area().get_pixel_range();
    // The pixel transform plotters uses (ChartBuilder maps to end − 1, y flipped),
    // kept in floating point so the antialiasing sees sub-pixel positions.
    let (x0, x1) = (f64::from(px.start), f64::from(px.end - 1));
    let (y0, y1) = (f64::from(py.end - 1), f64::from(py.start));
    let to_px = |p: (f64, f64)| {
        (
            x0 + x.fraction(p.0) * (x1 - x0),
            y0 + y.fraction(p.1) * (y1 - y0),
        )
    };
    let w = f64::from(width);
    let stroke = Stroke {
        pieces: clip_polyline(&c.points, x, y)
            .into_iter()
            .map(|piece| piece.into_iter().map(to_px).collect())
            .collect(),
        half_width: w / 2.0,
        dash: c.dashed.then_some((4.0 * w + 4.0, 3.0 * w + 2.0)),
        rgb: (c.color.r, c.color.g, c.color.b),
        clip: (px.start, px.end, py.start, py.end),
    };
    for piece in &stroke.pieces {
        for seg in piece.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let n = ((b.0 - a.0).hypot(b.1 - a.1) / 2.0).ceil().max(1.0) as usize;
            ink.extend((0..n).map(|k| {
                let t = k as f64 / n as f64;
                (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
            }));
        }
        ink.extend(piece.last().copied());
    }
    let anno = chart
        .draw_series(std::iter::once(stroke))
        .map_err(render_err)?;
    if !c.label.is_empty() {
        anno.label(&c.label);
        if c.dashed {
            let (d, g) = (swatch as u32 / 3, swatch as u32 / 6);
            anno.legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + swatch, y)], d, g, style)
            });
        } else {
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + swatch, y)], style));
        }
    }
    Ok(())
}

/// Antialiased polylines in pixel space (plotters' lines are aliased and its
/// wide lines jagged). Each pixel's coverage is its distance to the nearest
/// segment, taken as a maximum over the polyline so joints are not painted
/// twice; round caps and joins come for free.
struct Stroke {
    pieces: Vec<Vec<(f64, f64)>>,
    half_width: f64,
    /// Dash and gap lengths in pixels, measured along the line.
    dash: Option<(f64, f64)>,
    rgb: (u8, u8, u8),
    /// x0, x1, y0, y1 (half-open) in backend pixels.
    clip: (i32, i32, i32, i32),
}

impl<'a> PointCollection<'a, (f64, f64)> for &'a Stroke {
    type Point = &'a (f64, f64);
    type IntoIter = std::iter::Empty<&'a (f64, f64)>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::empty()
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Stroke {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        _pos: I,
        backend: &mut DB,
        _parent_dim: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let reach = self.half_width + 1.0;
        let (cx0, cx1, cy0, cy1) = self.clip;
        for piece in &self.pieces {
            // Bounding box of the piece, in pixels, inside the clip rectangle.
            let (mut bx0, mut bx1, mut by0, mut by1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(px, py) in piece {
                bx0 = bx0.min(px);
                bx1 = bx1.max(px);
                by0 = by0.min(py);
                by1 = by1.max(py);
            }
            let ix0 = ((bx0 - reach).floor() as i32).max(cx0);
            let ix1 = ((bx1 + reach).ceil() as i32).min(cx1 - 1);
            let iy0 = ((by0 - reach).floor() as i32).max(cy0);
            let iy1 = ((by1 + reach).ceil() as i32).min(cy1 - 1);
            if ix0 > ix1 || iy0 > iy1 {
                continue;
            }
            let bw = (ix1 - ix0 + 1) as usize;
            let mut coverage = vec![0f32; bw * (iy1 - iy0 + 1) as usize];
            let mut along = 0.0; // arc length at the segment's start
            for seg in piece.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len2 = dx * dx + dy * dy;
                let len = len2.sqrt();
                let sx0 = ((a.0.min(b.0) - reach).floor() as i32).max(ix0);
                let sx1 = ((a.0.max(b.0) + reach).ceil() as i32).min(ix1);
                let sy0 = ((a.1.min(b.1) - reach).floor() as i32).max(iy0);
                let sy1 = ((a.1.max(b.1) + reach).ceil() as i32).min(iy1);
                for py in sy0..=sy1 {
                    for px in sx0..=sx1 {
                        let (qx, qy) = (f64::from(px) - a.0, f64::from(py) - a.1);
                        let t = if len2 > 0.0 {
                            ((qx * dx + qy * dy) / len2).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                        if let Some((on, off)) = self.dash {
                            if (along + t * len) % (on + off) >= on {
                                continue;
                            }
                        }
                        let (ex, ey) = (qx - t * dx, qy - t * dy);
                        let c =
                            (self.half_width + 0.5 - (ex * ex + ey * ey).sqrt()).clamp(0.0, 1.0);
                        let slot = &mut coverage[(py - iy0) as usize * bw + (px - ix0) as usize];
                        *slot = slot.max(c as f32);
                    }
                }
                along += len;
            }
            for (k, &c) in coverage.iter().enumerate() {
                if c > 0.0 {
                    let px = ix0 + (k % bw) as i32;
                    let py = iy0 + (k / bw) as i32;
                    backend.draw_pixel(
                        (px, py),
                        BackendColor {
                            alpha: f64::from(c),
                            rgb: self.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn draw_points(
    chart: &mut Chart<'_, '_>,
    p: &PointSeries,
    x: &Axis,
    y: &Axis,
    swatch: i32,
) -> Result<(), VizError> {
    let mask = disk_mask(p.radius);
    let (px, py) = chart.plotting_area().get_pixel_range();
    let clip = (px.start, px.end, py.start, py.end);
    let rgb = (p.color.r, p.color.g, p.color.b);
    let dots = p
        .points
        .iter()
        .filter(|&&(a, b)| x.contains(a) && y.contains(b))
        .map(|&at| Dot {
            at,
            mask: &mask,
            rgb,
            alpha: p.alpha,
            clip,
        });
    let anno = chart.draw_series(dots).map_err(render_err)?;
    if !p.label.is_empty() {
        let color = p.color.to_plotters().mix(p.alpha.max(0.6)).filled();
        let r = (p.radius.max(3) as i32).min(swatch / 3);
        anno.label(&p.label)
            .legend(move |(x, y)| Circle::new((x + swatch / 2, y), r, color));
    }
    Ok(())
}

/// Pixel offsets and coverage of an antialiased disk of radius `r` centred on a
/// pixel centre. Each pixel appears once, so translucent markers blend evenly
/// (plotters' filled `Circle` paints its centre lines twice, which shows as a
/// darker cross when alpha < 1).
fn disk_mask(r: u32) -> Vec<(i32, i32, f64)> {
    if r == 0 {
        return vec![(0, 0, 1.0)];
    }
    let r = f64::from(r);
    let reach = r.ceil() as i32 + 1;
    let mut mask = Vec::new();
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let d = f64::from(dx * dx + dy * dy).sqrt();
            let coverage = (r + 0.5 - d).clamp(0.0, 1.0);
            if coverage > 0.0 {
                mask.push((dx, dy, coverage));
            }
        }
    }
    mask
}

/// One marker: a [`disk_mask`] stamped at a point, clipped to the plotting area.
struct Dot<'m> {
    at: (f64, f64),
    mask: &'m [(i32, i32, f64)],
    rgb: (u8, u8, u8),
    alpha: f64,
    /// x0, x1, y0, y1 (half-open) in backend pixels.
    clip: (i32, i32, i32, i32),
}

impl<'a> PointCollection<'a, (f64, f64)> for &'a Dot<'_> {
    type Point = &'a (f64, f64);
    type IntoIter = std::iter::Once<&'a (f64, f64)>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Dot<'_> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _parent_dim: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((cx, cy)) = pos.next() else {
            return Ok(());
        };
        let (x0, x1, y0, y1) = self.clip;
        for &(dx, dy, coverage) in self.mask {
            let (x, y) = (cx + dx, cy + dy);
            if x >= x0 && x < x1 && y >= y0 && y < y1 {
                backend.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha: self.alpha * coverage,
                        rgb: self.rgb,
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
    use crate::{Histogram, LineChart, Scatter};

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    fn count(img: &image::RgbImage, pred: impl Fn(&image::Rgb<u8>) -> bool) -> usize {
        img.pixels().filter(|p| pred(p)).count()
    }

    fn normal_pdf(x: f64) -> f64 {
        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// A deterministic, roughly normal sample (sum of 12 uniforms − 6).
    fn sample(n: usize) -> Vec<f64> {
        let mut s = 12345u64;
        let mut u = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| (0..12).map(|_| u()).sum::<f64>() - 6.0)
            .collect()
    }

    #[test]
    fn heat_map_cells_take_the_colour_map_and_bad_shapes_are_errors() {
        // A 2 × 2 map: the low end (viridis purple) bottom-left, the high end (yellow)
        // top-right; the colour bar shows both ends too.
        let map = HeatMap {
            title: "heat".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_range: (0.0, 2.0),
            y_range: (0.0, 2.0),
            columns: 2,
            rows: 2,
            values: vec![0.0, 0.5, 0.5, 1.0],
            value_range: (0.0, 1.0),
            value_label: "value".into(),
        };
        let img = decode(&render_png(&[Panel::Heat(map.clone())], 1, 500, 400).unwrap());
        let is = |c: Color| move |p: &image::Rgb<u8>| p.0 == [c.r, c.g, c.b];
        assert!(count(&img, is(viridis(0.0))) > 5000, "low-end cells");
        assert!(count(&img, is(viridis(1.0))) > 5000, "high-end cells");
        let bad = HeatMap {
            values: vec![0.0; 3],
            ..map
        };
        assert!(matches!(
            render_png(&[Panel::Heat(bad)], 1, 500, 400),
            Err(VizError::InvalidInput(_))
        ));
    }

    #[test]
    fn arrows_are_a_shaft_and_two_barbs() {
        let c = Curve::arrows(
            "a",
            &[((0.0, 0.0), (1.0, 0.0)), ((5.0, 5.0), (0.0, 0.0))],
            0.3,
            Color::RED,
        );
        // One arrow (the zero vector draws nothing): tail, tip, barb, break, tip, barb, break.
        assert_eq!(c.points.len(), 7);
        assert_eq!(c.points[0], (0.0, 0.0));
        assert_eq!(c.points[1], (1.0, 0.0));
        // Barbs 0.3 long at ±25° behind the tip.
        let (l, r) = (c.points[2], c.points[5]);
        let len = |p: (f64, f64)| (p.0 - 1.0).hypot(p.1);
        assert!((len(l) - 0.3).abs() < 1e-12 && (len(r) - 0.3).abs() < 1e-12);
        assert!((l.1 + r.1).abs() < 1e-12 && l.1.abs() > 0.1, "{l:?} {r:?}");
        assert!(c.points[3].0.is_nan());
    }

    fn histogram() -> Panel {
        Panel::Histogram(Histogram {
            title: "Muestras vs densidad".into(),
            x_label: "x".into(),
            y_label: "densidad".into(),
            values: sample(2000),
            bins: 40,
            density: true,
            label: "Datos".into(),
            color: Color::GRAY,
            x_range: None,
            curves: vec![Curve::from_fn("pdf", -4.0, 4.0, 200, Color::RED, normal_pdf).width(3)],
        })
    }

    #[test]
    fn histogram_png_has_size_content_and_red_curve() {
        let png = render_png(&[histogram()], 1, 900, 600).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = decode(&png);
        assert_eq!(img.dimensions(), (900, 600));
        let non_white = count(&img, |p| p.0 != [255, 255, 255]);
        // Bars alone cover well over 5% of the canvas.
        assert!(
            non_white > 900 * 600 / 20,
            "only {non_white} non-white pixels"
        );
        // The 3-px red curve: ~ hundreds of pure-red pixels (antialiasing only at its edges).
        let red = count(&img, |p| p.0 == [255, 0, 0]);
        assert!(red > 300, "only {red} pure red pixels");
    }

    #[test]
    fn scatter_and_lines_render_in_a_grid() {
        let scatter = Panel::Scatter(Scatter {
            title: "Puntos".into(),
            x_label: "x₁".into(),
            y_label: "x₂".into(),
            x_range: (-3.0, 3.0),
            y_range: (-3.0, 3.0),
            series: vec![
                PointSeries::new(
                    "azul",
                    vec![(0.0, 0.0), (1.0, 1.0), (9.0, 9.0)],
                    Color::BLUE,
                )
                .radius(4),
                PointSeries::new("", vec![(-1.0, -1.0), (f64::NAN, 0.0)], Color::GREEN).alpha(0.5),
            ],
        });
        let lines = Panel::Line(LineChart {
            title: "Pérdida".into(),
            x_label: "paso".into(),
            y_label: "MSE".into(),
            curves: vec![
                Curve::from_fn("loss", 1.0, 100.0, 100, Color::ORANGE, |x| 1.0 / x).dashed(),
            ],
            log_y: true,
            ..Default::default()
        });
        let rgb = render_rgb(&[scatter, lines], 2, 1000, 400).unwrap();
        assert_eq!(rgb.len(), 1000 * 400 * 3);
        let img = image::RgbImage::from_raw(1000, 400, rgb).unwrap();
        // Opaque blue markers in the left half only.
        let blue_left = (0..500)
            .flat_map(|x| (0..400).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [0, 0, 255])
            .count();
        assert!(blue_left > 40, "{blue_left} blue pixels");
        let orange_right = (500..1000)
            .flat_map(|x| (0..400).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [255, 165, 0])
            .count();
        assert!(orange_right > 100, "{orange_right} orange pixels");
    }

    #[test]
    fn translucent_markers_blend_once() {
        // One big marker at alpha 0.5 on white: its inner pixels are all exactly
        // the 50% blend (no darker cross from double painting).
        let scatter = Panel::Scatter(Scatter {
            x_range: (-1.0, 1.0),
            y_range: (-1.0, 1.0),
            series: vec![PointSeries::new("", vec![(0.0, 0.0)], Color::RED)
                .radius(10)
                .alpha(0.5)],
            ..Default::default()
        });
        let img = decode(&render_png(&[scatter], 1, 300, 300).unwrap());
        let blend = Color::RED.over(Color::WHITE, 0.5);
        let inner = count(&img, |p| {
            (p.0[0], p.0[1], p.0[2]) == (blend.r, blend.g, blend.b)
        });
        let darker = count(&img, |p| {
            p.0[0] == 255 && p.0[1] < blend.g - 2 && p.0[2] < blend.b - 2
        });
        // A radius-10 disk has ~314 pixels, ~250 of them fully covered.
        assert!(inner > 200, "{inner} blended pixels");
        assert_eq!(darker, 0);
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert!(matches!(
            render_rgb(&[], 1, 100, 100),
            Err(VizError::InvalidInput(_))
        ));
        assert!(matches!(
            render_rgb(&[histogram()], 1, 0, 100),
            Err(VizError::InvalidInput(_))
        ));
        assert!(matches!(
            render_rgb(&[histogram()], 0, 100, 100),
            Err(VizError::InvalidInput(_))
        ));
        let empty_hist = Panel::Histogram(Histogram::default());
        assert!(matches!(
            render_rgb(&[empty_hist], 1, 100, 100),
            Err(VizError::InvalidInput(_))
        ));
        let bad_range = Panel::Scatter(Scatter {
            x_range: (1.0, -1.0),
            ..Default::default()
        });
        assert!(matches!(
            render_rgb(&[bad_range], 1, 100, 100),
            Err(VizError::InvalidInput(_))
        ));
        let empty_lines = Panel::Line(LineChart::default());
        assert!(matches!(
            render_rgb(&[empty_lines], 1, 100, 100),
            Err(VizError::InvalidInput(_))
        ));
        let negative_log = Panel::Line(LineChart {
            curves: vec![Curve::new("", vec![(0.0, -1.0), (1.0, 0.0)], Color::RED)],
            log_y: true,
            ..Default::default()
        });
        assert!(render_rgb(&[negative_log], 1, 100, 100).is_err());
        // A log x axis needs a positive x; one positive point among others suffices.
        let log_x = |xs: &[f64]| {
            Panel::Line(LineChart {
                curves: vec![Curve::new(
                    "",
                    xs.iter().map(|&x| (x, 1.0)).collect(),
                    Color::RED,
                )],
                log_x: true,
                ..Default::default()
            })
        };
        assert!(render_rgb(&[log_x(&[-1.0, 0.0])], 1, 100, 100).is_err());
        assert!(render_rgb(&[log_x(&[0.0, 5.0, 500.0])], 1, 200, 100).is_ok());
        assert!(encode_png(&[0; 5], 2, 1).is_err());
    }

    #[test]
    fn line_chart_markers_change_only_the_pixels_they_cover() {
        let chart = |markers: Vec<PointSeries>| {
            let panel = Panel::Line(LineChart {
                curves: vec![Curve::new("", vec![(1.0, 1.0), (9.0, 9.0)], Color::BLUE)],
                markers,
                x_range: Some((0.0, 10.0)),
                y_range: Some((0.0, 10.0)),
                ..Default::default()
            });
            decode(&render_png(&[panel], 1, 400, 300).unwrap())
        };
        let plain = chart(Vec::new());
        // A series with no point in the axes and no label draws nothing at all.
        let outside = PointSeries::new("", vec![(20.0, 5.0)], Color::RED);
        assert_eq!(chart(vec![outside]), plain);
        let r = 6;
        let marked = chart(vec![
            PointSeries::new("", vec![(7.0, 2.0)], Color::RED).radius(r)
        ]);
        let changed: Vec<(u32, u32)> = (0..400)
            .flat_map(|x| (0..300).map(move |y| (x, y)))
            .filter(|&(x, y)| marked.get_pixel(x, y) != plain.get_pixel(x, y))
            .collect();
        let red = count(&marked, |p| p.0 == [255, 0, 0]);
        // A radius-6 disk covers ~113 pixels, ~90 of them fully.
        assert!(red > 60, "{red} red pixels");
        assert_eq!(
            red,
            changed
                .iter()
                .filter(|&&(x, y)| marked.get_pixel(x, y).0 == [255, 0, 0])
                .count()
        );
        // Every changed pixel lies in one disk (antialiased edge: one pixel more) …
        let (xs, ys): (Vec<u32>, Vec<u32>) = changed.iter().copied().unzip();
        let span = |v: &[u32]| v.iter().max().unwrap() - v.iter().min().unwrap();
        assert!(
            span(&xs) <= 2 * r + 2 && span(&ys) <= 2 * r + 2,
            "{changed:?}"
        );
        // … where (7, 2) is: right of the middle, below it.
        let mean = |v: &[u32]| v.iter().sum::<u32>() / v.len() as u32;
        assert!(mean(&xs) > 200 && mean(&ys) > 150, "{changed:?}");
        // A label adds a legend entry with the marker's swatch.
        let labelled = chart(vec![
            PointSeries::new("end", vec![(7.0, 2.0)], Color::RED).radius(r)
        ]);
        assert!(count(&labelled, |p| p.0 == [255, 0, 0]) > red);
    }

    #[test]
    fn tiny_figures_do_not_panic() {
        for (w, h) in [(1, 1), (10, 10), (50, 30)] {
            let rgb = render_rgb(&[histogram(), histogram()], 2, w, h).unwrap();
            assert_eq!(rgb.len(), (w * h * 3) as usize);
        }
    }
}
