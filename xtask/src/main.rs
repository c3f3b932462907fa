//! `cargo xtask`: the project's build and test driver, so that a fresh machine needs only
//! cargo. It installs what is missing (rustup targets, musl-tools, Chromium, npm packages),
//! builds the WASM bundle with the exact wasm-bindgen version of Cargo.lock (linked in, no
//! download), and builds the one static `dropgate` binary with the site embedded.
//!
//! ```text
//! cargo xtask build            build target/dropgate
//! cargo xtask run [ARGS…]      build, then `dropgate serve ARGS…` (default data dir ./dropgate-data)
//! cargo xtask test             fmt, clippy, unit + HTTP tests, build, browser tests
//! cargo xtask bench            build, then the benchmarks in bench/ (against nginx)
//! ```

mod build;
mod setup;
mod test;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(error) = run() {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).context("enter the workspace root")?;
    match command.as_str() {
        "build" => build::all(&root, None).map(|_| ()),
        "run" => {
            let binary = build::all(&root, None)?;
            let mut serve = vec!["serve".to_owned()];
            // `cargo xtask run -- --bind …` (the README's form) passes a `--` first.
            serve.extend(rest.into_iter().skip_while(|arg| arg == "--"));
            let status = Command::new(&binary)
                .args(&serve)
                .status()
                .context("start dropgate")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        "test" => test::all(&root),
        "bench" => {
            build::all(&root, None)?;
            run_cmd(Command::new("python3").arg("bench/startup.py"))?;
            run_cmd(Command::new("cargo").args([
                "run",
                "--release",
                "--package",
                "backend",
                "--example",
                "order_list",
            ]))?;
            run_cmd(Command::new("python3").arg("bench/mail.py"))?;
            run_cmd(Command::new("python3").arg("bench/payments.py"))?;
            run_cmd(Command::new("python3").arg("bench/records.py"))?;
            run_cmd(Command::new("python3").arg("bench/storage.py"))?;
            run_cmd(
                Command::new("python3")
                    .arg("bench/downloads.py")
                    .args(&rest),
            )
        }
        "" | "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <build | run [dropgate serve flags…] | test | bench>");
            Ok(())
        }
        other => bail!("unknown command '{other}'; try `cargo xtask help`"),
    }
}

/// The directory holding the workspace Cargo.toml.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lives in the workspace")
        .to_path_buf()
}

/// Runs a command, failing with its command line if it does not succeed.
fn run_cmd(cmd: &mut Command) -> Result<()> {
    run_cmd_to(cmd, None)
}

/// Runs a command; with `log`, its output is appended to that file instead of shown (for a
/// build running beside other steps, so the two outputs do not interleave).
fn run_cmd_to(cmd: &mut Command, log: Option<&Path>) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    if let Some(log) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        cmd.stdout(file.try_clone()?).stderr(file);
    }
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Whether a program is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
