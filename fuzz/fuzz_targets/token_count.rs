//! Token counting on arbitrary text: the gateway's own pre-tokenizers, piece cache and
//! vocabulary tables count exactly what `bpe-openai` counts, for both vocabularies, and never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_openai::Encoding;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(
        Encoding::O200kBase.count(text),
        bpe_openai::o200k_base().count(text) as u64,
        "{text:?}"
    );
    assert_eq!(
        Encoding::Cl100kBase.count(text),
        bpe_openai::cl100k_base().count(text) as u64,
        "{text:?}"
    );
});
