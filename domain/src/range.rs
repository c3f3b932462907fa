//! `Range` and `If-Range` for file downloads (RFC 9110 §14), parsed in one linear pass.
//!
//! Getting this wrong corrupts resumed downloads (PITFALLS.md): a range starting at or past
//! the end does not overlap; an unsatisfiable set is 416 with `Content-Range: bytes */len`;
//! the number of ranges is capped and never compared pairwise (tower-http #660); `If-Range`
//! compares strong ETags, and a mismatch means "ignore Range, send the whole file".

use std::ops::RangeInclusive;

/// More ranges than this in one request are answered with the whole file: no download
/// manager needs more, and a flood of tiny ranges is only useful to an attacker.
pub const MAX_RANGES: usize = 16;

/// What to send for a request on a file of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole file (no Range, an ignored Range, or too many ranges).
    Full,
    /// 206 with these byte ranges (inclusive), in request order, each satisfiable.
    Partial(Vec<RangeInclusive<u64>>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decides the answer from the `Range` header value (if any), whether `If-Range` matched
/// (`None` when absent), and the file length.
pub fn decide(range: Option<&str>, if_range_matches: Option<bool>, len: u64) -> RangeAnswer {
    let Some(range) = range else {
        return RangeAnswer::Full;
    };
    if if_range_matches == Some(false) {
        return RangeAnswer::Full;
    }
    // A syntactically invalid Range header is ignored (RFC 9110 §14.2).
    let Some(specs) = range.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    let mut ranges = Vec::new();
    for (count, spec) in specs.split(',').enumerate() {
        if count >= MAX_RANGES {
            return RangeAnswer::Full;
        }
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeAnswer::Full;
        };
        let parsed = match (first.trim(), last.trim()) {
            ("", "") => return RangeAnswer::Full,
            // Suffix: the last N bytes.
            ("", suffix) => match suffix.parse::<u64>() {
                Ok(0) => None,
                Ok(n) if len > 0 => Some(len.saturating_sub(n)..=len - 1),
                Ok(_) => None,
                Err(_) => return RangeAnswer::Full,
            },
            (first, last) => {
                let Ok(start) = first.parse::<u64>() else {
                    return RangeAnswer::Full;
                };
                let end = if last.is_empty() {
                    u64::MAX
                } else {
                    match last.parse::<u64>() {
                        Ok(end) if end >= start => end,
                        _ => return RangeAnswer::Full,
                    }
                };
                // A range starting at or past the end does not overlap the file.
                (start < len).then(|| start..=end.min(len - 1))
            }
        };
        ranges.extend(parsed);
    }
    if ranges.is_empty() {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Partial(ranges)
    }
}

/// Whether an `If-Range` value matches the file's strong ETag (weak tags never match;
/// dates are not used for our content-addressed files, so they never match either).
pub fn if_range_matches(if_range: &str, etag: &str) -> bool {
    let value = if_range.trim();
    !value.starts_with("W/") && value == etag
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::{Full, Partial, Unsatisfiable};

    #[test]
    fn single_ranges() {
        assert_eq!(decide(None, None, 100), Full);
        assert_eq!(decide(Some("bytes=0-9"), None, 100), Partial(vec![0..=9]));
        assert_eq!(decide(Some("bytes=40-"), None, 100), Partial(vec![40..=99]));
        assert_eq!(
            decide(Some("bytes=90-200"), None, 100),
            Partial(vec![90..=99])
        );
        assert_eq!(decide(Some("bytes=-10"), None, 100), Partial(vec![90..=99]));
        assert_eq!(decide(Some("bytes=-500"), None, 100), Partial(vec![0..=99]));
        assert_eq!(
            decide(Some("bytes=99-99"), None, 100),
            Partial(vec![99..=99])
        );
    }

    #[test]
    fn unsatisfiable_and_invalid() {
        assert_eq!(
            decide(Some("bytes=100-"), None, 100),
            Unsatisfiable,
            "start at the end"
        );
        assert_eq!(decide(Some("bytes=200-300"), None, 100), Unsatisfiable);
        assert_eq!(decide(Some("bytes=-0"), None, 100), Unsatisfiable);
        assert_eq!(
            decide(Some("bytes=0-"), None, 0),
            Unsatisfiable,
            "empty file"
        );
        // Invalid syntax is ignored: whole file.
        assert_eq!(decide(Some("bytes=9-1"), None, 100), Full);
        assert_eq!(decide(Some("items=0-1"), None, 100), Full);
        assert_eq!(decide(Some("bytes=a-b"), None, 100), Full);
        assert_eq!(decide(Some("bytes=-"), None, 100), Full);
        assert_eq!(decide(Some("bytes=1"), None, 100), Full);
    }

    #[test]
    fn several_ranges_are_capped() {
        assert_eq!(
            decide(Some("bytes=0-1, 5-6,200-300"), None, 100),
            Partial(vec![0..=1, 5..=6])
        );
        let many = (0..=MAX_RANGES)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(decide(Some(&format!("bytes={many}")), None, 100), Full);
        // A huge header is dealt with in linear time and answered with the whole file.
        let huge = format!("bytes={}", "0-0,".repeat(100_000));
        assert_eq!(decide(Some(&huge), None, 100), Full);
    }

    #[test]
    fn if_range() {
        let etag = "\"abc\"";
        assert!(if_range_matches("\"abc\"", etag));
        assert!(!if_range_matches("W/\"abc\"", etag));
        assert!(!if_range_matches("Sat, 29 Oct 1994 19:43:31 GMT", etag));
        assert_eq!(decide(Some("bytes=0-9"), Some(false), 100), Full);
        assert_eq!(
            decide(Some("bytes=0-9"), Some(true), 100),
            Partial(vec![0..=9])
        );
    }
}
