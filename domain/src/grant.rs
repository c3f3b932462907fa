//! A grant: one buyer's right to download one product. This module owns what a grant *is*
//! (its record, as stored), what state it is in, its byte ledger, and the desk's actions on
//! it, all as pure functions with `now` passed in. Services load a grant, call these, and
//! store it; none of them decides a grant's state on its own.

use crate::rules::{Attempt, CountryCode, Denied, GrantFacts, Permit, authorize, byte_budget};
use crate::{FileId, OrderId, OrderStatus, ProductId, Timestamp};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// How many rotated-away password digests a grant keeps, newest last. They let the desk
/// find a grant by an old link ("replaced"); beyond this a rotation forgets the oldest, so
/// a grant's record cannot grow without bound however often its links are renewed.
pub const KEPT_REPLACED_PASSWORDS: usize = 16;

/// Where and when a grant was used from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub at: Timestamp,
    pub ip: IpAddr,
    pub country: Option<CountryCode>,
}

/// Bytes of one file counted against a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLedger {
    pub file: FileId,
    /// Bytes counted: charged when a download starts, less what a download cut off early
    /// did not send.
    pub delivered: u64,
    /// Bytes of downloads in progress as kept apart by earlier builds; given back at
    /// start-up. Always 0 now (downloads are charged to `delivered` up front); the field
    /// stays so that records written before still decode.
    pub reserved: u64,
}

/// One buyer's right to download one product. The field order is the stored format
/// (postcard is positional): add fields only at the end, with a record version bump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub password_digest: [u8; 32],
    /// Digests of rotated-away passwords (they still find the grant in the desk), at most
    /// [`KEPT_REPLACED_PASSWORDS`].
    pub replaced_digests: Vec<[u8; 32]>,
    pub issued_at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub max_downloads: u32,
    pub country_lock: bool,
    /// The first country (with where it came from).
    pub locked: Option<Sighting>,
    /// Set when a second country tried: the attempt that caused the block.
    pub blocked_by: Option<Sighting>,
    pub revoked_at: Option<Timestamp>,
    pub ledger: Vec<FileLedger>,
}

/// A product's rules as a new grant copies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRules {
    /// Days the links work; 0 for unlimited.
    pub download_days: u32,
    /// Downloads per file; 0 for unlimited.
    pub max_downloads: u32,
    pub country_lock: bool,
}

/// Where a grant stands, as the desk and the API show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Can download.
    Active,
    /// Its order is not confirmed yet.
    Pending,
    /// Its order is held by the seller.
    OnHold,
    /// Its order was cancelled.
    Cancelled,
    /// Revoked by a refund or an exchange.
    Revoked,
    /// Blocked by the country lock.
    Blocked,
    /// The download window ended.
    Expired,
    /// Every file has used all its downloads.
    Exhausted,
}

impl GrantState {
    /// The API's word for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::OnHold => "on_hold",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
            Self::Blocked => "blocked",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
        }
    }

    /// The state a refusal puts a grant in (`None` refusal: active).
    fn of_refusal(refusal: Option<&Denied>) -> Self {
        match refusal {
            None => Self::Active,
            Some(Denied::OrderNotConfirmed { status }) => match status {
                OrderStatus::OnHold => Self::OnHold,
                OrderStatus::Cancelled => Self::Cancelled,
                // Confirmed and refunded orders never give this refusal.
                OrderStatus::Pending | OrderStatus::Confirmed | OrderStatus::Refunded => {
                    Self::Pending
                }
            },
            Some(Denied::Refunded | Denied::Revoked) => Self::Revoked,
            Some(Denied::Blocked | Denied::CountryChanged { .. }) => Self::Blocked,
            Some(Denied::Expired { .. }) => Self::Expired,
            Some(Denied::LimitReached { .. }) => Self::Exhausted,
        }
    }
}

/// An action on a grant that does not apply to it as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantActionError {
    #[error("this grant is not blocked")]
    NotBlocked,
    #[error("this link already has unlimited downloads")]
    Unlimited,
}

impl Grant {
    /// A fresh grant with the product's rules as they are at `now`.
    pub fn issue(
        order_id: OrderId,
        product_id: ProductId,
        rules: GrantRules,
        password_digest: [u8; 32],
        now: Timestamp,
    ) -> Self {
        Self {
            order_id,
            product_id,
            password_digest,
            replaced_digests: Vec::new(),
            issued_at: now,
            valid_until: window_end(rules.download_days, now),
            max_downloads: rules.max_downloads,
            country_lock: rules.country_lock,
            locked: None,
            blocked_by: None,
            revoked_at: None,
            ledger: Vec::new(),
        }
    }

    // ---- the rules ----

    /// What the download rules need to know, with the order's status.
    pub fn facts(&self, order: OrderStatus) -> GrantFacts {
        GrantFacts {
            order_status: order,
            revoked: self.revoked_at.is_some(),
            blocked: self.blocked_by.is_some(),
            valid_until: self.valid_until,
            max_downloads: self.max_downloads,
            locked_country: self.locked.as_ref().and_then(|s| s.country),
            country_lock: self.country_lock,
        }
    }

    /// Decides one download attempt at `now` (see [`authorize`]).
    pub fn authorize(
        &self,
        order: OrderStatus,
        attempt: &Attempt,
        now: Timestamp,
    ) -> Result<Permit, Denied> {
        authorize(&self.facts(order), attempt, now)
    }

    /// Why the grant as a whole cannot download at `now`, if it cannot: the rules for a
    /// download of nothing, and then whether every one of `files` (id, size) is used up.
    pub fn refusal(
        &self,
        order: OrderStatus,
        files: &[(FileId, u64)],
        now: Timestamp,
    ) -> Option<Denied> {
        let probe = Attempt {
            country: None,
            file_size: 0,
            counted_bytes: 0,
            requested_bytes: 0,
        };
        if let Err(denied) = self.authorize(order, &probe, now) {
            return Some(denied);
        }
        self.exhausted(files).then_some(Denied::LimitReached {
            max_downloads: self.max_downloads,
        })
    }

    /// The grant's state at `now`; `files` are the product's files (id, size).
    pub fn state(&self, order: OrderStatus, files: &[(FileId, u64)], now: Timestamp) -> GrantState {
        // A revoked grant stays revoked whatever its order does next.
        if self.revoked_at.is_some() {
            return GrantState::Revoked;
        }
        GrantState::of_refusal(self.refusal(order, files, now).as_ref())
    }

    /// Whether the grant's links may be renewed and mailed: its order is confirmed, it is
    /// not revoked and its window is open. (A blocked or used-up grant still counts: its
    /// buyer should reach the seller through the page the link opens.)
    pub fn is_live(&self, order: OrderStatus, now: Timestamp) -> bool {
        order.allows_downloads() && self.revoked_at.is_none() && !self.is_expired(now)
    }

    /// Whether the download window ended before `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.valid_until.is_some_and(|until| now > until)
    }

    // ---- the ledger ----

    /// Bytes of `file` counted against the grant.
    pub fn counted(&self, file: FileId) -> u64 {
        self.ledger
            .iter()
            .find(|l| l.file == file)
            .map_or(0, |l| l.delivered.saturating_add(l.reserved))
    }

    /// Charges `bytes` of `file` (when a download starts).
    pub fn charge(&mut self, file: FileId, bytes: u64) {
        let entry = self.entry(file);
        entry.delivered = entry.delivered.saturating_add(bytes);
    }

    /// Gives back `unsent` bytes of `file` that a cut-off download did not send.
    pub fn settle(&mut self, file: FileId, unsent: u64) {
        if let Some(entry) = self.ledger.iter_mut().find(|l| l.file == file) {
            entry.delivered = entry.delivered.saturating_sub(unsent);
        }
    }

    /// "Downloads used" of a file as people read it: counted bytes ÷ size (1.4 of 3).
    pub fn used(&self, file: FileId, size: u64) -> f64 {
        if size == 0 {
            0.0
        } else {
            self.counted(file) as f64 / size as f64
        }
    }

    /// Downloads of a file left, `None` when unlimited; never negative.
    pub fn left(&self, file: FileId, size: u64) -> Option<f64> {
        byte_budget(self.max_downloads, size)
            .map(|_| (f64::from(self.max_downloads) - self.used(file, size)).max(0.0))
    }

    /// Whether every file (id, size) has used all its downloads. Compared in bytes, so no
    /// rounding decides it; an empty file is never used up, and a product with no files
    /// neither.
    pub fn exhausted(&self, files: &[(FileId, u64)]) -> bool {
        !files.is_empty()
            && files.iter().all(|&(file, size)| {
                size > 0
                    && byte_budget(self.max_downloads, size)
                        .is_some_and(|budget| self.counted(file) >= budget)
            })
    }

    fn entry(&mut self, file: FileId) -> &mut FileLedger {
        if let Some(i) = self.ledger.iter().position(|l| l.file == file) {
            return &mut self.ledger[i];
        }
        self.ledger.push(FileLedger {
            file,
            delivered: 0,
            reserved: 0,
        });
        self.ledger.last_mut().expect("just pushed")
    }

    // ---- what a download does to the grant ----

    /// Records an allowed download: charges its bytes and locks the first country.
    pub fn record_download(&mut self, file: FileId, permit: &Permit, from: Sighting) {
        self.charge(file, permit.reserve);
        if permit.lock_country.is_some() {
            self.locked = Some(from);
        }
    }

    /// Records a refusal; a second country blocks the grant at once, and the attempt is
    /// kept beside the first. Returns whether the grant changed.
    pub fn record_refusal(&mut self, denied: &Denied, from: Sighting) -> bool {
        if matches!(denied, Denied::CountryChanged { .. }) {
            self.blocked_by = Some(from);
            return true;
        }
        false
    }

    // ---- the desk's actions ----

    /// A fresh start: the window runs `window` from `now` (`None`: no end, for a product
    /// without a time limit, which a reset must not give one), the ledger is empty, lock and
    /// block are cleared.
    pub fn reset(&mut self, window: Option<Duration>, now: Timestamp) {
        self.valid_until = window.map(|w| now.plus(w));
        self.reset_counts();
        self.locked = None;
        self.blocked_by = None;
    }

    /// Every file's downloads start again from zero; the window, lock and block stay.
    pub fn reset_counts(&mut self) {
        self.ledger.clear();
    }

    /// `extra` more downloads of each file, on top of the budget the grant has. A grant
    /// with unlimited downloads has nothing to add to.
    pub fn add_downloads(&mut self, extra: u32) -> Result<(), GrantActionError> {
        if self.max_downloads == 0 {
            return Err(GrantActionError::Unlimited);
        }
        self.max_downloads = self.max_downloads.saturating_add(extra);
        Ok(())
    }

    /// Lifts the block and clears the lock; the window and the counts stay.
    pub fn unblock(&mut self) -> Result<(), GrantActionError> {
        if self.blocked_by.is_none() {
            return Err(GrantActionError::NotBlocked);
        }
        self.blocked_by = None;
        self.locked = None;
        Ok(())
    }

    /// Ends the window now.
    pub fn expire(&mut self, now: Timestamp) {
        self.valid_until = Some(now.minus(Duration::from_millis(1)));
    }

    /// Replaces the password: the old link stops working but still finds the grant in the
    /// desk (up to [`KEPT_REPLACED_PASSWORDS`] old ones). Counts, window and lock stay.
    pub fn rotate(&mut self, new_digest: [u8; 32]) {
        let old = std::mem::replace(&mut self.password_digest, new_digest);
        self.replaced_digests.push(old);
        let extra = self
            .replaced_digests
            .len()
            .saturating_sub(KEPT_REPLACED_PASSWORDS);
        self.replaced_digests.drain(..extra);
    }

    /// Moves the grant to another product with that product's rules: the counts start
    /// again for its files, the window, the password and the country lock stay.
    pub fn exchange(&mut self, product: ProductId, rules: GrantRules) {
        self.product_id = product;
        self.max_downloads = rules.max_downloads;
        self.country_lock = rules.country_lock;
        self.ledger.clear();
    }

    /// Starts the grant's window at `now`, keeping its length: an order paid days after it
    /// was placed (a bank transfer that clears, an e-check) gives the buyer the whole window
    /// from the payment. Only for a grant that has not downloaded yet (its order was never
    /// confirmed); one with no end stays without.
    pub fn start_window(&mut self, now: Timestamp) {
        if now <= self.issued_at {
            return;
        }
        if let Some(end) = self.valid_until {
            self.valid_until = Some(now.plus(end.since(self.issued_at)));
        }
        self.issued_at = now;
    }

    /// Revokes the grant (a refund, an exchange away); the first revocation's time stays.
    pub fn revoke(&mut self, now: Timestamp) {
        self.revoked_at.get_or_insert(now);
    }
}

/// The end of a window of `days` from `now`; `None` for 0 (unlimited).
pub fn window_end(days: u32, now: Timestamp) -> Option<Timestamp> {
    (days > 0).then(|| now.plus(Duration::from_secs(u64::from(days) * 86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FILE: FileId = FileId::new(1);
    const OTHER: FileId = FileId::new(2);

    fn t(day: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + day * 86_400_000)
    }

    #[test]
    fn a_window_starts_again_when_the_order_is_paid() {
        let mut g = grant(3);
        g.valid_until = window_end(10, t(0));
        g.start_window(t(5));
        assert_eq!((g.issued_at, g.valid_until), (t(5), Some(t(15))));
        g.start_window(t(4));
        assert_eq!(g.valid_until, Some(t(15)), "never earlier");
        let mut unlimited = grant(3);
        unlimited.valid_until = None;
        unlimited.start_window(t(5));
        assert_eq!(unlimited.valid_until, None);
    }
    fn grant(max: u32) -> Grant {
        Grant::issue(
            OrderId::parse("4033421").unwrap(),
            ProductId::parse("ebook").unwrap(),
            GrantRules {
                download_days: 31,
                max_downloads: max,
                country_lock: true,
            },
            [1; 32],
            t(0),
        )
    }
    fn seen(country: &str) -> Sighting {
        Sighting {
            at: t(1),
            ip: IpAddr::from([8, 8, 8, 8]),
            country: CountryCode::parse(country),
        }
    }

    #[test]
    fn each_state_has_its_cause() {
        let files = [(FILE, 100)];
        let g = grant(2);
        let state = |g: &Grant, order| g.state(order, &files, t(1));
        assert_eq!(state(&g, OrderStatus::Confirmed), GrantState::Active);
        assert_eq!(state(&g, OrderStatus::Pending), GrantState::Pending);
        assert_eq!(state(&g, OrderStatus::OnHold), GrantState::OnHold);
        assert_eq!(state(&g, OrderStatus::Cancelled), GrantState::Cancelled);
        assert_eq!(state(&g, OrderStatus::Refunded), GrantState::Revoked);
        let mut blocked = g.clone();
        blocked.blocked_by = Some(seen("GB"));
        assert_eq!(state(&blocked, OrderStatus::Confirmed), GrantState::Blocked);
        assert_eq!(
            g.state(OrderStatus::Confirmed, &files, t(32)),
            GrantState::Expired
        );
        let mut used = g.clone();
        used.charge(FILE, 200);
        assert_eq!(state(&used, OrderStatus::Confirmed), GrantState::Exhausted);
        let mut revoked = g.clone();
        revoked.revoke(t(1));
        assert_eq!(state(&revoked, OrderStatus::OnHold), GrantState::Revoked);
    }

    #[test]
    fn a_grant_is_exhausted_only_when_every_file_is() {
        let mut g = grant(1);
        let files = [(FILE, 100), (OTHER, 50)];
        g.charge(FILE, 100);
        assert!(!g.exhausted(&files));
        g.charge(OTHER, 49);
        assert!(!g.exhausted(&files), "one byte short");
        g.charge(OTHER, 1);
        assert!(g.exhausted(&files));
        assert!(!g.exhausted(&[]), "no files: nothing to use up");
        assert!(!g.exhausted(&[(FILE, 0)]), "an empty file is never used up");
        let unlimited = grant(0);
        assert!(!unlimited.exhausted(&files));
        assert_eq!(unlimited.left(FILE, 100), None);
    }

    #[test]
    fn settling_gives_back_what_was_not_sent() {
        let mut g = grant(3);
        g.charge(FILE, 100);
        g.charge(FILE, 100);
        g.settle(FILE, 60);
        assert_eq!(g.counted(FILE), 140);
        assert!((g.used(FILE, 100) - 1.4).abs() < 1e-12);
        assert_eq!(g.left(FILE, 100), Some(3.0 - 1.4));
        g.settle(FILE, 1_000);
        assert_eq!(g.counted(FILE), 0, "never below zero");
        g.settle(OTHER, 5);
        assert_eq!(g.ledger.len(), 1, "settling an unused file adds nothing");
    }

    #[test]
    fn desk_actions() {
        let mut g = grant(1);
        g.charge(FILE, 100);
        g.locked = Some(seen("US"));
        assert_eq!(g.unblock(), Err(GrantActionError::NotBlocked));
        g.blocked_by = Some(seen("GB"));
        g.unblock().unwrap();
        assert_eq!((g.locked.clone(), g.blocked_by.clone()), (None, None));
        assert_eq!(g.counted(FILE), 100, "unblock keeps the counts");
        g.expire(t(5));
        assert!(g.is_expired(t(5)));
        assert!(!g.is_live(OrderStatus::Confirmed, t(5)));
        g.reset(Some(Duration::from_secs(31 * 86_400)), t(40));
        assert_eq!(g.valid_until, Some(t(71)));
        assert_eq!(g.counted(FILE), 0);
        assert!(g.is_live(OrderStatus::Confirmed, t(40)));
        assert!(!g.is_live(OrderStatus::OnHold, t(40)));
        g.expire(t(50));
        g.reset(None, t(60));
        assert_eq!(
            g.valid_until, None,
            "a product without a time limit stays without one"
        );
        assert!(g.is_live(OrderStatus::Confirmed, t(6000)));
    }

    #[test]
    fn more_downloads_and_a_count_only_reset() {
        let mut g = grant(1);
        g.charge(FILE, 100);
        let files = [(FILE, 100)];
        assert_eq!(
            g.state(OrderStatus::Confirmed, &files, t(1)),
            GrantState::Exhausted
        );
        g.add_downloads(2).unwrap();
        assert_eq!(g.max_downloads, 3);
        assert_eq!(g.left(FILE, 100), Some(2.0));
        g.charge(FILE, 200);
        assert_eq!(
            g.state(OrderStatus::Confirmed, &files, t(1)),
            GrantState::Exhausted
        );
        g.locked = Some(seen("US"));
        let until = g.valid_until;
        g.reset_counts();
        assert_eq!(
            (g.counted(FILE), g.valid_until, g.locked.is_some()),
            (0, until, true)
        );
        assert_eq!(
            g.state(OrderStatus::Confirmed, &files, t(1)),
            GrantState::Active
        );
        let mut unlimited = grant(0);
        assert_eq!(unlimited.add_downloads(1), Err(GrantActionError::Unlimited));
        assert_eq!(unlimited.max_downloads, 0);
    }

    #[test]
    fn a_second_country_blocks_and_the_first_locks() {
        let mut g = grant(3);
        let attempt = |country| Attempt {
            country: CountryCode::parse(country),
            file_size: 100,
            counted_bytes: 0,
            requested_bytes: 100,
        };
        let permit = g
            .authorize(OrderStatus::Confirmed, &attempt("US"), t(1))
            .unwrap();
        g.record_download(FILE, &permit, seen("US"));
        assert_eq!(g.locked, Some(seen("US")));
        let denied = g
            .authorize(OrderStatus::Confirmed, &attempt("GB"), t(1))
            .unwrap_err();
        assert!(g.record_refusal(&denied, seen("GB")));
        assert_eq!(
            g.state(OrderStatus::Confirmed, &[(FILE, 100)], t(1)),
            GrantState::Blocked
        );
        assert!(!g.record_refusal(&Denied::Revoked, seen("GB")));
    }

    proptest! {
        /// Charges and settlements in any order never make the ledger disagree with the
        /// plain sum, and the state follows the ledger.
        #[test]
        fn the_ledger_is_the_sum_of_its_charges(
            ops in proptest::collection::vec((any::<bool>(), 0u64..300, any::<bool>()), 0..40),
            max in 0u32..4,
        ) {
            let mut g = grant(max);
            let mut model = [0u64; 2];
            for (charge, bytes, other) in ops {
                let (file, slot) = if other { (OTHER, 1) } else { (FILE, 0) };
                if charge {
                    g.charge(file, bytes);
                    model[slot] += bytes;
                } else {
                    g.settle(file, bytes);
                    model[slot] = model[slot].saturating_sub(bytes);
                }
            }
            prop_assert_eq!(g.counted(FILE), model[0]);
            prop_assert_eq!(g.counted(OTHER), model[1]);
            let files = [(FILE, 100), (OTHER, 100)];
            let used_up = max > 0 && model.iter().all(|&b| b >= u64::from(max) * 100);
            prop_assert_eq!(g.exhausted(&files), used_up);
            let state = g.state(OrderStatus::Confirmed, &files, t(1));
            prop_assert_eq!(state == GrantState::Exhausted, used_up);
            if let Some(left) = g.left(FILE, 100) {
                prop_assert!(left >= 0.0);
            }
        }

        /// Rotation keeps the newest replaced passwords, never more than the cap, and
        /// never the current one.
        #[test]
        fn rotation_keeps_a_bounded_history(rotations in 0usize..60) {
            let mut g = grant(1);
            for i in 0..rotations {
                g.rotate([u8::try_from(i % 250).unwrap() + 2; 32]);
            }
            prop_assert!(g.replaced_digests.len() <= KEPT_REPLACED_PASSWORDS);
            prop_assert_eq!(g.replaced_digests.len(), rotations.min(KEPT_REPLACED_PASSWORDS));
            prop_assert!(!g.replaced_digests.contains(&g.password_digest));
            if rotations >= 2 {
                // The newest replaced digest is the one before the current password.
                let before = u8::try_from((rotations - 2) % 250).unwrap() + 2;
                prop_assert_eq!(g.replaced_digests.last(), Some(&[before; 32]));
            }
        }

        /// A reset always leaves an active grant (for a confirmed, unrevoked order).
        #[test]
        fn a_reset_grant_is_active(charged in 0u64..1000, blocked in any::<bool>(), day in 0i64..400) {
            let mut g = grant(2);
            g.charge(FILE, charged);
            if blocked {
                g.blocked_by = Some(seen("GB"));
            }
            g.reset(Some(Duration::from_secs(31 * 86_400)), t(day));
            prop_assert_eq!(g.state(OrderStatus::Confirmed, &[(FILE, 100)], t(day)), GrantState::Active);
        }
    }
}
