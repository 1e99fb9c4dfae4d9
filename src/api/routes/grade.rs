//! `POST /grade`: a class's claimed answers graded against losslab's own results. The
//! whole request is one heavy computation (blocking pool, time limit, cancel on
//! disconnect); the JSON lives in `wire_grade.rs`, the grading in `compute::grade`.

use std::borrow::Cow;

use axum::extract::State;
use axum::response::Response;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::api::extract::JsonBytes;
use crate::api::problem::{ApiError, Problem};
use crate::api::routes::json_response;
use crate::api::routes::train::train_limits;
use crate::api::state::AppState;
use crate::api::wire::gradient::GradientRequest;
use crate::api::wire::loss::LossRequest;
use crate::api::wire::train::TrainRequest;
use crate::api::wire_grade::{FormatDto, GradeLimits, RevealDto, ToleranceDto, grade_request};

/// Grade claimed answers (a loss, a gradient, a training run) against losslab's own.
///
/// Each item's task is computed as its endpoint computes it (with `gradient` when a gradient
/// is claimed; with every state a claimed trace row names, also when `trace_every` skips it
/// or is 0) and each claimed field is one check, in the order the answer names them.
/// Choices where API.md is silent:
/// - A number passes iff |got − expected| ≤ atol + rtol·|expected|; an array iff its shape
///   is the reference's (`[n]`, `[n][1]` and a bare number all differ) and every element
///   passes. A string, `null`, an object or a missing element fails its check with a
///   message that holds counts only ("expected 4 numbers, got 3"); errors are clamped to the
///   largest f64.
/// - `final`'s members (`weights`, `bias`, `loss`, `iteration`) are checks of their own; a
///   `final` that is not an object fails as the check `/final`. Trace rows are compared member
///   by member in the order loss, weights, bias, gradient_weights, gradient_bias; a row that
///   is not an object, has no integer `iteration`, or names a state the run never reaches
///   fails. An unknown member of `final` or of a row is an error of the item, as is a field
///   the task cannot produce (`activations`, `d_logits` without logits).
/// - Diagnosis scope: ½×, 2× and −1× apply to `/loss` and `/gradient` (loss tasks), `/loss`,
///   `/d_predictions`, `/d_logits` (gradient tasks), `/final/loss` (train tasks); √ to a scalar
///   `/loss` or `/final/loss`; the other reduction to loss and gradient tasks; `log_base` tries
///   e, 2 and 10 for kinds with that param; `kl_reversed` applies to a kl_div `/loss` given
///   predictions; `logits_as_probabilities` / `probabilities_as_logits` to loss tasks of kinds
///   with a logits form; `weights_ignored` drops each of `weights`, `class_weights`,
///   `pos_weight` alone and all together; `off_by_one` applies to `/iterations`; the bias and
///   ascent variants to every field of a train task. A variant its endpoint would refuse
///   (probabilities outside [0, 1] read as probabilities) does not apply. Each computed
///   variant is the same computation with one setting changed, done only for failed checks
///   and once per task per request (items sharing a task body share it).
/// - An item in error scores 0 and keeps its `points` as `max_score` when they can be read
///   (0 when they are invalid or the item is not an object). A loss task without `kind` is a
///   422 at `kind`; an unknown kind is the 404 /loss/{kind} answers, with the pointer. A
///   number outside the f64 range anywhere in the body makes the whole request a 400.
/// - The feedback names what was right, what was not (with the first mismatching element's
///   pointer), and each mistake in plain words; with `reveal: "diff"` it also says what the
///   student gave there and the error allowed, with `expected` the expected value, and with
///   `none` it holds no number from the answer or the reference.
#[utoipa::path(
    post,
    path = "/grade",
    tag = "grading",
    request_body(content((GradeRequest = "application/json", examples(
            ("passing" = (summary = "One passing item", value = json!({"items": [{"id": "q1", "task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]}}, "answer": {"gradient": [-0.3333333333333333, 1.3333333333333333, 0.3333333333333333], "loss": 1.5}}]}))),
            ("half_factor" = (summary = "The textbook's ½·MSE where the task asks for MSE: half_factor", value = json!({"items": [{"id": "q1", "task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]}}, "answer": {"loss": 0.75}}]}))),
            ("trace_diverges" = (summary = "A trace that climbs the loss: diverges at iteration 1 (gradient_ascent)", value = json!({"items": [{"id": "neuron", "task": {"train": {"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2", "init": {"weights": 2.1972245773362196, "bias": 0.0}, "use_bias": false, "learning_rate": 0.2, "max_iterations": 3}}, "answer": {"trace": [{"iteration": 0, "loss": 0.08, "weights": [2.1972245773362196]}, {"iteration": 1, "weights": [2.2044245773362197]}]}, "partial": true}]}))),
            ("gradescope" = (summary = "Gradescope's results.json", value = json!({"format": "gradescope", "items": [{"id": "q1", "task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]}}, "answer": {"loss": 1.5}}, {"id": "q2", "task": {"loss": {"kind": "mse", "predictions": [0.5, 2.0, -1.0], "targets": [1.0, 0.0, -1.5]}}, "answer": {"loss": 0.75}}]})))
    )))),
    responses(
        (status = 200, description = "Every item graded (an item whose task, answer names, tolerance or points are invalid has status `error` and its `problem`); with `format: \"gradescope\"`, Gradescope's results.json",
            content((GradeResults = "application/json", examples(
            ("passing" = (summary = "One passing item", value = json!({"score": 1.0, "max_score": 1.0, "count": 1, "passed": 1, "failed": 0, "errors": 0, "items": [{"id": "q1", "status": "passed", "score": 1.0, "max_score": 1.0, "checks": [{"field": "/gradient", "passed": true, "count": 3, "mismatches": 0, "max_abs_error": 0.0, "max_rel_error": 0.0, "message": "within tolerance"}, {"field": "/loss", "passed": true, "count": 1, "mismatches": 0, "max_abs_error": 0.0, "max_rel_error": 0.0, "message": "within tolerance"}], "diagnosis": [], "feedback": "Correct: your gradient and loss agree with losslab's result within the tolerance."}]}))),
            ("half_factor" = (summary = "The textbook's ½·MSE where the task asks for MSE: half_factor", value = json!({"score": 0.0, "max_score": 1.0, "count": 1, "passed": 0, "failed": 1, "errors": 0, "items": [{"id": "q1", "status": "failed", "score": 0.0, "max_score": 1.0, "checks": [{"field": "/loss", "passed": false, "count": 1, "mismatches": 1, "max_abs_error": 0.75, "max_rel_error": 0.5, "first_mismatch": {"at": "/loss", "got": 0.75, "allowed": 1.5010000000000002e-05}, "message": "outside the tolerance"}], "diagnosis": [{"mistake": "half_factor", "field": "/loss", "message": "loss is ½ of the expected value: a ½ that the task does not have (½·r² for r²)"}], "feedback": "Not right: loss (outside the tolerance; you gave 0.75, allowed error 1.5010000000000002e-5). Your loss: it is exactly half the expected value: you used a ½ the task does not have (the textbook's ½·(a − y)² where the task asks for (a − y)²) (half_factor)."}]}))),
            ("trace_diverges" = (summary = "A trace that climbs the loss: diverges at iteration 1 (gradient_ascent)", value = json!({"score": 0.5, "max_score": 1.0, "count": 1, "passed": 0, "failed": 1, "errors": 0, "items": [{"id": "neuron", "status": "failed", "score": 0.5, "max_score": 1.0, "checks": [{"field": "/trace", "passed": false, "count": 2, "mismatches": 1, "max_abs_error": 0.01440000000000019, "max_rel_error": 0.006575268674617005, "first_mismatch": {"at": "/trace/1/weights/0", "iteration": 1, "got": 2.2044245773362197, "allowed": 2.1910245773362198e-05}, "message": "1 of 2 rows differ; the trace diverges at row 1 (/trace/1/weights: 1 of 1 number outside the tolerance)"}], "diagnosis": [{"mistake": "gradient_ascent", "field": "/trace", "message": "trace matches the run with the update's sign reversed: w + η·∇ (ascent) for w − η·∇"}], "feedback": "Not right: trace (1 of 2 rows differ; the trace diverges at row 1 (/trace/1/weights: 1 of 1 number outside the tolerance), first at /trace/1/weights/0; you gave 2.2044245773362197, allowed error 2.1910245773362198e-5). Your trace: your run climbs the loss: the update is w − η·∇L, not w + η·∇L (gradient_ascent)."}]}))),
            ("gradescope" = (summary = "Gradescope's results.json", value = json!({"score": 1.0, "tests": [{"name": "q1", "score": 1.0, "max_score": 1.0, "status": "passed", "output": "Correct: your loss agrees with losslab's result within the tolerance."}, {"name": "q2", "score": 0.0, "max_score": 1.0, "status": "failed", "output": "Not right: loss (outside the tolerance; you gave 0.75, allowed error 1.5010000000000002e-5). Your loss: it is exactly half the expected value: you used a ½ the task does not have (the textbook's ½·(a − y)² where the task asks for (a − y)²) (half_factor)."}]})))
            )))),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_grade(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let limits = GradeLimits {
        max_items: state.config.max_grade_items,
        train: train_limits(&state),
        timeout_secs: state.config.timeout_secs,
    };
    let bytes = state
        .compute(true, move |cancel| grade_request(&body, &limits, cancel))
        .await?;
    Ok(json_response(bytes))
}

// ---------------------------------------------------------------------------------
// the documented shapes (the parsing and rendering types live in wire_grade.rs)

/// A class's claimed answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeRequest {
    /// 1 … `--max-grade-items` items (default 10 000; more → 422 at `/items`).
    #[schema(min_items = 1)]
    items: Vec<GradeItem>,
    /// The default of every item (numpy's 1e-5, 1e-8 when absent).
    tolerance: Option<ToleranceDto>,
    /// `diff` by default.
    reveal: Option<RevealDto>,
    /// `losslab` by default.
    format: Option<FormatDto>,
}

/// One claimed answer and the task it answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeItem {
    /// Default: the item's index as a string ("3").
    id: Option<String>,
    /// ≥ 0 (default 1).
    #[schema(minimum = 0)]
    points: Option<f64>,
    task: GradeTask,
    /// The claim: loss → `loss`, `gradient`; gradient → `loss`, `activations`,
    /// `d_predictions`, `d_logits`; train → `iterations`, `stop_reason`, `converged`,
    /// `final` (`weights`, `bias`, `loss`, `iteration`), `trace` (rows with `iteration`
    /// and any of `loss`, `weights`, `bias`, `gradient_weights`, `gradient_bias`). The
    /// values are untrusted: a string, `null`, a wrong shape or a missing element fails
    /// its check, never the request.
    #[schema(value_type = Object)]
    answer: serde_json::Value,
    /// Overrides the request's tolerance, each of rtol and atol on its own.
    tolerance: Option<ToleranceDto>,
    /// Partial credit: points × the mean over checks of the fraction passed.
    partial: Option<bool>,
}

/// Exactly one of `loss`, `gradient`, `train`: the body of that endpoint.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeTask {
    loss: Option<LossTask>,
    gradient: Option<GradientRequest>,
    train: Option<TrainRequest>,
}

/// A `/loss/{kind}` body with its `kind`.
pub struct LossTask;

impl PartialSchema for LossTask {
    fn schema() -> RefOr<Schema> {
        let mut s = LossRequest::schema();
        if let RefOr::T(Schema::Object(o)) = &mut s {
            add_kind(o);
        }
        s
    }
}

fn add_kind(o: &mut Object) {
    o.properties
        .insert("kind".into(), RefOr::Ref(Ref::from_schema_name("LossKind")));
    o.required.push("kind".into());
    o.description = Some("A /loss/{kind} body with its kind.".into());
    o.example = None;
}

impl ToSchema for LossTask {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LossTask")
    }
}

/// The graded request: losslab's format, or Gradescope's results.json.
pub struct GradeResults;

impl PartialSchema for GradeResults {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name("GradeResponse"))
            .item(Ref::from_schema_name("GradescopeResults"))
            .description(Some(
                "losslab's format (default), or Gradescope's results.json with `format: \"gradescope\"`.",
            ))
            .into()
    }
}

impl ToSchema for GradeResults {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("GradeResults")
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("GradeResponse".into(), GradeResponse::schema()));
        <GradeResponse as ToSchema>::schemas(schemas);
        schemas.push(("GradescopeResults".into(), GradescopeResults::schema()));
        <GradescopeResults as ToSchema>::schemas(schemas);
    }
}

/// Every item graded.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeResponse {
    /// Σ item scores.
    score: f64,
    /// Σ item points (items in error included).
    max_score: f64,
    count: u64,
    passed: u64,
    failed: u64,
    errors: u64,
    items: Vec<GradedItem>,
}

/// One graded item.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradedItem {
    id: String,
    /// passed | failed | error
    status: String,
    score: f64,
    max_score: f64,
    checks: Vec<GradeCheck>,
    /// Every mistake of the table whose result passes a failed check, in table order.
    diagnosis: Vec<GradeDiagnosis>,
    /// A paragraph written for the student (no number from the answer or the reference
    /// with `reveal: "none"`).
    feedback: String,
    /// Status `error`: the problem+json the task's endpoint would answer, pointers from
    /// the request root.
    problem: Option<Problem>,
}

/// The verdict on one claimed field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeCheck {
    /// A JSON pointer into the answer (`/loss`, `/final/weights`, `/trace`).
    field: String,
    passed: bool,
    /// Numbers compared (rows for a trace, 1 for an equality).
    count: u64,
    mismatches: u64,
    /// `diff` and `expected` only.
    max_abs_error: Option<f64>,
    /// max |got − expected| / |expected| over the non-zero expected elements (`diff`,
    /// `expected`).
    max_rel_error: Option<f64>,
    first_mismatch: Option<FirstMismatch>,
    /// The reference value (`reveal: "expected"` only).
    #[schema(value_type = Value, required = false)]
    expected: Option<serde_json::Value>,
    message: String,
}

/// Where a check first fails.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FirstMismatch {
    /// A JSON pointer into the answer.
    at: String,
    /// The trace row's iteration (`diff`, `expected`).
    iteration: Option<u64>,
    /// The claimed value there (`diff`, `expected`).
    #[schema(value_type = Value, required = false)]
    got: Option<serde_json::Value>,
    /// `expected` only.
    #[schema(value_type = Value, required = false)]
    expected: Option<serde_json::Value>,
    /// atol + rtol·|expected| (`diff`, `expected`).
    allowed: Option<f64>,
}

/// A mistake that explains a failed check.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradeDiagnosis {
    /// half_factor | double_factor | sum_instead_of_mean | mean_instead_of_sum |
    /// sign_flipped | log_base | kl_reversed | logits_as_probabilities |
    /// probabilities_as_logits | weights_ignored | square_instead_of_abs |
    /// abs_instead_of_square | root_taken | activation_derivative_missing | wrt_logits |
    /// bias_trained | bias_frozen | off_by_one | gradient_ascent
    mistake: String,
    /// The failed check's field.
    field: String,
    message: String,
}

/// Gradescope's results.json.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradescopeResults {
    score: f64,
    tests: Vec<GradescopeTest>,
}

/// One item as a Gradescope test.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GradescopeTest {
    /// The item's id.
    name: String,
    score: f64,
    max_score: f64,
    /// passed | failed (an item in error fails)
    status: String,
    /// The feedback paragraph.
    output: String,
}
