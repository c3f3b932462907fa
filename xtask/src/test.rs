//! The whole test suite, as CI runs it: formatting, clippy, unit and HTTP tests, and beside
//! them the release build; then the browser tests against the built binary.

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
    setup::build_tools()?;
    // The release build runs beside the checks and tests (its own target dir, so neither
    // cargo waits for the other): each fills the core the other leaves idle in its serial
    // stretches, and the tests mostly wait on sockets. Its output goes to a log, shown
    // when it fails.
    let log = root.join("target/release-build.log");
    let _ = std::fs::remove_file(&log);
    let release = std::thread::spawn({
        let (root, log) = (root.to_path_buf(), log.clone());
        move || build::all(&root, Some(&log))
    });
    run_cmd(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    // Clippy lints the workspace while the tests compile it, instead of in a `cargo clippy`
    // pass of its own: clippy-driver is rustc with the lints added, so as the workspace
    // wrapper it checks exactly what `cargo clippy --all-targets` checks (libraries, their
    // tests, binaries, integration tests, examples) in the same compile that builds the
    // tests. The separate pass type-checked every crate a second time and every dependency
    // once more: 4 of CI's 35 CPU-minutes (measured 2026-12-02).
    // The frontend (the hydrate entry point, and `app` with its browser-only code) is
    // linted by the release build's WASM step (see `build::bundle`).
    let mut tests = Command::new("cargo");
    tests.args(["test", "--workspace", "--exclude", "frontend", "--timings"]);
    build::lint_with_clippy(&mut tests);
    run_cmd(&mut tests)?;
    let binary = match release.join() {
        Ok(Ok(binary)) => binary,
        Ok(Err(error)) => {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = output.lines().collect();
            eprintln!("{}", lines[lines.len().saturating_sub(80)..].join("\n"));
            return Err(error.context(format!("the release build failed (log: {})", log.display())));
        }
        Err(_) => anyhow::bail!("the release build thread panicked"),
    };
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
