//! Buyers' words in their language: one Fluent file per language under `backend/locales/`
//! (`en.ftl`, `de.ftl`, `fr.ftl`, `es.ftl`), compiled into the binary, and dates in a time
//! zone with the words of that language ("15. Dezember 2026, 11:00 Uhr", "in 12 Tagen").
//!
//! Fluent (Mozilla's localisation system) rather than a table of strings: its plural rules
//! are per language (`one`/`other` in English, more in others) and translators can write
//! each sentence whole, with its variables where their grammar wants them.

mod zone;

pub use fluent_bundle::FluentValue;
pub use zone::{StoreZone, ZoneError};

use domain::{Language, Timestamp};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::OnceLock;

/// The Fluent source of each language, in [`Language::ALL`] order.
const SOURCES: [(Language, &str); 4] = [
    (Language::En, include_str!("../../locales/en.ftl")),
    (Language::De, include_str!("../../locales/de.ftl")),
    (Language::Fr, include_str!("../../locales/fr.ftl")),
    (Language::Es, include_str!("../../locales/es.ftl")),
];

/// Every language's bundle, built once.
struct Catalog {
    bundles: Vec<(Language, FluentBundle<FluentResource>)>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog {
        bundles: SOURCES
            .iter()
            .map(|(language, source)| (*language, bundle(*language, source)))
            .collect(),
    })
}

/// One language's bundle. The files are part of the build and a test parses each, so a
/// syntax error cannot reach a running server; should one anyway, the messages that parsed
/// are kept and the rest fall back to English.
fn bundle(language: Language, source: &str) -> FluentBundle<FluentResource> {
    let resource =
        FluentResource::try_new(source.to_owned()).unwrap_or_else(|(partial, errors)| {
            tracing::error!(
                language = language.as_str(),
                ?errors,
                "a language file has errors"
            );
            partial
        });
    let id: unic_langid::LanguageIdentifier = language
        .as_str()
        .parse()
        .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around variables: the text goes into mail headers, URLs
    // and template placeholders, where invisible characters would break them.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(
            language = language.as_str(),
            ?errors,
            "a language file repeats a key"
        );
    }
    bundle
}

/// A message's variables: `("name", value)` pairs.
pub type Args<'a> = [(&'a str, FluentValue<'a>)];

/// The message `key` in `language` with its variables, falling back to English and, should
/// even that lack it, to the key itself (visible, and caught by the completeness test).
pub fn text(language: Language, key: &str, args: &Args<'_>) -> String {
    lookup(language, key, args)
        .or_else(|| lookup(Language::En, key, args))
        .unwrap_or_else(|| key.to_owned())
}

/// The message `key` in `language` only, `None` when that language lacks it.
pub fn lookup(language: Language, key: &str, args: &Args<'_>) -> Option<String> {
    let (_, bundle) = catalog().bundles.iter().find(|(l, _)| *l == language)?;
    let pattern = bundle.get_message(key)?.value()?;
    let mut fluent_args = FluentArgs::with_capacity(args.len());
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let out = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
    if !errors.is_empty() {
        tracing::warn!(
            language = language.as_str(),
            key,
            ?errors,
            "a message lacks a variable"
        );
    }
    Some(out.into_owned())
}

/// The ids of every message in a language's file, for the completeness test.
pub fn keys(language: Language) -> Vec<String> {
    let source = SOURCES
        .iter()
        .find(|(l, _)| *l == language)
        .map_or("", |(_, s)| s);
    let resource = match FluentResource::try_new(source.to_owned()) {
        Ok(r) | Err((r, _)) => r,
    };
    resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        })
        .collect()
}

/// `15 December 2026` in `language`, in `zone`.
pub fn date(language: Language, at: Timestamp, zone: &StoreZone) -> String {
    let local = zone.local(at);
    let month = text(language, &format!("month-{}", local.month), &[]);
    text(
        language,
        "date",
        &[
            ("day", local.day.into()),
            ("month", month.into()),
            ("year", local.year.into()),
        ],
    )
}

/// `15 December 2026, 11:00` in `language`, in `zone`; with `name_zone`, followed by the
/// zone (`(CET, Europe/Berlin)`), as mails print it.
pub fn date_time(language: Language, at: Timestamp, zone: &StoreZone, name_zone: bool) -> String {
    let local = zone.local(at);
    let date = date(language, at, zone);
    let time = format!("{:02}:{:02}", local.hour, local.minute);
    if name_zone {
        text(
            language,
            "date-time-zone",
            &[
                ("date", date.into()),
                ("time", time.into()),
                ("zone", zone.describe(at).into()),
            ],
        )
    } else {
        text(
            language,
            "date-time",
            &[("date", date.into()), ("time", time.into())],
        )
    }
}

/// "in 12 days", "in 5 hours", "3 days ago": how far `at` is from `now`, rounded down to
/// the largest whole unit.
pub fn relative(language: Language, at: Timestamp, now: Timestamp) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let delta = at.unix_millis() - now.unix_millis();
    let (key, n) = match delta {
        d if d >= DAY => ("relative-in-days", d / DAY),
        d if d >= HOUR => ("relative-in-hours", d / HOUR),
        d if d >= MINUTE => ("relative-in-minutes", d / MINUTE),
        d if d > -HOUR => return text(language, "relative-just-now", &[]),
        d if d > -DAY => ("relative-hours-ago", -d / HOUR),
        d => ("relative-days-ago", -d / DAY),
    };
    text(language, key, &[("n", n.into())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_language_file_parses_and_has_every_key() {
        let english: BTreeSet<String> = keys(Language::En).into_iter().collect();
        assert!(english.len() > 80, "{} keys", english.len());
        for (language, source) in SOURCES {
            if let Err((_, errors)) = FluentResource::try_new(source.to_owned()) {
                panic!("{}.ftl does not parse: {errors:?}", language.as_str());
            }
            let these: BTreeSet<String> = keys(language).into_iter().collect();
            let missing: Vec<_> = english.difference(&these).collect();
            let extra: Vec<_> = these.difference(&english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{}.ftl: missing {missing:?}, not in en.ftl {extra:?}",
                language.as_str()
            );
        }
    }

    /// A translation that drops a variable (the order ID, the link) loses information the
    /// buyer needs: each message uses the same variables in every language.
    #[test]
    fn every_translation_uses_the_same_variables() {
        fn variables(source: &str, key: &str) -> BTreeSet<String> {
            let start = source
                .lines()
                .position(|l| l.starts_with(&format!("{key} =")))
                .unwrap_or_else(|| panic!("{key} missing"));
            let mut text = String::new();
            for (i, line) in source.lines().enumerate().skip(start) {
                if i > start && !line.starts_with(' ') && !line.is_empty() {
                    break;
                }
                text.push_str(line);
            }
            text.match_indices('$')
                .map(|(at, _)| {
                    text[at + 1..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()
                })
                .collect()
        }
        let english = SOURCES[0].1;
        for key in keys(Language::En) {
            let expected = variables(english, &key);
            for (language, source) in &SOURCES[1..] {
                assert_eq!(
                    variables(source, &key),
                    expected,
                    "{key} in {}.ftl",
                    language.as_str()
                );
            }
        }
    }

    #[test]
    fn plurals_and_variables_follow_each_language() {
        let n = |n: i64| [("n", FluentValue::from(n))];
        assert_eq!(text(Language::En, "relative-in-days", &n(1)), "in one day");
        assert_eq!(text(Language::En, "relative-in-days", &n(12)), "in 12 days");
        assert_eq!(
            text(Language::De, "relative-in-days", &n(12)),
            "in 12 Tagen"
        );
        assert_eq!(
            text(Language::Fr, "relative-days-ago", &n(3)),
            "il y a 3 jours"
        );
        assert_eq!(
            text(Language::Es, "mail-downloads", &n(0)),
            "descargas ilimitadas"
        );
        assert_eq!(text(Language::Es, "mail-downloads", &n(1)), "1 descarga");
        assert_eq!(
            text(
                Language::De,
                "download-file",
                &[("name", "buch.pdf".into())]
            ),
            "buch.pdf herunterladen",
            "no isolation marks around variables"
        );
    }

    #[test]
    fn dates_read_as_each_language_writes_them() {
        let utc = StoreZone::utc();
        let berlin = StoreZone::named("Europe/Berlin").expect("the test machine has tzdata");
        // 2026-12-15 10:30 UTC = 11:30 in Berlin (CET, +01:00).
        let at = Timestamp::from_unix_millis(1_797_330_600_000);
        assert_eq!(
            date_time(Language::En, at, &utc, false),
            "15 December 2026, 10:30"
        );
        assert_eq!(
            date_time(Language::De, at, &berlin, true),
            "15. Dezember 2026, 11:30 Uhr (CET, Europe/Berlin)"
        );
        assert_eq!(
            date_time(Language::Fr, at, &berlin, false),
            "15 décembre 2026 à 11:30"
        );
        assert_eq!(date(Language::Es, at, &berlin), "15 de diciembre de 2026");
        // Summer time: 2026-07-01 10:00 UTC = 12:00 CEST.
        let summer = Timestamp::from_unix_millis(1_782_900_000_000);
        assert_eq!(
            date_time(Language::En, summer, &berlin, true),
            "1 July 2026, 12:00 (CEST, Europe/Berlin)"
        );
    }

    #[test]
    fn relative_times_round_down_to_the_largest_unit() {
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let at = |ms: i64| Timestamp::from_unix_millis(1_800_000_000_000 + ms);
        let day = 86_400_000;
        assert_eq!(
            relative(Language::En, at(12 * day + 5_000), now),
            "in 12 days"
        );
        assert_eq!(relative(Language::En, at(day - 1), now), "in 23 hours");
        assert_eq!(relative(Language::En, at(90_000), now), "in one minute");
        assert_eq!(relative(Language::En, at(-5_000), now), "just now");
        assert_eq!(relative(Language::De, at(-3 * day), now), "vor 3 Tagen");
        assert_eq!(
            relative(Language::Es, at(-2 * 3_600_000), now),
            "hace 2 horas"
        );
    }
}
