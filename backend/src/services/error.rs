//! The one error type of the service layer, classified so each protocol can map it.

use crate::store::StoreError;
use std::time::Duration;

/// What went wrong, in a form a person can act on. `Internal` hides its detail from clients
/// (it is logged), every other variant's message is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many attempts: try again in {}", human_wait(*retry_after))]
    TooManyAttempts { retry_after: Duration },
    /// Something this server depends on (the file store) did not answer; worth trying again.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    /// An invalid field with a message for the person who typed it.
    pub fn invalid(field: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field,
            message: message.to_string(),
        }
    }

    /// A stable machine-readable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid { .. } => "invalid",
            Self::Conflict(_) => "conflict",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::TooLarge(_) => "too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        Self::Internal(e.to_string())
    }
}

fn human_wait(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60);
    if minutes <= 1 {
        "a minute".to_owned()
    } else {
        format!("{minutes} minutes")
    }
}
