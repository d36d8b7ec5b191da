//! Server-sent event framing, read strictly.
//!
//! An event ends at a blank line (`\n\n` or `\r\n\r\n`). Inside it, the gateway accepts only
//! what OpenAI-compatible servers send: at most one `event:` line, exactly one `data:` line,
//! and `id:`, `retry:` or comment lines, each ended by `\n` or `\r\n`. Anything else (a lone
//! `\r`, a second `data:` line, a byte-order mark, an unknown field) is [`Malformed`]: the relay
//! refuses it instead of passing bytes it did not read. An event made of exactly an optional
//! `event:` line and one `data:` line is *canonical*; the relay may forward a canonical event's
//! original bytes when no filter edited it, and writes every other event anew.

/// The end of the last complete event in `buf` (just past its blank line), if any.
pub fn last_event_end(buf: &[u8]) -> Option<usize> {
    (1..buf.len())
        .rev()
        .find(|&i| ends_event(buf, i))
        .map(|i| i + 1)
}

/// Offsets just past each blank line that ends an event, in order.
pub fn event_ends(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (1..buf.len())
        .filter(move |&i| ends_event(buf, i))
        .map(|i| i + 1)
}

fn ends_event(buf: &[u8], i: usize) -> bool {
    buf[i] == b'\n'
        && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n'))
}

/// An event that is not what an OpenAI-compatible server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// One event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` name (the Responses API names every event; chat streams name none).
    pub name: Option<&'a str>,
    /// The `data:` payload; `None` for an event of comments only (a keep-alive).
    pub data: Option<&'a [u8]>,
    /// Only an optional `event:` line and one `data:` line: safe to forward byte for byte.
    pub canonical: bool,
}

impl<'a> Event<'a> {
    /// Reads one whole event (up to and including its blank line).
    pub fn parse(event: &'a [u8]) -> Result<Event<'a>, Malformed> {
        let body = event
            .strip_suffix(b"\r\n\r\n")
            .or_else(|| event.strip_suffix(b"\n\n"))
            .or_else(|| event.strip_suffix(b"\n"))
            .unwrap_or(event);
        let mut parsed = Event {
            name: None,
            data: None,
            canonical: true,
        };
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.contains(&b'\r') {
                return Err(Malformed);
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(at) => (&line[..at], &line[at + 1..]),
                None => (line, &b""[..]),
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match field {
                b"data" if parsed.data.is_none() => parsed.data = Some(value),
                b"event" if parsed.name.is_none() => {
                    let name = std::str::from_utf8(value).map_err(|_| Malformed)?;
                    let token = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                    if !token {
                        return Err(Malformed);
                    }
                    parsed.name = Some(name);
                }
                b"" | b"id" | b"retry" => parsed.canonical = false,
                _ => return Err(Malformed),
            }
        }
        if parsed.data.is_none() {
            parsed.canonical = false;
        }
        Ok(parsed)
    }
}

/// Writes an event: an optional `event:` line and one `data:` line.
pub fn write_event(out: &mut Vec<u8>, name: Option<&str>, data: &[u8]) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_blank_line() {
        assert_eq!(last_event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(last_event_end(b"data: a\n\ndata: b\n\n"), Some(18));
        assert_eq!(last_event_end(b"data: a\r\n\r\ndata"), Some(11));
        assert_eq!(last_event_end(b"data: a\n"), None);
        assert_eq!(last_event_end(b""), None);
        let ends: Vec<usize> = event_ends(b"data: a\n\ndata: b\n\n").collect();
        assert_eq!(ends, [9, 18]);
    }

    #[test]
    fn reads_canonical_events() {
        let e = Event::parse(b"data: {\"a\":1}\n\n").unwrap();
        assert_eq!(e.data, Some(&b"{\"a\":1}"[..]));
        assert!(e.canonical && e.name.is_none());
        let e = Event::parse(b"event: response.created\r\ndata: {}\r\n\r\n").unwrap();
        assert_eq!(e.name, Some("response.created"));
        assert!(e.canonical);
        let e = Event::parse(b": keep-alive\n\n").unwrap();
        assert!(e.data.is_none() && !e.canonical);
        let e = Event::parse(b"id: 7\ndata: {}\n\n").unwrap();
        assert!(e.data.is_some() && !e.canonical);
    }

    #[test]
    fn refuses_what_a_model_server_does_not_send() {
        for bad in [
            &b"data: {}\ndata: {}\n\n"[..],
            b"data: {}\r{}\n\n",
            b"\xef\xbb\xbfdata: {}\n\n",
            b"foo: bar\ndata: {}\n\n",
            b"event: a b\ndata: {}\n\n",
            b"event: x\nevent: y\ndata: {}\n\n",
        ] {
            assert_eq!(
                Event::parse(bad),
                Err(Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
