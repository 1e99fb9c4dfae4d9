//! The OpenAPI document: `ApiDoc` (info, tags, the conventions of API.md in words),
//! the shared problem responses every operation lists, and how the generated document
//! is printed. The document itself is collected from the routes by `app::spec`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use utoipa::IntoResponses;
use utoipa::openapi::OpenApi;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response};

use super::problem::{FieldError, Problem};
use crate::compute::{ActivationRule, LossKind, Per};

/// The conventions of API.md in words; the kind lists in braces are filled from the kind
/// registry by [`description`].
const DESCRIPTION: &str = r#"Loss functions, their gradients and gradient-descent training runs, exact to the last bit (IEEE-754 f64).

Conventions (the contract, API.md):
- Numbers are f64: every number sent is parsed to the nearest f64; every number printed parses back to the same f64. A number outside the f64 range (1e400) is malformed (400).
- `predictions` (a) and `targets` (y): a flat array [n] or a matrix [[..], ..] (rows = samples). {indices} also take one integer class index per row as targets.
- Elementwise kinds give one term per element; per-row kinds ({per_row}) one term per row (a flat array is one row).
- `reduction`: mean (default) | sum | none. none returns the terms (elementwise: shaped like predictions; per-row: a flat array of length m). `count` is the number of terms. The gradient of none is that of the sum.
- `weights`: one non-negative weight per row (per element for a flat elementwise input), broadcast over the row's terms; none → s·l, sum → Σ s·l, mean → Σ s·l / Σ s (s summed over every term it was broadcast to). All-zero weights → 422.
- `params.class_weights` ({class_weights}): the row weight r_i = Σ_k w_k·y_ik with the raw targets (index targets: w[target]); mean divides by Σ s_i·r_i, so index and one-hot targets agree. (torch divides by m for probability targets; losslab does not.)
- `params.log_base` (> 1): value and gradient divided by ln(base).
- `from_logits` ({from_logits}): stable forms (softplus, log-sigmoid, log-sum-exp), no clamping, exact at |z| = 800; for poisson, exp(z) overflowing is a 422.
- Guards: every log of a probability is max(ln a, −100) (torch's BCELoss clamp); bce's gradient is (a − y)/max(a(1 − a), 1e−12); the derivative of −y·ln a is −y/max(a, 1e−12); `params.epsilon` clips a to [eps, 1 − eps] first (Keras) with gradient 0 where clipped. `guard` in a response says which acted. Gradients at kinks are 0, as torch.
- Fused pairs in /gradient and /train: {fused} take loss and dL/dz from the logits form (for plain sigmoid + bce and softmax + cross_entropy, dL/dz = (a − y) times the reduction's scale). The logits form has no probability to clip: `epsilon` does not apply there.
- Reductions are accurate (compensated sums) and deterministic: the same request gives the same bits on every replica.
- Errors are application/problem+json (RFC 9457) with `errors[].field` a JSON pointer into the request. Unknown fields, unknown params and unknown values are 422 naming the field.
"#;

/// The document's description: [`DESCRIPTION`] with each list of kinds as the kind
/// registry declares it (a new kind with indices, per-row terms, class weights, a logits
/// form or a fused pair is named there by its own file).
pub fn description() -> String {
    let fused = LossKind::ALL
        .into_iter()
        .filter_map(|k| {
            let info = k.info();
            let act = match info.activation {
                ActivationRule::Sigmoid => "sigmoid",
                ActivationRule::Softmax => "softmax",
                ActivationRule::Any | ActivationRule::NonNegative => return None,
            };
            info.from_logits.then(|| format!("{act} + {}", k.name()))
        })
        .collect::<Vec<_>>()
        .join(", ");
    DESCRIPTION
        .replace(
            "{indices}",
            &LossKind::names_where(|k| k.accepts_indices).replace(", ", " and "),
        )
        .replace("{per_row}", &LossKind::names_where(|k| k.per == Per::Row))
        .replace(
            "{class_weights}",
            &LossKind::names_where(|k| k.params.iter().any(|p| p.name == "class_weights")),
        )
        .replace("{from_logits}", &LossKind::names_where(|k| k.from_logits))
        .replace("{fused}", &fused)
}

/// The document's fixed part: info, tags and the shared problem schemas (the paths
/// come from the routes; the description is [`description`]'s, set by `app::spec`).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "losslab", license(name = "MIT")),
    tags(
        (name = "losses", description = "Loss values and gradients"),
        (name = "training", description = "Gradient descent on one dense layer"),
        (name = "grading", description = "Claimed answers graded against losslab's own results"),
        (name = "catalogue", description = "What losslab knows"),
        (name = "operations", description = "Health, readiness, metrics, version"),
    ),
    components(schemas(Problem, FieldError))
)]
pub struct ApiDoc;

fn problem_response(description: &str, retry_after: bool) -> RefOr<Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        super::problem::PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        b = b.header(
            "Retry-After",
            utoipa::openapi::HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    b.build().into()
}

macro_rules! problem_responses {
    ($($name:ident => $status:literal, $desc:literal, $retry:literal;)*) => {$(
        #[doc = $desc]
        pub struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([($status.to_string(), problem_response($desc, $retry))])
            }
        }
    )*};
}

problem_responses! {
    Malformed => "400", "Malformed JSON, or a number outside the f64 range", false;
    UnknownKind => "404", "Unknown loss kind in the path (the detail lists the known kinds)", false;
    TooLarge => "413", "Request body larger than the configured limit", false;
    WrongContentType => "415", "Content-Type is not application/json", false;
    Invalid => "422", "Well-formed but invalid: errors[].field points at the offending field", false;
    RateLimited => "429", "Rate limited (only when a limit is configured)", true;
    Unavailable => "503", "Overloaded, shutting down, or past the time limit", true;
}

/// A generated document, rendered by [`render`] on first use (each app holds its own).
#[derive(Clone)]
pub struct SpecText(Arc<(OpenApi, OnceLock<Bytes>)>);

impl SpecText {
    /// Holds `api` until it is first asked for.
    pub fn new(api: OpenApi) -> Self {
        SpecText(Arc::new((api, OnceLock::new())))
    }

    /// The rendered document.
    pub fn bytes(&self) -> Bytes {
        let (api, text) = &*self.0;
        text.get_or_init(|| Bytes::from(render(api))).clone()
    }
}

/// A generated document as the text `losslab openapi` prints, `GET /openapi.json`
/// serves and `openapi/openapi.json` holds: pretty JSON and a final newline.
pub fn render(api: &OpenApi) -> String {
    let mut s = api.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
