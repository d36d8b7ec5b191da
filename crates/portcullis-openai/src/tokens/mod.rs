//! Counting prompt tokens the way the model will, before the model sees the request.
//!
//! Counting matches `tiktoken` exactly (tested on the dev corpus against `tiktoken-rs`, and
//! property-tested and fuzzed against `bpe-openai`), with OpenAI's vocabulary files compiled
//! into the binary so nothing is downloaded at run time: each text is split by its
//! vocabulary's pattern (`pieces`), each piece counted once per thread (`piece_cache`) by
//! tiktoken's merge over a compact table (`vocabulary`, which says why not `bpe-openai`). What
//! counts as a request's prompt is each endpoint's answer ([`crate::Api::count_prompt`]);
//! this file only counts text.

use serde_json::Value;

mod piece_cache;
mod pieces;
mod vocabulary;

/// A tokenizer vocabulary, chosen per model with `tokenizer = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-3.5 and GPT-4.
    Cl100kBase,
    /// GPT-4o and later.
    O200kBase,
}

/// What one image costs at low detail; high-detail tiles are not known before the model
/// decodes the image, so images are priced at the floor and reconciled afterwards.
const TOKENS_PER_IMAGE: u64 = 85;

impl Encoding {
    /// The names accepted in configuration.
    pub const NAMES: &'static [&'static str] = &["cl100k_base", "o200k_base"];

    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "cl100k_base" => Some(Encoding::Cl100kBase),
            "o200k_base" => Some(Encoding::O200kBase),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }

    /// Loads the vocabulary now, so the first request does not pay for it.
    pub fn warm_up(self) {
        self.count("warm up");
    }

    /// Tokens in `text`, exactly as the model's tokenizer splits it.
    ///
    /// Under o200k (the default) ASCII pieces are cut by a scanner, the rest by the pattern;
    /// each piece is looked up in a per-thread cache of recent pieces and merged over a
    /// compact vocabulary table: the same counts as tiktoken in a fraction of the time and
    /// memory (`cargo bench -p portcullis-openai --bench tokens`).
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        let vocabulary = match self {
            Encoding::O200kBase => vocabulary::o200k(),
            Encoding::Cl100kBase => vocabulary::cl100k(),
        };
        let mut total = 0;
        let mut add = |piece: &[u8]| {
            total += piece_cache::count(self as u8 + 1, piece, |p| vocabulary.count(p));
        };
        match self {
            Encoding::O200kBase => pieces::split(text, &mut add),
            Encoding::Cl100kBase => pieces::split_cl100k(text, &mut add),
        }
        total as u64
    }

    /// A message content: a string, or parts (text counted, images at the low-detail floor,
    /// anything else as its JSON).
    pub fn count_content(self, content: &Value) -> u64 {
        match content {
            Value::String(text) => self.count(text),
            Value::Array(parts) => parts
                .iter()
                .map(|part| match part.get("type").and_then(Value::as_str) {
                    Some("text") => part
                        .get("text")
                        .and_then(Value::as_str)
                        .map_or(0, |t| self.count(t)),
                    Some("image_url" | "input_image") => TOKENS_PER_IMAGE,
                    _ => self.count_json(part),
                })
                .sum(),
            Value::Null => 0,
            other => self.count_json(other),
        }
    }

    /// A prompt or embedding input: a string, a list of strings, or pre-tokenized arrays.
    pub fn count_inputs(self, input: &Value) -> u64 {
        match input {
            Value::String(text) => self.count(text),
            Value::Array(items) if items.iter().all(Value::is_number) => items.len() as u64,
            Value::Array(items) => items.iter().map(|i| self.count_inputs(i)).sum(),
            _ => 0,
        }
    }

    /// A structured value, counted as the JSON text the model is shown.
    pub fn count_json(self, value: &Value) -> u64 {
        self.count(&value.to_string())
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast path (scanner and piece cache) counts as `bpe-openai` does on its own.
        #[test]
        fn the_fast_path_counts_as_bpe_openai(text in "[\\x00-\\x7f]{0,200}|[a-zA-Z ,.'\n0-9]{0,400}|\\PC{0,100}") {
            proptest::prop_assert_eq!(
                Encoding::O200kBase.count(&text),
                bpe_openai::o200k_base().count(text.as_str()) as u64
            );
            proptest::prop_assert_eq!(
                Encoding::Cl100kBase.count(&text),
                bpe_openai::cl100k_base().count(text.as_str()) as u64
            );
        }
    }

    #[test]
    fn counts_plain_text() {
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }
}
