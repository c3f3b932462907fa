//! Mail: composing a mail from the seller's templates and queuing it in the outbox inside
//! the caller's write transaction (so a mail exists exactly when its cause was committed),
//! and the SMTP worker that delivers the outbox ([`worker`]).

pub mod smtp;
pub mod worker;

use crate::services::SettingsService;
use crate::store::grants::Grant;
use crate::store::orders::OrderRecord;
use crate::store::{StoreError, catalog, meta, outbox};
use domain::mail::{
    LinkLine, MailFacts, MailKind, MailState, MailTemplate, TemplateSource, header_text,
};
use domain::{Email, GrantId, Language, OrderId, Timestamp};
use rand::TryRngCore;
use redb::WriteTransaction;
use std::sync::Arc;
use tokio::sync::Notify;

/// Composes and queues mails; cheap to clone and shared by the services.
#[derive(Clone, Debug)]
pub struct Mailer {
    settings: SettingsService,
    public_url: String,
    /// The host part of Message-IDs.
    message_host: String,
    /// Where sale notifications go when the seller set no sender address: the SMTP `from`.
    smtp_from: Option<String>,
    wake: Arc<Notify>,
}

/// Who a mail goes to, and which order it is about.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    pub order_id: OrderId,
    pub order: &'a OrderRecord,
}

impl Mailer {
    pub fn new(settings: SettingsService, public_url: &str, smtp_from: Option<String>) -> Self {
        let authority = public_url
            .split("://")
            .nth(1)
            .unwrap_or(public_url)
            .split('/')
            .next()
            .unwrap_or_default();
        // An IPv6 literal keeps its brackets; otherwise the port goes.
        let host = match authority.find(']') {
            Some(end) if authority.starts_with('[') => &authority[..=end],
            _ => authority.split(':').next().unwrap_or_default(),
        };
        let host = if host.is_empty() {
            "dropgate.invalid".to_owned()
        } else {
            host.to_owned()
        };
        Self {
            settings,
            public_url: public_url.trim_end_matches('/').to_owned(),
            message_host: host,
            smtp_from,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells the worker that new mail is waiting (call after the transaction committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wake_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The buyer's link for a password (always from the configured public URL).
    pub fn link(&self, password: &domain::DownloadPassword) -> String {
        format!("{}/d/{}", self.public_url, password.display())
    }

    /// The self-service page's address.
    pub fn resend_url(&self) -> String {
        format!("{}/resend", self.public_url)
    }

    /// The buyer library's sign-in link for a token.
    pub fn library_sign_in_url(&self, token: &str) -> String {
        format!("{}/library/sign-in?token={token}", self.public_url)
    }

    /// The language of a mail: the order's, else `fallback` (the browser's), else the
    /// store's default.
    pub fn language(&self, order: Option<&OrderRecord>, fallback: Option<Language>) -> Language {
        order
            .and_then(|o| o.language)
            .or(fallback)
            .unwrap_or_else(|| self.settings.current().default_language)
    }

    /// One product's line in a mail, for a grant and its buyer link.
    pub fn link_line(
        tx: &WriteTransaction,
        id: GrantId,
        grant: &Grant,
        url: String,
    ) -> Result<LinkLine, StoreError> {
        let product_name = catalog::product(tx, &grant.product_id)?
            .map_or_else(|| grant.product_id.to_string(), |p| p.name);
        Ok(LinkLine {
            grant: Some(id),
            product_name,
            url,
            max_downloads: grant.max_downloads,
            valid_until: grant.valid_until,
        })
    }

    /// A mailer for service tests: default settings, no SMTP.
    pub async fn for_tests(store: crate::Store, public_url: &str) -> Self {
        let settings = SettingsService::load(store, domain::settings::StoreSettings::initial(31))
            .await
            .expect("settings load from a fresh store");
        Self::new(settings, public_url, None)
    }

    /// Queues a mail to the buyer of `about` with these links.
    pub fn queue_to_buyer(
        &self,
        tx: &WriteTransaction,
        kind: MailKind,
        about: About<'_>,
        links: Vec<LinkLine>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let language = self.language(Some(about.order), None);
        let facts = self.facts(Some(about), &about.order.email, links, language);
        self.queue(
            tx,
            kind,
            &about.order.email,
            &about.order.name,
            Some(about.order_id),
            &facts,
            language,
            now,
        )
    }

    /// Queues the seller's notification of a sale, if there is an address to send it to.
    pub fn queue_vendor_notice(
        &self,
        tx: &WriteTransaction,
        about: About<'_>,
        links: Vec<LinkLine>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        let Some(to) = self.vendor_address() else {
            return Ok(None);
        };
        // The seller reads the store's language, whatever the buyer's.
        let language = self.language(None, None);
        let facts = self.facts(Some(about), &about.order.email, links, language);
        let name = self.sender_name();
        self.queue(
            tx,
            MailKind::VendorNotice,
            &to,
            &name,
            Some(about.order_id),
            &facts,
            language,
            now,
        )
        .map(Some)
    }

    /// Queues the self-service mail with links from several orders.
    pub fn queue_self_service(
        &self,
        tx: &WriteTransaction,
        to: &Email,
        name: &str,
        links: Vec<LinkLine>,
        language: Option<Language>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (language, facts) = self.buyer_facts(to, name, links, language);
        self.queue(
            tx,
            MailKind::SelfService,
            to,
            name,
            None,
            &facts,
            language,
            now,
        )
    }

    /// Queues the buyer library's one-time sign-in link.
    pub fn queue_library_sign_in(
        &self,
        tx: &WriteTransaction,
        to: &Email,
        url: &str,
        language: Option<Language>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let language = self.language(None, language);
        let mut facts = self.facts(None, to, Vec::new(), language);
        url.clone_into(&mut facts.sign_in_url);
        self.queue(
            tx,
            MailKind::LibrarySignIn,
            to,
            "",
            None,
            &facts,
            language,
            now,
        )
    }

    /// Queues a product update to one past buyer: the seller's message and fresh links.
    #[allow(clippy::too_many_arguments)] // the mail's facts, each a different thing
    pub fn queue_product_update(
        &self,
        tx: &WriteTransaction,
        to: &Email,
        name: &str,
        links: Vec<LinkLine>,
        message: &str,
        language: Option<Language>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (language, mut facts) = self.buyer_facts(to, name, links, language);
        message.clone_into(&mut facts.message);
        self.queue(
            tx,
            MailKind::ProductUpdate,
            to,
            name,
            None,
            &facts,
            language,
            now,
        )
    }

    /// Queues the settings screen's test mail.
    pub fn queue_test(
        &self,
        tx: &WriteTransaction,
        to: &Email,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let language = self.language(None, None);
        let facts = self.facts(None, to, Vec::new(), language);
        self.queue(tx, MailKind::Test, to, "", None, &facts, language, now)
    }

    /// The mail a template makes from sample facts in `language` (the editor's preview).
    pub fn preview(
        &self,
        template: &MailTemplate,
        language: Language,
    ) -> domain::mail::ComposedMail {
        let mut facts = MailFacts::sample(&self.settings.current().store_name, &self.public_url);
        let zone = self.settings.zone();
        facts.greeting = greeting(language, &facts.buyer_name);
        facts.link_terms = facts
            .links
            .iter()
            .map(|l| link_terms(language, l, &zone))
            .collect();
        template.compose(&facts)
    }

    /// Where sale notifications go: the seller's sender address, else the SMTP `from`.
    pub fn vendor_address(&self) -> Option<Email> {
        let settings = self.settings.current();
        let configured = Some(settings.sender_email).filter(|e| !e.is_empty());
        configured
            .or_else(|| self.smtp_from.clone())
            .and_then(|a| Email::parse(&a).ok())
    }

    fn sender_name(&self) -> String {
        header_text(self.settings.current().mail_sender_name())
    }

    /// The facts of a mail to a buyer that no single order is about (self-service, product
    /// updates), in their language (`fallback`, else the store's), greeting them by name.
    fn buyer_facts(
        &self,
        to: &Email,
        name: &str,
        links: Vec<LinkLine>,
        fallback: Option<Language>,
    ) -> (Language, MailFacts) {
        let language = self.language(None, fallback);
        let mut facts = self.facts(None, to, links, language);
        name.clone_into(&mut facts.buyer_name);
        facts.greeting = greeting(language, name);
        (language, facts)
    }

    /// What a mail says, in `language`: dates in the store's time zone, named.
    fn facts(
        &self,
        about: Option<About<'_>>,
        to: &Email,
        links: Vec<LinkLine>,
        language: Language,
    ) -> MailFacts {
        let zone = self.settings.zone();
        let link_terms = links
            .iter()
            .map(|l| link_terms(language, l, &zone))
            .collect();
        let mut facts = MailFacts {
            store_name: self.settings.current().store_name,
            buyer_email: to.to_string(),
            links,
            link_terms,
            resend_url: self.resend_url(),
            greeting: greeting(language, ""),
            ..MailFacts::default()
        };
        if let Some(a) = about {
            facts.greeting = greeting(language, &a.order.name);
            facts.buyer_name.clone_from(&a.order.name);
            facts.buyer_email = a.order.email.to_string();
            facts.order_id = a.order_id.to_string();
            facts.order_number.clone_from(&a.order.order_number);
            facts.transaction_id = a.order.transaction_id.clone().unwrap_or_default();
        }
        facts
    }

    #[allow(clippy::too_many_arguments)]
    fn queue(
        &self,
        tx: &WriteTransaction,
        kind: MailKind,
        to: &Email,
        to_name: &str,
        order: Option<OrderId>,
        facts: &MailFacts,
        language: Language,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let template = template_in(tx, kind, language)?;
        let mail = template.compose(facts);
        let settings = self.settings.current();
        let record = outbox::MailRecord {
            links: links_to_renew(kind, facts),
            message: facts.message.clone(),
            language,
            kind,
            to_email: to.to_string(),
            to_name: header_text(to_name),
            from_name: self.sender_name(),
            from_email: settings.sender_email,
            subject: mail.subject,
            text: mail.text,
            html: mail.html,
            message_id: format!("<{}@{}>", random_hex(), self.message_host),
            order,
            queued_at: now,
            retry_from: now,
            state: MailState::Queued,
            attempts: 0,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            last_error: None,
            server_reply: None,
            sent_at: None,
        };
        outbox::insert(tx, &record)
    }

    /// Writes `mail` anew with fresh `links` (its old ones were removed when it failed):
    /// the same kind, recipient and order, composed from the current template.
    pub fn recompose(
        &self,
        tx: &WriteTransaction,
        mail: &mut outbox::MailRecord,
        links: Vec<LinkLine>,
    ) -> Result<(), StoreError> {
        let to = Email::parse(&mail.to_email).map_err(|e| StoreError::Corrupt {
            kind: "mail",
            detail: format!("recipient: {e}"),
        })?;
        let order = match mail.order {
            Some(id) => crate::store::orders::order(tx, id)?.map(|record| (id, record)),
            None => None,
        };
        let about = order.as_ref().map(|(order_id, order)| About {
            order_id: *order_id,
            order,
        });
        let mut facts = self.facts(about, &to, links, mail.language);
        if about.is_none() {
            facts.buyer_name.clone_from(&mail.to_name);
            facts.greeting = greeting(mail.language, &mail.to_name);
        }
        facts.message.clone_from(&mail.message);
        let composed = template_in(tx, mail.kind, mail.language)?.compose(&facts);
        mail.subject = composed.subject;
        mail.text = composed.text;
        mail.html = composed.html;
        mail.links = links_to_renew(mail.kind, &facts);
        Ok(())
    }
}

/// The grants whose links a mail to the buyer carries, renewed if it has to be sent again
/// after failing. None for the seller's notice: its links are the buyer's, which must not
/// change because the seller's copy did not arrive.
fn links_to_renew(kind: MailKind, facts: &MailFacts) -> Vec<GrantId> {
    if kind == MailKind::VendorNotice {
        return Vec::new();
    }
    facts.links.iter().filter_map(|l| l.grant).collect()
}

/// "Hello Ann," in `language` ("Hello," without a name).
fn greeting(language: Language, name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        crate::i18n::text(language, "mail-greeting", &[])
    } else {
        crate::i18n::text(language, "mail-greeting-named", &[("name", name.into())])
    }
}

/// "3 downloads, until 15 December 2026, 11:00 (CET, Europe/Berlin)" in `language`.
fn link_terms(language: Language, line: &LinkLine, zone: &crate::i18n::StoreZone) -> String {
    let downloads = crate::i18n::text(
        language,
        "mail-downloads",
        &[("n", line.max_downloads.into())],
    );
    match line.valid_until {
        Some(at) => crate::i18n::text(
            language,
            "mail-terms-until",
            &[
                ("downloads", downloads.into()),
                (
                    "date",
                    crate::i18n::date_time(language, at, zone, true).into(),
                ),
            ],
        ),
        None => crate::i18n::text(
            language,
            "mail-terms-no-expiry",
            &[("downloads", downloads.into())],
        ),
    }
}

/// The shipped template of a kind in a language, from that language's Fluent file: its
/// sentences with the template placeholders (`{{store_name}}`) where their variables are.
pub fn default_template(kind: MailKind, language: Language) -> TemplateSource {
    let args: Vec<(&str, fluent_bundle::FluentValue<'_>)> = domain::mail::PLACEHOLDERS
        .iter()
        .map(|(name, _)| (*name, format!("{{{{{name}}}}}").into()))
        .collect();
    let part = |part: &str| {
        let key = format!("mail-{}-{part}", kind.as_str().replace('_', "-"));
        crate::i18n::lookup(language, &key, &args).unwrap_or_default()
    };
    TemplateSource::from_parts(kind, &part("subject"), &part("intro"), &part("outro"))
}

/// The template of a kind in a language: the seller's if saved (and still valid), else the
/// shipped one of that language.
pub fn template_in(
    tx: &WriteTransaction,
    kind: MailKind,
    language: Language,
) -> Result<MailTemplate, StoreError> {
    if let Some(custom) = meta::mail_templates(tx)?.get(&(kind, language)) {
        match custom.checked() {
            Ok(t) => return Ok(t),
            // Saving checks templates, so this means a newer build's syntax; the default
            // still gets the mail out.
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), error = %e, "stored mail template is not usable; using the default");
            }
        }
    }
    Ok(default_template(kind, language)
        .checked()
        .expect("the shipped templates are valid (tested)"))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A product update that failed and is composed again with fresh links still carries
    /// the seller's message.
    #[tokio::test]
    async fn a_product_update_composed_again_keeps_its_message() {
        let store = crate::Store::in_memory().unwrap();
        let mailer = Mailer::for_tests(store.clone(), "https://shop.example.com").await;
        let to = Email::parse("ann@example.com").unwrap();
        let line = |url: &str| LinkLine {
            grant: Some(GrantId::new(1)),
            product_name: "Guide".into(),
            url: url.into(),
            max_downloads: 3,
            valid_until: None,
        };
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let id = store
            .write(|tx| {
                mailer.queue_product_update(
                    tx,
                    &to,
                    "Ann",
                    vec![line("https://shop.example.com/d/OLD")],
                    "Chapter 9 is out.",
                    None,
                    now,
                )
            })
            .unwrap();
        let again = store
            .write(|tx| {
                let mut mail = outbox::mail(tx, id)?.unwrap();
                mailer.recompose(tx, &mut mail, vec![line("https://shop.example.com/d/NEW")])?;
                Ok::<_, StoreError>(mail)
            })
            .unwrap();
        assert!(again.text.contains("Chapter 9 is out."), "{}", again.text);
        assert!(again.text.contains("/d/NEW") && !again.text.contains("/d/OLD"));
    }

    /// The shipped template of every kind in every language is usable (a mail falls back to
    /// it, so a broken one would fail every mail of that language) and says what it must.
    #[test]
    fn every_shipped_template_in_every_language_is_valid() {
        for kind in MailKind::ALL {
            for language in Language::ALL {
                let source = default_template(kind, language);
                let name = format!("{}@{}", kind.as_str(), language.as_str());
                source.checked().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(source.subject.contains("{{"), "{name}: {}", source.subject);
                let carries_links = !matches!(kind, MailKind::Test | MailKind::LibrarySignIn);
                assert_eq!(source.text.contains("{{links}}"), carries_links, "{name}");
                if kind == MailKind::LibrarySignIn {
                    assert!(source.text.contains("{{sign_in_url}}"), "{name}");
                }
                if kind == MailKind::ProductUpdate {
                    assert!(source.text.contains("{{message}}"), "{name}");
                }
            }
        }
        // The English ones are the ones the domain ships.
        for kind in MailKind::ALL {
            assert_eq!(
                default_template(kind, Language::En),
                TemplateSource::default_for(kind),
                "{}",
                kind.as_str()
            );
        }
    }

    #[tokio::test]
    async fn message_ids_name_the_public_host() {
        let store = crate::Store::in_memory().unwrap();
        for (url, host) in [
            ("https://shop.example.com/", "shop.example.com"),
            ("http://127.0.0.1:8080", "127.0.0.1"),
            ("http://[::1]:8080", "[::1]"),
            ("", "dropgate.invalid"),
        ] {
            let mailer = Mailer::for_tests(store.clone(), url).await;
            assert_eq!(mailer.message_host, host, "{url}");
        }
    }
}
