//! Rotating JSON-lines files: one directory (mode 0700), files (mode 0600) named by the time
//! they were opened so that names sort in time order, a new file when the current one reaches
//! its size or age, and files older than the retention removed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// When files rotate and how long they are kept.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub max_file_bytes: u64,
    pub max_file_age: Duration,
    pub retention: Duration,
}

/// One stream of lines (`requests`, `security`) in a directory.
pub struct RotatingFile {
    dir: PathBuf,
    stem: &'static str,
    rotation: Rotation,
    current: Option<Open>,
}

struct Open {
    writer: BufWriter<File>,
    bytes: u64,
    opened: SystemTime,
}

/// `stem-YYYYMMDDTHHMMSS.ffffffZ.jsonl`: sortable, and says when the file began.
pub fn file_name(stem: &str, at: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{stem}-{}.jsonl", ts.strftime("%Y%m%dT%H%M%S.%6fZ"))
}

/// The files of one stream, oldest first.
pub fn list(dir: &Path, stem: &str) -> std::io::Result<Vec<PathBuf>> {
    let prefix = format!("{stem}-");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Creates `dir` (and its parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

impl RotatingFile {
    pub fn new(dir: PathBuf, stem: &'static str, rotation: Rotation) -> RotatingFile {
        RotatingFile {
            dir,
            stem,
            rotation,
            current: None,
        }
    }

    /// Writes one line (a newline is added).
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let now = SystemTime::now();
        let rotate = self.current.as_ref().is_some_and(|c| {
            c.bytes >= self.rotation.max_file_bytes
                || now.duration_since(c.opened).unwrap_or_default() >= self.rotation.max_file_age
        });
        if rotate {
            self.close()?;
            self.prune(now)?;
        }
        if self.current.is_none() {
            self.current = Some(self.open(now)?);
        }
        let current = self.current.as_mut().expect("opened above");
        current.writer.write_all(line)?;
        current.writer.write_all(b"\n")?;
        current.bytes += line.len() as u64 + 1;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.current {
            Some(c) => c.writer.flush(),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> std::io::Result<()> {
        if let Some(mut c) = self.current.take() {
            c.writer.flush()?;
        }
        Ok(())
    }

    fn open(&self, now: SystemTime) -> std::io::Result<Open> {
        create_private_dir(&self.dir)?;
        let mut name = file_name(self.stem, now);
        // Two files opened within a microsecond (tiny size limits) must not share a name.
        let mut n = 0;
        while self.dir.join(&name).exists() {
            n += 1;
            let at = now + Duration::from_micros(n);
            name = file_name(self.stem, at);
        }
        let mut options = OpenOptions::new();
        options.create_new(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(self.dir.join(name))?;
        Ok(Open {
            writer: BufWriter::with_capacity(64 * 1024, file),
            bytes: 0,
            opened: now,
        })
    }

    /// Removes this stream's files last written before the retention.
    pub fn prune(&self, now: SystemTime) -> std::io::Result<()> {
        let files = match list(&self.dir, self.stem) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for path in files {
            let modified = std::fs::metadata(&path)?.modified()?;
            if now.duration_since(modified).unwrap_or_default() > self.rotation.retention {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(bytes: u64) -> Rotation {
        Rotation {
            max_file_bytes: bytes,
            max_file_age: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
        }
    }

    #[test]
    fn files_rotate_by_size_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit");
        let mut f = RotatingFile::new(audit.clone(), "requests", rotation(100));
        for i in 0..10 {
            f.write_line(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(30)).as_bytes())
                .unwrap();
        }
        f.flush().unwrap();
        let files = list(&audit, "requests").unwrap();
        assert!(files.len() >= 4, "{files:?}");
        let mut lines = Vec::new();
        for path in &files {
            lines.extend(
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
        assert_eq!(lines.len(), 10);
        assert!(
            lines[9].starts_with("{\"n\":9"),
            "files sort in write order"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn files_past_retention_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::new(dir.path().to_owned(), "requests", rotation(10));
        f.write_line(b"{\"old\":true}").unwrap();
        f.write_line(b"{\"new\":true}").unwrap();
        f.flush().unwrap();
        assert_eq!(list(dir.path(), "requests").unwrap().len(), 2);
        // Two hours later, both are past the one-hour retention.
        f.prune(SystemTime::now() + Duration::from_secs(7200))
            .unwrap();
        assert_eq!(list(dir.path(), "requests").unwrap().len(), 0);
    }
}
