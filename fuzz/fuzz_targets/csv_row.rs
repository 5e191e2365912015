//! Bytes as a call list (a header line, then rows) through the import's reading and row
//! checks (`store::fuzz_rows`): column counts, UTF-8, numbers to E.164 in one of four
//! countries, time-zone columns and the other columns as JSON. The first byte picks the
//! country and the delimiter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    store::fuzz_rows(data);
});
