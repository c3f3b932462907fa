//! The process's TLS crypto provider. rustls is built with ring only (aws-lc's C build was
//! minutes of every CI run), and reqwest asks rustls for the process default rather than
//! picking one itself, so ring is installed as that default before any client is built:
//! at start-up, and by each place that builds one (S3, payment providers, webhooks, the
//! record commands), so that library callers and tests are covered too.

use std::sync::Once;

/// Installs ring as the process's rustls provider; later calls do nothing.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only if another provider was installed first, which serves as well.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}
