//! The error type every server function returns, shaped for the UI: a field error goes next
//! to its field, "signed out" sends the browser to the login page, the rest is a message.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a server function can answer instead of a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppError {
    /// A field of the form is wrong; `field` names the input.
    Invalid { field: String, message: String },
    /// No valid session: sign in again.
    SignedOut,
    /// The request is understood but refused; the message says why. `status` is the HTTP
    /// status the server answered with (401, 403, 404, 409, 429).
    Refused { status: u16, message: String },
    /// The server or the network failed.
    Failed(String),
}

impl AppError {
    /// The message for the given field, if this error is about it.
    pub fn for_field(&self, name: &str) -> Option<String> {
        match self {
            Self::Invalid { field, message } if field == name => Some(message.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { message, .. } | Self::Refused { message, .. } => f.write_str(message),
            Self::SignedOut => f.write_str("Your session has ended. Please sign in again."),
            Self::Failed(message) => write!(f, "Something went wrong: {message}"),
        }
    }
}

impl std::error::Error for AppError {}

impl AppError {
    /// The HTTP status a server function answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::SignedOut => 401,
            Self::Refused { status, .. } => *status,
            Self::Failed(_) => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Failed(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<backend::ServiceError> for AppError {
    fn from(e: backend::ServiceError) -> Self {
        use backend::ServiceError as E;
        match e {
            E::Invalid { field, message } => Self::Invalid {
                field: field.to_owned(),
                message,
            },
            E::Unauthorized(message) => Self::Refused {
                status: 401,
                message,
            },
            E::Forbidden(message) => Self::Refused {
                status: 403,
                message,
            },
            E::NotFound(message) => Self::Refused {
                status: 404,
                message,
            },
            E::Conflict(message) => Self::Refused {
                status: 409,
                message,
            },
            E::TooLarge(message) => Self::Refused {
                status: 413,
                message,
            },
            E::Unavailable(message) => Self::Refused {
                status: 502,
                message,
            },
            e @ E::TooManyAttempts { .. } => Self::Refused {
                status: 429,
                message: capitalise(&e.to_string()),
            },
            E::Internal(_) => Self::Failed(
                "the server could not complete this; the details are in its log".into(),
            ),
        }
    }
}

#[cfg(feature = "ssr")]
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}
