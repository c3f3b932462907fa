//! Email addresses, parsed once at the edge and then trusted everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A syntactically valid email address, normalised to lower case so that lookups and
/// uniqueness checks do not depend on how a person typed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a text is not an email address; the message is shown to people as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("enter an email address")]
    Empty,
    #[error("an email address has at most 254 characters")]
    TooLong,
    #[error("an email address needs exactly one @ with text on both sides")]
    Shape,
    #[error("an email address cannot contain spaces, quotes, angle brackets or control characters")]
    ForbiddenCharacter,
    #[error("the part after @ must be a domain name such as example.com")]
    Domain,
}

impl Email {
    /// Parses and normalises an address. Deliberately stricter than RFC 5322: quoted local
    /// parts and comments are refused, because they are never typed by buyers and are the raw
    /// material of header injection.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(EmailError::Empty);
        }
        if text.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"<>(),;:\\[]".contains(c))
        {
            return Err(EmailError::ForbiddenCharacter);
        }
        let (local, domain) = text.split_once('@').ok_or(EmailError::Shape)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || local.len() > 64 {
            return Err(EmailError::Shape);
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !labels_ok || !domain.contains('.') {
            return Err(EmailError::Domain);
        }
        Ok(Self(text.to_lowercase()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises_ordinary_addresses() {
        let email = Email::parse("  Jane.Doe+books@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "jane.doe+books@example.com");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("jane"), Err(EmailError::Shape));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("jane@localhost"), Err(EmailError::Domain));
        assert_eq!(Email::parse("jane@exa_mple.com"), Err(EmailError::Domain));
        assert_eq!(
            Email::parse("jane@example.com\r\nBcc: x@evil.com"),
            Err(EmailError::ForbiddenCharacter)
        );
        assert_eq!(
            Email::parse("\"j\"@example.com"),
            Err(EmailError::ForbiddenCharacter)
        );
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert!(!email.as_str().chars().any(char::is_control));
            }
        }
    }
}
