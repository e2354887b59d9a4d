//! The k nearest neighbours of 2-D points among a fixed set: a uniform grid
//! ([`Grid2`], about two points a cell, searched ring by ring) and the plain scan it is
//! tested against ([`nearest_scan`]). Both return exactly the same neighbours: the k
//! smallest (squared distance, row) pairs, so ties go to the lower row, as a scan in
//! row order that keeps the first of equal distances does.

use std::ops::Range;

/// Squared Euclidean distance of two 2-D points, as both searches compute it.
fn squared(p: [f64; 2], q: [f64; 2]) -> f64 {
    (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
}

/// Inserts `(d, row)` into `best` (sorted by (distance, row), at most `k` long) if it is
/// among the k smallest.
fn offer(best: &mut Vec<(f64, usize)>, k: usize, d: f64, row: usize) {
    let before = |b: &(f64, usize)| b.0 < d || (b.0 == d && b.1 < row);
    if best.len() < k || best.last().is_some_and(|l| !before(l)) {
        let pos = best.partition_point(before);
        best.insert(pos, (d, row));
        best.truncate(k);
    }
}

/// The `k` nearest rows of `points` (n × 2, row-major) to `p`: (squared distance, row)
/// in increasing order, ties to the lower row; all n if n < k. The slow reference: O(n)
/// a query.
pub fn nearest_scan(points: &[f64], p: [f64; 2], k: usize) -> Vec<(f64, usize)> {
    let mut best = Vec::with_capacity(k + 1);
    for (row, q) in points.chunks_exact(2).enumerate() {
        offer(&mut best, k, squared(p, [q[0], q[1]]), row);
    }
    best
}

/// A uniform grid over the bounding box of a set of 2-D points, about
/// [`Grid2::POINTS_PER_CELL`] points a cell, for k-nearest-neighbour queries that visit
/// only the cells near the query (rings of cells around its own, until the k-th
/// distance found is below the distance to any cell not yet visited).
pub struct Grid2 {
    origin: [f64; 2],
    cell: [f64; 2],
    cells: [usize; 2],
    /// The points of cell c are `points[starts[c]..starts[c + 1]]`.
    starts: Vec<usize>,
    /// (point, row in the input), cell by cell.
    points: Vec<([f64; 2], usize)>,
    /// Added to every stopping bound's safety: the rounding of cell edges.
    margin: f64,
}

impl Grid2 {
    /// Points a cell the grid aims for.
    pub const POINTS_PER_CELL: usize = 2;

    /// The grid of `points` (n × 2, row-major, finite).
    pub fn new(points: &[f64]) -> Self {
        let n = points.len() / 2;
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for q in points.chunks_exact(2) {
            for c in 0..2 {
                lo[c] = lo[c].min(q[c]);
                hi[c] = hi[c].max(q[c]);
            }
        }
        if n == 0 {
            (lo, hi) = ([0.0; 2], [0.0; 2]);
        }
        let extent = [hi[0] - lo[0], hi[1] - lo[1]];
        let target = (n / Self::POINTS_PER_CELL).max(1) as f64;
        // Square-ish cells: gx / gy follows the box's aspect ratio.
        let cells = match (extent[0] > 0.0, extent[1] > 0.0) {
            (true, true) => {
                let gx = (target * extent[0] / extent[1])
                    .sqrt()
                    .ceil()
                    .clamp(1.0, target);
                let gy = (target / gx).ceil().max(1.0);
                [gx as usize, gy as usize]
            }
            (true, false) => [target as usize, 1],
            (false, true) => [1, target as usize],
            (false, false) => [1, 1],
        };
        let cell = [
            if extent[0] > 0.0 {
                extent[0] / cells[0] as f64
            } else {
                1.0
            },
            if extent[1] > 0.0 {
                extent[1] / cells[1] as f64
            } else {
                1.0
            },
        ];
        let scale = lo[0].abs() + lo[1].abs() + extent[0] + extent[1] + cell[0] + cell[1];
        let mut grid = Self {
            origin: lo,
            cell,
            cells,
            starts: Vec::new(),
            points: Vec::new(),
            margin: 1e-9 * scale,
        };
        // Counting sort of the points by cell (rows stay in order within a cell).
        let ids: Vec<usize> = points
            .chunks_exact(2)
            .map(|q| grid.cell_id(grid.cell_of([q[0], q[1]])))
            .collect();
        let mut starts = vec![0usize; cells[0] * cells[1] + 1];
        for &c in &ids {
            starts[c + 1] += 1;
        }
        for c in 1..starts.len() {
            starts[c] += starts[c - 1];
        }
        let mut next = starts.clone();
        let mut sorted = vec![([0.0; 2], 0); n];
        for (row, (&c, q)) in ids.iter().zip(points.chunks_exact(2)).enumerate() {
            sorted[next[c]] = ([q[0], q[1]], row);
            next[c] += 1;
        }
        grid.starts = starts;
        grid.points = sorted;
        grid
    }

    /// Number of points indexed.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The cell (column, row) of `p`, clamped to the grid.
    fn cell_of(&self, p: [f64; 2]) -> [usize; 2] {
        let mut c = [0usize; 2];
        for a in 0..2 {
            let f = ((p[a] - self.origin[a]) / self.cell[a]).floor();
            c[a] = if f > 0.0 {
                (f as usize).min(self.cells[a] - 1)
            } else {
                0
            };
        }
        c
    }

    fn cell_id(&self, c: [usize; 2]) -> usize {
        c[1] * self.cells[0] + c[0]
    }

    /// The points of cells (x, y) for x in `xs` at row y.
    fn visit_row(
        &self,
        xs: Range<usize>,
        y: usize,
        p: [f64; 2],
        k: usize,
        best: &mut Vec<(f64, usize)>,
    ) {
        let (a, b) = (self.cell_id([xs.start, y]), self.cell_id([xs.end - 1, y]));
        for &(q, row) in &self.points[self.starts[a]..self.starts[b + 1]] {
            offer(best, k, squared(p, q), row);
        }
    }

    /// The `k` nearest indexed points to `p`, as [`nearest_scan`] on the rows given to
    /// [`Grid2::new`] finds them (the same pairs, the same order), into `best`.
    pub fn nearest_into(&self, p: [f64; 2], k: usize, best: &mut Vec<(f64, usize)>) {
        best.clear();
        if k == 0 || self.points.is_empty() {
            return;
        }
        let [cx, cy] = self.cell_of(p);
        let [gx, gy] = self.cells;
        for r in 0.. {
            // Ring r: the cells at Chebyshev distance r from (cx, cy), clipped to the grid.
            let (x0, x1) = (cx.saturating_sub(r), (cx + r).min(gx - 1));
            let (y0, y1) = (cy.saturating_sub(r), (cy + r).min(gy - 1));
            if r == 0 {
                self.visit_row(cx..cx + 1, cy, p, k, best);
            } else {
                if cy >= r {
                    self.visit_row(x0..x1 + 1, cy - r, p, k, best);
                }
                if cy + r < gy {
                    self.visit_row(x0..x1 + 1, cy + r, p, k, best);
                }
                for y in (cy + 1).saturating_sub(r).max(y0)..=(cy + r - 1).min(y1) {
                    if y + r == cy || y == cy + r {
                        continue;
                    }
                    if cx >= r {
                        self.visit_row(cx - r..cx - r + 1, y, p, k, best);
                    }
                    if cx + r < gx {
                        self.visit_row(cx + r..cx + r + 1, y, p, k, best);
                    }
                }
            }
            // Every point not visited yet lies in a cell beyond the block of rings 0..=r:
            // left of x0, right of x1, below y0 or above y1, where cells remain.
            let mut bound = f64::INFINITY;
            if x0 > 0 {
                bound = bound.min(p[0] - (self.origin[0] + x0 as f64 * self.cell[0]));
            }
            if x1 + 1 < gx {
                bound = bound.min(self.origin[0] + (x1 + 1) as f64 * self.cell[0] - p[0]);
            }
            if y0 > 0 {
                bound = bound.min(p[1] - (self.origin[1] + y0 as f64 * self.cell[1]));
            }
            if y1 + 1 < gy {
                bound = bound.min(self.origin[1] + (y1 + 1) as f64 * self.cell[1] - p[1]);
            }
            if bound == f64::INFINITY {
                return; // the whole grid is visited
            }
            // Strictly below: a point at exactly the bound could tie and win on its row.
            let bound = (bound - self.margin).max(0.0);
            if best.len() == k && best[k - 1].0 < bound * bound {
                return;
            }
        }
    }

    /// [`Grid2::nearest_into`] into a new vector.
    pub fn nearest(&self, p: [f64; 2], k: usize) -> Vec<(f64, usize)> {
        let mut best = Vec::with_capacity(k + 1);
        self.nearest_into(p, k, &mut best);
        best
    }
}
