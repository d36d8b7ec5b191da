//! The gateway's own secrets: the key-hashing pepper and the bootstrap admin token.
//!
//! Each comes from an environment variable when set, otherwise from a file in the data
//! directory, generated with mode 0600 on first start. Neither is ever logged.

use crate::keys::random_base62;
use std::io::Write;
use std::path::Path;

/// The pepper for key hashes: `PORTCULLIS_KEY_PEPPER`, or `<data dir>/key-pepper`.
pub fn key_pepper(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    load_or_create(data_dir, "PORTCULLIS_KEY_PEPPER", "key-pepper", || {
        random_base62(64)
    })
    .map(String::into_bytes)
}

/// The bootstrap admin token: `PORTCULLIS_ADMIN_TOKEN`, or `<data dir>/admin-token`.
pub fn admin_token(data_dir: &Path) -> std::io::Result<String> {
    load_or_create(data_dir, "PORTCULLIS_ADMIN_TOKEN", "admin-token", || {
        format!("pcadmin_{}", random_base62(40))
    })
}

fn load_or_create(
    data_dir: &Path,
    variable: &str,
    file: &str,
    generate: impl FnOnce() -> String,
) -> std::io::Result<String> {
    if let Ok(value) = std::env::var(variable) {
        if !value.trim().is_empty() {
            return Ok(value.trim().to_owned());
        }
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let value = generate();
    // Written whole to a private temporary file, then linked into place: the link fails if
    // the name exists, so replicas starting together on one data directory agree on the
    // first value, and none ever reads a file another has created but not yet written.
    let temporary = data_dir.join(format!(
        ".{file}.{}.{}",
        std::process::id(),
        random_base62(8)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut f| {
        f.write_all(value.as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, &path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(value),
        // Another replica on the same data directory won the race: use its value.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_starting_together_agree_on_one_complete_value() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let values: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| key_pepper(dir.path()).unwrap()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| String::from_utf8(h.join().unwrap()).unwrap())
                    .collect()
            });
            assert!(values[0].len() >= 64, "{values:?}");
            assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
            let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(leftovers, 1, "temporary files left behind");
        }
    }

    #[test]
    fn generated_once_then_reused_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = admin_token(dir.path()).unwrap();
        assert!(first.starts_with("pcadmin_"));
        assert_eq!(admin_token(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin-token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
