//! Writes one figure of each kind, to look at, and times a notebook-sized GIF.
//!
//! ```text
//! cargo run -p toydiff-viz --example gallery -- OUTDIR
//! ```
//!
//! OUTDIR (default `target/viz-gallery`) gets `histogram.png`, `scatter.png`,
//! `lines.png`, `small.gif` (with `small-last-frame.png` decoded back from it),
//! `guided.gif` (51 frames, 1050×600, two panels of
//! 1000 + 500 points) and `guided-frame-25.png` (a frame decoded back from the GIF).

use std::path::PathBuf;
use std::time::Instant;

use viz::{
    palette, render_gif, render_png, render_rgb, write_atomic, Color, Curve, GifEncoder, Histogram,
    LineChart, Panel, PointSeries, Scatter, VizError,
};

/// A tiny deterministic normal generator (xorshift64 + Box–Muller).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
}

/// The notebook's first GMM: 0.3·N(-2, 0.8) + 0.7·N(3, 1.2).
fn gmm_pdf(x: f64) -> f64 {
    0.3 * normal_pdf(x, -2.0, 0.8) + 0.7 * normal_pdf(x, 3.0, 1.2)
}

fn histogram(rng: &mut Rng) -> Panel {
    let values: Vec<f64> = (0..3000)
        .map(|_| {
            if rng.uniform() < 0.3 {
                -2.0 + 0.8 * rng.normal()
            } else {
                3.0 + 1.2 * rng.normal()
            }
        })
        .collect();
    Panel::Histogram(Histogram {
        title: "Muestras Generadas vs Densidad del GMM".into(),
        x_label: "x".into(),
        y_label: "Densidad".into(),
        values,
        bins: 50,
        density: true,
        label: "Datos Generados".into(),
        color: Color::CORNFLOWER,
        x_range: None,
        curves: vec![
            Curve::from_fn(
                "Densidad Real del Modelo",
                -5.0,
                6.0,
                300,
                Color::RED,
                gmm_pdf,
            )
            .width(3),
            Curve::from_fn("Normal ajustada", -5.0, 6.0, 300, Color::ORANGE, |x| {
                normal_pdf(x, 1.5, 2.6)
            })
            .width(2)
            .dashed(),
        ],
    })
}

fn scatter(rng: &mut Rng) -> Panel {
    let centres = [(-2.0, -1.0), (2.0, 1.5), (0.0, 2.5)];
    let series = centres
        .iter()
        .enumerate()
        .map(|(k, &(cx, cy))| {
            let pts = (0..400)
                .map(|_| (cx + 0.6 * rng.normal(), cy + 0.6 * rng.normal()))
                .collect();
            PointSeries::new(format!("clase {k}"), pts, palette(k))
                .radius(3)
                .alpha(0.6)
        })
        .collect();
    Panel::Scatter(Scatter {
        title: "Tres cúmulos gaussianos".into(),
        x_label: "x₁".into(),
        y_label: "x₂".into(),
        x_range: (-4.5, 4.5),
        y_range: (-3.5, 4.5),
        series,
    })
}

fn lines() -> Vec<Panel> {
    let t_max = 1000;
    let betas: Vec<f64> = (0..t_max)
        .map(|t| 1e-4 + (0.02 - 1e-4) * t as f64 / (t_max - 1) as f64)
        .collect();
    let mut abar = Vec::with_capacity(t_max);
    let mut acc = 1.0;
    for b in &betas {
        acc *= 1.0 - b;
        abar.push(acc);
    }
    let schedule = LineChart {
        title: "Programa lineal de ruido".into(),
        x_label: "paso t".into(),
        y_label: "valor".into(),
        curves: vec![
            Curve::new(
                "ᾱ_t",
                abar.iter()
                    .enumerate()
                    .map(|(t, &a)| (t as f64, a))
                    .collect(),
                Color::BLUE,
            ),
            Curve::new(
                "√(1 − ᾱ_t)",
                abar.iter()
                    .enumerate()
                    .map(|(t, &a)| (t as f64, (1.0 - a).sqrt()))
                    .collect(),
                Color::GREEN,
            )
            .dashed(),
        ],
        ..Default::default()
    };
    let snr = LineChart {
        title: "Relación señal/ruido".into(),
        x_label: "paso t".into(),
        y_label: "SNR = ᾱ/(1 − ᾱ)".into(),
        curves: vec![Curve::new(
            "SNR",
            abar.iter()
                .enumerate()
                .map(|(t, &a)| (t as f64, a / (1.0 - a)))
                .collect(),
            Color::PURPLE,
        )
        .width(3)],
        log_y: true,
        ..Default::default()
    };
    vec![Panel::Line(schedule), Panel::Line(snr)]
}

/// The notebook's guided-vs-unguided animation: 51 frames, two panels, each with
/// 1000 original points and 500 samples moving from noise to the clusters.
fn guided_frames(rng: &mut Rng) -> Vec<Vec<Panel>> {
    let data: Vec<(f64, f64)> = (0..1000)
        .map(|i| {
            let c = if i % 2 == 0 { (-2.0, -2.0) } else { (2.0, 2.0) };
            (c.0 + 0.5 * rng.normal(), c.1 + 0.5 * rng.normal())
        })
        .collect();
    let noise: Vec<(f64, f64)> = (0..500).map(|_| (rng.normal(), rng.normal())).collect();
    let target = |i: usize, cls: Option<usize>| {
        let c = cls.unwrap_or(i % 2);
        data[2 * (i % 500) + c]
    };
    (0..51)
        .map(|k| {
            let s = k as f64 / 50.0;
            let lerp =
                |a: (f64, f64), b: (f64, f64)| (a.0 + s * (b.0 - a.0), a.1 + s * (b.1 - a.1));
            let unguided: Vec<_> = (0..500).map(|i| lerp(noise[i], target(i, None))).collect();
            let g0: Vec<_> = (0..250)
                .map(|i| lerp(noise[i], target(i, Some(0))))
                .collect();
            let g1: Vec<_> = (250..500)
                .map(|i| lerp(noise[i], target(i, Some(1))))
                .collect();
            let original = PointSeries::new("Original", data.clone(), Color::BLUE)
                .radius(2)
                .alpha(0.25);
            let left = Scatter {
                title: format!("Sin guía (paso {k})"),
                x_label: "x₁".into(),
                y_label: "x₂".into(),
                x_range: (-5.0, 5.0),
                y_range: (-5.0, 5.0),
                series: vec![
                    original.clone(),
                    PointSeries::new("Sin guía", unguided, Color::GRAY)
                        .radius(3)
                        .alpha(0.5),
                ],
            };
            let right = Scatter {
                title: format!("Guiada c=0 y c=1 (paso {k})"),
                series: vec![
                    original,
                    PointSeries::new("Guiada c=0", g0, Color::RED)
                        .radius(3)
                        .alpha(0.6),
                    PointSeries::new("Guiada c=1", g1, Color::GREEN)
                        .radius(3)
                        .alpha(0.6),
                ],
                ..left.clone()
            };
            vec![Panel::Scatter(left), Panel::Scatter(right)]
        })
        .collect()
}

/// Decodes frame `n` of a GIF into RGB8.
fn gif_frame(bytes: &[u8], n: usize) -> (u16, u16, Vec<u8>) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(bytes).expect("valid GIF");
    let (w, h) = (dec.width(), dec.height());
    let mut k = 0;
    while let Some(frame) = dec.read_next_frame().expect("valid frame") {
        if k == n {
            let rgb = frame
                .buffer
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            return (w, h, rgb);
        }
        k += 1;
    }
    panic!("GIF has only {k} frames");
}

fn main() -> Result<(), VizError> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/viz-gallery".into()),
    );
    let mut rng = Rng(0x5eed_1234_abcd_0042);

    write_atomic(
        &out.join("histogram.png"),
        &render_png(&[histogram(&mut rng)], 1, 900, 600)?,
    )?;
    write_atomic(
        &out.join("scatter.png"),
        &render_png(&[scatter(&mut rng)], 1, 900, 600)?,
    )?;
    write_atomic(&out.join("lines.png"), &render_png(&lines(), 2, 1400, 550)?)?;

    let small: Vec<Vec<Panel>> = guided_frames(&mut rng)
        .into_iter()
        .step_by(5)
        .map(|mut f| vec![f.remove(1)])
        .collect();
    let small_gif = render_gif(&small, 1, 480, 400, 4)?;
    write_atomic(&out.join("small.gif"), &small_gif)?;
    let (w, h, rgb) = gif_frame(&small_gif, small.len() - 1);
    write_atomic(
        &out.join("small-last-frame.png"),
        &viz::encode_png(&rgb, u32::from(w), u32::from(h))?,
    )?;

    // Timing: the notebook's animation size.
    let frames = guided_frames(&mut rng);
    let t = Instant::now();
    for f in &frames {
        render_rgb(f, 2, 1050, 600)?;
    }
    let render_only = t.elapsed().as_secs_f64();
    let mut timings = Vec::new();
    let mut bytes = Vec::new();
    for threads in [1, 2] {
        let t = Instant::now();
        let mut enc = GifEncoder::new(1050, 600, 4).with_threads(threads);
        enc.push_panels(&frames, 2)?;
        let b = enc.finish()?;
        timings.push((threads, t.elapsed().as_secs_f64()));
        if !bytes.is_empty() {
            assert_eq!(bytes, b, "thread count changed the output");
        }
        bytes = b;
    }
    write_atomic(&out.join("guided.gif"), &bytes)?;
    let (w, h, rgb) = gif_frame(&bytes, 25);
    write_atomic(
        &out.join("guided-frame-25.png"),
        &viz::encode_png(&rgb, u32::from(w), u32::from(h))?,
    )?;

    println!("wrote figures to {}", out.display());
    println!(
        "51 frames 1050x600, 2 panels x 1500 points: rendering alone {render_only:.3} s (1 thread)"
    );
    for (threads, secs) in timings {
        println!("  render + quantise + encode on {threads} thread(s): {secs:.3} s");
    }
    println!("  GIF size {:.2} MB", bytes.len() as f64 / 1e6);
    Ok(())
}
