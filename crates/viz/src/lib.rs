//! Figures for toy diffusion: histograms with density curves, scatter plots,
//! line charts (linear or log y; arrows as curves, [`Curve::arrows`]), heat maps with a
//! colour bar and fast animated GIFs, plus the project's one
//! atomic file writer.
//!
//! The crate knows nothing of models: a figure is a list of [`Panel`]s (plain
//! data) drawn in a grid by [`render_rgb`] / [`render_png`], or a list of such
//! lists drawn as the frames of a GIF by [`render_gif`] / [`GifEncoder`]. Text
//! uses an embedded DejaVu Sans, so no system font library is needed; PNGs are
//! encoded in memory and written with [`write_atomic`].
//!
//! ```
//! use viz::{render_png, Color, Panel, PointSeries, Scatter};
//!
//! let scatter = Scatter {
//!     title: "Two clusters".into(),
//!     x_label: "x₁".into(),
//!     y_label: "x₂".into(),
//!     x_range: (-3.0, 3.0),
//!     y_range: (-3.0, 3.0),
//!     series: vec![
//!         PointSeries::new("class 0", vec![(-1.0, -1.0), (-1.2, -0.8)], Color::BLUE),
//!         PointSeries::new("class 1", vec![(1.0, 1.0), (0.9, 1.3)], Color::RED).alpha(0.5),
//!     ],
//! };
//! let png = render_png(&[Panel::Scatter(scatter)], 1, 320, 240)?;
//! assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
//! // viz::write_atomic(std::path::Path::new("out/scatter.png"), &png)?;
//! # Ok::<(), viz::VizError>(())
//! ```

mod anim;
mod atomic;
mod axis;
mod color;
mod error;
mod figure;
mod hist;
mod lzw;
mod render;
mod text;

pub use anim::{gif_palette, gif_palette_index, render_gif, GifEncoder};
pub use atomic::write_atomic;
pub use color::{palette, viridis, Color, PALETTE};
pub use error::VizError;
pub use figure::{Arrow, Curve, HeatMap, Histogram, LineChart, Panel, PointSeries, Scatter};
pub use hist::{bin_values, Bins};
pub use render::{encode_png, render_png, render_rgb};

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
