//! The keyed hash under which download passwords are stored (HMAC-SHA-256 with the server
//! secret from the store's meta table), so a copy of the database holds no working link.

use domain::DownloadPassword;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The server's password-hashing key.
#[derive(Clone)]
pub struct DownloadKey([u8; 32]);

impl std::fmt::Debug for DownloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DownloadKey(<redacted>)")
    }
}

impl DownloadKey {
    pub fn new(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    /// The stored and looked-up form of a password.
    pub fn digest(&self, password: &DownloadPassword) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Domain separation: the same secret may key other hashes later.
        mac.update(b"dropgate download password v1\0");
        mac.update(password.canonical().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A key for another purpose derived from the same secret, so one stored secret keys
    /// several hashes without any two of them being interchangeable.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"dropgate derived key v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_case_insensitive_through_parsing() {
        let a = DownloadKey::new([1; 32]);
        let b = DownloadKey::new([2; 32]);
        let p = DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5NC").unwrap();
        let q = DownloadPassword::parse("7k3qm9xd4tzpw2hbr5nc").unwrap();
        assert_eq!(a.digest(&p), a.digest(&q));
        assert_ne!(
            a.digest(&p),
            b.digest(&p),
            "another server's key gives another digest"
        );
        let other = DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5ND").unwrap();
        assert_ne!(a.digest(&p), a.digest(&other));
    }
}
