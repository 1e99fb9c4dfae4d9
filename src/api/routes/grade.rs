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
use crate::api::routes::gradient::GradientRequest;
use crate::api::routes::json_response;
use crate::api::routes::loss::LossRequest;
use crate::api::routes::train::TrainRequest;
use crate::api::state::AppState;
use crate::api::wire_grade::{FormatDto, GradeLimits, RevealDto, ToleranceDto, grade_request};
use crate::compute::train::TrainLimits;

/// Grade claimed answers (a loss, a gradient, a training run) against losslab's own.
#[utoipa::path(
    post,
    path = "/grade",
    tag = "grading",
    request_body(content = GradeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Every item graded (an item whose task, answer names, tolerance or points are invalid has status `error` and its `problem`); with `format: \"gradescope\"`, Gradescope's results.json", body = GradeResults),
        crate::api::openapi::Malformed, crate::api::openapi::TooLarge,
        crate::api::openapi::WrongContentType, crate::api::openapi::Invalid,
        crate::api::openapi::RateLimited, crate::api::openapi::Unavailable,
    )
)]
pub async fn post_grade(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let c = &state.config;
    let limits = GradeLimits {
        max_items: c.max_grade_items,
        train: TrainLimits {
            max_iterations: c.max_iterations,
            max_trace_rows: c.max_trace_rows,
            max_trace_numbers: c.max_trace_numbers,
        },
        timeout_secs: c.timeout_secs,
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
    o.properties.insert(
        "kind".into(),
        RefOr::Ref(Ref::from_schema_name("LossKind")),
    );
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
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum GradeResults {
    Losslab(GradeResponse),
    Gradescope(GradescopeResults),
}

/// Every item graded.
#[derive(ToSchema)]
#[schema(no_recursion)]
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
    #[schema(value_type = Option<Object>)]
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
    #[schema(value_type = Option<Object>)]
    got: Option<serde_json::Value>,
    /// `expected` only.
    #[schema(value_type = Option<Object>)]
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
