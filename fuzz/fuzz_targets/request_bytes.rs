//! Arbitrary bytes as the body of every operation, plain or gzip (harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| losslab_fuzz::fuzz_one(data, false));
