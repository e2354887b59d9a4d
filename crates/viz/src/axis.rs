//! Axes: ranges, tick positions and labels, and clipping in data space.
//!
//! plotters' own `RangedCoordf64` ticks are fine, but its log axis gives no tick
//! at all on a range inside one decade (a loss going 0.3 → 0.6), and its labels are
//! not under our control. [`Axis`] is one `Ranged` type for both scales, so a
//! panel's drawing code is the same whether y is logarithmic or not.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, KeyPointWeight, Ranged};

use crate::error::invalid;
use crate::VizError;

/// One axis: its shown range, scale and ticks.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
    /// Fixed number of decimals for the labels, or `None` for the shortest form.
    decimals: Option<usize>,
}

impl Axis {
    /// An axis over `[lo, hi]` with at most about `max_ticks` ticks.
    /// The range must be finite with `lo < hi` (and `lo > 0` when `log`).
    pub(crate) fn new(lo: f64, hi: f64, log: bool, max_ticks: usize) -> Result<Self, VizError> {
        check_range(lo, hi, log, "axis")?;
        let max_ticks = max_ticks.max(2);
        let (ticks, decimals) = if log {
            (log_ticks(lo, hi, max_ticks), None)
        } else {
            linear_ticks(lo, hi, max_ticks)
        };
        Ok(Self {
            lo,
            hi,
            log,
            ticks,
            decimals,
        })
    }

    pub(crate) fn ticks(&self) -> &[f64] {
        &self.ticks
    }

    /// The value in the axis' linear space (log10 on a log axis).
    pub(crate) fn space_of(&self, v: f64) -> f64 {
        if self.log {
            if v > 0.0 {
                v.log10()
            } else {
                f64::NAN
            }
        } else {
            v
        }
    }

    pub(crate) fn value_of_space(&self, s: f64) -> f64 {
        if self.log {
            10f64.powf(s)
        } else {
            s
        }
    }

    /// Where `v` lies along the axis: 0 at `lo`, 1 at `hi` (linear in log10 on a
    /// log axis).
    pub(crate) fn fraction(&self, v: f64) -> f64 {
        let (a, b) = (self.space_of(self.lo), self.space_of(self.hi));
        (self.space_of(v) - a) / (b - a)
    }

    /// Whether `v` lies in the shown range.
    pub(crate) fn contains(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi
    }

    /// The tick label for `v`.
    pub(crate) fn format(&self, v: f64) -> String {
        format_tick(v, self.decimals)
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = self.fraction(*value);
        let px = f64::from(limit.0) + t * f64::from(limit.1 - limit.0);
        if px.is_nan() {
            return limit.0;
        }
        // Keep far-away values representable; clipping happens before drawing.
        px.round().clamp(-1e7, 1e7) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points are the ticks; light (minor) grid lines are not drawn.
        match hint.weight() {
            KeyPointWeight::Bold => self.ticks.clone(),
            KeyPointWeight::Any if hint.max_num_points() >= self.ticks.len() => self.ticks.clone(),
            KeyPointWeight::Any => Vec::new(),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// Checks that a range can be shown.
pub(crate) fn check_range(lo: f64, hi: f64, log: bool, what: &str) -> Result<(), VizError> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return invalid(format!(
            "{what} range ({lo}, {hi}) must be finite with lo < hi"
        ));
    }
    if log && lo <= 0.0 {
        return invalid(format!(
            "{what} range ({lo}, {hi}) must be positive on a log axis"
        ));
    }
    Ok(())
}

/// The range of `values` (finite ones; positive ones when `log`) padded by `pad`
/// of its width on each side (in log space when `log`). A single value gets a
/// unit-wide range (a factor 10 around it on a log axis). `None` if no value counts.
pub(crate) fn auto_range(
    values: impl Iterator<Item = f64>,
    log: bool,
    pad: f64,
) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        let s = if log {
            if v > 0.0 {
                v.log10()
            } else {
                continue;
            }
        } else {
            v
        };
        if s.is_finite() {
            lo = lo.min(s);
            hi = hi.max(s);
        }
    }
    if lo > hi {
        return None;
    }
    let (lo, hi) = if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        (lo - 0.5, hi + 0.5)
    } else {
        let p = (hi - lo) * pad;
        (lo - p, hi + p)
    };
    Some(if log {
        (10f64.powf(lo), 10f64.powf(hi))
    } else {
        (lo, hi)
    })
}

/// `m · 10^e` as the f64 nearest to that decimal number (so it prints exactly).
fn decimal(m: i64, e: i32) -> f64 {
    format!("{m}e{e}").parse().unwrap_or(f64::NAN)
}

/// Ticks at multiples of a 1-2-5 step with at most `max` ticks, and the decimals
/// their labels need (`None`: scientific notation for extreme magnitudes).
fn linear_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, Option<usize>) {
    // The smallest 1-2-5 step giving at most `max` ticks.
    let mut e = ((hi - lo) / max as f64).log10().floor() as i32 - 1;
    let mut m = 1i64;
    let count = |m: i64, e: i32| {
        let s = decimal(m, e);
        (hi / s + 1e-9).floor() - (lo / s - 1e-9).ceil() + 1.0
    };
    'search: for _ in 0..8 {
        for cand in [1, 2, 5] {
            if count(cand, e) <= max as f64 {
                m = cand;
                break 'search;
            }
        }
        e += 1;
    }
    let step = decimal(m, e);
    let k0 = (lo / step - 1e-9).ceil() as i64;
    let k1 = (hi / step + 1e-9).floor() as i64;
    let ticks: Vec<f64> = (k0..=k1)
        .map(|k| {
            let t = decimal(k * m, e);
            if t == 0.0 {
                0.0 // no "-0"
            } else {
                t
            }
        })
        .collect();
    let big = lo.abs().max(hi.abs()) >= 1e6;
    let decimals = if big || e < -5 {
        None
    } else {
        Some((-e).max(0) as usize)
    };
    (ticks, decimals)
}

/// Ticks for a log axis: decades (every k-th if there are many), with 2 and 5
/// between them on short ranges; plain 1-2-5 linear ticks inside one decade.
fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let d0 = (lo.log10() - 1e-9).ceil() as i32;
    let d1 = (hi.log10() + 1e-9).floor() as i32;
    let decades = d1 - d0 + 1;
    if decades >= 2 {
        let every = ((decades as usize).div_ceil(max)).max(1) as i32;
        let mut t: Vec<f64> = (d0..=d1)
            .filter(|d| (d - d0) % every == 0)
            .map(|d| decimal(1, d))
            .collect();
        if decades <= 2 {
            let fine = one_two_five(lo, hi);
            if fine.len() <= max {
                t = fine;
            }
        }
        return t;
    }
    let fine = one_two_five(lo, hi);
    if fine.len() >= 3 && fine.len() <= max {
        return fine;
    }
    linear_ticks(lo, hi, max.min(5)).0
}

/// All of 1, 2, 5 × 10^d inside `[lo, hi]`.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let d0 = lo.log10().floor() as i32;
    let d1 = hi.log10().ceil() as i32;
    (d0..=d1)
        .flat_map(|d| [1, 2, 5].map(|m| decimal(m, d)))
        .filter(|&v| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12))
        .collect()
}

/// Formats a tick value: with fixed decimals, or the shortest exact form
/// (scientific outside 1e-4..1e5).
fn format_tick(v: f64, decimals: Option<usize>) -> String {
    let s = match decimals {
        Some(d) => format!("{v:.d$}"),
        None if v == 0.0 => "0".to_string(),
        None if v.abs() >= 1e-4 && v.abs() < 1e5 => format!("{v}"),
        None => format!("{v:e}"),
    };
    // "-0.0" → "0.0"
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// Clips the polyline `points` to the axes' rectangle (in the axes' linear
/// spaces, so straight on a log axis too). Non-finite points and y ≤ 0 on a log
/// axis break the line. Returns the visible pieces, each with at least 2 points.
pub(crate) fn clip_polyline(points: &[(f64, f64)], x: &Axis, y: &Axis) -> Vec<Vec<(f64, f64)>> {
    let (xa, xb) = (x.space_of(x.lo), x.space_of(x.hi));
    let (ya, yb) = (y.space_of(y.lo), y.space_of(y.hi));
    let mut pieces = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    let finish = |cur: &mut Vec<(f64, f64)>, pieces: &mut Vec<Vec<(f64, f64)>>| {
        if cur.len() >= 2 {
            pieces.push(std::mem::take(cur));
        } else {
            cur.clear();
        }
    };
    for &(px, py) in points {
        let p = (x.space_of(px), y.space_of(py));
        if !(p.0.is_finite() && p.1.is_finite()) {
            finish(&mut cur, &mut pieces);
            prev = None;
            continue;
        }
        if let Some(q) = prev {
            match clip_segment(q, p, (xa, xb), (ya, yb)) {
                Some((s, e, s_clipped, e_clipped)) => {
                    if s_clipped || cur.is_empty() {
                        finish(&mut cur, &mut pieces);
                        cur.push(s);
                    }
                    cur.push(e);
                    if e_clipped {
                        finish(&mut cur, &mut pieces);
                    }
                }
                None => finish(&mut cur, &mut pieces),
            }
        }
        prev = Some(p);
    }
    finish(&mut cur, &mut pieces);
    for piece in &mut pieces {
        for p in piece.iter_mut() {
            *p = (x.value_of_space(p.0), y.value_of_space(p.1));
        }
    }
    pieces
}

/// Liang–Barsky: the part of segment p→q inside the box, and whether each end
/// was moved.
#[allow(clippy::type_complexity)]
fn clip_segment(
    p: (f64, f64),
    q: (f64, f64),
    (xa, xb): (f64, f64),
    (ya, yb): (f64, f64),
) -> Option<((f64, f64), (f64, f64), bool, bool)> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (den, num) in [
        (-dx, p.0 - xa),
        (dx, xb - p.0),
        (-dy, p.1 - ya),
        (dy, yb - p.1),
    ] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| (p.0 + t * dx, p.1 + t * dy);
    Some((at(t0), at(t1), t0 > 0.0, t1 < 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_inside() {
        let a = Axis::new(-0.05, 1.05, false, 6).unwrap();
        assert_eq!(a.ticks(), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let labels: Vec<String> = a.ticks().iter().map(|&t| a.format(t)).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let b = Axis::new(-7.3, 9.1, false, 8).unwrap();
        assert_eq!(b.ticks(), &[-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(b.format(-6.0), "-6");
        let c = Axis::new(0.0, 1000.0, false, 6).unwrap();
        assert_eq!(c.ticks(), &[0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(c.format(200.0), "200");
        let d = Axis::new(0.0, 3e-6, false, 4).unwrap();
        assert_eq!(d.format(d.ticks()[1]), "1e-6");
    }

    #[test]
    fn log_ticks_inside_one_decade_exist() {
        let a = Axis::new(0.3, 0.62, true, 6).unwrap();
        assert!(a.ticks().len() >= 2, "{:?}", a.ticks());
        assert!(a.ticks().iter().all(|&t| (0.3..=0.62).contains(&t)));
        let b = Axis::new(1e-4, 10.0, true, 8).unwrap();
        assert_eq!(b.ticks(), &[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]);
        let labels: Vec<String> = b.ticks().iter().map(|&t| b.format(t)).collect();
        assert_eq!(labels, ["0.0001", "0.001", "0.01", "0.1", "1", "10"]);
        let c = Axis::new(1e-9, 1e3, true, 5).unwrap();
        assert!(c.ticks().len() <= 5, "{:?}", c.ticks());
        assert_eq!(c.format(1e-9), "1e-9");
    }

    #[test]
    fn clipping_splits_and_cuts() {
        let x = Axis::new(0.0, 1.0, false, 5).unwrap();
        let y = Axis::new(0.0, 1.0, false, 5).unwrap();
        // Goes out through the top and comes back.
        let pts = [(0.0, 0.5), (0.5, 1.5), (1.0, 0.5)];
        let pieces = clip_polyline(&pts, &x, &y);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0], vec![(0.0, 0.5), (0.25, 1.0)]);
        assert_eq!(pieces[1], vec![(0.75, 1.0), (1.0, 0.5)]);
        // NaN breaks the line; a single point is dropped.
        let pts = [(0.1, 0.1), (0.2, 0.2), (f64::NAN, 0.0), (0.3, 0.3)];
        assert_eq!(
            clip_polyline(&pts, &x, &y),
            vec![vec![(0.1, 0.1), (0.2, 0.2)]]
        );
    }

    #[test]
    fn auto_range_pads() {
        let (lo, hi) = auto_range([0.0, 10.0].into_iter(), false, 0.05).unwrap();
        assert_eq!((lo, hi), (-0.5, 10.5));
        let (lo, hi) = auto_range([1.0, 100.0, -3.0].into_iter(), true, 0.05).unwrap();
        assert!((lo.log10() + 0.1).abs() < 1e-12 && (hi.log10() - 2.1).abs() < 1e-12);
        assert_eq!(auto_range([3.0].into_iter(), false, 0.05), Some((2.5, 3.5)));
        assert_eq!(auto_range([f64::NAN].into_iter(), false, 0.05), None);
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(Axis::new(1.0, 1.0, false, 5).is_err());
        assert!(Axis::new(0.0, 1.0, true, 5).is_err());
        assert!(Axis::new(f64::NAN, 1.0, false, 5).is_err());
    }
}
