//! Authentication primitives: argon2id password hashes, random tokens with their digests,
//! and the sign-in throttle. Policy (who may do what) lives in the services.

pub mod download_key;
pub mod form_stamp;
pub mod password;
pub mod throttle;
pub mod token;
