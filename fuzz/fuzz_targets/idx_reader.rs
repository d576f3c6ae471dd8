//! Any bytes, compressed or not, must parse or give an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input");
    if let Ok(bytes) = initscope::data::idx::read_maybe_gz_bytes(data) {
        let _ = initscope::data::idx::parse(&bytes, path);
    }
    let _ = initscope::data::idx::parse(data, path);
    let _ = initscope::data::fetch::csv_to_idx(data, "fuzz-input");
});
