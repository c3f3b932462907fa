//! The whole test suite, as CI runs it: formatting, clippy, unit and HTTP tests, the
//! release build, then the browser tests against the built binary.

use crate::{build, run_cmd, setup};
use anyhow::Result;
use std::path::Path;
use std::process::Command;

pub fn all(root: &Path) -> Result<()> {
    setup::lint_tools()?;
    // Before the first compile, so every build embeds the same database (no rebuilds).
    setup::geoip_db(root)?;
    setup::s3_server(root)?;
    setup::smtp_server()?;
    run_cmd(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run_cmd(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_cmd(Command::new("cargo").args(["test", "--workspace", "--exclude", "frontend"]))?;
    let binary = build::all(root)?;
    setup::browser_tools(root)?;
    run_cmd(
        Command::new("node")
            // A test that hangs fails after 3 minutes instead of holding CI to its limit;
            // the servers' logs go to stderr so a failure shows what the server did.
            .args([
                "--test",
                "--test-concurrency=1",
                "--test-reporter=spec",
                "--test-timeout=180000",
            ])
            .arg("tests/")
            .current_dir(root.join("end2end"))
            .env("DROPGATE_BIN", &binary)
            .env("DROPGATE_E2E_LOG", "1"),
    )?;
    eprintln!("xtask: all tests passed");
    Ok(())
}
