//! Any bearer string: the key parser never panics, accepts only well-formed keys whose
//! checksum holds, and what it accepts re-assembles to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_identity::keys;

fuzz_target!(|text: &str| {
    if let Some(key) = keys::parse(text) {
        assert_eq!(keys::with_secret(key.environment, key.id, key.secret), text);
        assert_eq!(key.id.len(), keys::ID_LEN);
        assert_eq!(key.secret.len(), keys::SECRET_LEN);
    }
});
