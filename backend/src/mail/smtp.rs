//! SMTP sessions for the outbox worker: connect with Nagle's algorithm off, secure the
//! connection as configured (STARTTLS, implicit TLS or none), greet, authenticate, then send
//! any number of mails on the one session.
//!
//! Why not lettre's `AsyncSmtpTransport`: it leaves Nagle on and writes a message and its
//! closing "." line in two writes, so the second waited for the server's delayed ACK (40 ms
//! on Linux) on every mail, and it opens a connection per mail: 20 mails/s against a local
//! server. lettre's `AsyncSmtpConnection` over our own socket keeps lettre's SMTP code.

use crate::store::outbox::MailRecord;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    StartTls,
    /// TLS from the first byte, usually port 465.
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// Where and how to send mail.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The envelope and default `From` address.
    pub from: String,
}

impl SmtpSettings {
    /// The address part of `from` ("Shop <shop@example.com>" → "shop@example.com").
    pub fn from_address(&self) -> &str {
        self.from
            .rsplit_once('<')
            .map_or(self.from.as_str(), |(_, a)| a.trim_end_matches('>'))
            .trim()
    }
}

/// Written by hand so that the password never reaches a log or an error message.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("the SMTP from address {0:?} is not a valid address")]
    From(String),
    #[error("SMTP host {host}: {detail}")]
    Host { host: String, detail: String },
}

/// How a session is secured, prepared once from the settings.
#[derive(Clone)]
enum Security {
    None,
    /// STARTTLS after the greeting; refused if the server does not offer it.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Tls(TlsConnector, ServerName<'static>),
}

/// A configured SMTP sender: opens sessions and builds the messages.
#[derive(Clone)]
pub struct SmtpSender {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    from: Mailbox,
    description: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl SmtpSender {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| SmtpSetupError::From(settings.from.clone()))?;
        let host_error = |detail: String| SmtpSetupError::Host {
            host: settings.host.clone(),
            detail,
        };
        let security = match settings.security {
            SmtpSecurity::None => Security::None,
            SmtpSecurity::StartTls => Security::StartTls(
                TlsParameters::new(settings.host.clone()).map_err(|e| host_error(e.to_string()))?,
            ),
            SmtpSecurity::Tls => {
                let name = ServerName::try_from(settings.host.clone())
                    .map_err(|e| host_error(e.to_string()))?;
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| host_error(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                Security::Tls(TlsConnector::from(Arc::new(config)), name)
            }
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            _ => None,
        };
        Ok(Self {
            host: settings.host.clone(),
            port: settings.port,
            security,
            credentials,
            hello: ClientId::default(),
            from,
            description: format!(
                "SMTP {}:{} ({:?})",
                settings.host, settings.port, settings.security
            ),
        })
    }

    /// "SMTP host:port (security)", for logs and the admin.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Connects, secures, greets and authenticates. Every failure here is about the server
    /// or the settings, never about a mail, so the caller retries it later.
    pub async fn open(&self) -> Result<SmtpSession, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.description))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("cannot set up the connection to {}: {e}", self.description))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Tls(connector, name) => Box::new(TlsStream(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {} failed: {e}", self.description))?,
            )),
            Security::None | Security::StartTls(_) => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| error_text(&e))?;
        if let Security::StartTls(tls) = &self.security {
            connection
                .starttls(tls.clone(), &self.hello)
                .await
                .map_err(|e| format!("STARTTLS: {}", error_text(&e)))?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| format!("login refused: {}", error_text(&e)))?;
        }
        Ok(SmtpSession { connection })
    }

    /// The message exactly as it goes out for this record (same bytes on every attempt
    /// apart from what the transport adds).
    pub(crate) fn message(&self, mail: &MailRecord) -> Result<Message, String> {
        let from_address = if mail.from_email.is_empty() {
            self.from.email.clone()
        } else {
            mail.from_email
                .parse()
                .map_err(|e| format!("the sender address {:?}: {e}", mail.from_email))?
        };
        let from_name = Some(mail.from_name.clone()).filter(|n| !n.is_empty());
        let to_address = mail
            .to_email
            .parse()
            .map_err(|e| format!("the recipient address {:?}: {e}", mail.to_email))?;
        let to_name = Some(mail.to_name.clone()).filter(|n| !n.is_empty());
        let date = UNIX_EPOCH
            + Duration::from_millis(u64::try_from(mail.queued_at.unix_millis()).unwrap_or(0));
        let builder = Message::builder()
            .message_id(Some(mail.message_id.clone()))
            .date(
                date.max(UNIX_EPOCH)
                    .min(SystemTime::now() + Duration::from_secs(86_400)),
            )
            .from(Mailbox::new(from_name, from_address))
            .sender(self.from.clone())
            .to(Mailbox::new(to_name, to_address))
            .subject(mail.subject.clone());
        let body = if mail.html.is_empty() {
            MultiPart::mixed().singlepart(
                lettre::message::SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.text.clone()),
            )
        } else {
            MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone())
        };
        builder.multipart(body).map_err(|e| e.to_string())
    }
}

/// An open, greeted and authenticated SMTP session.
pub struct SmtpSession {
    connection: AsyncSmtpConnection,
}

impl SmtpSession {
    /// Sends one message (MAIL, RCPT, DATA) and returns the server's final answer.
    pub async fn send(
        &mut self,
        message: &Message,
    ) -> Result<Response, lettre::transport::smtp::Error> {
        self.connection
            .send(message.envelope(), &message.formatted())
            .await
    }

    /// Says goodbye; the answer does not matter any more.
    pub async fn quit(mut self) {
        let _ = self.connection.quit().await;
    }
}

/// lettre's words for an error, with every cause.
pub fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Implicit TLS over our socket, in the shape lettre's connection takes.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn the_password_is_not_in_debug_output() {
        let settings = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: Some("shop".into()),
            password: Some("hunter2-very-secret".into()),
            from: "shop@example.com".into(),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("smtp.example.com"),
            "{shown}"
        );
    }
}
