//! POST /grade's JSON: the request (items kept as raw text, so that each item is parsed
//! — and fails — on its own), the task bodies parsed by their endpoints' own DTOs, the
//! answer as untrusted values, and the response (losslab's or Gradescope's results.json).
//!
//! Request-level problems (not JSON, an unknown top-level field, no items, too many)
//! are the request's status; a problem inside `items[i]` is that item's `problem`, the
//! problem+json its endpoint would answer with pointers from the request root.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use rayon::prelude::*;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::extract::{parse_json, parse_json_exact};
use crate::api::problem::{ApiError, FieldError, Problem};
use crate::api::routes::to_json;
use crate::api::state::compute_error;
use crate::api::wire::gradient::GradientRequest;
use crate::api::wire::loss::LossRequest;
use crate::api::wire::train::{TraceRowOut, TrainRequest};
use crate::api::wire::{extend_joined, joined_len, par_array_parts};
use crate::compute::grade::{
    Check, Claim, Diagnosis, Dims, Grader, GradientTask, ItemReport, ItemSpec, LossTask, Mismatch,
    Reveal, Shown, Task, TaskId, TaskType, Tolerance, TrainTask, Value, parse_answer, score,
};
use crate::compute::{Cancel, ComputeError, ErrorKind, LossKind};

// ---------------------------------------------------------------------------------
// request

/// `{"rtol"?, "atol"?}`: each overrides the level above (item → request → numpy's
/// defaults 1e-5, 1e-8).
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToleranceDto {
    /// Relative tolerance (≥ 0; default 1e-5).
    pub rtol: Option<f64>,
    /// Absolute tolerance (≥ 0; default 1e-8).
    pub atol: Option<f64>,
}

impl ToleranceDto {
    fn over(self, base: Tolerance, at: &str) -> Result<Tolerance, ComputeError> {
        Tolerance {
            rtol: self.rtol.unwrap_or(base.rtol),
            atol: self.atol.unwrap_or(base.atol),
        }
        .validated(at)
    }
}

/// How much of the reference a response shows.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RevealDto {
    /// Counts, pointers, verdicts, messages and mistake ids only: no number from the
    /// answer or the reference (no errors, `got`, `allowed` or `expected`), also in the
    /// feedback text.
    None,
    /// Also the errors, the claimed values (`got`) and the allowed errors.
    #[default]
    Diff,
    /// Also the expected values.
    Expected,
}

/// The response format.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatDto {
    /// losslab's own response (below).
    #[default]
    Losslab,
    /// Gradescope's results.json: `{"score", "tests": [{"name", "score", "max_score",
    /// "status", "output"}]}`.
    Gradescope,
}

/// The request as parsed at the top level: the items stay raw text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GradeBody {
    items: Vec<Box<RawValue>>,
    // optional fields also take `null` (the spec's nullable optionals)
    #[serde(default, deserialize_with = "crate::api::wire::map_or_null")]
    tolerance: Option<ToleranceDto>,
    reveal: Option<RevealDto>,
    format: Option<FormatDto>,
}

/// One item as parsed: the task body stays raw text until its endpoint's DTO reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemDto {
    id: Option<String>,
    points: Option<f64>,
    #[serde(deserialize_with = "crate::api::wire::map_only")]
    task: TaskDto,
    answer: AnswerDto,
    #[serde(default, deserialize_with = "crate::api::wire::map_or_null")]
    tolerance: Option<ToleranceDto>,
    partial: Option<bool>,
}

/// `{"loss": {...}} | {"gradient": {...}} | {"train": {...}}`, exactly one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskDto {
    loss: Option<Box<RawValue>>,
    gradient: Option<Box<RawValue>>,
    train: Option<Box<RawValue>>,
}

/// What a failed item still shows: its id and points when they could be read.
#[derive(Deserialize)]
struct ItemHead {
    id: Option<serde_json::Value>,
    points: Option<serde_json::Value>,
}

/// A loss task: a `/loss/{kind}` body with its `kind`. The body is read by /loss's own
/// DTO ([`LossRequest`]); `kind` is taken out of the object on the way.
struct LossTaskDto {
    kind: Option<String>,
    body: LossRequest,
}

impl<'de> Deserialize<'de> for LossTaskDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LossTaskDto;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a /loss body with its kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LossTaskDto, A::Error> {
                let mut kind = None;
                let body =
                    LossRequest::deserialize(de::value::MapAccessDeserializer::new(WithoutKind {
                        map,
                        kind: &mut kind,
                    }))?;
                Ok(LossTaskDto { kind, body })
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of a map but `kind`, whose value it keeps.
struct WithoutKind<'k, A> {
    map: A,
    kind: &'k mut Option<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutKind<'_, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<String>()? else {
                return Ok(None);
            };
            if key == "kind" {
                *self.kind = Some(self.map.next_value::<String>()?);
                continue;
            }
            return seed
                .deserialize(de::value::StringDeserializer::<A::Error>::new(key))
                .map(Some);
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// The answer: any JSON value, kept as sent (untrusted student data).
struct AnswerDto(Value);

impl<'de> Deserialize<'de> for AnswerDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(AnswerDto)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element_seed(Seed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            out.push((k, map.next_value_seed(Seed)?));
        }
        Ok(Value::Object(out))
    }
}

struct Seed;

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

// ---------------------------------------------------------------------------------
// grading a request

/// The limits a /grade request is checked against.
pub struct GradeLimits {
    /// `--max-grade-items` (→ 422 at `/items`).
    pub max_items: usize,
    /// /train's limits, for train tasks.
    pub train: crate::compute::train::TrainLimits,
    /// `--timeout-secs`, for the messages of a computation past its time limit.
    pub timeout_secs: u64,
}

/// Items per chunk of the parallel passes (grading, rendering): each chunk checks the
/// cancel first, so a deadline or a client gone is seen within one chunk (each item also
/// checks it, and a long training run inside it), and 32 small items (~0.1 ms) balance
/// two cores without a chunk of long runs holding one core to the end.
const CHUNK: usize = 32;

/// How an item fails: its own problem, or the whole request (400, a deadline).
enum Fail {
    Item(Problem),
    Request(ApiError),
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid(..) | ApiError::NotFound(_) => Fail::Item(e.problem()),
            other => Fail::Request(other),
        }
    }
}

/// One graded (or failed) item, ready to render.
struct ItemOutcome {
    id: String,
    max_score: f64,
    result: Result<ItemReport, Problem>,
}

/// An item after its own JSON was read: what to grade but its task, whose body is still
/// text (tasks are parsed once per distinct body, after every item was read).
struct ParsedItem {
    id: Option<String>,
    points: f64,
    ttype: TaskType,
    body: Box<RawValue>,
    /// The index of its distinct task body (set once every item was read).
    task: usize,
    claims: Vec<Claim>,
    tolerance: Tolerance,
    partial: bool,
}

/// An item that could not be graded: its problem (pointers from the item), with the id
/// and points it still shows.
struct FailedItem {
    id: Option<String>,
    points: f64,
    problem: Problem,
}

/// Parses, grades and renders a whole request (one heavy computation). The items are
/// read, their distinct tasks parsed, the items graded and rendered on rayon's pool
/// (one worker per core) in chunks of [`CHUNK`]; every item is graded on its own against
/// the shared, memoised references, and the results are put back in item order, so the
/// body is the same bytes whatever the number of threads. A request-level problem (a
/// 400 inside an item) is the first one in item order, as a sequential pass finds it.
pub fn grade_request(
    body: &[u8],
    limits: &GradeLimits,
    cancel: &Cancel,
) -> Result<Vec<u8>, ApiError> {
    let req: GradeBody = parse_json_exact(body)?;
    if req.items.is_empty() {
        return Err(ApiError::invalid(
            "/items",
            "items must hold at least one item",
        ));
    }
    if req.items.len() > limits.max_items {
        return Err(ApiError::invalid(
            "/items",
            format!(
                "at most {} items per request (--max-grade-items); got {}",
                limits.max_items,
                req.items.len()
            ),
        ));
    }
    let top = req
        .tolerance
        .unwrap_or_default()
        .over(Tolerance::default(), "/tolerance")
        .map_err(ApiError::from)?;
    let reveal = match req.reveal.unwrap_or_default() {
        RevealDto::None => Reveal::None,
        RevealDto::Diff => Reveal::Diff,
        RevealDto::Expected => Reveal::Expected,
    };
    let timed_out = |e: ComputeError| compute_error(e, limits.timeout_secs);

    // 1. each item's own JSON (in parallel)
    cancel.check().map_err(timed_out)?;
    let parsed: Vec<Result<Result<ParsedItem, FailedItem>, ApiError>> = req
        .items
        .par_iter()
        .with_min_len(CHUNK)
        .map(|raw| parse_item(raw, top))
        .collect();
    let mut first_request_error: Option<ApiError> = None;
    let mut items: Vec<Result<ParsedItem, FailedItem>> = Vec::with_capacity(parsed.len());
    for p in parsed {
        match p {
            Ok(item) => items.push(item),
            Err(e) => {
                first_request_error = Some(e);
                break;
            }
        }
    }

    // 2. the distinct task bodies, in the order items first name them (items that share
    // a task body share its computations), parsed in parallel by their endpoints' DTOs
    let mut index: HashMap<(TaskType, &str), usize> = HashMap::new();
    let mut distinct: Vec<(TaskType, &str)> = Vec::new();
    let task_of: Vec<usize> = items
        .iter()
        .map(|item| match item {
            Ok(item) => {
                let key = (item.ttype, item.body.get());
                *index.entry(key).or_insert_with(|| {
                    distinct.push(key);
                    distinct.len() - 1
                })
            }
            Err(_) => 0,
        })
        .collect();
    cancel.check().map_err(timed_out)?;
    let tasks: Vec<Result<Task, Fail>> = distinct
        .par_iter()
        .map(|(ttype, body)| parse_task(*ttype, body.as_bytes(), limits))
        .collect();
    drop((index, distinct));
    for (item, t) in items.iter_mut().zip(task_of) {
        if let Ok(item) = item {
            item.task = t;
        }
    }
    let mut grader = Grader::new(reveal);
    let mut entries: Vec<Result<TaskId, Problem>> = Vec::with_capacity(tasks.len());
    for task in tasks {
        entries.push(match task {
            Ok(t) => Ok(grader.add_task(t)),
            Err(Fail::Item(p)) => Err(p),
            // the bodies come in the order items first name them, and only from the
            // items before the first item-level request error: this one is the first
            Err(Fail::Request(e)) => return Err(e),
        });
    }
    if let Some(e) = first_request_error {
        return Err(e);
    }

    // 3. every item graded (in parallel, chunk by chunk, each chunk checking the cancel)
    let (grader, entries) = (&grader, &entries);
    let secs = limits.timeout_secs;
    let chunks: Vec<Vec<ItemOutcome>> = items
        .into_par_iter()
        .enumerate()
        .chunks(CHUNK)
        .map(|chunk| {
            cancel.check().map_err(timed_out)?;
            chunk
                .into_iter()
                .map(|(i, item)| grade_item(grader, entries, i, item, cancel, secs))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .collect::<Result<_, ApiError>>()?;
    let outcomes: Vec<ItemOutcome> = chunks.into_iter().flatten().collect();

    // 4. the response, each chunk of items rendered on its own (in parallel)
    let scores: Vec<f64> = outcomes
        .iter()
        .map(|o| o.result.as_ref().map_or(0.0, |r| r.score))
        .collect();
    let total = score::total(&scores);
    cancel.check().map_err(timed_out)?;
    Ok(match req.format.unwrap_or_default() {
        FormatDto::Gradescope => {
            let head = to_json(&GradescopeHead { score: total }, 1);
            render(head, "tests", &outcomes, |o, out| {
                write_json(out, &gradescope_test(o))
            })
        }
        FormatDto::Losslab => {
            let max_scores: Vec<f64> = outcomes.iter().map(|o| o.max_score).collect();
            let count = |f: fn(&ItemOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
            let head = to_json(
                &GradeHead {
                    score: total,
                    max_score: score::total(&max_scores),
                    count: outcomes.len(),
                    passed: count(|o| matches!(&o.result, Ok(r) if r.passed)),
                    failed: count(|o| matches!(&o.result, Ok(r) if !r.passed)),
                    errors: count(|o| o.result.is_err()),
                },
                6,
            );
            render(head, "items", &outcomes, |o, out| {
                write_json(out, &item_out(o))
            })
        }
    })
}

/// Reads one item's own JSON: `Ok(Err(_))` is the item's problem, `Err` the request's
/// (a number outside the f64 range → 400).
fn parse_item(raw: &RawValue, top: Tolerance) -> Result<Result<ParsedItem, FailedItem>, ApiError> {
    match read_item(raw.get().as_bytes(), top) {
        Ok(item) => Ok(Ok(item)),
        Err(Fail::Request(e)) => Err(e),
        Err(Fail::Item(problem)) => {
            let (id, points) = item_head(raw);
            Ok(Err(FailedItem {
                id,
                points,
                problem,
            }))
        }
    }
}

/// The id and points an item in error still shows: an item that is not an object, or
/// whose points are invalid, is worth 0.
fn item_head(raw: &RawValue) -> (Option<String>, f64) {
    let head: Option<ItemHead> = serde_json::from_str(raw.get()).ok();
    let id = head
        .as_ref()
        .and_then(|h| h.id.as_ref())
        .and_then(|v| v.as_str().map(str::to_string));
    let points = match &head {
        None => 0.0,
        Some(ItemHead { points: None, .. }) => 1.0,
        Some(ItemHead {
            points: Some(v), ..
        }) => v.as_f64().filter(|p| *p >= 0.0).unwrap_or(0.0),
    };
    (id, points)
}

/// The item's fields and claims; problems with pointers from the item.
fn read_item(raw: &[u8], top: Tolerance) -> Result<ParsedItem, Fail> {
    let item: ItemDto = parse_json_exact(raw)?;
    let points = item.points.unwrap_or(1.0);
    if points < 0.0 {
        return Err(Fail::Item(
            ApiError::invalid("/points", "points must be a number >= 0").problem(),
        ));
    }
    let tolerance = item
        .tolerance
        .unwrap_or_default()
        .over(top, "/tolerance")
        .map_err(|e| Fail::Item(ApiError::from(e).problem()))?;
    let (ttype, body) = match (item.task.loss, item.task.gradient, item.task.train) {
        (Some(b), None, None) => (TaskType::Loss, b),
        (None, Some(b), None) => (TaskType::Gradient, b),
        (None, None, Some(b)) => (TaskType::Train, b),
        _ => {
            return Err(Fail::Item(
                ApiError::invalid("/task", "a task holds exactly one of loss, gradient, train")
                    .problem(),
            ));
        }
    };
    let claims =
        parse_answer(ttype, item.answer.0).map_err(|e| Fail::Item(ApiError::from(e).problem()))?;
    Ok(ParsedItem {
        id: item.id,
        points,
        ttype,
        body,
        task: 0,
        claims,
        tolerance,
        partial: item.partial.unwrap_or(false),
    })
}

/// Grades item `i` against its task's entry; `Err` ends the whole request (a deadline,
/// a cancel).
fn grade_item(
    grader: &Grader,
    entries: &[Result<TaskId, Problem>],
    i: usize,
    item: Result<ParsedItem, FailedItem>,
    cancel: &Cancel,
    timeout_secs: u64,
) -> Result<ItemOutcome, ApiError> {
    let (id, points, result) = match item {
        Ok(item) => {
            let result = match &entries[item.task] {
                Ok(task) => {
                    let spec = ItemSpec {
                        task: *task,
                        claims: item.claims,
                        tolerance: item.tolerance,
                        points: item.points,
                        partial: item.partial,
                    };
                    match grader.grade(&spec, cancel) {
                        Ok(r) => Ok(r),
                        Err(e) if e.kind == ErrorKind::Invalid => Err(ApiError::from(e).problem()),
                        Err(e) => return Err(compute_error(e, timeout_secs)),
                    }
                }
                Err(p) => Err(prefixed(p.clone(), &format!("/task/{}", item.ttype.name()))),
            };
            (item.id, item.points, result)
        }
        Err(f) => (f.id, f.points, Err(f.problem)),
    };
    Ok(ItemOutcome {
        id: id.unwrap_or_else(|| i.to_string()),
        max_score: points,
        result: result.map_err(|p| prefixed(p, &format!("/items/{i}"))),
    })
}

/// The response: `head` (a JSON object) with the items rendered under `key`, each
/// chunk of items written on its own (in parallel) — the same bytes as serialising the
/// whole object at once.
fn render(
    mut head: Vec<u8>,
    key: &str,
    outcomes: &[ItemOutcome],
    write: impl Fn(&ItemOutcome, &mut Vec<u8>) + Sync,
) -> Vec<u8> {
    let parts = par_array_parts(outcomes, CHUNK, 512, write);
    // `{...}` → `{...,"key":[items]}`
    head.pop();
    head.reserve(joined_len(&parts) + key.len() + 8);
    if head.len() > 1 {
        head.push(b',');
    }
    head.push(b'"');
    head.extend_from_slice(key.as_bytes());
    head.extend_from_slice(b"\":[");
    extend_joined(&mut head, &parts);
    head.extend_from_slice(b"]}");
    head
}

/// Appends `value`'s JSON (our response types serialise infallibly: numbers are finite).
fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    let _ = serde_json::to_writer(out, value);
}

/// A task body read by its endpoint's own DTO (errors as the endpoint answers them,
/// pointers from the body).
fn parse_task(ttype: TaskType, body: &[u8], limits: &GradeLimits) -> Result<Task, Fail> {
    match ttype {
        TaskType::Loss => {
            let dto: LossTaskDto = parse_json(body)?;
            let Some(name) = dto.kind else {
                return Err(Fail::from(ApiError::invalid(
                    "/kind",
                    format!(
                        "a loss task names its kind; known kinds: {}",
                        LossKind::names()
                    ),
                )));
            };
            let Some(kind) = LossKind::parse(&name) else {
                // the endpoint answers an unknown kind with a 404 listing the kinds
                let mut p = ApiError::NotFound(format!(
                    "unknown loss kind {name:?}; known kinds: {}",
                    LossKind::names()
                ))
                .problem();
                p.errors.push(FieldError {
                    field: "/kind".into(),
                    message: p.detail.clone(),
                });
                return Err(Fail::Item(p));
            };
            let r = dto.body;
            Ok(Task::Loss(LossTask {
                kind,
                params: r.params.0,
                from_logits: r.from_logits,
                predictions: r.predictions.0,
                targets: r.targets.0,
                reduction: r.reduction.into(),
                weights: r.weights,
            }))
        }
        TaskType::Train => {
            let req: TrainRequest = parse_json(body)?;
            let spec = req.into_spec().map_err(|e| Fail::from(ApiError::from(e)))?;
            Ok(Task::Train(Box::new(TrainTask {
                spec,
                limits: limits.train,
                reversed: false,
            })))
        }
        TaskType::Gradient => {
            let r: GradientRequest = parse_json(body)?;
            Ok(Task::Gradient(GradientTask {
                loss: r.loss.0,
                params: r.params.0,
                reduction: r.reduction.into(),
                weights: r.weights,
                targets: r.targets.0,
                predictions: r.predictions.map(|a| a.0),
                logits: r.logits.map(|z| z.0),
                activation: r.activation.map(|a| a.0),
                activation_params: r.activation_params.0,
            }))
        }
    }
}

/// A problem with its pointers moved under `prefix` (from the request root).
fn prefixed(mut p: Problem, prefix: &str) -> Problem {
    for e in &mut p.errors {
        e.field = format!("{prefix}{}", e.field);
    }
    if let [e] = p.errors.as_slice()
        && p.status == 422
    {
        p.detail = format!("{}: {}", e.field, e.message);
    }
    p
}

// ---------------------------------------------------------------------------------
// response

/// The response's members before `items` (rendered by [`render`]).
#[derive(Serialize)]
struct GradeHead {
    score: f64,
    max_score: f64,
    count: usize,
    passed: usize,
    failed: usize,
    errors: usize,
}

#[derive(Serialize)]
struct ItemOut<'a> {
    id: &'a str,
    status: &'static str,
    score: f64,
    max_score: f64,
    checks: Vec<CheckOut<'a>>,
    diagnosis: Vec<DiagnosisOut<'a>>,
    feedback: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a Problem>,
}

fn item_out(o: &ItemOutcome) -> ItemOut<'_> {
    match &o.result {
        Ok(r) => ItemOut {
            id: &o.id,
            status: if r.passed { "passed" } else { "failed" },
            score: r.score,
            max_score: o.max_score,
            checks: r.checks.iter().map(CheckOut).collect(),
            diagnosis: r.diagnosis.iter().map(DiagnosisOut::from).collect(),
            feedback: Cow::Borrowed(&r.feedback),
            problem: None,
        },
        Err(p) => ItemOut {
            id: &o.id,
            status: "error",
            score: 0.0,
            max_score: o.max_score,
            checks: Vec::new(),
            diagnosis: Vec::new(),
            feedback: Cow::Owned(error_feedback(p)),
            problem: Some(p),
        },
    }
}

fn error_feedback(p: &Problem) -> String {
    format!("This item could not be graded: {}", p.detail)
}

#[derive(Serialize)]
struct DiagnosisOut<'a> {
    mistake: &'static str,
    field: &'static str,
    message: &'a str,
}

impl<'a> From<&'a Diagnosis> for DiagnosisOut<'a> {
    fn from(d: &'a Diagnosis) -> Self {
        DiagnosisOut {
            mistake: d.mistake.id(),
            field: d.field,
            message: &d.message,
        }
    }
}

struct CheckOut<'a>(&'a Check);

impl Serialize for CheckOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("field", c.field)?;
        m.serialize_entry("passed", &c.passed)?;
        m.serialize_entry("count", &c.count)?;
        m.serialize_entry("mismatches", &c.mismatches)?;
        if let Some(e) = c.max_abs_error {
            m.serialize_entry("max_abs_error", &e)?;
        }
        if let Some(e) = c.max_rel_error {
            m.serialize_entry("max_rel_error", &e)?;
        }
        if let Some(f) = &c.first_mismatch {
            m.serialize_entry("first_mismatch", &MismatchOut(f))?;
        }
        if let Some(e) = &c.expected {
            m.serialize_entry("expected", &ShownOut(e))?;
        }
        m.serialize_entry("message", &c.message)?;
        m.end()
    }
}

struct MismatchOut<'a>(&'a Mismatch);

impl Serialize for MismatchOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("at", &f.at)?;
        if let Some(i) = f.iteration {
            m.serialize_entry("iteration", &i)?;
        }
        if let Some(g) = &f.got {
            m.serialize_entry("got", &ValueOut(g))?;
        }
        if let Some(e) = &f.expected {
            m.serialize_entry("expected", &ShownOut(e))?;
        }
        if let Some(a) = f.allowed {
            m.serialize_entry("allowed", &a)?;
        }
        m.end()
    }
}

/// An answer value as the student sent it.
struct ValueOut<'a>(&'a Value);

impl Serialize for ValueOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(x) => s.serialize_f64(*x),
            Value::Text(t) => s.serialize_str(t),
            Value::Array(items) => s.collect_seq(items.iter().map(ValueOut)),
            Value::Object(members) => {
                let mut m = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    m.serialize_entry(k, &ValueOut(v))?;
                }
                m.end()
            }
        }
    }
}

/// A reference value in its shape.
struct ShownOut<'a>(&'a Shown);

impl Serialize for ShownOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Shown::Numbers { dims, data } => match dims {
                Dims::Scalar => s.serialize_f64(data.first().copied().unwrap_or(0.0)),
                Dims::Flat(_) => data.serialize(s),
                Dims::Matrix(_, c) => s.collect_seq(data.chunks((*c).max(1))),
            },
            Shown::Count(n) => s.serialize_u64(*n),
            Shown::Text(t) => s.serialize_str(t),
            Shown::Flag(b) => s.serialize_bool(*b),
            Shown::Rows(rows) => {
                s.collect_seq(rows.iter().map(|r| r.as_ref().map(TraceRowOut::new)))
            }
        }
    }
}

/// Gradescope's results.json before `tests` (rendered by [`render`]).
#[derive(Serialize)]
struct GradescopeHead {
    score: f64,
}

#[derive(Serialize)]
struct GradescopeTest<'a> {
    name: &'a str,
    score: f64,
    max_score: f64,
    status: &'static str,
    output: Cow<'a, str>,
}

fn gradescope_test(o: &ItemOutcome) -> GradescopeTest<'_> {
    let (score, passed, output) = match &o.result {
        Ok(r) => (r.score, r.passed, Cow::Borrowed(r.feedback.as_str())),
        Err(p) => (0.0, false, Cow::Owned(error_feedback(p))),
    };
    GradescopeTest {
        name: &o.id,
        score,
        max_score: o.max_score,
        status: if passed { "passed" } else { "failed" },
        output,
    }
}
