//! Data at rest (issue 16): the database, its -wal and -shm, and backups are the owner's alone,
//! and the systemd unit install.sh writes is sandboxed and valid.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::{BIN, Env};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_database_its_journal_and_backups_are_readable_by_their_owner_only() {
    let env = Env::new();
    // A database file someone made readable by everyone, as a copy with the default umask would.
    std::fs::write(env.db(), b"").unwrap();
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = env.cli(&["user", "create", "--email", "ann@example.com"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("was readable by others (mode 644)"),
        "{stderr}"
    );
    assert_eq!(mode(&env.db()), 0o600);

    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    assert_eq!(server.get("/api/me", &token).status, 200);
    for suffix in ["-wal", "-shm"] {
        let path = format!("{}{suffix}", env.db().display());
        assert_eq!(mode(Path::new(&path)), 0o600, "{path}");
    }
    let backup = env.dir.path().join("copy.db");
    env.cli_ok(&["backup", backup.to_str().unwrap()]);
    assert_eq!(mode(&backup), 0o600);
    drop(server);
    // Opening a database that is already private says nothing.
    let output = env.cli(&["user", "list"]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("readable by others"));
}

/// The unit `install.sh --systemd` writes (`--print-unit` prints it), for `prefix`.
fn unit(prefix: &Path) -> String {
    let installer = concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh");
    let output = Command::new("bash")
        .arg(installer)
        .arg("--print-unit")
        .env("PREFIX", prefix)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_systemd_unit_is_sandboxed() {
    let prefix = tempfile::tempdir().unwrap();
    let unit = unit(prefix.path());
    for directive in [
        "UMask=0077",
        "CapabilityBoundingSet=\n",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
    ] {
        assert!(
            unit.contains(directive),
            "{directive:?} missing from\n{unit}"
        );
    }
}

#[test]
#[ignore = "needs systemd-analyze (Debian: systemd); `.ci/run` runs it (cargo test -- --ignored)"]
fn the_systemd_unit_verifies() {
    crate::util::require_tools(&[("systemd-analyze", "systemd")], "the unit check");
    let prefix = tempfile::tempdir().unwrap();
    // `verify` checks that ExecStart's program exists: put the binary where the unit says.
    std::fs::create_dir_all(prefix.path().join("bin")).unwrap();
    std::fs::copy(BIN, prefix.path().join("bin/ktasks")).unwrap();
    let path = prefix.path().join("ktasks.service");
    std::fs::write(&path, unit(prefix.path())).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(
        verified.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}
