//! The languages buyers read Dropgate in, and how one is chosen: the order's own language
//! (from the payment notification or the API), else the browser's `Accept-Language`, else
//! the store's default. The words themselves live in the backend's Fluent files.

use serde::{Deserialize, Serialize};

/// A language buyer pages and buyer mails are written in. The stored form is the variant's
/// position (postcard), so new languages are added at the end only.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    De,
    Fr,
    Es,
}

impl Language {
    pub const ALL: [Language; 4] = [Self::En, Self::De, Self::Fr, Self::Es];

    /// The BCP 47 primary tag: `en`, `de`, `fr`, `es`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
            Self::Fr => "fr",
            Self::Es => "es",
        }
    }

    /// The language's own name, for choosers ("Deutsch").
    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::De => "Deutsch",
            Self::Fr => "Français",
            Self::Es => "Español",
        }
    }

    /// A language tag as payment providers and browsers send it (`de`, `de-AT`, `fr_CA`,
    /// `ES`), by its primary subtag; `None` for a language Dropgate does not ship.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.as_str() == primary)
    }

    /// The language a browser prefers most among the shipped ones, from an
    /// `Accept-Language` header (`de-CH, fr;q=0.8, *;q=0.1`). Ties keep the browser's order;
    /// `q=0` means "not this one"; `*` does not choose anything.
    pub fn negotiate(accept_language: &str) -> Option<Self> {
        let mut best: Option<(u16, Self)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), parse_quality);
            let (Some(quality), Some(language)) = (quality, Self::from_tag(tag)) else {
                continue;
            };
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, language));
            }
        }
        best.map(|(_, l)| l)
    }
}

/// An HTTP quality value (`0.8`) in thousandths; `None` when malformed.
fn parse_quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    let value = whole * 1000 + fraction;
    (value <= 1000).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::Language::{self, De, En, Es, Fr};

    #[test]
    fn tags_are_read_by_their_primary_subtag() {
        assert_eq!(Language::from_tag("de-AT"), Some(De));
        assert_eq!(Language::from_tag("fr_CA"), Some(Fr));
        assert_eq!(Language::from_tag(" ES "), Some(Es));
        assert_eq!(Language::from_tag("en"), Some(En));
        assert_eq!(Language::from_tag("pt-BR"), None);
        assert_eq!(Language::from_tag(""), None);
    }

    #[test]
    fn the_browsers_most_wanted_shipped_language_wins() {
        assert_eq!(Language::negotiate("de-CH, fr;q=0.8, *;q=0.1"), Some(De));
        assert_eq!(
            Language::negotiate("pt-BR, pt;q=0.9, es;q=0.5, en;q=0.4"),
            Some(Es)
        );
        assert_eq!(Language::negotiate("en;q=0.5, fr;q=0.7"), Some(Fr));
        assert_eq!(Language::negotiate("fr;q=0, de;q=0.1"), Some(De));
        assert_eq!(Language::negotiate("es, de"), Some(Es));
        assert_eq!(Language::negotiate("*"), None);
        assert_eq!(Language::negotiate("ja, zh;q=0.9"), None);
        assert_eq!(Language::negotiate("de;q=2, fr;q=x, es;q=0.3"), Some(Es));
        assert_eq!(Language::negotiate(""), None);
    }

    #[test]
    fn the_wire_form_is_the_primary_tag() {
        for l in Language::ALL {
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.as_str())
            );
            assert_eq!(Language::from_tag(l.as_str()), Some(l));
        }
    }
}
