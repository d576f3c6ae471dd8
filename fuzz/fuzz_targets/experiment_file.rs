//! Any text must give an experiment or a one-line error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = initscope::experiment::Experiment::from_toml(text, Path::new("fuzz.toml")) {
            assert!(!format!("{e:#}").contains('\n'), "multi-line error: {e:#}");
        }
    }
});
