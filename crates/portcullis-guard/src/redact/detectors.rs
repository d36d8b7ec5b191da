//! What counts as personal data or a secret: one pattern per kind, with the checksum or
//! shape check that keeps look-alikes out (Luhn for cards, mod-97 for IBANs, the SSA's rules
//! for SSNs, character mix for bare secrets).

use super::context::{self, Cue};
use super::fold::Folded;
use crate::searcher::Searcher;
use std::sync::OnceLock;

/// A kind of sensitive item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    AwsAccessKeyId,
    AwsSecretKey,
    OpenaiKey,
    PortcullisKey,
    GithubToken,
    SlackToken,
    GoogleApiKey,
    StripeKey,
    Jwt,
    PrivateKey,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::Iban => "IBAN",
            Kind::UsSsn => "US_SSN",
            Kind::AwsAccessKeyId => "AWS_ACCESS_KEY_ID",
            Kind::AwsSecretKey => "AWS_SECRET_KEY",
            Kind::OpenaiKey => "OPENAI_KEY",
            Kind::PortcullisKey => "PORTCULLIS_KEY",
            Kind::GithubToken => "GITHUB_TOKEN",
            Kind::SlackToken => "SLACK_TOKEN",
            Kind::GoogleApiKey => "GOOGLE_API_KEY",
            Kind::StripeKey => "STRIPE_KEY",
            Kind::Jwt => "JWT",
            Kind::PrivateKey => "PRIVATE_KEY",
        }
    }

    /// Secrets win over personal data when matches overlap (a key that contains digits is
    /// a key, not a phone number).
    fn priority(self) -> u8 {
        match self {
            Kind::PrivateKey => 0,
            Kind::Jwt | Kind::OpenaiKey | Kind::PortcullisKey | Kind::GithubToken => 1,
            Kind::SlackToken | Kind::GoogleApiKey | Kind::StripeKey | Kind::AwsAccessKeyId => 1,
            Kind::AwsSecretKey => 2,
            Kind::Email | Kind::Iban => 3,
            Kind::CreditCard => 4,
            Kind::UsSsn => 5,
            Kind::Phone => 6,
        }
    }
}

/// One sensitive item found: byte offsets into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

struct Detector {
    kind: Kind,
    regex: Searcher,
    /// Characters that must not touch the match on either side (it would be part of a longer
    /// token).
    word: fn(char) -> bool,
    /// The length of the item at the start of a match (`None`: not an item), given what the
    /// words before it say. Checked patterns whose match may overrun the item (grouped
    /// numbers) try shorter prefixes.
    check: fn(&str, Cue) -> Option<usize>,
    /// Whether the check reads the words before the match (numbers do).
    contextual: bool,
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn token(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}
fn b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '/' || c == '+' || c == '='
}
fn digitish(c: char) -> bool {
    c.is_ascii_digit()
}
/// What may not touch an address: a `.` may (it ends the sentence), an `@` may not.
fn email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '%' | '+' | '-' | '@')
}
/// Literal parts that a kind's items always contain; found in one pass for all kinds.
const LITERALS: &[(&str, Kind)] = &[
    ("PRIVATE KEY-----", Kind::PrivateKey),
    ("eyJ", Kind::Jwt),
    ("pc_live_", Kind::PortcullisKey),
    ("pc_test_", Kind::PortcullisKey),
    ("sk-", Kind::OpenaiKey),
    ("_live_", Kind::StripeKey),
    ("_test_", Kind::StripeKey),
    ("ghp_", Kind::GithubToken),
    ("gho_", Kind::GithubToken),
    ("ghu_", Kind::GithubToken),
    ("ghs_", Kind::GithubToken),
    ("ghr_", Kind::GithubToken),
    ("github_pat_", Kind::GithubToken),
    ("xoxa-", Kind::SlackToken),
    ("xoxb-", Kind::SlackToken),
    ("xoxp-", Kind::SlackToken),
    ("xoxr-", Kind::SlackToken),
    ("xoxs-", Kind::SlackToken),
    ("AIza", Kind::GoogleApiKey),
    ("AKIA", Kind::AwsAccessKeyId),
    ("ASIA", Kind::AwsAccessKeyId),
    ("AGPA", Kind::AwsAccessKeyId),
    ("AIDA", Kind::AwsAccessKeyId),
    ("AROA", Kind::AwsAccessKeyId),
    ("ANPA", Kind::AwsAccessKeyId),
    ("ANVA", Kind::AwsAccessKeyId),
    ("AIPA", Kind::AwsAccessKeyId),
    ("@", Kind::Email),
];

/// What one pass over a text tells about which kinds may occur in it.
#[derive(Debug, Default)]
pub struct Profile {
    /// Kinds whose literal part occurs (bit per `Kind as u32`).
    literals: u32,
    /// Most digits in one run of characters a phone number may contain (digits, spaces,
    /// brackets, dashes, dots, plus).
    phone_digits: u32,
    /// Most digits in one run of digits and card separators (cards).
    card_digits: u32,
    /// Most digits in one run of digits, dashes and spaces (SSNs).
    ssn_digits: u32,
    /// Whether two capitals are followed by two digits somewhere (IBANs).
    iban_start: bool,
    /// Longest run of base64 characters (bare secrets).
    base64_run: u32,
}

const DIGIT: u8 = 1;
const PHONE: u8 = 2;
const CARD: u8 = 4;
const SSN: u8 = 8;
const BASE64: u8 = 16;
const UPPER: u8 = 32;

/// Character classes of each byte, for the profile pass.
static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if c.is_ascii_digit() {
            class |= DIGIT | PHONE | CARD | SSN | BASE64;
        }
        if matches!(c, b' ' | b'(' | b')' | b'-' | b'.' | b'+') {
            class |= PHONE;
        }
        if matches!(c, b' ' | b'-' | b'.' | b'/' | b'_') {
            class |= CARD;
        }
        if matches!(c, b' ' | b'-') {
            class |= SSN;
        }
        if c.is_ascii_alphabetic() || c == b'/' || c == b'+' {
            class |= BASE64;
        }
        if c.is_ascii_uppercase() {
            class |= UPPER;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// Whether a text may hold one of `LITERALS`: each has an `@`, `_`, `-` or `J`, or starts
/// with an `A` and a capital.
fn may_hold_literal(bytes: &[u8]) -> bool {
    memchr::memchr3(b'@', b'_', b'-', bytes).is_some()
        || memchr::memchr(b'J', bytes).is_some()
        || memchr::memchr_iter(b'A', bytes)
            .any(|i| bytes.get(i + 1).is_some_and(u8::is_ascii_uppercase))
}

impl Profile {
    pub fn of(text: &str) -> Profile {
        let mut p = Profile::default();
        let bytes = text.as_bytes();
        if may_hold_literal(bytes) {
            static LITERAL_SEARCH: OnceLock<aho_corasick::AhoCorasick> = OnceLock::new();
            let search = LITERAL_SEARCH.get_or_init(|| {
                aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(LITERALS.iter().map(|(l, _)| l))
                    .expect("literals compile")
            });
            for m in search.find_overlapping_iter(text) {
                p.literals |= 1 << LITERALS[m.pattern().as_usize()].1 as u32;
            }
        }
        // Bare secrets: whether some run of base64 characters reaches 40. Such a run covers
        // a whole aligned block of 20 bytes, so text where no block is all base64 (prose:
        // every block has a space) is passed over after a few bytes a block.
        let b64 = |b: &u8| CLASSES[*b as usize] & BASE64 != 0;
        if bytes.chunks_exact(20).any(|block| block.iter().all(b64)) {
            let mut run = 0u32;
            let mut longest = 0u32;
            for &b in bytes {
                run = if b64(&b) { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            p.base64_run = longest;
        }
        // Numbers: most text has too few digits for any, which a vectorised count shows.
        let digits: usize = bytes
            .chunks(128)
            .map(|c| c.iter().map(|b| b.is_ascii_digit() as u8).sum::<u8>() as usize)
            .sum();
        if digits < 2 {
            return p;
        }
        let class = |b: u8| CLASSES[b as usize];
        p.iban_start = bytes.windows(4).any(|w| {
            w[2].is_ascii_digit() && w[3].is_ascii_digit() && class(w[0]) & class(w[1]) & UPPER != 0
        });
        if digits < 9 {
            return p;
        }
        let (mut phone, mut card, mut ssn) = (0u32, 0u32, 0u32);
        for &b in bytes {
            let class = class(b);
            let digit = (class & DIGIT) as u32;
            // A run goes on (counting digits) while the class allows, and restarts otherwise.
            phone = if class & PHONE != 0 { phone + digit } else { 0 };
            card = if class & CARD != 0 { card + digit } else { 0 };
            ssn = if class & SSN != 0 { ssn + digit } else { 0 };
            p.phone_digits = p.phone_digits.max(phone);
            p.card_digits = p.card_digits.max(card);
            p.ssn_digits = p.ssn_digits.max(ssn);
        }
        p
    }

    /// The kinds that may occur (bit per `Kind as u32`): a necessary condition for each, so
    /// skipping the others changes nothing but the time taken.
    pub fn candidates(&self) -> u32 {
        let mut kinds = self.literals;
        for (possible, kind) in [
            (self.base64_run >= 40, Kind::AwsSecretKey),
            (self.iban_start, Kind::Iban),
            (self.card_digits >= 12, Kind::CreditCard),
            (self.ssn_digits >= 9, Kind::UsSsn),
            (self.phone_digits >= 10, Kind::Phone),
        ] {
            kinds |= (possible as u32) << kind as u32;
        }
        kinds
    }
}

fn yes(s: &str, _: Cue) -> Option<usize> {
    Some(s.len())
}

/// The longest prefix of a number match that ends on a digit or letter and passes `valid`.
fn longest_valid_prefix(s: &str, valid: impl Fn(&str) -> bool) -> Option<usize> {
    s.char_indices()
        .rev()
        .filter(|(_, c)| c.is_ascii_alphanumeric())
        .map(|(i, c)| i + c.len_utf8())
        .find(|&end| valid(&s[..end]))
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// The Luhn checksum over 12 to 19 digits (12 is a Maestro card; the card check asks more of
/// so short a number).
pub fn luhn(s: &str) -> bool {
    let d = digits(s);
    if !(12..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut remainder: u64 = 0;
    for c in rearranged.chars() {
        let value = match c.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn ssn(s: &str, _: Cue) -> Option<usize> {
    ssn_valid(s).then_some(s.len())
}

fn ssn_valid(s: &str) -> bool {
    let d = digits(s);
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn phone_valid(s: &str, cue: Cue) -> bool {
    if cue == Cue::NotPersonal {
        return false;
    }
    let main = s.split(['x', 'X']).next().unwrap_or(s);
    let n = digits(main).len();
    let separator = |c: &char| matches!(c, ' ' | '-' | '.' | '(' | ')' | '+');
    // A lone dot is a decimal point: 3.14159265358979 is no phone.
    let mut separators = main.chars().filter(separator);
    if separators.next() == Some('.') && separators.next().is_none() {
        return false;
    }
    let separated = main.chars().any(|c| separator(&c));
    // Bare digit runs are phones when long enough to be one with a trunk prefix, or when the
    // words before them say so ("Mobile: 3304524169").
    (10..=15).contains(&n) && (separated || n == 11 || s.contains(['x', 'X']) || cue == Cue::Phone)
}

fn card(s: &str, cue: Cue) -> Option<usize> {
    if cue == Cue::NotPersonal {
        return None;
    }
    longest_valid_prefix(s, |s| card_valid(s, cue))
}

/// Luhn, and dots, slashes or underscores only as the one separator between every group
/// (`4111.1111.1111.1111`), never once inside a number (`3.14159265358979`). Twelve digits
/// (Maestro) pass the checksum one time in ten by chance, so they need a card named before
/// them.
fn card_valid(s: &str, cue: Cue) -> bool {
    if digits(s).len() == 12 && cue != Cue::Card {
        return false;
    }
    let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
    let unusual = separators.iter().any(|c| matches!(c, '.' | '/' | '_'));
    if unusual && (separators.len() < 3 || separators.iter().any(|&c| c != separators[0])) {
        return false;
    }
    luhn(s)
}

fn iban(s: &str, _: Cue) -> Option<usize> {
    longest_valid_prefix(s, iban_valid)
}

fn phone(s: &str, cue: Cue) -> Option<usize> {
    let trimmed = s.trim_end_matches([' ', '-', '.', '(']);
    phone_valid(trimmed, cue).then_some(trimmed.len())
}

fn mixed_secret(s: &str, _: Cue) -> Option<usize> {
    let upper = s.chars().any(|c| c.is_ascii_uppercase());
    let lower = s.chars().any(|c| c.is_ascii_lowercase());
    let digit = s.chars().any(|c| c.is_ascii_digit());
    (upper && lower && digit).then_some(s.len())
}

fn detectors() -> &'static [Detector] {
    static DETECTORS: OnceLock<Vec<Detector>> = OnceLock::new();
    DETECTORS.get_or_init(|| {
        let d = |kind, pattern: &str, word, check| Detector {
            kind,
            regex: Searcher::text(pattern).expect("pattern compiles"),
            word,
            check,
            contextual: matches!(kind, Kind::Phone | Kind::CreditCard),
        };
        vec![
            // A block without its END line is still a key: its header and base64 lines.
            d(Kind::PrivateKey, r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|(?:\s*[A-Za-z0-9+/=]{16,})*)", |_| false, yes),
            d(Kind::Jwt, r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}", token, yes),
            d(Kind::PortcullisKey, r"pc_(?:live|test)_[A-Za-z0-9]{16}_[A-Za-z0-9]{32,40}", token, yes),
            d(Kind::OpenaiKey, r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", token, yes),
            d(Kind::StripeKey, r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}", token, yes),
            d(Kind::GithubToken, r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})", token, yes),
            d(Kind::SlackToken, r"xox[abprs]-[A-Za-z0-9\-]{10,}", token, yes),
            d(Kind::GoogleApiKey, r"AIza[0-9A-Za-z_\-]{35}", token, yes),
            d(Kind::AwsAccessKeyId, r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}", alnum, yes),
            d(Kind::AwsSecretKey, r"[A-Za-z0-9/+]{40}", b64, mixed_secret),
            d(Kind::Email, r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}", email_char, yes),
            d(Kind::Iban, r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", alnum, iban),
            d(Kind::CreditCard, r"[0-9](?:[ \-./_]?[0-9]){11,18}", digitish, card),
            d(Kind::UsSsn, r"[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}", digitish, ssn),
            d(Kind::Phone, r"(?:\+|00)?[0-9(][0-9 ()\-.]{7,20}[0-9](?: ?(?:x|ext\.?) ?[0-9]{1,6})?", digitish, phone),
        ]
    })
}

/// Every sensitive item in `text`, non-overlapping, in order. `before` is the text just
/// before `text` (when scanning a stream; folded, at most `context::WINDOW` characters are
/// read), so a match cannot start inside a longer token and a number's cue words count.
pub fn find(text: &str, before: &str) -> Vec<Span> {
    // Look-alikes (zero-width characters, fullwidth forms, no-break spaces, other scripts'
    // digits) are read as what they look like, and what is found is redacted where it was
    // written.
    if let Some(folded) = Folded::of(text) {
        let mut spans = find_in(&folded.text, before);
        for s in &mut spans {
            (s.start, s.end) = folded.original(s.start, s.end);
        }
        return spans;
    }
    find_in(text, before)
}

fn find_in(text: &str, before: &str) -> Vec<Span> {
    // The profile pays off on the short texts a stream scans at a time; a long text holds
    // digits and literals somewhere almost surely, so it would only add a pass.
    find_gated(text, before, text.len() <= PROFILED_BYTES)
}

/// Longest text whose profile is taken before its patterns run.
const PROFILED_BYTES: usize = 4096;

fn find_gated(text: &str, before: &str, gated: bool) -> Vec<Span> {
    let candidates = if gated {
        Profile::of(text).candidates()
    } else {
        u32::MAX
    };
    if candidates == 0 {
        return Vec::new();
    }
    let mut found: Vec<Span> = Vec::new();
    for d in detectors() {
        if candidates & (1 << d.kind as u32) == 0 {
            continue;
        }
        let mut at = 0;
        while let Some(m) = d.regex.find_at(text, at) {
            let head = &text[..m.start];
            let prev = head
                .chars()
                .next_back()
                .or_else(|| before.chars().next_back());
            let accepted = if prev.is_some_and(d.word) {
                None
            } else {
                let cue = if d.contextual {
                    context::before(head, before)
                } else {
                    Cue::None
                };
                (d.check)(&text[m.clone()], cue).filter(|&len| {
                    let next = text[m.start + len..].chars().next();
                    len > 0 && !next.is_some_and(d.word)
                })
            };
            match accepted {
                Some(len) => {
                    found.push(Span {
                        start: m.start,
                        end: m.start + len,
                        kind: d.kind,
                    });
                    at = m.start + len;
                }
                // Not an item: pieces of a rejected number are not items either.
                None => at = m.end.max(m.start + 1),
            }
            if at >= text.len() {
                break;
            }
        }
    }
    found.sort_by_key(|s| (s.start, s.kind.priority(), usize::MAX - s.end));
    let mut chosen: Vec<Span> = Vec::with_capacity(found.len());
    for span in found {
        match chosen.last() {
            Some(last) if span.start < last.end => {
                // Overlap: the higher priority kind keeps its place.
                if span.kind.priority() < last.kind.priority() {
                    chosen.pop();
                    chosen.push(span);
                }
            }
            _ => chosen.push(span),
        }
    }
    chosen
}

/// Warms the patterns up, so the first response does not compile them.
pub fn warm_up() {
    detectors();
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The profile only skips patterns that could not have found anything.
        #[test]
        fn the_profile_changes_nothing_but_time(
            text in "([0-9]{1,5}|[A-Z]{1,3}|[a-z]{1,4}|[ ()+./=@_x-]|sk-|eyJ|AKIA|pc_live_|ext\\.){0,40}"
        ) {
            proptest::prop_assert_eq!(find_gated(&text, "", true), find_gated(&text, "", false));
        }
    }

    #[test]
    fn the_profile_sees_every_kind() {
        let samples = [
            "+44 (0)20 7946 0958",
            "4242 4242 4242 4242",
            "GB82 WEST 1234 5698 7654 32",
            "078-05-1120",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "a@b.co",
        ];
        for text in samples {
            let (_, spans) = crate::redact::redact(text);
            let kind = spans.first().expect("an item").kind;
            assert_ne!(
                Profile::of(text).candidates() & (1 << kind as u32),
                0,
                "{text}"
            );
        }
    }
}
