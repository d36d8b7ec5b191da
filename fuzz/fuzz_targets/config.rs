//! Any configuration text and override: loading never panics; it accepts or names a problem.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &str, &str)| {
    let (text, var, value) = data;
    let env = vec![(format!("PORTCULLIS_{var}"), value.to_owned())];
    if let Err(e) = portcullis_config::Config::parse(text, env) {
        assert!(!e.to_string().is_empty());
    }
});
