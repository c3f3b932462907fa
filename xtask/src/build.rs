//! The build: WASM bundle → wasm-bindgen → wasm-opt → gzip → static server binary.

use crate::{run_cmd_to, setup};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MUSL: &str = "x86_64-unknown-linux-musl";

/// Cargo's target dir for the release build (the WASM bundle and the server binary), apart
/// from the dev and test artefacts in `target/`: the two share no compiled crate (other
/// targets and profiles), and apart, `cargo xtask test` builds the release while clippy and
/// the tests run, without one cargo waiting for the other's lock on the directory.
const SHIP_DIR: &str = "target/ship";

/// Builds everything and returns the path of the finished binary (`target/dropgate`).
/// With `log`, the compilers' output goes to that file.
pub fn all(root: &Path, log: Option<&Path>) -> Result<PathBuf> {
    let started = Instant::now();
    setup::build_tools()?;
    setup::geoip_db(root)?;
    let site = root.join("target/site");
    bundle(root, &site, log)?;
    let binary = server(root, &site, log)?;
    eprintln!(
        "xtask: built {} in {:.0?}",
        binary.display(),
        started.elapsed()
    );
    Ok(binary)
}

/// The wasm-opt flags, also part of what decides whether the bundle must be made again.
const WASM_OPT_FLAGS: [&str; 9] = [
    "-Oz",
    "--strip-debug",
    "--strip-producers",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// The files of the bundle, under `site/pkg/`.
const BUNDLE_FILES: [&str; 4] = [
    "dropgate_bg.wasm",
    "dropgate_bg.wasm.gz",
    "dropgate.js",
    "dropgate.js.gz",
];

/// Compiles the frontend to wasm32 and writes `site/pkg/dropgate{.js,_bg.wasm}` (+ `.gz`).
///
/// wasm-bindgen and `wasm-opt -Oz` take about a minute and a half, so they run only when
/// their input changed: the SHA-256 of the compiled WASM and the recipe (tool versions and
/// flags) are kept beside the bundle, and a bundle made from the same input is left as it
/// is. Files are replaced only when their bytes differ, so an unchanged bundle keeps its
/// modification times and the server binary that embeds it is not rebuilt.
fn bundle(root: &Path, site: &Path, log: Option<&Path>) -> Result<()> {
    let mut cargo = Command::new("cargo");
    cargo
        .args([
            "build",
            "--package",
            "frontend",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ])
        .env("CARGO_TARGET_DIR", root.join(SHIP_DIR));
    if log.is_some() {
        // Under `cargo xtask test` (the logged build), clippy lints the workspace's crates
        // as this build compiles them, as `cargo xtask test` lints the rest in its test
        // build: the hydrate entry point and `app`'s browser-only code are checked for the
        // target they run on, with no `cargo clippy` pass of their own (2 CPU-minutes of
        // CI). The bundle it makes was measured the same size (+0.02 %).
        lint_with_clippy(&mut cargo);
    }
    run_cmd_to(&mut cargo, log)?;
    let input = root
        .join(SHIP_DIR)
        .join("wasm32-unknown-unknown/wasm-release/frontend.wasm");
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    let wasm_opt = setup::wasm_opt(root);
    let recipe = format!(
        "input sha256 {}\nwasm-bindgen {}\nwasm-opt {}\n",
        sha256_hex(&std::fs::read(&input).with_context(|| format!("read {}", input.display()))?),
        wasm_bindgen_version(),
        wasm_opt
            .as_ref()
            .map_or_else(|| "none".to_owned(), |_| WASM_OPT_FLAGS.join(" ")),
    );
    let stamp = pkg.join(".bundle-recipe");
    let complete = BUNDLE_FILES.iter().all(|f| pkg.join(f).is_file());
    if complete && std::fs::read_to_string(&stamp).is_ok_and(|s| s == recipe) {
        eprintln!("xtask: WASM bundle is up to date (same input, same recipe)");
        return Ok(());
    }

    // Made in a staging folder, then moved in file by file where the bytes differ.
    let staging = root.join("target/site-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    eprintln!("xtask: wasm-bindgen {}", input.display());
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .out_name(app_bundle_name())
        .web(true)?
        .typescript(false)
        .generate(&staging)
        .context("wasm-bindgen")?;
    let wasm = staging.join("dropgate_bg.wasm");
    if let Some(wasm_opt) = wasm_opt {
        let optimised = staging.join("dropgate_bg.opt.wasm");
        run_cmd_to(
            Command::new(wasm_opt)
                .args(WASM_OPT_FLAGS)
                .arg(&wasm)
                .arg("-o")
                .arg(&optimised),
            log,
        )?;
        std::fs::rename(&optimised, &wasm)?;
    }
    for file in ["dropgate_bg.wasm", "dropgate.js"] {
        gzip(&staging.join(file))?;
    }
    for file in BUNDLE_FILES {
        replace_if_different(&staging.join(file), &pkg.join(file))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::write(&stamp, recipe)?;
    let raw = std::fs::metadata(pkg.join("dropgate_bg.wasm"))?.len();
    let gz = std::fs::metadata(pkg.join("dropgate_bg.wasm.gz"))?.len();
    eprintln!(
        "xtask: WASM bundle {} KiB raw, {} KiB gzip",
        raw / 1024,
        gz / 1024
    );
    Ok(())
}

/// The wasm-bindgen version linked into this xtask (the same as the crate's, by Cargo.toml).
fn wasm_bindgen_version() -> &'static str {
    // One version for both, pinned with `=` in the workspace manifest.
    const MANIFEST: &str = include_str!("../../Cargo.toml");
    MANIFEST
        .lines()
        .find(|l| l.starts_with("wasm-bindgen-cli-support"))
        .unwrap_or("unknown")
}

/// Moves `from` to `to` unless `to` already holds the same bytes (then `from` is dropped
/// and `to` keeps its modification time).
fn replace_if_different(from: &Path, to: &Path) -> Result<()> {
    let new = std::fs::read(from).with_context(|| format!("read {}", from.display()))?;
    if std::fs::read(to).is_ok_and(|old| old == new) {
        return Ok(());
    }
    std::fs::rename(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .with_context(|| format!("write {}", to.display()))
}

/// SHA-256 of `data`, in hex.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The bundle name the server's hydration script asks for.
fn app_bundle_name() -> &'static str {
    "dropgate"
}

fn gzip(file: &Path) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let mut out = PathBuf::from(file).into_os_string();
    out.push(".gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&data)?;
    std::fs::write(&out, encoder.finish()?)?;
    Ok(())
}

/// Builds the static server binary with the site embedded and copies it to target/dropgate.
fn server(root: &Path, site: &Path, log: Option<&Path>) -> Result<PathBuf> {
    run_cmd_to(
        Command::new("cargo")
            .args([
                "build",
                "--release",
                "--package",
                "server",
                "--bin",
                "dropgate",
                "--target",
                MUSL,
            ])
            // Under `cargo xtask test` (the logged build), a per-crate timing report in
            // target/ship/cargo-timings/, to see what CI's time is made of.
            .args(log.map(|_| "--timings"))
            .env("CARGO_TARGET_DIR", root.join(SHIP_DIR))
            .env("DROPGATE_SITE_DIR", site),
        log,
    )?;
    let built = root.join(SHIP_DIR).join(format!("{MUSL}/release/dropgate"));
    let out = root.join("target/dropgate");
    let same = std::fs::read(&built).ok() == std::fs::read(&out).ok();
    if !same {
        std::fs::copy(&built, &out).with_context(|| format!("copy {}", built.display()))?;
    }
    eprintln!(
        "xtask: binary {} MiB",
        std::fs::metadata(&out)?.len() / (1024 * 1024)
    );
    Ok(out)
}

/// Makes `cargo` compile the workspace's own crates with clippy-driver, which is rustc with
/// clippy's lints, denying every warning (`cargo clippy -- -D warnings` passes its flags to
/// the driver the same way).
pub fn lint_with_clippy(cargo: &mut Command) {
    cargo.env("RUSTC_WORKSPACE_WRAPPER", "clippy-driver").env(
        "CLIPPY_ARGS",
        "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
    );
}
