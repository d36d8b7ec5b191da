//! Input screening on arbitrary text: sanitation, decoding, folding, rules and the classifier
//! never panic, scores stay in [0, 1], and sanitized text holds no smuggling carrier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_guard::{sanitize, Carrier, Detector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let finding = Detector::builtin().scan(text);
    assert!((0.0..=1.0).contains(&finding.score));
    let clean = sanitize(text);
    // Only emoji joiners and presentation selectors, and subdivision flag tags, survive.
    for c in clean.text.chars() {
        if let Some(carrier) = Carrier::of(c) {
            assert!(
                matches!(c as u32, 0x200D | 0xFE0F | 0xE0061..=0xE007A | 0xE007F),
                "{carrier:?} {c:?} survived"
            );
        }
    }
});
