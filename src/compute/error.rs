//! What went wrong and where: [`ComputeError`] names a JSON pointer into the request
//! and says what is wrong there. No HTTP words: the API layer picks the status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The class of a compute error; the API layer maps it to a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Well-formed but invalid input (or a result that would not be finite).
    Invalid,
    /// The computation ran past its deadline and stopped.
    DeadlineExceeded,
    /// The caller cancelled the computation (the client went away).
    Cancelled,
}

/// An error naming the offending field (a JSON pointer such as `/targets/3`).
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeError {
    /// Which status the error maps to (422, 503, …).
    pub kind: ErrorKind,
    /// JSON pointer into the request; empty for the whole body.
    pub field: String,
    /// What is wrong, in words, for the problem's `detail`.
    pub message: String,
}

impl ComputeError {
    /// Invalid input at `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ComputeError {
            kind: ErrorKind::Invalid,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Rename the pointer's first segment, e.g. `/predictions/3` → `/logits/3`.
    pub fn rename_root(mut self, from: &str, to: &str) -> Self {
        let prefix = format!("/{from}");
        if self.field == prefix || self.field.starts_with(&format!("{prefix}/")) {
            self.field = format!("/{to}{}", &self.field[prefix.len()..]);
        }
        self
    }
}

impl std::fmt::Display for ComputeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ComputeError {}

/// A deadline and/or a cancel flag for long computations, passed in like any input.
/// `Cancel::none()` never fires.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    deadline: Option<Instant>,
    flag: Option<Arc<AtomicBool>>,
}

impl Cancel {
    /// Never fires: no deadline, no flag.
    pub fn none() -> Self {
        Cancel::default()
    }
    /// Fires once `deadline` has passed or `flag` is set (whichever is given).
    pub fn new(deadline: Option<Instant>, flag: Option<Arc<AtomicBool>>) -> Self {
        Cancel { deadline, flag }
    }
    /// `Err` once the flag is set or the deadline has passed.
    pub fn check(&self) -> Result<(), ComputeError> {
        if let Some(flag) = &self.flag
            && flag.load(Ordering::Relaxed)
        {
            return Err(ComputeError {
                kind: ErrorKind::Cancelled,
                field: String::new(),
                message: "the computation was cancelled".into(),
            });
        }
        if let Some(at) = self.deadline
            && Instant::now() >= at
        {
            return Err(ComputeError {
                kind: ErrorKind::DeadlineExceeded,
                field: String::new(),
                message: "the computation passed its time limit and was stopped".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_root_only_renames_the_first_segment() {
        let e = ComputeError::invalid("/predictions/3", "x").rename_root("predictions", "logits");
        assert_eq!(e.field, "/logits/3");
        let e = ComputeError::invalid("/predictionsx", "x").rename_root("predictions", "logits");
        assert_eq!(e.field, "/predictionsx");
    }

    #[test]
    fn a_set_flag_cancels_and_a_past_deadline_times_out() {
        let flag = Arc::new(AtomicBool::new(true));
        let c = Cancel::new(None, Some(flag));
        assert_eq!(c.check().unwrap_err().kind, ErrorKind::Cancelled);
        let c = Cancel::new(Some(Instant::now()), None);
        assert_eq!(c.check().unwrap_err().kind, ErrorKind::DeadlineExceeded);
        assert!(Cancel::none().check().is_ok());
    }
}
