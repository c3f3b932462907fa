//! Prometheus metrics: request counts by method, route and status, and a latency histogram
//! by route. Route labels are the matched route pattern, never the raw path, and methods
//! are one of a fixed few (anything else counts as `other`), so the number of series stays
//! bounded whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What one route pattern has seen.
#[derive(Default)]
struct RouteStats {
    /// Requests by method and status; a route sees only a handful of pairs, so a short
    /// list beats a map and recording a known pair allocates nothing.
    requests: Vec<(&'static str, u16, u64)>,
    latency: Histogram,
}

/// The registry; one per application.
pub struct Metrics {
    started: Instant,
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            routes: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = if let Some(seen) = routes.get_mut(route) {
            seen
        } else {
            routes.entry(route.to_owned()).or_default()
        };
        match seen
            .requests
            .iter_mut()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            Some((_, _, count)) => *count += 1,
            None => seen.requests.push((method, status, 1)),
        }
        let seconds = elapsed.as_secs_f64();
        let histogram = &mut seen.latency;
        for (bucket, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, writes: &backend::store::WriteStats) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "dropgate_build_info",
            "gauge",
            "Version of the running binary.",
        );
        let _ = writeln!(
            out,
            "dropgate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "dropgate_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(
            out,
            "dropgate_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        header(
            &mut out,
            "dropgate_password_hashes_total",
            "counter",
            "Staff password hashes and checks (argon2) computed.",
        );
        let _ = writeln!(
            out,
            "dropgate_password_hashes_total {}",
            backend::auth::password::computations()
        );
        header(
            &mut out,
            "dropgate_http_requests_total",
            "counter",
            "HTTP requests answered.",
        );
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        for (route, stats) in routes.iter() {
            let route = escape(route);
            let mut requests = stats.requests.clone();
            requests.sort_unstable();
            for (method, status, count) in requests {
                let _ = writeln!(
                    out,
                    "dropgate_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}",
                );
            }
        }

        header(
            &mut out,
            "dropgate_http_request_duration_seconds",
            "histogram",
            "Time to answer a request (until the response head).",
        );
        for (route, stats) in routes.iter() {
            let route = escape(route);
            let h = &stats.latency;
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "dropgate_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "dropgate_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "dropgate_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "dropgate_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        drop(routes);
        render_write_stats(&mut out, writes);
        out
    }
}

/// The store's grouped-write counters: how well downloads share commits, and how often the
/// download journal is checkpointed.
fn render_write_stats(out: &mut String, w: &backend::store::WriteStats) {
    let counters = [
        (
            "dropgate_store_commits_total",
            "Commits of grouped writes (downloads and their settlements).",
            w.commits,
        ),
        (
            "dropgate_store_committed_jobs_total",
            "Grouped writes committed; divided by the commits, the mean batch.",
            w.jobs,
        ),
        (
            "dropgate_store_journaled_commits_total",
            "Commits made durable by the download journal rather than by redb.",
            w.journaled,
        ),
        (
            "dropgate_store_journal_checkpoints_total",
            "Durable redb commits that emptied the download journal.",
            w.checkpoints,
        ),
        (
            "dropgate_store_redb_commits_total",
            "Every redb commit, grouped or not (reads commit nothing).",
            w.redb_commits,
        ),
        (
            "dropgate_store_split_batches_total",
            "Batches rerun one job at a time because a job failed.",
            w.split_batches,
        ),
    ];
    for (name, help, value) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method as a label: the standard ones by name, any other (a client may send any
/// token as a method) as `other`, so made-up methods cannot grow the metrics.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, Duration::from_millis(3));
        m.record("GET", "/healthz", 200, Duration::from_millis(30));
        let writes = backend::store::WriteStats {
            commits: 4,
            jobs: 40,
            ..Default::default()
        };
        let text = m.render(&writes);
        assert!(text.contains("dropgate_store_commits_total 4\n"), "{text}");
        assert!(text.contains("dropgate_store_committed_jobs_total 40\n"));
        assert!(
            text.contains(
                "dropgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "dropgate_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "dropgate_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"
        ));
        assert!(
            text.contains("dropgate_http_request_duration_seconds_count{route=\"/healthz\"} 2")
        );
    }

    #[test]
    fn made_up_methods_share_one_series() {
        let m = Metrics::default();
        let writes = backend::store::WriteStats::default();
        m.record("GET", "unmatched", 404, Duration::from_millis(1));
        let before = m.render(&writes).len();
        for n in 0..1500 {
            m.record(
                &format!("BREW{n}"),
                "unmatched",
                405,
                Duration::from_millis(1),
            );
        }
        let text = m.render(&writes);
        assert!(
            text.contains(
                "dropgate_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 1500"
            ),
            "{text}"
        );
        assert!(!text.contains("BREW"));
        assert!(text.len() < before + 200, "{} -> {}", before, text.len());
    }
}
