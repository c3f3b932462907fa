//! Installs what the build and the tests need when it is missing, so the README commands
//! work on a fresh machine. Each step checks first and is silent when nothing is needed.

use crate::{on_path, run_cmd};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// Targets and components for the build.
pub fn build_tools() -> Result<()> {
    let installed = String::from_utf8(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .context("run rustup")?
            .stdout,
    )?;
    for target in ["wasm32-unknown-unknown", "x86_64-unknown-linux-musl"] {
        if !installed.lines().any(|l| l.trim() == target) {
            run_cmd(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    if !on_path("musl-gcc") {
        apt_install(&["musl-tools"])?;
    }
    Ok(())
}

/// rustfmt and clippy for the checks.
pub fn lint_tools() -> Result<()> {
    let ok = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok(&["fmt", "--version"]) || !ok(&["clippy", "--version"]) {
        run_cmd(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    }
    Ok(())
}

/// npm's binaryen for wasm-opt, in target/tools (Debian's binaryen 108 breaks hydration).
/// Returns the wasm-opt path, or None when npm is unavailable (the build then skips it).
pub fn wasm_opt(root: &Path) -> Option<std::path::PathBuf> {
    let tools = root.join("target/tools");
    let bin = tools.join("node_modules/.bin/wasm-opt");
    if bin.is_file() {
        return Some(bin);
    }
    if !on_path("npm") {
        eprintln!("xtask: npm not found: building without wasm-opt (larger WASM)");
        return None;
    }
    std::fs::create_dir_all(&tools).ok()?;
    let installed = run_cmd(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&tools)
            .arg("binaryen@132.0.0"),
    );
    match installed {
        Ok(()) if bin.is_file() => Some(bin),
        _ => {
            eprintln!(
                "xtask: could not install npm binaryen: building without wasm-opt (larger WASM)"
            );
            None
        }
    }
}

/// The GeoIP database pinned in `server/geoip.pin`, unpacked into target/tools/geoip where
/// `server/build.rs` embeds it (after checking its SHA-256). Without npm the build goes on
/// without it and the binary says so at start.
pub fn geoip_db(root: &Path) -> Result<()> {
    let pin = std::fs::read_to_string(root.join("server/geoip.pin")).context("read geoip.pin")?;
    let field = |name: &str| {
        pin.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("geoip.pin has no `{name}`"))
    };
    let dir = root.join("target/tools/geoip");
    let version_file = dir.join("version");
    let wanted = format!("{}@{}", field("package")?, field("version")?);
    let db = dir.join("package").join(field("file")?);
    if db.is_file() && std::fs::read_to_string(&version_file).is_ok_and(|v| v == wanted) {
        return xz_beside(&db);
    }
    if !on_path("npm") {
        eprintln!("xtask: npm not found: building without the embedded GeoIP database");
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let packed = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&dir)
        .arg(&wanted)
        .output()
        .context("run npm pack")?;
    let tarball = String::from_utf8_lossy(&packed.stdout).trim().to_owned();
    if !packed.status.success() || tarball.is_empty() {
        eprintln!(
            "xtask: could not fetch {wanted}: building without the embedded GeoIP database\n{}",
            String::from_utf8_lossy(&packed.stderr)
        );
        return Ok(());
    }
    run_cmd(
        Command::new("tar")
            .args(["xzf", &tarball])
            .current_dir(&dir),
    )?;
    std::fs::remove_file(dir.join(&tarball))?;
    std::fs::write(version_file, wanted)?;
    xz_beside(&db)
}

/// Writes `<db>.xz`, which `server/build.rs` embeds instead of the database itself: the
/// 8.2 MB database is 2.1 MB through `xz -9e` (4.1 MB through `gzip -9`). Single-threaded,
/// so the bytes depend on the database (and xz's version) alone. Without xz, build.rs
/// compresses it with liblzma.
fn xz_beside(db: &Path) -> Result<()> {
    let mut xz = db.as_os_str().to_owned();
    xz.push(".xz");
    let xz = Path::new(&xz);
    if xz.is_file() || !on_path("xz") {
        return Ok(());
    }
    let packed = Command::new("xz")
        .args(["-9e", "-T1", "-c"])
        .arg(db)
        .output()
        .context("run xz")?;
    if packed.status.success() {
        // Written under another name first: a cut-off run leaves no half file behind.
        let partial = xz.with_extension("xz.partial");
        std::fs::write(&partial, &packed.stdout)?;
        std::fs::rename(&partial, xz)?;
    }
    Ok(())
}

/// s3s-fs, the S3-compatible server the storage tests start (it checks SigV4 signatures,
/// so expiry and tampering of presigned URLs are really tested). Built in its own target
/// dir, which is removed afterwards to keep the disk free.
pub fn s3_server(root: &Path) -> Result<()> {
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        std::path::PathBuf::from,
    );
    if home.join("bin/s3s-fs").is_file() {
        return Ok(());
    }
    let build_dir = root.join("target/tools/s3s-build");
    run_cmd(
        Command::new("cargo")
            .args([
                "install",
                "s3s-fs@0.14.1",
                "--features",
                "binary",
                "--locked",
            ])
            .env("CARGO_TARGET_DIR", &build_dir),
    )?;
    let _ = std::fs::remove_dir_all(build_dir);
    Ok(())
}

/// The Python packages the tests run: aiosmtpd, the SMTP server the mail tests start
/// (`server/tests/support/smtp_sink.py`), and standardwebhooks, the third-party verifier of
/// outgoing webhooks and signer of the generic incoming one
/// (`server/tests/support/webhook_receiver.py`).
pub fn smtp_server() -> Result<()> {
    const PACKAGES: [(&str, &str); 2] = [
        ("aiosmtpd", "aiosmtpd==1.4.6"),
        ("standardwebhooks", "standardwebhooks==1.1.0"),
    ];
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(module, _)| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, requirement)| *requirement)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("python3") {
        apt_install(&["python3", "python3-pip"])?;
    }
    run_cmd(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(missing),
    )
}

/// Chromium and the end-to-end test's npm packages.
pub fn browser_tools(root: &Path) -> Result<()> {
    if !Path::new("/usr/bin/chromium").is_file() {
        apt_install(&["chromium"])?;
    }
    let e2e = root.join("end2end");
    let installed = ["playwright-core", "axe-core"]
        .iter()
        .all(|p| e2e.join("node_modules").join(p).is_dir());
    if !installed {
        if !on_path("npm") {
            apt_install(&["nodejs", "npm"])?;
        }
        run_cmd(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&e2e),
        )?;
    }
    Ok(())
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !on_path("apt-get") {
        bail!(
            "please install {} (no apt-get on this machine)",
            packages.join(" ")
        );
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let sudo = |args: &[&str]| {
        let mut cmd = if root {
            Command::new(args[0])
        } else {
            Command::new("sudo")
        };
        if root {
            cmd.args(&args[1..]);
        } else {
            cmd.args(args);
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run_cmd(&mut sudo(&["apt-get", "update", "-qq"]))?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run_cmd(&mut sudo(&install))
}
