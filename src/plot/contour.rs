//! The landscape picture (API.md "POST /landscape", `Accept: image/svg+xml`): the filled
//! contour of the loss grid with labelled isolines, a colour bar, axes named by the
//! parameter pointers, the grid's minimum, and the training path with its start and end.
//!
//! Drawing, step by step:
//! - The grid is sampled to at most [`MAX_CELLS`] cells per axis (a 500 × 500 grid would
//!   otherwise make a picture of megabytes); the minimum is the exact grid minimum.
//! - Colours: a viridis-like perceptual map (matplotlib's viridis at 11 stops, linearly
//!   interpolated), dark = low loss. When the finite values are ≥ 0 and span more than
//!   two decades, colours follow log10 of the loss (at most [`LOG_DECADES`] decades
//!   below the largest value). Band edges are "nice" numbers (1, 2, 5 × 10ᵏ) so that the
//!   isoline labels and the colour bar read cleanly.
//! - Marching squares: each cell is split into four triangles around its centre (the
//!   mean of its corners, which decides the saddle cases as the classic algorithm does),
//!   and the loss is linear on each triangle. A band is then the triangle clipped by two
//!   levels (a convex polygon), an isoline the segment where the triangle crosses a
//!   level, so fills and lines agree exactly. Cells whose corners all lie in one band are
//!   merged into horizontal runs. A cell with a corner that is not finite is grey.
//! - Text is the viewer's `sans-serif` at ≥ 12 units in a 460-unit-wide picture, so it
//!   stays readable scaled down to 390 px. No fonts, scripts or outside references.

use std::fmt::Write as _;

use super::{escape_xml, format_number, nice_step, ticks_between};
use crate::compute::landscape::Landscape;

const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 470.0;
const LEFT: f64 = 66.0;
const TOP: f64 = 56.0;
const PLOT_W: f64 = 300.0;
const PLOT_H: f64 = 300.0;
const BAR_X: f64 = LEFT + PLOT_W + 18.0;
const BAR_W: f64 = 14.0;
/// Cells per axis of the drawn grid, at most.
pub const MAX_CELLS: usize = 48;
/// A log colour scale reaches down to max(smallest positive value, largest / 10^this).
const LOG_DECADES: f64 = 4.0;
/// Path points drawn, at most (first and last always).
const MAX_PATH_POINTS: usize = 1200;
const NULL_COLOUR: &str = "#c8c8c8";
const PATH_COLOUR: &str = "#e8363b";

/// matplotlib's viridis at 0, 0.1, …, 1.
const VIRIDIS: [[f64; 3]; 11] = [
    [68.0, 1.0, 84.0],
    [72.0, 36.0, 117.0],
    [65.0, 68.0, 135.0],
    [53.0, 95.0, 141.0],
    [42.0, 120.0, 142.0],
    [33.0, 145.0, 140.0],
    [34.0, 168.0, 132.0],
    [68.0, 191.0, 112.0],
    [122.0, 209.0, 81.0],
    [189.0, 223.0, 38.0],
    [253.0, 231.0, 37.0],
];

/// The colour at t ∈ [0, 1] as `#rrggbb`.
fn viridis(t: f64) -> String {
    let x = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 10.0;
    let i = (x.floor() as usize).min(9);
    let f = x - i as f64;
    let c = |ch: usize| (VIRIDIS[i][ch] * (1.0 - f) + VIRIDIS[i + 1][ch] * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(0), c(1), c(2))
}

/// How values map to colours: through log10 or not, and the band edges (in scale units,
/// ascending; band i lies between edges i and i + 1).
struct Scale {
    log: bool,
    /// Values at or below this are drawn at it (log scale only).
    floor: f64,
    edges: Vec<f64>,
}

impl Scale {
    fn new(finite: impl Iterator<Item = f64> + Clone) -> Option<Scale> {
        let (lo, hi) = finite
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            return None;
        }
        let min_positive = finite.filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
        let log = lo >= 0.0 && min_positive.is_finite() && hi / min_positive > 100.0;
        if log {
            let floor = min_positive.max(hi / 10f64.powf(LOG_DECADES));
            let (s_lo, s_hi) = (floor.log10(), hi.log10());
            let decades = s_hi - s_lo;
            // 1-2-5 levels over up to 2.5 decades, whole decades (or every other) beyond
            let mantissas: &[f64] = if decades <= 2.5 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            let every = if decades > 10.0 { 2 } else { 1 };
            let mut edges = vec![s_lo];
            let first = s_lo.floor() as i32;
            for e in first..=(s_hi.ceil() as i32) {
                if (e - first) % every != 0 {
                    continue;
                }
                for m in mantissas {
                    let level = (m * 10f64.powi(e)).log10();
                    if level > s_lo + 1e-9 && level < s_hi - 1e-9 {
                        edges.push(level);
                    }
                }
            }
            edges.push(s_hi);
            return Some(Scale { log, floor, edges });
        }
        let mut edges = vec![lo];
        if hi > lo {
            let step = nice_step((hi / 2.0 - lo / 2.0) * (2.0 / 8.0));
            edges.extend(
                ticks_between(lo, hi, step)
                    .into_iter()
                    .filter(|&v| v > lo && v < hi),
            );
        }
        edges.push(hi);
        Some(Scale {
            log: false,
            floor: 0.0,
            edges,
        })
    }

    /// A value in scale units; NaN stays NaN.
    fn s(&self, v: f64) -> f64 {
        if !v.is_finite() {
            f64::NAN
        } else if self.log {
            v.max(self.floor).log10()
        } else {
            v
        }
    }

    fn lo(&self) -> f64 {
        self.edges[0]
    }

    fn hi(&self) -> f64 {
        self.edges[self.edges.len() - 1]
    }

    /// Bands between the edges (at least one).
    fn bands(&self) -> usize {
        (self.edges.len() - 1).max(1)
    }

    /// The band of a scale value.
    fn band(&self, s: f64) -> usize {
        let inner = &self.edges[1..self.edges.len() - 1];
        inner.partition_point(|&e| e <= s)
    }

    /// Band i's colour: the map at its middle.
    fn colour(&self, band: usize) -> String {
        let (lo, hi) = (self.lo(), self.hi());
        if hi <= lo {
            return viridis(0.0);
        }
        let (a, b) = (
            self.edges[band],
            self.edges[(band + 1).min(self.edges.len() - 1)],
        );
        viridis(((a + b) / 2.0 - lo) / (hi - lo))
    }

    /// A level as text (the value, not its log).
    fn label(&self, s: f64) -> String {
        let v = if self.log { 10f64.powf(s) } else { s };
        short(v)
    }
}

/// A number for a label: about 3 significant digits.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            format!("{v}")
        };
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    if (1e-4..1e5).contains(&v.abs()) {
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format_number(v, 7)
    }
}

/// The linear map from values to picture units along one axis; halving first keeps the
/// span finite for any finite range.
#[derive(Clone, Copy)]
struct Map {
    lo: f64,
    hi: f64,
    from: f64,
    length: f64,
    flip: bool,
}

impl Map {
    fn at(&self, v: f64) -> f64 {
        let t = (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0);
        let t = if t.is_finite() { t } else { 0.0 };
        let t = if self.flip { 1.0 - t } else { t };
        (self.from + t * self.length).clamp(-1e4, 1e4)
    }
}

/// Up to `max + 1` indices spread evenly over 0..n, first and last included.
fn sample(n: usize, max: usize) -> Vec<usize> {
    if n <= max + 1 {
        return (0..n).collect();
    }
    let mut out: Vec<usize> = (0..=max)
        .map(|i| ((i as f64) * (n - 1) as f64 / max as f64).round() as usize)
        .collect();
    out.dedup();
    out
}

/// A point of the picture with the scale value there.
#[derive(Clone, Copy)]
struct Vertex {
    x: f64,
    y: f64,
    s: f64,
}

fn lerp(a: Vertex, b: Vertex, level: f64) -> Vertex {
    let t = (level - a.s) / (b.s - a.s);
    Vertex {
        x: a.x + t * (b.x - a.x),
        y: a.y + t * (b.y - a.y),
        s: level,
    }
}

/// The part of a convex polygon where s ≥ level (`keep_above`) or s ≤ level.
fn clip(poly: &[Vertex], level: f64, keep_above: bool) -> Vec<Vertex> {
    let inside = |v: &Vertex| {
        if keep_above {
            v.s >= level
        } else {
            v.s <= level
        }
    };
    let mut out = Vec::with_capacity(poly.len() + 2);
    for (i, &cur) in poly.iter().enumerate() {
        let prev = poly[(i + poly.len() - 1) % poly.len()];
        match (inside(&prev), inside(&cur)) {
            (true, true) => out.push(cur),
            (true, false) => out.push(lerp(prev, cur, level)),
            (false, true) => {
                out.push(lerp(prev, cur, level));
                out.push(cur);
            }
            (false, false) => {}
        }
    }
    out
}

/// A coordinate of path data: one decimal, without a trailing `.0` (the bands and
/// isolines are most of the picture's bytes).
struct C(f64);

impl std::fmt::Display for C {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round() as i64;
        let (sign, a) = if tenths < 0 {
            ("-", -tenths)
        } else {
            ("", tenths)
        };
        match a % 10 {
            0 => write!(f, "{sign}{}", a / 10),
            d => write!(f, "{sign}{}.{d}", a / 10),
        }
    }
}

/// A closed polygon: the first vertex absolute, then relative steps between the rounded
/// vertices (shorter numbers; rounding first keeps the steps from drifting).
fn push_polygon(d: &mut String, poly: &[Vertex]) {
    let tenths = |v: f64| (v * 10.0).round() / 10.0;
    let mut at = (0.0, 0.0);
    for (i, v) in poly.iter().enumerate() {
        let p = (tenths(v.x), tenths(v.y));
        if i == 0 {
            let _ = write!(d, "M{} {}", C(p.0), C(p.1));
        } else {
            let _ = write!(d, "l{} {}", C(p.0 - at.0), C(p.1 - at.1));
        }
        at = p;
    }
    d.push('Z');
}

/// The sampled grid in picture units, with scale values.
struct Sampled {
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// rows (y) × columns (x), scale units, NaN where not finite.
    s: Vec<f64>,
}

impl Sampled {
    fn at(&self, r: usize, c: usize) -> Vertex {
        Vertex {
            x: self.xs[c],
            y: self.ys[r],
            s: self.s[r * self.xs.len() + c],
        }
    }

    /// The four triangles of cell (r, c) around its centre, or None when a corner is
    /// not finite.
    fn triangles(&self, r: usize, c: usize) -> Option<[[Vertex; 3]; 4]> {
        let a = self.at(r, c);
        let b = self.at(r, c + 1);
        let cc = self.at(r + 1, c + 1);
        let d = self.at(r + 1, c);
        if [a, b, cc, d].iter().any(|v| !v.s.is_finite()) {
            return None;
        }
        let e = Vertex {
            x: (a.x + cc.x) / 2.0,
            y: (a.y + cc.y) / 2.0,
            s: (a.s + b.s + cc.s + d.s) / 4.0,
        };
        Some([[a, b, e], [b, cc, e], [cc, d, e], [d, a, e]])
    }
}

/// The landscape as a standalone SVG document; `title` names the model (e.g.
/// "l2 + sigmoid").
pub fn landscape_svg(l: &Landscape, title: &str) -> String {
    let (xv, yv) = (&l.x.values, &l.y.values);
    let nx = xv.len();
    let xmap = Map {
        lo: xv[0],
        hi: xv[nx - 1],
        from: LEFT,
        length: PLOT_W,
        flip: false,
    };
    let ymap = Map {
        lo: yv[0],
        hi: yv[yv.len() - 1],
        from: TOP,
        length: PLOT_H,
        flip: true,
    };
    let scale = Scale::new(l.loss.iter().copied().filter(|v| v.is_finite()));
    let ci = sample(nx, MAX_CELLS);
    let ri = sample(yv.len(), MAX_CELLS);
    let grid = Sampled {
        xs: ci.iter().map(|&c| xmap.at(xv[c])).collect(),
        ys: ri.iter().map(|&r| ymap.at(yv[r])).collect(),
        s: ri
            .iter()
            .flat_map(|&r| ci.iter().map(move |&c| r * nx + c))
            .map(|p| scale.as_ref().map_or(f64::NAN, |sc| sc.s(l.loss[p])))
            .collect(),
    };

    let mut svg = String::with_capacity(64 * 1024);
    let subtitle = {
        let m = l.dims.m;
        let mut s = format!("mean loss over {m} sample{}", if m == 1 { "" } else { "s" });
        if scale.as_ref().is_some_and(|sc| sc.log) {
            s.push_str(", log colour scale");
        }
        s
    };
    let _ = write!(
        svg,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="landscape-title landscape-desc" font-family="sans-serif">"#,
            "\n",
            r#"<title id="landscape-title">{t}</title>"#,
            "\n",
            r#"<desc id="landscape-desc">The loss over {x} and {y}: {sub}.</desc>"#,
            "\n",
            r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##,
            "\n",
            r##"<text x="{cx}" y="22" text-anchor="middle" font-size="15" font-weight="bold" fill="#1a1a1a">{t}</text>"##,
            "\n",
            r##"<text x="{cx}" y="40" text-anchor="middle" font-size="12" fill="#444444">{sub}</text>"##,
            "\n",
            r#"<defs><clipPath id="plot-area"><rect x="{l}" y="{top}" width="{pw}" height="{ph}"/></clipPath></defs>"#,
            "\n"
        ),
        w = WIDTH,
        h = HEIGHT,
        cx = LEFT + PLOT_W / 2.0,
        t = escape_xml(title),
        x = escape_xml(&l.x.parameter),
        y = escape_xml(&l.y.parameter),
        sub = escape_xml(&subtitle),
        l = LEFT,
        top = TOP,
        pw = PLOT_W,
        ph = PLOT_H,
    );

    fills(&mut svg, &grid, scale.as_ref());
    if let Some(sc) = &scale {
        isolines(&mut svg, &grid, sc);
    }
    axes(&mut svg, l, xmap, ymap);
    colour_bar(
        &mut svg,
        scale.as_ref(),
        l.loss.iter().any(|v| !v.is_finite()),
    );
    marks(&mut svg, l, xmap, ymap);
    svg.push_str("</svg>\n");
    svg
}

/// The filled bands (one `<path>` per band) and the grey cells.
fn fills(svg: &mut String, g: &Sampled, scale: Option<&Scale>) {
    let (cols, rows) = (g.xs.len(), g.ys.len());
    let bands = scale.map_or(1, Scale::bands);
    let mut d = vec![String::new(); bands];
    let mut grey = String::new();
    for r in 0..rows - 1 {
        // a run of cells that lie wholly in one band (or are all grey)
        let mut run: Option<(usize, Option<usize>)> = None;
        let close = |run: Option<(usize, Option<usize>)>,
                     end: usize,
                     d: &mut Vec<String>,
                     grey: &mut String| {
            if let Some((start, band)) = run {
                let (x0, x1) = (g.xs[start], g.xs[end]);
                let (y0, y1) = (g.ys[r], g.ys[r + 1]);
                let out = match band {
                    Some(b) => &mut d[b],
                    None => grey,
                };
                let _ = write!(out, "M{} {}H{}V{}H{}Z", C(x0), C(y0), C(x1), C(y1), C(x0));
            }
        };
        for c in 0..cols - 1 {
            let cell = match (scale, g.triangles(r, c)) {
                (_, None) => Some(None),
                (None, Some(_)) => Some(Some(0)),
                (Some(sc), Some(tris)) => {
                    let corners = [tris[0][0].s, tris[0][1].s, tris[1][1].s, tris[2][1].s];
                    let band = sc.band(corners[0]);
                    corners
                        .iter()
                        .all(|&s| sc.band(s) == band)
                        .then_some(Some(band))
                }
            };
            match cell {
                Some(kind) if run.is_some_and(|(_, k)| k == kind) => {}
                Some(kind) => {
                    close(run, c, &mut d, &mut grey);
                    run = Some((c, kind));
                }
                None => {
                    close(run, c, &mut d, &mut grey);
                    run = None;
                    if let (Some(sc), Some(tris)) = (scale, g.triangles(r, c)) {
                        for tri in tris {
                            split_triangle(&tri, sc, &mut d);
                        }
                    }
                }
            }
        }
        close(run, cols - 1, &mut d, &mut grey);
    }
    svg.push_str(r#"<g class="fill" clip-path="url(#plot-area)" stroke-width="0.6" stroke-linejoin="round">"#);
    svg.push('\n');
    for (band, path) in d.iter().enumerate() {
        if path.is_empty() {
            continue;
        }
        let colour = scale.map_or_else(|| viridis(0.0), |sc| sc.colour(band));
        let _ = writeln!(
            svg,
            r#"<path class="band" fill="{colour}" stroke="{colour}" d="{path}"/>"#
        );
    }
    if !grey.is_empty() {
        let _ = writeln!(
            svg,
            r#"<path class="not-finite" fill="{NULL_COLOUR}" stroke="{NULL_COLOUR}" d="{grey}"/>"#
        );
    }
    svg.push_str("</g>\n");
}

/// A triangle's share of every band it meets.
fn split_triangle(tri: &[Vertex; 3], sc: &Scale, d: &mut [String]) {
    let lo = tri.iter().map(|v| v.s).fold(f64::INFINITY, f64::min);
    let hi = tri.iter().map(|v| v.s).fold(f64::NEG_INFINITY, f64::max);
    let last = sc.bands() - 1;
    let (first, end) = (sc.band(lo), sc.band(hi));
    for (band, out) in d.iter_mut().enumerate().take(end + 1).skip(first) {
        let mut poly = tri.to_vec();
        if band > 0 {
            poly = clip(&poly, sc.edges[band], true);
        }
        if band < last && poly.len() >= 3 {
            poly = clip(&poly, sc.edges[band + 1], false);
        }
        if poly.len() >= 3 {
            push_polygon(out, &poly);
        }
    }
}

/// The isolines at the inner band edges, every other one labelled where there is room.
fn isolines(svg: &mut String, g: &Sampled, sc: &Scale) {
    let (cols, rows) = (g.xs.len(), g.ys.len());
    let levels = &sc.edges[1..sc.edges.len() - 1];
    if levels.is_empty() {
        return;
    }
    let mut labels: Vec<(f64, f64, String)> = Vec::new();
    svg.push_str(r##"<g class="isolines" clip-path="url(#plot-area)" fill="none" stroke="#ffffff" stroke-opacity="0.8" stroke-width="0.8">"##);
    svg.push('\n');
    for (li, &level) in levels.iter().enumerate() {
        let mut segments: Vec<(Vertex, Vertex)> = Vec::new();
        for r in 0..rows - 1 {
            for c in 0..cols - 1 {
                let Some(tris) = g.triangles(r, c) else {
                    continue;
                };
                for tri in tris {
                    let mut ends = Vec::with_capacity(2);
                    for (i, j) in [(0, 1), (1, 2), (2, 0)] {
                        let (a, b) = (tri[i], tri[j]);
                        if (a.s >= level) != (b.s >= level) {
                            ends.push(lerp(a, b, level));
                        }
                    }
                    if let [p, q] = ends[..] {
                        segments.push((p, q));
                    }
                }
            }
        }
        if segments.is_empty() {
            continue;
        }
        let mut d = String::with_capacity(segments.len() * 24);
        for (p, q) in &segments {
            let _ = write!(d, "M{} {}L{} {}", C(p.x), C(p.y), C(q.x), C(q.y));
        }
        let _ = writeln!(svg, r#"<path class="isoline" d="{d}"/>"#);
        let step = if levels.len() > 6 { 2 } else { 1 };
        if li % step == 0 {
            let n = segments.len();
            let stride = n / 60 + 1;
            let clearance = |x: f64, y: f64| {
                labels
                    .iter()
                    .map(|(lx, ly, _)| ((lx - x) / 2.0).hypot(ly - y))
                    .fold(f64::INFINITY, f64::min)
            };
            let candidates = (0..n)
                .step_by(stride)
                .map(|i| &segments[(n / 2 + i) % n])
                .map(|(p, q)| ((p.x + q.x) / 2.0, (p.y + q.y) / 2.0))
                .filter(|&(x, y)| {
                    x > LEFT + 18.0
                        && x < LEFT + PLOT_W - 18.0
                        && y > TOP + 10.0
                        && y < TOP + PLOT_H - 6.0
                });
            let mut best: Option<(f64, f64, f64)> = None;
            for (x, y) in candidates {
                let c = clearance(x, y);
                if c >= 30.0 {
                    best = Some((x, y, c));
                    break;
                }
                if best.is_none_or(|(_, _, b)| c > b) {
                    best = Some((x, y, c));
                }
            }
            if let Some((x, y, c)) = best
                && c >= 12.0
            {
                labels.push((x, y, sc.label(level)));
            }
        }
    }
    svg.push_str("</g>\n");
    svg.push_str(r##"<g class="isoline-labels" font-size="12" text-anchor="middle" fill="#1a1a1a" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">"##);
    svg.push('\n');
    for (x, y, text) in labels {
        let _ = writeln!(
            svg,
            r#"<text class="isoline-label" x="{x:.1}" y="{:.1}">{}</text>"#,
            y + 4.0,
            escape_xml(&text)
        );
    }
    svg.push_str("</g>\n");
}

/// The frame, ticks and the axis names (the parameter pointers).
fn axes(svg: &mut String, l: &Landscape, xmap: Map, ymap: Map) {
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#1a1a1a"/>"##
    );
    svg.push_str(r##"<g class="ticks" font-size="12" fill="#333333">"##);
    svg.push('\n');
    for (map, horizontal) in [(xmap, true), (ymap, false)] {
        let step = nice_step((map.hi / 2.0 - map.lo / 2.0) * (2.0 / 4.0));
        let decimals = if step > 0.0 && step.is_finite() {
            (-step.log10().floor()).max(0.0) as usize
        } else {
            0
        };
        for v in ticks_between(map.lo, map.hi, step) {
            let p = map.at(v);
            let label = escape_xml(&format_number(v, decimals));
            if horizontal {
                let (y0, y1) = (TOP + PLOT_H, TOP + PLOT_H + 5.0);
                let _ = writeln!(
                    svg,
                    r##"<line x1="{p:.1}" y1="{y0}" x2="{p:.1}" y2="{y1}" stroke="#1a1a1a"/><text x="{p:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
                    TOP + PLOT_H + 19.0
                );
            } else {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{:.1}" y1="{p:.1}" x2="{LEFT}" y2="{p:.1}" stroke="#1a1a1a"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
                    LEFT - 5.0,
                    LEFT - 8.0,
                    p + 4.0
                );
            }
        }
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        r##"<text class="axis-name" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13" fill="#1a1a1a">{}</text>"##,
        LEFT + PLOT_W / 2.0,
        TOP + PLOT_H + 38.0,
        escape_xml(&l.x.parameter)
    );
    let (ax, ay) = (16.0, TOP + PLOT_H / 2.0);
    let _ = writeln!(
        svg,
        r##"<text class="axis-name" x="{ax}" y="{ay}" text-anchor="middle" font-size="13" fill="#1a1a1a" transform="rotate(-90 {ax} {ay})">{}</text>"##,
        escape_xml(&l.y.parameter)
    );
}

/// The colour bar with the band edges, and a grey key when some values are not finite.
fn colour_bar(svg: &mut String, scale: Option<&Scale>, any_null: bool) {
    svg.push_str(r##"<g class="colour-bar" font-size="12" fill="#333333">"##);
    svg.push('\n');
    let _ = writeln!(svg, r#"<text x="{BAR_X}" y="{:.1}">loss</text>"#, TOP - 6.0);
    if let Some(sc) = scale {
        let (lo, hi) = (sc.lo(), sc.hi());
        let at = |s: f64| {
            if hi > lo {
                TOP + PLOT_H - (s - lo) / (hi - lo) * PLOT_H
            } else {
                TOP + PLOT_H / 2.0
            }
        };
        for band in 0..sc.bands() {
            let (y0, y1) = if hi > lo {
                (at(sc.edges[band + 1]), at(sc.edges[band]))
            } else {
                (TOP, TOP + PLOT_H)
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{BAR_X}" y="{y0:.2}" width="{BAR_W}" height="{:.2}" fill="{}"/>"#,
                (y1 - y0).max(0.0) + 0.3,
                sc.colour(band)
            );
        }
        // labels at the edges: both ends, and the inner edges that keep 14 units clear
        let edges: Vec<f64> = if hi > lo { sc.edges.clone() } else { vec![lo] };
        let top_y = at(edges[edges.len() - 1]);
        let mut last_y = f64::INFINITY;
        for (i, &s) in edges.iter().enumerate() {
            let y = at(s);
            let is_end = i == 0 || i == edges.len() - 1;
            if !is_end && (last_y - y < 14.0 || y - top_y < 14.0) {
                continue;
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                BAR_X + BAR_W + 4.0,
                y + 4.0,
                escape_xml(&sc.label(s))
            );
            last_y = y;
        }
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{BAR_X}" y="{TOP}" width="{BAR_W}" height="{PLOT_H}" fill="none" stroke="#1a1a1a"/>"##
    );
    if any_null {
        let y = TOP + PLOT_H + 12.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{BAR_X}" y="{y}" width="{BAR_W}" height="10" fill="{NULL_COLOUR}" stroke="#1a1a1a"/><text x="{:.1}" y="{:.1}" font-size="11">not finite</text>"##,
            BAR_X - 2.0,
            y + 24.0
        );
    }
    svg.push_str("</g>\n");
}

/// The minimum's cross, the path with its start and end, and the legend lines.
fn marks(svg: &mut String, l: &Landscape, xmap: Map, ymap: Map) {
    let legend_y = TOP + PLOT_H + 62.0;
    let mut legend = Vec::new();
    if let Some(m) = l.minimum {
        let (x, y) = (xmap.at(m.x), ymap.at(m.y));
        let _ = writeln!(
            svg,
            r##"<path class="minimum" d="M{:.1} {y:.1}H{:.1}M{x:.1} {:.1}V{:.1}" stroke="#1a1a1a" stroke-width="4"/><path d="M{:.1} {y:.1}H{:.1}M{x:.1} {:.1}V{:.1}" stroke="#ffffff" stroke-width="2"/>"##,
            x - 6.0,
            x + 6.0,
            y - 6.0,
            y + 6.0,
            x - 5.0,
            x + 5.0,
            y - 5.0,
            y + 5.0,
        );
        legend.push(format!(
            "+ grid minimum {} at ({}, {})",
            short(m.loss),
            short(m.x),
            short(m.y)
        ));
    }
    if let Some(path) = &l.path {
        let pts = &path.points;
        if !pts.is_empty() {
            let keep = sample(pts.len(), MAX_PATH_POINTS);
            let mut d = String::with_capacity(keep.len() * 14);
            for (i, &p) in keep.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1} {:.1}",
                    if i == 0 { 'M' } else { 'L' },
                    xmap.at(pts[p].x),
                    ymap.at(pts[p].y)
                );
            }
            let (first, last) = (pts[0], pts[pts.len() - 1]);
            let (sx, sy) = (xmap.at(first.x), ymap.at(first.y));
            let (ex, ey) = (xmap.at(last.x), ymap.at(last.y));
            let _ = writeln!(
                svg,
                concat!(
                    r#"<g class="path" clip-path="url(#plot-area)">"#,
                    r##"<path d="{d}" fill="none" stroke="#ffffff" stroke-width="4.5" stroke-linejoin="round" stroke-linecap="round" stroke-opacity="0.85"/>"##,
                    r#"<path class="training-path" d="{d}" fill="none" stroke="{c}" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"/>"#,
                    r##"<circle class="path-start" cx="{sx:.1}" cy="{sy:.1}" r="5.5" fill="#ffffff" stroke="#1a1a1a" stroke-width="1.5"/>"##,
                    r##"<rect class="path-end" x="{ex0:.1}" y="{ey0:.1}" width="10" height="10" fill="{c}" stroke="#1a1a1a" stroke-width="1.5"/>"##,
                    "</g>"
                ),
                d = d,
                c = PATH_COLOUR,
                sx = sx,
                sy = sy,
                ex0 = ex - 5.0,
                ey0 = ey - 5.0,
            );
        }
        let run = &path.run;
        legend.push(format!(
            "path: {} after {} iteration{}",
            run.stop_reason.name(),
            run.iterations,
            if run.iterations == 1 { "" } else { "s" },
        ));
        legend.push(format!(
            "○ start  ■ end, final loss {}",
            short(run.final_state.loss)
        ));
    }
    svg.push_str(r##"<g class="legend" font-size="12" fill="#1a1a1a">"##);
    svg.push('\n');
    for (i, line) in legend.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            8.0,
            legend_y + 18.0 * i as f64,
            escape_xml(line)
        );
    }
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::landscape::{self, AxisSpec, LandscapeLimits, LandscapeSpec};
    use crate::compute::train::{StopRules, TrainSpec};
    use crate::compute::{Activation, Array, Cancel, LossKind};

    use crate::compute::landscape::textbook_neuron as neuron;

    fn axis(parameter: &str, from: f64, to: f64, steps: u64) -> AxisSpec {
        AxisSpec {
            parameter: parameter.into(),
            from,
            to,
            steps,
        }
    }

    fn landscape(train: TrainSpec, x: AxisSpec, y: AxisSpec, path: bool) -> Landscape {
        landscape::prepare(
            LandscapeSpec { train, x, y, path },
            &LandscapeLimits::default(),
        )
        .unwrap()
        .compute(&Cancel::none())
        .unwrap()
    }

    fn textbook(loss: LossKind, steps: u64) -> Landscape {
        landscape(
            neuron(loss),
            axis("/weights/0", -4.0, 6.0, steps),
            axis("/bias", -5.0, 5.0, steps),
            true,
        )
    }

    fn by_class<'a>(doc: &'a roxmltree::Document, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .collect()
    }

    fn numbers(d: &str) -> Vec<f64> {
        d.split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect()
    }

    #[test]
    fn the_textbook_picture_is_well_formed_with_every_part() {
        let l = textbook(LossKind::L2, 101);
        let svg = landscape_svg(&l, "l2 + sigmoid");
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("viewBox"), Some("0 0 460 470"));
        // no scripts, no outside references
        assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
        assert!(!svg.contains("href") && !svg.contains("@import") && !svg.contains("url(http"));
        // filled bands in more than one colour, isolines with labels, the colour bar
        let bands = by_class(&doc, "band");
        assert!(bands.len() >= 5, "{}", bands.len());
        let colours: std::collections::BTreeSet<_> =
            bands.iter().map(|b| b.attribute("fill").unwrap()).collect();
        assert_eq!(colours.len(), bands.len());
        assert!(!by_class(&doc, "isoline").is_empty());
        assert!(!by_class(&doc, "isoline-label").is_empty());
        assert_eq!(by_class(&doc, "colour-bar").len(), 1);
        // the axes are named by the parameters
        let names: Vec<_> = by_class(&doc, "axis-name")
            .iter()
            .map(|n| n.text().unwrap().to_string())
            .collect();
        assert_eq!(names, ["/weights/0", "/bias"]);
        // the path: one point per trace row (144 < the cap), starting at (ln 9, 0)
        let path = by_class(&doc, "training-path");
        assert_eq!(path.len(), 1);
        let xy = numbers(path[0].attribute("d").unwrap());
        assert_eq!(xy.len(), 2 * 144);
        let start = by_class(&doc, "path-start")[0];
        let (sx, sy): (f64, f64) = (
            start.attribute("cx").unwrap().parse().unwrap(),
            start.attribute("cy").unwrap().parse().unwrap(),
        );
        assert_eq!((sx, sy), (xy[0], xy[1]));
        // ln 9 on [−4, 6] over 300 units from 66; b = 0 halfway down from 56
        assert!(
            (sx - (66.0 + (9f64.ln() + 4.0) / 10.0 * 300.0)).abs() < 0.06,
            "{sx}"
        );
        assert!((sy - 206.0).abs() < 0.06, "{sy}");
        assert_eq!(by_class(&doc, "path-end").len(), 1);
        assert_eq!(by_class(&doc, "minimum").len(), 1);
        let text: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| n.text().unwrap())
            .collect();
        assert!(text.contains("loss_below after 143 iterations"), "{text}");
        assert!(text.contains("l2 + sigmoid"));
    }

    #[test]
    fn every_text_fits_the_picture_and_is_at_least_11_units() {
        for loss in [LossKind::L2, LossKind::Bce] {
            let svg = landscape_svg(&textbook(loss, 60), "a title");
            let doc = roxmltree::Document::parse(&svg).unwrap();
            for t in doc.descendants().filter(|n| n.has_tag_name("text")) {
                let x: f64 = t.attribute("x").unwrap().parse().unwrap();
                let y: f64 = t.attribute("y").unwrap().parse().unwrap();
                assert!(
                    (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                    "{x} {y}"
                );
                let size = t
                    .ancestors()
                    .find_map(|a| a.attribute("font-size"))
                    .unwrap_or("16");
                assert!(size.parse::<f64>().unwrap() >= 11.0);
            }
        }
    }

    #[test]
    fn colours_are_log_scaled_when_the_values_span_more_than_two_decades() {
        // the textbook l2 surface spans 0.0…0.125 with a minimum near 0: many decades
        let svg = landscape_svg(&textbook(LossKind::L2, 40), "t");
        assert!(svg.contains("log colour scale"));
        // (w + b)² over a small window near (1, 1) spans less than a decade
        let train = TrainSpec {
            inputs: Array::flat(vec![1.0]),
            targets: Array::flat(vec![0.0]),
            activation: Activation::Identity,
            loss: LossKind::Mse,
            ..neuron(LossKind::Mse)
        };
        let l = landscape(
            train,
            axis("/weights/0", 1.0, 2.0, 30),
            axis("/bias", 1.0, 2.0, 30),
            false,
        );
        let svg = landscape_svg(&l, "t");
        assert!(!svg.contains("log colour scale"));
        assert!(roxmltree::Document::parse(&svg).is_ok());
        // the scale's edges: nice numbers between the grid's extremes (4 and 16)
        let sc = Scale::new(l.loss.iter().copied()).unwrap();
        assert_eq!(sc.lo(), 4.0);
        assert_eq!(sc.hi(), 16.0);
        assert!(
            sc.edges[1..sc.edges.len() - 1]
                .iter()
                .all(|e| e.fract() == 0.0)
        );
    }

    #[test]
    fn a_grid_with_values_that_are_not_finite_is_drawn_grey() {
        let train = TrainSpec {
            inputs: Array::flat(vec![1e200]),
            targets: Array::flat(vec![0.0]),
            activation: Activation::Identity,
            loss: LossKind::Mse,
            init_weights: None,
            ..neuron(LossKind::Mse)
        };
        // all points overflow: no scale, all grey, still a picture
        let l = landscape(
            train.clone(),
            axis("/weights/0", 1e150, 1e300, 5),
            axis("/bias", 0.0, 1.0, 5),
            false,
        );
        assert_eq!(l.minimum, None);
        let svg = landscape_svg(&l, "overflow");
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(by_class(&doc, "not-finite").len(), 1);
        assert!(by_class(&doc, "band").is_empty());
        assert!(svg.contains("not finite"));
        // part of the grid finite: (1e200·w)² overflows from w ≈ 1.34e−46 on
        let l = landscape(
            train,
            axis("/weights/0", -1e-46, 4e-46, 11),
            axis("/bias", 0.0, 1.0, 5),
            true,
        );
        let svg = landscape_svg(&l, "partly");
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(by_class(&doc, "not-finite").len(), 1);
        assert!(!by_class(&doc, "band").is_empty());
    }

    #[test]
    fn a_large_grid_is_sampled_and_a_long_path_thinned() {
        let l = landscape(
            TrainSpec {
                learning_rate: 0.01,
                max_iterations: 5000,
                stop: StopRules::default(),
                ..neuron(LossKind::L2)
            },
            axis("/weights/0", -4.0, 6.0, 500),
            axis("/bias", -5.0, 5.0, 500),
            true,
        );
        let svg = landscape_svg(&l, "big");
        assert!(svg.len() < 300_000, "{}", svg.len());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let d = by_class(&doc, "training-path")[0].attribute("d").unwrap();
        assert_eq!(numbers(d).len(), 2 * (MAX_PATH_POINTS + 1));
    }

    #[test]
    fn sampling_keeps_the_ends_and_spreads_evenly() {
        assert_eq!(sample(5, 72), vec![0, 1, 2, 3, 4]);
        let s = sample(500, 72);
        assert_eq!(s.len(), 73);
        assert_eq!((s[0], s[72]), (0, 499));
        assert!(s.windows(2).all(|w| w[1] - w[0] >= 6 && w[1] - w[0] <= 8));
    }

    #[test]
    fn clipping_a_triangle_keeps_the_part_between_two_levels() {
        let v = |x, y, s| Vertex { x, y, s };
        let tri = [v(0.0, 0.0, 0.0), v(2.0, 0.0, 2.0), v(0.0, 2.0, 2.0)];
        let upper = clip(&tri, 1.0, true);
        assert_eq!(upper.len(), 4);
        assert!(upper.iter().all(|p| p.s >= 1.0));
        let band = clip(&clip(&tri, 0.5, true), 1.5, false);
        assert_eq!(band.len(), 4);
        assert!(band.iter().all(|p| (0.5..=1.5).contains(&p.s)));
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), "#440154");
        assert_eq!(viridis(1.0), "#fde725");
        assert_eq!(viridis(0.5), "#21918c");
        assert_eq!(viridis(f64::NAN), "#440154");
    }
}
