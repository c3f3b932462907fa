//! The seller's store settings and the rule that checks them. One struct serves as the
//! stored value, the wire type and the form model, so the admin form validates while the
//! seller types with exactly the check the server applies on save.

use crate::Email;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest store or sender name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest reset window, IP retention and log retention, in days (ten years).
pub const MAX_DAYS: u32 = 3650;

/// What the seller configures in the admin's Settings screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Shown to buyers on the download pages and in mails.
    pub store_name: String,
    /// The name mails come from; empty = the store name.
    pub sender_name: String,
    /// The address mails come from; empty = the SMTP `from` of the server configuration.
    pub sender_email: String,
    /// Days of the fresh window a desk "reset" gives.
    pub reset_days: u32,
    /// Buyers' IP addresses older than this many days are shortened to their network
    /// ([`truncated_ip`]); countries stay, so the country lock keeps working. 0 keeps them
    /// in full.
    pub ip_retention_days: u32,
    /// Download log entries older than this many days are removed (the grants' counts and
    /// country locks are kept on the grants, so no rule changes). 0 keeps them all.
    #[serde(default = "default_event_retention_days")]
    pub event_retention_days: u32,
    /// The language of buyer pages and mails when neither the order nor the browser names
    /// one Dropgate ships.
    #[serde(default)]
    pub default_language: crate::Language,
    /// The store's IANA time zone (`Europe/Berlin`): buyer pages show dates in it until the
    /// browser tells its own, and mails show dates in it, naming it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
}

/// The time zone of a new store.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_owned()
}

/// How long a new store keeps its download log: a year, longer than card networks allow
/// for a chargeback, so the log is there when a dispute needs it.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 365;

fn default_event_retention_days() -> u32 {
    DEFAULT_EVENT_RETENTION_DAYS
}

/// A setting that cannot be saved: which field and why, in words for the seller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl StoreSettings {
    /// What a new store starts with; `reset_days` comes from the server configuration.
    pub fn initial(reset_days: u32) -> Self {
        Self {
            store_name: "My download store".to_owned(),
            sender_name: String::new(),
            sender_email: String::new(),
            reset_days,
            ip_retention_days: 90,
            event_retention_days: DEFAULT_EVENT_RETENTION_DAYS,
            default_language: crate::Language::En,
            time_zone: default_time_zone(),
        }
    }

    /// The settings with names trimmed and the sender address normalised, or the first field
    /// that is not acceptable. Names may not hold control characters: they end up in mail
    /// headers, where a line break would let a name add headers of its own.
    pub fn checked(&self) -> Result<Self, SettingsError> {
        let store_name = checked_name("store_name", "The store name", &self.store_name)?;
        if store_name.is_empty() {
            return Err(error(
                "store_name",
                "Enter the store's name; buyers see it.",
            ));
        }
        let sender_name = checked_name("sender_name", "The sender name", &self.sender_name)?;
        let sender_email = if self.sender_email.trim().is_empty() {
            String::new()
        } else {
            Email::parse(&self.sender_email)
                .map_err(|e| error("sender_email", &format!("{}.", capitalised(&e.to_string()))))?
                .to_string()
        };
        if !(1..=MAX_DAYS).contains(&self.reset_days) {
            return Err(error(
                "reset_days",
                &format!("A reset gives between 1 and {MAX_DAYS} days."),
            ));
        }
        if self.ip_retention_days > MAX_DAYS {
            return Err(error(
                "ip_retention_days",
                &format!("Keep full IP addresses at most {MAX_DAYS} days, or 0 to keep them."),
            ));
        }
        if self.event_retention_days > MAX_DAYS {
            return Err(error(
                "event_retention_days",
                &format!("Keep the download log at most {MAX_DAYS} days, or 0 to keep it all."),
            ));
        }
        let time_zone = self.time_zone.trim();
        if time_zone.is_empty()
            || time_zone.len() > 64
            || !time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b))
        {
            return Err(error(
                "time_zone",
                "Enter a time zone by its IANA name, such as Europe/Berlin, America/New_York or UTC.",
            ));
        }
        Ok(Self {
            store_name,
            sender_name,
            sender_email,
            reset_days: self.reset_days,
            ip_retention_days: self.ip_retention_days,
            event_retention_days: self.event_retention_days,
            default_language: self.default_language,
            time_zone: time_zone.to_owned(),
        })
    }

    /// The name mails are sent under.
    pub fn mail_sender_name(&self) -> &str {
        if self.sender_name.is_empty() {
            &self.store_name
        } else {
            &self.sender_name
        }
    }
}

fn checked_name(field: &'static str, what: &str, text: &str) -> Result<String, SettingsError> {
    let name = text.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(error(
            field,
            &format!("{what} has at most {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(error(
            field,
            &format!("{what} cannot contain line breaks or control characters."),
        ));
    }
    Ok(name.to_owned())
}

fn error(field: &'static str, message: &str) -> SettingsError {
    SettingsError {
        field,
        message: message.to_owned(),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A buyer's IP shortened to its network once the retention period has passed: IPv4 to
/// /24 (the last number becomes 0), IPv6 to /48. Enough to see that two attempts came from
/// the same provider, not enough to point at one household.
pub fn truncated_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> StoreSettings {
        StoreSettings {
            store_name: "  Pixel Fonts ".into(),
            sender_name: "Pixel Fonts support".into(),
            sender_email: " Sales@Example.COM ".into(),
            reset_days: 31,
            ip_retention_days: 90,
            event_retention_days: 365,
            default_language: crate::Language::De,
            time_zone: " Europe/Berlin ".into(),
        }
    }

    #[test]
    fn valid_settings_are_normalised() {
        let s = valid().checked().unwrap();
        assert_eq!(s.store_name, "Pixel Fonts");
        assert_eq!(s.sender_email, "sales@example.com");
        assert_eq!(s.mail_sender_name(), "Pixel Fonts support");
        assert_eq!(s.time_zone, "Europe/Berlin");
        let plain = StoreSettings {
            sender_name: String::new(),
            sender_email: String::new(),
            ..valid()
        }
        .checked()
        .unwrap();
        assert_eq!(plain.mail_sender_name(), "Pixel Fonts");
        assert_eq!(plain.sender_email, "");
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |s: StoreSettings| s.checked().unwrap_err().field;
        assert_eq!(
            field(StoreSettings {
                store_name: " ".into(),
                ..valid()
            }),
            "store_name"
        );
        assert_eq!(
            field(StoreSettings {
                store_name: "x".repeat(101),
                ..valid()
            }),
            "store_name"
        );
        assert_eq!(
            field(StoreSettings {
                sender_name: "Shop\r\nBcc: victim@example.com".into(),
                ..valid()
            }),
            "sender_name"
        );
        assert_eq!(
            field(StoreSettings {
                sender_email: "sales@example.com\nBcc: x@y.z".into(),
                ..valid()
            }),
            "sender_email"
        );
        assert_eq!(
            field(StoreSettings {
                reset_days: 0,
                ..valid()
            }),
            "reset_days"
        );
        assert_eq!(
            field(StoreSettings {
                ip_retention_days: MAX_DAYS + 1,
                ..valid()
            }),
            "ip_retention_days"
        );
        for zone in ["", "Europe/Berlin; rm", &"A".repeat(65)] {
            assert_eq!(
                field(StoreSettings {
                    time_zone: zone.into(),
                    ..valid()
                }),
                "time_zone"
            );
        }
    }

    #[test]
    fn ips_are_shortened_to_their_network() {
        let short = |ip: &str| truncated_ip(ip.parse().unwrap()).to_string();
        assert_eq!(short("81.2.69.142"), "81.2.69.0");
        assert_eq!(
            short("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
            "2001:db8:85a3::"
        );
        assert_eq!(
            short("81.2.69.0"),
            "81.2.69.0",
            "shortening twice changes nothing"
        );
    }
}
