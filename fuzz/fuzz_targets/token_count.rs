//! Token counting on arbitrary text: the gateway's o200k path (its own pre-tokenizer, piece
//! cache and vocabulary table) counts exactly what `bpe-openai` counts, and never panics.
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
});
