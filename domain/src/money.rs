//! Money: an exact amount in the minor units of an ISO 4217 currency. Never a float: an
//! amount is parsed from the decimal text a provider or a seller writes ("19.99", "1000"
//! yen, "1.500" dinars) with as many decimals as the currency has, and written back the
//! same way.
//!
//! The exponent table is ISO 4217's (list one, 2024): every currency has two decimals
//! except those listed in [`Currency::exponent`]. A crate such as `iso_currency` carries
//! every currency's name and number as well, for the WASM bundle too; Dropgate needs only
//! the exponents, about thirty codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code: three capital letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Why a text is not an amount or a currency.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the currency {0:?} is not a three-letter ISO 4217 code such as EUR")]
    Currency(String),
    #[error("the amount {0:?} is not a number like 19.99")]
    Amount(String),
    #[error("the amount {text:?} has more decimals than {currency} has ({decimals})")]
    Decimals {
        text: String,
        currency: Currency,
        decimals: u8,
    },
    #[error("the amount {0:?} is too large")]
    TooLarge(String),
}

impl Currency {
    /// Parses a code, in any case (`eur` → `EUR`).
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let upper = text.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = upper
            .as_bytes()
            .try_into()
            .map_err(|_| MoneyError::Currency(text.to_owned()))?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::Currency(text.to_owned()));
        }
        Ok(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Three ASCII capitals, checked when made.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Decimals of the currency's minor unit (ISO 4217): 0 for JPY, 3 for KWD, else 2.
    pub fn exponent(self) -> u8 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG"
            | b"RWF" | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            b"CLF" | b"UYW" => 4,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact amount: minor units of a currency (cents, yen, fils).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// The most minor units an amount may have (10^15: a trillion euros and change), so that
/// sums of many orders cannot overflow.
const MAX_MINOR: i64 = 1_000_000_000_000_000;

impl Money {
    /// An amount of `minor` units; `None` when negative or absurdly large.
    pub fn from_minor(minor: i64, currency: Currency) -> Option<Self> {
        (0..=MAX_MINOR)
            .contains(&minor)
            .then_some(Self { minor, currency })
    }

    /// Zero of a currency.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Parses a decimal text (`"19.99"`, `"19.9"`, `"19"`) in a currency: no sign, no
    /// exponent, at most the currency's decimals.
    pub fn parse(value: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = Currency::parse(currency)?;
        Self::parse_in(value, currency)
    }

    /// Parses a decimal text in a known currency.
    pub fn parse_in(value: &str, currency: Currency) -> Result<Self, MoneyError> {
        let text = value.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(MoneyError::Amount(value.to_owned()));
        }
        let decimals = currency.exponent();
        // Trailing zeros beyond the currency's decimals say nothing ("10.00" yen).
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > usize::from(decimals) {
            return Err(MoneyError::Decimals {
                text: value.to_owned(),
                currency,
                decimals,
            });
        }
        let too_large = || MoneyError::TooLarge(value.to_owned());
        if whole.trim_start_matches('0').len() > 15 {
            return Err(too_large());
        }
        let scale = 10i64.pow(u32::from(decimals));
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let mut minor_fraction: i64 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            let place = 10i64.pow(u32::from(decimals) - 1 - u32::try_from(i).unwrap_or(0));
            minor_fraction += i64::from(b - b'0') * place;
        }
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(minor_fraction))
            .ok_or_else(too_large)?;
        Self::from_minor(minor, currency).ok_or_else(too_large)
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The decimal text with exactly the currency's decimals: `"19.99"`, `"1000"`, `"1.500"`.
    pub fn value_text(self) -> String {
        let decimals = u32::from(self.currency.exponent());
        if decimals == 0 {
            return self.minor.to_string();
        }
        let scale = 10i64.pow(decimals);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = decimals as usize
        )
    }

    /// `self + other` when both are of one currency (and the sum is in range).
    pub fn plus(self, other: Self) -> Option<Self> {
        (self.currency == other.currency)
            .then(|| Self::from_minor(self.minor.checked_add(other.minor)?, self.currency))
            .flatten()
    }

    /// `self - other`, at least zero, when both are of one currency.
    pub fn minus(self, other: Self) -> Option<Self> {
        (self.currency == other.currency).then(|| Self {
            minor: (self.minor - other.minor).max(0),
            currency: self.currency,
        })
    }

    /// The larger of two amounts of one currency.
    pub fn max(self, other: Self) -> Option<Self> {
        (self.currency == other.currency).then_some(if other.minor > self.minor {
            other
        } else {
            self
        })
    }

    /// The API's form.
    pub fn to_wire(self) -> Amount {
        Amount {
            value: self.value_text(),
            currency: self.currency.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value_text(), self.currency)
    }
}

/// An amount as the API and the exports write it: `{"value": "19.99", "currency": "EUR"}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// A decimal string with at most the currency's decimals (`"19.99"`, `"1000"` for JPY,
    /// `"1.500"` for KWD).
    #[cfg_attr(feature = "openapi", schema(example = "19.99"))]
    pub value: String,
    /// ISO 4217.
    #[cfg_attr(feature = "openapi", schema(example = "EUR"))]
    pub currency: String,
}

impl Amount {
    /// The exact amount this stands for.
    pub fn parse(&self) -> Result<Money, MoneyError> {
        Money::parse(&self.value, &self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn amounts_follow_each_currencys_decimals() {
        assert_eq!(Money::parse("19.99", "eur").unwrap().minor(), 1999);
        assert_eq!(Money::parse("19.9", "EUR").unwrap().minor(), 1990);
        assert_eq!(Money::parse("19", "EUR").unwrap().minor(), 1900);
        assert_eq!(Money::parse("1000", "JPY").unwrap().minor(), 1000);
        assert_eq!(Money::parse("1000.00", "JPY").unwrap().minor(), 1000);
        assert_eq!(Money::parse("1.5", "KWD").unwrap().minor(), 1500);
        assert_eq!(Money::parse("1.234", "KWD").unwrap().minor(), 1234);
        assert!(matches!(
            Money::parse("10.5", "JPY"),
            Err(MoneyError::Decimals { decimals: 0, .. })
        ));
        assert!(matches!(
            Money::parse("1.999", "USD"),
            Err(MoneyError::Decimals { .. })
        ));
        for bad in ["", "-1", "1e3", "abc", ".5", "1.", "1.2.3", "+1", " "] {
            assert!(Money::parse(bad, "USD").is_err(), "{bad:?}");
        }
        assert!(Money::parse("1", "EURO").is_err());
        assert!(Money::parse("1", "E1R").is_err());
        assert!(Money::parse("99999999999999999999", "USD").is_err());
        assert_eq!(Money::parse("0.05", "USD").unwrap().value_text(), "0.05");
        assert_eq!(Money::parse("1000", "JPY").unwrap().value_text(), "1000");
        assert_eq!(Money::parse("1.5", "KWD").unwrap().value_text(), "1.500");
        assert_eq!(Money::parse("7", "CLF").unwrap().value_text(), "7.0000");
        assert_eq!(Money::parse("3", "usd").unwrap().to_string(), "3.00 USD");
    }

    #[test]
    fn sums_stay_in_one_currency() {
        let a = Money::parse("1.10", "EUR").unwrap();
        let b = Money::parse("2.25", "EUR").unwrap();
        assert_eq!(a.plus(b).unwrap().value_text(), "3.35");
        assert_eq!(b.minus(a).unwrap().value_text(), "1.15");
        assert_eq!(a.minus(b).unwrap().minor(), 0);
        assert_eq!(a.max(b), Some(b));
        assert_eq!(a.plus(Money::zero(cur("USD"))), None);
        assert_eq!(Money::from_minor(-1, cur("EUR")), None);
    }

    proptest! {
        /// Writing an amount and reading it back gives the same amount, in every exponent.
        #[test]
        fn text_round_trips(minor in 0i64..MAX_MINOR, code in prop::sample::select(vec!["EUR", "JPY", "KWD", "CLF"])) {
            let money = Money::from_minor(minor, cur(code)).unwrap();
            prop_assert_eq!(Money::parse(&money.value_text(), code).unwrap(), money);
        }

        #[test]
        fn any_text_is_an_amount_or_an_error(text in ".{0,24}") {
            let _ = Money::parse(&text, "EUR");
        }
    }
}
