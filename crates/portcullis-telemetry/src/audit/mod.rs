//! The audit trail: every request record (and every admin action) written as JSON lines to
//! rotating files, and the security events among them to files of their own.
//!
//! The request path never waits for the trail: records go through a bounded queue to a writer
//! thread; when the queue is full the record is dropped and counted
//! (`portcullis_audit_records_dropped_total`), never blocked on. The writer is not woken per
//! record (a wake-up is a syscall and a context switch on the request's core): it drains the
//! queue every [`DRAIN_EVERY`], so a record reaches the file within that time. The files hold no prompt or
//! completion text and no secret: the record has none to give.

pub mod files;
pub mod query;

use crate::record::RequestRecord;
use crate::security::{self, AdminEvent};
use files::{RotatingFile, Rotation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the writer drains the queue (and how late a record may reach its file).
pub const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// The stem of request record files.
pub const REQUESTS: &str = "requests";
/// The stem of security event files.
pub const SECURITY: &str = "security";

/// Where the trail goes and how long it is kept.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub dir: PathBuf,
    pub rotation: Rotation,
    /// Records that may wait for the writer; more are dropped.
    pub queue: usize,
}

enum Entry {
    Request(Arc<RequestRecord>),
    Admin(AdminEvent),
}

/// The request path's end of the trail.
#[derive(Clone)]
pub struct AuditSink {
    /// Bounded, and allocated as it fills (a `std` sync channel allocates every slot up front:
    /// 65,536 of them were the gateway's largest resident allocation at rest).
    queue: mpsc::Sender<Entry>,
    dropped: Counter,
    depth: Gauge,
    dir: Arc<PathBuf>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink").field("dir", &self.dir).finish()
    }
}

impl AuditSink {
    /// Starts the writer thread. It ends when every sink is dropped, after writing what was
    /// queued.
    pub fn start(
        settings: AuditSettings,
        dropped: Counter,
        written: Counter,
        depth: Gauge,
    ) -> std::io::Result<(AuditSink, std::thread::JoinHandle<()>)> {
        files::create_private_dir(&settings.dir)?;
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let dir = Arc::new(settings.dir.clone());
        let writer_depth = depth.clone();
        let handle = std::thread::Builder::new()
            .name("portcullis-audit".into())
            .spawn(move || write_loop(settings, rx, written, writer_depth))?;
        Ok((
            AuditSink {
                queue: tx,
                dropped,
                depth,
                dir,
            },
            handle,
        ))
    }

    /// Queues a request record; drops (and counts) it when the writer is behind.
    pub fn record(&self, record: Arc<RequestRecord>) {
        self.push(Entry::Request(record));
    }

    /// Queues an admin action.
    pub fn admin(&self, event: AdminEvent) {
        self.push(Entry::Admin(event));
    }

    fn push(&self, entry: Entry) {
        match self.queue.try_send(entry) {
            Ok(()) => {
                self.depth.inc();
            }
            Err(_) => {
                self.dropped.inc();
            }
        }
    }

    /// The directory the trail is written to.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

fn write_loop(
    settings: AuditSettings,
    mut rx: mpsc::Receiver<Entry>,
    written: Counter,
    depth: Gauge,
) {
    let mut requests = RotatingFile::new(settings.dir.clone(), REQUESTS, settings.rotation.clone());
    let mut security_file =
        RotatingFile::new(settings.dir.clone(), SECURITY, settings.rotation.clone());
    let mut last_prune = std::time::Instant::now();
    let mut line = Vec::with_capacity(2048);
    loop {
        // Everything queued is written, then the files are flushed once.
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(entry) => {
                    depth.dec();
                    wrote = true;
                    match write_entry(&entry, &mut line, &mut requests, &mut security_file) {
                        Ok(()) => {
                            written.inc();
                        }
                        Err(e) => {
                            tracing::error!(error = %e, dir = %settings.dir.display(), "cannot write the audit trail")
                        }
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                // Every sink is gone: what was queued is written; done.
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    let _ = requests.flush();
                    let _ = security_file.flush();
                    return;
                }
            }
        }
        if wrote {
            // Security events first: once a request's record can be read, so can its events.
            for f in [&mut security_file, &mut requests] {
                if let Err(e) = f.flush() {
                    tracing::error!(error = %e, "cannot flush the audit trail");
                }
            }
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = std::time::Instant::now();
            for f in [&requests, &security_file] {
                if let Err(e) = f.prune(std::time::SystemTime::now()) {
                    tracing::warn!(error = %e, "cannot remove expired audit files");
                }
            }
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}

fn write_entry(
    entry: &Entry,
    line: &mut Vec<u8>,
    requests: &mut RotatingFile,
    security_file: &mut RotatingFile,
) -> std::io::Result<()> {
    let events = match entry {
        Entry::Request(record) => {
            line.clear();
            serde_json::to_writer(&mut *line, &**record)?;
            requests.write_line(line)?;
            security::from_record(record)
        }
        Entry::Admin(event) => vec![security::from_admin(event)],
    };
    for event in events {
        line.clear();
        serde_json::to_writer(&mut *line, &event)?;
        security_file.write_line(line)?;
    }
    Ok(())
}
