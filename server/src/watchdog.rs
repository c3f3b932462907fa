//! A watchdog for the async runtimes: if a runtime stops running tasks, the process exits
//! so that its supervisor (systemd's `Restart=on-failure`, Docker's restart policy)
//! starts it again.
//!
//! Why: a server once wedged for good. Its two runtime workers each waited in `futex` for
//! the write side of a different `RwLock`: Leptos' reactive graph taking two locks in
//! opposite orders on two threads during server rendering (leptos#4673). With both
//! workers blocked nobody polls the I/O driver, so downloads, the admin and even SIGTERM
//! go unanswered — an outage until someone notices. That cause is removed (pages render
//! wholly on one thread each, see `http::render`, issue 15); the watchdog stays as the last
//! resort for whatever else might wedge a runtime, turning it into a restart measured in
//! milliseconds: every committed write survives (redb, quick-repair), and an in-flight
//! download stays charged, which errs in the seller's favour. A test run in which it fires
//! fails (the end-to-end harness and `server/tests/reload.rs` look for its message).
//!
//! It is a plain OS thread, so it keeps running when every runtime thread is stuck: every
//! `every` it spawns a task on each runtime that only answers, and waits `patience` for
//! the answers.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts the watchdog on its own thread. Every `every` it probes each runtime that
/// `runtimes` names (the main runtime first, then the page render threads); `on_stall`
/// runs once, with the time waited, if a probe did not run within `patience`. The thread
/// ends when the first runtime shuts down.
pub fn spawn(
    runtimes: impl Fn() -> Vec<tokio::runtime::Handle> + Send + 'static,
    every: Duration,
    patience: Duration,
    on_stall: impl FnOnce(Duration) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dropgate-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let probes: Vec<_> = runtimes()
                    .into_iter()
                    .map(|runtime| {
                        let (answer, answered) = mpsc::sync_channel::<()>(1);
                        runtime.spawn(async move {
                            let _ = answer.send(());
                        });
                        answered
                    })
                    .collect();
                let deadline = Instant::now() + patience;
                for (n, answered) in probes.iter().enumerate() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match answered.recv_timeout(left) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            on_stall(patience);
                            return;
                        }
                        // The probe was dropped unrun: that runtime is shutting down. When
                        // it is the main one, so is the server; otherwise it is a replaced
                        // render thread, and its successor is probed next time.
                        Err(mpsc::RecvTimeoutError::Disconnected) if n == 0 => return,
                        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
                    }
                }
            }
        })
}

/// What the binary does on a stall: say why, then exit with a failure status.
pub fn exit_on_stall(waited: Duration) {
    tracing::error!(
        ?waited,
        "the async runtime has not run a task in time (deadlocked); exiting so the supervisor restarts Dropgate"
    );
    eprintln!(
        "error: the async runtime has not run a task for {}s; exiting so the supervisor restarts Dropgate",
        waited.as_secs()
    );
    std::process::exit(70);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_that_runs_no_tasks_is_reported_once() {
        // A current-thread runtime runs tasks only inside `block_on`: never driven, it is
        // as stuck as a runtime whose workers are all blocked.
        let stuck = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (reported, report) = mpsc::channel();
        let started = Instant::now();
        let dog = spawn(
            {
                let stuck = stuck.handle().clone();
                move || vec![stuck.clone()]
            },
            Duration::from_millis(10),
            Duration::from_millis(200),
            move |waited| reported.send(waited).unwrap(),
        )
        .unwrap();
        let waited = report.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(waited, Duration::from_millis(200));
        assert!(started.elapsed() >= Duration::from_millis(200));
        dog.join().unwrap(); // reported once, then the thread ends
        assert!(report.try_recv().is_err());
    }

    #[test]
    fn a_healthy_runtime_is_left_alone_and_the_watchdog_ends_with_it() {
        let healthy = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (reported, report) = mpsc::channel::<Duration>();
        let dog = spawn(
            {
                let healthy = healthy.handle().clone();
                move || vec![healthy.clone()]
            },
            Duration::from_millis(5),
            Duration::from_millis(500),
            move |waited| reported.send(waited).unwrap(),
        )
        .unwrap();
        // Dozens of probes answered in this time.
        assert!(report.recv_timeout(Duration::from_millis(600)).is_err());
        drop(healthy);
        dog.join().unwrap();
        assert!(report.try_recv().is_err(), "no stall reported");
    }
}
