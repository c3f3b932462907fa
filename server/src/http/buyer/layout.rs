//! The frame of every buyer page: a small HTML document in the buyer's language with the
//! shared stylesheet, the icon, and one inline script that shows dates in the browser's
//! own time zone. No WASM, no other script: the pages work the same without JavaScript.

use axum::response::{IntoResponse, Response};
use backend::i18n::FluentValue;
use backend::i18n::{self, StoreZone};
use domain::{Language, Timestamp};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::sync::OnceLock;

/// Rewrites each `<time data-local>` into the browser's time zone (the server wrote it in
/// the store's) and names that zone where the page says which zone times are in. Without
/// JavaScript the store's zone stays, named.
const LOCAL_TIMES: &str = "(function(){var z,l=document.documentElement.lang;try{z=Intl.DateTimeFormat().resolvedOptions().timeZone}catch(e){return}if(!z)return;var f=new Intl.DateTimeFormat(l,{dateStyle:'long',timeStyle:'short'});document.querySelectorAll('time[data-local]').forEach(function(t){t.textContent=f.format(new Date(t.getAttribute('datetime')))});document.querySelectorAll('[data-zone]').forEach(function(e){e.textContent=z})})();";

/// The page's Content-Security-Policy: styles and images from us, that one script by its
/// hash, forms to us only, nothing else.
fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(LOCAL_TIMES.as_bytes()));
        format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'self'; img-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
    })
}

/// What every page knows: its language, the store's name and zone, and the time.
#[derive(Clone, Debug)]
pub struct PageContext {
    pub language: Language,
    pub store_name: String,
    pub zone: StoreZone,
    pub now: Timestamp,
}

impl PageContext {
    /// A message in the page's language.
    pub fn t(&self, key: &str) -> String {
        i18n::text(self.language, key, &[])
    }

    /// A message with variables.
    pub fn t_with(&self, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        i18n::text(self.language, key, args)
    }

    /// A message with one variable that is markup (a `<time>`): the words around it are
    /// escaped, the markup is not.
    pub fn t_markup(&self, key: &str, variable: &str, markup: &Markup) -> Markup {
        const MARK: &str = "\u{E000}";
        let text = i18n::text(self.language, key, &[(variable, MARK.into())]);
        let (before, after) = text.split_once(MARK).unwrap_or((&text, ""));
        html! { (before) (markup) (after) }
    }

    /// A date and time as a `<time>` the script may move into the buyer's zone, followed
    /// by how far away it is ("in 12 days").
    pub fn when(&self, at: Timestamp) -> Markup {
        html! {
            time datetime=(at.to_string()) data-local {
                (i18n::date_time(self.language, at, &self.zone, false))
            }
            " (" (i18n::relative(self.language, at, self.now)) ")"
        }
    }

    /// A date alone (no time of day), as a `<time>`.
    pub fn date(&self, at: Timestamp) -> Markup {
        html! { time datetime=(at.to_string()) { (i18n::date(self.language, at, &self.zone)) } }
    }

    /// "Times are shown in Europe/Berlin.", the zone replaced by the browser's.
    pub fn zone_note(&self) -> Markup {
        let zone = html! { span data-zone { (self.zone.name()) } };
        html! { p.muted.small { (self.t_markup("times-in-zone", "zone", &zone)) } }
    }
}

/// A complete buyer page.
pub fn page(ctx: &PageContext, status: StatusCode, title: &str, body: &Markup) -> Response {
    let document = html! {
        (DOCTYPE)
        html lang=(ctx.language.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex";
                title { (title) " · " (ctx.store_name) }
                link rel="stylesheet" href="/pkg/dropgate.css";
                link rel="icon" href="/favicon.svg" type="image/svg+xml";
            }
            body {
                main.buyer {
                    p.store-name { (ctx.store_name) }
                    (body)
                }
                script { (PreEscaped(LOCAL_TIMES)) }
            }
        }
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        document.into_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(content_security_policy()),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    response
}

/// `2.4` → "2.4", `3.0` → "3": downloads left after partial downloads.
pub fn downloads_left(value: f64) -> String {
    let rounded = (value * 10.0).floor() / 10.0;
    if (rounded - rounded.trunc()).abs() < 1e-9 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn downloads_left_reads_well() {
        assert_eq!(super::downloads_left(3.0), "3");
        assert_eq!(super::downloads_left(2.46), "2.4");
        assert_eq!(super::downloads_left(0.0), "0");
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(super::LOCAL_TIMES.as_bytes()));
        assert!(super::content_security_policy().contains(&format!("'sha256-{hash}'")));
        assert!(!super::content_security_policy().contains("unsafe"));
    }
}
