//! Helpers for tests that run the real binary: processes, ports, raw HTTP.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("portcullis-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Running(pub Child);

impl Running {
    /// Sends SIGTERM, asserts a clean exit, and returns what the process wrote to stderr
    /// (started with `Stdio::piped()`).
    pub fn terminate_and_log(&mut self) -> String {
        assert!(Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap()
            .success());
        assert!(self.0.wait().unwrap().success());
        let mut log = String::new();
        self.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn http(addr: &str, request: &str) -> String {
    // Connecting is retried for a few seconds: on a loaded machine (the whole workspace's
    // tests at once) a listener that has printed its address can be slow to accept.
    let mut attempts = 0;
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if attempts < 60 => {
                attempts += 1;
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn wait_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = TcpStream::connect(format!("127.0.0.1:{admin}")).is_ok()
            && http(
                &format!("127.0.0.1:{admin}"),
                "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .starts_with("HTTP/1.1 200");
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "gateway never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn chat_status(public: u16, key: &str) -> String {
    chat_status_for(public, key, "chat")
}

/// The status line of a chat request for `model`, with `key` as the bearer credential (none
/// when empty: anonymous).
pub fn chat_status_for(public: u16, key: &str, model: &str) -> String {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let authorization = if key.is_empty() {
        String::new()
    } else {
        format!("authorization: Bearer {key}\r\n")
    };
    let reply = http(
        &format!("127.0.0.1:{public}"),
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{authorization}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    reply.lines().next().unwrap_or("").to_owned()
}

/// Runs an admin command of the binary against the admin listener on `admin`, reading the
/// token from `dir`'s `portcullis-data/admin-token`: (success, stdout, stderr).
pub fn admin_cli(dir: &std::path::Path, admin: u16, args: &[&str]) -> (bool, String, String) {
    let out = binary()
        .args(args)
        .args(["--admin-url", &format!("http://127.0.0.1:{admin}")])
        .current_dir(dir)
        .env_remove("PORTCULLIS_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
