//! Mail as pure values: the kinds of mail Dropgate sends, the seller-editable templates with
//! a checked `{{placeholder}}` syntax, composing a mail from them, header-safe text, and the
//! retry schedule of the outbox. No I/O: the backend stores and sends what this builds.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Why a mail is sent. The stored name (`as_str`) is part of the outbox records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// The buyer's links after a confirmed purchase.
    Purchase,
    /// The seller's copy of a sale, with the buyer's passwords.
    VendorNotice,
    /// A new link for one purchase, sent from the password desk.
    Resend,
    /// A complimentary grant sent with "Send new password".
    NewPassword,
    /// Fresh links the buyer asked for on the self-service page.
    SelfService,
    /// The "send test mail" button of the settings.
    Test,
    /// A product was updated: the seller's message and fresh links, to each past buyer.
    ProductUpdate,
    /// The one-time sign-in link to the buyer library.
    LibrarySignIn,
}

impl MailKind {
    pub const ALL: [MailKind; 8] = [
        Self::Purchase,
        Self::VendorNotice,
        Self::Resend,
        Self::NewPassword,
        Self::SelfService,
        Self::Test,
        Self::ProductUpdate,
        Self::LibrarySignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::VendorNotice => "vendor_notice",
            Self::Resend => "resend",
            Self::NewPassword => "new_password",
            Self::SelfService => "self_service",
            Self::Test => "test",
            Self::ProductUpdate => "product_update",
            Self::LibrarySignIn => "library_sign_in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the seller reads in the admin.
    pub fn label(self) -> &'static str {
        match self {
            Self::Purchase => "Purchase (to the buyer)",
            Self::VendorNotice => "Sale notification (to you)",
            Self::Resend => "New link from the desk",
            Self::NewPassword => "Send new password",
            Self::SelfService => "Self-service links",
            Self::Test => "Test mail",
            Self::ProductUpdate => "Product update (to past buyers)",
            Self::LibrarySignIn => "Library sign-in link",
        }
    }
}

/// Where a mail is in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MailState {
    /// Waiting for its first attempt (or for SMTP to be configured).
    Queued,
    /// An attempt is under way; after a crash it is tried again with the same Message-ID.
    Sending,
    /// An attempt failed for a reason that may pass; tried again later.
    Retrying,
    /// The SMTP server accepted it.
    Sent,
    /// Given up: refused for good, or still failing after the give-up time.
    Failed,
}

impl MailState {
    pub const ALL: [MailState; 5] = [
        Self::Queued,
        Self::Sending,
        Self::Retrying,
        Self::Sent,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Retrying => "retrying",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the worker still has to send it.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Sending | Self::Retrying)
    }
}

/// Every placeholder a template may use, with what it holds (shown beside the editor).
pub const PLACEHOLDERS: [(&str, &str); 12] = [
    ("store_name", "the store's name"),
    ("buyer_name", "the buyer's name (may be empty)"),
    ("buyer_email", "the buyer's address"),
    ("order_id", "the 7-digit order ID"),
    ("order_number", "the full order number"),
    (
        "transaction_id",
        "the payment transaction ID (may be empty)",
    ),
    ("products", "the product names, comma separated"),
    (
        "links",
        "each product with its download link, downloads and expiry",
    ),
    ("resend_url", "the self-service page for new links"),
    ("greeting", "\"Hello <name>,\" or \"Hello,\" without a name"),
    (
        "message",
        "the seller's message to past buyers (product updates only)",
    ),
    (
        "sign_in_url",
        "the one-time link to the buyer's purchases (library sign-in only)",
    ),
];

/// A template that cannot be used: where and why, for the editor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TemplateError {
    /// Which of the three parts: "subject", "text" or "html".
    pub part: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder(&'static str),
}

/// A parsed template: literal text and known placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Longest template part, in bytes: templates are stored in the database and shown in
/// the admin, so they stay small.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

impl Template {
    /// Parses `{{name}}` placeholders (spaces inside the braces allowed). An unknown name,
    /// an unclosed `{{` or a stray `}}` is an error with its line.
    pub fn parse(part: &str, source: &str) -> Result<Self, TemplateError> {
        let error = |line: usize, reason: String| TemplateError {
            part: part.to_owned(),
            line,
            reason,
        };
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(error(
                1,
                format!(
                    "the template is longer than {} KiB",
                    MAX_TEMPLATE_BYTES / 1024
                ),
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut line = 1;
        while !rest.is_empty() {
            let open = rest.find("{{");
            let close = rest.find("}}");
            if let Some(c) = close
                && open.is_none_or(|o| c < o)
            {
                return Err(error(
                    line + rest[..c].matches('\n').count(),
                    "\"}}\" without an opening \"{{\"".to_owned(),
                ));
            }
            let Some(o) = open else {
                pieces.push(Piece::Literal(rest.to_owned()));
                break;
            };
            if o > 0 {
                pieces.push(Piece::Literal(rest[..o].to_owned()));
            }
            line += rest[..o].matches('\n').count();
            let after = &rest[o + 2..];
            let Some(end) = after.find("}}") else {
                return Err(error(line, "\"{{\" is never closed with \"}}\"".to_owned()));
            };
            let inner = &after[..end];
            if inner.contains('\n') || inner.contains("{{") {
                return Err(error(line, "\"{{\" is never closed with \"}}\"".to_owned()));
            }
            let name = inner.trim();
            let Some((known, _)) = PLACEHOLDERS.iter().find(|(n, _)| *n == name) else {
                return Err(error(
                    line,
                    format!(
                        "unknown placeholder {{{{{name}}}}}; known are {}",
                        PLACEHOLDERS.map(|(n, _)| n).join(", ")
                    ),
                ));
            };
            pieces.push(Piece::Placeholder(known));
            rest = &after[end + 2..];
        }
        Ok(Self { pieces })
    }

    /// The template with each placeholder replaced by `value(name)`.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Placeholder(name) => out.push_str(&value(name)),
            }
        }
        out
    }
}

/// The three parts of one kind of mail, as the seller wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateSource {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A checked template set for one kind of mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailTemplate {
    subject: Template,
    text: Template,
    html: Template,
}

impl TemplateSource {
    /// Checks all three parts; the first problem is reported with its part and line.
    pub fn checked(&self) -> Result<MailTemplate, TemplateError> {
        if self.subject.contains('\n') || self.subject.contains('\r') {
            return Err(TemplateError {
                part: "subject".to_owned(),
                line: 1,
                reason: "the subject must be one line".to_owned(),
            });
        }
        if self.subject.trim().is_empty() {
            return Err(TemplateError {
                part: "subject".to_owned(),
                line: 1,
                reason: "the subject is empty".to_owned(),
            });
        }
        if self.text.trim().is_empty() {
            return Err(TemplateError {
                part: "text".to_owned(),
                line: 1,
                reason: "the plain-text part is empty; many buyers read only it".to_owned(),
            });
        }
        Ok(MailTemplate {
            subject: Template::parse("subject", &self.subject)?,
            text: Template::parse("text", &self.text)?,
            html: Template::parse("html", &self.html)?,
        })
    }

    /// The template Dropgate ships for a kind of mail.
    /// The shipped English template of a kind (the backend builds every language's from
    /// its Fluent file with [`Self::from_parts`]; this one serves the domain's own tests).
    pub fn default_for(kind: MailKind) -> Self {
        let (subject, intro, outro) = match kind {
            MailKind::Purchase => (
                "Your download from {{store_name}}",
                "thank you for your purchase (order {{order_id}}). Your downloads:",
                "Keep this mail: the links are yours. Lost it? Ask for new links at {{resend_url}}",
            ),
            MailKind::VendorNotice => (
                "New order {{order_id}} from {{buyer_email}}",
                "a new order was confirmed.\n\nOrder ID: {{order_id}}\nOrder number: {{order_number}}\nTransaction ID: {{transaction_id}}\nBuyer: {{buyer_name}} <{{buyer_email}}>\n\nThe buyer's downloads and passwords:",
                "Find this order in the password desk by its order ID, order number or password.",
            ),
            MailKind::Resend => (
                "Your new download link from {{store_name}}",
                "here is a new link for your purchase (order {{order_id}}). The link you had before no longer works.",
                "Lost it again? Ask for new links at {{resend_url}}",
            ),
            MailKind::NewPassword => (
                "Your download from {{store_name}}",
                "{{store_name}} sent you a download:",
                "Lost this mail? Ask for new links at {{resend_url}}",
            ),
            MailKind::SelfService => (
                "Your download links from {{store_name}}",
                "you asked for new links to your purchases. The links you had before no longer work.",
                "Did not ask for this? Your downloads are safe: only this mailbox received the new links.",
            ),
            MailKind::ProductUpdate => (
                "New version of {{products}} from {{store_name}}",
                "there is a new version of {{products}}, which you bought from {{store_name}}.\n\n{{message}}\n\nDownload it with your new link:",
                "The links you had before no longer work; these do. Lost this mail? Ask for new links at {{resend_url}}",
            ),
            MailKind::Test => (
                "Test mail from {{store_name}}",
                "this is a test mail from Dropgate. If you can read it, buyers receive their links.",
                "",
            ),
            MailKind::LibrarySignIn => (
                "Sign in to your purchases at {{store_name}}",
                "you asked to see your purchases at {{store_name}}. Open this link within 30 minutes; it works once:\n\n{{sign_in_url}}",
                "Did not ask for this? Ignore this mail; nothing happens without the link.",
            ),
        };
        Self::from_parts(kind, subject, intro, outro)
    }

    /// A template of the shipped shape: greeting, `intro`, the links (for kinds that carry
    /// them), `outro` and the store's name, as plain text and HTML.
    pub fn from_parts(kind: MailKind, subject: &str, intro: &str, outro: &str) -> Self {
        let no_links = matches!(kind, MailKind::Test | MailKind::LibrarySignIn);
        let links = if no_links { "" } else { "\n\n{{links}}" };
        let text = format!("{{{{greeting}}}}\n\n{intro}{links}\n\n{outro}\n\n{{{{store_name}}}}\n");
        let html_intro = intro.replace('\n', "<br>\n");
        let html_links = if no_links { "" } else { "\n{{links}}" };
        let html_outro = if outro.is_empty() {
            String::new()
        } else {
            format!("\n<p>{outro}</p>")
        };
        let html = format!(
            "<p>{{{{greeting}}}}</p>\n<p>{html_intro}</p>{html_links}{html_outro}\n<p>{{{{store_name}}}}</p>\n"
        );
        Self {
            subject: subject.to_owned(),
            text,
            html,
        }
    }
}

/// One product's download in a mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLine {
    /// The grant the link opens (none in the editor's sample), so a mail that could not be
    /// delivered can be sent again with a fresh link for it.
    pub grant: Option<crate::GrantId>,
    pub product_name: String,
    pub url: String,
    /// 0 = unlimited.
    pub max_downloads: u32,
    pub valid_until: Option<Timestamp>,
}

impl LinkLine {
    fn terms(&self) -> String {
        let downloads = match self.max_downloads {
            0 => "unlimited downloads".to_owned(),
            1 => "1 download".to_owned(),
            n => format!("{n} downloads"),
        };
        match self.valid_until {
            Some(t) => format!("{downloads}, until {}", t.human()),
            None => format!("{downloads}, no expiry"),
        }
    }
}

/// The facts a mail is about; each placeholder is drawn from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailFacts {
    pub store_name: String,
    pub buyer_name: String,
    pub buyer_email: String,
    pub order_id: String,
    pub order_number: String,
    pub transaction_id: String,
    pub links: Vec<LinkLine>,
    pub resend_url: String,
    /// The seller's words to past buyers (product updates).
    pub message: String,
    /// The library sign-in link (library sign-in mails only).
    pub sign_in_url: String,
    /// The greeting in the buyer's language; empty: the English one.
    pub greeting: String,
    /// Each link's terms ("3 downloads, until …") in the buyer's language, in `links`
    /// order; a link without one gets the English terms.
    pub link_terms: Vec<String>,
}

impl MailFacts {
    /// The plain-text value of a placeholder.
    fn text(&self, name: &str) -> String {
        match name {
            "store_name" => self.store_name.clone(),
            "buyer_name" => self.buyer_name.clone(),
            "buyer_email" => self.buyer_email.clone(),
            "order_id" => self.order_id.clone(),
            "order_number" => self.order_number.clone(),
            "transaction_id" => self.transaction_id.clone(),
            "products" => self.product_names(),
            "links" => {
                let mut out = String::new();
                for (i, l) in self.links.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    let _ = write!(
                        out,
                        "{}\n  {}\n  {}\n",
                        l.product_name,
                        l.url,
                        self.terms(i)
                    );
                }
                out.trim_end().to_owned()
            }
            "resend_url" => self.resend_url.clone(),
            "greeting" => self.greeting(),
            "message" => self.message.clone(),
            "sign_in_url" => self.sign_in_url.clone(),
            _ => String::new(),
        }
    }

    /// The HTML value of a placeholder: escaped text, or markup built from escaped parts.
    fn html(&self, name: &str) -> String {
        match name {
            "links" => {
                let mut out = String::from("<ul>\n");
                for (i, l) in self.links.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "<li><strong>{name}</strong><br>\n<a href=\"{url}\">{url}</a><br>\n{terms}</li>",
                        name = escape_html(&l.product_name),
                        url = escape_html(&l.url),
                        terms = escape_html(&self.terms(i)),
                    );
                }
                out.push_str("</ul>");
                out
            }
            "resend_url" => format!(
                "<a href=\"{url}\">{url}</a>",
                url = escape_html(&self.resend_url)
            ),
            "message" => escape_html(&self.message).replace('\n', "<br>\n"),
            "sign_in_url" => format!(
                "<a href=\"{url}\">{url}</a>",
                url = escape_html(&self.sign_in_url)
            ),
            other => escape_html(&self.text(other)),
        }
    }

    fn product_names(&self) -> String {
        self.links
            .iter()
            .map(|l| l.product_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn terms(&self, link: usize) -> String {
        self.link_terms
            .get(link)
            .cloned()
            .unwrap_or_else(|| self.links[link].terms())
    }

    fn greeting(&self) -> String {
        if !self.greeting.is_empty() {
            return self.greeting.clone();
        }
        let name = self.buyer_name.trim();
        if name.is_empty() {
            "Hello,".to_owned()
        } else {
            format!("Hello {name},")
        }
    }

    /// Facts with made-up values, for the template preview.
    pub fn sample(store_name: &str, public_url: &str) -> Self {
        Self {
            store_name: store_name.to_owned(),
            buyer_name: "Ada Lovelace".to_owned(),
            buyer_email: "ada@example.com".to_owned(),
            order_id: "4821937".to_owned(),
            order_number: "20261122143012417".to_owned(),
            transaction_id: "pi_3Q8sample".to_owned(),
            links: vec![LinkLine {
                grant: None,
                product_name: "Sample product".to_owned(),
                url: format!("{public_url}/d/7K3Q-M9XD-4TZP-W2HB-R5NC"),
                max_downloads: 3,
                valid_until: Some(Timestamp::from_unix_millis(1_798_761_600_000)),
            }],
            resend_url: format!("{public_url}/resend"),
            message: "Version 2 adds a chapter on async Rust and fixes the typos you reported."
                .to_owned(),
            sign_in_url: format!("{public_url}/library/sign-in?token=3f9a5c"),
            greeting: String::new(),
            link_terms: Vec::new(),
        }
    }
}

/// A mail ready for the outbox: header-safe subject, text and HTML bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComposedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl MailTemplate {
    /// Fills the template with the facts. Values reach the subject only through
    /// [`header_text`], so a name holding a line break cannot add a header. The wrapper
    /// carries no inline style: the admin shows mails in a sandboxed frame under the
    /// admin's Content-Security-Policy, which refuses inline styles.
    pub fn compose(&self, facts: &MailFacts) -> ComposedMail {
        let subject = header_text(&self.subject.render(|n| facts.text(n)));
        let text = self.text.render(|n| facts.text(n));
        let body = self.html.render(|n| facts.html(n));
        let html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
            escape_html(&subject)
        );
        ComposedMail {
            subject,
            text,
            html,
        }
    }
}

/// A sent mail's text with every download link's password cut to its first four
/// characters (`…/d/7K3Q…`): the stored copy then shows the seller which link went out,
/// but no longer works as one, so the outbox is not a list of live links.
pub fn redact_links(text: &str) -> String {
    const KEPT: usize = 4;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/d/") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(after.len());
        let password = &after[..end];
        if password.len() > KEPT {
            out.push_str(&password[..KEPT]);
            out.push('…');
        } else {
            out.push_str(password);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Text that is safe in a mail header: every control character (CR and LF above all)
/// becomes a space, runs of spaces collapse, and the ends are trimmed.
pub fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out.trim().to_owned()
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The seller's templates, by kind; kinds not present use the defaults.
/// The seller's templates by kind and language.
pub type TemplateOverrides = BTreeMap<(MailKind, crate::Language), TemplateSource>;

/// When the outbox tries a mail again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// After this long since the mail was queued it is given up (RFC 5321 suggests 4–5 days).
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3 * 3600),
            give_up_after: Duration::from_secs(4 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after the `attempts`-th attempt failed at `now`, or `None` when the
    /// mail is past its give-up time. The last retry is never later than the give-up time.
    pub fn next_attempt(
        &self,
        queued_at: Timestamp,
        attempts: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let give_up_at = queued_at.plus(self.give_up_after);
        if now >= give_up_at {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let delay = self
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        let next = now.plus(delay);
        Some(if next > give_up_at { give_up_at } else { next })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sent_links_are_cut_to_their_first_characters() {
        let text = "Your book: https://dl.example.com/d/7K3Q-M9XD-4TZP-W2HB-R5NC\n<a href=\"https://dl.example.com/d/20260101abcdefghijklmnop\">x</a> /d/ab";
        let redacted = super::redact_links(text);
        assert_eq!(
            redacted,
            "Your book: https://dl.example.com/d/7K3Q…\n<a href=\"https://dl.example.com/d/2026…\">x</a> /d/ab"
        );
        assert_eq!(super::redact_links(&redacted), redacted, "idempotent");
    }

    use super::*;
    use proptest::prelude::*;

    fn facts() -> MailFacts {
        MailFacts {
            store_name: "Tiny <Books>".into(),
            buyer_name: "Eve".into(),
            buyer_email: "eve@example.com".into(),
            order_id: "1234567".into(),
            order_number: "20261122143012417".into(),
            transaction_id: String::new(),
            sign_in_url: String::new(),
            greeting: String::new(),
            link_terms: Vec::new(),
            links: vec![
                LinkLine {
                    grant: None,
                    product_name: "Rust & You".into(),
                    url: "https://shop.test/d/AAAA-BBBB".into(),
                    max_downloads: 3,
                    valid_until: Some(Timestamp::from_unix_millis(1_798_761_600_000)),
                },
                LinkLine {
                    grant: None,
                    product_name: "Extras".into(),
                    url: "https://shop.test/d/CCCC-DDDD".into(),
                    max_downloads: 0,
                    valid_until: None,
                },
            ],
            resend_url: "https://shop.test/resend".into(),
            message: "New <chapter>\nand fixes".into(),
        }
    }

    #[test]
    fn a_product_update_carries_the_message_escaped() {
        let t = TemplateSource::default_for(MailKind::ProductUpdate)
            .checked()
            .unwrap();
        let mail = t.compose(&facts());
        assert!(
            mail.text.contains("New <chapter>\nand fixes"),
            "{}",
            mail.text
        );
        assert!(
            mail.html.contains("New &lt;chapter&gt;<br>\nand fixes"),
            "{}",
            mail.html
        );
        assert!(
            mail.subject.starts_with("New version of Rust"),
            "{}",
            mail.subject
        );
    }

    #[test]
    fn every_default_template_is_valid_and_mentions_the_links() {
        for kind in MailKind::ALL {
            let t = TemplateSource::default_for(kind).checked().unwrap();
            let mail = t.compose(&facts());
            assert!(mail.subject.contains("Tiny <Books>") || kind == MailKind::VendorNotice);
            if !matches!(kind, MailKind::Test | MailKind::LibrarySignIn) {
                assert!(
                    mail.text.contains("https://shop.test/d/AAAA-BBBB"),
                    "{kind:?}"
                );
                assert!(
                    mail.text.contains("3 downloads, until 2027-01-01"),
                    "{kind:?}"
                );
                assert!(mail.text.contains("unlimited downloads, no expiry"));
                assert!(
                    mail.html
                        .contains("<a href=\"https://shop.test/d/CCCC-DDDD\">")
                );
                assert!(mail.html.contains("Rust &amp; You"));
            }
            assert!(mail.html.contains("Tiny &lt;Books&gt;"), "{kind:?}");
            assert!(!mail.html.contains("<Books>"));
        }
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("spam"), None);
    }

    #[test]
    fn unknown_placeholder_is_reported_with_its_line() {
        let err = Template::parse("text", "Hi\n\nyour {{ order_id }}\nand {{ordr}}").unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("unknown placeholder {{ordr}}"), "{err}");
    }

    #[test]
    fn unclosed_and_stray_braces_are_errors() {
        let err = Template::parse("html", "a\nb {{store_name\nc").unwrap_err();
        assert_eq!((err.line, err.part.as_str()), (2, "html"));
        assert!(err.reason.contains("never closed"));
        let err = Template::parse("text", "a\n\nb }} c").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("without an opening"));
    }

    #[test]
    fn a_subject_of_two_lines_or_an_empty_text_is_refused() {
        let mut s = TemplateSource::default_for(MailKind::Purchase);
        s.subject = "Hi\nBcc: x@y".into();
        assert_eq!(s.checked().unwrap_err().part, "subject");
        let mut s = TemplateSource::default_for(MailKind::Purchase);
        s.text = "  \n".into();
        assert_eq!(s.checked().unwrap_err().part, "text");
    }

    #[test]
    fn names_with_line_breaks_cannot_reach_a_header() {
        let mut f = facts();
        f.store_name = "Shop\r\nBcc: victim@example.com".into();
        let t = TemplateSource::default_for(MailKind::Purchase)
            .checked()
            .unwrap();
        let mail = t.compose(&f);
        assert_eq!(
            mail.subject,
            "Your download from Shop Bcc: victim@example.com"
        );
    }

    #[test]
    fn retries_back_off_and_stop_at_the_give_up_time() {
        let p = RetryPolicy::default();
        let queued = Timestamp::from_unix_millis(0);
        let at = |secs: u64| queued.plus(Duration::from_secs(secs));
        assert_eq!(p.next_attempt(queued, 1, at(0)), Some(at(60)));
        assert_eq!(p.next_attempt(queued, 2, at(60)), Some(at(180)));
        assert_eq!(p.next_attempt(queued, 3, at(180)), Some(at(420)));
        // capped at the longest wait
        assert_eq!(
            p.next_attempt(queued, 20, at(100_000)),
            Some(at(100_000 + 3 * 3600))
        );
        // never past the give-up time, and nothing after it
        let four_days = 4 * 24 * 3600;
        assert_eq!(
            p.next_attempt(queued, 20, at(four_days - 10)),
            Some(at(four_days))
        );
        assert_eq!(p.next_attempt(queued, 21, at(four_days)), None);
    }

    proptest! {
        #[test]
        fn header_text_never_holds_a_control_character(s in ".*") {
            let h = header_text(&s);
            prop_assert!(!h.chars().any(char::is_control));
        }

        #[test]
        fn parsing_never_panics_and_literals_render_back(s in "[a-z {}\n]{0,80}") {
            if let Ok(t) = Template::parse("text", &s)
                && !s.contains("{{")
            {
                prop_assert_eq!(t.render(|_| String::new()), s);
            }
        }

        #[test]
        fn a_retry_is_always_after_now(attempts in 1u32..100, secs in 0u64..400_000) {
            let p = RetryPolicy::default();
            let q = Timestamp::from_unix_millis(1_000);
            let now = q.plus(Duration::from_secs(secs));
            if let Some(next) = p.next_attempt(q, attempts, now) {
                prop_assert!(next > now);
                prop_assert!(next <= q.plus(p.give_up_after));
            }
        }
    }
}
