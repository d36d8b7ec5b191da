//! Redaction of personal data and secrets in model output, whole or streamed.
//!
//! `redact` replaces every item `detectors::find` reports with `[REDACTED:KIND]`. The
//! `StreamRedactor` does the same to text that arrives in pieces: it emits at once everything
//! that cannot be part of an item still arriving, and holds back only the tail that could be:
//! the last unbroken token (items without spaces: keys, tokens, e-mail addresses; at most
//! `MAX_TOKEN` bytes), the last run of digit groups (phones, cards, grouped IBANs; at most
//! `MAX_GROUPS` bytes), or an unfinished private key block (at most `MAX_BLOCK` bytes), and it
//! never cuts a run of digit groups (at most `MAX_GROUPS` bytes back). Text is
//! never reordered or dropped, and the result equals redacting the whole text at once
//! (property-tested over random chunkings).

pub mod context;
pub mod detectors;
pub mod fold;

pub use detectors::{find, Kind, Span};
use fold::fold_char;

/// Longest unbroken token held back while it may still grow into a secret.
pub const MAX_TOKEN: usize = 4096;
/// Longest run of digit groups held back (a grouped IBAN is 42 characters).
pub const MAX_GROUPS: usize = 48;
/// Longest private key block held back while its END line has not arrived.
pub const MAX_BLOCK: usize = 16 * 1024;

/// The replacement of one item.
pub fn placeholder(kind: Kind) -> String {
    format!("[REDACTED:{}]", kind.name())
}

/// `text` with every item replaced, and the items found (byte offsets into `text`).
pub fn redact(text: &str) -> (String, Vec<Span>) {
    let spans = find(text, "");
    (apply(text, &spans), spans)
}

fn apply(text: &str, spans: &[Span]) -> String {
    if spans.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        out.push_str(&placeholder(s.kind));
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Where the tail that may still become an item begins.
fn hold_from(buf: &str) -> usize {
    let mut hold = buf.len();
    // The last unbroken token.
    let token_start = buf
        .char_indices()
        .rev()
        .take_while(|(_, c)| !c.is_whitespace())
        .last()
        .map_or(buf.len(), |(i, _)| i);
    if buf.len() - token_start <= MAX_TOKEN {
        hold = hold.min(token_start);
    }
    // The last run of digit groups (spaces, brackets, dashes, dots, plus, x between digits
    // and capitals), at the end and just before the held token: a number can run into it.
    let token_is_number = buf[hold..]
        .chars()
        .find_map(fold_char)
        .is_some_and(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '(' || c == '+');
    hold = hold.min(groups_before(buf, buf.len()));
    if token_is_number {
        hold = hold.min(groups_before(buf, hold));
    }
    // An unfinished private key block: its END line has not fully arrived.
    static BEGIN: std::sync::OnceLock<memchr::memmem::FinderRev<'static>> =
        std::sync::OnceLock::new();
    let begin_block = BEGIN.get_or_init(|| memchr::memmem::FinderRev::new("-----BEGIN"));
    if let Some(begin) = begin_block.rfind(buf.as_bytes()) {
        let ended = buf[begin..]
            .find("-----END")
            .is_some_and(|end| buf[begin + end..].contains("PRIVATE KEY-----"));
        if !ended && buf.len() - begin <= MAX_BLOCK {
            hold = hold.min(begin);
        }
    }
    // A marker still arriving at the end holds the number before it.
    if let Some(number_end) = number_before_extension_marker(buf) {
        hold = hold.min(groups_before(buf, number_end));
    }
    loop {
        // Never cut a run of digit groups: where a scan of it starts changes what is read in
        // it (a rejected number is skipped whole).
        if buf[hold..].starts_with(is_group_char) {
            hold = groups_before(buf, hold);
        }
        // A phone's extension ("x12", "ext. 12") joins its digits across lowercase letters
        // and a space, so a number is held with the marker after it (arrived, or arriving):
        // a bare run of twelve digits is no phone, but the same run with "ext 0303" is, and
        // a number whose extension runs into more digits is none.
        match number_joined_at(buf, hold) {
            // Bounded like a token: "1 ext 1 ext 1 …" must not hold the whole stream.
            Some(number_end)
                if groups_before(buf, number_end) < hold
                    && buf.len() - groups_before(buf, number_end) <= MAX_TOKEN =>
            {
                hold = groups_before(buf, number_end);
            }
            _ => return hold,
        }
    }
}

/// Where the digits before `hold` end when a phone extension marker joins them to what is
/// held: the marker ends just before `hold`, or the held text begins with it.
fn number_joined_at(buf: &str, hold: usize) -> Option<usize> {
    if let Some(end) = number_before_extension_marker(&buf[..hold]) {
        return Some(end);
    }
    if !matches!(buf[hold..].chars().find_map(fold_char), Some('x' | 'e')) {
        return None;
    }
    let mut before = read_back(&buf[..hold]).peekable();
    before.next_if(|&(_, c)| c == ' ');
    let (end, c) = before.next()?;
    c.is_ascii_digit().then_some(end)
}

/// Where the digits end when `buf` ends with a number and a phone extension marker
/// (`[0-9] ?(x|ext.?) ?`, the marker possibly cut short), or `None`. Read as the detectors
/// read it (folded): a digit of another script or a fullwidth `ｘ` joins like its ASCII
/// form (a fuzz find: `…۴ext0000.1290027795x 9` released up to `ext`, and the rest, scanned
/// from there, read differently).
fn number_before_extension_marker(buf: &str) -> Option<usize> {
    let mut back = read_back(buf).peekable();
    back.next_if(|&(_, c)| c == ' ');
    let tail: Vec<(usize, char)> = back.by_ref().take(4).collect();
    let marker = ["ext.", "ext", "ex", "e", "x"].into_iter().find(|marker| {
        marker.len() <= tail.len() && marker.chars().rev().zip(&tail).all(|(m, &(_, c))| m == c)
    })?;
    let mut rest = tail[marker.len()..].iter().copied().chain(back).peekable();
    rest.next_if(|&(_, c)| c == ' ');
    let (end, c) = rest.next()?;
    c.is_ascii_digit().then_some(end)
}

/// The characters of `text` as the detectors read them (invisible ones skipped), last
/// first, each with the byte offset where it ends.
fn read_back(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    text.char_indices()
        .rev()
        .filter_map(|(at, c)| fold_char(c).map(|f| (at + c.len_utf8(), f)))
}

/// Characters of digit groups: digits, capitals (IBANs), and every separator a number
/// pattern allows (phones ` ()-.+x`, cards also `/` and `_`), as the detectors read them (a
/// no-break space separates, a fullwidth digit is a digit, an invisible character is part of
/// the run). A separator missing here lets the stream release the head of a number whose
/// whole the detectors read differently (a fuzz find: `00/0077…/00450 0000000000 000`).
fn is_group_char(c: char) -> bool {
    match fold_char(c) {
        Some(c) => c.is_ascii_digit() || c.is_ascii_uppercase() || " ()-.+x/_".contains(c),
        None => true,
    }
}

/// Where the run of digit-group characters ending at `end` begins (at most `MAX_GROUPS`
/// back), or `end` if there is none.
fn groups_before(buf: &str, end: usize) -> usize {
    let mut start = end;
    for (i, c) in buf[..end].char_indices().rev() {
        if end - i > MAX_GROUPS {
            break;
        }
        if is_group_char(c) {
            start = i;
        } else {
            break;
        }
    }
    start
}

/// Redacts text that arrives in pieces.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    pending: String,
    /// The last `context::WINDOW` characters emitted, folded as the detectors read them: the
    /// boundary checks and a number's cue words look back into them.
    before: String,
    /// Bytes of input emitted so far, to report spans in input coordinates.
    emitted: usize,
    spans: Vec<Span>,
}

impl StreamRedactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a piece; returns the redacted text that is now safe to send (possibly empty).
    pub fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        let mut safe = hold_from(&self.pending);
        if safe == 0 {
            // All of it may still be part of an item: nothing to decide yet.
            return String::new();
        }
        let spans = find(&self.pending, &self.before);
        // An item that crosses the safe point is held back whole, or, when it is longer than
        // anything is held (a key block that never ends), sent redacted whole.
        for s in &spans {
            if s.start < safe && s.end > safe {
                safe = if self.pending.len() - s.start > MAX_BLOCK {
                    s.end
                } else {
                    s.start
                };
            }
        }
        self.emit(safe, &spans)
    }

    /// The end of the stream: everything left, redacted.
    pub fn finish(&mut self) -> String {
        let spans = find(&self.pending, &self.before);
        self.emit(self.pending.len(), &spans)
    }

    /// Items found so far, in input byte offsets.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The text held back right now (it may still become part of an item).
    pub fn held_text(&self) -> &str {
        &self.pending
    }

    /// How many bytes are held back right now.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    fn emit(&mut self, upto: usize, spans: &[Span]) -> String {
        if upto == 0 {
            return String::new();
        }
        let done: Vec<Span> = spans.iter().copied().filter(|s| s.end <= upto).collect();
        let out = apply(&self.pending[..upto], &done);
        self.spans.extend(done.iter().map(|s| Span {
            start: s.start + self.emitted,
            end: s.end + self.emitted,
            kind: s.kind,
        }));
        // What the detectors read of the text emitted (invisible characters are not read).
        let mut recent: Vec<char> = self.pending[..upto]
            .chars()
            .rev()
            .filter_map(fold_char)
            .take(context::WINDOW)
            .collect();
        if recent.len() < context::WINDOW {
            let keep = context::WINDOW - recent.len();
            recent.extend(self.before.chars().rev().take(keep));
        }
        self.before = recent.into_iter().rev().collect();
        self.emitted += upto;
        self.pending.drain(..upto);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_each_kind() {
        let cases = [
            ("mail bob.smith+x@example.co.uk now", Kind::Email),
            ("call +44 (0)20 7946 0958 today", Kind::Phone),
            ("card 4242 4242 4242 4242 ok", Kind::CreditCard),
            ("iban GB82 WEST 1234 5698 7654 32 ok", Kind::Iban),
            ("ssn 078-05-1120 ok", Kind::UsSsn),
            ("id AKIAIOSFODNN7EXAMPLE ok", Kind::AwsAccessKeyId),
            (
                "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 ok",
                Kind::OpenaiKey,
            ),
            (
                "pc_live_0123456789abcdef_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345abcdef ok",
                Kind::PortcullisKey,
            ),
            (
                "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok",
                Kind::GithubToken,
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop ok",
                Kind::Jwt,
            ),
            (
                "k -----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY----- ok",
                Kind::PrivateKey,
            ),
        ];
        for (text, kind) in cases {
            let (out, spans) = redact(text);
            assert_eq!(spans.len(), 1, "{text}: {spans:?}");
            assert_eq!(spans[0].kind, kind, "{text}");
            assert!(out.contains(&placeholder(kind)), "{out}");
            assert!(out.ends_with(" ok") || out.ends_with(" now") || out.ends_with(" today"));
        }
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for text in [
            "order 4242 4242 4242 4241 failed the checksum",
            "IBAN GB82WEST12345698765433 has a bad check digit",
            "ssn 000-12-3456 is not valid",
            "version 1.2.3 released on 2024-01-15",
            "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "pi is 3.14159265358979 and e is 2.718281828459045",
        ] {
            assert_eq!(redact(text).1, vec![], "{text}");
        }
    }

    #[test]
    fn the_words_before_a_bare_number_say_what_it_is() {
        // (text, kind redacted or none): the same digits, told apart by their sentence.
        let cases = [
            (
                "Nous vous appellerons au 0492195494 demain.",
                Some(Kind::Phone),
            ),
            (
                "Bitte bestätigen Sie Ihre Telefonnummer 0263247983 und",
                Some(Kind::Phone),
            ),
            (
                "Lawsonfort, OK 34816\\nMobile: 3304524169\\nDesk",
                Some(Kind::Phone),
            ),
            ("Order 0492195494 shipped today.", None),
            ("Build 0492195494 passed.", None),
            ("The answer is 0492195494.", None),
            (
                "Can I withdraw cash using my card 583289173945?",
                Some(Kind::CreditCard),
            ),
            ("Reference 583289173945 is closed.", None),
            ("The ISBN of the second edition is 978-0-13-468599-1.", None),
            ("Call me at 978-013-4685 please.", Some(Kind::Phone)),
        ];
        for (text, kind) in cases {
            let spans = redact(text).1;
            assert_eq!(spans.first().map(|s| s.kind), kind, "{text}");
            // A stream sees the cue words it has already released.
            for size in 1..=9 {
                assert_eq!(
                    streamed(text, size),
                    redact(text).0,
                    "{text:?} in pieces of {size}"
                );
            }
        }
    }

    #[test]
    fn a_run_of_digit_groups_is_never_cut() {
        // Found by fuzzing: the head of this run was released when a backtick ended it, and
        // the rest, scanned from a different start, no longer read as the phone number.
        let text = "%)))82040 )))2)))))))2))))))))))9061))55549999`1110";
        let mut r = StreamRedactor::new();
        let mut out: String = text.split_inclusive(|_| true).map(|c| r.push(c)).collect();
        out += &r.finish();
        assert_eq!(out, redact(text).0);
        assert!(out.contains("[REDACTED:PHONE]"), "{out}");
    }

    #[test]
    fn a_number_is_held_while_its_extension_may_follow() {
        // Found by fuzzing: "…688347ext " was released before "0303" arrived, and twelve
        // bare digits alone are no phone, so the number left unredacted.
        let text = "HD9883433)\x0fHD966666668666666666v666666688347ext 0303";
        // And a number whose "extension" ran into more digits, which makes it none: the
        // stream emitted "3ext" and then read the digits after it as a phone of their own.
        let run_on = "19792s3313A3333   3333334333 3ext33333333 333   03  `3300";
        // And a number released while the held token began with its marker ("ext.5333…").
        let marker_held = "HD.e.@HD\x1a\n3\x1a\0\0\x00333333330 ext.53333333333_";
        for (text, phone) in [
            (text, true),
            (run_on, false),
            (marker_held, false),
            ("call 666666688347 ext. 12 now", true),
            ("call 666666688347 x 12 now", true),
        ] {
            for size in 1..=17 {
                let out = streamed(text, size);
                assert_eq!(out, redact(text).0, "{text:?} in pieces of {size}");
                assert_eq!(out.contains("[REDACTED:PHONE]"), phone, "{out}");
            }
        }
    }

    #[test]
    fn a_placeholder_may_change_how_nearby_digits_read_but_never_shows_a_hidden_item() {
        // Found by fuzzing (CI, session 6): in pieces of 10, the stream redacts
        // "1111111111 55553" as a card (it sees the run end at "$"), the whole text does not,
        // and the tail "555599    9916" then reads as a phone next to the placeholder. The
        // whole-text result shows the same digits: nothing is revealed that it hides.
        let text = "I11@1u11/1111111111 55553 555599    9916$811111~%\x00112 \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x002[@et]x\t";
        let whole = redact(text).0;
        for size in 1..=17 {
            let out = streamed(text, size);
            for s in find(&out, "") {
                assert!(
                    whole.contains(&out[s.start..s.end]),
                    "pieces of {size}: {:?} shows in {out:?} but not in {whole:?}",
                    &out[s.start..s.end]
                );
            }
        }
    }

    /// `text` pushed in pieces of `size` bytes (widened to whole characters), then finished.
    fn streamed(text: &str, size: usize) -> String {
        let mut r = StreamRedactor::new();
        let mut out = String::new();
        let mut at = 0;
        while at < text.len() {
            let mut end = (at + size).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            out += &r.push(&text[at..end]);
            at = end;
        }
        out + &r.finish()
    }

    #[test]
    fn look_alike_forms_are_redacted_whole_and_streamed() {
        // F11: separators and characters a model can be asked to use to slip an item out.
        let cases = [
            ("mail john.\u{200b}doe@example.com now", Kind::Email),
            ("mail john.doe\u{FF20}example.com now", Kind::Email),
            ("mail \u{FF4A}\u{FF4F}\u{FF48}\u{FF4E}@example.com now", Kind::Email),
            ("card 4111.1111.1111.1111 ok", Kind::CreditCard),
            ("card 4111/1111/1111/1111 ok", Kind::CreditCard),
            ("card 4111_1111_1111_1111 ok", Kind::CreditCard),
            ("card 4111\u{a0}1111\u{a0}1111\u{a0}1111 ok", Kind::CreditCard),
            ("card 4111\u{200b}1111\u{200b}1111\u{200b}1111 ok", Kind::CreditCard),
            (
                "card \u{FF14}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11} ok",
                Kind::CreditCard,
            ),
            (
                "card \u{664}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661} ok",
                Kind::CreditCard,
            ),
            ("ssn 078 05 1120 ok", Kind::UsSsn),
            (
                "call \u{FF0B}\u{FF14}\u{FF14} \u{FF12}\u{FF10} \u{FF17}\u{FF19}\u{FF14}\u{FF16} \u{FF10}\u{FF19}\u{FF15}\u{FF18} ok",
                Kind::Phone,
            ),
            (
                "k -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7 ok",
                Kind::PrivateKey,
            ),
        ];
        for (text, kind) in cases {
            let (whole, spans) = redact(text);
            assert_eq!(spans.len(), 1, "{text}: {spans:?}");
            assert_eq!(spans[0].kind, kind, "{text}");
            assert!(whole.ends_with(" ok") || whole.ends_with(" now"), "{whole}");
            assert!(whole.contains(&placeholder(kind)), "{whole}");
            for size in 1..=17 {
                assert_eq!(streamed(text, size), whole, "{text:?} in pieces of {size}");
            }
        }
        // A lone dot or slash inside a number is no card separator.
        assert_eq!(redact("ratio 4111.111111111111 and 2024/01/15").1, vec![]);
    }

    #[test]
    fn a_key_block_that_never_ends_is_redacted_when_the_stream_does() {
        let text = "here: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0\n";
        for size in [1, 5, 64] {
            let out = streamed(text, size);
            assert_eq!(out, "here: [REDACTED:PRIVATE_KEY]\n", "pieces of {size}");
        }
    }

    #[test]
    fn a_stream_holds_back_only_what_may_still_be_an_item() {
        let mut r = StreamRedactor::new();
        let mut out = r.push("Write to jane.do");
        assert_eq!(out, "Write to ");
        out += &r.push("e@example.com and call");
        assert_eq!(out, "Write to [REDACTED:EMAIL] and ");
        out += &r.push(" me.");
        out += &r.finish();
        assert_eq!(out, "Write to [REDACTED:EMAIL] and call me.");
        assert_eq!(r.spans()[0].kind, Kind::Email);
        assert_eq!(r.spans()[0].start, 9);
    }
}
