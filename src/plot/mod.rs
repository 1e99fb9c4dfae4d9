//! Hand-written SVG pictures for reports and grading: the loss curve of a `/train` trace
//! (`Accept: image/svg+xml`, API.md "POST /train").
//!
//! Owns the layout of the picture and nothing else: plain string building, no crates, no
//! HTTP, no fonts to load (the text uses the viewer's `sans-serif`). The picture is a
//! standalone SVG 1.1 document (`xmlns`, `width`, `height`, `viewBox`) with a title, two
//! axes with tick labels, the axis titles "iteration" and "loss", and exactly ONE `<path>`:
//! the curve, with one path command per trace row in the order given (`M` for the first
//! row, `L` for each following row), so a grader can count the rows it was drawn from.
//!
//! Scale: the y axis is linear, unless every loss is positive and they span three decades
//! or more (a typical converging run), where it is log10 and the axis title says so.
//! Degenerate inputs still give a valid picture: one row (the path is a lone `M`, and a dot
//! marks it), a constant loss (the range is padded around it), ranges up to ±f64::MAX (the
//! mapping is written so no intermediate overflows) and non-finite losses (drawn pinned to
//! the top edge, excluded from the range; /train never sends them, but this is a pub fn).

use std::fmt::Write as _;

pub mod contour;

pub use contour::landscape_svg;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;
/// How many tick intervals an axis aims for.
const TARGET_TICKS: f64 = 5.0;

/// The loss curve of `series` (iteration, loss) as a standalone SVG document.
///
/// The single `<path class="loss-curve">` holds one command per element of `series`.
pub fn loss_curve_svg(series: &[(u64, f64)], title: &str) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_axis = x_axis(series);
    let y_axis = y_axis(series);

    let mut svg = String::with_capacity(2048 + series.len() * 20);
    let _ = write!(
        svg,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="loss-curve-title">"#,
            "\n",
            r#"<title id="loss-curve-title">{t}</title>"#,
            "\n",
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##,
            "\n",
            r##"<text x="{cx}" y="28" text-anchor="middle" font-family="sans-serif" font-size="16" font-weight="bold" fill="#1a1a1a">{t}</text>"##,
            "\n"
        ),
        w = WIDTH,
        h = HEIGHT,
        cx = fmt_coord(LEFT + plot_w / 2.0),
        t = escape_xml(title),
    );

    // Grid lines and tick labels, then the axes over them.
    svg.push_str(r##"<g font-family="sans-serif" font-size="12" fill="#333333">"##);
    svg.push('\n');
    for tick in &x_axis.ticks {
        let x = LEFT + x_axis.fraction(tick.value) * plot_w;
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#e3e3e3"/><text x="{x}" y="{label_y}" text-anchor="middle">{label}</text>"##,
            x = fmt_coord(x),
            top = fmt_coord(TOP),
            bottom = fmt_coord(TOP + plot_h + 5.0),
            label_y = fmt_coord(TOP + plot_h + 20.0),
            label = escape_xml(&tick.label),
        );
    }
    for tick in &y_axis.ticks {
        let y = TOP + (1.0 - y_axis.fraction(tick.value)) * plot_h;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#e3e3e3"/><text x="{label_x}" y="{label_y}" text-anchor="end">{label}</text>"##,
            left = fmt_coord(LEFT - 5.0),
            right = fmt_coord(LEFT + plot_w),
            y = fmt_coord(y),
            label_x = fmt_coord(LEFT - 8.0),
            label_y = fmt_coord(y + 4.0),
            label = escape_xml(&tick.label),
        );
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        r##"<g stroke="#1a1a1a" stroke-width="1"><line x1="{l}" y1="{b}" x2="{r}" y2="{b}"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}"/></g>"##,
        l = fmt_coord(LEFT),
        r = fmt_coord(LEFT + plot_w),
        t = fmt_coord(TOP),
        b = fmt_coord(TOP + plot_h),
    );
    let _ = writeln!(
        svg,
        r##"<text x="{x}" y="{y}" text-anchor="middle" font-family="sans-serif" font-size="13" fill="#1a1a1a">iteration</text>"##,
        x = fmt_coord(LEFT + plot_w / 2.0),
        y = fmt_coord(HEIGHT - 12.0),
    );
    let _ = writeln!(
        svg,
        r##"<text x="16" y="{y}" text-anchor="middle" font-family="sans-serif" font-size="13" fill="#1a1a1a" transform="rotate(-90 16 {y})">{label}</text>"##,
        y = fmt_coord(TOP + plot_h / 2.0),
        label = if y_axis.log {
            "loss (log scale)"
        } else {
            "loss"
        },
    );

    // The curve: one command per trace row.
    let mut d = String::with_capacity(series.len() * 20);
    for (i, &(iteration, loss)) in series.iter().enumerate() {
        let x = LEFT + x_axis.fraction(iteration as f64) * plot_w;
        let y = TOP + (1.0 - y_axis.fraction_of_loss(loss)) * plot_h;
        if i > 0 {
            d.push(' ');
        }
        let _ = write!(
            d,
            "{}{},{}",
            if i == 0 { 'M' } else { 'L' },
            fmt_coord(x),
            fmt_coord(y)
        );
    }
    let _ = writeln!(
        svg,
        r##"<path class="loss-curve" d="{d}" fill="none" stroke="#1f6feb" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>"##
    );
    if let [(iteration, loss)] = series {
        // A lone `M` draws nothing: mark the single row with a dot.
        let _ = writeln!(
            svg,
            r##"<circle cx="{}" cy="{}" r="3.5" fill="#1f6feb"/>"##,
            fmt_coord(LEFT + x_axis.fraction(*iteration as f64) * plot_w),
            fmt_coord(TOP + (1.0 - y_axis.fraction_of_loss(*loss)) * plot_h),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A tick: where it goes (in axis units: iterations, loss, or log10 loss) and its text.
struct Tick {
    value: f64,
    label: String,
}

/// A linear axis over `[lo, hi]` (lo < hi, both finite), in axis units.
struct Axis {
    lo: f64,
    hi: f64,
    /// y only: the axis units are log10(loss).
    log: bool,
    ticks: Vec<Tick>,
}

impl Axis {
    /// Position of `value` along the axis in [0, 1]. Halving first keeps `hi − lo` finite
    /// even for lo = −f64::MAX, hi = f64::MAX.
    fn fraction(&self, value: f64) -> f64 {
        let span = self.hi / 2.0 - self.lo / 2.0;
        let t = (value / 2.0 - self.lo / 2.0) / span;
        if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Position of a loss: through log10 on a log axis; non-finite losses pin to the top.
    fn fraction_of_loss(&self, loss: f64) -> f64 {
        if !loss.is_finite() {
            return 1.0;
        }
        let value = if self.log { loss.log10() } else { loss };
        self.fraction(value)
    }
}

fn x_axis(series: &[(u64, f64)]) -> Axis {
    let lo = series.iter().map(|&(i, _)| i).min().unwrap_or(0);
    let hi = series.iter().map(|&(i, _)| i).max().unwrap_or(1);
    let (lo, hi) = if lo == hi {
        (lo.saturating_sub(1), lo.saturating_add(1))
    } else {
        (lo, hi)
    };
    let (lo, hi) = (lo as f64, hi as f64);
    // Iterations are integers: never a step below 1.
    let step = nice_step((hi - lo) / TARGET_TICKS).max(1.0);
    let ticks = ticks_between(lo, hi, step)
        .into_iter()
        .map(|value| Tick {
            value,
            label: format!("{value:.0}"),
        })
        .collect();
    Axis {
        lo,
        hi,
        log: false,
        ticks,
    }
}

fn y_axis(series: &[(u64, f64)]) -> Axis {
    let finite = series.iter().map(|&(_, l)| l).filter(|l| l.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    if lo > hi {
        // No finite loss at all.
        return linear_y(0.0, 1.0);
    }
    // Three decades or more of positive losses: a log axis shows the whole run.
    if lo > 0.0 && hi / lo >= 1e3 {
        let (llo, lhi) = (lo.log10(), hi.log10());
        // Whole decades, at most ~8 labels.
        let step = (((lhi - llo) / 8.0).ceil()).max(1.0);
        let ticks = ticks_between(llo.floor(), lhi.ceil(), step)
            .into_iter()
            .filter(|&v| v >= llo - 1e-9 && v <= lhi + 1e-9)
            .map(|value| Tick {
                value,
                label: format!("1e{value:.0}"),
            })
            .collect();
        return Axis {
            lo: llo,
            hi: lhi,
            log: true,
            ticks,
        };
    }
    if lo == hi {
        // A constant loss: pad around it (10 % of its size, or ±1 around 0).
        // Clamped: f64::MAX + 10 % would overflow.
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() / 10.0 };
        return linear_y((lo - pad).max(-f64::MAX), (hi + pad).min(f64::MAX));
    }
    linear_y(lo, hi)
}

fn linear_y(lo: f64, hi: f64) -> Axis {
    let step = nice_step((hi / 2.0 - lo / 2.0) * (2.0 / TARGET_TICKS));
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).max(0.0) as usize
    } else {
        0
    };
    let ticks = ticks_between(lo, hi, step)
        .into_iter()
        .map(|value| Tick {
            value,
            label: format_number(value, decimals),
        })
        .collect();
    Axis {
        lo,
        hi,
        log: false,
        ticks,
    }
}

/// 1, 2 or 5 times a power of ten, near `raw` (raw > 0); 1 when raw is not usable.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let exponent = raw.log10().floor();
    let base = 10f64.powf(exponent);
    if base == 0.0 || !base.is_finite() {
        return raw;
    }
    let mantissa = raw / base;
    // Nearest of 1, 2, 5, 10 (on a log scale), so an axis gets about TARGET_TICKS ticks.
    let nice = if mantissa < 1.5 {
        1.0
    } else if mantissa < 3.0 {
        2.0
    } else if mantissa < 7.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * base;
    if step.is_finite() { step } else { raw }
}

/// The multiples of `step` inside [lo, hi] (a few; bounded whatever the inputs).
fn ticks_between(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(step.is_finite() && step > 0.0) {
        return out;
    }
    let first = (lo / step).ceil();
    let mut k = first;
    while out.len() < 24 {
        let value = k * step;
        if !value.is_finite() || value > hi * (1.0 + 1e-12) + f64::MIN_POSITIVE {
            break;
        }
        // `-0` reads badly as a label.
        out.push(if value == 0.0 { 0.0 } else { value });
        k += 1.0;
    }
    out
}

/// A tick label: fixed notation for moderate numbers, else short scientific notation.
fn format_number(value: f64, decimals: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if (1e-4..1e6).contains(&magnitude) && decimals <= 6 {
        return format!("{value:.decimals$}");
    }
    // e.g. "2.500e-7" → "2.5e-7".
    let sci = format!("{value:.3e}");
    match sci.split_once('e') {
        Some((mantissa, exponent)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.trim_end_matches('0').trim_end_matches('.')
            } else {
                mantissa
            };
            format!("{mantissa}e{exponent}")
        }
        None => sci,
    }
}

/// Coordinates with two decimals: plenty for a 640 × 400 picture.
fn fmt_coord(v: f64) -> String {
    format!("{v:.2}")
}

/// Text and attribute values for XML: the five predefined entities.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One element of a minimal XML parse: its name, attributes and (for the check of the
    /// text) the concatenated character data directly inside it.
    #[derive(Debug)]
    struct Element {
        name: String,
        attributes: Vec<(String, String)>,
        text: String,
    }

    /// A small well-formedness checker for the subset of XML 1.0 we emit: an optional
    /// `<?xml ...?>` prolog, one root element, nested elements with double- or
    /// single-quoted attributes (no duplicates), self-closing tags, character data with
    /// the five predefined entities and numeric references. Returns every element in
    /// document order, or what is wrong and where.
    fn parse_xml(doc: &str) -> Result<Vec<Element>, String> {
        let bytes = doc.as_bytes();
        let mut i = 0;
        let mut stack: Vec<usize> = Vec::new();
        let mut elements: Vec<Element> = Vec::new();
        let mut roots = 0;
        let skip_ws = |i: &mut usize| {
            while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        let name_at = |i: &mut usize| -> Result<String, String> {
            let start = *i;
            while *i < bytes.len()
                && (bytes[*i].is_ascii_alphanumeric() || b"-_:.".contains(&bytes[*i]))
            {
                *i += 1;
            }
            if start == *i || bytes[start].is_ascii_digit() {
                return Err(format!("expected a name at byte {start}"));
            }
            Ok(doc[start..*i].to_owned())
        };
        let check_entities = |text: &str, at: usize| -> Result<String, String> {
            let mut out = String::new();
            let mut rest = text;
            while let Some(amp) = rest.find('&') {
                out.push_str(&rest[..amp]);
                let semi = rest[amp..]
                    .find(';')
                    .ok_or_else(|| format!("unterminated entity near byte {at}"))?;
                let entity = &rest[amp + 1..amp + semi];
                match entity {
                    "amp" => out.push('&'),
                    "lt" => out.push('<'),
                    "gt" => out.push('>'),
                    "quot" => out.push('"'),
                    "apos" => out.push('\''),
                    e if e.starts_with('#') && e.len() > 1 => out.push('?'),
                    e => return Err(format!("unknown entity &{e}; near byte {at}")),
                }
                rest = &rest[amp + semi + 1..];
            }
            out.push_str(rest);
            Ok(out)
        };
        if doc.starts_with("<?xml") {
            i = doc.find("?>").ok_or("unterminated prolog")? + 2;
        }
        while i < bytes.len() {
            if bytes[i] == b'<' {
                if doc[i..].starts_with("</") {
                    i += 2;
                    let name = name_at(&mut i)?;
                    skip_ws(&mut i);
                    if bytes.get(i) != Some(&b'>') {
                        return Err(format!("expected '>' at byte {i}"));
                    }
                    i += 1;
                    let open = stack.pop().ok_or_else(|| format!("stray </{name}>"))?;
                    if elements[open].name != name {
                        return Err(format!(
                            "</{name}> closes <{}> at byte {i}",
                            elements[open].name
                        ));
                    }
                    continue;
                }
                i += 1;
                let name = name_at(&mut i)?;
                if stack.is_empty() {
                    roots += 1;
                }
                let mut attributes: Vec<(String, String)> = Vec::new();
                loop {
                    let before = i;
                    skip_ws(&mut i);
                    match bytes.get(i) {
                        Some(b'>') => {
                            i += 1;
                            stack.push(elements.len());
                            break;
                        }
                        Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                            i += 2;
                            break;
                        }
                        Some(_) if before == i => {
                            return Err(format!("expected whitespace before attribute at {i}"));
                        }
                        Some(_) => {
                            let attr = name_at(&mut i)?;
                            if bytes.get(i) != Some(&b'=') {
                                return Err(format!("expected '=' after {attr} at byte {i}"));
                            }
                            i += 1;
                            let quote = *bytes.get(i).ok_or("eof in attribute")?;
                            if quote != b'"' && quote != b'\'' {
                                return Err(format!("unquoted attribute {attr} at byte {i}"));
                            }
                            i += 1;
                            let end = doc[i..]
                                .find(quote as char)
                                .ok_or_else(|| format!("unterminated attribute {attr}"))?;
                            let raw = &doc[i..i + end];
                            if raw.contains('<') {
                                return Err(format!("'<' in attribute {attr}"));
                            }
                            let value = check_entities(raw, i)?;
                            i += end + 1;
                            if attributes.iter().any(|(n, _)| *n == attr) {
                                return Err(format!("duplicate attribute {attr}"));
                            }
                            attributes.push((attr, value));
                        }
                        None => return Err("eof in tag".to_owned()),
                    }
                }
                elements.push(Element {
                    name,
                    attributes,
                    text: String::new(),
                });
            } else {
                let end = doc[i..].find('<').map_or(bytes.len(), |e| i + e);
                let text = check_entities(&doc[i..end], i)?;
                match stack.last() {
                    Some(&open) => elements[open].text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(format!("text outside the root at byte {i}")),
                }
                i = end;
            }
        }
        if let Some(&open) = stack.last() {
            return Err(format!("<{}> is never closed", elements[open].name));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(elements)
    }

    fn attr<'a>(element: &'a Element, name: &str) -> Option<&'a str> {
        element
            .attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The (x, y) points of the curve, checking there is exactly one `<path>` and that its
    /// data is `M x,y` followed by `L x,y` commands.
    fn curve_points(svg: &str) -> Vec<(f64, f64)> {
        let elements = parse_xml(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"));
        let paths: Vec<&Element> = elements.iter().filter(|e| e.name == "path").collect();
        assert_eq!(paths.len(), 1, "exactly one <path>");
        let d = attr(paths[0], "d").expect("the path has a d attribute");
        d.split_whitespace()
            .enumerate()
            .map(|(i, command)| {
                let expected = if i == 0 { 'M' } else { 'L' };
                assert!(command.starts_with(expected), "command {i} is {command}");
                let (x, y) = command[1..].split_once(',').expect("x,y");
                let (x, y): (f64, f64) = (x.parse().expect("x"), y.parse().expect("y"));
                assert!(
                    (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                    "point {i} ({x}, {y}) lies outside the picture"
                );
                (x, y)
            })
            .collect()
    }

    fn texts(svg: &str) -> Vec<String> {
        parse_xml(svg)
            .expect("well-formed")
            .into_iter()
            .filter(|e| e.name == "text" || e.name == "title")
            .map(|e| e.text)
            .collect()
    }

    /// The textbook neuron's first losses are 0.08 and then shrink (API.md "POST /train").
    fn decaying(n: u64) -> Vec<(u64, f64)> {
        (0..n).map(|i| (i, 0.08 / (1.0 + i as f64))).collect()
    }

    #[test]
    fn the_svg_is_a_standalone_well_formed_document_with_size_and_viewbox() {
        let svg = loss_curve_svg(&decaying(288), "textbook neuron (l2)");
        let elements = parse_xml(&svg).expect("well-formed");
        let root = &elements[0];
        assert_eq!(root.name, "svg");
        assert_eq!(attr(root, "xmlns"), Some("http://www.w3.org/2000/svg"));
        assert_eq!(attr(root, "width"), Some("640"));
        assert_eq!(attr(root, "height"), Some("400"));
        assert_eq!(attr(root, "viewBox"), Some("0 0 640 400"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn the_path_has_exactly_one_point_per_trace_row() {
        for n in [1, 2, 3, 288, 1001] {
            let svg = loss_curve_svg(&decaying(n), "run");
            assert_eq!(curve_points(&svg).len(), n as usize, "n = {n}");
        }
    }

    #[test]
    fn axes_carry_titles_tick_labels_and_the_title() {
        let svg = loss_curve_svg(&decaying(288), "textbook neuron (l2)");
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "iteration"), "{texts:?}");
        assert!(texts.iter().any(|t| t.starts_with("loss")), "{texts:?}");
        assert!(
            texts
                .iter()
                .filter(|t| *t == "textbook neuron (l2)")
                .count()
                >= 2,
            "title element and visible title: {texts:?}"
        );
        // Iterations 0..=287: 287 / 5 ≈ 57 rounds to a step of 50: 0, 50, …, 250.
        for label in ["0", "50", "100", "250"] {
            assert!(
                texts.iter().any(|t| t == label),
                "x tick {label}: {texts:?}"
            );
        }
        // Losses in (0, 0.08]: linear ticks in steps of 0.02.
        assert!(texts.iter().any(|t| t == "0.08"), "{texts:?}");
    }

    #[test]
    fn text_is_escaped_for_xml() {
        let title = r#"<l2> & "bce" vs 'focal'"#;
        let svg = loss_curve_svg(&decaying(5), title);
        assert!(svg.contains("&lt;l2&gt; &amp; &quot;bce&quot; vs &apos;focal&apos;"));
        assert!(texts(&svg).iter().any(|t| t == title));
    }

    #[test]
    fn a_single_row_gives_a_lone_move_and_a_dot() {
        let svg = loss_curve_svg(&[(0, 0.08)], "one row");
        assert_eq!(curve_points(&svg).len(), 1);
        let elements = parse_xml(&svg).expect("well-formed");
        assert_eq!(elements.iter().filter(|e| e.name == "circle").count(), 1);
    }

    #[test]
    fn a_constant_loss_is_drawn_as_a_level_line_inside_the_plot() {
        let svg = loss_curve_svg(&[(0, 0.5), (1, 0.5), (2, 0.5)], "flat");
        let points = curve_points(&svg);
        assert!(points.windows(2).all(|w| w[0].1 == w[1].1), "{points:?}");
        assert!(points[0].1 > TOP && points[0].1 < HEIGHT - BOTTOM);
        let zero = loss_curve_svg(&[(3, 0.0), (4, 0.0)], "zero");
        assert_eq!(curve_points(&zero).len(), 2);
    }

    #[test]
    fn a_larger_loss_is_drawn_higher_and_later_iterations_further_right() {
        let points = curve_points(&loss_curve_svg(&decaying(10), "run"));
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
        );
        assert_eq!(points[0].1, TOP, "the largest loss touches the top");
        assert_eq!(points[9].1, HEIGHT - BOTTOM, "the smallest the bottom");
    }

    #[test]
    fn losses_spanning_decades_use_a_log_axis() {
        let series: Vec<(u64, f64)> = (0..50).map(|i| (i, 10f64.powi(-(i as i32)))).collect();
        let svg = loss_curve_svg(&series, "decades");
        assert!(texts(&svg).iter().any(|t| t == "loss (log scale)"));
        let points = curve_points(&svg);
        // Equal ratios → equal steps on a log axis.
        let first = points[1].1 - points[0].1;
        let last = points[49].1 - points[48].1;
        assert!((first - last).abs() < 0.02, "{first} vs {last}");
    }

    #[test]
    fn huge_ranges_stay_finite_and_inside_the_picture() {
        for series in [
            vec![(0, -f64::MAX), (1, f64::MAX)],
            vec![(0, 1e-300), (7, 1e300)],
            vec![(0, f64::MAX), (u64::MAX, f64::MAX)],
            vec![(0, -1e300), (1, 1e-300)],
            vec![(0, 5e-324), (1, 1.0)],
        ] {
            let svg = loss_curve_svg(&series, "huge");
            assert_eq!(curve_points(&svg).len(), 2, "{series:?}");
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn non_finite_losses_are_pinned_to_the_top_and_still_counted() {
        let svg = loss_curve_svg(
            &[(0, 1.0), (1, f64::NAN), (2, f64::INFINITY), (3, 0.5)],
            "diverging",
        );
        let points = curve_points(&svg);
        assert_eq!(points.len(), 4);
        assert_eq!(points[1].1, TOP);
        assert_eq!(points[2].1, TOP);
    }

    #[test]
    fn an_empty_trace_still_gives_a_well_formed_picture_with_an_empty_path() {
        let svg = loss_curve_svg(&[], "no rows");
        assert_eq!(curve_points(&svg).len(), 0);
    }

    #[test]
    fn the_checker_rejects_what_is_not_well_formed() {
        for bad in [
            "<svg><g></svg>",
            "<svg></g>",
            "<svg a=1></svg>",
            "<svg a=\"1\" a=\"2\"></svg>",
            "<svg>a < b</svg>",
            "<svg>&nbsp;</svg>",
            "<svg/><svg/>",
            "<svg>",
        ] {
            assert!(parse_xml(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse_xml("<?xml version=\"1.0\"?>\n<a b='&amp;'><c/>x &lt; y</a>\n").is_ok());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_number(0.30000000000000004, 1), "0.3");
        assert_eq!(format_number(2.5e-7, 8), "2.5e-7");
        assert_eq!(format_number(1e300, 0), "1e300");
        assert_eq!(format_number(-0.0, 2), "0");
        assert_eq!(nice_step(0.016), 0.02);
        assert_eq!(nice_step(57.4), 50.0);
        assert_eq!(nice_step(8.0), 10.0);
        assert_eq!(nice_step(f64::INFINITY), 1.0);
    }
}
