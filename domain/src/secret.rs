//! The password policy for staff accounts.

use serde::{Deserialize, Serialize};

/// A new staff password that meets the policy. It is never stored: the backend hashes it
/// with argon2id and drops it. `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

/// Why a password is refused; the text is shown next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("use at least {min} characters (a short sentence works well)")]
    TooShort { min: usize },
    #[error("use at most {max} characters")]
    TooLong { max: usize },
    #[error("this password is too easy to guess: use different characters")]
    TooSimple,
}

impl NewPassword {
    /// Minimum length, in characters. NIST SP 800-63B asks for at least 8; staff accounts
    /// guard every buyer's data, so we ask for more and allow long passphrases.
    pub const MIN_CHARS: usize = 12;
    /// Upper bound so that hashing cost stays bounded.
    pub const MAX_CHARS: usize = 512;

    /// Checks a candidate password against the policy.
    pub fn parse(candidate: &str) -> Result<Self, PasswordPolicyError> {
        let chars = candidate.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordPolicyError::TooShort {
                min: Self::MIN_CHARS,
            });
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordPolicyError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        let mut distinct: Vec<char> = candidate.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 5 {
            return Err(PasswordPolicyError::TooSimple);
        }
        Ok(Self(candidate.to_owned()))
    }

    /// The clear text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(NewPassword::parse("correct horse battery").is_ok());
        assert_eq!(
            NewPassword::parse("short"),
            Err(PasswordPolicyError::TooShort { min: 12 })
        );
        assert_eq!(
            NewPassword::parse("aaaaaaaaaaaaaaaa"),
            Err(PasswordPolicyError::TooSimple)
        );
        assert!(matches!(
            NewPassword::parse(&"ab1!x".repeat(200)),
            Err(PasswordPolicyError::TooLong { .. })
        ));
        assert!(!format!("{:?}", NewPassword::parse("correct horse battery")).contains("horse"));
    }
}
