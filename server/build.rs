//! Embeds the site into the binary: the WASM bundle built by `cargo xtask build` (from
//! `$DROPGATE_SITE_DIR`, default `target/site`) plus the CSS and icon from `style/`.
//! Without a bundle the server still builds (for unit tests and clippy); its pages then
//! render but do not hydrate, and it says so at start.
//!
//! It also embeds the GeoIP country database pinned in `geoip.pin` (from
//! `$DROPGATE_GEOIP_MMDB`, default `target/tools/geoip/package/<file>`), xz-compressed, after
//! checking its SHA-256: a different file fails the build. Without the file the server builds with no
//! embedded database and says so at start.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Files larger than this are embedded only gzipped when a gzip copy exists.
const LARGE_ASSET: usize = 256 * 1024;

struct Asset {
    url: &'static str,
    file: PathBuf,
    content_type: &'static str,
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest
        .parent()
        .expect("server/ is inside the workspace")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=DROPGATE_SITE_DIR");
    let site = std::env::var_os("DROPGATE_SITE_DIR")
        .map_or_else(|| root.join("target/site"), PathBuf::from);
    let pkg = site.join("pkg");

    let mut assets = vec![
        Asset {
            url: "/pkg/dropgate.css",
            file: root.join("style/main.css"),
            content_type: "text/css; charset=utf-8",
        },
        Asset {
            url: "/favicon.svg",
            file: root.join("style/favicon.svg"),
            content_type: "image/svg+xml",
        },
    ];
    let bundle = [
        (
            "/pkg/dropgate.js",
            pkg.join("dropgate.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            "/pkg/dropgate_bg.wasm",
            pkg.join("dropgate_bg.wasm"),
            "application/wasm",
        ),
    ];
    let has_bundle = bundle.iter().all(|(_, f, _)| f.is_file());
    println!(
        "cargo:rerun-if-changed={}",
        pkg.join("dropgate_bg.wasm").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        pkg.join("dropgate.js").display()
    );
    if has_bundle {
        for (url, file, content_type) in bundle {
            assets.push(Asset {
                url,
                file,
                content_type,
            });
        }
    } else if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!(
            "cargo:warning=no WASM bundle in {}: run `cargo xtask build` for a complete binary",
            pkg.display()
        );
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"));
    let mut code = String::from(
        "/// Files served from memory: (url, content type, body, gzip body, etag).\npub static ASSETS: [EmbeddedAsset; ASSET_COUNT] = [\n",
    );
    for asset in &assets {
        println!("cargo:rerun-if-changed={}", asset.file.display());
        let body = std::fs::read(&asset.file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", asset.file.display()));
        let gzip = gzip_expression(asset, &body, &site, &out_dir);
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        // A large file with a gzip copy is embedded only gzipped (the WASM bundle: 2.7 MB
        // of 3.7 MB): every browser takes gzip, and the rare client that does not gets it
        // decompressed once in memory.
        let body_expression = if body.len() > LARGE_ASSET && gzip != "None" {
            "Body::FromGzip(std::sync::OnceLock::new())".to_owned()
        } else {
            format!(
                "Body::Embedded(include_bytes!({:?}))",
                asset.file.display().to_string()
            )
        };
        let _ = writeln!(
            code,
            "    EmbeddedAsset {{ url: {:?}, content_type: {:?}, body: {body_expression}, gzip: {gzip}, etag: \"\\\"{:016x}-{:x}\\\"\" }},",
            asset.url,
            asset.content_type,
            hasher.finish(),
            body.len()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(code, "const ASSET_COUNT: usize = {};", assets.len());
    let _ = writeln!(
        code,
        "/// Whether the WASM bundle was embedded.\npub const HAS_WASM_BUNDLE: bool = {has_bundle};"
    );
    std::fs::write(out_dir.join("assets.rs"), code).expect("write generated assets.rs");
    embed_geoip(&root, &manifest, &out_dir);
}

/// Writes `geoip.rs`: `EMBEDDED_GEOIP: Option<EmbeddedGeoip>` from the pinned database.
fn embed_geoip(root: &Path, manifest: &Path, out_dir: &Path) {
    let pin_file = manifest.join("geoip.pin");
    println!("cargo:rerun-if-changed={}", pin_file.display());
    println!("cargo:rerun-if-env-changed=DROPGATE_GEOIP_MMDB");
    let pin = std::fs::read_to_string(&pin_file).expect("server/geoip.pin is in the repository");
    let field = |name: &str| {
        pin.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map_or_else(
                || panic!("geoip.pin has no `{name}`"),
                |(_, v)| v.trim().to_owned(),
            )
    };
    let db = std::env::var_os("DROPGATE_GEOIP_MMDB").map_or_else(
        || root.join("target/tools/geoip/package").join(field("file")),
        PathBuf::from,
    );
    println!("cargo:rerun-if-changed={}", db.display());
    let beside = {
        let mut name = db.as_os_str().to_owned();
        name.push(".xz");
        PathBuf::from(name)
    };
    println!("cargo:rerun-if-changed={}", beside.display());
    let code = if let Some(xz) = packed_database(&db, &beside, &field("sha256"), out_dir) {
        format!(
            "Some(EmbeddedGeoip {{ package: {:?}, version: {:?}, xz: include_bytes!({:?}) }})",
            field("package"),
            field("version"),
            xz.display().to_string()
        )
    } else {
        if std::env::var("PROFILE").as_deref() == Ok("release") {
            println!(
                "cargo:warning=no GeoIP database at {}: run `cargo xtask build` to embed DB-IP Lite",
                db.display()
            );
        }
        "None".to_owned()
    };
    std::fs::write(
        out_dir.join("geoip.rs"),
        format!("/// The database embedded at build time, if any.\npub static EMBEDDED_GEOIP: Option<EmbeddedGeoip> = {code};\n"),
    )
    .expect("write generated geoip.rs");
}

/// The pinned database xz-compressed: the `.xz` beside it (made by the xtask with
/// `xz -9e`) when it unpacks to the pinned bytes, else the database compressed here. `None`
/// when there is no database. A database (or `.xz`) whose SHA-256 differs from the pin fails
/// the build.
fn packed_database(db: &Path, beside: &Path, pinned: &str, out_dir: &Path) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    use std::io::Read as _;
    if let Ok(xz) = std::fs::read(beside) {
        let mut unpacked = Vec::new();
        let read = liblzma::read::XzDecoder::new(xz.as_slice()).read_to_end(&mut unpacked);
        if read.is_ok() && hex(&Sha256::digest(&unpacked)) == pinned {
            return Some(beside.to_path_buf());
        }
        println!(
            "cargo:warning={} does not unpack to the pinned database: compressing the database here",
            beside.display()
        );
    }
    let bytes = std::fs::read(db).ok()?;
    let actual = hex(&Sha256::digest(&bytes));
    assert!(
        actual == pinned,
        "{} has SHA-256 {actual}, but geoip.pin expects {pinned}: refusing to embed it",
        db.display(),
    );
    let out = out_dir.join("geoip.mmdb.xz");
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 9);
    encoder.write_all(&bytes).expect("xz in memory");
    std::fs::write(&out, encoder.finish().expect("xz in memory")).expect("write geoip.mmdb.xz");
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The Rust expression for an asset's gzip body: the `.gz` the xtask wrote beside a bundle
/// file, or one compressed here for text sources (so a stale `.gz` can never be served).
fn gzip_expression(asset: &Asset, body: &[u8], site: &Path, out_dir: &Path) -> String {
    let gz = gz_path(&asset.file);
    if gz.is_file() && asset.file.starts_with(site) {
        println!("cargo:rerun-if-changed={}", gz.display());
        return format!("Some(include_bytes!({:?}))", gz.display().to_string());
    }
    if !(asset.content_type.starts_with("text/") || asset.content_type.starts_with("image/svg")) {
        return "None".to_owned();
    }
    let out = out_dir.join(format!(
        "{}.gz",
        asset.url.trim_start_matches('/').replace('/', "_")
    ));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).expect("gzip in memory");
    std::fs::write(&out, encoder.finish().expect("gzip in memory")).expect("write gzip asset");
    format!("Some(include_bytes!({:?}))", out.display().to_string())
}

fn gz_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}
