//! Download passwords: the secret in a buyer's link.
//!
//! A password is 100 bits from the OS RNG written as 20 Crockford base32 symbols in groups of
//! four (`7K3Q-M9XD-4TZP-W2HB-R5NC`). Input is forgiving the way Crockford intends: any case,
//! hyphens and spaces ignored, `I`/`L` read as `1` and `O` as `0`. Passwords imported from
//! the legacy download script (the date followed by 16 random characters) are accepted as
//! they are. Only a keyed hash of [`DownloadPassword::canonical`] is ever stored.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a generated password (20 × 5 bits = 100 bits).
pub const SYMBOLS: usize = 20;
/// Random bytes a password is made from (the last 4 bits are unused).
pub const RANDOM_BYTES: usize = 13;

/// A parsed download password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DownloadPassword {
    /// 20 Crockford symbols, stored upper-case without separators.
    Current(String),
    /// A legacy download id (`YYYYMMDD` + 16 letters/digits), case-sensitive.
    Legacy(String),
}

/// Why a text is not a download password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this is not a valid download password")]
pub struct PasswordFormatError;

impl fmt::Debug for DownloadPassword {
    // Never print a working secret into a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DownloadPassword(<redacted>)")
    }
}

impl DownloadPassword {
    /// Makes a password from random bytes (the caller takes them from the OS RNG).
    pub fn from_random(bytes: [u8; RANDOM_BYTES]) -> Self {
        let mut acc: u128 = 0;
        for b in bytes {
            acc = (acc << 8) | u128::from(b);
        }
        // 104 bits in `acc`; use the top 100.
        acc >>= 4;
        let mut symbols = [0u8; SYMBOLS];
        for slot in symbols.iter_mut().rev() {
            *slot = ALPHABET[(acc & 31) as usize];
            acc >>= 5;
        }
        Self::Current(String::from_utf8(symbols.to_vec()).expect("alphabet is ASCII"))
    }

    /// Parses what a buyer or vendor typed or what a link carried.
    pub fn parse(input: &str) -> Result<Self, PasswordFormatError> {
        let trimmed = input.trim();
        if is_legacy(trimmed) {
            return Ok(Self::Legacy(trimmed.to_owned()));
        }
        let mut symbols = String::with_capacity(SYMBOLS);
        for c in trimmed.chars() {
            let normalised = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                other => other,
            };
            if !normalised.is_ascii() || !ALPHABET.contains(&(normalised as u8)) {
                return Err(PasswordFormatError);
            }
            symbols.push(normalised);
            if symbols.len() > SYMBOLS {
                return Err(PasswordFormatError);
            }
        }
        if symbols.len() != SYMBOLS {
            return Err(PasswordFormatError);
        }
        Ok(Self::Current(symbols))
    }

    /// The exact bytes that are hashed for storage and lookup.
    pub fn canonical(&self) -> &str {
        match self {
            Self::Current(s) | Self::Legacy(s) => s,
        }
    }

    /// The form shown to people and put in links (`7K3Q-M9XD-4TZP-W2HB-R5NC`).
    pub fn display(&self) -> String {
        match self {
            Self::Current(s) => s
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).expect("ASCII"))
                .collect::<Vec<_>>()
                .join("-"),
            Self::Legacy(s) => s.clone(),
        }
    }
}

fn is_legacy(text: &str) -> bool {
    text.len() == 24
        && text.as_bytes()[..8].iter().all(u8::is_ascii_digit)
        && text.as_bytes()[8..].iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_passwords_look_right() {
        let p = DownloadPassword::from_random([0xAB; RANDOM_BYTES]);
        let shown = p.display();
        assert_eq!(shown.len(), 24);
        assert_eq!(shown.matches('-').count(), 4);
        assert_ne!(p, DownloadPassword::from_random([0xAC; RANDOM_BYTES]));
        assert!(!format!("{p:?}").contains(p.canonical()));
    }

    #[test]
    fn input_is_forgiving_but_exact_in_length() {
        let p = DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5NC").unwrap();
        assert_eq!(
            DownloadPassword::parse("7k3q m9xd 4tzp w2hb r5nc").unwrap(),
            p
        );
        let with_confusables = DownloadPassword::parse("OOOO-IIII-LLLL-0000-1111").unwrap();
        assert_eq!(with_confusables.canonical(), "00001111111100001111");
        assert!(DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5N").is_err());
        assert!(DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5NCX").is_err());
        assert!(
            DownloadPassword::parse("7K3Q-M9XD-4TZP-W2HB-R5NU").is_err(),
            "U is not Crockford"
        );
        assert!(DownloadPassword::parse("../../etc/passwd").is_err());
        assert!(DownloadPassword::parse("%2e%2e%2f").is_err());
    }

    #[test]
    fn legacy_download_ids_are_kept_verbatim() {
        let p = DownloadPassword::parse("20190412aB3dE5gH7jK9mN1p").unwrap();
        assert_eq!(
            p,
            DownloadPassword::Legacy("20190412aB3dE5gH7jK9mN1p".into())
        );
        assert_eq!(p.display(), "20190412aB3dE5gH7jK9mN1p");
    }

    proptest! {
        #[test]
        fn display_parses_back(bytes: [u8; RANDOM_BYTES]) {
            let p = DownloadPassword::from_random(bytes);
            prop_assert_eq!(DownloadPassword::parse(&p.display()).unwrap(), p.clone());
            prop_assert_eq!(DownloadPassword::parse(&p.display().to_lowercase()).unwrap(), p);
        }

        #[test]
        fn distinct_randomness_gives_distinct_passwords(a: [u8; RANDOM_BYTES], b: [u8; RANDOM_BYTES]) {
            // Only the last 4 bits are dropped.
            let same_100_bits = a[..12] == b[..12] && a[12] >> 4 == b[12] >> 4;
            prop_assert_eq!(DownloadPassword::from_random(a) == DownloadPassword::from_random(b), same_100_bits);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,64}") {
            let _ = DownloadPassword::parse(&s);
        }
    }
}
