//! The commands besides `serve`: staff accounts and API tokens, run against the data dir.

use crate::cli::{AdminCommand, StoreArgs, TokenCommand};
use crate::config::{Config, ConfigError};
use crate::startup::{self, Application};
use backend::services::{AccessConfig, Actor};
use backend::{AccessService, Store, StoreError};
use domain::{ApiTokenId, Email, NewPassword};
use std::io::{BufRead, IsTerminal};

/// A command's failure: bad input (exit 2) or a failure while doing it (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl From<ConfigError> for CommandError {
    fn from(e: ConfigError) -> Self {
        Self::Usage(e.0)
    }
}

impl From<backend::ServiceError> for CommandError {
    fn from(e: backend::ServiceError) -> Self {
        match e {
            backend::ServiceError::Invalid { message, .. } => Self::Usage(message),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// How often the watchdog checks that the runtimes still run tasks, and how long it waits.
const WATCHDOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const WATCHDOG_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// `dropgate serve`.
pub async fn serve(config: Config) -> Result<(), CommandError> {
    crate::telemetry::init(config.log_format);
    let app = Application::build(config.clone())
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if !crate::http::assets::HAS_WASM_BUNDLE {
        tracing::warn!(
            "this binary was built without the admin WASM bundle: pages render but are not interactive; build with `cargo xtask build`"
        );
    }
    if config.smtp.is_none() {
        tracing::info!(
            "SMTP is not configured: no mail will be sent until --smtp-host and --smtp-from are set"
        );
    }
    if config.geoip_db.is_none() {
        tracing::info!("no GeoIP database given (--geoip-db)");
    }
    if let Some(link) = app.setup_link() {
        tracing::info!("no admin exists yet");
        // Printed plainly as well, so the link is easy to copy from any log format.
        println!("\nCreate the first admin account by opening this one-time link:\n\n    {link}\n");
    }
    // A server whose runtimes stop running tasks exits, for its supervisor to restart it.
    let main_runtime = tokio::runtime::Handle::current();
    let render_runtimes = app.render_runtimes();
    crate::watchdog::spawn(
        move || {
            let mut runtimes = vec![main_runtime.clone()];
            runtimes.extend(render_runtimes());
            runtimes
        },
        WATCHDOG_EVERY,
        WATCHDOG_PATIENCE,
        crate::watchdog::exit_on_stall,
    )
    .map_err(|e| CommandError::Failed(format!("cannot start the runtime watchdog: {e}")))?;
    // Last line of start-up: from here on requests are answered.
    tracing::info!(address = %app.local_addr(), public_url = app.public_url(), data_dir = %config.data_dir.display(), "Dropgate is listening");
    app.run_until(startup::shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

fn open_access(args: &StoreArgs) -> Result<AccessService, CommandError> {
    let data_dir = crate::config::resolve_data_dir(args)?;
    let config = Config::for_data_dir(&data_dir);
    crate::startup::create_dirs(&config).map_err(|e| CommandError::Failed(e.to_string()))?;
    match Store::open(&config.database_path()) {
        Ok(store) => Ok(AccessService::new(store, AccessConfig::default())),
        Err(StoreError::AlreadyOpen { path }) => Err(CommandError::Failed(format!(
            "{path} is in use by a running Dropgate server: stop it, run this command, then start it again"
        ))),
        Err(e) => Err(CommandError::Failed(e.to_string())),
    }
}

/// Reads a new password: prompted twice without echo on a terminal, one line from stdin otherwise.
fn read_new_password() -> Result<NewPassword, CommandError> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")
            .map_err(|e| CommandError::Failed(e.to_string()))?;
        let second = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| CommandError::Failed(e.to_string()))?;
        if first != second {
            return Err(CommandError::Usage(
                "the two passwords are not the same".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CommandError::Failed(e.to_string()))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    NewPassword::parse(&password).map_err(|e| CommandError::Usage(format!("password: {e}")))
}

/// `dropgate admin …`.
pub async fn admin(action: AdminCommand) -> Result<(), CommandError> {
    match action {
        AdminCommand::Create { store, email, name } => {
            let email =
                Email::parse(&email).map_err(|e| CommandError::Usage(format!("email: {e}")))?;
            let access = open_access(&store)?;
            let password = read_new_password()?;
            let id = access
                .create_admin(
                    email.clone(),
                    name,
                    password,
                    Actor::System,
                    backend::clock::now(),
                )
                .await?;
            println!("Created admin {email} (id {id}).");
        }
        AdminCommand::ResetPassword { store, email } => {
            let email =
                Email::parse(&email).map_err(|e| CommandError::Usage(format!("email: {e}")))?;
            let access = open_access(&store)?;
            let password = read_new_password()?;
            access
                .reset_password(email.clone(), password, backend::clock::now())
                .await?;
            println!("New password set for {email}; all of its sessions were signed out.");
        }
    }
    Ok(())
}

/// `dropgate token …`.
pub async fn token(action: TokenCommand) -> Result<(), CommandError> {
    match action {
        TokenCommand::Create { store, name } => {
            let access = open_access(&store)?;
            let (id, secret) = access
                .create_api_token(&name, Actor::System, backend::clock::now())
                .await?;
            eprintln!("Created API token {id} ({name}). Copy it now: it is shown only once.");
            println!("{secret}");
        }
        TokenCommand::List { store } => {
            let access = open_access(&store)?;
            let tokens = access.access_overview().await?.api_tokens;
            if tokens.is_empty() {
                println!("No API tokens.");
            }
            for t in tokens {
                let state = t
                    .revoked_at
                    .map_or_else(|| "active".to_owned(), |r| format!("revoked {}", r.human()));
                let used = t.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |u| format!("last used {}", u.human()),
                );
                println!(
                    "{:>4}  {:<30}  created {}  {used}  {state}",
                    t.id,
                    t.name,
                    t.created_at.human()
                );
            }
        }
        TokenCommand::Revoke { store, id } => {
            let access = open_access(&store)?;
            access
                .revoke_api_token(ApiTokenId::new(id), Actor::System, backend::clock::now())
                .await?;
            println!("Revoked API token {id}.");
        }
    }
    Ok(())
}
