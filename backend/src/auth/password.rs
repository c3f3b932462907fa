//! Staff password hashing with argon2id (the crate defaults: 19 MiB, t = 2, p = 1, an OWASP
//! recommended setting). Hashing is deliberately slow: callers run it on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use domain::NewPassword;
use std::sync::OnceLock;

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &NewPassword) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

/// Checks a candidate against a stored PHC string; a malformed hash never matches.
pub fn verify(phc: &str, candidate: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the same time as a real check when the email is unknown, so that response time
/// does not tell an attacker which addresses have accounts.
pub fn verify_against_dummy(candidate: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash(&NewPassword::parse("dummy password that never matches").expect("valid policy"))
    });
    let _ = verify(phc, candidate);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let pw = NewPassword::parse("correct horse battery staple").unwrap();
        let a = hash(&pw);
        let b = hash(&pw);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify(&a, "correct horse battery staple"));
        assert!(!verify(&a, "correct horse battery stapl"));
        assert!(!verify("not a hash", "anything"));
    }
}
