//! Dropgate's pure domain: typed ids, values parsed at the edge, business rules and the wire
//! types shared by the server and the WASM admin. Nothing here does I/O or reads the clock:
//! callers pass `now` in, so every rule is a plain, testable function.

pub mod email;
pub mod grant;
pub mod ids;
pub mod language;
pub mod mail;
pub mod money;
pub mod net;
#[cfg(feature = "openapi")]
mod openapi;
pub mod order;
pub mod password;
pub mod payment;
pub mod range;
pub mod records;
pub mod rules;
pub mod secret;
pub mod settings;
pub mod time;
pub mod wire;

pub use email::{Email, EmailError};
pub use grant::{Grant, GrantState};
pub use ids::{AdminId, ApiTokenId, FileId, GrantId, OrderId, ProductId};
pub use language::Language;
pub use money::{Amount, Currency, Money, MoneyError};
pub use order::OrderStatus;
pub use password::DownloadPassword;
pub use rules::{Attempt, AttemptOutcome, CountryCode, Denied, GrantFacts, Permit, authorize};
pub use secret::{NewPassword, PasswordPolicyError};
pub use time::Timestamp;
