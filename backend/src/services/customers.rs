//! A buyer's data: everything held about an email address as one document, and its
//! erasure. Erasing keeps the sales (numbers, dates, products, download counts) for the
//! seller's books and removes the person: address and name in orders, mails, payment
//! notifications, webhook deliveries and audit snapshots; IP addresses and browsers in the
//! download log; and every link stops working. Then the file's free pages are overwritten,
//! so no earlier copy of a record lingers in the file.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use super::desk::DeskService;
use crate::store::{self, Store};
use domain::records::{CustomerData, CustomerMail, CustomerNotification, ErasureReport};
use domain::wire::GrantLookup;
use domain::{Email, OrderId, Timestamp};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What replaces an erased name and text.
const ERASED: &str = "[erased]";

/// A buyer's data.
#[derive(Clone, Debug)]
pub struct CustomerService {
    store: Store,
    desk: DeskService,
    orders: super::OrderService,
}

impl CustomerService {
    pub fn new(store: Store, desk: DeskService, orders: super::OrderService) -> Self {
        Self {
            store,
            desk,
            orders,
        }
    }

    /// Everything held about `email`. An address with nothing is an empty document, not an
    /// error: the admin asked, and the answer is "nothing".
    pub async fn data(&self, email: &str, now: Timestamp) -> Result<CustomerData, ServiceError> {
        let email = Email::parse(email).map_err(|e| ServiceError::invalid("email", e))?;
        let orders = self
            .orders
            .search(super::OrderQuery {
                email: Some(email.as_str().to_owned()),
                ..super::OrderQuery::default()
            })
            .await?;
        let mut grants = if orders.is_empty() {
            Vec::new()
        } else {
            self.desk
                .lookup(
                    GrantLookup {
                        email: Some(email.as_str().to_owned()),
                        ..GrantLookup::default()
                    },
                    now,
                )
                .await?
        };
        grants.sort_by_key(|g| g.grant_id);
        let order_ids: BTreeSet<OrderId> = orders.iter().map(|o| o.order_id).collect();
        let needle = Needle::new(&email);
        let (mails, notifications) = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    let mails = store::outbox::mails_matching(tx, |m| {
                        needle.is_in(&m.to_email) || m.order.is_some_and(|o| order_ids.contains(&o))
                    })?;
                    let notifications = store::payments::notifications_matching(tx, |n| {
                        needle.is_in_bytes(&n.body)
                    })?;
                    Ok((mails, notifications))
                })
            })
            .await?;
        Ok(CustomerData {
            email: email.as_str().to_owned(),
            orders,
            grants,
            mails: mails
                .into_iter()
                .map(|(id, m)| CustomerMail {
                    mail_id: id,
                    kind: m.kind.as_str().to_owned(),
                    to: m.to_email,
                    subject: m.subject,
                    state: m.state.as_str().to_owned(),
                    queued_at: m.queued_at,
                    sent_at: m.sent_at,
                    order_id: m.order.map(OrderId::get),
                })
                .collect(),
            notifications: notifications
                .into_iter()
                .map(|(id, n)| CustomerNotification {
                    notification_id: id,
                    provider: n.provider.as_str().to_owned(),
                    received_at: n.received_at,
                    event_type: n.event_type,
                    order_id: n.order.map(OrderId::get),
                    body: String::from_utf8_lossy(&n.body).into_owned(),
                })
                .collect(),
        })
    }

    /// Erases the person behind `email` (see the module docs), in one transaction, then
    /// overwrites the file's free space. The audit entry names the orders, not the address.
    pub async fn erase(
        &self,
        email: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ErasureReport, ServiceError> {
        let email = Email::parse(email).map_err(|e| ServiceError::invalid("email", e))?;
        let mut report = self
            .store
            .run(move |s| s.write(|tx| erase_in(tx, &email, &actor, now)))
            .await?;
        report.scrubbed_bytes = self.store.run(Store::scrub_free_space).await?;
        Ok(report)
    }
}

/// An address as it may appear in stored text: as typed, any case, or form-encoded
/// (`%40`, as PayPal's notifications carry it).
#[derive(Clone, Debug)]
struct Needle {
    plain: String,
    encoded: String,
}

impl Needle {
    fn new(email: &Email) -> Self {
        let plain = email.as_str().to_lowercase();
        let encoded = plain.replace('@', "%40");
        Self { plain, encoded }
    }

    fn is_in(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        text.contains(&self.plain) || text.contains(&self.encoded)
    }

    fn is_in_bytes(&self, bytes: &[u8]) -> bool {
        self.is_in(&String::from_utf8_lossy(bytes))
    }

    /// `text` with every form of the address (and `name`, when given) replaced.
    fn scrub(&self, text: &str, name: Option<&str>) -> String {
        let mut out = replace_ignoring_case(text, &self.plain, ERASED);
        out = replace_ignoring_case(&out, &self.encoded, ERASED);
        if let Some(name) = name.filter(|n| n.chars().count() >= 2) {
            out = out.replace(name, ERASED);
        }
        out
    }
}

/// Replaces every occurrence of `needle` (lower case) in `text`, whatever its case there.
fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths outside ASCII; the address is ASCII-only in
    // practice, but a text whose length changed is compared the slow, exact way.
    if lower.len() != text.len() {
        return text.replace(needle, with);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(needle) {
        out.push_str(&text[rest..at]);
        out.push_str(with);
        rest = at + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

/// Takes the person out of their orders (a stand-in address, no name), revokes their
/// links and clears the IP addresses and browsers of their download log. Returns the
/// orders and the names they carried (for the texts that follow).
fn erase_orders(
    tx: &redb::WriteTransaction,
    email: &Email,
    report: &mut ErasureReport,
    now: Timestamp,
) -> Result<(BTreeSet<OrderId>, BTreeSet<String>), ServiceError> {
    let mut names = BTreeSet::new();
    let mut order_ids = BTreeSet::new();
    for order_id in store::orders::orders_by_email(tx, email)? {
        let Some(before) = store::orders::order(tx, order_id)? else {
            continue;
        };
        let mut after = before.clone();
        let stand_in = format!("erased-{order_id}@erased.invalid");
        after.email = Email::parse(&stand_in)
            .map_err(|e| ServiceError::Internal(format!("the stand-in address {stand_in}: {e}")))?;
        if !after.name.is_empty() {
            names.insert(after.name.clone());
        }
        after.name = String::new();
        after.updated_at = now;
        for grant_id in &after.grants {
            let Some(mut grant) = store::grants::grant(tx, *grant_id)? else {
                continue;
            };
            if grant.revoked_at.is_none() {
                grant.revoke(now);
            }
            for sighting in [&mut grant.locked, &mut grant.blocked_by]
                .into_iter()
                .flatten()
            {
                sighting.ip = unspecified(sighting.ip);
            }
            store::grants::put_grant(tx, *grant_id, &grant)?;
            report.grants += 1;
            report.events += store::events::rewrite_grant_events(tx, *grant_id, |event| {
                event.ip = unspecified(event.ip);
                event.user_agent.clear();
                true
            })?;
        }
        store::orders::put_order(tx, order_id, &after, Some(&before))?;
        order_ids.insert(order_id);
        report.orders += 1;
    }
    Ok((order_ids, names))
}

fn erase_in(
    tx: &redb::WriteTransaction,
    email: &Email,
    actor: &Actor,
    now: Timestamp,
) -> Result<ErasureReport, ServiceError> {
    let needle = Needle::new(email);
    let mut report = ErasureReport::default();
    let (order_ids, names) = erase_orders(tx, email, &mut report, now)?;
    let name = names.iter().next().cloned();
    report.mails = store::outbox::rewrite_mails(tx, |_, mail| {
        let about = mail.order.is_some_and(|o| order_ids.contains(&o));
        if !about && !needle.is_in(&mail.to_email) && !needle.is_in(&mail.text) {
            return false;
        }
        if needle.is_in(&mail.to_email) {
            "erased@erased.invalid".clone_into(&mut mail.to_email);
            mail.to_name.clear();
        }
        mail.subject = needle.scrub(&mail.subject, name.as_deref());
        ERASED.clone_into(&mut mail.text);
        mail.html = String::new();
        true
    })?;
    report.notifications = store::payments::rewrite_notifications(tx, |_, n| {
        if !needle.is_in_bytes(&n.body) {
            return false;
        }
        n.body = br#"{"erased":true}"#.to_vec();
        n.detail = needle.scrub(&n.detail, name.as_deref());
        true
    })?;
    report.webhook_deliveries = store::webhooks::rewrite_deliveries(tx, |_, d| {
        if !needle.is_in_bytes(&d.payload) {
            return false;
        }
        d.payload = needle
            .scrub(&String::from_utf8_lossy(&d.payload), name.as_deref())
            .into_bytes();
        true
    })?;
    report.audit_entries = store::audit::rewrite_audit(tx, |_, entry| {
        if !needle.is_in(&entry.before)
            && !needle.is_in(&entry.after)
            && !needle.is_in(&entry.target)
        {
            return false;
        }
        entry.before = needle.scrub(&entry.before, name.as_deref());
        entry.after = needle.scrub(&entry.after, name.as_deref());
        entry.target = needle.scrub(&entry.target, name.as_deref());
        true
    })?;
    let orders: Vec<String> = order_ids.iter().map(ToString::to_string).collect();
    record_audit(
        tx,
        actor,
        "customer.erase",
        &format!(
            "orders {}",
            if orders.is_empty() {
                "none".to_owned()
            } else {
                orders.join(", ")
            }
        ),
        None::<&()>,
        Some(&report),
        now,
    )?;
    Ok(report)
}

/// The "no address" of the same family: a log line keeps its shape, not the person.
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_goes_in_any_case_and_form_encoded() {
        let needle = Needle::new(&Email::parse("Ann@Example.com").unwrap());
        assert!(needle.is_in("payer_email=ann%40example.com&x=1"));
        assert!(needle.is_in("To: ANN@EXAMPLE.COM"));
        assert!(!needle.is_in("bob@example.com"));
        assert_eq!(
            needle.scrub(
                "Dear Ann Smith, ANN@example.com and ann%40example.com",
                Some("Ann Smith")
            ),
            "Dear [erased], [erased] and [erased]"
        );
    }
}
