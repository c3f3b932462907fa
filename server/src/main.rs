//! `dropgate`: parse the command line, run the command, map failures to exit codes
//! (2 for bad flags or configuration, 1 for a failure while running).

use clap::Parser;
use server::cli::{Cli, Command};
use server::commands::{self, CommandError};
use server::config::Config;
use server::records;
use std::process::ExitCode;

// musl's malloc takes a global lock on every allocation; with many connections that lock,
// not the work, bounded the download rate. mimalloc has per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One clear line, not a page of usage; a first line that ends in a colon
            // ("required arguments were not provided:") takes the line naming them.
            let rendered = error.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_owned();
            if first.ends_with(':')
                && let Some(what) = lines.next()
            {
                first.push(' ');
                first.push_str(what);
            }
            eprintln!("{first} (see dropgate --help)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // File reads and redb work run on blocking threads. Tokio's default (512) let 256
        // slow downloads grow 256 threads, each with its own stack and allocator heap
        // (~420 MiB resident in bench/downloads.py); reads from the page cache are short,
        // so a few dozen threads keep up and memory stays flat.
        .max_blocking_threads(32)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve(Config::from_args(&args)?).await,
            Command::Admin { action } => {
                server::telemetry::init_for_commands();
                commands::admin(action).await
            }
            Command::Token { action } => {
                server::telemetry::init_for_commands();
                commands::token(action).await
            }
            Command::Import { what } => match what {
                server::cli::ImportCommand::Sales(args) => records::import_sales(args).await,
            },
            Command::Export(args) => records::export(args).await,
            Command::Backup(args) => records::backup(args).await,
            Command::Storage {
                action: server::cli::StorageCommand::Migrate(args),
            } => {
                server::telemetry::init_for_commands();
                records::migrate_storage(&args).await
            }
            Command::Restore { store, file } => {
                server::telemetry::init_for_commands();
                records::restore(&store, &file)
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CommandError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
