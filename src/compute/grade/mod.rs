//! Grading (API.md, `POST /grade`): a student's claimed answer against losslab's own
//! result for the same task — numpy's tolerance rule, partial credit, a diagnosis of the
//! classic mistakes, and a paragraph of feedback for the student.
//!
//! Owned here: which answer fields a task takes ([`answer`]), the reference computed
//! exactly as the task's endpoint computes it ([`task`]: the same `LossSpec`, chain
//! and training calls), the comparison ([`compare`]: isclose, shapes, equality, traces
//! matched by iteration), the score ([`score`]), the mistakes ([`mistakes`]: each one
//! the same computation with one setting changed, or a pure factor of the reference,
//! computed only for checks that failed), and the feedback text ([`feedback`]).
//!
//! Not here: JSON (the answer arrives as a [`Value`], the untrusted student data; the
//! API layer turns each task body into a [`Task`] with the endpoint's own parsing), and
//! statuses (an item's problem is a [`ComputeError`] with a pointer from the item:
//! `/task/loss/targets/0`, `/answer/d_logits`; the API layer adds `/items/i`).
//!
//! A [`Grader`] grades the items of one request: tasks are registered once (a class of
//! 200 students answering 10 tasks registers 10) and every reference and every mistake
//! variant is memoised per task, so each is computed once per request. Grading takes
//! `&self`: the items of a request may be graded on several threads at once (the memo of
//! each task is behind its own lock, held while an entry is computed, so an entry is
//! computed once). Every entry is a pure function of its task and settings, so a report
//! never depends on which item — or which thread — computed an entry first.

pub mod answer;
pub mod compare;
pub mod feedback;
pub mod mistakes;
pub mod score;
pub mod task;

use std::sync::{Arc, Mutex, PoisonError};

pub use answer::{Claim, Field, TaskType, parse_answer};
pub use compare::{Check, Dims, Mismatch, Shown};
pub use mistakes::{Diagnosis, Mistake};
pub use task::{GradientTask, LossTask, Task, TrainTask};

use super::error::{Cancel, ComputeError};
use task::{Change, Outcome, Wants};

/// An answer value exactly as the student sent it: any JSON value (untrusted).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// Members in the order sent.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The number, for a JSON number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(x) => Some(*x),
            _ => None,
        }
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What this value is, for messages ("a string", "3 numbers", "2 rows of 3").
    /// Counts only: never a value.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::Number(_) => "a number".into(),
            Value::Text(_) => "a string".into(),
            Value::Object(_) => "an object".into(),
            Value::Array(items) => {
                if items.iter().all(|v| matches!(v, Value::Number(_))) {
                    return plural(items.len(), "number");
                }
                if let Some(Value::Array(first)) = items.first()
                    && items
                        .iter()
                        .all(|r| matches!(r, Value::Array(x) if x.len() == first.len()))
                {
                    return format!(
                        "{} of {}",
                        plural(items.len(), "row"),
                        plural(first.len(), "number")
                    );
                }
                format!("an array of {}", plural(items.len(), "item"))
            }
        }
    }
}

/// "1 number", "3 numbers".
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// numpy's `isclose` tolerances: a number passes iff |got − expected| ≤ atol + rtol·|expected|.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The relative tolerance (≥ 0; default 1e-5).
    pub rtol: f64,
    /// The absolute tolerance (≥ 0; default 1e-8).
    pub atol: f64,
}

impl Default for Tolerance {
    /// numpy's defaults: rtol 1e-5, atol 1e-8.
    fn default() -> Self {
        Tolerance {
            rtol: 1e-5,
            atol: 1e-8,
        }
    }
}

impl Tolerance {
    /// Checks the values (finite, ≥ 0); errors at `{at}/rtol` or `{at}/atol`.
    pub fn validated(self, at: &str) -> Result<Self, ComputeError> {
        for (name, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ComputeError::invalid(
                    format!("{at}/{name}"),
                    format!("{name} must be a finite number >= 0"),
                ));
            }
        }
        Ok(self)
    }
}

/// How much of the reference a response shows (API.md's `reveal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reveal {
    /// Counts, pointers, verdicts, messages and mistake ids only: no number derived from
    /// the answer or the reference.
    None,
    /// Also the errors, the claimed values (`got`) and the allowed errors.
    #[default]
    Diff,
    /// Also the expected values.
    Expected,
}

/// One item to grade: a registered task, the claims, and how they are judged.
#[derive(Clone, Debug)]
pub struct ItemSpec {
    /// From [`Grader::add_task`].
    pub task: TaskId,
    /// The claimed fields, in the order sent.
    pub claims: Vec<Claim>,
    /// The item's tolerance (its own over the request's over numpy's defaults).
    pub tolerance: Tolerance,
    /// ≥ 0 (checked by the caller with the other item fields).
    pub points: f64,
    /// Whether a failed item scores points × the mean fraction passed instead of 0.
    pub partial: bool,
}

/// A graded item.
#[derive(Clone, Debug)]
pub struct ItemReport {
    /// Whether every check passed.
    pub passed: bool,
    /// The points earned (0 … `points`).
    pub score: f64,
    /// One verdict per claimed field, in the order claimed.
    pub checks: Vec<Check>,
    /// The mistakes that explain the failed checks, in table order.
    pub diagnosis: Vec<Diagnosis>,
    /// One paragraph for the student.
    pub feedback: String,
}

/// A task registered with a [`Grader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId(usize);

type Memo = Vec<(Wants, Option<Change>, Result<Arc<Outcome>, ComputeError>)>;

/// Grades the items of one request; references and variants are memoised per task.
/// `Sync`: items may be graded from several threads at once.
pub struct Grader {
    reveal: Reveal,
    tasks: Vec<(Task, Mutex<Memo>)>,
}

impl Grader {
    /// A grader that shows as much of the reference as `reveal` allows.
    pub fn new(reveal: Reveal) -> Self {
        Grader {
            reveal,
            tasks: Vec::new(),
        }
    }

    /// Registers a task; items that share it share its computations.
    pub fn add_task(&mut self, task: Task) -> TaskId {
        self.tasks.push((task, Mutex::new(Vec::new())));
        TaskId(self.tasks.len() - 1)
    }

    /// The type of a registered task.
    pub fn task_type(&self, id: TaskId) -> Option<TaskType> {
        self.tasks.get(id.0).map(|(t, _)| t.task_type())
    }

    /// Grades one item. `Err` with kind `Invalid` is the item's problem (a pointer from
    /// the item: `/task/loss/targets/0`, `/answer/d_logits`); any other kind (deadline,
    /// cancel) ends the whole request.
    pub fn grade(&self, item: &ItemSpec, cancel: &Cancel) -> Result<ItemReport, ComputeError> {
        cancel.check()?;
        let ttype = self
            .task_type(item.task)
            .ok_or_else(|| ComputeError::invalid("/task", "unknown task"))?;
        {
            let task = &self.tasks[item.task.0].0;
            for claim in &item.claims {
                if !task.can_produce(claim.field) {
                    return Err(ComputeError::invalid(
                        format!("/answer{}", claim.field.pointer()),
                        task.cannot_produce_message(claim.field),
                    ));
                }
            }
        }
        let wants = Wants::of(&item.claims);
        let reference = self
            .outcome(item.task, &wants, None, cancel)
            .map_err(|e| task::task_error(e, ttype))?;
        let checks: Vec<Check> = item
            .claims
            .iter()
            .map(|c| compare::judge(c, &reference, item.tolerance, self.reveal))
            .collect();
        let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
        let diagnosis = if failed.is_empty() {
            Vec::new()
        } else {
            let failed_fields: Vec<Field> = item
                .claims
                .iter()
                .zip(&checks)
                .filter(|(_, c)| !c.passed)
                .map(|(cl, _)| cl.field)
                .collect();
            self.diagnose(item, &wants, &reference, &failed_fields, cancel)?
        };
        let score = score::item_score(item.points, item.partial, &checks);
        let passed = failed.is_empty();
        let feedback = feedback::paragraph(&checks, &diagnosis, self.reveal);
        Ok(ItemReport {
            passed,
            score,
            checks,
            diagnosis,
            feedback,
        })
    }

    /// The task's result under `change` (none: the reference), memoised.
    fn outcome(
        &self,
        id: TaskId,
        wants: &Wants,
        change: Option<&Change>,
        cancel: &Cancel,
    ) -> Result<Arc<Outcome>, ComputeError> {
        let (task, memo) = &self.tasks[id.0];
        // held while the entry is computed: another item of this task waits for it
        // instead of computing it again (a panic elsewhere leaves the memo consistent)
        let mut memo = memo.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, r)) = memo
            .iter()
            .find(|(w, c, _)| w == wants && c.as_ref() == change)
        {
            return r.clone();
        }
        cancel.check()?;
        let r = match change {
            None => task.reference(wants, cancel),
            Some(ch) => match task.changed(ch) {
                Some(t) => t.reference(wants, cancel),
                None => Err(ComputeError::invalid("", "the mistake does not apply")),
            },
        }
        .map(Arc::new);
        if let Err(e) = &r
            && e.kind != super::error::ErrorKind::Invalid
        {
            return Err(e.clone());
        }
        memo.push((wants.clone(), change.cloned(), r.clone()));
        r
    }

    /// Every mistake of the table whose result passes a failed claim, in table order
    /// (then in the order of the claims).
    fn diagnose(
        &self,
        item: &ItemSpec,
        wants: &Wants,
        reference: &Outcome,
        failed: &[Field],
        cancel: &Cancel,
    ) -> Result<Vec<Diagnosis>, ComputeError> {
        let candidates = {
            let task = &self.tasks[item.task.0].0;
            mistakes::candidates(task, reference)
        };
        let mut found: Vec<Diagnosis> = Vec::new();
        for cand in candidates {
            let todo: Vec<&Claim> = item
                .claims
                .iter()
                .filter(|c| {
                    failed.contains(&c.field)
                        && c.field.diagnosable()
                        && cand.applies_to(c.field)
                        && !found
                            .iter()
                            .any(|d| d.mistake == cand.mistake && d.field == c.field.pointer())
                })
                .collect();
            if todo.is_empty() {
                continue;
            }
            let variant = match &cand.variant {
                mistakes::Variant::Rerun(change) => {
                    match self.outcome(item.task, wants, Some(change), cancel) {
                        Ok(o) => mistakes::Computed::Outcome(o),
                        Err(e) if e.kind == super::error::ErrorKind::Invalid => continue,
                        Err(e) => return Err(e),
                    }
                }
                other => mistakes::Computed::Pure(other.clone()),
            };
            for claim in todo {
                if mistakes::explains(&variant, claim, reference, item.tolerance) {
                    found.push(Diagnosis {
                        mistake: cand.mistake,
                        field: claim.field.pointer(),
                        message: cand.message(claim.field),
                    });
                }
            }
        }
        let order = |d: &Diagnosis| {
            (
                d.mistake as usize,
                item.claims
                    .iter()
                    .position(|c| c.field.pointer() == d.field)
                    .unwrap_or(usize::MAX),
            )
        };
        found.sort_by_key(order);
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
