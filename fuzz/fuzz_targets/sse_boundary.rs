//! The SSE relay's event boundary: always inside the buffer, always just after a blank line,
//! and never a blank line later in the buffer (it is the last one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_openai::sse::last_event_end;

fn ends_blank(prefix: &[u8]) -> bool {
    prefix.ends_with(b"\n\n") || prefix.ends_with(b"\n\r\n")
}

fuzz_target!(|data: &[u8]| {
    match last_event_end(data) {
        Some(end) => {
            assert!(end <= data.len());
            assert!(ends_blank(&data[..end]));
            assert!((end + 1..=data.len()).all(|i| !ends_blank(&data[..i])));
        }
        None => assert!((1..=data.len()).all(|i| !ends_blank(&data[..i]))),
    }
});
