//! The build: WASM bundle → wasm-bindgen → wasm-opt → gzip → static server binary.

use crate::{run_cmd, setup};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MUSL: &str = "x86_64-unknown-linux-musl";

/// Builds everything and returns the path of the finished binary (`target/dropgate`).
pub fn all(root: &Path) -> Result<PathBuf> {
    let started = Instant::now();
    setup::build_tools()?;
    setup::geoip_db(root)?;
    let site = root.join("target/site");
    bundle(root, &site)?;
    let binary = server(root, &site)?;
    eprintln!(
        "xtask: built {} in {:.0?}",
        binary.display(),
        started.elapsed()
    );
    Ok(binary)
}

/// Compiles the frontend to wasm32 and writes `site/pkg/dropgate{.js,_bg.wasm}` (+ `.gz`).
fn bundle(root: &Path, site: &Path) -> Result<()> {
    run_cmd(Command::new("cargo").args([
        "build",
        "--package",
        "frontend",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]))?;
    let input = root.join("target/wasm32-unknown-unknown/wasm-release/frontend.wasm");
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    eprintln!("xtask: wasm-bindgen {}", input.display());
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .out_name(app_bundle_name())
        .web(true)?
        .typescript(false)
        .generate(&pkg)
        .context("wasm-bindgen")?;
    let wasm = pkg.join("dropgate_bg.wasm");
    if let Some(wasm_opt) = setup::wasm_opt(root) {
        let optimised = pkg.join("dropgate_bg.opt.wasm");
        run_cmd(
            Command::new(wasm_opt)
                .args([
                    "-Oz",
                    "--strip-debug",
                    "--strip-producers",
                    "--enable-bulk-memory",
                    "--enable-nontrapping-float-to-int",
                    "--enable-sign-ext",
                    "--enable-mutable-globals",
                    "--enable-reference-types",
                    "--enable-multivalue",
                ])
                .arg(&wasm)
                .arg("-o")
                .arg(&optimised),
        )?;
        std::fs::rename(&optimised, &wasm)?;
    }
    for file in ["dropgate_bg.wasm", "dropgate.js"] {
        gzip(&pkg.join(file))?;
    }
    let raw = std::fs::metadata(&wasm)?.len();
    let gz = std::fs::metadata(pkg.join("dropgate_bg.wasm.gz"))?.len();
    eprintln!(
        "xtask: WASM bundle {} KiB raw, {} KiB gzip",
        raw / 1024,
        gz / 1024
    );
    Ok(())
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
fn server(root: &Path, site: &Path) -> Result<PathBuf> {
    run_cmd(
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
            .env("DROPGATE_SITE_DIR", site),
    )?;
    let built = root.join(format!("target/{MUSL}/release/dropgate"));
    let out = root.join("target/dropgate");
    std::fs::copy(&built, &out).with_context(|| format!("copy {}", built.display()))?;
    eprintln!(
        "xtask: binary {} MiB",
        std::fs::metadata(&out)?.len() / (1024 * 1024)
    );
    Ok(out)
}
