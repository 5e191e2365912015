//! Bytes as the body or query string of every kind of API request (`api::fuzz::request`): a
//! campaign as JSON and as TOML, a pacing patch, a new agent, a pause, a disposition, the
//! upload options, the contact and attempt filters, through the handlers' parsing and first
//! checks. The first byte picks the kind; a refusal must be a 4xx naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&kind, body)) = data.split_first() {
        api::fuzz::request(kind, body);
    }
});
