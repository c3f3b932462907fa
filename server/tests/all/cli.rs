//! The `dropgate` command line, run as a real process: bad input is one line and exit 2,
//! accounts and tokens are managed against a real data dir.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn dropgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dropgate"))
        .args(args)
        .env_remove("DROPGATE_DATA_DIR")
        .env_remove("DROPGATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dropgate");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_is_available_everywhere() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["admin", "create", "--help"],
        vec!["admin", "reset-password", "--help"],
        vec!["token", "create", "--help"],
        vec!["token", "list", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["import", "sales", "--help"],
        vec!["export", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
    ] {
        let out = dropgate(&args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
    assert!(text(&dropgate(&["serve", "--help"], None).stdout).contains("DROPGATE_PUBLIC_URL"));
}

#[test]
#[allow(clippy::too_many_lines)] // a table of cases, one per bad input
fn bad_flags_and_config_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "bind = \"127.0.0.1:0\"\nsmpt_host = \"typo\"\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--bogus"], "--bogus"),
        (
            vec!["serve", "--data-dir", data, "--backup-keep", "3"],
            "backup directory",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                data,
                "--backup-dir",
                data,
                "--backup-keep",
                "0",
            ],
            "backup keep",
        ),
        (vec!["import", "sales", "x.csv"], "--token"),
        (
            vec!["restore", "--data-dir", data, "no-such-backup.redb"],
            "not a file",
        ),
        (
            vec!["serve", "--data-dir", data, "--bind", "nonsense"],
            "bind",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                data,
                "--public-url",
                "downloads.example.com",
            ],
            "public url",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                data,
                "--trusted-proxy",
                "10.0.0.0/99",
            ],
            "trusted proxy",
        ),
        (
            vec!["serve", "--data-dir", data, "--storage-url", "ftp://x"],
            "storage url",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                data,
                "--smtp-host",
                "mail.example.com",
            ],
            "smtp from",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                data,
                "--geoip-db",
                "/no/such/file.mmdb",
            ],
            "geoip db",
        ),
        (
            vec!["serve", "--data-dir", data, "--log-format", "xml"],
            "xml",
        ),
        (
            vec!["serve", "--config", bad_toml.to_str().unwrap()],
            "line 2",
        ),
        (
            vec![
                "admin",
                "create",
                "--data-dir",
                data,
                "--email",
                "not-an-email",
            ],
            "email",
        ),
    ];
    for (args, needle) in cases {
        let out = dropgate(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn admin_accounts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = dropgate(
        &[
            "admin",
            "create",
            "--data-dir",
            data,
            "--email",
            "Ops@Example.com",
            "--name",
            "Ops",
        ],
        Some("correct horse battery staple\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Created admin ops@example.com"));

    let dup = dropgate(
        &[
            "admin",
            "create",
            "--data-dir",
            data,
            "--email",
            "ops@example.com",
        ],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(dup.status.code(), Some(2));
    assert!(text(&dup.stderr).contains("already exists"));

    let weak = dropgate(
        &[
            "admin",
            "reset-password",
            "--data-dir",
            data,
            "--email",
            "ops@example.com",
        ],
        Some("short\n"),
    );
    assert_eq!(weak.status.code(), Some(2));
    assert!(text(&weak.stderr).contains("at least 12 characters"));

    let reset = dropgate(
        &[
            "admin",
            "reset-password",
            "--data-dir",
            data,
            "--email",
            "ops@example.com",
        ],
        Some("another long passphrase\n"),
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));

    let missing = dropgate(
        &[
            "admin",
            "reset-password",
            "--data-dir",
            data,
            "--email",
            "nobody@example.com",
        ],
        Some("another long passphrase\n"),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no admin has the email"));
}

#[test]
fn api_tokens_are_shown_once_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = dropgate(
        &["token", "create", "--data-dir", data, "--name", "shop"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_owned();
    assert!(secret.starts_with("dg_") && secret.len() > 40, "{secret}");

    let list = text(&dropgate(&["token", "list", "--data-dir", data], None).stdout);
    assert!(list.contains("shop") && list.contains("active"), "{list}");
    assert!(!list.contains(&secret), "the secret is never listed");
    // Only a digest is stored: the secret does not appear in the database file.
    let db = std::fs::read(dir.path().join("dropgate.redb")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));

    assert!(
        dropgate(&["token", "revoke", "--data-dir", data, "1"], None)
            .status
            .success()
    );
    let list = text(&dropgate(&["token", "list", "--data-dir", data], None).stdout);
    assert!(list.contains("revoked"), "{list}");
    let again = dropgate(&["token", "revoke", "--data-dir", data, "1"], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already revoked"));
    let unknown = dropgate(&["token", "revoke", "--data-dir", data, "99"], None);
    assert!(text(&unknown.stderr).contains("no API token with id 99"));
}

#[test]
fn a_second_process_on_the_same_data_dir_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_dropgate"))
        .args(["serve", "--data-dir", data, "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server holds the database.
    let stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let listening = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        .any(|line| line.contains("Dropgate is listening"));
    assert!(listening, "the server started");
    let out = dropgate(&["token", "list", "--data-dir", data], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("in use by a running Dropgate server"),
        "{}",
        text(&out.stderr)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The data dir holds the password-hashing key, buyers' data and mails with working links:
/// it is the user's alone. A new one is created 0700 with 0600 files (the umask the service
/// manager gives does not matter); one an earlier version left open is tightened at start.
#[test]
fn data_at_rest_is_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let data = fresh.to_str().unwrap();
    let out = dropgate(
        &["token", "create", "--data-dir", data, "--name", "ci"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("dropgate.redb")), 0o600);
    assert_eq!(mode(&fresh.join("dropgate.redb.journal")), 0o600);
    assert_eq!(mode(&fresh.join("files")), 0o700);

    // As an earlier version left it: open to everyone.
    for (path, open) in [
        (fresh.clone(), 0o755),
        (fresh.join("dropgate.redb"), 0o644),
        (fresh.join("dropgate.redb.journal"), 0o644),
        (fresh.join("files"), 0o755),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
    }
    let out = dropgate(&["token", "list", "--data-dir", data], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("made readable by this user only"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("dropgate.redb")), 0o600);
    assert_eq!(mode(&fresh.join("dropgate.redb.journal")), 0o600);
    assert_eq!(mode(&fresh.join("files")), 0o700);
}
