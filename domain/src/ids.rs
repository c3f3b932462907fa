//! Typed identifiers, so an admin id can never be passed where a token id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw id read from storage or a parsed request.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw number, for storage keys.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

numeric_id!(
    /// A staff account of the store.
    AdminId
);
numeric_id!(
    /// An API token; the secret itself is never stored, only its hash.
    ApiTokenId
);

numeric_id!(
    /// A file of a product; its storage key is separate and never shown.
    FileId
);
numeric_id!(
    /// A grant: one buyer's right to download one product.
    GrantId
);

/// An order's public 7-digit number (1000000–9999999), random so that order volume does
/// not show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct OrderId(u32);

impl OrderId {
    pub const MIN: u32 = 1_000_000;
    pub const MAX: u32 = 9_999_999;

    /// An order id from a number in range.
    pub fn new(raw: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&raw).then_some(Self(raw))
    }

    /// Parses exactly seven digits.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().and_then(Self::new)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for OrderId {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value).ok_or_else(|| format!("{value} is not a 7-digit order id"))
    }
}

impl From<OrderId> for u32 {
    fn from(value: OrderId) -> Self {
        value.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A product's id: the seller's slug (`ebook-rust-2e`), 1–64 of `a-z 0-9 -`, not starting
/// or ending with `-`. Being this strict makes every path and key built from it safe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "'{}' is not a product id: use 1 to 64 lower-case letters, digits and hyphens, e.g. ebook-rust-2e",
                text.chars().take(80).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ProductId> for String {
    fn from(value: ProductId) -> Self {
        value.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_seven_digits() {
        assert_eq!(OrderId::parse("1234567").map(OrderId::get), Some(1_234_567));
        assert!(OrderId::parse("0123456").is_none());
        assert!(OrderId::parse("123456").is_none());
        assert!(OrderId::parse("12345678").is_none());
        assert!(OrderId::parse("+123456").is_none());
    }

    #[test]
    fn product_ids_are_safe_slugs() {
        assert!(ProductId::parse("ebook-rust-2e").is_ok());
        for bad in [
            "",
            "-x",
            "x-",
            "Ebook",
            "a/b",
            "..",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(ProductId::parse(bad).is_err(), "{bad}");
        }
    }
}
