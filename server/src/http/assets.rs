//! The site's static files, embedded in the binary at build time (see `build.rs`), served
//! from memory with ETags and pre-compressed gzip bodies when the client accepts them.

use axum::response::{IntoResponse, Response};
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::sync::OnceLock;

/// One embedded file.
#[derive(Debug)]
pub struct EmbeddedAsset {
    pub url: &'static str,
    pub content_type: &'static str,
    pub body: Body,
    pub gzip: Option<&'static [u8]>,
    pub etag: &'static str,
}

/// An embedded file's bytes as they are.
#[derive(Debug)]
pub enum Body {
    Embedded(&'static [u8]),
    /// Embedded only gzipped (a large file): decompressed on first need, then kept.
    FromGzip(OnceLock<Vec<u8>>),
}

impl EmbeddedAsset {
    /// The file's bytes, uncompressed.
    pub fn plain(&'static self) -> &'static [u8] {
        match &self.body {
            Body::Embedded(bytes) => bytes,
            Body::FromGzip(cell) => cell.get_or_init(|| {
                let gzip = self.gzip.unwrap_or_default();
                let mut plain = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip), &mut plain)
                    .expect("the embedded gzip copy was made at build time");
                plain
            }),
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Answers a request for `asset`.
pub fn respond(asset: &'static EmbeddedAsset, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_static(asset.etag);
    // Names are not content-hashed, so browsers must revalidate; the ETag makes that cheap.
    let cache = HeaderValue::from_static("no-cache");
    if headers.get(IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == asset.etag.as_bytes())
    }) {
        return (
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag), (CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    let accepts_gzip = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused =
                parts.any(|p| p.trim().replace(' ', "").starts_with("q=0") && !p.contains('.'));
            name.eq_ignore_ascii_case("gzip") && !refused
        });
    let mut response = match (asset.gzip, accepts_gzip) {
        (Some(gzip), true) => {
            let mut r = Response::new(axum::body::Body::from(gzip));
            r.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => Response::new(axum::body::Body::from(asset.plain())),
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(ETAG, etag);
    h.insert(CACHE_CONTROL, cache);
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}
