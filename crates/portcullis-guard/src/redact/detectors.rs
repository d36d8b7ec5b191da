//! What counts as personal data or a secret: one pattern per kind, with the checksum or
//! shape check that keeps look-alikes out (Luhn for cards, mod-97 for IBANs, the SSA's rules
//! for SSNs, character mix for bare secrets).

use regex::Regex;
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
    regex: Regex,
    /// Characters that must not touch the match on either side (it would be part of a longer
    /// token).
    word: fn(char) -> bool,
    /// A cheap test that the text may contain a match at all.
    hint: fn(&str) -> bool,
    /// The length of the item at the start of a match (`None`: not an item). Checked
    /// patterns whose match may overrun the item (grouped numbers) try shorter prefixes.
    check: fn(&str) -> Option<usize>,
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
fn any(_: &str) -> bool {
    true
}
/// Whether `text` has at least `n` digits: fewer than an item needs rules it out, whatever
/// the surrounding text (so the streaming and whole-text scans decide alike).
fn digits_at_least(text: &str, n: usize) -> bool {
    text.bytes().filter(u8::is_ascii_digit).nth(n - 1).is_some()
}
fn two_digits(text: &str) -> bool {
    digits_at_least(text, 2)
}
fn nine_digits(text: &str) -> bool {
    digits_at_least(text, 9)
}
fn ten_digits(text: &str) -> bool {
    digits_at_least(text, 10)
}
fn thirteen_digits(text: &str) -> bool {
    digits_at_least(text, 13)
}
fn yes(s: &str) -> Option<usize> {
    Some(s.len())
}

/// The longest prefix of a number match that ends on a digit or letter and passes `valid`.
fn longest_valid_prefix(s: &str, valid: fn(&str) -> bool) -> Option<usize> {
    s.char_indices()
        .rev()
        .filter(|(_, c)| c.is_ascii_alphanumeric())
        .map(|(i, c)| i + c.len_utf8())
        .find(|&end| valid(&s[..end]))
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

pub fn luhn(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) {
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

fn ssn(s: &str) -> Option<usize> {
    ssn_valid(s).then_some(s.len())
}

fn ssn_valid(s: &str) -> bool {
    let d = digits(s);
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn phone_valid(s: &str) -> bool {
    let main = s.split(['x', 'X']).next().unwrap_or(s);
    let n = digits(main).len();
    let separated = main
        .chars()
        .any(|c| matches!(c, ' ' | '-' | '.' | '(' | ')' | '+'));
    // Bare digit runs are phones only when long enough to be one with a trunk prefix.
    (10..=15).contains(&n) && (separated || n == 11 || s.contains(['x', 'X']))
}

fn card(s: &str) -> Option<usize> {
    longest_valid_prefix(s, luhn)
}

fn iban(s: &str) -> Option<usize> {
    longest_valid_prefix(s, iban_valid)
}

fn phone(s: &str) -> Option<usize> {
    let trimmed = s.trim_end_matches([' ', '-', '.', '(']);
    phone_valid(trimmed).then_some(trimmed.len())
}

fn mixed_secret(s: &str) -> Option<usize> {
    let upper = s.chars().any(|c| c.is_ascii_uppercase());
    let lower = s.chars().any(|c| c.is_ascii_lowercase());
    let digit = s.chars().any(|c| c.is_ascii_digit());
    (upper && lower && digit).then_some(s.len())
}

fn detectors() -> &'static [Detector] {
    static DETECTORS: OnceLock<Vec<Detector>> = OnceLock::new();
    DETECTORS.get_or_init(|| {
        let d = |kind, pattern: &str, word, hint, check| Detector {
            kind,
            regex: Regex::new(pattern).expect("pattern compiles"),
            word,
            hint,
            check,
        };
        vec![
            d(Kind::PrivateKey, r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----", |_| false, |t| t.contains("PRIVATE KEY-----"), yes),
            d(Kind::Jwt, r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}", token, |t| t.contains("eyJ"), yes),
            d(Kind::PortcullisKey, r"pc_(?:live|test)_[A-Za-z0-9]{16}_[A-Za-z0-9]{32,40}", token, |t| t.contains("pc_"), yes),
            d(Kind::OpenaiKey, r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", token, |t| t.contains("sk-"), yes),
            d(Kind::StripeKey, r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}", token, |t| t.contains("_live_") || t.contains("_test_"), yes),
            d(Kind::GithubToken, r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})", token, |t| t.contains("gh") , yes),
            d(Kind::SlackToken, r"xox[abprs]-[A-Za-z0-9\-]{10,}", token, |t| t.contains("xox"), yes),
            d(Kind::GoogleApiKey, r"AIza[0-9A-Za-z_\-]{35}", token, |t| t.contains("AIza"), yes),
            d(Kind::AwsAccessKeyId, r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}", alnum, |t| t.contains("A"), yes),
            d(Kind::AwsSecretKey, r"[A-Za-z0-9/+]{40}", b64, any, mixed_secret),
            d(Kind::Email, r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}", email_char, |t| t.contains('@'), yes),
            d(Kind::Iban, r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", alnum, two_digits, iban),
            d(Kind::CreditCard, r"[0-9](?:[ \-]?[0-9]){12,18}", digitish, thirteen_digits, card),
            d(Kind::UsSsn, r"[0-9]{3}-[0-9]{2}-[0-9]{4}", digitish, nine_digits, ssn),
            d(Kind::Phone, r"(?:\+|00)?[0-9(][0-9 ()\-.]{7,20}[0-9](?: ?(?:x|ext\.?) ?[0-9]{1,6})?", digitish, ten_digits, phone),
        ]
    })
}

/// Every sensitive item in `text`, non-overlapping, in order. `before` is the character just
/// before `text` (when scanning a stream), so a match cannot start inside a longer token.
pub fn find(text: &str, before: Option<char>) -> Vec<Span> {
    let mut found: Vec<Span> = Vec::new();
    for d in detectors() {
        if !(d.hint)(text) {
            continue;
        }
        let mut at = 0;
        while let Some(m) = d.regex.find_at(text, at) {
            let prev = text[..m.start()].chars().next_back().or(if m.start() == 0 {
                before
            } else {
                None
            });
            let accepted = if prev.is_some_and(d.word) {
                None
            } else {
                (d.check)(m.as_str()).filter(|&len| {
                    let next = text[m.start() + len..].chars().next();
                    len > 0 && !next.is_some_and(d.word)
                })
            };
            match accepted {
                Some(len) => {
                    found.push(Span {
                        start: m.start(),
                        end: m.start() + len,
                        kind: d.kind,
                    });
                    at = m.start() + len;
                }
                // Not an item: pieces of a rejected number are not items either.
                None => at = m.end().max(m.start() + 1),
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
