//! Staff password hashing with argon2id (the crate defaults: 19 MiB, t = 2, p = 1, an OWASP
//! recommended setting). Hashing is deliberately slow, so it runs through [`off_runtime`]:
//! on a pool of [`HASHING_THREADS`] threads of its own (rayon-core), never on tokio's
//! blocking pool, so that a burst of sign-in or setup attempts waits for its turn there and
//! cannot take a thread from the store (and with it the downloads). Every argon2
//! computation is counted for `/metrics`.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use domain::NewPassword;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many argon2 computations may run at once (each takes 19 MiB and a core for tens of
/// milliseconds): the threads of the hashing pool. More wait in its queue.
pub const HASHING_THREADS: usize = 2;

static COMPUTATIONS: AtomicU64 = AtomicU64::new(0);

/// The hashing pool, started on first use.
fn pool() -> Result<&'static rayon_core::ThreadPool, String> {
    static POOL: OnceLock<Result<rayon_core::ThreadPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(HASHING_THREADS)
            .thread_name(|i| format!("dropgate-hash-{i}"))
            .build()
            .map_err(|e| format!("could not start the password hashing threads: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Runs password work (`hash`, `verify`) on the hashing pool and waits for it without
/// holding a runtime thread. `Err` if the work panicked or the pool could not start.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (done, result) = tokio::sync::oneshot::channel();
    pool()?.spawn(move || {
        // rayon aborts the process on a panic in a spawned job: catch it here and hand it
        // to the caller as an error instead.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .map_err(|_| "password hashing panicked".to_owned());
        let _ = done.send(outcome);
    });
    result
        .await
        .map_err(|_| "the password hashing pool dropped a job".to_owned())?
}

/// How many argon2 computations (hashes and checks) this process has made.
pub fn computations() -> u64 {
    COMPUTATIONS.load(Ordering::Relaxed)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &NewPassword) -> String {
    COMPUTATIONS.fetch_add(1, Ordering::Relaxed);
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

/// Checks a candidate against a stored PHC string; a malformed hash never matches.
pub fn verify(phc: &str, candidate: &str) -> bool {
    COMPUTATIONS.fetch_add(1, Ordering::Relaxed);
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the same time as a real check when the email is unknown, so that response time
/// does not tell an attacker which addresses have accounts.
pub fn verify_against_dummy(candidate: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash(&NewPassword::parse("dummy password that never matches").expect("valid policy"))
    });
    let _ = verify(phc, candidate);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let pw = NewPassword::parse("correct horse battery staple").unwrap();
        let a = hash(&pw);
        let b = hash(&pw);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify(&a, "correct horse battery staple"));
        assert!(!verify(&a, "correct horse battery stapl"));
        assert!(!verify("not a hash", "anything"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_runs_on_its_own_threads_no_more_than_the_pool_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..12).map(|_| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(off_runtime(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                std::thread::current().name().map(str::to_owned)
            }))
        });
        for job in jobs.collect::<Vec<_>>() {
            let thread = job.await.unwrap().unwrap().unwrap_or_default();
            assert!(thread.starts_with("dropgate-hash-"), "ran on {thread}");
        }
        assert_eq!(most.load(Ordering::SeqCst), HASHING_THREADS);
    }

    #[tokio::test]
    async fn a_panic_in_hashing_is_an_error_not_an_abort() {
        let failed = off_runtime(|| -> u8 { panic!("on purpose") }).await;
        assert!(failed.is_err());
        assert_eq!(off_runtime(|| 7).await.unwrap(), 7, "the pool still works");
    }
}
