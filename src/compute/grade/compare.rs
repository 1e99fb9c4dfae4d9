//! One claim against the reference (API.md, `POST /grade`): numpy's `isclose` with the
//! reference as `expected` — a number passes iff |got − expected| ≤ atol + rtol·|expected|
//! — an array iff its shape equals the reference's and every element passes (`[n]` and
//! `[n][1]` differ; a string, `null` or a missing element fails, never an error);
//! `iterations`, `stop_reason`, `converged` by equality; a trace row by row, matched by
//! `iteration`, the first failing row in the claimed order being the divergence.
//!
//! Messages hold counts and pointers only, never a claimed or reference value: the
//! values go in the structured fields, which `reveal` thins out.

use std::borrow::Cow;

use super::answer::{Claim, Field, ROW_NAMES, as_index};
use super::task::{Expected, Nums, Outcome};
use super::{Reveal, Tolerance, Value, plural};
use crate::compute::train::TraceRow;

/// A reference shape: a number, `[n]` or `[rows][cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dims {
    /// A single number.
    Scalar,
    /// `[n]`.
    Flat(usize),
    /// `[rows][cols]`.
    Matrix(usize, usize),
}

impl Dims {
    fn len(self) -> usize {
        match self {
            Dims::Scalar => 1,
            Dims::Flat(n) => n,
            Dims::Matrix(r, c) => r * c,
        }
    }
    fn describe(self) -> String {
        match self {
            Dims::Scalar => "a number".into(),
            Dims::Flat(n) => plural(n, "number"),
            Dims::Matrix(r, c) => format!("{} of {}", plural(r, "row"), plural(c, "number")),
        }
    }
    /// The pointer to element `i` (row-major) under `at`.
    fn pointer(self, at: &str, i: usize) -> String {
        match self {
            Dims::Scalar => at.to_string(),
            Dims::Flat(_) => format!("{at}/{i}"),
            Dims::Matrix(_, c) => format!("{at}/{}/{}", i / c.max(1), i % c.max(1)),
        }
    }
}

/// A reference value as shown with `reveal: "expected"`.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    /// Numbers (a loss, a gradient, a final value) in their reference shape.
    Numbers {
        /// The reference's shape.
        dims: Dims,
        /// The reference's numbers, row-major.
        data: Vec<f64>,
    },
    /// `iterations`.
    Count(u64),
    /// `stop_reason`.
    Text(&'static str),
    /// `converged`.
    Flag(bool),
    /// The reference rows at the claimed iterations (`None`: no such state).
    Rows(Vec<Option<TraceRow>>),
}

/// Where a check first fails.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Pointer into the answer.
    pub at: String,
    /// The trace row's iteration.
    pub iteration: Option<u64>,
    /// The claimed value there (not for a whole array or object).
    pub got: Option<Value>,
    /// The reference value there.
    pub expected: Option<Shown>,
    /// atol + rtol·|expected| (numbers only).
    pub allowed: Option<f64>,
}

/// The verdict on one claimed field.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Pointer into the answer (`/loss`, `/final/weights`, `/trace`).
    pub field: &'static str,
    /// Whether every number (or the equality) passed.
    pub passed: bool,
    /// Numbers compared (elements of the reference; rows of a trace; 1 for equality).
    pub count: usize,
    /// How many of them failed.
    pub mismatches: usize,
    /// max |got − expected| over the elements (numbers only).
    pub max_abs_error: Option<f64>,
    /// max |got − expected| / |expected| over the non-zero expected elements.
    pub max_rel_error: Option<f64>,
    /// Where the check first fails, if it does.
    pub first_mismatch: Option<Mismatch>,
    /// The whole reference value (`reveal: "expected"` only).
    pub expected: Option<Shown>,
    /// The verdict in words ("expected 4 numbers, got 3").
    pub message: String,
    /// The fraction passed, for partial credit (0 on a shape mismatch; a trace: rows
    /// before the divergence over rows claimed).
    pub fraction: f64,
}

/// Errors are clamped to the largest f64: a response never holds ±Infinity.
fn clamp(x: f64) -> f64 {
    x.min(f64::MAX)
}

/// Judges a claim against an outcome.
pub(crate) fn judge(claim: &Claim, outcome: &Outcome, tol: Tolerance, reveal: Reveal) -> Check {
    let at = claim.field.pointer();
    if claim.field == Field::Final {
        return fail_whole(
            at,
            &claim.value,
            1,
            format!(
                "expected an object with weights, bias, loss or iteration, got {}",
                claim.value.describe()
            ),
            None,
            reveal,
        );
    }
    match outcome.expected(claim.field) {
        Some(exp) => judge_expected(claim.field, &claim.value, &exp, tol, reveal),
        None => fail_whole(
            at,
            &claim.value,
            1,
            format!("the task's answer has no {}", &at[1..]),
            None,
            reveal,
        ),
    }
}

pub(crate) fn judge_expected(
    field: Field,
    got: &Value,
    exp: &Expected<'_>,
    tol: Tolerance,
    reveal: Reveal,
) -> Check {
    let at = field.pointer();
    match exp {
        Expected::Numbers(nums) => numbers(at, got, nums, tol, reveal),
        Expected::Rows(rows) => trace(got, rows, tol, reveal),
        Expected::Count(n) => {
            let ok = got.as_number() == Some(*n as f64);
            let typed = as_index(got).is_some();
            equal(at, got, ok, typed, "an integer", Shown::Count(*n), reveal)
        }
        Expected::Text(s) => {
            let ok = matches!(got, Value::Text(t) if t == s);
            let typed = matches!(got, Value::Text(_));
            equal(at, got, ok, typed, "a stop reason", Shown::Text(s), reveal)
        }
        Expected::Flag(b) => {
            let ok = matches!(got, Value::Bool(g) if g == b);
            let typed = matches!(got, Value::Bool(_));
            equal(at, got, ok, typed, "true or false", Shown::Flag(*b), reveal)
        }
    }
}

fn shown(nums: &Nums<'_>) -> Shown {
    Shown::Numbers {
        dims: nums.dims,
        data: nums.data.to_vec(),
    }
}

/// A failed check where nothing could be compared element by element.
fn fail_whole(
    at: &'static str,
    got: &Value,
    count: usize,
    message: String,
    expected: Option<Shown>,
    reveal: Reveal,
) -> Check {
    let scalar_got = !matches!(got, Value::Array(_) | Value::Object(_));
    Check {
        field: at,
        passed: false,
        count,
        mismatches: count,
        max_abs_error: None,
        max_rel_error: None,
        first_mismatch: Some(Mismatch {
            at: at.to_string(),
            iteration: None,
            got: (reveal != Reveal::None && scalar_got).then(|| got.clone()),
            expected: None,
            allowed: None,
        }),
        expected: expected.filter(|_| reveal == Reveal::Expected),
        message,
        fraction: 0.0,
    }
}

/// The claimed elements in row-major order, when the claim has the reference's shape.
fn elements(got: &Value, dims: Dims) -> Option<Vec<&Value>> {
    match (dims, got) {
        (Dims::Scalar, Value::Number(_)) => Some(vec![got]),
        (Dims::Flat(n), Value::Array(items)) => {
            // a matrix where numbers belong is a shape mismatch ([n] vs [n][1])
            let rows = !items.is_empty() && items.iter().all(|v| matches!(v, Value::Array(_)));
            (items.len() == n && !rows).then(|| items.iter().collect())
        }
        (Dims::Matrix(r, c), Value::Array(rows)) => {
            if rows.len() != r {
                return None;
            }
            let mut out = Vec::with_capacity(r * c);
            for row in rows {
                match row {
                    Value::Array(xs) if xs.len() == c => out.extend(xs.iter()),
                    _ => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// The error a number may have: atol + rtol·|expected|.
fn allowed(tol: Tolerance, e: f64) -> f64 {
    tol.atol + tol.rtol * e.abs()
}

/// Whether [`judge_expected`] passes the claim, without writing its report: the
/// diagnosis asks this of every variant of a failed check.
pub(crate) fn passes(field: Field, got: &Value, exp: &Expected<'_>, tol: Tolerance) -> bool {
    match exp {
        // as [`numbers`]: the reference's shape and every element a number in tolerance
        Expected::Numbers(nums) => elements(got, nums.dims).is_some_and(|items| {
            items.iter().zip(nums.data.iter()).all(|(v, &e)| {
                v.as_number()
                    .is_some_and(|g| clamp((g - e).abs()) <= allowed(tol, e))
            })
        }),
        _ => judge_expected(field, got, exp, tol, Reveal::None).passed,
    }
}

/// A number or an array against the reference numbers.
pub(crate) fn numbers(
    at: &'static str,
    got: &Value,
    exp: &Nums<'_>,
    tol: Tolerance,
    reveal: Reveal,
) -> Check {
    let n = exp.dims.len();
    let Some(items) = elements(got, exp.dims) else {
        let message = match (exp.dims, got) {
            // API.md's own words: "expected 4 numbers, got 3"
            (Dims::Flat(_), Value::Array(xs)) if xs.iter().all(|x| x.as_number().is_some()) => {
                format!("expected {}, got {}", exp.dims.describe(), xs.len())
            }
            _ => format!("expected {}, got {}", exp.dims.describe(), got.describe()),
        };
        return fail_whole(at, got, n, message, Some(shown(exp)), reveal);
    };
    let mut good = 0usize;
    let mut max_abs: Option<f64> = None;
    let mut max_rel: Option<f64> = None;
    let mut first: Option<(usize, Option<f64>)> = None;
    for (i, (v, &e)) in items.iter().zip(exp.data.iter()).enumerate() {
        let allowed = allowed(tol, e);
        match v.as_number() {
            Some(g) => {
                let err = clamp((g - e).abs());
                max_abs = Some(max_abs.map_or(err, |m| m.max(err)));
                if e != 0.0 {
                    let rel = clamp(err / e.abs());
                    max_rel = Some(max_rel.map_or(rel, |m| m.max(rel)));
                }
                if err <= allowed {
                    good += 1;
                } else if first.is_none() {
                    first = Some((i, Some(allowed)));
                }
            }
            None => {
                if first.is_none() {
                    first = Some((i, None));
                }
            }
        }
    }
    let (max_abs_error, max_rel_error) = if reveal == Reveal::None {
        (None, None)
    } else {
        (max_abs, max_rel)
    };
    let expected = (reveal == Reveal::Expected).then(|| shown(exp));
    let Some((j, allowed)) = first else {
        return Check {
            field: at,
            passed: true,
            count: n,
            mismatches: 0,
            max_abs_error,
            max_rel_error,
            first_mismatch: None,
            expected,
            message: "within tolerance".into(),
            fraction: 1.0,
        };
    };
    let pointer = exp.dims.pointer(at, j);
    let message = match allowed {
        Some(_) if exp.dims == Dims::Scalar => "outside the tolerance".to_string(),
        Some(_) => format!(
            "{} of {} outside the tolerance",
            n - good,
            plural(n, "number")
        ),
        None => format!("{pointer} is {}, not a number", items[j].describe()),
    };
    let first_mismatch = Mismatch {
        iteration: None,
        got: (reveal != Reveal::None).then(|| items[j].clone()),
        expected: (reveal == Reveal::Expected).then(|| Shown::Numbers {
            dims: Dims::Scalar,
            data: vec![exp.data[j]],
        }),
        allowed: allowed.filter(|_| reveal != Reveal::None),
        at: pointer,
    };
    Check {
        field: at,
        passed: false,
        count: n,
        mismatches: n - good,
        max_abs_error,
        max_rel_error,
        first_mismatch: Some(first_mismatch),
        expected,
        message,
        fraction: good as f64 / n.max(1) as f64,
    }
}

/// An equality check (`iterations`, `stop_reason`, `converged`, `final/iteration`).
fn equal(
    at: &'static str,
    got: &Value,
    ok: bool,
    typed: bool,
    what: &str,
    expected: Shown,
    reveal: Reveal,
) -> Check {
    if ok {
        return Check {
            field: at,
            passed: true,
            count: 1,
            mismatches: 0,
            max_abs_error: None,
            max_rel_error: None,
            first_mismatch: None,
            expected: (reveal == Reveal::Expected).then_some(expected),
            message: "equal".into(),
            fraction: 1.0,
        };
    }
    let message = if typed {
        "differs from the reference".to_string()
    } else {
        format!("expected {what}, got {}", got.describe())
    };
    let mut c = fail_whole(at, got, 1, message, None, reveal);
    if reveal == Reveal::Expected {
        if let Some(m) = c.first_mismatch.as_mut() {
            m.expected = Some(expected.clone());
        }
        c.expected = Some(expected);
    }
    c
}

/// The reference row of state `i` (rows are in iteration order).
fn row_at(rows: &[TraceRow], i: u64) -> Option<&TraceRow> {
    rows.binary_search_by_key(&i, |r| r.iteration)
        .ok()
        .map(|j| &rows[j])
}

/// The numbers of a reference row's member.
fn row_member<'r>(row: &'r TraceRow, name: &str) -> Nums<'r> {
    match name {
        "loss" => Nums::of_scalar(&row.loss),
        "weights" => Nums::of_array(&row.weights),
        "bias" => Nums::of_bias(&row.bias),
        "gradient_weights" => Nums::of_array(&row.gradient_weights),
        _ => Nums::of_bias(&row.gradient_bias),
    }
}

/// A claimed trace: rows matched by `iteration`; the first failing row (in the claimed
/// order) is the divergence.
fn trace(got: &Value, rows: &[TraceRow], tol: Tolerance, reveal: Reveal) -> Check {
    let at = "/trace";
    let Value::Array(claimed) = got else {
        return fail_whole(
            at,
            got,
            0,
            format!("expected an array of trace rows, got {}", got.describe()),
            None,
            reveal,
        );
    };
    let n = claimed.len();
    let mut failed = 0usize;
    let mut first: Option<(usize, String, Mismatch)> = None;
    let mut max_abs: Option<f64> = None;
    let mut max_rel: Option<f64> = None;
    let mut expected_rows = Vec::new();
    for (j, row) in claimed.iter().enumerate() {
        let row_at_ptr = format!("/trace/{j}");
        let iteration = row.get("iteration");
        let reference = iteration.and_then(as_index).and_then(|i| row_at(rows, i));
        if reveal == Reveal::Expected {
            expected_rows.push(reference.cloned());
        }
        let problem: Option<(String, Mismatch)> = if !matches!(row, Value::Object(_)) {
            Some((
                format!("{row_at_ptr} is {}, not a row", row.describe()),
                mismatch(row_at_ptr.clone(), None, None, reveal),
            ))
        } else if iteration.and_then(as_index).is_none() {
            Some((
                format!("{row_at_ptr}/iteration must be an integer >= 0"),
                mismatch(format!("{row_at_ptr}/iteration"), None, iteration, reveal),
            ))
        } else if let Some(reference) = reference {
            let mut problem = None;
            for name in ROW_NAMES {
                let Some(v) = row.get(name) else { continue };
                let nums = row_member(reference, name);
                let c = numbers(at, v, &nums, tol, reveal);
                if let Some(e) = c.max_abs_error {
                    max_abs = Some(max_abs.map_or(e, |m: f64| m.max(e)));
                }
                if let Some(e) = c.max_rel_error {
                    max_rel = Some(max_rel.map_or(e, |m: f64| m.max(e)));
                }
                if !c.passed && problem.is_none() {
                    let member = format!("{row_at_ptr}/{name}");
                    let mut m = c
                        .first_mismatch
                        .unwrap_or_else(|| mismatch(member.clone(), None, None, reveal));
                    // the element's pointer under this row's member
                    m.at = format!("{member}{}", &m.at[at.len()..]);
                    m.iteration = (reveal != Reveal::None).then_some(reference.iteration);
                    let message = if c.message.starts_with('/') {
                        c.message.replacen(at, &member, 1)
                    } else {
                        format!("{member}: {}", c.message)
                    };
                    problem = Some((message, m));
                }
            }
            problem
        } else {
            Some((
                format!("{row_at_ptr}: the reference run has no such state"),
                mismatch(format!("{row_at_ptr}/iteration"), None, iteration, reveal),
            ))
        };
        if let Some((message, m)) = problem {
            failed += 1;
            if first.is_none() {
                first = Some((j, message, m));
            }
        }
    }
    let (max_abs_error, max_rel_error) = if reveal == Reveal::None {
        (None, None)
    } else {
        (max_abs, max_rel)
    };
    let expected = (reveal == Reveal::Expected).then_some(Shown::Rows(expected_rows));
    match first {
        None => Check {
            field: at,
            passed: true,
            count: n,
            mismatches: 0,
            max_abs_error,
            max_rel_error,
            first_mismatch: None,
            expected,
            message: format!("{} claimed, all match", plural(n, "row")),
            fraction: 1.0,
        },
        Some((j, why, m)) => Check {
            field: at,
            passed: false,
            count: n,
            mismatches: failed,
            max_abs_error,
            max_rel_error,
            first_mismatch: Some(m),
            expected,
            message: format!(
                "{failed} of {} differ; the trace diverges at row {j} ({why})",
                plural(n, "row")
            ),
            fraction: j as f64 / n as f64,
        },
    }
}

fn mismatch(at: String, iteration: Option<u64>, got: Option<&Value>, reveal: Reveal) -> Mismatch {
    Mismatch {
        at,
        iteration: iteration.filter(|_| reveal != Reveal::None),
        got: got
            .filter(|v| reveal != Reveal::None && !matches!(v, Value::Array(_) | Value::Object(_)))
            .cloned(),
        expected: None,
        allowed: None,
    }
}

/// Owned numbers, for the variants that are factors of the reference.
pub(crate) fn owned(dims: Dims, data: Vec<f64>) -> Nums<'static> {
    Nums {
        dims,
        data: Cow::Owned(data),
    }
}
