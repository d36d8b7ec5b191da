//! Reading the trail back: the newest records that match a filter, or the records written
//! after a cursor (for `requests tail --follow`).

use super::files;
use crate::record::RequestRecord;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// Which records to return.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub key: Option<String>,
    pub model: Option<String>,
    /// The decision (`allowed`, `refused`, `served`) or an error code (`input_rejected`).
    pub decision: Option<String>,
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
}

impl Filter {
    pub fn matches(&self, r: &RequestRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !eq(&self.tenant, r.tenant()) || !eq(&self.key, r.key_id()) {
            return false;
        }
        if !eq(&self.model, r.model.as_deref().unwrap_or("")) {
            return false;
        }
        if let Some(d) = &self.decision {
            if *d != r.decision.action && Some(d.as_str()) != r.decision.code.as_deref() {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Ok(start) = r.start.parse::<jiff::Timestamp>() else {
                return false;
            };
            if self.since.is_some_and(|s| start < s) || self.until.is_some_and(|u| start > u) {
                return false;
            }
        }
        true
    }
}

/// A place in the trail: a file and a byte offset in it. Written `<file name>:<offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub file: String,
    pub offset: u64,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Cursor> {
        let (file, offset) = text.rsplit_once(':')?;
        // Only names the trail itself writes: a cursor never names a path.
        let valid = file.starts_with("requests-")
            && file.ends_with(".jsonl")
            && file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
        valid.then_some(Cursor {
            file: file.to_owned(),
            offset: offset.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

/// Records and where the trail ended when they were read.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<RequestRecord>,
    /// Pass back as `after` to get what is written next.
    pub cursor: Option<Cursor>,
}

/// Reads the complete records of `path` from `offset`, handing each to `each` until it says
/// stop; returns the offset after the last line read (a line still being written is left for
/// the next read, and so is every line after a stop).
fn read_from(
    path: &Path,
    offset: u64,
    mut each: impl FnMut(RequestRecord) -> std::ops::ControlFlow<()>,
) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut end = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(end);
        }
        end += n as u64;
        if let Ok(record) = serde_json::from_str::<RequestRecord>(&line) {
            if each(record).is_break() {
                return Ok(end);
            }
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

/// The newest `limit` records that match, newest first.
pub fn newest(dir: &Path, filter: &Filter, limit: usize) -> std::io::Result<Page> {
    let files = match files::list(dir, super::REQUESTS) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Page::default()),
        Err(e) => return Err(e),
    };
    let mut page = Page::default();
    // Files opened after `until` hold nothing older than it.
    let until_name = filter
        .until
        .map(|u| files::file_name(super::REQUESTS, std::time::SystemTime::from(u)));
    for (i, path) in files.iter().enumerate().rev() {
        let name = name_of(path);
        if until_name.as_ref().is_some_and(|u| name > *u) {
            continue;
        }
        let mut matched = Vec::new();
        let end = read_from(path, 0, |r| {
            if filter.matches(&r) {
                matched.push(r);
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if page.cursor.is_none() && i == files.len() - 1 {
            page.cursor = Some(Cursor {
                file: name.clone(),
                offset: end,
            });
        }
        for r in matched.into_iter().rev() {
            if page.records.len() == limit {
                return Ok(page);
            }
            page.records.push(r);
        }
        // A file opened before `since` ends the search: older ones end before it began.
        if let Some(since) = filter.since {
            let since_name = files::file_name(super::REQUESTS, std::time::SystemTime::from(since));
            if name < since_name {
                break;
            }
        }
    }
    if page.cursor.is_none() {
        page.cursor = files.last().map(|p| Cursor {
            file: name_of(p),
            offset: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        });
    }
    Ok(page)
}

/// Records written after `cursor` that match, oldest first, at most `limit`.
pub fn after(dir: &Path, cursor: &Cursor, filter: &Filter, limit: usize) -> std::io::Result<Page> {
    let files = match files::list(dir, super::REQUESTS) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Page::default()),
        Err(e) => return Err(e),
    };
    let mut page = Page {
        records: Vec::new(),
        cursor: Some(cursor.clone()),
    };
    for path in files {
        let name = name_of(&path);
        if name < cursor.file {
            continue;
        }
        let start = if name == cursor.file {
            cursor.offset
        } else {
            0
        };
        let mut full = false;
        let mut records = Vec::new();
        // Stops once `limit` matched: the cursor points after the last line returned, so
        // nothing is skipped.
        let offset = read_from(&path, start, |r| {
            if filter.matches(&r) {
                records.push(r);
                if page.records.len() + records.len() == limit {
                    full = true;
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        page.records.append(&mut records);
        page.cursor = Some(Cursor { file: name, offset });
        if full {
            break;
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::files::{RotatingFile, Rotation};
    use crate::record::Decision;
    use std::time::Duration;

    fn write(f: &mut RotatingFile, id: &str, tenant: &str, action: &str) {
        let r = RequestRecord {
            id: id.into(),
            start: jiff::Timestamp::now().to_string(),
            principal: Some(crate::record::PrincipalRecord {
                tenant: tenant.into(),
                ..Default::default()
            }),
            decision: Decision {
                action: action.into(),
                status: 200,
                code: None,
            },
            ..Default::default()
        };
        f.write_line(&serde_json::to_vec(&r).unwrap()).unwrap();
        f.flush().unwrap();
    }

    #[test]
    fn newest_first_across_files_and_following_from_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_file_bytes: 300,
            max_file_age: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
        };
        let mut f = RotatingFile::new(dir.path().to_owned(), "requests", rotation);
        for i in 0..8 {
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            write(&mut f, &format!("r{i}"), tenant, "allowed");
        }
        assert!(files::list(dir.path(), "requests").unwrap().len() > 1);
        let only_a = Filter {
            tenant: Some("a".into()),
            ..Default::default()
        };
        let page = newest(dir.path(), &only_a, 3).unwrap();
        let ids: Vec<_> = page.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r6", "r4", "r2"]);
        let cursor = newest(dir.path(), &Filter::default(), 1)
            .unwrap()
            .cursor
            .unwrap();
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor.clone()));
        for i in 8..12 {
            write(&mut f, &format!("r{i}"), "a", "refused");
        }
        let next = after(dir.path(), &cursor, &Filter::default(), 3).unwrap();
        let ids: Vec<_> = next.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r8", "r9", "r10"]);
        let rest = after(dir.path(), &next.cursor.unwrap(), &Filter::default(), 100).unwrap();
        let ids: Vec<_> = rest.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r11"]);
        let refused = Filter {
            decision: Some("refused".into()),
            ..Default::default()
        };
        assert_eq!(newest(dir.path(), &refused, 100).unwrap().records.len(), 4);
    }

    #[test]
    fn a_cursor_never_names_a_path() {
        assert!(Cursor::parse("../../etc/passwd:0").is_none());
        assert!(Cursor::parse("requests-/../x.jsonl:0").is_none());
        assert!(Cursor::parse("requests-20261204T170000.000000Z.jsonl:12").is_some());
    }
}
