//! JSON bodies built from the schema's field names and values, for every operation, plain
//! or gzip (harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| losslab_fuzz::fuzz_one(data, true));
